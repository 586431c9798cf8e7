"""Async engines and sessions with the same defaults as the sync API.

The sync `Database` stays the main path; these factories are for applications
that are async end to end (FastAPI/Starlette handlers). They need SQLAlchemy's
asyncio support: ``pip install 'macrostrat.database[asyncio]'``.

    engine = create_async_engine("postgresql://user:pw@host/db")
    sessions = async_sessionmaker(engine)
    async with AsyncTransaction(sessions) as session:
        session.add(Unit(name="Baraboo Quartzite"))
    # committed here; rolled back if the block raised
"""

from __future__ import annotations

import importlib
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL

from .engine import engine_defaults, normalize_url, secrets_to_connect_args
from .transactions import RollbackMode, check_rollback_mode

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
    from sqlalchemy.ext.asyncio import async_sessionmaker as _SessionMaker

__all__ = ["AsyncTransaction", "async_sessionmaker", "create_async_engine"]


def _asyncio() -> ModuleType:
    """SQLAlchemy's asyncio extension, once greenlet (which it needs) is known to import."""
    try:
        importlib.import_module("greenlet")  # SQLAlchemy's asyncio layer needs it
        return importlib.import_module("sqlalchemy.ext.asyncio")
    except ImportError as exc:
        raise ImportError(
            "Async support needs SQLAlchemy's asyncio extra: "
            "pip install 'macrostrat.database[asyncio]'"
        ) from exc


def create_async_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """Create an `AsyncEngine` on psycopg 3's async driver.

    Plain ``postgresql://`` URLs are normalised to ``postgresql+psycopg://``
    (which SQLAlchemy runs with psycopg's ``AsyncConnection``), and PostgreSQL
    engines get the same defaults as `macrostrat.database.create_engine`
    (pre-ping, recycling, pool sizes, an application name); the caller's
    options win. Secrets in the URL's query are handled as by
    `create_engine` (never shown by ``str(engine.url)``).

    Parameters:
        url: a connection URL.
        **kwargs: passed to `sqlalchemy.ext.asyncio.create_async_engine`.
    """
    _asyncio()
    from sqlalchemy.ext.asyncio import create_async_engine as _create

    url, kwargs, _moved = secrets_to_connect_args(normalize_url(url), kwargs)
    return _create(url, **engine_defaults(url, kwargs))


def async_sessionmaker(
    engine: AsyncEngine, **kwargs: Any
) -> _SessionMaker[AsyncSession]:
    """An `async_sessionmaker` bound to ``engine`` with ``expire_on_commit=False``.

    Objects stay readable after a commit without another round trip, which is
    what async code needs (lazy loads cannot happen implicitly there).

    Parameters:
        engine: an `AsyncEngine` (see `create_async_engine`).
        **kwargs: other `async_sessionmaker` options; they win.
    """
    _asyncio()
    from sqlalchemy.ext.asyncio import async_sessionmaker as _sessionmaker

    kwargs.setdefault("expire_on_commit", False)
    return _sessionmaker(engine, **kwargs)


class AsyncTransaction:
    """An async context manager: a new session in a transaction, ended on exit.

    On exit the transaction commits, or rolls back when the block raised
    (``rollback="on-error"``, the default), always rolls back
    (``"always"``, for tests and dry runs), or commits even after an error
    (``"never"``); then the session is closed. Exceptions from the block are
    re-raised.

    Parameters:
        sessions: an `async_sessionmaker` (see `async_sessionmaker`).
        rollback: ``"on-error"``, ``"always"`` or ``"never"``; anything else
            raises `InvalidOptionError`.
    """

    def __init__(
        self,
        sessions: _SessionMaker[AsyncSession],
        *,
        rollback: RollbackMode = "on-error",
    ) -> None:
        self.rollback: RollbackMode = check_rollback_mode(rollback)
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        self._session = self._sessions()
        await self._session.begin()
        return self._session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        assert session is not None
        try:
            roll_back = self.rollback == "always" or (
                self.rollback == "on-error" and exc is not None
            )
            if roll_back:
                await session.rollback()
            else:
                await session.commit()
        finally:
            await session.close()
