"""The dinosaur CLI's mistakes: a short message and an exit status, never a traceback.

Usage errors (a missing schema file, a bad option value) exit with status 2
before anything is created; failures (an unreachable server, an SQL error, a
missing privilege) print ``Error: …`` and exit with status 1; ``--verbose``
adds the traceback.

"Nothing was created" is checked twice: the server's database list is the
same before and after, and the throwaway target's template is a *watched*
database with a session open on it, so that any ``CREATE DATABASE … TEMPLATE``
the command attempted would fail (and change the outcome) even if the
database it made were dropped again.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from macrostrat.dinosaur.cli import EXIT_CHANGES, app, create_cli
from macrostrat.dinosaur.diff import conninfo

runner = CliRunner()

SCHEMA = "CREATE EXTENSION IF NOT EXISTS postgis;\nCREATE TABLE planned (id int);\n"


def flat(text: str) -> str:
    """Text with Rich's boxes and line wrapping removed."""
    for box in "│╭╮╰╯─":
        text = text.replace(box, " ")
    return " ".join(text.split())


def databases(url: str) -> set[str]:
    """The names of the databases on the server of ``url``."""
    with psycopg.connect(conninfo(url)) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


@pytest.fixture
def live(empty_database_url: str) -> str:
    return empty_database_url


@pytest.fixture
def watched_template(live: str) -> Iterator[str]:
    """A template database with a session open on it: creating from it fails."""
    name = f"dinosaur_watch_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo(live), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    base = conninfo(live)
    watcher = psycopg.connect(base, dbname=name)
    try:
        yield name
    finally:
        watcher.close()
        with psycopg.connect(conninfo(live), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path``, so file names in messages stay short."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--initializer`` adds the working directory to ``sys.path``; undo it."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def run_unchanged(live: str, args: list[str], template: str | None = None):
    """Invoke the CLI; assert the server's databases are the same afterwards."""
    before = databases(live)
    result = runner.invoke(create_cli(template=template), args)
    assert databases(live) == before
    return result


def no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_schema_file_is_a_usage_error_and_creates_nothing(
    live, watched_template, in_tmp
):
    result = run_unchanged(
        live,
        ["plan", "--database", live, "--schema-file", "missing.sql"],
        template=watched_template,
    )
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "--schema-file" in message
    assert "'missing.sql' does not exist" in message
    no_traceback(result)


def test_unreachable_server_is_a_short_failure():
    result = runner.invoke(
        create_cli(),
        [
            "plan",
            "--database",
            "postgresql://nobody:secret@127.0.0.1:1/nothing",
            "--target",
            "postgresql://nobody:secret@127.0.0.1:1/other",
        ],
    )
    assert result.exit_code == 1, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: cannot connect to the live database")
    assert "127.0.0.1:1/nothing" in first
    assert "secret" not in result.output
    assert len(result.stderr.splitlines()) <= 3
    no_traceback(result)


def test_missing_database_is_a_short_failure_and_creates_nothing(
    live, watched_template, in_tmp
):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    missing = live.rsplit("/", 1)[0] + "/no_such_database_here"
    result = run_unchanged(
        live,
        ["plan", "--database", missing, "--schema-file", "schema.sql"],
        template=watched_template,
    )
    assert result.exit_code == 1, result.output
    assert 'database "no_such_database_here" does not exist' in result.stderr
    no_traceback(result)


def test_sql_error_names_the_schema_file_and_line(live, database_template, in_tmp):
    (in_tmp / "schema.sql").write_text(
        "CREATE EXTENSION IF NOT EXISTS postgis;\n"
        "CREATE TABLE planned (id int);\n"
        "\n"
        "CREATE TABLE broken (id int,,);\n"
    )
    result = run_unchanged(
        live,
        ["plan", "--database", live, "--schema-file", "schema.sql"],
        template=database_template,
    )
    assert result.exit_code == 1, result.output
    message = result.stderr
    assert message.startswith("Error: building the ideal schema failed:")
    assert "(schema.sql, line 4)" in message
    assert 'syntax error at or near ","' in message
    no_traceback(result)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nomod:fn", "no module named 'nomod'"),
        ("json:no_such_function", "module 'json' has no attribute 'no_such_function'"),
        ("json", "'json' is not module:function"),
        ("json:__name__", "json:__name__ is a str, not a function"),
    ],
)
def test_bad_initializer_is_a_usage_error_and_creates_nothing(
    live, watched_template, spec, expected
):
    result = run_unchanged(
        live,
        ["plan", "--database", live, "--initializer", spec],
        template=watched_template,
    )
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "--initializer" in message
    assert expected in message
    no_traceback(result)


