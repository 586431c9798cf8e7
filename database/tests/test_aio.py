"""Async engines, sessions and transactions against the real server.

The tests drive their coroutines with ``asyncio.run`` (no async test plugin).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Integer, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from macrostrat.database.aio import (
    AsyncTransaction,
    async_sessionmaker,
    create_async_engine,
)
from macrostrat.database.errors import InvalidOptionError


class Base(DeclarativeBase):
    pass


class Unit(Base):
    __tablename__ = "aio_unit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String)


@pytest.fixture
def url(empty_db, empty_database_url):
    Base.metadata.create_all(empty_db.engine)
    return empty_database_url


def _count(db) -> int:
    with db.engine.connect() as conn:
        return len(conn.execute(select(Unit)).all())


def test_engine_uses_psycopg_async_with_the_sync_defaults(url):
    async def main():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                app = (await conn.execute(text("SHOW application_name"))).scalar()
            return engine.url.drivername, engine.pool._pre_ping, app
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == ("postgresql+psycopg", True, "macrostrat")


def test_transaction_commits_and_objects_stay_readable(url, empty_db):
    async def main():
        engine = create_async_engine(url)
        sessions = async_sessionmaker(engine)
        try:
            async with AsyncTransaction(sessions) as session:
                unit = Unit(name="Baraboo Quartzite")
                session.add(unit)
            # expire_on_commit=False: readable after commit and close, no I/O
            return unit.name, unit.id
        finally:
            await engine.dispose()

    name, ident = asyncio.run(main())
    assert name == "Baraboo Quartzite"
    assert ident is not None
    assert _count(empty_db) == 1


def test_transaction_rolls_back_on_error_and_reraises(url, empty_db):
    async def main():
        engine = create_async_engine(url)
        try:
            async with AsyncTransaction(async_sessionmaker(engine)) as session:
                session.add(Unit(name="kept?"))
                await session.flush()
                raise KeyError("boom")
        finally:
            await engine.dispose()

    with pytest.raises(KeyError, match="boom"):
        asyncio.run(main())
    assert _count(empty_db) == 0


def test_transaction_always_rolls_back(url, empty_db):
    async def main():
        engine = create_async_engine(url)
        try:
            sessions = async_sessionmaker(engine)
            async with AsyncTransaction(sessions, rollback="always") as session:
                session.add(Unit(name="dry run"))
                await session.flush()
        finally:
            await engine.dispose()

    asyncio.run(main())
    assert _count(empty_db) == 0


def test_unknown_rollback_mode_is_refused():
    with pytest.raises(InvalidOptionError, match="on-error"):
        AsyncTransaction(None, rollback=True)  # type: ignore[arg-type]
