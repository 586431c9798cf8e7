"""A real PgBouncer in a container in front of a topology's primary container.

`create_pgbouncer_container` makes (without starting) a container from the
topology's image (``scripts/build-test-images`` installs Debian's
``pgbouncer`` in it) on the topology's network, and copies a
``pgbouncer.ini`` and an auth file (mode 0600, owned by the image's postgres
user) into it; PgBouncer runs as that user, forwards every database to the
primary by its container name and takes SCRAM from clients with the primary's
superuser and password. `start_pgbouncer` starts it, waits until it answers
on its published port and yields a `DockerPgBouncer`.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import psycopg

from ..errors import BackendUnavailableError, ClusterError, ClusterStartError
from ._docker_servers import (
    POSTGRES_UID,
    DockerServer,
    container_logs,
    reachable_address,
    secret_files_archive,
)
from ._roles import POOL_MODES, PoolMode, parse_pgbouncer_version

__all__ = ["DockerPgBouncer", "create_pgbouncer_container", "start_pgbouncer"]

log = logging.getLogger(__name__)

_PORT = 6432
_CONFIG_DIR = "/etc/macrostrat-pgbouncer"
_NOT_FOUND = 127  # the shell's exit status for a command it cannot find
_EXECUTABLE = "pgbouncer"  # looked up on the image's PATH


class DockerPgBouncer:
    """PgBouncer in a container, in ``pool_mode``, in front of ``primary``.

    Parameters:
        container: the started container.
        primary: the topology's primary (its credentials are PgBouncer's).
        host: the host this machine reaches the published port on.
        port: the published host port of PgBouncer's 6432.
        pool_mode: ``"session"`` or ``"transaction"``.
        version: PgBouncer's (major, minor) version.
        tracks_prepared_statements: whether ``max_prepared_statements`` is on.
    """

    def __init__(
        self,
        container: Any,
        *,
        primary: DockerServer,
        host: str,
        port: int,
        pool_mode: PoolMode,
        version: tuple[int, int],
        tracks_prepared_statements: bool,
    ) -> None:
        self.container = container
        self.primary = primary
        self.host = host
        self._port = port
        self._pool_mode = pool_mode
        self._version = version
        self._tracks = tracks_prepared_statements

    @property
    def port(self) -> int:
        """The host port this machine reaches PgBouncer on."""
        return self._port

    @property
    def pool_mode(self) -> PoolMode:
        """``"session"`` or ``"transaction"``."""
        return self._pool_mode

    @property
    def version(self) -> tuple[int, int]:
        """PgBouncer's (major, minor) version."""
        return self._version

    @property
    def supports_prepared_statements(self) -> bool:
        """Whether protocol-level prepared statements survive its pooling.

        True in session pooling, and in transaction pooling when PgBouncer
        tracks them (1.21 and later, ``max_prepared_statements`` above 0);
        otherwise psycopg's automatic server-side preparation must be off
        (``prepare_threshold=None``).
        """
        return self.pool_mode == "session" or self._tracks

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """A URL for the primary's superuser through PgBouncer."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        user = quote(self.primary.user, safe="")
        password = quote(self.primary.password, safe="")
        name = quote(database or self.primary.database, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}:{password}@{host}:{self.port}/{name}"

    def admin(self, command: str) -> list[tuple[Any, ...]]:
        """Run a console command (``SHOW POOLS``...) on PgBouncer's admin database."""
        with psycopg.connect(
            self.url(database="pgbouncer"),
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=5,
        ) as conn:
            cur = conn.execute(command)
            return cur.fetchall() if cur.description else []

    def logs(self, tail: int = 30) -> str | None:
        """PgBouncer's last ``tail`` lines of output."""
        return container_logs(self.container, tail)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the container (it stays, with its logs, until the topology ends)."""
        from docker import errors

        try:
            self.container.stop(timeout=max(1, int(timeout)))
        except errors.NotFound:
            pass

    def __repr__(self) -> str:
        return f"<DockerPgBouncer {self.pool_mode} on {self.host}:{self.port}>"


def _config_archive(
    primary: DockerServer, pool_mode: PoolMode, pool_size: int, max_client_conn: int
) -> bytes:
    """A tar of the configuration directory, owned by the image's postgres user."""
    escaped = primary.password.replace('"', '""')
    files = {
        "userlist.txt": f'"{primary.user}" "{escaped}"\n',
        "pgbouncer.ini": (
            "[databases]\n"
            f"* = host={primary.name} port=5432\n"
            "[pgbouncer]\n"
            "listen_addr = *\n"
            f"listen_port = {_PORT}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {_CONFIG_DIR}/userlist.txt\n"
            f"pool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\n"
            f"max_client_conn = {max_client_conn}\n"
            f"admin_users = {primary.user}\n"
            "ignore_startup_parameters = extra_float_digits\n"
        ),
    }
    return secret_files_archive(_CONFIG_DIR, files, POSTGRES_UID)