def test_initializer_from_the_current_directory(live, database_template, in_tmp):
    """A console script does not search the working directory; the CLI does."""
    (in_tmp / "my_schema_module.py").write_text(
        "def build(db):\n"
        "    db.run_sql('CREATE EXTENSION IF NOT EXISTS postgis;"
        " CREATE TABLE from_module (id int)', raise_errors=True)\n"
    )
    result = runner.invoke(
        create_cli(template=database_template),
        ["plan", "--database", live, "--initializer", "my_schema_module:build"],
    )
    assert result.exit_code == EXIT_CHANGES, result.output
    assert "from_module" in result.stdout


def test_bad_dry_run_cluster_is_a_usage_error_and_creates_nothing(
    live, watched_template, in_tmp
):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = run_unchanged(
        live,
        [
            "apply",
            "--database",
            live,
            "--schema-file",
            "schema.sql",
            "--dry-run-cluster",
            "podman",
        ],
        template=watched_template,
    )
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "--dry-run-cluster" in message
    assert "'podman' is not one of 'local', 'docker', 'auto'" in message
    no_traceback(result)


def test_bad_lock_timeout_is_a_usage_error_and_creates_nothing(
    live, watched_template, in_tmp
):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = run_unchanged(
        live,
        [
            "apply",
            "--database",
            live,
            "--schema-file",
            "schema.sql",
            "--lock-timeout",
            "forever",
        ],
        template=watched_template,
    )
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "--lock-timeout" in message
    assert "'forever' is not a duration PostgreSQL accepts" in message
    no_traceback(result)
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT to_regclass('planned')").fetchone()[0] is None


def test_missing_template_is_a_usage_error(live, in_tmp):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = run_unchanged(
        live,
        ["plan", "-d", live, "--schema-file", "schema.sql"],
        template="no_such_template_db",
    )
    assert result.exit_code == 2, result.output
    assert "template database 'no_such_template_db' does not exist" in flat(
        result.stderr
    )


def test_two_sources_of_the_ideal_schema_is_a_usage_error(live, in_tmp):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = run_unchanged(
        live, ["plan", "-d", live, "--schema-file", "schema.sql", "--target", live]
    )
    assert result.exit_code == 2, result.output
    assert "give only one of --target, --schema-file" in flat(result.stderr)


@pytest.fixture
def role_without_createdb(live: str) -> Iterator[str]:
    """A login role without CREATEDB on the test server; yields ``live`` as that role."""
    from sqlalchemy.engine import make_url

    name = f"dinosaur_nocreatedb_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    with psycopg.connect(conninfo(live), autocommit=True) as admin:
        admin.execute(
            f"CREATE ROLE \"{name}\" LOGIN NOCREATEDB NOSUPERUSER PASSWORD '{password}'"
        )
    try:
        url = make_url(live).set(username=name, password=password)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo(live), autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def test_plan_by_a_role_without_createdb(
    live, role_without_createdb, database_template, in_tmp
):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    args = ["plan", "-d", role_without_createdb, "--schema-file", "schema.sql"]
    refused = run_unchanged(live, args, template=database_template)
    assert refused.exit_code == 1, refused.output
    message = flat(refused.stderr)
    assert message.startswith("Error: role 'dinosaur_nocreatedb_")
    assert "cannot create databases (it lacks CREATEDB)" in message
    assert "--target-cluster local" in message
    no_traceback(refused)

    apply = run_unchanged(
        live,
        ["apply", "-d", role_without_createdb, "--target", live],
        template=database_template,
    )
    assert apply.exit_code == 1, apply.output
    assert "--dry-run-cluster local" in flat(apply.stderr)
    assert "--no-dry-run" in flat(apply.stderr)


