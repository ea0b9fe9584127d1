"""Prove your own strategy's groups with atomic-orders: copy this file into your test suite.

It ships with the package as ``atomic_orders/simulator/proofs/examples/test_my_strategy.py``
(``importlib.resources.files("atomic_orders.simulator.proofs") / "examples" / "test_my_strategy.py"``).
Needs the ``testing`` extra (pytest and Hypothesis; README.md, "Install"). The pytest plugin that
ships with the package is loaded by pytest on its own: no conftest is needed. Run::

    pytest test_my_strategy.py
    pytest test_my_strategy.py --chaos-profile hostile --chaos-seed 42

Replace ``my_condor`` with the code that decides your orders. Two proofs follow:

1. a property: whatever your strategy builds (any spot, size and execution mode) and whatever an
   adversarial broker does (acks, partial fills, duplicates, reordering, outages, rejects,
   unknown submissions, a deliberate over-fill), the group never ends half-executed and all six
   invariants hold after every step;
2. a session: the same strategy placing condors through a real executor against a seeded,
   chaotic broker, in-process and over HTTP through the TastyTrade API emulator.

A failing test prints the seed, the chaos profile, the command that re-runs it, and the broker
script or event log that reproduces it (section "atomic-orders: reproduce").
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomic_orders.fsm import ExecutionMode, Leg, OptionSymbol, Right, Side, StrategyKind
from atomic_orders.simulator.proofs.testing import (
    BACKENDS,
    Action,
    AtomicSession,
    GroupSpec,
    broker_scripts,
    modes,
    prove,
)

# -- your strategy (replace this) --------------------------------------------------------------------


def my_condor(spot: float, expiry: dt.date, root: str = "SPXW") -> tuple[OptionSymbol, ...]:
    """A short iron condor: shorts 1% out of the money, wings 25 points wide, on the 5-point grid.

    Returns ``(short call, long call, short put, long put)``.
    """
    short_call = int(spot * 1.01 / 5 + 1) * 5
    short_put = int(spot * 0.99 / 5) * 5
    return (
        OptionSymbol.of(root, expiry, Right.CALL, short_call),
        OptionSymbol.of(root, expiry, Right.CALL, short_call + 25),
        OptionSymbol.of(root, expiry, Right.PUT, short_put),
        OptionSymbol.of(root, expiry, Right.PUT, short_put - 25),
    )


# -- 1. any group your strategy builds, any adversarial broker ----------------------------------------


@st.composite
def my_groups(draw: st.DrawFn) -> GroupSpec:
    """Groups exactly as ``my_condor`` builds them, over the spots and sizes you trade."""
    spot = draw(st.floats(min_value=3000, max_value=7000))
    expiry = draw(st.dates(dt.date(2026, 1, 5), dt.date(2026, 12, 18)))
    short_call, long_call, short_put, long_put = my_condor(spot, expiry)
    legs = (Leg(short_call, Side.SELL), Leg(long_call, Side.BUY), Leg(short_put, Side.SELL), Leg(long_put, Side.BUY))
    return GroupSpec(StrategyKind.IRON_CONDOR, legs, draw(st.integers(1, 5)), draw(modes()))


@settings(max_examples=60, deadline=None)  # raise max_examples in a nightly run
@given(my_groups(), broker_scripts(max_size=30))
def test_my_condors_never_end_half_executed(spec: GroupSpec, script: list[Action]) -> None:
    assert prove(spec.world(), script) == []


# -- 2. a trading session through the executor, on both backends ---------------------------------------


@pytest.mark.chaos_profile("hostile")
@pytest.mark.parametrize("atomic_backend", BACKENDS)
@pytest.mark.parametrize("mode", [ExecutionMode.COMBO, ExecutionMode.LEGGED])
def test_my_strategy_against_a_hostile_broker(atomic_session: AtomicSession, mode: ExecutionMode) -> None:
    executor = atomic_session.executor
    # A net limit needs one combo order; legged, each leg fills at its own price (a limit is refused).
    limit = Decimal("0.50") if mode is ExecutionMode.COMBO else None
    for _ in range(4):
        short_call, long_call, short_put, long_put = my_condor(atomic_session.spot(), atomic_session.expiry)
        executor.execute_iron_condor(short_call=short_call, long_call=long_call, short_put=short_put,
                                     long_put=long_put, quantity=2, mode=mode, limit_price=limit)
        atomic_session.advance(120)
    atomic_session.settle()

    assert atomic_session.violations() == []
    for group in executor.groups():
        assert group.state in ("committed", "rolled_back", "failed"), group
        if group.state == "failed":  # a human must handle it: the residual is stated and alerted
            assert group.residual_exposure and group.alerts
