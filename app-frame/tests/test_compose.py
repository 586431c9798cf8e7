"""Docker Compose commands against the recording stand-in `docker` (see `fake_docker`).

These tests must not depend on a Docker engine, so every test here that
drives compose uses the recording stand-in put first on PATH by the
`fake_docker` fixture and checks the exact command lines; the real path is
covered by `test_docker_engine.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from macrostrat.app_frame import (
    Application,
    ComposeNotFoundError,
    DockerComposeManager,
    check_status,
    compose,
    start_app,
)
from macrostrat.app_frame.compose import compose_command, run_compose

runner = CliRunner()


def make(tmp_path: Path, **kwargs):
    app = Application("Test App", command_name="test-app", project_prefix="testproj")
    kwargs.setdefault("root_dir", tmp_path)
    kwargs.setdefault("compose_files", ["docker-compose.yaml"])
    mgr = DockerComposeManager(app, **kwargs)
    cli = app.control_command()
    mgr.add_commands(cli)
    return app, mgr, cli


def test_manager_sets_project_and_files_with_the_platform_separator(
    tmp_path, monkeypatch
):
    """Upstream joined COMPOSE_FILE with a hard-coded ':' (wrong on Windows)."""
    monkeypatch.setattr(os, "pathsep", ";")
    _, mgr, _ = make(tmp_path, compose_files=["a.yaml", tmp_path / "b.yaml"])
    assert os.environ["COMPOSE_PROJECT_NAME"] == "testproj"
    assert os.environ["COMPOSE_FILE"] == (
        f"{tmp_path / 'a.yaml'};{tmp_path / 'b.yaml'}"
    )
    assert mgr.compose_files == [tmp_path / "a.yaml", tmp_path / "b.yaml"]


def test_compose_path_separator_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSE_PATH_SEPARATOR", ",")
    make(tmp_path, compose_files=["a.yaml", "b.yaml"])
    assert os.environ["COMPOSE_FILE"] == f"{tmp_path / 'a.yaml'},{tmp_path / 'b.yaml'}"


def test_no_compose_files_leaves_compose_file_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSE_FILE", "keep.yaml")
    make(tmp_path, compose_files=None)
    assert os.environ["COMPOSE_FILE"] == "keep.yaml"


def test_callable_compose_files_receive_a_ready_manager(tmp_path):
    """Upstream called it before `manager.app` existed (AttributeError)."""
    seen = {}

    def files(mgr: DockerComposeManager) -> list[str]:
        seen["app"] = mgr.app.name
        seen["root"] = mgr.root_dir
        return ["generated.yaml"]

    _, mgr, _ = make(tmp_path, compose_files=files)
    assert seen == {"app": "Test App", "root": tmp_path.resolve()}
    assert mgr.compose_files == [tmp_path.resolve() / "generated.yaml"]


def test_root_dir_callable_and_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = Application("R")
    assert DockerComposeManager(app).root_dir == tmp_path.resolve()
    sub = tmp_path / "deploy"
    sub.mkdir()
    assert (
        DockerComposeManager(app, root_dir=lambda cwd: cwd / "deploy").root_dir == sub
    )
    assert DockerComposeManager(app, root_dir=str(sub)).root_dir == sub
    assert app._compose_manager.root_dir == sub


def test_root_dir_is_the_working_directory_of_compose_calls(tmp_path, fake_docker):
    """Upstream computed root_dir and never used it."""
    project = tmp_path / "project"
    project.mkdir()
    _, _, cli = make(project)
    result = runner.invoke(cli, ["compose", "ps"])
    assert result.exit_code == 0, result.output
    (entry,) = fake_docker.compose_entries()
    assert entry["argv"] == ["compose", "ps"]
    assert entry["cwd"] == str(project.resolve())
    assert entry["env"]["COMPOSE_PROJECT_NAME"] == "testproj"
    assert entry["env"]["COMPOSE_FILE"] == str(
        project.resolve() / "docker-compose.yaml"
    )


@pytest.mark.parametrize("code", [0, 3])
def test_compose_passthrough_exit_status_and_arguments(tmp_path, fake_docker, code):
    """Upstream's passthrough always exited 0."""
    _, _, cli = make(tmp_path)
    fake_docker.exit_codes(exec=code)
    result = runner.invoke(
        cli, ["compose", "exec", "db", "psql", "-c", "select 1", "--help"]
    )
    assert result.exit_code == code
    assert fake_docker.calls() == [["exec", "db", "psql", "-c", "select 1", "--help"]]


