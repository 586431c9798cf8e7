"""`Application`: the name, environment and logging of a containerized app."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dotenv
from rich.console import Console

from macrostrat.utils.logs import setup_stderr_logs

from .control_command import ControlCommand
from .errors import EnvironmentFileNotFoundError
from .subsystems.defs import ApplicationBase

__all__ = ["Application", "DotenvDependency", "EnvironmentDependency"]

log = logging.getLogger(__name__)

EnvironmentDependency = (
    Mapping[str, str] | Callable[[ApplicationBase], Mapping[str, str]] | None
)
"""Environment variables to set, or a function of the app returning them."""

DotenvDependency = bool | str | os.PathLike[str] | list[str | os.PathLike[str]] | None
"""Which `.env` files to load: `True` (from the working directory upward), a
path, a list of paths, or `None`/`False` (none)."""


def _dotenv_files_upward(start: Path) -> list[Path]:
    """Every `.env` file in `start` and its parents, nearest first."""
    found = []
    for directory in (start, *start.parents):
        candidate = directory / ".env"
        if candidate.is_file():
            found.append(candidate)
    return found


class Application(ApplicationBase):
    """A containerized application with a control command line.

    Holds the app's names and sets up its environment when created: it sets
    `DOCKER_SCAN_SUGGEST=false`, then the variables from `env` (overriding
    existing ones), then loads `.env` files without overriding anything that
    is already set. So the precedence is: `env` > the process environment >
    the nearest `.env` > `.env` files further up.

    Args:
        name: The human-readable name, e.g. `"Macrostrat"`; replaces
            `:app_name:` in help texts.
        command_name: The control command's name, replacing `:command_name:`
            (default: `name.lower()`).
        project_prefix: The compose project name (default: `name.lower()`
            with spaces replaced by `_`).
        log_modules: Logger name(s) shown in verbose mode, in addition to
            `macrostrat.app_frame`. The caller's list is not modified.
        env: Environment variables to set, or a function of the app
            returning them.
        load_dotenv: `True` loads every `.env` from the working directory
            upward (the nearest wins); a `str` or `Path` loads that file; a
            list loads each in turn (the first wins); `None`/`False` loads
            nothing. A named file that does not exist raises
            `EnvironmentFileNotFoundError` (an `ApplicationError`).
        env_prefix: The prefix of the app's environment variables (default:
            `project_prefix.upper() + "_"`, e.g. `MACROSTRAT_`).
        version: The app's version, checked against subsystems'
            `app_version`.

    Attributes:
        console: The Rich console messages go to. A subclass may set it
            before calling `super().__init__`; it is kept.
        verbose: Set by the control command's `--verbose` flag or the
            `<PREFIX>VERBOSE` variable.
    """

    console: Console
    verbose: bool = False

    def __init__(
        self,
        name: str,
        *,
        command_name: str | None = None,
        project_prefix: str | None = None,
        log_modules: str | list[str] | None = None,
        env: EnvironmentDependency = None,
        load_dotenv: DotenvDependency = None,
        env_prefix: str | None = None,
        version: str | None = None,
    ) -> None:
        self.name = name
        self.command_name = command_name or name.lower()
        self.project_prefix = project_prefix or name.lower().replace(" ", "_")
        self.envvar_prefix = env_prefix or self.project_prefix.upper() + "_"
        self.version = version
        if getattr(self, "console", None) is None:
            self.console = Console()
        if isinstance(log_modules, str):
            modules = [log_modules]
        else:
            modules = list(log_modules or [])
        if "macrostrat.app_frame" not in modules:
            modules.append("macrostrat.app_frame")
        self._log_modules: list[str] = modules
        self._dotenv_cfg: DotenvDependency = load_dotenv
        self.setup_environment(env)

    def replace_names(self, text: str) -> str:
        """Replace `:app_name:` with `name` and `:command_name:` with `command_name`."""
        return text.replace(":app_name:", self.name).replace(
            ":command_name:", self.command_name
        )

    def info(self, text: str, style: str | None = None) -> None:
        """Print `text` (names replaced) to the app's console."""
        self.console.print(self.replace_names(text), style=style)

    def load_dotenv(self, dependency: DotenvDependency = None) -> list[Path]:
        """Load `.env` files into `os.environ` without overriding set variables.

        Args:
            dependency: What to load (see the class's `load_dotenv`
                argument); `None` means the value given to the constructor.

        Returns:
            The files that were loaded, in the order they were read.

        Raises:
            EnvironmentFileNotFoundError: a file named explicitly (a path, or a list of
                paths) does not exist; files found by `True` are only those
                that exist.
        """
        if dependency is None:
            dependency = self._dotenv_cfg
        if dependency is None or dependency is False:
            return []
        if dependency is True:
            files = _dotenv_files_upward(Path.cwd())
        elif isinstance(dependency, (str, os.PathLike)):
            files = [Path(dependency)]
        elif isinstance(dependency, (list, tuple)):
            files = [Path(item) for item in dependency]
        else:
            raise TypeError(
                "load_dotenv: expected True, a path or a list of paths, "
                f"not {type(dependency).__name__}"
            )
        loaded = []
        for path in files:
            if not path.is_file():
                raise EnvironmentFileNotFoundError(
                    f"Environment file {path} does not exist",
                    details="Check the load_dotenv argument of the Application.",
                )
            dotenv.load_dotenv(path, override=False)
            log.debug("Loaded environment file %s", path)
            loaded.append(path)
        return loaded

    def setup_environment(self, env: EnvironmentDependency = None) -> None:
        """Set `DOCKER_SCAN_SUGGEST=false` and the `env` variables, then load `.env` files."""
        os.environ["DOCKER_SCAN_SUGGEST"] = "false"
        values = env(self) if callable(env) else env
        for key, value in (values or {}).items():
            os.environ[key] = str(value)
        self.load_dotenv()

    def setup_logs(self, verbose: bool = False) -> None:
        """Send the app's log records to standard error.

        Verbose mode shows DEBUG records of the `log_modules` loggers;
        otherwise only warnings and errors.
        """
        level = logging.DEBUG if verbose else logging.WARNING
        setup_stderr_logs(*self._log_modules, level=level)

    def control_command(self, *args: Any, **kwargs: Any) -> ControlCommand:
        """Create the app's [`ControlCommand`][macrostrat.app_frame.ControlCommand]."""
        return ControlCommand(self, *args, **kwargs)
