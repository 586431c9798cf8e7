"""Engines: turn a URL, an engine or a `Database` into a psycopg 3 engine.

SQLite URLs (``sqlite://``, ``sqlite:///path.db``) work too: their engines get
SQLAlchemy's documented fix for the pysqlite driver's transaction handling
(see `create_engine`).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from sqlalchemy import URL, Engine, make_url
from sqlalchemy import create_engine as _sa_create_engine

from ._commit import install_commit_resolution
from ._connectable import HasEngine, database_of
from ._redact import is_secret_parameter, redact
from ._renamed import renamed_parameters
from ._sqlite_compat import SQLITE_NO_BEGIN, install_transaction_fix, is_pysqlite
from .errors import InvalidOptionError

__all__ = [
    "DEFAULT_APPLICATION_NAME",
    "ENGINE_DEFAULTS",
    "SQLITE_NO_BEGIN",
    "DatabaseInput",
    "create_engine",
    "engine_defaults",
    "normalize_url",
]

log = logging.getLogger(__name__)

DatabaseInput = HasEngine | Engine | str | URL
"""What `create_engine` and `Database` accept: a `Database`, an engine or a URL.

(A `Database` is anything with an ``Engine`` as ``engine``: see
`macrostrat.database._connectable`.)"""

_PLAIN_POSTGRES = ("postgresql", "postgres")

ENGINE_DEFAULTS: dict[str, Any] = {
    "pool_pre_ping": True,
    "pool_recycle": 1800,
    "pool_size": 5,
    "max_overflow": 5,
    "pool_timeout": 30,
}
"""Engine options `create_engine` adds for PostgreSQL URLs unless given.

``pool_pre_ping`` tests each connection as it leaves the pool and replaces a
dead one (after a server restart, a failover or a terminated backend);
``pool_recycle`` replaces connections older than 30 minutes (before proxies
and firewalls drop idle ones); at most 5 + 5 connections per engine, and a
checkout waits 30 s for a free one.
"""

DEFAULT_APPLICATION_NAME = "macrostrat"
"""The ``application_name`` sessions report (``pg_stat_activity``) unless set."""

_QUEUE_POOL_ONLY = ("pool_size", "max_overflow", "pool_timeout")

# The secret query parameters `create_engine` took out of an engine's URL,
# keyed by the engine's dialect: one per `create_engine` call, shared by the
# engine's ``execution_options()`` copies and kept across ``dispose()``.
_MOVED_PARAMETERS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def _last(value: Any) -> Any:
    """The value libpq uses for a parameter given several times: the last."""
    return value[-1] if isinstance(value, tuple) else value


def _secrets_out_of_url(url: URL) -> tuple[URL, dict[str, Any]]:
    """Take the secrets out of a PostgreSQL ``url``'s query.

    ``str(url)`` and ``repr(engine)`` mask only the URL's password component,
    not ``?password=`` or ``?sslpassword=``.  So a ``password`` query
    parameter becomes the password component (it overrides one given in the
    user information, as in libpq), and the other secret parameters (see
    `macrostrat.database._redact.is_secret_parameter`: ``sslpassword``,
    ``options`` setting a password...) are returned, to be passed to the
    driver as ``connect_args``.  Other URLs are returned unchanged.

    Parameters:
        url: a normalised URL.

    Returns:
        The URL without secret query parameters, and those parameters.
    """
    if url.get_backend_name() != "postgresql":
        return url, {}
    moved: dict[str, Any] = {}
    password = url.query.get("password")
    if password is not None:
        url = url.set(password=_last(password))
    for key, value in url.query.items():
        if key != "password" and is_secret_parameter(key, value):
            moved[key] = _last(value)
    secret_keys = [k for k in url.query if k == "password" or k in moved]
    if secret_keys:
        url = url.difference_update_query(secret_keys)
    return url, moved


def secrets_to_connect_args(
    url: URL, kwargs: dict[str, Any]
) -> tuple[URL, dict[str, Any], dict[str, str]]:
    """Take the secrets out of ``url``'s query, into the engine's ``connect_args``.

    Returns the URL to give SQLAlchemy (``?password=`` as its password
    component, masked by SQLAlchemy), ``kwargs`` with the other secret
    parameters added to ``connect_args`` (the caller's ``connect_args``
    win, as in SQLAlchemy), and the moved parameters as passed.

    Parameters:
        url: a normalised URL.
        kwargs: the engine options.
    """
    url, moved = _secrets_out_of_url(url)
    if moved:
        connect_args = {**moved, **(kwargs.get("connect_args") or {})}
        kwargs = {**kwargs, "connect_args": connect_args}
        moved = {key: str(connect_args[key]) for key in moved}
    return url, kwargs, moved


def connection_url(engine: Engine) -> URL:
    """The URL ``engine`` connects with, secrets included.

    For an engine made by `create_engine` from a URL with secret query
    parameters, ``engine.url`` lacks those that went to the driver as
    ``connect_args`` (``sslpassword``, ``options`` with a password...); they
    are put back here, for code that must connect the same way (the client
    programs of `macrostrat.database.transfer`). Never show the result
    unmasked (see `macrostrat.database._redact.redact`).

    Parameters:
        engine: the engine.
    """
    moved = _MOVED_PARAMETERS.get(engine.dialect)
    return engine.url.update_query_dict(moved) if moved else engine.url


def engine_defaults(url: str | URL, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return ``kwargs`` completed with `ENGINE_DEFAULTS` for a PostgreSQL ``url``.

    The caller's options always win. Non-PostgreSQL URLs (SQLite...) get
    nothing added. The pool sizes are only added for SQLAlchemy's default
    queue pool (not with ``poolclass=NullPool`` or ``pool=``, which reject
    them); ``application_name`` (`DEFAULT_APPLICATION_NAME`) is added to
    ``connect_args`` unless the URL's query or ``connect_args`` sets one.

    Parameters:
        url: the connection URL.
        kwargs: the options the caller gave `create_engine`.
    """
    from sqlalchemy.pool import QueuePool

    url = make_url(url)
    if url.get_backend_name() != "postgresql":
        return dict(kwargs)
    result = dict(kwargs)
    if "pool" in kwargs:
        return result
    poolclass = kwargs.get("poolclass")
    for key, value in ENGINE_DEFAULTS.items():
        if key in _QUEUE_POOL_ONLY and not (
            poolclass is None
            or (isinstance(poolclass, type) and issubclass(poolclass, QueuePool))
        ):
            continue
        result.setdefault(key, value)
    connect_args = dict(kwargs.get("connect_args") or {})
    if "application_name" not in url.query and "application_name" not in connect_args:
        connect_args["application_name"] = DEFAULT_APPLICATION_NAME
        result["connect_args"] = connect_args
    return result


