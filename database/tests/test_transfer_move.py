"""move_tables between two real PostGIS databases, and the dump/restore/move CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from macrostrat.database.errors import ToolError, TransferError
from macrostrat.database.transfer import move_tables_sync

SOURCE_SQL = """
CREATE SCHEMA geo;
CREATE TABLE geo.units (id int PRIMARY KEY, name text, geom geometry(Polygon, 4326));
INSERT INTO geo.units SELECT i, 'unit ' || i,
  ST_MakeEnvelope(i, 0, i + 1, 1, 4326) FROM generate_series(1, 3000) i;
CREATE TABLE geo.contacts (id int PRIMARY KEY, unit_id int REFERENCES geo.units,
  line geometry(LineString, 4326));
INSERT INTO geo.contacts SELECT i, i, ST_MakeLine(ST_MakePoint(i, 0), ST_MakePoint(i, 1))
  FROM generate_series(1, 3000) i;
CREATE VIEW geo.big_units AS SELECT * FROM geo.units WHERE id > 100;
CREATE TABLE public.sites (id int PRIMARY KEY, geom geometry(Point, 4326));
INSERT INTO public.sites SELECT i, ST_SetSRID(ST_MakePoint(i, i), 4326)
  FROM generate_series(1, 1000) i;
"""


def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    info = make_url(url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(info, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def geo_hash(url: str, table: str, col: str) -> Any:
    return query(
        url,
        f"SELECT count(*), md5(string_agg(ST_AsEWKB({col})::text, ',' ORDER BY id)) FROM {table}",
    )[0]


@pytest.fixture(scope="module")
def source(module_database_url: str) -> str:
    query(module_database_url, SOURCE_SQL)
    return module_database_url


def test_move_schema_creates_it_and_verifies_counts(
    source: str, empty_database_url: str
) -> None:
    counts = move_tables_sync(source, empty_database_url, schemas=["geo"], quiet=True)
    assert counts == {"geo.contacts": 3000, "geo.units": 3000}
    for table, col in (("geo.units", "geom"), ("geo.contacts", "line")):
        assert geo_hash(empty_database_url, table, col) == geo_hash(source, table, col)
    assert query(empty_database_url, "SELECT count(*) FROM geo.big_units") == [(2900,)]


def test_move_tables_into_existing_and_missing_schemas(
    source: str, empty_database_url: str
) -> None:
    """public exists on the target, geo does not (created); upstream failed on both."""
    counts = move_tables_sync(
        source, empty_database_url, tables=["geo.units", "sites"], quiet=True
    )
    assert counts == {"geo.units": 3000, "public.sites": 1000}
    assert geo_hash(empty_database_url, "public.sites", "geom") == geo_hash(
        source, "public.sites", "geom"
    )


def test_move_public_schema_into_existing_public(
    source: str, empty_database_url: str
) -> None:
    counts = move_tables_sync(
        source, empty_database_url, schemas=["public"], quiet=True
    )
    assert counts == {"public.sites": 1000}


def test_move_failure_raises_with_stderr_and_commits_nothing(
    source: str, empty_database_url: str
) -> None:
    query(empty_database_url, "CREATE SCHEMA geo; CREATE TABLE geo.contacts (x int)")
    with pytest.raises(ToolError) as info:
        move_tables_sync(source, empty_database_url, schemas=["geo"], quiet=True)
    assert info.value.tool == "psql"
    assert 'relation "contacts" already exists' in info.value.stderr
    assert "Nothing was committed" in str(info.value)
    rows = query(
        empty_database_url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'geo' ORDER BY 1",
    )
    assert rows == [("contacts",)]


def test_move_checks_names_and_arguments(source: str, empty_database_url: str) -> None:
    with pytest.raises(ValueError, match="at least one table or schema"):
        move_tables_sync(source, empty_database_url)
    with pytest.raises(TransferError, match=r"geo\.nope not found"):
        move_tables_sync(source, empty_database_url, tables=["geo.nope"], quiet=True)
    with pytest.raises(TypeError, match="user"):
        move_tables_sync(source, empty_database_url, tables=["sites"], user="x")


# -- the CLI ------------------------------------------------------------------


def test_cli_dump_restore_move(
    source: str, empty_database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from macrostrat.database.transfer import create_cli

    runner = CliRunner()
    app = create_cli(lambda: source)
    dump = tmp_path / "s.dump"
    res = runner.invoke(app, ["dump", str(dump), "--quiet"])
    assert res.exit_code == 0, res.output
    assert dump.read_bytes().startswith(b"PGDMP")
    res = runner.invoke(app, ["restore", str(dump), "-d", empty_database_url, "-q"])
    assert res.exit_code == 0, res.output
    assert geo_hash(empty_database_url, "geo.units", "geom") == geo_hash(
        source, "geo.units", "geom"
    )
    # the environment variable, and a failing restore (exit 1 with the stderr)
    monkeypatch.setenv("MACROSTRAT_DATABASE_URL", empty_database_url)
    res = runner.invoke(create_cli(), ["restore", str(dump), "-q"])
    assert res.exit_code == 1
    assert "already exists" in res.output
    # moving a database's tables onto itself is refused before anything runs
    res = runner.invoke(create_cli(), ["move", source, "-d", source, "-t", "sites"])
    assert res.exit_code == 1
    assert "source and target are the same database" in res.output


def test_cli_move(source: str, empty_database_url: str) -> None:
    from macrostrat.database.transfer import create_cli

    res = CliRunner().invoke(
        create_cli(source), ["move", empty_database_url, "-n", "geo", "-q"]
    )
    assert res.exit_code == 0, res.output
    assert "geo.units\t3000" in res.output


def test_cli_without_typer_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import macrostrat.database.transfer as transfer

    monkeypatch.setitem(sys.modules, "typer", None)
    monkeypatch.delitem(sys.modules, "macrostrat.database.transfer.cli", raising=False)
    with pytest.raises(ImportError, match=r"macrostrat\.database\[cli\]"):
        transfer.create_cli  # noqa: B018


def test_cli_move_target_from_the_environment(
    source: str, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target URL comes from --to-env VAR or $MACROSTRAT_TARGET_DATABASE_URL, not argv."""
    from macrostrat.database.transfer import create_cli

    app = create_cli(source)
    runner = CliRunner()
    res = runner.invoke(app, ["move", "-n", "geo", "-q"])
    assert res.exit_code == 2
    assert "MACROSTRAT_TARGET_DATABASE_URL" in res.output
    res = runner.invoke(app, ["move", "--to-env", "MY_TARGET", "-n", "geo", "-q"])
    assert res.exit_code == 2
    assert "MY_TARGET is not set" in res.output
    res = runner.invoke(
        app, ["move", empty_database_url, "--to-env", "MY_TARGET", "-n", "geo"]
    )
    assert res.exit_code == 2
    assert "not both" in res.output
    monkeypatch.setenv("MY_TARGET", empty_database_url)
    res = runner.invoke(app, ["move", "--to-env", "MY_TARGET", "-n", "geo", "-q"])
    assert res.exit_code == 0, res.output
    assert "geo.units\t3000" in res.output
    monkeypatch.delenv("MY_TARGET")
    # the default variable: the same move again is refused (tables exist), which
    # shows the variable's database was the target
    monkeypatch.setenv("MACROSTRAT_TARGET_DATABASE_URL", empty_database_url)
    res = runner.invoke(app, ["move", "-n", "geo", "-q"])
    assert res.exit_code == 1
    assert "already exists" in res.output
