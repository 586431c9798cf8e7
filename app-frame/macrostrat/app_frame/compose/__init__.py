"""Docker Compose integration: the project manager, its commands, log following.

`macrostrat.app_frame.compose` is both this subpackage and (as an attribute of
`macrostrat.app_frame`) the [`compose`][macrostrat.app_frame.compose.base.compose]
function, as upstream. The function also carries this subpackage's public
names as attributes, so `compose.DockerComposeManager` works either way.

Upstream's `compose/__init__.py` also imported `Application`,
`ApplicationBase`, `CoreSubsystem` and `add_click_command`, and apps import
them from here; they are the same objects as in `macrostrat.app_frame`.
"""

from ..core import Application as Application
from ..subsystems.defs import ApplicationBase as ApplicationBase
from ..subsystems.defs import CoreSubsystem as CoreSubsystem
from ..utils.commands import add_click_command as add_click_command
from .base import (
    check_status,
    compose,
    compose_base_command,
    console,
    is_dry_run,
    run_compose,
)
from .commands import (
    add_docker_compose_commands,
    down,
    fail_with_message,
    follow_and_control,
    restart,
    run_restart_commands,
    start_app,
    up,
)
from .flavour import compose_command, forget_compose_command
from .follow_logs import (
    Result,
    command_stream,
    follow_logs,
    stdin_is_terminal,
    stop_process,
    wait_for_keys,
)
from .manager import (
    ComposeFilesDependency,
    DockerComposeManager,
    RootDirectoryDependency,
    get_compose_manager,
)

__all__ = [
    "ComposeFilesDependency",
    "DockerComposeManager",
    "Result",
    "RootDirectoryDependency",
    "add_docker_compose_commands",
    "check_status",
    "command_stream",
    "compose",
    "compose_base_command",
    "compose_command",
    "console",
    "down",
    "fail_with_message",
    "follow_and_control",
    "follow_logs",
    "forget_compose_command",
    "get_compose_manager",
    "is_dry_run",
    "restart",
    "run_compose",
    "run_restart_commands",
    "start_app",
    "stdin_is_terminal",
    "stop_process",
    "up",
    "wait_for_keys",
]

# Names upstream's subpackage imported (not part of `__all__`).
_UPSTREAM_IMPORTS = (
    "Application",
    "ApplicationBase",
    "CoreSubsystem",
    "add_click_command",
)

for _name in (*__all__, *_UPSTREAM_IMPORTS):
    if _name != "compose":
        setattr(compose, _name, globals()[_name])
del _name
