"""`--version` on every control command: the app's own version."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.testing import CliRunner

from macrostrat.app_frame import Application, ControlCommand

runner = CliRunner()


def test_version_prints_the_apps_version_and_exits():
    app = Application("Test App", command_name="test-app", version="2.5.1")
    cli = app.control_command()
    ran = []

    @cli.command()
    def run() -> None:
        ran.append(True)

    result = runner.invoke(cli, ["--version", "run"])
    assert result.exit_code == 0, result.output
    assert result.output == "Test App 2.5.1\n"
    assert ran == []  # eager: nothing else runs
    help_text = runner.invoke(cli, ["--help"]).output
    assert "--version" in help_text
    assert "Show Test App's version and exit." in help_text


def test_without_a_version_it_uses_the_installed_package(monkeypatch):
    # the app's package is found as for `app_version` checks (app_module here)
    from importlib.metadata import version

    class MyApp(Application):
        app_module = "typer"

    cli = MyApp("Typer App").control_command()
    result = runner.invoke(cli, ["--version"])
    assert result.output == f"Typer App {version('typer')}\n"


def test_an_unknown_version_says_so():
    cli = Application("Nameless").control_command()
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("Nameless: version unknown")


def test_a_subclass_callback_keeps_its_options_and_gets_version():
    seen = {}

    class MyCommand(ControlCommand):
        def callback(
            self,
            ctx: typer.Context,
            verbose: Annotated[bool, typer.Option("--verbose")] = False,
            env: Annotated[str, typer.Option("--env")] = "dev",
        ) -> None:
            """:app_name: tools"""
            seen["env"] = env
            super().callback(ctx, verbose=verbose)

    cli = MyCommand(Application("Sub App", version="0.1"))

    @cli.command()
    def run() -> None:
        seen["ran"] = True

    assert runner.invoke(cli, ["--env", "prod", "run"]).exit_code == 0
    assert seen == {"env": "prod", "ran": True}
    assert runner.invoke(cli, ["--version"]).output == "Sub App 0.1\n"
