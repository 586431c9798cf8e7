"""Bulk loading and export through PostgreSQL's ``COPY`` protocol.

`copy_rows` streams an iterable of rows into a table with ``COPY ... FROM
STDIN`` in one transaction (all rows or none); `copy_to` streams a table or a
query (given as ``query=``, never sniffed from a string) out with ``COPY ... TO STDOUT``; `bulk_upsert` loads rows into a
temporary staging table and merges them with one ``INSERT ... ON CONFLICT``.

Every function takes a *connectable*: a `Database`, a SQLAlchemy ``Engine``
(a pooled connection is used and returned) or a psycopg ``Connection`` (used
as is; the work runs in a transaction block, or a savepoint when the
connection is already in a transaction, and is committed only if the
connection was idle).  A `Database` inside one of its ``transaction()`` or
``savepoint()`` blocks lends that block's connection: the work joins the
block's transaction as a savepoint, sees what the block created, and is
committed or rolled back with the block.

Longer than 400 lines because the three COPY operations share the connection
rule, the transaction (with commit resolution), the row encoding and the
error messages defined here.
"""

from __future__ import annotations

import logging
import re
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter
from psycopg.pq import TransactionStatus

from .._commit import commit_resolving, engine_reconnect, psycopg_reconnect
from .._connectable import block_connection, engine_of, require_engine
from .._renamed import renamed_parameters
from ..errors import BulkLoadError, InvalidOptionError, TableNotFoundError

__all__ = ["BulkLoadError", "Connectable", "bulk_upsert", "copy_rows", "copy_to"]

log = logging.getLogger(__name__)

Connectable = Any
"""A `Database`, a SQLAlchemy ``Engine`` or a psycopg ``Connection``."""

Row = Sequence[Any] | Mapping[str, Any]

_GEOMETRY_TYPES = frozenset({"geometry", "geography"})
_QUERY_START = re.compile(r"^\s*(select|with|values|table)\b", re.IGNORECASE)


def _require_psycopg(connectable: Connectable, function: str) -> None:
    """Refuse a `Database` or ``Engine`` whose driver is not psycopg 3, at once.

    Raises:
        InvalidOptionError: (a ``TypeError``) e.g. a SQLite database.
    """
    engine = engine_of(connectable)
    if engine is not None and engine.dialect.driver != "psycopg":
        url = engine.url
        raise InvalidOptionError(
            f"{function}() uses PostgreSQL's COPY and needs a postgresql+psycopg "
            f"engine, not {url.get_backend_name()}+{url.get_driver_name()}"
            + (
                (
                    "; on SQLite read the rows with run_query()"
                    if function == "copy_to"
                    else "; on SQLite insert the rows with run_sql() and a list "
                    "of parameter sets"
                )
                if url.get_backend_name() == "sqlite"
                else ""
            )
        )


@contextmanager
def _connection(connectable: Connectable) -> Iterator[psycopg.Connection[Any]]:
    """Yield a psycopg connection for ``connectable`` (see the module docstring)."""
    if isinstance(connectable, psycopg.Connection):
        yield connectable
        return
    block = _block_connection(connectable)
    if block is not None:
        yield block
        return
    engine = engine_of(connectable)
    if engine is None:
        raise TypeError(
            "expected a Database, a SQLAlchemy Engine or a psycopg Connection, "
            f"got {type(connectable).__name__}"
        )
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        if not isinstance(conn, psycopg.Connection):
            raise TypeError("bulk operations need the psycopg (3) driver")
        yield conn
    finally:
        # A connection left in a failed or cancelled state is reset by the
        # pool; one the server is gone from is discarded.
        driver = raw.driver_connection
        if getattr(driver, "closed", False) or getattr(driver, "broken", False):
            raw.invalidate()
        raw.close()


def _block_connection(connectable: Connectable) -> psycopg.Connection[Any] | None:
    """The psycopg connection of a `Database`'s open transaction block, or None.

    Inside ``db.transaction()`` or ``db.savepoint()`` the session is flushed
    and the block's transaction begun on the server, so that the bulk
    operation sees the block's work and runs in a SAVEPOINT of it (kept or
    rolled back with the block).
    """
    block = block_connection(connectable, flush=True)
    if block is None:
        return None
    driver = block.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError("bulk operations need the psycopg (3) driver")
    if driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        driver.execute("SELECT 1")  # begins the block's transaction
    return driver


