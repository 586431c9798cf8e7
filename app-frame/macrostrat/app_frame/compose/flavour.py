"""Find out how Docker Compose is run here: the `docker compose` plugin or `docker-compose`."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

from ..errors import ComposeNotFoundError

__all__ = ["compose_command", "forget_compose_command"]

log = logging.getLogger(__name__)

_cache: dict[str, tuple[str, ...]] = {}


def _plugin_works(docker: str) -> bool:
    try:
        result = subprocess.run(
            [docker, "compose", "version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("`docker compose version` failed: %s", exc)
        return False
    return result.returncode == 0


def compose_command() -> list[str]:
    """Return the command that runs Docker Compose: `["docker", "compose"]` or `["docker-compose"]`.

    The `docker compose` plugin is preferred when `docker compose version`
    succeeds; otherwise a standalone `docker-compose` on `PATH` is used (as
    Debian's `docker-compose` package provides). The answer is remembered
    for the process (per value of `PATH`).

    Raises:
        ComposeNotFoundError: neither is installed.
    """
    key = os.environ.get("PATH", "")
    cached = _cache.get(key)
    if cached is not None:
        return list(cached)
    docker = shutil.which("docker")
    if docker is not None and _plugin_works(docker):
        found: tuple[str, ...] = ("docker", "compose")
    elif shutil.which("docker-compose") is not None:
        found = ("docker-compose",)
    else:
        raise ComposeNotFoundError(
            "Docker Compose is not installed: neither the `docker compose` plugin "
            "nor a standalone `docker-compose` was found on PATH",
            details=(
                "Install the Docker Compose plugin (docker-compose-plugin) or the "
                "standalone docker-compose (Debian: apt-get install docker-compose)."
            ),
        )
    log.debug("Docker Compose runs as: %s", " ".join(found))
    _cache[key] = found
    return list(found)


def forget_compose_command() -> None:
    """Forget the detected Compose command (detect again on next use)."""
    _cache.clear()
