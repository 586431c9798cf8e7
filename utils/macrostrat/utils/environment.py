"""Temporarily override environment variables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["override_environment"]


def _as_env_value(key: str, value: object) -> str | None:
    """Validate one `override_environment` value and convert it to `str` or `None`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        converted = os.fspath(value)
        if isinstance(converted, str):
            return converted
    raise TypeError(
        f"override_environment(): the value for {key!r} must be a str, "
        f"an os.PathLike or None, not {type(value).__name__}"
    )


@contextmanager
def override_environment(**kwargs: str | os.PathLike[str] | None) -> Iterator[None]:
    """Temporarily set or unset environment variables.

    Each keyword names a variable. A `str` or path-like value sets it; `None`
    removes it. All values are validated before anything is changed. On exit
    (also on an exception) exactly the named variables are put back as they
    were: set to their old value, or removed if they were unset. Any other
    change made to `os.environ` inside the block is kept.

    `os.environ` is process-wide state, so this is not safe to use from
    several threads at once.

    Args:
        **kwargs: Variable names and their temporary values.

    Raises:
        TypeError: If a value is not a `str`, an `os.PathLike` of `str`, or
            `None`. The environment is left untouched.

    Example:
        ```python
        with override_environment(PGHOST="localhost", PGPASSWORD=None):
            ...
        ```
    """
    updates = {key: _as_env_value(key, value) for key, value in kwargs.items()}
    saved = {key: os.environ.get(key) for key in updates}
    try:
        for key, value in updates.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
