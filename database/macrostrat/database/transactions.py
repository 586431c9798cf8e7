"""The connection-level transaction scopes `Database` is built on.

`TransactionScope` and `SavepointScope` are the context managers behind
``Database.transaction()`` and ``Database.savepoint()``: they own the rules for
when work is committed or rolled back, and they bind a `Session` in
create-savepoint mode so that a rollback inside the block never ends the
enclosing transaction. `SessionStack` is the thread-local stack of those
sessions that ``Database.session`` consults.

(Slightly over 400 lines: the two scopes share the session settling and
unwinding helpers defined here.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Literal, TypeVar

from sqlalchemy import Connection, Engine, NestedTransaction, Transaction
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .errors import InvalidOptionError, TransactionError

__all__ = [
    "ROLLBACK_MODES",
    "RollbackMode",
    "SavepointScope",
    "SessionStack",
    "TransactionScope",
    "check_rollback_mode",
    "connection_aborted",
]

log = logging.getLogger(__name__)

RollbackMode = Literal["on-error", "always", "never"]
"""When a transaction scope rolls back: see `TransactionScope`."""

ROLLBACK_MODES: tuple[RollbackMode, ...] = ("on-error", "always", "never")

_INVALID_SAVEPOINT = "3B001"  # SQLSTATE invalid_savepoint_specification

T = TypeVar("T")


def check_rollback_mode(value: object) -> RollbackMode:
    """Return ``value`` if it is a valid rollback mode, else raise.

    Parameters:
        value: the ``rollback=`` argument given to a transaction scope.

    Raises:
        InvalidOptionError: ``value`` is not ``"on-error"``, ``"always"`` or
            ``"never"`` (``True`` and ``False`` are refused too: they were
            silently treated as ``"on-error"`` before).
    """
    if isinstance(value, str) and value in ROLLBACK_MODES:
        return value
    allowed = ", ".join(repr(m) for m in ROLLBACK_MODES)
    raise InvalidOptionError(f"rollback must be one of {allowed}, not {value!r}")


class SessionStack:
    """A thread-local stack of sessions that stand in for a default session.

    Transaction and savepoint scopes push the session they bind on entry and
    pop it on exit; ``Database.session`` returns the top of the stack of the
    calling thread, so other threads keep their own sessions.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _items(self) -> list[Session]:
        items: list[Session] | None = getattr(self._local, "items", None)
        if items is None:
            items = self._local.items = []
        return items

    def push(self, session: Session) -> None:
        """Make ``session`` the current session of this thread."""
        self._items().append(session)

    def pop(self, session: Session) -> None:
        """Remove ``session`` (normally the top) from this thread's stack."""
        items = self._items()
        if items and items[-1] is session:
            items.pop()
        elif session in items:
            items.remove(session)

    def current(self) -> Session | None:
        """The session on top of this thread's stack, or None."""
        items = self._items()
        return items[-1] if items else None


def connection_aborted(connection: Connection) -> bool:
    """True when the server says the connection's transaction has failed.

    Only psycopg 3 exposes the libpq transaction status; for other drivers the
    answer is False and a failed transaction is noticed at COMMIT instead.
    """
    try:
        raw = connection.connection.dbapi_connection
        status = raw.info.transaction_status  # type: ignore[union-attr]
    except Exception:
        return False
    return getattr(status, "name", None) == "INERROR"


def _quiet(action: str, func: Callable[[], object]) -> None:
    """Run ``func()``; log (not raise) its failure: used while cleaning up."""
    try:
        func()
    except Exception as exc:
        log.warning("%s failed while cleaning up: %s", action, exc)


def _unwind_nested(connection: Connection, baseline: NestedTransaction | None) -> None:
    """Roll back the SQLAlchemy savepoints opened on ``connection`` after ``baseline``."""
    nested = connection.get_nested_transaction()
    while nested is not None and nested is not baseline:
        _quiet("rolling back a savepoint", nested.rollback)
        if connection.get_nested_transaction() is nested:
            break
        nested = connection.get_nested_transaction()


def _discard_session(
    session: Session, connection: Connection, baseline: NestedTransaction | None
) -> None:
    """Roll back and close a scope's session, leaving ``connection`` usable."""
    _quiet("rolling back the session", session.rollback)
    _quiet("closing the session", session.close)
    _unwind_nested(connection, baseline)


