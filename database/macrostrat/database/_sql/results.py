"""Result objects of the SQL runner, and the errors it raises for failed statements.

`QueryResult` is one statement's result: rows are kept as the driver returned
them and turned into SQLAlchemy ``Row`` objects only when asked for, through an
``IteratorResult``, so the usual ``scalar()``, ``first()``, ``one()``,
``mappings()``, ``row.name``… work.  `SQLResults` is the list ``run_sql``
returns: one `QueryResult` per statement that ran and succeeded, plus
``outcomes``, one `StatementOutcome` per statement whatever happened to it.

`statement_error` wraps a driver error into an exception that is both a
`macrostrat.database.errors.StatementError` (with the statement's index, file,
line and text) and the SQLAlchemy error class SQLAlchemy itself would have
raised (``ProgrammingError``, ``IntegrityError``…), with the driver's error
(psycopg's, or ``sqlite3``'s) as ``orig`` and ``__cause__``.

(Slightly over 400 lines: the result objects and `statement_error`, which
builds the errors those results stand in for.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import psycopg
import sqlalchemy.exc as sa_exc
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import ResourceClosedError

from .. import errors

__all__ = [
    "OutcomeStatus",
    "QueryResult",
    "SQLResults",
    "StatementOutcome",
    "describe",
    "excerpt",
    "statement_error",
]

OutcomeStatus = Literal[
    "committed", "executed", "skipped", "failed", "rolled_back", "unknown"
]
"""``committed``: its effect is committed; ``executed``: it ran inside a
transaction that is not ours to commit (the caller's, or one the SQL opened
with ``BEGIN``); ``skipped``: not run (by a hook, or a psql meta-command);
``failed``: it raised an error (undone); ``rolled_back``: it ran, but its
transaction was rolled back later; ``unknown``: the connection was lost while
it (or its COMMIT) was in flight, so only the server knows whether it was
committed."""

_EXCERPT_LINES = 5
_EXCERPT_WIDTH = 160


def describe(index: int | None, source: str | None, line: int | None) -> str:
    """Name a statement for messages: ``statement 3 (schema.sql, line 12)``.

    ``index`` is 0-based; the message counts from 1.
    """
    where = ", ".join(
        part for part in (source, f"line {line}" if line is not None else None) if part
    )
    name = "statement" if index is None else f"statement {index + 1}"
    return f"{name} ({where})" if where else name


def excerpt(text: str, indent: str = "  ") -> str:
    """The first lines of a statement, indented, long lines cut."""
    lines = text.splitlines() or [""]
    shown = [
        line if len(line) <= _EXCERPT_WIDTH else line[: _EXCERPT_WIDTH - 1] + "…"
        for line in lines[:_EXCERPT_LINES]
    ]
    if len(lines) > _EXCERPT_LINES:
        shown.append("…")
    return "\n".join(indent + line for line in shown)


class QueryResult:
    """The result of one statement, with the SQLAlchemy ``Result`` methods callers use.

    Rows are fetched from the server when the statement runs; they become
    SQLAlchemy ``Row`` objects (``row.name``, ``row[0]``, ``row._mapping``)
    only when read.  Like a SQLAlchemy result, the rows can be consumed once.
    A statement that returns no rows (``INSERT`` without ``RETURNING``, DDL)
    raises ``ResourceClosedError`` when rows are asked for, as SQLAlchemy does.

    Attributes:
        statusmessage: the server's command tag, e.g. ``"INSERT 0 1"``.
        rowcount: rows affected or returned (-1 when unknown).
        copy_data: the data a ``COPY … TO STDOUT`` produced, else None.
    """

    __slots__ = ("_keys", "_result", "_rows", "copy_data", "rowcount", "statusmessage")

    def __init__(
        self,
        statusmessage: str | None,
        rowcount: int = -1,
        keys: Sequence[str] | None = None,
        rows: list[tuple[Any, ...]] | None = None,
        copy_data: bytes | None = None,
    ) -> None:
        self.statusmessage = statusmessage
        self.rowcount = rowcount
        self._keys = keys
        self._rows = rows
        self._result: IteratorResult[Any] | None = None
        self.copy_data = copy_data

    def __repr__(self) -> str:
        return f"<QueryResult {self.statusmessage or ''}>"

    @property
    def returns_rows(self) -> bool:
        """True when the statement returned rows (possibly zero of them)."""
        return self._keys is not None

    def _sa(self) -> IteratorResult[Any]:
        """The SQLAlchemy result over the rows, built on first use."""
        if self._result is None:
            if self._keys is None:
                raise ResourceClosedError(
                    "This result object does not return rows. "
                    "It has been closed automatically."
                )
            self._result = IteratorResult(
                SimpleResultMetaData(self._keys), iter(self._rows or ())
            )
            self._rows = None
        return self._result

    def keys(self) -> Any:
        """The column names (empty for a statement that returns no rows)."""
        if self._keys is None:
            return IteratorResult(SimpleResultMetaData([]), iter(())).keys()
        return self._sa().keys()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._sa())

    def all(self) -> Sequence[Any]:
        """Every remaining row."""
        return self._sa().all()

    fetchall = all

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self._sa().fetchone()

    def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        """Up to ``size`` more rows."""
        return self._sa().fetchmany(size)

    def first(self) -> Any:
        """The first row or None; the rest is discarded."""
        return self._sa().first()

    def one(self) -> Any:
        """The only row; raise if there are none or several."""
        return self._sa().one()

    def one_or_none(self) -> Any:
        """The only row or None; raise if there are several."""
        return self._sa().one_or_none()

    def scalar(self) -> Any:
        """The first column of the first row, or None; the rest is discarded."""
        return self._sa().scalar()

    def scalar_one(self) -> Any:
        """The first column of the only row; raise if not exactly one row."""
        return self._sa().scalar_one()

    def scalar_one_or_none(self) -> Any:
        """The first column of the only row, or None; raise if several rows."""
        return self._sa().scalar_one_or_none()

    def scalars(self, index: int | str = 0) -> Any:
        """A ``ScalarResult`` of one column (the first by default)."""
        return self._sa().scalars(index)

    def mappings(self) -> Any:
        """A ``MappingResult``: rows as read-only dicts."""
        return self._sa().mappings()

    def columns(self, *cols: int | str) -> Any:
        """A result restricted to some columns."""
        return self._sa().columns(*cols)

    def tuples(self) -> Any:
        """The result typed as tuples (the same object in practice)."""
        return self._sa().tuples()

    def close(self) -> None:
        """Discard any remaining rows."""
        self._rows = None
        if self._result is not None:
            self._result.close()


class StatementOutcome:
    """What happened to one statement of a run.

    Attributes:
        index: the statement's position in the run (0-based, across sources).
        source: the file it came from, or None.
        line: its first line in that file or text (1-based).
        statement: its text as run (``{name}`` values rendered).
        status: see `OutcomeStatus`.
        result: its `QueryResult` when it ran, else None.
        error: the `StatementError` when it failed, else None.
        label: the hook's label for it, if any.
        recovered: it failed, and ``on_error`` ran replacement statements.
    """

    __slots__ = (
        "error",
        "index",
        "label",
        "line",
        "recovered",
        "result",
        "source",
        "statement",
        "status",
    )

    def __init__(
        self,
        index: int,
        source: str | None,
        line: int | None,
        statement: str,
        status: OutcomeStatus,
        result: QueryResult | None = None,
        error: BaseException | None = None,
        label: str | None = None,
    ) -> None:
        self.index = index
        self.source = source
        self.line = line
        self.statement = statement
        self.status: OutcomeStatus = status
        self.result = result
        self.error = error
        self.label = label
        self.recovered = False

    def __repr__(self) -> str:
        return f"<StatementOutcome {self.describe()} {self.status}>"

    def describe(self) -> str:
        """``statement 3 (schema.sql, line 12)``."""
        return describe(self.index, self.source, self.line)


class SQLResults(list[QueryResult]):
    """The list ``run_sql`` returns: the results of the statements that succeeded.

    As upstream, one `QueryResult` per statement that ran and did not fail
    (skipped and failed statements have none).  ``outcomes`` has one
    `StatementOutcome` for every statement, in order (built on first access).
    """

    __slots__ = ("_make_outcomes", "_outcomes")

    def __init__(
        self,
        results: Sequence[QueryResult] = (),
        outcomes: Callable[[], list[StatementOutcome]] | None = None,
    ) -> None:
        super().__init__(results)
        self._make_outcomes = outcomes
        self._outcomes: list[StatementOutcome] | None = None

    @property
    def outcomes(self) -> list[StatementOutcome]:
        """What happened to every statement of the run, in order."""
        if self._outcomes is None:
            make = self._make_outcomes
            self._outcomes = make() if make is not None else []
        return self._outcomes

    @property
    def failed(self) -> list[StatementOutcome]:
        """The outcomes of the statements that failed."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def errors(self) -> list[BaseException]:
        """The errors of the statements that failed, in order."""
        return [o.error for o in self.outcomes if o.error is not None]


