"""Broker order JSON -> validated snapshots, the status table, and fills in strategy units.

Status mapping (reference §3.1; every status the API defines)
--------------------------------------------------------------

=====================  ==========  ========  ==============================================  =================
TastyTrade ``status``  phase       terminal  ticket events (see :mod:`.monitor`)              reconcile
=====================  ==========  ========  ==============================================  =================
``Received``           submission  no        ``Acknowledged`` (first order of the chain)      WORKING (*)
``Routed``             submission  no        ``Acknowledged``                                 WORKING (*)
``In Flight``          submission  no        ``Acknowledged``                                 WORKING (*)
``Contingent``         submission  no        original: ``Acknowledged``; a replacement        WORKING (*)
                                             waiting for its original: nothing yet
``Live``               working     no        ``Acknowledged``, new ``Fill`` s; a replacement   WORKING (*)
                                             taking over: ``Updated(new id)``
``Cancel Requested``   working     no        new ``Fill`` s (the cancel is pending); back to   WORKING (*)
                                             a working status: ``CancelRejected``
``Replace Requested``  working     no        new ``Fill`` s (the replace is pending)           WORKING (*)
``Filled``             terminal    yes       new ``Fill`` s (they complete the ticket);        FILLED
                                             ``CancelRejected`` if we had asked to cancel
``Cancelled``          terminal    yes       new ``Fill`` s, then ``Canceled``; with           CANCELED
                                             ``edited: true`` (replaced) nothing: the
                                             replacement carries the ticket on
``Expired``            terminal    yes       new ``Fill`` s, then ``Expired``                  EXPIRED
``Rejected``           terminal    yes       ``Rejected(reject-reason)``; a rejected           REJECTED
                                             replacement: ``UpdateRejected(reason)``
``Removed``            terminal    yes       new ``Fill`` s, then ``Canceled``                 CANCELED
``Partially Removed``  terminal    yes       new ``Fill`` s, then ``Canceled``                 CANCELED
=====================  ==========  ========  ==============================================  =================

(*) WORKING, or PARTIALLY_FILLED once any leg of the ticket's orders has a fill (or a count).

Fills and counts are read independently: fills from any order object that lists them, whatever
its status; the broker's count from ``quantity - remaining-quantity`` per leg
(:func:`record_units`; reconcile reports it as ``filled_quantity``). A final order whose count
exceeds its listed fills (``Filled`` with ``fills: []``), or a ``Filled`` combo with a leg still
remaining (:func:`leg_contradiction`), gives ``SubmissionUnknown`` instead of its final event: a
status never stands in for fills. A ``Rejected`` order with fills gives its fills, then
``Rejected``.

A status this table does not know (schema drift) is treated as working and logged once.
There is no "Partially Filled" status: a working order with fills is reported
``PARTIALLY_FILLED`` to reconciliation (fills are counted on the order's legs).

Fills in strategy units
-----------------------
Fills are reported per leg and resent cumulatively on every update. For a combo order the
strategy units filled are ``min over legs (leg contracts filled // leg ratio)`` (ratios come
from our own request); each increase becomes ONE ``Fill`` of ``units - previous`` units with the
deterministic id ``f"{order_id}-u{units}"`` and a signed (debit positive) net price per unit computed
from the legs' fill prices of exactly those units (the leg contracts ``[previous*ratio, units*ratio)``
in the order the leg lists its fills). A one-leg order's fills are passed through by ``fill-id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from backends.tastytrade.errors import MalformedResponseError
from fsm.events import BrokerStatus
from fsm.leg import Leg, Side

__all__ = [
    "STATUS_TABLE",
    "TERMINAL_STATUSES",
    "WORKING_STATUSES",
    "ComboShape",
    "LegFill",
    "LegSnapshot",
    "OrderSnapshot",
    "StatusInfo",
    "combo_shape",
    "leg_contradiction",
    "parse_order",
    "parse_quantity",
    "parse_timestamp",
    "record_units",
    "unit_price",
    "units_filled",
    "units_ordered",
]


@attrs.frozen
class StatusInfo:
    """What one TastyTrade status means for us."""

    phase: str
    terminal: bool
    #: The reconciliation status (WORKING is reported PARTIALLY_FILLED when the order has fills).
    broker_status: BrokerStatus
    meaning: str


_W = BrokerStatus.WORKING
#: Every order status of the API (reference §3.1) and its meaning for the executor.
STATUS_TABLE: dict[str, StatusInfo] = {
    "Received": StatusInfo("submission", False, _W, "accepted; routes at the open"),
    "Routed": StatusInfo("submission", False, _W, "being sent to the exchange"),
    "In Flight": StatusInfo("submission", False, _W, "awaiting the exchange's acknowledgement"),
    "Contingent": StatusInfo("submission", False, _W, "dormant (a replacement waiting for its original)"),
    "Live": StatusInfo("working", False, _W, "working at the exchange"),
    "Cancel Requested": StatusInfo("working", False, _W, "cancel sent, awaiting confirmation"),
    "Replace Requested": StatusInfo("working", False, _W, "replacement submitted, awaiting the original's cancel"),
    "Filled": StatusInfo("terminal", True, BrokerStatus.FILLED, "fully filled"),
    "Cancelled": StatusInfo("terminal", True, BrokerStatus.CANCELED, "cancelled (or replaced when edited)"),
    "Expired": StatusInfo("terminal", True, BrokerStatus.EXPIRED, "time in force ran out"),
    "Rejected": StatusInfo("terminal", True, BrokerStatus.REJECTED, "rejected by tastytrade or the exchange"),
    "Removed": StatusInfo("terminal", True, BrokerStatus.CANCELED, "removed by an administrator"),
    "Partially Removed": StatusInfo("terminal", True, BrokerStatus.CANCELED, "partly removed by an administrator"),
}
#: Statuses in which an order may still work (the ``status[]`` filter of the live-order poll).
WORKING_STATUSES: tuple[str, ...] = tuple(s for s, i in STATUS_TABLE.items() if not i.terminal)
#: Statuses after which an order never changes again.
TERMINAL_STATUSES: frozenset[str] = frozenset(s for s, i in STATUS_TABLE.items() if i.terminal)
_UNKNOWN_STATUS = StatusInfo("working", False, _W, "not in the status table: treated as working")


@attrs.frozen
class LegFill:
    """One execution of one leg, as the broker lists it."""

    fill_id: str
    quantity: int
    price: Decimal
    filled_at: str | None = None
    group_fill_id: str | None = None


@attrs.frozen
class LegSnapshot:
    """One leg of a broker order with its cumulative fills."""

    symbol: str
    action: str
    quantity: int
    remaining: int | None
    fills: tuple[LegFill, ...]

    @property
    def filled(self) -> int:
        """Contracts filled so far."""
        return sum(f.quantity for f in self.fills)

    @property
    def sign(self) -> int:
        """+1 for a buying leg, -1 for a selling one."""
        return 1 if self.action.startswith("Buy") else -1

    @property
    def filled_count(self) -> int | None:
        """Contracts filled by the broker's own count (``quantity - remaining-quantity``), None without one.

        Read from the order record, independently of ``fills`` (reference §3, §7: LEAN marks an
        order partially filled when ``remaining-quantity != quantity``).
        """
        if self.remaining is None:
            return None
        return max(0, self.quantity - self.remaining)


@attrs.frozen
class OrderSnapshot:
    """The fields of a broker order object that drive our tickets."""

    order_id: str
    status: str
    legs: tuple[LegSnapshot, ...]
    external_identifier: str | None = None
    size: int | None = None
    order_type: str | None = None
    price: Decimal | None = None
    replaces_order_id: str | None = None
    replacing_order_id: str | None = None
    edited: bool = False
    reject_reason: str | None = None
    updated_at: int | None = None
    live_at: str | None = None
    contingent_status: str | None = None
    received_at: dt.datetime | None = None

    @property
    def info(self) -> StatusInfo:
        """The status table entry (unknown statuses count as working)."""
        return STATUS_TABLE.get(self.status, _UNKNOWN_STATUS)

    @property
    def terminal(self) -> bool:
        """True once the order can no longer change."""
        return self.info.terminal

    @property
    def known_status(self) -> bool:
        """False for a status outside :data:`STATUS_TABLE`."""
        return self.status in STATUS_TABLE

    @property
    def has_fills(self) -> bool:
        """True when any leg has a fill."""
        return any(leg.fills for leg in self.legs)


def parse_quantity(value: Any, what: str = "quantity") -> int:
    """A whole, non-negative quantity from an int or a decimal string (``2``, ``"2"``, ``"2.0"``)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}={value!r}: not a number")
    if isinstance(value, int):
        number = Decimal(value)
    else:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{what}={value!r}: not a number") from None
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        raise ValueError(f"{what}={value!r}: must be a whole, non-negative number")
    return int(number)


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{what}={value!r}: not a decimal")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what}={value!r}: not a decimal") from None
    if not number.is_finite():
        raise ValueError(f"{what}={value!r}: not finite")
    return number


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
        raise ValueError(f"{what}={value!r}: must be an integer or a non-empty string")
    return str(value)