def _settle_session(
    session: Session, connection: Connection, baseline: NestedTransaction | None
) -> BaseException | None:
    """Commit a scope's session (a RELEASE); on failure discard it and return why."""
    if connection_aborted(connection):
        error: BaseException = TransactionError(
            "a statement failed and was not rolled back to a savepoint"
        )
    else:
        try:
            session.commit()
            return None
        except Exception as exc:
            error = exc
    _discard_session(session, connection, baseline)
    return error


def _as_transaction_error(error: BaseException, what: str) -> TransactionError:
    """Wrap ``error`` (keeping its cause) in a `TransactionError` that says ``what``."""
    if isinstance(error, TransactionError):
        err = TransactionError(f"{error}; {what}")
        err.__cause__ = error.__cause__
        return err
    err = TransactionError(f"{type(error).__name__}: {error}; {what}")
    err.__cause__ = error
    return err


class TransactionScope(Generic[T]):
    """The context manager returned by ``Database.transaction()``.

    On entry it takes ``connection`` (or checks one out of ``engine``, and
    closes it on exit), begins a transaction on it (a SAVEPOINT if the
    connection is already in a transaction), and pushes a `Session` bound to it
    in ``create_savepoint`` mode onto ``sessions``. Inside the block,
    ``session.commit()`` releases a savepoint and ``session.rollback()`` goes
    back to the last one: neither ends the transaction.

    On exit, ``rollback`` decides: ``"always"`` rolls back; ``"on-error"``
    rolls back if the block raised and commits otherwise; ``"never"`` commits
    whatever can be committed even when the block raised: session work that
    cannot be committed (a failed statement nobody rolled back, a failed
    flush) is first rolled back to the session's last ``commit()``, with a
    warning. ``KeyboardInterrupt`` and other non-``Exception`` errors always
    roll back. Under ``"on-error"`` (or when the failure cannot be undone
    through the session), work that cannot be committed is rolled back
    entirely and `TransactionError` is raised: nothing is ever committed
    partially or behind the caller's back (PostgreSQL would silently turn the
    COMMIT of a failed transaction into a ROLLBACK). ``raise_errors=False``
    swallows the block's own ``Exception`` after that decision (never a
    `TransactionError`).

    Parameters:
        engine: where to check a connection out when none is given.
        target: what ``__enter__`` returns (the `Database`).
        sessions: the stack ``Database.session`` reads.
        rollback: ``"on-error"``, ``"always"`` or ``"never"``.
        connection: use this connection instead of a new one (it is not closed).
        raise_errors: re-raise the block's exception after rolling back.
    """

    def __init__(
        self,
        engine: Engine,
        target: T,
        sessions: SessionStack,
        *,
        rollback: RollbackMode = "on-error",
        connection: Connection | None = None,
        raise_errors: bool = True,
    ) -> None:
        self._engine = engine
        self._target = target
        self._sessions = sessions
        self.mode = check_rollback_mode(rollback)
        self._given = connection
        self.raise_errors = raise_errors
        self.connection: Connection | None = None
        self.session: Session | None = None
        self._tx: Transaction | None = None
        self._baseline: NestedTransaction | None = None

    def __enter__(self) -> T:
        conn = self._given if self._given is not None else self._engine.connect()
        try:
            self._tx = conn.begin_nested() if conn.in_transaction() else conn.begin()
        except BaseException:
            if self._given is None:
                conn.close()
            raise
        self.connection = conn
        self._baseline = conn.get_nested_transaction()
        self.session = Session(bind=conn, join_transaction_mode="create_savepoint")
        self._sessions.push(self.session)
        return self._target

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self.session is not None
        assert self.connection is not None
        failed = exc is not None
        interrupted = failed and not isinstance(exc, Exception)
        rollback = (
            interrupted or self.mode == "always" or (self.mode == "on-error" and failed)
        )
        error: BaseException | None = None
        try:
            self._sessions.pop(self.session)
            if rollback:
                self._rollback()
            else:
                error = self._commit()
        finally:
            if self._given is None:
                _quiet("closing the connection", self.connection.close)
        if error is not None:
            if failed:
                error.__context__ = exc
            raise error
        return failed and not interrupted and not self.raise_errors

    def _rollback(self) -> None:
        assert self.session is not None
        assert self._tx is not None
        assert self.connection is not None
        _discard_session(self.session, self.connection, self._baseline)
        if self._tx.is_active:
            _quiet("rolling back", self._tx.rollback)

    def _commit(self) -> BaseException | None:
        """Commit; on failure roll everything back and return the error to raise."""
        assert self.session is not None
        assert self._tx is not None
        assert self.connection is not None
        problem = _settle_session(self.session, self.connection, self._baseline)
        if problem is not None:
            if self.mode == "never" and not connection_aborted(self.connection):
                log.warning(
                    "transaction(rollback='never'): work since the session's last "
                    "commit() could not be kept and was rolled back: %s",
                    problem,
                )
            else:
                self._rollback()
                return _as_transaction_error(
                    problem, "the transaction was rolled back entirely"
                )
        self.session.close()
        if not self._tx.is_active:
            log.warning("the transaction was already ended inside the block")
            return None
        try:
            self._tx.commit()
        except Exception as exc:
            if self._tx.is_active:
                _quiet("rolling back", self._tx.rollback)
            return exc
        return None


