"""OrderTicket: the state machine of one broker order.

The table below is the machine. Fills are never dropped: a duplicate fill id is counted and
ignored, a fill beyond the order's quantity (or after ``filled``) is an over-fill, and a fill
after ``canceled``/``expired``/``rejected`` is a late fill; both are recorded in the ticket's
ledger and raise an anomaly flag. ``unknown`` (the outcome of a submission is not known) is
left only through ``reconciled``, never by resubmitting.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from transitions import MachineError

from atomic_orders.fsm.errors import AtomicOrdersError, InvalidTransition, ValidationError
from atomic_orders.fsm.events import (
    BrokerStatus,
    Fill,
    Reconciled,
    Submit,
    TicketEvent,
    UpdateRequested,
)
from atomic_orders.fsm.leg import Leg
from atomic_orders.fsm.machine import MachineSpec, Row, build_runtime_machine
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce

if TYPE_CHECKING:
    from collections.abc import Callable


class TicketState(StrEnum):
    """The states of an :class:`OrderTicket`.

    A state also compares equal to the LEAN ``OrderStatus`` that means the same thing (LEAN's enum
    members compare with their integer codes), so LEAN ticket code such as
    ``ticket.status == OrderStatus.FILLED`` works unchanged on an executor ticket: see
    :attr:`lean_code`. Against strings it compares as the state's name, as before.
    """

    NEW = "new"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    CANCEL_PENDING = "cancel_pending"
    UPDATE_PENDING = "update_pending"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def lean_code(self) -> int:
        """LEAN's ``OrderStatus`` code for this state (``Common/Orders/OrderTypes.cs``).

        New 0 (also while our submission is in flight), Submitted 1, PartiallyFilled 2, Filled 3,
        Canceled 5 (also an expiry, as LEAN reports it), None 6 (``unknown``: no known state yet),
        Invalid 7 (``rejected``), CancelPending 8, UpdateSubmitted 9.
        """
        return _LEAN_STATUS_CODES[self.value]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str.__eq__(self, other)
        code = _lean_status_code(other)
        return code is not None and code == self.lean_code

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


_LEAN_STATUS_CODES: dict[str, int] = {
    "new": 0, "submitting": 0, "submitted": 1, "partially_filled": 2, "filled": 3, "canceled": 5, "expired": 5,
    "unknown": 6, "rejected": 7, "cancel_pending": 8, "update_pending": 9,
}


def _lean_status_code(value: object) -> int | None:
    """The integer code of a LEAN ``OrderStatus`` (an int enum, or a pythonnet enum), else None."""
    if isinstance(value, bool | float | Decimal):
        return None
    if isinstance(value, int):
        return int(value)
    if type(value).__name__ == "OrderStatus":
        as_int: Any = value
        try:
            return int(as_int)
        except (TypeError, ValueError):
            return None
    return None


NEW, SUBMITTING, SUBMITTED, PARTIALLY_FILLED = "new", "submitting", "submitted", "partially_filled"
CANCEL_PENDING, UPDATE_PENDING, FILLED, CANCELED = "cancel_pending", "update_pending", "filled", "canceled"
REJECTED, EXPIRED, UNKNOWN = "rejected", "expired", "unknown"

TICKET_STATES: tuple[str, ...] = tuple(s.value for s in TicketState)
#: States after which the broker will not work the order any more (late fills may still arrive).
FINAL_STATES: frozenset[str] = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})
#: States in which the order is, or may be, live at the broker.
WORKING_STATES: frozenset[str] = frozenset({SUBMITTING, SUBMITTED, PARTIALLY_FILLED, CANCEL_PENDING, UPDATE_PENDING})
#: Working at the broker or possibly so: nothing may be decided about these without the broker.
UNSETTLED_STATES: frozenset[str] = WORKING_STATES | {UNKNOWN}
#: States from which a cancel may be requested.
CANCELABLE_STATES: frozenset[str] = frozenset({SUBMITTED, PARTIALLY_FILLED, UPDATE_PENDING})

_LIVE = (SUBMITTED, PARTIALLY_FILLED, CANCEL_PENDING, UPDATE_PENDING)
_AFTER_SUBMIT = (SUBMITTING, *_LIVE, FILLED, CANCELED, REJECTED, EXPIRED, UNKNOWN)
_RECONCILABLE = (SUBMITTING, *_LIVE, UNKNOWN)

# fmt: off
#: The OrderTicket machine. Read top to bottom; rows for one (state, trigger) are tried in order.
TICKET_TRANSITIONS: tuple[Row, ...] = (
    Row("submit", NEW, SUBMITTING, before="record_submission"),

    Row("acknowledged", SUBMITTING, SUBMITTED, before="record_broker_id"),
    Row("acknowledged", _AFTER_SUBMIT[1:], None, before="record_broker_id",
        note="late or duplicate acknowledgement: remember the id, change nothing"),

    # Fills: duplicates first, then completion, then partial. Every non-duplicate fill is recorded.
    Row("fill", _AFTER_SUBMIT, None, conditions="is_duplicate_fill", before="count_duplicate_fill"),
    Row("fill", _AFTER_SUBMIT, None, conditions="is_conflicting_fill", before="flag_conflicting_fill",
        note="a fill id seen before with other numbers: an anomaly, not a duplicate; the broker's record judges"),
    Row("fill", (SUBMITTING, SUBMITTED, PARTIALLY_FILLED, CANCEL_PENDING, UPDATE_PENDING, CANCELED, EXPIRED),
        FILLED, conditions="completes_order", before="record_fill",
        note="a fill larger than what remains is an over-fill: recorded and flagged"),
    Row("fill", (SUBMITTING, SUBMITTED, PARTIALLY_FILLED), PARTIALLY_FILLED, conditions="is_partial_fill",
        before="record_fill"),
    Row("fill", (CANCEL_PENDING, UPDATE_PENDING), None, conditions="is_partial_fill", before="record_fill",
        note="cancel/update race: the fill applies, the request stays pending"),
    Row("fill", (FILLED, CANCELED, EXPIRED, REJECTED, UNKNOWN), None, before="record_fill",
        note="over-fill or late fill (flagged), or a fill while unknown (kept for reconciliation)"),

    Row("rejected", (SUBMITTING, SUBMITTED), REJECTED, before="record_reason"),
    Row("rejected", PARTIALLY_FILLED, REJECTED, before="record_reason",
        note="rejected after part of it filled: the leg ends short (what filled stays booked)"),
    Row("rejected", (CANCEL_PENDING, UPDATE_PENDING), REJECTED, before="record_reason",
        note="the broker rejected the order while our cancel/update was in flight"),
    Row("rejected", REJECTED, None, note="duplicate delivery"),

    Row("cancel_requested", (SUBMITTED, PARTIALLY_FILLED, UPDATE_PENDING), CANCEL_PENDING),

    Row("canceled", (SUBMITTING, *_LIVE), CANCELED),
    Row("canceled", CANCELED, None, note="duplicate delivery"),
    Row("canceled", REJECTED, None,
        note="an order given up as not found surfaced later and was cancelled (the executor alerts)"),

    Row("cancel_rejected", CANCEL_PENDING, PARTIALLY_FILLED, conditions="has_fills", before="record_reason"),
    Row("cancel_rejected", CANCEL_PENDING, SUBMITTED, unless="has_fills", before="record_reason"),
    Row("cancel_rejected", (FILLED, CANCELED, EXPIRED, REJECTED), None, before="record_reason",
        note="the order finished before the cancel reached it"),
    Row("cancel_rejected", (SUBMITTED, PARTIALLY_FILLED, UPDATE_PENDING), None, before="record_reason",
        note="duplicate or late delivery of a cancel reject already applied"),

    Row("update_requested", (SUBMITTED, PARTIALLY_FILLED), UPDATE_PENDING, before="stash_update"),
    Row("updated", UPDATE_PENDING, PARTIALLY_FILLED, conditions="has_fills", before="apply_update"),
    Row("updated", UPDATE_PENDING, SUBMITTED, unless="has_fills", before="apply_update"),
    Row("updated", (CANCEL_PENDING, FILLED, CANCELED, EXPIRED), None, before="apply_update"),
    Row("updated", (SUBMITTED, PARTIALLY_FILLED), None, before="apply_update",
        note="duplicate or late delivery of an update confirmation"),
    Row("update_rejected", UPDATE_PENDING, PARTIALLY_FILLED, conditions="has_fills", before="drop_update"),
    Row("update_rejected", UPDATE_PENDING, SUBMITTED, unless="has_fills", before="drop_update"),
    Row("update_rejected", (CANCEL_PENDING, FILLED, CANCELED, EXPIRED), None, before="drop_update"),
    Row("update_rejected", (SUBMITTED, PARTIALLY_FILLED), None, before="record_reason",
        note="duplicate or late delivery of an update reject"),

    Row("expired", (SUBMITTING, *_LIVE), EXPIRED),
    Row("expired", EXPIRED, None, note="duplicate delivery"),

    Row("submission_unknown", (SUBMITTING, *_LIVE), UNKNOWN, before="record_reason"),
    Row("submission_unknown", UNKNOWN, None, before="record_reason"),
    Row("rejected", UNKNOWN, None, before="record_reason",
        note="the broker's answer to a submission we could not confirm: kept; reconciliation decides"),
    Row("canceled", UNKNOWN, None, note="kept; reconciliation decides"),
    Row("expired", UNKNOWN, None, note="kept; reconciliation decides"),

    # Reconciliation: the broker's answer moves the ticket to what the broker says, unless the
    # answer contradicts itself (a status never stands in for quantities).
    Row("reconciled", _RECONCILABLE, UNKNOWN, conditions="contradicts_itself", before="apply_reconciliation",
        note="FILLED with fewer units than the order, a count above the listed fills, or a final status short of "
             "the order with no count and fills that may lag: book the listed, ask again"),
    Row("reconciled", _RECONCILABLE, SUBMITTED, conditions="reconciles_to_submitted", before="apply_reconciliation"),
    Row("reconciled", _RECONCILABLE, PARTIALLY_FILLED, conditions="reconciles_to_partially_filled",
        before="apply_reconciliation"),
    Row("reconciled", _RECONCILABLE, FILLED, conditions="reconciles_to_filled", before="apply_reconciliation"),
    Row("reconciled", _RECONCILABLE, CANCELED, conditions="reconciles_to_canceled", before="apply_reconciliation"),
    Row("reconciled", _RECONCILABLE, REJECTED, conditions="reconciles_to_rejected", before="apply_reconciliation"),
    Row("reconciled", _RECONCILABLE, EXPIRED, conditions="reconciles_to_expired", before="apply_reconciliation"),
    Row("reconciled", (FILLED, CANCELED, REJECTED, EXPIRED), None, before="apply_reconciliation",
        note="a final order: pick up any fill we missed, keep the state"),
)
# fmt: on

TICKET_MACHINE = MachineSpec(
    name="OrderTicket",
    states=TICKET_STATES,
    initial=NEW,
    terminal=FINAL_STATES,
    rows=TICKET_TRANSITIONS,
)


# ---------------------------------------------------------------------------------------------
# Guards: small named predicates over (ticket, event). They never change anything.


def is_duplicate_fill(t: OrderTicket, e: Fill) -> bool:
    """The fill id was applied before, with the same quantity and price."""
    seen = t._fill_ids.get(e.fill_id)
    return seen is not None and seen == (e.quantity, e.price)


def is_conflicting_fill(t: OrderTicket, e: Fill) -> bool:
    """The fill id was applied before with another quantity or price."""
    seen = t._fill_ids.get(e.fill_id)
    return seen is not None and seen != (e.quantity, e.price)


def completes_order(t: OrderTicket, e: Fill) -> bool:
    """The fill covers everything that remains (or more: an over-fill)."""
    return e.quantity >= t.quantity - t.quantity_filled


def is_partial_fill(t: OrderTicket, e: Fill) -> bool:
    """0 < quantity < what remains."""
    return e.quantity < t.quantity - t.quantity_filled


def has_fills(t: OrderTicket, _e: Any) -> bool:
    """Something has filled already."""
    return t.quantity_filled > 0


def _filled_after(t: OrderTicket, e: Reconciled) -> int:
    seen = t._fill_ids
    new: dict[str, int] = {}
    for f in e.fills:
        if f.fill_id not in seen:
            new.setdefault(f.fill_id, f.quantity)
    return t.quantity_filled + sum(new.values())


def contradicts_itself(t: OrderTicket, e: Reconciled) -> bool:
    """The answer's quantities disagree with its own status or count, or it gives none to trust.

    ``FILLED`` while the fills (ours plus the listed ones) cover less than the order, or a broker
    count of filled units above what those fills cover: some fill was not delivered to us. Or a
    final status short of the order with no count from a broker whose fills list may lag
    (``fills_may_lag``): what filled is unknown, not zero.
    """
    filled = _filled_after(t, e)
    if e.status is BrokerStatus.FILLED and filled < t.quantity:
        return True
    if _unconfirmable(t, e, filled):
        return True
    return e.filled_quantity is not None and e.filled_quantity > filled


#: Final statuses that say nothing about quantities by themselves (FILLED claims the whole order).
_SHORT_FINAL = frozenset({BrokerStatus.CANCELED, BrokerStatus.REJECTED, BrokerStatus.EXPIRED})


def _unconfirmable(t: OrderTicket, e: Reconciled, filled: int) -> bool:
    """A final record short of the order, without a count, whose fills list may still grow."""
    return e.fills_may_lag and e.filled_quantity is None and e.status in _SHORT_FINAL and filled < t.quantity


def _reconciled_state(t: OrderTicket, e: Reconciled) -> str:
    filled = _filled_after(t, e)
    status = e.status
    if status is BrokerStatus.WORKING or status is BrokerStatus.PARTIALLY_FILLED:
        if filled >= t.quantity:
            return FILLED
        return PARTIALLY_FILLED if filled > 0 else SUBMITTED
    return _STATUS_TO_STATE[status]


_STATUS_TO_STATE: dict[BrokerStatus, str] = {
    BrokerStatus.FILLED: FILLED,
    BrokerStatus.CANCELED: CANCELED,
    BrokerStatus.REJECTED: REJECTED,
    BrokerStatus.NOT_FOUND: REJECTED,
    BrokerStatus.EXPIRED: EXPIRED,
}


def reconciles_to_submitted(t: OrderTicket, e: Reconciled) -> bool:
    """The broker says the order works with nothing filled."""
    return _reconciled_state(t, e) == SUBMITTED


def reconciles_to_partially_filled(t: OrderTicket, e: Reconciled) -> bool:
    """The broker says the order works and part of it filled."""
    return _reconciled_state(t, e) == PARTIALLY_FILLED


def reconciles_to_filled(t: OrderTicket, e: Reconciled) -> bool:
    """The broker says the order filled."""
    return _reconciled_state(t, e) == FILLED


def reconciles_to_canceled(t: OrderTicket, e: Reconciled) -> bool:
    """The broker says the order was canceled."""
    return _reconciled_state(t, e) == CANCELED


def reconciles_to_rejected(t: OrderTicket, e: Reconciled) -> bool:
    """The broker rejected the order or never received it."""
    return _reconciled_state(t, e) == REJECTED


def reconciles_to_expired(t: OrderTicket, e: Reconciled) -> bool:
    """The broker says the order expired."""
    return _reconciled_state(t, e) == EXPIRED


TICKET_GUARDS: dict[str, Callable[[Any, Any], bool]] = {
    f.__name__: f
    for f in (
        is_duplicate_fill,
        is_conflicting_fill,
        contradicts_itself,
        completes_order,
        is_partial_fill,
        has_fills,
        reconciles_to_submitted,
        reconciles_to_partially_filled,
        reconciles_to_filled,
        reconciles_to_canceled,
        reconciles_to_rejected,
        reconciles_to_expired,
    )
}


# ---------------------------------------------------------------------------------------------
# Effects: run before the state changes (so a failure leaves the ticket untouched).


def record_submission(t: OrderTicket, e: Submit) -> None:
    """Fix the price the order is sent with."""
    if e.limit_price is not None:
        t.limit_price = e.limit_price
    if t.order_type is OrderType.LIMIT and t.limit_price is None:
        raise ValidationError("limit_price", None, f"ticket {t.order_ref!r} is a limit order without a price")


def record_broker_id(t: OrderTicket, e: Any) -> None:
    """Remember the broker's id for this order (first one wins; a replace sends a new one)."""
    if t.broker_order_id is None:
        t.broker_order_id = e.broker_order_id


