"""SQLite (the standard ``sqlite3`` driver): `Database`, the ORM and the SQL runner.

No PostgreSQL needed.  Committed work is checked from an independent
``sqlite3`` connection on a file database; ``sqlite://`` (in memory, one
connection per thread) is checked through the same `Database`.
"""

from __future__ import annotations

import datetime
import io
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlalchemy.exc as sa_exc
from psycopg import sql
from sqlalchemy import Integer, String, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import QueuePool, SingletonThreadPool

from macrostrat.database import Database
from macrostrat.database import create_engine as mdb_create_engine
from macrostrat.database._sql.sqlite_text import render, split_sqlite
from macrostrat.database.errors import (
    BindParameterError,
    IntegrityError,
    InvalidOptionError,
    MacrostratDatabaseError,
    NoResultError,
    OperationalError,
    StatementError,
    StatementNotAllowedError,
)
from macrostrat.database.query import (
    OutputMode,
    QueryResult,
    SQLResults,
    StatementDirective,
    run_fixtures,
    run_query,
    run_sql,
)

TABLE = "CREATE TABLE t (id integer PRIMARY KEY, name text UNIQUE)"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
def fdb(path: Path) -> Iterator[Database]:
    """A file database with the table ``t``."""
    db = Database(f"sqlite:///{path}")
    db.run_sql(TABLE, raise_errors=True)
    yield db
    db.cleanup()


@pytest.fixture
def mdb() -> Iterator[Database]:
    """An in-memory database with the table ``t``."""
    db = Database("sqlite://")
    db.run_sql(TABLE, raise_errors=True)
    yield db
    db.cleanup()


def committed(path: Path, query: str = "SELECT name FROM t ORDER BY id") -> list:
    """What an independent connection sees (committed work only)."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] if len(row) == 1 else row for row in conn.execute(query)]
    finally:
        conn.close()


def names(db: Database) -> list[str]:
    """The names in ``t`` as this thread's session sees them (then committed)."""
    found = db.run_query("SELECT name FROM t ORDER BY id").scalars().all()
    db.session.commit()
    return list(found)


def statuses(res: SQLResults) -> list[str]:
    return [o.status for o in res.outcomes]


def fail_in(
    scope: AbstractContextManager[object], *steps: Callable[[], object]
) -> None:
    """Run ``steps`` inside ``scope``, then raise RuntimeError in it."""
    with scope:
        for step in steps:
            step()
        raise RuntimeError("boom")


# -- the engine ---------------------------------------------------------------


def test_engine_pools_and_transaction_fix(path: Path) -> None:
    mem = mdb_create_engine("sqlite://")
    disk = mdb_create_engine(f"sqlite:///{path}")
    try:
        assert isinstance(mem.pool, SingletonThreadPool)
        assert isinstance(disk.pool, QueuePool)
        for engine in (mem, disk):
            with engine.connect() as conn:
                assert conn.connection.dbapi_connection.isolation_level is None
                with conn.begin():  # transactional DDL: the CREATE is undone
                    conn.exec_driver_sql("CREATE TABLE x (a int)")
                    conn.rollback()
                assert not engine.dialect.has_table(conn, "x")
                conn.exec_driver_sql("CREATE TABLE y (a int)")
                conn.commit()
                with conn.begin():
                    conn.exec_driver_sql("INSERT INTO y VALUES (1)")
                    nested = conn.begin_nested()  # a real SAVEPOINT of the BEGIN
                    conn.exec_driver_sql("INSERT INTO y VALUES (2)")
                    nested.rollback()
                    conn.rollback()
                assert conn.exec_driver_sql("SELECT count(*) FROM y").scalar() == 0
                conn.rollback()
    finally:
        mem.dispose()
        disk.dispose()


def test_engine_transaction_fix_opt_outs(path: Path) -> None:
    legacy = mdb_create_engine(f"sqlite:///{path}", sqlite_transactions=False)
    try:
        with legacy.connect() as conn:
            assert conn.connection.dbapi_connection.isolation_level == ""
            with conn.begin():
                conn.exec_driver_sql("CREATE TABLE x (a int)")
                conn.rollback()
            # pysqlite's own behaviour: the DDL was never in a transaction
            assert legacy.dialect.has_table(conn, "x")
    finally:
        legacy.dispose()
    auto = mdb_create_engine(f"sqlite:///{path}", isolation_level="AUTOCOMMIT")
    try:
        with auto.connect() as conn:
            conn.exec_driver_sql("INSERT INTO x VALUES (1)")
            conn.rollback()  # nothing to roll back: it committed
        assert committed(path, "SELECT a FROM x") == [1]
    finally:
        auto.dispose()


