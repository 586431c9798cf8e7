"""A real PgBouncer in front of a local cluster, for tests of pooled connections.

`LocalPgBouncer` writes a ``pgbouncer.ini`` and an auth file (mode 0600) into
a temporary directory, runs the machine's ``pgbouncer`` (Debian's package) as
the cluster's server account, listening on a free loopback port, and forwards
every database to the cluster's Unix socket. Clients authenticate with the
cluster's superuser and password (SCRAM); PgBouncer reaches the server over
the socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from ..errors import BackendUnavailableError, ClusterError, ClusterStartError
from ._roles import PoolMode, parse_pgbouncer_version
from .local import LocalCluster, _free_port, _tail

__all__ = ["PGBOUNCER_ENV", "LocalPgBouncer", "PoolMode", "find_pgbouncer"]

log = logging.getLogger(__name__)

_START_ATTEMPTS = 3

PGBOUNCER_ENV = "MACROSTRAT_PGBOUNCER"
"""Environment variable naming the ``pgbouncer`` executable to run."""


def find_pgbouncer() -> Path:
    """The ``pgbouncer`` executable: ``$MACROSTRAT_PGBOUNCER``, ``PATH``, ``/usr/sbin``.

    Raises:
        BackendUnavailableError: none found (the message says how to install it).
    """
    named = os.environ.get(PGBOUNCER_ENV)
    candidates: list[str | None] = [named] if named else []
    candidates += [shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise BackendUnavailableError(
        "PgBouncer is not installed: apt-get install pgbouncer (or set "
        f"{PGBOUNCER_ENV} to its executable)"
    )


def pgbouncer_version(executable: Path) -> tuple[int, int]:
    """PgBouncer's (major, minor) version, from ``pgbouncer --version``."""
    out = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return parse_pgbouncer_version(out)


class LocalPgBouncer:
    """PgBouncer in ``pool_mode`` in front of ``cluster``; a context manager.

    Parameters:
        cluster: the running `LocalCluster` to forward to.
        pool_mode: ``"transaction"`` (a server connection per transaction) or
            ``"session"`` (per client connection).
        pool_size: server connections per database and user.
        max_client_conn: client connections accepted.
        executable: the ``pgbouncer`` to run (default: `find_pgbouncer`).
        start_timeout: seconds to wait until it accepts connections.
    """

    def __init__(
        self,
        cluster: LocalCluster,
        *,
        pool_mode: PoolMode = "transaction",
        pool_size: int = 10,
        max_client_conn: int = 200,
        executable: Path | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        if pool_mode not in ("session", "transaction"):
            raise ClusterError(
                f"pool_mode must be 'session' or 'transaction', not {pool_mode!r}"
            )
        self.cluster = cluster
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.executable = executable or find_pgbouncer()
        self.version = pgbouncer_version(self.executable)
        self.start_timeout = start_timeout
        self.base: Path | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def supports_prepared_statements(self) -> bool:
        """Whether protocol-level prepared statements survive transaction pooling.

        PgBouncer 1.21 and later track them (``max_prepared_statements``);
        before, psycopg's automatic server-side preparation must be off
        (``prepare_threshold=None``) in transaction mode.
        """
        return self.pool_mode == "session" or self.version >= (1, 21)

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """A URL for the cluster's superuser through PgBouncer."""
        if self.port is None:
            raise ClusterError("PgBouncer has not been started")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        user = quote(self.cluster.user, safe="")
        password = quote(self.cluster.password, safe="")
        name = quote(database or self.cluster.database, safe="")
        return f"{scheme}://{user}:{password}@127.0.0.1:{self.port}/{name}"

    def __enter__(self) -> LocalPgBouncer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_files(self) -> Path:
        assert self.base is not None
        cluster = self.cluster
        auth = self.base / "userlist.txt"
        auth.write_text(
            f'"{cluster.user}" "{cluster.password.replace(chr(34), chr(34) * 2)}"\n'
        )
        auth.chmod(0o600)
        extra = ""
        if self.version >= (1, 21):
            extra = "max_prepared_statements = 200\n"
        ini = self.base / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={cluster.socket_directory} port={cluster.port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {auth}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"admin_users = {cluster.user}\n"
            "ignore_startup_parameters = extra_float_digits\n"
            f"logfile = {self.base / 'pgbouncer.log'}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n" + extra
        )
        for path in (self.base, auth, ini):
            cluster._chown(path)
        return ini

    def start(self) -> LocalPgBouncer:
        """Write the configuration, start PgBouncer and wait until it answers."""
        if self.base is not None:
            raise ClusterError("PgBouncer was already started")
        if not self.cluster.running:
            raise ClusterError("the cluster PgBouncer would forward to is not running")
        self.base = Path(tempfile.mkdtemp(prefix="macrostrat-pgbouncer-"))
        self.base.chmod(0o700)
        self._finalizer = weakref.finalize(self, _finalize, None, self.base)
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                self.port = _free_port()
                ini = self._write_files()
                with (self.base / "stdout.log").open("ab") as out:
                    self._proc = subprocess.Popen(
                        [str(self.executable), str(ini)],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        cwd=str(self.base),
                        start_new_session=True,
                        **self.cluster._user_kwargs(),
                    )
                self._finalizer.detach()
                self._finalizer = weakref.finalize(
                    self, _finalize, self._proc, self.base
                )
                try:
                    self._wait_ready()
                    break
                except ClusterStartError as exc:
                    # Another process took the free port in the meantime.
                    if attempt < _START_ATTEMPTS and "in use" in (exc.log_tail or ""):
                        _terminate(self._proc)
                        continue
                    raise
        except BaseException:
            self.stop()
            raise
        log.info(
            "PgBouncer %d.%d (%s pooling) on port %s",
            *self.version,
            self.pool_mode,
            self.port,
        )
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        assert self.base is not None
        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ClusterStartError(
                    f"PgBouncer exited with code {self._proc.returncode} while starting",
                    log_tail=_tail(self.base / "pgbouncer.log")
                    or _tail(self.base / "stdout.log"),
                )
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
            time.sleep(0.05)
        raise ClusterStartError(
            f"PgBouncer did not accept connections within {self.start_timeout:g} s "
            f"(last error: {last})",
            log_tail=_tail(self.base / "pgbouncer.log"),
        )

    def admin(self, command: str) -> list[tuple[Any, ...]]:
        """Run a console command (``SHOW POOLS``...) on PgBouncer's admin database."""
        with psycopg.connect(
            self.url(database="pgbouncer"), autocommit=True, prepare_threshold=None
        ) as conn:
            cur = conn.execute(command)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        """Stop PgBouncer at once and remove its directory (idempotent)."""
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        _finalize(proc, self.base)
        self.base = None


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM is PgBouncer's immediate shutdown (SIGINT waits for clients)."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


def _finalize(proc: subprocess.Popen[bytes] | None, base: Path | None) -> None:
    """Stop the process and remove the directory; also at exit or collection."""
    _terminate(proc)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