def count_duplicate_fill(t: OrderTicket, _e: Fill) -> None:
    """A fill id seen before: count it, change nothing else."""
    t.duplicate_fills += 1


def flag_conflicting_fill(t: OrderTicket, e: Fill) -> None:
    """A fill id seen before with other numbers: keep it as an anomaly; nothing is booked twice."""
    qty, price = t._fill_ids[e.fill_id]
    t.conflicting_fills.append(e)
    t.anomalies.append(f"fill id {e.fill_id} seen again as {e.quantity} @ {e.price} (first {qty} @ {price})")


def _record(t: OrderTicket, e: Fill) -> None:
    late = t.state in _LATE_FILL_STATES
    t._fill_ids[e.fill_id] = (e.quantity, e.price)
    t.fills.append(e)
    before = t.quantity_filled
    t.quantity_filled = before + e.quantity
    t._notional += e.quantity * e.price
    if late:
        t.late_fill_quantity += e.quantity
        t.anomalies.append(f"late fill {e.fill_id} ({e.quantity}) after {t.state}")
    elif t.state == UNKNOWN:
        pass  # expected: the order did reach the broker; reconciliation settles the state
    excess = t.quantity_filled - max(before, t.quantity)
    if excess > 0:
        t.overfill_quantity += excess
        t.anomalies.append(f"over-fill {e.fill_id}: {excess} beyond quantity {t.quantity}")
    hook = t.on_fill
    if hook is not None:
        hook(t, e)


