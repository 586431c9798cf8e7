"""How run_sql executes: transactions, batches, COPY, cancellation, fixtures.

Tests named ``test_weakness_<n>_…`` pin a fix of the numbered weakness in the
upstream review; each would fail on upstream's behaviour.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.exc as sa_exc
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from macrostrat.database import Database
from macrostrat.database._sql.options import parse_options
from macrostrat.database._sql.runner import Run
from macrostrat.database.errors import StatementError, StatementNotAllowedError
from macrostrat.database.query import (
    StatementDirective,
    run_fixtures,
    run_query,
    run_sql,
)

FIXTURES = Path(__file__).parent / "fixtures" / "run_sql"


@pytest.fixture
def table(db: Database) -> Iterator[str]:
    """An empty table ``t (id int PRIMARY KEY)``, recreated for each test."""
    run_sql(db.engine, "DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY)")
    yield "t"
    db.cleanup()


def ids(db: Database, table: str = "t") -> list[int]:
    """The committed ids of ``table``, seen from a new connection."""
    with db.engine.connect() as conn:
        return list(conn.execute(text(f"SELECT id FROM {table} ORDER BY id")).scalars())


def inserts(*values: int) -> str:
    return ";\n".join(f"INSERT INTO t VALUES ({v})" for v in values)


# -- own transactions ---------------------------------------------------------


def test_each_statement_commits_on_its_own(db: Database, table: str) -> None:
    """A failure inside a batch leaves every other statement committed, once."""
    res = run_sql(db.engine, inserts(1, 2, 3, 4, 2, 5, 6))
    assert [o.status for o in res.outcomes] == ["committed"] * 4 + ["failed"] + [
        "committed"
    ] * 2
    assert res.outcomes[4].line == 5
    assert isinstance(res.outcomes[4].error, sa_exc.IntegrityError)
    assert ids(db) == [1, 2, 3, 4, 5, 6]
    assert len(res) == 6


def test_rerunning_a_schema_file_reports_every_statement(db: Database) -> None:
    """Many "already exists" errors: batches shrink, every outcome is exact."""
    names = [f"rerun_{i}" for i in range(300)]
    schema = ";\n".join(f"CREATE TABLE {n} (id int)" for n in names)
    assert all(o.status == "committed" for o in run_sql(db.engine, schema).outcomes)
    extra = ";\n".join(
        f"CREATE TABLE {n} (id int);\nCREATE TABLE {n}_new (id int)" for n in names[:50]
    )
    res = run_sql(db.engine, schema + ";\n" + extra)
    statuses = [o.status for o in res.outcomes]
    assert statuses[:300] == ["failed"] * 300
    assert statuses[300:] == ["failed", "committed"] * 50
    assert all(
        isinstance(o.error, StatementError)
        and getattr(o.error.orig, "sqlstate", None) == "42P07"
        for o in res.failed
    )
    run_sql(db.engine, ";".join(f"DROP TABLE {n}" for n in names))


def test_begin_commit_blocks_follow_psql(db: Database) -> None:
    res = run_sql(db.engine, FIXTURES / "begin_commit.sql")
    assert [(o.line, o.status) for o in res.outcomes] == [
        (2, "committed"),
        (3, "committed"),  # BEGIN
        (4, "committed"),
        (5, "committed"),
        (6, "committed"),  # COMMIT
        (7, "rolled_back"),  # BEGIN
        (8, "rolled_back"),
        (9, "failed"),  # duplicate key: aborts the block
        (10, "failed"),  # current transaction is aborted
        (11, "rolled_back"),  # COMMIT of a failed block is a ROLLBACK
        (12, "committed"),
    ]
    assert ids(db, "blocks") == [1, 2, 5]


def test_sqlalchemy_connection_without_transaction(db: Database, table: str) -> None:
    with db.engine.connect() as conn:
        run_sql(conn, inserts(1, 1, 2))
        assert not conn.in_transaction()
        assert conn.connection.driver_connection.autocommit is False  # restored
        assert ids(db) == [1, 2]
        conn.execute(text("INSERT INTO t VALUES (3)"))  # SQLAlchemy autobegins
        run_sql(conn, inserts(4))  # joins that transaction
        assert ids(db) == [1, 2]
        conn.commit()
    assert ids(db) == [1, 2, 3, 4]


def test_session_state_does_not_leak_into_the_pool(db: Database) -> None:
    """pg_dump files set search_path to ''; the pooled connection is discarded."""
    before = run_query(db.engine, "SHOW search_path").scalar()
    run_sql(db.engine, "SELECT pg_catalog.set_config('search_path', '', false)")
    assert run_query(db.engine, "SHOW search_path").scalar() == before


# -- joined -------------------------------------------------------------------


def test_weakness_4_pending_work_is_not_committed(db: Database, table: str) -> None:
    """Upstream committed the whole session after every statement."""
    session = Session(bind=db.engine)
    session.execute(text("INSERT INTO t VALUES (1)"))  # pending work of the caller
    res = run_sql(session, inserts(2, 1, 3))
    assert [o.status for o in res.outcomes] == ["executed", "failed", "executed"]
    assert ids(db) == []  # nothing committed behind the caller's back
    assert session.execute(text("SELECT count(*) FROM t")).scalar() == 3
    session.rollback()
    assert ids(db) == []
    session.close()


def test_weakness_5_transaction_survives_a_failed_statement(
    db: Database, table: str
) -> None:
    """Upstream's rollback killed the transaction() block; later statements autocommitted."""
    with db.transaction():
        res = db.run_sql(
            inserts(1, 1, 2)
            + ";\nCOPY t FROM stdin;\n3\nx\n\\.\nINSERT INTO t VALUES (4)"
        )
        assert [o.status for o in res.outcomes] == [
            "executed",
            "failed",
            "executed",
            "failed",
            "executed",
        ]
        assert isinstance(res.outcomes[3].error, sa_exc.DataError)
        assert ids(db) == []
        assert db.run_query("SELECT count(*) FROM t").scalar() == 3
    assert ids(db) == [1, 2, 4]


