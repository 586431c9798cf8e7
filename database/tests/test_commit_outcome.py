"""A connection lost during COMMIT: ask the server, never guess (issue #17).

A loopback proxy (`CutProxy` in conftest) sits between the client and a real
server and cuts the connection around the client's ``COMMIT``: ``before``
(the server never sees it: the transaction aborts), ``after`` (the server
commits, the answer is dropped), ``after`` with no new connection possible
(nobody can ask: the outcome is unknown). The retry helpers, transactions and
bulk loads must then report what the server says, run committed work exactly
once, and retry only what the server aborted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from macrostrat.database import (
    Database,
    SessionResetWarning,
    _commit,
    postgres_retry,
    retrying,
)
from macrostrat.database.errors import (
    BulkLoadError,
    CommitOutcomeUnknown,
    UnsafeRetryError,
)
from macrostrat.database.retry import is_transient_error
from macrostrat.database.transfer import bulk_upsert, copy_rows


def _plain(url: Any) -> str:
    from sqlalchemy import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(False)


def count(url: str, table: str = "ledger") -> int:
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def ledger(empty_database_url: str) -> str:
    with psycopg.connect(_plain(empty_database_url), autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id serial PRIMARY KEY, note text)")
        conn.execute("CREATE TABLE loaded (id int PRIMARY KEY, label text)")
    return empty_database_url


@pytest.fixture
def quick_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up asking an unreachable server after 0.3 s instead of 5 s."""
    original = _commit.resolve_outcome

    def fast(reconnect: Any, xid: str, **options: Any) -> Any:
        options["seconds"] = 0.3
        return original(reconnect, xid, **options)

    monkeypatch.setattr(_commit, "resolve_outcome", fast)


@pytest.fixture
def through(ledger: str, cut_proxy: Any) -> Iterator[Callable[..., Database]]:
    """``through(on_commit=…)``: a `Database` whose connections pass a fresh proxy."""
    made: list[Database] = []

    def make(**options: Any) -> Database:
        proxy = cut_proxy(ledger, **options)
        db = Database(proxy.url(ledger))
        db.proxy = proxy  # type: ignore[attr-defined]
        made.append(db)
        return db

    yield make
    for db in made:
        db.engine.dispose()


def insert_one(db: Database, note: str = "x") -> str:
    db.session.execute(text("INSERT INTO ledger (note) VALUES (:n)"), {"n": note})
    return note


# -- db.transaction() --------------------------------------------------------


