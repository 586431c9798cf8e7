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
    reported (bare braces are not PostgreSQL syntax).
``percent``: ``%s``, ``%b``, ``%t`` (psycopg positional binds).
``pyformat``: ``%(name)s``, ``%(name)b``, ``%(name)t`` (psycopg named binds).
    ``%%`` is a literal percent sign and is skipped, so ``%%s`` holds no bind.
    Like psycopg, ``a%s`` counts as a bind even if meant as ``a % s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .lexer import skip_literal

__all__ = ["Placeholder", "PlaceholderKind", "find_placeholders"]

PlaceholderKind = Literal["colon", "brace", "percent", "pyformat"]
"""``colon``: ``:name``; ``brace``: ``{name}``; ``percent``: ``%s``; ``pyformat``:
``%(name)s``."""

_NEXT = re.compile(r"""['"$:{%()\[\]]|--|/\*""")
_NAME = re.compile(r"[^\W\d]\w*")
_BRACE = re.compile(r"\{([^\W\d]\w*)\}")
_PYFORMAT = re.compile(r"%\((\w+)\)[sbt]")


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
