"""Shared builders and a tiny session driver for the simulator tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.fsm.events import Acknowledged, Fill
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import BrokerEvent, OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.market import MarketModel
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

#: A broker with no chaos at all and instant-ish, fixed latencies.
PERFECT = ChaosProfile()


def profile(**knobs: Any) -> ChaosProfile:
    """The perfect profile with some knobs changed."""
    return attrs.evolve(PERFECT, **knobs)


def make_sim(
    seed: int = 1, chaos: ChaosProfile = PERFECT, event_log: bool = True, market: MarketModel | None = None
) -> BrokerSimulator:
    """A simulator, by default on the default market (SPX at 5000)."""
    return BrokerSimulator(seed, chaos, market=market, event_log=event_log)


def condor_legs(sim: BrokerSimulator, width: int = 10, wing: float = 50.0) -> tuple[Leg, ...]:
    """A short iron condor around the current spot."""
    m = sim.market
    return m.iron_condor_legs(sim.clock.seconds, m.default_expiry, width, wing)


def round_combo(price: Decimal) -> Decimal:
    """Round a net price down to the combo tick 0.05."""
    return (price / Decimal("0.05")).to_integral_value(rounding="ROUND_FLOOR") * Decimal("0.05")


def combo_request(
    ref: str,
    legs: Sequence[Leg],
    limit: Decimal | None,
    quantity: int = 1,
    tif: TimeInForce = TimeInForce.DAY,
) -> OrderRequest:
    """A combo order (market when ``limit`` is None)."""
    order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    return OrderRequest(
        order_ref=ref,
        group_id=f"g-{ref}",
        purpose=Purpose.ENTRY,
        legs=tuple(legs),
        quantity=quantity,
        order_type=order_type,
        limit_price=limit,
        time_in_force=tif,
    )


def single_request(
    ref: str,
    symbol: OptionSymbol,
    side: Side,
    limit: Decimal | None,
    quantity: int = 1,
    tif: TimeInForce = TimeInForce.DAY,
) -> OrderRequest:
    """A single-leg order (market when ``limit`` is None)."""
    return combo_request(ref, (Leg(symbol, side),), limit, quantity, tif)


def atm_call(sim: BrokerSimulator, offset: int = 0) -> OptionSymbol:
    """A call near the money (strike = spot rounded to 5, plus ``offset`` points)."""
    m = sim.market
    strike = round(m.spot(sim.clock.seconds) / 5) * 5 + offset
    return m.symbol(m.default_expiry, "C", strike)


def run(sim: BrokerSimulator, until: float) -> list[BrokerEvent]:
    """Advance event by event up to ``until`` and return everything delivered, in order."""
    out: list[BrokerEvent] = []
    while True:
        t = sim.next_event_time()
        if t is None or t > until:
            break
        sim.advance_to(max(t, sim.clock.seconds))
        out.extend(sim.poll_events())
    sim.advance_to(until)
    out.extend(sim.poll_events())
    return out


def of(events: Sequence[BrokerEvent], ref: str) -> list[object]:
    """The ticket events about ``ref``, in delivery order."""
    return [e.event for e in events if e.order_ref == ref]


def fills(events: Sequence[BrokerEvent], ref: str | None = None) -> list[Fill]:
    """Fill events (of one order, or all), in delivery order."""
    return [e.event for e in events if isinstance(e.event, Fill) and (ref is None or e.order_ref == ref)]


def acked(events: Sequence[BrokerEvent]) -> set[str]:
    """References that got an acknowledgement."""
    return {e.order_ref for e in events if isinstance(e.event, Acknowledged)}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """An aware UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)
