"""The `db` command group against a real PostgreSQL + PostGIS database."""

from __future__ import annotations

import sys
import uuid

import pytest
from typer.testing import CliRunner

from macrostrat.app_frame import Application, add_db_commands

runner = CliRunner()


def flat(text: str) -> str:
    """Output with Rich's box drawing and line wrapping removed."""
    return " ".join(text.replace("│", " ").split())


def make_cli(database_url=None, **kwargs):
    app = Application("DB App", command_name="dbapp")
    cli = app.control_command()
    cli.command()(lambda: None)
    group = add_db_commands(cli, database_url, **kwargs)
    return cli, group


@pytest.fixture
def url(empty_database_url: str) -> str:
    return empty_database_url


def test_sql_runs_statements_and_prints_rows(url, empty_db):
    cli, _ = make_cli(url)
    result = runner.invoke(
        cli,
        [
            "db",
            "sql",
            "CREATE TABLE site (id int PRIMARY KEY, name text);"
            "INSERT INTO site VALUES (1, 'Madison'), (2, NULL);"
            "SELECT id, name FROM site ORDER BY id",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "CREATE TABLE",
        "INSERT 0 2",
        "id\tname",
        "1\tMadison",
        "2\t",
    ]
    assert empty_db.run_query("SELECT count(*) FROM site").scalar() == 2


def test_sql_statement_is_never_taken_for_a_file(url, tmp_path, monkeypatch):
    (tmp_path / "SELECT 1").write_text("SELECT 2")
    monkeypatch.chdir(tmp_path)
    cli, _ = make_cli(url)
    result = runner.invoke(cli, ["db", "sql", "SELECT 1"])
    assert result.stdout.splitlines() == ["?column?", "1"]


def test_sql_file_error_names_file_and_line_and_keeps_earlier_work(
    url, tmp_path, empty_db
):
    script = tmp_path / "load.sql"
    script.write_text(
        "CREATE TABLE unit (id int);\n"
        "INSERT INTO unit VALUES (1);\n"
        "\n"
        "INSERT INTO no_such_table VALUES (2);\n"
        "INSERT INTO unit VALUES (3);\n"
    )
    cli, _ = make_cli(url)
    result = runner.invoke(cli, ["db", "sql", "--file", str(script)])
    assert result.exit_code == 1
    assert "load.sql" in result.stderr
    assert "line 4" in result.stderr
    assert "no_such_table" in result.stderr
    assert "Traceback" not in result.stderr
    assert empty_db.run_query("SELECT array_agg(id) FROM unit").scalar() == [1]


def test_sql_atomic_rolls_everything_back(url, tmp_path, empty_db):
    script = tmp_path / "load.sql"
    script.write_text("CREATE TABLE atomic_t (id int);\nSELECT 1/0;\n")
    cli, _ = make_cli(url)
    result = runner.invoke(cli, ["db", "sql", "--atomic", "-f", str(script)])
    assert result.exit_code == 1
    assert "division by zero" in result.stderr
    exists = empty_db.run_query("SELECT to_regclass('public.atomic_t')").scalar()
    assert exists is None


def test_sql_reads_standard_input(url):
    cli, _ = make_cli(url)
    result = runner.invoke(
        cli, ["db", "sql", "-f", "-"], input="SELECT 40 + 2 AS answer"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["answer", "42"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["db", "sql"], "give either a SQL statement or --file"),
        (
            ["db", "sql", "SELECT 1", "-f", "x.sql"],
            "give either a SQL statement or --file",
        ),
        (["db", "sql", "-f", "does-not-exist.sql"], "no such file: does-not-exist.sql"),
    ],
)
def test_sql_bad_input(url, args, message):
    cli, _ = make_cli(url)
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert message in flat(result.stderr)


