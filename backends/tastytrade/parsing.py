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

Bounds (the boundary rule: a record is accepted whole and valid, or refused naming the field)
------------------------------------------------------------------------------------------
Everything read from the broker is checked BEFORE any conversion or arithmetic (a
``Decimal("1e999999")`` turned into an int costs minutes of CPU; ``1e30`` breaks quantizing):

* order ids (``id``, ``replaces-order-id``, ``replacing-order-id``): integers (reference §3), as a
  JSON int or a string of ASCII digits, 1 .. 2**63-1, no sign, no leading zero
  (:func:`parse_order_id`; the client builds request paths with the same function);
* quantities: a JSON int, an integral float, or an ASCII digit string (``"2"``, ``"2.0"``), at
  most :data:`MAX_QUANTITY` and never fractional (:func:`parse_quantity`);
* prices: finite, ``0 <= price <=`` :data:`MAX_PRICE`, no finer than 1E-6, given as a JSON number
  or a plain decimal string of at most :data:`MAX_NUMBER_TEXT` characters (:func:`parse_price`);
* text (status, symbol, action, identifiers, reasons): at most :data:`MAX_TEXT` characters;
  identifiers and statuses printable; at most :data:`MAX_LEGS` legs and
  :data:`MAX_FILLS_PER_LEG` fills per leg; timestamps within years 1970..2286 (else unknown).

Whose record it is is read first (:func:`peek_identity`: ``id``, ``external-identifier``,
``replaces-order-id``, ``received-at``; never raises), so a record that is not ours (another
application's notional or fractional ``Equity`` order) is skipped without being parsed in full.

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
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from atomic_orders.backends.tastytrade.errors import MalformedResponseError
from atomic_orders.fsm.events import BrokerStatus
from atomic_orders.fsm.leg import Leg, Side

__all__ = [
    "STATUS_TABLE",
    "TERMINAL_STATUSES",
    "WORKING_STATUSES",
    "ComboShape",
    "LegFill",
    "MAX_FILLS_PER_LEG",
    "MAX_LEGS",
    "MAX_NUMBER_TEXT",
    "MAX_ORDER_ID",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "MAX_TEXT",
    "LegSnapshot",
    "OrderSnapshot",
    "RecordIdentity",
    "StatusInfo",
    "combo_shape",
    "leg_contradiction",
    "parse_order",
    "parse_order_id",
    "parse_price",
    "parse_quantity",
    "peek_identity",
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


#: Largest price (per contract for a fill, net per unit for an order) read from the broker: the
#: core's own limit-price bound (no listed option trades anywhere near it).
MAX_PRICE = Decimal(100_000)
#: Finest price step read from the broker (the core's quote bound; option ticks are 0.01/0.05).
_PRICE_STEP = Decimal("0.000001")
#: Largest quantity (contracts, units) read from the broker: the core's ``max_contracts`` ceiling.
MAX_QUANTITY = 1_000_000
#: Longest text field read from the broker (identifiers are ~20 characters, OCC symbols 21).
MAX_TEXT = 256
#: Longest string a number may be given as: checked before any Decimal/int conversion.
MAX_NUMBER_TEXT = 32
#: Order ids are integers (reference §3): positive and within a signed 64-bit integer.
MAX_ORDER_ID = 2**63 - 1
#: Legs of one order (reference §2.1: at most 4 for equity options) and fills listed per leg.
MAX_LEGS = 4
MAX_FILLS_PER_LEG = 10_000
#: Epoch milliseconds beyond year 2286 are not a time the broker means (0 .. 10**13).
_MAX_EPOCH_MS = 10**13

_DIGITS = re.compile(r"[0-9]+")
_WHOLE = re.compile(r"([0-9]+)(?:\.0*)?")
#: A decimal number as the API writes one (ASCII digits, an optional sign and exponent): what
#: ``Decimal()`` alone would also take (``"0_1"``, other scripts' digits, spaces) is refused.
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def _q(value: Any) -> str:
    """``repr(value)`` cut to a readable length (an error never quotes a megabyte)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_order_id(value: Any, what: str = "id") -> str:
    """A broker order id as its canonical text: a JSON int or a string of ASCII digits, 1 .. 2**63-1.

    Ids are integers on the wire (reference §3; LEAN keeps them as strings): ``310001`` and
    ``"310001"`` are the same id. No sign, no leading zero, no other script's digits, no bool.
    Raises :class:`ValueError` naming ``what`` and the value. The client names orders in request
    paths with this function too, so whatever parsing accepts the client can ask about.
    """
    if type(value) is int:
        if 0 < value <= MAX_ORDER_ID:
            return str(value)
    elif (isinstance(value, str) and len(value) <= 19 and _DIGITS.fullmatch(value) and value[0] != "0"
          and int(value) <= MAX_ORDER_ID):
        return value
    raise ValueError(f"{what}={_q(value)}: must be an integer id from 1 to {MAX_ORDER_ID}")


def parse_quantity(value: Any, what: str = "quantity", maximum: int = MAX_QUANTITY) -> int:
    """A whole, non-negative quantity of at most ``maximum`` (``2``, ``2.0``, ``"2"``, ``"2.0"``).

    Bounds and length are checked before any conversion: a string must be ASCII digits (an
    optional ``.0``) of at most :data:`MAX_NUMBER_TEXT` characters. Fractional quantities
    (``"0.5"``: fractional equity orders) are refused. Raises :class:`ValueError` naming ``what``.
    """
    if type(value) is int:
        number = value
    elif type(value) is float:
        if not (math.isfinite(value) and value.is_integer() and 0 <= value <= maximum):
            raise ValueError(f"{what}={_q(value)}: must be a whole number from 0 to {maximum}")
        number = int(value)
    elif isinstance(value, str):
        m = _WHOLE.fullmatch(value) if len(value) <= MAX_NUMBER_TEXT else None
        if m is None:
            raise ValueError(f"{what}={_q(value)}: must be a whole number from 0 to {maximum} (ASCII digits)")
        number = int(m.group(1))
    elif isinstance(value, Decimal):
        if not (value.is_finite() and 0 <= value <= maximum and value == value.to_integral_value()):
            raise ValueError(f"{what}={_q(value)}: must be a whole number from 0 to {maximum}")
        number = int(value)
    else:
        raise ValueError(f"{what}={_q(value)}: not a number")
    if not 0 <= number <= maximum:
        raise ValueError(f"{what}={_q(value)}: must be a whole number from 0 to {maximum}")
    return number


def parse_price(value: Any, what: str) -> Decimal:
    """A price as a Decimal: finite, ``0 <= price <= MAX_PRICE``, no finer than 1E-6.

    Accepts a JSON number or a decimal string of at most :data:`MAX_NUMBER_TEXT` characters
    (an exponent of at most 3 digits); the magnitude is compared before anything is computed
    from it. Raises :class:`ValueError` naming ``what`` and the value.
    """
    number: Decimal
    if type(value) is int:
        number = Decimal(value) if -MAX_PRICE <= value <= MAX_PRICE else Decimal("Infinity")
    elif type(value) is float:
        number = Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT and DECIMAL_TEXT.fullmatch(value):
        number = Decimal(value)  # short and exponent <= 999: cheap, and compared before use
    else:
        raise ValueError(f"{what}={_q(value)}: not a decimal price")
    try:
        ok = number.is_finite() and 0 <= number <= MAX_PRICE
        fine = ok and number == number.quantize(_PRICE_STEP)
    except InvalidOperation:
        ok = fine = False
    if not ok:
        raise ValueError(f"{what}={_q(value)}: must be a finite price from 0 to {MAX_PRICE}")
    if not fine:
        raise ValueError(f"{what}={_q(value)}: finer than {_PRICE_STEP}")
    return number


def _text(value: Any, what: str, *, printable: bool = True) -> str:
    """A non-empty string of at most :data:`MAX_TEXT` characters (printable unless told)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what}={_q(value)}: missing")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{what}={_q(value)}: longer than {MAX_TEXT} characters")
    if printable and not value.isprintable():
        raise ValueError(f"{what}={_q(value)}: not printable text")
    return value


