"""TastytradeBackend + AtomicOrderExecutor against the emulator over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.parsing import STATUS_TABLE
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.events import BrokerStatus
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.simulator.emulator import Fault, HttpFaults
from tests.roles import condor_roles

from .conftest import NO_RESTING_FILLS, PERFECT, Harness


def _events(h: Harness, seconds: float = 1.0) -> list:  # type: ignore[type-arg]
    h.advance(seconds)
    return h.backend.poll_events()


def _check_committed(h: Harness, group: AtomicOrderGroup, positions: bool = True) -> None:
    assert group.state == "committed", (group.state, group.rollback_reason)
    if positions:
        held = h.backend.positions()
        for leg in group.legs:
            assert held.get(leg.symbol) == leg.signed_ratio * group.quantity
    for ticket in group.entry_tickets:
        assert ticket.quantity_filled == ticket.quantity


def _check_flat(h: Harness, group: AtomicOrderGroup) -> None:
    assert group.state == "rolled_back", (group.state, group.rollback_reason)
    assert group.ledger.positions() == {} or all(v == 0 for v in group.ledger.positions().values())
    assert {s: q for s, q in h.backend.positions().items() if q} == {}


# -- iron condors end to end --------------------------------------------------------------------


@pytest.mark.parametrize("mode", [ExecutionMode.COMBO, ExecutionMode.LEGGED])
def test_iron_condor_commits_over_http(harness: Harness, mode: ExecutionMode) -> None:
    ex = harness.executor()
    group = ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=3, mode=mode)
    harness.settle(ex)
    _check_committed(harness, group)
    assert ex.stats.invariant_violations == 0 and ex.stats.anomalies == 0
    counts = harness.emulator.request_counts()
    assert counts["POST /orders"] == (1 if mode is ExecutionMode.COMBO else 4)


def test_combo_condor_partially_filled_then_silent_rolls_back(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(attrs.evolve(PERFECT, partial_fill_rate=1.0, partial_then_silence_rate=1.0), seed=4)
    ex = h.executor(deadline_seconds=60.0)
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=4, mode=ExecutionMode.COMBO)
    h.settle(ex)
    entry = group.entry_tickets[0]
    assert 0 < entry.quantity_filled < 4, "the combo must have filled partially"
    assert entry.state == "canceled"
    assert len(group.unwind_tickets) == 4 and all(t.state == "filled" for t in group.unwind_tickets)
    _check_flat(h, group)
    assert ex.stats.invariant_violations == 0


def test_legged_condor_with_a_refused_leg_rolls_back(harness: Harness) -> None:
    harness.emulator.refuse_orders(r"-L2$", "margin check failed")
    ex = harness.executor()
    group = ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=2, mode=ExecutionMode.LEGGED)
    harness.settle(ex)
    refused = group.ticket(f"{group.group_id}-L2")
    assert refused.state == "rejected" and ex.stats.submissions_refused == 1
    _check_flat(harness, group)
    assert ex.stats.invariant_violations == 0


# -- replace, cancel ----------------------------------------------------------------------------


def test_replace_creates_a_new_broker_id_and_reports_updated(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    b = h.backend
    b.submit(h.resting_request("R-1"))
    ack = [be.event for be in _events(h)]
    assert [e.trigger for e in ack] == ["acknowledged"]
    first_id = ack[0].broker_order_id
    b.replace("R-1", Decimal("0.10"))
    events = [be.event for be in _events(h)]
    assert [e.trigger for e in events] == ["updated"]
    assert events[0].broker_order_id != first_id
    old = h.client.get_order(first_id)
    assert old["status"] == "Cancelled" and old["edited"] is True
    assert old["replacing-order-id"] == int(events[0].broker_order_id)
    new = h.client.get_order(events[0].broker_order_id)
    assert new["replaces-order-id"] == int(first_id) and new["price"] == "0.10" and new["status"] == "Live"
    b.cancel("R-1")
    assert h.client.get_order(events[0].broker_order_id)["status"] == "Cancel Requested"
    assert [be.event.trigger for be in _events(h)] == ["canceled"]
    report = b.reconcile(["R-1"])["R-1"]
    assert report.status is BrokerStatus.CANCELED and report.broker_order_id == events[0].broker_order_id


def test_refused_submission_and_refused_replace(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.emulator.refuse_orders("^X-")
    with pytest.raises(SubmissionRefused) as info:
        h.backend.submit(h.resting_request("X-1"))
    assert "preflight_check_failure" in info.value.reason
    h.backend.submit(h.resting_request("R-1"))
    _events(h)
    h.backend.replace("R-1", Decimal("0.07"))  # off the 0.05 tick: refused before sending
    assert [be.event.trigger for be in h.backend.poll_events()] == ["update_rejected"]
    assert h.emulator.request_count("PUT /orders/{id}") == 0


def test_cancel_of_a_filled_order_reports_cancel_rejected(harness: Harness) -> None:
    ex = harness.executor()
    short_call, long_call, _, _ = harness.condor()
    # buys the call wing and sells the call nearer the money: a credit call spread
    group = ex.execute_vertical(long_leg=long_call, short_leg=short_call, price_effect=PriceEffect.CREDIT, quantity=1)
    harness.settle(ex)
    ref = group.entry_tickets[0].order_ref
    assert group.state == "committed"
    harness.backend.cancel(ref)  # the order is already final at the broker
    events = [be.event.trigger for be in _events(harness)]
    assert events == [] or events == ["cancel_rejected"]
    assert harness.emulator.request_count("DELETE /orders/{id}") == 0


# -- ambiguity: the POST that timed out after the order landed ------------------------------------


@pytest.mark.parametrize("fault", [Fault.SLOW, Fault.DROP_AFTER])
def test_post_lost_after_acceptance_creates_no_duplicate(make_harness: Callable[..., Harness], fault: Fault) -> None:
    h = make_harness(faults=HttpFaults(slow_seconds=0.6), read_timeout=0.3)
    h.emulator.faults.script(fault, method="POST", path=r"/orders$", count=1)
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=ExecutionMode.COMBO)
    ref = group.entry_tickets[0].order_ref
    assert group.entry_tickets[0].state == "unknown"
    h.settle(ex)
    _check_committed(h, group)
    assert len(h.emulator.orders_with_external_id(ref)) == 1, "the order must not have been sent twice"
    assert h.emulator.request_count("POST /orders") == 1
    assert ex.stats.submissions_unknown == 1 and ex.stats.reconciliations >= 1


def test_post_refused_before_processing_reconciles_to_not_found(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.emulator.faults.script(Fault.SERVER_ERROR, method="POST", path=r"/orders$", count=1)
    with pytest.raises(SubmissionOutcomeUnknown):
        h.backend.submit(h.resting_request("R-5"))
    assert h.backend.reconcile(["R-5"])["R-5"].status is BrokerStatus.NOT_FOUND
    assert h.emulator.orders_with_external_id("R-5") == []


def test_reconcile_finds_a_landed_order_by_our_identifier(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS, faults=HttpFaults(slow_seconds=0.6), read_timeout=0.3)
    h.emulator.faults.script(Fault.SLOW, method="POST", path=r"/orders$", count=1)
    with pytest.raises(SubmissionOutcomeUnknown):
        h.backend.submit(h.resting_request("R-6"))
    report = h.backend.reconcile(["R-6"])["R-6"]
    assert report.status is BrokerStatus.WORKING
    assert report.broker_order_id == str(h.emulator.orders_with_external_id("R-6")[0])
    # once found, the order is watched like any other
    h.backend.cancel("R-6")
    assert "canceled" in [be.event.trigger for be in _events(h)]


# -- malformed answers and tokens: nothing lost -------------------------------------------------


def test_malformed_poll_answers_give_a_clear_error_and_lose_no_fill(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="atomic_orders.tastytrade.monitor")
    ex = harness.executor()
    group = ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=3, mode=ExecutionMode.LEGGED)
    # every poll attempt for a while answers a truncated body (retries included)
    harness.emulator.faults.script(Fault.TRUNCATE, method="GET", path=r"/orders/live$", count=12)
    harness.settle(ex)
    _check_committed(harness, group)
    assert harness.emulator.faults.injected.get("truncate") == 12
    failures = [r.getMessage() for r in caplog.records if "order poll failed" in r.getMessage()]
    assert failures and all("malformed response" in m and "/orders/live" in m for m in failures)
    assert sum(len(t.fills) for t in group.entry_tickets) >= 4
    assert ex.stats.invariant_violations == 0


def test_token_expiring_mid_session_loses_nothing(harness: Harness) -> None:
    ex = harness.executor()
    groups = [ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=2, mode=m)
              for m in (ExecutionMode.COMBO, ExecutionMode.LEGGED)]
    expired = []

    def expire(t: float) -> None:
        if not expired and harness.emulator.request_count("GET /orders/live") >= 3:
            harness.emulator.expire_tokens()
            expired.append(t)

    harness.settle(ex, on_step=expire)
    assert expired and harness.emulator.tokens_issued == 2
    assert harness.emulator.status_counts[401] == 1
    expected: dict[object, int] = {}
    for g in groups:
        _check_committed(harness, g, positions=False)
        for leg in g.legs:
            expected[leg.symbol] = expected.get(leg.symbol, 0) + leg.signed_ratio * g.quantity
    assert harness.backend.positions() == expected


def test_stalled_broker_makes_open_tickets_unknown(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS, max_retries=0)
    b: TastytradeBackend = h.backend
    b.submit(h.resting_request("R-1"))
    assert [be.event.trigger for be in _events(h)] == ["acknowledged"]
    h.emulator.faults.script(Fault.SERVER_ERROR, method="GET", count=1000)
    triggers: list[str] = []
    for _ in range(60):
        triggers += [be.event.trigger for be in _events(h, 1.0)]
    assert triggers.count("submission_unknown") == 1
    assert b.monitor.stalled
    polls = h.emulator.request_count("GET /orders/live")
    assert polls < 30, "failing polls must back off"
    h.emulator.faults.clear()
    with pytest.raises(BrokerUnavailable):
        h.emulator.faults.script(Fault.SERVER_ERROR, method="GET", count=5)
        b.reconcile(["R-1"])
    h.emulator.faults.clear()
    assert b.reconcile(["R-1"])["R-1"].status is BrokerStatus.WORKING
    _events(h, 10.0)
    assert not b.monitor.stalled


# -- polling cost -------------------------------------------------------------------------------


def test_requests_per_tick_do_not_grow_with_open_orders(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS, fast_interval=1.0)
    b = h.backend
    per_tick: dict[int, list[int]] = {}
    placed = 0
    for target in (1, 10, 50, 200):
        while placed < target:
            b.submit(h.resting_request(f"R-{placed:04d}", strike_offset=placed % 40))
            placed += 1
        _events(h)  # absorb the acknowledgements
        samples = []
        for _ in range(5):
            before = h.emulator.request_count()
            _events(h, 1.0)
            samples.append(h.emulator.request_count() - before)
        per_tick[target] = samples
    assert all(samples == [1, 1, 1, 1, 1] for samples in per_tick.values()), per_tick
    # orders that leave the live list cost one read each, once
    for i in range(5):
        b.cancel(f"R-{i:04d}")
    h.advance(1.0)
    before = h.emulator.request_count()
    events = h.backend.poll_events()
    assert h.emulator.request_count() - before == 1 + 5
    assert sorted(be.event.trigger for be in events) == ["canceled"] * 5
    before = h.emulator.request_count()
    _events(h, 1.0)
    assert h.emulator.request_count() - before == 1


def test_idle_monitor_polls_slowly(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(fast_interval=1.0, idle_interval=10.0)
    h.backend.poll_events()
    first = h.emulator.request_count("GET /orders/live")
    for _ in range(30):
        _events(h, 1.0)
    assert h.emulator.request_count("GET /orders/live") - first == 3


def test_status_table_is_what_the_emulator_speaks(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.backend.submit(h.resting_request("R-1"))
    h.backend.submit(h.resting_request("R-2", 1))
    _events(h)
    h.backend.replace("R-1", Decimal("0.10"))
    h.backend.cancel("R-2")
    seen = {o["status"] for o in h.client.live_orders()}
    assert seen <= set(STATUS_TABLE) and {"Replace Requested", "Contingent", "Cancel Requested"} <= seen


def test_replace_with_a_new_quantity_resizes_the_replacement(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.backend.submit(attrs.evolve(h.resting_request("R-1"), quantity=3))
    _events(h)
    h.backend.replace("R-1", Decimal("0.10"), quantity=5)
    events = [be.event for be in _events(h)]
    assert [e.trigger for e in events] == ["updated"]
    new = h.client.get_order(events[0].broker_order_id)
    assert new["size"] == 5 and new["legs"][0]["quantity"] == 5
