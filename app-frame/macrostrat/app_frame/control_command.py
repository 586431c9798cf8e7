"""`ControlCommand`: the root Typer app of an application's control CLI."""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable
from typing import Annotated, Any, Protocol, TypeVar, cast

import typer
from rich.console import Console

from .subsystems.manager import _version_of
from .utils.commands import CommandBase
from .utils.env import DRY_RUN_ENV, get_env_boolean

__all__ = ["DRY_RUN_ENV", "ControlCommand", "ControlledApp"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_VERSION_PARAMETER = "app_frame_show_version"
"""The name of the `--version` parameter added to the root callback."""


class ControlledApp(Protocol):
    """What a `ControlCommand` needs of its application.

    [`Application`][macrostrat.app_frame.Application] is the implementation;
    this protocol lets the control command (below `core` in the package's
    layers) name it without importing it.

    Attributes:
        name: The human-readable name (`:app_name:` in help texts).
        command_name: The control command's name (`:command_name:`).
        project_prefix: The compose project name.
        envvar_prefix: The prefix of the app's variables (`<PREFIX>VERBOSE`).
        version: The app's declared version, or `None`.
        verbose: Set by `--verbose` or `<PREFIX>VERBOSE`.
        console: The Rich console messages go to.
    """

    name: str
    command_name: str
    project_prefix: str
    envvar_prefix: str
    version: str | None
    verbose: bool
    console: Console

    def replace_names(self, text: str) -> str:
        """Replace `:app_name:` and `:command_name:` in `text`."""
        ...

    def info(self, text: str, style: str | None = None) -> None:
        """Print `text` (names replaced) to the app's console."""
        ...

    def setup_logs(self, verbose: bool = False) -> None:
        """Send the app's log records to standard error."""
        ...


def _restore_on_close(ctx: typer.Context, names: tuple[str, ...]) -> None:
    """Put the variables `names` back as they were when the command finishes.

    The global options are exported for the children of this invocation
    only; a later invocation in the same process starts from the original
    environment.
    """
    saved = {name: os.environ.get(name) for name in names}

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    ctx.call_on_close(restore)


class ControlCommand(CommandBase):
    """The root command of an application's control CLI (a `typer.Typer`).

    It has three global options: `--version` (prints the app's name and
    version, `Application(version=...)` or else the installed version of the
    app's package, the one `app_version` checks use, and exits), `--verbose` (debug logs of the app's
    `log_modules` and tracebacks for errors; also turned on by the
    `<PREFIX>VERBOSE` variable, which is then exported as `1` for nested
    commands) and `--dry-run` (docker commands are printed instead of run;
    also turned on by `DRY_RUN=1`, which is exported likewise). Both
    variables are restored when the command finishes, so a second
    invocation in the same process does not inherit them. `--help`
    works at every level. `:app_name:` and `:command_name:` in command help
    texts are replaced with the app's names (the functions' docstrings are
    not modified).

    Subclasses may override `callback` to add global options; call
    `super().callback(ctx, verbose=verbose, dry_run=dry_run)` from it.
    `--version` is added to whatever signature the callback has.

    Args:
        app: The application (an [`Application`][macrostrat.app_frame.Application],
            or anything with what `ControlledApp` lists).
        name: The name shown for the CLI (default: `app.name`).
        **kwargs: Passed to [`CommandBase`][macrostrat.app_frame.CommandBase]
            and `typer.Typer`.
    """

    def __init__(
        self, app: ControlledApp, *, name: str | None = None, **kwargs: Any
    ) -> None:
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        super().__init__(**kwargs)
        self.name = name or app.name
        self.app = app

        def callback(*args: Any, **kw: Any) -> Any:
            kw.pop(_VERSION_PARAMETER, None)
            return self.callback(*args, **kw)

        functools.update_wrapper(callback, self.callback)
        callback.__doc__ = app.replace_names(inspect.getdoc(self.callback) or "")
        self._add_version_option(callback)
        typer.Typer.callback(self, invoke_without_command=True)(callback)

    def _add_version_option(self, callback: Callable[..., Any]) -> None:
        """Give the root callback a `--version` option, whatever its signature."""
        signature = inspect.signature(self.callback, eval_str=True)
        if _VERSION_PARAMETER in signature.parameters:
            return
        option = Annotated[
            bool,
            typer.Option(
                "--version",
                callback=self._show_version,
                is_eager=True,
                help=self.app.replace_names("Show :app_name:'s version and exit."),
            ),
        ]
        parameters = list(signature.parameters.values())
        at = next(
            (
                i
                for i, p in enumerate(parameters)
                if p.kind is inspect.Parameter.VAR_KEYWORD
            ),
            len(parameters),
        )
        parameters.insert(
            at,
            inspect.Parameter(
                _VERSION_PARAMETER,
                inspect.Parameter.KEYWORD_ONLY,
                default=False,
                annotation=option,
            ),
        )
        cast(Any, callback).__signature__ = signature.replace(parameters=parameters)
        callback.__annotations__ = {
            **{p.name: p.annotation for p in signature.parameters.values()},
            _VERSION_PARAMETER: option,
        }

    def _show_version(self, value: bool) -> None:
        """Print `<name> <version>` and exit (the `--version` option)."""
        if not value:
            return
        version = _version_of(self.app)
        if version is None:
            typer.echo(
                f"{self.app.name}: version unknown (give Application(version=...), "
                "or install the app's package)"
            )
        else:
            typer.echo(f"{self.app.name} {version}")
        raise typer.Exit()

    # Upstream's API: the root command's callback, replacing Typer's decorator
    # of the same name (which __init__ calls as typer.Typer.callback).
    def callback(  # type: ignore[override]
        self,
        ctx: typer.Context,
        verbose: Annotated[
            bool,
            typer.Option("--verbose", help="Show debug logs and error tracebacks."),
        ] = False,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", help="Print docker commands instead of running them."
            ),
        ] = False,
    ) -> None:
        """:app_name: command-line interface"""
        ctx.obj = self.app
        verbose_var = f"{self.app.envvar_prefix}VERBOSE"
        _restore_on_close(ctx, (verbose_var, DRY_RUN_ENV))
        verbose = bool(verbose or get_env_boolean(verbose_var, False))
        if verbose:
            os.environ[verbose_var] = "1"
        self.app.verbose = verbose
        self.app.setup_logs(verbose=verbose)
        if verbose:
            log.debug("Activated verbose mode")
        if dry_run is True:
            os.environ[DRY_RUN_ENV] = "1"

    def command(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        aliases: list[str] | None = None,
        **kwargs: Any,
    ) -> Callable[[F], F]:
        """Register a command; `:app_name:`/`:command_name:` in its help are replaced.

        Same arguments as [`CommandBase.command`][macrostrat.app_frame.utils.commands.CommandBase.command].
        """
        if callable(name):
            return self.command(aliases=aliases, **kwargs)(name)

        def decorator(func: F) -> F:
            options = dict(kwargs)
            text = options.get("help") or inspect.getdoc(func)
            if text:
                options["help"] = self.app.replace_names(text)
            CommandBase.command(self, name, aliases=aliases, **options)(func)
            return func

        return decorator
