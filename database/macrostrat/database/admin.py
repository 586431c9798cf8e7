"""Database lifecycle: create, drop, test for, copy and wait for PostgreSQL databases.

Every operation here runs on a *maintenance connection*: a psycopg 3 connection
in autocommit mode to the same server, opened explicitly on the ``postgres``
database (or ``template1`` when ``postgres`` cannot be reached, or the database
named by ``maintenance_database=``).  The database name is always given to
libpq, so ``PGDATABASE`` and the other libpq defaults for the database name are
never consulted, and the maintenance connection is never opened on the database
being created, dropped or copied.

Database names are always sent as quoted identifiers (`psycopg.sql.Identifier`),
and names longer than PostgreSQL's 63-byte limit are refused rather than
silently truncated by the server.  Error messages name the database; they never
contain a password.

Other users' sessions are ended only when the caller asks for it:
``force=True`` / ``force_drop=True`` (``DROP DATABASE ... WITH (FORCE)``),
`close_all_connections`, or ``template_database(close_source_connections=True)``.
Without that, dropping (or copying) a database that others are connected to
fails after about a second with a message that counts the sessions, instead of
PostgreSQL's own five-second wait.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Union

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import URL, Connection, Engine, make_url

from .engine import create_engine
from .errors import DatabaseExistsError, DatabaseNotFoundError, InvalidOptionError

if TYPE_CHECKING:
    from .core import Database

__all__ = [
    "DatabaseTarget",
    "close_all_connections",
    "connection_args",
    "create_database",
    "database_exists",
    "db_isready",
    "drop_database",
    "get_database_url",
    "template_database",
    "temporary_database",
    "wait_for_database",
]

log = logging.getLogger(__name__)

DatabaseTarget = Union[str, URL, Engine, Connection, "Database"]
"""Anything that names a database: a URL (string or ``URL``), an ``Engine``, a
``Connection`` or a `Database`."""

MAINTENANCE_DATABASES: tuple[str, ...] = ("postgres", "template1")
"""Databases tried, in order, for the maintenance connection."""

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL's limit on the length of a name (NAMEDATALEN - 1), in bytes."""

# How long to wait for sessions that are ending before calling a database busy.
_SETTLE_SECONDS = 1.0

_TEMPLATE_HINT = (
    "a template cannot be copied while anyone is connected to it; close those "
    "sessions first (close_all_connections, or template_database("
    "close_source_connections=True))"
)

# Settings whose stored value is a list of separately quoted items; they must be
# given back to ALTER DATABASE ... SET as several literals, not as one string.
_LIST_QUOTED_SETTINGS = frozenset(
    {
        "search_path",
        "temp_tablespaces",
        "local_preload_libraries",
        "session_preload_libraries",
        "shared_preload_libraries",
        "unix_socket_directories",
    }
)


# -- URLs and names -----------------------------------------------------------


def get_database_url(target: DatabaseTarget) -> URL:
    """Return the SQLAlchemy ``URL`` of the database that ``target`` names.

    The password is kept in the returned ``URL`` (render it with
    ``hide_password=True`` before showing it to anyone).

    Parameters:
        target: a URL string, a ``URL``, an ``Engine``, a ``Connection`` or a
            `Database` (anything with an ``engine`` attribute).

    Raises:
        ValueError: ``target`` is none of these.
    """
    if isinstance(target, URL):
        return target
    if isinstance(target, str):
        return make_url(target)
    if isinstance(target, Engine):
        return target.url
    if isinstance(target, Connection):
        return target.engine.url
    engine = getattr(target, "engine", None)
    if isinstance(engine, Engine):
        return engine.url
    raise ValueError(f"Invalid input type: {type(target).__name__}")


def _display(url: URL) -> str:
    """``url`` for logs and messages, password hidden."""
    return url.render_as_string(hide_password=True)


def _database_name(url: URL) -> str:
    """The database name in ``url``, checked to be usable as a name."""
    name = url.database
    if not name:
        raise InvalidOptionError(f"the URL {_display(url)} names no database")
    _check_name(name, "database")
    return name


