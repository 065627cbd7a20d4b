"""Alembic migrations of the workspace database (the review tables), run from code: no ``alembic.ini``.

- ``env.py`` runs the migrations on the connection it is given (``Config.attributes["connection"]``), inside that
  connection's transaction; ``versions/`` holds one file per revision, ``0001_review_tables.py`` first.
- ``upgrade(engine, url)`` (what ``ReviewStore`` does when it opens a database, and ``maslow review db upgrade``):
  refuses a database at a revision this maslow does not know (a newer maslow upgraded it), records a database made
  before migrations (the review tables, made by ``create_all``, and no revision) as revision 0001 once its columns
  are checked, then upgrades to the newest revision. ``schema_state(engine, url)`` (``maslow review db current``)
  only reads.
- The revision is kept in the table ``maslow_alembic_version``, not Alembic's default ``alembic_version``: a
  database shared with another application that uses Alembic keeps that application's history apart.
- One process migrates at a time: a SQLite file is migrated inside one ``BEGIN IMMEDIATE`` transaction (SQLite's
  DDL is transactional: a second process waits for the first, then finds the tables made; a failed migration
  leaves nothing), PostgreSQL under a transaction-level advisory lock.

A new revision (for maslow's developers; ``script.py.mako`` is its template)::

    python -c "from alembic import command; from maslow.store.migrations import alembic_config; \\
    command.revision(alembic_config(), 'add the reviewer table', rev_id='0002')"

then write its ``upgrade()`` and ``downgrade()`` (SQLite can't alter most columns: use ``op.batch_alter_table``)
and the matching change to ``maslow.store.reviews.metadata``.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maslow.errors import require
from maslow.store.reviews import StoreError, safe_url, sqlite_file, sqlite_wal

VERSION_TABLE = "maslow_alembic_version"
#: The revision of the tables ``create_all`` made before migrations, and their columns.
BASELINE = "0001"
BASELINE_COLUMNS = {
    "review_sessions": ("id", "issues_path", "issues_hash", "truth", "truth_hash", "n_findings", "created"),
    "review_decisions": ("id", "session_id", "finding_key", "status", "label", "note", "reviewer", "decided"),
}
#: The key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK = zlib.crc32(b"maslow.store.migrations")


@dataclass(frozen=True)
class SchemaUpgrade:
    """What opening a database did to its tables: ``before`` (its revision; None: none recorded), ``stamped``
    (tables made before migrations, recorded as ``BASELINE``) and ``after`` (the newest revision)."""

    database: str
    before: str | None
    stamped: bool
    after: str

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "before": self.before, "stamped": self.stamped, "after": self.after}


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: ``revision`` (None: none recorded), ``head`` (the newest this maslow knows) and
    ``state``: ``missing`` (no SQLite file yet), ``empty`` (no review tables), ``unversioned`` (tables made before
    migrations), ``behind``, ``current`` or ``newer`` (a revision this maslow does not know)."""

    database: str
    revision: str | None
    head: str
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "revision": self.revision, "head": self.head, "state": self.state}


