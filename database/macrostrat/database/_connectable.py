"""What the lower layers accept as "a database", and the one rule that reads it.

Modules below `macrostrat.database.core` (engines, admin, retry, tenancy,
COPY, the SQL runner, reflection) never import `Database`. They take a
*connectable* and ask this module what it means:

* an ``Engine`` is itself;
* a SQLAlchemy ``Connection`` is itself, and its engine is ``.engine``;
* a ``Session`` is itself (a ``scoped_session``: its current session);
* a *database* is anything else whose ``engine`` attribute is an ``Engine``
  (`HasEngine`): `macrostrat.database.Database`, or an object of the
  caller's that wraps one. A full `DatabaseLike` also has its current
  ``session``, ``in_transaction_block()``, ``block_connection()``,
  ``connection()`` and ``transaction()``: inside one of its
  ``transaction()``/``savepoint()`` blocks, work that must join the block
  runs on the block's connection;
* a psycopg connection is itself (only where the caller speaks psycopg:
  COPY).

The functions below are that rule, one question each: `engine_of` (which
engine), `bind_of` (an engine or connection to execute on), `database_of`
and `database_like` (is it a database at all, and one with transaction
blocks), `block_connection` (the connection of its open
block, if any), `in_transaction` (would retrying re-run someone else's
transaction) and `sql_connectable` (what the SQL runner works on).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

__all__ = [
    "DatabaseLike",
    "HasEngine",
    "bind_of",
    "block_connection",
    "database_like",
    "database_of",
    "engine_of",
    "in_transaction",
    "require_engine",
    "sql_connectable",
]


class HasEngine(Protocol):
    """Anything with an ``Engine`` as ``engine``: what admin and engine helpers accept."""

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine."""
        ...


class DatabaseLike(HasEngine, Protocol):
    """A `macrostrat.database.Database`, as the layers below it see one."""

    @property
    def session(self) -> Session:
        """The calling thread's current session (its block's, inside a block)."""
        ...

    def in_transaction_block(self) -> bool:
        """Whether the calling thread is inside a ``transaction()``/``savepoint()`` block."""
        ...

    def block_connection(self) -> Connection:
        """The connection of the calling thread's innermost transaction block."""
        ...

    def connection(self) -> Connection:
        """The connection the calling thread's work runs on now (its block's, or its session's)."""
        ...

    def transaction(
        self, *, connection: Connection | None = None
    ) -> AbstractContextManager[Any]:
        """A block in one transaction (on ``connection`` if given), ``session`` bound to it."""
        ...


_SQLALCHEMY = (Engine, Connection, Session, scoped_session)


def database_of(obj: object) -> HasEngine | None:
    """``obj`` if it is a database (not an engine, connection or session), else None.

    A database is an object whose ``engine`` attribute is an ``Engine``;
    SQLAlchemy's own objects (a ``Connection`` has an ``engine`` too) are not.
    """
    if isinstance(obj, _SQLALCHEMY):
        return None
    engine = getattr(obj, "engine", None)
    return cast(HasEngine, obj) if isinstance(engine, Engine) else None


def database_like(obj: object) -> DatabaseLike | None:
    """``obj`` if it is a database with sessions and transaction blocks (a `DatabaseLike`)."""
    db = database_of(obj)
    if db is None or not callable(getattr(db, "in_transaction_block", None)):
        return None
    return cast(DatabaseLike, db)


def engine_of(obj: object) -> Engine | None:
    """The engine behind ``obj``: an ``Engine`` itself, a ``Connection``'s or a database's.

    None for anything else (a ``Session``, a psycopg connection, a URL).
    """
    if isinstance(obj, Engine):
        return obj
    if isinstance(obj, Connection):
        return obj.engine
    db = database_of(obj)
    return db.engine if db is not None else None


def require_engine(obj: object, expected: str) -> Engine:
    """`engine_of`, or ``TypeError: expected <expected>, not <type>``."""
    engine = engine_of(obj)
    if engine is None:
        raise TypeError(f"expected {expected}, not {type(obj).__name__}")
    return engine


def bind_of(obj: object) -> Engine | Connection | None:
    """What to execute on: an ``Engine`` or ``Connection`` itself, a database's engine."""
    if isinstance(obj, (Engine, Connection)):
        return obj
    return engine_of(obj)


def block_connection(obj: object, *, flush: bool = False) -> Connection | None:
    """The connection of a database's open transaction block, or None.

    None unless ``obj`` is a `DatabaseLike` and the calling thread is inside
    one of its ``transaction()``/``savepoint()`` blocks.

    Parameters:
        obj: the connectable.
        flush: flush the block's session first, so that the block's pending
            ORM work is on the connection.
    """
    db = database_like(obj)
    if db is None or not db.in_transaction_block():
        return None
    if flush:
        db.session.flush()
    return db.block_connection()


def in_transaction(obj: object) -> bool:
    """Whether ``obj`` is in a transaction its caller did not start here.

    A ``Session`` or ``Connection`` with a transaction in progress, or a
    database inside a ``transaction()``/``savepoint()`` block.
    """
    if isinstance(obj, (Session, Connection)):
        return obj.in_transaction()
    db = database_like(obj)
    return db is not None and db.in_transaction_block()


def sql_connectable(obj: Any) -> Engine | Connection | Session:
    """What the SQL runner works on: an engine, a connection or a session.

    An ``Engine``, ``Connection`` or ``Session`` is itself; a
    ``scoped_session`` means its current session, and a database (with a
    ``Session`` as ``session``) its current session.

    Raises:
        TypeError: ``obj`` is none of those.
    """
    if isinstance(obj, scoped_session):
        obj = obj()
    if isinstance(obj, (Engine, Connection, Session)):
        return obj
    if database_of(obj) is not None:
        session = getattr(obj, "session", None)
        if isinstance(session, Session):
            return session
    raise TypeError(
        "expected an Engine, a Connection, a Session or a Database, "
        f"not {type(obj).__name__}"
    )
