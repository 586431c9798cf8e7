"""Get the psycopg connection the SQL runner works on, and decide its mode.

Two modes (see `Target.joined`):

* **own transactions**: the connectable has no transaction in progress (an
  ``Engine``, an idle ``Connection``, a ``Session`` that has not begun).  The
  runner works in autocommit: each statement (or batch) is committed on its
  own, as ``psql`` does.  An engine gets a new connection, closed at the end;
  an idle connection is switched to autocommit for the run and back after.
* **joined**: the ``Session``/``Connection`` already has a transaction (inside
  ``Database.transaction()``, after ORM work, or a SQLAlchemy autobegin).  The
  runner never commits or rolls back that transaction.

``join=True`` (used by ``run_query``) begins a transaction on an idle
``Session``/``Connection`` instead of using autocommit, like SQLAlchemy's
autobegin, so the caller commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from .._connectable import sql_connectable

__all__ = ["Target", "open_target", "resolve_connectable"]

log = logging.getLogger("macrostrat.database.query")


@dataclass
class Target:
    """The connection a run uses.

    Attributes:
        raw: the psycopg connection.
        joined: True when the run is inside the caller's transaction.
        began: True when this run began that transaction (``join=True`` on an
            idle connectable): a failure may then roll it back entirely.
        hook_connectable: what ``on_error`` hooks receive.
        rollback_began: rolls back the transaction this run began.
    """

    raw: psycopg.Connection[Any]
    joined: bool
    began: bool = False
    hook_connectable: Any = None
    rollback_began: Callable[[], None] | None = None
    _cleanup: list[Callable[[], None]] = field(default_factory=list)
    _sa_connection: Connection | None = None
    _pooled: bool = False
    _discard: bool = False

    def discard_if_pooled(self) -> None:
        """Do not return a connection this run checked out to the pool.

        Used when the SQL changed session state (``SET search_path``…) that
        would otherwise leak into the next user of the pooled connection.
        """
        self._discard = self._pooled

    def close(self) -> None:
        """Release what `open_target` acquired (never the caller's transaction)."""
        if self._discard:
            self.invalidate()
        for action in reversed(self._cleanup):
            try:
                action()
            except Exception as exc:  # cleaning up must not hide the real error
                log.debug("cleaning up the SQL runner's connection failed: %s", exc)
        self._cleanup.clear()

    def invalidate(self) -> None:
        """Tell SQLAlchemy the connection is broken (after a connection loss)."""
        if self._sa_connection is not None:
            try:
                self._sa_connection.invalidate()
            except Exception as exc:
                log.debug("invalidating the connection failed: %s", exc)


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy connection."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError(
            "run_sql() needs a psycopg (3) connection (a postgresql+psycopg URL), "
            f"got {type(raw).__module__}.{type(raw).__name__}"
        )
    return raw


def _idle(raw: psycopg.Connection[Any]) -> bool:
    """Whether the server says no transaction is in progress."""
    return raw.info.transaction_status == TransactionStatus.IDLE


def _from_engine(engine: Engine) -> Target:
    """A new autocommit connection from ``engine`` (closed at the end)."""
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    target = Target(_driver(conn), joined=False, hook_connectable=conn)
    target._sa_connection = conn
    target._pooled = True
    target._cleanup.append(conn.close)
    return target


def _own_on(conn: Connection, raw: psycopg.Connection[Any], hook: Any) -> Target:
    """Autocommit on an idle connection for the run; restored afterwards."""
    target = Target(raw, joined=False, hook_connectable=hook)
    target._sa_connection = conn
    if not raw.autocommit:
        raw.autocommit = True

        def restore() -> None:
            if not _idle(raw):
                raw.execute("ROLLBACK")
            raw.autocommit = False

        target._cleanup.append(restore)
    return target


def _from_connection(conn: Connection, join: bool, hook: Any) -> Target:
    """Join the connection's transaction, begin one, or use autocommit."""
    raw = _driver(conn)
    if conn.in_transaction() or not _idle(raw):
        return Target(raw, joined=True, hook_connectable=hook, _sa_connection=conn)
    if join:
        tx = conn.begin()
        return Target(
            raw,
            joined=True,
            began=True,
            hook_connectable=hook,
            rollback_began=tx.rollback,
            _sa_connection=conn,
        )
    return _own_on(conn, raw, hook)


def _from_session(session: Session, join: bool) -> Target:
    """Join the session's transaction, begin one, or use its connection or engine."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    if session.in_transaction():
        conn = session.connection()
        return Target(
            _driver(conn), joined=True, hook_connectable=session, _sa_connection=conn
        )
    bind = session.get_bind()
    if isinstance(bind, Connection) and (
        bind.in_transaction() or not _idle(_driver(bind))
    ):
        return Target(
            _driver(bind), joined=True, hook_connectable=session, _sa_connection=bind
        )
    if join:
        # The session begins (and owns) the transaction: session.commit()
        # commits it, whatever the session is bound to.
        conn = session.connection()
        return Target(
            _driver(conn),
            joined=True,
            began=True,
            hook_connectable=session,
            rollback_began=session.rollback,
            _sa_connection=conn,
        )
    if isinstance(bind, Connection):
        return _own_on(bind, _driver(bind), session)
    target = _from_engine(bind)
    target.hook_connectable = session
    return target


def resolve_connectable(connectable: Any) -> Engine | Connection | Session:
    """Return the SQLAlchemy engine, connection or session ``connectable`` means.

    An ``Engine``, ``Connection`` or ``Session`` is itself; a
    ``scoped_session`` means its current session, and a
    `macrostrat.database.Database` (anything with an ``Engine`` as
    ``engine`` and a ``Session`` as ``session``) its current session (the
    rule is `macrostrat.database._connectable.sql_connectable`).

    Raises:
        TypeError: ``connectable`` is none of those.
    """
    return sql_connectable(connectable)


def open_target(connectable: Any, *, join: bool = False) -> Target:
    """Return the `Target` for ``connectable``.

    Parameters:
        connectable: an ``Engine``, ``Connection``, ``Session`` or
            `macrostrat.database.Database` (its current session; see
            `resolve_connectable`).
        join: on an idle ``Session``/``Connection``, begin a transaction the
            caller commits (``run_query``) instead of using autocommit.

    Raises:
        TypeError: ``connectable`` is none of those, or its driver is not psycopg 3.
    """
    resolved = resolve_connectable(connectable)
    if isinstance(resolved, Engine):
        return _from_engine(resolved)
    if isinstance(resolved, Connection):
        return _from_connection(resolved, join, resolved)
    return _from_session(resolved, join)