def test_down_exit_status(tmp_path, fake_docker):
    """Upstream's down always exited 0."""
    _, _, cli = make(tmp_path)
    assert runner.invoke(cli, ["down"]).exit_code == 0
    fake_docker.exit_codes(down=5)
    result = runner.invoke(cli, ["down"])
    assert result.exit_code == 5
    assert "Stopping Test App server" in result.output
    assert fake_docker.calls() == [["down", "--remove-orphans"]] * 2


def test_up_without_a_terminal_starts_and_returns(tmp_path, fake_docker):
    """Upstream killed the log follower and exited 0 silently."""
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["up"])
    assert result.exit_code == 0, result.output
    assert fake_docker.calls() == [
        ["ps", "--services", "--filter", "status=running"],
        ["build"],
        ["up", "--remove-orphans", "--no-start", "--no-build"],
        ["start"],
    ]
    assert (
        "not following logs because standard input is not a terminal" in result.output
    )
    assert "test-app compose logs -f" in result.output


def test_up_one_service_starts_only_that_service(tmp_path, fake_docker):
    """Upstream's `start` ignored the container and started everything."""
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["up", "api", "--force-recreate", "--offline"])
    assert result.exit_code == 0, result.output
    calls = fake_docker.calls()
    assert calls[1:] == [
        ["build", "api"],
        [
            "up",
            "--remove-orphans",
            "--no-start",
            "--no-build",
            "--force-recreate",
            "api",
        ],
        ["start", "api"],
    ]
    assert fake_docker.compose_entries()[1]["env"]["DOCKER_BUILDKIT"] == "0"


def test_failed_build_stops_with_docker_exit_status(tmp_path, fake_docker):
    _, _, cli = make(tmp_path)
    fake_docker.exit_codes(build=17)
    result = runner.invoke(cli, ["up"])
    assert result.exit_code == 17
    assert "Build images failed, aborting." in result.output
    assert [c[0] for c in fake_docker.calls()] == ["ps", "build"]


def test_restart_recreates_and_reloads_running_services(tmp_path, fake_docker):
    _, _, cli = make(
        tmp_path,
        restart_commands={
            "gateway": "caddy reload --config /etc/caddy/Caddyfile",
            "worker": "kill -HUP 1",
        },
    )
    fake_docker.running("gateway", "db")
    result = runner.invoke(cli, ["restart"])
    assert result.exit_code == 0, result.output
    calls = fake_docker.calls()
    assert [
        "up",
        "--remove-orphans",
        "--no-start",
        "--no-build",
        "--force-recreate",
    ] in calls
    assert calls[-1] == [
        "exec",
        "gateway",
        "caddy",
        "reload",
        "--config",
        "/etc/caddy/Caddyfile",
    ]
    assert not any(c[:2] == ["exec", "worker"] for c in calls)
    assert "Some containers are already running" in result.output
    assert "test-app restart" in result.output


