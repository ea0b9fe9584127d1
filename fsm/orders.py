"""What crosses the line between the executor and a broker backend, as plain values.

The executor sends :class:`OrderRequest`; the backend answers with :class:`BrokerEvent`
(one ticket event for one order) and, when asked, :class:`OrderReport`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Context, Decimal
from enum import StrEnum

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.events import BrokerStatus, Fill, TicketEvent
from atomic_orders.fsm.leg import Leg
from atomic_orders.fsm.symbol import OptionSymbol


class OrderType(StrEnum):
    """Limit or market."""

    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    """How long an order works: the session (day) or until canceled."""

    DAY = "day"
    GTC = "gtc"


class Purpose(StrEnum):
    """Why an order exists: to build the strategy (entry) or to undo it (unwind)."""

    ENTRY = "entry"
    UNWIND = "unwind"


def _check_legs(_inst: object, _attr: object, value: tuple[Leg, ...]) -> None:
    if not isinstance(value, tuple) or not 1 <= len(value) <= 4 or not all(isinstance(x, Leg) for x in value):
        raise ValidationError("legs", value, "must be a tuple of 1-4 Leg")


def _check_quantity(_inst: object, _attr: object, value: int) -> None:
    if type(value) is not int or value <= 0:
        raise ValidationError("quantity", value, "must be a positive int")


@attrs.frozen
class OrderRequest:
    """One order as the broker will see it.

    ``order_ref`` is our external identifier (unique per order, derived from group, leg and
    attempt): the key for reconciliation after an ambiguous submission. For a multi-leg (combo)
    order ``quantity`` is in strategy units and ``limit_price`` is the signed net per unit
    (positive = debit, negative = credit); for a single leg it is contracts at a positive price.
    """

    order_ref: str
    group_id: str
    purpose: Purpose
    legs: tuple[Leg, ...] = attrs.field(validator=_check_legs)
    quantity: int = attrs.field(validator=_check_quantity)
    order_type: OrderType = OrderType.LIMIT
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY

    def __attrs_post_init__(self) -> None:
        if self.order_type is OrderType.LIMIT:
            if not isinstance(self.limit_price, Decimal) or not self.limit_price.is_finite():
                raise ValidationError("limit_price", self.limit_price, "a limit order needs a finite Decimal price")
            if len(self.legs) == 1 and self.limit_price <= 0:
                raise ValidationError("limit_price", self.limit_price, "a single-leg limit price must be positive")
        elif self.limit_price is not None:
            raise ValidationError("limit_price", self.limit_price, "a market order carries no limit price")

    @property
    def is_combo(self) -> bool:
        """True when the order has more than one leg (fills come in strategy units)."""
        return len(self.legs) > 1


@attrs.frozen
class BrokerEvent:
    """One ticket event about the order ``order_ref``, as delivered by the broker's stream."""

    order_ref: str
    event: TicketEvent


