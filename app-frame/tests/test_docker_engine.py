"""The compose commands against a real Docker engine (the Docker tier in CI).

These run only where an engine answers, Docker Compose is installed (the
plugin or the standalone `docker-compose`) and the local PostGIS test image
exists (`scripts/build-test-images`); otherwise they skip, naming what is
missing. Elsewhere the recording stand-in covers the same commands.
"""

from __future__ import annotations

import os
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
from macrostrat.app_frame.compose import compose_command

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
