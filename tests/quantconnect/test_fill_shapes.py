"""Fill shapes LEAN brokerage plugins produce, through the real executor and LEAN's own record.

* a fill on an ``UPDATE_SUBMITTED`` event (an update in flight), then ``FILLED`` with fill
  quantity 0: booked once, the group commits, no cancel loop;
* a fill event that never reaches the executor: LEAN refuses the cancel as closed (-9), the
  executor reconciles from LEAN's tickets and recovers the fill; cancels stay bounded;
* ``reconcile`` / ``find_orders`` answer from LEAN's tickets (``quantity_filled``, order events);
* per-leg races of a combo: leg events in any order, a leg filled while another is canceled.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from atomic_orders.backends.quantconnect import QuantConnectBackend
from atomic_orders.backends.quantconnect.parsing import OrderEventTranslator
from atomic_orders.backends.quantconnect.symbols import SymbolMapper
from atomic_orders.fsm.events import Acknowledged, BrokerStatus, Canceled, Fill
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, Purpose
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript, FillAt, OrderMatch, Rest, Rule
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.lean.api import STAND_IN_API
from atomic_orders.simulator.lean.brokerage import BrokerageOrderEvent, LeanStandIn
from atomic_orders.simulator.lean.lean_types import OrderDirection, OrderEvent, OrderResponseErrorCode, OrderStatus
from tests.quantconnect.scenarios import ConsistencyAlgorithm
from tests.roles import condor_roles

HORIZON = 1000.0


def world(script: BrokerScript, algorithm: ConsistencyAlgorithm | None = None,
          **standin: Any) -> tuple[ConsistencyAlgorithm, LeanStandIn]:
    broker = BrokerSimulator(5, ChaosProfile.none(), script=script)
    algo = algorithm or ConsistencyAlgorithm()
    lean = LeanStandIn(algo, broker, **standin)
    return algo, lean


def condor(lean: LeanStandIn) -> tuple[OptionSymbol, OptionSymbol, OptionSymbol, OptionSymbol]:
    m = lean.broker.market
    return m.strikes_for_iron_condor(0.0, m.default_expiry, 10, 40.0)


def run(algo: ConsistencyAlgorithm, lean: LeanStandIn, group: AtomicOrderGroup, until: float = HORIZON) -> None:
    """Drive LEAN and the executor as a live algorithm does: events as they come, timers when due."""
    adapter = algo.adapter
    executor = adapter.executor
    while lean.seconds < until:
        times = [t for t in (lean.next_time(),) if t is not None]
        wake = executor.next_wakeup()
        if wake is not None:
            times.append(lean.broker.clock.to_seconds(wake))
        if not times:
            break
        lean.step(min(max(min(times), lean.seconds), until))
        adapter.poll()
        if group.is_terminal and not times:
            break


def lean_cancels(lean: LeanStandIn) -> int:
    """``cancel()`` calls on LEAN's tickets (every leg counts, accepted or refused)."""
    return lean.cancel_calls


class Forgetful(ConsistencyAlgorithm):
    """An algorithm whose event delivery loses every event that carries a fill (kept aside)."""

    lost: list[OrderEvent]

    def initialize(self) -> None:
        super().initialize()
        self.lost = []

    def on_order_event(self, order_event: OrderEvent) -> None:
        if order_event.fill_quantity:
            self.lost.append(order_event)
            return
        super().on_order_event(order_event)


# -- an update in flight: the fill on UPDATE_SUBMITTED, then FILLED with fill quantity 0 -------------


