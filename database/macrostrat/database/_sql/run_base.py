"""What the PostgreSQL and SQLite runners share: a run's bookkeeping and shape.

`RunBase` is one run of SQL on one connection, iterated to execute.  It
holds what does not depend on the database: the outcomes (`_record`, and
`_settle_pending`/`_settle_all` when a transaction ends, `_follow_savepoint`
for the SQL's own savepoints), reading and
splitting the sources into units (`units.build_units`), the common first
steps for each unit of the queue (`_ready`: announcing files, skipping
meta-commands and skipped statements, ``transform_statement``, binding), the
hooks' directives, the ``on_error`` policy (`_failed`), and the order of a
run (`__iter__`).  Its subclasses, `runner.Run` (PostgreSQL) and
`sqlite.SQLiteRun`, open the connection and run the statements.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from psycopg import sql as pgsql

from .lexer import Statement, split_statements
from .options import RunOptions, StatementDirective
from .report import Reporter
from .results import OutcomeStatus, QueryResult, StatementOutcome, statement_error
from .source import read_sources
from .units import Unit, build_units, directive_units

__all__ = ["RunBase", "RunTarget"]

log = logging.getLogger("macrostrat.database.query")


class RunTarget(Protocol):
    """What `RunBase` needs of the connection a run uses."""

    joined: bool
    """The run is inside the caller's transaction."""
    hook_connectable: Any
    """What ``on_error`` hooks receive."""

    def close(self) -> None:
        """Release what opening the target acquired."""
        ...


