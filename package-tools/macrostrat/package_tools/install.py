"""Install every package of the workspace into the root project's environment."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence

from ._process import Command
from .workspace import Workspace, load_workspace

__all__ = ["install_commands", "install_packages"]

log = logging.getLogger(__name__)


def install_commands(
    workspace: Workspace,
    *,
    omit: Iterable[str] = (),
    skip_root: bool = False,
    virtualenvs: bool = False,
) -> list[Command]:
    """The commands `mono install` runs, in order.

    1. For each `[tool.uv.sources]` path package (not a workspace member),
       `uv lock` in its directory, and with `virtualenvs` also `uv sync`
       there (its own environment). Workspace members share the root's lock
       file and environment, so nothing is run for them.
    2. Unless `skip_root`: `uv lock`, then `uv sync` in the workspace root
       (`--all-packages` for a uv workspace; `--no-install-package` for each
       omitted package).

    Omitted packages are left out of every step.

    Args:
        workspace: The workspace.
        omit: Package names to leave out.
        skip_root: Skip locking and syncing the root project.
        virtualenvs: Also sync each path package's own environment.

    Returns:
        The commands, each with the directory it runs in.
    """
    selected = workspace.select(omit)
    commands: list[Command] = []
    for package in selected:
        if package.member:
            continue
        commands.append(Command.of("uv", "lock", cwd=package.path))
        if virtualenvs:
            commands.append(Command.of("uv", "sync", cwd=package.path))
    if virtualenvs and any(p.member for p in selected):
        log.info(
            "Workspace members share the root environment; --virtualenvs applies to path packages only"
        )
    if not skip_root:
        sync = ["uv", "sync"]
        if any(p.member for p in workspace.packages.values()):
            sync.append("--all-packages")
        kept = {p.key for p in selected}
        for package in workspace.packages.values():
            if package.key not in kept:
                sync += ["--no-install-package", package.name]
        commands.append(Command.of("uv", "lock", cwd=workspace.root))
        commands.append(Command.of(*sync, cwd=workspace.root))
    return commands


def install_packages(
    workspace: Workspace | str | os.PathLike[str] | None = None,
    omit: Iterable[str] = (),
    skip_root: bool = False,
    virtualenvs: bool = False,
    *,
    commands: Sequence[Command] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> list[Command]:
    """Run the install commands, stopping at the first that fails.

    The positional parameters are upstream's
    (`install_packages(path=Path.cwd(), omit=[], skip_root=False,
    virtualenvs=False)`), with the workspace root or a `Workspace` first.

    Args:
        workspace: The workspace, or its root directory; `None` for the
            workspace around the current directory.
        omit: Package names to leave out.
        skip_root: Skip locking and syncing the root project.
        virtualenvs: Also sync each path package's own environment.
        commands: The commands to run; defaults to `install_commands` with
            the other arguments.
        path: Upstream's name for the workspace root (deprecated; warns).

    Returns:
        The commands run.

    Raises:
        CommandError: If a command fails (names the command).
        WorkspaceError: If the workspace can't be read.
        TypeError: If both `workspace` and `path` are given.
    """
    if path is not None:
        if workspace is not None:
            raise TypeError("install_packages() got both 'workspace' and 'path'")
        warnings.warn(
            "install_packages(path=...) is deprecated; pass the workspace root "
            "(or a Workspace) as the first argument",
            DeprecationWarning,
            stacklevel=2,
        )
        workspace = path
    if not isinstance(workspace, Workspace):
        workspace = load_workspace(workspace)
    if commands is None:
        commands = install_commands(
            workspace, omit=omit, skip_root=skip_root, virtualenvs=virtualenvs
        )
    for command in commands:
        log.info("Running %s (in %s)", command, command.cwd)
        command.run()
    return list(commands)