def test_commit_answer_lost_but_committed_is_a_success(
    through: Callable[..., Database], ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server committed; the answer was cut: the block succeeds, one row."""
    db = through(on_commit="after")
    with (
        caplog.at_level(logging.WARNING, logger="macrostrat.database.commit"),
        db.transaction(),
    ):
        insert_one(db)
    assert db.proxy.commits_seen == 1  # type: ignore[attr-defined]
    assert db.proxy.cut_done  # type: ignore[attr-defined]
    assert count(ledger) == 1
    assert "reports transaction" in caplog.text
    assert "committed" in caplog.text
    # the session goes on, on a new connection, and says what was lost
    with pytest.warns(SessionResetWarning):
        assert db.run_query("SELECT count(*) FROM ledger").scalar() == 1


def test_commit_never_reached_the_server_is_aborted(
    through: Callable[..., Database], ledger: str
) -> None:
    """Cut before COMMIT reached the server: the error says aborted; retryable."""
    db = through(on_commit="before")
    with pytest.raises(Exception) as info, db.transaction():
        insert_one(db)
    assert count(ledger) == 0
    assert is_transient_error(info.value)
    outcomes = [
        getattr(e, "commit_outcome", None)
        for e in (info.value, info.value.__cause__, getattr(info.value, "orig", None))
    ]
    assert "aborted" in outcomes
    assert "aborted: nothing was committed" in "\n".join(
        getattr(info.value, "__notes__", [])
        + getattr(getattr(info.value, "orig", None), "__notes__", [])
    )


def test_commit_outcome_unknown_when_nobody_can_ask(
    through: Callable[..., Database], ledger: str, quick_resolve: None
) -> None:
    """Cut after COMMIT and no new connection possible: `CommitOutcomeUnknown`."""
    db = through(on_commit="after", refuse_after_cut=True)
    with pytest.raises(CommitOutcomeUnknown) as info, db.transaction():
        insert_one(db)
    assert info.value.xid is not None
    assert int(info.value.xid) > 0
    assert "may or may not be committed" in str(info.value)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert not is_transient_error(info.value)
    # the truth, which the error did not deny: the server had committed
    assert count(ledger) == 1


def test_read_only_transaction_costs_no_id(through: Callable[..., Database]) -> None:
    """A transaction that wrote nothing has no id: its lost commit loses nothing."""
    db = through(on_commit="after")
    with pytest.raises(Exception) as info, db.transaction():
        db.session.execute(text("SELECT 1"))
    chain = [info.value, info.value.__cause__, getattr(info.value, "orig", None)]
    assert "no-writes" in [getattr(e, "commit_outcome", None) for e in chain]
    assert is_transient_error(info.value)


# -- the retry helpers -------------------------------------------------------


def _run(helper: str, db: Database, work: Callable[[Database], Any]) -> Any:
    if helper == "run_with_retry":
        return db.run_with_retry(work, base_delay=0)
    if helper == "postgres_retry":

        @postgres_retry(base_delay=0)
        def unit() -> Any:
            with db.transaction():
                return work(db)

        return unit()
    for attempt in retrying(base_delay=0):
        with attempt, db.transaction():
            result = work(db)
    return result


HELPERS = ["run_with_retry", "postgres_retry", "retrying"]


@pytest.mark.parametrize("helper", HELPERS)
def test_retry_does_not_rerun_a_committed_unit(
    helper: str, through: Callable[..., Database], ledger: str
) -> None:
    """The reported defect: a one-row insert ended as two rows. Now: one, once."""
    db = through(on_commit="after")
    calls = []

    def work(d: Database) -> str:
        calls.append(1)
        return insert_one(d, "once")

    assert _run(helper, db, work) == "once"
    assert len(calls) == 1
    assert count(ledger) == 1


@pytest.mark.filterwarnings("ignore::macrostrat.database.SessionResetWarning")
@pytest.mark.parametrize("helper", HELPERS)
def test_retry_reruns_an_aborted_unit(
    helper: str, through: Callable[..., Database], ledger: str
) -> None:
    """COMMIT never reached the server: the unit runs again and commits once."""
    db = through(on_commit="before")
    calls = []

    def work(d: Database) -> str:
        calls.append(1)
        return insert_one(d)

    assert _run(helper, db, work) == "x"
    assert len(calls) == 2
    assert count(ledger) == 1


@pytest.mark.parametrize("helper", HELPERS)
def test_retry_raises_an_unknown_outcome(
    helper: str, through: Callable[..., Database], ledger: str, quick_resolve: None
) -> None:
    db = through(on_commit="after", refuse_after_cut=True)
    calls = []

    def work(d: Database) -> str:
        calls.append(1)
        return insert_one(d)

    with pytest.raises(CommitOutcomeUnknown):
        _run(helper, db, work)
    assert len(calls) == 1
    assert count(ledger) == 1


def test_terminated_backend_during_commit_is_resolved_and_retried(
    ledger: str,
) -> None:
    """``pg_terminate_backend`` while COMMIT runs (a deferred trigger sleeps in it)."""
    with psycopg.connect(_plain(ledger), autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.note = 'slow' THEN PERFORM pg_sleep(20); END IF; "
            "RETURN NULL; END $$;"
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON ledger "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )
    db = Database(ledger)
    calls: list[int] = []
    killed: list[Any] = []

    def terminator() -> None:
        deadline = time.monotonic() + 30
        with psycopg.connect(_plain(ledger), autocommit=True) as conn:
            while time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = 'COMMIT' AND wait_event = 'PgSleep'"
                ).fetchall()
                if rows:
                    killed.extend(rows)
                    return
                time.sleep(0.05)

    def work(d: Database) -> None:
        calls.append(1)
        insert_one(d, "slow" if len(calls) == 1 else "fast")

    thread = threading.Thread(target=terminator)
    thread.start()
    try:
        db.run_with_retry(work, base_delay=0)
    finally:
        thread.join()
        db.engine.dispose()
    assert killed
    assert len(calls) == 2
    with psycopg.connect(_plain(ledger), autocommit=True) as conn:
        notes = [r[0] for r in conn.execute("SELECT note FROM ledger").fetchall()]
    assert notes == ["fast"]


# -- work that commits on its own is refused --------------------------------


def test_retry_refuses_run_sql_that_commits_statement_by_statement(
    ledger: str,
) -> None:
    db = Database(ledger)

    @postgres_retry
    def unit() -> None:
        db.run_sql(
            "INSERT INTO ledger (note) VALUES ('a'); INSERT INTO ledger (note) VALUES ('b')"
        )

    with pytest.raises(UnsafeRetryError, match="nothing was run"):
        unit()
    assert count(ledger) == 0
    # inside one transaction it is fine
    db.run_with_retry(lambda d: d.run_sql("INSERT INTO ledger (note) VALUES ('a')"))
    assert count(ledger) == 1
    db.engine.dispose()


def test_retry_refusal_of_run_sql_commits_no_pending_session_work(
    ledger: str,
) -> None:
    """The session's open transaction is not committed before run_sql refuses."""
    db = Database(ledger)

    @postgres_retry
    def unit() -> None:
        insert_one(db, "pending")  # the default session's open transaction
        db.run_sql("INSERT INTO ledger (note) VALUES ('a')")

    with pytest.raises(UnsafeRetryError, match="nothing was run or committed"):
        unit()
    db.session.rollback()
    assert count(ledger) == 0
    db.engine.dispose()


def test_retry_refuses_a_second_writing_commit(ledger: str) -> None:
    db = Database(ledger)

    @postgres_retry
    def unit() -> None:
        with db.transaction():
            insert_one(db, "first")
        with db.transaction():
            db.session.execute(text("SELECT 1"))  # read-only: allowed
        with db.transaction():
            insert_one(db, "second")

    with pytest.raises(UnsafeRetryError, match="second transaction"):
        unit()
    with psycopg.connect(_plain(ledger), autocommit=True) as conn:
        notes = [r[0] for r in conn.execute("SELECT note FROM ledger").fetchall()]
    assert notes == ["first"]  # the second was rolled back, not committed
    # the session connection is clean afterwards
    assert db.run_query("SELECT count(*) FROM ledger").scalar() == 1
    db.engine.dispose()


def test_attempt_that_committed_is_not_rerun_after_a_later_failure(
    ledger: str,
) -> None:
    """Work committed, then a transient error: re-running would commit it twice."""
    db = Database(ledger)
    calls = []

    @postgres_retry(base_delay=0)
    def unit() -> None:
        calls.append(1)
        with db.transaction():
            insert_one(db)
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(Exception) as info:
        unit()
    assert is_transient_error(info.value)
    assert len(calls) == 1
    assert count(ledger) == 1
    assert any("is committed" in n for n in getattr(info.value, "__notes__", []))
    db.engine.dispose()


# -- bulk loads --------------------------------------------------------------


@pytest.mark.parametrize("operation", ["copy_rows", "bulk_upsert"])
def test_bulk_load_committed_despite_lost_answer(
    operation: str, ledger: str, cut_proxy: Any
) -> None:
    """The reported defect: BulkLoadError claimed a rollback of committed rows."""
    proxy = cut_proxy(ledger, on_commit="after")
    db = Database(proxy.url(ledger))
    rows = [(i, f"r{i}") for i in range(1000)]
    try:
        if operation == "copy_rows":
            assert copy_rows(db, "loaded", rows) == 1000
        else:
            assert bulk_upsert(db, "loaded", rows, ["id"]) == (1000, 0)
    finally:
        db.engine.dispose()
    assert proxy.cut_done
    assert count(ledger, "loaded") == 1000


def test_bulk_load_aborted_says_so(ledger: str, cut_proxy: Any) -> None:
    proxy = cut_proxy(ledger, on_commit="before")
    db = Database(proxy.url(ledger))
    try:
        with pytest.raises(BulkLoadError) as info:
            copy_rows(db, "loaded", [(i, "x") for i in range(1000)])
    finally:
        db.engine.dispose()
    assert "the server reports the transaction aborted" in str(info.value)
    assert count(ledger, "loaded") == 0


def test_bulk_load_unknown_outcome(
    ledger: str, cut_proxy: Any, quick_resolve: None
) -> None:
    proxy = cut_proxy(ledger, on_commit="after", refuse_after_cut=True)
    with (
        psycopg.connect(_plain(proxy.url(ledger))) as conn,
        pytest.raises(CommitOutcomeUnknown) as info,
    ):
        copy_rows(conn, "loaded", [(i, "x") for i in range(1000)])
    assert "the load into loaded" in str(info.value)
    assert not isinstance(info.value, BulkLoadError)
    assert count(ledger, "loaded") == 1000  # it had committed: "unknown" was honest


# -- engines made elsewhere, AUTOCOMMIT -----------------------------------------


def test_an_engine_made_elsewhere_gets_the_same_truth(
    ledger: str, cut_proxy: Any
) -> None:
    """``Database(engine)`` with SQLAlchemy's own engine: a committed unit runs once."""
    from sqlalchemy import create_engine

    proxy = cut_proxy(ledger, on_commit="after")
    engine = create_engine(proxy.url(ledger).set(drivername="postgresql+psycopg"))
    db = Database(engine)
    calls = []

    def work(d: Database) -> None:
        calls.append(1)
        insert_one(d)

    try:
        db.run_with_retry(work, base_delay=0)
    finally:
        engine.dispose()
    assert len(calls) == 1
    assert count(ledger) == 1


def test_retry_refuses_a_statement_on_an_autocommit_connection(ledger: str) -> None:
    db = Database(ledger)

    @postgres_retry
    def unit() -> None:
        with db.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as conn:
            conn.execute(text("INSERT INTO ledger (note) VALUES ('auto')"))

    with pytest.raises(UnsafeRetryError, match="AUTOCOMMIT"):
        unit()
    assert count(ledger) == 0
    # outside a retried unit it is ordinary
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("INSERT INTO ledger (note) VALUES ('auto')"))
    assert count(ledger) == 1
    db.engine.dispose()


