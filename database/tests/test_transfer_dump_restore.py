"""pg_dump / pg_restore streaming against real PostGIS databases, with the local tools."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from macrostrat.database import Database, run_sql
from macrostrat.database.errors import ToolError, TransferError
from macrostrat.database.transfer import (
    move_tables_sync,
    pg_dump_sync,
    pg_dump_to_file,
    pg_dump_to_file_sync,
    pg_restore_from_file_sync,
)

ROWS = 20_000

SCHEMA_SQL = f"""
CREATE SCHEMA geo;
CREATE TABLE geo.units (id int PRIMARY KEY, name text, geom geometry(Polygon, 4326));
INSERT INTO geo.units SELECT i, 'unit ' || i,
  ST_MakeEnvelope(i % 90, i % 45, i % 90 + 1, i % 45 + 1, 4326)
  FROM generate_series(1, 500) i;
CREATE TABLE public.points (id int PRIMARY KEY, label text, geom geometry(Point, 4326));
INSERT INTO public.points SELECT i, 'point ' || i || E'\\ttab',
  ST_SetSRID(ST_MakePoint(i % 360 - 180, i % 90), 4326)
  FROM generate_series(1, {ROWS}) i;
CREATE INDEX points_geom_idx ON public.points USING gist (geom);
CREATE UNIQUE INDEX units_lower_name_idx ON geo.units (lower(name));
ALTER TABLE geo.units ADD CONSTRAINT units_name_check CHECK (name <> ''),
  ALTER COLUMN name SET NOT NULL, ADD COLUMN kind varchar(8) DEFAULT 'bed';
ALTER TABLE public.points ADD COLUMN unit_id int REFERENCES geo.units (id)
  ON DELETE SET NULL, ADD COLUMN seen timestamptz DEFAULT now();
"""

SCHEMA_SIGNATURE = """
SELECT 'column', format('%I.%I.%I %s notnull=%s default=%s', n.nspname, c.relname,
  a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
  pg_get_expr(d.adbin, d.adrelid))
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'constraint', format('%s %I %s', con.conrelid::regclass, con.conname,
  pg_get_constraintdef(con.oid))
FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'index', indexdef FROM pg_indexes
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2
"""

FINGERPRINT = """
SELECT (SELECT count(*) FROM geo.units), (SELECT count(*) FROM public.points),
  (SELECT md5(string_agg(id || name || ST_AsEWKB(geom)::text, ',' ORDER BY id)) FROM geo.units),
  (SELECT md5(string_agg(id || label || ST_AsEWKB(geom)::text, ',' ORDER BY id)) FROM public.points)