def test_statements_that_cannot_run_in_a_transaction(db: Database, table: str) -> None:
    name = f"macrostrat_test_nontx_{os.getpid()}"
    res = run_sql(
        db.engine,
        FIXTURES / "non_transactional.sql",
        {"dbname": sql.Identifier(name)},
        raise_errors=True,
    )
    assert [o.statement.split()[0] for o in res.outcomes] == [
        "CREATE",
        "DROP",
        "CREATE",
        "CREATE",
        "VACUUM",
        "REINDEX",
        "DROP",
    ]
    assert res.outcomes[0].statement == f'CREATE DATABASE "{name}"'
    assert all(o.status == "committed" for o in res.outcomes)
    with (
        pytest.raises(StatementNotAllowedError, match=r"statement 2 \(line 2\)"),
        db.transaction(),
    ):
        db.run_sql("INSERT INTO t VALUES (1);\nVACUUM t")
    with pytest.raises(StatementNotAllowedError, match="atomic"):
        run_sql(db.engine, "INSERT INTO t VALUES (1); COMMIT", atomic=True)
    assert ids(db) == []  # refused before anything ran


# -- atomic -------------------------------------------------------------------


def test_atomic_keeps_nothing_on_failure(db: Database, table: str) -> None:
    with pytest.raises(sa_exc.IntegrityError) as info:
        run_sql(db.engine, inserts(1, 2, 3, 2, 4), atomic=True)
    assert info.value.index == 3  # type: ignore[attr-defined]
    assert ids(db) == []
    res = run_sql(db.engine, inserts(1, 2), atomic=True)
    assert [o.status for o in res.outcomes] == ["committed", "committed"]
    with db.transaction():
        db.run_sql(inserts(10))
        with pytest.raises(sa_exc.IntegrityError):
            db.run_sql(inserts(11, 12, 10), atomic=True)
        assert db.run_query("SELECT count(*) FROM t").scalar() == 3
    assert ids(db) == [1, 2, 10]
    with pytest.raises(TypeError, match="always raises"):
        run_sql(db.engine, "SELECT 1", atomic=True, raise_errors=False)