@contextmanager
def _transaction(
    conn: psycopg.Connection[Any], connectable: Connectable, what: str
) -> Iterator[bool]:
    """Run the block in a transaction; roll it back on any exception.

    On a connection already in a transaction the block is a savepoint of it
    (yields False). Otherwise the block is a transaction of its own (yields
    True), committed through `commit_resolving`: a connection lost during
    ``COMMIT`` is resolved with the server rather than guessed. On a
    connection that is not idle (after a cut or a cancel that broke it), the
    rollback may fail; the original error still wins.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        with conn.transaction():
            yield False
        return
    reconnect = (
        psycopg_reconnect(conn)
        if isinstance(connectable, psycopg.Connection)
        else engine_reconnect(require_engine(connectable, "a Database or Engine"))
    )
    if conn.autocommit:
        conn.execute("BEGIN")
    try:
        yield True
    except BaseException:
        try:
            conn.execute("ROLLBACK") if conn.autocommit else conn.rollback()
        except psycopg.Error as exc:
            log.debug("rolling back after a failed %s: %s", what, exc)
        raise
    try:
        commit_resolving(
            conn,
            (lambda: conn.execute("COMMIT")) if conn.autocommit else conn.commit,
            reconnect,
            what=what,
        )
    except psycopg.Error as exc:
        if not hasattr(exc, "commit_outcome"):
            # The server answered the COMMIT with an error (a deferred
            # constraint, a serialization failure): it rolled back.
            exc.commit_outcome = "refused"  # type: ignore[attr-defined]
        raise


def _split_table(table: str, schema: str | None) -> sql.Identifier:
    """Quote ``table`` (``"name"`` or ``"schema.name"``) as an identifier."""
    if schema is not None:
        return sql.Identifier(schema, table)
    if "." in table:
        first, _, rest = table.partition(".")
        return sql.Identifier(first, rest)
    return sql.Identifier(table)


def _column_types(
    conn: psycopg.Connection[Any], target: sql.Identifier
) -> dict[str, str]:
    """Map each column of ``target`` to its type name (``geometry``, ``int4``…)."""
    query = sql.SQL(
        "SELECT a.attname, t.typname FROM pg_attribute a "
        "JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum"
    ).format(sql.Literal(target.as_string(conn)))
    return dict(conn.execute(query).fetchall())


def _geometry_value(value: Any) -> Any:
    """Turn a geometry given as WKB bytes or a Shapely-like object into hex WKB.

    Strings (WKT, EWKT, hex WKB/EWKB) and None pass unchanged: PostGIS parses
    them itself. Objects with a ``wkb`` attribute (Shapely geometries) are
    accepted without importing Shapely.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    wkb = getattr(value, "wkb", None)
    if isinstance(wkb, (bytes, bytearray)):
        return bytes(wkb).hex()
    raise TypeError(
        f"cannot load a {type(value).__name__} into a geometry column: "
        "give WKB bytes, a WKT/EWKT/hex-WKB string or a Shapely geometry"
    )


class _Plan:
    """What a load needs: the columns, the geometry positions and the rows.

    ``sent`` counts the rows handed to COPY so far (reported on failure).
    """

    def __init__(self, columns: list[str], geo: list[int], rows: Iterator[Row]) -> None:
        self.columns = columns
        self.geo = geo
        self.rows = rows
        self.sent = 0


def _prepare(
    conn: psycopg.Connection[Any],
    target: sql.Identifier,
    rows: Iterable[Row],
    columns: Sequence[str] | None,
) -> _Plan:
    """Resolve the column list and the geometry columns; keep the rows lazy."""
    types = _column_types(conn, target)
    iterator = iter(rows)
    first: Row | None = next(iterator, None)
    if columns is None:
        columns = list(first.keys()) if isinstance(first, Mapping) else list(types)
    columns = list(columns)
    unknown = [c for c in columns if c not in types]
    if unknown:
        raise ValueError(f"no column {', '.join(unknown)} in {target.as_string(conn)}")
    geo = [i for i, c in enumerate(columns) if types[c] in _GEOMETRY_TYPES]
    chained: Iterator[Row] = iter(()) if first is None else _chain(first, iterator)
    return _Plan(columns, geo, chained)


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    """Yield ``first`` and then the rest, lazily."""
    yield first
    yield from rest


