"""Throwaway PostgreSQL/PostGIS clusters, from local binaries or Docker.

`database_cluster` is the entry point: a context manager yielding a connected
`macrostrat.database.Database`.  The ``local`` backend needs PostgreSQL server
binaries on this machine (no Docker); the ``docker`` backend needs a Docker
engine and the ``docker`` extra; ``auto`` prefers Docker when an engine answers
and the image is there (present locally, or buildable from ``context``), and
otherwise uses local binaries, logging why; it never pulls unasked.
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
from ._pgbouncer import LocalPgBouncer, PoolMode
from ._settings import TESTING_SETTINGS, build_postgres_command
from ._standby import LocalStandby
from .docker import (
    docker_client_or_none,
    docker_cluster_url,
    docker_engine_available,
    image_available,
)
from .local import RUN_AS_ENV, LocalCluster
from .topology import Topology, local_topology

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = [
    "BINDIR_ENV",
    "DEFAULT_IMAGE",
    "RUN_AS_ENV",
    "TESTING_SETTINGS",
    "Backend",
    "LocalCluster",
    "LocalPgBouncer",
    "LocalStandby",
    "PoolMode",
    "PostgresBinaries",
    "Topology",
    "build_postgres_command",
    "check_backend",
    "choose_backend",
    "database_cluster",
    "docker_client_or_none",
    "docker_engine_available",
    "find_postgres_binaries",
    "image_available",
    "local_topology",
    "resolve_image",
]

log = logging.getLogger(__name__)

Backend = Literal["auto", "local", "docker"]

_BACKENDS: dict[str, Backend] = {"auto": "auto", "local": "local", "docker": "docker"}

DEFAULT_IMAGE = "postgis/postgis:15-3.3"
"""The image the Docker backend runs when none is named and ``$POSTGRES_IMAGE`` is unset."""

_LOCAL_OPTIONS = frozenset(
    {"password", "run_as", "start_timeout", "version", "binaries"}
)


def resolve_image(image_tag: str | None = None) -> str:
    """The Docker image to run: ``image_tag``, else ``$POSTGRES_IMAGE``, else `DEFAULT_IMAGE`."""
    return image_tag or os.environ.get("POSTGRES_IMAGE") or DEFAULT_IMAGE


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

    With ``standbys`` or ``pgbouncer`` (local backend only) the cluster is a
    `local_topology`: a primary with that many hot standbys and/or PgBouncer
    in front; the `Database` connects through PgBouncer when there is one
    (with server-side prepared statements off where PgBouncer cannot carry
    them), else to the primary. Use `local_topology` itself to reach the
    standbys.

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
        standbys: hot standbys to start beside the primary (local backend).
        pgbouncer: ``"transaction"`` or ``"session"``: put PgBouncer in front
            in that pooling mode (local backend).
        synchronous: with standbys, commits wait for the first one.
        **kwargs: for docker, options of testcontainers' ``PostgresContainer``
            (e.g. ``password``); for local, ``password``, ``run_as``,
            ``start_timeout``, ``version`` or ``binaries``.

    Raises:
        TypeError: an option the chosen backend does not know.
        BackendUnavailableError: the chosen backend cannot run here.
        ClusterStartError: the server did not start; carries its log's last lines.
    """
    extensions = tuple(extensions)
    if standbys or pgbouncer is not None:
        if backend == "docker":
            raise BackendUnavailableError(
                "standbys and pgbouncer need the local backend (server binaries "
                "on this machine); the Docker backend runs one server"
            )
        if data_volume is not None:
            raise TypeError("data_volume cannot be combined with standbys or pgbouncer")
        with local_topology(
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
        ) as topology:
            prepared = (
                topology.pgbouncer is None
                or topology.pgbouncer.supports_prepared_statements
            )
            with Database(
                topology.url(driver=driver), server_prepared_statements=prepared
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
