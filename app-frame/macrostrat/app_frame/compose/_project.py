"""The compose project the compose commands work on, and finding it in a Typer context.

[`DockerComposeManager`][macrostrat.app_frame.DockerComposeManager] (in
`manager`) is the implementation. It adds the compose commands
(`add_commands`), so `commands` sits above this base and below `manager`
in the package's layers: the commands name and find the project through
`ComposeProject` without importing `manager`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from ..errors import ComposeManagerNotFoundError
from ..subsystems.defs import ApplicationBase, CoreSubsystem

__all__ = ["ComposeProject", "find_compose_project", "require_compose_manager"]


class ComposeProject(CoreSubsystem):
    """The base class of `DockerComposeManager`: what the compose commands use.

    Attributes:
        root_dir: The project directory, the working directory of compose calls.
        compose_files: The compose files (absolute paths).
        restart_commands: Commands run in services that were already running
            when the app is started again.
    """

    root_dir: Path
    compose_files: list[Path]
    restart_commands: dict[str, str]

    def environment(self) -> dict[str, str]:
        """The variables the project sets (`COMPOSE_PROJECT_NAME`, `COMPOSE_FILE`)."""
        raise NotImplementedError

    def run(
        self, args: Sequence[str | os.PathLike[str]], **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run Docker Compose with `args` in `root_dir`, with the project's variables."""
        raise NotImplementedError


def find_compose_project(ctx: typer.Context) -> ComposeProject | None:
    """Find the application's compose project in a Typer (Click) context.

    The nearest context object that is a project, else the project the
    application in the context registered (`app._compose_manager`).
    """
    project = ctx.find_object(ComposeProject)
    if project is not None:
        return project
    app = ctx.find_object(ApplicationBase)
    found = getattr(app, "_compose_manager", None)
    return found if isinstance(found, ComposeProject) else None


def require_compose_manager(ctx: typer.Context) -> ComposeProject:
    """Like `find_compose_project`, but raise a clear error when there is none.

    Raises:
        ComposeManagerNotFoundError: no manager was created for the app (also
            a `ValueError`, as upstream raised).
    """
    project = find_compose_project(ctx)
    if project is None:
        raise ComposeManagerNotFoundError(
            "Could not find application config: this command line has no "
            "DockerComposeManager",
            details="Create DockerComposeManager(app, ...) before running compose commands.",
        )
    return project