def _opt_id(value: Any, what: str) -> str | None:
    return None if value is None or value == "" else _id(value, what)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An ISO-8601 timestamp (``...+00:00``/``Z``) or epoch milliseconds as an aware datetime, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    return None


def _parse_leg(obj: Any, i: int) -> LegSnapshot:
    if not isinstance(obj, Mapping):
        raise ValueError(f"legs[{i}] is not an object")
    symbol = obj.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"legs[{i}].symbol={symbol!r}: missing")
    action = obj.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError(f"legs[{i}].action={action!r}: missing")
    quantity = parse_quantity(obj.get("quantity"), f"legs[{i}].quantity")
    raw_remaining = obj.get("remaining-quantity")
    remaining = None if raw_remaining is None else parse_quantity(raw_remaining, f"legs[{i}].remaining-quantity")
    raw_fills = obj.get("fills") or []
    if not isinstance(raw_fills, list):
        raise ValueError(f"legs[{i}].fills is not a list")
    fills: list[LegFill] = []
    for j, f in enumerate(raw_fills):
        if not isinstance(f, Mapping):
            raise ValueError(f"legs[{i}].fills[{j}] is not an object")
        fills.append(LegFill(
            fill_id=_id(f.get("fill-id"), f"legs[{i}].fills[{j}].fill-id"),
            quantity=parse_quantity(f.get("quantity"), f"legs[{i}].fills[{j}].quantity"),
            price=_decimal(f.get("fill-price"), f"legs[{i}].fills[{j}].fill-price"),
            filled_at=_opt_str(f.get("filled-at")),
            group_fill_id=_opt_str(f.get("ext-group-fill-id")),
        ))
    return LegSnapshot(symbol=symbol, action=action, quantity=quantity, remaining=remaining, fills=tuple(fills))


