"""`DockerComposeManager`: the compose project of an application.

It sits at the top of the `compose` subpackage: it adds the compose commands
(`commands`), which work on its base class `ComposeProject` (`_project`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from ..subsystems.defs import ApplicationBase
from ._project import ComposeProject, require_compose_manager
from .base import run_compose
from .commands import add_docker_compose_commands

__all__ = [
    "ComposeFilesDependency",
    "DockerComposeManager",
    "RootDirectoryDependency",
    "get_compose_manager",
    "require_compose_manager",
]

PathLike = str | os.PathLike[str]

ComposeFilesDependency = (
    Sequence[PathLike] | Callable[["DockerComposeManager"], Sequence[PathLike]] | None
)
"""Compose files, or a function of the manager (its `app` and `root_dir` set) returning them."""

RootDirectoryDependency = PathLike | Callable[[Path], PathLike] | None
"""The project directory, or a function of the working directory returning it."""


def _identity(path: Path) -> Path:
    return path


class DockerComposeManager(ComposeProject):
    """The Docker Compose project of an application.

    At construction it sets `COMPOSE_PROJECT_NAME` (the app's
    `project_prefix`) and `COMPOSE_FILE` (the compose files joined with
    `COMPOSE_PATH_SEPARATOR`, or the platform's path separator) in
    `os.environ`, so that `docker compose` run by anyone in this process
    sees the project; with no compose files `COMPOSE_FILE` is left alone.
    It registers itself on the app (`app._compose_manager`) so that the
    compose commands find it.

    Args:
        app: The application.
        root_dir: The project directory, the working directory of every
            compose call; or a function of the current working directory
            returning it (default: the current working directory).
        compose_files: The compose files (relative ones are resolved against
            `root_dir`), or a function of this manager (with `app` and
            `root_dir` already set) returning them.
        restart_commands: Commands to run inside services that were already
            running when the app is started again, e.g.
            `{"gateway": "caddy reload --config /etc/caddy/Caddyfile"}`.
    """

    name = "docker-compose"

    def __init__(
        self,
        app: ApplicationBase,
        *,
        root_dir: RootDirectoryDependency = _identity,
        compose_files: ComposeFilesDependency = None,
        restart_commands: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(app)
        cwd = Path.cwd()
        if callable(root_dir):
            root_dir = root_dir(cwd)
        self.root_dir = (
            cwd / Path(root_dir if root_dir is not None else cwd)
        ).resolve()
        files = compose_files(self) if callable(compose_files) else compose_files
        self.compose_files: list[Path] = [self.root_dir / Path(f) for f in files or []]
        self.restart_commands: dict[str, str] = dict(restart_commands or {})
        app._compose_manager = self
        self._setup_environment()

    def environment(self) -> dict[str, str]:
        """The variables this manager sets: `COMPOSE_PROJECT_NAME` and `COMPOSE_FILE`."""
        env = {"COMPOSE_PROJECT_NAME": self.app.project_prefix}
        if self.compose_files:
            separator = os.environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
            env["COMPOSE_FILE"] = separator.join(str(f) for f in self.compose_files)
        return env

    def _setup_environment(self) -> None:
        os.environ.update(self.environment())

    def run(
        self, args: Sequence[str | os.PathLike[str]], **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run Docker Compose with `args` in `root_dir`, with this project's variables.

        Args:
            args: The arguments after `docker compose`, one each.
            **kwargs: Passed to `subprocess.run`.
        """
        kwargs.setdefault("cwd", self.root_dir)
        env = dict(kwargs.pop("env", None) or os.environ)
        env.update(self.environment())
        return run_compose(args, env=env, **kwargs)

    def add_commands(
        self, command: typer.Typer, *, rich_help_panel: str = "System (Docker Compose)"
    ) -> None:
        """Add `up`, `down`, `restart` and `compose` to a command line."""
        add_docker_compose_commands(command, rich_help_panel=rich_help_panel)


def get_compose_manager(ctx: typer.Context) -> DockerComposeManager | None:
    """Find the `DockerComposeManager` of the application in a Typer (Click) context."""
    manager = ctx.find_object(DockerComposeManager)
    if manager is not None:
        return manager
    app = ctx.find_object(ApplicationBase)
    found = getattr(app, "_compose_manager", None)
    return found if isinstance(found, DockerComposeManager) else None
