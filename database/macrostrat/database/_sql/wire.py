"""Send one simple-query message and keep every result the server returns.

psycopg's ``cursor.execute()`` raises on the first failed statement of a
multi-statement string and drops the results before it, so the caller cannot
tell which statements ran.  `send_query` sends the text with libpq's
``PQsendQuery`` and collects every result (successes, then the error, if
any) through psycopg's non-blocking generators, waited on with
``Connection.wait`` (which cancels the query on Ctrl-C, as ``execute`` does).
When the connection fails while results are being read, the results that
did arrive are kept and the failure is returned beside them.

`query_result` turns one libpq result into a `QueryResult` (rows loaded with
the connection's adapters, as a cursor would) and `result_error` into the
psycopg exception a cursor would have raised.

This module relies on three psycopg interfaces that are public but not part
of the DB-API: ``Connection.pgconn`` (libpq), ``psycopg.generators`` and
``psycopg.adapt.Transformer``; the tests run it against the pinned range.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import abc as pg_abc
from psycopg import errors as pg_errors
from psycopg import generators
from psycopg.adapt import Transformer
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult

from .results import QueryResult

__all__ = ["Reply", "query_result", "result_error", "send_query"]

_TUPLES_OK = int(ExecStatus.TUPLES_OK)
_FATAL_ERROR = int(ExecStatus.FATAL_ERROR)
_COPY = (ExecStatus.COPY_IN, ExecStatus.COPY_OUT, ExecStatus.COPY_BOTH)


@dataclass(slots=True)
class Reply:
    """What the server answered to one message.

    Attributes:
        results: every result received, in order (one per statement that
            ran, then the error result of the statement that failed).
        error: the index in ``results`` of the first error, or None.
        lost: the connection failed before the reply was complete (the
            psycopg error); results that never arrived are unknown.
    """

    results: list[PGresult]
    error: int | None
    lost: psycopg.Error | None


def _collect(pgconn: Any) -> Generator[Any, Any, tuple[list[PGresult], Any]]:
    """Flush the sent query, then read results until the reply is complete."""
    results: list[PGresult] = []
    try:
        yield from generators.send(pgconn)
        while True:
            res = yield from generators.fetch(pgconn)
            if res is None:
                break
            results.append(res)
            if res.status in _COPY:  # never sent here; libpq would loop forever
                break
    except psycopg.OperationalError as exc:
        return results, exc
    return results, None


def send_query(raw: psycopg.Connection[Any], text: str) -> Reply:
    """Send ``text`` as one simple-query message and return every result.

    Raises:
        psycopg.OperationalError: the connection is closed before anything
            is sent.
    """
    if raw.closed:
        raise pg_errors.OperationalError("the connection is closed")
    pgconn = raw.pgconn
    with raw.lock:
        try:
            pgconn.send_query(text.encode(raw.info.encoding))
        except psycopg.OperationalError as exc:
            return Reply([], None, exc)
        results, lost = raw.wait(_collect(pgconn))
    error = None
    for i, res in enumerate(results):
        if res.status == _FATAL_ERROR:
            error = i
            break
    if lost is None and pgconn.status != 0:  # CONNECTION_BAD after the reply
        lost = pg_errors.OperationalError("the connection was lost")
    return Reply(results, error, lost)


def result_error(raw: psycopg.Connection[Any], res: PGresult) -> psycopg.Error:
    """The psycopg exception for an error result (as a cursor raises it)."""
    return pg_errors.error_from_result(res, encoding=raw.info.encoding)


_COMMANDS: dict[bytes, tuple[str, int]] = {}
"""Command tags already decoded (a file of INSERTs repeats one tag)."""


def query_result(
    raw: psycopg.Connection[Any], res: PGresult, tx: pg_abc.Transformer | None = None
) -> QueryResult:
    """One statement's `QueryResult` from its libpq result.

    Parameters:
        raw: the connection (its adapters load the rows).
        res: a ``TUPLES_OK`` or ``COMMAND_OK`` result.
        tx: a transformer to reuse across results (one is made if None).
    """
    if res.status == _TUPLES_OK:
        if tx is None:
            tx = Transformer.from_context(raw)
        tx.set_pgresult(res)
        encoding = raw.info.encoding
        keys = [(res.fname(i) or b"").decode(encoding) for i in range(res.nfields)]
        rows = tx.load_rows(0, res.ntuples, tuple)
        status = res.command_status
        return QueryResult(status.decode() if status else None, res.ntuples, keys, rows)
    tag = res.command_status or b""
    known = _COMMANDS.get(tag)
    if known is None:
        count = res.command_tuples
        known = (tag.decode(), count if count is not None else -1)
        if len(_COMMANDS) < 1024:
            _COMMANDS[tag] = known
    return QueryResult(known[0] or None, known[1])
