"""The control command line through Typer's CliRunner: help, aliases, verbose, errors."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from macrostrat.app_frame import (
    Application,
    ApplicationError,
    CommandBase,
    ControlCommand,
    ControlCommandGroup,
    SubsystemError,
    add_click_command,
    get_env_boolean,
)

runner = CliRunner()


def make_cli(**kwargs) -> tuple[Application, ControlCommand]:
    app = Application("Test App", command_name="test-app", **kwargs)
    return app, app.control_command()


def test_top_level_help_exits_0_and_lists_global_options():
    """Upstream dropped Click's help option: `--help` gave exit 2."""
    _, cli = make_cli()

    @cli.command()
    def hello() -> None:
        """Say hello."""

    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    for text in ("--verbose", "--dry-run", "--help", "hello"):
        assert text in result.output
    assert "--install-completion" not in result.output


def test_no_arguments_prints_help():
    _, cli = make_cli()
    cli.command()(lambda: None)
    result = runner.invoke(cli, [])
    assert result.exit_code == 2  # Click's status for help instead of a command
    assert "Usage" in result.output
    assert "Test App command-line interface" in result.output


def test_subcommand_help_uses_names_of_the_app():
    """`:command_name:` renders command_name (upstream used name.lower())."""
    _, cli = make_cli()

    def restart_hint() -> None:
        """Run `:command_name: down` to stop :app_name:."""

    cli.command("hint")(restart_hint)
    result = runner.invoke(cli, ["hint", "--help"])
    assert result.exit_code == 0
    assert "Run `test-app down` to stop Test App." in result.output
    # The function's docstring is left alone (upstream rewrote it in place).
    assert restart_hint.__doc__ == "Run `:command_name: down` to stop :app_name:."


def test_command_aliases_resolve_and_show_in_help():
    _, cli = make_cli()

    @cli.command("hello", aliases=["hi", "h"])
    def hello() -> None:
        """Say hello."""
        typer.echo("hello!")

    for name in ("hello", "hi", "h"):
        result = runner.invoke(cli, [name])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "hello!"
    assert "hello, hi, h" in runner.invoke(cli, ["--help"]).output
    assert runner.invoke(cli, ["nope"]).exit_code == 2


def test_aliases_need_a_name():
    base = CommandBase()
    with pytest.raises(ValueError, match="name must be provided"):
        base.command(aliases=["x"])


def test_bare_decorator_and_add_command():
    base = CommandBase()

    @base.command
    def first() -> None:
        typer.echo("first")

    def second() -> None:
        typer.echo("second")

    base.add_command(second, "second", aliases=["2nd"])
    assert runner.invoke(base, ["first"]).output.strip() == "first"
    assert runner.invoke(base, ["2nd"]).output.strip() == "second"


def test_add_typer_with_aliases():
    base = CommandBase()
    sub = CommandBase()

    @sub.command()
    def inner() -> None:
        typer.echo("inner ran")

    @sub.command()
    def other() -> None:
        pass

    base.add_typer(sub, name="group", aliases=["g"])
    assert runner.invoke(base, ["g", "inner"]).output.strip() == "inner ran"
    assert runner.invoke(base, ["group", "inner"]).output.strip() == "inner ran"


def test_commands_listed_in_order_deprecated_last():
    base = CommandBase()
    for name, deprecated in (("zeta", True), ("beta", False), ("alpha", False)):
        base.command(name, deprecated=deprecated)(lambda: None)
    group = typer.main.get_command(base)
    assert isinstance(group, ControlCommandGroup)
    with group.make_context("x", ["--help"], resilient_parsing=True) as ctx:
        assert group.list_commands(ctx) == ["beta", "alpha", "zeta"]


def test_application_error_is_a_short_red_message_and_exit_1():
    _, cli = make_cli()

    @cli.command()
    def broken() -> None:
        raise ApplicationError("Something is off", details="Try turning it off and on.")

    result = runner.invoke(cli, ["broken"])
    assert result.exit_code == 1
    assert "Something is off" in result.stderr
    assert "Try turning it off and on." in result.stderr
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_application_error_subclasses_and_errors_in_nested_groups():
    _, cli = make_cli()
    sub = CommandBase()

    @sub.command()
    def load() -> None:
        raise SubsystemError("Subsystem 'maps' depends on 'tiles', which is not loaded")

    sub.command()(lambda: None)
    cli.add_typer(sub, name="plugins")
    result = runner.invoke(cli, ["plugins", "load"])
    assert result.exit_code == 1
    assert result.stderr.count("which is not loaded") == 1


