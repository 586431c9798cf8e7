"""Throwaway PostgreSQL/PostGIS clusters, from local binaries or Docker.

`database_cluster` is the entry point: a context manager yielding a connected
`macrostrat.database.Database`.  The ``local`` backend needs PostgreSQL server
binaries on this machine (no Docker); the ``docker`` backend needs a Docker
engine and the ``docker`` extra; ``auto`` prefers Docker when an engine answers
and the image is there (present locally, or buildable from ``context``), and
otherwise uses local binaries, logging why; it never pulls unasked.

Topologies (a primary, hot standbys, PgBouncer) come from both backends:
`local_topology` and `docker_topology` yield a `Topology` and a
`DockerTopology`, both `TopologyLike`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from macrostrat.database import Database

from ..errors import BackendUnavailableError, PostgresNotFoundError
from ._binaries import BINDIR_ENV, PostgresBinaries, find_postgres_binaries
from ._docker_pgbouncer import DockerPgBouncer
from ._docker_servers import TOPOLOGY_LABEL, DockerServer
from ._docker_standby import DockerStandby
from ._docker_topology import DockerTopology, docker_topology
from ._pgbouncer import LocalPgBouncer, find_pgbouncer
from ._roles import (
    PoolerLike,
    PoolMode,
    ServerLike,
    StandbyLike,
    TopologyLike,
    check_topology_options,
)
from ._settings import TESTING_SETTINGS, build_postgres_command
from ._standby import LocalStandby
from .docker import (
    DEFAULT_IMAGE,
    docker_client_or_none,
    docker_cluster_url,
    docker_engine_available,
    image_available,
    resolve_image,
)
from .local import RUN_AS_ENV, LocalCluster
from .topology import Topology, local_topology

if TYPE_CHECKING:
    from docker import DockerClient

    def _both_are_topologies(
        local: Topology, docker: DockerTopology
    ) -> tuple[TopologyLike, TopologyLike]:
        """mypy checks here that both backends' topologies keep the shared interface."""
        return local, docker


__all__ = [
    "BINDIR_ENV",
    "DEFAULT_IMAGE",
    "RUN_AS_ENV",
    "TESTING_SETTINGS",
    "TOPOLOGY_LABEL",
    "Backend",
    "DockerPgBouncer",
    "DockerServer",
    "DockerStandby",
    "DockerTopology",
    "LocalCluster",
    "LocalPgBouncer",
    "LocalStandby",
    "PoolMode",
    "PoolerLike",
    "PostgresBinaries",
    "ServerLike",
    "StandbyLike",
    "Topology",
    "TopologyLike",
    "build_postgres_command",
    "check_backend",
    "choose_backend",
    "database_cluster",
    "docker_client_or_none",
    "docker_engine_available",
    "docker_topology",
    "find_postgres_binaries",
    "image_available",
    "local_topology",
    "resolve_image",
]

log = logging.getLogger(__name__)

Backend = Literal["auto", "local", "docker"]

_BACKENDS: dict[str, Backend] = {"auto": "auto", "local": "local", "docker": "docker"}

_LOCAL_OPTIONS = frozenset(
    {"password", "run_as", "start_timeout", "version", "binaries"}
)


def _local_available() -> PostgresNotFoundError | None:
    try:
        find_postgres_binaries()
    except PostgresNotFoundError as exc:
        return exc
    return None


def check_backend(name: str) -> Backend:
    """``name`` as a `Backend` (e.g. from an option or the environment).

    Raises:
        ValueError: ``name`` is not one of ``auto``, ``local``, ``docker``.
    """
    backend = _BACKENDS.get(name)
    if backend is None:
        raise ValueError(f"backend must be 'auto', 'local' or 'docker', not {name!r}")
    return backend


