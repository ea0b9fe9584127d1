"""Table-driven tests of the AtomicOrderGroup machine: every row of GROUP_TRANSITIONS.

Each row has a scripted situation that satisfies its guards (and fails the guards of the rows
tried before it); the test fires the row's trigger and checks the declared destination, the audit
record and what the row's effects promise. Every ``(state, trigger)`` pair the table does not
allow raises InvalidTransition and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from atomic_orders.fsm.errors import InvalidTransition
from atomic_orders.fsm.events import BrokerStatus, Canceled, CancelRequested, Fill, Reconciled, Submit
from atomic_orders.fsm.group import (
    GROUP_MACHINE,
    GROUP_STATES,
    GROUP_TRANSITIONS,
    REEVALUATE,
    AtomicOrderGroup,
    GroupEvent,
)
from atomic_orders.fsm.invariants import check_group
from atomic_orders.fsm.leg import Side
from atomic_orders.fsm.machine import Row
from atomic_orders.fsm.orders import Purpose

from .factories import (
    LC,
    LP,
    PRICE,
    SC,
    SP,
    cancel,
    combo_ticket,
    ev,
    failed_group,
    fill,
    group_in,
    group_snapshot,
    make_group,
    now,
    reject,
    send,
    started,
    unwind_for,
)

Action = Callable[[AtomicOrderGroup], str]


@dataclass
class Case:
    """A group in the row's source state and the input that should take this row."""

    group: AtomicOrderGroup
    fire: Action
    check: Callable[[AtomicOrderGroup], None] = lambda g: None


def _key(row: Row) -> tuple[str, str, str | None, str]:
    (src,) = row.source
    return (row.trigger, src, row.dest, row.guard_text)


def _validate_ok() -> Case:
    def check(g: AtomicOrderGroup) -> None:
        assert len(g.entry_tickets) == 1 and combo_ticket(g).state == "new"
        assert g.targets == {LP: 2, SP: -2, SC: -2, LC: 2}
        assert combo_ticket(g).limit_price == Decimal("-1.50")  # a credit of 1.50 is a negative net price

    return Case(make_group(), lambda g: g.validate(now()), check)


def _validate_bad() -> Case:
    def check(g: AtomicOrderGroup) -> None:
        assert g.tickets == [] and g.targets == {} and g.is_terminal
        assert [e.field for e in g.validation_errors] == ["quantity"]

    return Case(make_group(quantity=0), lambda g: g.validate(now()), check)


def _start() -> Case:
    g = make_group()
    g.validate(now())
    return Case(g, lambda g: g.start(now()), lambda g: None)


def _exec_complete() -> Case:
    g = group_in("executing")
    send(g, combo_ticket(g))
    fill(g, combo_ticket(g), 1)

    def check(g: AtomicOrderGroup) -> None:
        assert g.ledger.positions() == g.targets
        assert g.unwind_tickets == []

    return Case(g, lambda g: fill(g, combo_ticket(g)), check)


def _exec_failed_leg() -> Case:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    ev(g, t, CancelRequested(now()))

    def check(g: AtomicOrderGroup) -> None:
        assert t.order_ref in (g.rollback_reason or "")
        # the entry order is final, so the unwinds open at once: one per leg, one unit each
        assert {(u.legs[0].symbol, u.legs[0].side, u.quantity) for u in g.unwind_tickets} == {
            (LP, Side.SELL, 1),
            (SP, Side.BUY, 1),
            (SC, Side.BUY, 1),
            (LC, Side.SELL, 1),
        }

    return Case(g, lambda g: ev(g, t, Canceled(now())), check)


def _exec_still_working() -> Case:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)

    def check(g: AtomicOrderGroup) -> None:
        assert t.state == "partially_filled" and g.unwind_tickets == [] and g.rollback_reason is None

    return Case(g, lambda g: fill(g, t, 1), check)


def _exec_to_rollback(trigger: str) -> Callable[[], Case]:
    def build() -> Case:
        g = group_in("executing")
        t = combo_ticket(g)
        send(g, t)
        fill(g, t, 1)
        fire: Action = {
            "deadline": lambda g: g.deadline(now(), "90s passed"),
            "submit_failed": lambda g: g.submit_failed(now(), "refused: margin"),
            "abort": lambda g: g.abort(now(), "user"),
        }[trigger]

        def check(g: AtomicOrderGroup) -> None:
            assert g.rollback_reason is not None and g.rollback_reason.startswith(trigger)
            assert g.audit[-2].reason == {"deadline": "90s passed", "submit_failed": "refused: margin",
                                          "abort": "user"}[trigger]
            assert g.cancelable_tickets() == [t]
            assert g.unwind_tickets == []  # nothing unwinds while the entry order still works

        return Case(g, fire, check)

    return build


