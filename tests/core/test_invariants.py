"""The invariant checks hold for healthy groups and catch a group corrupted by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atomic_orders.fsm import invariants as inv
from atomic_orders.fsm.events import Canceled, CancelRequested, Fill, Submit
from atomic_orders.fsm.group import AtomicOrderGroup, GroupAuditRecord
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.ticket import AuditRecord, OrderTicket

from .factories import (
    LP,
    PRICE,
    SC,
    SP,
    combo_ticket,
    failed_group,
    fill,
    fill_unwinds,
    group_in,
    make_group,
    now,
    send,
    started,
    sym,
)

CHECKS: dict[str, Callable[[AtomicOrderGroup], list[str]]] = {
    "terminal_settled": inv.terminal_settled,
    "no_orphans": inv.no_orphans,
    "conservation": inv.conservation,
    "legality": inv.legality,
    "replay_matches": inv.replay_matches,
    "exposure_bound": inv.exposure_bound,
}
STATES = ["pending", "validated", "invalid", "executing", "committed", "rolling_back", "rolled_back", "failed"]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("name", list(CHECKS))
def test_healthy_groups_pass_every_check(name: str, state: str) -> None:
    assert CHECKS[name](group_in(state)) == []


def test_healthy_unwound_and_partially_filled_groups_pass() -> None:
    g = started(make_group())
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    assert inv.check_group(g, replay=True) == [] and inv.check_step(g) == []
    g.abort(now())
    g.apply_ticket_event(t.order_ref, CancelRequested(now()))
    g.apply_ticket_event(t.order_ref, Canceled(now()))
    fill_unwinds(g)
    assert g.state == "rolled_back"
    assert inv.check_group(g, replay=True) == []


# -- 1. terminal means settled --------------------------------------------------------------------


def test_committed_but_not_at_target_is_caught() -> None:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    g.state = "committed"
    out = inv.terminal_settled(g)
    assert len(out) == 4 and all(("committed but" in v and "!= target -2" in v) or "!= target 2" in v for v in out)
    assert inv.check_step(g) != []


def test_committed_holding_a_foreign_symbol_is_caught() -> None:
    g = group_in("committed")
    g.ledger._net[sym("C", 6000)] = 1
    assert any("outside its legs" in v for v in inv.terminal_settled(g))


def test_rolled_back_but_not_flat_is_caught() -> None:
    g = group_in("rolled_back")
    g.ledger._net[SP] = -1
    out = inv.terminal_settled(g)
    assert len(out) == 1 and "rolled_back but not flat" in out[0] and SP.occ in out[0]


def test_failed_without_alert_is_caught() -> None:
    g = failed_group()
    assert inv.terminal_settled(g) == []
    g.alerts.clear()
    assert inv.terminal_settled(g) == ["G: failed without an alert"]


def test_failed_with_wrong_residual_is_caught() -> None:
    g = failed_group()
    g.residual_exposure = {**g.residual_exposure, SC: 0}
    out = inv.terminal_settled(g)
    assert len(out) == 1 and "residual" in out[0]


def test_invalid_with_a_sent_order_is_caught() -> None:
    g = group_in("invalid")
    stray = OrderTicket("G-X", (Leg(LP, Side.BUY),), 1)
    stray.apply(Submit(now(), PRICE))
    g._attach(stray)
    assert inv.terminal_settled(g) == ["G: invalid but an order was sent"]


# -- 2. no orphans ------------------------------------------------------------------------------


def test_terminal_group_with_a_live_order_is_caught() -> None:
    g = group_in("rolling_back")
    (t,) = g.live_tickets()
    assert inv.no_orphans(g) == []  # not terminal: a live order is expected
    g.state = "rolled_back"
    out = inv.no_orphans(g)
    assert out == [f"G: rolled_back but {t.order_ref} is submitted"]


# -- 3. conservation ----------------------------------------------------------------------------


def test_ticket_quantity_filled_not_sum_of_fills_is_caught() -> None:
    g = group_in("committed")
    combo_ticket(g).quantity_filled += 1
    out = inv.conservation(g)
    assert len(out) == 1 and "quantity_filled 3 != sum of distinct fills 2" in out[0]


def test_same_fill_applied_twice_is_caught() -> None:
    g = group_in("committed")
    t = combo_ticket(g)
    t.fills.append(t.fills[0])
    out = inv.conservation(g)
    assert any("applied twice" in v for v in out)


def test_tampered_ledger_is_caught() -> None:
    g = group_in("committed")
    g.ledger._net[LP] += 1
    out = inv.conservation(g)
    assert len(out) == 1 and "ledger" in out[0] and "signed sum" in out[0]


def test_ledger_missing_a_fill_is_caught() -> None:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)
    t.on_fill = None  # a fill that bypasses the group's ledger
    t.apply(Fill(now(), "bypass", 1, PRICE))
    assert any("ledger" in v for v in inv.conservation(g))


# -- 4. legality --------------------------------------------------------------------------------


def test_bogus_group_audit_record_is_caught() -> None:
    g = group_in("committed")
    g.audit.append(GroupAuditRecord(now(), "pending", "start", "committed"))
    assert inv.legality(g) == ["G: pending --start--> committed is not in the table"]


def test_bogus_ticket_audit_record_is_caught() -> None:
    g = group_in("committed")
    t = combo_ticket(g)
    t.order_events.append(AuditRecord(now(), "new", "fill", "filled", None))
    assert inv.legality(g) == [f"{t.order_ref}: new --fill--> filled is not in the table"]


# -- 5. replay ----------------------------------------------------------------------------------


def test_state_changed_by_hand_does_not_replay() -> None:
    g = group_in("executing")
    g.state = "rolling_back"
    out = inv.replay_matches(g)
    assert out == ["G: replay state executing != rolling_back"]


def test_ledger_changed_by_hand_does_not_replay() -> None:
    g = group_in("committed")
    g.ledger._net[LP] = 0
    [out] = inv.replay_matches(g)
    assert out.startswith("G: replay ledger differs") and f"'{LP.occ}': 2" in out  # the replay still holds it


def test_ticket_changed_by_hand_does_not_replay() -> None:
    g = group_in("committed")
    combo_ticket(g).state = "canceled"
    assert any("replay tickets" in v for v in inv.replay_matches(g))


def test_audit_that_cannot_be_replayed_is_reported_not_raised() -> None:
    g = group_in("committed")
    g.audit.insert(1, GroupAuditRecord(now(), "validated", "deadline", "rolling_back"))
    out = inv.replay_matches(g)
    assert len(out) == 1 and "replay raised" in out[0] and "InvalidTransition" in out[0]


def test_replay_is_checked_only_when_asked() -> None:
    g = group_in("executing")
    g.state = "validated"  # legal-looking, but not what the audit says
    assert inv.check_group(g) == []
    assert inv.check_group(g, replay=True) != []


# -- 6. exposure bound --------------------------------------------------------------------------


def test_position_beyond_target_without_overfill_is_caught() -> None:
    g = group_in("executing")
    g.ledger._net[SP] = -3  # target -2
    out = inv.exposure_bound(g)
    assert out == [f"G: {SP.occ} net -3 outside [0, target -2] without an over-fill"]


def test_position_of_the_wrong_sign_is_caught() -> None:
    g = group_in("executing")
    g.ledger._net[SP] = 1
    assert len(inv.exposure_bound(g)) == 1


def test_overfill_is_exempt_from_the_exposure_bound() -> None:
    g = group_in("committed")
    t = combo_ticket(g)
    fill(g, t, 1)  # over-fill: flagged, so beyond the target is explained
    assert t.overfill_quantity == 1 and g.flagged
    assert inv.exposure_bound(g) == []
    assert inv.check_group(g, replay=True) == []


def test_check_group_collects_from_every_invariant() -> None:
    g = group_in("committed")
    g.ledger._net[LP] += 5
    g.audit.append(GroupAuditRecord(now(), "committed", "start", "executing"))
    out = inv.check_group(g)
    assert any("committed but" in v for v in out)
    assert any("signed sum" in v for v in out)
    assert any("not in the table" in v for v in out)
    assert any("without an over-fill" in v for v in out)


def test_every_violation_of_check_group_and_check_step_is_tagged_with_its_invariant() -> None:
    """``[N name] `` leads each text, so a reader counts per invariant without reading the wording."""
    g = group_in("committed")
    g.ledger._net[LP] += 5
    g.audit.append(GroupAuditRecord(now(), "committed", "start", "executing"))
    out = inv.check_group(g, replay=True)
    names = [inv.invariant_name(v) for v in out]
    assert None not in names, out
    assert {"terminal_settled", "conservation", "legality", "exposure_bound"} <= set(names)
    assert all(v.startswith(f"[{n} {inv.NAMES[n]}] ") for v in out for n in inv.NAMES if inv.NAMES[n] in v[:25])
    step = inv.check_step(g)
    assert step and all(inv.invariant_name(v) is not None for v in step)
    assert inv.invariant_name("G1: committed but O3 is working") is None  # untagged
    assert inv.invariant_name("[2 conservation] G1: x") is None  # a tag that is not one of the seven


def test_the_verdict_is_held_against_what_the_broker_holds() -> None:
    """Invariant 7 from outside: a rolled-back group over a broker that holds the condor is caught."""
    from atomic_orders.fsm.invariants import verdict_against

    g = group_in("rolled_back")
    assert verdict_against(g, {}) == []
    held = {s: q for s, q in g.targets.items()}
    out = verdict_against(g, held)
    assert any(v.startswith("[7 broker_agreement]") and "rolled_back but the broker holds" in v for v in out)
    committed = group_in("committed")
    assert verdict_against(committed, dict(committed.targets)) == []
    assert any("committed but the broker holds" in v for v in verdict_against(committed, {}))
