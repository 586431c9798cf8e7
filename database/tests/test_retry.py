"""Retries of whole units of work, provoked by real PostgreSQL failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError
from macrostrat.database.retry import (
    RETRY_ATTEMPTS_ENV,
    RetryEvent,
    RetryPolicy,
    is_transient_error,
    postgres_retry,
    retrying,
)

FAST = {"base_delay": 0.0, "max_delay": 0.0}


@pytest.fixture
def rdb(db: Database) -> Iterator[Database]:
    """The module database with ``acct`` (two rows) and ``log`` recreated."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "DROP TABLE IF EXISTS acct, log;"
                "CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL);"
                "INSERT INTO acct VALUES (1, 100), (2, 100);"
                "CREATE TABLE log (id serial PRIMARY KEY, note text UNIQUE)"
            )
        )
    yield db
    db.cleanup()


def notes(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT note FROM log ORDER BY id")).scalars())


def raise_sqlstate(db: Database, state: str) -> None:
    """Make the server raise an error with SQLSTATE ``state``."""
    db.session.execute(
        text(
            f"DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '{state}'; END $$"
        )
    )


def test_serializable_conflict_is_retried(rdb: Database) -> None:
    """A real 40001 between two SERIALIZABLE sessions re-runs the whole unit."""
    calls: list[int] = []
    events: list[RetryEvent] = []

    def transfer(db: Database) -> int:
        calls.append(1)
        balance = db.session.execute(text("SELECT balance FROM acct WHERE id = 1"))
        value = balance.scalar_one()
        if len(calls) == 1:
            # Another SERIALIZABLE session (another client: another thread,
            # whose commit is not part of this unit of work) changes the row
            # and commits after this transaction took its snapshot.
            def other_client() -> None:
                other = db.engine.connect().execution_options(
                    isolation_level="SERIALIZABLE"
                )
                with other, other.begin():
                    other.execute(
                        text("UPDATE acct SET balance = balance - 10 WHERE id = 1")
                    )

            thread = threading.Thread(target=other_client)
            thread.start()
            thread.join()
        db.session.execute(
            text("UPDATE acct SET balance = :v WHERE id = 1"), {"v": value + 1}
        )
        db.session.execute(text("INSERT INTO log (note) VALUES ('transfer')"))
        return value

    seen = rdb.run_with_retry(
        transfer, isolation_level="SERIALIZABLE", on_retry=events.append, **FAST
    )
    assert len(calls) == 2
    assert seen == 90
    assert [e.attempt for e in events] == [1]
    assert getattr(events[0].error.orig, "sqlstate", None) == "40001"
    assert notes(rdb) == ["transfer"]
    with rdb.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT balance FROM acct WHERE id = 1")).scalar() == 91
        )


