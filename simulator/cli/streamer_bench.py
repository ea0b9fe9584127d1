"""Bench figures of the TastyTrade account streamer against the local emulator (issue 13).

* ``reject_to_cancel_*``: the reaction time from a broker reject reaching the emulator to our
  cancel arriving there, streamer on vs polling only. Each group is a legged iron condor whose long
  call the broker rejects (a :class:`~atomic_orders.simulator.broker.script.BrokerScript` rule)
  while the long put rests: the executor rolls back by cancelling the long put. Measured at the
  emulator: the moment the order turned ``Rejected`` (an ``advance_to``) to the first ``DELETE`` of
  that group's other leg. Two clocks: ``virtual_ms`` (the session's clock: how long the broker
  waits for us; a poll every ``fast_interval`` = 1 s puts it between 0 and 1 s) and ``wall_ms``
  (this machine's time for the same span: socket, parsing, the executor's step). p50 and p99 over
  the groups, one group at a time.
* ``rest_requests_per_tick_{1,10,100}_streamer_{on,off}``: REST requests per executor tick (one
  ``poll_events`` per virtual second, 30 ticks) with 1, 10 and 100 groups working (resting, never
  filling): polling sends the live-list request every tick; with the streamer the poll is a 30 s
  watchdog, so most ticks send none.

Timings are wall time on this machine (other processes' load included); nothing is asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript, OrderMatch, Reject, Rest, Rule
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.server import TastytradeEmulator
from atomic_orders.simulator.emulator.session import EmulatorDriver

__all__ = ["streamer_figures"]


class _Clocked(TastytradeEmulator):
    """The emulator, noting when each DELETE arrives (virtual and wall seconds)."""

    deletes: list[tuple[float, float]]

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> Any:
        if method == "DELETE":
            self.deletes.append((self.simulator.clock.seconds, time.perf_counter()))
        return super().dispatch(method, target, headers, raw)


def percentiles(values: list[float], digits: int = 3) -> dict[str, float | None]:
    """``{"p50", "p99", "n"}`` of ``values`` (nearest-rank p99), rounded to ``digits``; None when empty."""
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), digits), "p99": round(p99, digits), "n": len(ordered)}


def _driver(streamer: bool, script: BrokerScript | None = None, profile: ChaosProfile | None = None,
            seed: int = 3) -> tuple[EmulatorDriver, _Clocked]:
    broker = BrokerSimulator(seed, profile or ChaosProfile(), script=script)
    driver = EmulatorDriver(broker, streamer=streamer)
    # swap in the noting emulator class (same object, same state): dispatch is the only change
    emulator = driver.emulator
    emulator.__class__ = _Clocked
    assert isinstance(emulator, _Clocked)
    emulator.deletes = []
    return driver, emulator


def reject_reaction(groups: int, streamer: bool) -> dict[str, Any]:
    """Reject -> cancel reaction over ``groups`` legged condors (see the module docstring)."""
    probe = BrokerSimulator(3, ChaosProfile())
    roles = probe.market.strikes_for_iron_condor(0.0, probe.market.default_expiry, 10, 60.0)
    short_call, long_call, short_put, long_put = roles
    script = BrokerScript([Rule(OrderMatch(symbol=long_call, combo=False), Reject("rejected by the exchange"))],
                          default=Rest())
    driver, emulator = _driver(streamer, script)
    clock = driver.broker.clock
    executor = AtomicOrderExecutor(driver.backend, ExecutionPolicy())
    virtual_ms: list[float] = []
    wall_ms: list[float] = []
    seen_rejects: set[int] = set()
    try:
        for g in range(groups):
            emulator.deletes.clear()
            rejected_at: tuple[float, float] | None = None
            group = executor.execute_iron_condor(short_call=short_call, long_call=long_call, short_put=short_put,
                                                 long_put=long_put, quantity=1, mode=ExecutionMode.LEGGED,
                                                 group_id=f"rx{g}")
            start = clock.seconds

            def advance(when: Any, start: float = start) -> bool:
                nonlocal rejected_at
                candidates = [driver.broker.next_event_time(), clock.to_seconds(driver.backend.next_poll_time())]
                if when is not None:
                    candidates.append(clock.to_seconds(when))
                t = max(min(c for c in candidates if c is not None), clock.seconds)
                if t - start > 600:
                    return False
                emulator.advance_to(t)
                wall = time.perf_counter()
                if rejected_at is None:
                    with emulator.lock:
                        new = [oid for oid, o in emulator.account.orders.items()
                               if o.status == "Rejected" and oid not in seen_rejects]
                    if new:
                        seen_rejects.update(new)
                        rejected_at = (t, wall)
                driver.sync_streamer()
                return True

            executor.run_until_settled(advance)
            if rejected_at is not None and emulator.deletes:
                t_del, w_del = emulator.deletes[0]
                virtual_ms.append((t_del - rejected_at[0]) * 1000)
                wall_ms.append((w_del - rejected_at[1]) * 1000)
            if group.state not in ("rolled_back", "failed", "committed"):
                break
    finally:
        driver.close()
    return {"virtual_ms": percentiles(virtual_ms), "wall_ms": percentiles(wall_ms)}


def requests_per_tick(open_groups: int, streamer: bool, ticks: int = 30) -> float:
    """REST requests per executor tick with ``open_groups`` resting one-leg orders (see the docstring)."""
    profile = attrs.evolve(ChaosProfile(), limit_fill_rate=0.0)
    driver, _emulator = _driver(streamer, profile=profile)
    try:
        m = driver.broker.market
        atm = int(m.spot(0.0) // 5 * 5)
        for i in range(open_groups):
            symbol = m.symbol(m.default_expiry, "C", atm + 100 + 5 * (i % 40))
            driver.backend.submit(OrderRequest(
                order_ref=f"rt{i}-e", group_id=f"rt{i}", purpose=Purpose.ENTRY, legs=(Leg(symbol, Side.BUY),),
                quantity=1, order_type=OrderType.LIMIT, limit_price=Decimal("0.05"),
                time_in_force=TimeInForce.DAY))
        driver.advance_to(driver.broker.clock.seconds + 1.0)
        driver.backend.poll_events()
        before = driver.client.requests_sent
        for _ in range(ticks):
            driver.advance_to(driver.broker.clock.seconds + 1.0)
            driver.backend.poll_events()
        return round((driver.client.requests_sent - before) / ticks, 3)
    finally:
        driver.close()


def streamer_figures(quick: bool = False) -> dict[str, Any]:
    """Every figure of the module docstring, as bench JSON keys."""
    groups = 20 if quick else 200
    out: dict[str, Any] = {}
    for label, on in (("streamer", True), ("polling", False)):
        r = reject_reaction(groups, on)
        out[f"reject_to_cancel_{label}"] = r
        out[f"reject_to_cancel_virtual_ms_p50_{label}"] = r["virtual_ms"]["p50"]
        out[f"reject_to_cancel_virtual_ms_p99_{label}"] = r["virtual_ms"]["p99"]
        out[f"reject_to_cancel_wall_ms_p50_{label}"] = r["wall_ms"]["p50"]
        out[f"reject_to_cancel_wall_ms_p99_{label}"] = r["wall_ms"]["p99"]
    for n in (1, 10, 100):
        for label, on in (("on", True), ("off", False)):
            out[f"rest_requests_per_tick_{n}_streamer_{label}"] = requests_per_tick(n, on, ticks=30)
    return out
