"""LEAN's names as the stand-in gives them: enums, symbols, orders, tickets, securities, managers.

The values, codes and member names follow LEAN's ``Common/Orders/OrderTypes.cs``,
``Common/Global.cs`` and ``Common/Orders/OrderTicket.cs``; the behaviour behind them (events,
cancel and update answers) is the brokerage's, :mod:`.brokerage`. Every class answers LEAN's
PascalCase names as well as the snake_case ones (:class:`PascalCase`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from atomic_orders.simulator.lean.brokerage import LeanStandIn

__all__ = [
    "BrokerageName",
    "CancelOrderRequest",
    "Leg",
    "Market",
    "OptionRight",
    "OptionStrategies",
    "OptionStrategy",
    "OptionStyle",
    "OrderDirection",
    "OrderEvent",
    "OrderResponse",
    "OrderResponseErrorCode",
    "OrderStatus",
    "OrderTicket",
    "OrderType",
    "SecurityType",
    "Symbol",
    "UpdateOrderFields",
]

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


class PascalCase:
    """LEAN's Python accepts ``QuantityFilled`` as well as ``quantity_filled``."""

    def __getattr__(self, name: str) -> Any:
        if name[:1].isupper():
            return getattr(self, _snake(name))
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# Enums (values as in LEAN's Common/Orders/OrderTypes.cs and Common/Global.cs)


class OrderStatus(IntEnum):
    """LEAN's ``OrderStatus`` (no member 4)."""

    NEW = 0
    SUBMITTED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 5
    NONE = 6
    INVALID = 7
    CANCEL_PENDING = 8
    UPDATE_SUBMITTED = 9
    New = 0
    Submitted = 1
    PartiallyFilled = 2
    Filled = 3
    Canceled = 5
    None_ = 6
    Invalid = 7
    CancelPending = 8
    UpdateSubmitted = 9

    def is_closed(self) -> bool:
        """LEAN's ``IsClosed``: Filled, Canceled or Invalid."""
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID)


#: LEAN's closed statuses (``OrderStatus.IsClosed``): Filled, Canceled, Invalid.
CLOSED = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID})


class OrderType(IntEnum):
    """LEAN's ``OrderType`` (the members the stand-in produces)."""

    MARKET = 0
    LIMIT = 1
    COMBO_MARKET = 8
    COMBO_LIMIT = 9
    COMBO_LEG_LIMIT = 10


class OrderDirection(IntEnum):
    """LEAN's ``OrderDirection``."""

    BUY = 0
    SELL = 1
    HOLD = 2


class SecurityType(IntEnum):
    """LEAN's ``SecurityType`` (subset)."""

    BASE = 0
    EQUITY = 1
    OPTION = 2
    INDEX = 9
    INDEX_OPTION = 10


class OptionRight(IntEnum):
    """LEAN's ``OptionRight``."""

    CALL = 0
    PUT = 1


class OptionStyle(IntEnum):
    """LEAN's ``OptionStyle``."""

    AMERICAN = 0
    EUROPEAN = 1


class OrderResponseErrorCode(IntEnum):
    """LEAN's ``OrderResponseErrorCode`` (the codes the stand-in answers)."""

    NONE = 0
    BROKERAGE_MODEL_REFUSED_TO_SUBMIT_ORDER = -4
    BROKERAGE_FAILED_TO_UPDATE_ORDER = -6
    BROKERAGE_FAILED_TO_CANCEL_ORDER = -8
    INVALID_ORDER_STATUS = -9
    UNABLE_TO_FIND_ORDER = -10
    ORDER_QUANTITY_ZERO = -11
    INVALID_REQUEST = -22
    REQUEST_CANCELED = -23
    INVALID_NEW_ORDER_STATUS = -32


class BrokerageName(IntEnum):
    """LEAN's ``BrokerageName`` (the two the stand-in models)."""

    DEFAULT = 0
    TASTYTRADE = 32


class Market:
    """LEAN's market names."""

    USA = "usa"


# ---------------------------------------------------------------------------------------------
# Symbols


