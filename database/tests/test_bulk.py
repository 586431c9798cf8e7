"""Bulk loading with COPY: copy_rows, copy_to and bulk_upsert against real PostGIS."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from macrostrat.database import Database
from macrostrat.database.errors import InvalidOptionError, TableNotFoundError
from macrostrat.database.transfer import (
    BulkLoadError,
    bulk_upsert,
    copy_rows,
    copy_to,
)

POINT_WKB = bytes.fromhex("0101000000000000000000f03f0000000000000040")  # POINT(1 2)


def _exec(db: Database, statement: str) -> list[tuple[Any, ...]]:
    raw = db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        cur = conn.execute(statement)
        rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        raw.close()


@pytest.fixture
def bulk_db(empty_db: Database) -> Database:
    _exec(
        empty_db,
        "CREATE TABLE t (id int PRIMARY KEY, name text, value double precision, "
        "geom geometry(Point, 4326), note text DEFAULT 'none')",
    )
    return empty_db


def _count(db: Database, table: str = "t") -> int:
    return int(_exec(db, f"SELECT count(*) FROM {table}")[0][0])


def test_copy_tuples_and_geometries(bulk_db: Database) -> None:
    rows = [
        (1, "a", 1.5, POINT_WKB, "x"),
        (2, "b\tc\nd", None, "SRID=4326;POINT(3 4)", None),
        (3, None, 2.0, "POINT(5 6)", "z"),
        (4, "e", 3.0, None, "w"),
    ]
    # Hex EWKB with the SRID is accepted as well as raw WKB bytes (no SRID).
    rows.append(
        (5, "f", 4.0, "0101000020E6100000000000000000F03F0000000000000040", "v")
    )
    assert copy_rows(bulk_db, "t", iter(rows)) == 5
    got = _exec(
        bulk_db, "SELECT id, name, value, ST_AsEWKT(geom), note FROM t ORDER BY id"
    )
    assert got == [
        (1, "a", 1.5, "SRID=4326;POINT(1 2)", "x"),
        (2, "b\tc\nd", None, "SRID=4326;POINT(3 4)", None),
        (3, None, 2.0, "SRID=4326;POINT(5 6)", "z"),
        (4, "e", 3.0, None, "w"),
        (5, "f", 4.0, "SRID=4326;POINT(1 2)", "v"),
    ]


def test_copy_wkb_bytes_and_shapely_like(empty_db: Database) -> None:
    _exec(empty_db, "CREATE TABLE g (id int, geom geometry)")

    class FakeShape:
        """Stands in for a Shapely geometry: Shapely is not installed here.

        `copy_rows` only reads the ``wkb`` attribute (it never imports
        Shapely), so an object with that attribute is the whole contract.
        """

        wkb = POINT_WKB

    n = copy_rows(
        empty_db,
        "g",
        [
            (1, POINT_WKB),
            (2, memoryview(POINT_WKB)),
            (3, FakeShape()),
            (4, "POINT(1 2)"),
        ],
    )
    assert n == 4
    assert _exec(empty_db, "SELECT DISTINCT ST_AsText(geom) FROM g") == [
        ("POINT(1 2)",)
    ]
    with pytest.raises(TypeError, match="geometry column"):
        copy_rows(empty_db, "g", [(5, 1.5)])
    assert _count(empty_db, "g") == 4


def test_copy_dicts_columns_and_schema(bulk_db: Database) -> None:
    rows = [{"id": 1, "name": "a"}, {"name": None, "id": 2}]
    assert copy_rows(bulk_db, "t", rows) == 2
    assert _exec(bulk_db, "SELECT id, name, note FROM t ORDER BY id") == [
        (1, "a", "none"),
        (2, None, "none"),
    ]
    assert copy_rows(bulk_db, "t", [(3, "c")], columns=["id", "name"]) == 1
    _exec(
        bulk_db, 'CREATE SCHEMA "odd schema"; CREATE TABLE "odd schema"."T x" (a int)'
    )
    assert copy_rows(bulk_db, "T x", [(1,), (2,)], schema="odd schema") == 2
    assert copy_rows(bulk_db, "t", []) == 0
    with pytest.raises(ValueError, match="no column"):
        copy_rows(bulk_db, "t", [(1,)], columns=["nope"])


def test_copy_accepts_psycopg_connection_in_caller_transaction(
    bulk_db: Database,
) -> None:
    raw = bulk_db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.execute("SELECT 1")  # caller's transaction is open
        assert copy_rows(conn, "t", [(1, "a", 1.0, None, None)]) == 1
        conn.rollback()
    finally:
        raw.close()
    assert _count(bulk_db) == 0


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"id": 1, "name": "a"}, {"id": 2, "nmae": "b"}],
            r"row 2 \(counting from 1\) has unknown key\(s\) 'nmae' and "
            r"missing key\(s\) 'name'",
        ),
        (
            [{"id": 1, "name": "a"}, {"id": 2}],
            r"row 2 \(counting from 1\) has missing key\(s\) 'name'",
        ),
        (
            [{"id": 1}, {"id": 2}, {"id": 3, "name": "c"}],
            r"row 3 \(counting from 1\) has unknown key\(s\) 'name'",
        ),
        (
            [(1, "a"), (2, "b"), (3,)],
            r"row 3 \(counting from 1\) has 1 values for 2 columns",
        ),
    ],
)
def test_rows_with_other_keys_or_lengths_are_refused(
    bulk_db: Database, rows: list[Any], message: str
) -> None:
    """A misspelt, extra or missing dict key (or a short tuple) names its row; nothing loads."""
    columns = None if isinstance(rows[0], dict) else ["id", "name"]
    with pytest.raises(ValueError, match=message):
        copy_rows(bulk_db, "t", rows, columns)
    assert _count(bulk_db) == 0
    with pytest.raises(ValueError, match=message):
        bulk_upsert(bulk_db, "t", rows, ["id"], columns=columns)
    assert _count(bulk_db) == 0


def test_bad_row_in_middle_loads_nothing(bulk_db: Database) -> None:
    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(10_000):
            yield (i, "x", "not a number" if i == 5_000 else 1.0, None, None)

    with pytest.raises(BulkLoadError, match="holds none of these rows") as info:
        copy_rows(bulk_db, "t", rows())
    assert isinstance(info.value.__cause__, psycopg.errors.InvalidTextRepresentation)
    assert _count(bulk_db) == 0
    # the pool's connection is usable again
    assert copy_rows(bulk_db, "t", [(1, "a", 1.0, None, None)]) == 1


def test_duplicate_key_loads_nothing(bulk_db: Database) -> None:
    with pytest.raises(BulkLoadError) as info:
        copy_rows(bulk_db, "t", [(1, "a", 1.0, None, None)] * 3)
    assert isinstance(info.value.__cause__, psycopg.errors.UniqueViolation)
    assert _count(bulk_db) == 0


def _endless(
    pid_seen: threading.Event, seconds: float = 30
) -> Iterator[tuple[Any, ...]]:
    deadline = time.monotonic() + seconds  # bounded: never loops forever
    i = 0
    while time.monotonic() < deadline:
        i += 1
        if i == 50_000:
            pid_seen.set()
        yield (i, "row", 1.0, "SRID=4326;POINT(1 2)", None)


def _copy_pids(db: Database) -> list[int]:
    return [
        r[0]
        for r in _exec(
            db,
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'COPY %' "
            "AND pid <> pg_backend_pid()",
        )
    ]


def test_terminated_backend_leaves_nothing(bulk_db: Database) -> None:
    started = threading.Event()

    def killer() -> None:
        started.wait(20)
        for _ in range(100):
            if _copy_pids(bulk_db):
                break
            time.sleep(0.05)
        _exec(
            bulk_db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'COPY %' AND pid <> pg_backend_pid()",
        )

    thread = threading.Thread(target=killer)
    thread.start()
    t0 = time.monotonic()
    with pytest.raises(BulkLoadError, match="none of these rows") as info:
        copy_rows(bulk_db, "t", _endless(started))
    thread.join()
    assert time.monotonic() - t0 < 30
    assert info.value.rows_sent > 0
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert _count(bulk_db) == 0


def test_ctrl_c_cancels_copy(bulk_db: Database) -> None:
    """A real SIGINT, sent by a timer thread while COPY streams, ends the load.

    The row stream would run for 20 s; Ctrl-C arrives once 50,000 rows were
    produced. KeyboardInterrupt propagates, the server's COPY ends (its backend
    is idle again, not in a transaction), no row is kept, and the same
    connection runs the next statement.
    """
    started = threading.Event()
    raw = bulk_db.engine.raw_connection()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt() -> None:
        if started.wait(20):
            os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt)
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        pid = conn.info.backend_pid
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            copy_rows(conn, "t", _endless(started, seconds=20))
        assert time.monotonic() - t0 < 15
        # the server's COPY was ended and rolled back: the backend is idle
        [(state, last)] = _exec(
            bulk_db, f"SELECT state, query FROM pg_stat_activity WHERE pid = {pid}"
        )
        assert (state, last) == ("idle", "ROLLBACK")
        assert _copy_pids(bulk_db) == []
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        conn.rollback()
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
        raw.close()
    assert _count(bulk_db) == 0


def test_cancel_from_thread(bulk_db: Database) -> None:
    started = threading.Event()
    raw = bulk_db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)

        def canceller() -> None:
            started.wait(20)
            conn.cancel()

        thread = threading.Thread(target=canceller)
        thread.start()
        # The server refuses the rest of the stream at once, but COPY FROM STDIN
        # reports the error when the stream ends: keep the stream short.
        with pytest.raises(BulkLoadError) as info:
            copy_rows(conn, "t", _endless(started, seconds=3))
        thread.join()
        assert isinstance(info.value.__cause__, psycopg.errors.QueryCanceled)
        assert _copy_pids(bulk_db) == []
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        conn.rollback()
    finally:
        raw.close()


def test_copy_to_file_and_iterator(bulk_db: Database) -> None:
    copy_rows(bulk_db, "t", [(i, f"n{i}", i / 2, None, None) for i in range(3)])
    buf = io.BytesIO()
    size = copy_to(bulk_db, "t", buf)
    assert size == len(buf.getvalue())
    assert buf.getvalue().splitlines()[0] == b"0\tn0\t0\t\\N\t\\N"
    text = io.StringIO()
    copy_to(
        bulk_db,
        file=text,
        query="SELECT id FROM t WHERE id > 0 ORDER BY id",
        format="csv",
    )
    assert text.getvalue() == "1\n2\n"
    chunks = copy_to(bulk_db, query="select name from t order by id")
    assert not isinstance(chunks, int)
    assert b"".join(chunks) == b"n0\nn1\nn2\n"
    binary = copy_to(bulk_db, "t", format="binary")
    assert not isinstance(binary, int)
    assert b"".join(binary).startswith(b"PGCOPY\n")
    with pytest.raises(ValueError, match="format"):
        copy_to(bulk_db, "t", format="xml")


def test_copy_to_never_runs_a_table_name_as_sql(bulk_db: Database, tmp_path) -> None:
    """The reported injection: a "table" that closes COPY's parenthesis runs nothing."""
    marker = tmp_path / "pwned"
    evil = f"select 1) TO PROGRAM 'touch {marker}' --"
    with pytest.raises(TableNotFoundError):
        copy_to(bulk_db, evil, io.BytesIO(), schema="public")
    with pytest.raises(InvalidOptionError, match="query="):
        copy_to(bulk_db, evil, io.BytesIO())
    # given as a query, the server parses it alone first and refuses it
    with pytest.raises(InvalidOptionError, match="one complete statement"):
        copy_to(bulk_db, query=evil, file=io.BytesIO())
    with pytest.raises(InvalidOptionError, match="one complete statement"):
        copy_to(bulk_db, query="SELECT 1; SELECT 2", file=io.BytesIO())
    assert not marker.exists()


