"""Throwaway PostgreSQL clusters in Docker containers (testcontainers).

Needs the ``docker`` extra (``pip install 'macrostrat.dinosaur[docker]'``) and a
Docker engine.  Both are imported and contacted lazily, so importing this module
costs nothing when Docker is not used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from ..errors import BackendUnavailableError, ClusterError, ClusterStartError
from ._extensions import create_extensions
from ._settings import TESTING_SETTINGS, build_postgres_command, render_setting

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = ["docker_client_or_none", "docker_cluster_url", "docker_engine_available"]

log = logging.getLogger(__name__)

_DATA_DIR = "/var/lib/postgresql/data"
_CONFIG_PATH = "/etc/postgresql/macrostrat-extra.conf"


_MISSING_EXTRA = (
    "The Docker backend needs the 'docker' extra: "
    "pip install 'macrostrat.dinosaur[docker]'"
)


def _import_docker() -> Any:
    try:
        import docker
    except ImportError as exc:
        raise BackendUnavailableError(_MISSING_EXTRA) from exc
    return docker


def _unix_socket_answers(path: str) -> bool:
    """Whether something accepts connections on the Unix socket at ``path``."""
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def docker_client_or_none(timeout: float = 3.0) -> DockerClient | None:
    """A client for a Docker engine that answers ``ping``, or None.

    Never raises: a missing ``docker`` package, an unset or unreachable engine
    all give None.
    """
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://") and not _unix_socket_answers(host[len("unix://") :]):
        return None
    client = None
    try:
        docker = _import_docker()
        client = docker.from_env(timeout=int(max(timeout, 1)))
        client.ping()
    except Exception as exc:
        log.debug("no Docker engine answers: %s", exc)
        if client is not None:
            client.close()
        return None
    return client


def docker_engine_available() -> bool:
    """Whether a Docker engine answers here."""
    client = docker_client_or_none()
    if client is None:
        return False
    client.close()
    return True


def _require_client(docker_client: DockerClient | None) -> DockerClient:
    if docker_client is not None:
        return docker_client
    client = docker_client_or_none()
    if client is None:
        raise BackendUnavailableError(
            "No Docker engine answers (checked DOCKER_HOST and /var/run/docker.sock). "
            "Start Docker, or use backend='local' with PostgreSQL server binaries."
        )
    return client


def _ensure_image(
    client: DockerClient, image: str, *, build: bool, context: Path | None
) -> None:
    docker = _import_docker()
    if build and context is None:
        raise ClusterError(
            "build=True needs a context directory to build the image from"
        )
    if not build:
        try:
            client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            if context is None:
                return  # testcontainers will try to pull it
    log.info("Building image %s from %s", image, context)
    client.images.build(path=str(context), tag=image, rm=True)


def _wait_for_connection(url: str, container: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status in ("exited", "dead"):
            logs = wrapped.logs(tail=30).decode(errors="replace")
            raise ClusterStartError(
                "The PostgreSQL container exited while starting", logs
            )
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = exc
        time.sleep(0.1)
    logs = container.get_wrapped_container().logs(tail=30).decode(errors="replace")
    raise ClusterStartError(
        f"The PostgreSQL container did not accept connections within {timeout:g} s "
        f"(last error: {last})",
        logs,
    )


@contextlib.contextmanager
def docker_cluster_url(
    image_tag: str,
    *,
    build: bool = False,
    context: str | os.PathLike[str] | None = None,
    optimize_for_testing: bool = False,
    data_volume: str | None = None,
    user: str | None = None,
    database: str | None = None,
    driver: str | None = None,
    environment: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    in_memory: bool = True,
    docker_client: DockerClient | None = None,
    extensions: Iterable[str] = (),
    start_timeout: float = 60.0,
    **kwargs: Any,
) -> Iterator[str]:
    """Run PostgreSQL in a container and yield its connection URL.

    The container is removed on exit, also when the body or the start fails.
    Parameters are those of `database_cluster`; ``kwargs`` go to testcontainers'
    ``PostgresContainer`` (e.g. ``password``).
    """
    client = _require_client(docker_client)
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        try:
            from testcontainers.postgres import PostgresContainer
        except ImportError as exc:
            raise BackendUnavailableError(_MISSING_EXTRA) from exc

    _ensure_image(
        client, image_tag, build=build, context=Path(context) if context else None
    )
    settings: dict[str, str] = {}
    if data_volume is not None:
        in_memory = optimize_for_testing = False
    if optimize_for_testing:
        settings.update(TESTING_SETTINGS)
        in_memory = True
    config_file: Path | None = None
    if isinstance(config, Mapping):
        settings.update({k: render_setting(v) for k, v in config.items()})
    elif config is not None:
        config_file = Path(config)
        if not config_file.is_file():
            raise ClusterError(f"config file {config_file} does not exist")
        settings["config_file"] = _CONFIG_PATH

    kwargs.setdefault("username", user or "postgres")
    kwargs.setdefault("dbname", database or "postgres")
    container = PostgresContainer(image_tag, driver=None, **kwargs)
    env = dict(environment or {})
    env.setdefault("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
    for key, value in env.items():
        container.with_env(key, value)
    if config_file is not None:
        container.with_volume_mapping(str(config_file.resolve()), _CONFIG_PATH, "ro")
    if data_volume is not None:
        container.with_volume_mapping(data_volume, _DATA_DIR, "rw")
    elif in_memory:
        container.with_kwargs(tmpfs={_DATA_DIR: "uid=999,gid=999,mode=0700"})
    command = build_postgres_command(settings)
    if command is not None:
        container.with_command(command)

    try:
        container.start()
        url = container.get_connection_url(driver=None)
        _wait_for_connection(url, container, start_timeout)
        if extensions:
            with psycopg.connect(url, autocommit=True) as conn:
                create_extensions(conn, extensions)
        if driver:
            url = url.replace("postgresql://", f"postgresql+{driver}://", 1)
        log.info("PostgreSQL container %s ready", image_tag)
        yield url
    finally:
        with contextlib.suppress(Exception):
            container.stop()
