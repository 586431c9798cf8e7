"""Throwaway topologies in Docker: a primary, hot standbys and PgBouncer in containers.

`docker_topology` creates a user-defined network of its own, starts the
primary through the Docker backend (`docker_cluster_url`: testcontainers, the
image's entrypoint, a random password) with the replication settings, lets
replication connections in, starts ``standbys`` standby containers made by
``pg_basebackup -R`` from the primary (a replication slot each, streaming,
``hot_standby``) and waits until each has replayed the primary's WAL; with
``pgbouncer`` it puts a real PgBouncer container in front of the primary. It
yields a `DockerTopology`, which has `Topology`'s interface (`TopologyLike`).
On exit, also on an error or ``KeyboardInterrupt``, every container and the
network are removed, with any temporary files.

Nothing is pulled unless the image is missing (`docker_cluster_url` pulls it
then, logging it); standbys and PgBouncer run the primary's image, which must
have ``pgbouncer`` on its ``PATH`` for ``pgbouncer=`` (the images of
``scripts/build-test-images`` have Debian's).

Longer than 400 lines because `docker_topology`'s steps (the network and
its sweep, the primary, replication access, standbys, the synchronous
standby, PgBouncer) share one cleanup stack and are read in order; each
member's own work lives in ``_docker_standby`` and ``_docker_pgbouncer``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from psycopg import sql

from ..errors import ClusterError, ClusterStartError
from ._docker_pgbouncer import (
    DockerPgBouncer,
    create_pgbouncer_container,
    start_pgbouncer,
)
from ._docker_servers import (
    TOPOLOGY_LABEL,
    DockerServer,
    container_logs,
    reachable_address,
    remove_container,
)
from ._docker_standby import DockerStandby, create_standby_container
from ._roles import PoolMode, TopologyURLs, check_topology_options
from ._settings import REPLICATION_SETTINGS, TESTING_SETTINGS, render_setting
from .docker import (
    _CONFIG_DIR,
    _require_client,
    _write_config_wrapper,
    docker_cluster_url,
    resolve_image,
)

__all__ = ["DockerTopology", "docker_topology"]

log = logging.getLogger(__name__)


@dataclass
class DockerTopology(TopologyURLs):
    """The servers of a `docker_topology`.

    Attributes:
        primary: the primary's container.
        standbys: its hot standbys' containers, in order.
        pgbouncer: PgBouncer's container in front of the primary, or None.
        network: the name of the topology's Docker network.
        topology_id: the value of the `TOPOLOGY_LABEL` label every container
            and the network carry.
    """

    primary: DockerServer
    standbys: list[DockerStandby] = field(default_factory=list)
    pgbouncer: DockerPgBouncer | None = None
    network: str = ""
    topology_id: str = ""

    @property
    def label(self) -> str:
        """The ``key=value`` label of its containers (a ``docker ps --filter label=``)."""
        return f"{TOPOLOGY_LABEL}={self.topology_id}"

    def server_address(self, server: Any) -> tuple[str, int]:
        """Where testcontainers told this machine to reach the container."""
        return (server.host, server.port)


def _remove_everything(client: Any, topology_id: str) -> None:
    """Remove every container, then every network, labelled with ``topology_id``."""
    from docker import errors

    selector = {"label": f"{TOPOLOGY_LABEL}={topology_id}"}
    try:
        for container in client.containers.list(all=True, filters=selector):
            remove_container(container)
        for network in client.networks.list(filters=selector):
            with contextlib.suppress(errors.NotFound):
                network.remove()
    except errors.APIError as exc:
        log.warning("could not remove topology %s completely: %s", topology_id, exc)


def _allow_replication(primary: DockerServer, auth_method: str) -> None:
    """Add ``host replication all all <auth_method>`` to the primary's ``pg_hba.conf``.

    The images' entrypoints let every database in from anywhere, but
    ``all`` does not cover replication connections.
    """
    with primary.connect() as conn:
        row = conn.execute("SHOW hba_file").fetchone()
    assert row is not None
    rule = f"host replication all all {auth_method}"
    result = primary.container.exec_run(
        ["sh", "-c", 'printf "%s\\n" "$2" >> "$1"', "sh", row[0], rule],
        user="postgres",
    )
    if result.exit_code != 0:
        raise ClusterStartError(
            f"could not let replication connections into {primary.name} "
            f"({row[0]}): {result.output.decode(errors='replace').strip()}"
        )
    with primary.connect() as conn:
        conn.execute("SELECT pg_reload_conf()")


def _server_settings(
    optimize_for_testing: bool,
    config: Mapping[str, Any] | None,
    standbys: int,
    synchronous: bool,
) -> dict[str, str]:
    """The primary's command-line settings, in `local_topology`'s order."""
    settings = dict(TESTING_SETTINGS) if optimize_for_testing else {}
    if standbys:
        settings.update(REPLICATION_SETTINGS)
    settings.update({k: render_setting(v) for k, v in (config or {}).items()})
    if standbys and synchronous:
        settings["synchronous_commit"] = "on"
    return settings


def _start_standbys(
    stack: contextlib.ExitStack,
    client: Any,
    topology: DockerTopology,
    *,
    count: int,
    image: str,
    settings: Mapping[str, str],
    in_memory: bool,
    labels: Mapping[str, str],
    config_dir: str | None,
) -> None:
    """Start ``count`` standbys of the topology's primary; append each once caught up.

    Their containers are created (and their removal put on ``stack``) first,
    then started together, so the base backups run side by side.
    """
    primary = topology.primary
    containers = []
    for number in range(1, count + 1):
        container = create_standby_container(
            client,
            primary,
            image=image,
            network=topology.network,
            name=f"{topology.network}-standby-{number}",
            slot=f"standby_{number}",
            settings=settings,
            in_memory=in_memory,
            labels=labels,
            config_dir=config_dir,
        )
        stack.callback(remove_container, container)
        containers.append(container)
    for container in containers:
        container.start()
    for number, container in enumerate(containers, start=1):
        address = reachable_address(container, 5432, primary)
        if address is None:
            raise ClusterStartError(
                f"standby container {container.name} exited while starting",
                container_logs(container),
            )
        standby = DockerStandby(
            container,
            primary=primary,
            slot=f"standby_{number}",
            host=address[0],
            port=address[1],
            start_timeout=primary.start_timeout,
        )
        standby.wait_ready()
        standby.wait_for_replay()
        topology.standbys.append(standby)


def _make_synchronous(standby: DockerStandby) -> None:
    """Name ``standby`` in its primary's ``synchronous_standby_names``; wait until it is.

    Only once it streams: a synchronous standby named before makes every
    commit wait (extensions, the base backups' checkpoints).
    """
    with standby.primary.connect() as conn:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                sql.Literal(standby.slot)
            )
        )
        conn.execute("SELECT pg_reload_conf()")
    standby.wait_until_synchronous()


@contextlib.contextmanager
def docker_topology(
    *,
    standbys: int = 1,
    pgbouncer: PoolMode | None = None,
    synchronous: bool = False,
    image: str | None = None,
    optimize_for_testing: bool = True,
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    extensions: Iterable[str] = (),
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    environment: Mapping[str, str] | None = None,
    in_memory: bool = True,
    pool_size: int = 10,
    labels: Mapping[str, str] | None = None,
    docker_client: Any = None,
    start_timeout: float = 120.0,
    **container_options: Any,
) -> Iterator[DockerTopology]:
    """Start a primary, ``standbys`` hot standbys and optionally PgBouncer in Docker.

    Parameters:
        standbys: how many hot standbys to start (0 for none).
        pgbouncer: ``"transaction"`` or ``"session"`` to put PgBouncer in front
            of the primary in that pooling mode; None for none.
        synchronous: make commits wait until the first standby has flushed
            them (``synchronous_standby_names``, ``synchronous_commit = on``).
        image: the image of every container (default ``$POSTGRES_IMAGE``,
            then `DEFAULT_IMAGE`); with ``pgbouncer`` it must have it.
        optimize_for_testing: the testing settings (no fsync...), with the
            replication settings on top; data directories on a tmpfs.
        config: more server settings (standbys get them too), or the path of
            a settings file (mounted into every server's container).
        extensions: extensions to create on the primary (standbys replicate them).
        user: the superuser's name (default ``postgres``).
        password: its password (default: random).
        database: the database to create and connect to (default ``postgres``).
        environment: more environment variables for the primary's container;
            its ``POSTGRES_HOST_AUTH_METHOD`` also admits replication.
        in_memory: keep the data directories on a tmpfs.
        pool_size: PgBouncer's server connections per database and user.
        labels: more labels for the containers and the network.
        docker_client: the docker-py client to use (default: from the environment).
        start_timeout: seconds to wait for each server to start and catch up.
        **container_options: more `docker_cluster_url` options for the primary
            (``build``, ``context``, testcontainers' ``PostgresContainer``
            options).

    Raises:
        ValueError: ``standbys`` below 0, or an unknown pool mode.
        TypeError: a ``data_volume`` (a topology is throwaway).
        BackendUnavailableError: no engine, a missing extra, or an image
            without ``pgbouncer`` when it is asked for.
        ClusterStartError: a server did not start or catch up; with its logs.
    """
    check_topology_options(standbys, pgbouncer)
    if container_options.get("data_volume") is not None:
        raise TypeError("data_volume cannot be combined with standbys or pgbouncer")
    container_options.pop("data_volume", None)
    image = resolve_image(image)
    config_file: Path | None = None
    if config is not None and not isinstance(config, Mapping):
        config_file = Path(config)
        if not config_file.is_file():
            raise ClusterError(f"config file {config_file} does not exist")
    settings = _server_settings(
        optimize_for_testing,
        config if isinstance(config, Mapping) else None,
        standbys,
        synchronous,
    )
    env = dict(environment or {})  # credentials there count, as in docker_cluster_url
    user = user or env.get("POSTGRES_USER") or "postgres"
    database = database or env.get("POSTGRES_DB") or "postgres"
    if password is None:
        password = env.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(18)
    topology_id = secrets.token_hex(5)
    prefix = f"macrostrat-topology-{topology_id}"
    all_labels = {**(labels or {}), TOPOLOGY_LABEL: topology_id}
    in_memory = in_memory or optimize_for_testing
    client = _require_client(docker_client)
    with contextlib.ExitStack() as stack:
        if docker_client is None:
            stack.callback(client.close)
        # the sweep goes first: an interrupt during the creation leaks nothing
        stack.callback(_remove_everything, client, topology_id)
        network = client.networks.create(prefix, driver="bridge", labels=all_labels)
        config_dir: str | None = None
        if config_file is not None:
            config_dir = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="macrostrat-topology-")
            )
            _write_config_wrapper(Path(config_dir), config_file)
        url = stack.enter_context(
            docker_cluster_url(
                image,
                optimize_for_testing=False,  # in ``settings`` already
                in_memory=in_memory,
                config=config_file,
                server_settings=settings,
                user=user,
                password=password,
                database=database,
                environment=env,
                extensions=extensions,
                docker_client=client,
                start_timeout=start_timeout,
                name=f"{prefix}-primary",
                network=network,
                labels=all_labels,
                **container_options,
            )
        )
        address = urlsplit(url)
        host = address.hostname or "localhost"
        assert address.port is not None
        primary = DockerServer(
            client.containers.get(f"{prefix}-primary"),
            host=host,
            port=address.port,
            user=user,
            password=password,
            database=database,
            start_timeout=start_timeout,
        )
        topology = DockerTopology(primary, network=prefix, topology_id=topology_id)
        if standbys:
            method = env.get("POSTGRES_HOST_AUTH_METHOD") or "scram-sha-256"
            _allow_replication(primary, method)
            standby_settings = {**settings, "synchronous_standby_names": ""}
            if config_dir is not None:
                standby_settings["config_file"] = f"{_CONFIG_DIR}/postgresql.conf"
            _start_standbys(
                stack,
                client,
                topology,
                count=standbys,
                image=image,
                settings=standby_settings,
                in_memory=in_memory,
                labels=all_labels,
                config_dir=config_dir,
            )
            if synchronous:
                _make_synchronous(topology.standbys[0])
        if pgbouncer is not None:
            container = create_pgbouncer_container(
                client,
                primary,
                image=image,
                network=prefix,
                name=f"{prefix}-pgbouncer",
                pool_mode=pgbouncer,
                pool_size=pool_size,
                labels=all_labels,
            )
            stack.callback(remove_container, container)
            topology.pgbouncer = start_pgbouncer(
                container,
                primary,
                pool_mode=pgbouncer,
                start_timeout=start_timeout,
            )
        log.info(
            "Docker topology %s: a primary, %d standby(s)%s",
            topology_id,
            standbys,
            f", PgBouncer ({pgbouncer})" if pgbouncer else "",
        )
        yield topology
