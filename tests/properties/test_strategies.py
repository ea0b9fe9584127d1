"""The reusable strategies draw valid groups and scripts, and a given-based property on top of them.

``simulator/proofs/strategies.py`` is what users reuse to test their own groups; these tests pin that
every group it draws validates, and run the documented usage pattern (any group, any broker
script, then a cooperative settle) as a property of its own.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from atomic_orders.fsm.events import TicketEvent
from atomic_orders.fsm.leg import Leg
from atomic_orders.fsm.strategy import StrategyKind, validate_legs
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.proofs.exhaustive import ORDER_ACTIONS, WORLD_ACTIONS, Action
from atomic_orders.simulator.proofs.strategies import (
    GroupSpec,
    broker_actions,
    broker_scripts,
    group_specs,
    iron_condor_legs,
    option_symbols,
    strangle_legs,
    ticket_events,
    vertical_legs,
)
from tests.properties._suite import STATS


@given(group_specs(max_quantity=10))
def test_every_drawn_group_validates(spec: GroupSpec) -> None:
    assert validate_legs(spec.kind, spec.legs) == []
    assert 1 <= spec.quantity <= 10
    g = spec.group()
    g.validate(dt.datetime(2026, 1, 2, 14, 30, tzinfo=dt.UTC))
    assert g.state == "validated", g.validation_errors


@given(iron_condor_legs(), vertical_legs(), strangle_legs())
def test_leg_strategies_have_the_right_shape(
    condor: tuple[Leg, ...], vertical: tuple[Leg, ...], strangle: tuple[Leg, ...]
) -> None:
    assert validate_legs(StrategyKind.IRON_CONDOR, condor) == []
    assert validate_legs(StrategyKind.VERTICAL, vertical) == []
    assert validate_legs(StrategyKind.STRANGLE, strangle) == []
    assert len({leg.symbol for leg in condor}) == 4


@given(option_symbols())
def test_symbols_round_trip_through_occ(symbol: OptionSymbol) -> None:
    assert OptionSymbol.parse_occ(symbol.occ, symbol.underlying) == symbol


@given(st.lists(ticket_events(), min_size=1, max_size=5), broker_actions())
def test_events_and_actions_are_well_formed(events: list[TicketEvent], action: Action) -> None:
    assert all(e.trigger in {"submit", "acknowledged", "fill", "rejected", "cancel_requested", "canceled",
                             "cancel_rejected", "update_requested", "updated", "update_rejected", "expired",
                             "submission_unknown", "reconciled"} for e in events)
    assert action.kind in ORDER_ACTIONS + WORLD_ACTIONS


@given(group_specs(), broker_scripts(max_size=30))
def test_any_group_any_script_then_settle(spec: GroupSpec, script: list[Action]) -> None:
    """The documented usage: any valid group, any broker script, then a cooperative settle."""
    world = spec.world()
    applied = 0
    for action in script:
        applied += world.apply(action)
        assert world.check_step() == []
    world.settle()
    assert world.check_final() == []
    STATS["scripted examples"] += 1
    STATS["scripted steps (possible actions)"] += applied
