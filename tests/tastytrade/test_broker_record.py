"""The broker's own record over real HTTP: counts vs fills, rejects after fills, echoes, refusals,
identity across processes on one account, and find_orders. Every scenario is produced by the
emulator (its scenario knobs), never by mocking the wire."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import attrs
import pytest
import requests

from atomic_orders.backends.scripted import ScriptedBackend
from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.fsm.errors import BrokerUnavailable
from atomic_orders.fsm.events import BrokerStatus
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderReport, OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript, FillAt, OrderMatch, Rule
from tests.roles import condor_roles

from .conftest import NO_RESTING_FILLS, PERFECT, Harness

#: Every fill first comes as part of the order (a remaining quantity above one unit fills partially).
PARTIAL_FIRST = attrs.evolve(PERFECT, partial_fill_rate=1.0)


def _order_json(h: Harness, ref: str) -> dict:  # type: ignore[type-arg]
    """The order now carrying ``ref`` at the emulator (its last replacement)."""
    ids = h.emulator.orders_with_external_id(ref)
    assert ids, f"no order {ref} at the emulator"
    order = h.client.get_order(ids[-1])
    while order.get("replacing-order-id") is not None:
        order = h.client.get_order(order["replacing-order-id"])
    return order


def _second_backend(h: Harness) -> tuple[TastytradeApiClient, TastytradeBackend]:
    """Another process on the same account: its own client (own token) and backend."""
    client = TastytradeApiClient(h.config, h.emulator.credentials(), sleep=lambda _s: None)
    backend = TastytradeBackend(client, clock=h.sim.clock, quote_source=h.emulator.quote_source())
    return client, backend


def _drive(h: Harness, executors: list[AtomicOrderExecutor], limit: float = 3600.0) -> None:
    """Run several executors (each on its own backend) against one emulator until all settle."""
    clock = h.sim.clock
    start = clock.seconds
    while any(ex.open_groups() for ex in executors):
        for ex in executors:
            ex.process_events()
            ex.on_timer()
        candidates = [h.sim.next_event_time()]
        for ex in executors:
            backend = ex.backend
            assert isinstance(backend, TastytradeBackend)
            candidates.append(clock.to_seconds(backend.next_poll_time()))
            wake = ex.next_wakeup()
            if wake is not None:
                candidates.append(clock.to_seconds(wake))
        t = max(min(c for c in candidates if c is not None), clock.seconds)
        assert t - start <= limit, "executors did not settle"
        h.emulator.advance_to(t)


def _leg_request(h: Harness, ref: str, quantity: int, price: str) -> OrderRequest:
    """A one-leg buy of the nearest call at ``price``."""
    m = h.sim.market
    strike = int(m.spot(h.sim.clock.seconds) // 5 * 5)
    symbol = m.symbol(m.default_expiry, "C", strike)
    return OrderRequest(order_ref=ref, group_id=ref.rsplit("-", 1)[0], purpose=Purpose.ENTRY,
                        legs=(Leg(symbol, Side.BUY),), quantity=quantity, order_type=OrderType.LIMIT,
                        limit_price=Decimal(price), time_in_force=TimeInForce.DAY)


def _marketable(h: Harness, ref: str, quantity: int) -> OrderRequest:
    req = _leg_request(h, ref, quantity, "0.05")
    ask = h.backend.quote(req.legs[0].symbol).ask
    return attrs.evolve(req, limit_price=ask + Decimal("0.50"))


# -- 1. Filled without leg fills: a status never stands in for fills ------------------------------


@pytest.mark.parametrize("mode", [ExecutionMode.COMBO, ExecutionMode.LEGGED])
def test_filled_order_without_leg_fills_fails_with_the_broker_residual(
        make_harness: Callable[..., Harness], mode: ExecutionMode) -> None:
    h = make_harness(seed=3)
    h.emulator.withhold_fills(r"-(C|L1)$")  # the combo, or one leg of the legged condor
    ex = AtomicOrderExecutor(h.backend, ExecutionPolicy(), session_id="")
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=mode)
    h.settle(ex)
    ref = f"{group.group_id}-{'C' if mode is ExecutionMode.COMBO else 'L1'}"
    raw = _order_json(h, ref)
    assert raw["status"] == "Filled"
    assert all(leg["fills"] == [] and leg["remaining-quantity"] == 0 for leg in raw["legs"])
    # the account holds what filled: never "rolled back" on a status without fills
    held = h.backend.positions()
    ticket = group.ticket(ref)
    assert all(held.get(leg.symbol) == leg.signed_ratio * 2 for leg in ticket.legs)
    if mode is ExecutionMode.COMBO:
        assert held == {leg.symbol: leg.signed_ratio * 2 for leg in group.legs}
    assert group.state == "failed", (group.state, group.rollback_reason)
    assert group.residual_exposure == held
    assert ticket.quantity_filled == 0 and ticket.broker_record is not None
    assert ticket.broker_record.status is BrokerStatus.FILLED and ticket.broker_record.filled == 2
    report = h.backend.reconcile([ref])[ref]
    assert report.status is BrokerStatus.FILLED and report.fills == () and report.filled_quantity == 2


def test_withheld_fills_that_appear_later_commit_the_group(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(seed=3)
    h.emulator.withhold_fills(r"-C$")
    ex = AtomicOrderExecutor(h.backend, ExecutionPolicy(max_broker_disagreements=8), session_id="")
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=ExecutionMode.COMBO)
    ref = group.entry_tickets[0].order_ref
    released: list[float] = []

    def release(t: float) -> None:
        if not released and _order_json(h, ref)["status"] == "Filled" and group.ticket(ref).state == "unknown":
            h.emulator.release_fills()
            released.append(t)

    h.settle(ex, on_step=release)
    assert released, "the ticket never waited on the broker's fills"
    assert group.state == "committed", (group.state, group.rollback_reason)
    assert group.ticket(ref).quantity_filled == 2 and [f.fill_id for f in group.ticket(ref).fills]
    assert ex.stats.invariant_violations == 0


def test_poll_books_fills_and_reports_counts_without_turning_a_status_into_fills(
        make_harness: Callable[..., Harness]) -> None:
    h = make_harness(seed=3)
    h.emulator.withhold_fills("^W-")
    b = h.backend
    b.submit(_marketable(h, "W-1", 2))
    h.advance(30.0)
    assert _order_json(h, "W-1")["status"] == "Filled"
    triggers = [be.event.trigger for be in b.poll_events()]
    assert "fill" not in triggers and triggers[-1] == "submission_unknown"
    report = b.reconcile(["W-1"])["W-1"]
    assert (report.status, report.fills, report.filled_quantity) == (BrokerStatus.FILLED, (), 2)
    h.emulator.release_fills()
    report = b.reconcile(["W-1"])["W-1"]  # the final order is read again while it disagrees
    assert report.filled_quantity == 2 and sum(f.quantity for f in report.fills) == 2
    assert [be.event.trigger for be in b.poll_events()] == []  # reported once, by the reconciliation


def test_filled_combo_with_a_leg_remaining_is_reported_as_a_contradiction(harness: Harness) -> None:
    from atomic_orders.backends.tastytrade.parsing import combo_shape, leg_contradiction, parse_order, record_units

    ex = AtomicOrderExecutor(harness.backend, ExecutionPolicy(), session_id="")
    group = ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=2, mode=ExecutionMode.COMBO)
    harness.settle(ex)
    raw = _order_json(harness, group.entry_tickets[0].order_ref)
    assert raw["status"] == "Filled"
    shape = combo_shape(group.entry_tickets[0].legs)
    assert record_units(parse_order(raw), shape) == 2 and leg_contradiction(parse_order(raw)) is None
    raw["legs"][2]["remaining-quantity"] = 1  # a leg the record says is not done
    snap = parse_order(raw)
    assert record_units(snap, shape) == 1
    assert "is Filled but a leg is not" in (leg_contradiction(snap) or "")


# -- 2. Ack, Fill(1 of 2), Rejected ---------------------------------------------------------------


def test_rejected_after_a_partial_fill_emits_fill_then_rejected(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(attrs.evolve(PARTIAL_FIRST, partial_then_silence_rate=1.0), seed=3)
    h.emulator.reject_after_fill("^RJ-", "exchange rejected the remainder")
    b = h.backend
    b.submit(_marketable(h, "RJ-1", 2))
    for _ in range(60):  # no poll meanwhile: the first read already shows Rejected with its fill
        h.advance(1.0)
    raw = _order_json(h, "RJ-1")
    assert raw["status"] == "Rejected" and raw["legs"][0]["remaining-quantity"] == 1
    events = [be.event for be in b.poll_events() if be.order_ref == "RJ-1"]
    assert [e.trigger for e in events] == ["acknowledged", "fill", "rejected"]
    assert events[1].quantity == 1 and "exchange rejected" in events[2].reason
    report = b.reconcile(["RJ-1"])["RJ-1"]
    assert report.status is BrokerStatus.REJECTED and report.filled_quantity == 1 == report.listed_quantity


def test_legged_condor_with_a_leg_rejected_after_a_partial_fill_rolls_back_at_once(
        make_harness: Callable[..., Harness]) -> None:
    probe = make_harness(seed=3)
    strikes = probe.condor()
    # L1 is the long call: one contract of two fills, then the broker rejects the rest
    script = BrokerScript([Rule(OrderMatch(symbol=strikes[1], side=Side.BUY, combo=False, nth=1),
                                (FillAt(0.5, Decimal("1.00"), 1),))], default=(FillAt(0.5, Decimal("1.00")),))
    h = make_harness(seed=3, script=script)
    h.emulator.reject_after_fill(r"-L1$")
    ex = AtomicOrderExecutor(h.backend, ExecutionPolicy(), session_id="")
    group = ex.execute_iron_condor(**condor_roles(strikes), quantity=2, mode=ExecutionMode.LEGGED)
    h.settle(ex)
    leg = group.ticket(f"{group.group_id}-L1")
    assert leg.state == "rejected" and leg.quantity_filled == 1
    trail = [r.trigger for r in leg.order_events]
    assert trail.index("fill") < trail.index("rejected")
    rejected_at = next(r.time for r in leg.order_events if r.trigger == "rejected")
    rolling = [r for r in group.audit if r.dest == "rolling_back"]
    assert rolling and rolling[0].time == rejected_at, "the group must roll back on the reject itself"
    # no repricing of a dead order: nothing replaced it at the broker
    dead = h.emulator.orders_with_external_id(leg.order_ref)
    assert len(dead) == 1 and "replacing-order-id" not in h.client.get_order(dead[0])
    assert group.state == "rolled_back", (group.state, group.rollback_reason)
    assert {s: q for s, q in h.backend.positions().items() if q} == {}
    assert ex.stats.invariant_violations == 0


# -- 3. echoes and refusals -----------------------------------------------------------------------


def test_delete_answer_is_an_echo_not_the_outcome(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.emulator.echo_prior_state("^E-")
    b = h.backend
    b.submit(h.resting_request("E-1"))
    h.advance(1.0)
    assert [be.event.trigger for be in b.poll_events()] == ["acknowledged"]
    oid = h.emulator.orders_with_external_id("E-1")[0]
    b.cancel("E-1")
    assert h.client.get_order(oid)["status"] == "Cancel Requested"
    # the answer said "Live": that is what the order was, not a refused cancel
    triggers = [be.event.trigger for be in b.poll_events()]
    h.advance(1.0)
    triggers += [be.event.trigger for be in b.poll_events()]
    assert triggers == ["canceled"]


def test_the_emulator_echo_knob_answers_the_prior_state(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.emulator.echo_prior_state("^E-")
    h.backend.submit(h.resting_request("E-2"))
    h.advance(1.0)
    oid = h.emulator.orders_with_external_id("E-2")[0]
    assert h.client.cancel_order(oid)["status"] == "Live"
    assert h.client.get_order(oid)["status"] == "Cancel Requested"


def test_cancel_of_an_order_that_closed_unseen_is_refused_as_cancel_rejected(harness: Harness) -> None:
    b = harness.backend
    b.submit(_marketable(harness, "F-1", 1))
    assert [be.event.trigger for be in b.poll_events()] == ["acknowledged"]  # from the POST's answer
    harness.emulator.advance_to(harness.now + 30.0)  # it fills; we do not poll
    before = harness.emulator.status_counts[422]
    b.cancel("F-1")  # must not raise
    assert harness.emulator.request_count("DELETE /orders/{id}") == 1
    assert harness.emulator.status_counts[422] == before + 1
    events = [be.event for be in b.poll_events()]
    assert events[0].trigger == "cancel_rejected" and "order_not_cancellable" in events[0].reason
    assert [e.trigger for e in events[1:]] == ["fill"]  # the outcome from the read, no second refusal


def test_refused_cancel_wire_shape(harness: Harness) -> None:
    harness.backend.submit(_marketable(harness, "F-2", 1))
    harness.advance(30.0)
    oid = harness.emulator.orders_with_external_id("F-2")[0]
    token = harness.client.tokens.authorization()
    answer = requests.delete(f"{harness.emulator.url}/accounts/{harness.emulator.account_number}/orders/{oid}",
                             headers={"User-Agent": "probe/1", "Authorization": token}, timeout=5)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "order_not_cancellable" and "Filled" in error["message"]


def test_executor_reconciles_after_a_refused_cancel_and_does_not_cancel_again(harness: Harness) -> None:
    ex = AtomicOrderExecutor(harness.backend, ExecutionPolicy(), session_id="")
    short_call, long_call, _, _ = harness.condor()
    group = ex.execute_vertical(long_leg=long_call, short_leg=short_call, price_effect=PriceEffect.CREDIT, quantity=1)
    ex.process_events()  # the acknowledgement (from the POST's answer)
    entry = group.entry_tickets[0]
    assert entry.state == "submitted"
    harness.emulator.advance_to(harness.now + 30.0)  # it fills unseen
    ex.abort(group.group_id)
    assert harness.emulator.request_count("DELETE /orders/{id}") == 1
    ex.process_events()
    assert ex.stats.cancels_refused == 1
    assert entry.state == "filled" and entry.quantity_filled == 1  # from the reconciliation
    harness.settle(ex)
    assert group.state in ("rolled_back", "committed"), (group.state, group.rollback_reason)
    assert harness.emulator.request_count("DELETE /orders/{id}") == 1
    assert ex.stats.invariant_violations == 0


# -- 4. identity: two processes on one account ----------------------------------------------------


def test_two_executors_on_one_account_each_see_only_their_own_orders(
        make_harness: Callable[..., Harness]) -> None:
    h = make_harness(seed=3)
    client_b, backend_b = _second_backend(h)
    try:
        ex_a = AtomicOrderExecutor(h.backend, ExecutionPolicy(), session_id="AAAA")
        ex_b = AtomicOrderExecutor(backend_b, ExecutionPolicy(), session_id="BBBB")
        ga = ex_a.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=ExecutionMode.COMBO)
        gb = ex_b.execute_iron_condor(**condor_roles(h.condor()), quantity=1, mode=ExecutionMode.LEGGED)
        _drive(h, [ex_a, ex_b])
        assert ga.state == "committed" and gb.state == "committed", (ga.rollback_reason, gb.rollback_reason)
        assert set(h.backend.monitor.trackers) == {t.order_ref for t in ga.tickets}
        assert set(backend_b.monitor.trackers) == {t.order_ref for t in gb.tickets}
        for ex in (ex_a, ex_b):
            assert ex.stats.invariant_violations == 0 and ex.stats.alerts == 0 and not ex.stray_events
        # each one's orders at the broker, found by prefix from the other process too
        assert set(backend_b.find_orders("GAAAA")) == {t.order_ref for t in ga.tickets}
        assert set(h.backend.find_orders("GBBBB")) == {t.order_ref for t in gb.tickets}
        assert set(h.backend.monitor.trackers) == {t.order_ref for t in ga.tickets}, "find_orders tracks nothing"
    finally:
        client_b.close()


def test_an_order_with_our_reference_from_another_process_never_moves_our_ticket(
        make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    client_b, b = _second_backend(h)
    a = h.backend
    try:
        a.submit(h.resting_request("G000001-L0"))
        b.submit(h.resting_request("G000001-L0"))  # the same reference (two executors without session ids)
        id_a, id_b = (str(i) for i in h.emulator.orders_with_external_id("G000001-L0"))
        h.advance(1.0)
        assert [be.event.trigger for be in a.poll_events()] == ["acknowledged"]
        assert [be.event.trigger for be in b.poll_events()] == ["acknowledged"]
        b.cancel("G000001-L0")
        h.advance(1.0)
        assert [be.event.trigger for be in b.poll_events()] == ["canceled"]
        assert [be.event.trigger for be in a.poll_events()] == []
        assert h.client.get_order(id_a)["status"] == "Live"
        assert h.client.get_order(id_b)["status"] == "Cancelled"
        assert a.monitor.trackers["G000001-L0"].chain == [id_a]
        assert b.monitor.trackers["G000001-L0"].chain == [id_b]
        assert a.reconcile(["G000001-L0"])["G000001-L0"].status is BrokerStatus.WORKING
        assert b.reconcile(["G000001-L0"])["G000001-L0"].broker_order_id == id_b
    finally:
        client_b.close()


def test_a_lost_submission_adopts_only_an_order_received_after_it(make_harness: Callable[..., Harness]) -> None:
    from atomic_orders.simulator.emulator import Fault, HttpFaults

    h = make_harness(NO_RESTING_FILLS, faults=HttpFaults(slow_seconds=0.6), read_timeout=0.3)
    client_b, b = _second_backend(h)
    try:
        b.submit(h.resting_request("G000002-L0"))  # another process, earlier
        h.advance(600.0)
        h.emulator.faults.script(Fault.SLOW, method="POST", path=r"/orders$", count=1)
        from atomic_orders.fsm.errors import SubmissionOutcomeUnknown

        with pytest.raises(SubmissionOutcomeUnknown):
            h.backend.submit(h.resting_request("G000002-L0"))
        theirs, ours = (str(i) for i in h.emulator.orders_with_external_id("G000002-L0"))
        report = h.backend.reconcile(["G000002-L0"])["G000002-L0"]
        assert report.broker_order_id == ours
        assert h.backend.monitor.trackers["G000002-L0"].chain == [ours]
        h.advance(1.0)
        h.backend.poll_events()
        assert h.backend.monitor.trackers["G000002-L0"].chain == [ours]
        assert theirs not in h.backend.monitor.trackers["G000002-L0"].orders
    finally:
        client_b.close()


# -- 5. find_orders -------------------------------------------------------------------------------


def test_find_orders_reports_every_order_of_the_day_with_a_prefix(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(seed=3)
    ex = AtomicOrderExecutor(h.backend, ExecutionPolicy(), session_id="QQQQ")
    combo = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=ExecutionMode.COMBO)
    h.settle(ex)
    h.backend.submit(_leg_request(h, "GQQQQ999999-L0", 1, "0.05"))  # rests
    h.backend.submit(_leg_request(h, "OTHER-1", 1, "0.05"))
    h.advance(1.0)
    h.backend.poll_events()
    # a new process, paging two orders at a time with a history limit of one page
    config = attrs.evolve(h.config, page_size=2, max_history_pages=1)
    client = TastytradeApiClient(config, h.emulator.credentials(), sleep=lambda _s: None)
    fresh = TastytradeBackend(client, clock=h.sim.clock, quote_source=h.emulator.quote_source())
    try:
        found = fresh.find_orders("GQQQQ")
        mine = h.backend.find_orders("GQQQQ")
    finally:
        client.close()
    assert set(found) == {t.order_ref for t in combo.tickets} | {"GQQQQ999999-L0"}
    entry = combo.entry_tickets[0]
    report = found[entry.order_ref]
    assert report.status is BrokerStatus.FILLED and report.filled_quantity == 2
    assert [f.fill_id for f in report.fills] == [f.fill_id for f in entry.fills], "same fill ids as the poll"
    resting = found["GQQQQ999999-L0"]
    assert resting.status is BrokerStatus.WORKING and resting.filled_quantity == 0 and resting.fills == ()
    def key(reports: Mapping[str, OrderReport]) -> dict[str, object]:
        # a fill's time is when this process first saw it; everything else must agree
        return {r: (v.status, v.filled_quantity, [(f.fill_id, f.quantity, f.price) for f in v.fills])
                for r, v in reports.items()}

    assert key(mine) == key(found)
    assert fresh.monitor.trackers == {}
    with pytest.raises(ValueError):
        fresh.find_orders("")


def test_find_orders_when_the_broker_cannot_answer(make_harness: Callable[..., Harness]) -> None:
    from atomic_orders.simulator.emulator import Fault

    h = make_harness(NO_RESTING_FILLS, max_retries=0)
    h.emulator.faults.script(Fault.SERVER_ERROR, method="GET", count=1)
    with pytest.raises(BrokerUnavailable):
        h.backend.find_orders("G")


def test_find_orders_of_the_simulated_broker_and_the_default() -> None:
    from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

    backend = SimulatedBackend(BrokerSimulator(1, ChaosProfile()))
    m = backend.simulator.market
    symbol = m.symbol(m.default_expiry, "C", int(m.spot(0) // 5 * 5))
    for ref in ("GX000001-L0", "GX000001-L1", "GY000001-L0"):
        backend.submit(OrderRequest(order_ref=ref, group_id=ref[:-3], purpose=Purpose.ENTRY,
                                    legs=(Leg(symbol, Side.BUY),), quantity=1, order_type=OrderType.LIMIT,
                                    limit_price=Decimal("0.05"), time_in_force=TimeInForce.DAY))
    found = backend.find_orders("GX")
    assert set(found) == {"GX000001-L0", "GX000001-L1"}
    assert all(r.status is BrokerStatus.WORKING for r in found.values())
    scripted = ScriptedBackend()  # lists what was submitted to it (tests/executor/test_broker_truth.py)
    assert scripted.find_orders("G") == {}

    class Minimal(ScriptedBackend):
        find_orders = ExecutionBackend.find_orders  # the contract's default

    with pytest.raises(NotImplementedError, match="Minimal"):
        Minimal().find_orders("G")
