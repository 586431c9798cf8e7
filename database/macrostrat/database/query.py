"""Run SQL text, files and fixture directories, as ``psql`` would run them.

The public face of the SQL runner in ``macrostrat.database._sql``: input →
source text (`_sql.source`) → statements (`_sql.lexer`) → parameters
(`_sql.params`) → execution (`_sql.execute`, `_sql.runner`; `_sql.sqlite`
on SQLite) → output (`_sql.report`).

Execution is ``psql``'s (the biggest change from upstream, which committed
the whole session after every statement):

* With an ``Engine``, or a ``Session``/``Connection`` (a `Database`: its
  session connection) that has no transaction in progress, every statement
  is committed on its own: ``raise_errors=True`` is ``psql -v
  ON_ERROR_STOP=1 -f``, the default ``psql -f`` (report and go on).  Runs of
  statements without parameters go as one message each, framed so that each
  statement still gets its own transaction, with one result back per
  statement: the statement that failed is known exactly and nothing that ran
  is ever sent again.  ``BEGIN`` … ``COMMIT`` in the SQL, and statements that
  need (or refuse) a transaction block, behave as under psql; a block left
  open at the end is rolled back.
* With a ``Session``/``Connection`` that already has a transaction (inside
  ``Database.transaction()``, after ORM work), the statements join it: each
  runs under a SAVEPOINT, so a failure undoes only itself, and nothing is
  committed or rolled back for the caller.
* ``atomic=True``: one transaction for the whole run (``psql -1``); the
  first failure rolls everything back and is raised.

Errors: a failed statement raises (with ``raise_errors=True``, or always for a
query cancelled on request or a lost connection) an exception that is both a
`macrostrat.database.errors.StatementError` (index, file, line, text) and the
SQLAlchemy error SQLAlchemy would have raised (``err.orig`` is the driver's
error, ``err.orig.sqlstate`` its SQLSTATE on PostgreSQL).  Otherwise it is
logged at WARNING, printed if output was asked for, and the run goes on.  A
statement whose outcome a lost connection hid is reported ``unknown``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from ._sql.options import (
    RecoveryFn,
    StatementContext,
    StatementDirective,
    StatementResult,
    TransformFn,
    parse_options,
)
from ._sql.params import infer_has_server_binds
from ._sql.params_scan import find_placeholders
from ._sql.report import OutputMode, pretty_print, print_error, summarize_statement
from ._sql.results import QueryResult, SQLResults, StatementOutcome
from ._sql.runner import Run
from ._sql.source import (
    canonicalize_query,
    get_sql_files,
    get_sql_text,
    infer_is_sql_text,
)
from ._sql.sqlite import SQLiteRun
from ._sql.sqlite_connect import is_sqlite
from .errors import InvalidOptionError, NoResultError

__all__ = [
    "Connectable",
    "OutputMode",
    "QueryResult",
    "RecoveryFn",
    "SQLResults",
    "StatementContext",
    "StatementDirective",
    "StatementOutcome",
    "StatementResult",
    "TransformFn",
    "canonicalize_query",
    "escape_postgresql_cast_parameters",
    "execute",
    "get_sql_files",
    "get_sql_text",
    "infer_has_server_binds",
    "infer_is_sql_text",
    "pretty_print",
    "run_fixtures",
    "run_query",
    "run_sql",
    "run_sql_file",
    "summarize_statement",
]

Connectable = Engine | Connection | Session
"""What the runner works on (a `macrostrat.database.Database` works too)."""

_print_error = print_error


def _collect(run: Run | SQLiteRun) -> SQLResults:
    """Run to the end and gather the results (outcomes built on demand)."""
    results = SQLResults(outcomes=run.outcomes)
    for result in run:
        results.append(result)
    return results


def run_sql(
    connectable: Any, sql: Any, params: Any = None, **options: Any
) -> SQLResults | Iterator[QueryResult]:
    """Run every statement of ``sql``; return the results of those that succeeded.

    ``sql`` is split the way ``psql`` splits a file (quotes, dollar-quoted
    bodies, nested comments, ``BEGIN ATOMIC`` bodies, ``COPY … FROM stdin``
    blocks with their data, ``\\restrict`` lines, which are skipped).  See the
    module docstring for transactions and errors.

    Parameters:
        connectable: an ``Engine``, ``Connection``, ``Session`` or ``Database``.
        sql: SQL text, a path (``str`` naming an existing file, or ``Path``),
            a file object, ``bytes``, a psycopg ``sql.SQL``/``sql.Composed``, a
            SQLAlchemy ``text()`` clause, or a list of these.
        params: parameters. A list as long as the statement count gives each
            statement its own; otherwise every statement gets them all, and a
            statement without placeholders gets none.  Styles: ``:name``
            (mapping), ``%(name)s`` (mapping), ``%s`` (tuple or list of values),
            a list of mappings or tuples on one statement (``executemany``), and
            ``{name}`` with psycopg ``Identifier``/``Literal``/``SQL`` values,
            spliced into the SQL wherever ``{name}`` stands (function bodies
            included).
        **options:
            raise_errors (False): raise the first error and run nothing after
                it (``psql -v ON_ERROR_STOP=1``) instead of reporting it and
                going on (``psql``'s default).  Queries cancelled on request
                (a ``statement_timeout`` is an ordinary failure), a lost
                connection, Ctrl-C and parameter errors always raise.
            atomic (False): one transaction for the whole run (``psql -1``).
            output_mode (``"none"``, or ``"summary"`` when ``output_file`` is
                given): ``"none"``, ``"errors"``, ``"summary"`` (one line per
                statement) or ``"all"`` (whole statements); an `OutputMode`.
            output_file (``sys.stderr`` at call time): where to print.
            print_skipped (True): print skipped statements too.
            transform_statement: ``fn(StatementContext)`` returning None (run
                as is) or a list of `StatementDirective`; runs just before
                each statement (batching is off, so it sees earlier effects).
            on_error: ``fn(StatementContext, error, connectable)`` called once
                after a statement failed and was undone (in an atomic run or
                the caller's transaction, to its savepoint; inside the SQL's
                own ``BEGIN`` block, that block is aborted, as under psql); a
                list of directives is run instead and the error is not raised.
            ensure_single_query (False): raise ValueError for several statements.
            has_server_binds (None): True: only ``%s``/``%(name)s`` bind;
                False: only ``:name`` binds; None: per statement.
            interpret_as_file (None): True: strings are paths; False: SQL.
            use_transaction (True): False: no batches and no savepoints;
                every statement is sent alone (inside a caller's transaction,
                a failure then aborts it).
            yield_results (False): return a generator (lazy) instead of a list
                (with ``atomic=True``, what it yields is committed only when
                it is exhausted).
            stop_on_error, statement_filter: deprecated (DeprecationWarning).

    Statements are numbered across the whole run (``index``, 0-based; messages
    count from 1), and located by file and line.  The connection must use
    psycopg 3 (``postgresql+psycopg``), or SQLAlchemy's pysqlite for SQLite.

    Returns:
        `SQLResults`: a list with one `QueryResult` per statement that ran
        and succeeded, and ``.outcomes`` with every statement's fate; or a
        generator of `QueryResult` with ``yield_results=True``.

    Raises:
        InvalidOptionError: an unknown option (a ``TypeError``).
        macrostrat.database.errors.StatementError: a statement failed and
            the error is raised (also a SQLAlchemy ``DBAPIError`` subclass).
        BindParameterError: parameters that do not fit a statement (before
            anything runs).
        StatementNotAllowedError: a statement that cannot run in this mode,
            such as ``VACUUM`` inside a transaction (before anything runs).
        SQLSyntaxError: the SQL cannot be split (unterminated literal…).
        FileNotFoundError: a named file does not exist.
    """
    opts = parse_options(options, function="run_sql")
    run = (SQLiteRun if is_sqlite(connectable) else Run)(connectable, sql, params, opts)
    if opts.yield_results:
        return iter(run)
    return _collect(run)


def run_sql_file(
    connectable: Any,
    filename: str | os.PathLike[str],
    params: Any = None,
    **kwargs: Any,
) -> SQLResults | Iterator[QueryResult]:
    """Run the statements of the file ``filename`` (see `run_sql`)."""
    return run_sql(connectable, Path(filename), params, **kwargs)


def run_query(
    connectable: Any, query: Any, params: Any = None, **kwargs: Any
) -> QueryResult:
    """Run one statement and return its result.

    With an ``Engine`` the statement is committed.  With a ``Session`` or
    ``Connection`` it runs in the caller's transaction (begun if none is in
    progress, as SQLAlchemy's autobegin does) and is **not** committed: the
    caller commits (``Database.savepoint`` and ``Database.transaction`` rely
    on this).  A failure is undone (to a savepoint, or the transaction this
    call began) and raised.

    Parameters:
        connectable: an ``Engine``, ``Connection``, ``Session`` or ``Database``.
        query: one statement (anything `run_sql` accepts).
        params: its parameters.
        **kwargs: `run_sql` options; ``raise_errors`` defaults to True.

    Returns:
        The statement's `QueryResult`; after an ``on_error`` recovery or a
        ``transform_statement`` giving several statements, the last one's.

    Raises:
        ValueError: ``query`` holds more than one statement.
        NoResultError: nothing ran: the SQL is empty, the statement was
            skipped, or it failed and ``raise_errors=False`` swallowed the error.
    """
    return run_one(connectable, query, params, kwargs, join=True)


def run_one(
    connectable: Any, query: Any, params: Any, kwargs: dict[str, Any], *, join: bool
) -> QueryResult:
    """`run_query`, with the choice of joining: ``join=False`` on an idle
    ``Session``/``Connection`` commits the statement on its own (what
    ``Database.run_query`` does outside a transaction)."""
    if kwargs.get("yield_results"):
        raise InvalidOptionError(
            "run_query() returns one result; yield_results=True is not supported"
        )
    opts = parse_options(kwargs, function="run_query", raise_errors=True)
    opts.ensure_single_query = True
    opts.yield_results = False
    runner = SQLiteRun if is_sqlite(connectable) else Run
    run = runner(connectable, query, params, opts, join=join)
    results = _collect(run)
    if results:
        return results[-1]
    failed = [o for o in results.outcomes if o.status == "failed"]
    if failed:
        raise NoResultError(
            f"run_query(): {failed[-1].describe()} failed and raise_errors=False "
            "swallowed the error, so there is no result"
        ) from failed[-1].error
    if results.outcomes:
        raise NoResultError(
            "run_query(): the statement was skipped; there is no result"
        )
    raise NoResultError(
        "run_query(): there is no statement to run (the SQL is empty or only comments)"
    )


def run_fixtures(
    connectable: Any, fixtures: Any, params: Any = None, **kwargs: Any
) -> SQLResults | Iterator[QueryResult]:
    """Run the ``.sql`` files named by ``fixtures``, in order, on one connection.

    Each file gets the same ``params`` (a per-statement list counts the
    statements of each file).  Errors are reported and the run goes on, unless
    ``raise_errors=True``.  When output is asked for, the files' directory and
    each file's name are printed, with a progress bar on a terminal.

    Parameters:
        connectable: an ``Engine``, ``Connection``, ``Session`` or ``Database``.
        fixtures: a ``.sql`` file or a directory (``str`` or ``Path``), or a list.
        params: parameters for every file.
        **kwargs: ``recursive`` (False), ``order_by_name`` (True), ``console``
            (a Rich console whose file becomes ``output_file``), and the
            `run_sql` options.

    Raises:
        FileNotFoundError: a path does not exist, or no ``.sql`` file was found.
        ValueError: a file named explicitly does not end in ``.sql``.
    """
    recursive = kwargs.pop("recursive", False)
    order_by_name = kwargs.pop("order_by_name", True)
    console = kwargs.pop("console", None)
    if console is not None and kwargs.get("output_file") is None:
        kwargs["output_file"] = console.file
    opts = parse_options(kwargs, function="run_fixtures")
    files = get_sql_files(fixtures, recursive=recursive, order_by_name=order_by_name)
    base = os.path.commonpath([str(f.parent) for f in files])
    runner = SQLiteRun if is_sqlite(connectable) else Run
    run = runner(connectable, files, params, opts, per_source=True, announce_base=base)
    if opts.yield_results:
        return iter(run)
    return _collect(run)


def execute(
    connectable: Any,
    sql: Any,
    params: Any = None,
    stop_on_error: bool = False,
    **kwargs: Any,
) -> SQLResults | Iterator[QueryResult]:
    """Deprecated alias of `run_sql` (``stop_on_error`` is ``raise_errors``).

    Upstream's version could not run at all.
    """
    warnings.warn(
        "macrostrat.database.query.execute() is deprecated; use run_sql()",
        DeprecationWarning,
        stacklevel=2,
    )
    kwargs.setdefault("raise_errors", stop_on_error)
    return run_sql(connectable, sql, params, **kwargs)


def escape_postgresql_cast_parameters(sql_text: str) -> str:
    """Escape the cast after a ``:name`` bind for SQLAlchemy ``text()``.

    ``:name::type`` becomes ``:name\\:\\:type`` (SQLAlchemy reads ``\\:`` as
    a literal colon).  Only placeholders in SQL tokens are touched.  `run_sql`
    does not need this (it reads ``:name::type`` correctly, and turns ``\\:``
    back into ``:``).
    """
    out: list[str] = []
    pos = 0
    for ph in find_placeholders(sql_text):
        if ph.kind == "colon" and sql_text.startswith("::", ph.end):
            out.append(sql_text[pos : ph.end])
            out.append("\\:\\:")
            pos = ph.end + 2
    out.append(sql_text[pos:])
    return "".join(out)