def test_copy_to_exports_a_table_named_like_a_keyword(bulk_db: Database) -> None:
    """``values`` and ``select`` are table names when given as tables."""
    bulk_db.run_sql(
        'CREATE TABLE "values" (v int); INSERT INTO "values" VALUES (7);'
        'CREATE SCHEMA IF NOT EXISTS other; CREATE TABLE other."select" (s text);'
        "INSERT INTO other.\"select\" VALUES ('x')"
    )
    assert b"".join(copy_to(bulk_db, "values")) == b"7\n"
    assert b"".join(copy_to(bulk_db, "select", schema="other")) == b"x\n"
    assert b"".join(copy_to(bulk_db, "other.select")) == b"x\n"


def test_copy_to_arguments(bulk_db: Database) -> None:
    """Table xor query; schema only with a table; the old forms warn."""
    with pytest.raises(InvalidOptionError, match="either"):
        copy_to(bulk_db, "t", query="SELECT 1")
    with pytest.raises(InvalidOptionError, match="either"):
        copy_to(bulk_db)
    with pytest.raises(InvalidOptionError, match="schema"):
        copy_to(bulk_db, query="SELECT 1", schema="public")
    with pytest.raises(TableNotFoundError, match="no_such"):
        copy_to(bulk_db, "no_such", io.BytesIO())
    with pytest.warns(DeprecationWarning, match="query_or_table"):
        out = copy_to(bulk_db, query_or_table="t", format="csv")
    assert not isinstance(out, int)
    assert b"".join(out) == b"".join(copy_to(bulk_db, "t", format="csv"))  # type: ignore[arg-type]
    with pytest.warns(DeprecationWarning, match="query="):
        got = copy_to(bulk_db, sql.SQL("SELECT {}").format(sql.Literal(5)))  # type: ignore[arg-type]
    assert not isinstance(got, int)
    assert b"".join(got) == b"5\n"