@attrs.frozen
class SecurityIdentifier:
    """The parts of LEAN's ``SecurityIdentifier`` an option contract needs."""

    symbol: str
    security_type: SecurityType
    market: str
    strike_price: float = 0.0
    date: dt.datetime = dt.datetime(1, 1, 1)
    option_right: OptionRight = OptionRight.CALL
    option_style: OptionStyle = OptionStyle.AMERICAN


def _osi(root: str, right: OptionRight, strike: float, expiry: dt.datetime) -> str:
    """LEAN's ``GenerateOptionTickerOSI``: root padded to 6 (+1 space beyond 5 characters)."""
    padded = root.ljust(6) if len(root) < 6 else root + " "
    millis = round(Decimal(repr(strike)) * 1000)
    return f"{padded}{expiry:%y%m%d}{'C' if right is OptionRight.CALL else 'P'}{millis:08d}"


@attrs.frozen(eq=False)
class Symbol(PascalCase):
    """LEAN's ``Symbol`` (equality by identifier, as LEAN's)."""

    id: SecurityIdentifier
    value: str
    underlying: Symbol | None = None
    canonical_flag: bool = False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Symbol) and other.id == self.id and other.value == self.value

    def __hash__(self) -> int:
        return hash((self.id, self.value))

    def __str__(self) -> str:
        return self.value

    @property
    def has_underlying(self) -> bool:
        """True for derivatives."""
        return self.underlying is not None

    @property
    def security_type(self) -> SecurityType:
        """The identifier's security type."""
        return self.id.security_type

    def is_canonical(self) -> bool:
        """True for an option chain symbol (``?SPXW``), not a contract."""
        return self.canonical_flag

    @staticmethod
    def create(ticker: str, security_type: SecurityType, market: str, alias: str | None = None) -> Symbol:
        """``Symbol.create(ticker, security_type, market)``."""
        return Symbol(SecurityIdentifier(ticker.upper(), SecurityType(security_type), market), alias or ticker.upper())

    @staticmethod
    def create_option(*args: Any, **kwargs: Any) -> Symbol:
        """``create_option(underlying, [target_option,] market, style, right, strike, expiry)``.

        A string underlying makes an *equity* option, as in LEAN.
        """
        if kwargs:
            raise TypeError(f"the stand-in takes positional arguments only, got {sorted(kwargs)}")
        if len(args) == 7:
            underlying, target, market, style, right, strike, expiry = args
        elif len(args) == 6:
            underlying, market, style, right, strike, expiry = args
            target = None
        else:
            raise TypeError(f"create_option takes 6 or 7 positional arguments, got {len(args)}")
        if isinstance(underlying, str):
            underlying = Symbol.create(underlying, SecurityType.EQUITY, market)
        kind = SecurityType.INDEX_OPTION if underlying.id.security_type is SecurityType.INDEX else SecurityType.OPTION
        root = (target or underlying.id.symbol).upper()
        if isinstance(expiry, dt.date) and not isinstance(expiry, dt.datetime):
            expiry = dt.datetime(expiry.year, expiry.month, expiry.day)
        sid = SecurityIdentifier(root, kind, market, float(strike), expiry, OptionRight(right), OptionStyle(style))
        value_root = root if kind is SecurityType.INDEX_OPTION else underlying.value
        return Symbol(sid, _osi(value_root, OptionRight(right), float(strike), expiry), underlying)

    @staticmethod
    def create_canonical_option(underlying: Symbol, target_option: str | None = None,
                                market: str | None = None) -> Symbol:
        """The chain symbol ``?ROOT``."""
        kind = SecurityType.INDEX_OPTION if underlying.id.security_type is SecurityType.INDEX else SecurityType.OPTION
        root = (target_option or underlying.id.symbol).upper()
        return Symbol(SecurityIdentifier(root, kind, market or Market.USA), f"?{root}", underlying, True)


# ---------------------------------------------------------------------------------------------
# Order values


