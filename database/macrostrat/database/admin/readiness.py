"""Is a database ready? Check once, or wait with a timeout."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import time
import warnings
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import URL

from ._connection import DatabaseTarget, _connect_kwargs, _display, get_database_url

if TYPE_CHECKING:
    pass


log = logging.getLogger(__name__)


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