def _copy_in(conn: psycopg.Connection[Any], target: sql.Identifier, plan: _Plan) -> int:
    """Send the plan's rows through ``COPY target (columns) FROM STDIN``.

    Returns the number of rows sent. The per-row loop is kept tight: tuples
    whose geometry values are already strings (or NULL) are written as given.
    """
    columns = plan.columns
    ncols = len(columns)
    geo = plan.geo
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    keys = frozenset(columns)
    sent = 0
    try:
        with (
            conn.cursor() as cur,
            cur.copy(statement, writer=QueuedLibpqWriter(cur)) as copy,
        ):
            write_row = copy.write_row
            for row in plan.rows:
                if type(row) is not tuple and isinstance(row, Mapping):
                    if row.keys() != keys:
                        raise _key_error(sent + 1, row, columns)
                    row = tuple([row[c] for c in columns])
                elif len(row) != ncols:
                    raise ValueError(
                        f"row {sent + 1} (counting from 1) has {len(row)} values "
                        f"for {ncols} columns ({', '.join(columns)})"
                    )
                for i in geo:
                    value = row[i]
                    if value is not None and type(value) is not str:
                        row = list(row)
                        row[i] = _geometry_value(value)
                write_row(row)
                sent += 1
    finally:
        plan.sent = sent
    return plan.sent


def _key_error(number: int, row: Mapping[str, Any], columns: list[str]) -> ValueError:
    """The error for a dict row whose keys are not exactly ``columns``."""
    unknown = sorted(str(k) for k in row if k not in columns)
    missing = [c for c in columns if c not in row]
    parts = []
    if unknown:
        parts.append(f"unknown key(s) {', '.join(map(repr, unknown))}")
    if missing:
        parts.append(f"missing key(s) {', '.join(map(repr, missing))}")
    return ValueError(
        f"row {number} (counting from 1) has {' and '.join(parts)}; every dict "
        f"row must have exactly the keys {', '.join(map(repr, columns))}"
    )


def _load_error(
    exc: BaseException,
    table: str,
    count: int,
    conn: psycopg.Connection[Any],
    own: bool | None,
) -> BulkLoadError:
    """Build the `BulkLoadError` for a failed load, saying only what is known.

    ``own`` is True for a load in its own transaction, False for one in a
    savepoint of the caller's, None when it failed before either began.
    """
    lost = conn.closed or conn.broken
    state = "the connection was lost" if lost else "the load failed"
    outcome = getattr(exc, "commit_outcome", None)
    if outcome == "aborted":
        fate = (
            "the server reports the transaction aborted, so the table holds "
            "none of these rows"
        )
    elif outcome == "refused":
        fate = (
            "the server refused the COMMIT and rolled the transaction back, so "
            "the table holds none of these rows"
        )
    elif outcome == "no-writes":
        fate = "the transaction had written no rows, so there was nothing to keep"
    elif own is False and not lost:
        fate = (
            "it was rolled back to its savepoint (the enclosing transaction "
            "goes on) and the table holds none of these rows"
        )
    elif own is False:
        fate = (
            "the enclosing transaction never committed, so the table holds none "
            "of these rows"
        )
    else:
        fate = (
            "COMMIT was never sent, so nothing was committed and the table "
            "holds none of these rows"
        )
    return BulkLoadError(
        f"bulk load into {table} failed after {count} rows were sent ({state}: "
        f"{exc}); {fate}",
        table,
        count,
    )


