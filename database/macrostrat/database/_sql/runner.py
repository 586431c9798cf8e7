"""The SQL runner: one call of ``run_sql`` from input to results.

`Run` ties the stages together: sources (`source`) → statements and their
parameters (`units`, `params`) → execution (`execute`) → output (`report`),
and applies the hooks and the error policy (the parts it shares with the
SQLite runner are in `run_base.RunBase`).  Execution is ``psql``'s (see
`execute` for how messages are framed so that batching never shows):

* own transactions (the connection is idle): each statement is committed on
  its own; a failure stops the statement (and, with ``raise_errors``, the
  run) and nothing is ever run twice.  The SQL's own ``BEGIN`` … ``COMMIT``
  blocks behave as in ``psql``: a failure inside one aborts it, later
  statements fail until ``COMMIT``/``ROLLBACK``, and a block left open at
  the end is rolled back.
* joined (the caller's transaction): each statement's failure is rolled back
  to a savepoint, undoing only itself; the caller's transaction is never
  ended.
* atomic: one transaction (a SAVEPOINT when joined) around the whole run;
  the first failure rolls everything back and is raised (``psql -1``).

Runs of consecutive parameter-less statements go in one message; the batch
size grows after a success and shrinks after a failure.

Longer than 400 lines because `Run` is the one place where the stages, the
hooks and the error policy meet for PostgreSQL (the parts shared with SQLite
are already in `run_base`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

from .._commit import current_journal
from ..errors import UnsafeRetryError
from .connect import Target, open_target
from .execute import BatchOutcome, Executor, Scope, is_fatal
from .kinds import keeps_transaction_state, savepoint_name
from .results import OutcomeStatus, QueryResult, error_line, statement_error
from .run_base import RunBase
from .units import Binder, Unit, check_unit

__all__ = ["Run"]

log = logging.getLogger("macrostrat.database.query")

_FIRST_BATCH = 64
_MAX_BATCH = 4096
_MAX_BATCH_CHARS = 4_000_000
_ATOMIC = "_macrostrat_atomic"
_BATCHABLE = {
    Scope.AUTO: frozenset({"plain"}),
    Scope.BLOCK: frozenset({"plain", "alone"}),
    Scope.EACH: frozenset({"plain", "alone"}),
}


class Run(RunBase):
    """One run of SQL on one PostgreSQL connection; iterate it to execute.

    Parameters: see `run_base.RunBase`.
    """

    _target: Target
    _ex: Executor
    _bind: Binder
    _size = _FIRST_BATCH
    """The next batch's size at most: doubled after a success, divided by 8
    after a failure (set on the instance once it changes)."""

    # -- helpers ------------------------------------------------------------

    def _render(self, comp: pgsql.Composable) -> str:
        """Render a psycopg Composable on the run's connection."""
        return comp.as_string(self._target.raw)

    def _check(self, unit: Unit) -> None:
        """Refuse a statement that cannot run in this run's mode."""
        check_unit(unit, joined=self._target.joined, atomic=self.opts.atomic)

    def _scope(self) -> Scope:
        """Where the next statement runs (see `execute.Scope`)."""
        target = self._target
        return self._ex.scope(
            in_caller_tx=target.joined or self.opts.atomic,
            use_savepoints=self.opts.use_transaction and not target.began,
        )

    def _batching(self, scope: Scope) -> bool:
        """Whether batches may be used in ``scope``."""
        return (
            scope in _BATCHABLE
            and self.opts.use_transaction
            and self.opts.transform_statement is None
        )

    def _batchable(self, unit: Unit, scope: Scope) -> bool:
        """Whether ``unit`` may share a message in ``scope``."""
        return (
            not unit.single
            and unit.cls in _BATCHABLE[scope]
            and unit.stmt.kind == "sql"
            and unit.sql is not None
            and unit.send is None
        )

    # -- execution ----------------------------------------------------------

    def _fail(
        self,
        unit: Unit,
        orig: BaseException,
        offset: int,
        queue: deque[Unit],
        note: str = "",
        status: OutcomeStatus = "failed",
    ) -> None:
        """Handle a failed statement: hook, report, then raise or go on."""
        raw = self._target.raw
        err = self._statement_error(
            unit,
            orig,
            note=note,
            at_line=error_line(orig, unit.stmt.text, unit.line, offset)
            if unit.sql == unit.stmt.text
            else None,
        )
        fatal = is_fatal(orig, raw)
        if raw.closed or raw.broken:
            self._target.invalidate()
        elif self.opts.on_error is not None:
            self._ex.settle()  # the hook gets a usable connection
        self._failed(unit, err, queue, fatal=fatal, status=status)

    def _track_savepoints(self, unit: Unit, result: QueryResult) -> None:
        """Follow the SQL's own savepoints, so ROLLBACK TO marks what it undid."""
        if not self._own or unit.cls not in ("savepoint", "release"):
            return
        name = savepoint_name(unit.stmt.text)
        if name is None:
            return
        rollback = (result.statusmessage or "").startswith("ROLLBACK")
        self._follow_savepoint(unit, name, rolled_back=rollback)

    def _run_single(
        self, unit: Unit, scope: Scope, queue: deque[Unit]
    ) -> Iterator[QueryResult]:
        """Run one statement alone; yield its result if it succeeded."""
        assert unit.sql is not None
        ex = self._ex
        if unit.cls == "end" and keeps_transaction_state(unit.stmt.text):
            ex.abort_transaction()
        copy_data = unit.stmt.data if unit.stmt.kind == "copy_in" else None
        try:
            result = ex.run_single(
                unit.sql,
                scope,
                params=unit.send,
                many=unit.many,
                copy_data=copy_data,
                copy_out=unit.cls == "copy_out",
                top_level=unit.cls in ("top_level", "savepoint"),
                ends_savepoint=unit.cls in ("release", "end"),
            )
        except psycopg.Error as orig:
            target = self._target
            if target.began and not ex.raw.closed and not ex.raw.broken:
                ex.raw.rollback()  # nothing but this statement was in it
            status: OutcomeStatus = "failed"
            note = ""
            if self._lost_in_flight(orig, unit, scope):
                status = "unknown"
                note = (
                    " (the connection was lost while it was in flight: whether "
                    "it was committed is unknown)"
                )
            if unit.cls == "end" and self._own:
                if status == "unknown":
                    self._settle_pending("unknown")  # the block's fate is its fate
                elif ex.status == TransactionStatus.IDLE:
                    self._settle_pending("rolled_back")  # e.g. a deferred check
            self._fail(unit, orig, ex.sent_offset, queue, note=note, status=status)
            return
        status = "committed" if scope is Scope.AUTO else "executed"
        if unit.cls == "begin":
            status = "executed"
        elif unit.cls == "end" and self._own:
            message = result.statusmessage or ""
            if message == "COMMIT":
                self._settle_pending("committed")
                status = "committed"
            elif message == "ROLLBACK":  # also a COMMIT of a failed transaction
                self._settle_pending("rolled_back")
                status = "rolled_back"
        self._track_savepoints(unit, result)
        self._ok(unit, result, status)
        if self._size < _MAX_BATCH:  # a success: batches may grow again
            self._size = min(_MAX_BATCH, self._size * 2)
        yield result

    def _lost_in_flight(self, orig: BaseException, unit: Unit, scope: Scope) -> bool:
        """Whether a statement that commits was in flight when the connection died.

        Then the server may have committed it before the connection was
        lost, and only the server knows (it did not say: no error came back).
        """
        raw = self._ex.raw
        if not (raw.closed or raw.broken):
            return False
        if unit.cls == "end":
            return True  # even with an error: the commit may have happened first
        return scope is Scope.AUTO and not getattr(orig, "sqlstate", None)

    def _run_batch(
        self, batch: list[Unit], scope: Scope, queue: deque[Unit]
    ) -> Iterator[QueryResult]:
        """Run statements as one message; the ones that never ran go back in ``queue``."""
        texts = [unit.sql for unit in batch if unit.sql is not None]
        out = self._ex.run_batch(texts, scope)
        status: OutcomeStatus = "committed" if scope is Scope.AUTO else "executed"
        done = len(out.results)
        for unit, result in zip(batch, out.results, strict=False):
            self._ok(unit, result, status)
        if out.failed is None and out.lost is None and not out.unparsed:
            self._size = min(_MAX_BATCH, self._size * 2)
            yield from out.results
            return
        self._size = max(1, self._size // 8)
        if out.unparsed:  # nothing ran: send again, the culprit alone
            if out.failed is None:
                for unit in batch:
                    unit.single = True
            else:
                batch[out.failed].single = True
            queue.extendleft(reversed(batch))
            return
        if out.lost is not None:
            yield from out.results
            self._lost(batch, done, out, scope)
            return
        assert out.failed is not None
        assert out.error is not None
        queue.extendleft(reversed(batch[out.failed + 1 :]))
        if self.opts.yield_results:
            self._ex.settle()  # the consumer may use the connection meanwhile
        yield from out.results
        self._fail(batch[out.failed], out.error, out.offset, queue)

    def _lost(
        self, batch: list[Unit], done: int, out: BatchOutcome, scope: Scope
    ) -> None:
        """The connection failed during a batch: record what is known, raise."""
        rest = batch[done:]
        error = out.error if out.error is not None else out.lost
        assert error is not None
        if not rest:  # every statement completed; then the connection went
            self._target.invalidate()
            raise self._statement_error(
                batch[-1],
                error,
                note=" (after it completed: the connection was lost before the "
                "reply to its message ended; it and every statement before it "
                "are committed)",
            )
        first = rest[0]
        if scope is Scope.AUTO and out.error is None:
            # Results may have been lost with the connection: statements from
            # here on may have run, and been committed, or not.
            for unit in rest[1:]:
                self._record(unit, "unknown")
            last = rest[-1].index + 1
            note = (
                " (the connection was lost; whether this statement"
                + (
                    f" and the next ones, up to statement {last},"
                    if len(rest) > 1
                    else ""
                )
                + " ran and were committed is unknown)"
            )
            self._fail(first, error, 0, deque(), note=note, status="unknown")
            return
        if scope is not Scope.AUTO:
            self._settle_pending("rolled_back")
            for unit in rest[1:]:
                self._record(unit, "rolled_back")
        self._fail(first, error, out.offset, deque())

    def _collect(self, first: Unit, queue: deque[Unit], scope: Scope) -> list[Unit]:
        """The batch starting with ``first``: following batchable statements."""
        batch = [first]
        if first.ends:
            return batch
        size = self._size
        chars = len(first.stmt.text)
        while queue and len(batch) < size and chars < _MAX_BATCH_CHARS:
            nxt = queue[0]
            if nxt.skip or nxt.stmt.kind != "sql":
                break
            if nxt.sql is None:
                self._bind(nxt)
            if not self._batchable(nxt, scope):
                break
            batch.append(queue.popleft())
            chars += len(nxt.stmt.text)
            if nxt.ends:
                break
        return batch

    def _loop(self, units: list[Unit]) -> Iterator[QueryResult]:
        """Run the queue of units, in order, yielding each result."""
        queue = deque(units)
        ready = self._ready
        while queue:
            unit = queue.popleft()
            if not ready(unit, queue):
                continue
            scope = self._scope()
            # After a failed message, a plain statement goes framed even alone:
            # the ROLLBACK of the aborted block then rides along with it.
            due = self._ex.rollback_due
            if (
                (queue or due)
                and self._batching(scope)
                and self._batchable(unit, scope)
            ):
                batch = self._collect(unit, queue, scope)
                if len(batch) > 1 or due:
                    yield from self._run_batch(batch, scope, queue)
                    continue
            yield from self._run_single(unit, scope, queue)

    # -- the run ------------------------------------------------------------

    def _open(self) -> None:
        """Open the connection (see `connect.open_target`), its executor and binder."""
        self._target = open_target(self.connectable, join=self.join)
        if not self._target.joined:
            journal = current_journal()
            if journal is not None and journal.strict:
                self._target.close()
                raise UnsafeRetryError(
                    "run_sql() outside a transaction commits on its own (statement "
                    "by statement, or its atomic block): inside a retried unit of "
                    "work a re-run could commit it twice. Call it inside "
                    "db.transaction() (run_with_retry opens one); nothing was run"
                )
        self._ex = Executor(
            self._target.raw,
            # A failure undoes only itself in the caller's transaction, and in
            # an atomic run whose on_error hook may recover from it.
            undo_each=self._target.joined
            if not self.opts.atomic
            else self.opts.on_error is not None,
        )
        self._bind = Binder(self._render, self.opts.has_server_binds)

    def _prepare(self) -> list[Unit]:
        """Read, split, check and (without transform_statement) bind everything.

        A connection checked out for the run is not given back to the pool
        when the SQL may change its session settings (`kinds.changes_session`).
        """
        units = self._build_units()
        if self._own and any(u.ends for u in units):
            self._target.discard_if_pooled()
        self._bind_all(units)
        return units

    def _atomic(self, action: str) -> None:
        """``begin``, ``commit`` or ``rollback`` the atomic run's transaction."""
        joined = self._target.joined
        verb = {
            ("begin", True): f"SAVEPOINT {_ATOMIC}",
            ("begin", False): "BEGIN",
            ("commit", True): f"RELEASE SAVEPOINT {_ATOMIC}",
            ("commit", False): "COMMIT",
            ("rollback", True): f"ROLLBACK TO SAVEPOINT {_ATOMIC}; "
            f"RELEASE SAVEPOINT {_ATOMIC}",
            ("rollback", False): "ROLLBACK",
        }[(action, joined)]
        if action == "begin":
            self._ex.execute(verb)
            self._atomic_open = True
            return
        self._atomic_open = False
        self._ex.savepoint_open = False  # ours was inside the atomic one
        if self._ex.raw.closed or self._ex.raw.broken:
            if action == "rollback" and not joined:
                self._settle_all("rolled_back")  # never committed
            return
        if action == "rollback":
            try:
                self._ex.execute(verb)
            except psycopg.Error as exc:
                log.debug("rolling back the atomic run failed: %s", exc)
            self._settle_all("rolled_back")
            return
        try:
            result = self._ex.execute(verb)
        except psycopg.Error as orig:
            if not (self._ex.raw.closed or self._ex.raw.broken):
                self._atomic_open = True  # the cleanup rolls back
                raise statement_error(
                    orig, index=None, source=None, line=None, text=verb
                ) from orig
            err = statement_error(
                orig,
                index=None,
                source=None,
                line=None,
                text=verb,
                note=" (the connection was lost during COMMIT: whether the run "
                "was committed is unknown)",
            )
            self._settle_all("unknown")
            raise err from orig
        if not joined:
            if (result.statusmessage or "") == "ROLLBACK":
                self._settle_all("rolled_back")
                raise statement_error(
                    psycopg.errors.InFailedSqlTransaction(
                        "COMMIT of the atomic run was turned into ROLLBACK"
                    ),
                    index=None,
                    source=None,
                    line=None,
                    text=verb,
                )
            self._settle_all("committed")

    def _close_own_transaction(self, finished: bool) -> None:
        """Roll back a transaction the SQL opened and left open (psql does too)."""
        ex = self._ex
        if self._target.joined or ex.raw.closed or ex.raw.broken:
            if ex.raw.closed or ex.raw.broken:
                self._settle_pending("rolled_back")
            return
        if ex.status == TransactionStatus.IDLE:
            return
        if ex.rollback_due:  # the block of our failed message, not the SQL's
            ex.settle()
            return
        self._log_left_open(finished)
        try:
            ex.execute("ROLLBACK")
        except psycopg.Error as exc:
            log.debug("ROLLBACK failed: %s", exc)
        ex.savepoint_open = False
        self._settle_pending("rolled_back")

    def _end(self, finished: bool) -> None:
        """Roll back an atomic run that did not commit, leave no savepoint of
        ours in the caller's transaction, and roll back a transaction the SQL
        left open."""
        if self._atomic_open:
            self._atomic("rollback")
        elif self._target.joined:
            self._ex.finish()
        if not finished or not self.opts.atomic:
            self._close_own_transaction(finished)

    def _release(self) -> None:
        """Close the executor and release the connection."""
        self._ex.close()
        self._target.close()
