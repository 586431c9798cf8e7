"""What became of a ``COMMIT`` whose answer never arrived: ask the server.

When the connection is lost after ``COMMIT`` was sent, the client cannot tell
whether the server committed: the reply may have been lost on the way back.
PostgreSQL can tell. Before committing, `commit_resolving` reads the
transaction's id (``pg_current_xact_id_if_assigned()``: NULL when the
transaction wrote nothing, so a read-only transaction costs no id); when the
commit fails because the connection was lost, a new connection asks
``pg_xact_status(id)``:

- ``committed``: the work is done; the commit is reported as a success (with
  a warning in the log), never re-run;
- ``aborted``: nothing was committed; the original error is raised, marked
  ``commit_outcome = "aborted"``, and the retry helpers may run the work again;
- anything else (no connection, still ``in progress`` after a short wait, an
  id the server never saw after a failover): `CommitOutcomeUnknown`.

A transaction that wrote nothing has no id and nothing to lose: its lost
commit is raised as it is (marked ``commit_outcome = "no-writes"``).

Engines made by `macrostrat.database.create_engine` commit through
`install_commit_resolution` (one extra round trip per commit of a transaction
that is open), and the COPY helpers commit through `commit_resolving`.

The module also keeps the per-thread *commit journal* the retry helpers use
to refuse work that commits on its own: inside a journal, a second commit that
writes is refused before it is sent (`UnsafeRetryError`).

One module of about 540 lines: reading a transaction's id and history, asking
the server, the per-thread journal the retry helpers read and the wrapping of
each engine's commit are one mechanism whose parts must agree on what counts as
a write.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from .errors import CommitOutcomeUnknown, UnsafeRetryError, add_note

__all__ = [
    "CommitJournal",
    "Reconnect",
    "commit_journal",
    "commit_resolving",
    "current_journal",
    "engine_reconnect",
    "install_commit_resolution",
    "lost_connection",
    "psycopg_reconnect",
    "resolve_outcome",
]

log = logging.getLogger("macrostrat.database.commit")

Reconnect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
"""Opens a new connection to the same server (a context manager)."""

RESOLVE_SECONDS = 5.0
"""How long to keep asking while the server is unreachable or the commit runs."""

# Which history a server is on: its system identifier (one per initdb, kept
# by its standbys) and its timeline (the first 8 hex digits of the current
# WAL file's name; a promoted standby starts a new one, and may hand out the
# same transaction ids again). Read once per connection: neither changes
# while a connection lasts.
_TIMELINE = (
    "CASE WHEN pg_is_in_recovery() THEN NULL "
    "ELSE left(pg_walfile_name(pg_current_wal_lsn()), 8) END"
)
_HISTORY = (
    f"(SELECT system_identifier::text FROM pg_control_system()) || '/' || ({_TIMELINE})"
)
_XID_SQL = "SELECT pg_current_xact_id_if_assigned()::text"
_STATUS_SQL = "SELECT pg_xact_status(%s::xid8)"
_HISTORY_SQL = f"SELECT {_HISTORY}"
_TIMELINE_ONLY_SQL = f"SELECT '?/' || ({_TIMELINE})"
_MAY_READ_SYSTEM_SQL = "SELECT has_function_privilege('pg_control_system()', 'EXECUTE')"
_MIN_SERVER = 130000  # pg_current_xact_id_if_assigned and xid8: PostgreSQL 13


class _NotRead:
    """The transaction id could not be read (a server older than 13)."""

    def __repr__(self) -> str:
        return "<id not read>"


NOT_READ = _NotRead()


@dataclass(eq=False)  # journals are told apart by identity, never by contents
class CommitJournal:
    """The commits that wrote, made in this thread while the journal is open.

    Attributes:
        xids: the ids of the committed transactions (``"?"`` when unread).
        strict: refuse a second commit that writes (`UnsafeRetryError`).
    """

    xids: list[str] = field(default_factory=list)
    strict: bool = True

    def check(self, xid: str | _NotRead | None) -> None:
        """Refuse a commit that writes when one already did, in strict mode."""
        if xid is None or not self.strict or not self.xids:
            return
        raise UnsafeRetryError(
            "this retried unit of work commits a second transaction that writes "
            f"(transaction {self.xids[0]} is already committed): running it again "
            "after a failure would commit that work twice. Put the whole unit "
            "in one db.transaction() block, or do not retry it; this second "
            "transaction was not committed"
        )

    def record(self, xid: str | _NotRead | None) -> None:
        """Note a commit that succeeded (or that the server says committed)."""
        if xid is not None:
            self.xids.append(xid if isinstance(xid, str) else "?")


_local = threading.local()


def current_journal() -> CommitJournal | None:
    """The innermost open journal of this thread, or None."""
    stack: list[CommitJournal] = getattr(_local, "journals", [])
    return stack[-1] if stack else None


@contextmanager
def commit_journal(*, strict: bool = True) -> Iterator[CommitJournal]:
    """Open a `CommitJournal` for this thread while the block runs."""
    stack: list[CommitJournal] = getattr(_local, "journals", None) or []
    _local.journals = stack
    journal = CommitJournal(strict=strict)
    stack.append(journal)
    try:
        yield journal
    finally:
        stack.remove(journal)


def lost_connection(raw: psycopg.Connection[Any], exc: BaseException) -> bool:
    """Whether ``exc`` left ``raw`` without a server (closed or broken)."""
    if not isinstance(exc, psycopg.Error):
        return False
    return bool(raw.closed or raw.broken)


_histories: weakref.WeakKeyDictionary[psycopg.Connection[Any], str | None] = (
    weakref.WeakKeyDictionary()
)


def _read_history(
    cur: psycopg.Cursor[Any], *, timeline_only: bool = False
) -> str | None:
    """The history (system identifier/timeline) of the server ``cur`` is on.

    May run inside the caller's transaction, so nothing here may fail: the
    system identifier is read only when the role may call
    ``pg_control_system()`` (otherwise, or with ``timeline_only``, it is
    ``"?"``).
    """
    if not timeline_only:
        cur.execute(_MAY_READ_SYSTEM_SQL, prepare=False)
        row = cur.fetchone()
        timeline_only = row is None or not row[0]
    cur.execute(_TIMELINE_ONLY_SQL if timeline_only else _HISTORY_SQL, prepare=False)
    row = cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _history(raw: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> str | None:
    """The history ``raw``'s server is on, read once per connection."""
    if raw not in _histories:
        _histories[raw] = _read_history(cur)
    return _histories[raw]


