"""The review store's Alembic migrations: a new database is made by them, a database made before them (by
``create_all``) is recorded as revision 0001 and kept, a database of a newer maslow is refused, and opening one
database from several threads at once makes its tables once."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

import sqlalchemy as sa

from maslow.errors import MaslowError
from maslow.store import migrations
from maslow.store.reviews import ReviewStore, StoreError, database_url, metadata, sqlite_file, sqlite_url_parts
from tests.helpers import run_cli


def _old_tables(drop: str | None = None) -> Any:
    """The review tables exactly as ``ReviewStore.__init__`` defined them before migrations (it ran
    ``meta.create_all(engine)`` on every open); ``drop``: without that column of ``review_decisions``."""
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
    decisions = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("session_id", sa.Integer, sa.ForeignKey("review_sessions.id"), nullable=False, index=True),
        sa.Column("finding_key", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=False, default=""),
        sa.Column("reviewer", sa.Text, nullable=False, default=""),
        sa.Column("decided", sa.String(40), nullable=False),
    ]
    sa.Table("review_decisions", meta, *(c for c in decisions if c.name != drop))
    return meta


def _old_database(path: Path, *, drop: str | None = None) -> str:
    """A database as the code before migrations left it: ``create_all``, one session with two decisions on
    finding 3 and one on finding 5 (``drop``: without that column of ``review_decisions``)."""
    meta = _old_tables(drop)
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    meta.create_all(engine)
    if drop is None:
        s, d = meta.tables["review_sessions"], meta.tables["review_decisions"]
        with engine.begin() as conn:
            conn.execute(s.insert().values(issues_path="/x/issues.json", issues_hash="h" * 64, truth="shapes@1",
                                           truth_hash="t" * 64, n_findings=9, created="2024-01-01T00:00:00Z"))
            for key, status, label in [(3, "accepted", "circle"), (5, "rejected", None), (3, "skipped", None)]:
                conn.execute(d.insert().values(session_id=1, finding_key=key, status=status, label=label,
                                               note="n", reviewer="ann", decided="2024-01-01T00:00:01Z"))
    engine.dispose()
    return url


def _schema(url: str) -> dict[str, Any]:
    """Every review table's columns (name, type, nullable, key), indexes, unique columns and foreign keys."""
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        out = {}
        for t in ("review_sessions", "review_decisions"):
            out[t] = {
                "columns": sorted((c["name"], str(c["type"]), c["nullable"], c.get("primary_key", 0))
                                  for c in insp.get_columns(t)),
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                  for i in insp.get_indexes(t)),
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
                "foreign": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                                  for f in insp.get_foreign_keys(t)),
            }
        return out
    finally:
        engine.dispose()


