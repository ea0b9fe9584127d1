"""Ticket events: the only inputs an :class:`~atomic_orders.fsm.ticket.OrderTicket` accepts.

Each event is a frozen value that carries the time it happened (taken from an injectable
clock by whoever creates it, never read inside the machine). ``trigger`` is the name of the
machine event it fires; the ticket's transition table is keyed by those names.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

import attrs

from atomic_orders.fsm.errors import ValidationError


def _check_time(_inst: object, _attr: object, value: dt.datetime) -> None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValidationError("time", value, "must be a timezone-aware datetime")


def _check_positive_int(inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value <= 0:
        raise ValidationError(attr.name, value, "must be a positive int")


def _check_optional_positive_int(inst: object, attr: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None:
        _check_positive_int(inst, attr, value)  # type: ignore[arg-type]


def _check_optional_count(_inst: object, attr: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise ValidationError(attr.name, value, "must be None or an int >= 0")


def _check_flag(_inst: object, attr: attrs.Attribute[bool], value: bool) -> None:
    if type(value) is not bool:
        raise ValidationError(attr.name, value, "must be a bool")


def _check_price(_inst: object, attr: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationError(attr.name, value, "must be a finite Decimal")


def _check_optional_price(inst: object, attr: attrs.Attribute[Decimal | None], value: Decimal | None) -> None:
    if value is not None:
        _check_price(inst, attr, value)  # type: ignore[arg-type]


def _check_text(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(attr.name, value, "must be a non-empty string")




@attrs.frozen
class Submit:
    """The order is being handed to the broker (local intent; the request is in flight)."""

    trigger: ClassVar[str] = "submit"
    time: dt.datetime = attrs.field(validator=_check_time)
    #: The limit price the order is sent with (decided at submission, so replays reproduce it).
    limit_price: Decimal | None = attrs.field(default=None, validator=_check_optional_price)


@attrs.frozen
class Acknowledged:
    """The broker accepted the order and gave it an id; it is working."""

    trigger: ClassVar[str] = "acknowledged"
    time: dt.datetime = attrs.field(validator=_check_time)
    broker_order_id: str = attrs.field(validator=_check_text)


@attrs.frozen
class Fill:
    """An execution: ``quantity`` units at ``price``, identified by the broker's ``fill_id``.

    For a combo ticket the quantity is in strategy units and the price is the signed net per
    unit (positive = debit); for a single-leg ticket it is contracts at the option's price.
    """

    trigger: ClassVar[str] = "fill"
    time: dt.datetime = attrs.field(validator=_check_time)
    fill_id: str = attrs.field(validator=_check_text)
    quantity: int = attrs.field(validator=_check_positive_int)
    price: Decimal = attrs.field(validator=_check_price)


@attrs.frozen
class Rejected:
    """The broker refused the order (it never worked)."""

    trigger: ClassVar[str] = "rejected"
    time: dt.datetime = attrs.field(validator=_check_time)
    reason: str = attrs.field(validator=_check_text)


@attrs.frozen
class CancelRequested:
    """We asked the broker to cancel the order."""

    trigger: ClassVar[str] = "cancel_requested"
    time: dt.datetime = attrs.field(validator=_check_time)


@attrs.frozen
class Canceled:
    """The broker confirmed the order is canceled (no more fills expected)."""

    trigger: ClassVar[str] = "canceled"
    time: dt.datetime = attrs.field(validator=_check_time)


@attrs.frozen
class CancelRejected:
    """The broker refused the cancel (typically: the order already filled)."""

    trigger: ClassVar[str] = "cancel_rejected"
    time: dt.datetime = attrs.field(validator=_check_time)
    reason: str = attrs.field(validator=_check_text)


@attrs.frozen
class UpdateRequested:
    """We asked the broker to change the working order's limit price and/or quantity."""

    trigger: ClassVar[str] = "update_requested"
    time: dt.datetime = attrs.field(validator=_check_time)
    limit_price: Decimal | None = attrs.field(default=None, validator=_check_optional_price)
    quantity: int | None = attrs.field(default=None, validator=_check_optional_positive_int)


