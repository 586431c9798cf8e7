"""Fourth stage of the SQL data path: send statements to the server.

The `Executor` works on one psycopg connection and knows two ways to send
work:

* `Executor.run_batch`: several parameter-less statements joined into one
  simple-query message (one ``cursor.execute``, results read with
  ``nextset()``).  The server runs them as one implicit transaction, so a
  failure undoes the whole batch; `BatchFailed` then says which statement
  failed when the server gave an error position.
* `Executor.run_single`: one statement: plain SQL, with parameters
  (``execute``/``executemany``), ``COPY … FROM STDIN`` with its inline data
  (``cursor.copy()``), or ``COPY … TO STDOUT``.

With ``wrap=True`` the work runs under ``SAVEPOINT`` (released after it); on
failure it is rolled back to the savepoint, so it undoes only itself and the
surrounding transaction survives.  The caller decides when to wrap.

Ctrl-C: psycopg cancels the running query on the server when a blocking call
is interrupted; the executor then rolls back its savepoint (if any) and lets
``KeyboardInterrupt`` through.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import ExecStatus, TransactionStatus

from .results import QueryResult

__all__ = ["BatchFailed", "Executor", "is_fatal"]

log = logging.getLogger("macrostrat.database.query")

SAVEPOINT = "_macrostrat_run_sql"
_OPEN = f"SAVEPOINT {SAVEPOINT};\n"
_RELEASE = f"RELEASE SAVEPOINT {SAVEPOINT}"
_CLOSE = ";\n" + _RELEASE
_UNDO = f"ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}"
_SEP = ";\n"


class BatchFailed(Exception):
    """A batch failed and was rolled back as a whole.

    Attributes:
        orig: the driver's error.
        at: index in the batch of the statement the error position points
            to, or None when the server gave no position.
        offset: where that statement starts in the text that was sent.
    """

    def __init__(self, orig: BaseException, at: int | None, offset: int) -> None:
        super().__init__(str(orig))
        self.orig = orig
        self.at = at
        self.offset = offset


def is_fatal(err: BaseException, raw: psycopg.Connection[Any]) -> bool:
    """True for errors that must stop a run: cancellation or a lost connection."""
    if isinstance(err, pg_errors.QueryCanceled):
        return True
    return bool(raw.closed or raw.broken)


class Executor:
    """Sends statements over one psycopg connection (see the module docstring).

    Parameters:
        raw: the psycopg connection (autocommit or inside a transaction).
    """

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.cur = raw.cursor()

    @property
    def status(self) -> TransactionStatus:
        """The server's transaction status (IDLE, INTRANS, INERROR…)."""
        return self.raw.info.transaction_status

    def close(self) -> None:
        """Close the cursor."""
        if not self.raw.closed:
            self.cur.close()

    def _result(self) -> QueryResult:
        """The current result of the cursor as a QueryResult (rows fetched)."""
        cur = self.cur
        pg = cur.pgresult
        if pg is not None and pg.status == ExecStatus.TUPLES_OK:
            desc = cur.description or ()
            return QueryResult(
                cur.statusmessage,
                cur.rowcount,
                [col.name for col in desc],
                cur.fetchall(),
            )
        return QueryResult(cur.statusmessage, cur.rowcount)

    def undo(self) -> None:
        """Roll back to the executor's savepoint and release it (best effort)."""
        if self.raw.closed or self.raw.broken:
            return
        try:
            self.cur.execute(_UNDO)
        except psycopg.Error as exc:
            log.debug("rolling back to the savepoint failed: %s", exc)

    def run_batch(self, texts: Sequence[str], *, wrap: bool) -> list[QueryResult]:
        """Run ``texts`` as one simple-query message; return one result each.

        Raises:
            BatchFailed: a statement failed; the batch was rolled back.
        """
        body = _SEP.join(texts)
        prefix = _OPEN if wrap else ""
        query = prefix + body + _CLOSE if wrap else body
        cur = self.cur
        try:
            cur.execute(query)
        except psycopg.Error as exc:
            if wrap:
                self.undo()
            at, offset = _locate(exc, texts, len(prefix))
            raise BatchFailed(exc, at, offset) from exc
        except BaseException:
            if wrap:
                self.undo()
            raise
        results: list[QueryResult] = []
        if wrap:
            cur.nextset()
        append = results.append
        result = self._result
        nextset = cur.nextset
        for _ in texts:
            append(result())
            nextset()
        return results

    def run_single(
        self,
        text: str,
        params: Any = None,
        *,
        many: bool = False,
        copy_data: str | None = None,
        copy_out: bool = False,
        wrap: bool = False,
    ) -> QueryResult:
        """Run one statement and return its result.

        `sent_offset` says where the statement starts in the text sent.

        Parameters:
            text: the statement.
            params: driver parameters, or None for none (simple protocol).
            many: ``params`` is a list of parameter sets (``executemany``).
            copy_data: the inline data of a ``COPY … FROM STDIN``.
            copy_out: read a ``COPY … TO STDOUT``.
            wrap: run under a savepoint, rolled back to on failure.

        Raises:
            psycopg.Error: the statement failed (rolled back to the savepoint
                when wrapped).
        """
        cur = self.cur
        combined = wrap and params is None and copy_data is None and not copy_out
        try:
            if combined:
                cur.execute(_OPEN + text + _CLOSE)
                cur.nextset()
                return self._result()
            if wrap:
                cur.execute(_OPEN)
            if copy_data is not None:
                result = self._copy_in(text, copy_data)
            elif copy_out:
                result = self._copy_out(text)
            elif many:
                cur.executemany(text, params)
                result = QueryResult(cur.statusmessage, cur.rowcount)
            else:
                cur.execute(text, params)
                result = self._result()
            if wrap:
                cur.execute(_RELEASE)
            return result
        except BaseException:
            if wrap:
                self.undo()
            raise

    @staticmethod
    def sent_offset(*, wrap: bool, params: Any, copy: bool) -> int:
        """Where `run_single` puts the statement in the text it sends."""
        return len(_OPEN) if wrap and params is None and not copy else 0

    def _copy_in(self, text: str, data: str) -> QueryResult:
        """Stream a COPY … FROM STDIN statement's inline data."""
        cur = self.cur
        with cur.copy(text) as copy:
            if data:
                copy.write(data)
        return QueryResult(f"COPY {cur.rowcount}", cur.rowcount)

    def _copy_out(self, text: str) -> QueryResult:
        """Run a COPY … TO STDOUT and keep its data."""
        cur = self.cur
        chunks: list[bytes] = []
        with cur.copy(text) as copy:
            for chunk in copy:
                chunks.append(bytes(chunk))
        return QueryResult(
            f"COPY {cur.rowcount}", cur.rowcount, copy_data=b"".join(chunks)
        )

    def execute(self, text: str) -> QueryResult:
        """Run one statement as is (transaction control, savepoints of our own)."""
        self.cur.execute(text)
        return self._result()


def _locate(
    exc: BaseException, texts: Sequence[str], prefix: int
) -> tuple[int | None, int]:
    """Map the server's error position to a statement of the batch."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None) if diag else None
    if not position:
        return None, 0
    try:
        at = int(position) - 1 - prefix
    except ValueError:
        return None, 0
    start = 0
    for i, text in enumerate(texts):
        end = start + len(text)
        if start <= at < end:
            return i, start + prefix
        start = end + len(_SEP)
    return None, 0
