"""Builders shared by the core tests: times, symbols, legs, tickets and groups in any state.

Everything here drives the machines only through their public inputs (events), so a ticket or
group "in state X" got there by a legal path, exactly as it would in production.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

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
    Updated,
    UpdateRejected,
    UpdateRequested,
)
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.fsm.ticket import OrderTicket

T0 = dt.datetime(2026, 1, 2, 14, 30, tzinfo=dt.UTC)
EXPIRY = dt.date(2026, 1, 16)
PRICE = Decimal("1.00")

_clock = itertools.count(1)
_ids = itertools.count(1)


def now() -> dt.datetime:
    """A strictly increasing time (one second per call), so audit trails are ordered."""
    return T0 + dt.timedelta(seconds=next(_clock))


def fill_id() -> str:
    """A fill id never used before in this test session."""
    return f"F{next(_ids):06d}"


def sym(right: str, strike: str | int, root: str = "SPXW", expiry: dt.date = EXPIRY) -> OptionSymbol:
    return OptionSymbol.of(root, expiry, Right(right), Decimal(str(strike)))


# -- legs -------------------------------------------------------------------------------------

LP, SP, SC, LC = sym("P", 4800), sym("P", 4900), sym("C", 5100), sym("C", 5200)


def condor_legs(ratio: int = 1, sold: bool = True) -> tuple[Leg, ...]:
    """An iron condor, legs ordered [put wing, put body, call body, call wing].

    Sold (credit): buy 4800P, sell 4900P, sell 5100C, buy 5200C.
    Bought (debit): sell 4800P, buy 4900P, buy 5100C, sell 5200C.
    """
    outer, inner = (Side.BUY, Side.SELL) if sold else (Side.SELL, Side.BUY)
    return (Leg(LP, outer, ratio), Leg(SP, inner, ratio), Leg(SC, inner, ratio), Leg(LC, outer, ratio))


def vertical_legs() -> tuple[Leg, ...]:
    return (Leg(sym("C", 5000), Side.BUY), Leg(sym("C", 5050), Side.SELL))


def strangle_legs(side: Side = Side.SELL) -> tuple[Leg, ...]:
    return (Leg(sym("C", 5100), side), Leg(sym("P", 4900), side))


def make_group(
    mode: ExecutionMode = ExecutionMode.COMBO,
    quantity: int = 2,
    legs: tuple[Leg, ...] | None = None,
    strategy: StrategyKind = StrategyKind.IRON_CONDOR,
    gid: str = "G",
    **kw: Any,
) -> AtomicOrderGroup:
    if mode is ExecutionMode.COMBO:  # a legged group takes no net limit (refused by validation)
        kw.setdefault("limit_price", Decimal("1.50"))
        kw.setdefault("price_effect", PriceEffect.CREDIT)
    return AtomicOrderGroup(gid, condor_legs() if legs is None else legs, quantity, strategy=strategy, mode=mode,
                            **kw)


def started(group: AtomicOrderGroup) -> AtomicOrderGroup:
    assert group.validate(now()) == "validated", group.validation_errors
    assert group.start(now()) == "executing"
    return group


# -- group drivers (every ticket event goes through the group) ----------------------------------


def ev(g: AtomicOrderGroup, ticket: OrderTicket | str, event: TicketEvent) -> str:
    ref = ticket if isinstance(ticket, str) else ticket.order_ref
    return g.apply_ticket_event(ref, event)


def send(g: AtomicOrderGroup, ticket: OrderTicket, price: Decimal = PRICE) -> str:
    """Submit and acknowledge: the ticket is working."""
    ev(g, ticket, Submit(now(), price))
    return ev(g, ticket, Acknowledged(now(), f"B-{ticket.order_ref}"))


def fill(g: AtomicOrderGroup, ticket: OrderTicket, qty: int | None = None, price: Decimal = PRICE) -> str:
    """A fresh fill of ``qty`` (default: everything that remains)."""
    q = ticket.quantity_remaining if qty is None else qty
    return ev(g, ticket, Fill(now(), fill_id(), q, price))


def reject(g: AtomicOrderGroup, ticket: OrderTicket, reason: str = "no") -> str:
    return ev(g, ticket, Rejected(now(), reason))


def cancel(g: AtomicOrderGroup, ticket: OrderTicket) -> str:
    """Request a cancel and have the broker confirm it."""
    ev(g, ticket, CancelRequested(now()))
    return ev(g, ticket, Canceled(now()))


def combo_ticket(g: AtomicOrderGroup) -> OrderTicket:
    (t,) = g.entry_tickets
    return t


def leg_ticket(g: AtomicOrderGroup, i: int) -> OrderTicket:
    return g.ticket(f"{g.group_id}-L{i}")


def unwind_for(g: AtomicOrderGroup, symbol: OptionSymbol, state: str = "new") -> OrderTicket:
    matches = [t for t in g.unwind_tickets if t.legs[0].symbol == symbol and t.state == state]
    assert len(matches) == 1, (symbol, state, g.unwind_tickets)
    return matches[0]


def fill_unwinds(g: AtomicOrderGroup) -> None:
    """Send and fully fill every sendable unwind until none is left (shorts first, as the group says)."""
    for _ in range(10):
        batch = g.sendable_tickets()
        if not batch:
            return
        for t in batch:
            send(g, t)
            fill(g, t)
    raise AssertionError("unwinds never ran out")


# -- groups in each state -----------------------------------------------------------------------


def group_in(state: str, **kw: Any) -> AtomicOrderGroup:
    """A combo iron condor group (x2) driven to ``state`` through legal inputs."""
    if state == "invalid":
        g = make_group(quantity=0, **kw)
        assert g.validate(now()) == "invalid"
        return g
    g = make_group(**kw)
    if state == "pending":
        return g
    if state == "validated":
        assert g.validate(now()) == "validated"
        return g
    started(g)
    if state == "executing":
        return g
    t = combo_ticket(g)
    send(g, t)
    if state == "committed":
        assert fill(g, t) == "committed"
        return g
    if state == "rolling_back":
        assert g.deadline(now()) == "rolling_back"
        return g
    if state == "rolled_back":
        assert g.abort(now()) == "rolling_back"
        assert cancel(g, t) == "rolled_back"
        return g
    if state == "failed":
        return failed_group(**kw)
    raise ValueError(state)


def failed_group(**kw: Any) -> AtomicOrderGroup:
    """Combo condor x2, one unit filled, the rest canceled; the short-put buy-back is rejected past the
    limit (0 retries), the short-call buy-back fills: residual long put, short put, long call (1 each)."""
    kw.setdefault("max_unwind_retries", 0)
    g = started(make_group(**kw))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    assert cancel(g, t) == "rolling_back"
    u = unwind_for(g, SP)
    send(g, u)
    assert reject(g, u) == "rolling_back"  # the short-call buy-back can still go out
    sc = unwind_for(g, SC)
    assert g.sendable_tickets() == [sc]
    send(g, sc)
    assert fill(g, sc) == "failed"
    return g


# -- tickets in each state ----------------------------------------------------------------------

QTY = 10

Step = Callable[[OrderTicket], TicketEvent]


def _submit(t: OrderTicket) -> TicketEvent:
    return Submit(now(), PRICE)


def _ack(t: OrderTicket) -> TicketEvent:
    return Acknowledged(now(), "B-1")


def _part(t: OrderTicket) -> TicketEvent:
    return Fill(now(), fill_id(), 4, PRICE)


def _full(t: OrderTicket) -> TicketEvent:
    return Fill(now(), fill_id(), t.quantity_remaining, PRICE)


def _late(t: OrderTicket) -> TicketEvent:
    return Fill(now(), fill_id(), 2, PRICE)


def _cancel_req(t: OrderTicket) -> TicketEvent:
    return CancelRequested(now())


def _canceled(t: OrderTicket) -> TicketEvent:
    return Canceled(now())


def _rejected(t: OrderTicket) -> TicketEvent:
    return Rejected(now(), "refused")


def _expired(t: OrderTicket) -> TicketEvent:
    return Expired(now())


def _unknown(t: OrderTicket) -> TicketEvent:
    return SubmissionUnknown(now(), "timeout")


def _claimed_filled(t: OrderTicket) -> TicketEvent:
    return Reconciled(now(), BrokerStatus.FILLED, ())


def _update_req(t: OrderTicket) -> TicketEvent:
    return UpdateRequested(now(), limit_price=Decimal("1.05"))


#: (state, variant) -> legal event path from ``new``. "bare": nothing filled; "filled": something filled.
TICKET_PATHS: dict[tuple[str, str], list[Step]] = {
    ("new", "bare"): [],
    ("submitting", "bare"): [_submit],
    ("submitted", "bare"): [_submit, _ack],
    ("partially_filled", "filled"): [_submit, _ack, _part],
    ("cancel_pending", "bare"): [_submit, _ack, _cancel_req],
    ("cancel_pending", "filled"): [_submit, _ack, _part, _cancel_req],
    ("update_pending", "bare"): [_submit, _ack, _update_req],
    ("update_pending", "filled"): [_submit, _ack, _part, _update_req],
    ("filled", "filled"): [_submit, _ack, _full],
    ("canceled", "bare"): [_submit, _ack, _cancel_req, _canceled],
    ("canceled", "filled"): [_submit, _ack, _part, _cancel_req, _canceled],
    ("rejected", "bare"): [_submit, _rejected],
    ("rejected", "filled"): [_submit, _rejected, _late],
    ("expired", "bare"): [_submit, _ack, _expired],
    ("expired", "filled"): [_submit, _ack, _part, _expired],
    ("unknown", "bare"): [_submit, _unknown],
    ("unknown", "filled"): [_submit, _ack, _part, _unknown],
    # the broker answered FILLED without listing any fill: unknown, its record claims the order
    ("unknown", "claimed"): [_submit, _claimed_filled],
}


def new_ticket(qty: int = QTY, ref: str = "T-1") -> OrderTicket:
    return OrderTicket(ref, (Leg(SC, Side.SELL),), qty)


def ticket_in(state: str, variant: str = "bare", qty: int = QTY) -> OrderTicket:
    """A fresh ticket driven to ``state`` through the legal path named by ``variant``."""
    t = new_ticket(qty)
    for step in TICKET_PATHS[(state, variant)]:
        t.apply(step(t))
    assert t.state == state
    assert (t.quantity_filled > 0) == (variant == "filled")
    return t


def variants(state: str) -> list[str]:
    return [v for (s, v) in TICKET_PATHS if s == state]


def default_event(trigger: str, t: OrderTicket) -> TicketEvent:
    """One plausible event of ``trigger`` (a fresh, non-completing fill for ``fill``)."""
    makers: dict[str, Callable[[], TicketEvent]] = {
        "submit": lambda: Submit(now(), PRICE),
        "acknowledged": lambda: Acknowledged(now(), "B-2"),
        "fill": lambda: Fill(now(), fill_id(), 1, PRICE),
        "rejected": lambda: Rejected(now(), "refused"),
        "cancel_requested": lambda: CancelRequested(now()),
        "canceled": lambda: Canceled(now()),
        "cancel_rejected": lambda: CancelRejected(now(), "too late: filled"),
        "update_requested": lambda: UpdateRequested(now(), limit_price=Decimal("1.10")),
        "updated": lambda: Updated(now(), "B-3"),
        "update_rejected": lambda: UpdateRejected(now(), "cannot replace"),
        "expired": lambda: Expired(now()),
        "submission_unknown": lambda: SubmissionUnknown(now(), "timeout"),
        "reconciled": lambda: Reconciled(now(), BrokerStatus.WORKING, tuple(t.fills)),
    }
    return makers[trigger]()


def ticket_snapshot(t: OrderTicket) -> dict[str, Any]:
    """Everything an event may change on a ticket."""
    return {
        "state": t.state,
        "quantity": t.quantity,
        "quantity_filled": t.quantity_filled,
        "fills": list(t.fills),
        "fill_ids": set(t._fill_ids),
        "order_events": len(t.order_events),
        "anomalies": list(t.anomalies),
        "duplicate_fills": t.duplicate_fills,
        "overfill_quantity": t.overfill_quantity,
        "late_fill_quantity": t.late_fill_quantity,
        "broker_order_id": t.broker_order_id,
        "reason": t.reason,
        "limit_price": t.limit_price,
        "pending_update": t._pending_update,
        "reconciliations": t.reconciliations,
        "average_fill_price": t.average_fill_price,
    }


def group_snapshot(g: AtomicOrderGroup) -> dict[str, Any]:
    """Everything an event may change on a group."""
    return {
        "state": g.state,
        "positions": g.ledger.positions(),
        "ledger_entries": len(g.ledger),
        "audit": len(g.audit),
        "tickets": [(t.order_ref, t.state, t.quantity_filled) for t in g.tickets],
        "alerts": list(g.alerts),
        "rollback_reason": g.rollback_reason,
        "residual": dict(g.residual_exposure),
        "unwind_failures": dict(g.unwind_failures),
    }