# -- cancellation and lost connections ----------------------------------------------


def _active_sleeps(engine: Engine) -> int:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND query LIKE '%pg_sleep(5%' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 3
    while True:
        with engine.connect() as conn:
            n = conn.execute(text(query)).scalar_one()
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_cancel_from_another_thread_always_raises(db: Database) -> None:
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        timer = threading.Timer(0.3, raw.cancel_safe)
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(sa_exc.OperationalError) as info:
                run_sql(
                    conn, "SELECT 1; SELECT pg_sleep(5); SELECT 2", raise_errors=False
                )
        finally:
            timer.join()
        assert time.monotonic() - started < 4
        assert isinstance(info.value.orig, pg_errors.QueryCanceled)  # type: ignore[attr-defined]
        assert isinstance(info.value, StatementError)
        assert _active_sleeps(db.engine) == 0
        assert run_query(conn, "SELECT 'usable'").scalar() == "usable"


def test_ctrl_c_cancels_the_server_query(db: Database) -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_sql(db.engine, "SELECT pg_sleep(5)")
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 4
    assert _active_sleeps(db.engine) == 0


def test_lost_connection_always_raises(db: Database) -> None:
    with db.engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.commit()

        def kill() -> None:
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})

        timer = threading.Timer(0.3, kill)
        timer.start()
        try:
            with pytest.raises(sa_exc.OperationalError):
                run_sql(conn, "SELECT pg_sleep(5); SELECT 1", raise_errors=False)
        finally:
            timer.join()
    assert run_query(db.engine, "SELECT 1").scalar() == 1  # the pool recovers


# -- fixtures -----------------------------------------------------------------


def test_weakness_23_run_fixtures_paths(db: Database, tmp_path: Path) -> None:
    """Upstream iterated a str path by character and crashed on empty directories."""
    res = run_fixtures(
        db.engine, str(FIXTURES / "schema-dir"), {"name": "one"}, raise_errors=True
    )
    assert [Path(o.source or "").name for o in res.outcomes] == [
        "01-schema.sql",
        "01-schema.sql",
        "02-data.sql",
    ]
    assert run_query(db.engine, "SELECT name FROM fixture1.item").scalar() == "one"
    with pytest.raises(FileNotFoundError, match="nope"):
        run_fixtures(db.engine, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=r"No \.sql files"):
        run_fixtures(db.engine, tmp_path)
    with pytest.raises(ValueError, match=r"not a \.sql file"):
        run_fixtures(db.engine, [FIXTURES / "schema-dir" / "notes.txt"])


