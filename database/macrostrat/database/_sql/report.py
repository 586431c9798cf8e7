"""Last stage of the SQL data path: what the runner prints and logs.

Nothing is printed unless asked for (`OutputMode.NONE`, the default); errors
that do not raise are always logged at WARNING, so they are never silent.
`OutputMode.SUMMARY` prints one line per statement, `ALL` each statement's
whole text, `ERRORS` only the statements that failed.  Lines are coloured
(ANSI) only on a terminal, and ``NO_COLOR`` turns colours off.  On a terminal
a Rich progress bar follows long runs.
"""

from __future__ import annotations

import logging
import os
import sys
from enum import Enum
from typing import Any, TextIO

from .kinds import skip_trivia

__all__ = [
    "OutputMode",
    "Reporter",
    "echo",
    "expected_error",
    "pretty_print",
    "print_error",
    "summarize_statement",
]

log = logging.getLogger("macrostrat.database.query")

_STYLES = {
    "dim": "\x1b[2m",
    "red": "\x1b[31m",
    "strike": "\x1b[9m",
    "cyan": "\x1b[36m",
    "bold": "\x1b[1m",
}
_RESET = "\x1b[0m"
_SUMMARY_WIDTH = 120
_PROGRESS_MIN_STATEMENTS = 200
# SQLSTATEs of "already exists" errors, printed dimmed: expected when
# re-running a schema file.
_DUPLICATES = frozenset(
    {"42701", "42P03", "42P04", "42723", "42P05", "42P06", "42P07", "42712", "42710"}
)


class OutputMode(Enum):
    """What `run_sql` prints: nothing, failed statements, one line each, or everything."""

    NONE = "none"
    ERRORS = "errors"
    SUMMARY = "summary"
    ALL = "all"


