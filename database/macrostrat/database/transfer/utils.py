"""Shared helpers of the transfer functions (upstream: ``transfer.utils``).

`_docker_local_run_args` and `_create_command` are upstream's private command
builders, kept because applications import them (for instance to run
``mysqldump`` or ``mariadb`` in a container); the transfer functions
themselves choose their programs with `macrostrat.database.transfer.tools`,
which keeps passwords off command lines.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from sqlalchemy import URL

from .._redact import redact
from .._renamed import renamed_parameters
from ..admin import create_database, database_exists, drop_database
from ..admin._connection import get_database_url
from ..errors import DatabaseExistsError, DatabaseNotFoundError, InvalidOptionError

__all__ = ["database_url", "raw_database_url", "run_sync"]

log = logging.getLogger("macrostrat.database.transfer")

T = TypeVar("T")


def __getattr__(name: str) -> Any:
    if name == "console":  # upstream's module-level Rich console, made lazily
        from rich.console import Console

        value = Console(stderr=True)
        globals()["console"] = value
        return value
    raise AttributeError(name)


def database_url(target: Any) -> URL:
    """The SQLAlchemy URL of a URL string, ``URL``, ``Engine``, ``Connection`` or `Database`.

    For an engine, the URL it connects with, secrets included: the
    parameters `macrostrat.database.engine.create_engine` moved out of
    ``engine.url`` (``sslpassword``...) are put back (see
    `macrostrat.database.engine.connection_url`). Never show it unmasked.

    Parameters:
        target: the database.
    """
    return get_database_url(target)


def raw_database_url(url: Any) -> str:
    """The URL as a libpq string *with* its password (never log or print it).

    Prefer passing URLs to the transfer functions, which keep the password out
    of command lines.
    """
    return (
        database_url(url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def _docker_local_run_args(postgres_container: str = "postgres:15") -> list[str]:
    """The ``docker run`` prefix that runs a program from ``postgres_container``.

    The container uses the host's network (so ``localhost`` URLs work), is
    attached to standard input, output and error, keeps no logs and is removed
    when the program exits: ``[*_docker_local_run_args(image), program, *args]``
    runs ``program`` as if it were local.

    Parameters:
        postgres_container: the image to run.
    """
    return [
        "docker", "run", "-i", "--network", "host",
        "--attach", "stdin", "--attach", "stdout", "--attach", "stderr",
        "--log-driver", "none", "--rm", postgres_container,
    ]  # fmt: skip


def _create_command(
    engine: Any,
    *command: str,
    args: Sequence[str] | None = None,
    prefix: Sequence[str] | None = None,
    container: str = "postgres:16",
) -> list[str]:
    """Build ``[*prefix, *command, <database URL>, *args]``, as upstream did.

    The URL is the database's, with its password (the command must be able to
    log in) and without a SQLAlchemy driver suffix (``postgresql+psycopg`` is
    given as ``postgresql``, which libpq accepts). The command is logged at
    DEBUG with the password masked (upstream logged it in clear). The
    password is part of the returned argv, so other local users can see it
    in ``ps`` while the program runs: prefer the transfer functions
    (`pg_dump`, `pg_restore`, ...), which pass it in the environment.

    Parameters:
        engine: the database: an ``Engine``, ``URL``, URL string, ``Connection``
            or `Database`.
        *command: the program and the arguments that go before the URL.
        args: arguments after the URL.
        prefix: the argv placed before the program; ``None`` runs it in a
            container of ``container`` (`_docker_local_run_args`), and
            ``[]`` runs the local program (upstream ran Docker for ``[]`` too).
        container: the image to use when ``prefix`` is None.
    """
    url = database_url(engine)
    url = url.set(drivername=url.get_backend_name())
    head = list(_docker_local_run_args(container) if prefix is None else prefix)
    tail = list(args or [])
    log.debug("command: %s", " ".join([*head, *command, redact(url), *tail]))
    return [*head, *command, url.render_as_string(hide_password=False), *tail]


@renamed_parameters({"_url": "url"})  # upstream's name
def _create_database_if_not_exists(
    url: Any,
    *,
    create: bool = False,
    allow_exists: bool = True,
    overwrite: bool = False,
) -> None:
    """Make sure the target database exists, as the restore options ask.

    Parameters:
        url: the target database.
        create: create it if missing.
        allow_exists: accept an existing database.
        overwrite: drop an existing database first (implies ``create``).

    Raises:
        DatabaseNotFoundError: missing and not ``create`` ("use create=True").
        DatabaseExistsError: exists and neither ``allow_exists`` nor ``overwrite``.
    """
    target = database_url(url)
    create = create or overwrite
    exists = database_exists(target)
    if exists and overwrite:
        log.info("dropping database %s to overwrite it", target.database)
        drop_database(target)
        exists = False
    elif exists and not allow_exists:
        raise DatabaseExistsError(
            f"database {target.database!r} already exists (use overwrite=True)"
        )
    if not exists:
        if not create:
            raise DatabaseNotFoundError(
                f"database {target.database!r} does not exist (use create=True)"
            )
        log.info("creating database %s", target.database)
        create_database(target)


def run_sync(
    func: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
) -> T:
    """Run the coroutine function ``func`` to completion from synchronous code.

    Uses ``asyncio.run``; inside a running event loop (a notebook) it runs in
    a worker thread with its own loop instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(func(*args, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, func(*args, **kwargs)).result()


def check_options(given: dict[str, Any], allowed: set[str], where: str) -> None:
    """Raise `InvalidOptionError` for keyword options ``where`` does not take."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidOptionError(
            f"{where}() got unexpected option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(allowed))}"
        )