def _opt_id(value: Any, what: str) -> str | None:
    return None if value is None or value == "" else parse_order_id(value, what)


def _opt_text(value: Any, what: str, *, printable: bool = True) -> str | None:
    """An optional informational string: absent or not a string is None (schema drift), too long is refused."""
    if not isinstance(value, str) or not value:
        return None
    return _text(value, what, printable=printable)


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An ISO-8601 timestamp (``...+00:00``/``Z``) or epoch milliseconds as an aware datetime, else None.

    Out-of-range numbers (before 1970, after 2286, not finite) and strings longer than 64
    characters are None, never an error.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if not (math.isfinite(value) and 0 <= value <= _MAX_EPOCH_MS):
            return None
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if isinstance(value, str) and 0 < len(value) <= 64:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    return None


def _epoch_ms(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value <= _MAX_EPOCH_MS else None


@attrs.frozen
class RecordIdentity:
    """Whose order a raw broker record is, read without parsing the rest (None: absent or invalid)."""

    order_id: str | None
    external_identifier: str | None
    replaces_order_id: str | None
    received_at: dt.datetime | None


def peek_identity(obj: Any) -> RecordIdentity:
    """The identity fields of a raw order record; never raises (an invalid field reads as None).

    Read before :func:`parse_order`, so a record that is not ours is skipped whatever else it holds.
    """
    if not isinstance(obj, Mapping):
        return RecordIdentity(None, None, None, None)

    def ident(key: str) -> str | None:
        try:
            return parse_order_id(obj.get(key), key)
        except ValueError:
            return None

    ext = obj.get("external-identifier")
    ok_ext = isinstance(ext, str) and 0 < len(ext) <= MAX_TEXT and ext.isprintable()
    return RecordIdentity(ident("id"), ext if ok_ext else None, ident("replaces-order-id"),
                          parse_timestamp(obj.get("received-at")))


def _parse_leg(obj: Any, i: int) -> LegSnapshot:
    if not isinstance(obj, Mapping):
        raise ValueError(f"legs[{i}] is not an object")
    symbol = _text(obj.get("symbol"), f"legs[{i}].symbol")
    action = _text(obj.get("action"), f"legs[{i}].action")
    quantity = parse_quantity(obj.get("quantity"), f"legs[{i}].quantity")
    raw_remaining = obj.get("remaining-quantity")
    remaining = None if raw_remaining is None else parse_quantity(raw_remaining, f"legs[{i}].remaining-quantity")
    raw_fills = obj.get("fills") or []
    if not isinstance(raw_fills, list):
        raise ValueError(f"legs[{i}].fills is not a list")
    if len(raw_fills) > MAX_FILLS_PER_LEG:
        raise ValueError(f"legs[{i}].fills: {len(raw_fills)} fills, more than {MAX_FILLS_PER_LEG}")
    fills: list[LegFill] = []
    for j, f in enumerate(raw_fills):
        if not isinstance(f, Mapping):
            raise ValueError(f"legs[{i}].fills[{j}] is not an object")
        raw_fid = f.get("fill-id")
        where = f"legs[{i}].fills[{j}]"
        fills.append(LegFill(
            # fill ids are strings such as "3_OPT850090305" (reference §3); an int is taken as its text
            fill_id=str(raw_fid) if type(raw_fid) is int else _text(raw_fid, f"{where}.fill-id"),
            quantity=parse_quantity(f.get("quantity"), f"{where}.quantity"),
            price=parse_price(f.get("fill-price"), f"{where}.fill-price"),
            filled_at=_opt_text(f.get("filled-at"), f"{where}.filled-at"),
            group_fill_id=_opt_text(f.get("ext-group-fill-id"), f"{where}.ext-group-fill-id"),
        ))
    return LegSnapshot(symbol=symbol, action=action, quantity=quantity, remaining=remaining, fills=tuple(fills))


def parse_order(obj: Any) -> OrderSnapshot:
    """Validate one order object whole; raise :class:`MalformedResponseError` naming the field and value.

    Every bound of the module docstring is checked before the value is used. Only
    :class:`MalformedResponseError` leaves this function, whatever ``obj`` is.
    """
    oid = obj.get("id") if isinstance(obj, Mapping) else None
    try:
        if not isinstance(obj, Mapping):
            raise ValueError("is not an object")
        order_id = parse_order_id(oid, "id")
        status = _text(obj.get("status"), "status")
        raw_legs = obj.get("legs")
        if not isinstance(raw_legs, list):
            raise ValueError("legs is not a list")
        if len(raw_legs) > MAX_LEGS:
            raise ValueError(f"legs: {len(raw_legs)} legs, more than {MAX_LEGS}")
        legs = tuple(_parse_leg(leg, i) for i, leg in enumerate(raw_legs))
        raw_size = obj.get("size")
        size = None if raw_size is None else parse_quantity(raw_size, "size")
        price: Decimal | None = None
        if obj.get("price") is not None:
            price = parse_price(obj.get("price"), "price")
            if obj.get("price-effect") == "Credit":
                price = -price
        ext = obj.get("external-identifier")
        return OrderSnapshot(
            order_id=order_id,
            status=status,
            legs=legs,
            external_identifier=None if ext is None or ext == "" else _text(ext, "external-identifier"),
            size=size,
            order_type=_opt_text(obj.get("order-type"), "order-type"),
            price=price,
            replaces_order_id=_opt_id(obj.get("replaces-order-id"), "replaces-order-id"),
            replacing_order_id=_opt_id(obj.get("replacing-order-id"), "replacing-order-id"),
            edited=obj.get("edited") is True,
            reject_reason=_opt_text(obj.get("reject-reason"), "reject-reason", printable=False),
            updated_at=_epoch_ms(obj.get("updated-at")),
            live_at=_opt_text(obj.get("live-at"), "live-at"),
            contingent_status=_opt_text(obj.get("contingent-status"), "contingent-status"),
            received_at=parse_timestamp(obj.get("received-at")),
        )
    except (ValueError, TypeError, ArithmeticError, RecursionError) as err:
        raise MalformedResponseError(f"order {_q(oid)}: {err}") from None


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
