"""The short error reports of the ``dinosaur`` command line.

`reported_errors` turns the failures of a command into ``Error: <message>`` on
standard error and exit status 1 (or a status of the command's choosing), with
the traceback only in verbose mode (`is_verbose`); `describe_error` strips
SQLAlchemy's wrapping from a driver's message.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator, Sequence

import typer

from macrostrat.utils.cli import VERBOSE_KEY, is_verbose

from .errors import DinosaurError

__all__ = [
    "VERBOSE_KEY",
    "describe_error",
    "expected_errors",
    "is_verbose",
    "report",
    "reported_errors",
]


def describe_error(exc: BaseException) -> str:
    """`macrostrat.database.errors.describe_error`, imported when first needed."""
    from macrostrat.database.errors import describe_error as describe

    return describe(exc)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Failures reported as a message (anything else is a bug: its traceback shows)."""
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    from macrostrat.database.errors import MacrostratDatabaseError

    return (
        DinosaurError,
        MacrostratDatabaseError,
        psycopg.Error,
        SQLAlchemyError,
        OSError,
    )


def report(ctx: typer.Context | None, exc: BaseException, message: str) -> None:
    """Print ``Error: message`` on standard error, after the traceback in verbose mode."""
    if is_verbose(ctx):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    typer.echo(f"Error: {message}", err=True)


@contextlib.contextmanager
def reported_errors(
    ctx: typer.Context | None, codes: Sequence[tuple[type[BaseException], int]] = ()
) -> Iterator[None]:
    """Report the failures of a command's block and exit instead of a traceback.

    Usage errors (``typer.BadParameter`` and Click's other exceptions) and
    exits pass through, so Click prints them with exit status 2. Database,
    migration and file errors print ``Error: <message>`` on standard error
    (the traceback first in verbose mode, see `is_verbose`) and exit with
    status 1, or with the status ``codes`` gives for the first class the error
    is an instance of. Other exceptions are bugs and propagate.

    Parameters:
        ctx: the command's context.
        codes: ``(error class, exit status)`` pairs checked first.
    """
    try:
        yield
    except expected_errors() as exc:
        code = next((c for cls, c in codes if isinstance(exc, cls)), 1)
        report(ctx, exc, describe_error(exc))
        raise typer.Exit(code) from exc
