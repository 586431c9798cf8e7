"""Find bind placeholders in the SQL tokens of a statement.

Only code is searched: never the inside of strings (``'…'``, ``E'…'``…), quoted
identifiers, dollar-quoted bodies or comments.  They are skipped with the lexer's
own rules and token boundaries (a placeholder does not end a word: in ``%b$$`` the
``$$`` continues the word ``b$$``), so text that `split_statements` accepted never
raises here.  Recognised placeholders, by `Placeholder.kind`:

``colon``: ``:name`` (SQLAlchemy ``text()`` / psql style), where ``name`` is a
    (Unicode) letter or ``_`` followed by letters, digits and ``_``.  Not a placeholder:
    ``::`` (a cast, so ``:v::int`` is the bind ``v`` then a cast), ``:=`` (named
    argument), a ``:`` right after another ``:`` or a backslash (SQLAlchemy's
    ``\\:`` escape), ``:1`` (digits), psql's ``:'v'`` and ``:"v"``, and every
    ``:`` whose innermost open bracket is ``[``: there it is an array-slice
    separator, so ``a[1:2]``, ``a[lo:hi]``, ``a[:n]`` and ``a[n:]`` hold no binds.
    To bind a slice bound, parenthesise it: ``a[(:lo):(:hi)]``.
``brace``: ``{name}`` (pre-binding of psycopg ``Identifier``/``Literal`` values;
    ``{{`` is an escaped brace).  ``{}``, ``{0}`` and other brace forms are not
    reported (bare braces are not PostgreSQL syntax).  Only those in SQL tokens
    are reported here; the binder finds the ones inside literals itself.
``percent``: ``%s``, ``%b``, ``%t`` (psycopg positional binds).
``pyformat``: ``%(name)s``, ``%(name)b``, ``%(name)t`` (psycopg named binds).
    ``%%`` is a literal percent sign and is skipped, so ``%%s`` holds no bind.
    Like psycopg, ``a%s`` counts as a bind even if meant as ``a % s``.

`find_regions` lists what `find_placeholders` skips (strings, quoted identifiers,
dollar-quoted bodies, comments) with the same rules, for the binder's rules that
reach inside them; `body_placeholders` reads a dollar-quoted body as SQL and
returns the placeholders in its code (and in the bodies nested in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .lexer import (
    _DOLLAR_DELIM,
    _starts_token,
    skip_block_comment,
    skip_dollar,
    skip_line_comment,
    skip_literal,
    skip_quoted,
    skip_string,
)

__all__ = [
    "Placeholder",
    "PlaceholderKind",
    "Region",
    "RegionKind",
    "body_placeholders",
    "find_placeholders",
    "find_regions",
]

PlaceholderKind = Literal["colon", "brace", "percent", "pyformat"]
"""``colon``: ``:name``; ``brace``: ``{name}``; ``percent``: ``%s``; ``pyformat``:
``%(name)s``."""

_NEXT = re.compile(r"""['"$:{%()\[\]]|--|/\*""")
_NAME = re.compile(r"[^\W\d]\w*")
_BRACE = re.compile(r"\{([^\W\d]\w*)\}")
_PYFORMAT = re.compile(r"%\((\w+)\)[sbt]")
_REGION_NEXT = re.compile(r"""['"$]|--|/\*""")

RegionKind = Literal[
    "string", "estring", "identifier", "dollar", "line_comment", "block_comment"
]
"""``string``: ``'…'`` (also ``U&'…'``, ``B'…'``, ``X'…'``, ``N'…'``); ``estring``:
``E'…'``; ``identifier``: ``"…"``; ``dollar``: ``$tag$…$tag$``; ``line_comment``:
``--…``; ``block_comment``: ``/* … */``."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One bind placeholder found in SQL text.

    Attributes:
        kind: ``"colon"``, ``"brace"``, ``"percent"`` or ``"pyformat"``.
        name: the parameter name, or None for ``%s``.
        start: offset of the placeholder's first character in the scanned text.
        end: offset just past it: ``text[start:end]`` is e.g. ``:name``,
            ``{name}``, ``%s`` or ``%(name)s``.
    """

    kind: PlaceholderKind
    name: str | None
    start: int
    end: int


def find_placeholders(text: str, *, origin: str | None = None) -> list[Placeholder]:
    """Return the placeholders in the SQL tokens of ``text``, in order.

    Parameters:
        text: SQL, normally one `Statement.text`.
        origin: a file name for errors.

    Raises:
        SQLSyntaxError: ``text`` holds an unterminated literal or comment.
    """
    found: list[Placeholder] = []
    brackets: list[str] = []
    search = _NEXT.search
    pos = 0
    floor = 0  # end of the last literal, comment or identifier tail: as in the lexer
    while True:
        m = search(text, pos)
        if m is None:
            return found
        p = m.start()
        c = text[p]
        nxt = text[p + 1 : p + 2]
        pos = p + 1
        if c == ":":
            if nxt == ":":
                pos = p + 2
            elif (
                nxt != "="
                and not (p and text[p - 1] in ":\\")
                and not (brackets and brackets[-1] == "[")
            ):
                name = _NAME.match(text, p + 1)
                if name is not None:
                    found.append(Placeholder("colon", name.group(), p, name.end()))
                    pos = name.end()
        elif c == "%":
            if nxt == "%":
                pos = p + 2
            elif nxt in ("s", "b", "t"):
                found.append(Placeholder("percent", None, p, p + 2))
                pos = p + 2
            elif nxt == "(":
                fmt = _PYFORMAT.match(text, p)
                if fmt is not None:
                    found.append(Placeholder("pyformat", fmt.group(1), p, fmt.end()))
                    pos = fmt.end()
        elif c == "{":
            if nxt == "{":
                pos = p + 2
            else:
                brace = _BRACE.match(text, p)
                if brace is not None:
                    found.append(Placeholder("brace", brace.group(1), p, brace.end()))
                    pos = brace.end()
        elif c in "([":
            brackets.append(c)
        elif c in ")]":
            if brackets:
                brackets.pop()
        else:
            pos = floor = skip_literal(text, p, floor, origin)


@dataclass(frozen=True, slots=True)
class Region:
    """A literal or comment in SQL text: a stretch `find_placeholders` skips.

    Attributes:
        kind: see `RegionKind`.
        start: offset of its opening delimiter (the quote, ``$tag$``, ``--`` or
            ``/*``; the ``E`` of ``E'…'`` is before it).
        end: offset just past its closing delimiter (a ``--`` comment ends
            before its line break).
        inner_start: offset of its content, just past the opening delimiter.
        inner_end: offset just past its content.
        tag: the delimiter of a dollar-quoted body (``$$``, ``$fn$``), else ``""``.
    """

    kind: RegionKind
    start: int
    end: int
    inner_start: int
    inner_end: int
    tag: str = ""


def find_regions(text: str, *, origin: str | None = None) -> list[Region]:
    """Return the literals and comments of ``text`` (not nested ones), in order.

    The complement of what `find_placeholders` searches: the same lexer rules
    and token boundaries (``foo$bar$`` is a word, ``$1`` a parameter).

    Raises:
        SQLSyntaxError: ``text`` holds an unterminated literal or comment.
    """
    found: list[Region] = []
    search = _REGION_NEXT.search
    pos = floor = 0
    while True:
        m = search(text, pos)
        if m is None:
            return found
        p = m.start()
        c = text[p]
        if c == "'":
            end = skip_string(text, p, floor, origin)
            estring = (
                p > floor and text[p - 1] in "eE" and _starts_token(text, p - 1, floor)
            )
            kind: RegionKind = "estring" if estring else "string"
            found.append(Region(kind, p, end, p + 1, end - 1))
        elif c == '"':
            end = skip_quoted(text, p, '"', origin)
            found.append(Region("identifier", p, end, p + 1, end - 1))
        elif c == "$":
            end = skip_dollar(text, p, floor, origin)
            delim = _DOLLAR_DELIM.match(text, p)
            if delim is not None and _starts_token(text, p, floor):
                tag = delim.group()
                found.append(Region("dollar", p, end, delim.end(), end - len(tag), tag))
        elif c == "-":
            end = skip_line_comment(text, p)
            found.append(Region("line_comment", p, end, p + 2, end))
        else:
            end = skip_block_comment(text, p, origin)
            found.append(Region("block_comment", p, end, p + 2, end - 2))
        pos = floor = end


def body_placeholders(text: str, start: int, end: int) -> list[Placeholder]:
    """Return the placeholders in ``text[start:end]`` read as SQL code.

    For the content of a dollar-quoted body: the placeholders in its SQL tokens
    (not in the strings or comments inside it) and, the same way, in the
    dollar-quoted bodies nested in it, to any depth.  Offsets are in ``text``.

    Raises:
        SQLSyntaxError: the content does not lex as SQL (a body in another
            language, say); the caller decides what that means.
    """
    found: list[Placeholder] = []
    todo = [(start, end)]
    while todo:
        lo, hi = todo.pop()
        body = text[lo:hi]
        found.extend(
            Placeholder(ph.kind, ph.name, ph.start + lo, ph.end + lo)
            for ph in find_placeholders(body)
        )
        todo.extend(
            (r.inner_start + lo, r.inner_end + lo)
            for r in find_regions(body)
            if r.kind == "dollar"
        )
    found.sort(key=lambda ph: ph.start)
    return found
