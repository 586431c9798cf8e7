"""Upstream compatibility: every name and signature of `macrostrat.app_frame` 3.1.

The table is generated from the upstream API reference
(`api-appframe-auth-utils-tools.md`, section 3): one row per public name, with
its upstream import path and, for callables, upstream's parameters. Each name
must import from that path, and each signature must accept upstream's
positional and keyword forms (checked with `inspect.Signature.bind`). Real
calls in upstream's forms follow, including the renamed parameters that still
accept upstream's keyword with a `DeprecationWarning`.

Parameter specs: names in order; `name=` is optional, `*args`/`**kwargs` are
variadic, names after `*` or `*args` are keyword-only. `None` marks a
non-callable (a constant, a type alias, the console) or an exception class.

Upstream's `compose/__init__.py` defined the compose functions; ours live in
submodules of `compose` and are imported there, so the rows use upstream's
path (`macrostrat.app_frame.compose`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

UPSTREAM: list[tuple[str, str, str | None]] = [
    # 3.1 package exports
    ("macrostrat.app_frame", "DockerComposeManager", "app, *, root_dir=, compose_files=, restart_commands="),
    ("macrostrat.app_frame", "compose", "*args, **kwargs"),
    ("macrostrat.app_frame", "CommandBase", "**kwargs"),
    ("macrostrat.app_frame", "ControlCommand", "app, *, name=, **kwargs"),
    ("macrostrat.app_frame", "Application", "name, *, command_name=, project_prefix=, log_modules=, env=, load_dotenv=, env_prefix="),
    ("macrostrat.app_frame", "ApplicationError", "message, details="),
    ("macrostrat.app_frame", "Subsystem", "app"),
    ("macrostrat.app_frame", "SubsystemError", "message, details="),
    ("macrostrat.app_frame", "SubsystemManager", "subsystem_cls="),
    # 3.2 core
    ("macrostrat.app_frame.core", "Application", "name, *, command_name=, project_prefix=, log_modules=, env=, load_dotenv=, env_prefix="),
    ("macrostrat.app_frame.core", "EnvironmentDependency", None),
    ("macrostrat.app_frame.core", "DotenvDependency", None),
    ("macrostrat.app_frame.core", "Application.replace_names", "text"),
    ("macrostrat.app_frame.core", "Application.info", "text, style="),
    ("macrostrat.app_frame.core", "Application.load_dotenv", "dependency="),
    ("macrostrat.app_frame.core", "Application.setup_environment", "env"),
    ("macrostrat.app_frame.core", "Application.setup_logs", "verbose="),
    ("macrostrat.app_frame.core", "Application.control_command", "*args, **kwargs"),
    # 3.3 control_command and utils
    ("macrostrat.app_frame.control_command", "ControlCommand", "app, *, name=, **kwargs"),
    # upstream: command(*args, **kwargs) -> CommandBase.command(name=None, **kwargs)
    ("macrostrat.app_frame.control_command", "ControlCommand.command", "name=, **kwargs"),
    ("macrostrat.app_frame.control_command", "ControlCommand.callback", "ctx, verbose="),
    ("macrostrat.app_frame.utils", "DELIMITER", None),
    ("macrostrat.app_frame.utils", "CommandBase", "**kwargs"),
    ("macrostrat.app_frame.utils", "CommandBase.command", "name=, **kwargs"),
    ("macrostrat.app_frame.utils", "CommandBase.add_typer", "typer, **kwargs"),
    ("macrostrat.app_frame.utils", "CommandBase.add_command", "cmd, *args, **kwargs"),
    ("macrostrat.app_frame.utils", "CommandBase.add_click_command", "cmd, *args, **kwargs"),
    ("macrostrat.app_frame.utils", "ControlCommandGroup", None),  # built by Typer
    ("macrostrat.app_frame.utils", "ControlCommandGroup.get_command", "ctx, cmd_name"),
    ("macrostrat.app_frame.utils", "ControlCommandGroup.list_commands", "ctx"),
    ("macrostrat.app_frame.utils", "ControlCommandGroup.get_params", "ctx"),
    ("macrostrat.app_frame.utils", "add_click_command", "base, cmd, *args, **kwargs"),
    ("macrostrat.app_frame.utils", "get_env_boolean", "envvar, default="),
    # 3.4 compose
    ("macrostrat.app_frame.compose", "ComposeFilesDependency", None),
    ("macrostrat.app_frame.compose", "RootDirectoryDependency", None),
    ("macrostrat.app_frame.compose", "DockerComposeManager", "app, *, root_dir=, compose_files=, restart_commands="),
    ("macrostrat.app_frame.compose", "DockerComposeManager.add_commands", "command, *, rich_help_panel="),
    ("macrostrat.app_frame.compose", "add_docker_compose_commands", "command, *, rich_help_panel="),
    ("macrostrat.app_frame.compose", "get_compose_manager", "ctx"),
    ("macrostrat.app_frame.compose", "up", "ctx, container=, force_recreate=, offline="),
    ("macrostrat.app_frame.compose", "down", "ctx"),
    ("macrostrat.app_frame.compose", "restart", "ctx, container=, offline="),
    ("macrostrat.app_frame.compose", "start_app", "manager, container=, force_recreate=, single_stage="),
    ("macrostrat.app_frame.compose", "fail_with_message", "app, res, stage_name"),
    ("macrostrat.app_frame.compose", "run_restart_commands", "manager, running_containers"),
    ("macrostrat.app_frame.compose", "compose", "*args, **kwargs"),
    ("macrostrat.app_frame.compose", "check_status", "app_name, command_name"),
    ("macrostrat.app_frame.compose", "follow_logs", "app, container=, **kwargs"),
    ("macrostrat.app_frame.compose", "Result", None),
    ("macrostrat.app_frame.compose", "command_stream", "refresh_rate="),
    # names upstream's compose/__init__.py imported, and apps import from there
    ("macrostrat.app_frame.compose", "Application", "name, *, command_name=, project_prefix=, log_modules=, env=, load_dotenv=, env_prefix="),
    ("macrostrat.app_frame.compose", "ApplicationBase", ""),
    ("macrostrat.app_frame.compose", "CoreSubsystem", "app"),
    ("macrostrat.app_frame.compose", "add_click_command", "base, cmd, *args, **kwargs"),
    ("macrostrat.app_frame.compose.base", "console", None),
    ("macrostrat.app_frame.compose.base", "compose", "*args, **kwargs"),
    ("macrostrat.app_frame.compose.base", "check_status", "app_name, command_name"),
    ("macrostrat.app_frame.compose.follow_logs", "follow_logs", "app, container=, **kwargs"),
    ("macrostrat.app_frame.compose.follow_logs", "Result", None),
    ("macrostrat.app_frame.compose.follow_logs", "command_stream", "refresh_rate="),
    ("macrostrat.app_frame.compose.follow_logs", "wait_for_keys", ""),
    # 3.5 subsystems
    ("macrostrat.app_frame.subsystems.defs", "SubsystemError", "message, details="),
    ("macrostrat.app_frame.subsystems.defs", "Subsystem", "app"),
    ("macrostrat.app_frame.subsystems.defs", "Subsystem.should_enable", "mgr"),
    ("macrostrat.app_frame.subsystems.defs", "CoreSubsystem", "app"),
    ("macrostrat.app_frame.subsystems.defs", "ApplicationBase", ""),
    ("macrostrat.app_frame.subsystems", "Subsystem", "app"),
    ("macrostrat.app_frame.subsystems", "SubsystemError", "message, details="),
    ("macrostrat.app_frame.subsystems", "SubsystemManager", "subsystem_cls="),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.add", "plugin"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.add_module", "module"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.add_all", "*plugins"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.order_plugins", "store="),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.finalize", "app"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.get", "name"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.run_hook", "hook_name, *args, **kwargs"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager.is_ready", None),
    # 3.6 exc
    ("macrostrat.app_frame.exc", "ApplicationError", "message, details="),
]  # fmt: skip


# -- imports: every row (through the root conftest's `upstream_api`), then quirks


@pytest.mark.parametrize(("module", "qualname", "spec"), UPSTREAM)
def test_name_imports_from_its_upstream_path(upstream_api, module, qualname, spec):
    upstream_api.check_import(module, qualname, spec)


def test_compose_is_the_function_and_the_subpackage():
    import macrostrat.app_frame as app_frame
    from macrostrat.app_frame.compose import compose as from_subpackage

    assert callable(app_frame.compose)
    assert app_frame.compose is from_subpackage
    assert sys.modules["macrostrat.app_frame.compose"].__name__ == (
        "macrostrat.app_frame.compose"
    )
    # the function also carries the names upstream imported into the subpackage
    assert app_frame.compose.Application is app_frame.Application
    assert app_frame.compose.CoreSubsystem is app_frame.CoreSubsystem
    assert app_frame.compose.ApplicationBase is app_frame.ApplicationBase
    assert app_frame.compose.add_click_command is app_frame.add_click_command


def test_upstream_import_paths_give_the_same_objects():
    import macrostrat.app_frame as app_frame
    from macrostrat.app_frame.compose import (
        Application,
        ApplicationBase,
        CoreSubsystem,
        add_click_command,
    )
    from macrostrat.app_frame.exc import ApplicationError
    from macrostrat.app_frame.subsystems.defs import SubsystemError
    from macrostrat.utils import ApplicationError as UtilsApplicationError

    assert Application is app_frame.Application
    assert ApplicationBase is app_frame.ApplicationBase
    assert CoreSubsystem is app_frame.CoreSubsystem
    assert add_click_command is app_frame.add_click_command
    assert SubsystemError is app_frame.SubsystemError
    assert issubclass(SubsystemError, UtilsApplicationError)
    assert ApplicationError is UtilsApplicationError
    assert issubclass(app_frame.DockerComposeManager, CoreSubsystem)
    assert issubclass(Application, ApplicationBase)


# -- signatures: upstream's call forms bind ------------------------------------

CALLABLE_ROWS = [row for row in UPSTREAM if row[2] is not None]


@pytest.mark.parametrize(("module", "qualname", "spec"), CALLABLE_ROWS)
@pytest.mark.parametrize("form", ["positional", "keyword", "required"])
def test_signature_accepts_upstream_calls(upstream_api, module, qualname, spec, form):
    upstream_api.check_call_form(module, qualname, spec, form)


# -- real calls in upstream's forms -------------------------------------------


def _completed(code: int) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["docker", "compose"], code, "", "")


def test_fail_with_message_accepts_upstreams_res_keyword(capsys):
    from macrostrat.app_frame import Application
    from macrostrat.app_frame.compose import fail_with_message

    app = Application("Compat App")
    with pytest.warns(DeprecationWarning, match="res="):
        fail_with_message(app, res=_completed(0), stage_name="Build images")
    assert "Build images succeeded." in capsys.readouterr().out
    with (
        pytest.warns(DeprecationWarning, match="res="),
        pytest.raises(SystemExit) as exit_info,
    ):
        fail_with_message(app=app, res=_completed(3), stage_name="Build images")
    assert exit_info.value.code == 3
    fail_with_message(app, _completed(0), "Start")  # positional: no warning
    with pytest.raises(TypeError, match="both"):
        fail_with_message(app, _completed(0), "Start", res=_completed(0))


def test_add_typer_accepts_upstreams_typer_keyword():
    from macrostrat.app_frame import CommandBase

    base = CommandBase()
    sub = CommandBase()

    @sub.command("hello")
    def hello() -> None:
        print("hello from the group")

    @base.command("other")
    def other() -> None:
        print("other")

    with pytest.warns(DeprecationWarning, match="typer="):
        base.add_typer(typer=sub, name="group", aliases=["g"])
    result = CliRunner().invoke(base, ["g", "hello"])
    assert result.exit_code == 0, result.output
    assert "hello from the group" in result.output
    with pytest.raises(TypeError, match="both"):
        base.add_typer(sub, typer=sub, name="again")


def test_application_and_control_command_in_upstream_keyword_forms(
    tmp_path: Path, fake_docker
):
    from macrostrat.app_frame import Application, DockerComposeManager
    from macrostrat.app_frame.compose import get_compose_manager
    from macrostrat.app_frame.utils import get_env_boolean

    (tmp_path / "docker-compose.yaml").write_text("services: {}\n")
    app = Application(
        "Test App",
        command_name="test-app",
        project_prefix="test_app",
        log_modules=["test_app"],
        env={"TEST_APP_FLAVOUR": "sweet"},
        load_dotenv=None,
        env_prefix="TEST_APP_",
    )
    assert (
        app.replace_names(text=":app_name: / :command_name:") == "Test App / test-app"
    )
    assert get_env_boolean(envvar="TEST_APP_MISSING", default=True) is True
    manager = DockerComposeManager(
        app,
        root_dir=tmp_path,
        compose_files=[tmp_path / "docker-compose.yaml"],
        restart_commands={"gateway": "caddy reload"},
    )
    main = app.control_command(name="test-app")
    manager.add_commands(command=main, rich_help_panel="System")

    @main.command(name="print-name", aliases=["pn"])
    def print_name(ctx: typer.Context) -> None:
        """Print the name of :app_name:."""
        assert get_compose_manager(ctx) is manager
        print(app.name)

    runner = CliRunner()
    result = runner.invoke(main, ["pn"])
    assert result.exit_code == 0, result.output
    assert "Test App" in result.output
    result = runner.invoke(main, ["down"])
    assert result.exit_code == 0, result.output
    assert fake_docker.calls() == [["down", "--remove-orphans"]]


def test_subsystem_manager_in_upstream_forms():
    from macrostrat.app_frame import Application, Subsystem, SubsystemManager

    class Base(Subsystem):
        name = "base"

    class Plugin(Subsystem):
        name = "plugin"
        dependencies = ["base"]
        started = False

        def should_enable(self, mgr) -> bool:
            return isinstance(mgr, SubsystemManager)

        def on_app_start(self) -> None:
            type(self).started = True

    app = Application("Subsystem App")
    manager = SubsystemManager(subsystem_cls=Subsystem)
    manager.add_all(Plugin, Base(app))
    assert [p.name for p in manager.order_plugins(store=None)] == ["base", "plugin"]
    manager.finalize(app=app)
    assert manager.is_ready
    manager.run_hook(hook_name="app-start")
    assert Plugin.started
    assert manager.get(name="plugin").app is app


def test_result_values_are_upstreams():
    from macrostrat.app_frame.compose.follow_logs import Result

    assert {r.name: r.value for r in Result} == {
        "CONTINUE": 1,
        "RESTART": 2,
        "EXIT": 3,
    }
