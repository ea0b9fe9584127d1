"""Every failure the property runs found, and the trickiest scripted sequences, as explicit tests.

Each test plays a broker script (the notation :func:`atomic_orders.simulator.proofs.exhaustive.format_script` prints
for a counterexample, parsed back by :func:`~atomic_orders.simulator.proofs.exhaustive.parse_script`) against a real
executor through :class:`~atomic_orders.simulator.proofs.exhaustive.World`, checks invariants 1-6 (full replay) after
every step, lets a cooperative broker settle the group, checks everything again (including the
broker's truth against the ledger), and asserts what is specific to the sequence.

The group is the exhaustive check's: a debit call vertical (buy 5000C, sell 5050C), quantity 2,
under :data:`atomic_orders.simulator.proofs.exhaustive.CHECK_POLICY` (5 s timers, 20 s deadline, no unwind retry)
unless a test says otherwise. Order ``#0`` is the first order the broker received, ``#1`` the
next, and so on.

Bugs found by the property runs (and fixed):

* ``test_unwind_replacing_a_stale_one_is_routed`` - the executor adopted (routed) new tickets only
  when the group's ticket *count* changed; a stale unwind dropped and a new one opened in the same
  evaluation left the count unchanged, so the new unwind was sent but its fills arrived "for no
  open group": a real position the group never saw. Fixed in ``fsm/executor.py`` (``_dispatch``
  keys adoption on the unwind sequence too).
* ``test_reject_while_update_pending_settles`` / ``test_reject_while_cancel_pending_settles`` - a
  broker reject arriving while our price update (or cancel) was in flight had no row in the ticket
  table: it was recorded as an anomaly and dropped, the ticket believed the order was still
  working, and the rollback looped cancel -> "cancel rejected" forever (the group never settled).
  Fixed in ``fsm/ticket.py`` (``rejected`` is accepted in ``update_pending`` and
  ``cancel_pending``).
* ``test_stale_unwind_dropped_when_nothing_else_can_be_sent_fails_the_group`` - found by the deep
  profile: while rolling back, a late fill made a waiting (retry) unwind stale; the group
  evaluated its guards *before* ``open_unwinds`` dropped it (so "an unwind can still be sent"
  held), and no later event re-evaluated it: the group sat in ``rolling_back`` forever with a
  residual position, no order working and no alert. Fixed in ``fsm/group.py`` (dropping a stale
  unwind triggers one more evaluation, like entering ``rolling_back`` does).
"""

from __future__ import annotations

import attrs
import pytest

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.orders import Purpose
from atomic_orders.simulator.proofs.exhaustive import CHECK_POLICY, World, parse_script, vertical_legs

COMBO, LEGGED = ExecutionMode.COMBO, ExecutionMode.LEGGED
#: CHECK_POLICY with one unwind retry (the exhaustive check's own policy allows none).
RETRY_ONCE = attrs.evolve(CHECK_POLICY, max_unwind_retries=1)


def play(script: str, mode: ExecutionMode = COMBO, *, quantity: int = 2, plan: tuple[str, ...] = (),
         policy: ExecutionPolicy = CHECK_POLICY) -> World:
    """Play ``script``; every action must be possible and every step must keep invariants 1-6."""
    world = World(vertical_legs(), quantity, mode=mode, plan=plan, policy=policy)
    assert world.check_step(replay="full") == []
    for action in parse_script(script) if script else []:
        assert world.apply(action), f"{action} was not possible at this point"
        assert world.check_step(replay="full") == [], f"after {action}"
    return world


def settled(world: World) -> World:
    """Cooperative drive to a terminal state, then every check (nothing lost, nothing left working)."""
    world.settle()
    assert world.check_final() == []
    return world


# -- bugs found by the property runs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "script"),
    [
        (COMBO, "ack(#0) -> overfill(#0) -> expire(#1) -> late_fill(#1, 1)"),
        (LEGGED, "ack(#0) -> overfill(#0) -> expire(#1) -> late_fill(#1, 1)"),
    ],
)
def test_unwind_replacing_a_stale_one_is_routed(mode: ExecutionMode, script: str) -> None:
    # over-fill -> rollback: two unwinds (buy back the short first); the buy-back expires (one
    # retry allowed: a new one is opened, not yet sendable); then a fill executed before the
    # expiry is reported: the waiting retry no longer fits and is replaced in the same evaluation
    w = play(script, mode, policy=RETRY_ONCE)
    g = w.group
    # the late fill on the expired unwind changed the position: the stale unwind was replaced
    assert g.state == "rolling_back"
    for t in g.unwind_tickets:
        assert w.executor.owns_order(t.order_ref), f"{t.order_ref} was created but never routed"
    settled(w)
    assert w.executor.stats.stray_events == 0
    assert w.executor.violations == []
    assert g.state in ("rolled_back", "failed")