def _colour(file: TextIO) -> bool:
    """Whether to print ANSI colours to ``file`` (a terminal, NO_COLOR unset)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


def _styled(text: str, styles: tuple[str, ...], colour: bool) -> str:
    """``text`` wrapped in the ANSI codes of ``styles`` when colouring."""
    if not colour or not styles:
        return text
    return "".join(_STYLES[s] for s in styles) + text + _RESET


def echo(
    text: str, *, style: str | tuple[str, ...] = (), file: TextIO | None = None
) -> None:
    """Print one line to ``file`` (default: standard error), styled on a terminal."""
    out = file if file is not None else sys.stderr
    styles = (style,) if isinstance(style, str) else style
    out.write(_styled(text, styles, _colour(out)) + "\n")


def summarize_statement(sql: str) -> str:
    """One line naming a statement: its first line, without comments or ``;``.

    A trailing ``(`` is dropped (``CREATE TABLE t (`` gives ``CREATE TABLE t``),
    runs of blanks become one, and long lines are cut at 120 characters.
    (Upstream also deleted every ``" AS"``, which mangled the text.)
    """
    try:
        start = skip_trivia(sql, 0)
    except ValueError:
        start = 0
    first = sql[start:].lstrip().split("\n", 1)[0]
    first = " ".join(first.split()).rstrip(";").rstrip()
    if first.endswith("("):
        first = first[:-1].rstrip()
    if len(first) > _SUMMARY_WIDTH:
        first = first[: _SUMMARY_WIDTH - 1] + "…"
    return first


def pretty_print(sql: str, summarize: bool = True, **kwargs: Any) -> None:
    """Print a statement (summarised by default), dimmed on a terminal.

    Parameters:
        sql: the statement.
        summarize: print `summarize_statement` of it rather than all of it.
        **kwargs: ``file`` (default standard error), and the click-style flags
            ``dim``, ``bold``, ``fg="red"|"cyan"`` upstream accepted.
    """
    styles = tuple(
        name
        for name, wanted in (
            ("dim", kwargs.get("dim", True)),
            ("bold", kwargs.get("bold", False)),
        )
        if wanted
    )
    if kwargs.get("fg") in _STYLES:
        styles += (kwargs["fg"],)
    echo(
        summarize_statement(sql) if summarize else sql,
        style=styles,
        file=kwargs.get("file"),
    )


def expected_error(err: BaseException) -> bool:
    """True for "already exists" errors (printed dimmed, not in red)."""
    orig = getattr(err, "orig", None)
    state = getattr(orig, "sqlstate", None)
    if state is not None:
        return state in _DUPLICATES
    return "already exists" in str(orig if orig is not None else err)


def _message(err: BaseException) -> str:
    """The error's message: the server's primary message when there is one."""
    orig = getattr(err, "orig", None)
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return str(primary or orig or err).strip()


def print_error(sql_text: str | None, err: BaseException, **kwargs: Any) -> None:
    """Print a failed statement and its error (red, or dimmed if "already exists").

    Parameters:
        sql_text: the statement line to print first (None: only the error).
        err: the error; ``err.orig``'s message is used when there is one.
        **kwargs: ``file`` (default: standard error).
    """
    file = kwargs.get("file")
    style = ("dim",) if expected_error(err) else ("red",)
    if sql_text:
        echo(sql_text, style=style, file=file)
    echo("  " + _message(err).replace("\n", "\n  "), style=style, file=file)


class Reporter:
    """Prints statement lines, errors and progress for one run.

    Parameters:
        mode: the `OutputMode`.
        file: where to print (default: ``sys.stderr`` at construction time).
        print_skipped: print skipped statements (dimmed, struck through).
        total: how many statements the run has (for the progress bar).
    """

    def __init__(
        self,
        mode: OutputMode,
        file: TextIO | None,
        *,
        print_skipped: bool = True,
        total: int = 0,
    ) -> None:
        self.mode = mode
        self.file: TextIO = file if file is not None else sys.stderr
        self.print_skipped = print_skipped and mode in (
            OutputMode.SUMMARY,
            OutputMode.ALL,
        )
        self.prints_success = mode in (OutputMode.SUMMARY, OutputMode.ALL)
        self.prints_errors = mode is not OutputMode.NONE
        self._colour = _colour(self.file) if self.prints_errors else False
        self._progress: Any = None
        self._task: Any = None
        if self.prints_errors and total >= _PROGRESS_MIN_STATEMENTS and self._colour:
            self.start_progress(total)

    def start_progress(self, total: int) -> None:
        """Show a progress bar of ``total`` statements (only on a terminal)."""
        if self._progress is not None or not self._colour:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(file=self.file, highlight=False)
        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("SQL", total=total)
        self._progress.start()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more statements as done."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def _line(self, text: str, styles: tuple[str, ...]) -> None:
        """Print one line (through the progress bar's console when it is shown)."""
        if self._progress is not None:
            from rich.text import Text

            style = " ".join("strike" if s == "strike" else s for s in styles)
            self._progress.console.print(Text(text, style=style))
            return
        self.file.write(_styled(text, styles, self._colour) + "\n")

    def _text(self, statement: str, label: str | None) -> str:
        """The text printed for a statement in this mode."""
        if label is not None:
            return label
        if self.mode is OutputMode.ALL:
            return statement
        return summarize_statement(statement)

    def source(self, origin: str) -> None:
        """Announce the file whose statements follow."""
        if self.prints_errors:
            self._line(origin, ("cyan", "bold"))

    def ok(self, statement: str, label: str | None = None) -> None:
        """A statement succeeded."""
        if self.prints_success:
            self._line(self._text(statement, label), ("dim",))

    def skipped(self, statement: str, label: str | None = None) -> None:
        """A statement was skipped."""
        if self.print_skipped:
            self._line(self._text(statement, label), ("dim", "strike"))

    def failed(
        self,
        statement: str,
        label: str | None,
        err: BaseException,
        *,
        raising: bool,
        recovered: bool = False,
    ) -> None:
        """A statement failed; log it (unless it is raised) and print it if asked."""
        if not raising:
            log.warning("%s%s", err, " (recovered by on_error)" if recovered else "")
        if not self.prints_errors:
            return
        style = ("dim",) if recovered or expected_error(err) else ("red",)
        self._line(self._text(statement, label), style)
        self._line("  " + _message(err).replace("\n", "\n  "), style)

    def close(self) -> None:
        """Stop the progress bar, if any."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self.prints_errors:
            try:
                self.file.flush()
            except (ValueError, OSError):
                pass