@attrs.define
class Leg(PascalCase):
    """LEAN's combo ``Leg``: a symbol, a signed ratio, an optional leg limit price."""

    symbol: Symbol
    quantity: int
    order_price: float | None = None

    @staticmethod
    def create(symbol: Symbol, quantity: int, limit_price: float | None = None) -> Leg:
        """``Leg.create(symbol, quantity, limit_price=None)``."""
        return Leg(symbol, int(quantity), limit_price)


@attrs.define
class UpdateOrderFields(PascalCase):
    """LEAN's ``UpdateOrderFields`` (every field optional)."""

    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trigger_price: float | None = None
    trailing_amount: float | None = None
    tag: str | None = None


@attrs.frozen
class OrderResponse(PascalCase):
    """LEAN's ``OrderResponse``: success means *accepted for processing*."""

    order_id: int
    error_code: OrderResponseErrorCode = OrderResponseErrorCode.NONE
    error_message: str = ""

    @property
    def is_success(self) -> bool:
        """Processed without error."""
        return self.error_code is OrderResponseErrorCode.NONE

    @property
    def is_error(self) -> bool:
        """An error code is set."""
        return not self.is_success

    @property
    def is_processed(self) -> bool:
        """Always processed in the stand-in."""
        return True


@attrs.define
class CancelOrderRequest(PascalCase):
    """LEAN's ``CancelOrderRequest`` as a ticket keeps it (``ticket.cancel_request``).

    ``response`` is replaced when LEAN processes the queued request (``OrderRequest.SetResponse``):
    a cancel accepted by ``cancel()`` can end as -9 when the order closed meanwhile.
    """

    order_id: int
    tag: str | None
    response: OrderResponse


@attrs.define
class OrderEvent(PascalCase):
    """LEAN's ``OrderEvent``: one status change or fill of one LEAN order."""

    order_id: int
    id: int
    symbol: Symbol
    utc_time: dt.datetime
    status: OrderStatus
    direction: OrderDirection
    quantity: float
    fill_price: float = 0.0
    fill_quantity: float = 0.0
    message: str = ""
    limit_price: float | None = None
    is_assignment: bool = False
    ticket: OrderTicket | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def absolute_fill_quantity(self) -> float:
        """``abs(fill_quantity)``."""
        return abs(self.fill_quantity)


@attrs.frozen
class OptionStrategy:
    """LEAN's ``OptionStrategy`` as far as ``buy``/``sell`` need it: a name and its legs."""

    name: str
    legs: tuple[Leg, ...]


class OptionStrategies:
    """LEAN's ``OptionStrategies`` factory (the iron condor)."""

    @staticmethod
    def iron_condor(canonical_option: Symbol, long_put_strike: float, short_put_strike: float,
                    short_call_strike: float, long_call_strike: float, expiration: dt.datetime) -> OptionStrategy:
        """Legs +1 long put, -1 short put, -1 short call, +1 long call: ``buy`` opens a *credit* condor."""
        if not canonical_option.is_canonical() or canonical_option.underlying is None:
            raise ValueError(f"ArgumentException: {canonical_option.value!r} is not a canonical option symbol")
        if not long_put_strike < short_put_strike <= short_call_strike < long_call_strike:
            raise ValueError("ArgumentException: strikes must satisfy long put < short put <= short call < long call")
        underlying = canonical_option.underlying
        root = canonical_option.id.symbol
        index = canonical_option.id.security_type is SecurityType.INDEX_OPTION
        style = OptionStyle.EUROPEAN if index else OptionStyle.AMERICAN

        def contract(right: OptionRight, strike: float) -> Symbol:
            if index:
                return Symbol.create_option(underlying, root, Market.USA, style, right, strike, expiration)
            return Symbol.create_option(underlying, Market.USA, style, right, strike, expiration)

        return OptionStrategy("Iron Condor", (
            Leg.create(contract(OptionRight.PUT, long_put_strike), 1),
            Leg.create(contract(OptionRight.PUT, short_put_strike), -1),
            Leg.create(contract(OptionRight.CALL, short_call_strike), -1),
            Leg.create(contract(OptionRight.CALL, long_call_strike), 1),
        ))