def test_plan_by_a_role_without_createdb_with_a_target_cluster(
    live, role_without_createdb, in_tmp
):
    from macrostrat.dinosaur.cluster import find_postgres_binaries
    from macrostrat.dinosaur.errors import PostgresNotFoundError

    try:
        find_postgres_binaries()
    except PostgresNotFoundError:
        pytest.skip(
            "requires local PostgreSQL server binaries (--target-cluster local)"
        )
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = run_unchanged(
        live,
        [
            "plan",
            "-d",
            role_without_createdb,
            "--schema-file",
            "schema.sql",
            "--target-cluster",
            "local",
        ],
    )
    assert result.exit_code == EXIT_CHANGES, result.output
    assert 'create table "public"."planned"' in result.stdout


def test_plan_by_a_role_without_createdb_works_by_default(
    live, role_without_createdb, in_tmp
):
    """No option: with local binaries the target is built in a throwaway cluster,
    so an application role (no CREATEDB) can plan, and the live server gets
    nothing new. ``--target-cluster live`` asks for the live server: refused."""
    from macrostrat.dinosaur.cluster import find_postgres_binaries
    from macrostrat.dinosaur.errors import PostgresNotFoundError

    try:
        find_postgres_binaries()
    except PostgresNotFoundError:
        pytest.skip("requires local PostgreSQL server binaries (the default target)")
    (in_tmp / "schema.sql").write_text(SCHEMA)
    args = ["plan", "-d", role_without_createdb, "--schema-file", "schema.sql"]
    result = run_unchanged(live, args)
    assert result.exit_code == EXIT_CHANGES, result.output
    assert 'create table "public"."planned"' in result.stdout
    refused = run_unchanged(live, [*args, "--target-cluster", "live"])
    assert refused.exit_code == 1, refused.output
    assert "cannot create databases (it lacks CREATEDB)" in flat(refused.stderr)
    no_traceback(refused)


def test_target_cluster_and_template_together_is_a_usage_error(live, in_tmp):
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = run_unchanged(
        live,
        [
            "plan",
            "-d",
            live,
            "--schema-file",
            "schema.sql",
            "--target-cluster",
            "local",
            "--template",
            "x",
        ],
    )
    assert result.exit_code == 2
    assert "cannot be used with --target-cluster" in flat(result.stderr)


def test_dump_schema_of_an_unreachable_server():
    result = runner.invoke(
        create_cli(), ["dump-schema", "-d", "postgresql://u:secret@127.0.0.1:1/x"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: pg_dump failed")
    assert "secret" not in result.output
    no_traceback(result)


def test_verbose_shows_the_traceback():
    args = ["plan", "-d", "postgresql://u@127.0.0.1:1/x", "--target", "x"]
    quiet = runner.invoke(app, args)
    assert quiet.exit_code == 1
    assert "Traceback" not in quiet.output
    verbose = runner.invoke(app, ["--verbose", *args])
    assert verbose.exit_code == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "Error: cannot connect to the live database" in verbose.stderr


def test_the_installed_program_reports_without_a_traceback(tmp_path):
    script = Path(sys.executable).parent / "dinosaur"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("MACROSTRAT_DATABASE_URL", None)
    nope = str(tmp_path / "nope.sql")
    missing = subprocess.run(
        [
            str(script),
            "plan",
            "-d",
            "postgresql://u@127.0.0.1:1/x",
            "--schema-file",
            nope,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert "nope.sql" in missing.stderr
    assert "Traceback" not in missing.stderr
    down = subprocess.run(
        [str(script), "plan", "-d", "postgresql://u@127.0.0.1:1/x", "--target", "x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1
    assert down.stderr.startswith("Error: cannot connect to the live database")
    assert "Traceback" not in down.stderr


def test_dry_run_cluster_live_rehearses_on_the_live_server(
    live, database_template, in_tmp
):
    """``--dry-run-cluster live`` is the default place: a clone on the live server."""
    (in_tmp / "schema.sql").write_text(SCHEMA)
    result = runner.invoke(
        create_cli(template=database_template),
        [
            "apply",
            "--database",
            live,
            "--schema-file",
            "schema.sql",
            "--dry-run-cluster",
            "live",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "dry run on a schema-only clone converged" in result.stdout
    with psycopg.connect(conninfo(live)) as conn:
        assert conn.execute("SELECT to_regclass('planned')").fetchone()[0] is not None
