"""Temporary databases and template copies that are always cleaned up."""

from __future__ import annotations

import contextlib
import logging
import secrets
import warnings
from collections.abc import Iterator

from sqlalchemy import Engine

from .._connectable import engine_of
from ..engine import create_engine
from ..errors import InvalidOptionError
from ._connection import (
    MAX_IDENTIFIER_BYTES,
    DatabaseTarget,
    _check_name,
    _database_name,
    _maintenance,
    get_database_url,
)
from .lifecycle import _create_with_options, _drop, close_all_connections

log = logging.getLogger(__name__)


class ExistingDatabaseWarning(UserWarning):
    """`temporary_database` was given a database that already existed.

    It is used as it is and, unlike upstream, kept on exit even though
    ``drop=True``: only ``drop_existing=True`` drops a database the call did not
    create.
    """


@contextlib.contextmanager
def temporary_database(
    target: DatabaseTarget,
    *,
    drop: bool = True,
    ensure_empty: bool = False,
    exists_ok: bool = True,
    template: str | None = None,
    force_drop: bool = False,
    drop_existing: bool = False,
    copy_settings: bool = False,
    maintenance_database: str | None = None,
) -> Iterator[Engine]:
    """Create a database, yield an ``Engine`` on it, then drop it if this call made it.

    What is dropped on exit:

    - a database this call created (it did not exist, or ``ensure_empty``
      replaced it): dropped when ``drop`` is true;
    - a database that existed before the call and was used as it is
      (``exists_ok``, the default): **kept**, with an `ExistingDatabaseWarning`
      when ``drop`` is true, unless ``drop_existing=True`` asks for it to be
      dropped too.  (Upstream dropped it: a database called ``precious`` was
      lost that way.)  With ``drop=False`` it is kept without a warning, as
      asked (upstream's session fixture on ``postgres`` does this).

    ``force_drop`` only says *how* a database that is dropped is dropped; it
    never makes a kept database dropped, and never ends sessions on one.

    The yielded engine is always disposed of before the drop, also when the
    block raises.  Connections the block left checked out still count as
    sessions: the drop then fails unless ``force_drop=True``.  If the block
    raised and the drop fails too, the drop's error is logged and the block's
    error propagates.

    No maintenance connection is held while the block runs: one is opened to
    create the database and closed at once, another to drop it on exit.  (A
    session left on ``template1`` would make every ``CREATE DATABASE`` from the
    default template fail meanwhile.)

    Parameters:
        target: the database to create (URL, ``Engine``, ``Connection`` or
            `Database`).  A new engine is always made for the yielded database.
        drop: drop the database on exit if this call created it.
        ensure_empty: drop the database first if it exists (its contents are
            lost; ``force_drop`` decides whether other sessions are
            terminated) and create it again, so the block starts from a new
            database, which then counts as created by this call.
        exists_ok: use an existing database as it is instead of raising
            `DatabaseExistsError` (ignored with ``ensure_empty``).  It is not
            dropped on exit unless ``drop_existing``.
        template: the name of a database to copy (default: ``template1``).
        force_drop: terminate other sessions when dropping (on exit, and for
            ``ensure_empty``).
        drop_existing: also drop on exit a database that existed before this
            call and was used as it is.  Needs ``drop``.  Only for databases
            that are yours to lose.
        copy_settings: copy ``template``'s per-database settings (see
            `create_database`).
        maintenance_database: see `create_database`.

    Raises:
        DatabaseExistsError: the database exists and ``exists_ok`` is false.
        InvalidOptionError: ``drop_existing=True`` with ``drop=False``, or an
            invalid name (see `create_database`).
        DatabaseInUseError: the template, or with ``ensure_empty`` the existing
            database, has other sessions; or on exit the database still has
            sessions and ``force_drop`` is false.
    """
    if drop_existing and not drop:
        raise InvalidOptionError(
            "drop_existing=True needs drop=True: with drop=False nothing is "
            "dropped on exit"
        )
    url = get_database_url(target)
    name = _database_name(url)
    with _maintenance(
        url, avoid=(name, template), maintenance_database=maintenance_database
    ) as conn:
        created = _create_with_options(
            conn,
            name,
            replace=ensure_empty,
            exists_ok=exists_ok,
            force=force_drop,
            template=template,
            encoding="utf8",
            copy_settings=copy_settings,
        )
    if created:
        drop_on_exit = drop
    elif drop_existing:
        log.info(
            "database %r existed before this temporary_database(); it will be "
            "dropped on exit (drop_existing=True)",
            name,
        )
        drop_on_exit = True
    else:
        drop_on_exit = False
        if drop:
            warnings.warn(
                ExistingDatabaseWarning(
                    f"temporary_database(): database {name!r} already existed; it "
                    "is used as it is and kept on exit, not dropped. Pass "
                    "drop_existing=True to drop it anyway, or exists_ok=False to "
                    "refuse an existing database"
                ),
                stacklevel=3,
            )
        else:
            log.debug("database %r already existed; using it (drop=False)", name)
    engine = create_engine(url)
    body_failed = False
    try:
        yield engine
    except BaseException:
        body_failed = True
        raise
    finally:
        engine.dispose()
        if drop_on_exit:
            try:
                with _maintenance(
                    url, avoid=(name,), maintenance_database=maintenance_database
                ) as conn:
                    _drop(conn, name, force=force_drop, allow_missing=True)
            except Exception:
                if not body_failed:
                    raise
                log.warning("could not drop temporary database %r", name, exc_info=True)


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
        engine = engine_of(target)
        if engine is not None:
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