@attrs.define
class GroupOrderManager(PascalCase):
    """LEAN's ``GroupOrderManager``: what the legs of one combo share."""

    id: int
    count: int
    quantity: int
    limit_price: float
    order_ids: list[int] = attrs.field(factory=list)


@attrs.define
class Order(PascalCase):
    """LEAN's ``Order`` (the fields the stand-in keeps)."""

    id: int
    symbol: Symbol
    quantity: float
    type: OrderType
    tag: str
    time: dt.datetime
    limit_price: float | None = None
    status: OrderStatus = OrderStatus.NEW
    group_order_manager: GroupOrderManager | None = None
    broker_id: list[str] = attrs.field(factory=list)
    price: float = 0.0

    @property
    def direction(self) -> OrderDirection:
        """Buy for a positive quantity."""
        return OrderDirection.BUY if self.quantity > 0 else OrderDirection.SELL


class OrderTicket(PascalCase):
    """LEAN's ``OrderTicket`` over a stand-in order."""

    def __init__(self, standin: LeanStandIn, order: Order, *, status: OrderStatus | None = None) -> None:
        self._standin = standin
        #: The stand-in's order behind the ticket (LEAN keeps it internal); the brokerage updates it.
        self.order = order
        self._events: list[OrderEvent] = []
        self._filled = 0.0
        self._notional = 0.0
        self.cancel_request: CancelOrderRequest | None = None
        self.update_requests: list[UpdateOrderFields] = []
        self.time = order.time
        #: A status that stands instead of the order's (``INVALID`` for a pre-order-check refusal).
        self._status_override = status

    @property
    def order_id(self) -> int:
        """LEAN's order id (-10 for a ticket refused by pre-order checks)."""
        return self.order.id

    @property
    def symbol(self) -> Symbol:
        """The order's symbol."""
        return self.order.symbol

    @property
    def tag(self) -> str:
        """The order's tag."""
        return self.order.tag

    @property
    def order_type(self) -> OrderType:
        """The order's type."""
        return self.order.type

    @property
    def status(self) -> OrderStatus:
        """The order's current status."""
        return self._status_override if self._status_override is not None else self.order.status

    @property
    def quantity(self) -> float:
        """Signed order quantity (for a combo leg: ratio x group quantity)."""
        return self.order.quantity

    @property
    def quantity_filled(self) -> float:
        """Signed sum of fill quantities."""
        return self._filled

    @property
    def quantity_remaining(self) -> float:
        """``quantity - quantity_filled``."""
        return self.order.quantity - self._filled

    @property
    def average_fill_price(self) -> float:
        """Volume-weighted fill price (0 before fills)."""
        return self._notional / abs(self._filled) if self._filled else 0.0

    @property
    def order_events(self) -> list[OrderEvent]:
        """Every event of the order (a copy; a property, as in LEAN)."""
        return list(self._events)

    @property
    def has_order(self) -> bool:
        """True once the order exists (always, except for tickets refused by pre-order checks)."""
        return self.order.id > 0

    def add_event(self, event: OrderEvent) -> None:
        """Record one event of the order (its fill quantity counts whatever the status, as LEAN's ticket)."""
        self._events.append(event)
        if event.fill_quantity:
            self._filled += event.fill_quantity
            self._notional += abs(event.fill_quantity) * event.fill_price

    def cancel(self, tag: str | None = None) -> OrderResponse:
        """LEAN's ``cancel``: see :mod:`.brokerage` for the answers (a ``tag`` replaces the order's)."""
        return self._standin.request_cancel(self, tag)

    def update(self, fields: UpdateOrderFields) -> OrderResponse:
        """LEAN's ``update(UpdateOrderFields)``."""
        return self._standin.request_update(self, fields)

    def __repr__(self) -> str:
        return f"OrderTicket(id={self.order_id}, {self.symbol.value!r}, status={self.status.name}, " \
               f"filled={self._filled}/{self.quantity})"


# ---------------------------------------------------------------------------------------------
# Portfolio, securities, transactions