@pytest.mark.parametrize("mode", [ExecutionMode.COMBO, ExecutionMode.LEGGED])
def test_a_fill_on_update_submitted_then_filled_zero_is_booked_once_and_the_group_commits(
        mode: ExecutionMode) -> None:
    price = Decimal("-1.90") if mode is ExecutionMode.COMBO else None
    fill = FillAt(3.0, price) if price is not None else None
    rules = [Rule(OrderMatch(combo=True), (fill,))] if fill is not None else []
    algo, lean = world(BrokerScript(rules, default=(FillAt(3.0, Decimal("1.00")),)), fill_during_update=True)
    adapter = algo.adapter
    group = adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1, mode=mode)
    lean.run_until(2.5)
    adapter.poll()
    updated = []
    for ticket in group.tickets:
        if ticket.state == "submitted":  # put an update in flight on every working order
            limit = ticket.limit_price
            assert limit is not None
            tick = group.ticks.tick_for(abs(limit), ticket.is_combo)  # an update must stay on the tick
            assert ticket.update(limit_price=limit + tick).is_success
            updated.append(ticket.order_ref)
    run(algo, lean, group)
    assert updated
    for lean_ticket in algo.transactions.get_order_tickets(lambda t: t.tag in updated):
        # the shape under test: the fill on UPDATE_SUBMITTED, then FILLED without a fill quantity
        shape = [(e.status, e.fill_quantity != 0) for e in lean_ticket.order_events][-2:]
        assert shape == [(OrderStatus.UPDATE_SUBMITTED, True), (OrderStatus.FILLED, False)]
    assert group.state == "committed", (group.state, group.rollback_reason)
    entries = [t for t in group.tickets if t.purpose.value == "entry"]
    assert all(t.state == "filled" and t.quantity_filled == t.quantity for t in entries)
    assert sum(len(t.fills) for t in entries) == len(entries)  # one fill each, booked once
    backend = adapter.lean_backend
    broker = lean.broker.positions()
    assert group.ledger.positions() == broker
    assert dict(backend.positions()) == broker  # LEAN's portfolio misses these fills; the backend adds them
    off_book = {t.symbol for t in algo.transactions.get_order_tickets(lambda t: t.tag in updated)}
    assert all(algo.portfolio[s].quantity == 0 for s in off_book)  # LEAN's own portfolio does miss them
    assert adapter.executor.stats.cancels_sent == 0 and lean_cancels(lean) == 0


def test_with_fills_lost_lean_refuses_cancels_as_closed_and_the_executor_recovers_from_lean_tickets() -> None:
    algo, lean = world(BrokerScript([Rule(OrderMatch(combo=True), (FillAt(3.0, Decimal("-1.90")),))]),
                       algorithm=Forgetful())
    adapter = algo.adapter
    group = adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)
    run(algo, lean, group)
    assert len(algo.lost) == 4  # every leg's fill event was lost on the way
    (entry,) = [t for t in group.tickets if t.purpose.value == "entry"]
    lean_tickets = algo.transactions.get_order_tickets(lambda t: t.tag == entry.order_ref)
    assert all(t.status is OrderStatus.FILLED for t in lean_tickets)
    # the fill came back from LEAN's tickets: booked once, and the group is whole or undone
    assert entry.quantity_filled == 1 and len(entry.fills) == 1 and entry.fills[0].price == Decimal("-1.9")
    assert group.is_terminal and group.state in ("committed", "rolled_back")
    assert group.ledger.positions() == lean.broker.positions()
    assert adapter.lean_backend.translator.recovered_fills == 4
    # bounded: no loop of cancels refused as closed over 1,000 simulated seconds
    assert adapter.executor.stats.cancels_sent <= 5 and lean_cancels(lean) <= 5 * 4
    assert lean.seconds >= HORIZON - 1 or not lean.next_time()
    # the lost events arriving after all are not counted twice
    before = [len(t.fills) for t in group.tickets]
    for event in algo.lost:
        ConsistencyAlgorithm.on_order_event(algo, event)
    adapter.poll()
    assert [len(t.fills) for t in group.tickets] == before


def test_a_cancel_refused_because_the_order_is_closed_is_a_cancel_rejected() -> None:
    algo, lean = world(BrokerScript([Rule(OrderMatch(combo=True), (FillAt(1.0, Decimal("-1.90")),))]),
                       algorithm=Forgetful())
    backend = algo.adapter.lean_backend
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)
    lean.run_until(5.0)
    ref = group.tickets[0].order_ref
    backend.poll_events()
    for attempt in range(3):  # LEAN answers -9 every time (the refused request does not make it -23)
        backend.cancel(ref)
        *recovered, event = [be.event for be in backend.poll_events()]
        assert type(event).__name__ == "CancelRejected" and "INVALID_ORDER_STATUS" in event.reason
        # the first refusal also brings the fill LEAN's tickets hold but no event carried, once
        assert [(type(e), e.quantity) for e in recovered] == ([(Fill, 1)] if attempt == 0 else [])
    lean_ticket = algo.transactions.get_order_tickets(lambda t: t.tag == ref)[0]
    assert lean_ticket.cancel_request is not None and lean_ticket.cancel_request.response.error_code is (
        OrderResponseErrorCode.INVALID_ORDER_STATUS)


