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
It is released when its thread ends (the thread's local storage frees it
at once) or when its `Database` is dropped, and it never goes back to the
pool for someone else: a released one is closed, and a pooled connection
that carried a session is discarded if the pool ever hands it out again, so
no role or setting can leak to another user.

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
import weakref
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
        if _readable(pgconn.socket):
            pgconn.consume_input()
    except Exception as exc:
        log.debug("the session connection is not readable: %s", exc)
        return True
    return bool(pgconn.status != 0)  # not CONNECTION_OK


def _readable(fd: int) -> bool:
    """Whether ``fd`` has something to read now (``poll``: any descriptor number)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)  # Windows: no FD_SETSIZE limit
    return bool(readable)


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


class _Held:
    """One thread's session connection; closes it when the thread's locals go.

    Referenced only from the thread's ``threading.local`` storage, so when the
    thread ends it is freed at once (no garbage collection needed) and gives
    its pool slot back.
    """

    __slots__ = ("__weakref__", "conn", "driver", "generation")

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.driver: Any = None
        self.generation = 0

    def close(self) -> None:
        conn, self.conn, self.driver = self.conn, None, None
        if conn is not None:
            _close(conn)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class SessionConnections:
    """One session connection per thread for one `Database` (see the module docstring).

    Parameters:
        engine: where connections come from.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._all: weakref.WeakSet[_Held] = weakref.WeakSet()

    def _held(self) -> _Held:
        held: _Held | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = _Held()
            self._all.add(held)
        return held

    def current(self) -> Connection | None:
        """This thread's session connection, if it has one (nothing is opened)."""
        held: _Held | None = getattr(self._local, "held", None)
        return held.conn if held is not None else None

    def get(self) -> Connection:
        """This thread's session connection, opened or restarted if needed."""
        held = self._held()
        conn = held.conn
        if conn is None or conn.closed:
            conn = self._open(held)
        elif conn.invalidated or _closed_by_server(held.driver):
            conn = self._restart(held)
        return conn

    @property
    def generation(self) -> int:
        """How many session connections this thread has opened (restarts included)."""
        held: _Held | None = getattr(self._local, "held", None)
        return held.generation if held is not None else 0

    def _open(self, held: _Held) -> Connection:
        _watch_pool(self.engine)
        conn = self.engine.connect()
        conn.info[SESSION_MARK] = True
        held.conn = conn
        held.driver = conn.connection.dbapi_connection
        held.generation += 1
        return conn

    def _restart(self, held: _Held) -> Connection:
        """Replace a lost session connection and say that the session was reset."""
        message = (
            "the database session's connection was lost; a new session was "
            "started, and what the old one had set (SET ROLE, search_path and "
            "other settings, temporary tables, prepared statements, session "
            "locks) is gone"
        )
        log.warning(message)
        warnings.warn(message, SessionResetWarning, stacklevel=4)
        held.close()
        return self._open(held)

    def release(self) -> None:
        """Close this thread's session connection; the next use starts a new session."""
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None:
            held.close()

    def release_all(self) -> None:
        """Close every thread's session connection (the `Database` is being dropped)."""
        for held in list(self._all):
            held.close()


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
        kwargs["bind"] = connections.engine  # (a sessionmaker passes bind=None)
        super().__init__(**kwargs)
        self.session_connections = connections

    def get_bind(self, mapper: Any = None, **kwargs: Any) -> Any:
        """The session connection (an explicit ``bind=`` still wins)."""
        bind = kwargs.get("bind")
        if bind is not None:
            return bind
        return self.session_connections.get()