def transaction_xid(
    raw: psycopg.Connection[Any],
) -> tuple[str | _NotRead | None, str | None]:
    """The id of ``raw``'s open transaction and the history its server is on.

    The id is None when the transaction has none (it wrote no rows), no
    transaction is open, or it has failed (its ``COMMIT`` is a
    ``ROLLBACK``); `NOT_READ` on a server older than PostgreSQL 13. The
    history is ``"<system identifier>/<timeline>"``, None when unknown.
    """
    if raw.info.transaction_status != TransactionStatus.INTRANS:
        return None, None
    if raw.info.server_version < _MIN_SERVER:
        return NOT_READ, None
    with raw.cursor() as cur:
        cur.execute(_XID_SQL, prepare=False)
        row = cur.fetchone()
        if row is None or row[0] is None:
            return None, None
        return str(row[0]), _history(raw, cur)


def resolve_outcome(
    reconnect: Reconnect,
    xid: str,
    *,
    history: str | None = None,
    seconds: float = RESOLVE_SECONDS,
) -> str | None:
    """Ask a new connection what became of transaction ``xid``.

    Returns ``"committed"``, ``"aborted"``, ``"in progress"`` (still so after
    ``seconds``) or None (no connection, or the server does not know the id).
    A server that refuses connections for a moment (starting up after a
    crash) is asked again until ``seconds`` have passed.

    ``history`` is ``"<system identifier>/<timeline>"`` of the server the
    transaction ran on. When the answering server is on another one (a
    standby promoted since starts a new timeline; another cluster behind the
    same address has another identifier), its ``committed`` may be another
    transaction that got the same id: that is None (unknown). Its
    ``aborted`` stands: either way the transaction is not committed in the
    history that answers.
    """
    deadline = time.monotonic() + seconds
    status: str | None = None
    while True:
        try:
            with reconnect() as conn:
                with conn.cursor() as cur:
                    cur.execute(_STATUS_SQL, (xid,), prepare=False)
                    row = cur.fetchone()
                    status = None if row is None or row[0] is None else str(row[0])
                    answered_on = _read_history(
                        cur,
                        timeline_only=history is not None and history.startswith("?/"),
                    )
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.rollback()
            if status == "committed" and history is not None and answered_on != history:
                log.warning(
                    "transaction %s ran on %s; the server now answering is on %s "
                    "(a failover, or another cluster): its 'committed' may be "
                    "another transaction with the same id",
                    xid,
                    history,
                    answered_on,
                )
                return None
            if status in ("committed", "aborted"):
                return status
            if status is None:
                log.warning("the server does not know transaction %s", xid)
                return None
        except psycopg.errors.InvalidParameterValue as exc:
            # "transaction ID ... is in the future": a server that never saw it.
            log.warning("cannot resolve transaction %s: %s", xid, exc)
            return None
        except Exception as exc:
            log.debug("resolving transaction %s: %s", xid, exc)
            status = None
        if time.monotonic() >= deadline:
            return status
        time.sleep(0.1)


