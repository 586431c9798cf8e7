"""Containers, volumes and commands inside them, for cluster upgrades.

Everything goes through the Docker API (no ``docker`` command line, no bind
mounts), so a remote engine works too. Commands run with argument lists, never
through a shell built from names.
"""

from __future__ import annotations

import io
import logging
import tarfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..cluster.docker import DATA_DIR, _import_docker
from ..errors import DatabaseUpgradeError

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

__all__ = [
    "ClusterContainer",
    "containers_using_volume",
    "copy_volume",
    "ensure_empty_docker_volume",
    "new_backup_volume_name",
    "replace_docker_volume",
    "require_volume_unused",
    "run_helper",
    "volume_digest",
    "volume_exists",
    "warn_stopped_volume_users",
]

log = logging.getLogger(__name__)

FIELD_SEP = "\x1f"
RECORD_SEP = "\x1e"


def volume_exists(client: DockerClient, name: str) -> bool:
    """Whether a Docker volume ``name`` exists (never creates it)."""
    docker = _import_docker()
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


def containers_using_volume(
    client: DockerClient, name: str, *, running_only: bool = True
) -> list[Container]:
    """The containers that mount volume ``name`` (running ones by default)."""
    found: list[Container] = client.containers.list(
        all=not running_only, filters={"volume": name}
    )
    return found


def require_volume_unused(client: DockerClient, name: str) -> None:
    """Raise `DatabaseUpgradeError` if a running container mounts volume ``name``."""
    users = containers_using_volume(client, name)
    if users:
        names = ", ".join(sorted(c.name for c in users))
        raise DatabaseUpgradeError(
            f"volume {name} is in use by running container(s) {names}; stop them "
            "first (a second server on the same data directory would corrupt it)"
        )


def warn_stopped_volume_users(client: DockerClient, name: str) -> list[str]:
    """Log a warning naming the stopped containers that mount volume ``name``.

    They do not block an upgrade, but starting one afterwards runs its (old)
    image on the upgraded data directory, which that server refuses. Returns
    their names.
    """
    running = {c.id for c in containers_using_volume(client, name)}
    stopped = sorted(
        c.name
        for c in containers_using_volume(client, name, running_only=False)
        if c.id not in running
    )
    if stopped:
        log.warning(
            "stopped container(s) %s mount volume %s; after the upgrade they would "
            "start their old image on the new cluster (remove or recreate them)",
            ", ".join(stopped),
            name,
        )
    return stopped


def run_helper(
    client: DockerClient,
    image: str,
    command: list[str],
    volumes: dict[str, str],
) -> str:
    """Run ``command`` in a throwaway container of ``image`` and return its output.

    ``volumes`` maps volume names to mount points: the key ``name`` mounts
    read-write, ``name:ro`` read-only. The image's entrypoint is bypassed and
    the command runs as root.

    Raises:
        DatabaseUpgradeError: the command failed; carries its output.
    """
    docker = _import_docker()
    binds = {}
    for key, path in volumes.items():
        name, _, mode = key.partition(":")
        binds[name] = {"bind": path, "mode": mode or "rw"}
    container = client.containers.create(
        image,
        command=command,
        entrypoint=["/usr/bin/env", "--"],
        volumes=binds,
        user="0",
    )
    try:
        container.start()
        status = container.wait(timeout=3600)
        output: str = container.logs(stdout=True, stderr=True).decode(errors="replace")
    except docker.errors.DockerException as exc:
        raise DatabaseUpgradeError(f"helper command {command} failed: {exc}") from exc
    finally:
        container.remove(force=True)
    if status.get("StatusCode") != 0:
        raise DatabaseUpgradeError(
            f"helper command {command} exited with {status.get('StatusCode')}: "
            f"{output.strip()[-2000:]}"
        )
    return output


def ensure_empty_docker_volume(
    client: DockerClient, volume_name: str, *, image: str | None = None
) -> Any:
    """Return volume ``volume_name``, created empty (an unused old one is removed).

    Raises:
        DatabaseUpgradeError: the volume exists and a container uses it.
    """
    del image  # accepted for symmetry with the other helpers
    docker = _import_docker()
    if volume_exists(client, volume_name):
        users = containers_using_volume(client, volume_name, running_only=False)
        if users:
            names = ", ".join(sorted(c.name for c in users))
            raise DatabaseUpgradeError(
                f"volume {volume_name} must be emptied but container(s) {names} use it"
            )
        try:
            client.volumes.get(volume_name).remove()
        except docker.errors.APIError as exc:
            raise DatabaseUpgradeError(
                f"could not remove volume {volume_name}: {exc}"
            ) from exc
    return client.volumes.create(volume_name)


def new_backup_volume_name(client: DockerClient, volume_name: str) -> str:
    """The first of ``<volume>_backup``, ``<volume>_backup_2``, ... that does not exist."""
    candidate = f"{volume_name}_backup"
    n = 1
    while volume_exists(client, candidate):
        n += 1
        candidate = f"{volume_name}_backup_{n}"
    return candidate


# Directories by path, mode and owner (their size depends on their history);
# everything else by path, type, size, mode and owner; then all file contents.
_DIGEST_SCRIPT = (
    "cd /volume && { "
    "find . -type d -printf '%p d %m %U %G\\n'; "
    "find . ! -type d -printf '%p %y %s %m %U %G %l\\n'; "
    "} | LC_ALL=C sort | sha256sum && "
    "find . -type f -print0 | LC_ALL=C sort -z | xargs -0r cat | sha256sum"
)


def volume_digest(client: DockerClient, image: str, volume_name: str) -> str:
    """A digest of volume ``volume_name``: its tree (paths, types, modes, owners,
    file sizes, link targets) and the contents of every file."""
    output = run_helper(
        client, image, ["sh", "-c", _DIGEST_SCRIPT], {f"{volume_name}:ro": "/volume"}
    )
    return " ".join(output.split()[::2])


