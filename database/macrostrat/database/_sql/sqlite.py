"""The SQL runner on SQLite (the standard ``sqlite3`` driver), as on PostgreSQL.

``run_sql``, ``run_query`` and ``run_fixtures`` hand a SQLite connectable
(`sqlite_connect.is_sqlite`: ``Database("sqlite://")``, ``sqlite:///path.db``, or an engine,
connection or session on one) to `SQLiteRun`, which gives it `runner.Run`'s
semantics: the same modes, outcomes, errors, hooks and output.

* own transactions (no transaction in progress): each statement commits on
  its own (``sqlite3`` in autocommit for the run, see `sqlite_connect`).
  The SQL's own ``BEGIN`` … ``COMMIT`` (or a ``SAVEPOINT`` opened outside a
  transaction, which SQLite makes one) is honoured; as in the ``sqlite3``
  shell, a failed statement inside it undoes only itself and the block goes
  on.  A block left open at the end is rolled back.
* joined (the caller's transaction): each statement runs under a SAVEPOINT,
  so a failure undoes only itself; the caller's transaction is never ended.
* atomic: one transaction (a SAVEPOINT when joined); the first failure
  rolls everything back and is raised.

Statements are sent one at a time (``sqlite3`` runs one per call, and there
is no round trip to save), each under a savepoint whenever a transaction is
open, so that a failure (also one that ``INSERT OR FAIL`` or a failed row of
an ``executemany`` would leave half done) is undone exactly.  A list of
parameter sets outside a transaction runs as one transaction: all or none.
When SQLite itself rolls back the whole transaction after an error
(``INSERT OR ROLLBACK``, ``RAISE(ROLLBACK, …)``, disk full…), the statements
it undid are marked ``rolled_back``; inside the caller's transaction that
error is always raised.

The text (`sqlite_text`): trigger bodies are kept whole (`split_sqlite`),
psycopg ``Composable`` values are rendered in SQLite's syntax (`render`), and
``:name``, ``?``/``?NNN`` and ``{name}`` parameters are bound for ``sqlite3``
(`SQLiteBinder`).  The bookkeeping, hooks and the order of a run are
`run_base.RunBase`'s, shared with `runner.Run`.

Refused before anything runs (`StatementNotAllowedError`): ``COPY`` (with
``FROM stdin`` data or ``TO STDOUT``), psql meta-commands other than the
skipped ones, ``BEGIN`` or ``COMMIT``/``ROLLBACK`` inside a transaction,
``VACUUM`` inside one.  PostgreSQL-only SQL simply fails as SQLite's error.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Iterator

from psycopg import sql as pgsql

from .kinds import leading_words, savepoint_name
from .lexer import Statement
from .results import OutcomeStatus, QueryResult, statement_error
from .run_base import RunBase
from .sqlite_connect import SQLiteTarget, open_sqlite_target
from .sqlite_text import SQLiteBinder, render, split_sqlite
from .units import Unit, check_unit, statement_not_allowed

__all__ = ["SQLiteRun"]

log = logging.getLogger("macrostrat.database.query")

_SAVEPOINT = "_macrostrat_run_sql"
_ATOMIC = "_macrostrat_atomic"
_BARE = frozenset({"begin", "end", "savepoint", "release"})
"""Statement classes run without the runner's savepoint around them."""
_ERRORS = (sqlite3.Error, sqlite3.Warning)
"""What ``sqlite3`` raises for a statement (Python < 3.12 raises
``sqlite3.Warning`` for a text holding two statements)."""


# -- results ------------------------------------------------------------------------


def _tag(text: str, count: int, rows: bool) -> str:
    """A PostgreSQL-style command tag (SQLite has none): ``INSERT 0 2``, ``SELECT 1``."""
    words = leading_words(text, 4)
    first = words[0].upper() if words else ""
    if first in ("INSERT", "REPLACE"):
        return f"INSERT 0 {count}"
    if first in ("UPDATE", "DELETE"):
        return f"{first} {count}"
    if rows:
        return f"SELECT {count}"
    if first in ("CREATE", "DROP", "ALTER"):
        modifiers = ("temp", "temporary", "unique", "virtual")
        rest = [w for w in words[1:] if w not in modifiers]
        return f"{first} {rest[0].upper()}" if rest else first
    return first


