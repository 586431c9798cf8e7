"""Server settings shared by the cluster backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TESTING_SETTINGS", "build_postgres_command", "render_setting"]

TESTING_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "checkpoint_completion_target": "0.9",
}
"""Settings that trade crash safety for speed; for throwaway test clusters only."""


def render_setting(value: Any) -> str:
    """Render a Python value as a PostgreSQL setting (``True`` → ``on``)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def build_postgres_command(settings: Mapping[str, Any] | None) -> list[str] | None:
    """Return ``["postgres", "-c", "key=value", ...]`` for ``settings``, or None if empty."""
    if not settings:
        return None
    command = ["postgres"]
    for key, value in settings.items():
        command += ["-c", f"{key}={render_setting(value)}"]
    return command