_COMBINED: dict[type[BaseException], type[errors.ExecutionError]] = {
    sa_exc.StatementError: errors.ExecutionError,
    sa_exc.DBAPIError: errors.DBAPIError,
    sa_exc.InterfaceError: errors.InterfaceError,
    sa_exc.DatabaseError: errors.DatabaseError,
    sa_exc.DataError: errors.DataError,
    sa_exc.OperationalError: errors.OperationalError,
    sa_exc.IntegrityError: errors.IntegrityError,
    sa_exc.InternalError: errors.InternalError,
    sa_exc.ProgrammingError: errors.ProgrammingError,
    sa_exc.NotSupportedError: errors.NotSupportedError,
}
"""Our error class for each SQLAlchemy error class `statement_error` can meet."""


def _combined(sa_cls: type[BaseException]) -> type[errors.ExecutionError]:
    """Our error class for the SQLAlchemy error class ``sa_cls``.

    The class of its nearest ancestor in `_COMBINED` (a subclass SQLAlchemy
    may add gets its parent's), else `ExecutionError`.
    """
    for klass in sa_cls.__mro__:
        found = _COMBINED.get(klass)
        if found is not None:
            return found
    return errors.ExecutionError


def _primary(orig: BaseException) -> str:
    """The server's message with its DETAIL and HINT, or ``str(orig)``."""
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        return str(orig).strip()
    parts = [primary]
    for label, attr in (("DETAIL", "message_detail"), ("HINT", "message_hint")):
        value = getattr(diag, attr, None)
        if value:
            parts.append(f"{label}: {value}")
    return "\n  ".join(parts)


