"""The SQL runner: one call of ``run_sql`` from input to results.

`Run` ties the stages together: sources (`source`) → statements and their
parameters (`units`, `params`) → execution (`execute`) → output (`report`),
and applies the hooks and the error policy.  Modes (see `connect` for how
the mode is chosen):

* own transactions (autocommit): consecutive parameter-less statements go as
  batches; a batch that fails was rolled back whole, so its statements run
  again alone (from the failing one, when the server's error position names
  it; else one by one until the failing one is found).  The batch size
  shrinks after a failure and grows after a success.  Transaction control
  (``BEGIN``…``COMMIT``) runs alone and is honoured as ``psql`` does:
  statements inside such a block are batched under a savepoint and re-run
  without one after a failure, which then aborts the block, as in psql.
* joined: each batch or statement runs under a SAVEPOINT, so a failure
  undoes only itself; the caller's transaction is never ended.
* atomic: one transaction (a SAVEPOINT when joined) around the whole run;
  the first failure rolls everything back and is raised.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

from .connect import Target, open_target
from .execute import BatchFailed, Executor, is_fatal
from .kinds import changes_session
from .options import RunOptions
from .report import Reporter
from .results import (
    OutcomeStatus,
    QueryResult,
    StatementOutcome,
    error_line,
    statement_error,
)
from .source import read_sources
from .units import Binder, Unit, build_units, check_unit, directive_units

__all__ = ["Run"]

log = logging.getLogger("macrostrat.database.query")

_FIRST_BATCH = 64
_MAX_BATCH = 4096
_MAX_BATCH_CHARS = 4_000_000
_ATOMIC = "_macrostrat_atomic"


class Run:
    """One run of SQL on one connection; iterate it to execute.

    Parameters:
        connectable: Engine, Connection, Session or Database.
        sql: what `source.read_sources` accepts.
        params: the parameters (see `params.distribute`).
        opts: the checked options.
        join: begin a transaction on an idle Session/Connection (run_query).
        per_source: distribute ``params`` per source rather than over all
            statements (run_fixtures gives each file the same parameters).
        announce_base: print each file's path relative to this directory
            before its statements (run_fixtures).
    """

    _target: Target
    _ex: Executor
    _bind: Binder

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
        self._size = _FIRST_BATCH
        self._groups = 0
        self._reporter: Reporter | None = None
        self._atomic_open = False
        self._own = True  # statements commit on their own (not joined, not atomic)

    def outcomes(self) -> list[StatementOutcome]:
        """What happened to each statement so far, in order."""
        return [unit.outcome() for unit in self.finished]

    # -- helpers ------------------------------------------------------------

    def _render(self, comp: pgsql.Composable) -> str:
        """Render a psycopg Composable on the run's connection."""
        return comp.as_string(self._target.raw)

    def _check(self, unit: Unit) -> None:
        """Refuse a statement that cannot run in this run's mode."""
        check_unit(unit, joined=self._target.joined, atomic=self.opts.atomic)

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

    def _settle_pending(self, status: OutcomeStatus) -> None:
        """Give the statements of a closed psql-style block their final status."""
        for unit in self._pending:
            if unit.status == "executed":
                unit.status = status
        self._pending.clear()

    def _scope(self) -> str:
        """``auto``, ``user_tx``, ``user_aborted``, ``savepoint``, ``began`` or ``bare``."""
        if self.opts.atomic:
            return "savepoint"
        if self._target.joined:
            if not self.opts.use_transaction:
                return "bare"
            return "began" if self._target.began else "savepoint"
        status = self._ex.status
        if status == TransactionStatus.IDLE:
            return "auto"
        return "user_tx" if status == TransactionStatus.INTRANS else "user_aborted"

    def _batching(self, scope: str) -> bool:
        """Whether batches may be used in ``scope``."""
        return (
            self.opts.use_transaction
            and self.opts.transform_statement is None
            and scope in ("auto", "user_tx", "savepoint")
        )

    # -- hooks --------------------------------------------------------------

    def _directives(self, unit: Unit, directives: Any, recovery: bool) -> list[Unit]:
        """Units for the directives a hook returned."""
        return directive_units(
            unit,
            list(directives),
            recovery=recovery,
            render=self._render,
            check=self._check,
        )

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
        return self._directives(unit, directives, recovery=False)

    # -- execution ----------------------------------------------------------

    def _ok(self, unit: Unit, result: QueryResult, status: OutcomeStatus) -> None:
        """Record and print a statement that succeeded."""
        self._record(unit, status, result)
        reporter = self._reporter
        if reporter is not None and reporter.prints_success:
            reporter.ok(unit.shown, unit.label)

    def _fail(
        self,
        unit: Unit,
        orig: BaseException,
        offset: int,
        queue: deque[Unit],
        note: str = "",
    ) -> None:
        """Handle a failed statement: hook, report, then raise or go on."""
        raw = self._target.raw
        err = statement_error(
            orig,
            index=unit.index,
            source=unit.origin,
            line=unit.line,
            text=unit.shown,
            params=unit.send,
            note=note,
            at_line=error_line(orig, unit.stmt.text, unit.line, offset)
            if unit.sql == unit.stmt.text
            else None,
        )
        fatal = is_fatal(orig, raw)
        if raw.closed or raw.broken:
            self._target.invalidate()
        if unit.group:  # found the statement that failed its batch
            for nxt in queue:
                if nxt.group != unit.group:
                    break
                nxt.single = False
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

    def _run_single(
        self, unit: Unit, scope: str, queue: deque[Unit]
    ) -> Iterator[QueryResult]:
        """Run one statement alone; yield its result if it succeeded."""
        assert unit.sql is not None
        ex = self._ex
        wrap = scope == "savepoint" and unit.cls not in ("begin", "end", "savepoint")
        copy_data = unit.stmt.data if unit.stmt.kind == "copy_in" else None
        copy_out = unit.cls == "copy_out"
        try:
            result = ex.run_single(
                unit.sql,
                unit.send,
                many=unit.many,
                copy_data=copy_data,
                copy_out=copy_out,
                wrap=wrap,
            )
        except psycopg.Error as orig:
            if scope == "began" and not ex.raw.closed:
                ex.raw.rollback()  # nothing but this statement was in it
            copy = copy_data is not None or copy_out
            offset = ex.sent_offset(wrap=wrap, params=unit.send, copy=copy)
            self._fail(unit, orig, offset, queue)
            return
        status: OutcomeStatus = "committed" if scope == "auto" else "executed"
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
        self._ok(unit, result, status)
        yield result

    def _run_batch(
        self, batch: list[Unit], scope: str, queue: deque[Unit]
    ) -> Iterator[QueryResult]:
        """Run statements as one batch; on failure queue them to run again."""
        texts = [unit.sql for unit in batch if unit.sql is not None]
        try:
            results = self._ex.run_batch(texts, wrap=scope != "auto")
        except BatchFailed as failed:
            if is_fatal(failed.orig, self._ex.raw):
                # Stop at once (no re-run); name the statement when known.
                note = ""
                if failed.at is None:
                    first, last = batch[0].index + 1, batch[-1].index + 1
                    note = f" (in a batch of statements {first}-{last}, rolled back)"
                at = failed.at or 0
                for unit in batch[:at]:
                    self._record(unit, "rolled_back")
                self._fail(batch[at], failed.orig, failed.offset, queue, note)
                return
            self._size = max(1, self._size // 8)
            if failed.at is not None:
                batch[failed.at].single = True
            else:
                self._groups += 1
                for unit in batch:
                    unit.single, unit.group = True, self._groups
            queue.extendleft(reversed(batch))
            return
        self._size = min(_MAX_BATCH, self._size * 2)
        status: OutcomeStatus = "committed" if scope == "auto" else "executed"
        for unit, result in zip(batch, results, strict=True):
            self._ok(unit, result, status)
        yield from results

    def _collect(self, first: Unit, queue: deque[Unit]) -> list[Unit]:
        """The batch starting with ``first``: following plain statements, up to the batch size."""
        batch = [first]
        size = self._size
        chars = len(first.stmt.text)
        while queue and len(batch) < size and chars < _MAX_BATCH_CHARS:
            nxt = queue[0]
            if nxt.single or nxt.skip or nxt.stmt.kind != "sql":
                break
            if nxt.sql is None:
                self._bind(nxt)
            if not nxt.plain:
                break
            batch.append(queue.popleft())
            chars += len(nxt.stmt.text)
        return batch

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
            scope = self._scope()
            if queue and not unit.single and unit.plain and self._batching(scope):
                batch = self._collect(unit, queue)
                if len(batch) > 1:
                    yield from self._run_batch(batch, scope, queue)
                    continue
            yield from self._run_single(unit, scope, queue)

    # -- the run ------------------------------------------------------------

    def _prepare(self) -> list[Unit]:
        """Read, split, check and (without transform_statement) bind everything."""
        sources = read_sources(
            self.sql, interpret_as_file=self.opts.interpret_as_file, render=self._render
        )
        units = build_units(
            sources,
            self.params,
            per_source=self.per_source,
            ensure_single=self.opts.ensure_single_query,
            check=self._check,
        )
        if self._own and any(changes_session(u.stmt.text) for u in units):
            self._target.discard_if_pooled()
        if self.opts.transform_statement is None:
            bind = self._bind
            for unit in units:
                if unit.stmt.kind != "meta":
                    bind(unit)
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
        if self._ex.raw.closed or self._ex.raw.broken:
            return
        if action == "rollback":
            try:
                self._ex.execute(verb)
            except psycopg.Error as exc:
                log.debug("rolling back the atomic run failed: %s", exc)
            self._settle_all("rolled_back")
            return
        try:
            self._ex.execute(verb)
        except psycopg.Error as orig:
            self._atomic_open = True  # the cleanup rolls back
            raise statement_error(
                orig, index=None, source=None, line=None, text=verb
            ) from orig
        if not joined:
            self._settle_all("committed")

    def _settle_all(self, status: OutcomeStatus) -> None:
        """Give every executed statement of an atomic run its final status."""
        for unit in self.finished:
            if unit.status == "executed":
                unit.status = status

    def _close_own_transaction(self, finished: bool) -> None:
        """Roll back a transaction the SQL opened and left open (psql does too)."""
        ex = self._ex
        if self._target.joined or ex.raw.closed or ex.raw.broken:
            return
        if ex.status == TransactionStatus.IDLE:
            return
        log.log(
            logging.WARNING if finished else logging.DEBUG,
            "the SQL left a transaction open (BEGIN without COMMIT); it was rolled "
            "back, as psql does at the end of a script",
        )
        try:
            ex.execute("ROLLBACK")
        except psycopg.Error as exc:
            log.debug("ROLLBACK failed: %s", exc)
        self._settle_pending("rolled_back")

    def __iter__(self) -> Iterator[QueryResult]:
        """Execute the run, yielding the result of each statement that succeeded."""
        self._target = open_target(self.connectable, join=self.join)
        self._ex = Executor(self._target.raw)
        self._bind = Binder(self._render, self.opts.has_server_binds)
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
                self._ex.close()
                self._target.close()
