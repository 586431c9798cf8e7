"""Bulk loading with COPY: copy_rows, copy_to and bulk_upsert against real PostGIS."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from macrostrat.database import Database
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
    # WKT without SRID into a typed column needs the SRID: give it through EWKT.
    rows[2] = (3, None, 2.0, "SRID=4326;POINT(5 6)", "z")
    rows[0] = (1, "a", 1.5, "0101000020E6100000000000000000F03F0000000000000040", "x")
    assert copy_rows(bulk_db, "t", iter(rows)) == 4
    got = _exec(
        bulk_db, "SELECT id, name, value, ST_AsEWKT(geom), note FROM t ORDER BY id"
    )
    assert got == [
        (1, "a", 1.5, "SRID=4326;POINT(1 2)", "x"),
        (2, "b\tc\nd", None, "SRID=4326;POINT(3 4)", None),
        (3, None, 2.0, "SRID=4326;POINT(5 6)", "z"),
        (4, "e", 3.0, None, "w"),
    ]


def test_copy_wkb_bytes_and_shapely_like(empty_db: Database) -> None:
    _exec(empty_db, "CREATE TABLE g (id int, geom geometry)")

    class FakeShape:
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
    rows = [{"id": 1, "name": "a"}, {"id": 2}]
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


def test_keyboard_interrupt_cancels_copy(bulk_db: Database) -> None:
    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(20_000):
            yield (i, "x", 1.0, None, None)
        raise KeyboardInterrupt

    raw = bulk_db.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        with pytest.raises(KeyboardInterrupt):
            copy_rows(conn, "t", rows())
        assert _copy_pids(bulk_db) == []
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        conn.rollback()
    finally:
        raw.close()


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
    copy_to(bulk_db, "SELECT id FROM t WHERE id > 0 ORDER BY id", text, format="csv")
    assert text.getvalue() == "1\n2\n"
    chunks = copy_to(bulk_db, "select name from t order by id")
    assert not isinstance(chunks, int)
    assert b"".join(chunks) == b"n0\nn1\nn2\n"
    binary = copy_to(bulk_db, "t", format="binary")
    assert not isinstance(binary, int)
    assert b"".join(binary).startswith(b"PGCOPY\n")
    with pytest.raises(ValueError, match="format"):
        copy_to(bulk_db, "t", format="xml")


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
        {"id": 2, "name": "B", "value": 20.0},
        {"id": 3, "name": "c", "value": 3.0, "geom": POINT_WKB},
    ]
    # geometry without SRID into a typed column is refused; give EWKT instead
    rows[1]["geom"] = "SRID=4326;POINT(1 2)"
    assert bulk_upsert(bulk_db, "t", rows, conflict=["id"]) == (1, 1)
    assert _exec(bulk_db, "SELECT id, name, value, note FROM t ORDER BY id") == [
        (1, "a", 1.0, "keep"),
        (2, "B", 20.0, "keep"),  # unsupplied column untouched
        (3, "c", 3.0, "none"),  # default from the staging table
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
    chunks = b"".join(empty_db.copy_to("SELECT name FROM via_db ORDER BY id"))
    assert chunks == b"a\nB\nc\n"
