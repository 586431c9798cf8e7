from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from macrostrat.utils import (
    ApplicationError,
    BaseError,
    GitError,
    git_has_changes,
    git_revision,
    git_revision_info,
    working_directory,
)

GitRunner = Callable[..., str]
HASH = re.compile(r"^[0-9a-f]{7,}$")


def test_clean_repository_has_no_changes(repo: Path):
    assert git_has_changes(repo) is False


def test_untracked_file_is_a_change(repo: Path):
    (repo / "new.txt").write_text("new")
    assert git_has_changes(repo) is True


def test_ignored_file_is_not_a_change(repo: Path):
    (repo / "debug.log").write_text("noise")
    assert git_has_changes(repo) is False


def test_modified_tracked_file_is_a_change(repo: Path):
    (repo / "tracked.txt").write_text("two\n")
    assert git_has_changes(repo) is True


def test_staged_change_is_a_change(repo: Path, git: GitRunner):
    (repo / "tracked.txt").write_text("two\n")
    git(repo, "add", "tracked.txt")
    assert git_has_changes(repo) is True


def test_repository_without_commits(tmp_path: Path, git: GitRunner):
    git(tmp_path, "init", "-q")
    assert git_has_changes(tmp_path) is False
    (tmp_path / "file").write_text("x")
    assert git_has_changes(tmp_path) is True
    with pytest.raises(GitError):
        git_revision(tmp_path)


def test_git_has_changes_defaults_to_the_working_directory(repo: Path):
    (repo / "new.txt").write_text("new")
    with working_directory(repo):
        assert git_has_changes() is True


def test_subdirectory_of_a_repository(repo: Path):
    sub = repo / "sub"
    sub.mkdir()
    assert git_has_changes(sub) is False  # an empty directory is not tracked
    (sub / "file").write_text("x")
    assert git_has_changes(sub) is True
    assert HASH.match(git_revision(sub))


def test_outside_a_repository_raises(tmp_path: Path, git_env: None):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not a git repository") as info:
        git_has_changes(plain)
    assert str(plain) in info.value.message
    assert info.value.details
    assert isinstance(info.value, ApplicationError)
    assert isinstance(info.value, BaseError)
    with pytest.raises(GitError, match="not a git repository"):
        git_revision(plain)


def test_missing_git_raises_git_error(repo: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(repo / "no-bin"))
    with pytest.raises(GitError, match="not installed"):
        git_has_changes(repo)


def test_missing_directory_is_not_reported_as_missing_git(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        git_has_changes(tmp_path / "missing")


def test_git_revision(repo: Path, git: GitRunner):
    head = git(repo, "rev-parse", "HEAD").strip()
    revision = git_revision(repo)
    assert HASH.match(revision)
    assert head.startswith(revision)


def test_git_revision_dirty(repo: Path):
    (repo / "tracked.txt").write_text("two\n")
    revision = git_revision(repo)
    assert revision.endswith("-dirty")
    assert HASH.match(revision.removesuffix("-dirty"))


def test_git_revision_ignores_tags(repo: Path, git: GitRunner):
    git(repo, "tag", "v1.0")
    assert HASH.match(git_revision(repo))


def test_git_revision_info_returns_the_completed_process(repo: Path):
    result = git_revision_info(cwd=repo, capture_output=True, text=True)
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0
    assert result.stdout.strip() == git_revision(repo)
    assert result.args[:2] == ("git", "describe")
