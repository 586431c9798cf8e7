"""The sessions of one `Database`: each thread's default one, and its blocks'.

`SessionRegistry` is the collaborator behind ``db.session``,
``db.connection()``, ``db.transaction()`` and ``db.savepoint()``. It holds,
per thread, the *default session* (a `SessionOnConnection` on the thread's
session connection, see `macrostrat.database._session`) and the stack of
sessions that `TransactionScope` and `SavepointScope` push while a block
runs (`SessionStack`): the current session is the innermost block's, or
the default one. It decides which connection a new block runs on (the
enclosing block's, the idle session connection, or a new one) and takes
savepoints outside any transaction inside a transaction of their own.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from ._session import SessionConnections, SessionOnConnection
from .transactions import (
    RollbackMode,
    SavepointScope,
    SessionStack,
    TransactionScope,
    check_rollback_mode,
)

__all__ = ["SessionRegistry"]

log = logging.getLogger("macrostrat.database.core")

T = TypeVar("T")


class SessionRegistry:
    """Each thread's default session and transaction-block sessions for one engine.

    Parameters:
        engine: the `Database`'s engine.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connections = SessionConnections(engine)
        # No reference back to the Database: a dropped Database is freed (and
        # its session connections closed) at once, not at a garbage collection.
        # (Any Session may replace the default one: see `replace_default`.)
        factory: sessionmaker[Session] = sessionmaker(
            class_=SessionOnConnection, connections=self.connections
        )
        self.scoped = scoped_session(factory)
        self.blocks = SessionStack()
        self._savepoint_ids = itertools.count(1)

    # -- the default session -------------------------------------------------

    def default_session(self) -> Session:
        """This thread's default session; its connection checked (see `SessionConnections`)."""
        session = self.scoped()
        connections = self.connections
        if (
            isinstance(session, SessionOnConnection)
            and connections.current() is not None
        ):
            generation = connections.generation
            connections.get()  # notices a lost connection, says so
            if connections.generation != generation and session.in_transaction():
                session.rollback()  # its transaction was lost with the connection
        return session

    def current(self) -> Session:
        """The innermost block's session, else the default session."""
        return self.blocks.current() or self.default_session()

    def replace_default(self, value: Session) -> None:
        """Make ``value`` this thread's default session (the old one is closed)."""
        self.end_default("it was replaced", stacklevel=4)
        self.scoped.registry.set(value)

    def end_default(self, why: str, *, warn: bool = True, stacklevel: int = 3) -> None:
        """Close this thread's default session before it goes away.

        A transaction it still had open (ORM work never committed) would
        otherwise stay open on the session connection, holding its locks,
        with nobody left to end it: it is rolled back, with a warning.
        """
        if not self.scoped.registry.has():
            return
        old = self.scoped()
        if not isinstance(old, SessionOnConnection):
            return
        if warn and old.in_transaction():
            log.warning(
                "the default session had a transaction open when %s; it was "
                "rolled back (commit before replacing db.session to keep it)",
                why,
            )
            warnings.warn(
                f"db.session had uncommitted work when {why}; it was rolled back",
                UserWarning,
                stacklevel=stacklevel,
            )
        try:
            old.close()
        except OperationalError as exc:
            log.debug("closing the replaced session failed: %s", exc)

    def reset(self) -> None:
        """End this thread's session: roll back, close its connection (`Database.reset_session`)."""
        self.end_default("the session was reset", warn=False)
        try:
            self.scoped.remove()
        except OperationalError as exc:
            log.debug("closing the session failed: %s", exc)
        self.connections.release()

    def close_default_if_idle(self, *, flush: bool = False) -> None:
        """Outside any block, close (after flushing, if asked) the default session.

        Before DDL or reflection: its locks would block a ``DROP``, and its
        identity map would hold instances of classes about to be replaced.
        """
        if self.blocks.current() is None:
            session = self.scoped()
            if flush:
                session.flush()
            session.close()

    # -- connections ---------------------------------------------------------

    def in_block(self) -> bool:
        """Whether this thread is inside a transaction or savepoint block."""
        return self.blocks.current() is not None

    def block_connection(self) -> Connection:
        """The connection of this thread's innermost transaction block."""
        session = self.current()
        bind = session.bind
        return bind if isinstance(bind, Connection) else session.connection()

    def connection(self) -> Connection:
        """The innermost block's connection, else the session connection."""
        if self.in_block():
            return self.block_connection()
        return self.connections.get()

    def idle_session_connection(self) -> Connection | None:
        """The session connection, unless the default session has a transaction open.

        (Then a block runs on a new connection, as before: it must not become
        part of work the default session has not committed.)
        """
        session = self.default_session()
        if not isinstance(session, SessionOnConnection) or session.in_transaction():
            return None
        conn = self.connections.get()
        return None if conn.in_transaction() else conn

    # -- blocks --------------------------------------------------------------

    @contextmanager
    def session_scope(self, commit: bool = True) -> Iterator[Session]:
        """The current session; commit on success, roll back on error, then close."""
        session = self.current()
        try:
            yield session
            if commit:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def transaction(
        self,
        target: T,
        *,
        rollback: RollbackMode = "on-error",
        connection: Connection | None = None,
        raise_errors: bool = True,
    ) -> TransactionScope[T]:
        """A `TransactionScope` yielding ``target``, on the connection `Database.transaction` picks."""
        if connection is None:
            current = self.blocks.current()
            if current is not None and isinstance(current.bind, Connection):
                connection = current.bind
            else:
                connection = self.idle_session_connection()
        return TransactionScope(
            self.engine,
            target,
            self.blocks,
            rollback=check_rollback_mode(rollback),
            connection=connection,
            raise_errors=raise_errors,
        )

    def savepoint(
        self,
        name: str | None = None,
        rollback: RollbackMode = "on-error",
        connection: Connection | None = None,
    ) -> AbstractContextManager[str]:
        """The scope of `Database.savepoint`: joined, or in a transaction of its own."""
        mode = check_rollback_mode(rollback)
        if name is None:
            name = f"sp_{next(self._savepoint_ids)}"
        if connection is None and not self.in_block():
            session = self.default_session()
            if not session.in_transaction():
                # Nothing to join: a transaction of its own around the
                # savepoint, committed at the end, so none is left open.
                return self._savepoint_in_own_transaction(name, mode)
        conn = connection if connection is not None else self.current().connection()
        return SavepointScope(conn, name, self.blocks, rollback=mode)

    @contextmanager
    def _savepoint_in_own_transaction(
        self, name: str, mode: RollbackMode
    ) -> Iterator[str]:
        """`savepoint` outside any transaction: inside one of its own."""
        with self.transaction(None):
            scope = SavepointScope(
                self.block_connection(), name, self.blocks, rollback=mode
            )
            with scope as entered:
                yield entered