class RunBase:
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

    Subclasses provide `_open` (sets ``_target`` and ``_bind``), `_render`,
    `_check`, `_loop`, `_atomic`, `_end` and `_release`, and may replace
    `_split` and `_prepare`.
    """

    _target: RunTarget
    _bind: Callable[[Unit], None]

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
        self._user_savepoints: list[tuple[str, int]] = []
        self._reporter: Reporter | None = None
        self._atomic_open = False
        self._own = True  # statements commit on their own (not joined, not atomic)
        self._announced: str | None = None

    def outcomes(self) -> list[StatementOutcome]:
        """What happened to each statement so far, in order."""
        return [unit.outcome() for unit in self.finished]

    # -- what subclasses provide ------------------------------------------------

    def _open(self) -> None:
        """Open the connection: set ``_target`` and ``_bind``."""
        raise NotImplementedError

    def _render(self, comp: pgsql.Composable) -> str:
        """Render a psycopg Composable in the database's SQL."""
        raise NotImplementedError

    def _split(self, text: str, /, *, origin: str | None = None) -> list[Statement]:
        """Split a source text into statements (`lexer.split_statements`)."""
        return split_statements(text, origin=origin)

    def _check(self, unit: Unit) -> None:
        """Refuse a statement that cannot run in this run's mode."""
        raise NotImplementedError

    def _loop(self, units: list[Unit]) -> Iterator[QueryResult]:
        """Run the queue of units, in order, yielding each result."""
        raise NotImplementedError

    def _atomic(self, action: str) -> None:
        """``begin``, ``commit`` or ``rollback`` the atomic run's transaction."""
        raise NotImplementedError

    def _end(self, finished: bool) -> None:
        """End the run's transactions, after the loop or an error in it."""
        raise NotImplementedError

    def _release(self) -> None:
        """Release the connection (after `_end`, even when it raised)."""
        raise NotImplementedError

    # -- outcomes -----------------------------------------------------------------

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

    def _ok(self, unit: Unit, result: QueryResult, status: OutcomeStatus) -> None:
        """Record and print a statement that succeeded."""
        self._record(unit, status, result)
        reporter = self._reporter
        if reporter is not None and reporter.prints_success:
            reporter.ok(unit.shown, unit.label)

    def _settle_pending(self, status: OutcomeStatus, since: int = 0) -> None:
        """Give the statements of a closed psql-style block their final status."""
        for unit in self._pending[since:]:
            if unit.status == "executed":
                unit.status = status
        del self._pending[since:]
        if since == 0:
            self._user_savepoints.clear()

    def _settle_all(self, status: OutcomeStatus) -> None:
        """Give every executed statement of the run its final status."""
        for unit in self.finished:
            if unit.status == "executed":
                unit.status = status

    def _follow_savepoint(self, unit: Unit, name: str, *, rolled_back: bool) -> None:
        """Follow one of the SQL's own ``SAVEPOINT``/``RELEASE``/``ROLLBACK TO``.

        A ``SAVEPOINT`` marks where its statements start; ``ROLLBACK TO``
        gives those since ``rolled_back`` (the savepoint stays); ``RELEASE``
        forgets the savepoint and those opened after it.

        Parameters:
            unit: the statement, of class ``savepoint`` or ``release``.
            name: the savepoint's name, folded as the database folds it.
            rolled_back: the statement was a ``ROLLBACK TO``.
        """
        marks = self._user_savepoints
        if unit.cls == "savepoint":
            marks.append((name, len(self._pending)))
            return
        for i in range(len(marks) - 1, -1, -1):
            if marks[i][0] == name:
                if rolled_back:
                    self._settle_pending("rolled_back", marks[i][1])
                    del marks[i + 1 :]  # the savepoint itself stays
                else:
                    del marks[i:]
                return

    # -- units and hooks ----------------------------------------------------------

    def _build_units(self) -> list[Unit]:
        """Read and split the sources; each unit gets its parameters and is checked."""
        sources = read_sources(
            self.sql, interpret_as_file=self.opts.interpret_as_file, render=self._render
        )
        return build_units(
            sources,
            self.params,
            per_source=self.per_source,
            ensure_single=self.opts.ensure_single_query,
            check=self._check,
            split=self._split,
        )

    def _bind_all(self, units: list[Unit]) -> None:
        """Bind every statement now, unless transform_statement may change it."""
        if self.opts.transform_statement is None:
            bind = self._bind
            for unit in units:
                if unit.stmt.kind != "meta":
                    bind(unit)

    def _prepare(self) -> list[Unit]:
        """Read, split, check and (without transform_statement) bind everything."""
        units = self._build_units()
        self._bind_all(units)
        return units

    def _directives(
        self, unit: Unit, directives: Iterable[StatementDirective], recovery: bool
    ) -> list[Unit]:
        """Units for the directives a hook returned (see `units.directive_units`)."""
        return directive_units(
            unit,
            list(directives),
            recovery=recovery,
            render=self._render,
            check=self._check,
            split=self._split,
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

    def _ready(self, unit: Unit, queue: deque[Unit]) -> bool:
        """Take the common first steps with the next unit: whether to run it now.

        Announces a new file (run_fixtures); records a psql meta-command or a
        skipped statement as skipped; replaces a statement not yet
        transformed by what transform_statement returns (put at the front of
        ``queue``); binds the statement.  False when the unit was dealt with
        here.
        """
        if self.announce_base is not None and unit.origin != self._announced:
            self._announced = announced = unit.origin
            if self._reporter is not None and announced is not None:
                self._reporter.source(os.path.relpath(announced, self.announce_base))
        if unit.stmt.kind == "meta":
            log.debug("skipping psql meta-command %s", unit.stmt.text)
            self._record(unit, "skipped")
            return False
        if self.opts.transform_statement is not None and not unit.transformed:
            queue.extendleft(reversed(self._transform(unit)))
            return False
        if unit.skip:
            self._record(unit, "skipped")
            if self._reporter is not None:
                self._reporter.skipped(unit.shown, unit.label)
            return False
        if unit.sql is None:
            self._bind(unit)
        return True

    def _statement_error(
        self, unit: Unit, orig: BaseException, **details: Any
    ) -> BaseException:
        """The error to raise for ``unit``'s driver error ``orig``.

        Parameters:
            unit: the statement.
            orig: the driver's error.
            **details: ``note``, ``at_line``, ``dbapi_base`` (see
                `results.statement_error`).
        """
        return statement_error(
            orig,
            index=unit.index,
            source=unit.origin,
            line=unit.line,
            text=unit.shown,
            params=unit.send,
            **details,
        )

    def _failed(
        self,
        unit: Unit,
        err: BaseException,
        queue: deque[Unit],
        *,
        fatal: bool,
        status: OutcomeStatus = "failed",
    ) -> None:
        """Handle a failed statement: on_error hook, report, then raise or go on.

        Parameters:
            unit: the statement.
            err: its `errors.StatementError`.
            queue: the run's queue (the hook's directives go at its front).
            fatal: the run cannot go on (a cancelled query, a lost
                connection...): no hook, always raised.
            status: the statement's outcome.
        """
        hook = self.opts.on_error
        if hook is not None and not unit.recovery and not fatal:
            directives = hook(unit.context(), err, self._target.hook_connectable)
            if directives is not None:
                unit.recovered = True
                self._record(unit, status, error=err)
                if self._reporter is not None:
                    self._reporter.failed(
                        unit.shown, unit.label, err, raising=False, recovered=True
                    )
                queue.extendleft(reversed(self._directives(unit, directives, True)))
                return
        raising = self.opts.raise_errors or fatal
        self._record(unit, status, error=err)
        if self._reporter is not None:
            self._reporter.failed(unit.shown, unit.label, err, raising=raising)
        if raising:
            raise err

    # -- the run --------------------------------------------------------------------

    @staticmethod
    def _log_left_open(finished: bool) -> None:
        """Say that the SQL left a transaction open (which is then rolled back).

        A warning when the run finished, else (the run failed) a debug message.
        """
        log.log(
            logging.WARNING if finished else logging.DEBUG,
            "the SQL left a transaction open (BEGIN without COMMIT); it was rolled "
            "back, as psql does at the end of a script",
        )

    def __iter__(self) -> Iterator[QueryResult]:
        """Execute the run, yielding the result of each statement that succeeded."""
        self._open()
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
                self._end(finished)
            finally:
                if self._reporter is not None:
                    self._reporter.close()
                self._release()
