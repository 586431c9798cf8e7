"""Get the ``sqlite3`` connection the SQLite runner works on, and decide its mode.

The SQLite twin of `connect`, with the same two modes (see
`SQLiteTarget.joined`):

* **own transactions**: no transaction is in progress.  The connection is
  put in autocommit for the run (``sqlite3``'s ``isolation_level`` None, and
  `_sqlite_compat.SQLITE_NO_BEGIN` so that the engine's ``begin`` hook emits
  no ``BEGIN``), and given back as it was.  An engine gets a connection of
  its own, closed at the end.
* **joined**: the ``Session``/``Connection`` already has a transaction; the
  runner never ends it.

``join=True`` (``run_query``) begins a transaction on an idle
``Session``/``Connection`` instead, which the caller commits.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from .._connectable import engine_of
from .._sqlite_compat import SQLITE_NO_BEGIN
from .connect import resolve_connectable

__all__ = ["SQLiteTarget", "is_sqlite", "open_sqlite_target"]

log = logging.getLogger("macrostrat.database.query")


def is_sqlite(connectable: Any) -> bool:
    """Whether ``connectable`` (Engine, Connection, Session, Database) is SQLite."""
    if isinstance(connectable, scoped_session):
        connectable = connectable()
    if isinstance(connectable, (Engine, Connection)):
        return bool(connectable.dialect.name == "sqlite")
    if isinstance(connectable, Session):
        bind = connectable.bind
        if bind is None:
            try:
                bind = connectable.get_bind()
            except Exception:
                return False
        return bool(getattr(bind, "dialect", None) and bind.dialect.name == "sqlite")
    engine = engine_of(connectable)
    return engine is not None and engine.dialect.name == "sqlite"


@dataclass
class SQLiteTarget:
    """The connection a SQLite run uses (see `connect.Target`, its PostgreSQL twin).

    Attributes:
        conn: the SQLAlchemy connection.
        raw: the ``sqlite3`` connection under it.
        joined: True when the run is inside the caller's transaction.
        began: True when this run began that transaction (``join=True`` on an
            idle connectable).
        hook_connectable: what ``on_error`` hooks receive.
        cleanup: what `close` undoes, in reverse order.
    """

    conn: Connection
    raw: sqlite3.Connection
    joined: bool
    began: bool = False
    hook_connectable: Any = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release what `open_sqlite_target` acquired (never the caller's transaction)."""
        for action in reversed(self.cleanup):
            try:
                action()
            except Exception as exc:  # cleaning up must not hide the real error
                log.debug("cleaning up the SQL runner's connection failed: %s", exc)
        self.cleanup.clear()


def _raw(conn: Connection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under a SQLAlchemy connection."""
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        raise TypeError(
            "run_sql() on SQLite needs the standard sqlite3 driver (sqlite:// or "
            f"sqlite+pysqlite://), got {type(raw).__module__}.{type(raw).__name__}"
        )
    return raw


def _own(conn: Connection, hook: Any) -> SQLiteTarget:
    """Autocommit on an idle connection for the run; restored afterwards."""
    raw = _raw(conn)
    target = SQLiteTarget(conn, raw, joined=False, hook_connectable=hook)
    previous = raw.isolation_level
    had_mark = SQLITE_NO_BEGIN in conn.info
    conn.info[SQLITE_NO_BEGIN] = True
    if previous is not None:
        raw.isolation_level = None  # nothing is pending: this commits nothing

    def restore() -> None:
        if not had_mark:
            conn.info.pop(SQLITE_NO_BEGIN, None)
        if previous is not None and not raw.in_transaction:
            raw.isolation_level = previous

    target.cleanup.append(restore)
    return target


def _joined(conn: Connection, hook: Any, *, began: bool = False) -> SQLiteTarget:
    """Join the connection's transaction.

    On an engine without `_sqlite_compat`'s hooks, pysqlite has not begun the
    transaction SQLAlchemy thinks it is in (it waits for an ``INSERT``,
    ``UPDATE`` or ``DELETE``): it is begun here, so that DDL and savepoints
    belong to it too.
    """
    raw = _raw(conn)
    if not raw.in_transaction:
        raw.execute("BEGIN")
    return SQLiteTarget(conn, raw, joined=True, began=began, hook_connectable=hook)


def _from_connection(conn: Connection, join: bool, hook: Any) -> SQLiteTarget:
    """Join the connection's transaction, begin one, or use autocommit."""
    if conn.in_transaction() or _raw(conn).in_transaction:
        return _joined(conn, hook)
    if join:
        conn.begin()
        return _joined(conn, hook, began=True)
    return _own(conn, hook)


def _from_session(session: Session, join: bool) -> SQLiteTarget:
    """Join the session's transaction, begin one, or use its connection or engine."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    if session.in_transaction():
        return _joined(session.connection(), session)
    bind = session.get_bind()
    if isinstance(bind, Connection) and (
        bind.in_transaction() or _raw(bind).in_transaction
    ):
        return _joined(bind, session)
    if join:
        return _joined(session.connection(), session, began=True)
    if isinstance(bind, Connection):
        return _own(bind, session)
    target = _from_engine(bind)
    target.hook_connectable = session
    return target


def _from_engine(engine: Engine) -> SQLiteTarget:
    """A connection of ``engine`` (closed at the end), in autocommit.

    A ``:memory:`` engine's pool hands each thread one shared connection: if
    another user of it in this thread has a transaction open, the run joins
    it (committing it is that user's business).
    """
    conn = engine.connect()
    try:
        target = _joined(conn, conn) if _raw(conn).in_transaction else _own(conn, conn)
    except BaseException:
        conn.close()
        raise
    target.cleanup.insert(0, conn.close)
    return target


def open_sqlite_target(connectable: Any, *, join: bool = False) -> SQLiteTarget:
    """Return the `SQLiteTarget` for ``connectable`` (see the module docstring).

    Parameters:
        connectable: an ``Engine``, ``Connection``, ``Session`` or
            `macrostrat.database.Database` on SQLite (see
            `connect.resolve_connectable`).
        join: on an idle ``Session``/``Connection``, begin a transaction the
            caller commits (``run_query``) instead of using autocommit.

    Raises:
        TypeError: ``connectable`` is none of those, or its driver is not
            the standard ``sqlite3``.
    """
    resolved = resolve_connectable(connectable)
    if isinstance(resolved, Engine):
        return _from_engine(resolved)
    if isinstance(resolved, Connection):
        return _from_connection(resolved, join, resolved)
    return _from_session(resolved, join)
