"""Running Docker Compose: the `compose` function, dry-run mode and `check_status`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from macrostrat.utils.shell import run, split_args

from ..errors import ComposeNotFoundError
from ..utils.env import is_dry_run
from .flavour import compose_command

__all__ = [
    "check_status",
    "compose",
    "compose_base_command",
    "console",
    "is_dry_run",
    "run_compose",
]

console = Console()
"""The console compose helpers print their status lines to."""


def compose_base_command(dry_run: bool | None = None) -> list[str]:
    """The command that runs Compose, with the dry-run fallback.

    Like [`compose_command`][macrostrat.app_frame.compose.compose_command],
    but in dry-run mode a missing Compose gives `["docker", "compose"]`
    (the command line is only printed) instead of an error.

    Args:
        dry_run: Whether dry-run mode is on (default: `is_dry_run()`).

    Raises:
        ComposeNotFoundError: Compose is not installed (not in dry-run mode).
    """
    if dry_run is None:
        dry_run = is_dry_run()
    try:
        return compose_command()
    except ComposeNotFoundError:
        if not dry_run:
            raise
        return ["docker", "compose"]


def run_compose(
    args: Sequence[str | os.PathLike[str]], **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """Run Docker Compose with `args` (each one argument, no splitting).

    The Compose command is detected once (see
    [`compose_command`][macrostrat.app_frame.compose.compose_command]). In
    dry-run mode the command line is printed to standard output instead and
    a successful, empty result is returned (`docker compose` is printed if
    Compose is not installed).

    Args:
        args: The arguments after `docker compose`.
        **kwargs: Passed to `subprocess.run` (`cwd`, `env`,
            `capture_output`, `text`, ...).

    Returns:
        The completed process; its return code is not checked.

    Raises:
        ComposeNotFoundError: Compose is not installed (not in dry-run mode).
    """
    dry_run = is_dry_run()
    argv = [*compose_base_command(dry_run), *(os.fspath(arg) for arg in args)]
    if dry_run:
        sys.stdout.write(shlex.join(argv) + "\n")
        sys.stdout.flush()
        captured: Any = None
        if kwargs.get("capture_output"):
            captured = "" if kwargs.get("text") else b""
        return subprocess.CompletedProcess(argv, 0, captured, captured)
    return run(*argv, **kwargs)


def compose(
    *args: str | os.PathLike[str], collect_args: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """Run `docker compose` with shell-like argument fragments.

    `compose("ps --services")` runs `docker compose ps --services` (or
    `docker-compose ps --services` where only the standalone program
    exists). The environment (`COMPOSE_PROJECT_NAME`, `COMPOSE_FILE`) is the
    process's, as set by [`DockerComposeManager`][macrostrat.app_frame.DockerComposeManager].

    Args:
        *args: Argument fragments, split with shell rules unless
            `collect_args=False` (then each is one argument).
        collect_args: Whether to split the fragments.
        **kwargs: Passed to `subprocess.run` (`cwd`, `capture_output`, ...).

    Returns:
        The completed process; the return code is not checked.
    """
    argv = split_args(*args) if collect_args else [os.fspath(a) for a in args]
    return run_compose(argv, **kwargs)


def check_status(app_name: str, command_name: str, **kwargs: Any) -> list[str]:
    """List the running services of the compose project, and say so if there are any.

    Runs `docker compose ps --services --filter status=running`. If some are
    running, prints them with a hint on how to restart everything.

    Args:
        app_name: The app's name, for the hint.
        command_name: The control command's name, for the hint.
        **kwargs: Passed to `subprocess.run` (e.g. `cwd`).

    Returns:
        The names of the running services (empty if none or on failure).
    """
    result = run_compose(
        ["ps", "--services", "--filter", "status=running"],
        capture_output=True,
        text=True,
        **kwargs,
    )
    if result.returncode != 0:
        return []
    running = [
        line.strip() for line in (result.stdout or "").splitlines() if line.strip()
    ]
    if running:
        console.print(
            "Some containers are already running and up to date:", style="dim"
        )
        console.print("  " + ", ".join(running), style="dim", highlight=False)
        console.print(
            f"To fully restart {app_name}, run `{command_name} restart` "
            f"or `{command_name} up --force-recreate`.",
            style="dim",
            highlight=False,
        )
    return running
