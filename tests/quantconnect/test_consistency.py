"""Live/backtest consistency: one scripted scenario, the same result through all three paths."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fsm.group import ExecutionMode
from fsm.leg import Side
from simulator.script import BrokerScript, FillAt, FillOnCancel, OrderMatch, Reject, Rule
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


SCENARIOS: dict[str, tuple[ScriptFactory, ExecutionMode, int, str]] = {
    "committed_condor": (committed_condor, ExecutionMode.COMBO, 3, "committed"),
    "legged_rollback": (legged_rollback, ExecutionMode.LEGGED, 2, "rolled_back"),
    "failed_unwind": (failed_unwind, ExecutionMode.LEGGED, 2, "failed"),
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
