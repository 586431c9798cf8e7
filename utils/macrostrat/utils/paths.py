"""Path helpers: paths relative to a module, and a temporary working directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["relative_path", "working_directory"]


def relative_path(base: str | os.PathLike[str], *parts: str | os.PathLike[str]) -> Path:
    """Build a path relative to a file or directory.

    Typically called as `relative_path(__file__, "fixtures", "data.sql")` to
    find files that ship next to a module.

    If `base` is an existing directory, `parts` are joined onto it. Otherwise
    `base` is taken to be a file (whether or not it exists) and `parts` are
    joined onto its parent directory. The result is not resolved or checked
    for existence.

    Args:
        base: A file (usually `__file__`) or a directory.
        *parts: Path segments to append.

    Returns:
        The joined path.
    """
    directory = Path(base)
    if not directory.is_dir():
        directory = directory.parent
    return directory.joinpath(*parts)


@contextmanager
def working_directory(path: str | os.PathLike[str]) -> Iterator[None]:
    """Temporarily change the current working directory.

    The previous working directory is restored when the block exits, also
    when it exits with an exception. The working directory is process-wide
    state, so this is not safe to use from several threads at once.

    Args:
        path: The directory to change to.

    Raises:
        OSError: If `path` does not exist or is not a directory (raised on
            entry; nothing is changed).
    """
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
