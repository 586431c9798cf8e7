"""The session connection: one per `Database` and thread, kept like a psql session.

``SET ROLE``, ``SET search_path`` and other settings, temporary tables,
prepared statements, holdable cursors and session advisory locks live in a
server *session*, that is, on one connection.  `SessionConnections` keeps one
connection per thread, opened when the thread first needs it and kept until
it is released (`release`, from ``Database.cleanup()`` or
``Database.reset_session()``) or its thread ends.  ``db.session``,
``run_sql``, ``run_query`` and ``transaction()`` use it, so what one call
sets, the next one sees, as with upstream and ``psql``.

A session connection is checked out of the engine's pool and holds one of
its slots while kept (reflection, COPY loads and ``run_with_retry`` draw
other connections from the pool, so a pool of one connection is too small).
It never goes back to the pool for someone else: a released one is closed,
and one the garbage collector returns (its thread ended) is discarded by the
pool at its next checkout, so no role or setting can leak to another user.

Only a lost connection ends a session early.  The next use notices (the
connection was invalidated, or the server closed it while it was idle: a
restart, ``pg_terminate_backend``), starts a new session on a fresh
connection and says so with a `SessionResetWarning` and a log record: what
the old session had set is gone.
"""

from __future__ import annotations

import logging
import select
import threading
import warnings
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

__all__ = [
    "SESSION_MARK",
    "SessionConnections",
    "SessionOnConnection",
    "SessionResetWarning",
]

log = logging.getLogger("macrostrat.database")


SESSION_MARK = "macrostrat.session"
"""Key in a pooled connection's ``info``: it carried a `Database` session."""

_LISTENING: set[int] = set()
_LISTENING_LOCK = threading.Lock()


class SessionResetWarning(UserWarning):
    """A `Database` session was lost with its connection and started again.

    Settings made earlier in the session (``SET ROLE``, ``search_path``…),
    its temporary tables, prepared statements and session locks are gone.
    """


def _closed_by_server(raw: Any) -> bool:
    """Whether an idle psycopg connection is known to be gone, without a round trip.

    A server that ends a session (shutdown, restart, ``pg_terminate_backend``)
    sends its reason and closes the socket, which then reads as ready: libpq
    reads what is there (notifications and notices are kept for psycopg) and
    reports the connection bad.  A silent network failure is not seen here;
    the next statement fails on it instead.
    """
    if getattr(raw, "closed", False) or getattr(raw, "broken", False):
        return True
    pgconn = getattr(raw, "pgconn", None)
    if pgconn is None:  # another driver (SQLite): nothing to look at
        return False
    try:
        readable, _, _ = select.select([pgconn.socket], [], [], 0)
        if readable:
            pgconn.consume_input()
    except Exception as exc:
        log.debug("the session connection is not readable: %s", exc)
        return True
    return bool(pgconn.status != 0)  # not CONNECTION_OK


def _refuse_used_session(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool ``checkout`` hook: never hand out a connection that held a session.

    The pool then closes it and connects again.
    """
    if record.info.get(SESSION_MARK):
        raise DisconnectionError("this connection carried a Database session")


def _watch_pool(engine: Engine) -> None:
    """Install `_refuse_used_session` on ``engine``'s pool (once per pool)."""
    pool = engine.pool
    with _LISTENING_LOCK:
        if id(pool) in _LISTENING and event.contains(
            pool, "checkout", _refuse_used_session
        ):
            return
        event.listen(pool, "checkout", _refuse_used_session)
        _LISTENING.add(id(pool))


class SessionConnections:
    """One session connection per thread for one `Database` (see the module docstring).

    Parameters:
        engine: where connections come from.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()

    def current(self) -> Connection | None:
        """This thread's session connection, if it has one (nothing is opened)."""
        return getattr(self._local, "conn", None)

    def get(self) -> Connection:
        """This thread's session connection, opened or restarted if needed."""
        conn = self.current()
        if conn is None or conn.closed:
            conn = self._open()
        elif self._lost(conn, self._local.driver):
            conn = self._restart(conn)
        return conn

    @property
    def generation(self) -> int:
        """How many session connections this thread has opened (restarts included)."""
        return int(getattr(self._local, "generation", 0))

    def _open(self) -> Connection:
        _watch_pool(self.engine)
        conn = self.engine.connect()
        conn.info[SESSION_MARK] = True
        self._local.conn = conn
        self._local.driver = conn.connection.dbapi_connection
        self._local.generation = self.generation + 1
        return conn

    def _lost(self, conn: Connection, driver: Any) -> bool:
        """Whether the session's connection was lost."""
        if conn.invalidated:
            return True
        return _closed_by_server(driver)

    def _restart(self, conn: Connection) -> Connection:
        """Replace a lost session connection and say that the session was reset."""
        message = (
            "the database session's connection was lost; a new session was "
            "started, and what the old one had set (SET ROLE, search_path and "
            "other settings, temporary tables, prepared statements, session "
            "locks) is gone"
        )
        log.warning(message)
        warnings.warn(message, SessionResetWarning, stacklevel=4)
        self._close(conn)
        return self._open()

    @staticmethod
    def _close(conn: Connection) -> None:
        """Close a session connection for good (never back to the pool as is)."""
        try:
            if not conn.closed and not conn.invalidated:
                conn.invalidate()
        except Exception as exc:  # cleaning up must not hide the real error
            log.debug("invalidating the session connection failed: %s", exc)
        try:
            conn.close()
        except Exception as exc:
            log.debug("closing the session connection failed: %s", exc)

    def release(self) -> None:
        """Close this thread's session connection; the next use starts a new session."""
        conn = self.current()
        self._local.conn = None
        self._local.driver = None
        if conn is not None:
            self._close(conn)


class SessionOnConnection(Session):
    """A `Session` whose work runs on its thread's session connection.

    It is bound to the engine, but `get_bind` hands out the session
    connection (see `SessionConnections`), which is checked out only when
    the session first needs a connection: creating the session, or reading
    ``db.session`` in a thread, opens nothing.

    Parameters:
        connections: the `Database`'s session connections.
        **kwargs: `Session` options.
    """

    def __init__(self, connections: SessionConnections, **kwargs: Any) -> None:
        super().__init__(bind=connections.engine, **kwargs)
        self.session_connections = connections

    def get_bind(self, mapper: Any = None, **kwargs: Any) -> Any:
        """The session connection (an explicit ``bind=`` still wins)."""
        bind = kwargs.get("bind")
        if bind is not None:
            return bind
        return self.session_connections.get()
