"""Database.transaction() and Database.savepoint() against a real server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlalchemy import Integer, text
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError, TransactionError
from macrostrat.database.transactions import (
    ROLLBACK_MODES,
    SessionStack,
    check_rollback_mode,
)


class _Base(DeclarativeBase):
    pass


class _T(_Base):
    __tablename__ = "t"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


@pytest.fixture
def tdb(db: Database) -> Iterator[Database]:
    """The module database with an empty table ``t`` (recreated per test)."""
    with db.engine.begin() as conn:
        conn.execute(
            text("DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY)")
        )
    yield db
    db.cleanup()


def ids(db: Database) -> list[int]:
    """What another connection sees in ``t`` (i.e. what was committed)."""
    with db.engine.connect() as conn:
        return list(conn.execute(text("SELECT id FROM t ORDER BY id")).scalars())


def insert(db: Database, value: int) -> Callable[[], object]:
    """A step inserting ``value`` into ``t`` through the current session."""
    return lambda: db.session.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})


def commit(db: Database) -> Callable[[], None]:
    return lambda: db.session.commit()


def fail(db: Database) -> Callable[[], object]:
    """A step running a statement that fails (ProgrammingError)."""
    return lambda: db.session.execute(text("INSERT INTO missing_table VALUES (1)"))


def fail_and_rollback(db: Database) -> Callable[[], None]:
    """What upstream's run_sql did with a failed statement: catch, session.rollback()."""

    def step() -> None:
        try:
            fail(db)()
        except ProgrammingError:
            db.session.rollback()

    return step


def fail_quietly(db: Database, *, on_connection: bool = False) -> Callable[[], None]:
    """A failed statement whose error is swallowed without any rollback."""

    def step() -> None:
        try:
            if on_connection:
                db.session.connection().execute(text("SELECT * FROM missing_table"))
            else:
                fail(db)()
        except ProgrammingError:
            pass

    return step


def raise_(exc: BaseException) -> Callable[[], None]:
    def step() -> None:
        raise exc

    return step


def run_in(scope: AbstractContextManager[Any], *steps: Callable[[], object]) -> None:
    """Run ``steps`` inside ``scope``."""
    with scope:
        for step in steps:
            step()


def test_commit_on_success_and_rollback_on_error(tdb: Database) -> None:
    with tdb.transaction() as got:
        assert got is tdb
        insert(tdb, 1)()
        assert ids(tdb) == []  # not yet visible elsewhere
    assert ids(tdb) == [1]
    with pytest.raises(ZeroDivisionError):
        run_in(tdb.transaction(), insert(tdb, 2), raise_(ZeroDivisionError()))
    assert ids(tdb) == [1]
    run_in(tdb.transaction(raise_errors=False), insert(tdb, 3), raise_(ValueError()))
    assert ids(tdb) == [1]
    with pytest.raises(KeyboardInterrupt):
        run_in(
            tdb.transaction(rollback="never", raise_errors=False),
            insert(tdb, 4),
            raise_(KeyboardInterrupt()),
        )
    assert ids(tdb) == [1]


def test_rollback_modes(tdb: Database) -> None:
    run_in(tdb.transaction(rollback="always"), insert(tdb, 1))
    assert ids(tdb) == []
    with pytest.raises(RuntimeError):
        run_in(
            tdb.transaction(rollback="never"), insert(tdb, 2), raise_(RuntimeError())
        )
    assert ids(tdb) == [2]


@pytest.mark.parametrize("value", [True, False, "on_error", None])
def test_unknown_rollback_values_are_refused(tdb: Database, value: object) -> None:
    """Weakness 5: rollback=True was accepted and silently meant 'on-error'."""
    with pytest.raises(InvalidOptionError, match="'on-error', 'always', 'never'"):
        tdb.transaction(rollback=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError):
        tdb.savepoint(rollback=value)  # type: ignore[arg-type]
    assert isinstance(InvalidOptionError("x"), TypeError)


