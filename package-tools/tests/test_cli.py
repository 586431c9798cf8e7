"""The `mono` script, its commands and options, and the public API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import macrostrat.package_tools as package_tools
from macrostrat.package_tools import errors
from macrostrat.utils import ApplicationError

REPO = Path(__file__).resolve().parents[2]


def test_the_console_script_runs(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "UV_OFFLINE"}
    env["UV_OFFLINE"] = "1"
    result = subprocess.run(
        ["uv", "run", "--no-sync", "mono", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for command in ("install", "changeset", "version", "status", "build", "publish"):
        assert command in result.stdout


def test_no_arguments_prints_help(cli):
    result = cli()
    assert "Usage" in result.output
    assert "publish" in result.output


@pytest.mark.parametrize(
    ("command", "options"),
    [
        # upstream 2.0 options, kept
        (
            "install",
            ["--path", "--omit", "--skip-root", "--no-skip-root", "--virtualenvs"],
        ),
        (
            "publish",
            [
                "--path",
                "--omit",
                "--dry-run",
                "--push-tags",
                "--check-url",
                "--timeout",
            ],
        ),
        ("changeset", ["--package", "--type", "--bump", "--message"]),
        ("version", ["--dry-run", "--date", "--no-lock", "--commit"]),
        ("status", ["--check"]),
        ("build", ["--out-dir", "--no-check"]),
    ],
)
def test_command_options(cli, command, options):
    result = cli(command, "--help")
    assert result.exit_code == 0
    for option in options:
        assert option in result.output


def test_errors_are_reported_without_a_traceback(tmp_path: Path, cli):
    result = cli("status", "--path", tmp_path)
    assert result.exit_code == 1
    assert result.output.startswith(
        f"error: {tmp_path / 'pyproject.toml'} does not exist"
    )
    assert "Traceback" not in result.output


def test_verbose_logs_the_commands_run(workspace: Path, cli):
    result = cli(
        "-v", "build", "--path", workspace, "--omit", "acme.app", "--omit", "acme.db"
    )
    assert result.exit_code == 0, result.output
    assert "Running: uv build --no-sources --out-dir" in result.output
    assert "INFO: Building acme.core 1.0.0" in result.output


def test_public_api():
    assert package_tools.__all__ == [
        "PRIVATE_CLASSIFIER", "Action", "Built", "Bump", "ChangeKind", "Changeset",
        "ChangesetError", "CheckError", "Command", "CommandError", "Dependency",
        "IndexCheck", "IndexFile", "IndexQueryError", "MetadataCheckError", "Package",
        "PackageReleases", "PackageStatus",
        "PackageToolsError", "PublishError", "PublishItem", "PublishPlan",
        "PublishResult", "Release", "StatusReport", "VersionPlan", "VersioningError",
        "Workspace", "WorkspaceConfig", "WorkspaceError", "__version__",
        "apply_versions", "build_packages", "bump_version", "check_index", "check_wheels",
        "find_workspace_root", "floor_problem", "install_commands", "install_packages",
        "load_changesets", "load_workspace", "mono", "parse_changeset", "plan_publish",
        "plan_versions", "publish_packages", "published_files", "raise_floor",
        "readiness_problems", "released_versions", "verify_files", "wheel_problems",
        "workspace_status", "write_changeset",
    ]  # fmt: skip
    for name in package_tools.__all__:
        assert hasattr(package_tools, name), name


def test_every_error_shares_one_base():
    for name in errors.__all__:
        error = getattr(errors, name)
        assert issubclass(error, errors.PackageToolsError)
        assert issubclass(error, ApplicationError)
    assert issubclass(errors.ChangesetError, ValueError)
    assert issubclass(errors.MetadataCheckError, errors.CheckError)