def test_tables_lists_and_filters(url, empty_db):
    empty_db.run_sql(
        "CREATE SCHEMA geology; CREATE TABLE geology.unit (id int);"
        "CREATE TABLE public.site (id int); CREATE VIEW public.v AS SELECT 1"
    )
    cli, _ = make_cli(url)
    result = runner.invoke(cli, ["db", "tables"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "geology.unit" in lines
    assert "public.site" in lines
    assert "public.spatial_ref_sys" in lines  # PostGIS
    assert "public.v" not in lines
    assert lines == sorted(lines)
    only = runner.invoke(cli, ["db", "tables", "--schema", "geology"])
    assert only.stdout.splitlines() == ["geology.unit"]
    missing = runner.invoke(cli, ["db", "tables", "-s", "geology", "-s", "nope"])
    assert missing.exit_code == 1
    assert "No such schema: nope" in missing.stderr


def test_database_url_sources(url, monkeypatch):
    monkeypatch.delenv("MACROSTRAT_DATABASE_URL", raising=False)
    cli, _ = make_cli()
    result = runner.invoke(cli, ["db", "tables"])
    assert result.exit_code == 2
    assert "give --database or set $MACROSTRAT_DATABASE_URL" in flat(result.stderr)
    assert runner.invoke(cli, ["db", "tables", "--database", url]).exit_code == 0
    monkeypatch.setenv("MACROSTRAT_DATABASE_URL", url)
    assert runner.invoke(cli, ["db", "tables"]).exit_code == 0

    calls = []

    def lazy_url() -> str:
        calls.append(1)
        return url

    cli2, _ = make_cli(lazy_url)
    assert calls == []  # not called until a command runs
    assert runner.invoke(cli2, ["db", "tables"]).exit_code == 0
    assert calls == [1]


def test_unreachable_database_is_a_short_error(monkeypatch):
    cli, _ = make_cli("postgresql://nobody:secret@127.0.0.1:1/nothing")
    result = runner.invoke(cli, ["db", "sql", "SELECT 1"])
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr


def test_help_lists_every_db_command():
    cli, _ = make_cli("postgresql://localhost/x")
    result = runner.invoke(cli, ["db", "--help"])
    assert result.exit_code == 0, result.output
    for name in ("migrate", "dump", "restore", "move", "sql", "tables"):
        assert name in result.stdout
    migrate = runner.invoke(cli, ["db", "migrate", "--help"])
    assert migrate.exit_code == 0
    for name in ("plan", "apply", "dump-schema"):
        assert name in migrate.stdout


def test_migrate_plan_and_apply_with_the_dinosaur_app(url, tmp_path, empty_db):
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE EXTENSION IF NOT EXISTS postgis;\n"
        "CREATE TABLE IF NOT EXISTS planned (id int PRIMARY KEY);\n"
    )
    cli, _ = make_cli(url)
    plan = runner.invoke(cli, ["db", "migrate", "plan", "--schema-file", str(schema)])
    assert plan.exit_code == 2, plan.output  # dinosaur: 2 means "there are changes"
    assert 'create table "public"."planned"' in plan.stdout
    apply = runner.invoke(
        cli, ["db", "migrate", "apply", "--no-dry-run", "--schema-file", str(schema)]
    )
    assert apply.exit_code == 0, apply.output
    assert (
        empty_db.run_query("SELECT to_regclass('public.planned')").scalar() is not None
    )
    again = runner.invoke(cli, ["db", "migrate", "plan", "--schema-file", str(schema)])
    assert again.exit_code == 0
    assert "no changes" in again.stdout


def test_migrate_uses_the_app_initializer(url):
    def build(db) -> None:
        db.run_sql(
            "CREATE EXTENSION IF NOT EXISTS postgis; CREATE TABLE from_initializer (id int)",
            raise_errors=True,
        )

    cli, _ = make_cli(url, initializer=build)
    plan = runner.invoke(cli, ["db", "migrate", "plan"])
    assert plan.exit_code == 2, plan.output
    assert "from_initializer" in plan.stdout


def _transfer_cli_available() -> None:
    try:
        import macrostrat.database.transfer.cli  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("macrostrat.database.transfer"):
            pytest.skip("requires macrostrat.database.transfer.cli (not written yet)")
        raise


def test_dump_and_restore_round_trip(url, empty_db, tmp_path):
    _transfer_cli_available()
    empty_db.run_sql(
        "CREATE TABLE sample (id int PRIMARY KEY, name text);"
        "INSERT INTO sample VALUES (1, 'granite'), (2, 'basalt')"
    )
    dump = tmp_path / "db.dump"
    cli, _ = make_cli(url)
    dumped = runner.invoke(cli, ["db", "dump", str(dump), "--quiet"])
    assert dumped.exit_code == 0, dumped.output
    assert dump.stat().st_size > 0

    from macrostrat.database import Database, create_database, drop_database

    target = url.rsplit("/", 1)[0] + f"/app_frame_restore_{uuid.uuid4().hex[:8]}"
    create_database(target)
    try:
        restored = runner.invoke(
            cli, ["db", "restore", str(dump), "--database", target, "--quiet"]
        )
        assert restored.exit_code == 0, restored.output
        with Database(target) as copy:
            names = copy.run_query(
                "SELECT array_agg(name ORDER BY id) FROM sample"
            ).scalar()
        assert names == ["granite", "basalt"]
    finally:
        drop_database(target, force=True, allow_missing=True)


def test_missing_extra_gives_an_actionable_error(monkeypatch, url):
    """Without macrostrat.dinosaur/database the commands say what to install."""
    monkeypatch.setitem(sys.modules, "macrostrat.dinosaur.cli", None)
    monkeypatch.setitem(sys.modules, "macrostrat.database.transfer.cli", None)
    cli, _ = make_cli(url)
    helped = runner.invoke(cli, ["db", "--help"])
    assert helped.exit_code == 0
    assert "Unavailable" in helped.stdout
    for args, module in (
        (["db", "migrate", "plan"], "macrostrat.dinosaur.cli"),
        (["db", "dump", "out.dump"], "macrostrat.database.transfer.cli"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert module in result.stderr
        assert "macrostrat.app_frame[db]" in result.stderr
    monkeypatch.setitem(sys.modules, "macrostrat.database", None)
    result = runner.invoke(cli, ["db", "tables"])
    assert result.exit_code == 1
    assert "macrostrat.app_frame[db]" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["db", "tables"], ["db", "migrate", "plan"], ["db", "dump", "x.dump"]],
)
def test_a_failing_database_url_function_is_a_clear_error(args, monkeypatch, tmp_path):
    """The documented `lambda: os.environ[...]` escaped as a KeyError traceback."""
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYAPP_DATABASE_URL", raising=False)
    cli, _ = make_cli(lambda: os.environ["MYAPP_DATABASE_URL"])
    result = runner.invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "environment variable MYAPP_DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, KeyError)


def test_other_database_url_function_errors_name_the_cause():
    def broken() -> str:
        raise RuntimeError("vault is sealed")

    cli, _ = make_cli(broken)
    result = runner.invoke(cli, ["db", "tables"])
    assert result.exit_code == 1
    assert "RuntimeError: vault is sealed" in " ".join(result.stderr.split())


def test_db_commands_refuse_dry_run(url, empty_db, monkeypatch):
    """`--dry-run db sql "DROP ..."` used to run the statement for real."""
    empty_db.run_sql("CREATE TABLE keep_me (id int)")
    cli, _ = make_cli(url)
    result = runner.invoke(cli, ["--dry-run", "db", "sql", "DROP TABLE keep_me"])
    assert result.exit_code == 1
    assert "cannot run in dry-run mode" in " ".join(result.stderr.split())
    monkeypatch.setenv("DRY_RUN", "1")
    result = runner.invoke(cli, ["db", "migrate", "apply", "--no-dry-run"])
    assert result.exit_code == 1
    assert "dry-run" in result.stderr
    assert empty_db.run_query("SELECT to_regclass('keep_me')").scalar() is not None
    help_result = runner.invoke(cli, ["--dry-run", "db", "sql", "--help"])
    assert help_result.exit_code == 0  # help still works
