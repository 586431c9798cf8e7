"""The SQL runner on SQLite (the standard ``sqlite3`` driver), as on PostgreSQL.

``run_sql``, ``run_query`` and ``run_fixtures`` hand a SQLite connectable
(`is_sqlite`: ``Database("sqlite://")``, ``sqlite:///path.db``, or an engine,
connection or session on one) to `SQLiteRun`, which gives it `runner.Run`'s
semantics: the same modes, outcomes, errors, hooks and output.

* own transactions (no transaction in progress): each statement commits on
  its own (``sqlite3`` in autocommit for the run: ``isolation_level`` None,
  and no ``BEGIN`` from `engine`'s hook).  The SQL's own ``BEGIN`` …
  ``COMMIT`` (or a ``SAVEPOINT`` opened outside a transaction, which SQLite
  makes one) is honoured; as in the ``sqlite3`` shell, a failed statement
  inside it undoes only itself and the block goes on.  A block left open at
  the end is rolled back.
* joined (the caller's transaction): each statement runs under a SAVEPOINT,
  so a failure undoes only itself; the caller's transaction is never ended.
* atomic: one transaction (a SAVEPOINT when joined); the first failure
  rolls everything back and is raised.

Statements are sent one at a time (``sqlite3`` runs one per call, and there
is no round trip to save), each under a savepoint whenever a transaction is
open, so that a failure (also one that ``INSERT OR FAIL`` or a failed row of
an ``executemany`` would leave half done) is undone exactly.  A list of
parameter sets outside a transaction runs as one transaction: all or none.
When SQLite itself rolls back the whole transaction after an error
(``INSERT OR ROLLBACK``, ``RAISE(ROLLBACK, …)``, disk full…), the statements
it undid are marked ``rolled_back``; inside the caller's transaction that
error is always raised.

Splitting: `lexer.split_statements` (PostgreSQL's rules, which SQLite's
strings, identifiers and comments follow), then consecutive pieces are merged
until `sqlite3.complete_statement` accepts them, which keeps a trigger body
(``CREATE TRIGGER … BEGIN s1; s2; END;``) whole.  As in the ``sqlite3``
shell, a ``CASE … END`` directly before a ``;`` inside a trigger body ends it
early: write ``(CASE … END);``.

Parameters (`SQLiteBinder`): ``:name`` with a mapping, ``?``/``?NNN`` with a
tuple or list of values, a list of mappings or tuples (``executemany``), and
``{name}`` with psycopg ``Identifier``/``Literal``/``SQL`` values spliced into
the text (`render`, in SQLite's syntax).  ``sqlite3`` binds the rest itself
(never inside string literals).  psycopg's ``%(name)s`` always, and ``%s``
when parameters are given to a statement without ``:name``/``?``, raise
`BindParameterError` (in SQLite ``%`` is the modulo operator).

Refused before anything runs (`StatementNotAllowedError`): ``COPY`` (with
``FROM stdin`` data or ``TO STDOUT``), psql meta-commands other than the
skipped ones, ``BEGIN`` or ``COMMIT``/``ROLLBACK`` inside a transaction,
``VACUUM`` inside one.  PostgreSQL-only SQL simply fails as SQLite's error.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
import re
import sqlite3
import uuid
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from psycopg import sql as pgsql
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from ..engine import SQLITE_NO_BEGIN
from ..errors import BindParameterError, StatementNotAllowedError
from .kinds import leading_words
from .lexer import Statement, split_statements
from .options import RunOptions, StatementDirective
from .params import (
    _escaped_colons,
    _literal_braces,
    _sort,
    distribute,
)
from .params_scan import find_placeholders, find_regions
from .report import Reporter
from .results import OutcomeStatus, QueryResult, StatementOutcome, statement_error
from .runner import _savepoint_name
from .source import SQLSource, read_sources
from .units import Unit, _classify, check_unit

__all__ = ["SQLiteBinder", "SQLiteRun", "is_sqlite", "render", "split_sqlite"]

log = logging.getLogger("macrostrat.database.query")

_SAVEPOINT = "_macrostrat_run_sql"
_ATOMIC = "_macrostrat_atomic"
_BARE = frozenset({"begin", "end", "savepoint", "release"})
"""Statement classes run without the runner's savepoint around them."""
_MARKS = re.compile(r"[:{%\\?]")
_QMARK = re.compile(r"\?(\d*)")
_END = re.compile(r"(?i)\bend\Z")
_FEW = 16
"""Pieces merged before only those ending in ``END`` are tried (`split_sqlite`)."""
_ERRORS = (sqlite3.Error, sqlite3.Warning)
"""What ``sqlite3`` raises for a statement (Python < 3.12 raises
``sqlite3.Warning`` for a text holding two statements)."""