def _rb_complete() -> Case:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    g.deadline(now())
    ev(g, t, CancelRequested(now()))

    def check(g: AtomicOrderGroup) -> None:
        assert g.ledger.positions() == g.targets and g.unwind_tickets == []

    return Case(g, lambda g: fill(g, t), check)


def _rb_flat() -> Case:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)
    g.abort(now())
    ev(g, t, CancelRequested(now()))

    def check(g: AtomicOrderGroup) -> None:
        assert g.ledger.is_flat and g.live_tickets() == [] and g.unwind_tickets == []

    return Case(g, lambda g: ev(g, t, Canceled(now())), check)


def _rb_exhausted() -> Case:
    g = started(make_group(max_unwind_retries=1))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    cancel(g, t)
    first = unwind_for(g, SP)
    send(g, first)
    assert reject(g, first) == "rolling_back"  # 1 failure <= 1 allowed: a new unwind is opened
    bought_back = unwind_for(g, SC)
    send(g, bought_back)
    fill(g, bought_back)
    second = unwind_for(g, SP)
    send(g, second)

    def check(g: AtomicOrderGroup) -> None:
        assert g.exhausted_symbols() == [SP]
        assert g.residual_exposure == g.ledger.positions() == {LP: 1, SP: -1, LC: 1}
        assert len(g.alerts) == 1 and "FAILED" in g.alerts[0]

    return Case(g, lambda g: reject(g, second), check)


def _rb_internal() -> Case:
    g = group_in("executing")
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    g.deadline(now())
    ev(g, t, CancelRequested(now()))
    assert g.unwind_tickets == []

    def check(g: AtomicOrderGroup) -> None:
        assert len(g.unwind_tickets) == 4
        assert all(u.purpose is Purpose.UNWIND and u.state == "new" for u in g.unwind_tickets)

    return Case(g, lambda g: ev(g, t, Canceled(now())), check)


def _rb_repeat(trigger: str) -> Callable[[], Case]:
    """A deadline or abort while already rolling back changes nothing (the first reason stays)."""

    def build() -> Case:
        g = group_in("executing")
        t = combo_ticket(g)
        send(g, t)
        g.deadline(now(), "first")
        ev(g, t, CancelRequested(now()))
        before = (g.rollback_reason, [x.state for x in g.tickets], len(g.unwind_tickets))

        def fire(g: AtomicOrderGroup) -> str:
            return (g.deadline if trigger == "deadline" else g.abort)(now(), "again")

        def check(g: AtomicOrderGroup) -> None:
            assert (g.rollback_reason, [x.state for x in g.tickets], len(g.unwind_tickets)) == before
            assert g.audit[-1].trigger == trigger and g.audit[-1].source == g.audit[-1].dest == "rolling_back"

        return Case(g, fire, check)

    return build


def _committed_disturbed() -> Case:
    g = group_in("committed")
    t = combo_ticket(g)

    def check(g: AtomicOrderGroup) -> None:
        assert len(g.alerts) == 1 and "re-opened from committed" in g.alerts[0]
        assert t.overfill_quantity == 1
        # the whole position is unwound (every non-zero net), not only the excess
        assert {u.legs[0].symbol: u.quantity for u in g.unwind_tickets} == {LP: 3, SP: 3, SC: 3, LC: 3}

    return Case(g, lambda g: fill(g, t, 1), check)


def _committed_internal() -> Case:
    g = group_in("committed")
    t = combo_ticket(g)

    def check(g: AtomicOrderGroup) -> None:
        assert t.duplicate_fills == 1 and g.alerts == [] and g.unwind_tickets == []

    return Case(g, lambda g: ev(g, t, Fill(now(), t.fills[0].fill_id, 2, PRICE)), check)


def _rolled_back_disturbed() -> Case:
    g = group_in("rolled_back")
    t = combo_ticket(g)

    def check(g: AtomicOrderGroup) -> None:
        assert len(g.alerts) == 1 and "re-opened from rolled_back" in g.alerts[0]
        assert t.late_fill_quantity == 1
        assert {u.legs[0].symbol: (u.legs[0].side, u.quantity) for u in g.unwind_tickets} == {
            LP: (Side.SELL, 1), SP: (Side.BUY, 1), SC: (Side.BUY, 1), LC: (Side.SELL, 1)
        }

    return Case(g, lambda g: fill(g, t, 1), check)


def _rolled_back_internal() -> Case:
    g = group_in("rolled_back")
    t = combo_ticket(g)

    def check(g: AtomicOrderGroup) -> None:
        assert g.alerts == [] and g.ledger.is_flat

    return Case(g, lambda g: ev(g, t, Canceled(now())), check)