def test_verbose_shows_the_traceback():
    _, cli = make_cli()

    @cli.command()
    def broken() -> None:
        raise ApplicationError("Something is off")

    result = runner.invoke(cli, ["--verbose", "broken"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "Something is off" in result.stderr


def test_other_exceptions_are_not_swallowed():
    _, cli = make_cli()

    @cli.command()
    def crash() -> None:
        raise RuntimeError("a bug")

    result = runner.invoke(cli, ["crash"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


def test_prefix_verbose_variable_turns_on_debug_logs(monkeypatch):
    """Upstream re-exported <PREFIX>VERBOSE but did not turn on logging."""
    app, cli = make_cli(log_modules=["test_app_frame_logs"])

    @cli.command()
    def work() -> None:
        logging.getLogger("test_app_frame_logs").debug("debug detail")
        typer.echo(f"verbose={app.verbose}")

    quiet = runner.invoke(cli, ["work"])
    assert "debug detail" not in quiet.stderr
    assert "verbose=False" in quiet.stdout

    monkeypatch.setenv("TEST_APP_VERBOSE", "1")
    loud = runner.invoke(cli, ["work"])
    assert loud.exit_code == 0
    assert "debug detail" in loud.stderr
    assert "verbose=True" in loud.stdout


def test_verbose_flag_exports_the_prefix_variable(monkeypatch):
    monkeypatch.delenv("TEST_APP_VERBOSE", raising=False)
    _, cli = make_cli()

    @cli.command()
    def show() -> None:
        typer.echo(os.environ.get("TEST_APP_VERBOSE", "unset"))

    assert runner.invoke(cli, ["show"]).stdout.strip() == "unset"
    assert runner.invoke(cli, ["--verbose", "show"]).stdout.strip() == "1"


def test_dry_run_flag_exports_dry_run():
    _, cli = make_cli()

    @cli.command()
    def show() -> None:
        typer.echo(os.environ.get("DRY_RUN", "unset"))

    assert runner.invoke(cli, ["show"]).stdout.strip() == "unset"
    assert runner.invoke(cli, ["--dry-run", "show"]).stdout.strip() == "1"


def test_subclass_can_override_the_callback_and_add_options():
    """Downstream adds global options and calls super().callback(ctx, verbose=...)."""
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

    app = Application("Sub App")
    cli = MyCommand(app)

    @cli.command()
    def run() -> None:
        seen["verbose"] = app.verbose

    result = runner.invoke(cli, ["--env", "prod", "--verbose", "run"])
    assert result.exit_code == 0, result.output
    assert seen == {"env": "prod", "verbose": True}
    assert "Sub App tools" in runner.invoke(cli, ["--help"]).output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("maybe", None),
        (None, None),
    ],
)
def test_get_env_boolean(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("SOME_FLAG", raising=False)
    else:
        monkeypatch.setenv("SOME_FLAG", value)
    assert get_env_boolean("SOME_FLAG") is expected
    if expected is None:
        assert get_env_boolean("SOME_FLAG", default=True) is True


def _click_like_command():
    """A standalone Click command built by Typer (Typer vendors Click since 0.26)."""
    tool = typer.Typer(add_completion=False)

    @tool.command()
    def tool_main(
        name: str, shout: Annotated[bool, typer.Option("--shout")] = False
    ) -> None:
        """Greet someone."""
        typer.echo(name.upper() if shout else name)
        if name == "fail":
            raise typer.Exit(3)

    command = typer.main.get_command(tool)
    command.name = "greet"
    return command


def test_add_click_command_passes_arguments_help_and_exit_status():
    _, cli = make_cli()
    add_click_command(cli, _click_like_command())
    ok = runner.invoke(cli, ["greet", "ann", "--shout"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == "ANN"
    helped = runner.invoke(cli, ["greet", "--help"])
    assert helped.exit_code == 0
    assert "--shout" in helped.output  # the wrapped command's own help
    assert runner.invoke(cli, ["greet", "fail"]).exit_code == 3
    assert "Greet someone." in runner.invoke(cli, ["--help"]).output


def test_add_click_command_with_a_real_click_command():
    click = pytest.importorskip("click", reason="requires the click package")

    @click.command("shout")
    @click.argument("word")
    def shout(word: str) -> None:
        """Shout a word."""
        click.echo(word.upper())
        if word == "bad":
            raise SystemExit(4)

    base = CommandBase()
    base.add_click_command(shout)
    base.command()(lambda: None)
    result = runner.invoke(base, ["shout", "hey"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "HEY"
    assert runner.invoke(base, ["shout", "bad"]).exit_code == 4


def test_creating_a_control_command_changes_no_global_typer_style():
    """Upstream set typer.rich_utils.STYLE_HELPTEXT = None for every program."""
    from typer import rich_utils

    before = rich_utils.STYLE_HELPTEXT
    make_cli()
    assert before == rich_utils.STYLE_HELPTEXT


def test_global_options_do_not_leak_into_the_next_invocation():
    """`--dry-run`/`--verbose` stayed in os.environ for later invocations.

    Both invocations run in this one test, so the autouse fixture's reset of
    the environment does not happen between them.
    """
    _, cli = make_cli()
    seen = []

    @cli.command()
    def show() -> None:
        seen.append((os.environ.get("DRY_RUN"), os.environ.get("TEST_APP_VERBOSE")))

    assert "DRY_RUN" not in os.environ
    assert "TEST_APP_VERBOSE" not in os.environ
    first = runner.invoke(cli, ["--dry-run", "--verbose", "show"])
    assert first.exit_code == 0, first.output
    assert "DRY_RUN" not in os.environ
    assert "TEST_APP_VERBOSE" not in os.environ
    second = runner.invoke(cli, ["show"])
    assert second.exit_code == 0, second.output
    assert seen == [("1", "1"), (None, None)]


def test_preset_global_variables_are_kept(monkeypatch):
    monkeypatch.setenv("DRY_RUN", "1")
    _, cli = make_cli()

    @cli.command()
    def noop() -> None:
        """Do nothing."""

    assert runner.invoke(cli, ["--verbose", "noop"]).exit_code == 0
    assert os.environ["DRY_RUN"] == "1"
    assert "TEST_APP_VERBOSE" not in os.environ
