"""Upstream's small helpers: waiting for a server, a free port, volumes.

`ensure_empty_docker_volume` and `replace_docker_volume` keep their upstream
import path here; they live in `macrostrat.dinosaur.upgrade_cluster.containers`.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUpgradeError
from . import containers as _containers
from ._images import helper_image
from .containers import ensure_empty_docker_volume

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = [
    "ensure_empty_docker_volume",
    "get_unused_port",
    "replace_docker_volume",
    "wait_for_cluster",
    "wait_for_ready",
]


def replace_docker_volume(
    client: DockerClient, from_volume: str, to_volume: str, *, image: str | None = None
) -> None:
    """Replace the contents of volume ``to_volume`` by those of ``from_volume``.

    Upstream's signature. Unlike upstream (which copied over the old files
    with the ``bash`` image), ``to_volume`` is emptied first, so no old file
    survives next to the new ones, and the copy is checked against the source.

    Parameters:
        client: the Docker client.
        from_volume: the volume to copy (mounted read-only).
        to_volume: the volume to replace.
        image: the image to run the copy in (default: a PostgreSQL image
            present locally, see `helper_image`).

    Raises:
        DatabaseUpgradeError: no image to run the copy in, the copy failed, or
            it differs from the source.
    """
    if image is None:
        image = helper_image(client)
    _containers.replace_docker_volume(client, from_volume, to_volume, image=image)


def wait_for_ready(engine: Any, timeout: float = 5) -> None:
    """Wait until ``engine`` (a SQLAlchemy engine) connects; each try is closed.

    Raises:
        TimeoutError: no connection within ``timeout`` seconds (the last
            driver error is its ``__cause__``).
    """
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.connect():
                return
        except OperationalError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the database did not accept connections within {timeout:g} s"
                ) from exc
        time.sleep(0.1)


def wait_for_cluster(container: Any, url: str, timeout: float = 60) -> None:
    """Wait until the server in ``container`` (a Docker container) answers at ``url``.

    Raises:
        DatabaseUpgradeError: the container exited; carries its last log lines.
        TimeoutError: it did not answer in time.
    """
    from sqlalchemy import create_engine

    deadline = time.monotonic() + timeout
    engine = create_engine(url)
    try:
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=30).decode(errors="replace")
                raise DatabaseUpgradeError(f"Container exited unexpectedly:\n{logs}")
            try:
                wait_for_ready(engine, timeout=1)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
    finally:
        engine.dispose()


def get_unused_port() -> int:
    """A TCP port that was free a moment ago (another process may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
