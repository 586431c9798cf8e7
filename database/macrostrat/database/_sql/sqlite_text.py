"""SQLite's SQL text: splitting it, psycopg Composables in it, its parameters.

What the SQLite runner (`sqlite`) does to the text before ``sqlite3`` gets it.

Splitting (`split_sqlite`): `lexer.split_statements` (PostgreSQL's rules,
which SQLite's strings, identifiers and comments follow), then consecutive
pieces are merged until `sqlite3.complete_statement` accepts them, which
keeps a trigger body (``CREATE TRIGGER … BEGIN s1; s2; END;``) whole.  As in
the ``sqlite3`` shell, a ``CASE … END`` directly before a ``;`` inside a
trigger body ends it early: write ``(CASE … END);``.

Rendering (`render`): psycopg ``Identifier``/``Literal``/``SQL`` values in
SQLite's syntax.

Parameters (`SQLiteBinder`): ``:name`` with a mapping, ``?``/``?NNN`` with a
tuple or list of values, a list of mappings or tuples (``executemany``), and
``{name}`` with psycopg ``Identifier``/``Literal``/``SQL`` values spliced into
the text (`render`).  ``sqlite3`` binds the rest itself (never inside string
literals).  psycopg's ``%(name)s`` always, and ``%s`` when parameters are
given to a statement without ``:name``/``?``, raise `BindParameterError` (in
SQLite ``%`` is the modulo operator).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import sqlite3
import uuid
from bisect import bisect_right
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from psycopg import sql as pgsql

from ..errors import BindParameterError
from .lexer import Statement, split_statements
from .params import escaped_colons, literal_braces, sort_params
from .params_scan import find_placeholders, find_regions
from .units import Unit

__all__ = ["SQLiteBinder", "render", "split_sqlite"]

_MARKS = re.compile(r"[:{%\\?]")
_QMARK = re.compile(r"\?(\d*)")
_END = re.compile(r"(?i)\bend\Z")
_FEW = 16
"""Pieces merged before only those ending in ``END`` are tried (`split_sqlite`)."""


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
        given = sort_params(unit.params) if unit.params is not None else None
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
                    literal_braces(
                        text, list(placeholders), prebound, None, render, unit
                    )
                )
        except TypeError as exc:
            _fail(unit, f"cannot render a value for SQLite: {exc}")
        if "\\:" in text:
            edits.extend((p, p + 1, "") for p in escaped_colons(text))
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
