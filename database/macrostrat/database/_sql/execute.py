"""Fourth stage of the SQL data path: send statements to the server, as psql would.

The `Executor` works on one psycopg connection.  It sends a run of
parameter-less statements as ONE simple-query message, framed so that the
server gives each statement exactly the transaction ``psql`` would give it,
and reads back one result per statement (`wire.send_query`), so it always
knows which statements ran, which one failed, and which never ran.  Nothing
that ran is ever sent again.

Frames, by `Scope`:

``AUTO`` (no transaction in progress; ``psql``'s autocommit)::

    BEGIN; s1; COMMIT AND CHAIN; s2; COMMIT AND CHAIN; … sn; COMMIT

  Each statement is committed on its own before the next one starts; the
  first failure ends the message (the server skips the rest), so statements
  before it are committed and statements after it never ran.  The block the
  failure aborted is rolled back by a ``ROLLBACK`` at the head of the next
  message (no round trip of its own).  A message of one plain statement is
  sent as it is, as psql sends it (after that ``ROLLBACK``, if one is due).  A deferred
  constraint that fails at a statement's COMMIT is that statement's failure,
  as in ``psql``.
``BLOCK`` (inside a transaction: the SQL's own ``BEGIN`` block, or an
  ``atomic`` run)::

    RELEASE _m; SAVEPOINT _m; s1; s2; … sn; RELEASE _m; SAVEPOINT _m

  The statements run in the transaction (under the executor's savepoint
  ``_m``, empty whenever a message starts).  A failure aborts the
  transaction, as in ``psql``.
``EACH`` (the caller's transaction, where a failure must undo only itself)::

    RELEASE _m; SAVEPOINT _m; s1; RELEASE _m; SAVEPOINT _m; s2; …; RELEASE _m; SAVEPOINT _m

  A failed statement is rolled back to ``_m``, which undoes it alone.

The server parses a whole message before running any of it, so a syntax
error anywhere in it runs nothing (`BatchOutcome.unparsed`): its position
names the statement, and the statements before it are sent again (they never
ran), then the failing one alone, which fails by itself exactly as under
``psql``.  Inside a transaction the savepoint ``_m`` (always empty between
messages) keeps such a parse error from aborting the transaction.  The
leading statements of each frame always return results, so "nothing ran"
is told apart from "the first statement failed".

`Executor.run_single` sends one statement: framed by scope when it has no
parameters, otherwise through a cursor (``execute``/``executemany``), or as
``COPY`` with its inline data.

Ctrl-C: psycopg cancels the running query on the server; the executor lets
``KeyboardInterrupt`` through, and `Executor.finish` cleans up its savepoint.

Longer than 400 lines because `Executor` is one state machine (the frame,
the open savepoint, the server's transaction status) whose methods all keep
the same invariant: split, the rule would be spread over several modules.
"""

from __future__ import annotations

import bisect
import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import psycopg
from psycopg import abc as pg_abc
from psycopg import errors as pg_errors
from psycopg.adapt import Transformer
from psycopg.pq import TransactionStatus

from ..errors import MacrostratDatabaseError
from .results import QueryResult
from .wire import Reply, query_result, result_error, send_query

if TYPE_CHECKING:
    from typing_extensions import LiteralString

__all__ = ["BatchOutcome", "Executor", "ExecutorError", "Scope", "is_fatal"]

log = logging.getLogger("macrostrat.database.query")

SAVEPOINT: Final = "_macrostrat_run_sql"
_RENEW: Final = f"RELEASE SAVEPOINT {SAVEPOINT}; SAVEPOINT {SAVEPOINT}"
_OPEN: Final = f"SAVEPOINT {SAVEPOINT}"
_UNDO: Final = f"ROLLBACK TO SAVEPOINT {SAVEPOINT}"
_DROP: Final = f"RELEASE SAVEPOINT {SAVEPOINT}"
_SEP = ";\n"
_INTERNAL_STATES = ("3B001", "25P02", "25P01")  # our frame itself failed