def _check_name(name: str, what: str) -> None:
    if not name:
        raise InvalidOptionError(f"the {what} name is empty")
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise InvalidOptionError(
            f"{what} name {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes; "
            "PostgreSQL would truncate it"
        )


def _connect_kwargs(url: URL, dbname: str) -> dict[str, Any]:
    """psycopg ``connect`` arguments for ``url``, connecting to ``dbname``."""
    kwargs: dict[str, Any] = url.translate_connect_args(
        username="user", database="dbname"
    )
    for key, value in url.query.items():
        kwargs[key] = ",".join(value) if isinstance(value, tuple) else value
    kwargs["dbname"] = dbname
    return kwargs


# -- the maintenance connection ------------------------------------------------


def _maintenance_candidates(
    avoid: Iterable[str | None], maintenance_database: str | None
) -> list[str]:
    if maintenance_database is not None:
        return [maintenance_database]
    skip = {name for name in avoid if name}
    candidates = [name for name in MAINTENANCE_DATABASES if name not in skip]
    if not candidates:  # pragma: no cover - only when both are avoided
        raise InvalidOptionError(
            "no maintenance database left to connect to; pass maintenance_database="
        )
    return candidates


def _open_maintenance(
    url: URL,
    *,
    avoid: Iterable[str | None] = (),
    maintenance_database: str | None = None,
) -> psycopg.Connection[Any]:
    """Open an autocommit psycopg connection to a maintenance database of ``url``'s server.

    ``postgres`` is tried first, then ``template1`` (connecting to ``template1``
    keeps others from using it as a template meanwhile, hence the order).  Names
    in ``avoid`` are never connected to.  If every candidate fails, the first
    failure is raised.
    """
    first_error: psycopg.OperationalError | None = None
    for dbname in _maintenance_candidates(avoid, maintenance_database):
        try:
            conn = psycopg.connect(**_connect_kwargs(url, dbname), autocommit=True)
        except psycopg.OperationalError as exc:
            log.debug("maintenance connection to %r failed: %s", dbname, exc)
            if first_error is None:
                first_error = exc
            continue
        log.debug("maintenance connection to %r on %s", dbname, _display(url))
        return conn
    assert first_error is not None
    raise first_error


@contextlib.contextmanager
def _maintenance(
    url: URL,
    *,
    avoid: Iterable[str | None] = (),
    maintenance_database: str | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    conn = _open_maintenance(
        url, avoid=avoid, maintenance_database=maintenance_database
    )
    try:
        yield conn
    finally:
        conn.close()


# -- operations on an open maintenance connection ------------------------------


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)
    ).fetchone()
    return row is not None


def _other_sessions(conn: psycopg.Connection[Any], name: str) -> int:
    """How many other sessions are connected to ``name``.

    Autovacuum workers are left out: ``DROP DATABASE`` and ``CREATE DATABASE``
    stop them by themselves.
    """
    row = conn.execute(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid() "
        "AND backend_type IS DISTINCT FROM 'autovacuum worker'",
        (name,),
    ).fetchone()
    return int(row[0]) if row else 0


def _settle(conn: psycopg.Connection[Any], name: str, grace: float) -> int:
    """Wait up to ``grace`` seconds for sessions on ``name`` to end; return how many remain.

    Sessions whose clients have just disconnected (a disposed engine) take a
    few milliseconds to go.  The server would wait for them too, but in steps of
    100 ms and for up to 5 s before failing; checking here is faster on both
    counts.
    """
    deadline = time.monotonic() + grace
    delay = 0.002
    while True:
        count = _other_sessions(conn, name)
        if count == 0 or time.monotonic() >= deadline:
            return count
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _in_use_error(name: str, count: int, action: str, hint: str) -> RuntimeError:
    # TODO: DatabaseInUseError (see the report); RuntimeError meanwhile.
    return RuntimeError(
        f"cannot {action}: {name!r} is in use by {count} other session(s); {hint}"
    )


