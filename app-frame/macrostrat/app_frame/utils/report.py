"""Printing an `ApplicationError` as a short message instead of a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.theme import Theme

from macrostrat.utils.cli import is_verbose

from ..errors import ApplicationError

if TYPE_CHECKING:
    # The context Typer's Click classes take (Typer vendors Click as `typer._click`).
    from typer._click import Context as ClickContext

__all__ = ["ERROR_THEME", "report_application_error"]

ERROR_THEME = Theme({"danger": "bold red", "details": "dim"})
"""Styles for [`ApplicationError.render`][macrostrat.utils.exc.ApplicationError.render]."""


def report_application_error(
    exc: ApplicationError, ctx: ClickContext | None = None, *, verbose: Any = None
) -> None:
    """Print `exc` to standard error: its message in red, then its details.

    In verbose mode (the `verbose` argument, or the application in the
    context having `verbose` set by `--verbose` or `<PREFIX>VERBOSE`) the
    traceback is printed first. Must be called while `exc` is being handled.

    Args:
        exc: The error.
        ctx: The Typer (Click) context the error was raised in.
        verbose: Force verbose mode on or off; `None` asks the context.
    """
    show_traceback = is_verbose(ctx) if verbose is None else bool(verbose)
    console = Console(stderr=True, theme=ERROR_THEME)
    if show_traceback:
        console.print_exception()
    # ApplicationError.render escapes the text: `[db]` never becomes a style.
    text = exc.render()
    console.print(text, end="", highlight=False, soft_wrap=True)
