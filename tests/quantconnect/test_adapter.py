"""TastytradeIntegrationAdapter: backend choice, the single path out, LEAN tickets, live TastyTrade."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from atomic_orders.backends.quantconnect import (
    LeanUnavailable,
    QuantConnectBackend,
    TastytradeIntegrationAdapter,
    lean_api_for,
)
from atomic_orders.backends.scripted import ScriptedBackend
from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript, FillAt, OrderMatch, Rule
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.lean.algorithm import QCAlgorithm
from atomic_orders.simulator.lean.brokerage import LeanStandIn
from atomic_orders.simulator.lean.lean_types import OrderEvent, OrderStatus, UpdateOrderFields
from tests.quantconnect.scenarios import ConsistencyAlgorithm
from tests.roles import condor_roles

ROOT = Path(__file__).resolve().parents[2]
#: LEAN's order-placing methods (QCAlgorithm.Trading.cs) and ticket requests.
LEAN_ORDER_METHODS = frozenset({
    "market_order", "limit_order", "stop_market_order", "stop_limit_order", "limit_if_touched_order",
    "market_on_open_order", "market_on_close_order", "combo_market_order", "combo_limit_order",
    "combo_leg_limit_order", "submit_order_request", "set_holdings", "liquidate", "buy", "sell", "order",
    "trailing_stop_order", "exercise_option",
})


def standin(script: BrokerScript | None = None, *, live: bool = False,
            algorithm: QCAlgorithm | None = None) -> tuple[ConsistencyAlgorithm, LeanStandIn]:
    broker = BrokerSimulator(11, ChaosProfile.none(), script=script or BrokerScript([]))
    algo = algorithm or ConsistencyAlgorithm()
    lean = LeanStandIn(algo, broker, live_mode=live)
    return algo, lean  # type: ignore[return-value]


def condor(lean: LeanStandIn) -> tuple[object, ...]:
    m = lean.broker.market
    return m.strikes_for_iron_condor(0.0, m.default_expiry, 10, 40.0)


def test_backtest_routes_through_lean_and_live_without_credentials_too() -> None:
    algo, _ = standin()
    assert algo.adapter.backend_kind == "quantconnect" and isinstance(algo.adapter.backend, QuantConnectBackend)
    live, _ = standin(live=True)
    assert live.adapter.backend_kind == "quantconnect"


def test_explicit_override_and_half_configured_live_mode() -> None:
    algo, _ = standin()
    override = ScriptedBackend()
    adapter = TastytradeIntegrationAdapter(algo, backend=override)
    assert adapter.backend is override and adapter.backend_kind == "override"
    live, _ = standin(live=True)
    with pytest.raises(ValidationError, match="credentials") as info:
        TastytradeIntegrationAdapter(live, tastytrade=TastytradeConfig(account_number="5WT00001"))
    assert info.value.field == "credentials"
    with pytest.raises(ValidationError) as info:
        TastytradeIntegrationAdapter(live, credentials=OAuthCredentials("s3cret-value", "r3fresh-value"))
    assert info.value.field == "tastytrade" and "s3cret" not in str(info.value)


def test_outside_lean_without_a_stand_in_the_lean_names_are_unavailable() -> None:
    with pytest.raises(LeanUnavailable, match="LEAN is not available"):
        lean_api_for(object())


def test_live_with_tastytrade_credentials_orders_go_to_tastytrade_not_lean() -> None:
    from atomic_orders.simulator.emulator import TastytradeEmulator

    script = BrokerScript([Rule(OrderMatch(combo=True), (FillAt(2.0, Decimal("-2.00")),))])
    broker = BrokerSimulator(11, ChaosProfile.none(), script=script)
    with TastytradeEmulator(broker).start() as emulator:
        config = TastytradeConfig(account_number=emulator.account_number, base_url=emulator.url,
                                  backoff_base=0.01, backoff_max=0.05)

        class LiveAlgorithm(QCAlgorithm):
            def initialize(self) -> None:
                self.adapter = TastytradeIntegrationAdapter(self, tastytrade=config,
                                                            credentials=emulator.credentials())

            def on_order_event(self, order_event: OrderEvent) -> None:
                self.adapter.on_order_event(order_event)

        algo = LiveAlgorithm()
        lean = LeanStandIn(algo, broker, live_mode=True)
        adapter = algo.adapter
        assert adapter.backend_kind == "tastytrade" and isinstance(adapter.backend, TastytradeBackend)
        group = adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=2)  # type: ignore[arg-type]
        backend = adapter.backend
        assert isinstance(backend, TastytradeBackend)
        while not group.is_terminal and broker.clock.seconds < 120:
            times = [t for t in (broker.next_event_time(),) if t is not None]
            times.append(broker.clock.to_seconds(backend.next_poll_time()))
            wake = adapter.executor.next_wakeup()
            if wake is not None:
                times.append(broker.clock.to_seconds(wake))
            emulator.advance_to(max(min(times), broker.clock.seconds))
            adapter.poll()
        client = backend.client
        assert group.state == "committed"
        assert lean.sent == [] and algo.transactions.get_order_tickets() == []  # LEAN never saw an order
        assert adapter.positions() == group.ledger.positions() == broker.positions()
        assert all(algo.portfolio[s].quantity == 0 for s in list(algo.securities))  # LEAN's portfolio is blind
        assert emulator.orders_with_external_id(group.tickets[0].order_ref)
        client.close()


def test_lean_ticket_code_works_on_executor_tickets() -> None:
    algo, lean = standin()
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)  # type: ignore[arg-type]
    lean.run_until(1.0)
    algo.adapter.poll()
    ticket = group.tickets[0]
    assert ticket.Status == ticket.status == "submitted" and ticket.QuantityFilled == 0
    lean_tickets = algo.transactions.get_order_tickets()
    response = ticket.update(UpdateOrderFields(limit_price=-2.5))
    assert response.is_success and ticket.state == "update_pending"
    assert all(t.update_requests[-1].limit_price == -2.5 for t in lean_tickets)  # every leg, one group limit
    lean.run_until(3.0)
    algo.adapter.poll()
    assert ticket.limit_price == Decimal("-2.5") and ticket.state == "submitted"
    response = ticket.Cancel()
    assert response.IsSuccess and ticket.state == "cancel_pending"
    assert all(t.status is OrderStatus.CANCEL_PENDING for t in lean_tickets)
    lean.run_until(10.0, stop=lambda: group.is_terminal)
    algo.adapter.poll()
    assert group.state == "rolled_back" and ticket.state == "canceled"
    assert not ticket.cancel().is_success


def test_an_order_placed_around_the_executor_is_kept_and_alerted() -> None:
    algo, lean = standin()
    sc = condor(lean)[0]
    symbol = algo.adapter.lean_backend.symbols.to_lean(sc)  # type: ignore[arg-type]
    algo.add_index_option_contract(symbol)
    algo.limit_order(symbol, -1, 5.0, tag="manual")
    lean.run_until(2.0)
    assert [e.status for e in algo.adapter.foreign_events] == [OrderStatus.SUBMITTED]
    assert any("placed around the executor" in line for line in algo.errors)
    assert algo.adapter.executor.stats.orders_sent == 0


def test_lean_symbols_are_accepted_and_legged_mode_sends_single_leg_limits() -> None:
    algo, lean = standin()
    mapper = algo.adapter.lean_backend.symbols
    legs = [mapper.to_lean(s) for s in condor(lean)]  # type: ignore[arg-type]
    group = algo.adapter.execute_iron_condor(**condor_roles(legs), quantity=1, mode=ExecutionMode.LEGGED)
    assert group.state == "executing"
    assert lean.sent and all(not r.is_combo for r in lean.sent)
    assert all(t.order_type.name == "LIMIT" for t in algo.transactions.get_order_tickets())


def _lean_calls(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.func.attr, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEAN_ORDER_METHODS]


def test_only_the_backend_calls_lean_order_methods() -> None:
    files = [*sorted((ROOT / "backends" / "quantconnect").glob("*.py")),
             ROOT / "simulator" / "cli" / "examples" / "iron_condor_algorithm.py"]
    offenders = {}
    for path in files:
        calls = _lean_calls(path)
        if path.name != "backend.py" and calls:
            offenders[str(path.relative_to(ROOT))] = calls
    assert offenders == {}
    assert {name for name, _ in _lean_calls(ROOT / "backends" / "quantconnect" / "backend.py")} == {
        "combo_limit_order", "limit_order", "market_order"}


def test_every_lean_order_belongs_to_an_executor_group() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=True), (FillAt(1.0, Decimal("-2.00")),))])
    algo, lean = standin(script)
    for _ in range(3):
        algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)  # type: ignore[arg-type]
    lean.run_until(30.0, stop=lambda: not algo.adapter.open_groups())
    algo.adapter.poll()
    tickets = algo.transactions.get_order_tickets()
    assert len(tickets) == 12 and all(algo.adapter.executor.owns_order(t.tag) for t in tickets)
    assert set(algo.adapter.outcomes.values()) == {"committed"}
    combo = algo.adapter.executor.groups()[0].tickets[0]
    assert combo.AverageFillPrice == combo.average_fill_price == Decimal("-2")
    # the fill, then the executor's look at LEAN's record before the group settles (it confirms)
    assert [(r.trigger, r.dest) for r in combo.OrderEvents][-2:] == [("fill", "filled"), ("reconciled", "filled")]
    assert [r.dest for r in combo.OrderEvents][:2] == ["submitting", "submitted"]
    assert combo.broker_confirms
    assert combo.QuantityRemaining == 0 and combo.Tag == combo.tag == combo.OrderId
    assert sum(1 for line in algo.logs if "committed" in line) == 3
    assert algo.time.tzinfo is None and algo.time.date() == dt.date(2026, 1, 5)


def test_reconcile_answers_from_lean_tickets_with_the_fills_already_reported() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=True), (FillAt(1.0, Decimal("-2.00")),))])
    algo, lean = standin(script)
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=2)  # type: ignore[arg-type]
    backend = algo.adapter.lean_backend
    ref = group.tickets[0].order_ref
    assert backend.reconcile([ref])[ref].status.value == "working"
    lean.run_until(10.0, stop=lambda: group.is_terminal)
    algo.adapter.poll()
    reports = backend.reconcile([ref, "G999999-C"])
    assert reports["G999999-C"].status.value == "not_found"
    assert reports[ref].status.value == "filled" and reports[ref].fills == tuple(group.tickets[0].fills)
    assert reports[ref].broker_order_id == group.tickets[0].broker_order_id


def test_combo_market_orders_are_refused_before_reaching_lean() -> None:
    from atomic_orders.fsm.group import AtomicOrderGroup
    from atomic_orders.fsm.leg import Leg, Side
    from atomic_orders.fsm.orders import OrderType

    algo, lean = standin()
    sc, lc, _sp, _lp = condor(lean)
    group = AtomicOrderGroup("M1", [Leg(lc, Side.BUY), Leg(sc, Side.SELL)], 1,  # type: ignore[arg-type]
                             order_type=OrderType.MARKET)
    algo.adapter.execute(group)
    assert group.tickets[0].state == "rejected" and "ComboMarket" in (group.tickets[0].reason or "")
    assert lean.sent == [] and algo.transactions.get_order_tickets() == []


def test_events_fired_inside_lean_calls_never_re_enter_the_executor() -> None:
    algo, lean = standin()
    adapter = algo.adapter
    seen: list[bool] = []
    original = adapter.executor.process_events

    def spy() -> int:
        seen.append(adapter.lean_backend.in_lean_call)
        return original()

    adapter.executor.process_events = spy  # type: ignore[method-assign]
    group = adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)  # type: ignore[arg-type]
    lean.run_until(1.0)
    adapter.poll()
    group.tickets[0].cancel()  # user code, outside the adapter: LEAN fires CANCEL_PENDING inside
    assert adapter.lean_backend.has_events() is False
    lean.run_until(10.0, stop=lambda: group.is_terminal)
    adapter.poll()
    assert group.state == "rolled_back" and seen and not any(seen)


def test_a_leg_that_is_not_a_symbol_is_refused_naming_the_leg() -> None:
    algo, lean = standin()
    sc, lc, _sp, lp = condor(lean)
    with pytest.raises(ValidationError) as info:
        algo.adapter.execute_iron_condor(short_call=sc, long_call=lc, short_put="SPXW 5000P", long_put=lp, quantity=1)
    assert info.value.field == "short_put" and "SPXW 5000P" in str(info.value.value)
    assert lean.sent == [] and algo.adapter.executor.groups() == []


def test_lean_status_comparisons_work_on_executor_tickets() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=True), (FillAt(1.0, Decimal("-2.00")),))])
    algo, lean = standin(script)
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)  # type: ignore[arg-type]
    ticket = group.tickets[0]
    assert ticket.status == OrderStatus.NEW and ticket.Status != OrderStatus.SUBMITTED  # our submit in flight
    lean.run_until(0.5)
    algo.adapter.poll()
    assert ticket.status == OrderStatus.SUBMITTED and OrderStatus.SUBMITTED == ticket.status  # noqa: SIM300 - both operand orders
    assert ticket.status != OrderStatus.FILLED and ticket.status not in (OrderStatus.FILLED, OrderStatus.CANCELED)
    lean.run_until(10.0, stop=lambda: group.is_terminal)
    algo.adapter.poll()
    assert ticket.status == OrderStatus.FILLED and ticket.status == "filled" and ticket.status != 3.0
    assert [t.status for t in algo.transactions.get_order_tickets()] == [ticket.status] * 4  # LEAN's own agree


def test_lean_update_fields_are_validated_on_executor_tickets() -> None:
    algo, lean = standin()
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=2, mode=ExecutionMode.LEGGED)  # type: ignore[arg-type]
    lean.run_until(1.0)
    algo.adapter.poll()
    sell = next(t for t in group.tickets if t.legs[0].side.sign < 0)
    buy = next(t for t in group.tickets if t.legs[0].side.sign > 0)
    for ticket, raw, field, text in ((buy, -2, "quantity", "reverse"), (sell, 3, "quantity", "reverse"),
                                     (sell, -1.5, "quantity", "whole"),
                                     (sell, "abc", "limit_price", "not a number")):
        fields = UpdateOrderFields(limit_price=raw) if field == "limit_price" else UpdateOrderFields(quantity=raw)
        with pytest.raises(ValidationError, match=text) as info:
            ticket.update(fields)
        assert (info.value.field, info.value.value) == (field, raw)
    assert all(t.update_requests == [] for t in algo.transactions.get_order_tickets())  # nothing was sent
    assert buy.state == "submitted"  # legged: the long legs go first
    assert buy.update(UpdateOrderFields(quantity=2, limit_price=0.05)).is_success and buy.state == "update_pending"
    sent = [t.update_requests[-1] for t in algo.transactions.get_order_tickets() if t.update_requests]
    assert [(f.quantity, f.limit_price) for f in sent] == [(2.0, 0.05)]  # LEAN's signed quantity: a buy
    lean.run_until(3.0)
    algo.adapter.poll()
    assert buy.state == "submitted" and buy.limit_price == Decimal("0.05")


def test_a_credit_condor_is_one_combo_limit_with_a_negative_signed_net() -> None:
    algo, lean = standin()
    sc, lc, sp, lp = condor(lean)
    group = algo.adapter.execute_iron_condor(short_call=sc, long_call=lc, short_put=sp, long_put=lp, quantity=3,
                                             limit_price=Decimal("0.50"))
    ticket = group.tickets[0]
    assert ticket.limit_price is not None and ticket.limit_price <= Decimal("-0.50")  # collect at least 0.50
    lean_tickets = algo.transactions.get_order_tickets()
    orders = [algo.transactions.get_order_by_id(t.order_id) for t in lean_tickets]
    managers = {id(o.group_order_manager) for o in orders if o is not None}
    assert len(managers) == 1  # one LEAN combo
    manager = orders[0].group_order_manager  # type: ignore[union-attr]
    assert manager is not None and (manager.quantity, manager.limit_price) == (3, float(ticket.limit_price))
    mapper = algo.adapter.lean_backend.symbols
    assert {t.symbol: t.quantity for t in lean_tickets} == {  # leg quantity = signed ratio x group quantity
        mapper.to_lean(sc): -3.0, mapper.to_lean(lc): 3.0, mapper.to_lean(sp): -3.0,  # type: ignore[arg-type]
        mapper.to_lean(lp): 3.0}  # type: ignore[arg-type]
    (sent,) = lean.sent
    assert sent.limit_price == ticket.limit_price and sent.quantity == 3  # the broker saw the same signed net


def test_an_update_confirmed_inside_the_lean_update_call_is_not_lost() -> None:
    algo, lean = standin()
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)  # type: ignore[arg-type]
    lean.run_until(1.0)
    algo.adapter.poll()
    for lean_ticket in algo.transactions.get_order_tickets():
        original = lean_ticket.update

        def confirming(fields: UpdateOrderFields, _t: object = lean_ticket, _u: object = original) -> object:
            # a brokerage that confirms before the call returns: UPDATE_SUBMITTED fires inside update()
            response = _u(fields)  # type: ignore[operator]
            lean._dispatch([lean._event(_t, OrderStatus.UPDATE_SUBMITTED)])  # type: ignore[arg-type]
            return response

        lean_ticket.update = confirming  # type: ignore[method-assign]
    ticket = group.tickets[0]
    assert ticket.update(limit_price=Decimal("-2.40")).is_success
    algo.adapter.poll()
    assert ticket.state == "submitted" and ticket.limit_price == Decimal("-2.40")


def test_a_refused_cancel_leaves_an_update_in_flight_counted() -> None:
    from atomic_orders.simulator.lean.lean_types import OrderResponse, OrderResponseErrorCode

    algo, lean = standin()
    group = algo.adapter.execute_iron_condor(**condor_roles(condor(lean)), quantity=1)  # type: ignore[arg-type]
    lean.run_until(1.0)
    algo.adapter.poll()
    backend = algo.adapter.backend
    assert isinstance(backend, QuantConnectBackend)
    ref = group.tickets[0].order_ref
    backend.replace(ref, Decimal("-2.40"))  # accepted by LEAN, not confirmed yet
    tracked = backend.translator.tracked(ref)
    assert tracked is not None and tracked.pending_updates == 1
    for lean_ticket in algo.transactions.get_order_tickets():
        lean_ticket.cancel = lambda tag=None, _t=lean_ticket: OrderResponse(  # type: ignore[method-assign]
            int(_t.order_id), OrderResponseErrorCode.BROKERAGE_FAILED_TO_CANCEL_ORDER, "refused")
    backend.cancel(ref)  # refused on every leg: reported as a CancelRejected, the update is untouched
    assert tracked.pending_updates == 1
    assert [type(be.event).__name__ for be in backend.poll_events()][-1] == "CancelRejected"