class SavepointScope:
    """The context manager returned by ``Database.savepoint()``.

    On entry it issues ``SAVEPOINT <name>`` (quoted) on ``connection`` and
    pushes a `Session` bound to that connection in ``create_savepoint`` mode
    onto ``sessions``; ``__enter__`` returns the savepoint's name.

    On exit it releases the savepoint, or rolls back to it (then releases it)
    when ``rollback`` is ``"always"``, or ``"on-error"`` and the block raised.
    The enclosing transaction is never committed or ended here. Session work
    that cannot be kept (a failed statement nobody rolled back, a failed
    flush) is rolled back to the savepoint, or under ``"never"`` to the
    session's last ``commit()`` with a warning; if the block itself did not
    raise, `TransactionError` then says so (except under ``"never"``).
    Exceptions from the block are always re-raised.

    Parameters:
        connection: the connection holding the enclosing transaction.
        name: the savepoint's name (any text; it is quoted).
        sessions: the stack ``Database.session`` reads.
        rollback: ``"on-error"``, ``"always"`` or ``"never"``.
    """

    def __init__(
        self,
        connection: Connection,
        name: str,
        sessions: SessionStack,
        *,
        rollback: RollbackMode = "on-error",
    ) -> None:
        self.connection = connection
        self.name = name
        self._sessions = sessions
        self.mode = check_rollback_mode(rollback)
        self._quoted = connection.dialect.identifier_preparer.quote_identifier(name)
        self.session: Session | None = None
        self._baseline: NestedTransaction | None = None

    def _exec(self, verb: str) -> None:
        self.connection.exec_driver_sql(f"{verb} {self._quoted}")

    def __enter__(self) -> str:
        self._exec("SAVEPOINT")
        self._baseline = self.connection.get_nested_transaction()
        self.session = Session(
            bind=self.connection, join_transaction_mode="create_savepoint"
        )
        self._sessions.push(self.session)
        return self.name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.session is not None
        failed = exc is not None
        rollback = (
            (failed and not isinstance(exc, Exception))
            or self.mode == "always"
            or (self.mode == "on-error" and failed)
        )
        self._sessions.pop(self.session)
        problem: BaseException | None = None
        if rollback:
            _discard_session(self.session, self.connection, self._baseline)
        else:
            problem = _settle_session(self.session, self.connection, self._baseline)
            if (
                problem is not None
                and self.mode == "never"
                and not connection_aborted(self.connection)
            ):
                log.warning(
                    "savepoint(rollback='never'): work since the session's last "
                    "commit() could not be kept and was rolled back: %s",
                    problem,
                )
                problem = None
            rollback = problem is not None
            _quiet("closing the session", self.session.close)
        try:
            if rollback:
                self._exec("ROLLBACK TO SAVEPOINT")
            self._exec("RELEASE SAVEPOINT")
        except DBAPIError as err:
            if getattr(err.orig, "sqlstate", None) == _INVALID_SAVEPOINT:
                raise TransactionError(
                    f"savepoint {self.name!r} no longer exists: the enclosing "
                    "transaction was committed or rolled back inside the block"
                ) from err
            raise
        if problem is not None and not failed:
            raise _as_transaction_error(
                problem, f"rolled back to savepoint {self.name!r}"
            )
        return None
