"""Throwaway PostgreSQL clusters run from the server binaries on this machine.

`LocalCluster` runs ``initdb`` into a temporary directory (in ``/dev/shm`` when
``in_memory``), starts ``postgres`` listening on a private Unix socket and on a
free loopback port, and removes everything again on `LocalCluster.stop`.  When
this process runs as root, the server runs as an unprivileged user that owns
the data directory, since PostgreSQL refuses to run as root.

Longer than 400 lines because it is one class's lifecycle: directories,
``initdb``, settings, a start retried on a taken port, readiness, stop, and a
finalizer for a server its owner forgot, with the account switching that
running as root needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ..errors import ClusterError, ClusterStartError
from ._binaries import PostgresBinaries, find_postgres_binaries
from ._extensions import create_extensions
from ._settings import TESTING_SETTINGS, render_setting

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["RUN_AS_ENV", "LocalCluster"]

log = logging.getLogger(__name__)

RUN_AS_ENV = "MACROSTRAT_POSTGRES_USER"
"""Environment variable naming the system user a root process runs servers as."""

_LOG_TAIL_LINES = 30
_START_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_account(run_as: str | None) -> pwd.struct_passwd | None:
    """The account to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        if run_as is not None:
            raise ClusterError(
                f"run_as={run_as!r} needs root; this process runs as uid {os.geteuid()}"
            )
        return None
    names = [run_as or os.environ.get(RUN_AS_ENV) or "", "postgres", "nobody"]
    for name in filter(None, names):
        try:
            account = pwd.getpwnam(name)
        except KeyError as exc:
            if name == (run_as or os.environ.get(RUN_AS_ENV)):
                raise ClusterError(
                    f"No system user named {name!r} to run PostgreSQL as"
                ) from exc
            continue
        if account.pw_uid != 0:
            return account
    raise ClusterError(
        "PostgreSQL refuses to run as root and no unprivileged user was found; "
        f"create one or name one with {RUN_AS_ENV}"
    )


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return "\n".join(text.splitlines()[-lines:]) or None


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a postmaster: fast shutdown, then immediate, then kill the group."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    # Backends die with their postmaster; make sure of it in the worst case.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(5.0)


def _finalize(proc: subprocess.Popen[bytes] | None, base: Path | None) -> None:
    if proc is not None:
        _stop_process(proc)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