def _failed_internal() -> Case:
    g = failed_group()
    t = combo_ticket(g)
    assert len(g.alerts) == 1

    def check(g: AtomicOrderGroup) -> None:
        assert g.residual_exposure == g.ledger.positions() == {LP: 2, SP: -2, SC: -1, LC: 2}
        assert len(g.alerts) == 2 and "residual changed" in g.alerts[1]

    return Case(g, lambda g: fill(g, t, 1), check)


def _disputed(state: str) -> Callable[[], Case]:
    """The broker's record kept saying FILLED without delivering the fills: failed, residual from the broker."""

    def build() -> Case:
        g = group_in("executing")
        t = combo_ticket(g)
        send(g, t)
        fill(g, t, 1)
        ev(g, t, Reconciled(now(), BrokerStatus.FILLED, tuple(t.fills)))  # 1 listed of 2: contradiction
        assert t.state == "unknown" and not t.is_live
        if state == "rolling_back":
            g.deadline(now())
        assert g.state == state

        def check(g: AtomicOrderGroup) -> None:
            # the broker counts the whole order filled (2 units), though it delivered one
            assert g.residual_exposure == {LP: 2, SP: -2, SC: -2, LC: 2}
            assert g.ledger.positions() == {LP: 1, SP: -1, SC: -1, LC: 1}
            assert any("broker record disputed" in a for a in g.alerts)

        return Case(g, lambda g: g.broker_disputed(now(), "FILLED without fills"), check)

    return build


def _failed_disputed_again() -> Case:
    g = failed_group()
    before = dict(g.residual_exposure)

    def check(g: AtomicOrderGroup) -> None:
        assert g.residual_exposure == before and len(g.alerts) == 1

    return Case(g, lambda g: g.broker_disputed(now(), "again"), check)


SETUPS: dict[tuple[str, str, str | None, str], Callable[[], Case]] = {
    ("validate", "pending", "validated", "is_valid"): _validate_ok,
    ("validate", "pending", "invalid", "not is_valid"): _validate_bad,
    ("start", "validated", "executing", ""): _start,
    ("ticket_update", "executing", "committed", "is_complete and broker_confirms"): _exec_complete,
    ("ticket_update", "executing", "rolling_back", "has_failed_leg"): _exec_failed_leg,
    ("ticket_update", "executing", None, ""): _exec_still_working,
    ("deadline", "executing", "rolling_back", ""): _exec_to_rollback("deadline"),
    ("submit_failed", "executing", "rolling_back", ""): _exec_to_rollback("submit_failed"),
    ("abort", "executing", "rolling_back", ""): _exec_to_rollback("abort"),
    ("deadline", "rolling_back", None, ""): _rb_repeat("deadline"),
    ("abort", "rolling_back", None, ""): _rb_repeat("abort"),
    ("broker_disputed", "executing", "failed", ""): _disputed("executing"),
    ("broker_disputed", "rolling_back", "failed", ""): _disputed("rolling_back"),
    ("broker_disputed", "failed", None, ""): _failed_disputed_again,
    ("ticket_update", "rolling_back", "committed", "is_complete and broker_confirms"): _rb_complete,
    ("ticket_update", "rolling_back", "rolled_back", "is_flat and broker_confirms"): _rb_flat,
    ("ticket_update", "rolling_back", "failed", "unwind_retries_exhausted and broker_confirms"): _rb_exhausted,
    ("ticket_update", "rolling_back", None, ""): _rb_internal,
    ("ticket_update", "committed", "rolling_back", "is_disturbed"): _committed_disturbed,
    ("ticket_update", "committed", None, ""): _committed_internal,
    ("ticket_update", "rolled_back", "rolling_back", "is_disturbed"): _rolled_back_disturbed,
    ("ticket_update", "rolled_back", None, ""): _rolled_back_internal,
    ("ticket_update", "failed", None, ""): _failed_internal,
}


def test_every_row_has_a_scripted_case() -> None:
    assert set(SETUPS) == {_key(r) for r in GROUP_TRANSITIONS}
    assert len(SETUPS) == len(GROUP_TRANSITIONS)


@pytest.mark.parametrize(
    "index",
    range(len(GROUP_TRANSITIONS)),
    ids=[f"r{i:02d}-{r.trigger}-{'_'.join(r.source)}->{r.dest or 'same'}" for i, r in enumerate(GROUP_TRANSITIONS)],
)
def test_row(index: int) -> None:
    row = GROUP_TRANSITIONS[index]
    key = _key(row)
    case = SETUPS[key]()
    g = case.group
    src = key[1]
    assert g.state == src
    audit_before = len(g.audit)
    expected = row.dest if row.dest is not None else src

    assert case.fire(g) == expected
    assert g.state == expected
    rec = g.audit[audit_before]
    assert (rec.source, rec.trigger, rec.dest) == (src, row.trigger, expected)
    if expected == "rolling_back" and src != "rolling_back":
        # entering rollback, the group re-evaluates itself once (here: something is left to do)
        (again,) = g.audit[audit_before + 1 :]
        assert (again.source, again.trigger, again.dest, again.reason) == (
            "rolling_back", "ticket_update", "rolling_back", REEVALUATE
        )
    else:
        assert len(g.audit) == audit_before + 1
    case.check(g)
    # whatever the row, the group is still consistent (and replays to the same place)
    assert check_group(g, replay=True) == []


