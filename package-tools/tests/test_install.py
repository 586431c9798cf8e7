"""`mono install`: commands, their directory, exit codes."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest


@pytest.fixture
def legacy(tmp_path: Path, make_pyproject) -> Path:
    """A mono 2.0 layout: a root project with [tool.uv.sources] path packages."""
    root = tmp_path / "legacy"
    for name in ("one", "two"):
        package = root / name
        (package / name).mkdir(parents=True)
        (package / name / "__init__.py").write_text("")
        text = make_pyproject(name, "1.0.0", ["one>=1.0.0"] if name == "two" else [])
        if name == "two":
            text += '\n[tool.uv.sources]\none = { path = "../one" }\n'
        (package / "pyproject.toml").write_text(text)
    (root / "pyproject.toml").write_text(
        dedent(
            """\
            [project]
            name = "legacy-root"
            version = "0"
            requires-python = ">=3.10"
            dependencies = ["one", "two"]

            [tool.uv]
            package = false

            [tool.uv.sources]
            one = { path = "one", editable = true }
            two = { path = "two", editable = true }
            remote = { git = "https://example.invalid/remote.git" }
            """
        )
    )
    return root


def test_dry_run_lists_the_commands_and_where_they_run(
    workspace: Path, monkeypatch, cli
):
    monkeypatch.chdir(workspace.parent)
    result = cli("install", "--path", workspace.name, "--omit", "acme.db", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"uv lock    # in {workspace}",
        f"uv sync --all-packages --no-install-package acme.db    # in {workspace}",
    ]


def test_install_runs_in_path_not_in_the_current_directory(
    workspace: Path, monkeypatch, cli
):
    # mono 2.0 ran the root `uv lock`/`uv sync` in the process's directory
    monkeypatch.chdir(workspace.parent)
    result = cli("install", "--path", workspace.name, "--omit", "acme.app")
    assert result.exit_code == 0, result.output
    assert not (workspace.parent / ".venv").exists()
    site = next((workspace / ".venv" / "lib").glob("python*/site-packages"))
    installed = sorted(p.name.split("-")[0] for p in site.glob("acme_*.dist-info"))
    assert installed == ["acme_core", "acme_db"]


def test_legacy_path_packages_are_locked_and_synced_in_their_directories(
    legacy: Path, cli
):
    result = cli("install", "--path", legacy, "--virtualenvs", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"uv lock    # in {legacy / 'one'}",
        f"uv sync    # in {legacy / 'one'}",
        f"uv lock    # in {legacy / 'two'}",
        f"uv sync    # in {legacy / 'two'}",
        f"uv lock    # in {legacy}",
        f"uv sync    # in {legacy}",
    ]
    result = cli(
        "install", "--path", legacy, "--skip-root", "--omit", "two", "--dry-run"
    )
    assert result.output.splitlines() == [f"uv lock    # in {legacy / 'one'}"]


def test_install_stops_at_the_first_failing_command(legacy: Path, cli):
    # mono 2.0 ignored every exit status and always exited 0
    pyproject = legacy / "one" / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            "dependencies = []", 'dependencies = ["surely-not-cached-pkg>=1"]'
        )
    )
    result = cli("install", "--path", legacy)
    assert result.exit_code == 1
    assert (
        f"error: `uv lock` failed with exit status 1 (in {legacy / 'one'})"
        in result.output
    )
    assert not (legacy / "two" / "uv.lock").exists()  # nothing ran after the failure
    assert not (legacy / ".venv").exists()


def test_an_omitted_path_package_needs_no_pyproject(legacy: Path, cli):
    # mono 2.0 read every source's pyproject.toml, even the omitted ones
    (legacy / "two" / "pyproject.toml").unlink()
    result = cli("install", "--path", legacy, "--omit", "two", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"uv lock    # in {legacy / 'one'}" in result.output.splitlines()
    assert "two" not in result.stdout
