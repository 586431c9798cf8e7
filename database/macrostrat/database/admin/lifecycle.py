"""Create, drop and test for databases, and end other sessions.

Longer than 400 lines because creating a database with copied settings and
dropping one that has sessions each need their own SQL and checks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from ..errors import DatabaseExistsError, DatabaseNotFoundError, InvalidOptionError
from . import _connection
from ._connection import (
    _TEMPLATE_HINT,
    DEFAULT_TEMPLATE,
    DatabaseTarget,
    _busy_counts,
    _check_name,
    _database_name,
    _display,
    _exists,
    _in_use_error,
    _maintenance,
    _settle,
    get_database_url,
)

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)
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
        count = _settle(conn, name, _connection._SETTLE_SECONDS)
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
        sessions, prepared = _busy_counts(conn, name, exc)
        raise _in_use_error(
            name, sessions, f"drop database {name!r}", hint, prepared=prepared
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
    check_template: bool = True,
) -> None:
    # CREATE DATABASE without TEMPLATE copies template1: name it in errors, and
    # wait for it as for any other template.
    source = template if template is not None else DEFAULT_TEMPLATE
    action = (
        f"create database {name!r} from template {source!r}"
        if template is not None
        else f"create database {name!r} from the default template {source!r}"
    )
    if check_template:
        count = _settle(conn, source, _connection._SETTLE_SECONDS)
        if count:
            raise _in_use_error(source, count, action, _TEMPLATE_HINT)
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
        sessions, prepared = _busy_counts(conn, source, exc)
        raise _in_use_error(
            source, sessions, action, _TEMPLATE_HINT, prepared=prepared
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
    value_sql: sql.Composable
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
    """Create ``name`` as the options say; True if created, False if it existed.

    An existing database is looked for before ``CREATE DATABASE``: with
    ``exists_ok`` it is kept without waiting on the template, and without it the
    server's own refusal (``DuplicateDatabase``) is raised as
    `DatabaseExistsError`, before any check of the template.
    """
    if template is not None:
        _check_name(template, "template database")
    elif copy_settings:
        raise InvalidOptionError("copy_settings=True needs a template= to copy from")
    exists = False
    if replace:
        _drop(conn, name, force=force, allow_missing=True)
    else:
        exists = _exists(conn, name)
        if exists and exists_ok:
            log.debug("database %r already exists; keeping it", name)
            return False
    try:
        _create(
            conn,
            name,
            template=template,
            encoding=encoding,
            copy_settings=copy_settings,
            check_template=not exists,
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
            default, ``template1``, which must then have no other sessions
            either).
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
