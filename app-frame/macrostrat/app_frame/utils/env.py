"""Reading booleans from environment variables, and dry-run mode."""

from __future__ import annotations

import os

__all__ = ["DRY_RUN_ENV", "get_env_boolean", "is_dry_run"]

DRY_RUN_ENV = "DRY_RUN"
"""The variable that turns on dry-run mode (`DRY_RUN=1`), like `--dry-run`."""

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def get_env_boolean(envvar: str, default: bool | None = None) -> bool | None:
    """Read a boolean from the environment variable `envvar`.

    `1`, `true`, `yes` and `on` mean `True`; `0`, `false`, `no` and `off`
    mean `False` (case-insensitive, surrounding spaces ignored). An unset
    variable or any other value gives `default`.

    Args:
        envvar: The variable name.
        default: What to return when the variable is unset or unrecognised.
    """
    value = os.environ.get(envvar)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def is_dry_run() -> bool:
    """Whether dry-run mode is on (`--dry-run`, or the `DRY_RUN` variable)."""
    return bool(get_env_boolean(DRY_RUN_ENV, False))
