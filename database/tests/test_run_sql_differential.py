"""Server-side differential test of run_sql's splitting and execution.

For each script in ``fixtures/run_sql/differential``, one fresh database gets
the script through `run_sql` (our lexer splits it, the executor batches it)
and another gets it as ONE simple-query message (``cursor.execute`` of the
whole text without parameters: PostgreSQL's own parser splits it).  Their
catalogs (tables, columns, functions with their bodies, views, rules,
indexes, comments, row counts) must be identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from macrostrat.database import create_engine
from macrostrat.database.query import run_sql
from macrostrat.dinosaur.testing import clone_database

SCRIPTS = sorted(
    (Path(__file__).parent / "fixtures" / "run_sql" / "differential").glob("*.sql")
)

_USER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"

CATALOG_QUERIES = {
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER} ORDER BY 1, 2""",
    "columns": f"""
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE {_USER} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2""",
    "functions": f"""
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER} ORDER BY 1, 2""",
    "views": f"""
        SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER} AND c.relkind IN ('v', 'm') ORDER BY 1""",
    "rules": "SELECT rulename, definition FROM pg_rules "
    "WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes "
    "WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1",
    "comments": f"""
        SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER} ORDER BY 1""",
    "types": f"""
        SELECT t.typname, t.typtype, pg_catalog.array_to_string(
          ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid
                ORDER BY e.enumsortorder), ',') FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_USER} AND t.typtype IN ('e', 'd') ORDER BY 1""",
}


def conninfo(url: str) -> str:
    """A libpq connection string for a SQLAlchemy URL."""
    return (
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def snapshot(url: str) -> dict[str, Any]:
    """The user catalog of a database, and every table's rows."""
    found: dict[str, Any] = {}
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for name, query in CATALOG_QUERIES.items():
            found[name] = conn.execute(query).fetchall()
        tables = conn.execute(
            f"""SELECT n.nspname, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {_USER} AND c.relkind = 'r' ORDER BY 1, 2"""
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT t::text FROM {} AS t ORDER BY 1").format(
                sql.Identifier(schema, table)
            )
            found[f"rows {schema}.{table}"] = conn.execute(query).fetchall()
    return found


@pytest.fixture
def two_databases(database_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh, empty databases (from template0: no extensions to compare)."""
    with (
        clone_database(database_url, "template0") as first,
        clone_database(database_url, "template0") as second,
    ):
        yield first, second


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_run_sql_matches_the_server_splitting(
    script: Path, two_databases: tuple[str, str]
) -> None:
    ours, servers = two_databases
    engine = create_engine(ours)
    try:
        res = run_sql(engine, script, raise_errors=True)
    finally:
        engine.dispose()
    assert all(o.status == "committed" for o in res.outcomes)
    with psycopg.connect(conninfo(servers)) as conn:
        conn.execute(script.read_text())  # no parameters: one simple-query message
    mine, theirs = snapshot(ours), snapshot(servers)
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert mine[key] == theirs[key], key
    assert any(key.startswith("rows ") for key in mine)
