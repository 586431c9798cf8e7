"""Lightweight step timers, e.g. for an HTTP `Server-Timing` header."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from time import perf_counter
from typing import Any, TypeVar

__all__ = ["CodeTimer", "ContextualTimer", "Timer", "Timing", "code_timer"]

_T = TypeVar("_T", bound="ContextualTimer")


@dataclass
class Timing:
    """One recorded step of a [`CodeTimer`][macrostrat.utils.timer.CodeTimer].

    All durations are in seconds.

    Attributes:
        name: The step name.
        delta: Time since the previous step.
        total: Time since the timer started.
        time: The `time.perf_counter()` value when the step was recorded.
    """

    name: str
    delta: float
    total: float
    time: float

    def model_dump(self) -> dict[str, Any]:
        """Return the fields as a dict (the pydantic v2 spelling)."""
        return dataclasses.asdict(self)

    def dict(self) -> dict[str, Any]:
        """Return the fields as a dict (the pydantic v1 spelling)."""
        return self.model_dump()


class CodeTimer:
    """Record named steps and how long each took.

    The timer starts when it is created, with a first step called `start`.
    `step(name)` records a step; `_add_step(name)` does the same and returns
    the new [`Timing`][macrostrat.utils.timer.Timing] (it is kept for the
    callers that use it, despite the underscore).

    Example:
        ```python
        timer = CodeTimer()
        load()
        timer.step("load")
        render()
        timer.step("render")
        response.headers["Server-Timing"] = timer.server_timings()
        ```

    Attributes:
        timings: The recorded steps, oldest first; the first is `start`.
    """

    timings: list[Timing]

    def __init__(self) -> None:
        self.timings = [Timing(name="start", delta=0.0, total=0.0, time=perf_counter())]
        self._end_time: float | None = None

    def _add_step(self, name: str) -> Timing:
        """Record a step now and return it.

        Args:
            name: The step name.

        Returns:
            The new step.
        """
        now = perf_counter()
        timing = Timing(
            name=name,
            delta=now - self.timings[-1].time,
            total=now - self.timings[0].time,
            time=now,
        )
        self.timings.append(timing)
        return timing

    def step(self, name: str) -> None:
        """Record a step now.

        Args:
            name: The step name, shown as the metric name in
                [`server_timings`][macrostrat.utils.timer.CodeTimer.server_timings]
                (so it should be an HTTP token: no spaces, commas or semicolons).
        """
        self._add_step(name)

    def server_timings(self) -> str:
        """Render the steps as the value of an HTTP `Server-Timing` header.

        Every step after `start` becomes `<name>;dur=<ms>`, followed by
        `total;dur=<ms>` (the time from start until the first call of this
        method after the last step), joined with `", "`. Durations are in
        milliseconds rounded to 0.1, e.g. `load;dur=10.2, render;dur=20.2,
        total;dur=30.6`.

        The method does not add steps: calling it again without new steps
        returns the same string.

        Returns:
            The header value.
        """
        if self._end_time is None or self._end_time < self.timings[-1].time:
            self._end_time = perf_counter()
        total = self._end_time - self.timings[0].time
        metrics = [f"{t.name};dur={_ms(t.delta)}" for t in self.timings[1:]]
        metrics.append(f"total;dur={_ms(total)}")
        return ", ".join(metrics)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


code_timer: ContextVar[CodeTimer | None] = ContextVar("code_timer", default=None)
"""The timer of the current context, set by
[`ContextualTimer.context`][macrostrat.utils.timer.ContextualTimer.context]."""


class ContextualTimer(CodeTimer):
    """A [`CodeTimer`][macrostrat.utils.timer.CodeTimer] that code deep in a
    call stack can reach through a context variable.

    Example:
        ```python
        timer = ContextualTimer()
        with timer.context():
            handle_request()  # may call ContextualTimer.add_step("query")
        header = timer.server_timings()
        ```
    """

    @classmethod
    def add_step(cls, name: str) -> Timing | None:
        """Record a step on the current context's timer, if there is one.

        Args:
            name: The step name.

        Returns:
            The new step, or `None` if no timer is active.
        """
        timer = code_timer.get()
        if timer is None:
            return None
        return timer._add_step(name)

    @contextmanager
    def context(self: _T) -> Iterator[_T]:
        """Make this timer the current context's timer for the block.

        The previous value of [`code_timer`][macrostrat.utils.timer.code_timer]
        is restored on exit, also on an exception.

        Yields:
            This timer.
        """
        token = code_timer.set(self)
        try:
            yield self
        finally:
            code_timer.reset(token)


Timer = ContextualTimer
"""Legacy name of [`ContextualTimer`][macrostrat.utils.timer.ContextualTimer]."""
