"""Third stage of the SQL data path: fit parameters to one statement.

`distribute` gives each statement of a run its parameters; `bind` turns one
statement and its parameters into what the driver receives (`Bound`):

* ``{name}`` placeholders in SQL tokens whose value is a psycopg
  ``Composable`` (``Identifier``, ``Literal``, ``SQL``, ``Composed``) are
  replaced by the rendered value.  Braces inside strings, comments and
  dollar-quoted bodies are never touched.  A ``{name}`` whose value is given
  but is not a ``Composable`` is an error; one without a value stays as it is.
* ``:name`` placeholders (never ``::type``, never inside strings or bodies)
  become psycopg's ``%(name)s`` and every other ``%`` of the statement is
  doubled, so the text means what it says.
* ``%s`` / ``%(name)s`` statements go to the driver as written (psycopg
  rules: a literal ``%`` must then be written ``%%``).
* A statement with no placeholders is sent without parameters, so a ``%``
  in it needs no doubling and extra parameters are ignored.
* ``\\:`` (SQLAlchemy ``text()``'s escaped colon) outside literals becomes ``:``.

``has_server_binds`` forces a style: True sends ``%s``/``%(name)s`` statements
to the driver as written and ignores ``:name``; False binds only ``:name``
and treats ``%`` as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import sql as pgsql

from ..errors import BindParameterError
from .lexer import skip_literal
from .params_scan import Placeholder, find_placeholders
from .source import from_psycopg2

__all__ = [
    "Bound",
    "Where",
    "bind",
    "distribute",
    "infer_has_server_binds",
    "needs_binding",
]

_MARKS = re.compile(r"[:{%\\]")
_ESCAPE_SCAN = re.compile(r"""['"$]|--|/\*|\\:""")


class Where(Protocol):
    """What the binder needs to name a statement in an error."""

    @property
    def index(self) -> int:
        """The statement's position in the run (0-based)."""
        ...

    @property
    def origin(self) -> str | None:
        """The file it came from."""
        ...

    @property
    def line(self) -> int:
        """Its first line."""
        ...

    def describe(self) -> str:
        """``statement 3 (schema.sql, line 12)``."""
        ...


@dataclass(slots=True)
class Bound:
    """One statement ready for the driver.

    Attributes:
        text: the SQL to send.
        params: the driver parameters, or None to send the text without any
            (then psycopg uses the simple query protocol).
        many: ``params`` is a list of parameter sets (``executemany``).
        display: the statement with ``{name}`` values rendered and
            placeholders as written: what is printed and given to hooks.
    """

    text: str
    params: Any = None
    many: bool = False
    display: str = ""


def distribute(params: Any, count: int) -> list[Any]:
    """Give each of ``count`` statements its parameters.

    A ``list`` whose length equals ``count`` gives statement *i* its item *i*;
    anything else goes whole to every statement (so one statement with a list
    of mappings is run once per mapping).
    """
    if isinstance(params, list) and count > 0 and len(params) == count:
        return list(params)
    return [params] * count


def needs_binding(text: str) -> bool:
    """False when ``text`` cannot hold a placeholder (no ``:``, ``{``, ``%``, ``\\``)."""
    return _MARKS.search(text) is not None


def infer_has_server_binds(sql: str) -> bool:
    """Whether ``sql`` holds ``%s``/``%(name)s`` placeholders in its SQL tokens.

    Text inside strings, comments and dollar-quoted bodies does not count
    (upstream looked for ``%s`` anywhere, so ``RAISE '... %s'`` switched styles).
    """
    return any(p.kind in ("percent", "pyformat") for p in find_placeholders(sql))


def _escaped_colons(text: str) -> list[int]:
    """Offsets of the backslashes of ``\\:`` pairs outside literals and comments."""
    found: list[int] = []
    pos = floor = 0
    while True:
        m = _ESCAPE_SCAN.search(text, pos)
        if m is None:
            return found
        p = m.start()
        c = text[p]
        if c == "\\":
            found.append(p)
            pos = p + 2
        else:
            pos = floor = skip_literal(text, p, floor, None)


def _composable(value: Any) -> pgsql.Composable | None:
    """The value as a psycopg Composable (psycopg2 objects converted), or None."""
    if isinstance(value, pgsql.Composable):
        return value
    return from_psycopg2(value) if value is not None else None


@dataclass(slots=True)
class _Params:
    """Parameters of one statement, sorted out."""

    named: bool  # a mapping (or mappings) rather than positional values
    values: Any  # what the driver gets: dict, list, or a list of those
    prebound: dict[str, pgsql.Composable]
    many: bool


def _sort(params: Any) -> _Params:
    """Separate values to pre-bind from driver parameters, and name the style."""
    if isinstance(params, Mapping):
        values: dict[str, Any] = {}
        pre: dict[str, pgsql.Composable] = {}
        for key, value in params.items():
            comp = _composable(value)
            if comp is None:
                values[key] = value
            else:
                pre[key] = comp
        return _Params(True, values, pre, False)
    if isinstance(params, (list, tuple)):
        if params and all(isinstance(p, Mapping) for p in params):
            rows = [_sort(p) for p in params]
            return _Params(True, [r.values for r in rows], rows[0].prebound, True)
        if params and all(isinstance(p, (list, tuple)) for p in params):
            return _Params(False, [list(p) for p in params], {}, True)
        return _Params(False, list(params), {}, False)
    return _Params(False, [params], {}, False)


def _fail(where: Where, text: str, message: str, parameter: str | None = None) -> None:
    """Raise a BindParameterError naming the statement."""
    raise BindParameterError(
        f"{where.describe()}: {message}",
        index=where.index,
        source=where.origin,
        line=where.line,
        statement=text,
        parameter=parameter,
    )


def _choose_style(
    placeholders: list[Placeholder], forced: bool | None, where: Where, text: str
) -> str:
    """Return ``"colon"``, ``"driver"`` or ``"none"`` for a statement."""
    colon = any(p.kind == "colon" for p in placeholders)
    driver = any(p.kind in ("percent", "pyformat") for p in placeholders)
    if forced is True:
        return "driver" if driver else "none"
    if forced is False:
        return "colon" if colon else "none"
    if colon and driver:
        _fail(where, text, "mixes :name and %s/%(name)s placeholders")
    return "colon" if colon else "driver" if driver else "none"


def _check(
    style: str, placeholders: list[Placeholder], p: _Params, where: Where, text: str
) -> None:
    """Raise when the parameters cannot fill the placeholders of ``style``."""
    if style == "colon" or any(ph.kind == "pyformat" for ph in placeholders):
        kind = "colon" if style == "colon" else "pyformat"
        names = [ph.name for ph in placeholders if ph.kind == kind]
        if not p.named:
            _fail(where, text, "has named placeholders but got positional parameters")
        rows = p.values if p.many else [p.values]
        for row in rows:
            for name in names:
                if name not in row:
                    extra = (
                        f" (it is a {type(p.prebound[name]).__name__}: write "
                        f"{{{name}}} to splice it into the SQL)"
                        if name in p.prebound
                        else ""
                    )
                    _fail(
                        where,
                        text,
                        f"no value for parameter {name!r}{extra}",
                        name,
                    )
        return
    count = sum(ph.kind == "percent" for ph in placeholders)
    if p.named:
        _fail(where, text, "has %s placeholders but got named parameters")
    rows = p.values if p.many else [p.values]
    for row in rows:
        if len(row) != count:
            _fail(
                where,
                text,
                f"has {count} %s placeholder(s) but got {len(row)} parameter(s)",
            )


def bind(
    text: str,
    params: Any,
    *,
    where: Where,
    render: Callable[[pgsql.Composable], str],
    has_server_binds: bool | None = None,
) -> Bound:
    """Fit ``params`` to the statement ``text`` (see the module docstring).

    Parameters:
        text: one statement.
        params: its parameters: None, a mapping, positional values (a tuple
            or list of scalars, or one scalar), or a list of mappings or of
            tuples (run once per item).
        where: names the statement in errors.
        render: renders a psycopg ``Composable`` to SQL text.
        has_server_binds: force the placeholder style (see the module docstring).

    Raises:
        BindParameterError: a missing parameter, a wrong number of positional
            parameters, mixed styles, or a ``{name}`` value that is not a
            ``Composable``.
    """
    if not needs_binding(text):
        return Bound(text, None, False, text)
    placeholders = find_placeholders(text, origin=where.origin)
    escapes = _escaped_colons(text) if "\\:" in text else []
    if not placeholders and not escapes:
        return Bound(text, None, False, text)
    style = _choose_style(placeholders, has_server_binds, where, text)
    if params is None:
        if style == "colon":
            name = next(ph.name for ph in placeholders if ph.kind == "colon")
            _fail(where, text, f"no value for parameter {name!r}", name)
        style = "none"
        sorted_params = _Params(True, {}, {}, False)
    else:
        sorted_params = _sort(params)
        if style != "none":
            _check(style, placeholders, sorted_params, where, text)
    sending = style != "none"
    edits: list[tuple[int, int, str, str]] = []  # start, end, sent text, shown text
    for ph in placeholders:
        original = text[ph.start : ph.end]
        if ph.kind == "brace":
            assert ph.name is not None
            comp = sorted_params.prebound.get(ph.name)
            if comp is None:
                if (
                    sorted_params.named
                    and not sorted_params.many
                    and ph.name in sorted_params.values
                ):
                    _fail(
                        where,
                        text,
                        f"{{{ph.name}}} needs a psycopg Composable (Identifier, "
                        f"Literal, SQL...), got "
                        f"{type(sorted_params.values[ph.name]).__name__}",
                        ph.name,
                    )
                continue
            rendered = render(comp)
            edits.append(
                (
                    ph.start,
                    ph.end,
                    rendered.replace("%", "%%") if sending else rendered,
                    rendered,
                )
            )
        elif ph.kind == "colon" and style == "colon":
            edits.append((ph.start, ph.end, f"%({ph.name})s", original))
        elif ph.kind in ("percent", "pyformat") and style == "colon":
            edits.append((ph.start, ph.end, original.replace("%", "%%"), original))
    edits.extend((p, p + 1, "", "") for p in escapes)
    edits.sort()
    double = style == "colon"
    sent: list[str] = []
    shown: list[str] = []
    pos = 0
    for start, end, out, show in edits:
        segment = text[pos:start]
        sent.append(segment.replace("%", "%%") if double else segment)
        shown.append(segment)
        sent.append(out)
        shown.append(show)
        pos = end
    sent.append(text[pos:].replace("%", "%%") if double else text[pos:])
    shown.append(text[pos:])
    values = sorted_params.values if sending else None
    return Bound("".join(sent), values, sorted_params.many and sending, "".join(shown))