@pytest.mark.parametrize("mode", [COMBO, LEGGED])
def test_reject_while_update_pending_settles(mode: ExecutionMode) -> None:
    # the order works, two clock steps: the executor improves the price (update in flight); the
    # broker rejects the order; the reject arrives while the update is pending
    w = play("ack(#0) -> reject(#0, held) -> tick_next() -> tick_next()", mode)
    entry = w.group.entry_tickets[0]
    assert entry.state == "update_pending"
    assert w.apply(parse_script("release(0)")[0])
    assert entry.state == "rejected" and w.group.anomalies == []
    settled(w)
    assert w.group.state == "rolled_back"


def test_reject_while_cancel_pending_settles() -> None:
    # over-fill -> rollback -> unwind sent and working -> unwind timeout -> cancel in flight ->
    # the broker rejects the unwind order itself
    w = play("ack(#0) -> overfill(#0) -> tick_next() -> tick_next() -> tick_next() -> reject(#1)")
    unwind = w.group.ticket(w.orders[1].ref)
    assert unwind.purpose is Purpose.UNWIND and unwind.state == "rejected"
    settled(w)
    assert w.group.state == "failed"  # no retry under CHECK_POLICY: exact residual, alert raised
    assert w.group.residual_exposure == w.group.ledger.positions() != {}
    assert w.group.alerts


def test_stale_unwind_dropped_when_nothing_else_can_be_sent_fails_the_group() -> None:
    # Found by the deep (nightly) profile on an iron condor; this is the same race on the vertical.
    # One retry allowed. The long's unwinds are rejected twice (exhausted); meanwhile a late entry
    # fill re-opened the short, whose buy-back expired (one failure: a retry waits out its delay);
    # then the expired buy-back's own fill is reported late: the short is flat, the waiting retry
    # no longer fits and is dropped - and nothing else can ever be sent.
    w = play("ack(#0) -> fill(#0, 1) -> expire(#0) -> ack(#1) -> fill(#1) -> reject(#2) -> tick_next()"
             " -> late_fill(#0, 1) -> expire(#4) -> reject(#3) -> late_fill(#4, 1)", policy=RETRY_ONCE)
    g = w.group
    # the group must decide at once: failed, with the long's residual exactly and an alert
    assert g.state == "failed", f"stuck in {g.state} with nothing left to send"
    assert g.residual_exposure == g.ledger.positions() == {g.legs[0].symbol: 2}
    assert any("FAILED" in a for a in g.alerts)
    settled(w)


# -- the trickiest sequences ------------------------------------------------------------------------


def test_fill_overtakes_its_ack() -> None:
    w = play("ack(#0, held) -> fill(#0, all) -> release(0)")
    entry = w.group.entry_tickets[0]
    assert entry.state == "filled" and entry.broker_order_id == f"B-{entry.order_ref}"
    assert w.group.state == "committed"
    settled(w)


def test_duplicate_fill_after_commit_changes_nothing() -> None:
    w = play("ack(#0) -> fill(#0, 1) -> fill(#0, 1) -> redeliver(2) -> redeliver(1)")
    assert w.group.state == "committed"
    assert w.group.entry_tickets[0].duplicate_fills == 2
    assert w.group.ledger.positions() == w.truth_positions()
    settled(w)
    assert w.group.alerts == []


def test_late_fill_after_rollback_reopens_and_unwinds() -> None:
    # partial fill, the broker expires the rest (rollback: buy back the short, then sell the
    # long), the group settles flat; then a fill executed before the expiry is reported: the group
    # re-opens with an alert and unwinds it
    w = play("ack(#0) -> fill(#0, 1) -> expire(#0) -> ack(#1) -> fill(#1) -> tick_next() -> ack(#2) -> fill(#2)")
    assert w.group.state == "rolled_back" and w.group.alerts == []
    assert w.apply(parse_script("late_fill(#0, 1)")[0])
    g = w.group
    assert g.state == "rolling_back"
    assert any("re-opened" in a for a in g.alerts)
    assert g.entry_tickets[0].late_fill_quantity == 1 and g.flagged
    assert w.check_step(replay="full") == []
    settled(w)
    assert g.state == "rolled_back" and g.ledger.positions() == {}


def test_late_fill_held_behind_the_cancel_confirmation() -> None:
    # deadline -> cancel; the broker fills one unit, then confirms the cancel; the fill is held
    # and arrives after the confirmation (a late fill on a canceled order)
    w = play("ack(#0) -> tick_next() -> tick_next() -> update_confirm(#0) -> tick_next() -> update_confirm(#0)"
             " -> tick_next() -> fill(#0, 1, held) -> cancel_confirm(#0) -> release(0)")
    entry = w.group.entry_tickets[0]
    assert entry.state == "canceled" and entry.quantity_filled == 1 and entry.late_fill_quantity == 1
    assert w.group.state == "rolling_back"
    settled(w)
    assert w.group.state == "rolled_back"


