"""The dinosaur CLI: exit codes, refusal, dry run, dump-schema, mounting."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from macrostrat.database import Database
from macrostrat.dinosaur import has_column
from macrostrat.dinosaur.cli import EXIT_CHANGES, EXIT_NOTHING, EXIT_UNSAFE, create_cli
from macrostrat.dinosaur.diff import conninfo

BEFORE = "CREATE TABLE sample (id serial PRIMARY KEY, name text, depth numeric);"
SAFE = (
    "CREATE TABLE sample (id serial PRIMARY KEY, name text, depth numeric, note text);"
)
UNSAFE = "CREATE TABLE sample (id serial PRIMARY KEY, name text);"

runner = CliRunner()


@pytest.fixture
def live(empty_db: Database) -> str:
    with psycopg.connect(conninfo(empty_db), autocommit=True) as conn:
        conn.execute(BEFORE)
        conn.execute("INSERT INTO sample (name, depth) VALUES ('a', 1), ('b', 2)")
    return empty_db.engine.url.render_as_string(hide_password=False)


def schema_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "schema.sql"
    path.write_text("CREATE EXTENSION IF NOT EXISTS postgis;\n" + text)
    return str(path)


def invoke(app: typer.Typer, *args: str):
    return runner.invoke(app, list(args))


def rows(url: str) -> int:
    with psycopg.connect(conninfo(url)) as conn:
        return conn.execute("SELECT count(*) FROM sample").fetchone()[0]


def test_plan_exit_codes(live, tmp_path, database_template):
    app = create_cli(template=database_template)
    base = ["plan", "--database", live, "--schema-file"]
    same = invoke(app, *base, schema_file(tmp_path, BEFORE))
    assert same.exit_code == EXIT_NOTHING, same.output
    assert "no changes" in same.output
    safe = invoke(app, *base, schema_file(tmp_path, SAFE))
    assert safe.exit_code == EXIT_CHANGES, safe.output
    assert 'add column "note" text' in safe.output
    unsafe = invoke(app, *base, schema_file(tmp_path, UNSAFE))
    assert unsafe.exit_code == EXIT_UNSAFE, unsafe.output
    assert "-- UNSAFE DELETES_DATA" in unsafe.output  # plain text when piped


def test_apply_refuses_then_applies_with_allowance(live, tmp_path, database_template):
    app = create_cli(template=database_template)
    args = ["apply", "--database", live, "--schema-file", schema_file(tmp_path, UNSAFE)]
    refused = invoke(app, *args, "--no-dry-run")
    assert refused.exit_code == EXIT_UNSAFE
    assert "DELETES_DATA" in refused.output
    assert has_column(live, "sample", "depth")
    bad = invoke(app, *args, "--allow-hazard", "NOT_A_HAZARD")
    assert bad.exit_code == 2
    done = invoke(app, *args, "--allow-hazard", "deletes_data")
    assert done.exit_code == 0, done.output
    assert "dry run on a schema-only clone converged" in done.output
    assert "converged" in done.output
    assert rows(live) == 2
    db = Database(live)
    try:
        assert not has_column(db, "sample", "depth")
    finally:
        db.cleanup()


def test_apply_safe_with_mounted_sub_app(live, database_template):
    def init(db: Database) -> None:
        with psycopg.connect(conninfo(db), autocommit=True) as conn:
            conn.execute(SAFE)

    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """An application CLI."""

    main.add_typer(create_cli(init, live, template=database_template), name="db")
    result = invoke(main, "db", "apply", "--no-dry-run")
    assert result.exit_code == 0, result.output
    assert rows(live) == 2
    again = invoke(main, "db", "plan")
    assert again.exit_code == EXIT_NOTHING, again.output


def test_dump_schema_and_missing_database(live, monkeypatch):
    app = create_cli()
    result = invoke(app, "dump-schema", "--database", live)
    assert result.exit_code == 0
    assert "CREATE TABLE public.sample" in result.output
    monkeypatch.delenv("MACROSTRAT_DATABASE_URL", raising=False)
    missing = invoke(app, "plan", "--target", live)
    assert missing.exit_code == 2
    assert "MACROSTRAT_DATABASE_URL" in missing.output


def test_rich_output_in_a_terminal(monkeypatch, capsys):
    from macrostrat.dinosaur import classify_statements
    from macrostrat.dinosaur.cli import _print_plan

    plan = classify_statements(
        [
            'alter table "public"."t" drop column "g";',
            "CREATE INDEX CONCURRENTLY i ON t (x)",
        ]
    )
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "120")
    _print_plan(plan)
    out = capsys.readouterr().out
    assert "\x1b[" in out  # styled
    assert "UNSAFE DELETES_DATA" in out
    assert "runs after the transaction" in out


def test_apply_with_concurrent_indexes(live, tmp_path, database_template):
    app = create_cli(template=database_template)
    target = schema_file(
        tmp_path, BEFORE + "\nCREATE INDEX sample_name_idx ON sample (name);"
    )
    result = invoke(
        app,
        "apply",
        "--database",
        live,
        "--schema-file",
        target,
        "--concurrent-indexes",
    )
    assert result.exit_code == 0, result.output
    assert "CREATE INDEX CONCURRENTLY" in result.output
    assert "-- runs after the transaction, on its own" in result.output


@pytest.fixture(scope="module")
def reader_role(database_url: str):
    """A role of this module's own (dropped once the test databases are gone)."""
    import secrets

    from psycopg import sql

    name = f"cli_reader_{secrets.token_hex(3)}"
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_privileges_are_planned_and_applied_when_asked(
    live, tmp_path, database_template, reader_role
):
    app = create_cli(template=database_template)
    granted = schema_file(
        tmp_path, BEFORE + f"\nGRANT SELECT ON sample TO {reader_role};"
    )
    plan = ["plan", "--database", live, "--schema-file", granted]
    assert invoke(app, *plan).exit_code == EXIT_NOTHING  # the upstream default
    asked = invoke(app, *plan, "--privileges")
    assert asked.exit_code == EXIT_UNSAFE, asked.output
    assert f'GRANT SELECT ON TABLE public.sample TO "{reader_role}";' in asked.output
    assert "AUTHZ_UPDATE" in asked.output
    # an application may make it the default
    by_default = create_cli(template=database_template, privileges=True)
    assert invoke(by_default, *plan).exit_code == EXIT_UNSAFE
    assert invoke(by_default, *plan, "--no-privileges").exit_code == EXIT_NOTHING
    args = ["apply", "--database", live, "--schema-file", granted, "--privileges"]
    done = invoke(app, *args, "--allow-hazard", "AUTHZ_UPDATE")
    assert done.exit_code == 0, done.output
    assert "dry run on a schema-only clone converged" in done.output
    with psycopg.connect(conninfo(live)) as conn:
        allowed = conn.execute(
            "SELECT has_table_privilege(%s, 'public.sample', 'SELECT')", (reader_role,)
        ).fetchone()
    assert allowed == (True,)
    assert invoke(app, *plan, "--privileges").exit_code == EXIT_NOTHING
    # the dry run's clone has no grants: a plan without privilege changes
    # is not refused for the grants the clone lacks
    more = schema_file(tmp_path, SAFE + f"\nGRANT SELECT ON sample TO {reader_role};")
    safe = invoke(
        app, "apply", "--database", live, "--schema-file", more, "--privileges"
    )
    assert safe.exit_code == 0, safe.output
    assert "dry run on a schema-only clone converged" in safe.output
