"""The few git queries `mono` needs (all through argument lists, never a shell)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from macrostrat.utils import run

from ._process import run_command

__all__ = ["head_commit", "is_repository", "tag_commit", "tags"]


def is_repository(root: Path) -> bool:
    """Whether `root` is inside a git working tree (False if git is missing)."""
    try:
        result = run(
            "git",
            "rev-parse",
            "--is-inside-work-tree",
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == "true"


def head_commit(root: Path) -> str:
    """The full hash of `HEAD`.

    Raises:
        CommandError: If there is no commit yet.
    """
    return run_command(["git", "rev-parse", "--verify", "HEAD^{commit}"], root).strip()


def tag_commit(root: Path, tag: str) -> str | None:
    """The commit a tag points at, or `None` if there is no such tag."""
    result = run(
        "git",
        "rev-parse",
        "--quiet",
        "--verify",
        f"refs/tags/{tag}^{{commit}}",
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def tags(root: Path) -> list[str]:
    """All tag names of the repository (empty outside a repository)."""
    if not is_repository(root):
        return []
    return run_command(["git", "tag", "--list"], root).split()
