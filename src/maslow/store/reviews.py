"""Review sessions and decisions in the workspace database (SQLAlchemy Core; SQLite by default, any URL).

Two tables:

- ``review_sessions``: one per ISSUES.json reviewed, keyed by the SHA-256 of its bytes (``issues_hash``): the file's
  path when first opened, the truth it points into (a path or a workspace ref, as given) and its fingerprint, its
  number of findings and when the session was created. Opening the same ISSUES.json again, from any path, resumes
  its session; a changed file is another session (its ranks name other findings).
- ``review_decisions``: one row per decision made, never updated: session, finding key (the finding's ``rank``),
  status (``accepted``, ``rejected``, ``skipped``), optional class (``label``), note and reviewer, and when. A
  finding's decision is its latest row; the earlier ones are its history.

Each decision is committed in its own transaction as it is made (``ReviewStore.decide``): another connection,
another process, sees it at once, and a server killed afterwards loses nothing acknowledged. SQLite files are
opened in WAL mode (readers don't block the writer). Times are ISO 8601 strings in UTC.

The tables are made and changed by Alembic migrations (``maslow.store.migrations``): opening a store upgrades its
database to the newest revision this maslow knows (a database made before migrations, by ``create_all``, is first
recorded as revision 0001), and refuses a database a newer maslow upgraded past that.

Where the database is (``database_url``): ``--db URL`` when given; inside a workspace, the ``database`` URL of
``maslow.yaml`` (default ``sqlite:///.maslow/maslow.db``; a relative SQLite path is taken from the workspace
root); outside one, ``sqlite:///<ISSUES stem>.review.db`` beside the ISSUES.json file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maslow.errors import InvalidDatasetError, MaslowError, require

if TYPE_CHECKING:
    from maslow.core.dataset import Dataset
    from maslow.store.migrations import SchemaUpgrade

#: What a reviewer can decide (``maslow.quality.review.STATUSES``; the store checks without importing it).
STATUSES = ("accepted", "rejected", "skipped")
DEFAULT_URL = "sqlite:///.maslow/maslow.db"


class StoreError(MaslowError):
    """The database failed (can't be opened, locked, gone, a query refused): not the caller's input. The review UI
    answers 503."""


@dataclass(frozen=True)
class ReviewSession:
    """A review of one ISSUES.json."""

    id: int
    issues_path: str
    issues_hash: str
    truth: str
    truth_hash: str
    n_findings: int
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "issues_path": self.issues_path, "issues_hash": self.issues_hash,
                "truth": self.truth, "truth_hash": self.truth_hash, "n_findings": self.n_findings,
                "created": self.created}


@dataclass(frozen=True)
class StoredDecision:
    """A decision as stored (``status`` and ``label`` as ``apply_decisions`` reads them)."""

    key: int
    status: str
    label: str | None
    note: str
    reviewer: str
    decided: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "status": self.status, "label": self.label, "note": self.note,
                "reviewer": self.reviewer, "decided": self.decided}


def file_hash(path: str | Path) -> str:
    """The SHA-256 (hex) of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def database_url(issues_path: str | Path | None, *, db: str | None = None, start: str | Path = ".") -> str:
    """The database a review of ``issues_path`` uses: ``db`` when given, else the workspace's (found from
    ``start``), else a SQLite file beside ``issues_path`` (see the module docstring).

    Raises:
        MaslowError: no ``db``, no workspace and no ``issues_path``; a workspace ``database`` that is no string.
    """
    if db is not None:
        return db
    from maslow.store.workspace import Workspace

    try:
        ws = Workspace.find(start)
    except MaslowError:  # not in a workspace: a file beside ISSUES.json
        if issues_path is None:
            raise MaslowError("no database: give --db URL, the ISSUES.json whose review database to use, or run "
                              "inside a workspace (maslow init)") from None
        p = Path(issues_path).resolve()
        return f"sqlite:///{p.with_name(p.stem + '.review.db')}"
    url = ws.settings().get("database") or DEFAULT_URL
    if not isinstance(url, str):
        raise MaslowError(f"{ws.root / 'maslow.yaml'}: database must be a SQLAlchemy URL, got {url!r}")
    return _rooted(url, ws.root)


def _rooted(url: str, root: Path) -> str:
    """A SQLite URL with a relative file path made absolute from ``root`` (other URLs as they are)."""
    parts = sqlite_url_parts(url)
    if parts is None or sqlite_file(url) is None or Path(parts[1]).is_absolute():
        return url
    head, path, query = parts
    return f"{head}{root / path}{query}"


_SQLITE_URL = re.compile(r"(sqlite(?:\+\w+)?://)(?:/([^?]*))?(\?.*)?", re.DOTALL)


def sqlite_url_parts(url: str) -> tuple[str, str, str] | None:
    """``(head, path, query)`` of a SQLite URL ``sqlite[+driver]:///path[?query]``, None for another database.

    ``head`` ends with the slash before the path (``sqlite:///``; ``sqlite://`` when there is no path), ``path`` is
    as written (relative unless it starts with ``/``; ``""`` and ``":memory:"`` are in memory), ``query`` keeps its
    ``?`` (or is ``""``): ``head + path + query == url``.
    """
    m = _SQLITE_URL.fullmatch(url)
    if m is None:
        return None
    head, path, query = m.group(1), m.group(2), m.group(3) or ""
    return (head, "", query) if path is None else (head + "/", path, query)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, None for an in-memory SQLite database or another database."""
    parts = sqlite_url_parts(url)
    if parts is None or parts[1] in ("", ":memory:"):
        return None
    return Path(parts[1])


def check_session_truth(session: ReviewSession, truth: Dataset, *, fingerprint: str) -> None:
    """Refuse ``truth`` when the session's decisions were made on another one.

    Args:
        session: the review session (its ``truth_hash``; empty: not recorded, anything goes).
        truth: the ground truth given now (named in the message).
        fingerprint: ``maslow.quality.records.truth_fingerprint(truth)`` (the store does not import ``quality``).

    Raises:
        InvalidDatasetError: naming the truth the session was started on.
    """
    if session.truth_hash and session.truth_hash != fingerprint:
        raise InvalidDatasetError(f"the review of {session.issues_path} (started {session.created}) was made on "
                                  f"another truth: {session.truth} ({truth.n_images} images, {truth.n_annotations} "
                                  "annotations given now, with other rows); give that ground truth, or review the "
                                  "ISSUES.json of a `maslow qa` run on this one")


@functools.cache
def metadata() -> Any:
    """The review tables as the newest migration leaves them (``sqlalchemy.MetaData``; what the store queries, and
    the target of ``alembic revision --autogenerate``). Never ``create_all``: the migrations make them."""
    import sqlalchemy as sa

    meta = sa.MetaData()
    sa.Table(
        "review_sessions", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issues_path", sa.Text, nullable=False),
        sa.Column("issues_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("truth", sa.Text, nullable=False),
        sa.Column("truth_hash", sa.String(64), nullable=False, default=""),
        sa.Column("n_findings", sa.Integer, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
    )
    sa.Table(
        "review_decisions", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Integer, sa.ForeignKey("review_sessions.id"), nullable=False, index=True),
        sa.Column("finding_key", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=False, default=""),
        sa.Column("reviewer", sa.Text, nullable=False, default=""),
        sa.Column("decided", sa.String(40), nullable=False),
    )
    return meta


def open_engine(url: str, *, create: bool = True) -> Any:
    """A SQLAlchemy engine for ``url``: an in-memory SQLite database shared by every thread, a SQLite file in WAL
    mode with foreign keys on and its folder made (``create=False``: as it is, for reading: no folder made, the
    journal mode not changed).

    Raises:
        MissingDependencyError: SQLAlchemy is not installed. MaslowError: a URL SQLAlchemy can't use.
    """
    require("sqlalchemy", "serve")
    import sqlalchemy as sa

    kwargs: dict[str, Any] = {}
    is_sqlite, file = sqlite_url_parts(url) is not None, sqlite_file(url)
    if is_sqlite and file is None:  # one connection shared by every thread, or each would see its own empty database
        kwargs = {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
    elif file is not None and create:
        file.parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, ImportError, ValueError) as e:
        raise MaslowError(f"database URL must be a SQLAlchemy URL with its driver installed, got {url!r} "
                          f"({e})") from None
    if file is not None and create:
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class ReviewStore:
    """Review sessions and decisions in a database, upgraded to the newest revision of the tables when opened
    (``maslow.store.migrations.upgrade``; ``self.schema`` says what was done).

    Args:
        url: a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://...``); ``sqlite://`` is in memory.

    Raises:
        MissingDependencyError: SQLAlchemy or Alembic is not installed (``pip install 'maslow[serve]'``).
        MaslowError: a URL SQLAlchemy can't use. StoreError: the database can't be opened or upgraded: among
        others, its tables are of a newer maslow (a revision this one does not know), or tables made before
        migrations whose columns are not the review tables'.
    """

    def __init__(self, url: str) -> None:
        require("sqlalchemy", "serve")
        require("alembic", "serve")
        from maslow.store.migrations import upgrade

        self.url = url
        self.engine = open_engine(url)
        meta = metadata()
        self.sessions_table = meta.tables["review_sessions"]
        self.decisions_table = meta.tables["review_decisions"]
        try:
            self.schema: SchemaUpgrade = upgrade(self.engine, url)
        except BaseException:
            self.engine.dispose()
            raise

    @property
    def in_memory(self) -> bool:
        """Whether the database is an in-memory SQLite one (``sqlite://``): gone with this process."""
        return sqlite_url_parts(self.url) is not None and sqlite_file(self.url) is None

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_session(self, issues_path: str | Path, *, truth: str, n_findings: int, issues_hash: str | None = None,
                     truth_hash: str = "") -> ReviewSession:
        """The session of this ISSUES.json (by its content hash, computed when not given), created when new with
        ``truth`` (how the truth was named) and ``truth_hash`` (``maslow.quality.records.truth_fingerprint``); an
        existing session keeps its own (the caller compares them)."""
        import sqlalchemy as sa

        digest = issues_hash or file_hash(issues_path)
        t = self.sessions_table
        with self._begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.issues_hash == digest)).mappings().first()
            if row is None:
                conn.execute(t.insert().values(issues_path=str(issues_path), issues_hash=digest, truth=truth,
                                               truth_hash=truth_hash, n_findings=int(n_findings), created=_now()))
                row = conn.execute(sa.select(t).where(t.c.issues_hash == digest)).mappings().one()
        return ReviewSession(**dict(row))

    def find_session(self, issues_hash: str) -> ReviewSession | None:
        """The session of the ISSUES.json with this content hash, or None."""
        import sqlalchemy as sa

        t = self.sessions_table
        with self._begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.issues_hash == issues_hash)).mappings().first()
        return None if row is None else ReviewSession(**dict(row))

    def decide(self, session: int, key: int, status: str, *, label: str | None = None, note: str = "",
               reviewer: str = "") -> StoredDecision:
        """Record a decision about finding ``key`` of ``session`` (committed before this returns).

        Raises:
            MaslowError: a status not in ``STATUSES``, a key below 1, a label, note or reviewer holding the NUL
            character (PostgreSQL can't store it in text; refused on every database alike), or an unknown session.
        """
        if status not in STATUSES:
            raise MaslowError(f"decision: status must be one of {', '.join(STATUSES)}, got {status!r}")
        for name, text in (("label", label), ("note", note), ("reviewer", reviewer)):
            if isinstance(text, str) and "\x00" in text:
                raise MaslowError(f"decision: {name} must not contain the NUL character (U+0000), got {text!r}")
        if isinstance(key, bool) or not isinstance(key, int) or key < 1:
            raise MaslowError(f"decision: finding key must be a rank (an integer >= 1), got {key!r}")
        import sqlalchemy as sa

        decided = _now()
        with self._begin() as conn:
            if conn.execute(sa.select(self.sessions_table.c.id).where(self.sessions_table.c.id == session)).first() \
                    is None:
                raise MaslowError(f"decision: review session {session} is not in the database")
            conn.execute(self.decisions_table.insert().values(
                session_id=session, finding_key=key, status=status, label=label, note=note or "",
                reviewer=reviewer or "", decided=decided))
        return StoredDecision(key=key, status=status, label=label, note=note or "", reviewer=reviewer or "",
                              decided=decided)

    def decisions(self, session: int) -> dict[int, StoredDecision]:
        """The latest decision per finding key of ``session``, by key."""
        return {d.key: d for d in self.history(session)}

    def history(self, session: int) -> list[StoredDecision]:
        """Every decision of ``session``, in the order made."""
        return self.history_after(session, 0)[0]

    def version(self, session: int) -> tuple[int, int]:
        """``(count, last)``: how many decisions ``session`` has and the number of the last one (0, 0: none). It
        changes with every decision made, through any connection: a reader holding the decisions in memory asks
        for it (one indexed query) and reads again only when it changed (``history_after``)."""
        import sqlalchemy as sa

        t = self.decisions_table
        with self._begin() as conn:
            n, last = conn.execute(sa.select(sa.func.count(), sa.func.max(t.c.id)).where(t.c.session_id == session)
                                   ).one()
        return int(n), int(last or 0)

    def history_after(self, session: int, after: int) -> tuple[list[StoredDecision], int]:
        """The decisions of ``session`` made after the one numbered ``after`` (0: all), in the order made, and the
        number of the last one (``after`` when there is none): a reader that keeps the decisions in memory asks
        for what is new since it last looked (made through any connection, process or server), in one indexed
        query that returns no row when nothing changed."""
        import sqlalchemy as sa

        t = self.decisions_table
        with self._begin() as conn:
            rows = conn.execute(sa.select(t).where(t.c.session_id == session, t.c.id > after).order_by(t.c.id)
                                ).mappings().all()
        return [StoredDecision(key=r["finding_key"], status=r["status"], label=r["label"], note=r["note"],
                               reviewer=r["reviewer"], decided=r["decided"]) for r in rows], \
            int(rows[-1]["id"]) if rows else after

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Any]:
        """A transaction (committed on leaving it); database errors become StoreError naming the database."""
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as e:
            raise StoreError(f"database {safe_url(self.url)}: {type(e).__name__}: {getattr(e, 'orig', None) or e}") \
                from None


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    """Each connection of a store's engine: WAL (readers don't block the writer) and foreign keys checked."""
    sqlite_wal(conn)
    cur = conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def sqlite_wal(conn: Any, *, attempts: int = 10) -> None:
    """Put the SQLite database of DB-API connection ``conn`` in WAL mode (kept in the file once set). A database
    another connection is writing for the first time can't switch yet, and SQLite says "database is locked" at once,
    without waiting as its busy timeout does: tried again, 10 ms, 20 ms, ... (5 s in all)."""
    import sqlite3
    import time

    cur = conn.cursor()
    try:
        for attempt in range(attempts):
            try:
                cur.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == attempts - 1:
                    raise
                time.sleep(0.01 * 2**attempt)
    finally:
        cur.close()


def safe_url(url: str) -> str:
    """``url`` with any password hidden (for messages)."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:  # only for a message: an unparsable URL is shown as given
        return url


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