def parse_order(obj: Any) -> OrderSnapshot:
    """Validate one order object; raise :class:`MalformedResponseError` saying what is wrong."""
    oid = obj.get("id") if isinstance(obj, Mapping) else None
    try:
        if not isinstance(obj, Mapping):
            raise ValueError("is not an object")
        order_id = _id(oid, "id")
        status = obj.get("status")
        if not isinstance(status, str) or not status:
            raise ValueError(f"status={status!r}: missing")
        raw_legs = obj.get("legs")
        if not isinstance(raw_legs, list):
            raise ValueError("legs is not a list")
        legs = tuple(_parse_leg(leg, i) for i, leg in enumerate(raw_legs))
        raw_size = obj.get("size")
        size = None if raw_size is None else parse_quantity(raw_size, "size")
        price: Decimal | None = None
        if obj.get("price") is not None:
            price = _decimal(obj.get("price"), "price")
            if obj.get("price-effect") == "Credit":
                price = -price
        updated = obj.get("updated-at")
        return OrderSnapshot(
            order_id=order_id,
            status=status,
            legs=legs,
            external_identifier=_opt_str(obj.get("external-identifier")),
            size=size,
            order_type=_opt_str(obj.get("order-type")),
            price=price,
            replaces_order_id=_opt_id(obj.get("replaces-order-id"), "replaces-order-id"),
            replacing_order_id=_opt_id(obj.get("replacing-order-id"), "replacing-order-id"),
            edited=obj.get("edited") is True,
            reject_reason=_opt_str(obj.get("reject-reason")),
            updated_at=updated if isinstance(updated, int) and not isinstance(updated, bool) else None,
            live_at=_opt_str(obj.get("live-at")),
            contingent_status=_opt_str(obj.get("contingent-status")),
            received_at=parse_timestamp(obj.get("received-at")),
        )
    except ValueError as err:
        raise MalformedResponseError(f"order {oid!r}: {err}") from None


