"""Table-driven tests of the OrderTicket machine: every row of TICKET_TRANSITIONS, every source.

For each row and each of its source states, a fresh ticket is driven into the source state by
legal events (``factories.TICKET_PATHS``), an event satisfying the row's guards is built, and the
row's declared destination (or "unchanged" for internal rows) and its named effects are checked.
Every ``(state, trigger)`` pair the table does not allow must raise InvalidTransition and leave
the ticket exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.fsm.errors import InvalidTransition, ValidationError
from atomic_orders.fsm.events import TICKET_EVENT_TYPES, BrokerStatus, Fill, Reconciled, Submit, TicketEvent
from atomic_orders.fsm.machine import Row
from atomic_orders.fsm.ticket import TICKET_MACHINE, TICKET_STATES, TICKET_TRANSITIONS, OrderTicket

from .factories import PRICE, default_event, fill_id, now, ticket_in, ticket_snapshot, variants

# -- per-guard requirements and event factories ---------------------------------------------------


def _new_fill(qty: int) -> Fill:
    return Fill(now(), fill_id(), qty, PRICE)


#: What the ticket must look like for a guard to be satisfiable at all.
REQUIRES: dict[str, Callable[[OrderTicket], bool]] = {
    "is_duplicate_fill": lambda t: bool(t.fills),
    "is_conflicting_fill": lambda t: bool(t.fills),
    "contradicts_itself": lambda t: t.quantity_remaining > 0,
    "completes_order": lambda t: t.quantity_remaining > 0,
    "is_partial_fill": lambda t: t.quantity_remaining >= 2,
    "has_fills": lambda t: t.quantity_filled > 0,
    "reconciles_to_submitted": lambda t: t.quantity_filled == 0,
    "reconciles_to_partially_filled": lambda t: t.quantity_remaining >= 2,
    "reconciles_to_filled": lambda t: True,
    "reconciles_to_canceled": lambda t: True,
    "reconciles_to_rejected": lambda t: True,
    "reconciles_to_expired": lambda t: True,
}
#: What the ticket must look like for ``unless=guard`` to be satisfiable.
REQUIRES_NOT: dict[str, Callable[[OrderTicket], bool]] = {
    "has_fills": lambda t: t.quantity_filled == 0,
}

#: An event that makes the guard true (guards that only look at the ticket use the default event).
MAKERS: dict[str, Callable[[OrderTicket], TicketEvent]] = {
    "is_duplicate_fill": lambda t: Fill(now(), t.fills[0].fill_id, t.fills[0].quantity, t.fills[0].price),
    "is_conflicting_fill": lambda t: Fill(now(), t.fills[0].fill_id, t.fills[0].quantity,
                                          t.fills[0].price + Decimal("0.05")),
    # FILLED, but the listed fills cover less than the order: a status standing in for quantities.
    "contradicts_itself": lambda t: Reconciled(now(), BrokerStatus.FILLED, tuple(t.fills)),
    "completes_order": lambda t: _new_fill(t.quantity_remaining),
    "is_partial_fill": lambda t: _new_fill(1),
    # The broker's answers carry every fill it knows: ours again (idempotent) plus any new ones.
    "reconciles_to_submitted": lambda t: Reconciled(now(), BrokerStatus.WORKING, ()),
    "reconciles_to_partially_filled": lambda t: Reconciled(
        now(), BrokerStatus.PARTIALLY_FILLED, (*t.fills, _new_fill(1)), "B-R"
    ),
    "reconciles_to_filled": lambda t: Reconciled(
        now(), BrokerStatus.FILLED, (*t.fills, _new_fill(t.quantity_remaining)), "B-R"
    ),
    "reconciles_to_canceled": lambda t: Reconciled(now(), BrokerStatus.CANCELED, tuple(t.fills)),
    "reconciles_to_rejected": lambda t: Reconciled(now(), BrokerStatus.NOT_FOUND, ()),
    "reconciles_to_expired": lambda t: Reconciled(now(), BrokerStatus.EXPIRED, tuple(t.fills)),
}


def event_for(row: Row, t: OrderTicket) -> TicketEvent | None:
    """An event of ``row.trigger`` satisfying the row's guards on ``t``, or None when impossible."""
    if not all(REQUIRES[g](t) for g in row.conditions):
        return None
    if not all(REQUIRES_NOT[g](t) for g in row.unless):
        return None
    for g in row.conditions:
        if g in MAKERS:
            return MAKERS[g](t)
    return default_event(row.trigger, t)


def _row_id(index: int, row: Row) -> str:
    guard = f"[{row.guard_text.replace(' ', '_')}]" if row.guard_text else ""
    return f"r{index:02d}-{row.trigger}{guard}->{row.dest or 'same'}"


