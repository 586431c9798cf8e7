"""Classify one SQL statement by how the executor must run it.

The executor sends runs of ordinary statements as one message (see
`execute`).  Outside a transaction block each statement of such a message
runs in a transaction block of its own (``BEGIN … COMMIT AND CHAIN``), which
is what ``psql`` gives a statement it sends alone, except for statements
whose meaning depends on whether they are in a transaction block: those are
sent alone.  Inside a block the message runs under the executor's savepoint.
Classes, from the leading keywords:

``plain``
    May share a message with its neighbours anywhere.
``alone``
    Sent alone outside a transaction block, because a transaction block
    changes what it does: ``LOCK``, ``DECLARE`` (need a block: an error
    alone), ``SET LOCAL``, ``SET CONSTRAINTS`` (a warning and no effect
    alone), ``ANALYZE``, ``CLUSTER``, ``REINDEX`` (one transaction per table
    alone, and partitioned tables refuse a block), ``CALL``, ``DO`` (may
    ``COMMIT`` only outside a block) and server-side ``COPY``.  Inside a block
    they may share a message.
``top_level``
    Must run in the transaction itself, never under a savepoint, and alone:
    ``SET TRANSACTION`` and settings of ``transaction_isolation``,
    ``transaction_read_only``, ``transaction_deferrable``.
``copy_out``
    ``COPY … TO STDOUT``: read through ``cursor.copy()``.
``begin``
    ``BEGIN`` / ``START TRANSACTION``.
``end``
    Ends a transaction: ``COMMIT``, ``END``, ``ROLLBACK`` (not ``ROLLBACK TO``),
    ``ABORT``, ``PREPARE TRANSACTION``.
``savepoint``
    ``SAVEPOINT name`` (runs in the transaction itself, never under the
    executor's savepoint).
``release``
    ``RELEASE [SAVEPOINT]``, ``ROLLBACK [WORK] TO [SAVEPOINT]``.
``no_tx``
    Cannot run inside a transaction block: ``CREATE``/``DROP DATABASE``,
    ``CREATE``/``DROP TABLESPACE``, ``ALTER DATABASE … SET TABLESPACE``,
    ``VACUUM``, ``CLUSTER`` without a table, ``CREATE [UNIQUE] INDEX
    CONCURRENTLY``, ``DROP INDEX CONCURRENTLY``, ``REINDEX … CONCURRENTLY``,
    ``REINDEX SCHEMA|DATABASE|SYSTEM``, ``ALTER SYSTEM``, ``CREATE``/``ALTER``/
    ``DROP SUBSCRIPTION``, ``COMMIT PREPARED``, ``ROLLBACK PREPARED``,
    ``DISCARD ALL``, ``ALTER TABLE … DETACH PARTITION … CONCURRENTLY|FINALIZE``.

`changes_session` says which statements end a message (their successors go in the
next one): those that change session settings, which may change how the
server reads the rest of the text (``standard_conforming_strings``) or what a
chained transaction inherits (``default_transaction_isolation``).

The text must start at the statement's first token (as `Statement.text` does);
comments between the leading keywords are skipped.
"""

from __future__ import annotations

import re
from typing import Literal

from .lexer import skip_block_comment, skip_line_comment

__all__ = [
    "StatementClass",
    "changes_session",
    "classify",
    "keeps_transaction_state",
    "leading_words",
    "savepoint_name",
    "skip_trivia",
]

StatementClass = Literal[
    "plain",
    "alone",
    "top_level",
    "copy_out",
    "begin",
    "end",
    "savepoint",
    "release",
    "no_tx",
]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_BLANKS = re.compile(r"\s*")
_STDOUT = re.compile(r"(?is)\bto(?:\s|/\*.*?\*/|--[^\n]*(?:\n|$))+stdout\b")
_TX_SETTING = re.compile(
    r"(?i)^set\s+(?:local\s+|session\s+)?"
    r"transaction_(?:isolation|read_only|deferrable)\b"
)
_DETACH_CONCURRENTLY = re.compile(
    r"(?is)\bdetach\s+partition\b.*\b(?:concurrently|finalize)\b"
)
_SAVEPOINT_NAME = re.compile(
    r"""(?is)^\s*(?:savepoint|release(?:\s+savepoint)?|rollback(?:\s+(?:work|transaction))?"""
    r"""\s+to(?:\s+savepoint)?)\s+("(?:[^"]|"")+"|[^\s;]+)"""
)

# First words that may need a look at the following ones; every other first
# word is "plain" without further work.
_INTERESTING = frozenset(
    {
        "abort",
        "alter",
        "analyze",
        "analyse",
        "begin",
        "call",
        "cluster",
        "commit",
        "copy",
        "create",
        "discard",
        "do",
        "drop",
        "declare",
        "end",
        "lock",
        "prepare",
        "reindex",
        "release",
        "rollback",
        "savepoint",
        "set",
        "start",
        "vacuum",
    }
)


def skip_trivia(text: str, pos: int) -> int:
    """Return the offset of the next token after blanks and comments."""
    while True:
        pos = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("--", pos):
            pos = skip_line_comment(text, pos)
        elif text.startswith("/*", pos):
            pos = skip_block_comment(text, pos, None)
        else:
            return pos


