"""Hot standbys in containers: a base backup from the primary's container, streaming.

`create_standby_container` makes (without starting) a container from the
primary's image on the topology's network whose command runs
``pg_basebackup --write-recovery-conf`` against the primary by its container
name, through a physical replication slot of its own, then execs the server
with the primary's settings and ``hot_standby``. `DockerStandby` is the
running standby: replay waits, the synchronous check, ``pg_promote``, and a
stop that drops its slot on the primary.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from typing import Any

from . import _replication
from ._docker_servers import POSTGRES_UID, DockerServer, secret_files_archive
from ._settings import build_postgres_command
from .docker import _CONFIG_DIR, _TMPFS_OPTIONS, DATA_DIR

_SECRETS_DIR = "/etc/macrostrat-standby"

__all__ = ["DockerStandby", "create_standby_container"]

log = logging.getLogger(__name__)

_PRIMARY_PORT = 5432  # the server's port inside every container


def create_standby_container(
    client: Any,
    primary: DockerServer,
    *,
    image: str,
    network: str,
    name: str,
    slot: str,
    settings: Mapping[str, str],
    in_memory: bool = True,
    labels: Mapping[str, str] | None = None,
    config_dir: str | None = None,
) -> Any:
    """Create (not start) the container of a standby of ``primary``.

    Parameters:
        client: the docker-py client.
        primary: the running primary; its container name is its host name on
            ``network``, its superuser makes the base backup.
        image: the image to run (the primary's: same major version).
        network: the topology's network.
        name: the container's name.
        slot: the replication slot the base backup creates and the standby
            streams through; also its ``cluster_name`` (libpq's
            ``application_name``, which ``synchronous_standby_names`` names).
        settings: the server's command-line settings (the primary's, with
            the standby's on top).
        in_memory: keep the data directory on a tmpfs.
        labels: the container's labels.
        config_dir: a host directory holding the ``config_file`` wrapper, mounted
            where the primary has it.
    """
    backup = shlex.join(
        [
            "pg_basebackup",
            "--pgdata",
            DATA_DIR,
            "--host",
            primary.name,
            "--port",
            str(_PRIMARY_PORT),
            "--username",
            primary.user,
            "--write-recovery-conf",
            "--wal-method",
            "stream",
            "--slot",
            slot,
            "--create-slot",
            "--checkpoint",
            "fast",
            "--no-sync",
        ]
    )
    server = build_postgres_command(
        {**settings, "cluster_name": slot, "hot_standby": "on"}
    )
    assert server is not None
    options: dict[str, Any] = {
        "name": name,
        "network": network,
        "labels": dict(labels or {}),
        # The entrypoint runs anything but "postgres" as is: the base backup,
        # then the server, both as the image's postgres user.
        "command": ["sh", "-c", f'{backup} && exec "$@"', "standby", *server],
        "user": "postgres",
        # The base backup and the walreceiver (libpq) read the password from
        # a 0600 file put in before the start (docker inspect shows the
        # environment, not the file).
        "environment": {"PGPASSFILE": f"{_SECRETS_DIR}/pgpass", "PGDATA": DATA_DIR},
        "ports": {f"{_PRIMARY_PORT}/tcp": None},
        "detach": True,
    }
    if in_memory:
        options["tmpfs"] = {DATA_DIR: _TMPFS_OPTIONS}
    if config_dir is not None:
        options["volumes"] = {config_dir: {"bind": _CONFIG_DIR, "mode": "ro"}}
    container = client.containers.create(image, **options)
    line = ":".join(
        _pgpass_field(v)
        for v in (primary.name, str(_PRIMARY_PORT), "*", primary.user, primary.password)
    )
    container.put_archive(
        "/", secret_files_archive(_SECRETS_DIR, {"pgpass": line + "\n"}, POSTGRES_UID)
    )
    return container


def _pgpass_field(value: str) -> str:
    """``value`` as a ``.pgpass`` field (``:`` and ``\\`` escaped)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


class DockerStandby(DockerServer):
    """A running hot standby of ``primary`` in its own container.

    Parameters:
        container: the started container (`create_standby_container`).
        primary: the topology's primary.
        slot: its replication slot (and ``application_name``) on the primary.
        host: the host this machine reaches the published port on.
        port: the published host port.
        start_timeout: seconds `wait_ready` and `wait_for_replay` wait by default.
    """

    def __init__(
        self,
        container: Any,
        *,
        primary: DockerServer,
        slot: str,
        host: str,
        port: int,
        start_timeout: float = 120.0,
    ) -> None:
        super().__init__(
            container,
            host=host,
            port=port,
            user=primary.user,
            password=primary.password,
            database=primary.database,
            start_timeout=start_timeout,
        )
        self.primary = primary
        self._slot = slot

    @property
    def slot(self) -> str:
        """Its physical replication slot on the primary, also its ``application_name``."""
        return self._slot

    def wait_for_replay(self, timeout: float | None = None) -> None:
        """Block until this standby has replayed the primary's current WAL position.

        Raises:
            ClusterStartError: not caught up within ``timeout`` seconds
                (default: ``start_timeout``); with the standby's logs.
        """
        _replication.wait_for_replay(
            self.primary,
            self,
            name=self.slot,
            timeout=timeout or self.start_timeout,
            logs=self.logs,
        )

    def wait_until_synchronous(self, timeout: float | None = None) -> None:
        """Block until the primary reports this standby as its synchronous one.

        Raises:
            ClusterStartError: not so within ``timeout`` seconds.
        """
        _replication.wait_until_synchronous(
            self.primary, self.slot, timeout=timeout or self.start_timeout
        )

    def promote(self, timeout: float = 60.0) -> None:
        """Promote this standby to a primary (``pg_promote``) and wait for it.

        Raises:
            ClusterError: not promoted within ``timeout`` seconds.
        """
        _replication.promote(self, name=self.slot, timeout=timeout)
        log.info("standby %s promoted (container %s)", self.slot, self.name)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the standby's container and drop its slot on the primary (if it runs)."""
        super().stop(timeout)
        if self.primary.running:
            _replication.drop_inactive_slot(self.primary, self.slot)