def _drop(
    conn: psycopg.Connection[Any], name: str, *, force: bool, allow_missing: bool
) -> bool:
    """Drop ``name``; True if dropped, False if it was missing and that is allowed."""
    ident = sql.Identifier(name)
    if force and conn.info.server_version < 130000:
        _terminate_sessions(conn, name)
        force = False
    hint = "close them, or pass force=True to terminate them"
    if not force:
        count = _settle(conn, name, _SETTLE_SECONDS)
        if count:
            raise _in_use_error(name, count, f"drop database {name!r}", hint)
    statement = sql.SQL(
        "DROP DATABASE {} WITH (FORCE)" if force else "DROP DATABASE {}"
    )
    try:
        conn.execute(statement.format(ident))
    except pg_errors.InvalidCatalogName as exc:
        if allow_missing:
            log.debug("database %r does not exist; nothing to drop", name)
            return False
        raise DatabaseNotFoundError(f"database {name!r} does not exist") from exc
    except pg_errors.ObjectInUse as exc:
        raise _in_use_error(
            name, _other_sessions(conn, name), f"drop database {name!r}", hint
        ) from exc
    log.info("dropped database %r%s", name, " (forced)" if force else "")
    return True


def _terminate_sessions(conn: psycopg.Connection[Any], name: str) -> int:
    rows = conn.execute(
        "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid()",
        (name,),
    ).fetchall()
    terminated = sum(1 for (ok,) in rows if ok)
    if terminated:
        log.info("terminated %d session(s) on database %r", terminated, name)
    return terminated


def _create(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    template: str | None,
    encoding: str | None,
    copy_settings: bool,
) -> None:
    if template is not None:
        count = _settle(conn, template, _SETTLE_SECONDS)
        if count:
            raise _in_use_error(
                template,
                count,
                f"create database {name!r} from template {template!r}",
                _TEMPLATE_HINT,
            )
    parts = [sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))]
    if template is not None:
        parts.append(sql.SQL("TEMPLATE {}").format(sql.Identifier(template)))
    if encoding is not None:
        parts.append(sql.SQL("ENCODING {}").format(sql.Literal(encoding)))
    try:
        conn.execute(sql.SQL(" ").join(parts))
    except pg_errors.DuplicateDatabase as exc:
        raise DatabaseExistsError(f"database {name!r} already exists") from exc
    except pg_errors.InvalidCatalogName as exc:
        raise DatabaseNotFoundError(
            f"template database {template!r} does not exist"
        ) from exc
    except pg_errors.ObjectInUse as exc:
        raise _in_use_error(
            str(template),
            _other_sessions(conn, str(template)),
            f"create database {name!r} from template {template!r}",
            _TEMPLATE_HINT,
        ) from exc
    log.info(
        "created database %r%s",
        name,
        f" from template {template!r}" if template else "",
    )
    if copy_settings and template is not None:
        try:
            _copy_settings(conn, template, name)
        except BaseException:
            _drop(conn, name, force=True, allow_missing=True)
            raise