def _mark(exc: BaseException, outcome: str, note: str) -> None:
    try:
        exc.commit_outcome = outcome  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
    add_note(exc, note)


def commit_resolving(
    raw: psycopg.Connection[Any],
    commit: Callable[[], object],
    reconnect: Reconnect,
    *,
    what: str = "the transaction",
) -> str:
    """Run ``commit()`` for ``raw``'s transaction; resolve a lost commit with the server.

    See the module docstring for the outcomes. Inside a strict
    `CommitJournal` a second commit that writes is refused first.

    Parameters:
        raw: the connection whose transaction ``commit`` ends.
        commit: sends the ``COMMIT`` (``raw.commit`` or SQLAlchemy's).
        reconnect: opens a new connection to the same server.
        what: names the work in messages (``"the load into points"``).

    Returns:
        ``"committed"`` when the server answered, ``"resolved"`` when the
        answer was lost but the server says the transaction committed.

    Raises:
        UnsafeRetryError: a second writing commit inside a strict journal (the
            transaction is rolled back instead).
        CommitOutcomeUnknown: the connection was lost and the server could
            not say whether the transaction committed.
    """
    xid, history = transaction_xid(raw)
    journal = current_journal()
    if journal is not None:
        try:
            journal.check(xid)
        except UnsafeRetryError:
            raw.rollback()
            raise
    try:
        commit()
    except Exception as exc:
        if not lost_connection(raw, exc):
            raise
        if xid is None:
            _mark(
                exc,
                "no-writes",
                "the transaction had no id (it wrote no rows); it may still have "
                "sent a NOTIFY or used sequence values",
            )
            raise
        if isinstance(xid, _NotRead):
            raise CommitOutcomeUnknown(
                f"the connection was lost while committing {what}, and this "
                "server (older than PostgreSQL 13) cannot say whether it "
                "committed: check before running it again"
            ) from exc
        status = resolve_outcome(reconnect, xid, history=history)
        if status == "committed":
            log.warning(
                "the connection was lost while committing %s, and the server "
                "reports transaction %s committed: %s",
                what,
                xid,
                exc,
            )
            if journal is not None:
                journal.record(xid)
            return "resolved"
        if status == "aborted":
            _mark(
                exc,
                "aborted",
                f"the server reports transaction {xid} aborted: nothing was committed",
            )
            raise
        said = f"it is still {status}" if status else "no answer could be had"
        raise CommitOutcomeUnknown(
            f"the connection was lost while committing {what} (transaction "
            f"{xid}), and {said}: the work may or may not be committed; check "
            "before running it again",
            xid=xid,
            status=status,
        ) from exc
    if journal is not None:
        journal.record(xid)
    return "committed"


def psycopg_reconnect(raw: psycopg.Connection[Any]) -> Reconnect:
    """A `Reconnect` that opens a new connection with ``raw``'s parameters.

    Read before the commit: libpq forgets them once the connection is gone.
    """
    dsn = raw.info.dsn
    password = raw.info.password

    @contextmanager
    def reconnect() -> Iterator[psycopg.Connection[Any]]:
        extra: dict[str, Any] = {"connect_timeout": 5}
        if password:
            extra["password"] = password
        with psycopg.connect(dsn, **extra) as conn:
            yield conn

    return reconnect