# -- reconcile and find_orders: LEAN's own record ----------------------------------------------------


def test_reconcile_reports_lean_quantity_filled_and_fills_rebuilt_from_order_events() -> None:
    algo, lean = world(BrokerScript([Rule(OrderMatch(combo=True), (FillAt(1.0, Decimal("-1.90"), 1),
                                                                   FillAt(2.0, Decimal("-1.80"), 1)))]),
                       algorithm=Forgetful())
    backend = algo.adapter.lean_backend
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=2)
    ref = group.tickets[0].order_ref
    lean.run_until(10.0)
    report = backend.reconcile([ref])[ref]
    assert report.status is BrokerStatus.FILLED and report.filled_quantity == 2
    # rebuilt in time order: each unit at the net it filled at, as the events would have said
    assert [(f.quantity, f.price) for f in report.fills] == [(1, Decimal("-1.9")), (1, Decimal("-1.8"))]
    assert report.listed_quantity == report.filled_quantity == report.broker_filled
    again = backend.reconcile([ref])[ref]
    assert again.fills == report.fills  # the same ids and quantities: nothing booked twice


def test_find_orders_reports_every_lean_order_with_the_prefix_even_from_an_earlier_session() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=True), (FillAt(1.0, Decimal("-1.90")),))], default=Rest())
    algo, lean = world(script)
    adapter = algo.adapter
    first = adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)
    second = adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=2, mode=ExecutionMode.LEGGED)
    lean.run_until(5.0)
    adapter.poll()
    backend = adapter.lean_backend
    found = backend.find_orders(first.group_id)
    assert sorted(found) == sorted(t.order_ref for t in first.tickets)
    assert found == dict(backend.reconcile(list(found)))
    assert all(ref.startswith(second.group_id) for ref in backend.find_orders(second.group_id))
    assert backend.find_orders("nobody") == {}
    # a new session (a restart) has never seen these orders: they are adopted from LEAN's record
    fresh = QuantConnectBackend(algo, STAND_IN_API)
    adopted = fresh.find_orders(first.group_id)
    (ref,) = [t.order_ref for t in first.tickets]
    assert adopted[ref].status is BrokerStatus.FILLED and adopted[ref].filled_quantity == 1
    assert [(f.quantity, f.price) for f in adopted[ref].fills] == [(1, Decimal("-1.9"))]
    legged = fresh.find_orders(second.group_id)
    assert {r.status for r in legged.values()} <= {BrokerStatus.WORKING, BrokerStatus.FILLED}
    assert all(r.broker_order_id and r.broker_order_id.startswith("QC") for r in legged.values())


# -- per-leg races of a combo -------------------------------------------------------------------------

EXPIRY = dt.date(2026, 1, 16)
SC = OptionSymbol.of("SPXW", EXPIRY, "C", 5050)
LC = OptionSymbol.of("SPXW", EXPIRY, "C", 5060)
T0 = dt.datetime(2026, 1, 5, 15, 0)
MAPPER = SymbolMapper(STAND_IN_API)


def translator(quantity: int) -> tuple[OrderEventTranslator, Any]:
    tr = OrderEventTranslator(STAND_IN_API)
    request = OrderRequest("G1-C", "G1", Purpose.ENTRY, (Leg(SC, Side.SELL), Leg(LC, Side.BUY)), quantity,
                           limit_price=Decimal("-1.20"))
    tracked = tr.track(request)
    tr.bind(tracked, 11, -1)
    tr.bind(tracked, 12, +1)
    return tr, tracked


def ev(order_id: int, event_id: int, status: OrderStatus, qty: float = 0.0, price: float = 0.0) -> OrderEvent:
    symbol = SC if order_id == 11 else LC
    return OrderEvent(order_id, event_id, MAPPER.to_lean(symbol), T0 + dt.timedelta(seconds=event_id), status,
                      OrderDirection.SELL if order_id == 11 else OrderDirection.BUY, 0.0, price, qty)


def record(history: list[OrderEvent], statuses: dict[int, OrderStatus]) -> list[Any]:
    return [SimpleNamespace(order_id=oid, status=statuses[oid], order_events=[e for e in history if e.order_id == oid],
                            quantity_filled=sum(e.fill_quantity for e in history if e.order_id == oid))
            for oid in (11, 12)]


