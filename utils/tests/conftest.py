"""Fixtures for the macrostrat.utils tests."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def logger_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A logger name unique to the test; the logger is reset afterwards."""
    name = f"macrostrat_utils_tests.{request.node.name}"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with its level and handlers restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Isolate git from the user's configuration and from enclosing repositories."""
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


def _git(repo: Path, *args: str) -> str:
    """Run git in `repo` for test setup, failing loudly."""
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.fixture
def git(git_env: None) -> Callable[..., str]:
    """`git(repo, *args)`: run git for test setup and return its output."""
    return _git


@pytest.fixture
def repo(tmp_path: Path, git: Callable[..., str]) -> Path:
    """A git repository with one commit (tracked `tracked.txt`, ignored `*.log`)."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "tracked.txt").write_text("one\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "tracked.txt", ".gitignore")
    git(path, "commit", "-q", "-m", "initial")
    return path
