"""`mono version`: bumps, dependency floors, CHANGELOG sections, all-or-nothing writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from macrostrat.package_tools import (
    Bump,
    ChangeKind,
    CommandError,
    VersioningError,
    apply_versions,
    bump_version,
    floor_problem,
    load_workspace,
    plan_versions,
    raise_floor,
    write_changeset,
)
from macrostrat.package_tools._pyproject import edit_pyproject

DATE = "2030-05-06"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` except git's and uv's internals."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts and ".venv" not in p.parts
    }


@pytest.mark.parametrize(
    ("version", "bump", "expected"),
    [
        ("1.4.2", Bump.PATCH, "1.4.3"),
        ("1.4.2", Bump.MINOR, "1.5.0"),
        ("1.4.2", Bump.MAJOR, "2.0.0"),
        ("0.3", Bump.PATCH, "0.3.1"),
        ("2.0.0rc1", Bump.MINOR, "2.1.0"),
    ],
)
def test_bump_version(version, bump, expected):
    assert bump_version(Version(version), bump) == Version(expected)


@pytest.mark.parametrize(
    ("requirement", "version", "expected"),
    [
        ("acme.core>=1.0.0,<2", "1.1.0", "acme.core>=1.1.0,<2"),
        ("acme.core>=1.0.0,<2", "2.0.0", "acme.core>=2.0.0,<3"),
        ("acme.core", "1.0.0", "acme.core>=1.0.0"),
        ("acme.core>=1.0,!=1.1.0", "1.1.0", "acme.core>=1.1.0"),
        (
            "acme.core[x,a]~=1.0; python_version>='3.10'",
            "1.2.0",
            'acme.core[a,x]>=1.2.0; python_version >= "3.10"',
        ),
        # already right: returned exactly as written, spaces and all
        ("acme.core >= 1.0.0 , < 2", "1.0.0", "acme.core >= 1.0.0 , < 2"),
    ],
)
def test_raise_floor(requirement, version, expected):
    assert raise_floor(requirement, Version(version)) == expected


@pytest.mark.parametrize(
    ("requirement", "problem"),
    [
        ("acme.core>=1.4.0,<2", None),
        ("acme.core", "has no floor"),
        ("acme.core>=1.3.0", "expected >=1.4.0"),
        ("acme.core==1.4.0", "has no floor"),
        ("acme.core>=1.4.0,<1.4", "excludes"),
    ],
)
def test_floor_problem(requirement, problem):
    found = floor_problem(Requirement(requirement), Version("1.4.0"))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_pyproject_edits_keep_comments_and_layout(make_pyproject):
    text = make_pyproject("acme.db", "2.1.0", ["acme.core>=1.0.0,<2", "other>=1"])
    text += '\n[dependency-groups]\ndev = ["acme.core>=1.0.0,<2"]\n'
    new = edit_pyproject(
        text,
        Path("pyproject.toml"),
        version="2.2.0",
        requirements={"acme.core>=1.0.0,<2": "acme.core>=1.1.0,<2"},
    )
    assert new == text.replace('version = "2.1.0"', 'version = "2.2.0"').replace(
        '  "acme.core>=1.0.0,<2",', '  "acme.core>=1.1.0,<2",'
    )
    assert "# the version is managed by mono" in new
    # the dependency group (not in the wheel's metadata) is left alone
    assert 'dev = ["acme.core>=1.0.0,<2"]' in new


def test_pyproject_edits_refuse_what_they_cannot_do_safely():
    text = 'project = { name = "x", version = "1.0.0" }\n'
    with pytest.raises(VersioningError, match="version"):
        edit_pyproject(text, Path("p.toml"), version="1.0.1")


def test_version_bumps_raise_floors_and_cascade_to_dependents(workspace: Path, cli):
    ws = load_workspace(workspace)
    write_changeset(ws, ["acme.core"], ChangeKind.ADDED, "Add `frob`.")
    write_changeset(ws, ["acme.core"], ChangeKind.FIXED, "- Fix `a`.\n- Fix `b`.")

    result = cli("version", "--path", workspace, "--date", DATE)
    assert result.exit_code == 0, result.output

    after = load_workspace(workspace)
    versions = {p.name: str(p.version) for p in after.packages.values()}
    # highest bump wins for core; dependents get a patch bump
    assert versions == {"acme.core": "1.1.0", "acme.db": "2.1.1", "acme.app": "0.3.1"}
    assert [d.requirement for d in after.get("acme.db").dependencies] == [
        "acme.core>=1.1.0,<2"
    ]
    assert [d.requirement for d in after.get("acme.app").dependencies] == [
        "acme.db>=2.1.1",
        "acme.core>=1.1.0,<2",
    ]
    core_log = (workspace / "packages/core/CHANGELOG.md").read_text()
    assert core_log.index("## [1.1.0] - 2030-05-06") < core_log.index(
        "## [1.0.0] - 2025-01-01"
    )
    new_section = core_log.split("## [1.0.0]")[0].split("## [1.1.0] - 2030-05-06")[1]
    assert (
        new_section
        == "\n\n### Added\n\n- Add `frob`.\n\n### Fixed\n\n- Fix `a`.\n- Fix `b`.\n\n"
    )
    db_log = (workspace / "packages/db/CHANGELOG.md").read_text()
    assert (
        "## [2.1.1] - 2030-05-06\n\n### Changed\n\n- Raised internal dependency floors: `acme.core>=1.1.0,<2`."
        in db_log
    )
    assert (
        "# the version is managed by mono"
        in (workspace / "packages/core/pyproject.toml").read_text()
    )
    assert list((workspace / ".changes").glob("*.md")) == []
    # the lock file was refreshed in the same run
    assert 'version = "1.1.0"' in (workspace / "uv.lock").read_text()
    assert (
        subprocess.run(
            ["uv", "lock", "--check"], cwd=workspace, capture_output=True
        ).returncode
        == 0
    )
    rows = [line.split()[:4] for line in result.output.splitlines()]
    assert ["acme.app", "0.3.0", "0.3.1", "patch"] in rows


def test_a_major_bump_raises_upper_bounds_that_would_exclude_it(workspace: Path):
    ws = load_workspace(workspace)
    write_changeset(ws, ["acme.core"], ChangeKind.REMOVED, "Remove `old`.")
    plan = plan_versions(ws, date=DATE)
    db = next(r for r in plan.releases if r.package.name == "acme.db")
    assert db.requirements == {"acme.core>=1.0.0,<2": "acme.core>=2.0.0,<3"}
    assert db.version == Version("2.1.1")


def test_the_cascade_bump_is_configurable(workspaces):
    root = workspaces.make(
        root_extra='\n[tool.mono]\nupdate-internal-dependencies = "minor"\n'
    )
    ws = load_workspace(root)
    write_changeset(ws, ["acme.core"], ChangeKind.FIXED, "Fix.")
    plan = plan_versions(ws, date=DATE)
    assert {r.package.name: str(r.version) for r in plan.releases} == {
        "acme.core": "1.0.1",
        "acme.db": "2.2.0",
        "acme.app": "0.4.0",
    }


def test_an_unreleased_section_takes_the_entries_without_a_second_bump(workspaces):
    root = workspaces.make(changelog_label="Unreleased")
    ws = load_workspace(root)
    write_changeset(ws, ["acme.db"], ChangeKind.FIXED, "Fix the db.")
    plan = plan_versions(ws, date=DATE)
    apply_versions(plan)
    after = load_workspace(root)
    # 2.1.0 is unreleased and already a minor bump: a fix does not move it
    assert str(after.get("acme.db").version) == "2.1.0"
    db_log = (root / "packages/db/CHANGELOG.md").read_text()
    assert (
        "## [2.1.0] - 2030-05-06\n\n### Added\n\n- The first release.\n\n### Fixed\n\n- Fix the db.\n"
        in db_log
    )
    assert "Unreleased" not in db_log
    # every pending section is dated: `mono version` cuts the release
    assert (
        "## [1.0.0] - 2030-05-06" in (root / "packages/core/CHANGELOG.md").read_text()
    )


def test_an_unreleased_version_moves_when_a_fragment_asks_for_more(workspaces):
    root = workspaces.make(
        [("acme.core", "core", "1.0.1", [])], changelog_label="Unreleased"
    )
    ws = load_workspace(root)
    write_changeset(ws, ["acme.core"], ChangeKind.ADDED, "Add `x`.")
    apply_versions(plan_versions(ws, date=DATE))
    assert str(load_workspace(root).get("acme.core").version) == "1.1.0"
    text = (root / "packages/core/CHANGELOG.md").read_text()
    assert (
        "## [1.1.0] - 2030-05-06\n\n### Added\n\n- The first release.\n- Add `x`.\n"
        in text
    )
    assert "1.0.1" not in text


def test_unreleased_chooses_versions_without_dating_them(workspaces, cli):
    root = workspaces.make(
        [
            ("acme.core", "core", "1.4.0", []),
            ("acme.db", "db", "2.1.0", ["acme.core>=1.4.0,<2"]),
            ("acme.app", "app", "0.3.0", ["acme.db>=2.1.0", "acme.core>=1.4.0,<2"]),
        ],
        changelog_label="Unreleased",
    )
    ws = load_workspace(root)
    write_changeset(ws, ["acme.core"], ChangeKind.BREAKING, "Remove `y`.")
    result = cli("version", "--path", root, "--unreleased", "--no-lock")
    assert result.exit_code == 0, result.output
    after = load_workspace(root)
    # 1.4.0 was a minor bump: a breaking change moves it to 2.0.0
    assert str(after.get("acme.core").version) == "2.0.0"
    # 2.1.0 is unreleased and already a minor bump: raised floors don't move it
    assert str(after.get("acme.db").version) == "2.1.0"
    core_log = (root / "packages/core/CHANGELOG.md").read_text()
    assert (
        "## [2.0.0] - Unreleased\n\n### Added\n\n- The first release.\n\n" in core_log
    )
    assert "- **Breaking:** Remove `y`." in core_log
    db_log = (root / "packages/db/CHANGELOG.md").read_text()
    assert "## [2.1.0] - Unreleased" in db_log
    assert "Raised internal dependency floors: `acme.core>=2.0.0,<3`." in db_log
    assert [d.requirement for d in after.get("acme.app").dependencies] == [
        "acme.db>=2.1.0",
        "acme.core>=2.0.0,<3",
    ]
    # a second run has nothing to do: the pending sections stay as they are
    assert "Nothing to version" in cli("version", "--path", root, "--unreleased").output
    result = cli("version", "--path", root, "--unreleased", "--date", DATE)
    assert result.exit_code != 0


def test_nothing_to_version(workspace: Path, cli):
    result = cli("version", "--path", workspace)
    assert result.exit_code == 0
    assert "Nothing to version" in result.output


def test_dry_run_shows_the_diff_and_writes_nothing(workspace: Path, cli):
    write_changeset(load_workspace(workspace), ["acme.app"], ChangeKind.FIXED, "Fix.")
    before = snapshot(workspace)
    result = cli("version", "--path", workspace, "--dry-run", "--date", DATE)
    assert result.exit_code == 0, result.output
    assert snapshot(workspace) == before
    assert '+version = "0.3.1"' in result.output
    assert "+## [0.3.1] - 2030-05-06" in result.output
    assert "+++ /dev/null" in result.output  # the fragment would be deleted


def test_a_failed_write_leaves_every_file_as_it_was(workspace: Path, monkeypatch):
    ws = load_workspace(workspace)
    write_changeset(ws, ["acme.core"], ChangeKind.ADDED, "Add.")
    plan = plan_versions(ws, date=DATE)
    before = snapshot(workspace)
    calls = []
    real_replace = os.replace

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr("macrostrat.package_tools._files.os.replace", flaky_replace)
    with pytest.raises(VersioningError, match="nothing was changed"):
        apply_versions(plan)
    assert len(calls) == 3
    assert snapshot(workspace) == before  # including the fragment, no temp files left


def test_a_failed_lock_refresh_restores_every_file(workspace: Path, cli):
    # a dependency uv can't resolve offline: `uv lock` fails after the writes
    pyproject = workspace / "packages/app/pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            '  "acme.db>=2.1.0",', '  "acme.db>=2.1.0",\n  "surely-not-cached-pkg>=1",'
        )
    )
    write_changeset(load_workspace(workspace), ["acme.core"], ChangeKind.ADDED, "Add.")
    before = snapshot(workspace)
    result = cli("version", "--path", workspace)
    assert result.exit_code == 1
    assert "`uv lock` failed" in result.output
    assert snapshot(workspace) == before


def test_commit_stages_only_the_files_mono_changed(workspace: Path, git, cli):
    # mono 2.0 ran `git add .`, sweeping stray files into its commit.
    write_changeset(load_workspace(workspace), ["acme.db"], ChangeKind.FIXED, "Fix.")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "changeset")
    (workspace / "stray.txt").write_text("not mine\n")
    (workspace / "NOTES.md").write_text("staged, unrelated\n")
    git(workspace, "add", "NOTES.md")

    result = cli("version", "--path", workspace, "--commit", "--date", DATE)
    assert result.exit_code == 0, result.output

    committed = git(workspace, "show", "--name-only", "--format=", "HEAD").split()
    fragment = git(
        workspace, "show", "--name-only", "--format=", "HEAD~1", "--", ".changes"
    ).split()
    assert sorted(committed) == sorted(
        [
            "packages/db/pyproject.toml",
            "packages/db/CHANGELOG.md",
            "packages/app/pyproject.toml",
            "packages/app/CHANGELOG.md",
            "uv.lock",
            *fragment,
        ]
    )
    assert git(workspace, "log", "-1", "--format=%s") == "Version packages\n"
    status = git(workspace, "status", "--porcelain").splitlines()
    assert sorted(status) == ["?? stray.txt", "A  NOTES.md"]


def test_commit_refuses_files_that_already_have_staged_changes(
    workspace: Path, git, cli
):
    write_changeset(load_workspace(workspace), ["acme.db"], ChangeKind.FIXED, "Fix.")
    changelog = workspace / "packages/db/CHANGELOG.md"
    changelog.write_text(changelog.read_text() + "\nhand edit\n")
    git(workspace, "add", str(changelog))
    before = snapshot(workspace)
    result = cli("version", "--path", workspace, "--commit")
    assert result.exit_code == 1
    assert "already have staged changes" in result.output
    assert snapshot(workspace) == before


def test_a_failing_commit_restores_the_files(workspace: Path, git, cli, monkeypatch):
    write_changeset(load_workspace(workspace), ["acme.db"], ChangeKind.FIXED, "Fix.")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "changeset")
    hook = workspace / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'refused by hook' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = snapshot(workspace)
    result = cli("version", "--path", workspace, "--commit")
    assert result.exit_code == 1
    assert "git commit" in result.output
    assert "refused by hook" in result.output
    assert snapshot(workspace) == before
    assert git(workspace, "status", "--porcelain") == ""


def test_errors_name_the_failing_command(tmp_path: Path):
    from macrostrat.package_tools._process import run_command

    with pytest.raises(CommandError) as info:
        run_command(["git", "rev-parse", "--verify", "nope"], tmp_path)
    assert "`git rev-parse --verify nope` failed with exit status" in str(info.value)
    assert info.value.returncode not in (0, None)
    with pytest.raises(CommandError, match="could not be started"):
        run_command(["surely-not-a-program-xyz"], tmp_path)


def test_new_subsections_keep_the_order_of_those_already_there():
    from macrostrat.package_tools.changelog import update_changelog

    text = (
        "# Changelog\n\n## [1.0.0] - Unreleased\n\n### Added\n\n- a\n\n"
        "### Changed (security)\n\n- s\n\n### Deprecated\n\n- d\n"
    )
    new = update_changelog(
        text,
        "acme",
        current=Version("1.0.0"),
        new=Version("2.0.0"),
        entries=[("Changed", "c"), ("Fixed", "f"), ("Added", "b")],
        date="Unreleased",
    )
    headings = [line for line in new.splitlines() if line.startswith("###")]
    assert headings == [
        "### Added",
        "### Changed",
        "### Changed (security)",
        "### Deprecated",
        "### Fixed",
    ]
    assert "- a\n- b\n" in new