def test_the_runner_works_on_a_plain_sqlalchemy_engine(path: Path) -> None:
    """An engine made without our hooks: each statement still commits on its own."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        res = run_sql(engine, f"{TABLE}; INSERT INTO t (name) VALUES ('a')")
        assert statuses(res) == ["committed", "committed"]
        assert committed(path) == ["a"]
        with engine.connect() as conn:  # pysqlite's setting is given back
            assert conn.connection.dbapi_connection.isolation_level == ""
        # joined: the transaction SQLAlchemy thinks it has is begun for real,
        # so DDL belongs to it (pysqlite alone would have committed it)
        conn = engine.connect()
        seen: list[SQLResults] = []
        sql_text = "CREATE TABLE u (a int); INSERT INTO t (name) VALUES ('b')"
        with pytest.raises(RuntimeError):
            fail_in(conn.begin(), lambda: seen.append(run_sql(conn, sql_text)))
        conn.close()
        assert statuses(seen[0]) == ["executed", "executed"]
        assert committed(path, "SELECT name FROM sqlite_master WHERE name = 'u'") == []
        assert committed(path) == ["a"]
    finally:
        engine.dispose()


# -- splitting ----------------------------------------------------------------------

TRIGGERS = """
CREATE TABLE log (msg text);
-- a trigger body holds semicolons
CREATE TRIGGER t_ins AFTER INSERT ON t
BEGIN
  INSERT INTO log VALUES ('inserted; ' || new.name);
  INSERT INTO log VALUES ('second');
