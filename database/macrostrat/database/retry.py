"""Re-run a whole unit of work when PostgreSQL reports a transient failure.

A serialization failure (SQLSTATE ``40001``), a deadlock (``40P01``) or a lost
connection (the server went away, the backend was terminated, a connection
error of class ``08``) before ``COMMIT`` leave nothing half-done on the server:
the transaction never committed, so running the *whole* unit again is the
documented remedy. Anything else (a constraint violation, a syntax error, a
timeout) is raised at once.

A connection lost *during* ``COMMIT`` is different: the server may have
committed. Commits on engines made by this package ask the server
(``pg_xact_status``, see `macrostrat.database.CommitOutcomeUnknown`): a
transaction the server committed counts as a success and is never run again,
one it aborted is retried, and one whose fate is unknown raises
`CommitOutcomeUnknown`, which is never retried.

Each attempt keeps a journal of the transactions it committed. Work that
commits on its own is refused (`UnsafeRetryError`): a second transaction that
writes, committed in one attempt, is rolled back instead, and ``run_sql``
outside a transaction (it commits statement by statement) runs nothing. When
an attempt fails after one of its transactions committed, it is not run again:
the error is raised with a note naming the committed transaction.

Three forms share one policy (`RetryPolicy`):

- the decorator `postgres_retry`;
- the loop `retrying`, whose attempts are context managers::

      for attempt in retrying():
          with attempt, db.transaction():
              ...

- `Database.run_with_retry`, which runs a function in a fresh transaction per
  attempt.

Retrying only makes sense for the code that owns the transaction. When a call
is made inside an open transaction it did not start (an enclosing retry, a
`Database.transaction` block, or a ``Session``/``Connection``/`Database`
argument that is already in a transaction), the work runs once and its error
propagates unchanged, for the owner of the transaction to handle.

When every attempt failed, the last error is re-raised with its
``retry_attempts`` attribute set to the number of attempts made.

Longer than 400 lines because the three forms (decorator, loop,
`Database.run_with_retry`) share one policy, one attempt loop with its
commit journal, and the classification of transient errors.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, TypeVar, overload

from ._commit import CommitJournal, commit_journal
from ._connectable import DatabaseLike, in_transaction
from .errors import (
    CommitOutcomeUnknown,
    InvalidOptionError,
    UnsafeRetryError,
    add_note,
)

__all__ = [
    "DEFAULT_ATTEMPTS",
    "RETRY_ATTEMPTS_ENV",
    "TRANSIENT_SQLSTATES",
    "RetryAttempt",
    "RetryEvent",
    "RetryPolicy",
    "in_foreign_transaction",
    "is_transient_error",
    "postgres_retry",
    "retrying",
    "run_with_retry",
]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

RETRY_ATTEMPTS_ENV = "MACROSTRAT_DB_RETRY_ATTEMPTS"
"""The environment variable that sets the default number of attempts."""

DEFAULT_ATTEMPTS = 3
"""Attempts made when neither the caller nor the environment says otherwise."""

TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
"""Serialization failure and deadlock detected: the transaction can be re-run."""

# The connection was lost: admin_shutdown, crash_shutdown, cannot_connect_now,
# idle_session_timeout; and any connection_exception (class 08).
_LOST_CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P05"})

_state = threading.local()


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)
    if state is None:
        state = getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error it wraps (``.orig``) and its causes, once each."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        item = todo.pop(0)
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for nxt in (getattr(item, "orig", None), item.__cause__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def is_transient_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure that re-running the whole transaction can cure.

    False for `CommitOutcomeUnknown` and `UnsafeRetryError` (and errors caused
    by them): running the work again could commit it twice. Otherwise
    true for SQLSTATE ``40001`` (serialization failure) and ``40P01`` (deadlock),
    for a lost connection (SQLAlchemy's ``connection_invalidated``, SQLSTATE
    ``57P01``/``57P02``/``57P03``/``57P05`` or class ``08``, or a psycopg
    ``OperationalError`` without a SQLSTATE whose libpq message says the
    server is unreachable or closed the connection; a refused login, a
    missing database or role are not transient). The error, the driver error it wraps and its ``__cause__``
    chain are examined, so errors wrapped by this package count too.

    Parameters:
        exc: the exception raised by the unit of work.
    """
    import psycopg

    chain = list(_chain(exc))
    if any(isinstance(i, (CommitOutcomeUnknown, UnsafeRetryError)) for i in chain):
        return False
    for item in chain:
        if getattr(item, "connection_invalidated", False):
            return True
        state = _sqlstate(item)
        if state is not None:
            if (
                state in TRANSIENT_SQLSTATES
                or state in _LOST_CONNECTION_SQLSTATES
                or state.startswith("08")
            ):
                return True
        elif isinstance(item, psycopg.OperationalError) and _unreachable(item):
            return True
    return False