def leading_words(text: str, limit: int = 6) -> list[str]:
    """Return up to ``limit`` lower-cased leading words of a statement.

    A parenthesised group (such as ``REINDEX (VERBOSE)``) counts as the word
    ``"("``; scanning stops at any other non-word character.

    Parameters:
        text: the statement, starting at its first token.
        limit: how many words to return at most.
    """
    words: list[str] = []
    pos = 0
    n = len(text)
    while len(words) < limit and pos < n:
        pos = skip_trivia(text, pos)
        m = _WORD.match(text, pos)
        if m is not None:
            words.append(m.group().lower())
            pos = m.end()
        elif text.startswith("(", pos):
            close = text.find(")", pos)
            if close < 0:
                break
            words.append("(")
            pos = close + 1
        else:
            break
    return words


def _create_or_drop(words: list[str]) -> bool:
    """Whether a CREATE/DROP statement cannot run in a transaction block."""
    rest = words[1:]
    if rest[:1] in (["database"], ["tablespace"], ["subscription"]):
        return True
    if rest[:1] == ["unique"]:
        rest = rest[1:]
    return rest[:2] == ["index", "concurrently"]


def _reindex(words: list[str]) -> bool:
    """Whether a REINDEX statement cannot run in a transaction block."""
    rest = [w for w in words[1:] if w != "("]
    if rest[:1] in (["schema"], ["database"], ["system"]):
        return True
    return rest[1:2] == ["concurrently"]


def classify(text: str) -> StatementClass:
    """Return how the executor must run the statement ``text``.

    Parameters:
        text: one statement, starting at its first token (``Statement.text``).
    """
    m = _WORD.match(text)
    if m is None:
        return "plain"
    first = m.group().lower()
    if first not in _INTERESTING:
        return "plain"
    words = leading_words(text)
    second = words[1] if len(words) > 1 else ""
    if first in ("begin", "start"):
        return "begin" if first == "begin" or second == "transaction" else "plain"
    if first in ("commit", "rollback"):
        if second == "prepared":
            return "no_tx"
        if first == "rollback" and (second == "to" or words[2:3] == ["to"]):
            return "release"
        return "end"
    if first in ("end", "abort"):
        return "end"
    if first == "prepare":
        return "end" if second == "transaction" else "plain"
    if first == "savepoint":
        return "savepoint"
    if first == "release":
        return "release"
    if first == "set":
        if second == "transaction" or _TX_SETTING.match(text):
            return "top_level"
        if second in ("local", "constraints"):
            return "alone"
        return "plain"
    if first in ("call", "do", "lock", "declare", "analyze", "analyse"):
        return "alone"
    if first == "copy":
        return "copy_out" if _STDOUT.search(text) else "alone"
    if first == "vacuum":
        return "no_tx"
    if first == "cluster":
        # Without a table name CLUSTER processes every table: not in a block.
        rest = [w for w in words[1:] if w not in ("(", "verbose")]
        return "no_tx" if not rest else "alone"
    if first == "discard":
        return "no_tx" if second == "all" else "plain"
    if first in ("create", "drop"):
        return "no_tx" if _create_or_drop(words) else "plain"
    if first == "reindex":
        return "no_tx" if _reindex(words) else "alone"
    if first == "alter":
        if second in ("system", "subscription"):
            return "no_tx"
        if second == "database":
            return "no_tx" if "tablespace" in leading_words(text, 8)[3:] else "plain"
        if second == "table" and _DETACH_CONCURRENTLY.search(text):
            return "no_tx"
    return "plain"


def changes_session(text: str) -> bool:
    """Whether a statement may change session state that outlives the run.

    ``SET``/``RESET`` (not ``SET LOCAL``, ``SET TRANSACTION``, ``SET
    CONSTRAINTS``) and any call of ``set_config`` (as in ``pg_dump`` output).
    Such a statement is the last of its message (the server reads a whole
    message with the settings it had when the message arrived, and a chained
    transaction inherits the characteristics of the one before it), and a
    pooled connection that ran one is discarded rather than reused.
    """
    head = text[:5].lower()
    if head.startswith(("set", "reset")):
        words = leading_words(text, 2)
        if words and words[0] in ("set", "reset"):
            return len(words) < 2 or words[1] not in (
                "local",
                "transaction",
                "constraints",
            )
    return "set_config" in text


def keeps_transaction_state(text: str) -> bool:
    """Whether an ``end`` statement keeps something of the transaction it ends.

    ``COMMIT``/``ROLLBACK … AND CHAIN`` (a new transaction with the same
    characteristics) and ``PREPARE TRANSACTION`` (a prepared transaction);
    not ``… AND NO CHAIN``.

    Parameters:
        text: a statement of class ``end`` (see `classify`).
    """
    words = leading_words(text, 5)
    return words[:1] == ["prepare"] or ("chain" in words and "no" not in words)


def savepoint_name(text: str) -> str | None:
    """Return the savepoint a ``SAVEPOINT``/``RELEASE``/``ROLLBACK TO`` names.

    Folded as PostgreSQL folds it: an unquoted name lower-cased, a quoted one
    unquoted (``""`` becomes ``"``) and kept as written.  None when the
    statement names no savepoint.

    Parameters:
        text: a statement of class ``savepoint`` or ``release`` (see `classify`).
    """
    m = _SAVEPOINT_NAME.match(text)
    if m is None:
        return None
    name = m.group(1)
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()