def test_swallowed_failure_keeps_the_transaction(tdb: Database) -> None:
    """Weakness 5: upstream's rollback killed the outer transaction, then the exit
    commit raised 'This transaction is inactive' and later work was committed alone."""
    with tdb.transaction():
        insert(tdb, 1)()
        tdb.session.commit()  # releases a savepoint only
        assert ids(tdb) == []
        fail_and_rollback(tdb)()
        insert(tdb, 2)()
        assert ids(tdb) == []  # nothing was auto-committed
    assert ids(tdb) == [1, 2]


def test_always_rolls_back_everything_even_after_a_failure(tdb: Database) -> None:
    """Weakness 5: upstream committed the statements after a swallowed failure."""
    run_in(
        tdb.transaction(rollback="always"),
        insert(tdb, 1),
        commit(tdb),
        fail_and_rollback(tdb),
        insert(tdb, 2),
        commit(tdb),
    )
    assert ids(tdb) == []


def test_unrecovered_failure_is_not_committed_silently(tdb: Database) -> None:
    """A failure nobody rolled back: COMMIT would silently roll back, so raise."""
    with pytest.raises(TransactionError, match="rolled back entirely"):
        run_in(tdb.transaction(), insert(tdb, 1), commit(tdb), fail_quietly(tdb))
    assert ids(tdb) == []
    with pytest.raises(TransactionError):
        run_in(tdb.transaction(), insert(tdb, 1), fail_quietly(tdb, on_connection=True))
    assert ids(tdb) == []


def test_never_keeps_checkpointed_work_after_a_failure(tdb: Database) -> None:
    steps = (insert(tdb, 1), commit(tdb), insert(tdb, 2))
    with pytest.raises(ProgrammingError):
        run_in(tdb.transaction(rollback="never"), *steps, fail(tdb))
    assert ids(tdb) == [1]


def test_never_salvages_a_transaction_with_an_unrecovered_failure(
    tdb: Database, caplog: pytest.LogCaptureFixture
) -> None:
    steps = (insert(tdb, 1), commit(tdb), insert(tdb, 2), fail_quietly(tdb))
    run_in(tdb.transaction(rollback="never"), *steps)
    assert ids(tdb) == [1]
    assert "could not be kept" in caplog.text


def test_a_failing_flush_at_exit_rolls_back_and_explains(tdb: Database) -> None:
    add = lambda value: lambda: tdb.session.add(_T(id=value))  # noqa: E731
    with pytest.raises(TransactionError, match="IntegrityError") as info:
        run_in(tdb.transaction(), insert(tdb, 1), add(1))
    assert isinstance(info.value.__cause__, IntegrityError)
    assert ids(tdb) == []
    run_in(tdb.transaction(rollback="never"), insert(tdb, 2), commit(tdb), add(2))
    assert ids(tdb) == [2]


def test_blocks_run_on_the_session_connection_and_sessions_are_restored(
    tdb: Database,
) -> None:
    tdb.reset_session()
    pool = tdb.engine.pool
    default = tdb.session
    before = pool.checkedout()  # reading db.session opens nothing
    with tdb.transaction():
        inner = tdb.session
        assert inner is not default
        assert isinstance(inner, Session)
        assert inner.connection() is tdb.session_connection()
        seen: list[Session] = []
        thread = threading.Thread(target=lambda: seen.append(tdb.session))
        thread.start()
        thread.join()
        assert seen[0] is not inner  # other threads keep their own session
    assert tdb.session is default
    kept = tdb.session_connection()
    assert not kept.closed  # the session connection is kept
    assert pool.checkedout() == before + 1
    with tdb.transaction():
        assert tdb.session.connection() is kept  # and used again
    tdb.reset_session()
    assert kept.closed
    assert pool.checkedout() == before
    assert tdb.session_connection() is not kept


