from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from macrostrat.utils import CodeTimer, ContextualTimer, Timer, Timing
from macrostrat.utils import timer as timer_module
from macrostrat.utils.timer import code_timer


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """A fake `perf_counter`; call the fixture to set the time (seconds)."""
    now = [100.0]
    monkeypatch.setattr(timer_module, "perf_counter", lambda: now[0])

    def set_time(seconds: float) -> None:
        now[0] = 100.0 + seconds

    return set_time


# Timing


def test_timing_is_a_dataclass_with_dict_methods():
    timing = Timing(name="load", delta=0.5, total=1.5, time=10.0)
    expected = {"name": "load", "delta": 0.5, "total": 1.5, "time": 10.0}
    assert dataclasses.is_dataclass(timing)
    assert timing.model_dump() == expected
    assert timing.dict() == expected
    assert timing == Timing(**expected)


# CodeTimer


def test_timer_starts_with_a_start_step(clock):
    timer = CodeTimer()
    assert timer.timings == [Timing(name="start", delta=0.0, total=0.0, time=100.0)]


def test_steps_record_delta_and_total(clock):
    timer = CodeTimer()
    clock(0.25)
    assert timer.step("a") is None
    clock(1.0)
    step = timer._add_step("b")
    assert step == Timing(name="b", delta=0.75, total=1.0, time=101.0)
    assert [t.name for t in timer.timings] == ["start", "a", "b"]
    assert timer.timings[-1] is step


def test_timings_are_not_shared_between_instances(clock):
    first, second = CodeTimer(), CodeTimer()
    first.step("only-first")
    assert [t.name for t in second.timings] == ["start"]
    assert not isinstance(getattr(CodeTimer, "timings", None), list)


def test_server_timings_format(clock):
    timer = CodeTimer()
    clock(0.0102)
    timer.step("a")
    clock(0.0304)
    timer.step("b")
    clock(0.0306)
    assert timer.server_timings() == "a;dur=10.2, b;dur=20.2, total;dur=30.6"


def test_server_timings_is_idempotent(clock):
    timer = CodeTimer()
    clock(0.0102)
    timer.step("a")
    clock(0.0306)
    first = timer.server_timings()
    clock(5.0)
    assert timer.server_timings() == first == "a;dur=10.2, total;dur=30.6"
    assert [t.name for t in timer.timings] == ["start", "a"]


def test_server_timings_after_more_steps(clock):
    timer = CodeTimer()
    clock(0.001)
    timer.step("a")
    assert timer.server_timings() == "a;dur=1.0, total;dur=1.0"
    clock(0.003)
    timer.step("b")
    clock(0.004)
    assert timer.server_timings() == "a;dur=1.0, b;dur=2.0, total;dur=4.0"


def test_server_timings_without_steps(clock):
    timer = CodeTimer()
    clock(0.0015)
    assert timer.server_timings() == "total;dur=1.5"


def test_server_timings_with_the_real_clock():
    timer = CodeTimer()
    timer.step("a")
    name, _, duration = timer.server_timings().partition(", ")[0].partition(";dur=")
    assert name == "a"
    assert float(duration) >= 0


# ContextualTimer


def test_timer_is_the_legacy_alias():
    assert Timer is ContextualTimer
    assert issubclass(ContextualTimer, CodeTimer)


def test_add_step_without_a_timer_does_nothing():
    assert code_timer.get() is None
    assert ContextualTimer.add_step("nothing") is None


def test_context_sets_and_resets_the_context_variable(clock):
    timer = ContextualTimer()
    with timer.context() as active:
        assert active is timer
        assert code_timer.get() is timer
        clock(0.5)
        step = ContextualTimer.add_step("query")
    assert code_timer.get() is None
    assert step == Timing(name="query", delta=0.5, total=0.5, time=100.5)
    assert timer.timings[-1] is step
    assert ContextualTimer.add_step("after") is None
    assert [t.name for t in timer.timings] == ["start", "query"]


def test_contexts_nest_and_reset_on_exceptions():
    outer, inner = ContextualTimer(), ContextualTimer()

    def fail_inside_inner() -> None:
        with inner.context():
            Timer.add_step("inner")
            raise RuntimeError

    with outer.context():
        with pytest.raises(RuntimeError):
            fail_inside_inner()
        assert code_timer.get() is outer
        Timer.add_step("outer")
    assert [t.name for t in inner.timings] == ["start", "inner"]
    assert [t.name for t in outer.timings] == ["start", "outer"]


def test_context_is_per_task():
    async def handle(name: str) -> list[str]:
        timer = ContextualTimer()
        with timer.context():
            await asyncio.sleep(0)
            ContextualTimer.add_step(name)
            await asyncio.sleep(0)
        return [t.name for t in timer.timings]

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(handle("a"), handle("b")))

    assert asyncio.run(main()) == [["start", "a"], ["start", "b"]]


def test_add_step_works_on_a_plain_code_timer_in_the_variable():
    timer = CodeTimer()
    token = code_timer.set(timer)
    try:
        ContextualTimer.add_step("x")
    finally:
        code_timer.reset(token)
    assert [t.name for t in timer.timings] == ["start", "x"]