def _fire(trigger: str) -> Action:
    return {
        "validate": lambda g: g.validate(now()),
        "start": lambda g: g.start(now()),
        "deadline": lambda g: g.deadline(now()),
        "submit_failed": lambda g: g.submit_failed(now(), "refused"),
        "abort": lambda g: g.abort(now()),
        "broker_disputed": lambda g: g.broker_disputed(now(), "disputed"),
        # ticket events before execution never reach the group's table; fire the trigger directly
        "ticket_update": lambda g: g._fire(GroupEvent(now(), "ticket_update")),
    }[trigger]


ILLEGAL = [
    pytest.param(state, trigger, id=f"{trigger}-in-{state}")
    for state in GROUP_STATES
    for trigger in GROUP_MACHINE.triggers
    if (state, trigger) not in GROUP_MACHINE.pairs
]


def test_illegal_pairs_exist_for_every_state() -> None:
    assert {p.values[0] for p in ILLEGAL} == set(GROUP_STATES)


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL)
def test_illegal_pair_raises_and_changes_nothing(state: str, trigger: str) -> None:
    g = group_in(state)
    before = group_snapshot(g)
    with pytest.raises(InvalidTransition) as info:
        _fire(trigger)(g)
    err = info.value
    assert (err.machine, err.ident, err.state, err.event) == ("AtomicOrderGroup", g.group_id, state, trigger)
    assert repr(g.group_id) in str(err) and repr(state) in str(err) and repr(trigger) in str(err)
    assert group_snapshot(g) == before


@pytest.mark.parametrize("state", GROUP_STATES)
def test_group_in_each_state_is_consistent(state: str) -> None:
    g = group_in(state)
    assert g.state == state
    assert check_group(g, replay=True) == []


def test_illegal_ticket_event_changes_neither_ticket_nor_group() -> None:
    g = group_in("executing")
    t = combo_ticket(g)
    before = group_snapshot(g)
    with pytest.raises(InvalidTransition, match="OrderTicket"):
        ev(g, t, Canceled(now()))  # canceled is not allowed for a ticket never submitted
    assert group_snapshot(g) == before and t.order_events == []


def test_ticket_events_before_start_do_not_fire_the_group() -> None:
    g = make_group()
    g.validate(now())
    t = combo_ticket(g)
    assert ev(g, t, Submit(now(), PRICE)) == "validated"
    assert t.state == "submitting"
    assert [r.trigger for r in g.audit] == ["validate"]


def test_a_verified_group_settles_only_on_the_brokers_record() -> None:
    """Invariant 7 in the table: complete by our fills is not committed until the broker confirms."""
    g = started(make_group(verify_with_broker=True))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t)
    assert t.state == "filled" and g.state == "executing"  # waiting for the broker's record
    assert g.awaiting_broker()
    ev(g, t, Reconciled(now(), BrokerStatus.FILLED, tuple(t.fills)))
    assert g.state == "committed" and check_group(g, replay=True) == []


def test_a_verified_group_books_fills_the_record_lists_before_settling() -> None:
    """Canceled by our events with 1 of 2; the broker's record lists a second fill: committed, not unwound."""
    g = started(make_group(verify_with_broker=True))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    g.deadline(now())
    ev(g, t, CancelRequested(now()))
    ev(g, t, Canceled(now()))
    missing = Fill(now(), "F-missing", 1, PRICE)
    assert g.state == "rolling_back" and [u.state for u in g.unwind_tickets] == ["new"] * 4
    ev(g, t, Reconciled(now(), BrokerStatus.CANCELED, (*t.fills, missing)))
    assert g.state == "committed" and g.ledger.positions() == g.targets


def test_a_filled_status_without_fills_never_settles_a_verified_group() -> None:
    g = started(make_group(verify_with_broker=True))
    t = combo_ticket(g)
    send(g, t)
    ev(g, t, Reconciled(now(), BrokerStatus.FILLED, ()))
    assert t.state == "unknown" and t.quantity_filled == 0 and t.broker_filled == 2
    g.deadline(now())
    assert g.state == "rolling_back"  # flat by our ledger, but the broker counts 2: not rolled_back
    assert g.broker_positions() == {LP: 2, SP: -2, SC: -2, LC: 2}