def _cases() -> tuple[list[Any], set[tuple[int, str]]]:
    cases, impossible = [], set()
    for index, row in enumerate(TICKET_TRANSITIONS):
        for src in row.source:
            found = [v for v in variants(src) if event_for(row, ticket_in(src, v)) is not None]
            if not found:
                impossible.add((index, src))
            for variant in found:
                cases.append(pytest.param(index, src, variant, id=f"{_row_id(index, row)}-from-{src}-{variant}"))
    return cases, impossible


CASES, IMPOSSIBLE = _cases()
DUPLICATE_ROW = next(
    i for i, r in enumerate(TICKET_TRANSITIONS) if r.trigger == "fill" and r.conditions == ("is_duplicate_fill",)
)
CONFLICT_ROW = next(
    i for i, r in enumerate(TICKET_TRANSITIONS) if r.trigger == "fill" and r.conditions == ("is_conflicting_fill",)
)
TO_SUBMITTED_ROW = next(
    i for i, r in enumerate(TICKET_TRANSITIONS) if r.conditions == ("reconciles_to_submitted",)
)


def test_only_unsatisfiable_combinations_are_skipped() -> None:
    # A ticket in submitting/submitted never has a fill: any fill moves it on, and every way back
    # to submitted (cancel_rejected, updated, update_rejected, reconciled) requires no fills.
    # A partially_filled ticket always has one, so "working, nothing filled" cannot hold there.
    assert {
        (DUPLICATE_ROW, "submitting"),
        (DUPLICATE_ROW, "submitted"),
        (CONFLICT_ROW, "submitting"),
        (CONFLICT_ROW, "submitted"),
        (TO_SUBMITTED_ROW, "partially_filled"),
    } == IMPOSSIBLE


def test_every_row_and_every_legal_pair_is_exercised() -> None:
    covered_rows = {c.values[0] for c in CASES}
    assert covered_rows == set(range(len(TICKET_TRANSITIONS)))
    covered_pairs = {(c.values[1], TICKET_TRANSITIONS[c.values[0]].trigger) for c in CASES}
    assert covered_pairs == TICKET_MACHINE.pairs


def _check_effects(row: Row, before: dict[str, Any], t: OrderTicket, e: Any) -> None:
    effects = set(row.before) | set(row.after)
    if "record_fill" in effects:
        assert t.fills == [*before["fills"], e]
        assert t.quantity_filled == before["quantity_filled"] + e.quantity
        assert e.fill_id in t._fill_ids
    elif "apply_reconciliation" in effects:
        new = [f for f in e.fills if f.fill_id not in before["fill_ids"]]
        assert t.fills == before["fills"] + new
        assert t.quantity_filled == before["quantity_filled"] + sum(f.quantity for f in new)
        assert t.reconciliations == before["reconciliations"] + 1
        if e.broker_order_id is not None:
            assert t.broker_order_id == (before["broker_order_id"] or e.broker_order_id)
    else:
        assert t.fills == before["fills"]
        assert t.quantity_filled == before["quantity_filled"]
    expected_dups = before["duplicate_fills"] + (1 if "count_duplicate_fill" in effects else 0)
    assert t.duplicate_fills == expected_dups
    if "record_reason" in effects or "drop_update" in effects:
        assert t.reason == e.reason
    else:
        assert t.reason == before["reason"]
    if "record_broker_id" in effects:
        assert t.broker_order_id == (before["broker_order_id"] or e.broker_order_id)
    if "record_submission" in effects:
        assert t.limit_price == e.limit_price
    if "stash_update" in effects:
        assert t._pending_update is e
    if "apply_update" in effects:
        assert t._pending_update is None
        pending = before["pending_update"]
        if pending is not None and pending.limit_price is not None:
            assert t.limit_price == pending.limit_price
        if e.broker_order_id is not None:
            assert t.broker_order_id == e.broker_order_id
    if "drop_update" in effects:
        assert t._pending_update is None
        assert t.limit_price == before["limit_price"]


@pytest.mark.parametrize(("index", "src", "variant"), CASES)
def test_row(index: int, src: str, variant: str) -> None:
    row = TICKET_TRANSITIONS[index]
    t = ticket_in(src, variant)
    e = event_for(row, t)
    assert e is not None and e.trigger == row.trigger
    before = ticket_snapshot(t)
    expected = row.dest if row.dest is not None else src

    assert t.apply(e) == expected
    assert t.state == expected

    rec = t.order_events[-1]
    assert len(t.order_events) == before["order_events"] + 1
    assert (rec.source, rec.trigger, rec.dest, rec.event) == (src, row.trigger, expected, e)
    assert (src, row.trigger, expected) in TICKET_MACHINE.allowed_changes()
    _check_effects(row, before, t, e)