def test_copy_to_round_trip_large(bulk_db: Database) -> None:
    n = 50_000
    copy_rows(
        bulk_db,
        "t",
        ((i, "x" * 20, float(i), "SRID=4326;POINT(1 2)", None) for i in range(n)),
    )
    data = copy_to(bulk_db, "t")
    assert not isinstance(data, int)
    assert sum(chunk.count(b"\n") for chunk in data) == n


def test_bulk_upsert_counts(bulk_db: Database) -> None:
    copy_rows(bulk_db, "t", [(1, "a", 1.0, None, "keep"), (2, "b", 2.0, None, "keep")])
    rows = [
        {"id": 2, "name": "B", "value": 20.0, "geom": None},
        # WKB without an SRID loads into geometry(Point, 4326) as well
        {"id": 3, "name": "c", "value": 3.0, "geom": POINT_WKB},
    ]
    assert bulk_upsert(bulk_db, "t", rows, conflict=["id"]) == (1, 1)
    assert _exec(
        bulk_db, "SELECT id, name, value, ST_AsEWKT(geom), note FROM t ORDER BY id"
    ) == [
        (1, "a", 1.0, None, "keep"),
        (2, "B", 20.0, None, "keep"),  # unsupplied column untouched
        (3, "c", 3.0, "SRID=4326;POINT(1 2)", "none"),  # default from staging
    ]
    assert bulk_upsert(
        bulk_db,
        "t",
        [(1, "z", 9.0), (4, "d", 4.0)],
        ["id"],
        ["name"],
        columns=["id", "name", "value"],
    ) == (1, 1)
    assert _exec(bulk_db, "SELECT name, value FROM t WHERE id = 1") == [("z", 1.0)]
    assert bulk_upsert(
        bulk_db, "t", [(1, "q"), (5, "e")], ["id"], [], columns=["id", "name"]
    ) == (1, 0)
    assert _count(bulk_db) == 5


