"""Server settings shared by the cluster backends."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

__all__ = [
    "REPLICATION_SETTINGS",
    "TESTING_SETTINGS",
    "build_postgres_command",
    "render_setting",
]

TESTING_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_completion_target": "0.9",
}
"""Settings that trade crash safety for speed; for throwaway test clusters only."""

REPLICATION_SETTINGS: dict[str, str] = {
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    "wal_keep_size": "64MB",
}
"""Settings a primary needs to feed standbys (they override the testing ones)."""


def render_setting(value: Any) -> str:
    """Render a Python value as a PostgreSQL setting (``True`` → ``on``)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


class _Unset:
    def __repr__(self) -> str:
        return "<required>"


_UNSET: Any = _Unset()


def build_postgres_command(
    settings: Mapping[str, Any] | None = _UNSET,
    *,
    pg_config: Mapping[str, Any] | None = _UNSET,
) -> list[str] | None:
    """Return ``["postgres", "-c", "key=value", ...]`` for ``settings``, or None if empty.

    Parameters:
        settings: setting name → value (`render_setting` renders it).
        pg_config: upstream's name for ``settings`` (deprecated).
    """
    if pg_config is not _UNSET:
        if settings is not _UNSET:
            raise TypeError(
                "build_postgres_command() got values for both 'settings' and its "
                "old name 'pg_config'"
            )
        warnings.warn(
            "build_postgres_command(pg_config=...) is deprecated; use settings=...",
            DeprecationWarning,
            stacklevel=2,
        )
        settings = pg_config
    if settings is _UNSET:
        raise TypeError("build_postgres_command() missing argument 'settings'")
    if not settings:
        return None
    command = ["postgres"]
    for key, value in settings.items():
        command += ["-c", f"{key}={render_setting(value)}"]
    return command