SPLIT_FILLS = [ev(11, 2, OrderStatus.PARTIALLY_FILLED, -1, 3.00), ev(11, 3, OrderStatus.FILLED, -1, 3.20),
               ev(12, 2, OrderStatus.PARTIALLY_FILLED, 1, 1.50), ev(12, 3, OrderStatus.UPDATE_SUBMITTED, 1, 1.40),
               ev(12, 4, OrderStatus.FILLED)]


def interleavings() -> list[list[OrderEvent]]:
    """Every arrival order of the two legs' events that keeps each leg's own order (LEAN numbers them)."""
    first = [e for e in SPLIT_FILLS if e.order_id == 11]
    second = [e for e in SPLIT_FILLS if e.order_id == 12]
    out = []
    for slots in itertools.combinations(range(len(SPLIT_FILLS)), len(first)):
        a, b = iter(first), iter(second)
        out.append([next(a) if i in slots else next(b) for i in range(len(SPLIT_FILLS))])
    return out


@pytest.mark.parametrize("history", interleavings())
def test_leg_events_in_any_order_give_the_same_units_and_net(history: list[OrderEvent]) -> None:
    tr, tracked = translator(2)
    out = [be.event for e in history for be in tr.translate(e)]
    fills = [e for e in out if isinstance(e, Fill)]
    assert sum(f.quantity for f in fills) == 2 and not any(isinstance(e, Canceled) for e in out)
    net = sum((f.quantity * f.price for f in fills), Decimal(0))
    assert net == Decimal("-6.20") + Decimal("2.90")  # -(3.00 + 3.20) + (1.50 + 1.40)
    report = tr.report(tracked, record(history, {11: OrderStatus.FILLED, 12: OrderStatus.FILLED}))
    assert report.status is BrokerStatus.FILLED and report.filled_quantity == 2 and report.fills == tuple(fills)


def test_a_leg_filled_while_the_other_is_canceled_is_a_cancel_with_no_unit() -> None:
    tr, tracked = translator(1)
    history = [ev(12, 2, OrderStatus.FILLED, 1, 1.50), ev(11, 2, OrderStatus.CANCELED)]
    out = [be.event for e in history for be in tr.translate(e) if not isinstance(be.event, Acknowledged)]
    assert [type(e) for e in out] == [Canceled] and tr.anomalies  # an uneven combo is reported
    report = tr.report(tracked, record(history, {11: OrderStatus.CANCELED, 12: OrderStatus.FILLED}))
    assert report.status is BrokerStatus.CANCELED and report.filled_quantity == 0 and report.fills == ()
    # the canceled leg fills after all (LEAN flips it back): the unit is complete, the record says FILLED
    late = ev(11, 3, OrderStatus.FILLED, -1, 3.10)
    out = [be.event for be in tr.translate(late)]
    assert [(type(e), getattr(e, "quantity", None)) for e in out] == [(Fill, 1)]
    history.append(late)
    report = tr.report(tracked, record(history, {11: OrderStatus.FILLED, 12: OrderStatus.FILLED}))
    assert report.status is BrokerStatus.FILLED and report.filled_quantity == 1


def test_a_late_partial_fill_after_canceled_keeps_the_leg_closed_in_the_report() -> None:
    tr, tracked = translator(2)
    history = [ev(11, 2, OrderStatus.CANCELED), ev(12, 2, OrderStatus.CANCELED),
               ev(11, 3, OrderStatus.PARTIALLY_FILLED, -1, 3.0), ev(12, 3, OrderStatus.PARTIALLY_FILLED, 1, 1.0)]
    out = [be.event for e in history for be in tr.translate(e) if not isinstance(be.event, Acknowledged)]
    assert [type(e) for e in out] == [Canceled, Fill]
    statuses = {11: OrderStatus.PARTIALLY_FILLED, 12: OrderStatus.PARTIALLY_FILLED}  # LEAN flipped them back
    report = tr.report(tracked, record(history, statuses))
    assert report.status is BrokerStatus.CANCELED and report.filled_quantity == 1 and len(report.fills) == 1


