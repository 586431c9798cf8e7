"""A small control CLI built with macrostrat.app_frame (see README.md).

Run it from the repository root:

    uv run python examples/app-frame-demo/demo_app.py --help
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from macrostrat.app_frame import (
    Application,
    ApplicationError,
    DockerComposeManager,
    add_db_commands,
)

HERE = Path(__file__).resolve().parent

app = Application(
    "Demo App",
    command_name="demo-app",
    project_prefix=os.environ.get("DEMO_PROJECT", "app_frame_demo"),
    env_prefix="DEMO_",
    log_modules=["demo_app"],
    load_dotenv=True,
    version="1.0.0",
)

compose = DockerComposeManager(
    app,
    root_dir=HERE,
    compose_files=["docker-compose.yaml"],
    restart_commands={"gateway": "caddy reload --config /etc/caddy/Caddyfile"},
)


def database_url() -> str:
    """The demo database: `DEMO_DATABASE_URL`, else the compose service's port."""
    port = os.environ.get("DEMO_DB_PORT", "54329")
    default = f"postgresql://postgres:demo@localhost:{port}/postgres"
    return os.environ.get("DEMO_DATABASE_URL", default)


def build_schema(db) -> None:
    """Build the ideal schema (schema.sql) in an empty database, for `db migrate`."""
    db.run_sql(HERE / "schema.sql", raise_errors=True)


main = app.control_command()
compose.add_commands(main)
add_db_commands(main, database_url, initializer=build_schema)


@main.command("show-env", aliases=["env"])
def show_env() -> None:
    """Print the compose variables :app_name: sets."""
    for key in ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "DEMO_DB_PORT"):
        typer.echo(f"{key}={os.environ.get(key, '')}")


@main.command("fail")
def fail() -> None:
    """Fail with an ApplicationError (to see how :command_name: reports errors)."""
    raise ApplicationError("The demo failed on purpose", details="Nothing is wrong.")


if __name__ == "__main__":
    main()