def _version(path: Path) -> list[tuple[str]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT version_num FROM {migrations.VERSION_TABLE}").fetchall()
    finally:
        con.close()


def test_a_new_database_gets_the_tables_create_all_made(tmp_path: Path) -> None:
    """Revision 0001 makes exactly the tables the code before migrations made (so recording such a database as
    0001 is right), and the store's own table definitions (``metadata``) are those of the newest revision."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with ReviewStore(url) as store:
        assert (store.schema.before, store.schema.stamped, store.schema.after) == (None, False, migrations.head())
    old = _old_database(tmp_path / "old.db")
    assert _schema(url) == _schema(old)
    current = tmp_path / "metadata.db"
    engine = sa.create_engine(f"sqlite:///{current}")
    metadata().create_all(engine)
    engine.dispose()
    assert _schema(f"sqlite:///{current}") == _schema(url)
    assert _version(tmp_path / "new.db") == [(migrations.head(),)]
    assert {c for cols in migrations.BASELINE_COLUMNS.values() for c in cols} == \
        {c.name for t in _old_tables().tables.values() for c in t.columns}
    # and the revision goes back down: the downgrade drops what the upgrade made
    from alembic import command

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "base")
    assert not {"review_sessions", "review_decisions"} & set(sa.inspect(engine).get_table_names())
    engine.dispose()
    with ReviewStore(url) as store:  # made again
        assert store.schema.before is None and store.schema.after == migrations.head()


def test_a_database_made_before_migrations_is_stamped_and_keeps_its_decisions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = _old_database(path)
    with ReviewStore(url) as store:
        assert (store.schema.before, store.schema.stamped, store.schema.after) == (None, True, migrations.head())
        session = store.find_session("h" * 64)
        assert session is not None and (session.truth, session.truth_hash, session.n_findings) == \
            ("shapes@1", "t" * 64, 9)
        assert [(d.key, d.status, d.label, d.reviewer) for d in store.history(session.id)] == \
            [(3, "accepted", "circle", "ann"), (5, "rejected", None, "ann"), (3, "skipped", None, "ann")]
        assert {k: d.status for k, d in store.decisions(session.id).items()} == {3: "skipped", 5: "rejected"}
        store.decide(session.id, 5, "accepted", reviewer="bob")
    assert _version(path) == [(migrations.head(),)]
    with ReviewStore(url) as store:  # opened again: already at its revision, nothing stamped, the decisions kept
        assert (store.schema.before, store.schema.stamped) == (migrations.head(), False)
        assert store.decisions(1)[5].reviewer == "bob" and len(store.history(1)) == 4
    code, out = run_cli(["review", "db", "current", "--db", url, "--json"])
    assert code == 0 and json.loads(out)["state"] == "current"


def test_tables_made_before_migrations_with_other_columns_are_refused(tmp_path: Path) -> None:
    """Tables named like the review tables but not theirs are not recorded as revision 0001 (a later migration
    would fail on them, or worse): the store refuses them and writes nothing."""
    url = _old_database(tmp_path / "other.db", drop="reviewer")
    with pytest.raises(StoreError, match=r"other\.db: table review_decisions must have the columns .*reviewer"):
        ReviewStore(url)
    half = tmp_path / "half.db"
    con = sqlite3.connect(half)
    con.execute("CREATE TABLE review_sessions (id INTEGER PRIMARY KEY)")
    con.close()
    with pytest.raises(StoreError, match="has the table review_sessions but not review_decisions"):
        ReviewStore(f"sqlite:///{half}")
    for path in (tmp_path / "other.db", half):
        con = sqlite3.connect(path)
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        con.close()
        assert migrations.VERSION_TABLE not in names
    code, out = run_cli(["review", "db", "current", "--db", url, "--json"])
    assert code == 0 and json.loads(out)["state"] == "unversioned"


def _future_migrations(tmp_path: Path) -> Any:
    """This maslow's migrations plus a revision a newer maslow might ship: review_sessions gains a ``title``
    column filled from the ISSUES.json's name (a table rebuilt on SQLite: ``batch_alter_table``)."""
    folder = tmp_path / "future_migrations"
    shutil.copytree(Path(migrations.__file__).parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "0002_session_title.py").write_text('''
import sqlalchemy as sa
from alembic import op

revision = "0002_session_title"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("review_sessions") as batch:
        batch.add_column(sa.Column("title", sa.Text, nullable=False, server_default=""))
    op.execute("UPDATE review_sessions SET title = issues_path")


def downgrade() -> None:
    with op.batch_alter_table("review_sessions") as batch:
        batch.drop_column("title")
''')
    cfg = migrations.alembic_config()
    cfg.set_main_option("script_location", str(folder))
    return cfg


def test_a_database_upgraded_by_a_newer_maslow_is_refused_and_kept(tmp_path: Path) -> None:
    """An old database stamped and upgraded to a newer maslow's revision keeps every row through both; this
    maslow then refuses it, naming the database and the revision, and the CLI exits with code 2."""
    from alembic import command

    path = tmp_path / "newer.db"
    url = _old_database(path)
    ReviewStore(url).close()  # stamped 0001
    cfg = _future_migrations(tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    engine.dispose()
    con = sqlite3.connect(path)
    assert con.execute("SELECT id, title, truth_hash FROM review_sessions").fetchall() == \
        [(1, "/x/issues.json", "t" * 64)]
    assert con.execute("SELECT count(*) FROM review_decisions").fetchone() == (3,)
    con.close()
    assert _version(path) == [("0002_session_title",)]
    with pytest.raises(StoreError, match=r"newer\.db: its review tables are at revision 0002_session_title, which "
                                         r"this maslow does not know"):
        ReviewStore(url)
    assert _version(path) == [("0002_session_title",)]  # not touched
    for args in (["review", "db", "upgrade", "--db", url], ["review", "status", str(tmp_path / "issues.json"),
                                                              "--db", url]):
        if args[1] == "status":
            (tmp_path / "issues.json").write_text("[]")
        code, out = run_cli(args)
        assert code == 2 and "0002_session_title" in out and "newer.db" in out, out
    code, out = run_cli(["review", "db", "current", "--db", url, "--json"])
    assert code == 0 and json.loads(out) == {"database": url, "revision": "0002_session_title",
                                        "head": migrations.head(), "state": "newer"}


def test_db_commands_report_and_upgrade(tmp_path: Path) -> None:
    """`review db current` writes nothing (a missing SQLite file stays missing); `review db upgrade` makes the
    tables, then finds them current."""
    path = tmp_path / "sub" / "ops.db"
    url = f"sqlite:///{path}"
    code, out = run_cli(["review", "db", "current", "--db", url, "--json"])
    assert code == 0 and json.loads(out)["state"] == "missing" and not path.parent.exists()
    code, out = run_cli(["review", "db", "upgrade", "--db", url, "--json"])
    assert code == 0 and json.loads(out) == {"database": url, "before": None, "stamped": False,
                                        "after": migrations.head()}
    code, out = run_cli(["review", "db", "upgrade", "--db", url, "--json"])
    assert code == 0 and json.loads(out)["before"] == migrations.head()
    empty = tmp_path / "empty.db"  # another application's database: no review tables, not in WAL mode
    con = sqlite3.connect(empty)
    con.execute("CREATE TABLE other (x INTEGER)")
    con.close()
    code, out = run_cli(["review", "db", "current", "--db", f"sqlite:///{empty}", "--json"])
    assert code == 0 and json.loads(out)["state"] == "empty"
    con = sqlite3.connect(empty)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # left as it was
    con.close()
    (tmp_path / "x.json").write_text("[]")
    code, out = run_cli(["review", "db", "current", str(tmp_path / "x.json"), "--json"])  # beside the ISSUES.json
    assert code == 0 and json.loads(out)["database"] == f"sqlite:///{tmp_path / 'x.review.db'}"


def _open_at_once(url: str, n: int) -> tuple[list[Any], list[BaseException]]:
    """``n`` threads open a store on ``url`` at the same moment: what each did to the tables, and the errors."""
    start = threading.Barrier(n)
    done: list[Any] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            with ReviewStore(url) as store:
                done.append(store.schema)
        except MaslowError as e:
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, errors


def test_one_new_database_opened_by_many_at_once_gets_its_tables_once(tmp_path: Path) -> None:
    """Before migrations, stores opened at the same moment on a new SQLite file raced in ``create_all`` ("table
    review_sessions already exists") and in switching it to WAL ("database is locked", which SQLite says at once).
    Now each migrates inside ``BEGIN IMMEDIATE``: the first makes the tables, the others wait and find them."""
    for trial in range(3):
        done, errors = _open_at_once(f"sqlite:///{tmp_path / f'race{trial}.db'}", 6)
        assert errors == []
        assert len(done) == 6 and sum(s.before is None for s in done) == 1
        assert _version(tmp_path / f"race{trial}.db") == [(migrations.head(),)]


@pytest.mark.parametrize(("url", "parts", "file"), [
    pytest.param("sqlite://", ("sqlite://", "", ""), None, id="memory"),
    pytest.param("sqlite:///:memory:", ("sqlite:///", ":memory:", ""), None, id="memory-named"),
    pytest.param("sqlite+pysqlite:///:memory:", ("sqlite+pysqlite:///", ":memory:", ""), None, id="memory-driver"),
    pytest.param("sqlite:///rel/r.db?timeout=30", ("sqlite:///", "rel/r.db", "?timeout=30"), "rel/r.db",
                 id="relative-query"),
    pytest.param("sqlite:////abs/r.db", ("sqlite:///", "/abs/r.db", ""), "/abs/r.db", id="absolute"),
    pytest.param("sqlite+pysqlite:///r.db", ("sqlite+pysqlite:///", "r.db", ""), "r.db", id="driver"),
    pytest.param("postgresql://u:p@h/sqlite:///x", None, None, id="postgresql"),
])
def test_sqlite_urls_are_read_one_way(url: str, parts: tuple[str, str, str] | None, file: str | None) -> None:
    assert sqlite_url_parts(url) == parts
    assert sqlite_file(url) == (None if file is None else Path(file))
    if parts is not None:
        assert "".join(parts) == url


def test_sqlite_urls_with_a_driver_are_handled_as_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sqlite+pysqlite://`` URLs were missed by the prefix checks: an in-memory one was one database per thread
    (a decision made in another thread found no tables), a file's folder was not made, and a relative path in
    maslow.yaml was not taken from the workspace root."""
    with ReviewStore("sqlite+pysqlite:///:memory:") as store:
        session = store.open_session(tmp_path / "i.json", truth="t", n_findings=1, issues_hash="a" * 64)
        errors: list[BaseException] = []

        def decide() -> None:
            try:
                store.decide(session.id, 1, "accepted")
            except MaslowError as e:
                errors.append(e)

        t = threading.Thread(target=decide)
        t.start()
        t.join()
        assert errors == [] and store.decisions(session.id)[1].status == "accepted"
    with ReviewStore(f"sqlite+pysqlite:///{tmp_path / 'new' / 'folder' / 'r.db'}"):
        assert (tmp_path / "new" / "folder" / "r.db").is_file()
    from maslow.store import init_workspace

    init_workspace(tmp_path / "ws", database="sqlite+pysqlite:///state/r.db")
    monkeypatch.chdir(tmp_path / "ws" / ".maslow")
    assert database_url("x.json") == f"sqlite+pysqlite:///{(tmp_path / 'ws').resolve() / 'state' / 'r.db'}"
