"""The package installs as part of the macrostrat namespace, with upstream's import paths."""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import version

import pytest

import macrostrat.app_frame


def test_version_matches_the_distribution():
    assert macrostrat.app_frame.__version__ == version("macrostrat.app_frame")


def test_macrostrat_is_a_namespace_package():
    import macrostrat

    assert getattr(macrostrat, "__file__", None) is None
    assert len(list(macrostrat.__path__)) >= 1


UPSTREAM_PATHS = [
    ("macrostrat.app_frame", "Application"),
    ("macrostrat.app_frame", "ControlCommand"),
    ("macrostrat.app_frame", "CommandBase"),
    ("macrostrat.app_frame", "DockerComposeManager"),
    ("macrostrat.app_frame", "compose"),
    ("macrostrat.app_frame", "ApplicationError"),
    ("macrostrat.app_frame", "Subsystem"),
    ("macrostrat.app_frame", "SubsystemError"),
    ("macrostrat.app_frame", "SubsystemManager"),
    ("macrostrat.app_frame.core", "Application"),
    ("macrostrat.app_frame.control_command", "ControlCommand"),
    ("macrostrat.app_frame.utils", "CommandBase"),
    ("macrostrat.app_frame.utils", "ControlCommandGroup"),
    ("macrostrat.app_frame.utils", "add_click_command"),
    ("macrostrat.app_frame.utils", "get_env_boolean"),
    ("macrostrat.app_frame.utils", "DELIMITER"),
    ("macrostrat.app_frame.compose", "DockerComposeManager"),
    ("macrostrat.app_frame.compose", "compose"),
    ("macrostrat.app_frame.compose", "check_status"),
    ("macrostrat.app_frame.compose", "start_app"),
    ("macrostrat.app_frame.compose", "add_docker_compose_commands"),
    ("macrostrat.app_frame.compose", "get_compose_manager"),
    ("macrostrat.app_frame.compose.base", "compose"),
    ("macrostrat.app_frame.compose.base", "check_status"),
    ("macrostrat.app_frame.compose.base", "console"),
    ("macrostrat.app_frame.compose.follow_logs", "follow_logs"),
    ("macrostrat.app_frame.compose.follow_logs", "command_stream"),
    ("macrostrat.app_frame.compose.follow_logs", "Result"),
    ("macrostrat.app_frame.compose.follow_logs", "wait_for_keys"),
    ("macrostrat.app_frame.subsystems", "Subsystem"),
    ("macrostrat.app_frame.subsystems", "SubsystemManager"),
    ("macrostrat.app_frame.subsystems", "SubsystemError"),
    ("macrostrat.app_frame.subsystems.defs", "Subsystem"),
    ("macrostrat.app_frame.subsystems.defs", "CoreSubsystem"),
    ("macrostrat.app_frame.subsystems.defs", "ApplicationBase"),
    ("macrostrat.app_frame.exc", "ApplicationError"),
]


@pytest.mark.parametrize(("module", "name"), UPSTREAM_PATHS)
def test_upstream_import_paths(module, name):
    assert getattr(importlib.import_module(module), name) is not None


def test_every_public_name_is_exported():
    package = macrostrat.app_frame
    for name in package.__all__:
        assert hasattr(package, name), name
    for name in (
        "Application",
        "ControlCommand",
        "CommandBase",
        "ControlCommandGroup",
        "add_click_command",
        "get_env_boolean",
        "DockerComposeManager",
        "compose",
        "check_status",
        "start_app",
        "follow_logs",
        "command_stream",
        "Subsystem",
        "CoreSubsystem",
        "SubsystemManager",
        "SubsystemError",
        "ApplicationError",
    ):
        assert name in package.__all__, name


def test_compose_is_both_a_function_and_a_subpackage():
    from macrostrat.app_frame import compose
    from macrostrat.app_frame.compose import DockerComposeManager
    from macrostrat.app_frame.compose import compose as compose_function

    assert inspect.isfunction(compose)
    assert compose is compose_function
    assert compose.DockerComposeManager is DockerComposeManager
    assert compose.check_status is macrostrat.app_frame.check_status
    module = importlib.import_module("macrostrat.app_frame.compose")
    assert inspect.ismodule(module)
    assert module.DockerComposeManager is DockerComposeManager


def test_errors_are_macrostrat_utils_errors():
    from macrostrat.app_frame import errors
    from macrostrat.utils import ApplicationError, BaseError

    assert macrostrat.app_frame.ApplicationError is ApplicationError
    assert macrostrat.app_frame.exc.ApplicationError is ApplicationError
    assert issubclass(errors.SubsystemError, ApplicationError)
    assert issubclass(errors.ComposeNotFoundError, FileNotFoundError)
    assert issubclass(errors.MissingExtraError, ImportError)
    assert issubclass(ApplicationError, BaseError)


def test_importing_does_not_import_the_db_extra():
    import subprocess
    import sys

    code = (
        "import sys, macrostrat.app_frame, macrostrat.app_frame.db;"
        "print(any(m.startswith(('macrostrat.database', 'macrostrat.dinosaur', 'sqlalchemy'))"
        " for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.stdout.strip() == "False", result.stderr


def test_importing_does_not_need_click():
    """Upstream imported `click` without declaring it; Typer >= 0.26 vendors Click."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['click'] = None\n"
        "import macrostrat.app_frame\n"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.stdout.strip() == "ok", result.stderr