_LATE_FILL_STATES = frozenset({CANCELED, EXPIRED, REJECTED})


def record_fill(t: OrderTicket, e: Fill) -> None:
    """Apply a new fill to the ticket's ledger, flagging over-fills and late fills."""
    _record(t, e)


def record_reason(t: OrderTicket, e: Any) -> None:
    """Keep the broker's (or transport's) reason."""
    t.reason = e.reason


def stash_update(t: OrderTicket, e: UpdateRequested) -> None:
    """Remember what we asked to change until the broker answers."""
    t._pending_update = e


def apply_update(t: OrderTicket, e: Any) -> None:
    """The broker applied our update: adopt the new price/quantity (and id, after a replace)."""
    pending = t._pending_update
    if pending is not None:
        if pending.limit_price is not None:
            t.limit_price = pending.limit_price
        if pending.quantity is not None:
            t.quantity = pending.quantity
        t._pending_update = None
    if e.broker_order_id is not None:
        t.broker_order_id = e.broker_order_id


def drop_update(t: OrderTicket, e: Any) -> None:
    """The broker refused our update: forget it."""
    t._pending_update = None
    t.reason = e.reason


def apply_reconciliation(t: OrderTicket, e: Reconciled) -> None:
    """Add every fill the broker knows and we do not; keep the broker's record; note contradictions."""
    if e.broker_order_id is not None and t.broker_order_id is None:
        t.broker_order_id = e.broker_order_id
    for fill in e.fills:
        seen = t._fill_ids.get(fill.fill_id)
        if seen is None:
            _record(t, fill)
        elif seen != (fill.quantity, fill.price):
            t.conflicting_fills.append(fill)
            t.anomalies.append(f"broker lists fill {fill.fill_id} as {fill.quantity} @ {fill.price}, "
                               f"booked as {seen[0]} @ {seen[1]}")
    listed = sum({f.fill_id: f.quantity for f in e.fills}.values())
    count = listed if e.filled_quantity is None else max(e.filled_quantity, listed)
    if e.status is BrokerStatus.FILLED and e.filled_quantity is None:
        # FILLED without a count claims the whole order: never booked as fills, but it is what
        # the account may hold, so it counts in the residual the broker measures.
        count = max(count, t.quantity)
    counted = not _unconfirmable(t, e, t.quantity_filled)
    t.broker_record = BrokerRecord(e.status, count, t.quantity_filled, counted)
    if not counted:
        t.anomalies.append(f"broker record of {t.order_ref!r}: {e.status.value} without a count; its fills deliver "
                           f"{t.quantity_filled} of {t.quantity} and may still grow")
    if e.status is BrokerStatus.NOT_FOUND and t.quantity_filled > 0:
        t.anomalies.append(f"broker reports {t.order_ref!r} not found but {t.quantity_filled} filled")
    if count != t.quantity_filled or (e.status is BrokerStatus.FILLED and count < t.quantity):
        t.anomalies.append(f"broker record of {t.order_ref!r}: {e.status.value}, {count} filled; "
                           f"its fills deliver {t.quantity_filled} of {t.quantity}")
    t.reconciliations += 1


