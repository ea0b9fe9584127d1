"""Live/backtest consistency: one scripted scenario, the same result through all three paths."""

from __future__ import annotations

from decimal import Decimal

import pytest

from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.leg import Side
from atomic_orders.simulator.broker.script import BrokerScript, FillAt, FillOnCancel, OrderMatch, Reject, Rule
from tests.quantconnect.scenarios import (
    Condor,
    Outcome,
    ScriptFactory,
    run_quantconnect,
    run_simulated,
    run_tastytrade,
)


def committed_condor(legs: Condor) -> BrokerScript:
    """The combo fills in two parts (1 unit, then 2) at the credit it was scripted for."""
    return BrokerScript([Rule(OrderMatch(combo=True), (FillAt(2.0, Decimal("-2.10"), 1), FillAt(4.0,
                                                                                                Decimal("-2.05"))))])


def legged_rollback(legs: Condor) -> BrokerScript:
    """Longs fill, the short put is rejected, the short call fills in a race with its cancel; unwound."""
    sc, lc, sp, lp = legs
    return BrokerScript([
        Rule(OrderMatch(lc, Side.BUY), (FillAt(1.0, Decimal("1.00")),)),
        Rule(OrderMatch(lp, Side.BUY), (FillAt(1.0, Decimal("1.10")),)),
        Rule(OrderMatch(sp, Side.SELL), Reject("insufficient buying power")),
        Rule(OrderMatch(sc, Side.SELL), FillOnCancel(Decimal("2.00"))),
        Rule(OrderMatch(sc, Side.BUY), (FillAt(1.0, Decimal("2.20")),)),
        Rule(OrderMatch(lc, Side.SELL), (FillAt(1.0, Decimal("0.90")),)),
        Rule(OrderMatch(lp, Side.SELL), (FillAt(1.0, Decimal("1.00")),)),
    ])


def failed_unwind(legs: Condor) -> BrokerScript:
    """Longs fill, the short put is rejected; selling the long call back is rejected every time."""
    _sc, lc, sp, lp = legs
    return BrokerScript([
        Rule(OrderMatch(lc, Side.BUY), (FillAt(1.0, Decimal("1.00")),)),
        Rule(OrderMatch(lp, Side.BUY), (FillAt(1.5, Decimal("1.10")),)),
        Rule(OrderMatch(sp, Side.SELL), Reject("insufficient buying power")),
        Rule(OrderMatch(lc, Side.SELL), Reject("no bid for this contract")),
        Rule(OrderMatch(lp, Side.SELL), (FillAt(1.0, Decimal("1.05")),)),
    ])


def late_fill_after_cancel(legs: Condor) -> BrokerScript:
    """As the legged rollback, but the short call's cancel wins and 1 of 2 fills *after* ``Canceled``."""
    sc, lc, sp, lp = legs
    return BrokerScript([
        Rule(OrderMatch(lc, Side.BUY), (FillAt(1.0, Decimal("1.00")),)),
        Rule(OrderMatch(lp, Side.BUY), (FillAt(1.0, Decimal("1.10")),)),
        Rule(OrderMatch(sp, Side.SELL), Reject("insufficient buying power")),
        Rule(OrderMatch(sc, Side.SELL), FillOnCancel(Decimal("2.00"), quantity=1, late=True)),
        Rule(OrderMatch(sc, Side.BUY), (FillAt(1.0, Decimal("2.20")),)),
        Rule(OrderMatch(lc, Side.SELL), (FillAt(1.0, Decimal("0.90")),)),
        Rule(OrderMatch(lp, Side.SELL), (FillAt(1.0, Decimal("1.00")),)),
    ])


SCENARIOS: dict[str, tuple[ScriptFactory, ExecutionMode, int, str]] = {
    "committed_condor": (committed_condor, ExecutionMode.COMBO, 3, "committed"),
    "legged_rollback": (legged_rollback, ExecutionMode.LEGGED, 2, "rolled_back"),
    "failed_unwind": (failed_unwind, ExecutionMode.LEGGED, 2, "failed"),
    "late_fill_after_cancel": (late_fill_after_cancel, ExecutionMode.LEGGED, 2, "rolled_back"),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_three_paths_agree(name: str) -> None:
    make, mode, quantity, expected = SCENARIOS[name]
    simulated = run_simulated(make, mode, quantity)
    tastytrade = run_tastytrade(make, mode, quantity)
    quantconnect, lean = run_quantconnect(make, mode, quantity)
    assert simulated.state == expected, simulated
    assert len(simulated.states) >= 3 and simulated.tickets and simulated.ledger  # something to compare
    outcomes: dict[str, Outcome] = {"simulated": simulated, "tastytrade": tastytrade, "quantconnect": quantconnect}
    for path, outcome in outcomes.items():
        assert outcome.owned, f"{path}: an order reached the broker around the executor"
        assert outcome.state == simulated.state, (path, outcome, simulated)
        assert outcome.states == simulated.states, (path, outcome.states, simulated.states)
        assert outcome.ledger == simulated.ledger, (path, outcome.ledger, simulated.ledger)
        assert outcome.positions == simulated.positions, (path, outcome.positions, simulated.positions)
        assert outcome.rollback_reason == simulated.rollback_reason, (path, outcome.rollback_reason)
        assert outcome.tickets == simulated.tickets, (path, outcome.tickets, simulated.tickets)
        assert outcome.broker_orders == simulated.broker_orders, (path, outcome.broker_orders)
    # the stand-in really went through LEAN's order model: per-leg LEAN orders, LEAN status codes
    assert lean.events and all(e.order_id > 0 for e in lean.events)


def test_a_fill_after_canceled_flips_the_lean_status_and_reaches_the_ledger() -> None:
    outcome, lean = run_quantconnect(late_fill_after_cancel, ExecutionMode.LEGGED, 2)
    by_order: dict[int, list[str]] = {}
    for event in lean.events:
        by_order.setdefault(event.order_id, []).append(event.status.name)
    flipped = [s for s in by_order.values() if "CANCELED" in s[:-1]]
    assert [s[-2:] for s in flipped] == [["CANCELED", "PARTIALLY_FILLED"]]  # LEAN applies it, the status moves back
    # the executor's short-call entry ticket: canceled, with the late contract on it (not dropped)
    canceled = [t for t in outcome.tickets if t[0] == "entry" and t[2] == "canceled"]
    assert len(canceled) == 1 and canceled[0][1].startswith("sell") and canceled[0][3] == 1
    assert outcome.state == "rolled_back" and outcome.positions == ()  # the late contract was bought back
