"""Typer/Click helpers: `CommandBase` (aliases), its group class, environment booleans."""

from .commands import DELIMITER, CommandBase, ControlCommandGroup, add_click_command
from .env import get_env_boolean
from .report import report_application_error

__all__ = [
    "DELIMITER",
    "CommandBase",
    "ControlCommandGroup",
    "add_click_command",
    "get_env_boolean",
    "report_application_error",
]
