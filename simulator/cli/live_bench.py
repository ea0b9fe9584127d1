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

``live_reject_to_cancel_wall_ms_{p50,p99}_{streamer,polling}``: the same reaction as
:mod:`.streamer_bench` measures (a broker reject reaching the emulator -> our cancel of the
group's resting leg arriving there), but through the live loop on the wall clock
(:class:`~atomic_orders.backends.tastytrade.live.LiveSession` sleeping between turns, woken by a
push; an emulator whose virtual time follows the wall clock, moved every 2 ms). Wall
milliseconds on this machine, load included: polling waits for the next poll (``fast_interval``
1 s), the streamer for the push and one turn.
"""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.live import LiveSession, LiveSettings
from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource
from atomic_orders.backends.tastytrade.streamer import AccountStreamer
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.journal import Journal
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript, OrderMatch, Reject, Rest, Rule
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.cli.streamer_bench import percentiles
from atomic_orders.simulator.emulator.server import TastytradeEmulator
from atomic_orders.simulator.emulator.session import EmulatorDriver

__all__ = ["executor_tick_figures", "executor_tick_requests", "live_reaction_figures", "live_reject_reaction"]


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


class _Noting(TastytradeEmulator):
    """The emulator, noting the wall time of each DELETE."""

    deletes: list[float]

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> Any:
        if method == "DELETE":
            self.deletes.append(time.perf_counter())
        return super().dispatch(method, target, headers, raw)


def live_reject_reaction(groups: int, streamer: bool, seed: int = 3) -> dict[str, Any]:
    """Reject -> cancel in wall ms through the live loop, one legged condor at a time (module docstring)."""
    opens = dt.datetime.now(dt.UTC).replace(microsecond=0)
    probe = BrokerSimulator(seed, ChaosProfile(), session_open=opens)
    expiry = probe.market.default_expiry
    short_call, long_call, short_put, long_put = probe.market.strikes_for_iron_condor(0.0, expiry, 10, 60.0)
    script = BrokerScript([Rule(OrderMatch(symbol=long_call, combo=False), Reject("rejected by the exchange"))],
                          default=Rest())
    sim = BrokerSimulator(seed, ChaosProfile(), session_open=opens, script=script)
    emulator = TastytradeEmulator(sim)
    emulator.__class__ = _Noting  # the same object; dispatch notes DELETEs
    assert isinstance(emulator, _Noting)
    emulator.deletes = []
    emulator.start()
    rejects: list[float] = []
    seen: set[int] = set()
    stop = threading.Event()

    def tick() -> None:  # virtual time follows the wall clock; note when an order turns Rejected
        while not stop.wait(0.002):
            emulator.advance_to((dt.datetime.now(dt.UTC) - opens).total_seconds())
            with emulator.lock:
                new = [oid for oid, o in emulator.account.orders.items() if o.status == "Rejected" and oid not in seen]
            if new:
                seen.update(new)
                rejects.append(time.perf_counter())

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    config = TastytradeConfig(emulator.account_number, emulator.url, streamer_url=emulator.streamer_url,
                              backoff_base=0.01, backoff_max=0.05)
    client = TastytradeApiClient(config, emulator.credentials())
    feed = None
    if streamer:
        feed = AccountStreamer(config.streamer_url, config.account_number, client.tokens.authorization,
                               on_refused=client.tokens.invalidate).start()
        feed.wait_connected(10)
    backend = TastytradeBackend(client, streamer=feed)
    backend.quote_source = TastytradeQuoteSource(client, backend.clock, symbols=backend.open_symbols)
    placed: list[int] = []
    marks: list[tuple[int, int]] = []  # (rejects, deletes) seen when each group was placed

    def strategy(executor: AtomicOrderExecutor, _now: dt.datetime) -> None:
        if executor.open_groups():
            return
        if len(placed) >= groups:
            session.request_stop("every group placed")
            return
        placed.append(1)
        marks.append((len(rejects), len(emulator.deletes)))
        executor.execute_iron_condor(short_call=short_call, long_call=long_call, short_put=short_put,
                                     long_put=long_put, quantity=1, mode=ExecutionMode.LEGGED)

    with tempfile.TemporaryDirectory() as folder:
        session = LiveSession(backend, Journal(Path(folder) / "bench.journal", sync="normal"), strategy=strategy,
                              settings=LiveSettings(grace=30.0, max_sleep=1.0))
        try:
            result = session.run(duration=groups * 10.0)
        finally:
            session.close()
            stop.set()
            ticker.join(timeout=5)
            emulator.stop()
    marks.append((len(rejects), len(emulator.deletes)))
    wall_ms = []
    for (r0, d0), (r1, d1) in itertools.pairwise(marks):
        if r1 > r0 and d1 > d0:  # this group's first reject and its first cancel
            wall_ms.append((emulator.deletes[d0] - rejects[r0]) * 1000)
    return {"wall_ms": percentiles(wall_ms, digits=1), "settled": dict(result.settled),
            "left_open": len(result.left_open)}


def live_reaction_figures(quick: bool = False) -> dict[str, Any]:
    """``live_reject_to_cancel_wall_ms_*`` for the streamer and for polling (module docstring)."""
    groups = 10 if quick else 50
    out: dict[str, Any] = {}
    for label, on in (("streamer", True), ("polling", False)):
        r = live_reject_reaction(groups, on)
        out[f"live_reject_to_cancel_{label}"] = r
        out[f"live_reject_to_cancel_wall_ms_p50_{label}"] = r["wall_ms"]["p50"]
        out[f"live_reject_to_cancel_wall_ms_p99_{label}"] = r["wall_ms"]["p99"]
    return out
