"""``maslow review``: review the findings of ``maslow qa`` in a browser, then apply the accepted ones.

- ``maslow review ISSUES.json --gt GT`` (``review serve``): the review UI on http://127.0.0.1:8765/;
- ``maslow review apply ISSUES.json --gt GT --out OUT --to FORMAT`` (or ``--commit`` in a workspace): the corrected
  dataset and its change log;
- ``maslow review status ISSUES.json``: decisions so far, per type and status;
- ``maslow review db current|upgrade [ISSUES.json] [--db URL]``: the revision of the decisions database's tables,
  and their upgrade to this maslow's (every command above upgrades the database it opens; this is for an operator
  who upgrades a shared database on purpose).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from maslow.cli._destination import OverwriteOpt
from maslow.cli.render import console, err_console, format_name, lit, load_dataset, print_json, table, workspace_version
from maslow.errors import MaslowError

if TYPE_CHECKING:
    from typer._click.core import Context

    from maslow.core.dataset import Dataset
    from maslow.store.workspace import Version


class _ServeByDefault(TyperGroup):
    """``maslow review ISSUES.json ...`` runs ``maslow review serve ISSUES.json ...``: a first argument that names
    no sub-command (and is not --help) is the ISSUES.json of ``serve``."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["serve", *args]
        return super().parse_args(ctx, args)


review_app = typer.Typer(cls=_ServeByDefault, no_args_is_help=True,
                         help="Review the findings of `maslow qa` in a browser (`maslow review ISSUES.json --gt GT`), "
                              "then apply the accepted ones (`maslow review apply`).")

IssuesArg = Annotated[Path, typer.Argument(help="The ISSUES.json `maslow qa --out` wrote.")]
GtOpt = Annotated[str, typer.Option("--gt", help="The ground truth qa scored: a file or folder (with --from), or a "
                                    "workspace version or dataset.")]
FromOpt = Annotated[str | None, typer.Option("--from", "-f", help="Format of --gt (default coco); without it, a --gt "
                                             "that is no file or folder is a workspace version or dataset.")]
RootOpt = Annotated[Path | None, typer.Option("--images-root", help="Folder the image paths are relative to.")]
DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the decisions database (default: the "
                                           "workspace's, else ISSUES stem + .review.db beside the file).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


def _truth(gt: str, fmt: str | None, images_root: Path | None) -> tuple[Dataset, str, Version | None]:
    """The ground truth, how to name it (stored with the session), and its workspace version (None: a file)."""
    if fmt is None:
        from maslow.store import Workspace

        read_id: str | None = None
        ref = gt
        with contextlib.suppress(MaslowError):  # the head read, then loaded by id: --commit's base (compare-and-swap)
            ws = Workspace.find()
            read_id = ws.resolve(gt)
            ref = f"{ws.record(read_id).dataset}@{read_id}"
        found = workspace_version(ref, "--gt")
        if found is not None:
            version = Workspace.find().record(read_id) if read_id is not None else Workspace.find().version(gt)
            ds = found[0] if images_root is None else found[0].replace(root=images_root)
            return ds, f"{version.dataset}@{version.id}", version
    name = format_name(fmt or "coco", "--from")
    ds = load_dataset(gt, name, images_root=images_root)
    return ds, f"{Path(gt).resolve()} ({name})", None


def _store(issues: Path, db: str | None) -> Any:
    from maslow.store.reviews import ReviewStore, database_url

    return ReviewStore(database_url(issues, db=db))


@review_app.command("serve")
def serve(
    issues: IssuesArg,
    gt: GtOpt,
    fmt: FromOpt = None,
    images_root: RootOpt = None,
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (the UI has no login: keep it local).")]
    = "127.0.0.1",
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="Another name requests may give as their host (repeatable; *.DOMAIN for the names "
        "under DOMAIN): the name others reach this machine by, with --host 0.0.0.0. Any other name is refused (400), "
        "against DNS rebinding; this machine's names and IP addresses are accepted.")] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8765,
    no_open: Annotated[bool, typer.Option("--no-open", help="Don't open a browser.")] = False,
) -> None:
    """Serve the review UI: findings ranked as qa ranked them, with crops; Accept / Reject / Skip (keys a, r, s;
    j/k to move, Enter leaves the note); each decision is saved as it is made, and reopening the same ISSUES.json
    resumes on the first undecided finding."""
    from maslow.errors import require

    require("fastapi", "serve")
    require("uvicorn", "serve")
    from maslow.ui.app import allowed_hosts, create_app
    from maslow.ui.state import open_review

    names = allowed_hosts(host, allow_host or ())  # a bad --allow-host stops here, before anything is opened
    truth, ref, _ = _truth(gt, fmt, images_root)
    with _store(issues, db) as store:  # closed however this ends: a refused truth or port, Ctrl+C
        review = open_review(issues, truth, store, truth_ref=ref)
        _check_port(host, port)
        app = create_app(review, title=f"maslow review: {issues.name}", host=host, allow_hosts=allow_host or ())
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
        s = review.summary()
        console.print(f"Reviewing {s['n_findings']} findings of {lit(issues)} ({s['n_decided']} decided so far); "
                      f"decisions go to {lit(_safe(store.url))}")
        console.print(f"Open {lit(url)} (Ctrl+C to stop)")
        if (note := review.image_note()) is not None:
            err_console.print(f"note: {note}", markup=False, highlight=False)
        if host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(f"note: --host {host}: anyone who can reach this address can decide (the UI has no "
                              f"login); requests must name {', '.join(names)} or an IP address (more with "
                              "--allow-host)", markup=False, highlight=False)
        if not no_open:
            import threading
            import webbrowser

            threading.Timer(1.0, webbrowser.open, [url]).start()
        import uvicorn

        uvicorn.run(app, host=host, port=port, log_level="warning")