def test_given_connection_and_nesting(tdb: Database) -> None:
    with tdb.engine.connect() as conn:
        conn.begin()
        run_in(tdb.transaction(connection=conn), insert(tdb, 1))
        assert ids(tdb) == []  # a SAVEPOINT of the caller's transaction
        conn.commit()
    assert ids(tdb) == [1]
    with tdb.transaction():
        insert(tdb, 2)()
        with pytest.raises(KeyError):
            run_in(tdb.transaction(), insert(tdb, 3), raise_(KeyError()))
        run_in(tdb.transaction(), insert(tdb, 4))
        assert ids(tdb) == [1]
    assert ids(tdb) == [1, 2, 4]


def test_savepoint_release_and_rollback(tdb: Database) -> None:
    with tdb.transaction():
        with tdb.savepoint() as name:
            assert name.startswith("sp_")
            insert(tdb, 1)()
        with pytest.raises(ZeroDivisionError):
            run_in(
                tdb.savepoint("my savepoint"),
                insert(tdb, 2),
                raise_(ZeroDivisionError()),
            )
        run_in(tdb.savepoint(rollback="always"), insert(tdb, 3))
        with tdb.savepoint("outer"), tdb.savepoint("inner") as inner:
            assert inner == "inner"
            insert(tdb, 4)()
    assert ids(tdb) == [1, 4]


def test_savepoint_never_commits_the_outer_transaction(tdb: Database) -> None:
    """Inside the session's own transaction a savepoint commits nothing."""
    insert(tdb, 1)()  # the default session's transaction, in progress
    with tdb.savepoint() as first:
        insert(tdb, 2)()
    with tdb.savepoint() as second:
        insert(tdb, 3)()
    assert first != second
    assert ids(tdb) == []  # pending on the default session
    tdb.session.commit()
    assert ids(tdb) == [1, 2, 3]


def test_a_savepoint_outside_any_transaction_leaves_none_open(tdb: Database) -> None:
    """Issue 16: it gets a transaction of its own, ended with the block."""
    with tdb.savepoint():
        insert(tdb, 1)()
    assert ids(tdb) == [1]  # committed with the block
    assert not tdb.session.in_transaction()
    with pytest.raises(ProgrammingError):
        run_in(tdb.savepoint(), insert(tdb, 2), fail(tdb))
    assert ids(tdb) == [1]
    with tdb.engine.connect() as other:  # nothing holds a lock on t
        other.execute(text("SET lock_timeout = '2s'"))
        other.execute(text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
        other.rollback()


def test_savepoint_recovers_from_a_failed_statement(
    tdb: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with tdb.transaction():
        insert(tdb, 1)()
        with pytest.raises(ProgrammingError):
            run_in(tdb.savepoint(), fail(tdb))
        with pytest.raises(TransactionError, match="was not rolled back"):
            run_in(
                tdb.savepoint(), insert(tdb, 5), fail_quietly(tdb, on_connection=True)
            )
        steps = (insert(tdb, 6), commit(tdb), insert(tdb, 7), fail_quietly(tdb))
        run_in(tdb.savepoint(rollback="never"), *steps)
        assert "could not be kept" in caplog.text
        insert(tdb, 2)()
    assert ids(tdb) == [1, 2, 6]


def test_savepoint_gone_raises(tdb: Database) -> None:
    with tdb.engine.connect() as conn:
        conn.begin()
        end_outer = (
            lambda: conn.exec_driver_sql("ROLLBACK"),
            lambda: conn.exec_driver_sql("BEGIN"),
        )
        with pytest.raises(TransactionError, match="no longer exists"):
            run_in(tdb.savepoint(connection=conn), *end_outer)
        conn.rollback()


def test_session_stack_and_modes() -> None:
    """The thread-local stack behind db.session, and the allowed rollback modes."""
    stack = SessionStack()
    assert stack.current() is None
    first, second = Session(), Session()
    stack.push(first)
    stack.push(second)
    stack.pop(first)  # out of order: removed anyway
    assert stack.current() is second
    stack.pop(second)
    stack.pop(second)  # not there: no error
    assert stack.current() is None
    assert ROLLBACK_MODES == ("on-error", "always", "never")
    assert check_rollback_mode("always") == "always"