#: One combo leg as we submitted it: (OCC symbol, ratio, sign +1 buy / -1 sell).
ComboShape = tuple[tuple[str, int, int], ...]


def combo_shape(legs: Sequence[Leg]) -> ComboShape:
    """The shape of our own request's legs (ratios and signs are ours, not the broker's ``size``)."""
    return tuple((leg.symbol.occ, leg.ratio, 1 if leg.side is Side.BUY else -1) for leg in legs)


def _legs_by_symbol(snapshot: OrderSnapshot, shape: ComboShape) -> list[LegSnapshot]:
    by_symbol = {leg.symbol: leg for leg in snapshot.legs}
    out: list[LegSnapshot] = []
    for symbol, _ratio, _sign in shape:
        leg = by_symbol.get(symbol)
        if leg is None:
            raise MalformedResponseError(f"order {snapshot.order_id}: no leg {symbol!r}")
        out.append(leg)
    return out


def units_filled(snapshot: OrderSnapshot, shape: ComboShape) -> int:
    """Whole strategy units filled: min over legs of (contracts filled // ratio)."""
    legs = _legs_by_symbol(snapshot, shape)
    return min(leg.filled // ratio for leg, (_s, ratio, _g) in zip(legs, shape, strict=True))


def units_ordered(snapshot: OrderSnapshot, shape: ComboShape | None) -> int:
    """What the broker order asks for: strategy units (min over legs of quantity // ratio) or contracts."""
    if shape is None:
        return snapshot.legs[0].quantity if snapshot.legs else 0
    legs = _legs_by_symbol(snapshot, shape)
    return min(leg.quantity // ratio for leg, (_s, ratio, _g) in zip(legs, shape, strict=True))


def record_units(snapshot: OrderSnapshot, shape: ComboShape | None) -> int | None:
    """The broker's own count of filled units, from ``quantity`` and ``remaining-quantity`` per leg.

    For a combo: the least-filled leg in strategy units (min over legs of contracts filled //
    ratio); for one leg: its contracts filled. None when a leg carries no ``remaining-quantity``
    (the broker gives no count). Independent of the ``fills`` lists, which may lag or be missing.
    """
    if shape is None:
        return snapshot.legs[0].filled_count if snapshot.legs else None
    counts: list[int] = []
    for leg, (_s, ratio, _g) in zip(_legs_by_symbol(snapshot, shape), shape, strict=True):
        count = leg.filled_count
        if count is None:
            return None
        counts.append(count // ratio)
    return min(counts)


def leg_contradiction(snapshot: OrderSnapshot) -> str | None:
    """What is wrong when a ``Filled`` order's legs do not all say so (a leg with contracts remaining).

    A combo is filled only when every leg's ``remaining-quantity`` is 0. None when nothing is
    wrong or the legs give no count.
    """
    if snapshot.status != "Filled":
        return None
    short = [f"{leg.symbol.strip()} {leg.remaining} of {leg.quantity} remaining" for leg in snapshot.legs
             if leg.remaining is not None and leg.remaining > 0]
    if not short:
        return None
    return f"order {snapshot.order_id} is Filled but a leg is not: " + "; ".join(short)


def _range_cost(fills: Sequence[LegFill], start: int, stop: int) -> Decimal:
    """Sum of price x contracts over the leg's contracts ``[start, stop)`` in listing order."""
    cost = Decimal(0)
    seen = 0
    for f in fills:
        lo, hi = seen, seen + f.quantity
        seen = hi
        overlap = min(hi, stop) - max(lo, start)
        if overlap > 0:
            cost += f.price * overlap
        if seen >= stop:
            break
    return cost


_PRICE_QUANTUM = Decimal("0.0001")


def unit_price(snapshot: OrderSnapshot, shape: ComboShape, from_units: int, to_units: int) -> Decimal:
    """Signed net per unit (debit positive) of the units ``(from_units, to_units]``."""
    if to_units <= from_units:
        raise ValueError(f"to_units={to_units} must exceed from_units={from_units}")
    legs = _legs_by_symbol(snapshot, shape)
    total = Decimal(0)
    for leg, (_symbol, ratio, sign) in zip(legs, shape, strict=True):
        total += sign * _range_cost(leg.fills, from_units * ratio, to_units * ratio)
    net = total / (to_units - from_units)
    if net != net.quantize(_PRICE_QUANTUM):
        net = net.quantize(_PRICE_QUANTUM)
    return net