def alembic_config(connection: Any = None) -> Any:
    """The Alembic ``Config`` of these migrations (``script_location`` this folder), running on ``connection``."""
    require("alembic", "serve")
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision these migrations know."""
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None  # there is a 0001
    return str(rev)


def upgrade(engine: Any, url: str) -> SchemaUpgrade:
    """Upgrade the database of ``engine`` (at ``url``, named in errors) to the newest revision (see the module
    docstring).

    Raises:
        StoreError: a revision this maslow does not know, tables made before migrations with other columns, or the
        database failed.
    """
    require("alembic", "serve")
    import sqlalchemy as sa
    from alembic import command

    where = safe_url(url)
    try:
        with _locked(engine, url) as conn:
            cfg = alembic_config(conn)
            before = _revision(conn, where)
            stamped = before is None and _baseline_tables(conn, where)
            if stamped:
                command.stamp(cfg, BASELINE)
            command.upgrade(cfg, "head")
            after = _revision(conn, where)
    except sa.exc.SQLAlchemyError as e:
        raise StoreError(f"database {where}: could not open it or upgrade the review tables "
                         f"({type(e).__name__}: {getattr(e, 'orig', None) or e})") from None
    assert after is not None
    return SchemaUpgrade(where, before, stamped, after)


def schema_state(engine: Any, url: str) -> SchemaState:
    """Where the database of ``engine`` stands (nothing written). A SQLite file that does not exist is ``missing``
    (the caller does not make an engine for it: pass None).

    Raises:
        StoreError: the database failed.
    """
    require("alembic", "serve")
    import sqlalchemy as sa

    where, newest = safe_url(url), head()
    if engine is None:
        return SchemaState(where, None, newest, "missing")
    try:
        with engine.connect() as conn:
            try:
                rev = _revision(conn, where)
            except StoreError:
                rev, state = _current(conn), "newer"
            else:
                tables = set(sa.inspect(conn).get_table_names()) & set(BASELINE_COLUMNS)
                state = ("current" if rev == newest else "behind") if rev is not None else \
                    "unversioned" if tables else "empty"
    except sa.exc.SQLAlchemyError as e:
        raise StoreError(f"database {where}: {type(e).__name__}: {getattr(e, 'orig', None) or e}") from None
    return SchemaState(where, rev, newest, state)


def _current(conn: Any) -> str | None:
    """The revision recorded in the database (None: none)."""
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    return ", ".join(heads) if heads else None


def _revision(conn: Any, where: str) -> str | None:
    """``_current``, refused when this maslow does not know it."""
    from alembic.script import ScriptDirectory

    rev = _current(conn)
    if rev is None:
        return None
    script = ScriptDirectory.from_config(alembic_config())
    known = {s.revision for s in script.walk_revisions()}
    if any(r not in known for r in rev.split(", ")):
        raise StoreError(f"database {where}: its review tables are at revision {rev}, which this maslow does not "
                         f"know (it knows up to {script.get_current_head()}): a newer maslow upgraded them; use "
                         "that maslow, or another --db")
    return rev


def _baseline_tables(conn: Any, where: str) -> bool:
    """Whether the database has the review tables as ``create_all`` made them before migrations (False: none of
    them).

    Raises:
        StoreError: only one of them, or one with other columns.
    """
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    present = [t for t in BASELINE_COLUMNS if inspector.has_table(t)]
    if not present:
        return False
    if len(present) < len(BASELINE_COLUMNS):
        missing = sorted(set(BASELINE_COLUMNS) - set(present))
        raise StoreError(f"database {where}: has the table {present[0]} but not {', '.join(missing)}, and no "
                         f"revision in {VERSION_TABLE}: not review tables this maslow can upgrade")
    for table, expected in BASELINE_COLUMNS.items():
        found = [c["name"] for c in inspector.get_columns(table)]
        if sorted(found) != sorted(expected):
            raise StoreError(f"database {where}: table {table} must have the columns {', '.join(expected)} (the "
                             f"review tables made before migrations), got {', '.join(found)}; it has no revision "
                             f"in {VERSION_TABLE}: not review tables this maslow can upgrade")
    return True


@contextlib.contextmanager
def _locked(engine: Any, url: str) -> Iterator[Any]:
    """A connection in a transaction (committed on leaving it) that no other process migrates in at the same time:
    for a SQLite file, a connection of its own in ``BEGIN IMMEDIATE`` (Python's sqlite3 would run DDL outside any
    transaction); for PostgreSQL, an advisory lock; others (an in-memory SQLite database) as they are."""
    import sqlalchemy as sa

    if sqlite_file(url) is not None:
        own = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
        sa.event.listen(own, "connect", _sqlite_manual_transactions)
        sa.event.listen(own, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            with own.begin() as conn:
                yield conn
        finally:
            own.dispose()
        return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        yield conn


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    """Python's sqlite3 starts no transaction itself (the ``begin`` listener does); WAL as the store's engine sets
    it (foreign keys stay off: a migration that rebuilds a table must be able to drop the old one)."""
    dbapi_conn.isolation_level = None
    sqlite_wal(dbapi_conn)