def copy_rows(
    connectable: Connectable,
    table: str,
    rows: Iterable[Row],
    columns: Sequence[str] | None = None,
    *,
    schema: str | None = None,
) -> int:
    """Load ``rows`` into ``table`` with ``COPY ... FROM STDIN``; return the count.

    The iterable is consumed lazily and streamed, so memory stays flat for any
    number of rows. Rows are tuples (in ``columns`` order, or the table's column
    order when ``columns`` is None) or dicts (keys of the first row give the
    columns when ``columns`` is None). Every dict row must have exactly the
    keys of ``columns``: a misspelt, extra or missing key raises `ValueError`
    naming the row (counting from 1) rather than loading NULL or dropping a
    value; give ``None`` explicitly for NULL. Geometry and
    geography columns accept WKB bytes, WKT/EWKT/hex-WKB strings and Shapely
    geometries (anything with a ``wkb`` attribute).

    The load is all-or-nothing: it runs in one transaction (a savepoint on a
    psycopg connection already in a transaction), so a bad row, a lost
    connection or an exception from the iterable leaves none of the rows in
    the table. An exception raised by the iterable (``KeyboardInterrupt``
    included) ends the server-side COPY before being re-raised, and the
    connection stays usable. A cancel sent from another thread
    (``connection.cancel()``) stops the server-side COPY at once, but psycopg
    reports it (as `BulkLoadError` with ``QueryCanceled`` as cause) only when
    the row stream ends. Rows are sent by a writer thread
    (``QueuedLibpqWriter``) so that formatting and network writes overlap.

    Parameters:
        connectable: a `Database`, SQLAlchemy ``Engine`` or psycopg ``Connection``.
        table: the target table, ``name`` or ``schema.name``.
        rows: an iterable of tuples or mappings.
        columns: the columns the values fill; see above when None.
        schema: the table's schema (then ``table`` is not split on dots).

    Raises:
        BulkLoadError: the server refused a row or the connection failed;
            the driver's error is the ``__cause__``.
        ValueError: an unknown column, a tuple row of the wrong length or a
            dict row with other keys (the message gives the row number,
            counting from 1); nothing is loaded.
        TypeError: a value that cannot go into a geometry column.
        InvalidOptionError: the engine is not psycopg 3 (SQLite...).
    """
    _require_psycopg(connectable, "copy_rows")
    target = _split_table(table, schema)
    with _connection(connectable) as conn:
        plan: _Plan | None = None
        own: bool | None = None
        try:
            with _transaction(conn, connectable, f"the load into {table}") as own:
                plan = _prepare(conn, target, rows, columns)
                count = _copy_in(conn, target, plan)
        except psycopg.Error as exc:
            sent = plan.sent if plan is not None else 0
            raise _load_error(exc, table, sent, conn, own) from exc
    log.debug("copied %d rows into %s", count, table)
    return count


