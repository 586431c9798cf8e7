"""Progress of a byte stream: a Rich bar on a terminal, log lines otherwise.

`make_progress` picks the reporter: nothing when ``quiet``; a Rich progress
bar (bytes moved and rate) when standard error is a terminal; otherwise a log
line at INFO every `LOG_INTERVAL` seconds and one at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Protocol

__all__ = ["LOG_INTERVAL", "Progress", "format_bytes", "make_progress"]

log = logging.getLogger("macrostrat.database.transfer")

LOG_INTERVAL = 5.0
"""Seconds between progress log lines when not on a terminal."""


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units (``1.5 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Progress(Protocol):
    """Receives the number of bytes moved."""

    def advance(self, n: int) -> None:
        """Record ``n`` more bytes."""

    def close(self) -> None:
        """Stop reporting (prints or logs the final figure)."""


class NullProgress:
    """Reports nothing."""

    total = 0

    def advance(self, n: int) -> None:
        self.total += n

    def close(self) -> None:
        return None


class LogProgress:
    """Logs the bytes moved and the rate every ``interval`` seconds."""

    def __init__(self, description: str, interval: float = LOG_INTERVAL) -> None:
        self.description = description
        self.interval = interval
        self.total = 0
        self._start = time.monotonic()
        self._next = self._start + interval

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        return (
            f"{self.description}: {format_bytes(self.total)} "
            f"({format_bytes(self.total / elapsed)}/s)"
        )

    def advance(self, n: int) -> None:
        self.total += n
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            log.info("%s", self._line())

    def close(self) -> None:
        log.info("%s, done in %.1f s", self._line(), time.monotonic() - self._start)


class RichProgress:
    """A Rich progress bar on standard error: bytes, rate, elapsed time."""

    def __init__(self, description: str, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.total = 0
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=None)

    def advance(self, n: int) -> None:
        self.total += n
        self._bar.update(self._task, advance=n)

    def close(self) -> None:
        self._bar.stop()


def make_progress(description: str, *, quiet: bool = False) -> Progress:
    """The reporter for this process (see the module documentation).

    Parameters:
        description: what is moving (``"pg_dump mydb"``); never a URL.
        quiet: report nothing.
    """
    if quiet:
        return NullProgress()
    stream = sys.stderr
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        return RichProgress(description)
    return LogProgress(description)