def test_bulk_upsert_failure_changes_nothing(bulk_db: Database) -> None:
    copy_rows(bulk_db, "t", [(1, "a", 1.0, None, None)])
    with pytest.raises(BulkLoadError):
        bulk_upsert(
            bulk_db, "t", [(1, "x"), (2, "y"), (2, "z")], ["id"], columns=["id", "name"]
        )
    assert _exec(bulk_db, "SELECT id, name FROM t") == [(1, "a")]
    with pytest.raises(ValueError, match="conflict columns"):
        bulk_upsert(bulk_db, "t", [("x",)], ["id"], columns=["name"])
    # no staging table is left behind
    assert _exec(
        bulk_db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '_bulk%'"
    ) == [(0,)]


def test_database_methods_delegate(empty_db):
    """Database.copy_rows / bulk_upsert / copy_to reach the transfer functions."""
    empty_db.run_sql("CREATE TABLE via_db (id int PRIMARY KEY, name text)")
    assert empty_db.copy_rows("via_db", [(1, "a"), (2, "b")]) == 2
    assert empty_db.bulk_upsert("via_db", [(2, "B"), (3, "c")], conflict=["id"]) == (
        1,
        1,
    )
    chunks = b"".join(empty_db.copy_to(query="SELECT name FROM via_db ORDER BY id"))
    assert chunks == b"a\nB\nc\n"


