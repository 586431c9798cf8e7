"""The maintenance connection and the name checks shared by the admin helpers."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from sqlalchemy import URL, Connection, Engine, make_url

from .._connectable import HasEngine, engine_of
from .._redact import redact, scrub, url_secrets
from ..engine import connection_url
from ..errors import DatabaseInUseError, InvalidOptionError

log = logging.getLogger(__name__)

DatabaseTarget = str | URL | Engine | Connection | HasEngine
"""Anything that names a database: a URL (string or ``URL``), an ``Engine``, a
``Connection`` or a `Database`."""

MAINTENANCE_DATABASES: tuple[str, ...] = ("postgres", "template1")
"""Databases tried, in order, for the maintenance connection."""

DEFAULT_TEMPLATE = "template1"
"""The database ``CREATE DATABASE`` copies when no ``TEMPLATE`` is given."""

MAX_IDENTIFIER_BYTES = 63
"""PostgreSQL's limit on the length of a name (NAMEDATALEN - 1), in bytes."""

# How long to wait for sessions that are ending before calling a database busy.
_SETTLE_SECONDS = 1.0

_TEMPLATE_HINT = (
    "a template cannot be copied while anyone is connected to it; close those "
    "sessions first (close_all_connections, or template_database("
    "close_source_connections=True))"
)

# -- URLs and names -----------------------------------------------------------


def get_database_url(target: DatabaseTarget) -> URL:
    """Return the SQLAlchemy ``URL`` of the database that ``target`` names.

    Every secret is kept in the returned ``URL``, including those an engine
    made by `create_engine` passes to the driver (see
    `macrostrat.database.engine.connection_url`); show it only through
    `macrostrat.database.redact`.

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
    engine = engine_of(target)
    if engine is not None:
        return connection_url(engine)
    raise ValueError(f"Invalid input type: {type(target).__name__}")


def _display(url: URL) -> str:
    """``url`` for logs and messages, every secret masked (see `.._redact.redact`)."""
    return redact(url)


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

    Callers open it for one operation and close it straight after (`_maintenance`):
    a maintenance connection left open on ``template1`` would make every other
    ``CREATE DATABASE`` that copies ``template1`` (the default) fail.
    """
    first_error: psycopg.OperationalError | None = None
    for dbname in _maintenance_candidates(avoid, maintenance_database):
        try:
            conn = psycopg.connect(**_connect_kwargs(url, dbname), autocommit=True)
        except psycopg.OperationalError as exc:
            log.debug(
                "maintenance connection to %r failed: %s",
                dbname,
                scrub(str(exc), url_secrets(url)),
            )
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


_DETAIL_SESSIONS = re.compile(r"(\d+) other session")
_DETAIL_PREPARED = re.compile(r"(\d+) prepared transaction")


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None


def _busy_counts(
    conn: psycopg.Connection[Any], name: str, exc: psycopg.Error
) -> tuple[int, int]:
    """(sessions, prepared transactions) that made the server refuse with ``exc``.

    Read from the error's detail (``There is 1 other session using the
    database.``), which is what the server counted when it refused; when the
    detail is missing or in another language, counted again on ``conn``.
    """
    detail = exc.diag.message_detail or ""
    sessions = _first_int(_DETAIL_SESSIONS, detail)
    prepared = _first_int(_DETAIL_PREPARED, detail)
    if sessions is None and prepared is None:
        sessions = _other_sessions(conn, name)
        row = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_prepared_xacts WHERE database = %s",
            (name,),
        ).fetchone()
        prepared = int(row[0]) if row else 0
    return sessions or 0, prepared or 0


def _in_use_error(
    name: str, count: int, action: str, hint: str, *, prepared: int = 0
) -> DatabaseInUseError:
    also = f" and {prepared} prepared transaction(s)" if prepared else ""
    return DatabaseInUseError(
        f"cannot {action}: {name!r} is in use by {count} other session(s){also}; "
        f"{hint}",
        database=name,
        sessions=count,
    )