@attrs.define
class SecurityHolding(PascalCase):
    """LEAN's ``SecurityHolding`` (quantity and average price)."""

    symbol: Symbol
    quantity: float = 0.0
    average_price: float = 0.0

    @property
    def invested(self) -> bool:
        """A non-zero position."""
        return self.quantity != 0


class Security(PascalCase):
    """LEAN's ``Security``: prices read from the simulator's market at the current time."""

    def __init__(self, standin: LeanStandIn, symbol: Symbol) -> None:
        self._standin = standin
        self.symbol = symbol
        self.holdings = SecurityHolding(symbol)

    def _quote(self) -> tuple[float, float]:
        return self._standin.quote(self.symbol)

    @property
    def bid_price(self) -> float:
        """Best bid now."""
        return self._quote()[0]

    @property
    def ask_price(self) -> float:
        """Best ask now."""
        return self._quote()[1]

    @property
    def price(self) -> float:
        """Mid (options) or spot (the index)."""
        bid, ask = self._quote()
        return (bid + ask) / 2

    @property
    def has_data(self) -> bool:
        """Always: the market model quotes every contract."""
        return True


class SecurityManager(dict[Symbol, Security]):
    """LEAN's ``SecurityManager``: securities by symbol (``KeyError`` for one not added)."""

    def contains_key(self, symbol: Symbol) -> bool:
        """``ContainsKey``."""
        return symbol in self


class SecurityPortfolioManager(PascalCase):
    """LEAN's ``Portfolio``: holdings by symbol."""

    def __init__(self, securities: SecurityManager) -> None:
        self._securities = securities

    def __getitem__(self, symbol: Symbol) -> SecurityHolding:
        return self._securities[symbol].holdings

    def values(self) -> list[SecurityHolding]:
        """Every holding."""
        return [s.holdings for s in self._securities.values()]


class SecurityTransactionManager(PascalCase):
    """LEAN's ``Transactions``: tickets and orders by id."""

    def __init__(self, standin: LeanStandIn) -> None:
        self._standin = standin

    def get_order_tickets(self, filter: Callable[[OrderTicket], bool] | None = None) -> list[OrderTicket]:
        """Every ticket (LEAN excludes pre-check-refused ones, id -10)."""
        tickets = [t for t in self._standin.tickets.values() if t.order_id > 0]
        return [t for t in tickets if filter is None or filter(t)]

    def get_open_order_tickets(self, filter: Callable[[OrderTicket], bool] | None = None) -> list[OrderTicket]:
        """Tickets whose status is not closed."""
        return [t for t in self.get_order_tickets(filter) if t.status not in CLOSED]

    def get_order_ticket(self, order_id: int) -> OrderTicket | None:
        """The ticket of ``order_id``."""
        return self._standin.tickets.get(int(order_id))

    def get_order_by_id(self, order_id: int) -> Order | None:
        """A copy of the order (LEAN hands out clones)."""
        ticket = self._standin.tickets.get(int(order_id))
        return None if ticket is None else attrs.evolve(ticket.order)

    def get_orders(self, filter: Callable[[Order], bool] | None = None) -> list[Order]:
        """Copies of every order."""
        orders = [attrs.evolve(t.order) for t in self._standin.tickets.values() if t.order_id > 0]
        return [o for o in orders if filter is None or filter(o)]

    def get_open_orders(self) -> list[Order]:
        """Copies of the open orders."""
        return self.get_orders(lambda o: o.status not in CLOSED)

    def cancel_order(self, order_id: int, tag: str | None = None) -> OrderResponse:
        """Cancel by id."""
        ticket = self._standin.tickets.get(int(order_id))
        if ticket is None:
            return OrderResponse(int(order_id), OrderResponseErrorCode.UNABLE_TO_FIND_ORDER, "order not found")
        return ticket.cancel(tag)

    def cancel_open_orders(self) -> list[OrderResponse]:
        """Cancel every open ticket."""
        return [t.cancel() for t in self.get_open_order_tickets()]
