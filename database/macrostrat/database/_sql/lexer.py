"""Split PostgreSQL source text into statements the way ``psql`` does.

One linear pass, no recursion.  Compiled regular expressions jump over runs of
characters that cannot change the state (and over whole strings and parenthesised
groups without nested parentheses, such as ``VALUES`` rows); each is written so that
any input has at most one way to match, so a failed attempt costs linear time, never
catastrophic backtracking.  ``str.find`` jumps to the end of dollar-quoted bodies and
COPY data.  Only the characters that change the state are handled in Python.

Lexical rules (PostgreSQL's ``scan.l`` / ``psqlscan.l`` with
``standard_conforming_strings = on``):

* ``'…'`` with ``''`` doubling, backslash literal; ``E'…'`` where ``\\'`` and
  ``\\\\`` are escapes (``E`` only when it starts a token: ``somee'x'`` is the
  identifier ``somee`` then a plain string); ``U&'…'``, ``B'…'``, ``X'…'``, ``N'…'``
  end like plain strings.
* ``"…"`` and ``U&"…"`` with ``""`` doubling.
* ``$tag$…$tag$`` and ``$$…$$``: the body ends at the first occurrence of the exact,
  case-sensitive delimiter, so other tags inside are plain text.  A ``$`` starts a
  dollar quote or a ``$1`` parameter only when it starts a token: directly after an
  identifier character (``foo$bar$``) it continues the identifier, as in
  PostgreSQL.  After a plain run of digits (``1$$x$$``) it starts a token.
* ``--`` comments end at ``\\n`` or ``\\r``; ``/* … */`` comments nest.
* ``;`` ends a statement only at parenthesis depth 0 and outside an SQL-standard
  ``BEGIN ATOMIC … END`` body.  Inside ``CREATE [OR REPLACE] FUNCTION|PROCEDURE``,
  ``BEGIN ATOMIC`` opens a body; ``CASE`` (inside a body) opens and ``END`` closes a
  level, counted only at parenthesis depth 0 and not directly after ``.`` or
  ``AS`` (``t.end``, ``AS case`` are names).  A transaction ``BEGIN;`` or ``END;``
  is an ordinary statement.
* ``COPY … FROM STDIN`` (``FROM`` then ``STDIN`` at parenthesis depth 0): after its
  ``;`` the rest of that line may hold only blanks, ``;`` and comments; the
  following lines up to a line that is exactly ``\\.`` (optionally ``\\.\\r``) are
  its data.
* At a statement boundary, a backslash starts a psql meta-command
  (``\\connect``, ``\\restrict KEY``…) that runs to the end of the line.  Inside a
  statement a backslash is an ordinary character.
* A UTF-8 byte-order mark at offset 0 is skipped.  Lines are counted by ``\\n``, so
  ``\\r\\n`` files number lines correctly.

Deliberately not handled:

* ``standard_conforming_strings = off`` (backslash escapes in plain ``'…'``).
* psql features inside a statement: a backslash command ending the query
  (``SELECT 1 \\g``), the ``\\\\`` separator on a meta-command line, variable
  interpolation (``:v``, ``:'v'`` are left as text), ``\\if`` evaluation.
* Code after ``COPY … FROM STDIN;`` on the same line (psql runs it after the data):
  an error.  Data that reaches the end of the text without a ``\\.`` line: an error
  (psql accepts end of file).
* A ``$`` glued to a number that ends in a letter (``1e3$a$``, ``0x1F$a$``)
  continues a word here, while PostgreSQL starts a dollar quote.
* ``BEGIN ATOMIC`` outside ``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` (as psql).
* A lone ``\\r`` line ending (no ``\\n``) for line numbers, COPY data and meta lines.

Longer than 400 lines because the lexer is one linear pass over one set of
states (quotes, dollar quotes, nested comments, ``BEGIN ATOMIC``, COPY data):
its skip functions and both scanners share the states and the compiled
patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ..errors import SQLSyntaxError

__all__ = [
    "SQLSyntaxError",
    "Statement",
    "StatementKind",
    "iter_statements",
    "split_statements",
]

StatementKind = Literal["sql", "copy_in", "meta"]
"""``sql``: plain SQL; ``copy_in``: ``COPY … FROM STDIN`` with its data; ``meta``: a psql
backslash command."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement (or psql meta-command) cut out of a source text.

    Attributes:
        text: ``source[start:end]``: from the first character of the statement's
            first token to the last character of its last token.  Comments and
            blanks before the first token and after the last one, and the
            terminating ``;``, are not part of it; comments between tokens are.
            For a meta-command: the line from the backslash, without trailing blanks.
        line: 1-based line of ``start``.
        kind: ``"sql"``, ``"copy_in"`` or ``"meta"``.
        start: offset of the first character of ``text`` in the source.
        end: offset just past the last character of ``text``.
        data: for ``copy_in``, the lines after the statement's line up to (not
            including) the ``\\.`` line, each with its line ending; else None.
        data_start: offset of ``data`` in the source (``copy_in`` only).
        data_end: offset just past ``data`` (``copy_in`` only).
        origin: the file name given to the splitter, or None.

    Everything in the source outside ``[start, end)`` and ``[data_start, data_end)``
    is trivia: blanks, comments, ``;``, a byte-order mark and ``\\.`` lines.
    """

    text: str
    line: int
    kind: StatementKind
    start: int
    end: int
    data: str | None = None
    data_start: int | None = None
    data_end: int | None = None
    origin: str | None = None


_WS = frozenset(" \t\n\r\f\v")
_ASCII_IDENT = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$"
)
_DIGITS = frozenset("0123456789")
_ROUTINES = ("function", "procedure")

_ID_CLASS = r"A-Za-z0-9_$\x80-\U0010ffff"
# A standard string: '' doubling; the (?!') makes the parse unique (no backtracking
# blow-up) and leaves an unterminated string to the lone-quote alternative.
_STRING = r"'[^']*(?:''[^']*)*'(?!')"
# The body of an E'...' string after its opening quote.
_ESTRING_BODY = re.compile(r"[^'\\]*(?:(?:\\.|'')[^'\\]*)*'(?!')", re.S)
# A parenthesised group without nested parentheses, ';', quoted identifiers,
# dollar signs or comments, whose strings are plain or token-initial E'...' strings:
# net depth 0, so the scanner steps over it at once (VALUES rows, column lists).
# Written as "normal* (special normal*)*" with specials starting outside "normal",
# so every input has at most one parse and a failed attempt costs linear time.
_GROUP = (
    r"\([^'\"$;()\-/]*(?:(?:"
    r"(?<![eE])" + _STRING + r"|(?<=[^" + _ID_CLASS + r"][eE])'"
    r"[^'\\]*(?:(?:\\.|'')[^'\\]*)*'(?!')|-(?!-)|/(?!\*)"
    r")[^'\"$;()\-/]*)*\)"
)
# Next thing that can change the state, outside any literal or comment.
_NEXT = re.compile(_GROUP + "|" + _STRING + r"""|['"$;()]|--|/\*""", re.S)
# Keyword tracking (COPY ... FROM STDIN, BEGIN ATOMIC): also the few words that
# matter, as whole words, and ".".
_NEXT_TRACK = re.compile(
    _GROUP + "|" + _STRING + r"""|['"$;().]|--|/\*"""
    r"|(?<!["
    + _ID_CLASS
    + r"])(?i:atomic|begin|case|end|as|from|stdin)(?!["
    + _ID_CLASS
    + r"])",
    re.S,
)
_WORD = re.compile(r"[A-Za-z_\x80-\U0010ffff][" + _ID_CLASS + r"]*")
_IDENT_REST = re.compile(r"[" + _ID_CLASS + r"]*")
_DOLLAR_DELIM = re.compile(
    r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$"
)
_DIGIT_RUN = re.compile(r"[0-9]*")
_WS_RUN = re.compile(r"[ \t\n\r\f\v]*")
_HWS_RUN = re.compile(r"[ \t\r\f\v]*")
_EOL = re.compile(r"[\n\r]")
_COMMENT_DELIM = re.compile(r"/\*|\*/")
# Blanks, empty statements and line comments between statements (one unique parse).
_TRIVIA = re.compile(r"[ \t\n\r\f\v;]*(?:--[^\n\r]*[ \t\n\r\f\v;]*)*")
_COPY_OR_CREATE = re.compile(r"(?i)c(?:opy|reate)(?![" + _ID_CLASS + r"])")
_ATOMIC_HINT = re.compile(r"(?i)atomic")
_STDIN_HINT = re.compile(r"(?i)stdin")


def _error(reason: str, text: str, offset: int, origin: str | None) -> SQLSyntaxError:
    """Build an SQLSyntaxError locating ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    line_start = text.rfind("\n", 0, offset) + 1
    if line_start == 0 and text.startswith("\ufeff"):
        line_start = 1
    return SQLSyntaxError(reason, line, offset - line_start + 1, origin)


def _past_blanks(text: str, pos: int, run: re.Pattern[str] = _WS_RUN) -> int:
    """Return the end of the (possibly empty) match of ``run`` at ``pos``: blanks by default."""
    m = run.match(text, pos)
    return pos if m is None else m.end()


def _is_ident_char(c: str) -> bool:
    """Whether ``c`` can continue a PostgreSQL identifier (letters, digits, _, $, non-ASCII)."""
    return c in _ASCII_IDENT or c >= "\x80"


def _starts_token(text: str, i: int, floor: int) -> bool:
    """Whether the character at ``i`` begins a token rather than continuing an identifier.

    ``floor`` is the end of the last token handled, so the characters in
    ``[floor, i)`` are known to be unquoted code.
    """
    if i <= floor:
        return True
    c = text[i - 1]
    if c in _DIGITS:  # a number glued to the token does not absorb it
        j = i - 1
        while j > floor and text[j - 1] in _DIGITS:
            j -= 1
        return j <= floor or not _is_ident_char(text[j - 1])
    return not _is_ident_char(c)


def skip_quoted(text: str, p: int, quote: str, origin: str | None) -> int:
    """Return the offset after the literal opened by ``quote`` at ``p`` (doubling escapes).

    Raises:
        SQLSyntaxError: the literal is not closed.
    """
    find = text.find
    i = p + 1
    while True:
        j = find(quote, i)
        if j < 0:
            what = "quoted string" if quote == "'" else "quoted identifier"
            raise _error(f"unterminated {what} starting", text, p, origin)
        if text.startswith(quote, j + 1):
            i = j + 2
        else:
            return j + 1


def skip_estring(text: str, p: int, origin: str | None) -> int:
    """Return the offset after the ``E'…'`` string whose quote is at ``p``.

    Raises:
        SQLSyntaxError: the string is not closed.
    """
    m = _ESTRING_BODY.match(text, p + 1)
    if m is None:
        raise _error("unterminated quoted string starting", text, p - 1, origin)
    return m.end()


def skip_string(text: str, p: int, floor: int, origin: str | None) -> int:
    """Return the offset after the string literal whose opening quote is at ``p``."""
    if p > floor and text[p - 1] in "eE" and _starts_token(text, p - 1, floor):
        return skip_estring(text, p, origin)
    return skip_quoted(text, p, "'", origin)


def skip_dollar(text: str, p: int, floor: int, origin: str | None) -> int:
    """Return the offset after the token that the ``$`` at ``p`` belongs to or starts.

    That is a whole dollar-quoted string, a ``$n`` parameter, a lone ``$``, or the
    rest of the identifier that the ``$`` continues.

    Raises:
        SQLSyntaxError: a dollar-quoted string is not closed.
    """
    if not _starts_token(text, p, floor):
        return _past_blanks(text, p, _IDENT_REST)
    m = _DOLLAR_DELIM.match(text, p)
    if m is None:
        return _past_blanks(text, p + 1, _DIGIT_RUN)
    tag = m.group()
    close = text.find(tag, m.end())
    if close < 0:
        raise _error(
            f"unterminated dollar-quoted string {tag} starting", text, p, origin
        )
    return close + len(tag)


def skip_line_comment(text: str, p: int) -> int:
    """Return the offset of the line break ending the ``--`` comment at ``p`` (or the end)."""
    m = _EOL.search(text, p + 2)
    return len(text) if m is None else m.start()


def skip_block_comment(text: str, p: int, origin: str | None) -> int:
    """Return the offset after the nested ``/* … */`` comment opened at ``p``.

    Raises:
        SQLSyntaxError: the comment is not closed.
    """
    search = _COMMENT_DELIM.search
    depth = 1
    i = p + 2
    while True:
        m = search(text, i)
        if m is None:
            raise _error("unterminated /* comment starting", text, p, origin)
        i = m.end()
        if text[i - 1] == "*":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return i


def skip_literal(text: str, p: int, floor: int, origin: str | None) -> int:
    """Skip the literal or comment that starts at ``p``; return the offset after it.

    ``text[p]`` must start one: ``'`` (a string, ``E''`` included through
    ``floor``), ``"`` (a quoted identifier), ``$`` (a dollar quote, or a plain
    ``$``), ``-`` (a ``--`` comment) or ``/`` (a ``/* */`` comment). Shared by
    the scanners that look for tokens outside literals.
    """
    c = text[p]
    if c == "'":
        return skip_string(text, p, floor, origin)
    if c == '"':
        return skip_quoted(text, p, '"', origin)
    if c == "$":
        return skip_dollar(text, p, floor, origin)
    if c == "-":
        return skip_line_comment(text, p)
    return skip_block_comment(text, p, origin)


def _skip_trivia(text: str, pos: int, origin: str | None) -> int:
    """Return the offset of the next token after blanks, comments and empty ``;``."""
    match = _TRIVIA.match
    while True:
        m = match(text, pos)
        if m is not None:
            pos = m.end()
        if not text.startswith("/*", pos):
            return pos
        pos = skip_block_comment(text, pos, origin)


def _leading_words(text: str, pos: int, origin: str | None, limit: int) -> list[str]:
    """Return up to ``limit`` lower-cased words starting the statement at ``pos``."""
    words: list[str] = []
    while len(words) < limit:
        m = _WORD.match(text, pos)
        if m is None:
            break
        words.append(m.group().lower())
        pos = m.end()
        while True:
            pos = _past_blanks(text, pos)
            if text.startswith("--", pos):
                pos = skip_line_comment(text, pos)
            elif text.startswith("/*", pos):
                pos = skip_block_comment(text, pos, origin)
            else:
                break
    return words


def _tracked_mode(text: str, start: int, stop: int, origin: str | None) -> str | None:
    """Return ``"copy"`` or ``"routine"`` if the statement needs keyword tracking, else None.

    ``[start, stop)`` is the statement up to its first top-level ``;``: a
    ``COPY`` naming ``STDIN``, or a ``CREATE [OR REPLACE] FUNCTION|PROCEDURE``
    naming ``ATOMIC`` there (a ``BEGIN ATOMIC`` body always opens before its
    first ``;``).  The words may be in strings or comments: the tracked scan decides.
    """
    m = _COPY_OR_CREATE.match(text, start)
    if m is None:
        return None
    if m.end() - start == 4:
        return "copy" if _STDIN_HINT.search(text, start, stop) else None
    if not _ATOMIC_HINT.search(text, start, stop):
        return None
    words = _leading_words(text, start, origin, 4)[1:]
    if words[:2] == ["or", "replace"]:
        words = words[2:]
    return "routine" if words and words[0] in _ROUTINES else None


def _last_token_end(text: str, pos: int, p: int, last: int) -> int:
    """Return the end of the last token before ``p``, given code in ``[pos, p)``.

    ``last`` is the end of the last token before ``pos``.
    """
    r = p
    while r > pos and text[r - 1] in _WS:
        r -= 1
    return r if r > pos else last


def _scan_plain(text: str, pos: int, origin: str | None) -> tuple[int, int]:
    """Scan a statement from its first token at ``pos`` up to its terminating ``;``.

    Returns (end of its last token, offset of the ``;`` or ``len(text)``).
    """
    search = _NEXT.search
    depth = 0
    last = pos
    while True:
        m = search(text, pos)
        if m is None:
            return _last_token_end(text, pos, len(text), last), len(text)
        p = m.start()
        c = text[p]
        if c == "(":
            if m.end() == p + 1:  # else a whole group without nested parentheses
                depth += 1
            pos = last = m.end()
        elif c == "'":
            if p > pos and text[p - 1] in "eE" and _starts_token(text, p - 1, pos):
                pos = last = skip_estring(text, p, origin)
            else:
                pos = last = m.end()
                if pos == p + 1:
                    raise _error("unterminated quoted string starting", text, p, origin)
        elif c == ")":
            if depth:
                depth -= 1
            pos = last = p + 1
        elif c == ";":
            if not depth:
                return _last_token_end(text, pos, p, last), p
            pos = last = p + 1
        elif c == '"':
            pos = last = skip_quoted(text, p, '"', origin)
        elif c == "$":
            pos = last = skip_dollar(text, p, pos, origin)
        else:
            last = _last_token_end(text, pos, p, last)
            if c == "-":
                pos = skip_line_comment(text, p)
            else:
                pos = skip_block_comment(text, p, origin)


def _scan_tracked(
    text: str, pos: int, mode: str, origin: str | None
) -> tuple[int, int, bool]:
    """Scan a COPY or CREATE FUNCTION/PROCEDURE statement, following its keywords.

    Like `_scan_plain`, but also sees ``BEGIN``, ``ATOMIC``, ``CASE``, ``END``,
    ``AS``, ``FROM``, ``STDIN`` (as whole words) and ``.``; two of them are
    adjacent when only blanks and comments separate them.

    Returns (end of last token, offset of ``;`` or end, whether it is COPY FROM STDIN).
    """
    search = _NEXT_TRACK.search
    blank = _WS_RUN.fullmatch
    routine = mode == "routine"
    depth = 0
    begin_depth = 0
    copy_in = False
    prev = ""  # the last keyword or ".", or "" after any other token
    prev_end = pos
    last = pos
    while True:
        m = search(text, pos)
        if m is None:
            return _last_token_end(text, pos, len(text), last), len(text), copy_in
        p = m.start()
        c = text[p]
        if c.isalpha():  # one of the keywords
            word = m.group().lower()
            adjacent = prev if blank(text, prev_end, p) else ""
            pos = last = prev_end = m.end()
            prev = word
            if depth or adjacent in (".", "as"):  # t.end, AS case: names
                continue
            if not routine:
                if word == "stdin" and adjacent == "from":
                    copy_in = True
            elif word == "atomic":
                if adjacent == "begin":
                    begin_depth += 1
            elif word == "case":
                if begin_depth:
                    begin_depth += 1
            elif word == "end" and begin_depth:
                begin_depth -= 1
            continue
        if c == "-" or c == "/":
            last = _last_token_end(text, pos, p, last)
            pos = (
                skip_line_comment(text, p)
                if c == "-"
                else skip_block_comment(text, p, origin)
            )
            if blank(text, prev_end, p):
                prev_end = pos  # a comment keeps two keywords adjacent
            continue
        if c == ";" and not depth and not begin_depth:
            return _last_token_end(text, pos, p, last), p, copy_in
        prev = "." if c == "." else ""
        if c == "(":
            if m.end() == p + 1:
                depth += 1
            pos = m.end()
        elif c == ")":
            if depth:
                depth -= 1
            pos = p + 1
        elif c == "'":
            pos = skip_string(text, p, pos, origin)
        elif c == '"':
            pos = skip_quoted(text, p, '"', origin)
        elif c == "$":
            pos = skip_dollar(text, p, pos, origin)
        else:  # "." or a ';' inside parentheses or an atomic body
            pos = p + 1
        last = prev_end = pos


def _copy_data(
    text: str, semi: int, stmt_start: int, origin: str | None
) -> tuple[int, int, int]:
    """Locate the data block after a ``COPY … FROM STDIN;`` whose ``;`` is at ``semi``.

    Returns (data start, data end, offset after the ``\\.`` line).

    Raises:
        SQLSyntaxError: code follows the ``;`` on its line, or no ``\\.`` line ends the data.
    """
    n = len(text)
    i = semi + 1
    while True:  # the rest of the statement's line: blanks, ';' and comments only
        i = _past_blanks(text, i, _HWS_RUN)
        if i >= n or text[i] == "\n":
            break
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            break
        if text.startswith("/*", i):
            j = skip_block_comment(text, i, origin)
            if text.find("\n", i, j) < 0:
                i = j
                continue
        elif text[i] == ";":
            i += 1
            continue
        raise _error(
            "unexpected text after COPY ... FROM STDIN on the same line",
            text,
            i,
            origin,
        )
    data_start = i = min(i + 1, n)
    while True:
        if text.startswith("\\.", i):
            j = i + 2
            if j < n and text[j] == "\r":
                j += 1
            if j >= n:
                return data_start, i, n
            if text[j] == "\n":
                return data_start, i, j + 1
        k = text.find("\n\\.", i)
        if k < 0:
            raise _error(
                "COPY ... FROM STDIN data without a terminating \\. line, statement starting",
                text,
                stmt_start,
                origin,
            )
        i = k + 1


def iter_statements(source: str, *, origin: str | None = None) -> Iterator[Statement]:
    """Yield the statements of ``source`` one by one, in order.

    Comment-only stretches, blanks and empty statements (``;;``) yield nothing; they
    stay in the source between the statements' offsets (see `Statement`).  A last
    statement without ``;`` is still yielded.

    Parameters:
        source: SQL text, for example a whole ``.sql`` file or a plain ``pg_dump``.
        origin: a file name (or other label) used in errors and copied to each
            statement.

    Raises:
        SQLSyntaxError: an unterminated quoted string, quoted identifier,
            dollar-quoted string, block comment or COPY data block (raised when the
            scan reaches it, after the statements before it were yielded), or code on
            the line after ``COPY … FROM STDIN;``.
    """
    text = source
    n = len(text)
    pos = 1 if text.startswith("\ufeff") else 0
    line, line_pos = 1, 0
    while True:
        start = _skip_trivia(text, pos, origin)
        if start >= n:
            return
        line += text.count("\n", line_pos, start)
        line_pos = start
        if text[start] == "\\":
            eol = text.find("\n", start)
            pos = end = n if eol < 0 else eol
            while text[end - 1] in _WS:
                end -= 1
            yield Statement(text[start:end], line, "meta", start, end, origin=origin)
            continue
        end, pos = _scan_plain(text, start, origin)
        copy_in = False
        mode = _tracked_mode(text, start, pos, origin)
        if mode is not None:
            end, pos, copy_in = _scan_tracked(text, start, mode, origin)
        if not copy_in:
            yield Statement(text[start:end], line, "sql", start, end, origin=origin)
            pos = min(pos + 1, n)
            continue
        if pos >= n:
            raise _error(
                "COPY ... FROM STDIN without ';' or data, statement starting",
                text,
                start,
                origin,
            )
        data_start, data_end, pos = _copy_data(text, pos, start, origin)
        yield Statement(
            text[start:end],
            line,
            "copy_in",
            start,
            end,
            text[data_start:data_end],
            data_start,
            data_end,
            origin,
        )


def split_statements(source: str, *, origin: str | None = None) -> list[Statement]:
    """Split ``source`` into its statements (see `iter_statements`).

    Parameters:
        source: SQL text.
        origin: a file name used in errors and copied to each statement.

    Raises:
        SQLSyntaxError: see `iter_statements`; nothing is returned on error.
    """
    return list(iter_statements(source, origin=origin))