@renamed_parameters({"query_or_table": "table"})  # the name before 5.0
def copy_to(
    connectable: Connectable,
    table: str | None = None,
    file: IO[bytes] | IO[str] | None = None,
    *,
    format: str = "text",
    schema: str | None = None,
    query: str | sql.Composable | None = None,
) -> int | Iterator[bytes]:
    """Stream a table, or a query's rows, out with ``COPY ... TO STDOUT``.

    Give either ``table`` (a name: ``name``, or ``schema.name`` when
    ``schema`` is None; always quoted, never run as SQL, so a table called
    ``values`` exports by name) or ``query`` (SQL text or a psycopg
    ``Composable``). A query is first parsed alone by the server, which
    refuses anything but one complete statement, so its text cannot reach
    outside ``COPY (...)``. With a file, every chunk is written to it as it
    arrives (decoded as UTF-8 if the file is a text file) and the number of
    bytes is returned. Without one, an iterator of raw ``bytes`` chunks is
    returned; it holds a connection until exhausted or closed (and errors
    surface when it is first read).

    A ``Composable`` given as ``table`` (the form before 5.0) is run as a
    query with a ``DeprecationWarning``; so is the keyword ``query_or_table=``
    for a table name. A string is never sniffed: ``copy_to(db, "SELECT 1")``
    looks for a table of that name, and says to use ``query=`` when there is
    none.

    Parameters:
        connectable: a `Database`, SQLAlchemy ``Engine`` or psycopg ``Connection``.
        table: the table to export.
        file: a binary or text file object, or None for an iterator.
        format: ``text``, ``csv`` or ``binary``.
        schema: the table's schema (then ``table`` is not split on dots).
        query: the query whose rows to export, instead of a table.

    Raises:
        InvalidOptionError: both or neither of ``table`` and ``query``, a
            ``schema`` with a query, a query that is not one statement, a
            table name that is a query, or an engine that is not psycopg 3
            (SQLite...), at once (also when an iterator is asked for).
        TableNotFoundError: no such table (a ``LookupError``).
    """
    _require_psycopg(connectable, "copy_to")
    if format not in ("text", "csv", "binary"):
        raise ValueError(f"unknown COPY format {format!r}")
    if isinstance(table, sql.Composable):
        warnings.warn(
            "copy_to() with a query as its table argument is deprecated: "
            "pass it as query=",
            DeprecationWarning,
            stacklevel=3,
        )
        table, query = None, table
    if (table is None) == (query is None):
        raise InvalidOptionError("copy_to() takes either a table or query=, not both")
    if query is not None and schema is not None:
        raise InvalidOptionError(
            "copy_to(): schema= names a table's schema, not a query's"
        )
    options = sql.SQL("(FORMAT {})").format(sql.SQL(format))
    chunks: Iterator[bytes]
    if query is not None:
        chunks = _copy_out(connectable, query, options)
    else:
        if not isinstance(table, str):
            raise InvalidOptionError(
                f"copy_to(): table must be a name (str), not {type(table).__name__}"
            )
        chunks = _copy_table_out(connectable, table, schema, options)
    if file is None:
        return chunks
    total = 0
    binary = not isinstance(file, _text_io_types())
    for chunk in chunks:
        file.write(chunk if binary else chunk.decode())  # type: ignore[arg-type]
        total += len(chunk)
    return total


def _copy_table_out(
    connectable: Connectable, table: str, schema: str | None, options: sql.Composable
) -> Iterator[bytes]:
    """Yield the chunks of ``COPY <table> TO STDOUT``; name a missing table."""
    target = _split_table(table, schema)
    statement = sql.SQL("COPY {} TO STDOUT {}").format(target, options)
    try:
        yield from _copy_out(connectable, statement)
    except psycopg.errors.UndefinedTable as exc:
        if schema is None and _QUERY_START.match(table):
            raise InvalidOptionError(
                f"copy_to(): there is no table named {table!r}; to export a "
                "query's rows pass it as query= (a table name is never run as SQL)"
            ) from exc
        raise TableNotFoundError(
            f"copy_to(): no table {table!r}"
            + (f" in schema {schema!r}" if schema is not None else ""),
            table=table,
            schema=schema or "",
        ) from exc


def _text_io_types() -> tuple[type, ...]:
    """The file classes that take ``str`` rather than ``bytes``."""
    import io

    return (io.TextIOBase,)


def _copy_out(
    connectable: Connectable,
    what: str | sql.Composable,
    options: sql.Composable | None = None,
) -> Iterator[bytes]:
    """Yield the chunks of a ``COPY ... TO STDOUT``, in a transaction of its own.

    ``what`` is a whole COPY statement when ``options`` is None, else a query
    to wrap (``COPY (query) TO STDOUT options``), parsed alone first.
    """
    statement: sql.SQL | sql.Composed
    with _connection(connectable) as conn, conn.transaction():
        if options is None:
            if not isinstance(what, (sql.SQL, sql.Composed)):  # pragma: no cover
                raise TypeError("a COPY statement is composed with psycopg.sql")
            statement = what
        else:
            text = what if isinstance(what, str) else what.as_string(conn)
            _check_query(conn, text)
            # The caller's query, parsed alone by the server just above.
            statement = sql.SQL("COPY (\n{}\n) TO STDOUT {}").format(
                sql.SQL(text), options
            )
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk in copy:
                yield bytes(chunk)


def _check_query(conn: psycopg.Connection[Any], text: str) -> None:
    """Have the server parse ``text`` alone (nothing runs); refuse all but one statement.

    Raises:
        InvalidOptionError: the server's parse error (its SQLSTATE and message).
    """
    with conn.transaction():  # a failed parse rolls back only this savepoint
        result = conn.pgconn.prepare(b"", text.encode(conn.info.encoding))
        if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
            message = (result.error_message or b"").decode(errors="replace").strip()
            raise InvalidOptionError(
                "copy_to(): the query must be one complete statement; the server "
                f"refused it: {message}"
            )