TICKET_EFFECTS: dict[str, Callable[[Any, Any], None]] = {
    f.__name__: f
    for f in (
        record_submission,
        record_broker_id,
        count_duplicate_fill,
        flag_conflicting_fill,
        record_fill,
        record_reason,
        stash_update,
        apply_update,
        drop_update,
        apply_reconciliation,
    )
}

_RUNTIME = build_runtime_machine(TICKET_MACHINE, TICKET_GUARDS, TICKET_EFFECTS)
_EVENTS = _RUNTIME.events


#: Broker statuses after which the broker will not work the order any more.
_BROKER_FINAL = frozenset({BrokerStatus.FILLED, BrokerStatus.CANCELED, BrokerStatus.REJECTED,
                           BrokerStatus.EXPIRED, BrokerStatus.NOT_FOUND})


@attrs.frozen
class BrokerRecord:
    """The broker's own record of an order at its last reconciliation.

    ``filled`` is the broker's count of filled units (its own count, or its listed fills when it
    gives none); ``booked`` is what our ticket had booked right after that answer was applied;
    ``counted`` is False when the record gave no count and its fills list may lag a final status
    short of the order: ``filled`` is then a lower bound and the record confirms nothing.
    """

    status: BrokerStatus
    filled: int
    booked: int
    counted: bool = True

    @property
    def final(self) -> bool:
        """The broker says it will not work the order any more."""
        return self.status in _BROKER_FINAL