# -- what is SQLite -----------------------------------------------------------


def is_sqlite(connectable: Any) -> bool:
    """Whether ``connectable`` (Engine, Connection, Session, Database) is SQLite."""
    if isinstance(connectable, scoped_session):
        connectable = connectable()
    if isinstance(connectable, (Engine, Connection)):
        return bool(connectable.dialect.name == "sqlite")
    if isinstance(connectable, Session):
        bind = connectable.bind
        if bind is None:
            try:
                bind = connectable.get_bind()
            except Exception:
                return False
        return bool(getattr(bind, "dialect", None) and bind.dialect.name == "sqlite")
    engine = getattr(connectable, "engine", None)
    return isinstance(engine, Engine) and engine.dialect.name == "sqlite"


# -- rendering psycopg objects in SQLite's syntax ------------------------------


def _number(text: str) -> str:
    """A number, a negative one with a leading blank (``5-{x}`` is no comment)."""
    return f" {text}" if text.startswith("-") else text


def _literal(value: Any) -> str:
    """``value`` as a SQLite literal.

    Raises:
        TypeError: a type SQLite has no literal for.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return _number(str(value))
    if isinstance(value, Decimal) and value.is_finite():
        return _number(str(value))
    if isinstance(value, (float, Decimal)):
        number = float(value)
        if math.isnan(number):
            return "NULL"  # what SQLite stores for NaN
        if math.isinf(number):
            return "1e999" if number > 0 else " -1e999"
        return _number(repr(number))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "X'" + bytes(value).hex().upper() + "'"
    if isinstance(value, datetime.datetime):
        return _literal(value.isoformat(" "))
    if isinstance(value, (datetime.date, datetime.time)):
        return _literal(value.isoformat())
    if isinstance(value, uuid.UUID):
        return _literal(str(value))
    raise TypeError(f"no SQLite literal for a {type(value).__name__}")


def render(comp: pgsql.Composable) -> str:
    """Render a psycopg ``Composable`` as SQLite SQL.

    ``SQL`` and ``Identifier`` render as psycopg renders them without a
    connection (``"schema"."table"`` is SQLite's syntax too); a ``Literal``
    in SQLite's syntax (psycopg's has PostgreSQL's ``E'…'`` strings and
    ``::date`` casts): numbers, ``'text'`` (quotes doubled), ``X'…'`` for
    bytes, ISO text for dates and times, NULL, 1/0 for booleans; a
    ``Placeholder`` as ``:name`` or ``?``.

    Raises:
        TypeError: a ``Literal`` of a type SQLite has no literal for.
    """
    if isinstance(comp, pgsql.Composed):
        return "".join(render(part) for part in comp)
    if isinstance(comp, pgsql.Literal):
        return _literal(getattr(comp, "_obj", None))
    if isinstance(comp, pgsql.Placeholder):
        name = getattr(comp, "_obj", "")
        return f":{name}" if name else "?"
    return comp.as_string(None)


# -- splitting --------------------------------------------------------------------


def split_sqlite(text: str, *, origin: str | None = None) -> list[Statement]:
    """Split ``text`` into statements, keeping trigger bodies whole.

    `lexer.split_statements` cuts at every top-level ``;``; a piece that
    SQLite does not see as a complete statement (`sqlite3.complete_statement`)
    is merged with the following ones until it is.  A piece that never
    becomes complete is left as it is (SQLite reports its error).

    Raises:
        SQLSyntaxError: the text cannot be split (unterminated literal…).
    """
    pieces = split_statements(text, origin=origin)
    out: list[Statement] = []
    i = 0
    while i < len(pieces):
        stmt = pieces[i]
        i += 1
        if stmt.kind != "sql" or sqlite3.complete_statement(stmt.text + ";"):
            out.append(stmt)
            continue
        j = i
        while j < len(pieces) and pieces[j].kind == "sql":
            last = pieces[j]
            j += 1
            if j - i > _FEW and _END.search(last.text) is None:
                continue  # a long trigger body can only end with END
            body = text[stmt.start : last.end]
            if sqlite3.complete_statement(body + ";"):
                stmt = dataclasses.replace(stmt, text=body, end=last.end)
                i = j
                break
        out.append(stmt)
    return out


# -- parameters -------------------------------------------------------------------


def _fail(unit: Unit, message: str, parameter: str | None = None) -> None:
    """Raise a BindParameterError naming the statement."""
    raise BindParameterError(
        f"{unit.describe()}: {message}",
        index=unit.index,
        source=unit.origin,
        line=unit.line,
        statement=unit.stmt.text,
        parameter=parameter,
    )


def _qmark_count(text: str, origin: str | None) -> int:
    """How many values the ``?``/``?NNN`` placeholders in ``text``'s SQL tokens take.

    As SQLite numbers them: ``?NNN`` is number NNN, a bare ``?`` the number
    after the largest so far.
    """
    if "?" not in text:
        return 0
    regions = find_regions(text, origin=origin)
    starts = [r.start for r in regions]
    largest = 0
    for m in _QMARK.finditer(text):
        i = bisect_right(starts, m.start()) - 1
        if i >= 0 and m.start() < regions[i].end:
            continue  # inside a string, identifier or comment
        largest = max(largest, int(m.group(1))) if m.group(1) else largest + 1
    return largest


class SQLiteBinder:
    """Fits each unit's parameters for ``sqlite3`` (see the module docstring).

    Sets the unit's ``sql`` (``{name}`` values spliced, ``\\:`` unescaped),
    ``send`` (what ``sqlite3`` binds: the plain values, or None), ``many``
    and ``display``.

    Raises:
        BindParameterError: a missing value, a wrong number of positional
            values, ``:name`` with ``?``, psycopg's ``%s``/``%(name)s``, a
            ``{name}`` whose value is not a ``Composable`` or cannot be
            rendered for SQLite.
    """

    def __call__(self, unit: Unit) -> None:
        text = unit.stmt.text
        if _MARKS.search(text) is None:
            unit.sql = text
            return
        origin = unit.origin
        placeholders = find_placeholders(text, origin=origin)
        given = _sort(unit.params) if unit.params is not None else None
        names = [ph.name for ph in placeholders if ph.kind == "colon"]
        qmarks = _qmark_count(text, origin)
        if any(ph.kind == "pyformat" for ph in placeholders):
            _fail(unit, "%(name)s is psycopg's placeholder, not SQLite's; write :name")
        if (
            given is not None
            and not names
            and not qmarks
            and any(ph.kind == "percent" for ph in placeholders)
        ):
            _fail(unit, "%s is psycopg's placeholder, not SQLite's; write ? or :name")
        if names and qmarks:
            _fail(unit, "mixes :name and ? placeholders")
        sql = self._splice(unit, text, placeholders, given)
        send: Any = None
        if names:
            send = self._named(unit, names, given)
        elif qmarks:
            send = self._positional(unit, qmarks, given)
        unit.sql, unit.send = sql, send
        unit.many = send is not None and given is not None and given.many
        unit.display = sql

    @staticmethod
    def _splice(unit: Unit, text: str, placeholders: Sequence[Any], given: Any) -> str:
        """``text`` with the ``{name}`` Composables rendered and ``\\:`` unescaped."""
        prebound = given.prebound if given is not None else {}
        edits: list[tuple[int, int, str]] = []
        try:
            for ph in placeholders:
                if ph.kind != "brace":
                    continue
                comp = prebound.get(ph.name)
                if comp is not None:
                    edits.append((ph.start, ph.end, render(comp)))
                elif (
                    given is not None
                    and given.named
                    and not given.many
                    and ph.name in given.values
                ):
                    _fail(
                        unit,
                        f"{{{ph.name}}} needs a psycopg Composable (Identifier, "
                        f"Literal, SQL...), got {type(given.values[ph.name]).__name__}",
                        ph.name,
                    )
            if prebound and "{" in text:
                edits.extend(
                    _literal_braces(
                        text, list(placeholders), prebound, None, render, unit
                    )
                )
        except TypeError as exc:
            _fail(unit, f"cannot render a value for SQLite: {exc}")
        if "\\:" in text:
            edits.extend((p, p + 1, "") for p in _escaped_colons(text))
        if not edits:
            return text
        edits.sort()
        out: list[str] = []
        pos = 0
        for start, end, piece in edits:
            out += (text[pos:start], piece)
            pos = end
        out.append(text[pos:])
        return "".join(out)

    @staticmethod
    def _named(unit: Unit, names: list[str | None], given: Any) -> Any:
        """The mapping (or mappings) for ``:name`` placeholders."""
        if given is None:
            _fail(unit, f"no value for parameter {names[0]!r}", names[0])
        if not given.named:
            _fail(unit, "has named placeholders but got positional parameters")
        for row in given.values if given.many else [given.values]:
            for name in names:
                if name not in row:
                    extra = ""
                    if name in given.prebound:
                        kind = type(given.prebound[name]).__name__
                        extra = f" (it is a {kind}: write {{{name}}} to splice it)"
                    _fail(unit, f"no value for parameter {name!r}{extra}", name)
        return given.values

    @staticmethod
    def _positional(unit: Unit, count: int, given: Any) -> Any:
        """The values (or rows of values) for ``?`` placeholders."""
        if given is None:
            _fail(unit, f"has {count} ? placeholder(s) but got no parameters")
        if given.named:
            _fail(unit, "has ? placeholders but got named parameters")
        for row in given.values if given.many else [given.values]:
            if len(row) != count:
                _fail(
                    unit,
                    f"has {count} ? placeholder(s) but got {len(row)} parameter(s)",
                )
        return given.values


# -- the connection ---------------------------------------------------------------


@dataclass
class _Target:
    """The connection a run uses (see `connect.Target`, its PostgreSQL twin)."""

    conn: Connection
    raw: sqlite3.Connection
    joined: bool
    began: bool = False
    hook_connectable: Any = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release what `_open_target` acquired (never the caller's transaction)."""
        for action in reversed(self.cleanup):
            try:
                action()
            except Exception as exc:  # cleaning up must not hide the real error
                log.debug("cleaning up the SQL runner's connection failed: %s", exc)
        self.cleanup.clear()