def _result(cur: sqlite3.Cursor, text: str) -> QueryResult:
    """The `QueryResult` of the statement ``cur`` ran (its rows all fetched)."""
    if cur.description is not None:
        rows = cur.fetchall()
        count = cur.rowcount if cur.rowcount >= 0 else len(rows)
        keys = [column[0] for column in cur.description]
        return QueryResult(_tag(text, count, True), count, keys, rows)
    return QueryResult(_tag(text, cur.rowcount, False), cur.rowcount)


def _fatal(err: BaseException, raw: sqlite3.Connection) -> bool:
    """Errors that stop a run: an interrupted statement, a closed connection."""
    name = getattr(err, "sqlite_errorname", None)  # Python 3.11+
    if name == "SQLITE_INTERRUPT" or (name is None and str(err) == "interrupted"):
        return True
    try:
        raw.in_transaction  # noqa: B018 - raises on a closed connection
    except sqlite3.ProgrammingError:
        return True
    return False


# -- the run --------------------------------------------------------------------------


class SQLiteRun(RunBase):
    """One run of SQL on one SQLite connection; iterate it to execute.

    The same interface and semantics as `runner.Run` (parameters: see
    `run_base.RunBase`).
    """

    _target: SQLiteTarget
    _cur: sqlite3.Cursor | None = None

    # -- helpers ------------------------------------------------------------

    @property
    def raw(self) -> sqlite3.Connection:
        """The run's ``sqlite3`` connection."""
        return self._target.raw

    def _in_tx(self) -> bool:
        """Whether SQLite has a transaction open (False on a closed connection)."""
        try:
            return bool(self.raw.in_transaction)
        except sqlite3.ProgrammingError:
            return False

    def _cursor(self) -> sqlite3.Cursor:
        """The run's cursor (one for the whole run, closed by `_release`)."""
        if self._cur is None:
            self._cur = self.raw.cursor()
        return self._cur

    def _open(self) -> None:
        """Open the connection (see `sqlite_connect`) and the binder."""
        self._target = open_sqlite_target(self.connectable, join=self.join)
        self._bind = SQLiteBinder()

    def _render(self, comp: pgsql.Composable) -> str:
        """Render a psycopg Composable in SQLite's syntax (`sqlite_text.render`)."""
        return render(comp)

    def _split(self, text: str, /, *, origin: str | None = None) -> list[Statement]:
        """Split a source text, keeping trigger bodies whole (`split_sqlite`)."""
        return split_sqlite(text, origin=origin)

    def _check(self, unit: Unit) -> None:
        """Refuse a statement that cannot run in this run's mode (see `units.check_unit`)."""
        joined, atomic = self._target.joined, self.opts.atomic
        message = None
        words = leading_words(unit.stmt.text, 1) if unit.stmt.kind != "meta" else []
        if unit.stmt.kind == "copy_in" or words == ["copy"]:
            message = (
                "COPY is PostgreSQL's; SQLite has no COPY (insert the rows with "
                "INSERT and a list of parameter sets instead)"
            )
        elif unit.cls == "begin" and (joined or atomic):
            where = (
                "with atomic=True" if atomic and not joined else "inside a transaction"
            )
            message = f"SQLite cannot begin a transaction {where}"
        if message is not None:
            raise statement_not_allowed(unit, message)
        check_unit(unit, joined=joined, atomic=atomic)

    # -- execution ----------------------------------------------------------------

    def _execute(self, unit: Unit) -> QueryResult:
        """Run one statement, under the runner's savepoint when that is needed.

        Raises:
            sqlite3.Error: it failed; its effects are undone (to the
                savepoint) unless SQLite rolled back the whole transaction.
        """
        assert unit.sql is not None
        raw = self.raw
        framed = (
            self.opts.use_transaction
            and unit.cls not in _BARE
            and (raw.in_transaction or unit.many)
        )
        cur = self._cursor()
        if framed:
            raw.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            if unit.many:
                cur.executemany(unit.sql, unit.send)
            elif unit.send is None:
                cur.execute(unit.sql)
            else:
                cur.execute(unit.sql, unit.send)
            result = _result(cur, unit.sql)
            if framed:
                raw.execute(f"RELEASE {_SAVEPOINT}")
        except _ERRORS:
            if framed and self._in_tx():
                try:
                    raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
                    raw.execute(f"RELEASE {_SAVEPOINT}")
                except sqlite3.Error as exc:
                    log.debug("rolling back the runner's savepoint failed: %s", exc)
            raise
        return result

    def _succeeded(self, unit: Unit, result: QueryResult, before: bool) -> None:
        """Record a statement that succeeded; settle a block it ended."""
        status: OutcomeStatus = "executed"
        after = self._in_tx()
        if self._own:
            if not before and not after:
                status = "committed"
            elif before and not after:
                rollback = leading_words(unit.stmt.text, 1) == ["rollback"]
                status = "rolled_back" if rollback else "committed"
                self._settle_pending(status)
            else:
                self._track_savepoints(unit)
        self._ok(unit, result, status)

    def _track_savepoints(self, unit: Unit) -> None:
        """Follow the SQL's own savepoints, so ROLLBACK TO marks what it undid."""
        if unit.cls not in ("savepoint", "release"):
            return
        name = savepoint_name(unit.stmt.text)
        if name is None:
            return
        # SQLite compares savepoint names without case
        rollback = leading_words(unit.stmt.text, 1) == ["rollback"]
        self._follow_savepoint(unit, name.lower(), rolled_back=rollback)

    def _fail(
        self,
        unit: Unit,
        orig: BaseException,
        queue: deque[Unit],
        *,
        note: str = "",
        fatal: bool = False,
    ) -> None:
        """Handle a failed statement: hook, report, then raise or go on."""
        err = self._statement_error(unit, orig, note=note, dbapi_base=sqlite3.Error)
        self._failed(unit, err, queue, fatal=fatal)

    def _run_single(self, unit: Unit, queue: deque[Unit]) -> Iterator[QueryResult]:
        """Run one statement; yield its result if it succeeded."""
        before = self._in_tx()
        try:
            result = self._execute(unit)
        except _ERRORS as orig:
            fatal = _fatal(orig, self.raw)
            note = ""
            if before and not self._in_tx():
                note = " (SQLite rolled back the whole transaction)"
                if self._own:
                    self._settle_pending("rolled_back")
                else:
                    fatal = True  # the caller's (or the atomic) transaction is gone
                    self._settle_all("rolled_back")
            self._fail(unit, orig, queue, note=note, fatal=fatal)
            return
        self._succeeded(unit, result, before)
        yield result

    def _loop(self, units: list[Unit]) -> Iterator[QueryResult]:
        """Run the queue of units, in order, yielding each result."""
        queue = deque(units)
        while queue:
            unit = queue.popleft()
            if self._ready(unit, queue):
                yield from self._run_single(unit, queue)

    # -- the run ------------------------------------------------------------------------

    def _atomic(self, action: str) -> None:
        """``begin``, ``commit`` or ``rollback`` the atomic run's transaction."""
        joined = self._target.joined
        raw = self.raw
        if action == "begin":
            raw.execute(f"SAVEPOINT {_ATOMIC}" if joined else "BEGIN")
            self._atomic_open = True
            return
        self._atomic_open = False
        if action == "rollback":
            if self._in_tx():
                try:
                    if joined:
                        raw.execute(f"ROLLBACK TO {_ATOMIC}")
                        raw.execute(f"RELEASE {_ATOMIC}")
                    else:
                        raw.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.debug("rolling back the atomic run failed: %s", exc)
            self._settle_all("rolled_back")
            return
        verb = f"RELEASE {_ATOMIC}" if joined else "COMMIT"
        try:
            raw.execute(verb)
        except _ERRORS as orig:
            self._atomic_open = True  # the cleanup rolls back
            raise statement_error(
                orig,
                index=None,
                source=None,
                line=None,
                text=verb,
                dbapi_base=sqlite3.Error,
            ) from orig
        if not joined:
            self._settle_all("committed")

    def _close_own_transaction(self, finished: bool) -> None:
        """Roll back a transaction the SQL opened and left open."""
        if self._target.joined or not self._in_tx():
            return
        self._log_left_open(finished)
        try:
            self.raw.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.debug("ROLLBACK failed: %s", exc)
        self._settle_pending("rolled_back")

    def _end(self, finished: bool) -> None:
        """Roll back an atomic run that did not commit, and a transaction the
        SQL left open."""
        if self._atomic_open:
            self._atomic("rollback")
        if not finished or not self.opts.atomic:
            self._close_own_transaction(finished)

    def _release(self) -> None:
        """Close the run's cursor and release the connection."""
        if self._cur is not None:
            try:
                self._cur.close()
            except sqlite3.Error:
                pass
        self._target.close()
