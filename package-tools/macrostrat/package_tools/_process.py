"""Run `uv` and `git` with argument lists, checking every exit status."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from macrostrat.utils import run

from .errors import CommandError

__all__ = ["Command", "run_command"]

log = logging.getLogger("macrostrat.package_tools")


def run_command(
    argv: Sequence[str | os.PathLike[str]],
    cwd: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a command and return its output; raise if it fails.

    The command runs without a shell (each argument is passed as it is), with
    standard output and error captured together. Its output is logged at
    DEBUG.

    Args:
        argv: The program and its arguments.
        cwd: The directory to run it in.
        env: The environment; defaults to this process's environment.

    Returns:
        What the command printed.

    Raises:
        CommandError: If the command exits with a non-zero status or cannot be
            started (e.g. the program is not installed). The message names the
            command.
    """
    args = [os.fspath(arg) for arg in argv]
    try:
        result = run(
            *args,
            cwd=os.fspath(cwd),
            env=None if env is None else dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            logger=log,
        )
    except OSError as exc:
        raise CommandError(args, cwd, None, str(exc)) from exc
    output: str = result.stdout or ""
    if output.strip():
        log.debug("%s", output.rstrip())
    if result.returncode != 0:
        raise CommandError(args, cwd, result.returncode, output)
    return output


@dataclass(frozen=True)
class Command:
    """A command to run later, or to show in a dry run.

    Attributes:
        argv: The program and its arguments.
        cwd: The directory it runs in.
    """

    argv: tuple[str, ...]
    cwd: Path

    @classmethod
    def of(cls, *argv: str | os.PathLike[str], cwd: str | os.PathLike[str]) -> Command:
        """Make a command from arguments (path-like ones are converted to strings)."""
        return cls(tuple(os.fspath(arg) for arg in argv), Path(cwd))

    def __str__(self) -> str:
        return shlex.join(self.argv)

    def run(self, env: Mapping[str, str] | None = None) -> str:
        """Run the command; return its output.

        Raises:
            CommandError: If it exits with a non-zero status or can't be started.
        """
        return run_command(self.argv, self.cwd, env=env)