def _split_list_setting(value: str) -> list[str]:
    """Split a stored list setting (``"$user", public``) into its unquoted items."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(value):
        char = value[i]
        if quoted:
            if char == '"':
                if value[i + 1 : i + 2] == '"':
                    current.append('"')
                    i += 1
                else:
                    quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = True
        elif char == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    items.append("".join(current).strip())
    return [item for item in items if item]


def _setting_clause(entry: str) -> sql.Composed:
    """``name TO value`` for one ``name=value`` entry of ``pg_db_role_setting``."""
    name, _, value = entry.partition("=")
    name_sql = sql.SQL(".").join(sql.Identifier(part) for part in name.split("."))
    if name.lower() in _LIST_QUOTED_SETTINGS:
        items = _split_list_setting(value)
        value_sql = sql.SQL(", ").join(sql.Literal(item) for item in items)
        if not items:
            value_sql = sql.Literal("")
    else:
        value_sql = sql.Literal(value)
    return sql.SQL("{} TO {}").format(name_sql, value_sql)


def _copy_settings(conn: psycopg.Connection[Any], source: str, target: str) -> int:
    """Replay ``source``'s per-database settings on ``target``; return how many.

    ``CREATE DATABASE ... TEMPLATE`` copies the data but not the settings made
    with ``ALTER DATABASE ... SET`` or ``ALTER ROLE ... IN DATABASE ... SET``.
    """
    rows = conn.execute(
        "SELECT r.rolname, s.setconfig "
        "FROM pg_catalog.pg_db_role_setting s "
        "JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase "
        "LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
        "WHERE d.datname = %s "
        "ORDER BY r.rolname NULLS FIRST",
        (source,),
    ).fetchall()
    count = 0
    target_ident = sql.Identifier(target)
    for role, config in rows:
        if role is None:
            prefix = sql.SQL("ALTER DATABASE {} SET ").format(target_ident)
        else:
            prefix = sql.SQL("ALTER ROLE {} IN DATABASE {} SET ").format(
                sql.Identifier(role), target_ident
            )
        for entry in config or ():
            conn.execute(prefix + _setting_clause(entry))
            count += 1
    log.debug("copied %d setting(s) from %r to %r", count, source, target)
    return count


def _create_with_options(
    conn: psycopg.Connection[Any],
    name: str,
    *,
    replace: bool,
    exists_ok: bool,
    force: bool,
    template: str | None,
    encoding: str | None,
    copy_settings: bool,
) -> bool:
    if template is not None:
        _check_name(template, "template database")
    elif copy_settings:
        raise InvalidOptionError("copy_settings=True needs a template= to copy from")
    if replace:
        _drop(conn, name, force=force, allow_missing=True)
    try:
        _create(
            conn,
            name,
            template=template,
            encoding=encoding,
            copy_settings=copy_settings,
        )
    except DatabaseExistsError:
        if not exists_ok:
            raise
        log.debug("database %r already exists; keeping it", name)
        return False
    return True


# -- public API ----------------------------------------------------------------


def create_database(
    target: DatabaseTarget,
    *,
    replace: bool = False,
    exists_ok: bool = False,
    force: bool = False,
    template: str | None = None,
    encoding: str | None = "utf8",
    copy_settings: bool = False,
    maintenance_database: str | None = None,
) -> bool:
    """Create the database that ``target`` names.

    The database is created with ``CREATE DATABASE`` on a maintenance connection
    (see the module documentation).  With ``template``, the new database is a
    copy of that database; PostgreSQL refuses if anyone is connected to it.

    Parameters:
        target: the database to create (URL, ``Engine``, ``Connection`` or
            `Database`); only its server and name are used.
        replace: drop the database first if it exists.
        exists_ok: do nothing if the database exists (ignored with ``replace``).
        force: with ``replace``, terminate the existing database's other sessions
            before dropping it (``WITH (FORCE)``).  Without ``force`` the drop
            fails if anyone is connected.
        template: the name of the database to copy (default: the server's
            default, ``template1``).
        encoding: the new database's encoding; None leaves it to the server (or
            the template).
        copy_settings: also copy ``template``'s settings made with
            ``ALTER DATABASE ... SET`` and ``ALTER ROLE ... IN DATABASE ... SET``,
            which ``CREATE DATABASE`` does not copy.  Needs ``template``.
        maintenance_database: the database to run the commands from (default:
            ``postgres``, else ``template1``).

    Returns:
        True if the database was created, False if it existed and ``exists_ok``.

    Raises:
        DatabaseExistsError: the database exists and neither ``replace`` nor
            ``exists_ok`` was given.
        DatabaseNotFoundError: ``template`` does not exist.
        InvalidOptionError: the URL names no database, a name is longer than
            63 bytes, or ``copy_settings`` was given without ``template``.
        RuntimeError: the template (or, with ``replace``, the existing database)
            is in use by other sessions.
    """
    url = get_database_url(target)
    name = _database_name(url)
    with _maintenance(
        url, avoid=(name, template), maintenance_database=maintenance_database
    ) as conn:
        return _create_with_options(
            conn,
            name,
            replace=replace,
            exists_ok=exists_ok,
            force=force,
            template=template,
            encoding=encoding,
            copy_settings=copy_settings,
        )


def drop_database(
    target: DatabaseTarget,
    *,
    force: bool = False,
    allow_missing: bool = False,
    maintenance_database: str | None = None,
) -> bool:
    """Drop the database that ``target`` names.

    Other sessions on the database are terminated only with ``force=True``
    (``DROP DATABASE ... WITH (FORCE)``; on servers older than 13, by
    ``pg_terminate_backend`` and then a plain drop).  If ``target`` is an
    ``Engine`` or `Database`, dispose of it (or close its connections) first:
    its pooled connections count as sessions.

    Parameters:
        target: the database to drop (URL, ``Engine``, ``Connection`` or
            `Database`).
        force: terminate other sessions connected to the database.
        allow_missing: return False instead of raising when there is no such
            database.
        maintenance_database: the database to run the command from (default:
            ``postgres``, else ``template1``).

    Returns:
        True if the database was dropped, False if it did not exist (only with
        ``allow_missing``).

    Raises:
        DatabaseNotFoundError: there is no such database and not ``allow_missing``.
        InvalidOptionError: the URL names no database, or a name too long.
        RuntimeError: other sessions are connected and ``force`` is False.
    """
    url = get_database_url(target)
    name = _database_name(url)
    with _maintenance(
        url, avoid=(name,), maintenance_database=maintenance_database
    ) as conn:
        return _drop(conn, name, force=force, allow_missing=allow_missing)


def database_exists(
    target: DatabaseTarget, *, maintenance_database: str | None = None
) -> bool:
    """Whether the database that ``target`` names exists on its server.

    Parameters:
        target: the database to look for (URL, ``Engine``, ``Connection`` or
            `Database`).
        maintenance_database: the database to connect to for the check
            (default: ``postgres``, else ``template1``).
    """
    url = get_database_url(target)
    name = url.database
    if not name:
        raise InvalidOptionError(f"the URL {_display(url)} names no database")
    with _maintenance(
        url, avoid=(name,), maintenance_database=maintenance_database
    ) as conn:
        return _exists(conn, name)


def close_all_connections(
    target: DatabaseTarget,
    database: str | None = None,
    *,
    maintenance_database: str | None = None,
) -> int:
    """Terminate every session connected to a database; return how many.

    This ends other users' sessions without warning: use it only on databases
    you own.  If ``target`` is an ``Engine`` or `Database` connected to that
    database, its pooled connections are terminated too (dispose of it first to
    close them cleanly).

    Parameters:
        target: a URL, ``Engine``, ``Connection`` or `Database` on the server.
        database: the database whose sessions to end (default: the one
            ``target`` names).
        maintenance_database: the database to run the command from (default:
            ``postgres``, else ``template1``).
    """
    url = get_database_url(target)
    name = database or _database_name(url)
    with _maintenance(
        url, avoid=(name,), maintenance_database=maintenance_database
    ) as conn:
        return _terminate_sessions(conn, name)


def _reopen_if_broken(
    conn: psycopg.Connection[Any],
    url: URL,
    avoid: tuple[str | None, ...],
    maint: str | None,
) -> psycopg.Connection[Any]:
    if conn.closed or conn.broken:
        conn.close()
        return _open_maintenance(url, avoid=avoid, maintenance_database=maint)
    return conn


@contextlib.contextmanager
def temporary_database(
    target: DatabaseTarget,
    *,
    drop: bool = True,
    ensure_empty: bool = False,
    exists_ok: bool = True,
    template: str | None = None,
    force_drop: bool = False,
    copy_settings: bool = False,
    maintenance_database: str | None = None,
) -> Iterator[Engine]:
    """Create a database, yield an ``Engine`` on it, then drop it.

    The yielded engine is always disposed of before the drop, also when the
    block raises.  Connections the block left checked out still count as
    sessions: the drop then fails unless ``force_drop=True``.  If the block
    raised and the drop fails too, the drop's error is logged and the block's
    error propagates.

    One maintenance connection serves both the creation and the drop; it is
    held open while the block runs.

    Parameters:
        target: the database to create (URL, ``Engine``, ``Connection`` or
            `Database`).  A new engine is always made for the yielded database.
        drop: drop the database on exit.
        ensure_empty: drop the database first if it exists (with ``force_drop``
            deciding whether other sessions are terminated), so the block starts
            from a new database.
        exists_ok: reuse an existing database instead of raising
            `DatabaseExistsError` (ignored with ``ensure_empty``); it is still
            dropped on exit when ``drop`` is true.
        template: the name of a database to copy.
        force_drop: terminate other sessions when dropping (on exit, and for
            ``ensure_empty``).
        copy_settings: copy ``template``'s per-database settings (see
            `create_database`).
        maintenance_database: see `create_database`.
    """
    url = get_database_url(target)
    name = _database_name(url)
    avoid = (name, template)
    conn = _open_maintenance(
        url, avoid=avoid, maintenance_database=maintenance_database
    )
    try:
        _create_with_options(
            conn,
            name,
            replace=ensure_empty,
            exists_ok=exists_ok,
            force=force_drop,
            template=template,
            encoding="utf8",
            copy_settings=copy_settings,
        )
        engine = create_engine(url)
        body_failed = False
        try:
            yield engine
        except BaseException:
            body_failed = True
            raise
        finally:
            engine.dispose()
            if drop:
                try:
                    conn = _reopen_if_broken(conn, url, avoid, maintenance_database)
                    _drop(conn, name, force=force_drop, allow_missing=True)
                except Exception:
                    if not body_failed:
                        raise
                    log.warning(
                        "could not drop temporary database %r", name, exc_info=True
                    )
    finally:
        conn.close()


def _generated_copy_name(source: str) -> str:
    suffix = f"_template_{secrets.token_hex(4)}"
    room = MAX_IDENTIFIER_BYTES - len(suffix)
    head = source.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return head + suffix


@contextlib.contextmanager
def template_database(
    target: DatabaseTarget,
    *,
    name: str | None = None,
    force_drop: bool = True,
    close_source_connections: bool = False,
    copy_settings: bool = False,
    maintenance_database: str | None = None,
) -> Iterator[Engine]:
    """Copy a database, yield an ``Engine`` on the copy, then drop the copy.

    The copy is made with ``CREATE DATABASE <copy> TEMPLATE <source>``, which
    PostgreSQL refuses while other sessions are connected to the source.

    Parameters:
        target: the source database (URL, ``Engine``, ``Connection`` or `Database`).
        name: the copy's name (default: ``<source>_template_<8 hex digits>``,
            shortened to fit 63 bytes).  It must not exist yet.
        force_drop: terminate sessions still connected to the copy when dropping
            it.
        close_source_connections: first terminate every session connected to
            the source (other users' sessions too).  If ``target`` is an
            ``Engine`` or `Database`, its connection pool is disposed of first so
            that its idle connections close cleanly; the engine stays usable.
        copy_settings: also copy the source's per-database settings (see
            `create_database`).
        maintenance_database: see `create_database`.

    Raises:
        DatabaseExistsError: a database called ``name`` exists.
        DatabaseNotFoundError: the source does not exist.
        RuntimeError: other sessions are connected to the source.
    """
    url = get_database_url(target)
    source = _database_name(url)
    copy_name = name if name is not None else _generated_copy_name(source)
    _check_name(copy_name, "database")
    if close_source_connections:
        engine = (
            target if isinstance(target, Engine) else getattr(target, "engine", None)
        )
        if isinstance(engine, Engine):
            engine.dispose()
        close_all_connections(url, maintenance_database=maintenance_database)
    with temporary_database(
        url.set(database=copy_name),
        drop=True,
        exists_ok=False,
        template=source,
        force_drop=force_drop,
        copy_settings=copy_settings,
        maintenance_database=maintenance_database,
    ) as engine:
        yield engine


# -- readiness -----------------------------------------------------------------


def _libpq_argv_env(url: URL) -> tuple[list[str], dict[str, str]]:
    """Command-line flags (``-h/-p/-U/-d``) and environment (``PGPASSWORD``) for ``url``."""
    kwargs = _connect_kwargs(url, url.database or "postgres")
    argv: list[str] = []
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user"), ("-d", "dbname")):
        value = kwargs.get(key)
        if value not in (None, ""):
            argv += [flag, str(value)]
    env: dict[str, str] = {}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return argv, env


def connection_args(
    target: DatabaseTarget, with_password: bool = False
) -> tuple[str, str | None]:
    """Shell-quoted ``-U/-h/-p`` flags for libpq programs, and the database name.

    The password is never put on a command line (where ``ps`` shows it): pass
    it to the program as ``PGPASSWORD`` in its environment instead.

    Parameters:
        target: a URL, ``Engine``, ``Connection`` or `Database`.
        with_password: deprecated and ignored (a warning is issued).

    Returns:
        ``(" -U user -h host -p port", dbname)``; absent parts are left out.
    """
    if with_password:
        warnings.warn(
            "connection_args(with_password=True) is ignored: pass the password "
            "as PGPASSWORD in the program's environment",
            DeprecationWarning,
            stacklevel=2,
        )
    url = get_database_url(target)
    flags = ""
    for flag, value in (("-U", url.username), ("-h", url.host), ("-p", url.port)):
        if value not in (None, ""):
            flags += f" {flag} {shlex.quote(str(value))}"
    return flags, url.database


def _ready_reason(url: URL, timeout: float, use_shell_command: bool) -> str | None:
    """None if the server accepts connections to ``url``'s database, else why not."""
    if use_shell_command:
        program = shutil.which("pg_isready")
        if program is None:
            raise FileNotFoundError("pg_isready is not on PATH")
        argv, env = _libpq_argv_env(url)
        seconds = str(max(1, round(timeout)))
        result = subprocess.run(
            [program, *argv, "-t", seconds],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return None
        return (
            result.stdout + result.stderr
        ).strip() or f"exit code {result.returncode}"
    kwargs = _connect_kwargs(url, url.database or "postgres")
    kwargs.setdefault("connect_timeout", max(1, round(timeout)))
    try:
        with psycopg.connect(**kwargs) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def db_isready(
    target: DatabaseTarget, use_shell_command: bool = False, *, timeout: float = 5.0
) -> bool:
    """Whether the database that ``target`` names accepts connections now.

    By default this connects with psycopg and runs ``SELECT 1`` (so a wrong
    password or a missing database count as not ready).  With
    ``use_shell_command=True`` it runs ``pg_isready`` instead, which only asks
    whether the server accepts connections; the password, if any, is passed in
    ``PGPASSWORD``, never on the command line.

    Parameters:
        target: a URL, ``Engine``, ``Connection`` or `Database`.
        use_shell_command: use the ``pg_isready`` program.
        timeout: seconds to wait for the connection (at least 1).

    Raises:
        FileNotFoundError: ``use_shell_command`` and ``pg_isready`` is not on PATH.
    """
    return _ready_reason(get_database_url(target), timeout, use_shell_command) is None


def wait_for_database(
    target: DatabaseTarget,
    *,
    quiet: bool = False,
    use_shell_command: bool = False,
    timeout: float | None = 60.0,
    interval: float = 0.5,
) -> None:
    """Wait until the database that ``target`` names accepts connections.

    Checks with `db_isready`, first right away and then every ``interval``
    seconds.

    Parameters:
        target: a URL, ``Engine``, ``Connection`` or `Database`.
        quiet: log the waiting at DEBUG instead of INFO level.
        use_shell_command: check with ``pg_isready`` (see `db_isready`).
        timeout: give up after this many seconds; None waits forever.
        interval: seconds between checks.

    Raises:
        TimeoutError: not ready within ``timeout``; the message gives the last
            reason (never the password).
    """
    url = get_database_url(target)
    deadline = None if timeout is None else time.monotonic() + timeout
    level = logging.DEBUG if quiet else logging.INFO
    announced = False
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        check_timeout = 10.0 if remaining is None else min(10.0, max(1.0, remaining))
        reason = _ready_reason(url, check_timeout, use_shell_command)
        if reason is None:
            if announced:
                log.log(level, "database %s is ready", _display(url))
            return
        if not announced:
            log.log(level, "waiting for database %s ...", _display(url))
            announced = True
        if deadline is not None and time.monotonic() + interval > deadline:
            raise TimeoutError(
                f"database {_display(url)} not ready after {timeout:g} s: {reason}"
            )
        time.sleep(interval)