def test_real_deadlock_is_retried(rdb: Database) -> None:
    """Two threads locking rows in opposite order: the victim of 40P01 re-runs."""
    barrier = threading.Barrier(2, timeout=10)
    attempts = {1: 0, 2: 0}
    errors: list[BaseException] = []

    def unit(db: Database, first: int, second: int) -> None:
        attempts[first] += 1
        db.session.execute(text("SET LOCAL lock_timeout = '10s'"))
        db.session.execute(text("SET LOCAL statement_timeout = '20s'"))
        db.session.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
        db.session.execute(
            text("SELECT 1 FROM acct WHERE id = :i FOR UPDATE"), {"i": first}
        )
        if attempts[first] == 1:
            barrier.wait()
        db.session.execute(
            text("UPDATE acct SET balance = balance + 1 WHERE id = :i"), {"i": second}
        )
        db.session.execute(
            text("INSERT INTO log (note) VALUES (:n)"), {"n": f"unit {first}"}
        )

    def worker(first: int, second: int) -> None:
        try:
            rdb.run_with_retry(unit, first, second, **FAST)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            rdb.cleanup(dispose_engine=False)

    threads = [
        threading.Thread(target=worker, args=(1, 2)),
        threading.Thread(target=worker, args=(2, 1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(attempts.values()) == [1, 2]
    assert sorted(notes(rdb)) == ["unit 1", "unit 2"]


def test_terminated_connection_is_retried_on_a_new_one(rdb: Database) -> None:
    """pg_terminate_backend during attempt 1: attempt 2 gets a fresh connection."""
    pids: list[int] = []

    def unit(db: Database) -> None:
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        pids.append(pid)
        if len(pids) == 1:
            with db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                admin.commit()
        db.session.execute(text("INSERT INTO log (note) VALUES ('once')"))

    rdb.run_with_retry(unit, **FAST)
    assert len(pids) == 2
    assert pids[0] != pids[1]
    assert notes(rdb) == ["once"]


def test_exhausted_attempts_reraise_last_error_with_count(rdb: Database) -> None:
    calls: list[int] = []

    def always(db: Database) -> None:
        calls.append(1)
        raise_sqlstate(db, "40001")

    with pytest.raises(DBAPIError) as info:
        rdb.run_with_retry(always, attempts=4, **FAST)
    assert len(calls) == 4
    assert info.value.retry_attempts == 4  # type: ignore[attr-defined]
    assert info.value.orig.sqlstate == "40001"  # type: ignore[union-attr]


def test_attempts_from_environment(
    rdb: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RETRY_ATTEMPTS_ENV, "2")
    calls: list[int] = []

    def always(db: Database) -> None:
        calls.append(1)
        raise_sqlstate(db, "40P01")

    with pytest.raises(DBAPIError) as info:
        rdb.run_with_retry(always, **FAST)
    assert len(calls) == 2
    assert info.value.retry_attempts == 2  # type: ignore[attr-defined]
    monkeypatch.setenv(RETRY_ATTEMPTS_ENV, "zero")
    with pytest.raises(InvalidOptionError):
        rdb.run_with_retry(always, **FAST)


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("INSERT INTO acct VALUES (1, 0)", IntegrityError),
        ("SELEC 1", ProgrammingError),
    ],
)
def test_non_transient_errors_are_not_retried(
    rdb: Database, sql: str, error: type[Exception]
) -> None:
    calls: list[int] = []

    def unit(db: Database) -> None:
        calls.append(1)
        db.session.execute(text("INSERT INTO log (note) VALUES ('x')"))
        db.session.execute(text(sql))

    with pytest.raises(error) as info:
        rdb.run_with_retry(unit, **FAST)
    assert calls == [1]
    assert not hasattr(info.value, "retry_attempts")
    assert notes(rdb) == []


def test_no_retry_inside_a_transaction_it_did_not_start(rdb: Database) -> None:
    calls: list[int] = []

    def unit(db: Database) -> None:
        calls.append(1)
        raise_sqlstate(db, "40001")

    with pytest.raises(DBAPIError), rdb.transaction():
        rdb.run_with_retry(unit, **FAST)
    assert calls == [1]


def test_decorator_retries_and_nested_calls_do_not(rdb: Database) -> None:
    calls = {"outer": 0, "inner": 0}

    @postgres_retry(**FAST)
    def inner() -> None:
        calls["inner"] += 1
        if calls["inner"] == 1:
            with rdb.engine.begin() as conn:
                raise_on(conn)

    @postgres_retry(attempts=3, **FAST)
    def outer() -> str:
        calls["outer"] += 1
        inner()
        return "done"

    assert outer() == "done"
    # The inner call ran once per outer attempt and never retried by itself.
    assert calls == {"outer": 2, "inner": 2}


def raise_on(conn: object) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40P01'; END $$")
    )


def test_decorator_does_not_retry_a_connection_already_in_a_transaction(
    rdb: Database,
) -> None:
    calls: list[int] = []

    @postgres_retry(**FAST)
    def unit(conn: object) -> None:
        calls.append(1)
        raise_on(conn)

    with rdb.engine.connect() as conn:
        conn.execute(text("SELECT 1"))  # autobegins a transaction
        with pytest.raises(DBAPIError):
            unit(conn)
    assert calls == [1]


def test_retrying_loop_form(rdb: Database) -> None:
    seen: list[int] = []
    for attempt in retrying(bind=rdb, **FAST):
        with attempt, rdb.transaction():
            seen.append(attempt.number)
            rdb.session.execute(text("INSERT INTO log (note) VALUES (:n)"), {"n": "a"})
            if attempt.number < 3:
                raise_sqlstate(rdb, "40001")
    assert seen == [1, 2, 3]
    assert notes(rdb) == ["a"]


def test_is_transient_error_and_policy_validation() -> None:
    assert not is_transient_error(ValueError("x"))
    with pytest.raises(InvalidOptionError):
        RetryPolicy(attempts=0)
    with pytest.raises(InvalidOptionError):
        postgres_retry(tries=3)
    policy = RetryPolicy(base_delay=0.1, max_delay=0.3)
    assert all(0 <= policy.delay(n) <= 0.3 for n in range(1, 10))
    assert all(policy.delay(1) <= 0.1 for _ in range(20))


def test_connection_failures_are_classified_against_a_real_server() -> None:
    """A refused login or a missing database is final; a server that is down is not."""
    import psycopg

    from macrostrat.dinosaur.cluster import LocalCluster

    def connect_error(url: str) -> BaseException:
        with pytest.raises(psycopg.OperationalError) as info:
            psycopg.connect(url, connect_timeout=5).close()
        return info.value

    with LocalCluster(optimize_for_testing=True) as cluster:
        port, password = cluster.port, cluster.password
        base = f"postgresql://postgres:{password}@127.0.0.1:{port}"
        assert not is_transient_error(
            connect_error(f"postgresql://postgres:wrong@127.0.0.1:{port}/postgres")
        )
        assert not is_transient_error(connect_error(f"{base}/no_such_database"))
        cluster.stop()
        assert is_transient_error(connect_error(f"{base}/postgres"))