# libpq's own messages (no SQLSTATE) for a server that is unreachable or went
# away; refusals by a live server (authentication, unknown database or role)
# are not transient and win over these.
_LOST_MESSAGES = (
    "server closed the connection",
    "connection refused",
    "terminating connection",
    "could not receive data",
    "could not send data",
    "timeout expired",
    "connection reset",
    "no connection to the server",
    "consuming input failed",
    "ssl syscall",
    "ssl connection has been closed",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the connection is closed",
    "connection lost",
)
_REFUSED_MESSAGES = (
    "authentication failed",
    "does not exist",
    "pg_hba.conf",
    "permission denied",
    "password",
)


def _unreachable(exc: BaseException) -> bool:
    message = str(exc).lower()
    if any(text in message for text in _REFUSED_MESSAGES):
        return False
    return any(text in message for text in _LOST_MESSAGES)


def _env_attempts() -> int:
    raw = os.environ.get(RETRY_ATTEMPTS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_ATTEMPTS
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidOptionError(
            f"{RETRY_ATTEMPTS_ENV} must be a positive integer, not {raw!r}"
        ) from exc
    if value < 1:
        raise InvalidOptionError(
            f"{RETRY_ATTEMPTS_ENV} must be at least 1, not {value}"
        )
    return value


@dataclass(frozen=True)
class RetryEvent:
    """What the ``on_retry`` hook is told before the next attempt.

    Attributes:
        attempt: the attempt that just failed (1-based).
        attempts: the total number of attempts allowed.
        error: the transient error it raised.
        delay: seconds slept before the next attempt.
    """

    attempt: int
    attempts: int
    error: BaseException
    delay: float


def _log_retry(event: RetryEvent) -> None:
    log.warning(
        "transient database error on attempt %d of %d, retrying in %.3f s: %s",
        event.attempt,
        event.attempts,
        event.delay,
        event.error,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    The delay before attempt ``n + 1`` is drawn uniformly from
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` (exponential backoff
    with full jitter), so that sessions that collided do not collide again.

    Attributes:
        attempts: total attempts, including the first; None reads
            ``MACROSTRAT_DB_RETRY_ATTEMPTS`` (default 3) when the policy is used.
        base_delay: the backoff's first ceiling, in seconds.
        max_delay: the largest delay, in seconds.
        on_retry: called with a `RetryEvent` before each new attempt (default:
            a warning on this module's logger).
        retry_if: decides which errors are transient (default
            `is_transient_error`).
        sleep: the sleep function (``time.sleep``).
    """

    attempts: int | None = None
    base_delay: float = 0.05
    max_delay: float = 2.0
    on_retry: Callable[[RetryEvent], None] | None = _log_retry
    retry_if: Callable[[BaseException], bool] = is_transient_error
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.attempts is not None and (
            not isinstance(self.attempts, int) or self.attempts < 1
        ):
            raise InvalidOptionError(
                f"attempts must be a positive integer, not {self.attempts!r}"
            )
        if self.base_delay < 0 or self.max_delay < 0:
            raise InvalidOptionError("retry delays cannot be negative")

    def total_attempts(self) -> int:
        """The number of attempts: ``attempts``, or the environment's, or 3."""
        return self.attempts if self.attempts is not None else _env_attempts()

    def delay(self, attempt: int) -> float:
        """A jittered delay to sleep after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)


def _make_policy(policy: RetryPolicy | None, options: dict[str, Any]) -> RetryPolicy:
    unknown = set(options) - set(RetryPolicy.__dataclass_fields__)
    if unknown:
        raise InvalidOptionError(
            f"unknown retry option(s): {', '.join(sorted(unknown))}"
        )
    base = policy if policy is not None else RetryPolicy()
    return replace(base, **options) if options else base


def _depth() -> int:
    return getattr(_state, "depth", 0)


class _Nested:
    """Mark this thread as inside a retried unit of work while the block runs."""

    def __enter__(self) -> None:
        _state.depth = _depth() + 1

    def __exit__(self, *exc: object) -> None:
        _state.depth = _depth() - 1


def in_foreign_transaction(*objects: Any) -> bool:
    """Whether retrying now would re-run part of a transaction someone else owns.

    True inside another retried unit of work of this thread, or when one of
    ``objects`` is a ``Session`` or ``Connection`` in a transaction, or a
    `Database` inside a ``transaction()``/``savepoint()`` block.
    """
    if _depth() > 0:
        return True
    return any(in_transaction(obj) for obj in objects)


class RetryAttempt:
    """One attempt of a `retrying` loop: a context manager around the work.

    A transient error raised in the block is swallowed (the loop sleeps and
    yields the next attempt) unless it was the last attempt or retrying is
    not allowed; any other error propagates at once.

    Attributes:
        number: this attempt's number (1-based).
        attempts: the total allowed.
        error: the transient error this attempt swallowed, or None.
    """

    def __init__(self, loop: _RetryLoop, number: int) -> None:
        self._loop = loop
        self.number = number
        self.attempts = loop.attempts
        self.error: BaseException | None = None
        self.journal: CommitJournal | None = None
        self._journal_scope: Any = None

    def __enter__(self) -> RetryAttempt:
        self._loop.nested.__enter__()
        if self._loop.allowed:
            self._journal_scope = commit_journal()
            self.journal = self._journal_scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._loop.nested.__exit__()
        if self._journal_scope is not None:
            self._journal_scope.__exit__(None, None, None)
            self._journal_scope = None
        if exc is None:
            self._loop.done = True
            return False
        if not isinstance(exc, Exception):
            return False
        return self._loop.failed(self, exc)


class _RetryLoop:
    def __init__(self, policy: RetryPolicy, allowed: bool) -> None:
        self.policy = policy
        self.allowed = allowed
        self.attempts = policy.total_attempts() if allowed else 1
        self.done = False
        self.nested = _Nested()

    def failed(self, attempt: RetryAttempt, exc: BaseException) -> bool:
        """Decide about ``exc``: True swallows it (there will be another attempt)."""
        if not self.allowed:
            return False
        if not self.policy.retry_if(exc):
            return False
        if attempt.journal is not None and attempt.journal.xids:
            add_note(
                exc,
                f"not run again: transaction {', '.join(attempt.journal.xids)} of "
                "this attempt is committed",
            )
            return False
        if attempt.number >= self.attempts:
            _attach_attempts(exc, attempt.number)
            return False
        attempt.error = exc
        delay = self.policy.delay(attempt.number)
        if self.policy.on_retry is not None:
            self.policy.on_retry(RetryEvent(attempt.number, self.attempts, exc, delay))
        self.policy.sleep(delay)
        return True

    def __iter__(self) -> Iterator[RetryAttempt]:
        for number in range(1, self.attempts + 1):
            attempt = RetryAttempt(self, number)
            yield attempt
            if self.done or attempt.error is None:
                return


def _attach_attempts(exc: BaseException, attempts: int) -> None:
    try:
        exc.retry_attempts = attempts  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
    add_note(exc, f"gave up after {attempts} attempts")


def retrying(
    policy: RetryPolicy | None = None,
    *,
    bind: Any = None,
    **options: Any,
) -> Iterator[RetryAttempt]:
    """Iterate over attempts of a unit of work until one succeeds.

    Use each attempt as a context manager around the *whole* transaction::

        for attempt in retrying(attempts=5):
            with attempt, db.transaction():
                db.session.execute(...)

    Put the attempt first in the ``with``, so the transaction has been rolled
    back when the attempt sees the error. When the loop is entered inside a
    transaction it does not own (see `in_foreign_transaction`; ``bind`` is the
    session, connection or `Database` to check), it yields a single attempt
    that never swallows an error.

    Parameters:
        policy: a `RetryPolicy` (default: a new one).
        bind: a ``Session``, ``Connection`` or `Database` the work will use.
        **options: `RetryPolicy` fields overriding ``policy``'s.

    Raises:
        InvalidOptionError: an invalid option or ``MACROSTRAT_DB_RETRY_ATTEMPTS``.
    """
    chosen = _make_policy(policy, options)
    allowed = not in_foreign_transaction(*(() if bind is None else (bind,)))
    if not allowed:
        log.debug("inside a transaction it did not start: not retrying")
    return iter(_RetryLoop(chosen, allowed))


def run_retrying(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    policy: RetryPolicy,
    check: tuple[Any, ...] = (),
) -> Any:
    """Call ``func(*args, **kwargs)`` under ``policy``; `postgres_retry`'s engine."""
    allowed = not in_foreign_transaction(*check, *args, *kwargs.values())
    for attempt in iter(_RetryLoop(policy, allowed)):
        with attempt:
            return func(*args, **kwargs)
    raise AssertionError("unreachable: the last attempt re-raises")  # pragma: no cover


@overload
def postgres_retry(func: F, /) -> F: ...


@overload
def postgres_retry(
    func: None = None,
    /,
    *,
    policy: RetryPolicy | None = None,
    **options: Any,
) -> Callable[[F], F]: ...


def postgres_retry(
    func: Callable[..., Any] | None = None,
    /,
    *,
    policy: RetryPolicy | None = None,
    **options: Any,
) -> Any:
    """Decorate a function that performs a whole unit of work, to re-run it on transient errors.

    The function must start and end its own transaction (it is called again
    from the start), and commit once: a second transaction that writes is
    refused (`UnsafeRetryError`), as is ``run_sql`` outside a transaction. A
    lost ``COMMIT`` is resolved with the server first (see the module
    docstring), so committed work is never run twice. Usable bare (``@postgres_retry``) or with options
    (``@postgres_retry(attempts=5, on_retry=hook)``). A call made inside a
    transaction it did not start (an enclosing retried call, or an argument
    that is a ``Session``/``Connection`` in a transaction or a `Database` in
    a transaction block) runs once.

    Parameters:
        func: the function (when used bare).
        policy: a `RetryPolicy`.
        **options: `RetryPolicy` fields: ``attempts``, ``base_delay``,
            ``max_delay``, ``on_retry``, ``retry_if``, ``sleep``.

    Raises:
        InvalidOptionError: an unknown or invalid option.
    """
    chosen = _make_policy(policy, options)

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_retrying(fn, args, kwargs, chosen)

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


D = TypeVar("D", bound=DatabaseLike)
R = TypeVar("R")


def run_with_retry(
    db: D,
    func: Callable[..., R],
    args: tuple[Any, ...],
    *,
    isolation_level: str | None = None,
    policy: RetryPolicy | None = None,
    options: dict[str, Any],
) -> R:
    """Run ``func(db, *args)`` in a fresh transaction per attempt: `Database.run_with_retry`.

    Each attempt opens a connection (with ``isolation_level``, if given) and
    a ``db.transaction()`` on it; inside a transaction block of ``db``,
    ``func`` runs once, in that block.
    """
    for attempt in retrying(policy, bind=db, **options):
        with attempt:
            if db.in_transaction_block():
                return func(db, *args)
            with db.engine.connect() as conn:
                if isolation_level is not None:
                    conn.execution_options(isolation_level=isolation_level)
                with db.transaction(connection=conn):
                    result = func(db, *args)
                return result
    raise AssertionError("unreachable: the last attempt re-raises")
