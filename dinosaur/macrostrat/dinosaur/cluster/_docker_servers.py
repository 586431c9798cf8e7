"""PostgreSQL servers in containers of a `docker_topology`, and the container chores.

`DockerServer` is a running server in a container (the primary of a
topology; `DockerStandby` builds on it): its URLs and connections from this
machine, its logs, and stopping or killing it, for failover tests. The
helpers read a container's published port and the address this machine
reaches a member at, put secret files into a container, and remove
containers without failing on those already gone. Containers are docker-py's ``Container``
objects, typed as Any (docker-py ships no types).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import time
from typing import Any
from urllib.parse import quote

import psycopg

from ..errors import ClusterError, ClusterStartError

__all__ = [
    "POSTGRES_UID",
    "TOPOLOGY_LABEL",
    "DockerServer",
    "published_port",
    "reachable_address",
    "remove_container",
    "secret_files_archive",
]

log = logging.getLogger(__name__)

POSTGRES_UID = 999
"""The uid of the images' postgres user (see the tmpfs options in ``docker.py``)."""

TOPOLOGY_LABEL = "org.macrostrat.topology"
"""The label every container and the network of one `docker_topology` carry (its id)."""


def _docker_errors() -> Any:
    from docker import errors

    return errors


def published_port(container: Any, port: int) -> int | None:
    """The host port the engine published ``port``/tcp of ``container`` on, if any.

    None until the container has started, and again once it has stopped.
    """
    container.reload()
    bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in bindings.get(f"{port}/tcp") or ():
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def secret_files_archive(directory: str, files: dict[str, str], uid: int) -> bytes:
    """A tar archive of ``directory`` (0700) holding ``files`` (0600), owned by ``uid``.

    Secrets go into a container this way (``put_archive`` before it starts)
    rather than through its environment, which ``docker inspect`` shows.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(directory.lstrip("/"))
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o700
        folder.uid = folder.gid = uid
        tar.addfile(folder)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{folder.name}/{name}")
            info.size = len(data)
            info.mode = 0o600
            info.uid = info.gid = uid
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def reachable_address(
    container: Any, port: int, primary: Any
) -> tuple[str, int] | None:
    """Where this machine reaches ``port`` of ``container``, a topology's member.

    testcontainers chose how to reach the primary (``primary.host``): through
    the engine's host or the network's gateway (then every member is reached
    on its published port there) or, in its ``bridge_ip`` mode, at the
    container's own address (then every member is reached at its own
    address, on the port itself).  None while the container has no address
    or published port (not started, or stopped).
    """
    if primary.host == _network_address(primary.container):
        own = _network_address(container)
        return (own, port) if own else None
    published = published_port(container, port)
    return (primary.host, published) if published is not None else None


def _network_address(container: Any) -> str | None:
    """The container's address on its (first) network, or None."""
    container.reload()
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    for settings in networks.values():
        if settings.get("IPAddress"):
            return str(settings["IPAddress"])
    return None


def container_logs(container: Any, tail: int = 30) -> str | None:
    """The last ``tail`` lines of a container's output, or None when unreadable."""
    try:
        return str(container.logs(tail=tail).decode(errors="replace"))
    except Exception as exc:  # gone already, engine trouble: logs are a courtesy
        log.debug("cannot read the logs of %s: %s", container.name, exc)
        return None


def remove_container(container: Any) -> None:
    """Remove ``container`` at once with its anonymous volumes; gone already is fine."""
    errors = _docker_errors()
    try:
        container.remove(force=True, v=True)
    except errors.NotFound:
        pass
    except errors.APIError as exc:
        if "already in progress" not in str(exc):
            log.warning("could not remove container %s: %s", container.name, exc)


class DockerServer:
    """A PostgreSQL server in a container of a topology, reached from this machine.

    Parameters:
        container: the started container (docker-py).
        host: the host this machine reaches the published port on.
        port: the published host port of the server's 5432.
        user: the superuser's name.
        password: the superuser's password.
        database: the database URLs and connections name by default.
        start_timeout: seconds `wait_ready` waits.
    """

    def __init__(
        self,
        container: Any,
        *,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        start_timeout: float = 120.0,
    ) -> None:
        self.container = container
        self.host = host
        self._port = port
        self._user = user
        self._password = password
        self._database = database
        self.start_timeout = start_timeout

    @property
    def name(self) -> str:
        """The container's name: the server's host name on the topology's network."""
        return str(self.container.name)

    @property
    def user(self) -> str:
        """The superuser's name."""
        return self._user

    @property
    def password(self) -> str:
        """The superuser's password."""
        return self._password

    @property
    def database(self) -> str:
        """The database URLs and connections name unless told otherwise."""
        return self._database

    @property
    def port(self) -> int:
        """The host port this machine reaches the server on."""
        return self._port

    @property
    def status(self) -> str:
        """The container's state as the engine reports it now (``"gone"`` once removed)."""
        try:
            self.container.reload()
        except _docker_errors().NotFound:
            return "gone"
        return str(self.container.status)

    @property
    def running(self) -> bool:
        """Whether the container runs (the server may still be starting)."""
        return self.status == "running"

    def url(self, *, driver: str | None = None, database: str | None = None) -> str:
        """A URL for the superuser through the published port, password included.

        Parameters:
            driver: a SQLAlchemy driver name (``"psycopg"`` gives
                ``postgresql+psycopg://``); none gives ``postgresql://``.
            database: the database to connect to (default: `database`).
        """
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"{scheme}://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{host}:{self.port}/{quote(database or self.database, safe='')}"
        )

    def connect(
        self, database: str | None = None, **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """A psycopg connection as the superuser (autocommit, 5 s connect timeout by default)."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            **kwargs,
        )

    def logs(self, tail: int = 30) -> str | None:
        """The server's last ``tail`` lines of output (it logs to the container's)."""
        return container_logs(self.container, tail)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the server accepts connections.

        Raises:
            ClusterStartError: the container exited, or no connection within
                ``timeout`` seconds (default: ``start_timeout``); with its logs.
        """
        deadline = time.monotonic() + (timeout or self.start_timeout)
        last: Exception | None = None
        while time.monotonic() < deadline:
            status = self.status
            if status not in ("created", "running"):
                raise ClusterStartError(
                    f"container {self.name} stopped while starting (status {status})",
                    self.logs(),
                )
            try:
                with self.connect(connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
            time.sleep(0.1)
        raise ClusterStartError(
            f"container {self.name} did not accept connections within "
            f"{timeout or self.start_timeout:g} s (last error: {last})",
            self.logs(),
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the container: a fast shutdown (its stop signal), killed after ``timeout`` s.

        The container stays until the topology ends (its logs can be read);
        stopping one already stopped or removed does nothing.
        """
        errors = _docker_errors()
        with contextlib.suppress(errors.NotFound):
            self.container.stop(timeout=max(1, int(timeout)))
        log.info("container %s stopped", self.name)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would.

        Raises:
            ClusterError: the engine refused (the container is not running).
        """
        errors = _docker_errors()
        try:
            self.container.kill()
        except errors.APIError as exc:
            raise ClusterError(f"cannot kill container {self.name}: {exc}") from exc
        log.info("container %s killed", self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.host}:{self.port}>"
