"""The `dinosaur` program: `--version` and `--help` (no database needed)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from typer.testing import CliRunner

from macrostrat.dinosaur.cli import app, create_cli

VERSION = version("macrostrat.dinosaur")


def test_version_and_help():
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"dinosaur {VERSION}\n"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("plan", "apply", "dump-schema", "--version"):
        assert word in result.output


def test_the_installed_script():
    script = Path(sys.executable).parent / "dinosaur"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"dinosaur {VERSION}\n"


def test_mounted_clis_have_no_version_option():
    # `myapp db --version` would name dinosaur's version, not the app's
    result = CliRunner().invoke(create_cli(), ["--version"])
    assert result.exit_code != 0
