"""Bench figures of the TastyTrade path against the local emulator over real HTTP (issue 13).

* ``tastytrade_submit_ms_dry_run_off`` / ``_on``: wall milliseconds of one
  :meth:`TastytradeBackend.submit` of a 4-leg combo entry (median over ``n`` submits each, the two
  settings interleaved one by one so load hits them alike), and ``tastytrade_dry_run_cost_ms``
  (their difference): what ``dry_run_before_submit`` costs per order (one more round trip);
  ``tastytrade_submit_requests``: the POSTs the emulator counted.
* ``quote_requests_per_tick_1`` / ``_10`` / ``_100``: ``GET /market-data/by-type`` requests one
  pricing tick costs when every leg of 1, 10 and 100 open 4-leg groups is quoted through
  :class:`TastytradeQuoteSource` (``ceil(distinct legs / 100)``); ``quote_legs_per_tick_*``: the
  distinct legs quoted (the groups' strikes overlap in part; without the batching each leg
  would be one request).

Timings are wall time on this machine (other processes' load included); nothing is asserted.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.server import TastytradeEmulator

__all__ = ["tastytrade_figures"]

_ROUTE = "GET /market-data/by-type"


class _Rig:
    """Simulator (resting orders never fill) + emulator + client + backend on the virtual clock."""

    def __init__(self, seed: int = 3) -> None:
        self.sim = BrokerSimulator(seed, attrs.evolve(ChaosProfile(), limit_fill_rate=0.0))
        self.emulator = TastytradeEmulator(self.sim).start()
        config = TastytradeConfig(account_number=self.emulator.account_number, base_url=self.emulator.url,
                                  read_timeout=5.0)
        self.client = TastytradeApiClient(config, self.emulator.credentials())
        self.backend = TastytradeBackend(self.client, clock=self.sim.clock)

    def condor(self, i: int) -> tuple[OptionSymbol, ...]:
        """Four distinct strikes per ``i`` (a short iron condor shifted by ``i`` strikes)."""
        m = self.sim.market
        atm = int(m.spot(self.sim.clock.seconds) // 5 * 5)
        lo, hi = atm - 200 - 5 * i, atm + 200 + 5 * i
        return (m.symbol(m.default_expiry, "P", lo - 50), m.symbol(m.default_expiry, "P", lo),
                m.symbol(m.default_expiry, "C", hi), m.symbol(m.default_expiry, "C", hi + 50))

    def request(self, ref: str, i: int) -> OrderRequest:
        lp, sp, sc, lc = self.condor(i)
        legs = (Leg(lp, Side.BUY), Leg(sp, Side.SELL), Leg(sc, Side.SELL), Leg(lc, Side.BUY))
        # a credit no one pays: it rests (and resting orders never fill here)
        return OrderRequest(order_ref=ref, group_id=ref.rsplit("-", 1)[0], purpose=Purpose.ENTRY, legs=legs,
                            quantity=1, order_type=OrderType.LIMIT, limit_price=Decimal("-49.00"),
                            time_in_force=TimeInForce.DAY)

    def close(self) -> None:
        self.client.close()
        self.emulator.stop()


def _submit_ms(n: int) -> dict[str, Any]:
    rig = _Rig()
    try:
        times: dict[str, list[float]] = {"dry_run_off": [], "dry_run_on": []}
        for k in range(n):
            for label, on in (("dry_run_off", False), ("dry_run_on", True)):
                rig.backend.dry_run = on
                request = rig.request(f"B{k:05d}{int(on)}-C", k % 40)
                t0 = time.perf_counter()
                rig.backend.submit(request)
                times[label].append((time.perf_counter() - t0) * 1000)
        counts = rig.emulator.request_counts()
        return {
            **{f"tastytrade_submit_ms_{label}": round(statistics.median(v), 3) for label, v in times.items()},
            "tastytrade_dry_run_cost_ms": round(statistics.median(times["dry_run_on"])
                                                - statistics.median(times["dry_run_off"]), 3),
            "tastytrade_submit_requests": {"POST /orders": counts.get("POST /orders", 0),
                                           "POST /orders/dry-run": counts.get("POST /orders/dry-run", 0),
                                           "submits_per_setting": n},
        }
    finally:
        rig.close()


def _requests_per_tick(groups: int) -> tuple[int, int]:
    rig = _Rig()
    try:
        for g in range(groups):
            rig.backend.submit(rig.request(f"Q{g:05d}-C", g))
        source = TastytradeQuoteSource(rig.client, rig.sim.clock, symbols=rig.backend.open_symbols)
        rig.backend.quote_source = source
        rig.emulator.advance_to(rig.sim.clock.seconds + 1.0)
        before = rig.emulator.request_count(_ROUTE)
        legs = rig.backend.open_symbols()
        for symbol in legs:
            rig.backend.quote(symbol)
        return rig.emulator.request_count(_ROUTE) - before, len(legs)
    finally:
        rig.close()


def tastytrade_figures(quick: bool = False) -> dict[str, Any]:
    """The figures of the module docstring (``quick``: 20 submits per setting instead of 200)."""
    out = _submit_ms(20 if quick else 200)
    for n in (1, 10, 100):
        out[f"quote_requests_per_tick_{n}"], out[f"quote_legs_per_tick_{n}"] = _requests_per_tick(n)
    return out