ILLEGAL = [
    pytest.param(state, trigger, id=f"{trigger}-in-{state}")
    for state in TICKET_STATES
    for trigger in TICKET_MACHINE.triggers
    if (state, trigger) not in TICKET_MACHINE.pairs
]


def test_there_are_illegal_pairs_to_test() -> None:
    # new accepts only submit; finals refuse our own requests. A sanity floor for the table.
    assert len(ILLEGAL) >= 40
    assert {("new", t) for t in TICKET_MACHINE.triggers if t != "submit"} <= {p.values for p in ILLEGAL}


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL)
def test_illegal_pair_raises_and_changes_nothing(state: str, trigger: str) -> None:
    for variant in variants(state):
        t = ticket_in(state, variant)
        assert not t.can_apply(trigger)
        e = default_event(trigger, t)
        before = ticket_snapshot(t)
        with pytest.raises(InvalidTransition) as info:
            t.apply(e)
        err = info.value
        assert (err.machine, err.ident, err.state, err.event) == ("OrderTicket", t.order_ref, state, trigger)
        msg = str(err)
        assert repr(t.order_ref) in msg and repr(state) in msg and repr(trigger) in msg
        assert ticket_snapshot(t) == before


def test_table_triggers_match_event_types() -> None:
    assert set(TICKET_MACHINE.triggers) == {cls.trigger for cls in TICKET_EVENT_TYPES}  # type: ignore[attr-defined]


def test_every_state_but_new_is_reachable_and_unknown_left_only_by_reconciliation() -> None:
    dests = {d for (_s, _t, d) in TICKET_MACHINE.allowed_changes()}
    assert set(TICKET_STATES) - {"new"} <= dests
    leaving_unknown = {(tr, d) for (s, tr, d) in TICKET_MACHINE.allowed_changes() if s == "unknown" and d != s}
    assert leaving_unknown and {tr for tr, _ in leaving_unknown} == {"reconciled"}


def test_can_apply_matches_pairs() -> None:
    for state in TICKET_STATES:
        t = ticket_in(state, variants(state)[0])
        for trigger in TICKET_MACHINE.triggers:
            assert t.can_apply(trigger) == ((state, trigger) in TICKET_MACHINE.pairs)


def test_submit_of_limit_order_without_price_fails_and_changes_nothing() -> None:
    t = ticket_in("new")
    before = ticket_snapshot(t)
    with pytest.raises(ValidationError, match="limit_price"):
        t.apply(Submit(now()))
    assert ticket_snapshot(t) == before
    assert t.apply(Submit(now(), Decimal("1.05"))) == "submitting"
    assert t.limit_price == Decimal("1.05")


@pytest.mark.parametrize("debug", [False, True])
def test_the_librarys_debug_lines_appear_exactly_when_its_logger_listens(
    caplog: pytest.LogCaptureFixture, debug: bool
) -> None:
    # Our machines skip transitions' per-transition debug calls for speed; a user who enables
    # DEBUG for transitions.core still gets every line, and the transition is the same.
    caplog.set_level(logging.DEBUG if debug else logging.INFO, logger="transitions.core")
    t = ticket_in("new")
    assert t.apply(Submit(now(), Decimal("1.05"))) == "submitting"
    lines = [r.getMessage() for r in caplog.records if r.name == "transitions.core" and r.levelno == logging.DEBUG]
    assert any("Initiating transition from state new to state submitting" in m for m in lines) is debug


@pytest.mark.parametrize("level", [logging.WARNING, logging.INFO, logging.DEBUG])
def test_the_librarys_lines_at_each_level_appear_exactly_when_its_logger_listens(
    caplog: pytest.LogCaptureFixture, level: int
) -> None:
    # Below INFO our machines run the library's steps without its log calls; at INFO or DEBUG the
    # library's own chain runs and every line it writes at that level is there.
    caplog.set_level(level, logger="transitions.core")
    t = ticket_in("new")
    assert t.apply(Submit(now(), Decimal("1.05"))) == "submitting"
    assert t.apply(Fill(now(), fill_id(), t.quantity, PRICE)) == "filled"
    seen = {(r.levelno, r.getMessage()) for r in caplog.records if r.name == "transitions.core"}
    info = {m for lv, m in seen if lv == logging.INFO}
    debug = {m for lv, m in seen if lv == logging.DEBUG}
    assert any("Finished processing state filled enter callbacks" in m for m in info) is (level <= logging.INFO)
    assert any("Executed callback" in m for m in info) is (level <= logging.INFO)
    assert any("Transition condition failed" in m for m in debug) is (level <= logging.DEBUG)
    assert any("Executed machine preparation callbacks" in m for m in debug) is (level <= logging.DEBUG)
    assert t.order_events[-1].dest == "filled"
