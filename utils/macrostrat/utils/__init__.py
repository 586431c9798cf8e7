"""Small helpers shared by the macrostrat libraries.

Logging, running commands, git queries, step timers, error types, and
context managers for the working directory and environment variables. The
only third-party dependency is `colorlog`.
"""

import logging
from importlib.metadata import version as _version

from .environment import override_environment
from .exc import ApplicationError, BaseError, GitError
from .logs import get_logger, setup_stderr_logs, suppress_loggers
from .paths import relative_path, working_directory
from .shell import (
    cmd,
    git_has_changes,
    git_revision,
    git_revision_info,
    run,
    split_args,
)
from .timer import CodeTimer, ContextualTimer, Timer, Timing

__version__ = _version("macrostrat.utils")

__all__ = [
    "ApplicationError",
    "BaseError",
    "CodeTimer",
    "ContextualTimer",
    "GitError",
    "Timer",
    "Timing",
    "__version__",
    "cmd",
    "get_logger",
    "git_has_changes",
    "git_revision",
    "git_revision_info",
    "override_environment",
    "relative_path",
    "run",
    "setup_stderr_logs",
    "split_args",
    "suppress_loggers",
    "working_directory",
]

# A library never prints on its own: without this, records of WARNING and
# above would reach Python's last-resort stderr handler when the application
# has not configured logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
