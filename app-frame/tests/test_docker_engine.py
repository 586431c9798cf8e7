"""The compose commands against a real Docker engine (the Docker tier in CI).

These run only where an engine answers, Docker Compose is installed (the
plugin or the standalone `docker-compose`) and the local PostGIS test image
exists (`scripts/build-test-images`); otherwise they skip, naming what is
missing. Elsewhere the recording stand-in covers the same commands.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import uuid

import pytest
from typer.testing import CliRunner

from macrostrat.app_frame import (
    Application,
    ComposeNotFoundError,
    DockerComposeManager,
    check_status,
)
from macrostrat.app_frame.compose import compose_command, stop_process
from macrostrat.app_frame.compose.follow_logs import follow_logs

pytestmark = pytest.mark.docker

runner = CliRunner()

COMPOSE_FILE = """
services:
  db:
    image: {image}
    pull_policy: never
    environment:
      POSTGRES_PASSWORD: app-frame-test
"""


def test_up_compose_and_down_on_a_real_engine(docker_client, docker_image, tmp_path):
    try:
        compose_command()
    except ComposeNotFoundError:
        pytest.skip(
            "requires Docker Compose (the docker compose plugin or docker-compose)"
        )
    (tmp_path / "compose.yaml").write_text(COMPOSE_FILE.format(image=docker_image))
    project = f"appframe_{uuid.uuid4().hex[:8]}"
    app = Application("Engine Test", project_prefix=project)
    manager = DockerComposeManager(
        app, root_dir=tmp_path, compose_files=["compose.yaml"]
    )
    cli = app.control_command()
    manager.add_commands(cli)
    try:
        up = runner.invoke(cli, ["up"])
        assert up.exit_code == 0, up.output
        assert "not following logs" in up.output
        running = check_status(app.name, app.command_name, cwd=tmp_path)
        assert running == ["db"]
        assert runner.invoke(cli, ["compose", "ps", "--services"]).exit_code == 0
        assert runner.invoke(cli, ["compose", "no-such-subcommand"]).exit_code != 0
        down = runner.invoke(cli, ["down"])
        assert down.exit_code == 0, down.output
        assert check_status(app.name, app.command_name, cwd=tmp_path) == []
    finally:
        manager.run(["down", "--remove-orphans", "--volumes"], capture_output=True)


TICKER_FILE = """
services:
  ticker:
    image: {image}
    pull_policy: never
    entrypoint: ["sh", "-c", "while true; do echo app-frame-tick; sleep 0.5; done"]
"""


def test_follow_logs_with_the_standalone_docker_compose(
    docker_client, docker_image, tmp_path, monkeypatch
):
    """`docker-compose` 1.x rejected `--since` (usage, exit 0): no logs were shown."""
    standalone = shutil.which("docker-compose")
    if standalone is None:
        pytest.skip("requires the standalone docker-compose program")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker-compose").symlink_to(standalone)
    monkeypatch.setenv("PATH", str(bin_dir))  # no `docker`: the standalone flavour
    assert compose_command() == ["docker-compose"]
    (tmp_path / "compose.yaml").write_text(TICKER_FILE.format(image=docker_image))
    app = Application("Ticker", project_prefix=f"appframe_{uuid.uuid4().hex[:8]}")
    manager = DockerComposeManager(
        app, root_dir=tmp_path, compose_files=["compose.yaml"]
    )
    process = None
    try:
        started = manager.run(["up", "-d"], capture_output=True, text=True)
        assert started.returncode == 0, started.stdout + started.stderr
        env = {**os.environ, **manager.environment()}
        process = follow_logs(
            app,
            "ticker",
            show_help=False,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        seen = []
        for _ in range(120):
            ready, _, _ = select.select([process.stdout], [], [], 1)
            if not ready:
                continue
            line = process.stdout.readline().decode(errors="replace")
            if not line:
                break
            seen.append(line)
            if "app-frame-tick" in line:
                break
        assert any("app-frame-tick" in line for line in seen), seen
    finally:
        stop_process(process)
        manager.run(["down", "--remove-orphans", "--timeout", "1"], capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_demo_app_from_its_readme(docker_client, docker_image, demo_dir, tmp_path):
    """`up`, `compose ps`, `db migrate`, `db tables`, `restart`, `down` for real."""
    try:
        compose_command()
    except ComposeNotFoundError:
        pytest.skip(
            "requires Docker Compose (the docker compose plugin or docker-compose)"
        )
    from macrostrat.database import wait_for_database

    port = _free_port()
    url = f"postgresql://postgres:demo@127.0.0.1:{port}/postgres"
    env = {
        **os.environ,
        "DEMO_POSTGIS_IMAGE": docker_image,
        "DEMO_DB_PORT": str(port),
        "DEMO_PROJECT": f"appframe_demo_{uuid.uuid4().hex[:8]}",
        "DEMO_DATABASE_URL": url,
    }

    def demo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(demo_dir / "demo_app.py"), *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        up = demo("up", "database")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "not following logs" in up.stdout
        wait_for_database(url, quiet=True, timeout=120)
        assert demo("compose", "ps").returncode == 0
        plan = demo("db", "migrate", "plan")
        assert plan.returncode == 2, plan.stdout + plan.stderr
        assert 'create table "demo"."site"' in plan.stdout
        apply = demo("db", "migrate", "apply", "--no-dry-run")
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert "demo.site" in demo("db", "tables").stdout.splitlines()
        restart = demo("restart", "database")
        assert restart.returncode == 0, restart.stdout + restart.stderr
        wait_for_database(url, quiet=True, timeout=120)
        assert "demo.site" in demo("db", "tables").stdout.splitlines()
        down = demo("down")
        assert down.returncode == 0, down.stdout + down.stderr
    finally:
        demo("compose", "down", "--volumes", "--remove-orphans")
