"""The configured auth database (upstream ``core.database`` names).

`connect_engine` builds an `AuthDatabase` and makes it current: the value is
stored where `get_database`, `get_engine` and the FastAPI dependencies read it
(a ContextVar with a process-wide fallback, so it reaches worker threads).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from macrostrat.database import Database

from ..errors import AuthNotConfiguredError
from .schema import SCHEMA, Base, Token
from .store import AuthDatabase

__all__ = [
    "connect_engine",
    "dispose_engine",
    "get_access_token",
    "get_auth_database",
    "get_base",
    "get_database",
    "get_engine",
    "get_session",
    "get_session_maker",
    "set_auth_database",
]

_current: ContextVar[AuthDatabase | None] = ContextVar("_auth_database", default=None)
_defaults: dict[str, Any] = {}


def set_auth_database(store: AuthDatabase | None) -> None:
    """Make ``store`` the current auth database (None forgets it)."""
    _current.set(store)
    if store is None:
        _defaults.clear()
    else:
        _defaults["store"] = store


def get_auth_database() -> AuthDatabase:
    """The current `AuthDatabase`; `AuthNotConfiguredError` if none."""
    store = _current.get() or _defaults.get("store")
    if store is None:
        raise AuthNotConfiguredError(
            "No auth database configured; call "
            "macrostrat.auth_system.core.connect_engine(url_or_database, ...)"
        )
    return store


def connect_engine(
    uri: str | Database,
    schema: str = SCHEMA,
    *,
    token_key: str | bytes | None = None,
    access_groups: Iterable[str | int] = ("admin",),
    create_schema: bool = False,
) -> AuthDatabase:
    """Connect to the auth tables, check them and make them current.

    Parameters:
        uri: a database URL or a `macrostrat.database.Database`.
        schema: the schema holding the auth tables.
        token_key: the API-token HMAC key (default ``$MACROSTRAT_AUTH_TOKEN_KEY``).
        access_groups: group names or ids that `has_access` accepts.
        create_schema: create missing tables instead of failing.

    Raises:
        AuthConfigurationError: bad settings, or the tables are missing.
    """
    store = AuthDatabase(
        uri, schema=schema, token_key=token_key, access_groups=access_groups
    )
    if create_schema:
        store.create_schema()
    store.check_schema()
    set_auth_database(store)
    return store


def get_database() -> Database:
    """The current `macrostrat.database.Database`."""
    return get_auth_database().database


def get_engine() -> Engine:
    """The current engine (with the schema mapping applied)."""
    return get_auth_database().engine


def get_base() -> type[Base]:
    """The declarative base of the auth models."""
    return Base


def dispose_engine() -> None:
    """Dispose the current engine's connection pool (it reconnects on demand)."""
    get_auth_database().database.engine.dispose()


def get_session_maker() -> sessionmaker[Session]:
    """A session factory bound to the current engine."""
    return get_auth_database().session_maker


def get_session() -> Iterator[Session]:
    """A FastAPI dependency yielding a session, closed afterwards."""
    with get_session_maker()() as session:
        yield session


def get_access_token(token: str) -> Token | None:
    """The valid API token for plaintext ``token`` or None (unknown or expired).

    Upstream took a bcrypt hash with a salt fixed in source; this takes the
    token itself and hashes it with the server key.
    """
    return get_auth_database().get_access_token(token)