def engine_reconnect(
    engine: Any, url: Any = None, connect_args: Mapping[str, Any] | None = None
) -> Reconnect:
    """A `Reconnect` that opens a new connection the way ``engine`` does.

    Never from ``engine``'s pool, which may be exhausted by the very
    connections waiting on their commits (or hold ones to a server that has
    gone). With ``url`` (secrets included) the connection is opened directly
    with ``connect_args`` and a connect timeout of `RESOLVE_SECONDS`, so an
    unreachable host cannot hold the answer back much longer than that;
    without it (an engine made elsewhere), from a pool of its own with the
    engine's creation arguments (``Pool.recreate``), with the engine's own
    timeout.
    """

    @contextmanager
    def direct() -> Iterator[psycopg.Connection[Any]]:
        cargs, cparams = engine.dialect.create_connect_args(url)
        params = {**cparams, **(connect_args or {})}
        params.setdefault("connect_timeout", max(1, math.ceil(RESOLVE_SECONDS)))
        with psycopg.connect(*cargs, **params) as conn:
            yield conn

    @contextmanager
    def pooled() -> Iterator[psycopg.Connection[Any]]:
        pool = engine.pool.recreate()
        try:
            proxy = pool.connect()
            try:
                yield proxy.driver_connection
            finally:
                proxy.close()
        finally:
            pool.dispose()

    return direct if url is not None else pooled


def install_commit_resolution(
    engine: Any, url: Any = None, connect_args: Mapping[str, Any] | None = None
) -> None:
    """Make every commit on PostgreSQL ``engine`` tell the truth about its outcome.

    With psycopg (3), commits go through `commit_resolving`. With another
    PostgreSQL driver (psycopg2...), the id cannot be read the same way: a
    connection lost during ``COMMIT`` raises `CommitOutcomeUnknown`, and
    inside a retried unit every commit counts as one that wrote. Two-phase
    commits count as writes too. Inside a retried unit, a statement on a
    connection in ``AUTOCOMMIT`` (it commits on its own) is refused with
    `UnsafeRetryError`. A dialect is wrapped once (``execution_options()``
    copies share it); other databases are left alone.

    Parameters:
        engine: the engine.
        url: its URL with every secret (see `engine_reconnect`).
        connect_args: the driver options it was made with.
    """
    dialect = engine.dialect
    if getattr(dialect, "name", None) != "postgresql" or getattr(
        dialect, "_macrostrat_commit", False
    ):
        return
    original: Callable[[Any], None] = dialect.do_commit
    reconnect = engine_reconnect(engine, url, connect_args)

    def do_commit(dbapi_connection: Any) -> None:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        if not isinstance(raw, psycopg.Connection):
            _commit_other_driver(dialect, dbapi_connection, original)
            return
        try:
            commit_resolving(raw, lambda: original(dbapi_connection), reconnect)
        except CommitOutcomeUnknown:
            _invalidate(dbapi_connection)
            raise
        if raw.closed or raw.broken:  # committed, as the server said
            _invalidate(dbapi_connection)

    original_twophase = dialect.do_commit_twophase

    def do_commit_twophase(connection: Any, xid: Any, *args: Any, **kw: Any) -> None:
        journal = current_journal()
        if journal is not None:
            journal.check("?")
        original_twophase(connection, xid, *args, **kw)
        if journal is not None:
            journal.record("?")

    dialect.do_commit = do_commit
    dialect.do_commit_twophase = do_commit_twophase
    dialect._macrostrat_commit = True
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", _refuse_autocommit_in_retry)


def _commit_other_driver(
    dialect: Any, dbapi_connection: Any, original: Callable[[Any], None]
) -> None:
    """Commit on a driver whose transaction id is not read: never claim more."""
    journal = current_journal()
    if journal is not None:
        try:
            journal.check("?")
        except UnsafeRetryError:
            dbapi_connection.rollback()
            raise
    try:
        original(dbapi_connection)
    except Exception as exc:
        if dialect.is_disconnect(exc, dbapi_connection, None):
            _invalidate(dbapi_connection)
            raise CommitOutcomeUnknown(
                "the connection was lost while committing the transaction, and "
                f"with the {dialect.driver} driver its id was not read: the work "
                "may or may not be committed; check before running it again"
            ) from exc
        raise
    if journal is not None:
        journal.record("?")


def _refuse_autocommit_in_retry(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, many: Any
) -> None:
    """Inside a retried unit, refuse statements that commit on their own."""
    journal = current_journal()
    if journal is None or not journal.strict:
        return
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        raise UnsafeRetryError(
            "a statement on a connection in AUTOCOMMIT commits on its own: inside "
            "a retried unit of work a re-run could commit it twice. Run it in "
            "the unit's transaction (db.transaction()); it was not run"
        )


def _invalidate(dbapi_connection: Any) -> None:
    """Tell SQLAlchemy's pool a connection lost during COMMIT is gone."""
    invalidate = getattr(dbapi_connection, "invalidate", None)
    if invalidate is not None:
        try:
            invalidate()
        except Exception as exc:  # pragma: no cover - best effort
            log.debug("invalidating a lost connection failed: %s", exc)
