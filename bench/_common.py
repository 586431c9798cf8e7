"""Helpers shared by the benchmark scripts: timing and a plain-text table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def measure(func: Callable[[], object], repeat: int) -> list[float]:
    """Run ``func`` ``repeat`` times and return each run's wall time in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def measure_interleaved(
    cases: list[tuple[str, Callable[[], object]]], repeat: int
) -> list[tuple[str, list[float]]]:
    """Time each case ``repeat`` times, one round of every case after another.

    Interleaving spreads any drift in machine load evenly over the cases.
    """
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(repeat):
        for name, func in cases:
            times[name] += measure(func, 1)
    return [(name, times[name]) for name, _ in cases]


def print_table(title: str, rows: list[tuple[str, list[float]]], baseline: str) -> None:
    """Print best/median per row and each row's median relative to ``baseline``."""
    base = statistics.median(dict(rows)[baseline])
    print(f"\n{title}")
    print(f"{'case':<44} {'best s':>9} {'median s':>9} {'x baseline':>11}")
    for name, times in rows:
        med = statistics.median(times)
        print(f"{name:<44} {min(times):>9.3f} {med:>9.3f} {med / base:>11.2f}")
