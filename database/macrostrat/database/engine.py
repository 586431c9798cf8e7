"""Engines: turn a URL, an engine or a `Database` into a psycopg 3 engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Union

from sqlalchemy import URL, Engine, make_url
from sqlalchemy import create_engine as _sa_create_engine

from .errors import InvalidOptionError

if TYPE_CHECKING:
    from .core import Database

__all__ = ["DatabaseInput", "create_engine", "normalize_url"]

log = logging.getLogger(__name__)

DatabaseInput = Union["Database", Engine, str, URL]
"""What `create_engine` and `Database` accept: a `Database`, an engine or a URL."""

_PLAIN_POSTGRES = ("postgresql", "postgres")


def normalize_url(url: str | URL) -> URL:
    """Return ``url`` as a SQLAlchemy ``URL`` that uses the psycopg 3 driver.

    ``postgresql://`` and ``postgres://`` URLs (which SQLAlchemy would map to
    psycopg2) become ``postgresql+psycopg://``.  URLs that name a driver keep it.

    Parameters:
        url: a connection string or ``URL``.
    """
    url = make_url(url)
    if url.drivername in _PLAIN_POSTGRES:
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_engine(db_conn: DatabaseInput, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine for ``db_conn``, or return the one it already has.

    A `Database` gives its own engine and an ``Engine`` is returned as is (so
    ``create_engine(engine) is engine``); neither can take engine options,
    because they would silently not apply, so passing any raises. A string or
    ``URL`` makes a new engine; plain PostgreSQL URLs are normalised to
    psycopg 3 (see `normalize_url`).

    Parameters:
        db_conn: a `Database`, an ``Engine``, a URL string or a ``URL``.
        **kwargs: passed to `sqlalchemy.create_engine` (URL input only).

    Raises:
        InvalidOptionError: options were given with a `Database` or ``Engine``.
        TypeError: ``db_conn`` is none of the accepted types.
    """
    from .core import Database

    if isinstance(db_conn, Database):
        db_conn = db_conn.engine
    if isinstance(db_conn, Engine):
        if kwargs:
            raise InvalidOptionError(
                "engine options cannot be applied to an existing engine "
                f"(got {', '.join(sorted(kwargs))}); create the engine with them, "
                "or pass a URL instead"
            )
        return db_conn
    if not isinstance(db_conn, (str, URL)):
        raise TypeError(
            "expected a Database, an Engine, a URL or a URL string, "
            f"not {type(db_conn).__name__}"
        )
    url = normalize_url(db_conn)
    log.debug("creating an engine for %s", url.render_as_string(hide_password=True))
    return _sa_create_engine(url, **kwargs)
