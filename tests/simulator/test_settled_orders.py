"""A settled order at the simulated broker: a compact record that answers as the order did.

The broker remembers every order of a session (reconcile, find_orders, positions, a late cancel
or replace, a duplicate reference); a long session must not pay for more than that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import tracemalloc
from decimal import Decimal

import pytest

from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.events import BrokerStatus, CancelRejected, Fill, UpdateRejected
from atomic_orders.fsm.orders import BrokerEvent
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

from ._helpers import combo_request, condor_legs, make_sim, round_combo, run


def _session(orders: int, seed: int = 4) -> tuple[BrokerSimulator, list[BrokerEvent]]:
    """A hostile broker given ``orders`` condors over the first hour, every one run to its end.

    Marketable and resting limits, 1-4 units (partial fills), every third one cancelled: filled,
    canceled, rejected and expired orders, some with several fills.
    """
    sim = BrokerSimulator(seed, ChaosProfile.hostile(), event_log=False, keep_requests=False)
    market = sim.market
    events: list[BrokerEvent] = []
    step = 3600.0 / orders
    for i in range(orders):
        t = 1.0 + i * step
        events += run(sim, t)
        legs = market.iron_condor_legs(t, market.default_expiry, 10, 40)
        _, mid, ask = market.combo_quote(legs, t)
        ref = f"o{i}"
        with contextlib.suppress(SubmissionOutcomeUnknown):
            sim.submit(combo_request(ref, legs, ask if i % 2 else round_combo(mid), quantity=1 + i % 4))
        if i % 3 == 2:
            with contextlib.suppress(BrokerUnavailable):
                sim.cancel(f"o{i - 1}")
    end = max([sim.session_seconds + 600, *(e for _, e in sim.outage_windows)]) + 1
    events += run(sim, end)
    return sim, events


def _retained(orders: int) -> int:
    """Bytes still allocated, with the broker alive, after a session of ``orders`` orders."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        sim, events = _session(orders)
        del events
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        assert sim.working_count == 0 and sim.stats["fills"] > orders // 2
        return held
    finally:
        tracemalloc.stop()


def test_a_settled_order_costs_a_few_hundred_bytes() -> None:
    # the marginal cost of 1,500 more orders over the same session (the market's own state,
    # the same for both, cancels out): a settled order with its fills and its key, about 150
    # bytes (about 650 when the broker kept the order object and its Fill values)
    per_order = (_retained(2000) - _retained(500)) / 1500
    assert per_order < 250, f"{per_order:.0f} bytes per settled order"


def test_settled_orders_answer_with_the_fills_they_reported() -> None:
    sim, events = _session(300, seed=8)
    delivered: dict[str, dict[str, Fill]] = {}
    for be in events:
        if isinstance(be.event, Fill):
            delivered.setdefault(be.order_ref, {})[be.event.fill_id] = be.event
    refs = list(sim.find_orders("o"))
    reports = sim.reconcile(refs)
    statuses = {r.status for r in reports.values()}
    assert {BrokerStatus.FILLED, BrokerStatus.CANCELED, BrokerStatus.REJECTED} <= statuses
    assert any(len(r.fills) > 1 for r in reports.values())
    for ref, report in reports.items():
        assert report.fills == sim.order_fills(ref)
        assert {f.fill_id: f for f in report.fills} == delivered.get(ref, {}), ref
        assert [repr(f) for f in report.fills] == [repr(delivered[ref][f.fill_id]) for f in report.fills]
        assert report.broker_order_id is not None and report.broker_order_id.startswith("SIM")
        assert sim.order_status(ref) == report.status.value


def test_a_settled_order_still_refuses_its_reference_and_answers_cancel_and_replace() -> None:
    sim, _ = _session(60, seed=5)
    reports = sim.reconcile(list(sim.find_orders("o")))
    filled = next(ref for ref, r in reports.items() if r.status is BrokerStatus.FILLED)
    canceled = next(ref for ref, r in reports.items() if r.status is BrokerStatus.CANCELED)
    legs = condor_legs(sim)
    for ref in (filled, canceled):
        with pytest.raises(SubmissionRefused, match="duplicate"):
            sim.submit(combo_request(ref, legs, Decimal("-1.00")))
    now = sim.clock.seconds
    sim.cancel(filled)
    sim.replace(canceled, Decimal("-1.00"))
    answers = {be.order_ref: be.event for be in run(sim, now + 600.0)}
    assert isinstance(answers[filled], CancelRejected) and answers[filled].reason == "already filled"
    assert isinstance(answers[canceled], UpdateRejected) and answers[canceled].reason == "already canceled"
    assert sim.reconcile([filled])[filled] == reports[filled]


def test_a_held_order_with_foreign_fills_keeps_them_as_they_were() -> None:
    sim = make_sim()
    request = combo_request("old", condor_legs(sim), Decimal("-1.00"), quantity=3)
    other_zone = dt.timezone(dt.timedelta(hours=-5))
    fills = (
        Fill(time=sim.clock.now().astimezone(other_zone), fill_id="X-77", quantity=1, price=Decimal("-1.0")),
        Fill(time=sim.clock.now(), fill_id="SIM0000009-2", quantity=1, price=Decimal("-1.05")),
    )
    sim.hold_settled(request, BrokerStatus.CANCELED, fills, "TT-9")
    report = sim.reconcile(["old"])["old"]
    assert report.fills == fills and [repr(f) for f in report.fills] == [repr(f) for f in fills]
    assert report.broker_order_id == "TT-9"
