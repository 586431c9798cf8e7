"""Options of ``run_sql`` and friends, and the types their hooks use.

`parse_options` checks the keyword options (an unknown one raises
`InvalidOptionError` naming the closest known option), applies the deprecated
ones (``stop_on_error``, ``statement_filter``) with a ``DeprecationWarning``,
and returns a `RunOptions`.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from ..errors import InvalidOptionError
from .report import OutputMode

__all__ = [
    "OPTION_NAMES",
    "RecoveryFn",
    "RunOptions",
    "StatementContext",
    "StatementDirective",
    "StatementResult",
    "TransformFn",
    "parse_options",
]


@dataclass
class StatementDirective:
    """What to run in place of a statement (returned by the hooks).

    Attributes:
        query: the SQL to run (a string, psycopg ``sql`` object, SQLAlchemy
            ``text()``; None: the statement itself).
        params: its parameters (None: the statement's own parameters).
        skip: do not run it (it is reported as skipped).
        label: the text printed for it instead of the SQL.
    """

    query: Any = None
    params: Any = None
    skip: bool = False
    label: str | None = None

    @classmethod
    def skipped(cls, query: Any = None, params: Any = None) -> StatementDirective:
        """A directive that skips ``query``."""
        return cls(query=query, params=params, skip=True)


StatementResult = StatementDirective
"""Deprecated alias of `StatementDirective` (kept from upstream)."""


@dataclass
class StatementContext:
    """A statement as the hooks see it.

    Attributes:
        index: its position in the run (0-based).
        query: its text as split from the source.
        params: its parameters.
        sql_text: its text with ``{name}`` values rendered.
        source: the file it came from, or None.
        line: its first line there (1-based).
    """

    index: int
    query: Any
    params: Any
    sql_text: str
    source: str | None = None
    line: int | None = None


TransformFn = Callable[[StatementContext], "list[StatementDirective] | None"]
"""``transform_statement(ctx)``: None runs the statement as is; a list of
directives runs those instead (an empty list drops it)."""

RecoveryFn = Callable[
    [StatementContext, BaseException, Any], "list[StatementDirective] | None"
]
"""``on_error(ctx, err, connectable)``: called once after a statement failed
and was undone (its own transaction rolled back; inside the caller's
transaction or an atomic run, rolled back to its savepoint; inside the SQL's
own ``BEGIN`` block the block is aborted, as under psql); a list of
directives is run instead and the error is not raised; None lets the error
through."""


@dataclass
class RunOptions:
    """The checked options of one run (see ``query.run_sql`` for their meaning)."""

    raise_errors: bool = False
    transform_statement: TransformFn | None = None
    on_error: RecoveryFn | None = None
    ensure_single_query: bool = False
    output_mode: OutputMode = OutputMode.NONE
    output_file: TextIO | None = None
    has_server_binds: bool | None = None
    interpret_as_file: bool | None = None
    use_transaction: bool = True
    print_skipped: bool = True
    yield_results: bool = False
    atomic: bool = False


OPTION_NAMES = frozenset(
    {
        "raise_errors",
        "stop_on_error",
        "statement_filter",
        "transform_statement",
        "on_error",
        "ensure_single_query",
        "output_mode",
        "output_file",
        "has_server_binds",
        "interpret_as_file",
        "use_transaction",
        "print_skipped",
        "yield_results",
        "atomic",
    }
)


def _filter_transform(
    statement_filter: Callable[[str, Any], bool],
) -> TransformFn:
    """Wrap a deprecated statement_filter as a transform_statement."""

    def transform(ctx: StatementContext) -> list[StatementDirective] | None:
        if statement_filter(ctx.sql_text, ctx.params):
            return None
        return [StatementDirective.skipped(ctx.query, ctx.params)]

    return transform


def parse_options(
    options: dict[str, Any],
    *,
    function: str = "run_sql",
    raise_errors: bool = False,
    allowed: frozenset[str] = OPTION_NAMES,
) -> RunOptions:
    """Check ``options`` and return them as `RunOptions`.

    Parameters:
        options: the keyword options given.
        function: the public function's name, for messages.
        raise_errors: the default of ``raise_errors``.
        allowed: the option names this function accepts.

    Raises:
        InvalidOptionError: an unknown option, or options that contradict
            each other (``atomic=True`` with ``raise_errors=False`` or
            ``use_transaction=False``).
        ValueError: ``statement_filter`` together with ``transform_statement``,
            or an invalid ``output_mode``.
    """
    unknown = sorted(set(options) - allowed)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hints.append(
                f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        raise InvalidOptionError(
            f"{function}() got unknown option(s): {', '.join(hints)}"
        )
    opts = dict(options)
    if "stop_on_error" in opts:
        warnings.warn(
            "stop_on_error is deprecated, use raise_errors",
            DeprecationWarning,
            stacklevel=4,
        )
        if opts.pop("stop_on_error"):
            opts["raise_errors"] = True
    statement_filter = opts.pop("statement_filter", None)
    if statement_filter is not None:
        warnings.warn(
            "statement_filter is deprecated, use transform_statement",
            DeprecationWarning,
            stacklevel=4,
        )
        if opts.get("transform_statement") is not None:
            raise ValueError(
                "Cannot specify both statement_filter and transform_statement"
            )
        opts["transform_statement"] = _filter_transform(statement_filter)
    mode = opts.pop("output_mode", None)
    if mode is None:
        # Quiet by default; an explicit output_file asks for the summary.
        mode = OutputMode.SUMMARY if opts.get("output_file") is not None else None
    opts.setdefault("raise_errors", raise_errors)
    result = RunOptions(**opts)
    result.output_mode = OutputMode(mode) if mode is not None else OutputMode.NONE
    if result.atomic:
        if options.get("raise_errors") is False:
            raise InvalidOptionError(
                f"{function}(atomic=True) always raises; do not pass raise_errors=False"
            )
        if not result.use_transaction:
            raise InvalidOptionError(
                f"{function}(atomic=True) needs a transaction; "
                "do not pass use_transaction=False"
            )
        result.raise_errors = True
    return result
