"""The LEAN stand-in reproduces the LEAN rules the adapter depends on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from atomic_orders.fsm.leg import Side
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript, FillAt, FillOnCancel, OrderMatch, Rule
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.lean.algorithm import QCAlgorithm
from atomic_orders.simulator.lean.brokerage import LeanStandIn
from atomic_orders.simulator.lean.lean_types import (
    BrokerageName,
    Leg,
    OptionStrategies,
    OrderEvent,
    OrderResponseErrorCode,
    OrderStatus,
    Symbol,
    UpdateOrderFields,
)


class Recorder(QCAlgorithm):
    """Records every event with the status its ticket had when the callback ran."""

    def initialize(self) -> None:
        self.seen: list[tuple[int, OrderStatus, float]] = []
        self.inside_cancel = False
        self.seen_inside_cancel: list[OrderStatus] = []

    def on_order_event(self, order_event: OrderEvent) -> None:
        self.seen.append((order_event.order_id, order_event.status, order_event.fill_quantity))
        if self.inside_cancel:
            self.seen_inside_cancel.append(order_event.status)


def setup(script: BrokerScript | None = None, **kwargs: object) -> tuple[Recorder, LeanStandIn, list[Leg]]:
    broker = BrokerSimulator(3, ChaosProfile.none(), script=script or BrokerScript([]))
    algo = Recorder()
    lean = LeanStandIn(algo, broker, **kwargs)  # type: ignore[arg-type]
    m = broker.market
    sc, lc, sp, lp = m.strikes_for_iron_condor(0.0, m.default_expiry, 10, 40.0)
    legs = [Leg.create(lean.symbols.to_lean(s), q) for s, q in ((lp, 1), (sp, -1), (sc, -1), (lc, 1))]  # type: ignore[arg-type]
    return algo, lean, legs


def test_cancel_pending_fires_inside_cancel_and_one_leg_cancels_the_combo_in_backtests() -> None:
    algo, lean, legs = setup()
    tickets = algo.combo_limit_order(legs, 1, -1.50, tag="T1")
    assert [t.status for t in tickets] == [OrderStatus.NEW] * 4
    early = tickets[0].cancel()
    assert early.error_code is OrderResponseErrorCode.INVALID_NEW_ORDER_STATUS
    lean.run_until(1.0)
    assert [t.status for t in tickets] == [OrderStatus.SUBMITTED] * 4
    algo.inside_cancel = True
    response = tickets[0].cancel()
    algo.inside_cancel = False
    assert response.is_success and algo.seen_inside_cancel == [OrderStatus.CANCEL_PENDING]
    assert tickets[0].cancel().error_code is OrderResponseErrorCode.REQUEST_CANCELED
    lean.run_until(5.0)
    assert [t.status for t in tickets] == [OrderStatus.CANCELED] * 4
    pending = [oid for oid, status, _ in algo.seen if status is OrderStatus.CANCEL_PENDING]
    assert pending == [tickets[0].order_id]  # only the leg whose ticket was canceled went through CancelPending
    assert tickets[1].cancel().error_code is OrderResponseErrorCode.INVALID_ORDER_STATUS
    assert len(lean.sent) == 1 and lean.sent[0].is_combo


def test_combo_fill_is_one_batch_applied_before_callbacks() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=True), (FillAt(2.0, Decimal("-1.40")),))])
    algo, lean, legs = setup(script)
    snapshots: list[list[float]] = []
    tickets = algo.combo_limit_order(legs, 2, -1.30, tag="T1")
    original = algo.on_order_event

    def spy(event: OrderEvent) -> None:
        if event.status is OrderStatus.FILLED:
            snapshots.append([t.quantity_filled for t in tickets])
        original(event)

    algo.on_order_event = spy  # type: ignore[method-assign]
    lean.run_until(10.0)
    assert [t.status for t in tickets] == [OrderStatus.FILLED] * 4
    assert snapshots[0] == [2.0, -2.0, -2.0, 2.0]  # every leg already filled when the first callback runs
    net = sum(Decimal(repr(t.average_fill_price)) * (1 if t.quantity > 0 else -1) for t in tickets)
    assert net == Decimal("-1.40")
    assert [algo.portfolio[leg.symbol].quantity for leg in legs] == [2.0, -2.0, -2.0, 2.0]


def test_a_fill_after_canceled_is_applied_and_flips_the_status() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=False), FillOnCancel(Decimal("3.10"), quantity=1, late=True))])
    algo, lean, legs = setup(script)
    ticket = algo.limit_order(legs[1].symbol, -3, 3.20, tag="S1")
    lean.run_until(1.0)
    ticket.cancel()
    lean.run_until(60.0)
    assert ticket.status is OrderStatus.PARTIALLY_FILLED and ticket.quantity_filled == -1.0
    statuses = [s for _, s, _ in algo.seen]
    assert statuses.index(OrderStatus.CANCELED) < statuses.index(OrderStatus.PARTIALLY_FILLED)
    assert algo.portfolio[legs[1].symbol].quantity == -1.0


def test_the_tastytrade_plugin_drops_fills_after_close_when_asked() -> None:
    script = BrokerScript([Rule(OrderMatch(combo=False), FillOnCancel(Decimal("3.10"), quantity=1, late=True))])
    algo, lean, legs = setup(script, drop_fills_after_close=True)
    ticket = algo.limit_order(legs[1].symbol, -3, 3.20, tag="S1")
    lean.run_until(1.0)
    ticket.cancel()
    lean.run_until(60.0)
    assert ticket.status is OrderStatus.CANCELED and len(lean.dropped_fills) == 1


def test_combo_market_is_refused_under_the_tastytrade_model() -> None:
    algo, lean, legs = setup()
    algo.set_brokerage_model(BrokerageName.TASTYTRADE)
    tickets = algo.combo_market_order(legs, 1)
    assert [t.status for t in tickets] == [OrderStatus.INVALID] * 4
    assert lean.sent == [] and [s for _, s, _ in algo.seen] == [OrderStatus.INVALID] * 4


def test_buying_the_iron_condor_strategy_is_a_combo_market_order() -> None:
    algo, lean, legs = setup(BrokerScript([Rule(OrderMatch(combo=True), (FillAt(0.5, Decimal("-2.00")),))]))
    lp, sp, sc, lc = (leg.symbol for leg in legs)
    assert sc.underlying is not None
    canonical = Symbol.create_canonical_option(sc.underlying, "SPXW")
    strategy = OptionStrategies.iron_condor(canonical, lp.id.strike_price, sp.id.strike_price, sc.id.strike_price,
                                            lc.id.strike_price, sc.id.date)
    assert [(leg.symbol, leg.quantity) for leg in strategy.legs] == [(lp, 1), (sp, -1), (sc, -1), (lc, 1)]
    algo.set_brokerage_model(BrokerageName.TASTYTRADE)
    refused = algo.buy(strategy, 1)
    assert [t.status for t in refused] == [OrderStatus.INVALID] * 4 and lean.sent == []
    algo.set_brokerage_model(BrokerageName.DEFAULT)
    tickets = algo.buy(strategy, 2)
    assert lean.sent[0].order_type.value == "market"
    lean.run_until(5.0)
    assert [t.status for t in tickets] == [OrderStatus.FILLED] * 4
    assert [algo.portfolio[s].quantity for s in (lp, sp, sc, lc)] == [2.0, -2.0, -2.0, 2.0]  # a credit condor
    with pytest.raises(ValueError, match="canonical"):
        OptionStrategies.iron_condor(sc, 1.0, 2.0, 3.0, 4.0, sc.id.date)


def test_pre_order_checks_and_argument_errors() -> None:
    algo, lean, legs = setup()
    refused = algo.combo_limit_order(legs, 0, -1.0)
    assert len(refused) == 1 and refused[0].order_id == -10 and refused[0].status is OrderStatus.INVALID
    assert algo.seen == [] and lean.sent == []
    with pytest.raises(ValueError, match="greatest common divisor"):
        algo.combo_limit_order([Leg.create(legs[0].symbol, 2), Leg.create(legs[1].symbol, -2)], 1, -1.0)
    with pytest.raises(ValueError, match="non-zero limit"):
        algo.combo_limit_order(legs, 1, 0.0)


def test_live_mode_sends_a_combo_cancel_only_when_every_leg_asked() -> None:
    algo, lean, legs = setup(live_mode=True)
    tickets = algo.combo_limit_order(legs, 1, -1.50, tag="T1")
    lean.run_until(1.0)
    tickets[0].cancel()
    lean.run_until(5.0)
    assert tickets[0].status is OrderStatus.CANCEL_PENDING
    assert [t.status for t in tickets[1:]] == [OrderStatus.SUBMITTED] * 3  # the plugin's silent no-op
    for t in tickets[1:]:
        t.cancel()
    lean.run_until(10.0)
    assert [t.status for t in tickets] == [OrderStatus.CANCELED] * 4


def test_update_reaches_the_broker_and_confirms_with_update_submitted() -> None:
    algo, lean, legs = setup()
    tickets = algo.combo_limit_order(legs, 1, -1.50, tag="T1")
    lean.run_until(1.0)
    for t in tickets:
        assert t.update(UpdateOrderFields(limit_price=-1.45)).is_success
    lean.run_until(5.0)
    assert [t.status for t in tickets] == [OrderStatus.SUBMITTED] * 4
    assert sum(1 for _, s, _ in algo.seen if s is OrderStatus.UPDATE_SUBMITTED) == 4
    assert lean.broker.stats["updated"] == 1  # one replace for the whole combo
    assert tickets[2].order_events[-1].status is OrderStatus.UPDATE_SUBMITTED
    assert tickets[2].QuantityFilled == 0.0 and tickets[2].OrderEvents == tickets[2].order_events


def test_single_leg_side_follows_the_sign() -> None:
    algo, lean, legs = setup()
    algo.limit_order(legs[0].symbol, -2, 1.25, tag="X")
    assert lean.sent[0].legs[0].side is Side.SELL and lean.sent[0].quantity == 2
    assert lean.sent[0].limit_price == Decimal("1.25")
