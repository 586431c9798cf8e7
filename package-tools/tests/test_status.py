"""`mono status [--check]`: the release table and the CI checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from macrostrat.package_tools import (
    PRIVATE_CLASSIFIER,
    ChangeKind,
    load_workspace,
    workspace_status,
    write_changeset,
)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_a_consistent_workspace_passes(workspace: Path, cli):
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 0, result.output
    assert "No problems found." in result.output
    assert "\x1b[" not in result.output  # plain text when not in a terminal
    header, core = result.output.splitlines()[:2]
    assert header.split() == [
        "package",
        "version",
        "next",
        "changelog",
        "released",
        "index",
        "publish",
    ]
    # "?": the index was not asked (MONO_NO_INDEX_CHECK=1 in the tests)
    assert core.split() == ["acme.core", "1.0.0", "-", "2025-01-01", "-", "?", "yes"]


def test_status_shows_next_versions_and_release_tags(workspaces, cli):
    root = workspaces.make(tag=True)
    write_changeset(load_workspace(root), ["acme.core"], ChangeKind.ADDED, "Add.")
    result = cli("status", "--path", root)
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[1:4]}
    assert rows["acme.core"][1:3] == ["1.0.0", "1.1.0"]
    assert rows["acme.app"][1:3] == ["0.3.0", "0.3.1"]
    assert rows["acme.db"][4] == "2.1.0"  # released: its tag
    assert "1 pending change fragment(s)" in result.output


def test_an_unreleased_section_counts_as_the_changelog_entry(workspaces, cli):
    root = workspaces.make(changelog_label="Unreleased")
    result = cli("status", "--path", root, "--check")
    assert result.exit_code == 0, result.output
    assert "Unreleased" in result.output


def test_a_version_moved_without_a_changelog_entry_fails(workspace: Path, git, cli):
    edit(
        workspace / "packages/core/pyproject.toml",
        'version = "1.0.0"',
        'version = "1.0.1"',
    )
    git(workspace, "commit", "-qam", "bump")  # the lock is stale too; see below
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    assert "acme.core 1.0.1 has no CHANGELOG entry" in result.output
    # without --check the problems are shown but do not fail
    assert cli("status", "--path", workspace).exit_code == 0


def test_an_empty_changelog_section_fails(workspace: Path, cli):
    edit(workspace / "packages/db/CHANGELOG.md", "- The first release.\n", "")
    report = workspace_status(load_workspace(workspace))
    assert report.problems == ["acme.db 2.1.0: its CHANGELOG section lists no changes"]


def test_a_stale_lock_file_fails(workspace: Path, cli):
    edit(workspace / "packages/app/pyproject.toml", '  "acme.db>=2.1.0",\n', "")
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    assert "uv.lock is stale (`uv lock --check`" in result.output


def test_packages_without_classifiers_fail(workspaces, make_pyproject):
    root = workspaces.make(lock=False)
    (root / "packages/db/pyproject.toml").write_text(
        make_pyproject("acme.db", "2.1.0", ["acme.core>=1.0.0,<2"], classifiers=[])
    )
    report = workspace_status(load_workspace(root), check_locks=False)
    assert report.problems == [
        "acme.db 2.1.0 has no classifiers: `mono publish` would skip it"
    ]
    assert [s.publishable for s in report.packages] == [True, False, True]


@pytest.mark.parametrize("acknowledged", [False, True])
def test_private_packages_fail_unless_listed_as_private(
    workspaces, make_pyproject, acknowledged
):
    extra = '\n[tool.mono]\nprivate = ["acme.app"]\n' if acknowledged else ""
    root = workspaces.make(root_extra=extra, lock=False)
    (root / "packages/app/pyproject.toml").write_text(
        make_pyproject(
            "acme.app",
            "0.3.0",
            ["acme.db>=2.1.0", "acme.core>=1.0.0,<2"],
            [PRIVATE_CLASSIFIER],
        )
    )
    (root / "packages/app/CHANGELOG.md").unlink()  # a private package needs none
    problems = workspace_status(load_workspace(root), check_locks=False).problems
    if acknowledged:
        assert problems == []
    else:
        assert len(problems) == 1
        assert PRIVATE_CLASSIFIER in problems[0]


def test_listed_as_private_without_the_classifier_fails(workspaces):
    root = workspaces.make(
        root_extra='\n[tool.mono]\nprivate = ["acme.core"]\n', lock=False
    )
    [problem] = workspace_status(load_workspace(root), check_locks=False).problems
    assert "listed under [tool.mono] private" in problem


def test_missing_internal_floors_fail(workspace: Path):
    edit(workspace / "packages/app/pyproject.toml", '"acme.db>=2.1.0"', '"acme.db"')
    problems = workspace_status(load_workspace(workspace), check_locks=False).problems
    assert problems == [
        "acme.app: dependency 'acme.db' has no floor (expected >=2.1.0)"
    ]


def test_a_version_below_its_release_tag_fails(workspaces, git):
    root = workspaces.make(tag=True)
    git(root, "tag", "-a", "acme.core-v1.2.0", "-m", "a later release")
    problems = workspace_status(load_workspace(root)).problems
    assert problems == ["acme.core 1.0.0 is lower than its release tag 1.2.0"]


def test_malformed_fragments_fail(workspace: Path, cli):
    (workspace / ".changes").mkdir()
    (workspace / ".changes/oops.md").write_text("no front matter\n")
    result = cli("status", "--path", workspace, "--check")
    assert result.exit_code == 1
    assert "oops.md: no front matter" in result.output