@attrs.frozen
class AuditRecord:
    """One applied event: when, from which state, which event, to which state."""

    time: dt.datetime
    source: str
    trigger: str
    dest: str
    event: Any


class TicketRouter(Protocol):
    """What a ticket calls to reach the broker: only the executor implements it."""

    def request_cancel(self, ticket: OrderTicket) -> None:
        """Send a cancel for the ticket's order."""

    def request_update(self, ticket: OrderTicket, limit_price: Decimal | None, quantity: int | None) -> None:
        """Send an update (replace) for the ticket's order."""


@attrs.frozen
class TicketResponse:
    """What :meth:`OrderTicket.cancel` / :meth:`OrderTicket.update` answer (LEAN's ``OrderResponse`` shape).

    Success means the request was accepted and sent, not that the broker has acted on it yet.
    """

    order_id: str
    is_success: bool
    error_message: str = ""

    @property
    def is_error(self) -> bool:
        """True when the request was not sent."""
        return not self.is_success

    @property
    def IsSuccess(self) -> bool:  # noqa: N802 - LEAN's name
        """LEAN's ``IsSuccess``."""
        return self.is_success

    @property
    def IsError(self) -> bool:  # noqa: N802 - LEAN's name
        """LEAN's ``IsError``."""
        return self.is_error

    @property
    def ErrorMessage(self) -> str:  # noqa: N802 - LEAN's name
        """LEAN's ``ErrorMessage``."""
        return self.error_message