def test_dry_run_prints_command_lines_and_runs_nothing(tmp_path, fake_docker):
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["--dry-run", "up", "api"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "docker compose build api" in lines
    assert "docker compose up --remove-orphans --no-start --no-build api" in lines
    assert "docker compose start api" in lines
    assert any(line.startswith("docker compose logs -f --since=") for line in lines)
    assert fake_docker.calls() == []


def test_dry_run_says_what_would_run_not_that_it_succeeded(tmp_path, fake_docker):
    """`--dry-run up` printed "Build images succeeded." for commands never run."""
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["--dry-run", "up", "api"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "succeeded" not in out
    assert "Starting Test App server" not in out
    for stage, command in (
        ("Build images", "docker compose build api"),
        (
            "Create containers",
            "docker compose up --remove-orphans --no-start --no-build api",
        ),
        ("Start Test App", "docker compose start api"),
    ):
        assert f"Dry run: {stage} would run: {command}" in out
    down = runner.invoke(cli, ["--dry-run", "down"])
    assert "Stopping" not in down.stdout
    assert down.stdout.splitlines()[-2:] == [
        "Dry run: Stop Test App would run:",
        "docker compose down --remove-orphans",
    ]
    assert fake_docker.calls() == []
    ran = runner.invoke(cli, ["up", "api"])  # not a dry run: the stages report
    assert ran.exit_code == 0, ran.output
    assert "Build images succeeded." in ran.stdout
    assert "Dry run" not in ran.stdout


def test_dry_run_variable_and_no_compose_installed(tmp_path, monkeypatch):
    """DRY_RUN=1 works like --dry-run, even where Compose is not installed."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("DRY_RUN", "1")
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["down"])
    assert result.exit_code == 0, result.output
    assert "docker compose down --remove-orphans" in result.stdout


def test_compose_function_splits_fragments(tmp_path, fake_docker):
    result = compose("ps --services", cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0
    compose("exec", "db", "psql -c", "'select 1'")
    compose("logs", Path("my service"), collect_args=False)
    assert fake_docker.calls() == [
        ["ps", "--services"],
        ["exec", "db", "psql", "-c", "select 1"],
        ["logs", "my service"],
    ]


def test_check_status_lists_running_services(tmp_path, fake_docker, capsys):
    assert check_status("Test App", "test-app") == []
    assert "already running" not in capsys.readouterr().out
    fake_docker.running("gateway", "api")
    assert check_status("Test App", "test-app") == ["gateway", "api"]
    out = " ".join(capsys.readouterr().out.split())
    assert "already running" in out
    assert "gateway, api" in out
    assert "run `test-app restart` or `test-app up --force-recreate`" in out
    fake_docker.exit_codes(ps=1)
    assert check_status("Test App", "test-app") == []


def test_start_app_programmatically_with_defaults(tmp_path, fake_docker):
    """Upstream's default container was a typer.Argument object passed to docker."""
    _, mgr, _ = make(tmp_path)
    start_app(mgr)
    start_app(mgr, single_stage=True, force_recreate=True)
    calls = fake_docker.calls()
    assert calls[3] == ["start"]
    assert calls[-1] == ["up", "--remove-orphans", "--force-recreate"]


def test_commands_without_a_manager_fail_clearly():
    app = Application("Bare")
    cli = app.control_command()
    from macrostrat.app_frame.compose import add_docker_compose_commands

    add_docker_compose_commands(cli)
    result = runner.invoke(cli, ["down"])
    assert result.exit_code == 1
    assert "Could not find application config" in result.stderr


def test_a_missing_manager_is_still_a_value_error():
    """Upstream raised ValueError; `except ValueError` must keep catching it."""
    import typer

    from macrostrat.app_frame import ApplicationError, ComposeManagerNotFoundError
    from macrostrat.app_frame.compose.manager import require_compose_manager

    ctx = typer.Context(typer.main.get_command(Application("Bare").control_command()))
    with pytest.raises(ValueError) as info:
        require_compose_manager(ctx)
    assert isinstance(info.value, ComposeManagerNotFoundError)
    assert isinstance(info.value, ApplicationError)


def test_dry_run_up_without_compose_installed(tmp_path, monkeypatch):
    """`logs_command` had no dry-run fallback: `--dry-run up` exited 1."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["--dry-run", "up", "api"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "docker compose build api" in lines
    assert "docker compose start api" in lines
    assert lines[-1].startswith("docker compose logs -f --since=")
    assert lines[-1].endswith(" api")


# -- compose flavour detection ------------------------------------------------


def test_detects_the_docker_compose_plugin(tmp_path, monkeypatch, stand_in_writer):
    """Stand-ins: a `docker` with a compose subcommand, and a `docker-compose`."""
    bin_dir = tmp_path / "bin"
    stand_in_writer(bin_dir, "docker", has_compose=True)
    stand_in_writer(bin_dir, "docker-compose")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert compose_command() == ["docker", "compose"]


def test_falls_back_to_standalone_docker_compose(
    tmp_path, monkeypatch, stand_in_writer
):
    """Stand-ins: a `docker` without compose (as Debian's docker.io) and `docker-compose`."""
    bin_dir = tmp_path / "bin"
    stand_in_writer(bin_dir, "docker", has_compose=False)
    stand_in_writer(bin_dir, "docker-compose")
    log = tmp_path / "log"
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert compose_command() == ["docker-compose"]
    result = run_compose(["ps"], capture_output=True)
    assert result.returncode == 0
    assert '"prog": "docker-compose", "argv": ["ps"]' in log.read_text()
    # Detected once: a second call does not probe again.
    probes = log.read_text().count('"compose", "version"')
    assert probes == 1
    compose_command()
    assert log.read_text().count('"compose", "version"') == probes


def test_clear_error_when_neither_is_installed(tmp_path, monkeypatch, stand_in_writer):
    bin_dir = tmp_path / "bin"
    stand_in_writer(bin_dir, "docker", has_compose=False)
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ComposeNotFoundError) as info:
        compose_command()
    message = str(info.value)
    assert "`docker compose` plugin" in message
    assert "`docker-compose`" in message
    assert isinstance(info.value, FileNotFoundError)
    _, _, cli = make(tmp_path)
    result = runner.invoke(cli, ["up"])
    assert result.exit_code == 1
    assert "Docker Compose is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_manager_is_a_core_subsystem(tmp_path):
    from macrostrat.app_frame import CoreSubsystem, SubsystemManager

    app, mgr, _ = make(tmp_path)
    assert isinstance(mgr, CoreSubsystem)
    subsystems = SubsystemManager()
    subsystems.add(mgr)
    subsystems.finalize(app)
    assert subsystems.get("docker-compose") is mgr
