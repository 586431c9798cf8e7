"""The example app as a real process: exit codes, help, environment, `.env` files.

Compose calls go to the recording stand-in `docker` from `fake_docker`,
because these tests must not depend on a Docker engine; the real path is
covered by `test_docker_engine.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def run_demo(demo_dir, tmp_path):
    def run(*args: str, cwd: Path | None = None, env: dict | None = None, **kw):
        full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
        return subprocess.run(
            [sys.executable, str(demo_dir / "demo_app.py"), *args],
            cwd=cwd or tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            **kw,
        )

    return run


def test_help_exits_0(run_demo):
    result = run_demo("--help")
    assert result.returncode == 0, result.stderr
    for text in ("--verbose", "--dry-run", "up", "down", "restart", "compose", "db"):
        assert text in result.stdout
    assert "show-env, env" in result.stdout


def test_no_arguments_prints_help(run_demo):
    result = run_demo()
    assert result.returncode == 2, result.stderr  # Click: help instead of a command
    assert "Usage" in result.stdout + result.stderr
    assert "Demo App command-line interface" in result.stdout + result.stderr


def test_application_error_exit_status_and_verbose(run_demo):
    plain = run_demo("fail")
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == [
        "The demo failed on purpose",
        "Nothing is wrong.",
    ]
    verbose = run_demo("--verbose", "fail")
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    by_env = run_demo("fail", env={"DEMO_VERBOSE": "yes"})
    assert "Traceback" in by_env.stderr


def test_compose_environment_and_alias(run_demo, demo_dir):
    result = run_demo("env")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "COMPOSE_PROJECT_NAME=app_frame_demo" in lines
    assert f"COMPOSE_FILE={demo_dir / 'docker-compose.yaml'}" in lines


def test_dotenv_layering_from_the_working_directory(
    run_demo, tmp_path, fake_docker, demo_dir
):
    (tmp_path / ".env").write_text("DEMO_DB_PORT=1111\nDEMO_GREETING=outer\n")
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / ".env").write_text("DEMO_DB_PORT=2222\n")
    env = {"FAKE_DOCKER_ENV_PREFIXES": "DEMO_"}
    os.environ.pop("DEMO_DB_PORT", None)
    result = run_demo("compose", "ps", cwd=project / "sub", env=env)
    assert result.returncode == 0, result.stderr
    (entry,) = fake_docker.compose_entries()
    assert entry["argv"] == ["compose", "ps"]
    assert entry["cwd"] == str(demo_dir)  # root_dir, not the caller's cwd
    assert entry["env"]["DEMO_DB_PORT"] == "2222"  # nearest .env wins
    assert entry["env"]["DEMO_GREETING"] == "outer"  # parents fill in
    assert entry["env"]["COMPOSE_PROJECT_NAME"] == "app_frame_demo"
    assert entry["env"]["COMPOSE_FILE"] == str(demo_dir / "docker-compose.yaml")
    # The process environment wins over every .env file.
    run_demo("compose", "ps", cwd=project / "sub", env={**env, "DEMO_DB_PORT": "3333"})
    assert fake_docker.compose_entries()[-1]["env"]["DEMO_DB_PORT"] == "3333"


def test_verbose_flag_reaches_docker_as_prefix_variable(run_demo, fake_docker):
    env = {"FAKE_DOCKER_ENV_PREFIXES": "DEMO_"}
    run_demo("--verbose", "compose", "config", env=env)
    run_demo("compose", "ps", env=env)
    first, second = fake_docker.compose_entries()[-2:]
    assert first["env"].get("DEMO_VERBOSE") == "1"
    assert "DEMO_VERBOSE" not in second["env"]


@pytest.mark.parametrize("code", [0, 3])
def test_compose_down_restart_exit_status(run_demo, fake_docker, code):
    fake_docker.exit_codes(ps=code, down=code)
    assert run_demo("compose", "ps", "-a").returncode == code
    assert run_demo("down").returncode == code
    assert ["ps", "-a"] in fake_docker.calls()
    assert ["down", "--remove-orphans"] in fake_docker.calls()


def test_restart_exit_status_of_a_failing_stage(run_demo, fake_docker):
    fake_docker.exit_codes(start=9)
    result = run_demo("restart")
    assert result.returncode == 9
    assert "Start Demo App failed, aborting." in result.stdout


def test_up_without_a_terminal_starts_and_returns(run_demo, fake_docker):
    result = run_demo("up")
    assert result.returncode == 0, result.stderr
    assert (
        "not following logs because standard input is not a terminal" in result.stdout
    )
    assert [c[0] for c in fake_docker.calls()] == ["ps", "build", "up", "start"]


def test_dry_run_flag_and_variable(run_demo, fake_docker):
    result = run_demo("--dry-run", "down")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "docker compose down --remove-orphans"
    by_env = run_demo("compose", "ps", env={"DRY_RUN": "1"})
    assert by_env.stdout.strip() == "docker compose ps"
    assert fake_docker.calls() == []


def test_no_compose_installed(run_demo, tmp_path, stand_in_writer):
    bin_dir = tmp_path / "only-docker"
    stand_in_writer(bin_dir, "docker", has_compose=False)
    env = {"PATH": str(bin_dir), "FAKE_DOCKER_LOG": str(tmp_path / "log")}
    result = run_demo("down", env=env)
    assert result.returncode == 1
    assert (
        "neither the `docker compose` plugin nor a standalone `docker-compose`"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_the_docs_example_runs(tmp_path, repo_root):
    """The first Python block of docs/app-frame.md is a working program."""
    text = (repo_root / "docs" / "app-frame.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "myapp.py"
    script.write_text(code)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
            timeout=60,
        )

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    for name in ("up", "down", "restart", "compose", "db", "hello, hi"):
        assert name in helped.stdout
    assert run("hi").stdout.strip() == "hello"
    dry = run("--dry-run", "down")
    assert dry.stdout.splitlines()[-1].endswith("down --remove-orphans")


def test_demo_db_commands_against_a_real_database(run_demo, empty_database_url):
    """The README's `db migrate plan`, `db sql` and `db tables`, on PostGIS."""
    env = {"DEMO_DATABASE_URL": empty_database_url}
    plan = run_demo("db", "migrate", "plan", env=env)
    assert plan.returncode == 2, plan.stderr  # 2: there are changes
    assert 'create table "demo"."site"' in plan.stdout
    apply = run_demo("db", "migrate", "apply", "--no-dry-run", env=env)
    assert apply.returncode == 0, apply.stderr
    tables = run_demo("db", "tables", env=env)
    assert tables.stdout.splitlines() == ["demo.site", "public.spatial_ref_sys"]
    count = run_demo("db", "sql", "SELECT count(*) FROM demo.site", env=env)
    assert count.stdout.splitlines() == ["count", "0"]