class OrderTicket:
    """One broker order as a state machine, with LEAN's ticket surface.

    ``quantity`` is in strategy units for a multi-leg (combo) order and in contracts for a
    single leg. ``fills`` is the ticket's ledger of distinct fills; ``order_events`` is the audit
    trail of every applied event.
    """

    __slots__ = (
        "state",
        "order_ref",
        "group_id",
        "purpose",
        "legs",
        "quantity",
        "order_type",
        "limit_price",
        "time_in_force",
        "broker_order_id",
        "fills",
        "_fill_ids",
        "quantity_filled",
        "_notional",
        "duplicate_fills",
        "overfill_quantity",
        "late_fill_quantity",
        "anomalies",
        "order_events",
        "reason",
        "reconciliations",
        "broker_record",
        "conflicting_fills",
        "_pending_update",
        "router",
        "on_fill",
    )

    def __init__(
        self,
        order_ref: str,
        legs: tuple[Leg, ...],
        quantity: int,
        *,
        group_id: str = "",
        purpose: Purpose = Purpose.ENTRY,
        order_type: OrderType = OrderType.LIMIT,
        limit_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.DAY,
    ) -> None:
        if type(quantity) is not int or quantity <= 0:
            raise ValidationError("quantity", quantity, f"ticket {order_ref!r}: must be a positive int")
        if not legs:
            raise ValidationError("legs", legs, f"ticket {order_ref!r}: needs at least one leg")
        self.state: str = NEW
        self.order_ref = order_ref
        self.group_id = group_id
        self.purpose = purpose
        self.legs = legs
        self.quantity = quantity
        self.order_type = order_type
        self.limit_price = limit_price
        self.time_in_force = time_in_force
        self.broker_order_id: str | None = None
        self.fills: list[Fill] = []
        #: fill id -> (quantity, price) of every booked fill.
        self._fill_ids: dict[str, tuple[int, Decimal]] = {}
        self.quantity_filled = 0
        self._notional = Decimal(0)
        self.duplicate_fills = 0
        self.overfill_quantity = 0
        self.late_fill_quantity = 0
        self.anomalies: list[str] = []
        self.order_events: list[AuditRecord] = []
        self.reason: str | None = None
        self.reconciliations = 0
        #: The broker's record at the last reconciliation (None: never asked).
        self.broker_record: BrokerRecord | None = None
        #: Fills whose id was booked before with other numbers (kept, never booked twice).
        self.conflicting_fills: list[Fill] = []
        self._pending_update: UpdateRequested | None = None
        #: Set by the executor: the only path from a ticket to a broker.
        self.router: TicketRouter | None = None
        #: Called with (ticket, fill) for every new fill, before the state changes.
        self.on_fill: Callable[[OrderTicket, Fill], None] | None = None

    # -- the machine --------------------------------------------------------------------------

    def apply(self, event: TicketEvent) -> str:
        """Apply one event; return the new state.

        Raises :class:`InvalidTransition` (ticket unchanged) when the table does not allow the
        event in the current state.
        """
        source = self.state
        trigger = event.trigger
        try:
            ok = _EVENTS[trigger].trigger(self, event)
        except MachineError:
            raise InvalidTransition("OrderTicket", self.order_ref, source, trigger) from None
        if not ok:  # a legal pair whose guards all failed: the table has a gap for this input
            raise InvalidTransition("OrderTicket", self.order_ref, source, trigger)
        self.order_events.append(AuditRecord(event.time, source, trigger, self.state, event))
        return self.state

    def can_apply(self, trigger: str) -> bool:
        """True when the table has a row for ``trigger`` in the current state."""
        return TICKET_MACHINE.is_legal(self.state, trigger)

    # -- derived views ------------------------------------------------------------------------

    @property
    def status(self) -> TicketState:
        """The current state as a :class:`TicketState`."""
        return TicketState(self.state)

    @property
    def pending_update(self) -> UpdateRequested | None:
        """The replace request sent and not yet answered by the broker, if any."""
        return self._pending_update

    @property
    def order_id(self) -> str:
        """Our identifier for the order (LEAN's ``order_id``); the external id sent to the broker."""
        return self.order_ref

    @property
    def quantity_remaining(self) -> int:
        """What is left to fill (never negative)."""
        return max(self.quantity - self.quantity_filled, 0)

    @property
    def average_fill_price(self) -> Decimal:
        """Volume-weighted average price of the distinct fills (0 before any fill, as LEAN)."""
        if not self.quantity_filled:
            return Decimal(0)
        return self._notional / self.quantity_filled

    @property
    def is_final(self) -> bool:
        """The broker will not work this order any more."""
        return self.state in FINAL_STATES

    @property
    def is_unsettled(self) -> bool:
        """The order is, or may be, live at the broker (working, in flight or unknown)."""
        return self.state in UNSETTLED_STATES

    @property
    def broker_confirms(self) -> bool:
        """The broker's last record says the order is finished with exactly what we booked.

        True for an order never sent. The group settles only on tickets that confirm
        (invariant 7); a fill booked after the record makes it stale until asked again.
        """
        if self.state == NEW:
            return True
        rec = self.broker_record
        return rec is not None and rec.final and rec.counted and rec.filled == self.quantity_filled == rec.booked

    @property
    def broker_disagrees(self) -> bool:
        """The broker's record, taken after our last fill, counts other filled units than we booked."""
        rec = self.broker_record
        return rec is not None and rec.booked == self.quantity_filled and rec.filled != self.quantity_filled

    @property
    def is_live(self) -> bool:
        """Working at the broker, or possibly so: ``unknown`` counts unless the broker said it is finished."""
        if self.state == UNKNOWN:
            rec = self.broker_record
            return rec is None or not rec.final
        return self.state in WORKING_STATES

    @property
    def broker_filled(self) -> int:
        """Filled units as the broker counts them.

        The broker's count when its record was taken after our last fill (more or fewer than we
        booked: a fill it never delivered, or one we booked twice under two ids); after later
        fills, the larger of its count and ours until it is asked again. Our fills without a record.
        """
        rec = self.broker_record
        if rec is None:
            return self.quantity_filled
        if rec.booked == self.quantity_filled:
            return rec.filled
        return max(rec.filled, self.quantity_filled)

    @property
    def is_combo(self) -> bool:
        """True for a multi-leg order (fills in strategy units)."""
        return len(self.legs) > 1

    @property
    def flagged(self) -> bool:
        """An over-fill or late fill happened on this ticket."""
        return bool(self.overfill_quantity or self.late_fill_quantity)

    def to_request(self) -> OrderRequest:
        """The order as the broker will see it."""
        return OrderRequest(
            order_ref=self.order_ref,
            group_id=self.group_id,
            purpose=self.purpose,
            legs=self.legs,
            quantity=self.quantity,
            order_type=self.order_type,
            limit_price=self.limit_price if self.order_type is OrderType.LIMIT else None,
            time_in_force=self.time_in_force,
        )

    # -- LEAN-style requests (routed through the executor, never around it) ---------------------

    def cancel(self, tag: str | None = None) -> TicketResponse:
        """Ask the broker to cancel this order, through the executor that owns it (LEAN's ``cancel``).

        ``tag`` is accepted for LEAN compatibility and ignored. Like LEAN's ``OrderResponse``, a
        success means the request was accepted for processing, not that the order is canceled.
        """
        if self.router is None:
            raise AtomicOrdersError(f"ticket {self.order_ref!r} is not attached to an executor; nothing was sent")
        before = self.state
        self.router.request_cancel(self)
        if self.state == CANCEL_PENDING:
            return TicketResponse(self.order_ref, True)
        return TicketResponse(self.order_ref, False, f"order {self.order_ref!r} cannot be canceled in state {before}")

    def update(
        self, fields: Any = None, quantity: int | None = None, *, limit_price: Decimal | None = None
    ) -> TicketResponse:
        """Ask the broker to change this order's limit price and/or quantity, through the executor.

        Takes a LEAN ``UpdateOrderFields`` (its ``limit_price``/``quantity``; floats are read as
        their shortest decimal form), or a Decimal ``limit_price`` and/or ``quantity``.
        """
        if self.router is None:
            raise AtomicOrdersError(f"ticket {self.order_ref!r} is not attached to an executor; nothing was sent")
        if fields is None or isinstance(fields, Decimal):
            limit_price = fields if fields is not None else limit_price
        elif hasattr(fields, "limit_price") or hasattr(fields, "quantity"):
            limit_price = self._lean_price(getattr(fields, "limit_price", None))
            quantity = self._lean_quantity(getattr(fields, "quantity", None))
        else:
            raise ValidationError("fields", fields, "give a Decimal limit price or an object with limit_price/quantity")
        before = self.state
        self.router.request_update(self, limit_price, quantity)
        if self.state == UPDATE_PENDING:
            return TicketResponse(self.order_ref, True)
        return TicketResponse(self.order_ref, False, f"order {self.order_ref!r} cannot be updated in state {before}")

    def _lean_price(self, raw: object) -> Decimal | None:
        """A LEAN ``UpdateOrderFields.limit_price`` (a float through pythonnet) as a Decimal."""
        if raw is None:
            return None
        try:
            return Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)  # type: ignore[arg-type]
        except (ArithmeticError, TypeError, ValueError):
            raise ValidationError("limit_price", raw, f"ticket {self.order_ref!r}: not a number") from None

    def _lean_quantity(self, raw: object) -> int | None:
        """A LEAN ``UpdateOrderFields.quantity`` as this ticket's (positive) quantity.

        LEAN quantities are signed: negative sells. A single-leg sell ticket takes ``-n``; a combo's
        update quantity is the group quantity, positive for the way the executor sends combos. A
        sign that would reverse the order is refused, not silently flipped.
        """
        if raw is None:
            return None
        try:
            number = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)  # type: ignore[arg-type]
        except (ArithmeticError, TypeError, ValueError):
            raise ValidationError("quantity", raw, f"ticket {self.order_ref!r}: not a number") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ValidationError("quantity", raw, f"ticket {self.order_ref!r}: must be a whole number")
        sign = 1 if self.is_combo else self.legs[0].side.sign
        if number * sign < 0:
            raise ValidationError("quantity", raw, f"ticket {self.order_ref!r}: the sign would reverse the order "
                                                   f"(LEAN quantities are signed, {'+' if sign > 0 else '-'} here)")
        return abs(int(number))

    # -- LEAN's PascalCase names (LEAN's Python accepts both spellings) --------------------------

    @property
    def Status(self) -> TicketState:  # noqa: N802 - LEAN's name
        """LEAN's ``Status``: :attr:`status`."""
        return self.status

    @property
    def OrderId(self) -> str:  # noqa: N802 - LEAN's name
        """LEAN's ``OrderId``: :attr:`order_id`."""
        return self.order_ref

    @property
    def Quantity(self) -> int:  # noqa: N802 - LEAN's name
        """LEAN's ``Quantity``: :attr:`quantity`."""
        return self.quantity

    @property
    def QuantityFilled(self) -> int:  # noqa: N802 - LEAN's name
        """LEAN's ``QuantityFilled``: :attr:`quantity_filled`."""
        return self.quantity_filled

    @property
    def QuantityRemaining(self) -> int:  # noqa: N802 - LEAN's name
        """LEAN's ``QuantityRemaining``: :attr:`quantity_remaining`."""
        return self.quantity_remaining

    @property
    def AverageFillPrice(self) -> Decimal:  # noqa: N802 - LEAN's name
        """LEAN's ``AverageFillPrice``: :attr:`average_fill_price`."""
        return self.average_fill_price

    @property
    def OrderEvents(self) -> list[AuditRecord]:  # noqa: N802 - LEAN's name
        """LEAN's ``OrderEvents``: :attr:`order_events` (the audit trail of applied events)."""
        return list(self.order_events)

    @property
    def Tag(self) -> str:  # noqa: N802 - LEAN's name
        """LEAN's ``Tag``: our reference, which is also the tag of the order at the broker."""
        return self.order_ref

    @property
    def tag(self) -> str:
        """LEAN's ``tag``: our reference (the tag the QuantConnect backend gives the LEAN order)."""
        return self.order_ref

    def Cancel(self, tag: str | None = None) -> TicketResponse:  # noqa: N802 - LEAN's name
        """LEAN's ``Cancel``: :meth:`cancel`."""
        return self.cancel(tag)

    def Update(self, fields: Any = None) -> TicketResponse:  # noqa: N802 - LEAN's name
        """LEAN's ``Update(UpdateOrderFields)``: :meth:`update`."""
        return self.update(fields)

    def __repr__(self) -> str:
        return (
            f"OrderTicket({self.order_ref!r}, state={self.state!r}, filled={self.quantity_filled}/{self.quantity}, "
            f"limit={self.limit_price})"
        )

