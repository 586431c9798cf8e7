"""The `db` group's mistakes, `--database` help, dry-run mode and `db dump` on a terminal.

Against a real PostgreSQL + PostGIS server. Usage errors exit with status 2
before anything is created; failures print a short message and exit with
status 1; `--verbose` adds the traceback.

"Nothing was created" is checked twice: the server's database list is the
same before and after, and the throwaway target's template is a watched
database with a session open on it, so that any `CREATE DATABASE … TEMPLATE`
attempted would fail (and change the outcome) even if the database it made
were dropped again.
"""

from __future__ import annotations

import os
import pty
import secrets
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from macrostrat.app_frame import Application, add_db_commands

runner = CliRunner()

SCHEMA = "CREATE EXTENSION IF NOT EXISTS postgis;\nCREATE TABLE planned (id int);\n"
UNREACHABLE = "postgresql://nobody:secret@127.0.0.1:1/nothing"


def flat(text: str) -> str:
    """Text with Rich's boxes and line wrapping removed."""
    for box in "│╭╮╰╯─":
        text = text.replace(box, " ")
    return " ".join(text.split())


def libpq(url: str) -> str:
    """``url`` without SQLAlchemy's driver suffix, for psycopg."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def databases(url: str) -> set[str]:
    with psycopg.connect(libpq(url)) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def make_cli(database_url=None, **kwargs):
    app = Application("DB App", command_name="dbapp")
    cli = app.control_command()
    cli.command()(lambda: None)
    group = add_db_commands(cli, database_url, **kwargs)
    return cli, group


def invoke_unchanged(server: str, cli, args: list[str]):
    """Invoke; assert the databases on `server` are the same afterwards."""
    before = databases(server)
    result = runner.invoke(cli, args)
    assert databases(server) == before
    return result


def no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def url(empty_database_url: str) -> str:
    return empty_database_url


@pytest.fixture
def watched_template(url: str) -> Iterator[str]:
    """A template database with a session open on it: creating from it fails."""
    name = f"app_frame_watch_{secrets.token_hex(4)}"
    with psycopg.connect(libpq(url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    watcher = psycopg.connect(libpq(url), dbname=name)
    try:
        yield name
    finally:
        watcher.close()
        with psycopg.connect(libpq(url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`schema.sql` in the working directory (`tmp_path`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schema.sql").write_text(SCHEMA)
    return "schema.sql"


# -- item 7: `db migrate` mistakes --------------------------------------------


def test_migrate_missing_schema_file(url, watched_template, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli, _ = make_cli(url, template=watched_template)
    result = invoke_unchanged(
        url, cli, ["db", "migrate", "plan", "--schema-file", "missing.sql"]
    )
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "--schema-file" in message
    assert "'missing.sql' does not exist" in message
    no_traceback(result)


def test_migrate_unreachable_server(schema):
    cli, _ = make_cli(UNREACHABLE)
    result = runner.invoke(cli, ["db", "migrate", "plan", "--schema-file", schema])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: cannot connect to the live database")
    assert "127.0.0.1:1/nothing" in result.stderr
    assert "secret" not in result.output
    no_traceback(result)


def test_migrate_missing_database(url, watched_template, schema):
    missing = url.rsplit("/", 1)[0] + "/no_such_database_here"
    cli, _ = make_cli(missing, template=watched_template)
    result = invoke_unchanged(
        url, cli, ["db", "migrate", "plan", "--schema-file", schema]
    )
    assert result.exit_code == 1, result.output
    assert 'database "no_such_database_here" does not exist' in result.stderr
    no_traceback(result)


def test_migrate_sql_error_names_file_and_line(url, database_template, schema):
    Path(schema).write_text(SCHEMA + "CREATE TABLE broken (id int,,);\n")
    cli, _ = make_cli(url, template=database_template)
    result = invoke_unchanged(
        url, cli, ["db", "migrate", "plan", "--schema-file", schema]
    )
    assert result.exit_code == 1, result.output
    assert "(schema.sql, line 3)" in result.stderr
    assert 'syntax error at or near ","' in result.stderr
    no_traceback(result)


def test_migrate_bad_initializer(url, watched_template, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the cwd
    cli, _ = make_cli(url, template=watched_template)
    result = invoke_unchanged(
        url, cli, ["db", "migrate", "plan", "--initializer", "nomod:fn"]
    )
    assert result.exit_code == 2, result.output
    assert "--initializer: no module named 'nomod'" in flat(result.stderr)
    no_traceback(result)


def test_migrate_bad_dry_run_cluster(url, watched_template, schema):
    cli, _ = make_cli(url, template=watched_template)
    args = ["db", "migrate", "apply", "--schema-file", schema]
    result = invoke_unchanged(url, cli, [*args, "--dry-run-cluster", "podman"])
    assert result.exit_code == 2, result.output
    assert "'podman' is not one of 'local', 'docker', 'auto'" in flat(result.stderr)
    no_traceback(result)


def test_migrate_bad_lock_timeout(url, watched_template, schema):
    cli, _ = make_cli(url, template=watched_template)
    args = ["db", "migrate", "apply", "--schema-file", schema]
    result = invoke_unchanged(url, cli, [*args, "--lock-timeout", "forever"])
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "--lock-timeout" in message
    assert "'forever' is not a duration PostgreSQL accepts" in message
    no_traceback(result)


def test_migrate_plan_by_a_role_without_createdb(url, database_template, schema):
    from sqlalchemy.engine import make_url

    name = f"app_frame_nocreatedb_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    with psycopg.connect(libpq(url), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE \"{name}\" LOGIN NOCREATEDB PASSWORD '{password}'")
    try:
        as_role = make_url(url).set(username=name, password=password)
        cli, _ = make_cli(
            as_role.render_as_string(hide_password=False), template=database_template
        )
        result = invoke_unchanged(
            url, cli, ["db", "migrate", "plan", "--schema-file", schema]
        )
    finally:
        with psycopg.connect(libpq(url), autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    assert result.exit_code == 1, result.output
    message = flat(result.stderr)
    assert f"role '{name}' cannot create databases (it lacks CREATEDB)" in message
    assert "--target-cluster local" in message
    no_traceback(result)


def test_verbose_shows_the_traceback(schema):
    cli, _ = make_cli(UNREACHABLE)
    args = ["db", "migrate", "plan", "--schema-file", schema]
    quiet = runner.invoke(cli, args)
    assert quiet.exit_code == 1
    assert "Traceback" not in quiet.output
    verbose = runner.invoke(cli, ["--verbose", *args])
    assert verbose.exit_code == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "Error: cannot connect to the live database" in verbose.stderr


# -- item 8a: where the URL comes from, and what the help says -----------------

DATABASE_COMMANDS = [
    ["sql"],
    ["tables"],
    ["migrate", "plan"],
    ["migrate", "apply"],
    ["migrate", "dump-schema"],
    ["dump"],
    ["restore"],
    ["move"],
]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
def test_database_help_names_the_app_database_when_the_app_gives_one(command):
    bound, _ = make_cli("postgresql://localhost/app")
    helped = runner.invoke(bound, ["db", *command, "--help"], env={"COLUMNS": "200"})
    assert helped.exit_code == 0, helped.output
    assert "MACROSTRAT_DATABASE_URL" not in helped.stdout
    assert "database)" in flat(
        helped.stdout
    )  # (default: the app's/application's database)
    unbound, _ = make_cli()
    helped = runner.invoke(unbound, ["db", *command, "--help"], env={"COLUMNS": "200"})
    assert "[$MACROSTRAT_DATABASE_URL]" in flat(helped.stdout)


def test_the_app_database_wins_over_the_variable(url, monkeypatch):
    """As the help says: with an app URL, $MACROSTRAT_DATABASE_URL is not read."""
    monkeypatch.setenv("MACROSTRAT_DATABASE_URL", UNREACHABLE)
    cli, _ = make_cli(url)
    tables = runner.invoke(cli, ["db", "tables"])
    assert tables.exit_code == 0, tables.output
    assert "public.spatial_ref_sys" in tables.stdout
    schema = runner.invoke(cli, ["db", "migrate", "dump-schema"])
    assert schema.exit_code == 0, schema.output
    unbound, _ = make_cli()
    fallback = runner.invoke(unbound, ["db", "tables"])
    assert fallback.exit_code == 1  # the variable is used, and it is unreachable


# -- item 8b: read-only commands run in dry-run mode, the others are refused ---


def test_read_only_commands_run_in_dry_run_mode(url, database_template, schema):
    cli, _ = make_cli(url, template=database_template)
    plan = runner.invoke(
        cli, ["--dry-run", "db", "migrate", "plan", "--schema-file", schema]
    )
    assert plan.exit_code == 2, plan.output  # 2: there are changes
    assert 'create table "public"."planned"' in plan.stdout
    tables = runner.invoke(cli, ["--dry-run", "db", "tables"])
    assert tables.exit_code == 0, tables.output
    dumped = runner.invoke(cli, ["--dry-run", "db", "migrate", "dump-schema"])
    assert dumped.exit_code == 0, dumped.output
    assert "PostgreSQL database dump complete" in dumped.stdout
    out = Path("db.dump")
    dump = runner.invoke(cli, ["--dry-run", "db", "dump", str(out), "--quiet"])
    assert dump.exit_code == 0, dump.output
    assert out.stat().st_size > 0
    with psycopg.connect(libpq(url)) as conn:
        assert conn.execute("SELECT to_regclass('planned')").fetchone()[0] is None


@pytest.mark.parametrize(
    "args",
    [
        ["sql", "CREATE TABLE planned (id int)"],
        ["migrate", "apply", "--no-dry-run", "--schema-file", "schema.sql"],
        ["restore", "schema.sql"],
        ["move", "--schema", "public", "postgresql://localhost/elsewhere"],
        ["seed"],
    ],
    ids=lambda a: a[0] if a[0] != "migrate" else "migrate apply",
)
def test_commands_that_write_are_refused_in_dry_run_mode(
    url, database_template, schema, args
):
    cli, group = make_cli(url, template=database_template)
    seeded = []

    @group.command("seed")
    def seed() -> None:
        """An app's own command in the `db` group."""
        seeded.append(1)

    result = runner.invoke(cli, ["--dry-run", "db", *args])
    assert result.exit_code == 1, result.output
    message = flat(result.stderr)
    command = " ".join(args[:2] if args[0] == "migrate" else args[:1])
    assert f"db {command}` cannot run in dry-run mode" in message
    no_traceback(result)
    assert seeded == []
    with psycopg.connect(libpq(url)) as conn:
        assert conn.execute("SELECT to_regclass('planned')").fetchone()[0] is None
    helped = runner.invoke(cli, ["--dry-run", "db", *command.split(), "--help"])
    assert helped.exit_code == 0, helped.output