def test_savepoint_releases_are_not_counted_as_commits(ledger: str) -> None:
    """``session.commit()`` inside a block and ``savepoint()`` are RELEASEs."""
    db = Database(ledger)

    def work(d: Database) -> None:
        insert_one(d, "a")
        d.session.commit()  # a RELEASE SAVEPOINT inside the block
        with d.savepoint():
            insert_one(d, "b")
        insert_one(d, "c")

    db.run_with_retry(work, base_delay=0)
    assert count(ledger) == 3
    db.engine.dispose()


def test_another_driver_says_unknown_rather_than_retrying(
    ledger: str, cut_proxy: Any
) -> None:
    """psycopg2: the id is not read, so a lost COMMIT is unknown, never re-run."""
    pytest.importorskip("psycopg2", reason="requires the psycopg2 driver")
    proxy = cut_proxy(ledger, on_commit="after")
    db = Database(proxy.url(ledger).set(drivername="postgresql+psycopg2"))
    calls = []

    def work(d: Database) -> None:
        calls.append(1)
        insert_one(d)

    try:
        with pytest.raises(CommitOutcomeUnknown, match="psycopg2"):
            db.run_with_retry(work, base_delay=0)
    finally:
        db.engine.dispose()
    assert len(calls) == 1
    assert count(ledger) == 1  # it had committed: "unknown" was the truth


def test_bulk_load_refused_at_commit_says_so(ledger: str) -> None:
    """A deferred constraint fails at COMMIT: the message says COMMIT was sent."""
    with psycopg.connect(_plain(ledger), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE parent (id int PRIMARY KEY);"
            "CREATE TABLE child (id int, parent int REFERENCES parent "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    db = Database(ledger)
    try:
        with pytest.raises(BulkLoadError) as info:
            copy_rows(db, "child", [(1, 99)])
    finally:
        db.engine.dispose()
    message = str(info.value)
    assert "the server refused the COMMIT and rolled the transaction back" in message
    assert "never sent" not in message
    assert count(ledger, "child") == 0