def test_bulk_operations_join_an_open_transaction(empty_db: Database) -> None:
    """Inside ``db.transaction()`` the table created there can be loaded and read."""
    with empty_db.transaction():
        empty_db.run_sql("CREATE TABLE in_tx (id int PRIMARY KEY, name text)")
        assert empty_db.copy_rows("in_tx", [(1, "a"), (2, "b")]) == 2
        assert empty_db.bulk_upsert("in_tx", [(2, "B"), (3, "c")], ["id"]) == (1, 1)
        assert b"".join(
            empty_db.copy_to(query="SELECT name FROM in_tx ORDER BY id")
        ) == (b"a\nB\nc\n")
        # a refused load is rolled back to its savepoint; the block goes on
        with pytest.raises(BulkLoadError):
            empty_db.copy_rows("in_tx", [(9, "x"), (9, "y")])
        assert empty_db.run_query("SELECT count(*) FROM in_tx").scalar() == 3
    assert _exec(empty_db, "SELECT id, name FROM in_tx ORDER BY id") == [
        (1, "a"),
        (2, "B"),
        (3, "c"),
    ]


def test_rolled_back_transaction_removes_loaded_rows(empty_db: Database) -> None:
    """The block's rollback undoes rows that copy_rows and bulk_upsert loaded in it."""
    empty_db.run_sql("CREATE TABLE kept (id int PRIMARY KEY, name text)")
    with empty_db.transaction(rollback="always"):
        assert empty_db.copy_rows("kept", [(1, "a"), (2, "b")]) == 2
        assert empty_db.bulk_upsert("kept", [(3, "c")], ["id"]) == (1, 0)
        assert empty_db.run_query("SELECT count(*) FROM kept").scalar() == 3
    assert _count(empty_db, "kept") == 0

    def abandoned() -> None:
        with empty_db.transaction():
            empty_db.copy_rows("kept", [(1, "a")])
            raise RuntimeError("abandon the block")

    with pytest.raises(RuntimeError, match="abandon"):
        abandoned()
    assert _count(empty_db, "kept") == 0
    with empty_db.transaction(), empty_db.savepoint(rollback="always"):
        empty_db.copy_rows("kept", [(1, "a")])
    assert _count(empty_db, "kept") == 0