def test_cancel_rejected_because_already_filled() -> None:
    # deadline -> cancel requested; the order fills fully before the cancel reaches it
    w = play("ack(#0) -> tick_next() -> tick_next() -> update_confirm(#0) -> tick_next() -> update_confirm(#0)"
             " -> tick_next() -> fill(#0, all) -> cancel_reject(#0)")
    entry = w.group.entry_tickets[0]
    assert entry.state == "filled"
    # the fill completed every leg: committing beats unwinding
    assert w.group.state == "committed"
    settled(w)


def test_unknown_submission_that_reached_the_broker_is_reconciled_not_resent() -> None:
    w = play("ack(#0) -> fill(#0, all) -> tick_next() -> tick_next() -> ack(#1) -> fill(#1, 1)",
             LEGGED, plan=("accept", "unknown_present"))
    short = w.group.entry_tickets[1]
    submitted = [r.order_ref for r in w.backend.submitted]
    assert submitted.count(short.order_ref) == 1, "an order of unknown outcome is never resent"
    assert short.reconciliations >= 1 and short.quantity_filled == 1
    settled(w)
    assert w.group.state == "committed"


def test_unknown_submission_that_never_arrived_is_rejected_and_rolled_back() -> None:
    w = play("ack(#0) -> fill(#0, all) -> tick_next()", LEGGED, plan=("accept", "unknown_absent"))
    short = w.group.entry_tickets[1]
    assert short.state == "rejected" and short.reconciliations == 1
    assert w.group.state == "rolling_back"
    settled(w)
    assert w.group.state == "rolled_back"


def test_outage_during_rollback_cancel_is_retried() -> None:
    # the broker goes down; the deadline passes; the cancel cannot be sent; the broker comes back
    w = play("ack(#0) -> fill(#0, 1) -> down() -> tick(25s) -> up() -> tick_next()")
    entry = w.group.entry_tickets[0]
    assert w.group.state == "rolling_back"
    assert entry.state == "cancel_pending" and w.backend.cancels == [entry.order_ref]
    settled(w)
    assert w.group.state == "rolled_back"


def test_overfill_is_flagged_and_unwound() -> None:
    w = play("ack(#0) -> overfill(#0)")
    entry = w.group.entry_tickets[0]
    assert entry.overfill_quantity == 1 and w.group.flagged
    assert w.group.state == "rolling_back"  # an over-filled leg is not the promised position
    settled(w)
    assert w.group.state == "rolled_back" and w.group.ledger.positions() == {}


def test_unwind_rejected_leaves_failed_with_exact_residual_then_late_fill_refreshes_it() -> None:
    w = play("ack(#0) -> fill(#0, 1) -> expire(#0) -> reject(#1)")
    g = w.group
    assert g.state == "failed" and g.residual_exposure == g.ledger.positions() != {}
    alerts = len(g.alerts)
    assert w.apply(parse_script("late_fill(#0, 1)")[0])
    assert g.state == "failed" and g.residual_exposure == g.ledger.positions()
    assert len(g.alerts) == alerts + 1
    assert w.check_step(replay="full") == []


def test_fill_while_unknown_is_kept_and_reconciled_once() -> None:
    # ack and a partial fill are held; the broker goes down; the ack timeout makes the ticket
    # unknown (reconciliation fails while down); the fill arrives while unknown; the broker comes
    # back; reconciliation reports the same fill (counted once); the late ack changes nothing
    w = play("ack(#0, held) -> fill(#0, 1, held) -> down() -> tick_next()")
    entry = w.group.entry_tickets[0]
    assert entry.state == "unknown"
    w.run(parse_script("release(1) -> up()"))
    assert entry.state == "unknown" and entry.quantity_filled == 1
    w.run(parse_script("tick_next() -> release(0)"))
    assert entry.state == "partially_filled" and entry.quantity_filled == 1 and entry.reconciliations == 1
    assert w.check_step(replay="full") == []
    settled(w)
    assert w.group.state == "committed"


def test_legged_longs_first_then_short_rejected_unwinds_the_long() -> None:
    w = play("ack(#0) -> fill(#0, all) -> ack(#1) -> reject(#1)", LEGGED)
    g = w.group
    assert g.state == "rolling_back"
    unwinds = [r for r in w.backend.submitted if r.purpose is Purpose.UNWIND]
    assert [(r.legs[0].symbol, r.legs[0].side.value, r.quantity) for r in unwinds] == [
        (g.legs[0].symbol, "sell", 2)
    ]
    settled(w)
    assert g.state == "rolled_back"