def bulk_upsert(
    connectable: Connectable,
    table: str,
    rows: Iterable[Row],
    conflict: Sequence[str],
    update: Sequence[str] | None = None,
    *,
    columns: Sequence[str] | None = None,
    schema: str | None = None,
) -> tuple[int, int]:
    """Insert or update ``rows`` in ``table``; return ``(inserted, updated)``.

    The rows are streamed with COPY into a temporary staging table (``LIKE``
    the target, defaults included, dropped on commit), then merged with one
    ``INSERT ... SELECT ... ON CONFLICT (conflict) DO UPDATE``, all in one
    transaction. Only the supplied columns are written: on conflict, the
    ``update`` columns (default: every supplied column outside ``conflict``)
    take the new values; ``update=[]`` leaves existing rows alone (``DO
    NOTHING``, they count as neither inserted nor updated). Two rows with the
    same key in one call make PostgreSQL refuse the merge.

    Parameters:
        connectable: a `Database`, SQLAlchemy ``Engine`` or psycopg ``Connection``.
        table: the target table, ``name`` or ``schema.name``.
        rows: an iterable of tuples or mappings (as for `copy_rows`).
        conflict: the columns of a unique index or constraint.
        update: the columns to overwrite on conflict.
        columns: the supplied columns (as for `copy_rows`).
        schema: the table's schema.

    Raises:
        BulkLoadError: loading or merging failed; nothing was changed.
        ValueError: unknown columns, or conflict columns not supplied.
        InvalidOptionError: the engine is not psycopg 3 (SQLite...).
    """
    _require_psycopg(connectable, "bulk_upsert")
    target = _split_table(table, schema)
    stage = sql.Identifier(f"_bulk_stage_{uuid.uuid4().hex[:12]}")
    with _connection(connectable) as conn:
        plan: _Plan | None = None
        own: bool | None = None
        try:
            with _transaction(conn, connectable, f"the upsert into {table}") as own:
                conn.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) "
                        "ON COMMIT DROP"
                    ).format(stage, target)
                )
                plan = _prepare(conn, target, rows, columns)
                cols = plan.columns
                missing = [c for c in conflict if c not in cols]
                if missing:
                    raise ValueError(
                        f"conflict columns not supplied: {', '.join(missing)}"
                    )
                _copy_in(conn, stage, plan)
                result = conn.execute(_merge_sql(target, stage, cols, conflict, update))
                inserted, updated = result.fetchone() or (0, 0)
                conn.execute(sql.SQL("DROP TABLE {}").format(stage))
        except psycopg.Error as exc:
            sent = plan.sent if plan is not None else 0
            raise _load_error(exc, table, sent, conn, own) from exc
    log.debug("upserted into %s: %d inserted, %d updated", table, inserted, updated)
    return int(inserted), int(updated)


def _merge_sql(
    target: sql.Identifier,
    stage: sql.Identifier,
    cols: list[str],
    conflict: Sequence[str],
    update: Sequence[str] | None,
) -> sql.Composed:
    """The ``INSERT ... ON CONFLICT ... RETURNING`` counting inserts and updates."""
    if update is None:
        update = [c for c in cols if c not in conflict]
    unknown = [c for c in update if c not in cols]
    if unknown:
        raise ValueError(f"update columns not supplied: {', '.join(unknown)}")
    col_list = sql.SQL(", ").join(map(sql.Identifier, cols))
    action: sql.Composable
    if update:
        action = sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in update
            )
        )
    else:
        action = sql.SQL("DO NOTHING")
    return sql.SQL(
        "WITH merged AS (INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage} "
        "ON CONFLICT ({conflict}) {action} RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), "
        "count(*) FILTER (WHERE NOT inserted) FROM merged"
    ).format(
        target=target,
        cols=col_list,
        stage=stage,
        conflict=sql.SQL(", ").join(map(sql.Identifier, conflict)),
        action=action,
    )
