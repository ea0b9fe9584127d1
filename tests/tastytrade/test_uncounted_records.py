"""A final TastyTrade record without ``remaining-quantity`` says nothing about what filled.

The failing example the wire adversary found (tests/properties/test_wire_tastytrade.py), replayed
step by step through the real backend, monitor and executor: an iron condor combo of 2 fills
1 unit whose fills are not listed yet, the records carry no count, the order ends ``Rejected``.
Before the fix the group rolled back on that record (flat ledger, no alert) while the account
held one condor; now the outcome stays unknown, the late-listed fill is booked and unwound, and
the group fails for a human with the residual the broker's fills show.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from atomic_orders.fsm import invariants
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.simulator.proofs.strategies import GroupSpec
from atomic_orders.simulator.proofs.wire_strategies import ForeignOrder
from tests.properties.test_wire_tastytrade import ComboWire

EXPIRY = dt.date(2026, 1, 2)
POLICY = ExecutionPolicy(step_seconds=2.0, deadline_seconds=30.0, ack_timeout=3.0, pending_timeout=5.0,
                         unwind_timeout=5.0, reconcile_interval=2.0, unwind_retry_delay=1.0, max_unwind_retries=0)


def _leg(right: Right, strike: int, side: Side) -> Leg:
    return Leg(OptionSymbol.of("SPXW", EXPIRY, right, strike), side)


CONDOR = (_leg(Right.PUT, 4000, Side.SELL), _leg(Right.PUT, 4005, Side.BUY),
          _leg(Right.CALL, 4010, Side.BUY), _leg(Right.CALL, 4015, Side.SELL))


def _rejected_after_an_uncounted_fill() -> ComboWire:
    """The adversary's moves up to the rejection (``gives_count=False``: legs carry no count)."""
    m = ComboWire()
    m.start(spec=GroupSpec(StrategyKind.IRON_CONDOR, CONDOR, 2, ExecutionMode.COMBO, False), policy=POLICY,
            initial="In Flight", echo_prior=False, gives_count=False, as_text=False, plan=[], flaky=True, patience=9)
    none = [False] * 4
    moves = [
        lambda: m.tick(step=0.5),
        lambda: m.fill(finish=False, pick=0, prices=[Decimal("0.05")], show_count=True, show_fills=False,
                       splits=[[1]], units=1),
        lambda: m.publish(legs=none, pick=0, what="both"),
        lambda: m.tick(step="wakeup"),
        lambda: m.publish(legs=none, pick=0, what="both"),
        lambda: m.publish(legs=none, pick=0, what="both"),
        lambda: m.tick(step="wakeup"),
        lambda: m.foreign(foreign=ForeignOrder(ext_kind="none", status="Received", units=1, filled_units=0,
                                               listed=False, own_symbol=False), price=Decimal("0.05"), splits=[1]),
        lambda: m.publish(legs=none, pick=0, what="both"),
        lambda: m.tick(step="wakeup"),
        lambda: m.kill(pick=0, status="Rejected"),
        lambda: m.publish(legs=none, pick=0, what="both"),
        lambda: m.tick(step="wakeup"),
    ]
    for move in moves:
        move()
        m.invariants_hold()
    return m


def test_rejected_without_a_count_never_rolls_back_over_an_unlisted_fill() -> None:
    m = _rejected_after_an_uncounted_fill()
    [order] = m.a.ours()
    assert order.status == "Rejected" and order.units_filled == 1
    assert all("remaining-quantity" not in leg and leg["fills"] == [] for leg in order.to_json("A")["legs"])
    ticket = m.group.entry_tickets[0]
    # the record shows nothing filled and no count: that is not "nothing filled"
    assert m.group.state == "executing", m.group.rollback_reason
    assert ticket.state == "unknown" and ticket.quantity_filled == 0
    assert ticket.broker_record is not None and not ticket.broker_record.counted
    assert not ticket.broker_confirms


def test_the_late_listed_fill_is_booked_and_the_verdict_matches_the_account() -> None:
    m = _rejected_after_an_uncounted_fill()
    m.teardown()  # the cooperative broker lists every fill; raises on any violation or wrong verdict
    g = m.group
    ticket = g.entry_tickets[0]
    assert ticket.quantity_filled == 1, "the fill listed after the final status is booked"
    assert g.state == "failed" and any("broker record disputed" in a for a in g.alerts)
    truth = m.a.truth_positions()
    assert truth == {} and g.residual_exposure == truth  # the condor that filled was unwound
    assert invariants.verdict_against(g, truth) == []