def _as_query(text: str) -> LiteralString:
    """A statement of the script, typed as the query psycopg takes.

    psycopg types queries as ``LiteralString`` so that no data is ever
    formatted into SQL. The runner's statements are the script's own SQL,
    split from it as written (their data travel as parameters), so they are
    sent as they are. (The cast goes through ``object`` because mypy reads
    ``LiteralString`` as ``str`` and would call a direct cast redundant.)
    """
    return cast("LiteralString", cast(object, text))


class Scope(enum.Enum):
    """How statements are framed; see the module docstring."""

    AUTO = "auto"
    BLOCK = "block"
    EACH = "each"
    BARE = "bare"
    """Sent as they are, no savepoint (a transaction in error, a run_query
    transaction, or ``use_transaction=False``)."""


class ExecutorError(MacrostratDatabaseError, RuntimeError):
    """A statement of the runner's own failed (a bug): the state is unknown.

    Still a `macrostrat.database.errors.MacrostratDatabaseError`, so callers
    that catch the package's errors catch it too.
    """


def is_fatal(err: BaseException, raw: psycopg.Connection[Any]) -> bool:
    """True for errors that must stop a run: a cancel or a lost connection.

    A statement cancelled by ``statement_timeout`` is an ordinary failure (psql
    goes on after it); one cancelled on request (Ctrl-C, ``cancel()``,
    ``pg_cancel_backend``) stops the run.
    """
    if isinstance(err, pg_errors.QueryCanceled):
        diag = getattr(err, "diag", None)
        message = getattr(diag, "message_primary", None) or str(err)
        return "statement timeout" not in message
    return bool(raw.closed or raw.broken)


@dataclass(slots=True)
class BatchOutcome:
    """What became of the statements of one message.

    Attributes:
        results: the results of the statements that succeeded, in order
            (statements ``0 … len(results) - 1``).
        failed: the statement that failed (index in the batch), or None.
        error: its error (the psycopg exception).
        offset: where the failed statement starts in the sent text.
        unparsed: the server could not parse the message: nothing ran;
            ``failed`` is the statement its error position points to, or
            None when there was no usable position.
        lost: the connection failed; statements from ``len(results)`` on
            may or may not have run (``AUTO``: may have been committed).
    """

    results: list[QueryResult] = field(default_factory=list)
    failed: int | None = None
    error: psycopg.Error | None = None
    offset: int = 0
    unparsed: bool = False
    lost: psycopg.Error | None = None


@dataclass(slots=True)
class _Frame:
    """A message: its text, each statement's offset and result index."""

    text: str
    offsets: list[int]
    slots: list[int]
    total: int


def _frame(
    texts: Sequence[str], scope: Scope, chain: bool, rollback: bool = False
) -> _Frame:
    """Build the message for ``texts`` in ``scope`` (see the module docstring).

    ``rollback``: first end the block a failed message left aborted (``AUTO``).
    """
    parts: list[str] = []
    offsets: list[int] = []
    slots: list[int] = []
    pos = 0
    n = len(texts)

    def add(piece: str) -> None:
        nonlocal pos
        parts.append(piece)
        pos += len(piece)

    if scope is Scope.AUTO and n == 1:
        # One plain statement: sent as it is (as psql sends it), after the
        # ROLLBACK of a block a failed message left aborted, if any.
        head = 0
        if rollback:
            add("ROLLBACK" + _SEP)
            head = 1
        offsets.append(pos)
        slots.append(head)
        add(texts[0])
        total = head + 1
    elif scope is Scope.AUTO:
        head = 1
        if rollback:
            add("ROLLBACK" + _SEP)
            head = 2
        add("BEGIN" + _SEP)
        between = (";\nCOMMIT AND CHAIN" if chain else ";\nCOMMIT;\nBEGIN") + _SEP
        step = 2 if chain else 3
        for i, text in enumerate(texts):
            offsets.append(pos)
            slots.append(head + step * i)
            add(text)
            add(between if i < n - 1 else ";\nCOMMIT")
        total = head + step * (n - 1) + 2
    elif scope is Scope.BLOCK:
        add(_RENEW + _SEP)
        for i, text in enumerate(texts):
            offsets.append(pos)
            slots.append(2 + i)
            add(text)
            add(_SEP)
        add(_RENEW)
        total = n + 4
    elif scope is Scope.EACH:
        for i, text in enumerate(texts):
            add(_RENEW + _SEP)
            offsets.append(pos)
            slots.append(3 * i + 2)
            add(text)
            add(_SEP)
        add(_RENEW)
        total = 3 * n + 2
    else:
        raise ValueError(f"no batches in scope {scope}")
    return _Frame("".join(parts), offsets, slots, total)