def test_run_fixtures_output(db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    run_fixtures(db.session, FIXTURES / "schema-dir", {"name": "two"})
    assert capsys.readouterr() == ("", "")
    out = io.StringIO()
    run_fixtures(
        db.engine, [FIXTURES / "schema-dir"], {"name": "three"}, output_file=out
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == f"Running fixtures in {FIXTURES / 'schema-dir'}"
    assert lines[1] == "01-schema.sql"
    assert "02-data.sql" in lines
    assert "INSERT INTO fixture1.item (name) VALUES (:name)" in lines


# -- exactness after failures (issue 15) ---------------------------------------


@pytest.fixture
def serial(db: Database) -> Iterator[str]:
    """An empty table ``s (id serial PRIMARY KEY, v text)``."""
    run_sql(
        db.engine,
        "DROP TABLE IF EXISTS s; CREATE TABLE s (id serial PRIMARY KEY, v text)",
    )
    yield "s"
    db.reset_session()


def rows(db: Database) -> list[tuple[int, str]]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT id, v FROM s ORDER BY id"))]


def test_a_failure_is_never_replayed(db: Database, serial: str) -> None:
    """The reported example: psql stops at the duplicate, (1, 'a') stays."""
    script = "INSERT INTO s(v) VALUES ('a');\nINSERT INTO s(id, v) VALUES (1, 'b');\nINSERT INTO s(v) VALUES ('c')"
    with pytest.raises(sa_exc.IntegrityError) as info:
        run_sql(db.engine, script, raise_errors=True)
    assert info.value.index == 1  # type: ignore[attr-defined]
    assert info.value.line == 2  # type: ignore[attr-defined]
    assert rows(db) == [(1, "a")]
    res = run_sql(
        db.engine,
        "INSERT INTO s(v) VALUES ('d'); SELECT 1/0; INSERT INTO s(v) VALUES ('e')",
    )
    assert [o.status for o in res.outcomes] == ["committed", "failed", "committed"]
    assert rows(db) == [(1, "a"), (2, "d"), (3, "e")]  # no id was taken twice


def test_joined_and_atomic_runs_report_the_real_failure(
    db: Database, serial: str
) -> None:
    script = "INSERT INTO s(v) VALUES ('a');\nINSERT INTO s(v) VALUES ('b');\nSELEC 1;\nINSERT INTO s(v) VALUES ('c')"
    with pytest.raises(sa_exc.ProgrammingError) as info:
        run_sql(db.engine, script, atomic=True)
    err = info.value
    assert (err.index, err.line, err.orig.sqlstate) == (2, 3, "42601")  # type: ignore[attr-defined]
    assert rows(db) == []
    with db.transaction():
        res = db.run_sql(script)
        statuses = [o.status for o in res.outcomes]
        assert statuses == ["executed", "executed", "failed", "executed"]
        assert res.outcomes[2].error.orig.sqlstate == "42601"  # type: ignore[union-attr]
        # the caller's transaction goes on
        assert db.session.execute(text("SELECT count(*) FROM s")).scalar() == 3
    # psql -1 ran the two INSERTs before the syntax error: their ids are spent.
    assert [r[0] for r in rows(db)] == [3, 4, 5]


def test_run_query_in_a_transaction_undoes_only_itself(
    db: Database, serial: str
) -> None:
    with db.transaction():
        db.run_query("INSERT INTO s(v) VALUES ('kept')")
        with pytest.raises(sa_exc.ProgrammingError):
            db.run_query("SELEC 1")
        with pytest.raises(sa_exc.IntegrityError):
            db.run_query("INSERT INTO s(id, v) VALUES (1, 'dup')")
        assert db.run_query("SELECT v FROM s").scalars().all() == ["kept"]
    assert rows(db) == [(1, "kept")]


def test_block_only_statements_behave_as_in_psql(db: Database, serial: str) -> None:
    res = run_sql(
        db.engine,
        "LOCK TABLE s IN SHARE MODE; DECLARE c CURSOR FOR SELECT 1; "
        "SET LOCAL work_mem = '1MB'; INSERT INTO s(v) SELECT current_setting('work_mem')",
    )
    statuses = [o.status for o in res.outcomes]
    assert statuses == ["failed", "failed", "committed", "committed"]
    assert [o.error.orig.sqlstate for o in res.failed] == ["25P01", "25P01"]  # type: ignore[union-attr]
    assert rows(db)[0][1] != "1MB"  # SET LOCAL outside a block did nothing


def _terminate_soon(db: Database, pid: int, delay: float = 0.5) -> threading.Timer:
    def kill() -> None:
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            other.commit()

    timer = threading.Timer(delay, kill)
    timer.start()
    return timer


def test_a_lost_batch_names_the_statement_that_was_running(
    db: Database, serial: str
) -> None:
    with db.engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.commit()
        timer = _terminate_soon(db, pid)
        try:
            with pytest.raises(sa_exc.OperationalError) as info:
                run_sql(
                    conn,
                    "INSERT INTO s(v) VALUES ('a');\nINSERT INTO s(v) VALUES ('b');\n"
                    "SELECT pg_sleep(5);\nINSERT INTO s(v) VALUES ('c')",
                )
        finally:
            timer.join()
    assert info.value.index == 2  # type: ignore[attr-defined]
    assert info.value.line == 3  # type: ignore[attr-defined]
    assert rows(db) == [(1, "a"), (2, "b")]  # committed before it; nothing after


def test_a_connection_cut_without_an_answer_leaves_the_outcome_unknown(
    db: Database, serial: str
) -> None:
    """The client's socket dies mid-batch: what did not answer is ``unknown``.

    The server holds a batch's results until it flushes them, so after a cut
    the client cannot know how far it got; calling those statements "failed"
    would be a lie: the first one was in fact committed.
    """
    import socket

    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        pid = raw.info.backend_pid
        sock = socket.socket(fileno=os.dup(raw.pgconn.socket))
        timer = threading.Timer(0.5, sock.shutdown, (socket.SHUT_RDWR,))
        timer.start()
        try:
            with pytest.raises(sa_exc.OperationalError) as info:
                run_sql(
                    conn,
                    "INSERT INTO s(v) VALUES ('a');\nSELECT pg_sleep(1);\n"
                    "INSERT INTO s(v) VALUES ('c')",
                )
        finally:
            timer.join()
            sock.close()
    err = info.value
    assert err.index == 0  # type: ignore[attr-defined]
    assert "whether this statement and the next ones" in str(err)
    assert "unknown" in str(err)
    for _ in range(100):  # the server finishes the batch on its own
        with db.engine.connect() as other:
            alive = other.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar()
        if not alive:
            break
        time.sleep(0.05)
    assert (1, "a") in rows(db)


def test_batching_resumes_after_failures(db: Database) -> None:
    """Failures shrink the batches; successes, even alone, grow them again."""
    failing = ";\n".join(["SELECT 1/0"] * 3)
    plain = ";\n".join(f"SELECT {i}" for i in range(40))
    res = run_sql(db.engine, f"{failing};\n{plain};\nSELECT current_query()")
    assert len(res.failed) == 3
    assert "SELECT 39" in res[-1].scalar()  # sent in one message with others


# -- review findings: the truth after faults, hooks, psycopg's state ------------


def test_a_lost_commit_of_the_sqls_own_block_leaves_its_statements_unknown(
    db: Database, serial: str
) -> None:
    """The block's COMMIT was in flight: its statements are not "rolled back"."""
    import socket

    run_sql(
        db.engine,
        "CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;"
        "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON s DEFERRABLE INITIALLY "
        "DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
        raise_errors=True,
    )
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        sock = socket.socket(fileno=os.dup(raw.pgconn.socket))
        timer = threading.Timer(0.5, sock.shutdown, (socket.SHUT_RDWR,))
        timer.start()
        # The runner itself, to read the outcomes after it raised.
        run = Run(
            conn,
            "BEGIN;\nINSERT INTO s(v) VALUES ('a');\nCOMMIT;",
            None,
            parse_options({}, function="run_sql"),
        )
        try:
            with pytest.raises(sa_exc.OperationalError, match="unknown"):
                list(run)
        finally:
            timer.join()
            sock.close()
        seen = run.outcomes()
    assert [o.status for o in seen] == ["unknown", "unknown", "unknown"]
    time.sleep(1.5)  # the server finishes the COMMIT on its own
    assert rows(db) == [(1, "a")]  # "rolled back" would have been a lie


def test_a_failed_commit_of_the_sqls_own_block_rolls_its_statements_back(
    db: Database, serial: str
) -> None:
    run_sql(
        db.engine,
        "CREATE TABLE d (id int UNIQUE DEFERRABLE INITIALLY DEFERRED)",
        raise_errors=True,
    )
    try:
        res = run_sql(
            db.engine,
            "BEGIN; INSERT INTO s(v) VALUES ('a'); INSERT INTO d VALUES (1), (1); "
            "COMMIT; INSERT INTO s(v) VALUES ('b')",
        )
        statuses = [o.status for o in res.outcomes]
        assert statuses == [
            "rolled_back",
            "rolled_back",
            "rolled_back",
            "failed",
            "committed",
        ]
        assert rows(db) == [(2, "b")]
    finally:
        run_sql(db.engine, "DROP TABLE d")


def test_hooks_and_the_end_of_a_run_see_a_usable_connection(
    db: Database, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After a failed batch the aborted block is rolled back before a hook runs."""
    seen: list[object] = []

    def hook(ctx: object, err: object, conn: object) -> None:
        seen.append(run_query(conn, "SELECT count(*) FROM t").scalar())
        return None

    res = run_sql(db.engine, inserts(1, 1, 2), on_error=hook)
    assert seen == [1]
    assert [o.status for o in res.outcomes] == ["committed", "failed", "committed"]
    with caplog.at_level("WARNING", logger="macrostrat.database.query"):
        run_sql(db.engine, inserts(3, 3))  # the run ends on a failed message
    assert not [r for r in caplog.records if "left a transaction open" in r.message]


def test_on_error_recovers_inside_an_atomic_run(db: Database, table: str) -> None:
    def skip(ctx: object, err: object, conn: object) -> list[StatementDirective]:
        return [StatementDirective(skip=True)]

    res = run_sql(db.engine, inserts(1, 1, 2), atomic=True, on_error=skip)
    assert [o.status for o in res.outcomes] == [
        "committed",
        "failed",
        "skipped",
        "committed",
    ]
    assert ids(db) == [1, 2]


def test_a_session_ended_by_the_server_is_reported_with_the_servers_reason(
    db: Database,
) -> None:
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET idle_session_timeout = '100ms'")
        conn.commit()
        time.sleep(0.5)
        with pytest.raises(sa_exc.OperationalError) as info:
            run_sql(conn, "SELECT 1; SELECT 2")
    assert info.value.orig.sqlstate == "57P05"  # type: ignore[union-attr]


def test_deallocate_and_discard_reach_psycopgs_prepared_statements(
    db: Database,
) -> None:
    db.reset_session()
    for i in range(7):  # psycopg prepares it from the 5th run on
        db.session.execute(text("SELECT 1 + :x"), {"x": i})
    db.session.commit()
    for statement in ("DEALLOCATE ALL", "DISCARD ALL"):
        db.run_sql(statement, raise_errors=True)
        for i in range(7):
            assert db.session.execute(text("SELECT 1 + :x"), {"x": i}).scalar() == 1 + i
        db.session.commit()
    db.reset_session()


def test_copy_to_stdout_with_a_comment_before_stdout(db: Database, table: str) -> None:
    res = run_sql(
        db.engine, "INSERT INTO t VALUES (1); COPY t TO /* here */ STDOUT; SELECT 2"
    )
    assert res[1].copy_data == b"1\n"
    assert res[2].scalar() == 2


def test_a_statement_timeout_is_an_ordinary_failure(db: Database, table: str) -> None:
    """As under psql -f: the run goes on after a statement that timed out."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET statement_timeout = '50ms'")
        conn.commit()
        res = run_sql(conn, "SELECT pg_sleep(1); INSERT INTO t VALUES (1)")
        conn.exec_driver_sql("RESET statement_timeout")
        conn.commit()
    assert [o.status for o in res.outcomes] == ["failed", "committed"]
    assert res.failed[0].error.orig.sqlstate == "57014"  # type: ignore[union-attr]
    assert ids(db) == [1]
