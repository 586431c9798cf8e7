"""Run commands, and ask `git` about the state of a working tree."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from typing import Any

from .exc import GitError

__all__ = [
    "cmd",
    "git_has_changes",
    "git_revision",
    "git_revision_info",
    "run",
    "split_args",
]

log = logging.getLogger(__name__)

_GIT_DESCRIBE = (
    "git",
    "describe",
    "--match=NOT-EVER-A-TAG",
    "--always",
    "--abbrev",
    "--dirty",
)


def split_args(*args: str | os.PathLike[str]) -> list[str]:
    """Turn command fragments into an argument list.

    String arguments are joined with spaces and split again with shell rules
    (`shlex.split`), so `split_args("docker compose", "ps --services")` gives
    `["docker", "compose", "ps", "--services"]` and quoting inside a string is
    honoured. Path-like arguments (e.g. `pathlib.Path`) are converted with
    `os.fspath` and kept as one argument each, even if they contain spaces.

    Args:
        *args: Command fragments.

    Returns:
        The argument list.

    Raises:
        TypeError: If an argument is neither a `str` nor an `os.PathLike`.
        ValueError: If the quoting in the strings is unbalanced.
    """
    result: list[str] = []
    pending: list[str] = []
    for arg in args:
        if isinstance(arg, str):
            pending.append(arg)
        elif isinstance(arg, os.PathLike):
            result.extend(shlex.split(" ".join(pending)))
            pending = []
            result.append(os.fspath(arg))
        else:
            raise TypeError(
                f"split_args(): arguments must be str or os.PathLike, "
                f"not {type(arg).__name__}"
            )
    result.extend(shlex.split(" ".join(pending)))
    return result


def _describe(args: tuple[Any, ...], shell: bool) -> str:
    """A readable command line for log messages."""
    if shell:
        return " ".join(str(arg) for arg in args)
    return shlex.join(str(arg) for arg in args)


def run(
    *args: str | os.PathLike[str],
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run a command with `subprocess.run`, logging it first.

    The arguments are passed to `subprocess.run` as they are (one argument
    each, no splitting). The command line is logged at DEBUG. Output is not
    captured and the exit status is not checked unless asked for.

    Args:
        *args: The program and its arguments.
        logger: Where to log the command. Defaults to this module's logger,
            `macrostrat.utils.shell`.
        **kwargs: Passed to `subprocess.run` (`cwd`, `env`, `check`,
            `capture_output`, `text`, `shell`, ...).

    Returns:
        The completed process.
    """
    (logger or log).debug("Running: %s", _describe(args, bool(kwargs.get("shell"))))
    return subprocess.run(args, **kwargs)


def cmd(
    *args: str | os.PathLike[str],
    collect_args: bool | None = None,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run a command given as shell-like fragments.

    Without `shell=True` the fragments go through
    [`split_args`][macrostrat.utils.shell.split_args], so
    `cmd("docker compose", "ps --services")` runs
    `docker compose ps --services`, and `cmd("cat", Path("my file"))` passes
    the path as one argument. With `shell=True` the arguments are passed on
    unchanged: the first one is the shell command line.

    The command is logged at DEBUG (see [`run`][macrostrat.utils.shell.run]).

    Args:
        *args: Command fragments.
        collect_args: Whether to pass the arguments through `split_args`.
            Defaults to `True` unless `shell=True` is given.
        check: If true, raise `subprocess.CalledProcessError` when the
            command exits with a non-zero status (as in `subprocess.run`).
        **kwargs: Passed to [`run`][macrostrat.utils.shell.run] and from
            there to `subprocess.run` (`cwd`, `env`, `capture_output`,
            `text`, `shell`, `logger`, ...).

    Returns:
        The completed process; check `returncode` unless `check=True`.

    Raises:
        subprocess.CalledProcessError: If `check` is true and the command fails.
        FileNotFoundError: If the program does not exist.
    """
    if collect_args is None:
        collect_args = not kwargs.get("shell", False)
    if collect_args:
        args = tuple(split_args(*args))
    return run(*args, check=check, **kwargs)


def git_revision_info(**kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run `git describe` for the current commit and return the completed process.

    The command is `git describe --match=NOT-EVER-A-TAG --always --abbrev
    --dirty`, which prints the abbreviated commit hash with a `-dirty` suffix
    when tracked files have changes. Nothing is captured unless you pass
    `capture_output=True`; most callers want
    [`git_revision`][macrostrat.utils.shell.git_revision] instead, which
    returns the string.

    Args:
        **kwargs: Passed to [`cmd`][macrostrat.utils.shell.cmd] (e.g. `cwd`,
            `capture_output=True`, `text=True`).

    Returns:
        The completed process.
    """
    return cmd(*_GIT_DESCRIBE, **kwargs)


def _git(path: str | os.PathLike[str] | None, *args: str) -> str:
    """Run `git` in `path` (default: the working directory); return its stdout."""
    where = os.fspath(path) if path is not None else os.getcwd()
    try:
        result = run("git", *args, cwd=where, capture_output=True, text=True)
    except FileNotFoundError as exc:
        if exc.filename != "git":
            raise
        raise GitError("git is not installed (no `git` program on PATH)") from exc
    if result.returncode != 0:
        stderr = result.stderr.strip()
        reason = (
            stderr.splitlines()[0] if stderr else f"exit status {result.returncode}"
        )
        raise GitError(
            f"`git {args[0]}` failed in {where}: {reason}", details=stderr or None
        )
    output: str = result.stdout
    return output


def git_revision(path: str | os.PathLike[str] | None = None) -> str:
    """Return the abbreviated hash of the checked-out commit, e.g. `ee26194-dirty`.

    The `-dirty` suffix is added when tracked files have uncommitted changes
    (untracked files do not count here; see
    [`git_has_changes`][macrostrat.utils.shell.git_has_changes]).

    Args:
        path: A directory inside the working tree. Defaults to the current
            working directory.

    Returns:
        The revision string.

    Raises:
        GitError: If `path` is not inside a git repository, the repository has
            no commits yet, or git is not installed.
    """
    return _git(path, *_GIT_DESCRIBE[1:]).strip()


def git_has_changes(path: str | os.PathLike[str] | None = None) -> bool:
    """Tell whether a git working tree has uncommitted changes.

    Staged and unstaged changes to tracked files count, and so do untracked
    files that are not ignored (`.gitignore` and friends are honoured).

    Args:
        path: A directory inside the working tree. Defaults to the current
            working directory.

    Returns:
        `True` if `git status` reports anything, else `False`.

    Raises:
        GitError: If `path` is not inside a git repository or git is not
            installed.
    """
    return bool(_git(path, "status", "--porcelain", "--untracked-files=normal").strip())
