"""Random walks through the machines: whatever the broker sends, the invariants hold.

Every step is a broker event (possibly duplicated, late or out of order) or a request the
executor would make (submit only what the group says is sendable, cancel what is working).
An event the table refuses must raise InvalidTransition and change nothing.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomic_orders.fsm import invariants
from atomic_orders.fsm.errors import InvalidTransition
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    CancelRequested,
    Expired,
    Fill,
    Reconciled,
    Rejected,
    SubmissionUnknown,
    Submit,
    TicketEvent,
)
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.ticket import TICKET_MACHINE, UNSETTLED_STATES, OrderTicket

from .factories import group_snapshot, make_group, new_ticket, now, started, ticket_snapshot

BROKER_KINDS = ["ack", "fill", "fill", "fill", "dup_fill", "rejected", "canceled", "cancel_rejected", "expired",
                "unknown", "reconciled"]
PRICES = st.sampled_from([Decimal("0.95"), Decimal("1.00"), Decimal("1.05")])


def _broker_event(data: st.DataObject, t: OrderTicket, serial: list[int]) -> TicketEvent:
    kind = data.draw(st.sampled_from(BROKER_KINDS))
    serial[0] += 1
    if kind == "ack":
        return Acknowledged(now(), f"B{serial[0]}")
    if kind == "fill" or (kind == "dup_fill" and not t.fills):
        qty = data.draw(st.integers(1, max(t.quantity_remaining, 1) + 1))
        return Fill(now(), f"X{serial[0]}", qty, data.draw(PRICES))
    if kind == "dup_fill":
        old = data.draw(st.sampled_from(t.fills))
        return Fill(now(), old.fill_id, old.quantity, old.price)
    if kind == "rejected":
        return Rejected(now(), "refused")
    if kind == "canceled":
        return Canceled(now())
    if kind == "cancel_rejected":
        return CancelRejected(now(), "too late")
    if kind == "expired":
        return Expired(now())
    if kind == "unknown":
        return SubmissionUnknown(now(), "timeout")
    status = data.draw(st.sampled_from(list(BrokerStatus)))
    extra = data.draw(st.integers(0, 2))
    fills = [*t.fills, *(Fill(now(), f"R{serial[0]}-{i}", 1, Decimal("1.00")) for i in range(extra))]
    return Reconciled(now(), status, tuple(fills))


def _conserved(t: OrderTicket) -> None:
    assert t.quantity_filled == sum(f.quantity for f in t.fills)
    assert len({f.fill_id for f in t.fills}) == len(t.fills)
    assert t.overfill_quantity == max(t.quantity_filled - t.quantity, 0)
    assert t.quantity_remaining == max(t.quantity - t.quantity_filled, 0)
    for rec in t.order_events:
        assert (rec.source, rec.trigger, rec.dest) in TICKET_MACHINE.allowed_changes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_ticket_random_walk_keeps_fills_conserved(data: st.DataObject) -> None:
    t = new_ticket(data.draw(st.integers(1, 5)))
    serial = [0]
    t.apply(Submit(now(), Decimal("1.00")))
    for _ in range(data.draw(st.integers(1, 25))):
        if data.draw(st.booleans()) and t.can_apply("cancel_requested"):
            event: TicketEvent = CancelRequested(now())
        else:
            event = _broker_event(data, t, serial)
        before = ticket_snapshot(t)
        if t.can_apply(event.trigger):
            t.apply(event)
        else:
            try:
                t.apply(event)
            except InvalidTransition:
                assert ticket_snapshot(t) == before
            else:
                raise AssertionError(f"{event.trigger} applied in {before['state']}")
        _conserved(t)
        if t.state == "filled":
            assert t.quantity_filled >= t.quantity or t.reconciliations > 0
        assert (t.late_fill_quantity > 0 or t.overfill_quantity > 0) == t.flagged


def _step(data: st.DataObject, g: AtomicOrderGroup, serial: list[int]) -> None:
    choices: list[tuple[str, OrderTicket | None]] = [("send", t) for t in g.sendable_tickets()]
    choices += [("cancel", t) for t in g.cancelable_tickets()]
    choices += [("broker", t) for t in g.tickets if t.state != "new"]
    if g.state == "executing":
        choices += [("deadline", None), ("abort", None)]
    if not choices:
        return
    action, t = data.draw(st.sampled_from(choices))
    if action == "deadline":
        g.deadline(now())
        return
    if action == "abort":
        g.abort(now())
        return
    assert t is not None
    if action == "send":
        g.apply_ticket_event(t.order_ref, Submit(now(), Decimal("1.00")))
        return
    if action == "cancel":
        g.apply_ticket_event(t.order_ref, CancelRequested(now()))
        return
    event = _broker_event(data, t, serial)
    before = group_snapshot(g)
    try:
        g.apply_ticket_event(t.order_ref, event)
    except InvalidTransition:
        assert not t.can_apply(event.trigger)
        assert group_snapshot(g) == before


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_group_random_walk_keeps_every_invariant(data: st.DataObject) -> None:
    mode = data.draw(st.sampled_from(list(ExecutionMode)))
    g = started(make_group(mode=mode, quantity=data.draw(st.integers(1, 3)),
                           max_unwind_retries=data.draw(st.integers(0, 2))))
    serial = [0]
    for _ in range(data.draw(st.integers(1, 40))):
        _step(data, g, serial)
        assert invariants.check_step(g) == []
        if g.is_terminal:
            assert not any(t.is_live for t in g.tickets)
    settle(g)
    assert g.is_terminal, (g.state, [(t.order_ref, t.state) for t in g.tickets])
    assert invariants.check_group(g, replay=True) == []


def settle(g: AtomicOrderGroup) -> None:
    """A cooperative broker from here on: entries are canceled once rolling back, everything else fills."""
    for _ in range(60):
        if g.is_terminal:
            return
        rolling_back = g.state == "rolling_back"
        progressed = False
        for t in g.tickets:
            undo = rolling_back and t in g.entry_tickets
            event: TicketEvent | None = None
            if t.state == "unknown":
                extra = () if undo else (Fill(now(), f"S-{t.order_ref}-{len(t.fills)}", t.quantity_remaining or 1,
                                               Decimal("1.00")),)
                status = BrokerStatus.CANCELED if undo else BrokerStatus.FILLED
                event = Reconciled(now(), status, (*t.fills, *extra))
            elif t.state in UNSETTLED_STATES:
                if undo or t.quantity_remaining == 0:
                    event = Canceled(now())
                else:
                    event = Fill(now(), f"S-{t.order_ref}-{len(t.fills)}", t.quantity_remaining, Decimal("1.00"))
            elif t in g.sendable_tickets():
                event = Submit(now(), Decimal("1.00"))
            if event is not None:
                g.apply_ticket_event(t.order_ref, event)
                progressed = True
                assert invariants.check_step(g) == []
        if not progressed and not g.is_terminal and any(
                t.broker_filled != t.quantity_filled or (t.state == "unknown" and not t.is_live) for t in g.tickets):
            # the broker's record keeps contradicting the fills: what the executor does after
            # max_broker_disagreements answers (failed, with the residual the broker counts)
            g.broker_disputed(now(), "the broker's record keeps disagreeing")
            progressed = True
        if not progressed and g.state == "executing":
            # e.g. the broker reconciled an order as filled without its fills: the executor's
            # deadline is what moves such a group on
            g.deadline(now())
            progressed = True
        if not progressed:
            return