def normalize_url(url: str | URL) -> URL:
    """Return ``url`` as a SQLAlchemy ``URL`` that uses the psycopg 3 driver.

    ``postgresql://`` and ``postgres://`` URLs (which SQLAlchemy would map to
    psycopg2) become ``postgresql+psycopg://``.  URLs that name a driver keep it.
    libpq's multi-host form (``postgresql://u@h1:5432,h2:5433/db``) becomes
    SQLAlchemy's (``?host=h1:5432&host=h2:5433``; see `macrostrat.database.dsn`).

    Parameters:
        url: a connection string or ``URL``.
    """
    if isinstance(url, str) and "," in url.partition("?")[0]:
        # libpq's multi-host form, which SQLAlchemy's parser refuses.
        from .dsn import parse_dsn

        url = parse_dsn(url).to_url()
    url = make_url(url)
    if url.drivername in _PLAIN_POSTGRES:
        url = url.set(drivername="postgresql+psycopg")
    return url


@renamed_parameters({"_input": "db_conn"})  # upstream's name
def create_engine(
    db_conn: DatabaseInput,
    *,
    apply_defaults: bool = True,
    sqlite_transactions: bool = True,
    server_prepared_statements: bool = True,
    **kwargs: Any,
) -> Engine:
    """Create a SQLAlchemy engine for ``db_conn``, or return the one it already has.

    A `Database` gives its own engine and an ``Engine`` is returned as is (so
    ``create_engine(engine) is engine``); neither can take engine options,
    because they would silently not apply, so passing any raises. A string or
    ``URL`` makes a new engine; plain PostgreSQL URLs are normalised to
    psycopg 3 (see `normalize_url`), and a PostgreSQL engine gets the
    production-leaning `ENGINE_DEFAULTS` (pre-ping, recycling, small pool) and
    an ``application_name`` unless the caller sets them (see `engine_defaults`).

    Secrets never stay in a PostgreSQL engine's URL query, where ``str(url)``
    and ``repr(engine)`` would show them: ``?password=`` becomes the URL's
    password (which SQLAlchemy masks), and other secret parameters
    (``?sslpassword=``, ``options`` that set a password-like setting) are
    passed to the driver as ``connect_args`` instead (`connection_url` gives
    the URL with them).

    SQLite through the standard ``sqlite3`` driver (``sqlite://``,
    ``sqlite:///path.db``, ``sqlite+pysqlite://``) gets SQLAlchemy's
    documented fix for that driver's transaction handling ("Serializable
    isolation / Savepoints / Transactional DDL" in SQLAlchemy's SQLite
    docs): left alone, ``sqlite3`` begins transactions only before
    ``INSERT``/``UPDATE``/``DELETE``, so DDL, ``SELECT`` and ``SAVEPOINT`` run
    outside them, and a savepoint does not belong to the transaction
    SQLAlchemy thinks it is in.  A ``connect`` hook sets each DBAPI
    connection's ``isolation_level`` to None (``sqlite3`` emits no ``BEGIN``
    of its own) and a ``begin`` hook emits ``BEGIN`` whenever SQLAlchemy
    begins a transaction (except on an ``AUTOCOMMIT`` connection), so
    ``Connection.begin()``, ``begin_nested()`` (SAVEPOINT), ``Session`` and
    `Database.transaction` behave as on PostgreSQL, DDL included.  Pass
    ``sqlite_transactions=False`` to keep ``sqlite3``'s own behaviour; an
    engine made with ``isolation_level="AUTOCOMMIT"`` never gets the hooks
    (SQLAlchemy documents them as incompatible).

    Parameters:
        db_conn: a `Database`, an ``Engine``, a URL string or a ``URL``.
        apply_defaults: add `ENGINE_DEFAULTS` and the application name
            (``False`` gives SQLAlchemy's own defaults).
        sqlite_transactions: for a pysqlite URL, install the transaction
            fix described above (URL input only).
        server_prepared_statements: let psycopg prepare a statement on the
            server after it ran a few times (its ``prepare_threshold``).
            ``False`` for PgBouncer older than 1.21 in transaction pooling,
            where a prepared statement lands on one server connection and the
            next transaction may run on another ("prepared statement
            _pg3_0 does not exist"); PgBouncer 1.21+ with
            ``max_prepared_statements`` and session pooling need nothing.
        **kwargs: passed to `sqlalchemy.create_engine` (URL input only).

    Raises:
        InvalidOptionError: options were given with a `Database` or ``Engine``.
        TypeError: ``db_conn`` is none of the accepted types.
    """
    database = database_of(db_conn)
    if database is not None:
        db_conn = database.engine
    if isinstance(db_conn, Engine):
        if not server_prepared_statements:
            kwargs = {**kwargs, "server_prepared_statements": False}
        if kwargs:
            raise InvalidOptionError(
                "engine options cannot be applied to an existing engine "
                f"(got {', '.join(sorted(kwargs))}); create the engine with them, "
                "or pass a URL instead"
            )
        # An engine made elsewhere commits with the same truth about outcomes.
        install_commit_resolution(db_conn)
        return db_conn
    if not isinstance(db_conn, (str, URL)):
        raise TypeError(
            "expected a Database, an Engine, a URL or a URL string, "
            f"not {type(db_conn).__name__}"
        )
    url, kwargs, moved = secrets_to_connect_args(normalize_url(db_conn), kwargs)
    if not server_prepared_statements:
        connect_args = dict(kwargs.get("connect_args") or {})
        connect_args["prepare_threshold"] = None
        kwargs = {**kwargs, "connect_args": connect_args}
    if apply_defaults:
        kwargs = engine_defaults(url, kwargs)
    log.debug("creating an engine for %s", redact(url))
    engine = _sa_create_engine(url, **kwargs)
    if moved:
        _MOVED_PARAMETERS[engine.dialect] = moved
    if (
        sqlite_transactions
        and is_pysqlite(url)
        and kwargs.get("isolation_level") != "AUTOCOMMIT"
    ):
        install_transaction_fix(engine)
    install_commit_resolution(
        engine,
        connection_url(engine),
        kwargs.get("connect_args"),
    )
    return engine
