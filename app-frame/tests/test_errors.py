"""The error tree: every error app_frame raises is an `AppFrameError` (an `ApplicationError`)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

import macrostrat.app_frame as app_frame
from macrostrat.app_frame import errors
from macrostrat.utils import ApplicationError

OWN = [name for name in errors.__all__ if name not in {"ApplicationError", "BaseError"}]

BUILTIN_MIXINS = {
    "EnvironmentFileNotFoundError": FileNotFoundError,
    "ComposeNotFoundError": FileNotFoundError,
    "ComposeManagerNotFoundError": ValueError,
    "MissingExtraError": ImportError,
}


@pytest.mark.parametrize("name", OWN)
def test_every_error_is_rooted_in_app_frame_error(name):
    cls = getattr(errors, name)
    assert issubclass(cls, errors.AppFrameError)
    assert issubclass(cls, ApplicationError)
    assert getattr(app_frame, name) is cls  # exported at the package root


@pytest.mark.parametrize(("name", "builtin"), sorted(BUILTIN_MIXINS.items()))
def test_builtin_mixins_keep_message_and_details(name, builtin):
    error = getattr(errors, name)("the message", details="the details")
    assert isinstance(error, builtin)
    assert str(error) == "the message"
    assert error.details == "the details"


def test_a_missing_dotenv_file_is_a_file_not_found_error(tmp_path):
    from macrostrat.app_frame import Application

    with pytest.raises(errors.EnvironmentFileNotFoundError) as info:
        Application("Missing", load_dotenv=tmp_path / "nope.env")
    assert isinstance(info.value, FileNotFoundError)


def test_key_controls_without_a_terminal(tmp_path):
    from macrostrat.app_frame.compose import wait_for_keys

    with (
        (tmp_path / "file").open("w") as handle,
        pytest.raises(errors.TerminalRequiredError) as info,
        wait_for_keys(handle.fileno()),
    ):
        pass
    assert info.value.__cause__ is not None


def test_a_refused_db_command_in_dry_run_mode(monkeypatch):
    from macrostrat.app_frame.db import _refuse_dry_run

    monkeypatch.setenv("DRY_RUN", "1")
    with pytest.raises(errors.DatabaseCommandError, match="dry-run mode"):
        _refuse_dry_run(SimpleNamespace(command_path="app db sql"))
    monkeypatch.setenv("DRY_RUN", "0")
    _refuse_dry_run(SimpleNamespace(command_path="app db sql"))


def test_a_failing_database_url_function_keeps_its_cause():
    from macrostrat.app_frame.db import _checked_url_function

    def url() -> str:
        raise KeyError("MYAPP_DATABASE_URL")

    with pytest.raises(errors.DatabaseCommandError, match="MYAPP_DATABASE_URL") as info:
        _checked_url_function(url)()
    assert isinstance(info.value.__cause__, KeyError)


def test_upstream_error_paths_still_work():
    from macrostrat.app_frame.exc import ApplicationError as FromExc
    from macrostrat.app_frame.exc import SubsystemError

    assert FromExc is ApplicationError
    assert SubsystemError is errors.SubsystemError


def test_the_cli_reports_an_app_frame_error_without_a_traceback(tmp_path):
    code = (
        "from macrostrat.app_frame import Application\n"
        "app = Application('Demo')\n"
        "cli = app.control_command()\n"
        "@cli.command()\n"
        "def broken():\n"
        "    from macrostrat.app_frame import SubsystemError\n"
        "    raise SubsystemError('Subsystem x is broken', details='Fix it.')\n"
        "@cli.command()\n"
        "def other():\n"
        "    pass\n"
        "cli()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "broken"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Subsystem x is broken" in result.stderr
    assert "Traceback" not in result.stderr
