"""macrostrat.app_frame: a Typer + Rich control CLI for containerized applications.

Build an [`Application`][macrostrat.app_frame.Application], give it a
[`DockerComposeManager`][macrostrat.app_frame.DockerComposeManager], create
its [`ControlCommand`][macrostrat.app_frame.ControlCommand] and add the
compose commands (`up`, `down`, `restart`, `compose`) and, with the `db`
extra, the database commands ([`add_db_commands`][macrostrat.app_frame.add_db_commands]).

`macrostrat.app_frame.compose` is the `compose` function (as upstream); the
subpackage of the same name is importable as usual
(`from macrostrat.app_frame.compose import DockerComposeManager`).
"""

from importlib.metadata import version as _version

from .compose import (
    DockerComposeManager,
    check_status,
    command_stream,
    compose,
    follow_logs,
    start_app,
)
from .control_command import ControlCommand
from .core import Application
from .db import add_db_commands, db_commands
from .errors import (
    AppFrameError,
    ApplicationError,
    BaseError,
    ComposeManagerNotFoundError,
    ComposeNotFoundError,
    DatabaseCommandError,
    EnvironmentFileNotFoundError,
    MissingExtraError,
    SubsystemError,
    TerminalRequiredError,
)
from .subsystems import ApplicationBase, CoreSubsystem, Subsystem, SubsystemManager
from .utils import CommandBase, ControlCommandGroup, add_click_command, get_env_boolean

__version__ = _version("macrostrat.app_frame")

__all__ = [
    "AppFrameError",
    "Application",
    "ApplicationBase",
    "ApplicationError",
    "BaseError",
    "CommandBase",
    "ComposeManagerNotFoundError",
    "ComposeNotFoundError",
    "ControlCommand",
    "ControlCommandGroup",
    "CoreSubsystem",
    "DatabaseCommandError",
    "DockerComposeManager",
    "EnvironmentFileNotFoundError",
    "MissingExtraError",
    "Subsystem",
    "SubsystemError",
    "SubsystemManager",
    "TerminalRequiredError",
    "__version__",
    "add_click_command",
    "add_db_commands",
    "check_status",
    "command_stream",
    "compose",
    "db_commands",
    "follow_logs",
    "get_env_boolean",
    "start_app",
]