def error_line(
    orig: BaseException, text: str, line: int | None, offset: int
) -> int | None:
    """The line of the error position the server gave, or None.

    ``offset`` is where ``text`` starts in the query that was sent.
    """
    diag = getattr(orig, "diag", None)
    position = getattr(diag, "statement_position", None) if diag else None
    if not position or line is None:
        return None
    try:
        at = int(position) - 1 - offset
    except ValueError:
        return None
    if not 0 <= at <= len(text):
        return None
    return line + text.count("\n", 0, at)


def statement_error(
    orig: BaseException,
    *,
    index: int | None,
    source: str | None,
    line: int | None,
    text: str,
    params: Any = None,
    note: str = "",
    at_line: int | None = None,
    dbapi_base: type[Exception] = psycopg.Error,
) -> BaseException:
    """Wrap a driver error raised by one statement (see the module docstring).

    The class is the one of `macrostrat.database.errors` named like the class
    ``sqlalchemy.exc.DBAPIError.instance`` picks for ``orig`` (for example
    `~macrostrat.database.errors.IntegrityError`, both our `StatementError`
    and ``sqlalchemy.exc.IntegrityError``), with ``orig`` as ``.orig`` and
    ``__cause__``.

    Parameters:
        orig: the driver error (other exceptions give an `ExecutionError`,
            also SQLAlchemy's ``StatementError``; ``KeyboardInterrupt`` and
            the like, and SQLAlchemy's ``DontWrapMixin`` errors, are returned
            unchanged).
        index, source, line, text: the statement.
        params: its parameters (kept as ``.params``, as SQLAlchemy does).
        note: added after ``failed`` in the message, e.g. ``" in a batch"``.
        at_line: the line of the error position, when known.
        dbapi_base: the driver's base error class (``sqlite3.Error`` for
            SQLite), as SQLAlchemy's ``dbapi_base_err``: errors of the
            driver's ``IntegrityError``, ``OperationalError``… classes get
            SQLAlchemy's class of that name.
    """
    sa_err = sa_exc.DBAPIError.instance(text, params, orig, dbapi_base)
    if not isinstance(sa_err, sa_exc.StatementError) or isinstance(
        sa_err, errors.StatementError
    ):
        return sa_err  # KeyboardInterrupt, SystemExit, DontWrapMixin: unchanged
    where = describe(index, source, line)
    if at_line is not None and at_line != line:
        note = f"{note} at line {at_line}"
    return _combined(type(sa_err))(
        f"{where} failed{note}: {_primary(orig)}\n{excerpt(text)}",
        orig=orig,
        statement=text,
        params=params,
        index=index,
        source=source,
        line=line,
    )
