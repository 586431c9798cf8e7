"""Throwaway PostgreSQL clusters in Docker containers (testcontainers).

Needs the ``docker`` extra (``pip install 'macrostrat.dinosaur[docker]'``) and a
Docker engine.  Both are imported and contacted lazily, so importing this module
costs nothing when Docker is not used.

The images must follow the conventions of the official ``postgres`` images
(``POSTGRES_USER``/``POSTGRES_PASSWORD``/``POSTGRES_DB``, an entrypoint that
passes ``postgres -c key=value`` through, ``sh`` and ``psql`` inside). The
images built by ``scripts/build-test-images`` do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import tempfile
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

__all__ = [
    "DATA_DIR",
    "DEFAULT_IMAGE",
    "docker_client_or_none",
    "docker_cluster_url",
    "docker_engine_available",
    "image_available",
    "resolve_image",
]

log = logging.getLogger(__name__)

DATA_DIR = "/var/lib/postgresql/data"
"""Where the data directory lives in the container (``PGDATA`` is set to it)."""

DEFAULT_IMAGE = "postgis/postgis:15-3.3"
"""The image the Docker backend runs when none is named and ``$POSTGRES_IMAGE`` is unset."""

_CONFIG_DIR = "/etc/postgresql/macrostrat"
# The data-directory tmpfs belongs to uid/gid 999: the postgres user of the
# Debian-based official postgres/postgis images and of scripts/build-test-images.
# Both entrypoints start as root and chown $PGDATA to their postgres user, so an
# image with another uid (the Alpine ones use 70) still works; reading the uid
# from each image would cost an extra container run per cluster.
_TMPFS_OPTIONS = "uid=999,gid=999,mode=0700"

_MISSING_EXTRA = (
    "The Docker backend needs the 'docker' extra: "
    "pip install 'macrostrat.dinosaur[docker]'"
)


def resolve_image(image_tag: str | None = None) -> str:
    """The Docker image to run: ``image_tag``, else ``$POSTGRES_IMAGE``, else `DEFAULT_IMAGE`."""
    return image_tag or os.environ.get("POSTGRES_IMAGE") or DEFAULT_IMAGE


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


def image_available(client: DockerClient, image: str) -> bool:
    """Whether ``image`` is present in the engine's local image store (no pull)."""
    docker = _import_docker()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
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
    """Make ``image`` present: build it from ``context`` or pull it (logged)."""
    docker = _import_docker()
    if build and context is None:
        raise ClusterError(
            "build=True needs a context directory to build the image from"
        )
    if context is not None and not (context / "Dockerfile").is_file():
        raise ClusterError(f"build context {context} has no Dockerfile")
    if not build and image_available(client, image):
        return
    if context is not None:
        log.info("Building image %s from %s", image, context)
        try:
            client.images.build(path=str(context), tag=image, rm=True)
        except docker.errors.BuildError as exc:
            lines = "".join(
                str(chunk.get("stream", chunk.get("error", "")))
                for chunk in exc.build_log
            )
            raise ClusterError(
                f"building image {image} from {context} failed: {exc}\n{lines[-2000:]}"
            ) from exc
        return
    log.info("Image %s is not present locally; pulling it", image)
    try:
        client.images.pull(image)
    except docker.errors.APIError as exc:
        raise BackendUnavailableError(
            f"Docker image {image} is not present and could not be pulled ({exc}). "
            "Build it (scripts/build-test-images builds macrostrat-test/postgis:15 "
            "and :17 without a registry), pass build=True with a context, or use "
            "backend='local'."
        ) from exc


def _disable_reaper_without_image(client: DockerClient) -> None:
    """Turn testcontainers' Ryuk reaper off when its image would have to be pulled.

    The reaper only matters when this process dies without cleaning up; our
    context manager removes its container itself. An explicit
    ``TESTCONTAINERS_RYUK_DISABLED`` is respected either way.
    """
    if os.environ.get("TESTCONTAINERS_RYUK_DISABLED") is not None:
        return
    from testcontainers.core.config import testcontainers_config

    if testcontainers_config.ryuk_disabled:
        return
    if not image_available(client, testcontainers_config.ryuk_image):
        log.info(
            "testcontainers' reaper image %s is not present; running without it "
            "(set TESTCONTAINERS_RYUK_DISABLED to choose explicitly)",
            testcontainers_config.ryuk_image,
        )
        testcontainers_config.ryuk_disabled = True


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
            if "password authentication failed" in str(exc):
                raise ClusterStartError(
                    "The PostgreSQL container runs but refuses the password. A data "
                    "volume keeps the credentials it was initialised with: pass the "
                    f"same user and password= again ({str(exc).strip()})"
                ) from exc
            last = exc
        time.sleep(0.1)
    logs = container.get_wrapped_container().logs(tail=30).decode(errors="replace")
    raise ClusterStartError(
        f"The PostgreSQL container did not accept connections within {timeout:g} s "
        f"(last error: {last})",
        logs,
    )