def copy_volume(
    client: DockerClient, image: str, from_volume: str, to_volume: str
) -> None:
    """Empty ``to_volume``, copy ``from_volume`` into it, and check the copy.

    Raises:
        DatabaseUpgradeError: the copy differs from the source.
    """
    run_helper(
        client,
        image,
        [
            "sh",
            "-ec",
            "find /to -mindepth 1 -delete; cp -a /from/. /to/; sync",
        ],
        {f"{from_volume}:ro": "/from", to_volume: "/to"},
    )
    source = volume_digest(client, image, from_volume)
    copy = volume_digest(client, image, to_volume)
    if source != copy:
        raise DatabaseUpgradeError(
            f"copying volume {from_volume} to {to_volume} did not give an identical copy"
        )


def replace_docker_volume(
    client: DockerClient, from_volume: str, to_volume: str, *, image: str
) -> None:
    """Replace the contents of ``to_volume`` by those of ``from_volume``.

    Unlike upstream, the destination is emptied first, so no file of the old
    contents survives next to the new ones; the copy is verified.
    """
    copy_volume(client, image, from_volume, to_volume)


def _tar_one(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        info.uid = info.gid = 999
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class ClusterContainer:
    """A PostgreSQL server in a container, driven through ``docker exec``.

    Attributes:
        container: the Docker container.
        user: the superuser to connect as (over the local socket).
    """

    container: Container
    user: str

    @property
    def name(self) -> str:
        """The container's name (its host name on the upgrade network)."""
        return str(self.container.name)

    def put_file(self, directory: str, name: str, data: bytes) -> None:
        """Write ``data`` to ``directory/name`` in the container (owner uid 999)."""
        if not self.container.put_archive(directory, _tar_one(name, data)):
            raise DatabaseUpgradeError(
                f"could not write {directory}/{name} in {self.name}"
            )

    def run(
        self, command: list[str], *, env: dict[str, str] | None = None
    ) -> tuple[str, str]:
        """Run ``command`` as the postgres OS user; return (stdout, stderr).

        Raises:
            DatabaseUpgradeError: a non-zero exit; carries the error output.
        """
        environment = {"PGUSER": self.user, **(env or {})}
        code, (out, err) = self.container.exec_run(
            command, environment=environment, user="postgres", demux=True
        )
        stdout = (out or b"").decode(errors="replace")
        stderr = (err or b"").decode(errors="replace")
        if code != 0:
            raise DatabaseUpgradeError(
                f"{command[0]} failed in container {self.name} (exit {code}): "
                f"{stderr.strip()[-3000:] or stdout.strip()[-3000:]}"
            )
        return stdout, stderr

    def query(
        self, sql: str, *, database: str = "postgres", host: str | None = None
    ) -> list[list[str]]:
        """Rows of ``sql`` (constant text) as lists of strings, via ``psql``."""
        command = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        command += ["-F", FIELD_SEP, "-R", RECORD_SEP, "-d", database, "-c", sql]
        if host is not None:
            command += ["-h", host]
        out, _ = self.run(command)
        out = out.rstrip("\n")
        return [rec.split(FIELD_SEP) for rec in out.split(RECORD_SEP) if rec != ""]

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the server accepts TCP connections (after any initialisation)."""
        deadline = time.monotonic() + timeout
        while True:
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                raise DatabaseUpgradeError(
                    f"container {self.name} exited while starting:\n{self.logs()}"
                )
            code, _ = self.container.exec_run(
                ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], user="postgres"
            )
            if code == 0:
                return
            if time.monotonic() > deadline:
                raise DatabaseUpgradeError(
                    f"container {self.name} did not get ready within {timeout:g} s:\n"
                    f"{self.logs()}"
                )
            time.sleep(0.3)

    def logs(self, tail: int = 30) -> str:
        """The last ``tail`` lines of the container's log."""
        log_bytes: bytes = self.container.logs(tail=tail)
        return log_bytes.decode(errors="replace")

    def stop(self, timeout: int = 120) -> None:
        """Shut the server down cleanly and remove the container.

        ``docker stop`` sends the image's stop signal (SIGINT, a fast shutdown,
        for the official and the locally built images), then waits.

        Raises:
            DatabaseUpgradeError: the server did not exit cleanly.
        """
        try:
            self.container.stop(timeout=timeout)
            status = self.container.wait(timeout=timeout)
            if status.get("StatusCode") != 0:
                raise DatabaseUpgradeError(
                    f"the server in {self.name} did not shut down cleanly "
                    f"(exit {status.get('StatusCode')}):\n{self.logs()}"
                )
        finally:
            self.container.remove(force=True)


def start_cluster_container(
    client: DockerClient,
    image: str,
    volume: str,
    *,
    name: str,
    network: str,
    user: str,
    command: list[str] | None = None,
    environment: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> ClusterContainer:
    """Start ``image`` with ``volume`` as its data directory on ``network``.

    ``files`` (path → contents) are written into the container before it starts.
    No port is published: the server is reached with ``docker exec`` and, from
    the other container, over the (internal) network.
    """
    env = {"PGDATA": DATA_DIR, **(environment or {})}
    container = client.containers.create(
        image,
        command=command,
        name=name,
        environment=env,
        volumes={volume: {"bind": DATA_DIR, "mode": "rw"}},
        network=network,
    )
    cluster = ClusterContainer(container, user)
    try:
        for path, data in (files or {}).items():
            directory, _, filename = path.rpartition("/")
            cluster.put_file(directory or "/", filename, data)
        container.start()
        cluster.wait_ready()
    except BaseException:
        container.remove(force=True)
        raise
    return cluster
