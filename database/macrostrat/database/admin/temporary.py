"""Temporary databases and template copies that are always cleaned up."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import URL, Engine

from ..engine import create_engine
from ._connection import (
    MAX_IDENTIFIER_BYTES,
    DatabaseTarget,
    _check_name,
    _database_name,
    _open_maintenance,
    get_database_url,
)
from .lifecycle import _create_with_options, _drop, close_all_connections

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


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
