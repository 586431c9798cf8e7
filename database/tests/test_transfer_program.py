"""The `macrostrat-db-transfer` program and `python -m macrostrat.database.transfer`.

No database is needed: these check the entry points, `--version`, `--help`
and the message without the `cli` extra.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from macrostrat.database.transfer import __main__ as program
from macrostrat.database.transfer.cli import PROGRAM, main

VERSION = version("macrostrat.database")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=120
    )


def test_the_console_script_is_declared_and_installed():
    [script] = [
        ep for ep in entry_points(group="console_scripts") if ep.name == PROGRAM
    ]
    assert script.value == "macrostrat.database.transfer.__main__:main"
    assert script.dist is not None
    assert script.dist.name == "macrostrat.database"
    installed = Path(sys.executable).parent / PROGRAM
    result = run(str(installed), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{PROGRAM} {VERSION}\n"


def test_python_dash_m_runs_the_same_commands():
    result = run(sys.executable, "-m", "macrostrat.database.transfer", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m macrostrat.database.transfer" in result.stdout
    for command in ("dump", "restore", "move", "--version"):
        assert command in result.stdout
    result = run(sys.executable, "-m", "macrostrat.database.transfer", "--version")
    assert result.stdout == f"{PROGRAM} {VERSION}\n"


def test_main_version_help_and_no_arguments(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"{PROGRAM} {VERSION}\n"
    with pytest.raises(SystemExit) as exited:
        main([])  # no arguments: the help
    assert "Dump, restore and move PostgreSQL" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["dump", "--help"])
    assert exited.value.code == 0
    assert f"Usage: {PROGRAM} dump" in capsys.readouterr().out


def test_mounted_clis_have_no_version_option():
    from typer.testing import CliRunner

    from macrostrat.database.transfer.cli import create_cli

    result = CliRunner().invoke(create_cli(), ["--version"])
    assert result.exit_code != 0  # only the program has it, not `myapp db`


def test_without_the_cli_extra_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "typer", None)  # as if Typer were missing
    with pytest.raises(SystemExit) as exited:
        program.main()
    assert exited.value.code == (
        "error: the transfer command line needs Typer: "
        "pip install 'macrostrat.database[cli]'"
    )