# -- item 8c: `db dump` and a terminal ------------------------------------------


def run_in_pty(
    argv: list[str], env: dict[str, str], *, stderr_on_terminal: bool, cwd: Path
) -> tuple[int, bytes, bytes]:
    """Run `argv` with standard output on a pseudo-terminal.

    Returns the exit status, what reached the terminal, and standard error
    (empty when it goes to the terminal too).
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal if stderr_on_terminal else subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    os.close(terminal)
    screen, errors = bytearray(), bytearray()
    streams = [controller] + ([] if stderr_on_terminal else [process.stderr.fileno()])
    deadline = time.monotonic() + 120
    while streams and time.monotonic() < deadline:
        ready, _, _ = select.select(streams, [], [], 0.5)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the terminal closed (EIO)
                data = b""
            if not data:
                streams.remove(fd)
            elif fd == controller:
                screen += data
            else:
                errors += data
    os.close(controller)
    return process.wait(timeout=60), bytes(screen), bytes(errors)


@pytest.fixture
def demo_env(empty_database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DEMO_DATABASE_URL": empty_database_url,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


def test_dump_refuses_to_write_a_binary_dump_to_a_terminal(
    demo_dir, demo_env, tmp_path
):
    status, screen, errors = run_in_pty(
        [sys.executable, str(demo_dir / "demo_app.py"), "db", "dump"],
        demo_env,
        stderr_on_terminal=False,
        cwd=tmp_path,
    )
    assert status == 2, errors.decode()
    assert screen == b""  # no dump, no progress bar
    message = flat(errors.decode())
    assert "refusing to write a custom-format (binary) dump to the terminal" in message
    assert "Traceback" not in message


def test_a_dump_to_a_terminal_carries_no_progress_bar(demo_dir, demo_env, tmp_path):
    status, screen, _ = run_in_pty(
        [sys.executable, str(demo_dir / "demo_app.py"), "db", "dump", "--plain"],
        demo_env,
        stderr_on_terminal=True,
        cwd=tmp_path,
    )
    assert status == 0, screen[-2000:].decode(errors="replace")
    assert b"PostgreSQL database dump complete" in screen
    assert b"pg_dump to stdout" not in screen  # the progress bar's label