@attrs.frozen
class Updated:
    """The broker applied the update (a replace may give the order a new broker id)."""

    trigger: ClassVar[str] = "updated"
    time: dt.datetime = attrs.field(validator=_check_time)
    broker_order_id: str | None = None


@attrs.frozen
class UpdateRejected:
    """The broker refused the update; the order keeps working unchanged."""

    trigger: ClassVar[str] = "update_rejected"
    time: dt.datetime = attrs.field(validator=_check_time)
    reason: str = attrs.field(validator=_check_text)


@attrs.frozen
class Expired:
    """The order's time in force ran out (a day order at the close)."""

    trigger: ClassVar[str] = "expired"
    time: dt.datetime = attrs.field(validator=_check_time)


@attrs.frozen
class SubmissionUnknown:
    """The outcome is not known (timeout, transport error, stalled broker): reconcile, never resend."""

    trigger: ClassVar[str] = "submission_unknown"
    time: dt.datetime = attrs.field(validator=_check_time)
    reason: str = attrs.field(validator=_check_text)


class BrokerStatus(StrEnum):
    """What the broker says about an order when asked (the answer to a reconciliation)."""

    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    #: The broker has no order with our identifier: the submission never reached it.
    NOT_FOUND = "not_found"


def _check_status(_inst: object, _attr: object, value: BrokerStatus) -> None:
    if not isinstance(value, BrokerStatus):
        raise ValidationError("status", value, "must be a BrokerStatus")


def _check_fills(_inst: object, _attr: object, value: tuple[Fill, ...]) -> None:
    if not isinstance(value, tuple) or not all(isinstance(f, Fill) for f in value):
        raise ValidationError("fills", value, "must be a tuple of Fill")


@attrs.frozen
class Reconciled:
    """The broker's full answer about one order: its status and every fill it knows of.

    Applying it adds any fill the ticket has not seen (by fill id) and moves the ticket to the
    reported status, unless the answer contradicts itself: ``filled_quantity`` (the broker's own
    count of filled units, see :class:`~atomic_orders.fsm.orders.OrderReport`) above what its fills cover,
    ``FILLED`` with fewer units than the order, or (``fills_may_lag`` and no count) a
    ``CANCELED``/``REJECTED``/``EXPIRED`` record whose fills cover less than the order. A status
    never stands in for quantities: such an answer books what is listed and leaves the ticket
    ``unknown`` until the broker's fills agree. It is the only way out of ``unknown``.
    """

    trigger: ClassVar[str] = "reconciled"
    time: dt.datetime = attrs.field(validator=_check_time)
    status: BrokerStatus = attrs.field(validator=_check_status)
    fills: tuple[Fill, ...] = attrs.field(default=(), validator=_check_fills)
    broker_order_id: str | None = None
    filled_quantity: int | None = attrs.field(default=None, validator=_check_optional_count)
    #: The broker's fills list may trail what filled: without a count it is only a lower bound.
    fills_may_lag: bool = attrs.field(default=False, validator=_check_flag)


TicketEvent = (
    Submit
    | Acknowledged
    | Fill
    | Rejected
    | CancelRequested
    | Canceled
    | CancelRejected
    | UpdateRequested
    | Updated
    | UpdateRejected
    | Expired
    | SubmissionUnknown
    | Reconciled
)

#: Every ticket event class, in the order the docs list them.
TICKET_EVENT_TYPES: tuple[type, ...] = (
    Submit,
    Acknowledged,
    Fill,
    Rejected,
    CancelRequested,
    Canceled,
    CancelRejected,
    UpdateRequested,
    Updated,
    UpdateRejected,
    Expired,
    SubmissionUnknown,
    Reconciled,
)

#: Events that come from the broker (as opposed to our own requests).
BROKER_EVENT_TYPES: tuple[type, ...] = (
    Acknowledged,
    Fill,
    Rejected,
    Canceled,
    CancelRejected,
    Updated,
    UpdateRejected,
    Expired,
    SubmissionUnknown,
    Reconciled,
)
