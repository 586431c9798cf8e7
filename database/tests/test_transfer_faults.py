"""Faults against a real server: a TCP proxy cut mid-stream, pg_terminate_backend.

The proxy is a few threads and sockets in this file, between the client tools
and PostgreSQL; no external tool is involved.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from macrostrat.database.errors import ToolError
from macrostrat.database.transfer import (
    copy_database_sync,
    move_tables_sync,
    pg_dump_to_file_sync,
    pg_restore_from_file_sync,
)

DATA_SQL = """
CREATE TABLE public.points (id int PRIMARY KEY, label text, geom geometry(Point, 4326));
INSERT INTO public.points SELECT i, repeat('x', 40) || i,
  ST_SetSRID(ST_MakePoint(i % 360 - 180, i % 90), 4326) FROM generate_series(1, 30000) i;
"""


def query(url: Any, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    info = make_url(str(url) if not hasattr(url, "render_as_string") else url)
    info = info.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(info, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def user_tables(url: str) -> list[tuple[Any, ...]]:
    return query(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'spatial_ref_sys'",
    )


@pytest.fixture(scope="module")
def source(module_database_url: str) -> str:
    query(module_database_url, DATA_SQL)
    return module_database_url


@pytest.fixture(scope="module")
def dump_file(source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dump") / "plain.sql"
    pg_dump_to_file_sync(source, path, custom_format=False, quiet=True)
    return path


def test_cut_during_dump(source: str, tmp_path: Path, cut_proxy: Any) -> None:
    proxy = cut_proxy(source, cut_after=200_000, direction="down")
    out = tmp_path / "cut.dump"
    try:
        with pytest.raises(ToolError) as info:
            pg_dump_to_file_sync(
                proxy.url(source), out, custom_format=False, quiet=True
            )
    finally:
        proxy.close()
    assert proxy.cut_done
    assert info.value.tool == "pg_dump"
    assert info.value.returncode != 0
    assert list(tmp_path.iterdir()) == []  # no file that looks complete


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_cut_during_restore_then_rerun(
    source: str,
    dump_file: Path,
    empty_database_url: str,
    tmp_path: Path,
    fmt: str,
    cut_proxy: Any,
) -> None:
    path = dump_file
    if fmt == "custom":
        path = tmp_path / "c.dump"
        pg_dump_to_file_sync(source, path, quiet=True, args=["-Z0"])
    proxy = cut_proxy(empty_database_url, cut_after=300_000, direction="up")
    try:
        with pytest.raises(ToolError) as info:
            pg_restore_from_file_sync(path, proxy.url(empty_database_url), quiet=True)
    finally:
        proxy.close()
    assert proxy.cut_done
    assert info.value.step == "restore"
    assert "Nothing was committed" in str(info.value)
    assert user_tables(empty_database_url) == []
    pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert query(empty_database_url, "SELECT count(*) FROM points") == [(30000,)]


def test_cut_during_move_then_rerun(
    source: str, empty_database_url: str, cut_proxy: Any
) -> None:
    proxy = cut_proxy(empty_database_url, cut_after=300_000, direction="up")
    try:
        with pytest.raises(ToolError) as info:
            move_tables_sync(
                source, proxy.url(empty_database_url), tables=["points"], quiet=True
            )
    finally:
        proxy.close()
    assert info.value.tool == "psql"
    assert "into target" in str(info.value)
    assert user_tables(empty_database_url) == []
    counts = move_tables_sync(source, empty_database_url, tables=["points"], quiet=True)
    assert counts == {"public.points": 30000}


def test_terminated_backend_during_restore(
    dump_file: Path, empty_database_url: str, cut_proxy: Any
) -> None:
    """pg_terminate_backend from a second session, while a slow proxy keeps psql busy."""
    proxy = cut_proxy(empty_database_url, delay=0.05)
    killed: list[Any] = []

    def terminator() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            rows = query(
                empty_database_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'macrostrat-restore' AND state <> 'idle'",
            )
            if rows:
                killed.extend(rows)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=terminator)
    thread.start()
    try:
        with pytest.raises(ToolError) as info:
            pg_restore_from_file_sync(
                dump_file, proxy.url(empty_database_url), quiet=True
            )
    finally:
        thread.join()
        proxy.close()
    assert killed
    assert "terminat" in info.value.stderr or "closed" in info.value.stderr
    assert user_tables(empty_database_url) == []
    pg_restore_from_file_sync(dump_file, empty_database_url, quiet=True)
    assert query(empty_database_url, "SELECT count(*) FROM points") == [(30000,)]


@pytest.mark.parametrize("side", ["source", "target"])
def test_cut_during_copy_database_then_rerun(
    source: str, empty_database_url: str, side: str, cut_proxy: Any
) -> None:
    """Cut pg_dump's or pg_restore's connection: an error, and nothing committed."""
    upstream = source if side == "source" else empty_database_url
    direction = "down" if side == "source" else "up"
    proxy = cut_proxy(upstream, cut_after=300_000, direction=direction)
    src = proxy.url(source) if side == "source" else source
    dst = proxy.url(empty_database_url) if side == "target" else empty_database_url
    try:
        with pytest.raises(ToolError) as info:
            copy_database_sync(src, dst, dump_args=["-Z0"], quiet=True)
    finally:
        proxy.close()
    assert proxy.cut_done
    assert info.value.tool == ("pg_dump" if side == "source" else "pg_restore")
    assert "Nothing was committed" in str(info.value)
    assert user_tables(empty_database_url) == []
    copy_database_sync(source, empty_database_url, quiet=True)
    assert query(empty_database_url, "SELECT count(*) FROM points") == [(30000,)]


@pytest.mark.parametrize("operation", ["copy_rows", "bulk_upsert"])
def test_cut_during_bulk_load_keeps_nothing(
    empty_database_url: str, operation: str, cut_proxy: Any
) -> None:
    """The client-to-server stream is cut mid-COPY: `BulkLoadError`, 0 rows kept."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from macrostrat.database.errors import BulkLoadError
    from macrostrat.database.transfer import bulk_upsert, copy_rows

    query(empty_database_url, "CREATE TABLE loaded (id int PRIMARY KEY, label text)")
    proxy = cut_proxy(empty_database_url, cut_after=300_000, direction="up")
    via = proxy.url(empty_database_url).set(drivername="postgresql+psycopg")
    engine = create_engine(via, poolclass=NullPool)
    rows = ((i, "x" * 40) for i in range(200_000))  # ~9 MB: far past the cut

    def load() -> object:
        if operation == "copy_rows":
            return copy_rows(engine, "loaded", rows)
        return bulk_upsert(engine, "loaded", rows, ["id"], columns=["id", "label"])

    try:
        with pytest.raises(BulkLoadError) as info:
            load()
    finally:
        engine.dispose()
        proxy.close()
    assert proxy.cut_done
    message = str(info.value)
    assert "the connection was lost" in message
    assert "holds none of these rows" in message
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert query(empty_database_url, "SELECT count(*) FROM loaded") == [(0,)]
