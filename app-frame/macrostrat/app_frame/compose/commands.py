"""The `up`, `down`, `restart` and `compose` commands, and `start_app`.

They work on the app's compose project (a `DockerComposeManager`, named here
by its base class `ComposeProject`, since the manager adds these commands).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import warnings
from typing import Annotated, Any

import typer

from ._project import ComposeProject, require_compose_manager
from .base import check_status, is_dry_run
from .follow_logs import (
    Result,
    command_stream,
    follow_logs,
    logs_command,
    stdin_is_terminal,
    stop_process,
)

__all__ = [
    "add_docker_compose_commands",
    "compose_passthrough",
    "down",
    "fail_with_message",
    "follow_and_control",
    "restart",
    "run_restart_commands",
    "start_app",
    "up",
]

log = logging.getLogger(__name__)

ContainerArg = Annotated[
    str | None, typer.Argument(help="Only this service (default: all).")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline/--no-offline", help="Build without BuildKit (DOCKER_BUILDKIT=0)."
    ),
]


def _report_dry_run(
    app: Any, stage_name: str, result: subprocess.CompletedProcess[Any]
) -> None:
    """Say that a stage did not run in dry-run mode, and what it would have run."""
    args = result.args
    command = (
        shlex.join(os.fspath(a) for a in args)
        if isinstance(args, (list, tuple))
        else str(args)
    )
    app.info(f"Dry run: {stage_name} would run: {command}", style="yellow")


def fail_with_message(
    app: Any,
    result: subprocess.CompletedProcess[Any] | None = None,
    stage_name: str | None = None,
    *,
    res: subprocess.CompletedProcess[Any] | None = None,
) -> None:
    """Report a compose stage; exit with its status if it failed.

    In dry-run mode nothing ran, so nothing succeeded: the report says what
    would have run instead (the command line `result` carries).

    Args:
        app: The application (its console prints the report).
        result: The stage's completed process.
        stage_name: What the stage is called in the report.
        res: Upstream's name of `result` (deprecated; warns).

    Raises:
        SystemExit: with the stage's exit status, if it is not 0.
    """
    if res is not None:
        if result is not None:
            raise TypeError("fail_with_message() got both 'result' and 'res'")
        warnings.warn(
            "fail_with_message(res=...) is deprecated; pass the result "
            "positionally or as result=...",
            DeprecationWarning,
            stacklevel=2,
        )
        result = res
    if result is None or stage_name is None:
        raise TypeError("fail_with_message() needs a result and a stage_name")
    if is_dry_run():
        _report_dry_run(app, stage_name, result)
        return
    if result.returncode != 0:
        app.info(f"{stage_name} failed, aborting.", style="red bold")
        sys.exit(result.returncode)
    app.info(f"{stage_name} succeeded.", style="green bold")
    app.console.print()


def run_restart_commands(
    manager: ComposeProject, running_containers: list[str]
) -> None:
    """Run the manager's `restart_commands` in services that were already running.

    Each runs as `docker compose exec <service> <command>`; a failure is
    reported but does not stop the others.
    """
    for service, command in manager.restart_commands.items():
        if service not in running_containers:
            continue
        manager.app.info(f"Reloading {service}...", style="bold")
        result = manager.run(["exec", service, *shlex.split(command)])
        if result.returncode != 0:
            manager.app.info(
                f"Reloading {service} failed (exit status {result.returncode}).",
                style="red",
            )
    manager.app.console.print()


def start_app(
    manager: ComposeProject,
    container: str | None = None,
    force_recreate: bool = False,
    single_stage: bool = False,
) -> None:
    """Build, create and start the app's services (or one service).

    Multi-stage (default): `build`, `up --no-start --no-build`, then `start`,
    so a failed build leaves the running app alone. Single-stage: one `up`.
    Afterwards the `restart_commands` of services that were already running
    are run. Each stage reports success or failure.

    Args:
        manager: The compose project.
        container: One service, or `None` for all.
        force_recreate: Recreate containers even if unchanged.
        single_stage: Use one `docker compose up` instead.

    Raises:
        SystemExit: with docker's exit status when a stage fails.
    """
    app = manager.app
    only = [container] if container else []
    recreate = ["--force-recreate"] if force_recreate else []
    running = check_status(app.name, app.command_name, cwd=manager.root_dir)
    if single_stage:
        result = manager.run(["up", "--remove-orphans", *recreate, *only])
        fail_with_message(app, result, "Start :app_name:")
    else:
        fail_with_message(app, manager.run(["build", *only]), "Build images")
        result = manager.run(
            ["up", "--remove-orphans", "--no-start", "--no-build", *recreate, *only]
        )
        fail_with_message(app, result, "Create containers")
        if not is_dry_run():
            app.info("Starting :app_name: server...", style="bold")
        fail_with_message(app, manager.run(["start", *only]), "Start :app_name:")
    run_restart_commands(manager, running)


def _down(manager: ComposeProject) -> int:
    if is_dry_run():
        manager.app.info("Dry run: Stop :app_name: would run:", style="yellow")
    else:
        manager.app.info("Stopping :app_name: server...", style="bold")
    return manager.run(["down", "--remove-orphans"]).returncode


def follow_and_control(manager: ComposeProject, container: str | None) -> int:
    """Follow logs and obey the keys `q`, `r` and `x`; return an exit status.

    `q` or Ctrl+C stops following (the app keeps running), `r` restarts the
    app (and follows again), `x` stops the app (the status is `down`'s). The
    log follower is always stopped and reaped, and the terminal restored.
    """
    app = manager.app
    env = {**os.environ, **manager.environment()}
    process = follow_logs(app, container, cwd=manager.root_dir, env=env)
    stream = command_stream(0.5)
    try:
        with contextlib.closing(stream):
            for result in stream:
                if result is Result.RESTART:
                    stop_process(process)
                    app.info("Restarting :app_name: server...", style="bold")
                    start_app(manager, container, force_recreate=True)
                    process = follow_logs(
                        app, container, show_help=False, cwd=manager.root_dir, env=env
                    )
                    continue
                stop_process(process)
                if result is Result.EXIT:
                    return _down(manager)
                break
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(process)
    app.info("Detaching from logs (:app_name: will continue to run)", style="bold")
    return 0


def up(
    ctx: typer.Context,
    container: ContainerArg = None,
    force_recreate: Annotated[
        bool,
        typer.Option(
            "--force-recreate/--no-force-recreate",
            help="Recreate containers even if unchanged.",
        ),
    ] = False,
    offline: OfflineOpt = False,
) -> None:
    """Start the :app_name: server and follow logs."""
    manager = require_compose_manager(ctx)
    if offline:
        os.environ["DOCKER_BUILDKIT"] = "0"
        log.info("Offline mode: DOCKER_BUILDKIT=0")
    start_app(manager, container, force_recreate=force_recreate)
    if is_dry_run():
        sys.stdout.write(shlex.join(logs_command(container)) + "\n")
        return
    if not stdin_is_terminal():
        manager.app.info(
            ":app_name: started; not following logs because standard input is not "
            "a terminal (run `:command_name: compose logs -f` to follow them).",
        )
        return
    status = follow_and_control(manager, container)
    if status:
        raise typer.Exit(status)


def down(ctx: typer.Context) -> None:
    """Stop the :app_name: server and remove its containers."""
    status = _down(require_compose_manager(ctx))
    if status:
        raise typer.Exit(status)


def restart(
    ctx: typer.Context, container: ContainerArg = None, offline: OfflineOpt = False
) -> None:
    """Restart the :app_name: server (recreating containers) and follow logs."""
    up(ctx, container, force_recreate=True, offline=offline)


def compose_passthrough(ctx: typer.Context) -> None:
    """Run docker compose commands in the appropriate context"""
    manager = require_compose_manager(ctx)
    status = manager.run(list(ctx.args)).returncode
    if status:
        raise typer.Exit(status)


_PASSTHROUGH_SETTINGS = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
    "max_content_width": 160,
}


def add_docker_compose_commands(
    command: typer.Typer, *, rich_help_panel: str = "System (Docker Compose)"
) -> None:
    """Add `up`, `down`, `restart` and the `compose` passthrough to a command line."""
    command.command(rich_help_panel=rich_help_panel)(up)
    command.command(rich_help_panel=rich_help_panel)(down)
    command.command(rich_help_panel=rich_help_panel)(restart)
    command.command(
        "compose",
        context_settings=dict(_PASSTHROUGH_SETTINGS),
        rich_help_panel=rich_help_panel,
    )(compose_passthrough)