def create_pgbouncer_container(
    client: Any,
    primary: DockerServer,
    *,
    image: str,
    network: str,
    name: str,
    pool_mode: PoolMode = "transaction",
    pool_size: int = 10,
    max_client_conn: int = 200,
    labels: dict[str, str] | None = None,
) -> Any:
    """Create (not start) PgBouncer's container, its configuration copied in.

    Parameters:
        client: the docker-py client.
        primary: the running primary it forwards to (by container name).
        image: an image with ``pgbouncer`` on its ``PATH``.
        network: the topology's network.
        name: the container's name.
        pool_mode: ``"session"`` or ``"transaction"``.
        pool_size: server connections per database and user.
        max_client_conn: client connections accepted.
        labels: the container's labels.

    Raises:
        ClusterError: an unknown ``pool_mode``.
    """
    if pool_mode not in POOL_MODES:
        raise ClusterError(
            f"pool_mode must be 'session' or 'transaction', not {pool_mode!r}"
        )
    script = (
        f"command -v {_EXECUTABLE} >/dev/null || exit {_NOT_FOUND}; "
        f'exec {_EXECUTABLE} "$0"'
    )
    container = client.containers.create(
        image,
        command=["sh", "-c", script, f"{_CONFIG_DIR}/pgbouncer.ini"],
        name=name,
        network=network,
        labels=dict(labels or {}),
        user="postgres",  # PgBouncer refuses to run as root
        ports={f"{_PORT}/tcp": None},
        detach=True,
    )
    archive = _config_archive(primary, pool_mode, pool_size, max_client_conn)
    container.put_archive("/", archive)
    return container


def _tracks_prepared_statements(bouncer: DockerPgBouncer) -> bool:
    """Whether ``max_prepared_statements`` is on, turning it on where it exists.

    PgBouncer 1.21 has it off by default, later versions on; older ones lack it.
    """
    if bouncer.version < (1, 21):
        return False
    rows = {str(row[0]): row[1] for row in bouncer.admin("SHOW CONFIG")}
    if str(rows.get("max_prepared_statements", "0")) == "0":
        bouncer.admin("SET max_prepared_statements = 200")
    return True


def start_pgbouncer(
    container: Any,
    primary: DockerServer,
    *,
    pool_mode: PoolMode,
    start_timeout: float = 60.0,
) -> DockerPgBouncer:
    """Start the container of `create_pgbouncer_container` and wait until it answers.

    Raises:
        BackendUnavailableError: the image has no ``pgbouncer``.
        ClusterStartError: it exited or did not answer within ``start_timeout``
            seconds; with its logs.
    """
    container.start()
    host, port = _wait_ready(container, primary, start_timeout)
    out = container.exec_run([_EXECUTABLE, "--version"], user="postgres").output
    version = parse_pgbouncer_version(out.decode(errors="replace"))
    bouncer = DockerPgBouncer(
        container,
        primary=primary,
        host=host,
        port=port,
        pool_mode=pool_mode,
        version=version,
        tracks_prepared_statements=False,
    )
    bouncer._tracks = _tracks_prepared_statements(bouncer)
    log.info(
        "PgBouncer %d.%d (%s pooling) in container %s on port %s",
        *version,
        pool_mode,
        container.name,
        port,
    )
    return bouncer


def _wait_ready(
    container: Any, primary: DockerServer, timeout: float
) -> tuple[str, int]:
    """Wait until PgBouncer forwards a connection to ``primary``; where it listens."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        address = reachable_address(container, _PORT, primary)
        if container.status not in ("created", "running"):
            code = container.attrs.get("State", {}).get("ExitCode")
            if code == _NOT_FOUND:
                raise BackendUnavailableError(
                    f"image {container.attrs.get('Config', {}).get('Image')} has no "
                    "pgbouncer; Docker topologies with PgBouncer need an image that "
                    "has it (scripts/build-test-images installs Debian's)"
                )
            raise ClusterStartError(
                f"PgBouncer's container exited with code {code} while starting",
                container_logs(container),
            )
        if address is not None:
            try:
                with psycopg.connect(
                    host=address[0],
                    port=address[1],
                    user=primary.user,
                    password=primary.password,
                    dbname=primary.database,
                    connect_timeout=2,
                ):
                    return address
            except psycopg.OperationalError as exc:
                last = exc
        if time.monotonic() > deadline:
            raise ClusterStartError(
                f"PgBouncer did not accept connections within {timeout:g} s "
                f"(last error: {last})",
                container_logs(container),
            )
        time.sleep(0.05)