def _raw(conn: Connection) -> sqlite3.Connection:
    """The ``sqlite3`` connection under a SQLAlchemy connection."""
    raw = conn.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        raise TypeError(
            "run_sql() on SQLite needs the standard sqlite3 driver (sqlite:// or "
            f"sqlite+pysqlite://), got {type(raw).__module__}.{type(raw).__name__}"
        )
    return raw


def _own(conn: Connection, hook: Any) -> _Target:
    """Autocommit on an idle connection for the run; restored afterwards."""
    raw = _raw(conn)
    target = _Target(conn, raw, joined=False, hook_connectable=hook)
    previous = raw.isolation_level
    had_mark = SQLITE_NO_BEGIN in conn.info
    conn.info[SQLITE_NO_BEGIN] = True
    if previous is not None:
        raw.isolation_level = None  # nothing is pending: this commits nothing

    def restore() -> None:
        if not had_mark:
            conn.info.pop(SQLITE_NO_BEGIN, None)
        if previous is not None and not raw.in_transaction:
            raw.isolation_level = previous

    target.cleanup.append(restore)
    return target


def _joined(conn: Connection, hook: Any, *, began: bool = False) -> _Target:
    """Join the connection's transaction.

    On an engine without `engine`'s hooks, pysqlite has not begun the
    transaction SQLAlchemy thinks it is in (it waits for an ``INSERT``,
    ``UPDATE`` or ``DELETE``): it is begun here, so that DDL and savepoints
    belong to it too.
    """
    raw = _raw(conn)
    if not raw.in_transaction:
        raw.execute("BEGIN")
    return _Target(conn, raw, joined=True, began=began, hook_connectable=hook)