def _check_port(host: str, port: int) -> None:
    """Refuse a port that is taken, before the server starts (uvicorn logs it and exits with code 1)."""
    import socket
    import sys

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise MaslowError(f"--host must be an address of this machine, got {host!r} ({e.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        if sys.platform != "win32":  # as uvicorn binds: a port left in TIME_WAIT by the last run is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            raise MaslowError(f"--port {port}: can't listen on {host}:{port} ({(e.strerror or str(e)).lower()}); "
                              "pass another --port") from None


def _safe(url: str) -> str:
    from maslow.store.reviews import safe_url

    return safe_url(url)


@review_app.command("apply")
def apply(
    issues: IssuesArg,
    gt: GtOpt,
    fmt: FromOpt = None,
    images_root: RootOpt = None,
    db: DbOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the corrected dataset here.")] = None,
    to: Annotated[str | None, typer.Option("--to", "-t", help="Format of --out (see `maslow formats`).")] = None,
    commit: Annotated[bool, typer.Option("--commit", help="Commit the corrected dataset as a new version of the "
                                         "workspace dataset --gt names.")] = False,
    message: Annotated[str, typer.Option("--message", "-m", help="Message of the committed version.")] = "",
    decisions_file: Annotated[Path | None, typer.Option("--decisions", help="Take the decisions from this file "
                                                        "(the UI's export) instead of the database.")] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the accepted findings to the ground truth: relabel, remove, add, move boxes or keypoints. Writes the
    corrected dataset (atomically) or commits it, and prints the change log. An --out folder that is not empty needs
    --overwrite; the ground truth, ISSUES.json and the decisions are never replaced."""
    from maslow import io
    from maslow.cli._destination import check_destination, check_images_kept
    from maslow.core.atomic import walked
    from maslow.quality.records import read_findings
    from maslow.quality.review import apply_decisions

    if commit == (out is not None):
        raise MaslowError("review apply: give --out OUT --to FORMAT, or --commit (a workspace --gt)")
    if out is not None and to is None:
        raise MaslowError("review apply: --to FORMAT is required with --out")
    to_fmt = None if to is None else format_name(to, "--to")
    folders: list[Path] = []
    if out is not None:  # before anything is read: the data read, a workspace, a folder not empty (without --overwrite)
        assert to_fmt is not None
        folders = check_destination(out, to_fmt, overwrite=overwrite, sources=_read_paths(
            gt, fmt, images_root, issues, db, decisions_file), options={}, flag="--out")
    checked = walked(folders)  # the check looked through them for a workspace: the writer doesn't again
    truth, _, version = _truth(gt, fmt, images_root)
    check_images_kept(folders, truth, flag="--out", dst=out)
    if commit and version is None:
        raise MaslowError("review apply: --commit applies to a workspace version or dataset --gt (omit --from)")
    findings = read_findings(issues)
    decisions = _read_decisions(decisions_file, issues, truth, findings) if decisions_file is not None else \
        _stored_decisions(issues, db, truth)
    result = apply_decisions(truth, findings, decisions)
    written: dict[str, Any] = {}
    if out is not None:
        assert to_fmt is not None
        with checked:
            written["export"] = io.write(result.dataset, out, to_fmt)
    if commit:
        from maslow.store import Workspace

        assert version is not None
        n = result.counts()["applied"]
        v = Workspace.find().commit(result.dataset, dataset=version.dataset, base=version.id,
                                    message=message or f"review of {issues.name}: {n} findings applied",
                                    changes=[c.to_dict() for c in result.changes])
        written["version"] = v.to_dict()
    if as_json:
        print_json({"result": result.to_dict(), **written})
        return
    _render(result)
    if "export" in written:
        d = written["export"].to_dict()
        console.print(f"Wrote {d['n_images']} images, {d['n_annotations']} annotations as {lit(d['format'])} to "
                      f"{lit(d['path'])}")
    if "version" in written:
        v = written["version"]
        console.print(f"Committed {lit(v['dataset'])}@{v['id']} ({v['n_annotations']} annotations)")


def _read_paths(gt: str, fmt: str | None, images_root: Path | None, issues: Path, db: str | None,
                decisions_file: Path | None) -> list[Path]:
    """The files and folders ``review apply`` reads (the ground truth when it is one, its images, ISSUES.json, the
    decisions database file or export), which --out must not replace."""
    import os

    from maslow.cli._destination import read_paths
    from maslow.store.reviews import database_url, sqlite_file

    # without --from, a --gt that is no file or folder is a workspace version (the workspace is refused anyway)
    name = format_name(fmt, "--from") if fmt is not None else "coco" if os.path.exists(gt) else None
    read = read_paths(Path(gt), name, images_root=images_root)
    database = sqlite_file(database_url(issues, db=db))
    return [*read, issues, *([database] if database is not None else []),
            *([decisions_file] if decisions_file is not None else [])]


def _stored_decisions(issues: Path, db: str | None, truth: Dataset) -> dict[int, Any]:
    """The decisions of ``issues``'s review session, made on ``truth``: no session of this ISSUES.json in the
    database is an error (it was not reviewed there); a session without decisions gives none (nothing changes)."""
    from maslow.store.reviews import database_url, file_hash

    url = database_url(issues, db=db)
    session, store = _session(issues, url)
    if session is None:
        raise MaslowError(f"{issues}: no review of this ISSUES.json in {_safe(url)} (its content, hash "
                          f"{file_hash(issues)[:12]}); review it first: maslow review {issues} --gt GT")
    assert store is not None
    try:
        from maslow.quality.records import truth_fingerprint
        from maslow.store.reviews import check_session_truth

        check_session_truth(session, truth, fingerprint=truth_fingerprint(truth))
        decisions: dict[int, Any] = store.decisions(session.id)
        return decisions
    finally:
        store.close()


def _session(issues: Path, url: str) -> tuple[Any, Any]:
    """The review session of ``issues`` in the database at ``url`` and the store, or (None, None); a SQLite file
    that does not exist is not created."""
    from maslow.store.reviews import ReviewStore, file_hash, sqlite_file

    file = sqlite_file(url)
    if file is not None and not file.is_file():
        return None, None
    store = ReviewStore(url)
    try:
        session = store.find_session(file_hash(issues))
    except BaseException:
        store.close()
        raise
    if session is None:
        store.close()
        return None, None
    return session, store


def _read_decisions(path: Path, issues: Path, truth: Dataset, findings: list[dict[str, Any]]) -> dict[int, Any]:
    """Decisions from an export of the UI (``/api/decisions``): ``{"session": {...}, "decisions": [{key, status,
    label}, ...]}``, checked as the database's are: its session must be of this ISSUES.json (its content hash) and,
    when it names one, of this truth (``check_session_truth``); each decision's key must be the rank of one of
    ``findings``, and its status and class fit (``check_decision``), else the error names the export's record."""
    import json

    from maslow.errors import FormatError, InvalidDatasetError
    from maslow.quality.records import truth_fingerprint
    from maslow.quality.review import STATUSES, Decision, check_decision
    from maslow.store.reviews import ReviewSession, check_session_truth, file_hash

    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise FormatError(f"must be a readable JSON file of decisions, got {e}", path=path) from None
    rows = data.get("decisions") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise FormatError("must be an object with a 'decisions' list (the review UI's export)", path=path)
    session = data.get("session")
    if not isinstance(session, dict) or not isinstance(session.get("issues_hash"), str) \
            or not isinstance(session.get("truth_hash", ""), str):
        raise FormatError("must have the 'session' of the review, with its issues_hash (the review UI's export)",
                          path=path, field="session")
    digest = file_hash(issues)
    if session["issues_hash"] != digest:
        raise InvalidDatasetError(f"{path}: the decisions are of another ISSUES.json (hash "
                                  f"{session['issues_hash'][:12]}, {session.get('issues_path')!r}), not of {issues} "
                                  f"(hash {digest[:12]}): apply them with the ISSUES.json they were made on")
    check_session_truth(ReviewSession(id=0, issues_path=str(session.get("issues_path")),
                                      issues_hash=digest, truth=str(session.get("truth")),
                                      truth_hash=session.get("truth_hash", ""), n_findings=0,
                                      created=str(session.get("created"))), truth,
                        fingerprint=truth_fingerprint(truth))
    by_rank = {int(f["rank"]): f for f in findings}
    out: dict[int, Any] = {}
    for i, r in enumerate(rows):
        record = f"decisions[{i}]"
        if not isinstance(r, dict) or isinstance(r.get("key"), bool) or not isinstance(r.get("key"), int) \
                or not isinstance(r.get("status"), str):
            raise FormatError("must have an integer key and a status", path=path, record=record)
        key, label = r["key"], r.get("label")
        if key not in by_rank:
            raise FormatError(f"key must be the rank of a finding of {issues} ({len(by_rank)} findings), got {key}",
                              path=path, record=record, field="key")
        if key in out:  # the last would win, silently
            first = next(j for j, q in enumerate(rows) if isinstance(q, dict) and q.get("key") == key)
            raise FormatError(f"key must be unique, got finding {key} decided twice (decisions[{first}] too); keep "
                              "one", path=path, record=record, field="key")
        if r["status"] not in STATUSES:
            raise FormatError(f"status must be one of {', '.join(STATUSES)}, got {r['status']!r}", path=path,
                              record=record, field="status")
        if label is not None and not isinstance(label, str):
            raise FormatError(f"label must be a class name or null, got {label!r}", path=path, record=record,
                              field="label")
        decision = Decision(r["status"], label)
        try:
            check_decision(by_rank[key], decision, truth.schema.names)
        except MaslowError as e:
            raise FormatError(str(e), path=path, record=record, field="label") from None
        out[key] = decision
    return out


def _render(result: Any) -> None:
    c = result.counts()
    console.print(table("Review decisions applied", ["outcome", "findings"], [*c.items(), ("pending",
                                                                                          result.n_pending)]))
    rows = [(ch.key, ch.type, ch.outcome, ch.action, "" if ch.annotation_row is None else ch.annotation_row,
             ch.detail) for ch in result.changes if ch.outcome not in ("rejected", "skipped")]
    if rows:
        shown = rows[:50]
        more = f" (first 50 of {len(rows)}; --json for all)" if len(rows) > 50 else ""
        console.print(table(f"Change log{more}", ["#", "type", "outcome", "action", "row", "detail"], shown))
    for note in result.notes:
        err_console.print(f"note: {note}", markup=False, highlight=False)


@review_app.command("status")
def status(issues: IssuesArg, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Findings per type and status (pending, accepted, rejected, skipped) of the review of ISSUES.json."""
    from maslow.quality.records import read_findings
    from maslow.quality.review import review_counts
    from maslow.store.reviews import database_url

    findings = read_findings(issues)
    url = database_url(issues, db=db)
    session, store = _session(issues, url)
    decisions: dict[int, Any] = {}
    if store is not None:
        try:
            decisions = store.decisions(session.id)
        finally:
            store.close()
    counts = review_counts(findings, decisions)
    if as_json:
        print_json({**counts, "session": None if session is None else session.to_dict(), "database": _safe(url)})
        return
    states = list(counts["counts"])
    rows = [(t, *c.values(), sum(c.values())) for t, c in counts["per_type"].items()]
    rows.append(("all", *counts["counts"].values(), counts["n_findings"]))
    console.print(table(f"Review of {issues.name}: {counts['n_decided']} of {counts['n_findings']} decided",
                        ["type", *states, "total"], rows))
    if session is None:
        err_console.print(f"note: no review of this ISSUES.json in {_safe(url)} yet", markup=False, highlight=False)


db_app = typer.Typer(no_args_is_help=True, help="The decisions database's tables: their revision (`current`) and "
                                                 "their upgrade to this maslow's (`upgrade`).")
review_app.add_typer(db_app, name="db")
DbIssuesArg = Annotated[Path | None, typer.Argument(help="The ISSUES.json whose review database to use (outside a "
                                                    "workspace, without --db).")]


def _db_url(issues: Path | None, db: str | None) -> str:
    """The database of ``review db current|upgrade``. A given ISSUES.json must be one (``read_findings``: a mistyped
    name made ``<stem>.review.db`` beside a file that does not exist, exit 0); when ``--db`` or the workspace picks
    the database instead, a note says so (the argument was ignored without a word)."""
    from maslow.quality.records import read_findings
    from maslow.store.reviews import database_url

    if issues is None:
        return database_url(None, db=db)
    read_findings(issues)
    try:
        url = database_url(None, db=db)  # what --db or the workspace picks, without the ISSUES.json
    except MaslowError:  # neither: the database beside the ISSUES.json
        return database_url(issues, db=db)
    err_console.print(f"note: {issues} does not choose the database here: "
                      f"{'--db' if db is not None else 'the workspace'} does ({_safe(url)})", markup=False,
                      highlight=False, soft_wrap=True)
    return url


@db_app.command("current")
def db_current(issues: DbIssuesArg = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The revision of the database's review tables, the newest this maslow knows, and what upgrading would do
    (nothing is written; a SQLite file that does not exist is not created)."""
    from maslow.store.migrations import schema_state
    from maslow.store.reviews import open_engine, sqlite_file

    url = _db_url(issues, db)
    file = sqlite_file(url)
    engine = None if file is not None and not file.is_file() else open_engine(url, create=False)
    try:
        state = schema_state(engine, url)
    finally:
        if engine is not None:
            engine.dispose()
    if as_json:
        print_json(state.to_dict())
        return
    what = {"missing": "no database yet (the first review makes it)",
            "empty": "no review tables yet (the first review, or `maslow review db upgrade`, makes them)",
            "unversioned": "review tables made before migrations: `maslow review db upgrade` records them as "
                           "revision 0001, then upgrades",
            "behind": "older than this maslow's: `maslow review db upgrade` (any review command also does)",
            "current": "up to date",
            "newer": "upgraded by a newer maslow: this one refuses it"}[state.state]
    console.print(f"{lit(state.database)}: revision {lit(state.revision or 'none')} (this maslow: {state.head}); "
                  f"{what}")


@db_app.command("upgrade")
def db_upgrade(issues: DbIssuesArg = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Upgrade the database's review tables to this maslow's revision (made when missing; tables made before
    migrations recorded as revision 0001 first). Refuses a database a newer maslow upgraded (exit code 2)."""
    from maslow.store.reviews import ReviewStore

    with ReviewStore(_db_url(issues, db)) as store:
        done = store.schema
    if as_json:
        print_json(done.to_dict())
        return
    if done.before == done.after:
        what = f"already at revision {done.after}"
    elif done.stamped:
        what = f"tables made before migrations recorded as revision 0001, upgraded to {done.after}"
    else:
        what = f"upgraded from {done.before or 'no tables'} to revision {done.after}"
    console.print(f"{lit(done.database)}: {what}")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
