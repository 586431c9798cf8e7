"""The configured auth database (upstream ``core.database`` names).

`connect_engine` builds an `AuthDatabase` and makes it the auth database of
the whole process (every thread and task sees it, so it reaches requests
served from worker threads): `get_database`, `get_engine`, the request
dependencies and `DatabaseIdentityProvider` read it, and login throttles
without a store of their own count in its ``login_throttle`` table, and
backends without a revocation store of their own keep revoked token ids in its
``revoked_token`` table.
`use_auth_database` overrides it for the current context only (this thread
or task and the tasks started from it), for tests and background tasks. See
`macrostrat.auth_system._slots.ContextSlot`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from macrostrat.database import Database

from .._slots import ContextSlot
from ..legacy._revocations import DEFAULT_REVOCATION_STORE
from ..legacy._throttle import DEFAULT_STORE
from ._store import AuthDatabase
from .schema import SCHEMA, Base, Token

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
    "use_auth_database",
]

_AUTH_DATABASE: ContextSlot[AuthDatabase] = ContextSlot(
    "auth_database",
    "No auth database configured; call "
    "macrostrat.auth_system.core.connect_engine(url_or_database, ...)",
)


def set_auth_database(store: AuthDatabase | None) -> None:
    """Make ``store`` the auth database of the whole process (None forgets it).

    Login throttles without a store of their own then count in its
    ``login_throttle`` table, and backends without a revocation store of
    their own keep revoked token ids in its ``revoked_token`` table (both in
    memory, per process, again after None).
    """
    _AUTH_DATABASE.set(store)
    DEFAULT_STORE.set(store.throttle_store if store is not None else None)
    DEFAULT_REVOCATION_STORE.set(store.revocation_store if store is not None else None)


def get_auth_database() -> AuthDatabase:
    """The current `AuthDatabase`; `AuthNotConfiguredError` if none.

    The one `use_auth_database` set for this context, else the process-wide one.
    """
    return _AUTH_DATABASE.get()


@contextmanager
def use_auth_database(store: AuthDatabase | None) -> Iterator[AuthDatabase | None]:
    """Make ``store`` current in this context until the ``with`` block ends.

    Takes precedence over the process-wide auth database (`connect_engine`,
    `set_auth_database`) in this thread or task and the tasks it starts, for
    the request dependencies, `DatabaseIdentityProvider`, the login
    throttle's default store and the backends' default revocation store
    alike. None means "no auth database" there.

    Parameters:
        store: the auth database for this context, or None.
    """
    throttle_store = store.throttle_store if store is not None else None
    revocations = store.revocation_store if store is not None else None
    with (
        _AUTH_DATABASE.override(store),
        DEFAULT_STORE.override(throttle_store),
        DEFAULT_REVOCATION_STORE.override(revocations),
    ):
        yield store


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
        create_schema: create missing tables (`create_auth_schema`) instead
            of failing; without it nothing is created.

    Raises:
        AuthConfigurationError: bad settings, or tables are missing (the
            message names them and says what to run; a database created by
            an earlier version lacks the newer tables, such as
            ``revoked_token``).
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
