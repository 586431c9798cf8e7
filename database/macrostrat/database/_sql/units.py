"""Statements as the runner tracks them (`Unit`), and how they are made.

`build_units` turns source texts into units: split (`lexer`, or another
`Splitter` such as SQLite's), classified (`kinds`), given their parameters
(`params.distribute`) and checked against the run's mode before anything
runs.  `Binder` fits each unit's parameters (`params.bind`).
`directive_units` turns the directives a hook returned into units.  A unit
also records its outcome, turned into a public `StatementOutcome` only when
asked for (a run of 20,000 statements should not build 20,000 extra objects
it may never need).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import sql as pgsql

from ..errors import StatementNotAllowedError
from .kinds import StatementClass, changes_session, classify
from .lexer import Statement, split_statements
from .options import StatementContext, StatementDirective
from .params import bind, distribute, needs_binding
from .results import OutcomeStatus, QueryResult, StatementOutcome, describe
from .source import SQLSource, read_sources

__all__ = [
    "Binder",
    "Splitter",
    "Unit",
    "build_units",
    "check_unit",
    "classify_statement",
    "directive_units",
    "statement_not_allowed",
]

_SKIPPED_META = ("\\restrict", "\\unrestrict", "\\set")


class Splitter(Protocol):
    """Splits a source text into statements.

    `lexer.split_statements` (PostgreSQL's rules) or `sqlite_text.split_sqlite`.
    """

    def __call__(
        self, text: str, /, *, origin: str | None = None
    ) -> list[Statement]: ...


@dataclass(slots=True, eq=False)
class Unit:
    """One statement to run, what the runner learns about it, and its outcome.

    ``sql`` is None until the statement is bound; then ``sql`` is the text to
    send, ``send`` the driver parameters (None: none), ``many`` whether
    ``send`` is a list of parameter sets, and ``display`` the text shown.
    ``single``: it must be sent alone; ``ends``: it may change session
    settings, so it is the last statement of its message (`kinds.changes_session`).
    """

    index: int
    stmt: Statement
    cls: StatementClass
    params: Any
    sql: str | None = None
    send: Any = None
    many: bool = False
    display: str | None = None
    label: str | None = None
    skip: bool = False
    recovery: bool = False
    transformed: bool = False
    single: bool = False
    counted: bool = True
    ends: bool = False
    status: OutcomeStatus | None = None
    result: QueryResult | None = None
    error: BaseException | None = None
    recovered: bool = False

    @property
    def origin(self) -> str | None:
        """The file the statement came from."""
        return self.stmt.origin

    @property
    def line(self) -> int:
        """The statement's first line."""
        return self.stmt.line

    @property
    def shown(self) -> str:
        """The text printed and reported for the statement."""
        return self.display if self.display is not None else self.stmt.text

    @property
    def plain(self) -> bool:
        """Bound, parameter-less ordinary SQL: may go in a batch."""
        return (
            self.cls == "plain"
            and self.stmt.kind == "sql"
            and self.sql is not None
            and self.send is None
        )

    def describe(self) -> str:
        """``statement 3 (schema.sql, line 12)``."""
        return describe(self.index, self.stmt.origin, self.stmt.line)

    def context(self) -> StatementContext:
        """The statement as hooks see it."""
        return StatementContext(
            self.index, self.stmt.text, self.params, self.shown, self.origin, self.line
        )

    def outcome(self) -> StatementOutcome:
        """The public record of what happened to the statement."""
        outcome = StatementOutcome(
            self.index,
            self.origin,
            self.line,
            self.shown,
            self.status or "skipped",
            self.result,
            self.error,
            self.label,
        )
        outcome.recovered = self.recovered
        return outcome


def classify_statement(stmt: Statement) -> StatementClass:
    """Return how the executor must run ``stmt`` (see `kinds.classify`).

    SQL is classified by its leading keywords; ``COPY … FROM stdin`` with its
    data and psql meta-commands are ``alone``.
    """
    return classify(stmt.text) if stmt.kind == "sql" else "alone"


def check_unit(unit: Unit, *, joined: bool, atomic: bool) -> None:
    """Refuse a statement that cannot run in this mode (before anything runs).

    Raises:
        StatementNotAllowedError: an unsupported psql meta-command; or, inside
            a transaction (``joined`` or ``atomic``), a statement that cannot
            run in a transaction block or that would end the transaction.
    """
    message = None
    if unit.stmt.kind == "meta":
        name = unit.stmt.text.split(None, 1)[0]
        if name not in _SKIPPED_META:
            message = (
                f"psql meta-command {name} is not supported "
                "(only \\restrict, \\unrestrict and \\set are skipped)"
            )
    elif joined or atomic:
        where = (
            "with atomic=True"
            if atomic and not joined
            else "inside the caller's transaction"
        )
        if unit.cls == "no_tx":
            message = f"cannot run inside a transaction block ({where})"
        elif unit.cls == "end":
            message = f"would end the transaction ({where})"
    if message is not None:
        raise statement_not_allowed(unit, message)


def statement_not_allowed(unit: Unit, message: str) -> StatementNotAllowedError:
    """The error for a statement refused before anything runs.

    Parameters:
        unit: the statement.
        message: why it is refused; the statement's first line follows it.
    """
    return StatementNotAllowedError(
        f"{unit.describe()}: {message}\n  {unit.stmt.text.splitlines()[0]}",
        index=unit.index,
        source=unit.origin,
        line=unit.line,
        statement=unit.stmt.text,
    )


class Binder:
    """Binds units' parameters (see `params.bind`).

    Parameters:
        render: renders psycopg ``Composable`` values.
        has_server_binds: the forced placeholder style, or None.
    """

    def __init__(
        self, render: Callable[[pgsql.Composable], str], has_server_binds: bool | None
    ) -> None:
        self.render = render
        self.has_server_binds = has_server_binds

    def __call__(self, unit: Unit) -> None:
        """Bind ``unit`` with its own parameters (sets ``sql``, ``send``...)."""
        text = unit.stmt.text
        if not needs_binding(text):
            unit.sql = text
            return
        bound = bind(
            text,
            unit.params,
            where=unit,
            render=self.render,
            has_server_binds=self.has_server_binds,
        )
        unit.sql, unit.send, unit.many = bound.text, bound.params, bound.many
        unit.display = bound.display


def build_units(
    sources: Sequence[SQLSource],
    params: Any,
    *,
    per_source: bool,
    ensure_single: bool,
    check: Callable[[Unit], None],
    split: Splitter = split_statements,
) -> list[Unit]:
    """Split ``sources`` and give each statement its parameters.

    Parameters:
        sources: the source texts.
        params: the run's parameters.
        per_source: distribute ``params`` per source, not over the whole run.
        ensure_single: raise if there is more than one statement.
        check: called on each unit (see `check_unit`).
        split: splits a source text into statements.

    Raises:
        ValueError: more than one statement with ``ensure_single``.
        SQLSyntaxError: a source cannot be split.
    """
    pieces = [split(s.text, origin=s.origin) for s in sources]
    if ensure_single:
        real = sum(st.kind != "meta" for stmts in pieces for st in stmts)
        if real > 1:
            raise ValueError(
                "Multiple queries passed when only one was expected "
                f"(got {real} statements)"
            )
    if per_source:
        per = [distribute(params, len(stmts)) for stmts in pieces]
    else:
        flat = iter(distribute(params, sum(len(stmts) for stmts in pieces)))
        per = [[next(flat) for _ in stmts] for stmts in pieces]
    units: list[Unit] = []
    for source, stmts, values in zip(sources, pieces, per, strict=True):
        defaults = source.defaults
        for stmt, p in zip(stmts, values, strict=True):
            if defaults and (p is None or isinstance(p, Mapping)):
                p = {**defaults, **(p or {})}
            unit = Unit(len(units), stmt, classify_statement(stmt), p)
            unit.ends = stmt.kind == "sql" and changes_session(stmt.text)
            check(unit)
            units.append(unit)
    return units


def directive_units(
    unit: Unit,
    directives: Sequence[StatementDirective],
    *,
    recovery: bool,
    render: Callable[[pgsql.Composable], str],
    check: Callable[[Unit], None],
    split: Splitter = split_statements,
) -> list[Unit]:
    """Units for the directives a hook returned in place of ``unit``.

    A directive without a query stands for the statement itself; without
    parameters it keeps the statement's.  Every new unit is reported at the
    statement's index, file and line, and runs on its own (never batched).

    Parameters:
        unit: the statement the hook was called for.
        directives: what the hook returned.
        recovery: the hook was ``on_error`` (a failure of these units is
            not handed to it again).
        render: renders psycopg ``Composable`` values of a directive's query.
        check: called on each new unit (see `check_unit`).
        split: splits a directive's query into statements.
    """
    units: list[Unit] = []
    for directive in directives:
        query = directive.query if directive.query is not None else unit.stmt.text
        params = directive.params if directive.params is not None else unit.params
        if isinstance(query, str) and query == unit.stmt.text:
            stmts = [unit.stmt]
        else:
            stmts = [
                dataclasses.replace(st, origin=unit.origin, line=unit.line)
                for source in read_sources(
                    query, interpret_as_file=False, render=render
                )
                for st in split(source.text)
            ]
        for stmt in stmts:
            new = Unit(
                unit.index,
                stmt,
                classify_statement(stmt),
                params,
                label=directive.label,
            )
            new.ends = stmt.kind == "sql" and changes_session(stmt.text)
            new.skip, new.recovery, new.transformed = directive.skip, recovery, True
            new.single, new.counted = True, False
            check(new)
            units.append(new)
    return units