def _write_config_wrapper(directory: Path, user_file: Path) -> Path:
    """Write the ``config_file`` the server reads: its defaults, then the user's file.

    Includes ``$PGDATA/postgresql.conf`` (written by initdb) and then the user's
    file, so the file adds to and overrides the defaults, as with the local
    backend, instead of replacing them (``listen_addresses`` included).
    """
    wrapper = directory / "postgresql.conf"
    wrapper.write_text(
        "# written by macrostrat.dinosaur: the cluster's defaults, then the user's file\n"
        f"include_if_exists '{DATA_DIR}/postgresql.conf'\n"
        f"include '{_CONFIG_DIR}/user.conf'\n"
    )
    (directory / "user.conf").write_bytes(user_file.read_bytes())
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    return wrapper


def _container_credentials(
    environment: dict[str, str],
    kwargs: dict[str, Any],
    user: str | None,
    database: str | None,
) -> None:
    """Settle user, password and database in ``kwargs`` (testcontainers' names).

    testcontainers writes ``POSTGRES_USER/PASSWORD/DB`` from its own arguments,
    overriding the environment; so values given in ``environment`` are moved
    into those arguments. Without a password a random one is used (never
    testcontainers' fixed ``test``).
    """
    user_env = environment.pop("POSTGRES_USER", None)
    password_env = environment.pop("POSTGRES_PASSWORD", None)
    db_env = environment.pop("POSTGRES_DB", None)
    kwargs.setdefault("username", user or user_env or "postgres")
    kwargs.setdefault("dbname", database or db_env or "postgres")
    if kwargs.get("password") is None:
        kwargs["password"] = password_env or secrets.token_urlsafe(18)


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
    start_timeout: float = 120.0,
    server_settings: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Iterator[str]:
    """Run PostgreSQL in a container and yield its connection URL.

    The container (and its anonymous volumes) is removed on exit, also when the
    body or the start fails. Parameters are those of `database_cluster`, and
    ``server_settings``: settings put on the server's command line after the
    testing settings and a ``config`` mapping (so they win, also over a
    ``config`` file); `docker_topology` passes the replication settings so.
    ``kwargs`` go to testcontainers' ``PostgresContainer`` (e.g. ``password``,
    ``port``, ``name``, ``network``). The host authentication method defaults
    to ``scram-sha-256`` with a random password; pass
    ``environment={"POSTGRES_HOST_AUTH_METHOD": "trust"}`` to change it. testcontainers talks to the engine named by
    ``DOCKER_HOST`` (or the default socket), whatever ``docker_client`` is.
    """
    client = _require_client(docker_client)
    try:
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError as exc:
            raise BackendUnavailableError(_MISSING_EXTRA) from exc

        ctx = Path(context) if context is not None else None
        _ensure_image(client, image_tag, build=build, context=ctx)
        _disable_reaper_without_image(client)
    finally:
        if docker_client is None:  # made here, only needed until now
            client.close()

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
        settings["config_file"] = f"{_CONFIG_DIR}/postgresql.conf"
    if server_settings:
        settings.update({k: render_setting(v) for k, v in server_settings.items()})

    env = dict(environment or {})
    _container_credentials(env, kwargs, user, database)
    env.setdefault("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
    env.setdefault("PGDATA", DATA_DIR)

    class _Container(PostgresContainer):
        def _connect(self) -> None:
            # testcontainers would poll psql inside the container for two
            # minutes even when the server exited or refuses the password;
            # readiness is checked by connecting from here instead.
            pass

    container = _Container(image_tag, driver=None, **kwargs)
    for key, value in env.items():
        container.with_env(key, value)
    if data_volume is not None:
        container.with_volume_mapping(data_volume, DATA_DIR, "rw")
    elif in_memory:
        container.tmpfs[DATA_DIR] = _TMPFS_OPTIONS
    command = build_postgres_command(settings)
    if command is not None:
        container.with_command(command)

    with contextlib.ExitStack() as stack:
        if config_file is not None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            _write_config_wrapper(tmp, config_file)
            container.with_volume_mapping(str(tmp), _CONFIG_DIR, "ro")
        log.info("Starting PostgreSQL container from image %s", image_tag)
        try:
            try:
                container.start()
            except Exception as exc:
                wrapped = getattr(container, "_container", None)
                logs = None
                if wrapped is not None:
                    with contextlib.suppress(Exception):
                        logs = wrapped.logs(tail=30).decode(errors="replace")
                raise ClusterStartError(
                    f"The PostgreSQL container ({image_tag}) did not start: {exc}", logs
                ) from exc
            url = container.get_connection_url(driver=None)
            _wait_for_connection(url, container, start_timeout)
            if extensions:
                with psycopg.connect(url, autocommit=True) as conn:
                    create_extensions(conn, extensions)
            if driver:
                url = url.replace("postgresql://", f"postgresql+{driver}://", 1)
            log.info(
                "PostgreSQL container %s ready on port %s",
                container.get_wrapped_container().short_id,
                container.get_exposed_port(5432),
            )
            yield url
        finally:
            with contextlib.suppress(Exception):
                container.stop()