def _begin_command(raw: psycopg.Connection[Any]) -> str:
    """The ``BEGIN`` psycopg sends for ``raw``'s transaction characteristics."""
    parts = ["BEGIN"]
    if raw.isolation_level is not None:
        parts.append(f"ISOLATION LEVEL {raw.isolation_level.name.replace('_', ' ')}")
    if raw.read_only is not None:
        parts.append("READ ONLY" if raw.read_only else "READ WRITE")
    if raw.deferrable is not None:
        parts.append("DEFERRABLE" if raw.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


_CLEARS_PREPARED = re.compile(rb"^(?:DROP|ALTER|ROLLBACK|DISCARD ALL|DEALLOCATE ALL)\b")


def _forget_stale_prepared(raw: psycopg.Connection[Any], reply: Reply) -> None:
    """Do what psycopg does when it sees these commands: drop its prepared cache.

    psycopg prepares statements it runs often (``prepare_threshold``) and
    forgets them after a ``DROP``, ``ALTER``, ``ROLLBACK``, ``DISCARD ALL`` or
    ``DEALLOCATE ALL`` it ran itself, which may invalidate or remove them.
    Messages sent here bypass psycopg, so its cache is told here (through its
    private ``_prepared``; nothing happens when it prepared nothing).
    """
    prepared = getattr(raw, "_prepared", None)
    if prepared is None or not getattr(prepared, "_names", None):
        return
    for res in reply.results:
        tag = res.command_status
        if tag and _CLEARS_PREPARED.match(tag):
            prepared.clear()
            return


_PARSER_FILES = frozenset({"scan.l", "gram.y", "parser.c", "scansup.c"})


def _parse_error(err: BaseException) -> bool:
    """Whether the server's raw parser raised ``err`` (then nothing ran)."""
    diag = getattr(err, "diag", None)
    source = getattr(diag, "source_file", None) if diag is not None else None
    if source:
        return source in _PARSER_FILES
    return getattr(err, "sqlstate", None) == "42601"


def _position(err: BaseException) -> int | None:
    """The server's 0-based error position in the sent text, or None."""
    diag = getattr(err, "diag", None)
    value = getattr(diag, "statement_position", None) if diag else None
    try:
        return int(value) - 1 if value else None
    except ValueError:
        return None


class Executor:
    """Sends statements over one psycopg connection (see the module docstring).

    Parameters:
        raw: the psycopg connection (autocommit, or inside a transaction).
        undo_each: inside a transaction, a failed statement is rolled back
            to the executor's savepoint (``EACH``: the caller's transaction
            goes on); otherwise it aborts the transaction (``BLOCK``).
    """

    def __init__(self, raw: psycopg.Connection[Any], *, undo_each: bool) -> None:
        self.raw = raw
        self.undo_each = undo_each
        self.savepoint_open = False
        self.aborted_in_savepoint = False
        self.rollback_due = False
        self._cur: psycopg.Cursor[Any] | None = None
        self._tx: pg_abc.Transformer | None = None
        self.sent_offset = 0
        self.chain = raw.info.server_version >= 120000

    # -- state -----------------------------------------------------------

    @property
    def status(self) -> TransactionStatus:
        """The server's transaction status (IDLE, INTRANS, INERROR…)."""
        return self.raw.info.transaction_status

    @property
    def cur(self) -> psycopg.Cursor[Any]:
        """A cursor for statements with parameters and COPY (made on first use)."""
        if self._cur is None:
            self._cur = self.raw.cursor()
        return self._cur

    def close(self) -> None:
        """Close the cursor."""
        if self._cur is not None and not self.raw.closed:
            self._cur.close()

    def scope(self, *, in_caller_tx: bool, use_savepoints: bool) -> Scope:
        """The scope the next statement runs in.

        Parameters:
            in_caller_tx: the transaction is the caller's or the atomic run's
                (not one the SQL opened).
            use_savepoints: frame statements with the executor's savepoint.
        """
        status = self.status
        if status != TransactionStatus.INERROR:
            self.aborted_in_savepoint = False
            self.rollback_due = False
        elif self.rollback_due:
            return Scope.AUTO  # our own block, ended by the next message
        if status == TransactionStatus.IDLE and not self.raw.autocommit:
            status = TransactionStatus.INTRANS  # psycopg begins on first use
        if status == TransactionStatus.IDLE:
            self.savepoint_open = False
            return Scope.BARE if in_caller_tx else Scope.AUTO
        if status != TransactionStatus.INTRANS or not use_savepoints:
            return Scope.BARE
        return Scope.EACH if self.undo_each and in_caller_tx else Scope.BLOCK

    def _send(self, text: str) -> Reply:
        """Send a message; first begin the transaction psycopg would begin.

        A non-autocommit psycopg connection (SQLAlchemy's) starts its
        transaction lazily, with the first statement; messages sent here
        bypass that, so the transaction is begun explicitly, with the
        connection's characteristics.
        """
        raw = self.raw
        if not raw.autocommit and self.status == TransactionStatus.IDLE:
            reply = send_query(raw, _begin_command(raw))
            if reply.lost is not None:
                return reply
            if reply.error is not None:
                err = result_error(raw, reply.results[reply.error])
                raise ExecutorError(f"BEGIN failed: {err}") from err
        reply = send_query(raw, text)
        _forget_stale_prepared(raw, reply)
        return reply

    def _simple(self, text: str) -> None:
        """Run our own statement(s); raise `ExecutorError` if they fail."""
        reply = self._send(text)
        if reply.lost is not None:
            raise reply.lost
        if reply.error is not None:
            err = result_error(self.raw, reply.results[reply.error])
            raise ExecutorError(f"{text!r} failed: {err}") from err

    def ensure_savepoint(self) -> None:
        """Open the executor's savepoint (before framed work in a transaction)."""
        if not self.savepoint_open:
            self._simple(_OPEN)
            self.savepoint_open = True

    def undo(self) -> None:
        """Roll back to the executor's savepoint after a failure (it stays open)."""
        if self.raw.closed or self.raw.broken:
            return
        self._simple(_UNDO)

    def finish(self) -> None:
        """Leave no savepoint of ours behind (end of a run, or after Ctrl-C).

        An aborted savepoint is rolled back to first, so the caller's
        transaction is usable again.
        """
        if not self.savepoint_open or self.raw.closed or self.raw.broken:
            self.savepoint_open = False
            return
        try:
            if self.status == TransactionStatus.INERROR:
                self._simple(f"{_UNDO}; {_DROP}")
            elif self.status == TransactionStatus.INTRANS:
                self._simple(_DROP)
        except (psycopg.Error, ExecutorError) as exc:
            log.debug("releasing the runner's savepoint failed: %s", exc)
        self.savepoint_open = False

    def settle(self) -> None:
        """Roll back now the block a failed message left aborted, if any.

        (Normally that ``ROLLBACK`` rides along with the next message.)
        """
        if self.rollback_due and not (self.raw.closed or self.raw.broken):
            self.rollback_due = False
            if self.status == TransactionStatus.INERROR:
                self._simple("ROLLBACK")

    def abort_transaction(self) -> None:
        """Make a failure under our savepoint abort the transaction itself.

        Inside the SQL's own block a failed statement aborts the executor's
        savepoint, which behaves like the aborted block for every statement
        but ``COMMIT``/``ROLLBACK AND CHAIN`` and ``PREPARE TRANSACTION``
        (what they keep depends on the transaction itself being aborted).
        Before those, the savepoint is undone (nothing in it could survive
        the block's end anyway) and the transaction aborted by a statement
        of ours that fails, so the server sees exactly psql's state.
        """
        if not self.aborted_in_savepoint or self.status != TransactionStatus.INERROR:
            return
        self.aborted_in_savepoint = False
        self._simple(f"{_UNDO}; {_DROP}")
        reply = self._send(
            "DO $macrostrat$ BEGIN RAISE EXCEPTION USING MESSAGE = "
            "'macrostrat.database: the statement before failed; aborting the "
            "transaction block as psql would'; END $macrostrat$"
        )
        if reply.lost is not None:
            raise reply.lost

    def _after_failure(self, scope: Scope, *, parsed: bool) -> None:
        """Bring the connection to a known state after a failed message."""
        if self.raw.closed or self.raw.broken:
            return
        if scope is Scope.AUTO:
            status = self.status
            if status == TransactionStatus.INERROR:
                self.rollback_due = True  # sent with the next message
            elif status != TransactionStatus.IDLE:
                self._simple("ROLLBACK")
            return
        if scope is Scope.EACH or (scope is Scope.BLOCK and not parsed):
            # A parse error ran nothing (the savepoint was empty); a failed
            # statement in EACH is undone alone.
            self.undo()
        else:
            # The failure aborted our savepoint, standing in for the
            # transaction (see `abort_transaction`).
            self.savepoint_open = False
            self.aborted_in_savepoint = True

    # -- results ---------------------------------------------------------

    def _result(self, res: Any) -> QueryResult:
        if self._tx is None:
            self._tx = Transformer.from_context(self.raw)
        return query_result(self.raw, res, self._tx)

    def _check_frame(self, reply: Reply, index: int, text: str) -> None:
        """Raise if the failed result at ``index`` is one of our own statements."""
        err = result_error(self.raw, reply.results[index])
        raise ExecutorError(
            f"the SQL runner's own statement failed ({err}); message was:\n{text[:200]}"
        ) from err

    # -- batches -----------------------------------------------------------

    def run_batch(self, texts: Sequence[str], scope: Scope) -> BatchOutcome:
        """Send ``texts`` as one message; report what became of each.

        Never raises for a failed statement: see `BatchOutcome`.
        """
        if scope is not Scope.AUTO:
            self.ensure_savepoint()
        frame = _frame(texts, scope, self.chain, rollback=self.rollback_due)
        reply = self._send(frame.text)
        results = reply.results
        out = BatchOutcome()
        slots = frame.slots
        n = len(texts)
        if reply.error is None and reply.lost is None and len(results) == frame.total:
            self.rollback_due = False
            out.results = [self._result(results[s]) for s in slots]
            return out
        # How many statements completed (their own result, and in AUTO the
        # COMMIT after it, arrived without error)?
        stop = reply.error if reply.error is not None else len(results)
        done = 0
        while done < n:
            last = slots[done] + (1 if scope is Scope.AUTO else 0)
            if last >= stop:
                break
            done += 1
        out.results = [self._result(results[slots[i]]) for i in range(done)]
        if reply.error is not None:
            err = result_error(self.raw, results[reply.error])
            if (
                reply.error == 0
                and slots[0] > 0
                and reply.lost is None
                and _parse_error(err)
            ):
                # Nothing ran: the message did not parse.
                out.unparsed = True
                pos = _position(err)
                if pos is not None and frame.offsets and pos >= frame.offsets[0]:
                    at = bisect.bisect_right(frame.offsets, pos) - 1
                    out.failed = at
                    out.offset = frame.offsets[at]
                out.error = err
                self._after_failure(scope, parsed=False)
                return out
            if done >= n or reply.error < slots[done]:
                # One of our own statements failed: only when the session
                # ended or the query was cancelled (then statement ``done``
                # never ran) is that not a bug.
                ended = reply.lost is not None or self.raw.closed or self.raw.broken
                if done >= n or not (ended or isinstance(err, pg_errors.QueryCanceled)):
                    self._check_frame(reply, reply.error, frame.text)
            out.failed = done
            out.error = err
            out.offset = frame.offsets[done]
        if reply.lost is not None:
            out.lost = reply.lost
            if out.failed is None:
                out.failed = done if done < n else None
            return out
        self._after_failure(scope, parsed=True)
        return out

    # -- one statement -----------------------------------------------------

    def run_single(
        self,
        text: str,
        scope: Scope,
        *,
        params: Any = None,
        many: bool = False,
        copy_data: str | None = None,
        copy_out: bool = False,
        top_level: bool = False,
        ends_savepoint: bool = False,
    ) -> QueryResult:
        """Run one statement and return its result.

        ``sent_offset`` then says where the statement started in the text
        sent (for the line of an error position).

        Parameters:
            text: the statement.
            scope: where it runs (see `Scope`).
            params: driver parameters, or None for none (simple protocol).
            many: ``params`` is a list of parameter sets (``executemany``).
            copy_data: the inline data of a ``COPY … FROM STDIN``.
            copy_out: read a ``COPY … TO STDOUT``.
            top_level: it must run in the transaction itself, not under the
                executor's savepoint (``SAVEPOINT name``, ``SET TRANSACTION``).
            ends_savepoint: it releases or rolls back past the executor's
                savepoint (``RELEASE x``, ``ROLLBACK TO x``, ``COMMIT``…).

        Raises:
            psycopg.Error: the statement failed; the executor's state is
                already settled (``EACH``: undone; otherwise the transaction,
                if any, is aborted, as in ``psql``).
        """
        framed = scope in (Scope.BLOCK, Scope.EACH)
        simple = params is None and copy_data is None and not copy_out
        self.sent_offset = 0
        if (
            scope is Scope.EACH
            and copy_data is None
            and not copy_out
            and not top_level
            and not ends_savepoint
            and psycopg.Pipeline.is_supported()
        ):
            return self._single_each(text, params, many)
        prefix = suffix = ""
        if self.rollback_due and scope is Scope.AUTO:
            # Alone, not as a prefix: a second statement in the message would
            # put this one in a transaction block (what it must not be in).
            self._simple("ROLLBACK")
            self.rollback_due = False
        if framed:
            if top_level:
                if self.savepoint_open:
                    prefix = _DROP + _SEP
            else:
                self.ensure_savepoint()
                if simple and not ends_savepoint:
                    suffix = _SEP + _RENEW
        self.sent_offset = len(prefix)
        if simple:
            result = self._single_simple(prefix + text + suffix, bool(prefix), framed)
        else:
            result = self._single_driver(
                text, framed, params, many, copy_data, copy_out
            )
        if framed and (top_level or ends_savepoint):
            self.savepoint_open = False
        return result

    def _single_simple(self, message: str, prefixed: bool, framed: bool) -> QueryResult:
        """Send one framed or bare statement; settle the savepoint on failure."""
        reply = self._send(message)
        slot = 1 if prefixed else 0
        if reply.error is not None:
            at = reply.error
            err = result_error(self.raw, reply.results[at])
            if at > slot or (
                prefixed and getattr(err, "sqlstate", "") in _INTERNAL_STATES
            ):
                self._check_frame(reply, at, message)
            # Did it fail under our (then empty) savepoint?  Always, unless
            # the RELEASE before a top-level statement had already run.
            under = framed and self.savepoint_open and at == 0
            if under and self.undo_each and not (self.raw.closed or self.raw.broken):
                self.undo()
            elif framed:
                self.aborted_in_savepoint = under
                self.savepoint_open = False
            raise err
        if reply.lost is not None:
            raise reply.lost
        return self._result(reply.results[slot])

    def _single_each(self, text: str, params: Any, many: bool) -> QueryResult:
        """One statement that must undo only itself, in one round trip.

        ``SAVEPOINT``, the statement and ``RELEASE`` go as one pipeline (each
        parsed on its own, so a syntax error cannot abort the caller's
        transaction); on failure the savepoint is rolled back to.
        """
        raw = self.raw
        cur = self.cur
        try:
            with raw.pipeline():
                if not self.savepoint_open:
                    raw.execute(_OPEN)
                self.savepoint_open = True
                if many:
                    cur.executemany(_as_query(text), params)
                else:
                    cur.execute(_as_query(text), params)
                raw.execute(_DROP)
        except psycopg.Error:
            self.savepoint_open = False
            if (
                not (raw.closed or raw.broken)
                and self.status == TransactionStatus.INERROR
            ):
                self._simple(f"{_UNDO}; {_DROP}")
            raise
        self.savepoint_open = False
        if many:
            return QueryResult(cur.statusmessage, cur.rowcount)
        return self._cursor_result()

    def _single_driver(
        self,
        text: str,
        framed: bool,
        params: Any,
        many: bool,
        copy_data: str | None,
        copy_out: bool,
    ) -> QueryResult:
        cur = self.cur
        try:
            if copy_data is not None:
                result = self._copy_in(text, copy_data)
            elif copy_out:
                result = self._copy_out(text)
            elif many:
                cur.executemany(_as_query(text), params)
                result = QueryResult(cur.statusmessage, cur.rowcount)
            else:
                cur.execute(_as_query(text), params)
                result = self._cursor_result()
        except psycopg.Error:
            if framed and not (self.raw.closed or self.raw.broken):
                if self.undo_each:
                    self.undo()
                else:
                    self.savepoint_open = False
                    self.aborted_in_savepoint = True
            raise
        if framed:
            self._simple(_RENEW)
        return result

    def _cursor_result(self) -> QueryResult:
        cur = self.cur
        if cur.pgresult is not None and cur.description is not None:
            return QueryResult(
                cur.statusmessage,
                cur.rowcount,
                [col.name for col in cur.description],
                cur.fetchall(),
            )
        return QueryResult(cur.statusmessage, cur.rowcount)

    def _copy_in(self, text: str, data: str) -> QueryResult:
        """Stream a COPY … FROM STDIN statement's inline data."""
        cur = self.cur
        with cur.copy(_as_query(text)) as copy:
            if data:
                copy.write(data)
        return QueryResult(f"COPY {cur.rowcount}", cur.rowcount)

    def _copy_out(self, text: str) -> QueryResult:
        """Run a COPY … TO STDOUT and keep its data."""
        cur = self.cur
        chunks: list[bytes] = []
        with cur.copy(_as_query(text)) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
        return QueryResult(
            f"COPY {cur.rowcount}", cur.rowcount, copy_data=b"".join(chunks)
        )

    def execute(self, text: str) -> QueryResult:
        """Run our own statement(s) (transaction control of an atomic run).

        Raises:
            psycopg.Error: it failed.
        """
        reply = self._send(text)
        if reply.error is not None:
            raise result_error(self.raw, reply.results[reply.error])
        if reply.lost is not None:
            raise reply.lost
        return self._result(reply.results[-1])
