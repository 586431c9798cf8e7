"""Engine creation: normalise URLs to the psycopg 3 driver."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, make_url
from sqlalchemy import create_engine as _sa_create_engine

__all__ = ["create_engine", "normalize_url"]

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


def create_engine(db_conn: str | URL | Engine, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine for ``db_conn``, or return it if it is one.

    Plain PostgreSQL URLs are normalised to psycopg 3 (see `normalize_url`).

    Parameters:
        db_conn: a URL string, a ``URL`` or an existing ``Engine`` (returned as is).
        **kwargs: passed to `sqlalchemy.create_engine`.
    """
    if isinstance(db_conn, Engine):
        return db_conn
    return _sa_create_engine(normalize_url(db_conn), **kwargs)
