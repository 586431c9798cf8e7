"""Typer and Click helpers: `CommandBase` with command aliases, and its group class."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperGroup

from ..errors import ApplicationError
from .report import report_application_error

if TYPE_CHECKING:
    # The context Typer's Click classes take (Typer vendors Click as `typer._click`).
    from typer._click import Context as ClickContext

__all__ = [
    "DELIMITER",
    "CommandBase",
    "ControlCommandGroup",
    "add_click_command",
]

DELIMITER = ", "
"""Separates a command's name from its aliases in the registered name."""

F = TypeVar("F", bound=Callable[..., Any])

_COMPLETION_PARAMS = frozenset({"install_completion", "show_completion"})


def _alias_name(name: str | None, aliases: list[str] | None) -> str | None:
    """The registered name `"name, alias1, alias2"` (or `name` without aliases)."""
    if not aliases:
        return name
    if not name:
        raise ValueError("name must be provided if aliases are set")
    return DELIMITER.join([name, *aliases])


class ControlCommandGroup(TyperGroup):
    """The Click group behind `CommandBase`: aliases, ordering, error reports.

    - A command registered as `"hello, hi, h"` answers to each of the three
      names.
    - Commands are listed in the order they were added, deprecated ones last.
    - The shell-completion options are hidden (`--help` stays).
    - An [`ApplicationError`][macrostrat.utils.exc.ApplicationError] raised by
      the group's callback or a subcommand is printed as a short red message
      with its details, and the command exits with status 1; in verbose mode
      the traceback is printed too.
    """

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Any:
        """Look a command up by its name or one of its aliases."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        for registered, candidate in self.commands.items():
            if cmd_name in registered.split(DELIMITER):
                return candidate
        return None

    def list_commands(self, ctx: ClickContext) -> list[str]:
        """Commands in insertion order, deprecated ones last."""
        names = list(self.commands)
        return sorted(
            names, key=lambda n: bool(getattr(self.commands[n], "deprecated", False))
        )

    def get_params(self, ctx: ClickContext) -> list[Any]:
        """The group's parameters without the completion options (keeps `--help`)."""
        return [p for p in super().get_params(ctx) if p.name not in _COMPLETION_PARAMS]

    def invoke(self, ctx: ClickContext) -> Any:
        """Invoke the group; report an `ApplicationError` and exit with status 1."""
        try:
            return super().invoke(ctx)
        except ApplicationError as exc:
            report_application_error(exc, ctx)
            raise typer.Exit(1) from exc


class CommandBase(typer.Typer):
    """A `typer.Typer` with command aliases and friendlier defaults.

    Defaults: no completion options, help when run without arguments, and
    [`ControlCommandGroup`][macrostrat.app_frame.ControlCommandGroup] as the
    group class. `command` and `add_typer` accept `aliases=[...]`.

    Args:
        **kwargs: Passed to `typer.Typer`.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("cls", ControlCommandGroup)
        super().__init__(**kwargs)

    def command(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        aliases: list[str] | None = None,
        **kwargs: Any,
    ) -> Callable[[F], F]:
        """Register a command, optionally under extra names.

        Usable as `@cli.command()`, `@cli.command("name", aliases=["n"])` or
        bare `@cli.command`.

        Args:
            name: The command name (default: from the function name).
            aliases: Other names the command answers to; they are shown in
                the help as `"name, alias"`.
            **kwargs: Passed to `typer.Typer.command`.

        Raises:
            ValueError: `aliases` without `name`.
        """
        if callable(name):
            func = name
            return self.command(aliases=aliases, **kwargs)(func)
        decorator: Callable[[F], F] = super().command(
            _alias_name(name, aliases), **kwargs
        )
        return decorator

    def add_typer(
        self,
        typer_instance: typer.Typer | None = None,
        *,
        name: str | None = None,
        aliases: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Mount a sub-app, optionally under extra names (see `command`).

        Args:
            typer_instance: The sub-app. Upstream called this parameter
                `typer`; `add_typer(typer=sub)` still works and warns with
                `DeprecationWarning`.
            name: The name it is mounted under.
            aliases: Other names it answers to.
            **kwargs: Passed to `typer.Typer.add_typer`.
        """
        if "typer" in kwargs:
            if typer_instance is not None:
                raise TypeError("add_typer() got both 'typer_instance' and 'typer'")
            warnings.warn(
                "add_typer(typer=...) is deprecated; pass the sub-app positionally "
                "or as typer_instance=...",
                DeprecationWarning,
                stacklevel=2,
            )
            typer_instance = kwargs.pop("typer")
        if typer_instance is None:
            raise TypeError("add_typer() missing the sub-app (typer_instance)")
        full_name = _alias_name(name, aliases)
        if full_name is None:
            super().add_typer(typer_instance, **kwargs)
        else:
            super().add_typer(typer_instance, name=full_name, **kwargs)

    def add_command(self, cmd: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Register the function `cmd` as a command (`command(*args, **kwargs)(cmd)`)."""
        self.command(*args, **kwargs)(cmd)

    def add_click_command(self, cmd: Any, *args: Any, **kwargs: Any) -> None:
        """Mount a plain Click command (see [`add_click_command`][macrostrat.app_frame.add_click_command])."""
        add_click_command(self, cmd, *args, **kwargs)


def add_click_command(base: typer.Typer, cmd: Any, *args: Any, **kwargs: Any) -> None:
    """Mount a plain Click command (`click.Command`) in a Typer app.

    All arguments after the command name, `--help` included, are handed to
    `cmd`, which parses them itself (it runs as its own program, so it does
    not see the Typer context). Its exit status becomes the command's exit
    status, and an `ApplicationError` it raises is reported like any other.

    Args:
        base: The Typer app to add the command to.
        cmd: The Click command (anything with Click's `main()`).
        *args: Passed to `base.command` (e.g. the name; default `cmd.name`).
        **kwargs: Passed to `base.command`; `context_settings` are merged with
            the pass-through settings.
    """
    settings = {
        **(kwargs.pop("context_settings", None) or {}),
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    }
    if not args and "name" not in kwargs:
        args = (cmd.name,)
    kwargs.setdefault("help", getattr(cmd, "help", None))

    def run_click_command(ctx: typer.Context) -> None:
        try:
            cmd.main(
                args=list(ctx.args), prog_name=ctx.command_path, standalone_mode=True
            )
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                raise typer.Exit(exc.code or 0) from None
            raise

    run_click_command.__doc__ = getattr(cmd, "help", None) or cmd.__doc__
    base.command(*args, context_settings=settings, **kwargs)(run_click_command)
