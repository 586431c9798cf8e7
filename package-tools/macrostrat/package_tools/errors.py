"""The errors `macrostrat.package_tools` raises.

Every error is a [`PackageToolsError`][macrostrat.package_tools.errors.PackageToolsError],
which is a `macrostrat.utils.ApplicationError`: `str(error)` is a one-line
message and `error.details` (if any) a longer explanation, such as the output
of the command that failed. The `mono` CLI prints both and exits with status 1.

```
PackageToolsError (macrostrat.utils.ApplicationError)
├── WorkspaceError        the workspace or a package's pyproject.toml can't be used
├── ChangesetError        a change fragment is malformed or names an unknown package
├── VersioningError       version changes could not be applied (nothing was written)
├── CommandError          a subprocess (uv, git) exited with a non-zero status
├── IndexQueryError       the package index could not be asked (error or timeout)
├── PublishError          publishing was refused before anything was uploaded
└── CheckError            a check found problems (`problems` lists them)
    └── MetadataCheckError  built wheels lack internal dependency floors
```
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from macrostrat.utils import ApplicationError

__all__ = [
    "ChangesetError",
    "CheckError",
    "CommandError",
    "IndexQueryError",
    "MetadataCheckError",
    "PackageToolsError",
    "PublishError",
    "VersioningError",
    "WorkspaceError",
]


class PackageToolsError(ApplicationError):
    """Base class of every error raised by `macrostrat.package_tools`."""


class WorkspaceError(PackageToolsError):
    """The workspace can't be used as it is.

    Raised for a missing or invalid `pyproject.toml`, a package without a
    static `[project].version`, a dependency cycle between packages, or a
    package name that is not part of the workspace.
    """


class ChangesetError(PackageToolsError, ValueError):
    """A change fragment (`.changes/*.md`) is malformed or names an unknown package."""


class VersioningError(PackageToolsError):
    """Version changes could not be applied; the files were left as they were."""


class CommandError(PackageToolsError):
    """A command exited with a non-zero status, or could not be started.

    The message names the command and its exit status; `details` holds the
    end of its output.

    Args:
        argv: The command that was run.
        cwd: The directory it ran in.
        returncode: Its exit status, or `None` if it could not be started.
        output: What it printed (standard output and error), if captured.

    Attributes:
        argv: The command as a tuple of strings.
        cwd: The directory it ran in.
        returncode: The exit status, or `None`.
        output: The captured output (may be empty).
    """

    argv: tuple[str, ...]
    cwd: Path
    returncode: int | None
    output: str

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        cwd: str | os.PathLike[str],
        returncode: int | None,
        output: str = "",
    ) -> None:
        self.argv = tuple(os.fspath(arg) for arg in argv)
        self.cwd = Path(cwd)
        self.returncode = returncode
        self.output = output
        shown = shlex.join(self.argv)
        if returncode is None:
            message = f"`{shown}` could not be started (in {self.cwd})"
        else:
            message = f"`{shown}` failed with exit status {returncode} (in {self.cwd})"
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(message, details=tail or None)


class IndexQueryError(PackageToolsError):
    """The package index did not answer usefully (HTTP error, network error or timeout).

    A failed query never counts as "not published": publishing stops instead.

    Attributes:
        url: The URL that was asked.
    """

    url: str

    def __init__(self, message: str, url: str, details: str | None = None) -> None:
        super().__init__(message, details=details)
        self.url = url


class PublishError(PackageToolsError):
    """Publishing was refused before anything was uploaded.

    For example: uncommitted changes, a release tag that already points at
    another commit, or a publish URL without an index to check.
    """


class CheckError(PackageToolsError):
    """A check found problems.

    Args:
        message: A one-line summary.
        problems: One line per problem; also joined into `details`.

    Attributes:
        problems: The problems found.
    """

    problems: list[str]

    def __init__(self, message: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(message, details="\n".join(self.problems) or None)


class MetadataCheckError(CheckError):
    """A built wheel's METADATA lacks the expected internal dependency floors."""