def _check_filled_quantity(_inst: object, _attr: object, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise ValidationError("filled_quantity", value, "must be None or an int >= 0")


def _check_flag(_inst: object, attr: attrs.Attribute[bool], value: bool) -> None:
    if type(value) is not bool:
        raise ValidationError(attr.name, value, "must be a bool")


@attrs.frozen
class OrderReport:
    """The broker's own record of one order, answering a reconciliation query.

    ``fills`` are the executions the broker lists for the order. ``filled_quantity`` is the
    broker's own count of filled units (strategy units for a combo, contracts for one leg), read
    from its order record independently of the fill list: TastyTrade's ``quantity`` minus
    ``remaining-quantity`` (the least-filled leg of a combo), LEAN's ``OrderTicket.QuantityFilled``,
    the simulated exchange's book. ``None`` when the broker gives no count; the fills are then the
    count, unless ``fills_may_lag``: the broker's fills list may trail what filled (TastyTrade lists
    fills after an order's final status), so without a count they are only a lower bound, and a
    ``CANCELED``/``REJECTED``/``EXPIRED`` record short of the order confirms nothing. A report
    whose count exceeds its fills, or whose status is ``FILLED`` with fewer units than the order,
    or a final record that confirms nothing, contradicts itself: the executor books what is
    listed, keeps the order unsettled and asks again (see docs/invariants.md, invariant 7).
    """

    order_ref: str
    status: BrokerStatus
    fills: tuple[Fill, ...] = ()
    broker_order_id: str | None = None
    filled_quantity: int | None = attrs.field(default=None, validator=_check_filled_quantity)
    fills_may_lag: bool = attrs.field(default=False, validator=_check_flag)

    @property
    def listed_quantity(self) -> int:
        """Units covered by the listed fills (distinct fill ids)."""
        seen: dict[str, int] = {}
        for fill in self.fills:
            seen.setdefault(fill.fill_id, fill.quantity)
        return sum(seen.values())

    @property
    def broker_filled(self) -> int:
        """The broker's filled units: its own count when it gives one, else the listed fills."""
        listed = self.listed_quantity
        return listed if self.filled_quantity is None else max(self.filled_quantity, listed)


#: The largest price (per contract, or net per strategy unit) accepted from outside: far above
#: any listed option's premium (SPX's deepest in-the-money calls trade in the thousands).
MAX_PRICE = Decimal(100_000)
#: The finest price increment accepted from outside (prices are quoted in cents, fills may carry
#: a few more decimals for averaged executions).
MIN_PRICE_EXPONENT = -6

_FINEST = Decimal(1).scaleb(MIN_PRICE_EXPONENT)
# Exact for every value quote_problem quantizes (at most MAX_PRICE: 12 digits at 1E-6), whatever the
# caller's context.
_QUANTIZE = Context(prec=28)


def _price_problem(field: str, value: object) -> tuple[str, object, str] | None:
    """One side of :func:`quote_problem`."""
    if type(value) is not Decimal and (not isinstance(value, Decimal) or isinstance(value, bool)):
        return field, value, "must be a Decimal"
    assert isinstance(value, Decimal)
    if not value.is_finite():
        return field, value, "is not a finite number (a missing value)"
    if value < 0:
        return field, value, "is negative"
    if value > MAX_PRICE:
        return field, value, f"is above {MAX_PRICE}"
    # A multiple of 1E-6 is never finer (one C call, no digit tuple: quotes cross here all the
    # time); anything else is judged on its normalized exponent, as it always was.
    if value.quantize(_FINEST, None, _QUANTIZE) != value:  # (exp, rounding, context): positional is faster
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < MIN_PRICE_EXPONENT:
            return field, value, f"is finer than 1E{MIN_PRICE_EXPONENT}"
    return None


def quote_problem(bid: object, ask: object) -> tuple[str, object, str] | None:
    """Why a top of book cannot be used for pricing, as ``(field, value, reason)``; None when usable.

    Usable: both Decimals, finite, ``0 <= bid <= ask``, ``ask > 0``, at most :data:`MAX_PRICE`, on a
    scale no finer than ``10**MIN_PRICE_EXPONENT``. Checked before any arithmetic on the values.
    """
    if (
        type(bid) is Decimal
        and type(ask) is Decimal
        and bid.is_finite()
        and ask.is_finite()
        and 0 <= bid <= ask <= MAX_PRICE
        and ask != 0
        and bid.quantize(_FINEST, None, _QUANTIZE) == bid
        and ask.quantize(_FINEST, None, _QUANTIZE) == ask
    ):
        return None  # every check below holds: the usual quote, judged in a few C calls
    problem = _price_problem("bid", bid)
    if problem is None:
        problem = _price_problem("ask", ask)
    if problem is not None:
        return problem
    assert isinstance(bid, Decimal) and isinstance(ask, Decimal)
    if ask == 0:
        return "ask", ask, "is zero (nobody offers)"
    if bid > ask:
        return "bid", bid, f"is above the ask {ask} (a crossed quote)"
    return None


@attrs.frozen
class Quote:
    """Top of book for one option: bid and ask as Decimals."""

    symbol: OptionSymbol
    bid: Decimal
    ask: Decimal
    time: dt.datetime

    @property
    def mid(self) -> Decimal:
        """The midpoint of bid and ask."""
        return (self.bid + self.ask) / 2