class LocalCluster:
    """A PostgreSQL cluster in a temporary directory, run from local binaries.

    Use it as a context manager, or call `start` and `stop`.  After `stop` (and
    also if the object is garbage-collected or the interpreter exits) no server
    process and no temporary directory is left behind.

    Parameters:
        version: major version to run; default: the first found by
            `find_postgres_binaries`.
        binaries: explicit binaries to use (overrides ``version``).
        user: the superuser's name (default ``postgres``).
        password: the superuser's password for TCP connections (default: random).
        database: a database to create and connect to (default ``postgres``).
        in_memory: keep the data directory in ``/dev/shm`` when it exists.
        optimize_for_testing: apply settings that trade durability for speed.
        config: server settings (``{"work_mem": "64MB"}``), or the path of a file
            of settings that is included into ``postgresql.conf``.
        environment: extra environment variables for the server process.
        data_directory: keep the cluster in this directory instead of a temporary
            one; it is reused when it already holds a cluster and is never removed.
        extensions: extensions to create in ``database`` (e.g. ``("postgis",)``).
        run_as: the system user a root process runs the server as (default:
            ``$MACROSTRAT_POSTGRES_USER``, then ``postgres``, then ``nobody``).
        start_timeout: seconds to wait for the server to accept connections.
    """

    def __init__(
        self,
        *,
        version: int | None = None,
        binaries: PostgresBinaries | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        in_memory: bool = True,
        optimize_for_testing: bool = False,
        config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        environment: Mapping[str, str] | None = None,
        data_directory: str | os.PathLike[str] | None = None,
        extensions: Iterable[str] = (),
        run_as: str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.binaries = binaries or find_postgres_binaries(version)
        self.user = user or "postgres"
        self.password = password if password is not None else secrets.token_urlsafe(18)
        self.database = database or "postgres"
        self.in_memory = in_memory and data_directory is None
        self.settings: dict[str, str] = {}
        self.config_file: Path | None = None
        if optimize_for_testing:
            self.settings.update(TESTING_SETTINGS)
        if isinstance(config, Mapping):
            self.settings.update({k: render_setting(v) for k, v in config.items()})
        elif config is not None:
            self.config_file = Path(config)
            if not self.config_file.is_file():
                raise ClusterError(f"config file {self.config_file} does not exist")
        self.environment = dict(environment or {})
        self.extensions = tuple(extensions)
        self.start_timeout = start_timeout
        self._account = _server_account(run_as)
        self._persistent = Path(data_directory) if data_directory is not None else None
        self.base: Path | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    # -- public properties -------------------------------------------------

    @property
    def data_directory(self) -> Path:
        """The cluster's data directory (``PGDATA``)."""
        if self._persistent is not None:
            return self._persistent
        if self.base is None:
            raise ClusterError("the cluster has not been started")
        return self.base / "data"

    @property
    def socket_directory(self) -> Path:
        """The directory holding the server's Unix socket."""
        if self.base is None:
            raise ClusterError("the cluster has not been started")
        return self.base / "run"

    @property
    def log_file(self) -> Path:
        """The server's log file."""
        if self.base is None:
            raise ClusterError("the cluster has not been started")
        return self.base / "server.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """A TCP connection URL for the superuser, password included.

        Parameters:
            driver: a SQLAlchemy driver name (``"psycopg"`` gives
                ``postgresql+psycopg://``); none gives ``postgresql://``.
            database: the database to connect to (default: `database`).
        """
        if self.port is None:
            raise ClusterError("the cluster has not been started")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        from urllib.parse import quote

        return (
            f"{scheme}://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(database or self.database, safe='')}"
        )

    def connect(self, database: str | None = None, **kwargs: Any) -> psycopg.Connection:
        """Open a psycopg connection over the Unix socket (autocommit by default)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(
            host=str(self.socket_directory),
            port=self.port,
            user=self.user,
            dbname=database or self.database,
            **kwargs,
        )

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Create the cluster if needed, start the server and wait until it answers."""
        if self.base is not None:
            raise ClusterError("the cluster was already started")
        try:
            self._prepare_directories()
            self._finalizer = weakref.finalize(self, _finalize, None, self.base)
            if not (self.data_directory / "PG_VERSION").exists():
                self._initdb()
            self._write_config()
            self._start_server()
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _finalize, self._proc, self.base)
            self._post_start()
        except BaseException:
            self.stop()
            raise
        log.info(
            "PostgreSQL %s cluster running in %s on port %s",
            self.binaries.version,
            self.data_directory,
            self.port,
        )
        return self

    def stop(self) -> None:
        """Stop the server and remove the temporary directory (idempotent)."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                _stop_process(proc)
        finally:
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)

    # -- steps -------------------------------------------------------------

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _prepare_directories(self) -> None:
        parent: str | None = None
        if (
            self.in_memory
            and os.path.isdir("/dev/shm")
            and os.access("/dev/shm", os.W_OK)
        ):
            parent = "/dev/shm"
        self.base = Path(tempfile.mkdtemp(prefix="macrostrat-pg-", dir=parent))
        for path in (self.base, self.base / "run"):
            path.mkdir(mode=0o700, exist_ok=True)
            self._chown(path)
        if self._persistent is not None:
            self._persistent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not (self._persistent / "PG_VERSION").exists():
                self._chown(self._persistent)
                self._check_reachable(self._persistent)
            elif self._account is not None:
                # Run an existing cluster as the user that owns it.
                owner = self._persistent.stat().st_uid
                if owner != 0:
                    self._account = pwd.getpwuid(owner)

    def _check_reachable(self, path: Path) -> None:
        """Fail early when the server's account cannot write ``path``."""
        if self._account is None:
            return
        probe = subprocess.run(
            ["test", "-w", str(path), "-a", "-x", str(path)],
            check=False,
            **self._user_kwargs(),
        )
        if probe.returncode != 0:
            raise ClusterError(
                f"The server runs as {self._account.pw_name!r}, who cannot reach {path}; "
                "choose a directory whose parents that user can traverse"
            )

    def _run(self, args: list[str], what: str) -> None:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            env=self._env(),
            cwd=str(self.base),
            **self._user_kwargs(),
        )
        if result.returncode != 0:
            raise ClusterStartError(
                f"{what} failed with exit code {result.returncode}: {' '.join(args)}",
                log_tail=(result.stderr or result.stdout).strip() or None,
            )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C"})
        if self._account is not None:
            env["HOME"] = str(self.base)
            env["USER"] = env["LOGNAME"] = self._account.pw_name
        env.update(self.environment)
        return env

    def _user_kwargs(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        return {
            "user": self._account.pw_uid,
            "group": self._account.pw_gid,
            "extra_groups": [],
        }

    def _initdb(self) -> None:
        assert self.base is not None
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run(
                [
                    str(self.binaries.path("initdb")),
                    "--pgdata",
                    str(self.data_directory),
                    "--username",
                    self.user,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local",
                    "trust",
                    "--auth-host",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ],
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_config(self) -> None:
        if self.config_file is None:
            return
        target = self.data_directory / "macrostrat-extra.conf"
        shutil.copyfile(self.config_file, target)
        self._chown(target)
        conf = self.data_directory / "postgresql.conf"
        line = "include 'macrostrat-extra.conf'\n"
        if line not in conf.read_text():
            with conf.open("a") as fh:
                fh.write("\n" + line)

    def _server_args(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_directory),
            "logging_collector": "off",
            **self.settings,
        }
        args = [str(self.binaries.path("postgres")), "-D", str(self.data_directory)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def _start_server(self) -> None:
        for attempt in range(1, _START_ATTEMPTS + 1):
            self.port = _free_port()
            with self.log_file.open("ab") as log_fh:
                self._proc = subprocess.Popen(
                    self._server_args(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    cwd=str(self.base),
                    start_new_session=True,
                    **self._user_kwargs(),
                )
            try:
                self._wait_ready()
                return
            except ClusterStartError as exc:
                tail = exc.log_tail or ""
                if attempt < _START_ATTEMPTS and "could not bind" in tail:
                    log.debug("port %s was taken; retrying on another port", self.port)
                    continue
                raise

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        delay = 0.01
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ClusterStartError(
                    f"PostgreSQL exited with code {self._proc.returncode} while starting",
                    log_tail=_tail(self.log_file),
                )
            try:
                with psycopg.connect(
                    host=str(self.socket_directory),
                    port=self.port,
                    user=self.user,
                    dbname="postgres",
                    connect_timeout=2,
                ):
                    return
            except psycopg.OperationalError as exc:
                last_error = exc
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        raise ClusterStartError(
            f"PostgreSQL did not accept connections within {self.start_timeout:g} s "
            f"(last error: {last_error})",
            log_tail=_tail(self.log_file),
        )

    def _post_start(self) -> None:
        with self.connect("postgres") as conn:
            if self._persistent is not None:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(self.user), sql.Literal(self.password)
                    )
                )
            if self.database != "postgres":
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if exists is None:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(
                            sql.Identifier(self.database)
                        )
                    )
        if self.extensions:
            with self.connect(self.database) as conn:
                create_extensions(conn, self.extensions)