"""


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


def query(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def tables_of(url: str) -> set[str]:
    rows = query(
        url,
        "SELECT schemaname || '.' || tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    return {r[0] for r in rows} - {"public.spatial_ref_sys"}


def assert_same_schema(source: str, target: str) -> None:
    """Columns (types, NOT NULL, defaults), constraints and indexes are identical."""
    expected = query(source, SCHEMA_SIGNATURE)
    assert {kind for kind, _ in expected} == {"column", "constraint", "index"}
    assert any("units_lower_name_idx" in d for _, d in expected)
    assert query(target, SCHEMA_SIGNATURE) == expected


@pytest.fixture(scope="module")
def source_url(module_database_url: str) -> str:
    query(module_database_url, SCHEMA_SQL)
    return module_database_url


@pytest.fixture(scope="module")
def fingerprint(source_url: str) -> tuple[Any, ...]:
    return query(source_url, FINGERPRINT)[0]


def test_custom_dump_round_trip(
    source_url: str, empty_database_url: str, fingerprint: Any, tmp_path: Path
) -> None:
    path = tmp_path / "db.dump"
    written = pg_dump_to_file_sync(source_url, path, quiet=True)
    assert written == path.stat().st_size > 0
    assert path.read_bytes().startswith(b"PGDMP")
    pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert query(empty_database_url, FINGERPRINT)[0] == fingerprint
    assert_same_schema(source_url, empty_database_url)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_plain_dump_restores_through_psql(
    source_url: str, empty_database_url: str, fingerprint: Any, tmp_path: Path
) -> None:
    path = tmp_path / "db.sql"
    pg_dump_to_file_sync(source_url, path, custom_format=False, quiet=True)
    text = path.read_text()
    assert "\\restrict " in text
    assert "COPY public.points (id, label, geom, unit_id, seen) FROM stdin;" in text
    pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert query(empty_database_url, FINGERPRINT)[0] == fingerprint


def test_plain_dump_restores_through_run_sql(
    source_url: str, empty_db: Database, fingerprint: Any, tmp_path: Path
) -> None:
    """The same real pg_dump output (\\restrict, COPY blocks, geometries) through run_sql."""
    path = tmp_path / "db.sql"
    pg_dump_to_file_sync(source_url, path, custom_format=False, quiet=True)
    run_sql(empty_db, path, raise_errors=True)
    url = empty_db.engine.url.render_as_string(hide_password=False)
    assert query(url, FINGERPRINT)[0] == fingerprint


def test_gzipped_plain_dump(
    source_url: str, empty_database_url: str, fingerprint: Any, tmp_path: Path
) -> None:
    """A .sql.gz written by us, re-packed as three gzip members, restores whole.

    Upstream's reader lost data with three or more members.
    """
    path = tmp_path / "db.sql.gz"
    pg_dump_to_file_sync(source_url, path, custom_format=False, quiet=True)
    data = gzip.decompress(path.read_bytes())
    third = len(data) // 3
    members = [data[:third], data[third : 2 * third], data[2 * third :]]
    path.write_bytes(b"".join(gzip.compress(m) for m in members))
    pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert query(empty_database_url, FINGERPRINT)[0] == fingerprint


def test_truncated_plain_dump_is_refused(
    source_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    """psql would commit a truncated script; we kill it before it sees the end."""
    path = tmp_path / "db.sql"
    pg_dump_to_file_sync(source_url, path, custom_format=False, quiet=True)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: len(lines) * 2 // 3]))
    with pytest.raises(TransferError, match="truncated"):
        pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert tables_of(empty_database_url) == set()


def test_failed_dump_raises_with_stderr_and_leaves_no_file(
    source_url: str, tmp_path: Path
) -> None:
    """pg_dump exits 1 (no table matches); upstream left a 0-byte file and raised nothing."""
    path = tmp_path / "out.dump"
    with pytest.raises(ToolError) as info:
        pg_dump_to_file_sync(
            source_url,
            path,
            args=["--strict-names", "--table=public.no_such_table"],
            quiet=True,
        )
    err = info.value
    assert err.tool == "pg_dump"
    assert err.returncode == 1
    assert "no matching tables" in err.stderr
    assert "no matching tables" in str(err)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_database_is_a_clear_error(
    database_url: str, tmp_path: Path
) -> None:
    missing = make_url(database_url).set(database="no_such_db_for_dump")
    with pytest.raises(TransferError, match="no_such_db_for_dump") as info:
        pg_dump_to_file_sync(missing, tmp_path / "out.dump", quiet=True)
    assert str(missing.password) not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_restore_raises_and_commits_nothing(
    source_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    """A conflicting table makes pg_restore fail: ToolError, and nothing else restored."""
    path = tmp_path / "db.dump"
    pg_dump_to_file_sync(source_url, path, quiet=True)
    query(empty_database_url, "CREATE TABLE public.points (x int)")
    with pytest.raises(ToolError) as info:
        pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert info.value.tool == "pg_restore"
    assert "already exists" in info.value.stderr
    assert "Nothing was committed" in str(info.value)
    assert tables_of(empty_database_url) == {"public.points"}


def test_binary_dump_to_stdout_is_not_decoded(
    source_url: str, empty_database_url: str, fingerprint: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Upstream decoded the custom-format stream as UTF-8 text."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))
    pg_dump_to_file_sync(source_url, None, quiet=True)
    data = raw.getvalue()
    assert data.startswith(b"PGDMP")
    path = tmp_path / "from-stdout.dump"
    path.write_bytes(data)
    pg_restore_from_file_sync(path, empty_database_url, quiet=True)
    assert query(empty_database_url, FINGERPRINT)[0] == fingerprint


def test_no_password_in_argv_or_logs(
    source_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The running pg_dump's /proc cmdline and our logs never hold the password.

    The password is in the 0600 service file that ``PGSERVICEFILE`` in
    pg_dump's environment names, and the file is gone once pg_dump has exited.
    """
    url = make_url(source_url)
    password = url.password
    assert password, "the test server must use a password for this test"

    with caplog.at_level(logging.DEBUG):
        # plain output > 64 KiB into an unread pipe: pg_dump blocks, so it is alive.
        proc = pg_dump_sync(url, custom_format=False, args=["--table=public.points"])
        try:
            time.sleep(0.5)
            assert proc.poll() is None
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
            variables = dict(
                item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item
            )
            service = Path(variables[b"PGSERVICEFILE"].decode())
            assert service.stat().st_mode & 0o777 == 0o600
            assert f"password={password}\n" in service.read_text()
        finally:
            proc.kill()
            proc.communicate()
        pg_dump_to_file_sync(url, tmp_path / "x.dump")
    assert not service.exists()
    assert b"pg_dump" in cmdline
    assert password.encode() not in cmdline
    assert password.encode() not in environ
    assert "pg_dump" in caplog.text
    assert password not in caplog.text


def test_caller_lists_are_not_mutated(
    source_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    args = ["--no-owner"]
    tables = ["geo.units"]
    dump_args = ["--no-comments"]
    pg_dump_to_file_sync(source_url, tmp_path / "a.dump", args=args, quiet=True)
    move_tables_sync(
        source_url, empty_database_url, tables=tables, dump_args=dump_args, quiet=True
    )
    assert args == ["--no-owner"]
    assert tables == ["geo.units"]
    assert dump_args == ["--no-comments"]


def test_cancel_kills_pg_dump_and_removes_partial_file(
    source_url: str, tmp_path: Path
) -> None:
    """Upstream swallowed CancelledError; here it propagates and pg_dump is killed."""
    path = tmp_path / "big.sql"
    pids: list[int] = []

    async def run() -> None:
        from macrostrat.database.transfer import dump_database

        original = dump_database._start_dump

        async def slow_start(*a: Any, **k: Any) -> Any:
            tool = await original(*a, **k)
            pids.append(tool.process.pid)
            real_read = tool.process.stdout.read

            async def slow_read(n: int = -1) -> bytes:
                await asyncio.sleep(0.2)
                return await real_read(4096)

            tool.process.stdout.read = slow_read  # type: ignore[method-assign]
            return tool

        dump_database._start_dump = slow_start  # type: ignore[assignment]
        try:
            task = asyncio.ensure_future(
                pg_dump_to_file(source_url, path, custom_format=False, quiet=True)
            )
            while not pids:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            dump_database._start_dump = original  # type: ignore[assignment]

    asyncio.run(run())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pids[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pids[0]}").exists(), "pg_dump still running"
    assert list(tmp_path.iterdir()) == []
