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

Where the database is (``database_url``): ``--db URL`` when given; inside a workspace, the ``database`` URL of
``maslow.yaml`` (default ``sqlite:///.maslow/maslow.db``; a relative SQLite path is taken from the workspace
root); outside one, ``sqlite:///<ISSUES stem>.review.db`` beside the ISSUES.json file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maslow.errors import MaslowError, require

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


def database_url(issues_path: str | Path, *, db: str | None = None, start: str | Path = ".") -> str:
    """The database a review of ``issues_path`` uses: ``db`` when given, else the workspace's (found from
    ``start``), else a SQLite file beside ``issues_path`` (see the module docstring)."""
    if db is not None:
        return db
    from maslow.store.workspace import Workspace

    try:
        ws = Workspace.find(start)
    except MaslowError:  # not in a workspace: a file beside ISSUES.json
        p = Path(issues_path).resolve()
        return f"sqlite:///{p.with_name(p.stem + '.review.db')}"
    url = ws.settings().get("database") or DEFAULT_URL
    if not isinstance(url, str):
        raise MaslowError(f"{ws.root / 'maslow.yaml'}: database must be a SQLAlchemy URL, got {url!r}")
    return _rooted(url, ws.root)


def _rooted(url: str, root: Path) -> str:
    """A SQLite URL with a relative file path made absolute from ``root`` (other URLs as they are)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix):]
    path, sep, query = rest.partition("?")
    if not path or path == ":memory:" or Path(path).is_absolute():
        return url
    return f"{prefix}{root / path}{sep}{query}"


class ReviewStore:
    """Review sessions and decisions in a database (the tables are created when missing).

    Args:
        url: a SQLAlchemy URL (``sqlite:///path.db``, ``postgresql://...``); ``sqlite://`` is in memory.

    Raises:
        MissingDependencyError: SQLAlchemy is not installed (``pip install 'maslow[serve]'``).
        MaslowError: a URL SQLAlchemy can't use. StoreError: the database can't be opened.
    """

    def __init__(self, url: str) -> None:
        require("sqlalchemy", "serve")
        import sqlalchemy as sa

        self.url = url
        kwargs: dict[str, Any] = {}
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:  # one connection shared by every thread, or each would see its own empty database
            kwargs = {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
        elif url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):].partition("?")[0]).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except (sa.exc.ArgumentError, ImportError, ValueError) as e:
            raise MaslowError(f"database URL must be a SQLAlchemy URL with its driver installed, got {url!r} "
                              f"({e})") from None
        if url.startswith("sqlite") and not memory:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        meta = sa.MetaData()
        self.sessions_table = sa.Table(
            "review_sessions", meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("issues_path", sa.Text, nullable=False),
            sa.Column("issues_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("truth", sa.Text, nullable=False),
            sa.Column("truth_hash", sa.String(64), nullable=False, default=""),
            sa.Column("n_findings", sa.Integer, nullable=False),
            sa.Column("created", sa.String(40), nullable=False),
        )
        self.decisions_table = sa.Table(
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
        try:
            meta.create_all(self.engine)
        except sa.exc.SQLAlchemyError as e:
            self.engine.dispose()
            raise StoreError(f"database {safe_url(url)}: could not open it or create the review tables "
                              f"({type(e).__name__}: {getattr(e, 'orig', None) or e})") from None

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
            MaslowError: a status not in ``STATUSES``, a key below 1, or an unknown session.
        """
        if status not in STATUSES:
            raise MaslowError(f"decision: status must be one of {', '.join(STATUSES)}, got {status!r}")
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
        import sqlalchemy as sa

        t = self.decisions_table
        with self._begin() as conn:
            rows = conn.execute(sa.select(t).where(t.c.session_id == session).order_by(t.c.id)).mappings().all()
        return [StoredDecision(key=r["finding_key"], status=r["status"], label=r["label"], note=r["note"],
                               reviewer=r["reviewer"], decided=r["decided"]) for r in rows]

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
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
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
