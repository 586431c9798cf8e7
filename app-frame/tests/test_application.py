"""`Application`: names, environment, `.env` files, logging options, console."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from macrostrat.app_frame import Application


def test_names_and_prefixes_default_from_the_name():
    app = Application("Test app")
    assert app.command_name == "test app"
    assert app.project_prefix == "test_app"
    assert app.envvar_prefix == "TEST_APP_"
    custom = Application("Test app", project_prefix="tp", env_prefix="X_")
    assert (custom.project_prefix, custom.envvar_prefix) == ("tp", "X_")


def test_command_name_is_used_for_command_name_placeholders():
    """Upstream replaced :command_name: with name.lower()."""
    app = Application("My Great App", command_name="mga")
    assert (
        app.replace_names(":app_name: / `:command_name: up`")
        == "My Great App / `mga up`"
    )


def test_log_modules_of_the_caller_are_not_mutated():
    modules = ["myapp"]
    app = Application("A", log_modules=modules)
    assert modules == ["myapp"]
    assert app._log_modules == ["myapp", "macrostrat.app_frame"]
    assert Application("B", log_modules="one")._log_modules == [
        "one",
        "macrostrat.app_frame",
    ]
    # No class-level list shared between apps.
    assert Application("C")._log_modules is not Application("D")._log_modules


def test_a_console_set_by_a_subclass_is_kept():
    themed = Console(width=123)

    class MyApp(Application):
        def __init__(self) -> None:
            self.console = themed
            super().__init__("Mine")

    assert MyApp().console is themed
    assert isinstance(Application("Other").console, Console)


def test_env_mapping_and_callable_are_set(monkeypatch):
    monkeypatch.setenv("DEMO_X", "old")
    Application("Env", env={"DEMO_X": "new"})
    assert os.environ["DEMO_X"] == "new"
    assert os.environ["DOCKER_SCAN_SUGGEST"] == "false"
    Application("Env Two", env=lambda app: {"DEMO_Y": app.envvar_prefix})
    assert os.environ["DEMO_Y"] == "ENV_TWO_"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_dotenv_true_reads_from_the_working_directory_upward(tmp_path, monkeypatch):
    """Upstream searched upward from the installed package, not the cwd."""
    _write(tmp_path / ".env", "LAYER_A=outer\nLAYER_B=outer\nLAYER_C=outer\n")
    inner = tmp_path / "project" / "sub"
    _write(inner / ".env", "LAYER_A=inner\n")
    _write(tmp_path / "project" / ".env", "LAYER_B=middle\n")
    for key in ("LAYER_A", "LAYER_B", "LAYER_C"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LAYER_C", "from-process")
    monkeypatch.chdir(inner)
    app = Application("Dot", load_dotenv=True)
    assert os.environ["LAYER_A"] == "inner"  # the nearest file wins
    assert os.environ["LAYER_B"] == "middle"  # parents fill in what is missing
    assert os.environ["LAYER_C"] == "from-process"  # set variables are not overridden
    assert app.load_dotenv() == [
        inner / ".env",
        tmp_path / "project" / ".env",
        tmp_path / ".env",
    ]


def test_dotenv_accepts_str_paths_and_lists(tmp_path, monkeypatch):
    """Upstream silently ignored a str path."""
    first = _write(tmp_path / "one.env", "DOT_ONE=1\nDOT_BOTH=first\n")
    second = _write(tmp_path / "two.env", "DOT_TWO=2\nDOT_BOTH=second\n")
    for key in ("DOT_ONE", "DOT_TWO", "DOT_BOTH"):
        monkeypatch.delenv(key, raising=False)
    Application("Str", load_dotenv=str(first))
    assert os.environ["DOT_ONE"] == "1"
    monkeypatch.delenv("DOT_BOTH")
    Application("List", load_dotenv=[str(second), first])
    assert os.environ["DOT_TWO"] == "2"
    assert os.environ["DOT_BOTH"] == "second"


def test_env_wins_over_dotenv(tmp_path, monkeypatch):
    _write(tmp_path / ".env", "DOT_PRIORITY=dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOT_PRIORITY", raising=False)
    Application("Prio", env={"DOT_PRIORITY": "env"}, load_dotenv=True)
    assert os.environ["DOT_PRIORITY"] == "env"


def test_a_named_dotenv_file_that_does_not_exist_is_an_error(tmp_path):
    """A missing explicit file only logged a warning, hiding a typo in the path."""
    from macrostrat.app_frame import ApplicationError

    missing = tmp_path / "nope.env"
    with pytest.raises(ApplicationError, match=r"nope\.env does not exist"):
        Application("Missing", load_dotenv=missing)
    existing = tmp_path / "ok.env"
    _write(existing, "DOT_OK=1\n")
    app = Application("Missing")
    with pytest.raises(ApplicationError, match=re.escape(str(missing))):
        app.load_dotenv([existing, missing])


def test_dotenv_discovery_skips_quietly(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # no .env here (tmp_path's parents have none either)
    with caplog.at_level("WARNING", logger="macrostrat.app_frame"):
        app = Application("Nothing", load_dotenv=True)
        found = app.load_dotenv()
    assert all(path.is_file() for path in found)
    assert "does not exist" not in caplog.text


def test_dotenv_rejects_nonsense():
    with pytest.raises(TypeError, match="load_dotenv"):
        Application("Bad", load_dotenv=42)  # type: ignore[arg-type]


def test_info_replaces_names():
    app = Application("Info App", command_name="ia")
    app.console = Console(record=True, width=200)
    app.info("run `:command_name: up` to start :app_name:")
    assert "run `ia up` to start Info App" in app.console.export_text()


def test_application_base_attributes_are_always_set():
    """Upstream declared app_module without ever setting it (AttributeError)."""
    app = Application("Attrs")
    assert app.app_module is None
    assert app.version is None
    assert app.verbose is False
    assert Application("V", version="1.2").version == "1.2"