def test_a_fill_on_any_status_is_booked_once_and_a_zero_fill_status_never_makes_one() -> None:
    for status in (OrderStatus.UPDATE_SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                   OrderStatus.CANCELED, OrderStatus.CANCEL_PENDING, OrderStatus.SUBMITTED):
        tr = OrderEventTranslator(STAND_IN_API)
        tracked = tr.track(OrderRequest("G1-L1", "G1", Purpose.ENTRY, (Leg(SC, Side.SELL),), 1,
                                        limit_price=Decimal("2.00")))
        tr.bind(tracked, 5, -1)
        carrying = OrderEvent(5, 2, MAPPER.to_lean(SC), T0, status, OrderDirection.SELL, -1.0, 2.05, -1.0)
        fills = [be.event for e in (carrying, carrying) for be in tr.translate(e) if isinstance(be.event, Fill)]
        assert [(f.fill_id, f.quantity, f.price) for f in fills] == [("QC5-2", 1, Decimal("2.05"))], status
        closing = OrderEvent(5, 3, MAPPER.to_lean(SC), T0, OrderStatus.FILLED, OrderDirection.SELL, -1.0, 2.10, 0.0)
        assert not [be for be in tr.translate(closing) if isinstance(be.event, Fill)]


# -- the stand-in produces LEAN's shapes --------------------------------------------------------------


def test_standin_fill_during_update_and_closed_cancel_refusals() -> None:
    algo, lean = world(BrokerScript([Rule(OrderMatch(combo=False), (FillAt(3.0, Decimal("2.00")),))]),
                       algorithm=Forgetful(), fill_during_update=True)
    symbol = lean.symbols.to_lean(condor(lean)[0])
    algo.add_index_option_contract(symbol)
    ticket = algo.limit_order(symbol, -1, 2.00, tag="S1")
    lean.run_until(2.5)
    from atomic_orders.simulator.lean.lean_types import UpdateOrderFields
    assert ticket.update(UpdateOrderFields(limit_price=2.05)).is_success
    lean.run_until(4.0)
    assert [(e.status, e.fill_quantity) for e in ticket.order_events][-2:] == [
        (OrderStatus.UPDATE_SUBMITTED, -1.0), (OrderStatus.FILLED, 0.0)]
    assert ticket.status is OrderStatus.FILLED and ticket.quantity_filled == -1.0
    assert algo.portfolio[symbol].quantity == 0.0  # LEAN's portfolio takes fill statuses only
    first = ticket.cancel("mine")
    assert first.error_code is OrderResponseErrorCode.INVALID_ORDER_STATUS
    assert "already has FILLED status" in first.error_message and ticket.tag == "mine"
    assert ticket.cancel().error_code is OrderResponseErrorCode.INVALID_ORDER_STATUS  # not -23


def test_standin_a_queued_cancel_finding_the_order_filled_ends_minus_9_without_an_event() -> None:
    algo, lean = world(BrokerScript([Rule(OrderMatch(combo=False), (FillAt(1.5, Decimal("2.00")),))]))
    symbol = lean.symbols.to_lean(condor(lean)[0])
    algo.add_index_option_contract(symbol)
    ticket = algo.limit_order(symbol, -1, 2.00, tag="S1")
    lean.run_until(1.0)
    assert ticket.cancel().is_success  # accepted for processing (request_delay 1 s)
    lean.run_until(5.0)
    assert ticket.status is OrderStatus.FILLED
    assert ticket.cancel_request is not None
    assert ticket.cancel_request.response.error_code is OrderResponseErrorCode.INVALID_ORDER_STATUS
    assert [e.status for e in ticket.order_events][-1] is OrderStatus.FILLED  # no event for the refusal


def test_standin_brokerage_events_apply_lean_handler_rules() -> None:
    algo, lean = world(BrokerScript([], default=Rest()))
    symbol = lean.symbols.to_lean(condor(lean)[0])
    algo.add_index_option_contract(symbol)
    ticket = algo.limit_order(symbol, -2, 2.00, tag="S1")
    lean.run_until(1.0)
    lean.brokerage_events([BrokerageOrderEvent(ticket.order_id, OrderStatus.NONE, -1, 2.0)])
    assert ticket.quantity_filled == -1.0 and algo.portfolio[symbol].quantity == 0.0
    assert ticket.order_events[-1].status is OrderStatus.NONE and lean.events[-1].status is OrderStatus.NONE
    lean.brokerage_events([BrokerageOrderEvent(ticket.order_id, OrderStatus.FILLED, -1, 2.1),
                           BrokerageOrderEvent(ticket.order_id, OrderStatus.INVALID)])
    assert ticket.status is OrderStatus.FILLED and algo.portfolio[symbol].quantity == -1.0
