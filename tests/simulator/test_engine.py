"""The discrete-event core: clock, scheduler ordering, cancellation, seed derivation."""

from __future__ import annotations

import datetime as dt

import pytest

from atomic_orders.fsm.clock import Clock
from atomic_orders.simulator.broker.engine import Scheduler, VirtualClock, derive_seed, make_rng

from ._helpers import utc

OPEN = utc(2026, 1, 5, 14, 30)


def test_virtual_clock_is_a_clock_and_converts_seconds() -> None:
    clock = VirtualClock(OPEN)
    as_protocol: Clock = clock
    assert as_protocol.now() == OPEN
    assert clock.now().tzinfo is not None
    clock.advance_to(90.5)
    assert clock.seconds == 90.5
    assert clock.now() == OPEN + dt.timedelta(seconds=90.5)
    assert clock.to_seconds(OPEN + dt.timedelta(seconds=12)) == 12.0
    assert clock.to_datetime(3600) == OPEN + dt.timedelta(hours=1)


def test_virtual_clock_refuses_naive_open_and_going_backwards() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(dt.datetime(2026, 1, 5, 14, 30))
    clock = VirtualClock(OPEN)
    clock.advance_to(10)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance_to(5)
    assert clock.seconds == 10


def test_scheduler_runs_in_time_then_insertion_order() -> None:
    sched = Scheduler(VirtualClock(OPEN))
    seen: list[tuple[str, float]] = []

    def note(name: str) -> None:
        seen.append((name, sched.clock.seconds))

    sched.schedule(5.0, note, "c")
    sched.schedule(1.0, note, "a")
    sched.schedule(5.0, note, "d")  # same time as "c": runs after it
    sched.schedule(2.0, note, "b")
    assert sched.next_time() == 1.0
    ran = sched.run_until(4.0)
    assert ran == 2
    assert seen == [("a", 1.0), ("b", 2.0)]
    assert sched.clock.seconds == 4.0
    sched.run_until(10.0)
    assert [n for n, _ in seen] == ["a", "b", "c", "d"]
    assert seen[2][1] == 5.0
    assert sched.next_time() is None


def test_cancelled_events_do_not_run_and_past_times_clamp_to_now() -> None:
    sched = Scheduler(VirtualClock(OPEN))
    seen: list[str] = []
    handle = sched.schedule(3.0, seen.append, "cancelled")
    sched.schedule(4.0, seen.append, "kept")
    handle.cancel()
    assert not handle.active
    assert sched.next_time() == 4.0
    sched.run_until(5.0)
    assert seen == ["kept"]
    late = sched.schedule(1.0, seen.append, "late")  # in the past: runs at the current time
    assert late.time == 5.0
    sched.run_until(5.0)
    assert seen == ["kept", "late"]


def test_callbacks_may_schedule_more_work_at_the_same_instant() -> None:
    sched = Scheduler(VirtualClock(OPEN))
    seen: list[str] = []

    def first() -> None:
        seen.append("first")
        sched.schedule_in(0.0, seen.append, "chained")

    sched.schedule(1.0, first)
    sched.run_until(1.0)
    assert seen == ["first", "chained"]


def test_run_until_in_the_past_keeps_the_clock() -> None:
    sched = Scheduler(VirtualClock(OPEN))
    sched.run_until(100.0)
    sched.run_until(50.0)
    assert sched.clock.seconds == 100.0


def test_derived_seeds_are_stable_and_independent() -> None:
    # A fixed value: the derivation must not depend on the process (no salted hash()).
    assert derive_seed(1, "market.path") == derive_seed(1, "market.path")
    assert derive_seed(1, "market.path") == int.from_bytes(
        __import__("hashlib").sha256(b"1:market.path").digest()[:8], "big"
    )
    assert derive_seed(1, "a") != derive_seed(1, "b")
    assert derive_seed(1, "a") != derive_seed(2, "a")
    assert make_rng(7, "x").random() == make_rng(7, "x").random()