def choose_backend(
    backend: str = "auto",
    image_tag: str | None = None,
    *,
    context: str | os.PathLike[str] | None = None,
) -> Literal["local", "docker"]:
    """Resolve ``backend`` to ``"local"`` or ``"docker"``.

    ``auto`` gives ``docker`` when a Docker engine answers and the image
    (`resolve_image` of ``image_tag``) is present in it or a build ``context``
    is given; when the engine answers but the image is absent it gives
    ``local`` (logging the reason) if server binaries are installed, since a
    registry pull may be slow or impossible; ``docker`` (which then pulls, with
    a log line) only when there are no local binaries either.

    Raises:
        ValueError: ``backend`` is not one of ``auto``, ``local``, ``docker``.
        BackendUnavailableError: ``auto`` found neither; the message names the
            three ways to get a database.
    """
    checked = check_backend(backend)
    if checked != "auto":
        return checked
    client = docker_client_or_none()
    if client is not None:
        image = resolve_image(image_tag)
        try:
            if context is not None or image_available(client, image):
                return "docker"
        finally:
            client.close()
        missing = _local_available()
        if missing is None:
            log.info(
                "backend='auto': a Docker engine answers but image %s is not present "
                "locally; using the local PostgreSQL binaries instead of pulling it",
                image,
            )
            return "local"
        log.info(
            "backend='auto': no local PostgreSQL binaries (%s); using Docker, which "
            "will pull image %s",
            missing,
            image,
        )
        return "docker"
    missing = _local_available()
    if missing is not None:
        raise BackendUnavailableError(
            "No way to start a PostgreSQL cluster here. Either start a Docker engine "
            "(and pip install 'macrostrat.dinosaur[docker]'), or install the PostgreSQL "
            "server binaries and PostGIS (e.g. apt-get install postgresql-15 "
            f"postgresql-15-postgis-3, or set {BINDIR_ENV}), or point TESTING_DATABASE "
            f"at an existing server. ({missing})"
        ) from missing
    return "local"


def _topology_backend(
    backend: str,
    image_tag: str | None,
    context: str | os.PathLike[str] | None,
    pgbouncer: PoolMode | None,
) -> Literal["local", "docker"]:
    """The backend of a topology: ``auto`` prefers local binaries, else as `choose_backend`.

    A topology is several servers: from local binaries they start in about a
    second, each container takes several, and ``pgbouncer`` needs an image
    that has it (`DEFAULT_IMAGE` does not). So ``auto`` takes the local
    binaries when they are installed (with ``pgbouncer`` when it is asked
    for), as before Docker topologies existed, and otherwise decides as
    `choose_backend` does: Docker when an engine answers.
    """
    checked = check_backend(backend)
    if checked != "auto":
        return checked
    local_ready = _local_available() is None
    if local_ready and pgbouncer is not None:
        try:
            find_pgbouncer()
        except BackendUnavailableError:
            local_ready = False
    if local_ready:
        return "local"
    chosen = choose_backend("auto", image_tag, context=context)
    log.info(
        "backend='auto': a topology in %s (no local binaries or pgbouncer)", chosen
    )
    return chosen


