"""Shared helpers of the transfer functions (upstream: ``transfer.utils``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import URL

from ..admin import create_database, database_exists, drop_database
from ..admin._connection import get_database_url
from ..errors import DatabaseExistsError, DatabaseNotFoundError, InvalidOptionError

__all__ = ["database_url", "raw_database_url", "run_sync"]

log = logging.getLogger("macrostrat.database.transfer")

T = TypeVar("T")


def __getattr__(name: str) -> Any:
    if name == "console":  # upstream's module-level Rich console, made lazily
        from rich.console import Console

        value = Console(stderr=True)
        globals()["console"] = value
        return value
    raise AttributeError(name)


def database_url(target: Any) -> URL:
    """The SQLAlchemy URL of a URL string, ``URL``, ``Engine``, ``Connection`` or `Database`."""
    return get_database_url(target)


def raw_database_url(url: Any) -> str:
    """The URL as a libpq string *with* its password (never log or print it).

    Prefer passing URLs to the transfer functions, which keep the password out
    of command lines.
    """
    return (
        database_url(url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def _create_database_if_not_exists(
    url: Any,
    *,
    create: bool = False,
    allow_exists: bool = True,
    overwrite: bool = False,
) -> None:
    """Make sure the target database exists, as the restore options ask.

    Parameters:
        url: the target database.
        create: create it if missing.
        allow_exists: accept an existing database.
        overwrite: drop an existing database first (implies ``create``).

    Raises:
        DatabaseNotFoundError: missing and not ``create`` ("use create=True").
        DatabaseExistsError: exists and neither ``allow_exists`` nor ``overwrite``.
    """
    target = database_url(url)
    create = create or overwrite
    exists = database_exists(target)
    if exists and overwrite:
        log.info("dropping database %s to overwrite it", target.database)
        drop_database(target)
        exists = False
    elif exists and not allow_exists:
        raise DatabaseExistsError(
            f"database {target.database!r} already exists (use overwrite=True)"
        )
    if not exists:
        if not create:
            raise DatabaseNotFoundError(
                f"database {target.database!r} does not exist (use create=True)"
            )
        log.info("creating database %s", target.database)
        create_database(target)


def run_sync(
    func: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
) -> T:
    """Run the coroutine function ``func`` to completion from synchronous code.

    Uses ``asyncio.run``; inside a running event loop (a notebook) it runs in
    a worker thread with its own loop instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(func(*args, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, func(*args, **kwargs)).result()


def check_options(given: dict[str, Any], allowed: set[str], where: str) -> None:
    """Raise `InvalidOptionError` for keyword options ``where`` does not take."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidOptionError(
            f"{where}() got unexpected option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(allowed))}"
        )
