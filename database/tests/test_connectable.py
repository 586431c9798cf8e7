"""The one rule that turns a connectable into an engine, a connection or a session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from macrostrat.database import Database
from macrostrat.database._connectable import (
    bind_of,
    block_connection,
    database_like,
    database_of,
    engine_of,
    in_transaction,
    require_engine,
    sql_connectable,
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    yield engine
    engine.dispose()


class Wrapper:
    """An object of the caller's that carries an engine (no sessions)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


class FakeDatabase(Wrapper):
    """A `DatabaseLike` of the caller's, with a block that can be entered."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.session = Session(bind=engine)
        self.in_block = False
        self.flushed = 0
        self.conn: Connection | None = None

    def in_transaction_block(self) -> bool:
        return self.in_block

    def block_connection(self) -> Connection:
        assert self.conn is not None
        return self.conn

    def connection(self) -> Connection:
        return self.block_connection()

    def transaction(
        self, *, connection: Connection | None = None
    ) -> AbstractContextManager[Any]:
        return nullcontext(self)


def test_engines_connections_and_databases(engine: Engine) -> None:
    with engine.connect() as conn:
        assert engine_of(engine) is engine
        assert engine_of(conn) is engine
        assert engine_of(Wrapper(engine)) is engine
        assert bind_of(conn) is conn
        assert bind_of(Wrapper(engine)) is engine
        # SQLAlchemy's own objects are never "a database" (a Connection has
        # an engine attribute too)
        assert database_of(conn) is None
        assert database_of(engine) is None
        wrapper = Wrapper(engine)
        assert database_of(wrapper) is wrapper
        assert database_like(wrapper) is None  # no transaction blocks
    for other in (None, "sqlite://", object(), Session(bind=engine)):
        assert engine_of(other) is None
    with pytest.raises(TypeError, match="expected an engine, not str"):
        require_engine("sqlite://", "an engine")


def test_a_real_database_is_database_like(engine: Engine) -> None:
    db = Database(engine)
    try:
        assert database_like(db) is db
        assert engine_of(db) is engine
        assert block_connection(db) is None
        assert not in_transaction(db)
        with db.transaction():
            assert in_transaction(db)
            assert block_connection(db) is db.block_connection()
            assert db.block_connection() is db.connection()
        assert sql_connectable(db) is db.session
    finally:
        db.cleanup()


def test_blocks_of_a_database_of_the_callers(engine: Engine) -> None:
    db = FakeDatabase(engine)
    assert database_like(db) is db
    assert block_connection(db) is None
    assert not in_transaction(db)
    with engine.connect() as conn:
        db.in_block, db.conn = True, conn
        assert in_transaction(db)
        assert block_connection(db, flush=True) is conn
    db.session.close()


def test_sql_connectable(engine: Engine) -> None:
    with engine.connect() as conn:
        assert sql_connectable(conn) is conn
    assert sql_connectable(engine) is engine
    scoped = scoped_session(sessionmaker(bind=engine))
    assert sql_connectable(scoped) is scoped()
    scoped.remove()
    with pytest.raises(TypeError, match="not Wrapper"):
        sql_connectable(Wrapper(engine))  # an engine but no session
    with pytest.raises(TypeError, match="not int"):
        sql_connectable(3)


def test_in_transaction_of_sessions_and_connections(engine: Engine) -> None:
    with engine.connect() as conn:
        assert not in_transaction(conn)
        conn.begin()
        assert in_transaction(conn)
    with Session(bind=engine) as session:
        assert not in_transaction(session)
        session.connection()
        assert in_transaction(session)
    assert not in_transaction(object())