@contextlib.contextmanager
def database_cluster(
    image_tag: str | None = None,
    *,
    backend: Backend = "auto",
    build: bool = False,
    context: str | os.PathLike[str] | None = None,
    in_memory: bool = True,
    optimize_for_testing: bool = False,
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    environment: Mapping[str, str] | None = None,
    data_volume: str | None = None,
    user: str | None = None,
    database: str | None = None,
    driver: str | None = None,
    docker_client: DockerClient | None = None,
    extensions: Iterable[str] = (),
    standbys: int = 0,
    pgbouncer: PoolMode | None = None,
    synchronous: bool = False,
    **kwargs: Any,
) -> Iterator[Database]:
    """Start a throwaway PostgreSQL cluster and yield a `Database` connected to it.

    With ``standbys`` or ``pgbouncer`` the cluster is a topology
    (`local_topology` or `docker_topology`): a primary with that many hot
    standbys and/or PgBouncer in front; the `Database` connects through
    PgBouncer when there is one (with server-side prepared statements off
    where PgBouncer cannot carry them), else to the primary. Use the topology
    functions themselves to reach the standbys. For a topology ``auto``
    prefers local binaries (they start several servers in about a second):
    local when the server binaries (and ``pgbouncer``, when asked for) are
    installed, else as `choose_backend`.

    On exit (normal, exception or ``KeyboardInterrupt``) the database's engine is
    disposed and the cluster is stopped and removed: no server process, container
    or temporary directory is left behind.

    Parameters:
        image_tag: Docker image to run (default ``$POSTGRES_IMAGE``, then
            `DEFAULT_IMAGE`); ignored by the local backend.
        backend: ``"local"`` (server binaries on this machine), ``"docker"``, or
            ``"auto"`` (Docker when an engine answers and the image is present
            or buildable, else local; see `choose_backend`).
        build: (docker) build ``image_tag`` from ``context`` even if it exists.
        context: (docker) a directory with a Dockerfile to build a missing image.
        in_memory: keep the data directory in memory (``/dev/shm`` or a tmpfs).
        optimize_for_testing: turn off fsync and other durability settings.
        config: server settings as a mapping, or the path of a settings file.
        environment: extra environment variables for the server.
        data_volume: keep the data in this directory (local) or named volume
            (docker); it survives the cluster and turns ``in_memory`` off.
        user: the superuser's name (default ``postgres``).
        database: the database to create and connect to (default ``postgres``).
        driver: SQLAlchemy driver to put in the URL (the `Database` uses psycopg 3
            whatever this says).
        docker_client: (docker) the client to use.
        extensions: extensions to create in ``database``, e.g. ``("postgis",)``.
        standbys: hot standbys to start beside the primary.
        pgbouncer: ``"transaction"`` or ``"session"``: put PgBouncer in front
            in that pooling mode (with Docker, the image must have
            ``pgbouncer``, as ``scripts/build-test-images``' do).
        synchronous: with standbys, commits wait for the first one.
        **kwargs: for docker, options of testcontainers' ``PostgresContainer``
            (e.g. ``password``); for local, ``password``, ``run_as``,
            ``start_timeout``, ``version`` or ``binaries``.

    Raises:
        ValueError: ``standbys`` below 0 or an unknown ``pgbouncer`` mode.
        TypeError: an option the chosen backend does not know, or a
            ``data_volume`` with a topology.
        BackendUnavailableError: the chosen backend cannot run here.
        ClusterStartError: the server did not start; carries its log's last lines.
    """
    extensions = tuple(extensions)
    if standbys or pgbouncer is not None:
        check_topology_options(standbys, pgbouncer)
        if data_volume is not None:
            raise TypeError("data_volume cannot be combined with standbys or pgbouncer")
        options: dict[str, Any] = dict(
            standbys=standbys,
            pgbouncer=pgbouncer,
            synchronous=synchronous,
            optimize_for_testing=optimize_for_testing,
            config=config,
            extensions=extensions,
            user=user,
            database=database,
            in_memory=in_memory,
            environment=environment,
            **kwargs,
        )
        topology: contextlib.AbstractContextManager[TopologyLike]
        if _topology_backend(backend, image_tag, context, pgbouncer) == "local":
            topology = local_topology(**options)
        else:
            topology = docker_topology(
                image=resolve_image(image_tag),
                build=build,
                context=context,
                docker_client=docker_client,
                **options,
            )
        with topology as servers:
            prepared = (
                servers.pgbouncer is None
                or servers.pgbouncer.supports_prepared_statements
            )
            with Database(
                servers.url(driver=driver), server_prepared_statements=prepared
            ) as db:
                yield db
        return
    chosen = choose_backend(backend, image_tag, context=context)
    if chosen == "local":
        unknown = set(kwargs) - _LOCAL_OPTIONS
        if unknown:
            raise TypeError(
                f"database_cluster(backend='local') got unexpected option(s): "
                f"{', '.join(sorted(unknown))}"
            )
        if build or context is not None:
            log.debug("build/context apply to the Docker backend only; ignored")
        cluster = LocalCluster(
            user=user,
            database=database,
            in_memory=in_memory and data_volume is None,
            optimize_for_testing=optimize_for_testing and data_volume is None,
            config=config,
            environment=environment,
            data_directory=data_volume,
            extensions=extensions,
            **kwargs,
        )
        with cluster, Database(cluster.url(driver=driver)) as db:
            yield db
        return

    image = resolve_image(image_tag)
    with (
        docker_cluster_url(
            image,
            build=build,
            context=context,
            optimize_for_testing=optimize_for_testing,
            data_volume=data_volume,
            user=user,
            database=database,
            driver=driver,
            environment=environment,
            config=config,
            in_memory=in_memory,
            docker_client=docker_client,
            extensions=extensions,
            **kwargs,
        ) as url,
        Database(url) as db,
    ):
        yield db