def _from_connection(conn: Connection, join: bool, hook: Any) -> _Target:
    """Join the connection's transaction, begin one, or use autocommit."""
    if conn.in_transaction() or _raw(conn).in_transaction:
        return _joined(conn, hook)
    if join:
        conn.begin()
        return _joined(conn, hook, began=True)
    return _own(conn, hook)


def _from_session(session: Session, join: bool) -> _Target:
    """Join the session's transaction, begin one, or use its connection or engine."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    if session.in_transaction():
        return _joined(session.connection(), session)
    bind = session.get_bind()
    if isinstance(bind, Connection) and (
        bind.in_transaction() or _raw(bind).in_transaction
    ):
        return _joined(bind, session)
    if join:
        return _joined(session.connection(), session, began=True)
    if isinstance(bind, Connection):
        return _own(bind, session)
    target = _from_engine(bind)
    target.hook_connectable = session
    return target


def _from_engine(engine: Engine) -> _Target:
    """A connection of ``engine`` (closed at the end), in autocommit.

    A ``:memory:`` engine's pool hands each thread one shared connection: if
    another user of it in this thread has a transaction open, the run joins
    it (committing it is that user's business).
    """
    conn = engine.connect()
    try:
        target = _joined(conn, conn) if _raw(conn).in_transaction else _own(conn, conn)
    except BaseException:
        conn.close()
        raise
    target.cleanup.insert(0, conn.close)
    return target


def _open_target(connectable: Any, *, join: bool) -> _Target:
    """The `_Target` for ``connectable`` (see `connect.open_target`)."""
    if isinstance(connectable, scoped_session):
        connectable = connectable()
    if isinstance(connectable, Engine):
        return _from_engine(connectable)
    if isinstance(connectable, Connection):
        return _from_connection(connectable, join, connectable)
    if isinstance(connectable, Session):
        return _from_session(connectable, join)
    session = getattr(connectable, "session", None)
    if isinstance(session, Session):
        return _from_session(session, join)
    raise TypeError(
        "expected an Engine, a Connection, a Session or a Database, "
        f"not {type(connectable).__name__}"
    )


# -- results ------------------------------------------------------------------------


def _tag(text: str, count: int, rows: bool) -> str:
    """A PostgreSQL-style command tag (SQLite has none): ``INSERT 0 2``, ``SELECT 1``."""
    words = leading_words(text, 4)
    first = words[0].upper() if words else ""
    if first in ("INSERT", "REPLACE"):
        return f"INSERT 0 {count}"
    if first in ("UPDATE", "DELETE"):
        return f"{first} {count}"
    if rows:
        return f"SELECT {count}"
    if first in ("CREATE", "DROP", "ALTER"):
        modifiers = ("temp", "temporary", "unique", "virtual")
        rest = [w for w in words[1:] if w not in modifiers]
        return f"{first} {rest[0].upper()}" if rest else first
    return first


def _result(cur: sqlite3.Cursor, text: str) -> QueryResult:
    """The `QueryResult` of the statement ``cur`` ran (its rows all fetched)."""
    if cur.description is not None:
        rows = cur.fetchall()
        count = cur.rowcount if cur.rowcount >= 0 else len(rows)
        keys = [column[0] for column in cur.description]
        return QueryResult(_tag(text, count, True), count, keys, rows)
    return QueryResult(_tag(text, cur.rowcount, False), cur.rowcount)


def _fatal(err: BaseException, raw: sqlite3.Connection) -> bool:
    """Errors that stop a run: an interrupted statement, a closed connection."""
    name = getattr(err, "sqlite_errorname", None)  # Python 3.11+
    if name == "SQLITE_INTERRUPT" or (name is None and str(err) == "interrupted"):
        return True
    try:
        raw.in_transaction  # noqa: B018 - raises on a closed connection
    except sqlite3.ProgrammingError:
        return True
    return False


# -- the run --------------------------------------------------------------------------


class SQLiteRun:
    """One run of SQL on one SQLite connection; iterate it to execute.

    The same interface as `runner.Run` (see it for the parameters).
    """

    _target: _Target

    def __init__(
        self,
        connectable: Any,
        sql: Any,
        params: Any,
        opts: RunOptions,
        *,
        join: bool = False,
        per_source: bool = False,
        announce_base: str | None = None,
    ) -> None:
        self.connectable = connectable
        self.sql = sql
        self.params = params
        self.opts = opts
        self.join = join
        self.per_source = per_source
        self.announce_base = announce_base
        self.finished: list[Unit] = []
        self._pending: list[Unit] = []
        self._user_savepoints: list[tuple[str, int]] = []
        self._reporter: Reporter | None = None
        self._atomic_open = False
        self._own = True
        self._bind = SQLiteBinder()
        self._cur: sqlite3.Cursor | None = None

    def outcomes(self) -> list[StatementOutcome]:
        """What happened to each statement so far, in order."""
        return [unit.outcome() for unit in self.finished]

    # -- helpers ------------------------------------------------------------

    @property
    def raw(self) -> sqlite3.Connection:
        return self._target.raw

    def _in_tx(self) -> bool:
        """Whether SQLite has a transaction open (False on a closed connection)."""
        try:
            return bool(self.raw.in_transaction)
        except sqlite3.ProgrammingError:
            return False

    def _cursor(self) -> sqlite3.Cursor:
        if self._cur is None:
            self._cur = self.raw.cursor()
        return self._cur

    def _check(self, unit: Unit) -> None:
        """Refuse a statement that cannot run in this run's mode (see `units.check_unit`)."""
        joined, atomic = self._target.joined, self.opts.atomic
        message = None
        words = leading_words(unit.stmt.text, 1) if unit.stmt.kind != "meta" else []
        if unit.stmt.kind == "copy_in" or words == ["copy"]:
            message = (
                "COPY is PostgreSQL's; SQLite has no COPY (insert the rows with "
                "INSERT and a list of parameter sets instead)"
            )
        elif unit.cls == "begin" and (joined or atomic):
            where = (
                "with atomic=True" if atomic and not joined else "inside a transaction"
            )
            message = f"SQLite cannot begin a transaction {where}"
        if message is not None:
            raise StatementNotAllowedError(
                f"{unit.describe()}: {message}\n  {unit.stmt.text.splitlines()[0]}",
                index=unit.index,
                source=unit.origin,
                line=unit.line,
                statement=unit.stmt.text,
            )
        check_unit(unit, joined=joined, atomic=atomic)

    def _record(
        self,
        unit: Unit,
        status: OutcomeStatus,
        result: QueryResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Record a statement's outcome (and count it for the progress bar)."""
        unit.status, unit.result, unit.error = status, result, error
        self.finished.append(unit)
        if status == "executed" and self._own:
            self._pending.append(unit)
        if unit.counted and self._reporter is not None:
            self._reporter.advance()

    def _settle_pending(self, status: OutcomeStatus, since: int = 0) -> None:
        """Give the statements of a closed block their final status."""
        for unit in self._pending[since:]:
            if unit.status == "executed":
                unit.status = status
        del self._pending[since:]
        if since == 0:
            self._user_savepoints.clear()

    def _settle_all(self, status: OutcomeStatus) -> None:
        """Give every executed statement of the run its final status."""
        for unit in self.finished:
            if unit.status == "executed":
                unit.status = status

    # -- units ----------------------------------------------------------------

    def _units(self, sources: Sequence[SQLSource]) -> list[Unit]:
        """Split ``sources`` and give each statement its parameters (see `units.build_units`)."""
        split = [split_sqlite(s.text, origin=s.origin) for s in sources]
        if self.opts.ensure_single_query:
            real = sum(st.kind != "meta" for stmts in split for st in stmts)
            if real > 1:
                raise ValueError(
                    "Multiple queries passed when only one was expected "
                    f"(got {real} statements)"
                )
        params = self.params
        if self.per_source:
            per = [distribute(params, len(stmts)) for stmts in split]
        else:
            flat = iter(distribute(params, sum(len(stmts) for stmts in split)))
            per = [[next(flat) for _ in stmts] for stmts in split]
        units: list[Unit] = []
        for source, stmts, values in zip(sources, split, per, strict=True):
            defaults = source.defaults
            for stmt, p in zip(stmts, values, strict=True):
                if defaults and (p is None or isinstance(p, Mapping)):
                    p = {**defaults, **(p or {})}
                unit = Unit(len(units), stmt, _classify(stmt), p)
                self._check(unit)
                units.append(unit)
        return units

    def _directives(
        self, unit: Unit, directives: Sequence[StatementDirective], recovery: bool
    ) -> list[Unit]:
        """Units for the directives a hook returned (see `units.directive_units`)."""
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
                    for st in split_sqlite(source.text)
                ]
            for stmt in stmts:
                new = Unit(
                    unit.index, stmt, _classify(stmt), params, label=directive.label
                )
                new.skip, new.recovery, new.transformed = (
                    directive.skip,
                    recovery,
                    True,
                )
                new.single, new.counted = True, False
                self._check(new)
                units.append(new)
        return units

    def _transform(self, unit: Unit) -> list[Unit]:
        """Apply transform_statement to ``unit``: the units to run instead."""
        transform = self.opts.transform_statement
        assert transform is not None
        unit.transformed = True
        try:
            self._bind(unit)
        except ValueError:
            unit.sql = None  # the hook may give other parameters
        directives = transform(unit.context())
        if directives is None:
            return [unit]
        if unit.counted and self._reporter is not None:
            self._reporter.advance()
        return self._directives(unit, list(directives), recovery=False)

    # -- execution ----------------------------------------------------------------

    def _execute(self, unit: Unit) -> QueryResult:
        """Run one statement, under the runner's savepoint when that is needed.

        Raises:
            sqlite3.Error: it failed; its effects are undone (to the
                savepoint) unless SQLite rolled back the whole transaction.
        """
        assert unit.sql is not None
        raw = self.raw
        framed = (
            self.opts.use_transaction
            and unit.cls not in _BARE
            and (raw.in_transaction or unit.many)
        )
        cur = self._cursor()
        if framed:
            raw.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            if unit.many:
                cur.executemany(unit.sql, unit.send)
            elif unit.send is None:
                cur.execute(unit.sql)
            else:
                cur.execute(unit.sql, unit.send)
            result = _result(cur, unit.sql)
            if framed:
                raw.execute(f"RELEASE {_SAVEPOINT}")
        except _ERRORS:
            if framed and self._in_tx():
                try:
                    raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    raw.execute(f"RELEASE {_SAVEPOINT}")
                except sqlite3.Error as exc:
                    log.debug("rolling back the runner's savepoint failed: %s", exc)
            raise
        return result

    def _ok(self, unit: Unit, result: QueryResult, before: bool) -> None:
        """Record a statement that succeeded; settle a block it ended."""
        status: OutcomeStatus = "executed"
        after = self._in_tx()
        if self._own:
            if not before and not after:
                status = "committed"
            elif before and not after:
                rollback = leading_words(unit.stmt.text, 1) == ["rollback"]
                status = "rolled_back" if rollback else "committed"
                self._settle_pending(status)
            else:
                self._track_savepoints(unit)
        self._record(unit, status, result)
        reporter = self._reporter
        if reporter is not None and reporter.prints_success:
            reporter.ok(unit.shown, unit.label)

    def _track_savepoints(self, unit: Unit) -> None:
        """Follow the SQL's own savepoints, so ROLLBACK TO marks what it undid."""
        if unit.cls not in ("savepoint", "release"):
            return
        name = _savepoint_name(unit.stmt.text)
        if name is None:
            return
        name = name.lower()  # SQLite compares savepoint names without case
        marks = self._user_savepoints
        if unit.cls == "savepoint":
            marks.append((name, len(self._pending)))
            return
        for i in range(len(marks) - 1, -1, -1):
            if marks[i][0] == name:
                if leading_words(unit.stmt.text, 1) == ["rollback"]:
                    self._settle_pending("rolled_back", marks[i][1])
                    del marks[i + 1 :]  # the savepoint itself stays
                else:
                    del marks[i:]
                return

    def _fail(
        self,
        unit: Unit,
        orig: BaseException,
        queue: deque[Unit],
        *,
        note: str = "",
        fatal: bool = False,
    ) -> None:
        """Handle a failed statement: hook, report, then raise or go on."""
        err = statement_error(
            orig,
            index=unit.index,
            source=unit.origin,
            line=unit.line,
            text=unit.shown,
            params=unit.send,
            note=note,
            dbapi_base=sqlite3.Error,
        )
        hook = self.opts.on_error
        if hook is not None and not unit.recovery and not fatal:
            directives = hook(unit.context(), err, self._target.hook_connectable)
            if directives is not None:
                unit.recovered = True
                self._record(unit, "failed", error=err)
                if self._reporter is not None:
                    self._reporter.failed(
                        unit.shown, unit.label, err, raising=False, recovered=True
                    )
                queue.extendleft(reversed(self._directives(unit, directives, True)))
                return
        raising = self.opts.raise_errors or fatal
        self._record(unit, "failed", error=err)
        if self._reporter is not None:
            self._reporter.failed(unit.shown, unit.label, err, raising=raising)
        if raising:
            raise err

    def _run_single(self, unit: Unit, queue: deque[Unit]) -> Iterator[QueryResult]:
        """Run one statement; yield its result if it succeeded."""
        before = self._in_tx()
        try:
            result = self._execute(unit)
        except _ERRORS as orig:
            fatal = _fatal(orig, self.raw)
            note = ""
            if before and not self._in_tx():
                note = " (SQLite rolled back the whole transaction)"
                if self._own:
                    self._settle_pending("rolled_back")
                else:
                    fatal = True  # the caller's (or the atomic) transaction is gone
                    self._settle_all("rolled_back")
            self._fail(unit, orig, queue, note=note, fatal=fatal)
            return
        self._ok(unit, result, before)
        yield result

    def _loop(self, units: list[Unit]) -> Iterator[QueryResult]:
        """Run the queue of units, in order, yielding each result."""
        queue = deque(units)
        transform = self.opts.transform_statement
        announced: str | None = None
        while queue:
            unit = queue.popleft()
            if self.announce_base is not None and unit.origin != announced:
                announced = unit.origin
                if self._reporter is not None and announced is not None:
                    self._reporter.source(
                        os.path.relpath(announced, self.announce_base)
                    )
            if unit.stmt.kind == "meta":
                log.debug("skipping psql meta-command %s", unit.stmt.text)
                self._record(unit, "skipped")
                continue
            if transform is not None and not unit.transformed:
                queue.extendleft(reversed(self._transform(unit)))
                continue
            if unit.skip:
                self._record(unit, "skipped")
                if self._reporter is not None:
                    self._reporter.skipped(unit.shown, unit.label)
                continue
            if unit.sql is None:
                self._bind(unit)
            yield from self._run_single(unit, queue)

    # -- the run ------------------------------------------------------------------------

    def _prepare(self) -> list[Unit]:
        """Read, split, check and (without transform_statement) bind everything."""
        sources = read_sources(
            self.sql, interpret_as_file=self.opts.interpret_as_file, render=render
        )
        units = self._units(sources)
        if self.opts.transform_statement is None:
            for unit in units:
                if unit.stmt.kind != "meta":
                    self._bind(unit)
        return units

    def _atomic(self, action: str) -> None:
        """``begin``, ``commit`` or ``rollback`` the atomic run's transaction."""
        joined = self._target.joined
        raw = self.raw
        if action == "begin":
            raw.execute(f"SAVEPOINT {_ATOMIC}" if joined else "BEGIN")
            self._atomic_open = True
            return
        self._atomic_open = False
        if action == "rollback":
            if self._in_tx():
                try:
                    if joined:
                        raw.execute(f"ROLLBACK TO {_ATOMIC}")
                        raw.execute(f"RELEASE {_ATOMIC}")
                    else:
                        raw.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.debug("rolling back the atomic run failed: %s", exc)
            self._settle_all("rolled_back")
            return
        verb = f"RELEASE {_ATOMIC}" if joined else "COMMIT"
        try:
            raw.execute(verb)
        except _ERRORS as orig:
            self._atomic_open = True  # the cleanup rolls back
            raise statement_error(
                orig,
                index=None,
                source=None,
                line=None,
                text=verb,
                dbapi_base=sqlite3.Error,
            ) from orig
        if not joined:
            self._settle_all("committed")

    def _close_own_transaction(self, finished: bool) -> None:
        """Roll back a transaction the SQL opened and left open."""
        if self._target.joined or not self._in_tx():
            return
        log.log(
            logging.WARNING if finished else logging.DEBUG,
            "the SQL left a transaction open (BEGIN without COMMIT); it was rolled "
            "back, as psql does at the end of a script",
        )
        try:
            self.raw.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.debug("ROLLBACK failed: %s", exc)
        self._settle_pending("rolled_back")

    def __iter__(self) -> Iterator[QueryResult]:
        """Execute the run, yielding the result of each statement that succeeded."""
        self._target = _open_target(self.connectable, join=self.join)
        self._own = not (self._target.joined or self.opts.atomic)
        finished = False
        try:
            units = self._prepare()
            reporter = self._reporter = Reporter(
                self.opts.output_mode,
                self.opts.output_file,
                print_skipped=self.opts.print_skipped,
                total=len(units),
            )
            if self.announce_base is not None:
                reporter.start_progress(len(units))
                reporter.source(f"Running fixtures in {self.announce_base}")
            if self.opts.atomic:
                self._atomic("begin")
            yield from self._loop(units)
            if self._atomic_open:
                self._atomic("commit")
            finished = True
        finally:
            try:
                if self._atomic_open:
                    self._atomic("rollback")
                if not finished or not self.opts.atomic:
                    self._close_own_transaction(finished)
            finally:
                if self._reporter is not None:
                    self._reporter.close()
                if self._cur is not None:
                    try:
                        self._cur.close()
                    except sqlite3.Error:
                        pass
                self._target.close()