END;
CREATE TEMP TRIGGER t_del AFTER DELETE ON t BEGIN DELETE FROM log; END;
INSERT INTO t (name) VALUES ('a');
"""


def test_trigger_bodies_stay_whole() -> None:
    stmts = split_sqlite(TRIGGERS, origin="x.sql")
    assert [s.line for s in stmts] == [2, 4, 9, 10]
    assert stmts[1].text.startswith("CREATE TRIGGER t_ins")
    assert stmts[1].text.endswith("END")
    assert "'second');\nEND" in stmts[1].text
    assert stmts[2].text == (
        "CREATE TEMP TRIGGER t_del AFTER DELETE ON t BEGIN DELETE FROM log; END"
    )
    long_body = "".join(f"  INSERT INTO log VALUES ({i});\n" for i in range(40))
    stmts = split_sqlite(
        f"CREATE TRIGGER big AFTER INSERT ON t BEGIN\n{long_body}END;\nSELECT 1;"
    )
    assert [s.text.split(None, 1)[0] for s in stmts] == ["CREATE", "SELECT"]
    # an unfinished body is not swallowing the rest
    broken = split_sqlite("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT 2")
    assert [s.text for s in broken] == [
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1",
        "SELECT 2",
    ]


def test_a_trigger_runs(fdb: Database, path: Path) -> None:
    res = fdb.run_sql(TRIGGERS, raise_errors=True)
    assert statuses(res) == ["committed"] * 4
    assert committed(path, "SELECT msg FROM log") == ["inserted; a", "second"]


# -- own transactions ------------------------------------------------------------------

FAILING = """\
INSERT INTO t (name) VALUES ('a');
INSERT INTO t (name) VALUES ('b');
INSERT INTO t (name) VALUES ('a');
INSERT INTO t (name) VALUES ('c');
"""


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_each_statement_commits_on_its_own(
    kind: str, fdb: Database, mdb: Database, path: Path
) -> None:
    db = fdb if kind == "file" else mdb
    res = db.run_sql(FAILING)
    assert statuses(res) == ["committed", "committed", "failed", "committed"]
    assert len(res) == 3
    assert [r.statusmessage for r in res] == ["INSERT 0 1"] * 3
    err = res.errors[0]
    assert isinstance(err, IntegrityError)
    assert isinstance(err, sa_exc.IntegrityError)
    assert isinstance(err.orig, sqlite3.IntegrityError)
    assert (err.index, err.line) == (2, 3)
    assert "statement 3 (line 3) failed: UNIQUE constraint failed: t.name" in str(err)
    assert names(db) == ["a", "b", "c"]
    if kind == "file":
        assert committed(path) == ["a", "b", "c"]


def test_raise_errors_stops_at_the_failure(fdb: Database, path: Path) -> None:
    with pytest.raises(IntegrityError) as info:
        fdb.run_sql(FAILING, raise_errors=True)
    assert info.value.index == 2
    assert committed(path) == ["a", "b"]


def test_a_failure_in_a_file(fdb: Database, path: Path, tmp_path: Path) -> None:
    script = tmp_path / "load.sql"
    script.write_text("-- load\n" + FAILING)
    res = fdb.run_sql(script)
    err = res.errors[0]
    assert (err.source, err.line) == (str(script), 4)
    assert f"statement 3 ({script}, line 4) failed" in str(err)
    assert statuses(res) == ["committed", "committed", "failed", "committed"]
    assert committed(path) == ["a", "b", "c"]


def test_the_sqls_own_transaction_blocks(fdb: Database, path: Path) -> None:
    res = fdb.run_sql(
        "BEGIN; INSERT INTO t (name) VALUES ('a'); INSERT INTO t (name) VALUES ('a');"
        " INSERT INTO t (name) VALUES ('b'); COMMIT;"
        " BEGIN; INSERT INTO t (name) VALUES ('x'); ROLLBACK;"
        " SAVEPOINT s1; INSERT INTO t (name) VALUES ('c'); SAVEPOINT s2;"
        " INSERT INTO t (name) VALUES ('y'); ROLLBACK TO s2; RELEASE s1;"
    )
    assert statuses(res) == [
        "committed",
        "committed",
        "failed",  # as in the sqlite3 shell, the block goes on
        "committed",
        "committed",
        "rolled_back",
        "rolled_back",
        "rolled_back",
        "committed",
        "committed",
        "rolled_back",
        "rolled_back",
        "committed",  # ROLLBACK TO itself ran, in the transaction RELEASE committed
        "committed",
    ]
    assert committed(path) == ["a", "b", "c"]


def test_a_block_left_open_is_rolled_back(
    fdb: Database, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="macrostrat.database.query"):
        res = fdb.run_sql("BEGIN; INSERT INTO t (name) VALUES ('a')")
    assert statuses(res) == ["rolled_back", "rolled_back"]
    assert "left a transaction open" in caplog.text
    assert committed(path) == []
    assert not fdb.session_connection().connection.dbapi_connection.in_transaction


def test_a_list_of_parameter_sets_is_all_or_nothing(fdb: Database, path: Path) -> None:
    res = fdb.run_sql(
        "INSERT INTO t (name) VALUES (:name)",
        [{"name": "a"}, {"name": "b"}, {"name": "a"}],
    )
    assert statuses(res) == ["failed"]
    assert committed(path) == []
    res = fdb.run_sql("INSERT INTO t (name) VALUES (?)", [("a",), ("b",)])
    assert statuses(res) == ["committed"]
    assert res[0].rowcount == 2
    assert committed(path) == ["a", "b"]


def test_use_transaction_false(fdb: Database, path: Path) -> None:
    res = fdb.run_sql(
        "INSERT INTO t (name) VALUES (:name)",
        [{"name": "a"}, {"name": "a"}],
        use_transaction=False,
    )
    assert statuses(res) == ["failed"]
    assert committed(path) == ["a"]  # no savepoint: the first row stayed


# -- joined and atomic ------------------------------------------------------------------


def test_inside_a_transaction_a_failure_undoes_only_itself(
    fdb: Database, path: Path
) -> None:
    with fdb.transaction():
        res = fdb.run_sql(FAILING)
        assert statuses(res) == ["executed", "executed", "failed", "executed"]
        assert committed(path) == []  # not committed yet
        assert fdb.run_query("SELECT count(*) FROM t").scalar() == 3
    assert committed(path) == ["a", "b", "c"]


def test_a_transaction_rolls_back_on_error(fdb: Database, path: Path) -> None:
    with pytest.raises(RuntimeError):
        fail_in(fdb.transaction(), lambda: fdb.run_sql("INSERT INTO t VALUES (1, 'a')"))
    with fdb.transaction(rollback="always"):
        fdb.run_sql("INSERT INTO t (name) VALUES ('b')")
    assert committed(path) == []
    assert names(fdb) == []


def test_nested_transactions_are_savepoints(fdb: Database, path: Path) -> None:
    with fdb.transaction():
        fdb.run_sql("INSERT INTO t (name) VALUES ('a')")
        with pytest.raises(RuntimeError):
            fail_in(
                fdb.transaction(), lambda: fdb.run_sql("INSERT INTO t VALUES (2, 'b')")
            )
        with fdb.transaction():
            fdb.run_sql("INSERT INTO t (name) VALUES ('c')")
        fdb.session.execute(text("INSERT INTO t (name) VALUES ('d')"))
        fdb.session.rollback()  # back to the block's savepoint: only 'd' goes
    assert committed(path) == ["a", "c"]


def test_savepoints(fdb: Database, path: Path) -> None:
    with fdb.savepoint("one") as name:
        assert name == "one"
        fdb.run_sql("INSERT INTO t (name) VALUES ('a')")
    with pytest.raises(RuntimeError):
        fail_in(fdb.savepoint(), lambda: fdb.run_sql("INSERT INTO t VALUES (2, 'b')"))
    with fdb.savepoint(rollback="always"):
        fdb.run_query("INSERT INTO t (name) VALUES ('c')")
    # Outside a transaction each savepoint had one of its own, ended with it.
    assert committed(path) == ["a"]
    assert not fdb.session.in_transaction()
    fdb.run_sql("DELETE FROM t")
    fdb.session.execute(text("INSERT INTO t (name) VALUES ('d')"))  # a transaction
    with fdb.savepoint():
        fdb.run_query("INSERT INTO t (name) VALUES ('e')")
    assert committed(path) == []  # inside it, a savepoint commits nothing
    fdb.session.commit()
    assert committed(path) == ["d", "e"]


def test_atomic_rolls_everything_back(fdb: Database, path: Path) -> None:
    with pytest.raises(IntegrityError) as info:
        fdb.run_sql("CREATE TABLE u (a int);\n" + FAILING, atomic=True)
    assert info.value.index == 3
    assert committed(path) == []
    assert committed(path, "SELECT name FROM sqlite_master WHERE name = 'u'") == []
    res = fdb.run_sql("INSERT INTO t (name) VALUES ('a'); SELECT 1", atomic=True)
    assert statuses(res) == ["committed", "committed"]
    assert committed(path) == ["a"]


def test_atomic_inside_a_transaction_is_a_savepoint(fdb: Database, path: Path) -> None:
    with fdb.transaction():
        fdb.run_sql("INSERT INTO t (name) VALUES ('x')")
        with pytest.raises(IntegrityError):
            fdb.run_sql(FAILING, atomic=True)
        res = fdb.run_sql("INSERT INTO t (name) VALUES ('y')", atomic=True)
        assert statuses(res) == ["executed"]
    assert committed(path) == ["x", "y"]


def test_when_sqlite_rolls_back_the_callers_transaction_it_raises(
    fdb: Database, path: Path
) -> None:
    fdb.run_sql("INSERT INTO t (name) VALUES ('a')")
    with pytest.raises(IntegrityError, match="rolled back the whole transaction"):
        fail_in(
            fdb.transaction(),
            lambda: fdb.run_sql("INSERT INTO t (name) VALUES ('b')"),
            lambda: fdb.run_sql("INSERT OR ROLLBACK INTO t (name) VALUES ('a')"),
        )
    assert committed(path) == ["a"]
    # in the SQL's own block the run goes on, and says what was undone
    res = fdb.run_sql(
        "BEGIN; INSERT INTO t (name) VALUES ('c');"
        " INSERT OR ROLLBACK INTO t (name) VALUES ('a');"
        " INSERT INTO t (name) VALUES ('d')"
    )
    assert statuses(res) == ["rolled_back", "rolled_back", "failed", "committed"]
    assert committed(path) == ["a", "d"]


# -- run_query ------------------------------------------------------------------------


def test_run_query_returns_a_result_and_leaves_no_transaction_open(
    fdb: Database, path: Path
) -> None:
    fdb.run_sql("INSERT INTO t (name) VALUES ('a'), ('b')")
    res = fdb.run_query("SELECT id, name FROM t WHERE name = :n", {"n": "b"})
    assert isinstance(res, QueryResult)
    row = res.one()
    assert (row.id, row.name, row._mapping["name"]) == (2, "b", "b")
    assert fdb.run_query("SELECT name FROM t").scalars().all() == ["a", "b"]
    assert fdb.run_query("SELECT * FROM t").mappings().first() == {
        "id": 1,
        "name": "a",
    }
    ins = fdb.run_query("INSERT INTO t (name) VALUES ('c') RETURNING id")
    assert ins.scalar() == 3
    assert ins.statusmessage == "INSERT 0 1"
    upd = fdb.run_query("UPDATE t SET name = name || '!' WHERE id < 3")
    assert (upd.rowcount, upd.statusmessage) == (2, "UPDATE 2")
    assert committed(path) == ["a!", "b!", "c"]  # each committed on its own
    assert not fdb.session.in_transaction()
    with pytest.raises(IntegrityError):
        fdb.run_query("INSERT INTO t (name) VALUES ('c')")
    fdb.session.execute(text("UPDATE t SET name = 'x' WHERE id = 1"))
    fdb.run_query("UPDATE t SET name = 'y' WHERE id = 2")  # joins that transaction
    assert committed(path) == ["a!", "b!", "c"]
    fdb.session.commit()
    assert committed(path) == ["x", "y", "c"]


def test_run_query_errors(fdb: Database) -> None:
    with pytest.raises(ValueError, match="Multiple queries"):
        fdb.run_query("SELECT 1; SELECT 2")
    with pytest.raises(NoResultError):
        fdb.run_query("-- nothing")
    with pytest.raises(NoResultError, match="swallowed"):
        fdb.run_query("SELECT * FROM nowhere", raise_errors=False)
    with pytest.raises(OperationalError, match="no such table: nowhere") as info:
        fdb.run_query("SELECT * FROM nowhere")
    assert isinstance(info.value.orig, sqlite3.OperationalError)
    fdb.session.rollback()


def test_run_query_on_an_engine_commits(fdb: Database, path: Path) -> None:
    res = run_query(fdb.engine, "INSERT INTO t (name) VALUES ('a') RETURNING name")
    assert res.scalar() == "a"
    assert committed(path) == ["a"]


def test_connections_and_engines(fdb: Database, path: Path) -> None:
    with fdb.engine.connect() as conn:
        res = run_sql(conn, "INSERT INTO t (name) VALUES ('a')")
        assert statuses(res) == ["committed"]
        assert not conn.in_transaction()
        conn.execute(text("INSERT INTO t (name) VALUES ('b')"))  # autobegins
        res = run_sql(conn, "INSERT INTO t (name) VALUES ('c')")
        assert statuses(res) == ["executed"]
        assert committed(path) == ["a"]
        conn.rollback()
    assert committed(path) == ["a"]
    res = run_sql(fdb.engine, "SELECT name FROM t")
    assert res[0].scalars().all() == ["a"]


# -- parameters -----------------------------------------------------------------------


def test_parameter_styles(fdb: Database, path: Path) -> None:
    res = fdb.run_sql(
        "INSERT INTO t (name) VALUES (:a);"
        "INSERT INTO t (name) VALUES (:b);"
        "SELECT ':a', :a, '?', 7 % 3",
        {"a": "x", "b": "y"},
    )
    assert res[-1].one() == (":a", "x", "?", 1)
    res = fdb.run_sql("SELECT ?, ?; SELECT ?2, ?1", ("p", "q"))
    assert [r.one() for r in res] == [("p", "q"), ("q", "p")]
    assert fdb.run_query("SELECT ? + 1", 41).scalar() == 42
    res = fdb.run_sql("SELECT :v; SELECT ?", [{"v": 1}, (2,)])  # one set each
    assert [r.scalar() for r in res] == [1, 2]
    res = fdb.run_sql(
        text("SELECT :a, :b").bindparams(a=1, b=2), {"b": 3}
    )  # text() values, overridden
    assert res[0].one() == (1, 3)
    assert committed(path) == ["x", "y"]


def test_composables_are_spliced(fdb: Database) -> None:
    values = {
        "tbl": sql.Identifier("t"),
        "col": sql.Identifier("name"),
        "lit": sql.Literal("it's"),
        "neg": sql.Literal(-3),
        "day": sql.Literal(datetime.date(2024, 2, 29)),
        "blob": sql.Literal(b"\x00\xff"),
        "nothing": sql.Literal(None),
        "yes": sql.Literal(True),
        "raw": sql.SQL("upper"),
        "n": 5,
    }
    fdb.run_sql("INSERT INTO {tbl} ({col}) VALUES ({lit})", values, raise_errors=True)
    row = fdb.run_query(
        "SELECT {col}, 5-{neg}, {day}, hex({blob}), {nothing}, {yes}, {raw}('a'), :n,"
        " 'in {tbl}' FROM {tbl}",
        values,
    ).one()
    assert tuple(row) == ("it's", 8, "2024-02-29", "00FF", None, 1, "A", 5, 'in "t"')
    composed = sql.SQL("SELECT {}, {}").format(
        sql.Literal("a\\b"), sql.Placeholder("p")
    )
    assert render(composed) == "SELECT 'a\\b', :p"
    assert fdb.run_query(composed, {"p": 2}).one() == ("a\\b", 2)
    with pytest.raises(BindParameterError, match="cannot render"):
        fdb.run_sql("SELECT {x}", {"x": sql.Literal(object())})
    with pytest.raises(BindParameterError, match="needs a psycopg Composable"):
        fdb.run_sql("SELECT * FROM {tbl}", {"tbl": "t"})
    fdb.session.rollback()


def test_instance_parameters(path: Path) -> None:
    db = Database(
        f"sqlite:///{path}", instance_params={"tbl": sql.Identifier("t"), "v": "i"}
    )
    try:
        db.run_sql(TABLE)
        db.run_sql("INSERT INTO {tbl} (name) VALUES (:v)")
        db.run_sql("INSERT INTO {tbl} (name) VALUES (:v)", {"v": "explicit"})
        assert names(db) == ["i", "explicit"]
        assert db.run_query("SELECT count(*) FROM {tbl}").scalar() == 2
        db.session.commit()
    finally:
        db.cleanup()


def test_parameter_errors_name_the_statement(fdb: Database, path: Path) -> None:
    cases = [
        ("INSERT INTO t (name) VALUES (%s)", ("a",), "psycopg's placeholder"),
        ("INSERT INTO t (name) VALUES (%(n)s)", {"n": "a"}, "write :name"),
        ("INSERT INTO t (name) VALUES (%(n)s)", None, "write :name"),
        ("INSERT INTO t (name) VALUES (:n)", None, "no value for parameter 'n'"),
        ("INSERT INTO t (name) VALUES (:n)", {"m": 1}, "no value for parameter 'n'"),
        ("INSERT INTO t (name) VALUES (:n)", ("a",), "positional parameters"),
        ("INSERT INTO t (name) VALUES (?)", None, "got no parameters"),
        ("INSERT INTO t (name) VALUES (?)", ("a", "b"), "got 2 parameter"),
        ("INSERT INTO t (name) VALUES (?)", {"n": 1}, "named parameters"),
        ("SELECT :a, ?", {"a": 1}, "mixes"),
    ]
    for statement, params, message in cases:
        with pytest.raises(BindParameterError, match=message) as info:
            fdb.run_sql("SELECT 1;\n" + statement, params)
        assert info.value.index == 1
        assert info.value.line == 2
        assert "statement 2 (line 2)" in str(info.value)
    assert committed(path) == []  # nothing ran: errors come before execution


# -- fixtures, output and hooks ---------------------------------------------------------


def test_run_fixtures(fdb: Database, path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    folder.mkdir()
    (folder / "01-a.sql").write_text("INSERT INTO t (name) VALUES (:v);\n")
    (folder / "02-b.sql").write_text(
        "INSERT INTO t (name) VALUES ('b');\nINSERT INTO t (name) VALUES (:v);\n"
        "INSERT INTO t (name) VALUES ('c');\n"
    )
    out = io.StringIO()
    res = fdb.run_fixtures(folder, {"v": "a"}, output_file=out)
    assert statuses(res) == ["committed", "committed", "failed", "committed"]
    assert res.outcomes[2].source == str(folder / "02-b.sql")
    assert res.outcomes[2].line == 2
    assert committed(path) == ["a", "b", "c"]
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Running fixtures in {folder}"
    assert lines[1] == "01-a.sql"
    assert "02-b.sql" in lines
    assert "  UNIQUE constraint failed: t.name" in lines
    with pytest.raises(IntegrityError):
        run_fixtures(fdb.engine, folder, {"v": "z"}, raise_errors=True)
    assert committed(path) == ["a", "b", "c", "z"]


def test_output_modes(fdb: Database, capsys: pytest.CaptureFixture[str]) -> None:
    script = "SELECT 1; SELECT * FROM nowhere; SELECT\n  2"
    fdb.run_sql(script)
    assert capsys.readouterr() == ("", "")
    out = io.StringIO()
    fdb.run_sql(script, output_mode=OutputMode.SUMMARY, output_file=out)
    assert out.getvalue().splitlines() == [
        "SELECT 1",
        "SELECT * FROM nowhere",
        "  no such table: nowhere",
        "SELECT",
    ]
    out = io.StringIO()
    fdb.run_sql(script, output_mode="errors", output_file=out)
    assert out.getvalue().splitlines() == [
        "SELECT * FROM nowhere",
        "  no such table: nowhere",
    ]
    out = io.StringIO()
    fdb.run_sql(script, output_mode="all", output_file=out)
    assert "SELECT\n  2\n" in out.getvalue()
    fdb.run_sql("SELECT 3", output_mode="summary")
    assert capsys.readouterr().err == "SELECT 3\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal(
    fdb: Database, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    folder = tmp_path / "many"
    folder.mkdir()
    for part in ("a", "b"):
        (folder / f"{part}.sql").write_text(
            "".join(f"INSERT INTO t (name) VALUES ('{part}{i}');\n" for i in range(150))
        )
    (folder / "c.sql").write_text("INSERT INTO t (name) VALUES ('a1');\n")
    out = Terminal()
    res = fdb.run_fixtures(folder, output_mode="errors", output_file=out)
    assert len(res) == 300
    assert statuses(res)[-1] == "failed"
    shown = out.getvalue()
    assert "\x1b[" in shown  # styled, through the progress bar's console
    for line in ("a.sql", "b.sql", "c.sql", "UNIQUE constraint failed: t.name"):
        assert line in shown
    assert len(committed(path)) == 300


def test_hooks(fdb: Database, path: Path) -> None:
    def transform(ctx):  # type: ignore[no-untyped-def]
        if ctx.index == 1:
            return [StatementDirective.skipped()]
        if ctx.index == 2:
            return [StatementDirective("SELECT :v", {"v": 10}, label="ten")]
        return None

    out = io.StringIO()
    res = fdb.run_sql(
        "SELECT 1; SELECT 2; SELECT 3", transform_statement=transform, output_file=out
    )
    assert [r.scalar() for r in res] == [1, 10]
    assert statuses(res) == ["committed", "skipped", "committed"]
    assert out.getvalue().splitlines() == ["SELECT 1", "SELECT 2", "ten"]

    seen: list[BaseException] = []

    def recover(ctx, err, connectable):  # type: ignore[no-untyped-def]
        seen.append(err)
        return [StatementDirective("INSERT INTO t (name) VALUES ('recovered')")]

    with fdb.transaction():
        res = fdb.run_sql(
            "INSERT INTO t (name) VALUES ('a'); INSERT INTO t (name) VALUES ('a')",
            on_error=recover,
            raise_errors=True,
        )
    assert statuses(res) == ["executed", "failed", "executed"]
    assert res.outcomes[1].recovered
    assert isinstance(seen[0], IntegrityError)
    assert committed(path) == ["a", "recovered"]


def test_yield_results(fdb: Database, path: Path) -> None:
    gen = fdb.run_sql(
        "INSERT INTO t (name) VALUES ('a'); SELECT name FROM t", yield_results=True
    )
    assert not isinstance(gen, list)
    results = list(gen)
    assert results[-1].scalars().all() == ["a"]
    assert committed(path) == ["a"]


# -- the ORM, sessions and threads ------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "thing"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, unique=True)


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_orm_on_a_table_made_by_run_sql(kind: str, path: Path) -> None:
    db = Database(f"sqlite:///{path}" if kind == "file" else "sqlite://")
    try:
        db.run_sql(
            "CREATE TABLE thing (id integer PRIMARY KEY, name text UNIQUE)",
            raise_errors=True,
        )
        db.session.add(Thing(name="a"))
        db.session.commit()
        db.session.add(Thing(name="b"))
        db.session.flush()
        assert db.run_query("SELECT count(*) FROM thing").scalar() == 2
        db.session.rollback()
        db.session.add(Thing(name="a"))
        with pytest.raises(sa_exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        with db.transaction():
            db.session.add(Thing(name="c"))
            db.run_sql("INSERT INTO thing (name) VALUES ('d')")
        assert [t.name for t in db.session.query(Thing).order_by(Thing.id)] == [
            "a",
            "c",
            "d",
        ]
        db.session.commit()
        if kind == "file":
            assert committed(path, "SELECT name FROM thing ORDER BY id") == [
                "a",
                "c",
                "d",
            ]
        # run_sql commits the session's pending work first, as on PostgreSQL
        db.session.add(Thing(name="e"))
        db.run_sql("SELECT 1")
        assert db.run_query("SELECT count(*) FROM thing").scalar() == 4
        db.session.commit()
    finally:
        db.cleanup()


def test_session_state_carries_over(mdb: Database) -> None:
    """One session connection: TEMP tables and PRAGMAs live from call to call."""
    mdb.run_sql("CREATE TEMP TABLE scratch (a int); PRAGMA foreign_keys = ON")
    mdb.run_sql("INSERT INTO scratch VALUES (1)")
    assert mdb.run_query("SELECT count(*) FROM scratch").scalar() == 1
    assert mdb.run_query("PRAGMA foreign_keys").scalar() == 1
    mdb.session.commit()


def test_threads_have_their_own_sessions(fdb: Database, path: Path) -> None:
    errors: list[BaseException] = []
    connections: dict[int, int] = {}
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        try:
            fdb.run_sql("CREATE TEMP TABLE mine (a int)")
            fdb.run_sql("INSERT INTO mine VALUES (?)", (n,))
            barrier.wait(timeout=30)
            connections[n] = id(fdb.session_connection().connection.dbapi_connection)
            with fdb.transaction():
                fdb.run_sql("INSERT INTO t (name) VALUES (:n)", {"n": f"sql{n}"})
                fdb.session.add(Thing(name=f"orm{n}"))
            fdb.session.add(Thing(name=f"late{n}"))
            fdb.session.commit()
            # each thread sees its own TEMP table, with its own row
            assert fdb.run_query("SELECT a FROM mine").scalars().all() == [n]
            fdb.session.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            fdb.reset_session()

    fdb.run_sql("CREATE TABLE thing (id integer PRIMARY KEY, name text UNIQUE)")
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(set(connections.values())) == 4
    assert sorted(committed(path)) == [f"sql{n}" for n in range(4)]
    assert sorted(committed(path, "SELECT name FROM thing")) == sorted(
        [f"orm{n}" for n in range(4)] + [f"late{n}" for n in range(4)]
    )


# -- what cannot work ---------------------------------------------------------------------


def test_copy_blocks_and_meta_commands_are_refused(fdb: Database, path: Path) -> None:
    copy_in = "INSERT INTO t (name) VALUES ('a');\nCOPY t (name) FROM stdin;\nb\n\\.\n"
    with pytest.raises(StatementNotAllowedError, match="SQLite has no COPY") as info:
        fdb.run_sql(copy_in)
    assert (info.value.index, info.value.line) == (1, 2)
    with pytest.raises(StatementNotAllowedError, match="SQLite has no COPY"):
        fdb.run_sql("COPY t TO STDOUT")
    with pytest.raises(StatementNotAllowedError, match=r"\\connect is not supported"):
        fdb.run_sql("INSERT INTO t (name) VALUES ('a');\n\\connect other\n")
    assert committed(path) == []  # refused before anything ran
    res = fdb.run_sql("\\restrict abc\nINSERT INTO t (name) VALUES ('a');")
    assert statuses(res) == ["skipped", "committed"]


def test_transaction_control_inside_a_transaction_is_refused(fdb: Database) -> None:
    with fdb.transaction():
        for statement in ("BEGIN", "COMMIT", "ROLLBACK", "VACUUM"):
            with pytest.raises(StatementNotAllowedError):
                fdb.run_sql(statement)
    with pytest.raises(StatementNotAllowedError, match="atomic=True"):
        fdb.run_sql("BEGIN; SELECT 1; COMMIT", atomic=True)
    assert statuses(fdb.run_sql("VACUUM")) == ["committed"]


def test_bulk_copy_operations_say_they_need_postgresql(fdb: Database) -> None:
    for call in (
        lambda: fdb.copy_rows("t", [(1, "a")]),
        lambda: fdb.bulk_upsert("t", [(1, "a")], ["id"]),
        lambda: fdb.copy_to("t"),
        lambda: fdb.copy_to("t", io.BytesIO()),
    ):
        with pytest.raises(InvalidOptionError, match=r"needs a postgresql\+psycopg"):
            call()
    err = InvalidOptionError("x")
    assert isinstance(err, MacrostratDatabaseError)
    assert isinstance(err, TypeError)


def test_an_interrupted_statement_always_raises(fdb: Database) -> None:
    raw = fdb.session_connection().connection.dbapi_connection
    forever = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM n"
    )
    timer = threading.Timer(0.2, raw.interrupt)
    timer.start()
    try:
        with pytest.raises(OperationalError, match="interrupted") as info:
            fdb.run_sql(f"{forever}; SELECT 1")  # raise_errors=False: still raised
    finally:
        timer.cancel()
    assert info.value.index == 0
    assert fdb.run_query("SELECT 2").scalar() == 2
    fdb.session.commit()


def test_postgresql_only_sql_fails_as_sqlites_error(fdb: Database) -> None:
    res = fdb.run_sql("SELECT ST_MakePoint(1, 2); SELECT 1::int; SELECT 1")
    assert statuses(res) == ["failed", "failed", "committed"]
    for err in res.errors:
        assert isinstance(err, OperationalError)
        assert isinstance(err, StatementError)
        assert isinstance(err.orig, sqlite3.OperationalError)
    assert "no such function: ST_MakePoint" in str(res.errors[0])
    assert 'unrecognized token: ":"' in str(res.errors[1])
