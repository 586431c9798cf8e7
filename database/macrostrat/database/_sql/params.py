"""Third stage of the SQL data path: fit parameters to one statement.

`distribute` gives each statement of a run its parameters; `bind` turns one
statement and its parameters into what the driver receives (`Bound`):

* ``{name}`` whose value is a psycopg ``Composable`` (``Identifier``,
  ``Literal``, ``SQL``, ``Composed``, ``Placeholder``; psycopg2 objects are
  converted) is replaced by the value rendered with the connection, wherever
  it stands in the statement, as upstream's ``SQL(text).format(...)`` did:
  in SQL tokens verbatim, and inside literals and comments too, keeping each
  literal whole:

  - in a dollar-quoted body (``$$ … $$``, ``$fn$ … $fn$``, nested ones
    included) and in a comment, verbatim: the body is code, so
    ``AS $$ SELECT * FROM {schema}.t $$`` reads ``"geo".t``;
  - in a string literal and a quoted identifier, escaped for it, so the
    literal's value is the rendered text: ``'{x}'`` doubles the ``'`` of the
    rendering (``E'{x}'`` also its backslashes) and ``"{x}"`` its ``"``.  So
    ``'in {schema}'`` is ``'in "geo"'``, ``'{lit}'`` with ``Literal("a")`` is
    the string ``'a'`` with its quotes, and a bare fragment inside quotes is
    ``SQL("geo")`` (``"{t}_x"`` with ``SQL("geo")`` is ``"geo_x"``, with
    ``Identifier("geo")`` the name ``"geo"_x`` with its quotes);
  - a rendering that would end the literal or comment around it (the closing
    tag inside a body, a line break in a ``--`` comment, ``*/`` in a block
    comment, a ``{name}`` right after a backslash in ``E'…'``) is an error:
    nothing a value holds can escape into the statement's code.  Inside a
    body the rendering is verbatim even within the body's own strings.

  ``{{`` is an escaped brace (``'{{a}}'`` is left as it is).  Braces that are
  not a ``{name}`` with a ``Composable`` value are never touched (JSON such as
  ``'{"a": 1}'``, array literals ``'{1,2}'``, ``'{a}'`` when ``a`` is not given
  or has a plain value).  In SQL tokens, a ``{name}`` whose value is given but
  is not a ``Composable`` is an error; one without a value stays as it is.
* ``:name`` placeholders (never ``::type``, ``:=``, array slices ``a[1:n]``,
  nor anything inside strings, comments, quoted identifiers or bodies) become
  psycopg's ``%(name)s`` and every other ``%`` of the statement is doubled, so
  the text means what it says.
* ``%s`` / ``%(name)s`` statements go to the driver as written (psycopg
  rules: a literal ``%`` must then be written ``%%``).
* A statement with no placeholders is sent without parameters, so a ``%``
  in it needs no doubling and extra parameters are ignored.
* A parameter given by name with a plain (not ``Composable``) value that
  stands as a bind placeholder (``:name``, or ``%(name)s``) in the code of a
  dollar-quoted body (any ``$tag$…$tag$``, nested ones included: a body
  cannot be told from a string constant), and that the statement does not
  bind anywhere (no ``:name`` of a ``:name`` statement, no ``%(name)s`` of a
  ``%(name)s`` statement in its SQL tokens), is an error: the server never
  binds inside a body, so the value would silently not get there (upstream's
  psycopg2 substituted it).  Splice a value with ``Literal`` and ``{name}``
  instead.  The body is read as SQL: placeholders in strings and comments
  inside it do not count, nor does a body that does not lex as SQL (another
  language).  ``::type``, ``:=``, array slices, names that were not given,
  and placeholders in strings and comments outside bodies (text by
  definition) never raise.  With ``has_server_binds=True`` only ``%(name)s``
  counts, with False only ``:name``.
* ``\\:`` (SQLAlchemy ``text()``'s escaped colon) outside literals becomes ``:``.

``has_server_binds`` forces a style: True sends ``%s``/``%(name)s`` statements
to the driver as written and ignores ``:name``; False binds only ``:name``
and treats ``%`` as text.

Longer than 400 lines because binding is one decision per statement: the
placeholder style, the checks of every style against the statement's tokens,
literals and bodies, and the rendering share one scan of the statement.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import sql as pgsql

from ..errors import BindParameterError, SQLSyntaxError
from .lexer import (
    skip_block_comment,
    skip_estring,
    skip_literal,
    skip_quoted,
)
from .params_scan import (
    Placeholder,
    Region,
    body_placeholders,
    find_placeholders,
    find_regions,
)
from .source import from_psycopg2

__all__ = [
    "Bound",
    "SortedParams",
    "Where",
    "bind",
    "distribute",
    "escaped_colons",
    "infer_has_server_binds",
    "literal_braces",
    "needs_binding",
    "sort_params",
]

_MARKS = re.compile(r"[:{%\\]")
_ESCAPE_SCAN = re.compile(r"""['"$]|--|/\*|\\:""")
_BRACE_SCAN = re.compile(r"\{\{|\{([^\W\d]\w*)\}")
# Candidates for binds anywhere in the text (a superset of what lexing finds once
# ``%name`` and ``::name`` are dropped); a leading class keeps the search fast.
_BIND_SCAN = re.compile(r"[:%](?:([^\W\d]\w*)|\((\w+)\)[sbt])")
_REGION_NAMES = {
    "string": "string literal",
    "estring": "string literal",
    "identifier": "quoted identifier",
    "dollar": "dollar-quoted body",
    "line_comment": "comment",
    "block_comment": "comment",
}


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


def escaped_colons(text: str) -> list[int]:
    """Return the offsets of the backslashes of ``\\:`` pairs in ``text``'s code.

    SQLAlchemy ``text()`` writes a colon that is no placeholder as ``\\:``;
    dropping the backslash at each returned offset gives the SQL.  Pairs
    inside string literals, quoted identifiers, dollar-quoted bodies and
    comments are text and are not returned.

    Parameters:
        text: one statement.
    """
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
class SortedParams:
    """Parameters of one statement, sorted out (see `sort_params`).

    Attributes:
        named: a mapping (or mappings) rather than positional values.
        values: what the driver gets: a dict, a list, or a list of those.
        prebound: the ``Composable`` values, spliced into the text as
            ``{name}`` rather than sent (of the first mapping when ``many``).
        many: ``values`` is a list of parameter sets (``executemany``).
    """

    named: bool
    values: Any
    prebound: dict[str, pgsql.Composable]
    many: bool


def sort_params(params: Any) -> SortedParams:
    """Separate values to splice into the text from driver parameters.

    A mapping is split into plain values and ``Composable`` ones (psycopg2
    objects converted); a list of mappings is sorted mapping by mapping; a
    list of lists or tuples is positional rows; any other list or tuple is
    one row of positional values, and a scalar is a row of one.

    Parameters:
        params: one statement's parameters (not None).
    """
    if isinstance(params, Mapping):
        values: dict[str, Any] = {}
        pre: dict[str, pgsql.Composable] = {}
        for key, value in params.items():
            comp = _composable(value)
            if comp is None:
                values[key] = value
            else:
                pre[key] = comp
        return SortedParams(True, values, pre, False)
    if isinstance(params, (list, tuple)):
        if params and all(isinstance(p, Mapping) for p in params):
            rows = [sort_params(p) for p in params]
            return SortedParams(True, [r.values for r in rows], rows[0].prebound, True)
        if params and all(isinstance(p, (list, tuple)) for p in params):
            return SortedParams(False, [list(p) for p in params], {}, True)
        return SortedParams(False, list(params), {}, False)
    return SortedParams(False, [params], {}, False)


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
    style: str,
    placeholders: list[Placeholder],
    p: SortedParams,
    where: Where,
    text: str,
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


def _reaches_literals(text: str) -> bool:
    """Whether a rule that looks inside literals may apply to ``text``."""
    return "{" in text or ("$" in text and (":" in text or "%(" in text))


def _check_bodies(
    text: str,
    placeholders: list[Placeholder],
    style: str,
    forced: bool | None,
    p: SortedParams,
    where: Where,
) -> list[Region] | None:
    """Raise for a given parameter that stands only inside a dollar-quoted body.

    Returns the regions of ``text`` when it had to find them, else None.
    """
    given = p.values[0] if p.many else p.values
    if not given:
        return None
    kinds = set()
    if forced is not True:
        kinds.add("colon")
    if forced is not False:
        kinds.add("pyformat")
    bound_kind = {"colon": "colon", "driver": "pyformat"}.get(style)
    bound = {ph.name for ph in placeholders if ph.kind == bound_kind}
    code = {ph.start for ph in placeholders}
    # A cheap look at the raw text first: most statements name no given parameter
    # outside their SQL tokens, and then nothing needs lexing.
    stray: list[int] = []
    for m in _BIND_SCAN.finditer(text):
        at = m.start()
        name = m.group(1)
        if name is not None and (text[at] != ":" or (at and text[at - 1] in ":\\")):
            continue  # %name, ::type or \\:
        name = name or m.group(2)
        if name in given and name not in bound and at not in code:
            stray.append(at)
    if not stray:
        return None
    regions = find_regions(text, origin=where.origin)
    starts = [r.start for r in regions]
    inside = {bisect_right(starts, at) - 1 for at in stray}
    for i in sorted(inside):
        r = regions[i] if i >= 0 else None
        if r is None or r.kind != "dollar":
            continue
        try:
            found = body_placeholders(text, r.inner_start, r.inner_end)
        except SQLSyntaxError:
            continue  # not SQL (plpython...): nothing to say about it
        for ph in found:
            if ph.kind in kinds and ph.name in given and ph.name not in bound:
                line = where.line + text.count("\n", 0, ph.start)
                _fail(
                    where,
                    text,
                    f"parameter {ph.name!r} appears as {text[ph.start : ph.end]} "
                    f"(line {line}) only inside the dollar-quoted body "
                    f"{r.tag}…{r.tag}, where the server does not bind "
                    f"parameters, so its value would not get there; to splice "
                    f"a value into the body, pass psycopg.sql.Literal(value) "
                    f"and write {{{ph.name}}}",
                    ph.name,
                )
    return regions


def _escape_for(region: Region, rendered: str) -> str:
    """``rendered`` escaped for the literal it goes into (verbatim in bodies, comments)."""
    if region.kind == "string":
        return rendered.replace("'", "''")
    if region.kind == "estring":
        return rendered.replace("\\", "\\\\").replace("'", "''")
    if region.kind == "identifier":
        return rendered.replace('"', '""')
    return rendered


def _intact(region: Region, new: str) -> bool:
    """Whether ``new``, the region's text after substitution, still lexes as it."""
    kind = region.kind
    try:
        if kind == "string" or kind == "identifier":
            return skip_quoted(new, 0, new[0], None) == len(new)
        if kind == "estring":
            return skip_estring(new, 0, None) == len(new)
        if kind == "block_comment":
            return skip_block_comment(new, 0, None) == len(new)
    except SQLSyntaxError:
        return False
    if kind == "dollar":
        tag = region.tag
        return new.find(tag, len(tag)) == len(new) - len(tag)
    return "\n" not in new and "\r" not in new  # line comment


def literal_braces(
    text: str,
    placeholders: list[Placeholder],
    prebound: dict[str, pgsql.Composable],
    regions: list[Region] | None,
    render: Callable[[pgsql.Composable], str],
    where: Where,
) -> list[tuple[int, int, str]]:
    """Return the edits that splice ``{name}`` Composables inside literals and comments.

    One ``(start, end, replacement)`` for each ``{name}`` outside the SQL
    tokens whose value is in ``prebound``: the value rendered and escaped for
    the literal it stands in (see the module docstring).

    Parameters:
        text: one statement.
        placeholders: its placeholders in SQL tokens (`find_placeholders`);
            their ``{name}`` are not returned.
        prebound: the ``Composable`` values by name.
        regions: the literals and comments of ``text``, or None to find them
            here when needed.
        render: renders a ``Composable`` to SQL text.
        where: names the statement in errors.

    Raises:
        BindParameterError: a rendering would end the literal or comment
            around it.
    """
    code = {ph.start for ph in placeholders if ph.kind == "brace"}
    hits = [
        m
        for m in _BRACE_SCAN.finditer(text)
        if m.group(1) in prebound and m.start() not in code
    ]
    if not hits:
        return []
    if regions is None:
        regions = find_regions(text, origin=where.origin)
    starts = [r.start for r in regions]
    groups: dict[int, list[re.Match[str]]] = {}
    for m in hits:
        i = bisect_right(starts, m.start()) - 1
        if i >= 0 and m.end() <= regions[i].end:
            groups.setdefault(i, []).append(m)
    edits: list[tuple[int, int, str]] = []
    rendered: dict[str, str] = {}
    for i, group in groups.items():
        r = regions[i]
        pieces: list[str] = []
        pos = r.start
        for m in group:
            name = m.group(1)
            if name not in rendered:
                rendered[name] = render(prebound[name])
            out = _escape_for(r, rendered[name])
            pieces += (text[pos : m.start()], out)
            edits.append((m.start(), m.end(), out))
            pos = m.end()
        pieces.append(text[pos : r.end])
        if not _intact(r, "".join(pieces)):
            first = group[0]
            names = ", ".join(dict.fromkeys(f"{{{m.group(1)}}}" for m in group))
            what = _REGION_NAMES[r.kind]
            line = where.line + text.count("\n", 0, first.start())
            hint = ""
            if r.kind == "dollar":
                other = "$fn$" if r.tag == "$body$" else "$body$"
                hint = (
                    f"; quote the body with another tag than {r.tag}, such as {other}"
                )
            _fail(
                where,
                text,
                f"{names} inside a {what} (line {line}) would end the {what} "
                f"early once rendered{hint}",
                first.group(1),
            )
    return edits


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
            parameters, mixed styles, a ``{name}`` value in SQL tokens that is
            not a ``Composable``, a ``{name}`` rendering that would end the
            literal or comment it is in, or a given parameter that stands as a
            placeholder only inside a dollar-quoted body.
    """
    if not needs_binding(text):
        return Bound(text, None, False, text)
    placeholders = find_placeholders(text, origin=where.origin)
    escapes = escaped_colons(text) if "\\:" in text else []
    if (
        not placeholders
        and not escapes
        and (params is None or not _reaches_literals(text))
    ):
        return Bound(text, None, False, text)
    style = _choose_style(placeholders, has_server_binds, where, text)
    if params is None:
        if style == "colon":
            name = next(ph.name for ph in placeholders if ph.kind == "colon")
            _fail(where, text, f"no value for parameter {name!r}", name)
        style = "none"
        sorted_params = SortedParams(True, {}, {}, False)
    else:
        sorted_params = sort_params(params)
        if style != "none":
            _check(style, placeholders, sorted_params, where, text)
    regions: list[Region] | None = None
    if (
        sorted_params.named
        and sorted_params.values
        and "$" in text
        and (":" in text or "%(" in text)
    ):
        regions = _check_bodies(
            text, placeholders, style, has_server_binds, sorted_params, where
        )
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
    if sorted_params.prebound and "{" in text:
        for start, end, out in literal_braces(
            text, placeholders, sorted_params.prebound, regions, render, where
        ):
            edits.append((start, end, out.replace("%", "%%") if sending else out, out))
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
