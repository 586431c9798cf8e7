"""Upstream's small helpers: waiting for a server, a free port."""

from __future__ import annotations

import socket
import time
from typing import Any

from ..errors import DatabaseUpgradeError

__all__ = ["get_unused_port", "wait_for_cluster", "wait_for_ready"]


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
        return sock.getsockname()[1]
