"""Bench figures of a whole executor tick over the TastyTrade emulator, quotes included (issue 13).

``executor_requests_per_tick_{1,10,100}_streamer_{on,off}``: REST requests the emulator receives
per executor tick (one virtual second: ``process_events`` then ``on_timer``, as the live loop
runs them) while 1, 10 and 100 iron condors are being worked: the order list polls, the
:class:`~atomic_orders.backends.tastytrade.quotes.TastytradeQuoteSource` requests
(``GET /market-data/by-type``, batched per tick) and the replacements of each repricing step
(every ``step_seconds`` = 5 s), averaged over ``ticks`` ticks after the entries are placed.
``..._by_route``: the same split per route; ``..._open``: groups still working at the end
(resting limit orders never fill here: ``limit_fill_rate=0``; a step that reaches the natural
price fills and ends its group). :mod:`.streamer_bench` measures the backend's polls alone; this
is what a live loop's tick costs with everything on.

Counts, not timings: nothing depends on this machine's speed except the streamer's socket (the
driver waits for it before each step). Nothing is asserted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.session import EmulatorDriver

__all__ = ["executor_tick_figures", "executor_tick_requests"]


def executor_tick_requests(open_groups: int, streamer: bool, ticks: int = 30, seed: int = 5) -> dict[str, Any]:
    """Requests per executor tick with ``open_groups`` condors worked (see the module docstring)."""
    profile = attrs.evolve(ChaosProfile(), limit_fill_rate=0.0)
    driver = EmulatorDriver(BrokerSimulator(seed, profile), streamer=streamer)
    try:
        market = driver.broker.market
        executor = AtomicOrderExecutor(driver.backend, ExecutionPolicy(deadline_seconds=3600.0))
        now = driver.broker.clock.seconds
        for i in range(open_groups):
            sc, lc, sp, lp = market.strikes_for_iron_condor(now, market.default_expiry, 10, 30.0 + 5 * (i % 20))
            executor.execute_iron_condor(short_call=sc, long_call=lc, short_put=sp, long_put=lp, quantity=1)

        def tick() -> None:
            driver.advance_to(driver.broker.clock.seconds + 1.0)
            executor.process_events()
            executor.on_timer()

        for _ in range(5):  # acknowledgements in, the first pricing step behind
            tick()
        emulator = driver.emulator
        before = Counter(emulator.request_counts())
        for _ in range(ticks):
            tick()
        after = Counter(emulator.request_counts())
        after.subtract(before)
        routes = {k: round(v / ticks, 3) for k, v in sorted(after.items()) if v}
        return {"per_tick": round(sum(after.values()) / ticks, 3), "by_route": routes,
                "open": len(executor.open_groups()), "ticks": ticks}
    finally:
        driver.close()


def executor_tick_figures(quick: bool = False) -> dict[str, Any]:
    """Every figure of the module docstring, as bench JSON keys."""
    out: dict[str, Any] = {}
    for n in (1, 10, 100):
        for label, on in (("on", True), ("off", False)):
            r = executor_tick_requests(n, on, ticks=10 if quick else 30)
            key = f"executor_requests_per_tick_{n}_streamer_{label}"
            out[key] = r["per_tick"]
            out[f"{key}_by_route"] = r["by_route"]
            out[f"{key}_open"] = r["open"]
    return out
