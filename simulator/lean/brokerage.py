"""A stand-in for the part of LEAN's ``QCAlgorithm`` the QuantConnect adapter uses -- NOT LEAN.

LEAN cannot run here, so this module imitates, with LEAN's own names (snake_case, and PascalCase
where LEAN's Python accepts it), what an algorithm and the adapter touch: the order methods
(``combo_limit_order``, ``combo_market_order``, ``limit_order``, ``market_order``), LEAN order tickets
(``cancel``, ``update(UpdateOrderFields)``, ``status``, ``quantity_filled``, ``average_fill_price``,
``order_events``), ``OrderEvent`` s with LEAN's ``OrderStatus`` codes, ``transactions``,
``portfolio``, ``securities``, ``live_mode``, ``time``/``utc_time``, ``schedule`` with
``date_rules``/``time_rules``, ``log``/``debug``/``error``, ``Symbol.create_option``, ``Leg.create``.

The brokerage behind it is the deterministic :class:`BrokerSimulator`: a LEAN
combo is one multi-leg simulator order, so its fills are all-legs-together (LEAN's combo fill
semantics). :class:`LeanStandIn` drives time: it advances the simulator, turns its deliveries into
per-leg ``OrderEvent`` batches (orders, tickets and portfolio updated for the whole batch before any
``on_order_event`` call, as LEAN does), processes queued cancel/update requests at the next time
step, and fires scheduled events. Trading days: :meth:`LeanStandIn.next_session` moves to the next
weekday on a fresh simulated session (one :class:`BrokerSimulator` per day), keeping tickets and
holdings, and arms the scheduled events whose date rule fires that day.

LEAN rules reproduced (see the reference notes in ``docs/quantconnect.md``):

* ``OrderStatus`` codes 0,1,2,3,5,6,7,8,9 (no 4); ``IsClosed`` = Filled, Canceled, Invalid.
* ``ticket.cancel()``: -32 while ``NEW``, -9 when closed, -23 while an earlier cancel request has
  not failed; otherwise the ``CANCEL_PENDING`` event fires *inside* ``cancel()`` and the request is
  processed at the next step. The request stays on ``ticket.cancel_request``; its ``response``
  becomes -9 when the order closed while the request waited, -8 on a brokerage refusal (the status
  reverts silently, no event). A cancel's tag replaces the order's.
* The ticket counts every non-zero fill quantity (``QuantityFilled``), whatever the event's status;
  the portfolio only fills of ``PARTIALLY_FILLED``/``FILLED`` events (``HandleOrderEvents``).
* Plugin shapes on request: ``fill_during_update`` (a fill during an in-flight update reported on
  ``UPDATE_SUBMITTED``, then ``FILLED`` with fill quantity 0), ``reverse_leg_events`` (a combo's
  legs one per batch, last first), :meth:`LeanStandIn.brokerage_events` (any batch of events).
* A fill after ``CANCELED`` is applied and flips the status back (LEAN core); with
  ``drop_fills_after_close=True`` such fills are dropped instead, as LEAN's TastyTrade plugin does
  (kept in :attr:`LeanStandIn.dropped_fills`).
* Backtest: canceling one combo leg cancels the whole combo (``CANCELED`` for every leg). Live mode
  imitates the TastyTrade plugin: a combo cancel/update reaches the broker only once it was
  requested for every leg.
* ``combo_market_order`` -- and so ``buy(OptionStrategies.iron_condor(...))`` -- under
  ``set_brokerage_model(BrokerageName.TASTYTRADE)`` is refused: every leg ``INVALID`` (error -4),
  nothing sent. Combo sizing: the GCD of the leg quantities must be 1;
  ``combo_limit_order`` needs a non-zero limit and legs without prices (``ValueError`` standing in for
  .NET's ``ArgumentException``). A zero quantity gives one ``INVALID`` ticket with order id -10 and
  no event (pre-order checks).
* Invalid events do not overwrite ``FILLED``/``CANCELED``.

Deliberate differences: a submission is ``SUBMITTED`` when the simulated broker acknowledges it (as
with a live brokerage; LEAN's backtesting brokerage does so inside the order call), and market
orders fill when the simulator fills them, not inside the order call; prices come from the
simulator's market, not from data bars; one account, options on the market's underlying only.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import IntEnum
from typing import Any, cast
from zoneinfo import ZoneInfo

import attrs

from atomic_orders.backends.quantconnect.lean_api import LeanApi
from atomic_orders.backends.quantconnect.symbols import SymbolMapper
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.events import (
    Acknowledged,
    Canceled,
    CancelRejected,
    Expired,
    Fill,
    Rejected,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.leg import Leg as CoreLeg
from atomic_orders.fsm.leg import Side
from atomic_orders.fsm.orders import OrderRequest, Purpose
from atomic_orders.fsm.orders import OrderType as CoreOrderType
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.engine import derive_seed
from atomic_orders.simulator.broker.market import MarketModel
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

__all__ = [
    "STAND_IN_API",
    "BrokerageName",
    "BrokerageOrderEvent",
    "CancelOrderRequest",
    "Leg",
    "LeanStandIn",
    "LogLine",
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
    "QCAlgorithm",
    "SecurityType",
    "Symbol",
    "UpdateOrderFields",
    "next_session_broker",
]

NEW_YORK = ZoneInfo("America/New_York")
#: :meth:`LeanStandIn.run_session` runs this long after the close (the close's events arrive).
AFTER_CLOSE_SECONDS = 1800.0

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


class _PascalCase:
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


_CLOSED = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID})


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
class Symbol(_PascalCase):
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
class Leg(_PascalCase):
    """LEAN's combo ``Leg``: a symbol, a signed ratio, an optional leg limit price."""

    symbol: Symbol
    quantity: int
    order_price: float | None = None

    @staticmethod
    def create(symbol: Symbol, quantity: int, limit_price: float | None = None) -> Leg:
        """``Leg.create(symbol, quantity, limit_price=None)``."""
        return Leg(symbol, int(quantity), limit_price)


@attrs.define
class UpdateOrderFields(_PascalCase):
    """LEAN's ``UpdateOrderFields`` (every field optional)."""

    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trigger_price: float | None = None
    trailing_amount: float | None = None
    tag: str | None = None


@attrs.frozen
class OrderResponse(_PascalCase):
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
class CancelOrderRequest(_PascalCase):
    """LEAN's ``CancelOrderRequest`` as a ticket keeps it (``ticket.cancel_request``).

    ``response`` is replaced when LEAN processes the queued request (``OrderRequest.SetResponse``):
    a cancel accepted by ``cancel()`` can end as -9 when the order closed meanwhile.
    """

    order_id: int
    tag: str | None
    response: OrderResponse


@attrs.frozen
class BrokerageOrderEvent:
    """One order event as a brokerage plugin raises it (input of :meth:`LeanStandIn.brokerage_events`)."""

    order_id: int
    status: OrderStatus
    fill_quantity: float = 0.0
    fill_price: float = 0.0
    message: str = ""


@attrs.define
class OrderEvent(_PascalCase):
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
class GroupOrderManager(_PascalCase):
    """LEAN's ``GroupOrderManager``: what the legs of one combo share."""

    id: int
    count: int
    quantity: int
    limit_price: float
    order_ids: list[int] = attrs.field(factory=list)


@attrs.define
class Order(_PascalCase):
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


class OrderTicket(_PascalCase):
    """LEAN's ``OrderTicket`` over a stand-in order."""

    def __init__(self, standin: LeanStandIn, order: Order) -> None:
        self._standin = standin
        self._order = order
        self._events: list[OrderEvent] = []
        self._filled = 0.0
        self._notional = 0.0
        self.cancel_request: CancelOrderRequest | None = None
        self.update_requests: list[UpdateOrderFields] = []
        self.time = order.time
        self._status_override: OrderStatus | None = None

    @property
    def order_id(self) -> int:
        """LEAN's order id (-10 for a ticket refused by pre-order checks)."""
        return self._order.id

    @property
    def symbol(self) -> Symbol:
        """The order's symbol."""
        return self._order.symbol

    @property
    def tag(self) -> str:
        """The order's tag."""
        return self._order.tag

    @property
    def order_type(self) -> OrderType:
        """The order's type."""
        return self._order.type

    @property
    def status(self) -> OrderStatus:
        """The order's current status."""
        return self._status_override if self._status_override is not None else self._order.status

    @property
    def quantity(self) -> float:
        """Signed order quantity (for a combo leg: ratio x group quantity)."""
        return self._order.quantity

    @property
    def quantity_filled(self) -> float:
        """Signed sum of fill quantities."""
        return self._filled

    @property
    def quantity_remaining(self) -> float:
        """``quantity - quantity_filled``."""
        return self._order.quantity - self._filled

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
        return self._order.id > 0

    def _add(self, event: OrderEvent) -> None:
        self._events.append(event)
        if event.fill_quantity:
            self._filled += event.fill_quantity
            self._notional += abs(event.fill_quantity) * event.fill_price

    def cancel(self, tag: str | None = None) -> OrderResponse:
        """LEAN's ``cancel``: see the module docstring for the answers (a ``tag`` replaces the order's)."""
        return self._standin._request_cancel(self, tag)

    def update(self, fields: UpdateOrderFields) -> OrderResponse:
        """LEAN's ``update(UpdateOrderFields)``."""
        return self._standin._request_update(self, fields)

    def __repr__(self) -> str:
        return f"OrderTicket(id={self.order_id}, {self.symbol.value!r}, status={self.status.name}, " \
               f"filled={self._filled}/{self.quantity})"


# ---------------------------------------------------------------------------------------------
# Portfolio, securities, transactions, scheduling


@attrs.define
class SecurityHolding(_PascalCase):
    """LEAN's ``SecurityHolding`` (quantity and average price)."""

    symbol: Symbol
    quantity: float = 0.0
    average_price: float = 0.0

    @property
    def invested(self) -> bool:
        """A non-zero position."""
        return self.quantity != 0


class Security(_PascalCase):
    """LEAN's ``Security``: prices read from the simulator's market at the current time."""

    def __init__(self, standin: LeanStandIn, symbol: Symbol) -> None:
        self._standin = standin
        self.symbol = symbol
        self.holdings = SecurityHolding(symbol)

    def _quote(self) -> tuple[float, float]:
        return self._standin._quote(self.symbol)

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


class SecurityPortfolioManager(_PascalCase):
    """LEAN's ``Portfolio``: holdings by symbol."""

    def __init__(self, securities: SecurityManager) -> None:
        self._securities = securities

    def __getitem__(self, symbol: Symbol) -> SecurityHolding:
        return self._securities[symbol].holdings

    def values(self) -> list[SecurityHolding]:
        """Every holding."""
        return [s.holdings for s in self._securities.values()]


class SecurityTransactionManager(_PascalCase):
    """LEAN's ``Transactions``: tickets and orders by id."""

    def __init__(self, standin: LeanStandIn) -> None:
        self._standin = standin

    def get_order_tickets(self, filter: Callable[[OrderTicket], bool] | None = None) -> list[OrderTicket]:
        """Every ticket (LEAN excludes pre-check-refused ones, id -10)."""
        tickets = [t for t in self._standin._tickets.values() if t.order_id > 0]
        return [t for t in tickets if filter is None or filter(t)]

    def get_open_order_tickets(self, filter: Callable[[OrderTicket], bool] | None = None) -> list[OrderTicket]:
        """Tickets whose status is not closed."""
        return [t for t in self.get_order_tickets(filter) if t.status not in _CLOSED]

    def get_order_ticket(self, order_id: int) -> OrderTicket | None:
        """The ticket of ``order_id``."""
        return self._standin._tickets.get(int(order_id))

    def get_order_by_id(self, order_id: int) -> Order | None:
        """A copy of the order (LEAN hands out clones)."""
        ticket = self._standin._tickets.get(int(order_id))
        return None if ticket is None else attrs.evolve(ticket._order)

    def get_orders(self, filter: Callable[[Order], bool] | None = None) -> list[Order]:
        """Copies of every order."""
        orders = [attrs.evolve(t._order) for t in self._standin._tickets.values() if t.order_id > 0]
        return [o for o in orders if filter is None or filter(o)]

    def get_open_orders(self) -> list[Order]:
        """Copies of the open orders."""
        return self.get_orders(lambda o: o.status not in _CLOSED)

    def cancel_order(self, order_id: int, tag: str | None = None) -> OrderResponse:
        """Cancel by id."""
        ticket = self._standin._tickets.get(int(order_id))
        if ticket is None:
            return OrderResponse(int(order_id), OrderResponseErrorCode.UNABLE_TO_FIND_ORDER, "order not found")
        return ticket.cancel(tag)

    def cancel_open_orders(self) -> list[OrderResponse]:
        """Cancel every open ticket."""
        return [t.cancel() for t in self.get_open_order_tickets()]


@attrs.frozen
class LogLine:
    """One line an algorithm wrote: New York algorithm time (``None`` before it was attached), level, text.

    ``level`` is ``log``, ``debug`` or ``error`` (the method that wrote it).
    """

    time: dt.datetime | None
    level: str
    message: str

    def __str__(self) -> str:
        when = "-" if self.time is None else f"{self.time:%Y-%m-%d %H:%M:%S}"
        tag = "" if self.level == "log" else f"{self.level.upper()} "
        return f"{when} {tag}{self.message}"


@attrs.frozen
class _DateRule:
    kind: str  # every_day | week_start


@attrs.frozen
class _TimeRule:
    kind: str  # at | every
    at: dt.time | None = None
    every: dt.timedelta | None = None


class DateRules:
    """LEAN's ``date_rules`` (every day; the first day of each week)."""

    def every_day(self, *_args: Any, **_kwargs: Any) -> _DateRule:
        """Every trading day."""
        return _DateRule("every_day")

    def week_start(self, *_args: Any, **_kwargs: Any) -> _DateRule:
        """The first trading day of each week the stand-in runs (its first session counts; holidays ignored)."""
        return _DateRule("week_start")


class TimeRules:
    """LEAN's ``time_rules`` (New York time)."""

    def at(self, hour: int, minute: int, second: int = 0) -> _TimeRule:
        """At a wall-clock time, New York."""
        return _TimeRule("at", at=dt.time(hour, minute, second))

    def after_market_open(self, _symbol: Any = None, minutes_after_open: float = 0, *_args: Any) -> _TimeRule:
        """``minutes_after_open`` after 9:30 New York."""
        base = dt.datetime(2000, 1, 1, 9, 30) + dt.timedelta(minutes=float(minutes_after_open))
        return _TimeRule("at", at=base.time())

    def before_market_close(self, _symbol: Any = None, minutes_before_close: float = 0, *_args: Any) -> _TimeRule:
        """``minutes_before_close`` before 16:00 New York."""
        base = dt.datetime(2000, 1, 1, 16, 0) - dt.timedelta(minutes=float(minutes_before_close))
        return _TimeRule("at", at=base.time())

    def every(self, interval: dt.timedelta) -> _TimeRule:
        """Repeatedly, every ``interval`` from the session open."""
        if interval <= dt.timedelta(0):
            raise ValueError(f"interval={interval!r}: must be positive")
        return _TimeRule("every", every=interval)


class ScheduleManager(_PascalCase):
    """LEAN's ``schedule``: ``on(date_rule, time_rule, callback)``."""

    def __init__(self, standin: LeanStandIn) -> None:
        self._standin = standin

    def on(self, date_rule: _DateRule, time_rule: _TimeRule, callback: Callable[[], Any]) -> None:
        """Register a scheduled event."""
        self._standin._add_schedule(date_rule, time_rule, callback)


# ---------------------------------------------------------------------------------------------
# The algorithm base class


class QCAlgorithm(_PascalCase):
    """The stand-in's ``QCAlgorithm``: subclass it as you would LEAN's.

    Override ``initialize`` and ``on_order_event``. Attach it to a :class:`LeanStandIn` (which
    calls ``initialize``) before use.
    """

    #: Marks the stand-in for :func:`atomic_orders.backends.quantconnect.lean_api.lean_api_for`.
    lean_stand_in_api: LeanApi

    def __init__(self) -> None:
        self._standin: LeanStandIn | None = None
        self.logs: list[str] = []
        self.debugs: list[str] = []
        self.errors: list[str] = []
        #: Every ``log``/``debug``/``error`` line with the algorithm time it was written at, in order.
        self.output: list[LogLine] = []
        self.brokerage_name = BrokerageName.DEFAULT
        self.date_rules = DateRules()
        self.time_rules = TimeRules()

    # -- hooks ----------------------------------------------------------------------------------

    def initialize(self) -> None:
        """Override: set up the algorithm."""

    def on_order_event(self, order_event: OrderEvent) -> None:
        """Override: called for every order event whose status is not ``NONE``."""

    # -- environment ----------------------------------------------------------------------------

    @property
    def _env(self) -> LeanStandIn:
        if self._standin is None:
            raise RuntimeError("this stand-in algorithm is not attached to a LeanStandIn")
        return self._standin

    @property
    def live_mode(self) -> bool:
        """LEAN's ``live_mode``."""
        return self._env.live_mode

    @property
    def utc_time(self) -> dt.datetime:
        """Naive UTC, as LEAN's ``utc_time``."""
        return self._env.broker.clock.now().astimezone(dt.UTC).replace(tzinfo=None)

    @property
    def time(self) -> dt.datetime:
        """Naive New York time, as LEAN's ``time``."""
        return self._env.broker.clock.now().astimezone(NEW_YORK).replace(tzinfo=None)

    @property
    def transactions(self) -> SecurityTransactionManager:
        """LEAN's ``transactions``."""
        return self._env.transactions

    @property
    def portfolio(self) -> SecurityPortfolioManager:
        """LEAN's ``portfolio``."""
        return self._env.portfolio

    @property
    def securities(self) -> SecurityManager:
        """LEAN's ``securities``."""
        return self._env.securities

    @property
    def schedule(self) -> ScheduleManager:
        """LEAN's ``schedule``."""
        return self._env.schedule

    def set_brokerage_model(self, brokerage: BrokerageName, account_type: Any = None) -> None:
        """Only DEFAULT and TASTYTRADE are modelled (TastyTrade refuses combo market orders)."""
        self.brokerage_name = BrokerageName(brokerage)

    def set_start_date(self, *_args: Any) -> None:
        """Accepted and ignored: the simulator's session is the backtest."""

    def set_end_date(self, *_args: Any) -> None:
        """Accepted and ignored."""

    def set_cash(self, *_args: Any) -> None:
        """Accepted and ignored."""

    def add_index(self, ticker: str, *_args: Any, **_kwargs: Any) -> Security:
        """Subscribe an index (the simulator's underlying)."""
        return self._env._add_security(Symbol.create(ticker, SecurityType.INDEX, Market.USA))

    def add_index_option_contract(self, symbol: Symbol, *_args: Any, **_kwargs: Any) -> Security:
        """Subscribe one index option contract."""
        return self._env._add_security(symbol)

    def add_option_contract(self, symbol: Symbol, *_args: Any, **_kwargs: Any) -> Security:
        """Subscribe one equity option contract."""
        return self._env._add_security(symbol)

    def log(self, message: str) -> None:
        """Record a log line."""
        if message:
            self.logs.append(str(message))
            self._output("log", str(message))

    def debug(self, message: str) -> None:
        """Record a debug line (LEAN drops an empty one or a repeat of the previous one)."""
        if message and (not self.debugs or self.debugs[-1] != message):
            self.debugs.append(str(message))
            self._output("debug", str(message))

    def error(self, message: str) -> None:
        """Record an error line."""
        self.errors.append(str(message))
        self._output("error", str(message))

    def _output(self, level: str, message: str) -> None:
        when = self.time if self._standin is not None else None
        self.output.append(LogLine(when, level, message))

    # -- orders ---------------------------------------------------------------------------------

    def combo_limit_order(self, legs: list[Leg], quantity: int, limit_price: float, asynchronous: bool = False,
                          tag: str = "", order_properties: Any = None) -> list[OrderTicket]:
        """One combo limit order: ``limit_price`` is the signed net per unit (positive = debit)."""
        if float(limit_price) == 0:
            raise ValueError("ArgumentException: ComboLimitOrder requires a non-zero limit price")
        if any(leg.order_price is not None and leg.order_price != 0 for leg in legs):
            raise ValueError("ArgumentException: ComboLimitOrder does not take leg limit prices")
        return self._env._submit_combo(legs, int(quantity), float(limit_price), OrderType.COMBO_LIMIT, tag)

    def combo_market_order(self, legs: list[Leg], quantity: int, asynchronous: bool = False, tag: str = "",
                           order_properties: Any = None) -> list[OrderTicket]:
        """One combo market order (refused under the TastyTrade brokerage model)."""
        return self._env._submit_combo(legs, int(quantity), None, OrderType.COMBO_MARKET, tag)

    def buy(self, strategy: OptionStrategy, quantity: int, asynchronous: bool = False, tag: str = "",
            order_properties: Any = None) -> list[OrderTicket]:
        """``buy(strategy, quantity)``: a combo **market** order of the strategy's legs."""
        return self.combo_market_order(list(strategy.legs), abs(int(quantity)), tag=tag)

    def sell(self, strategy: OptionStrategy, quantity: int, asynchronous: bool = False, tag: str = "",
             order_properties: Any = None) -> list[OrderTicket]:
        """``sell(strategy, quantity)``: the reversed combo market order."""
        return self.combo_market_order(list(strategy.legs), -abs(int(quantity)), tag=tag)

    def limit_order(self, symbol: Symbol, quantity: float, limit_price: float, asynchronous: bool = False,
                    tag: str = "", order_properties: Any = None) -> OrderTicket:
        """One limit order (signed contracts)."""
        return self._env._submit_single(symbol, float(quantity), float(limit_price), tag)

    def market_order(self, symbol: Symbol, quantity: float, asynchronous: bool = False, tag: str = "",
                     order_properties: Any = None) -> OrderTicket:
        """One market order (signed contracts)."""
        return self._env._submit_single(symbol, float(quantity), None, tag)


# ---------------------------------------------------------------------------------------------
# The engine


@attrs.define
class _SimOrder:
    """One simulator order: the LEAN order ids it carries and what is pending on it."""

    ref: str
    order_ids: list[int]
    units: dict[int, int]  # LEAN order id -> signed contracts per simulator unit
    combo: bool
    price_sign: int  # simulator price = LEAN limit x price_sign (combos); legs: positive
    cancel_sent: bool = False
    prior_status: dict[int, OrderStatus] = attrs.field(factory=dict)


class LeanStandIn:
    """Runs a stand-in :class:`QCAlgorithm` against a :class:`BrokerSimulator` (see the module doc)."""

    def __init__(
        self,
        algorithm: QCAlgorithm,
        broker: BrokerSimulator,
        *,
        live_mode: bool = False,
        drop_fills_after_close: bool = False,
        request_delay: float = 1.0,
        fill_during_update: bool = False,
        reverse_leg_events: bool = False,
    ) -> None:
        self.algorithm = algorithm
        self.broker = broker
        self.live_mode = live_mode
        self.drop_fills_after_close = drop_fills_after_close
        #: A fill arriving while an update is in flight is reported on the UPDATE_SUBMITTED event
        #: confirming the update, and the completion as FILLED with fill quantity 0 (a plugin shape).
        self.fill_during_update = fill_during_update
        #: A combo's leg fill events arrive one leg per batch, last leg first (a live plugin
        #: reporting legs separately); default: one batch in leg order, as LEAN's combo fills.
        self.reverse_leg_events = reverse_leg_events
        #: Cancel/update requests are processed this long after they are made (LEAN: next time step).
        self.request_delay = request_delay
        self.securities = SecurityManager()
        self.portfolio = SecurityPortfolioManager(self.securities)
        self.transactions = SecurityTransactionManager(self)
        self.schedule = ScheduleManager(self)
        self.symbols = SymbolMapper(STAND_IN_API)
        self._tickets: dict[int, OrderTicket] = {}
        self._next_id = 0
        self._next_group = 0
        self._sim: dict[str, _SimOrder] = {}
        self._sim_of: dict[int, _SimOrder] = {}
        self._event_ids: dict[int, int] = {}
        self._requests: list[tuple[float, int, str, int, UpdateOrderFields | None]] = []
        self._req_seq = 0
        self._pending_update: dict[int, UpdateOrderFields] = {}
        self._cancel_wanted: set[int] = set()
        self._schedules: list[tuple[_DateRule, _TimeRule, Callable[[], Any]]] = []
        self._timers: list[tuple[float, int, int]] = []
        self._timer_seq = 0
        #: Today's session is the first one of its calendar week in this run (``week_start`` fires).
        self._week_start = True
        #: Every order the stand-in ever sent to the simulator, in order.
        self.sent: list[OrderRequest] = []
        #: Every ``ticket.cancel()`` call, accepted or refused.
        self.cancel_calls = 0
        #: Fills dropped after the order closed (only with ``drop_fills_after_close``).
        self.dropped_fills: list[tuple[int, Fill]] = []
        self.events: list[OrderEvent] = []
        algorithm._standin = self
        algorithm.initialize()

    # -- clock ----------------------------------------------------------------------------------

    @property
    def seconds(self) -> float:
        """Simulated seconds since the session open."""
        return self.broker.clock.seconds

    def next_time(self) -> float | None:
        """When something next happens: a broker event, a queued request or a scheduled callback."""
        times = [t for t in (self.broker.next_event_time(),) if t is not None]
        if self._requests:
            times.append(self._requests[0][0])
        if self._timers:
            times.append(self._timers[0][0])
        return min(times) if times else None

    def step(self, until: float) -> bool:
        """Move to the next happening (not beyond ``until``) and process it; False when idle."""
        nxt = self.next_time()
        if nxt is None or nxt > until:
            self.broker.advance_to(until)
            self._deliver()
            return False
        self.broker.advance_to(max(nxt, self.seconds))
        self._process_requests()
        self._deliver()
        self._fire_timers()
        return True

    def run_until(self, seconds: float, *, stop: Callable[[], bool] | None = None,
                  max_steps: int = 1_000_000) -> None:
        """Run until ``seconds`` (or until ``stop()`` is true)."""
        for _ in range(max_steps):
            if stop is not None and stop():
                return
            if not self.step(seconds):
                return

    # -- trading days ---------------------------------------------------------------------------

    @property
    def session_date(self) -> dt.date:
        """Today's trading day: the New York date of the current session's open."""
        return self.broker.market.session_open.astimezone(NEW_YORK).date()

    def run_session(self, *, after_close: float = AFTER_CLOSE_SECONDS, stop: Callable[[], bool] | None = None) -> None:
        """Run today's session through its close and ``after_close`` seconds beyond.

        Day orders expire at the close; the time after it lets their events arrive and scheduled
        callbacks (an executor's poll) finish what they started.
        """
        self.run_until(max(self.seconds, self.broker.session_seconds + after_close), stop=stop)

    def next_session(self, broker: BrokerSimulator | None = None) -> BrokerSimulator:
        """Finish today (:meth:`run_session`) and open the next trading day on ``broker``.

        Without ``broker`` the next weekday's is :func:`next_session_broker` of today's (weekends
        skipped, holidays ignored). What LEAN keeps across days is kept: tickets, orders,
        securities and the portfolio's holdings (expired contracts are not settled: they stay
        held). Each simulated broker is one session, so an order still open after today's close
        (only a non-day order can be) ends ``CANCELED`` as expired. Scheduled events are armed
        again for the new day by their date rules. Raises ``ValueError`` for a ``broker`` whose
        session does not open after today's.
        """
        today = self.session_date
        if broker is None:
            broker = next_session_broker(self.broker)
        day = broker.market.session_open.astimezone(NEW_YORK).date()
        if day <= today:
            raise ValueError(f"broker session date {day}: must be after today's session ({today})")
        self.run_session()
        leftover: list[OrderEvent] = []
        for ticket in self._tickets.values():
            if ticket.order_id > 0 and ticket._order.status not in _CLOSED:
                ticket._order.status = OrderStatus.CANCELED
                leftover.append(self._event(ticket, OrderStatus.CANCELED, message="The order has expired."))
        self._dispatch(leftover)
        self._requests.clear()
        self._pending_update.clear()
        self._timers.clear()
        self._week_start = day.isocalendar()[:2] != today.isocalendar()[:2]
        self.broker = broker
        for index, (date_rule, time_rule, _callback) in enumerate(self._schedules):
            first = self._first_fire(time_rule)
            if first is not None and self._date_ok(date_rule):
                self._push_timer(first, index)
        return broker

    # -- securities -----------------------------------------------------------------------------

    def _add_security(self, symbol: Symbol) -> Security:
        security = self.securities.get(symbol)
        if security is None:
            security = Security(self, symbol)
            self.securities[symbol] = security
        return security

    def _option(self, symbol: Symbol) -> OptionSymbol:
        return self.symbols.from_lean(cast(Any, symbol))

    def _quote(self, symbol: Symbol) -> tuple[float, float]:
        if symbol.id.security_type in (SecurityType.INDEX, SecurityType.EQUITY):
            spot = round(self.broker.market.spot(self.seconds), 2)
            return spot, spot
        quote = self.broker.quote(self._option(symbol))
        return float(quote.bid), float(quote.ask)

    # -- submission -----------------------------------------------------------------------------

    def _new_order(self, symbol: Symbol, quantity: float, kind: OrderType, tag: str, limit: float | None,
                   group: GroupOrderManager | None) -> OrderTicket:
        self._next_id += 1
        order = Order(self._next_id, symbol, quantity, kind, tag, self.algorithm.utc_time, limit, OrderStatus.NEW,
                      group)
        ticket = OrderTicket(self, order)
        self._tickets[order.id] = ticket
        self._add_security(symbol)
        if group is not None:
            group.order_ids.append(order.id)
        return ticket

    def _refused_ticket(self, symbol: Symbol, quantity: float, kind: OrderType, tag: str, message: str) -> OrderTicket:
        order = Order(-10, symbol, quantity, kind, tag, self.algorithm.utc_time)
        ticket = OrderTicket(self, order)
        ticket._status_override = OrderStatus.INVALID
        self.algorithm.error(message)
        return ticket

    def _submit_combo(self, legs: list[Leg], quantity: int, limit: float | None, kind: OrderType,
                      tag: str) -> list[OrderTicket]:
        if not legs:
            raise ValueError("ArgumentException: a combo order needs legs")
        if math.gcd(*(abs(leg.quantity) for leg in legs)) != 1:
            raise ValueError("ArgumentException: the greatest common divisor of the leg quantities must be 1")
        if quantity == 0:
            return [self._refused_ticket(legs[0].symbol, 0, kind, tag, "Order quantity must not be zero")]
        self._next_group += 1
        group = GroupOrderManager(self._next_group, len(legs), quantity, limit or 0.0)
        tickets = [self._new_order(leg.symbol, float(leg.quantity * quantity), kind, tag, limit, group)
                   for leg in legs]
        if kind is OrderType.COMBO_MARKET and self.algorithm.brokerage_name is BrokerageName.TASTYTRADE:
            self._invalidate(tickets, "BrokerageModelRefusedToSubmitOrder: the Tastytrade brokerage model does not "
                                      "support ComboMarket orders")
            return tickets
        sign = 1 if quantity > 0 else -1
        core_legs = []
        units: dict[int, int] = {}
        for leg, ticket in zip(legs, tickets, strict=True):
            signed = leg.quantity * sign
            core_legs.append(CoreLeg(self._option(leg.symbol), Side.BUY if signed > 0 else Side.SELL, abs(signed)))
            units[ticket.order_id] = signed
        price = None if limit is None else Decimal(repr(limit)) * sign
        self._send(tickets, tuple(core_legs), abs(quantity), price, units, combo=True, price_sign=sign, tag=tag)
        return tickets

    def _submit_single(self, symbol: Symbol, quantity: float, limit: float | None, tag: str) -> OrderTicket:
        kind = OrderType.MARKET if limit is None else OrderType.LIMIT
        if quantity == 0 or quantity != int(quantity):
            return self._refused_ticket(symbol, quantity, kind, tag, f"Order quantity {quantity} is not allowed")
        ticket = self._new_order(symbol, quantity, kind, tag, limit, None)
        sign = 1 if quantity > 0 else -1
        leg = CoreLeg(self._option(symbol), Side.BUY if sign > 0 else Side.SELL, 1)
        price = None if limit is None else abs(Decimal(repr(limit)))
        self._send([ticket], (leg,), int(abs(quantity)), price, {ticket.order_id: sign}, combo=False, price_sign=1,
                   tag=tag)
        return ticket

    def _send(self, tickets: list[OrderTicket], legs: tuple[CoreLeg, ...], quantity: int, price: Decimal | None,
              units: dict[int, int], *, combo: bool, price_sign: int, tag: str) -> None:
        ref = tag if tag and tag not in self._sim else f"LEAN{tickets[0].order_id}"
        sim = _SimOrder(ref, [t.order_id for t in tickets], units, combo, price_sign)
        try:
            request = OrderRequest(ref, ref, Purpose.ENTRY, legs, quantity,
                                   CoreOrderType.MARKET if price is None else CoreOrderType.LIMIT, price)
        except Exception as err:  # an order the simulated broker cannot represent
            self._invalidate(tickets, f"Order Error: {err}")
            return
        self._sim[ref] = sim
        for t in tickets:
            self._sim_of[t.order_id] = sim
            t._order.broker_id.append(ref)
        self.sent.append(request)
        try:
            self.broker.submit(request)
        except SubmissionRefused as err:
            self._invalidate(tickets, f"Place Order Event: {err.reason}")
        except SubmissionOutcomeUnknown:
            if self.broker.order_status(ref) is None:
                self._invalidate(tickets, "Place Order Event: brokerage unreachable")

    def _invalidate(self, tickets: list[OrderTicket], message: str) -> None:
        batch = []
        for t in tickets:
            t._order.status = OrderStatus.INVALID
            batch.append(self._event(t, OrderStatus.INVALID, message=message))
        self._dispatch(batch)

    # -- events ---------------------------------------------------------------------------------

    def _event(self, ticket: OrderTicket, status: OrderStatus, *, fill_qty: float = 0.0, fill_price: float = 0.0,
               message: str = "") -> OrderEvent:
        order = ticket._order
        n = self._event_ids.get(order.id, 0) + 1
        self._event_ids[order.id] = n
        event = OrderEvent(order.id, n, order.symbol, self.algorithm.utc_time, status, order.direction,
                           order.quantity, fill_price, fill_qty, message,
                           order.limit_price if order.type in (OrderType.LIMIT, OrderType.COMBO_LEG_LIMIT) else None,
                           ticket=ticket)
        ticket._add(event)
        if fill_qty and status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
            # LEAN's portfolio takes fills from fill statuses only (HandleOrderEvents ->
            # Portfolio.ProcessFills); the ticket counts every non-zero fill quantity (AddOrderEvent)
            holding = self.securities[order.symbol].holdings
            new_qty = holding.quantity + fill_qty
            if new_qty == 0:
                holding.average_price = 0.0
            elif holding.quantity == 0 or (holding.quantity > 0) == (fill_qty > 0):
                holding.average_price = (abs(holding.quantity) * holding.average_price
                                         + abs(fill_qty) * fill_price) / abs(new_qty)
            holding.quantity = new_qty
        return event

    def _dispatch(self, batch: Iterable[OrderEvent]) -> None:
        """State is already updated for the whole batch; now the callbacks, in order."""
        for event in batch:
            self.events.append(event)
            if event.status is not OrderStatus.NONE:
                self.algorithm.on_order_event(event)

    def _deliver(self) -> None:
        for be in self.broker.poll_events():
            sim = self._sim.get(be.order_ref)
            if sim is None:
                continue
            tickets = [self._tickets[i] for i in sim.order_ids]
            event = be.event
            batch: list[OrderEvent] = []
            if isinstance(event, Acknowledged):
                for t in tickets:
                    if t._order.status is OrderStatus.NEW:
                        t._order.status = OrderStatus.SUBMITTED
                        batch.append(self._event(t, OrderStatus.SUBMITTED))
            elif isinstance(event, Rejected):
                for t in tickets:
                    if t._order.status not in (OrderStatus.FILLED, OrderStatus.CANCELED):
                        t._order.status = OrderStatus.INVALID
                        batch.append(self._event(t, OrderStatus.INVALID, message=event.reason))
            elif isinstance(event, Fill):
                batches = self._fill(sim, tickets, event)
                for part in batches[:-1]:
                    self._dispatch(part)
                batch = batches[-1] if batches else []
            elif isinstance(event, (Canceled, Expired)):
                message = "The order has expired." if isinstance(event, Expired) else ""
                for t in tickets:
                    if t._order.status not in _CLOSED:
                        t._order.status = OrderStatus.CANCELED
                        batch.append(self._event(t, OrderStatus.CANCELED, message=message))
            elif isinstance(event, CancelRejected):
                # LEAN: the brokerage could not cancel; the status falls back silently (no event)
                for t in tickets:
                    prior = sim.prior_status.pop(t.order_id, None)
                    if prior is not None and t._order.status is OrderStatus.CANCEL_PENDING:
                        t._order.status = prior
                sim.cancel_sent = False
                for t in tickets:
                    self._refuse_cancel(t, OrderResponseErrorCode.BROKERAGE_FAILED_TO_CANCEL_ORDER,
                                        f"Brokerage failed to cancel order with id {t.order_id}")
            elif isinstance(event, Updated):
                for t in tickets:
                    fields = self._pending_update.pop(t.order_id, None)
                    if fields is not None:
                        self._apply_update(sim, t, fields)
                        batch.append(self._event(t, OrderStatus.UPDATE_SUBMITTED))
            elif isinstance(event, UpdateRejected):
                for t in tickets:
                    if self._pending_update.pop(t.order_id, None) is not None:
                        batch.append(self._event(t, t._order.status,
                                                 message=f"Brokerage failed to update order: {event.reason}"))
            self._dispatch(batch)

    def _fill(self, sim: _SimOrder, tickets: list[OrderTicket], fill: Fill) -> list[list[OrderEvent]]:
        """The event batches one simulator fill gives (one batch; one per leg with ``reverse_leg_events``)."""
        prices = self._leg_prices(sim, tickets, fill.price)
        legs = list(zip(tickets, prices, strict=True))
        split = sim.combo and self.reverse_leg_events
        if split:
            legs.reverse()
        batches: list[list[OrderEvent]] = []
        batch: list[OrderEvent] = []
        for t, price in legs:
            order = t._order
            qty = float(sim.units[t.order_id] * fill.quantity)
            if order.status in (OrderStatus.CANCELED, OrderStatus.INVALID) and self.drop_fills_after_close:
                self.dropped_fills.append((order.id, fill))
                continue
            done = abs(t.quantity_filled + qty) >= abs(order.quantity)
            fields = self._pending_update.pop(order.id, None) if self.fill_during_update else None
            if fields is not None:
                # a plugin confirming the in-flight update reports the fill on UPDATE_SUBMITTED, and
                # the completion as FILLED with fill quantity 0 (the fill was already reported)
                self._apply_update(sim, t, fields)
                order.status = OrderStatus.UPDATE_SUBMITTED
                batch.append(self._event(t, OrderStatus.UPDATE_SUBMITTED, fill_qty=qty, fill_price=float(price)))
                if done:
                    order.status = OrderStatus.FILLED
                    batch.append(self._event(t, OrderStatus.FILLED))
            else:
                order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
                batch.append(self._event(t, order.status, fill_qty=qty, fill_price=float(price)))
            if split:
                batches.append(batch)
                batch = []
        if batch or not batches:
            batches.append(batch)
        return batches

    def _leg_prices(self, sim: _SimOrder, tickets: list[OrderTicket], net: Decimal) -> list[Decimal]:
        """Per-leg prices whose signed sum per unit is exactly the simulator's net price."""
        if not sim.combo:
            return [net]
        ratios = [sim.units[t.order_id] for t in tickets]
        mids = []
        for t in tickets:
            q = self.broker.quote(self._option(t.symbol))
            mids.append(max(((q.bid + q.ask) / 2).quantize(Decimal("0.01")), Decimal("0.01")))
        # adjust one leg with ratio +-1 so that sum(ratio x price) == net, keeping prices positive
        for i in sorted(range(len(ratios)), key=lambda k: -mids[k]):
            if abs(ratios[i]) != 1:
                continue
            rest = sum((r * m for j, (r, m) in enumerate(zip(ratios, mids, strict=True)) if j != i), Decimal(0))
            candidate = (net - rest) * ratios[i]
            if candidate > 0:
                return [candidate if j == i else m for j, m in enumerate(mids)]
        raise RuntimeError(f"cannot split net {net} over legs {ratios} at mids {mids}")

    # -- cancel / update ------------------------------------------------------------------------

    def _request_cancel(self, ticket: OrderTicket, tag: str | None = None) -> OrderResponse:
        order = ticket._order
        codes = OrderResponseErrorCode
        self.cancel_calls += 1
        if order.id < 0:
            return OrderResponse(order.id, codes.UNABLE_TO_FIND_ORDER, "Unable to locate order")
        existing = ticket.cancel_request
        if existing is not None and not existing.response.is_error:
            # OrderTicket.Cancel: a cancel request that did not fail is never sent twice
            return OrderResponse(order.id, codes.REQUEST_CANCELED,
                                 f"Order {order.id} has already received a cancellation request.")
        request = CancelOrderRequest(order.id, tag, OrderResponse(order.id))
        ticket.cancel_request = request  # TrySetCancelRequest: kept on the ticket, refused or not
        if tag is not None:
            order.tag = tag  # CancelOrder: the cancel's tag replaces the order's
        if order.status is OrderStatus.NEW:
            request.response = OrderResponse(
                order.id, codes.INVALID_NEW_ORDER_STATUS,
                "the order has not been submitted yet: submit confirmation has not been received")
            return request.response
        if order.status in _CLOSED:
            request.response = self._closed_response(order)
            return request.response
        sim = self._sim_of[order.id]
        sim.prior_status[order.id] = order.status
        order.status = OrderStatus.CANCEL_PENDING
        self._queue(order.id, "cancel", None)
        # LEAN emits CancelPending synchronously, inside cancel()
        self._dispatch([self._event(ticket, OrderStatus.CANCEL_PENDING)])
        return request.response

    @staticmethod
    def _closed_response(order: Order) -> OrderResponse:
        """LEAN's ``OrderResponse.InvalidStatus`` (-9) for an order that is already closed."""
        return OrderResponse(order.id, OrderResponseErrorCode.INVALID_ORDER_STATUS,
                             f"Unable to update order with id {order.id} because it already has "
                             f"{order.status.name} status.")

    def _refuse_cancel(self, ticket: OrderTicket, code: OrderResponseErrorCode, message: str) -> None:
        """A processed cancel request ends in an error: its response is replaced (no order event)."""
        if ticket.cancel_request is not None and not ticket.cancel_request.response.is_error:
            ticket.cancel_request.response = OrderResponse(ticket.order_id, code, message)

    def brokerage_events(self, events: Iterable[BrokerageOrderEvent]) -> list[OrderEvent]:
        """Apply one batch of brokerage order events as LEAN's transaction handler does, then call back.

        For tests of shapes the simulated broker does not produce (a plugin's per-leg order, a
        fill on any status, a ``NONE`` event): each event's status is copied onto its order (an
        ``INVALID`` never overwrites ``FILLED``/``CANCELED``), the ticket counts any non-zero fill
        quantity, the portfolio only fills of ``PARTIALLY_FILLED``/``FILLED`` events; then
        ``on_order_event`` runs for every event whose status is not ``NONE``. The simulated broker
        is not told.
        """
        batch: list[OrderEvent] = []
        for spec in events:
            ticket = self._tickets[int(spec.order_id)]
            order = ticket._order
            if not (spec.status is OrderStatus.INVALID and order.status in (OrderStatus.FILLED, OrderStatus.CANCELED)):
                order.status = spec.status
            batch.append(self._event(ticket, spec.status, fill_qty=float(spec.fill_quantity),
                                     fill_price=float(spec.fill_price), message=spec.message))
        self._dispatch(batch)
        return batch

    def _request_update(self, ticket: OrderTicket, fields: UpdateOrderFields) -> OrderResponse:
        order = ticket._order
        codes = OrderResponseErrorCode
        only_tag = fields.quantity is None and fields.limit_price is None and fields.tag is not None
        if order.id < 0:
            return OrderResponse(order.id, codes.UNABLE_TO_FIND_ORDER, "Unable to locate order")
        if order.status is OrderStatus.NEW:
            return OrderResponse(order.id, codes.INVALID_NEW_ORDER_STATUS, "submit confirmation not received yet")
        if order.status in _CLOSED and not only_tag:
            return OrderResponse(order.id, codes.INVALID_ORDER_STATUS,
                                 f"Unable to update order with id {order.id} because it already has "
                                 f"{order.status.name} status.")
        if fields.quantity is not None and float(fields.quantity) == 0:
            return OrderResponse(order.id, codes.ORDER_QUANTITY_ZERO, "quantity must not be zero")
        if fields.tag is not None:
            order.tag = fields.tag
        if only_tag:
            return OrderResponse(order.id)
        ticket.update_requests.append(fields)
        self._pending_update[order.id] = fields
        self._queue(order.id, "update", fields)
        return OrderResponse(order.id)

    def _queue(self, order_id: int, kind: str, fields: UpdateOrderFields | None) -> None:
        self._req_seq += 1
        heapq.heappush(self._requests, (self.seconds + self.request_delay, self._req_seq, kind, order_id, fields))

    def _process_requests(self) -> None:
        now = self.seconds
        while self._requests and self._requests[0][0] <= now:
            _, _, kind, order_id, fields = heapq.heappop(self._requests)
            sim = self._sim_of[order_id]
            if kind == "cancel":
                self._process_cancel(sim, order_id)
            elif fields is not None:
                self._process_update(sim, order_id, fields)

    def _all_legs_asked(self, sim: _SimOrder, asked: Callable[[int], bool]) -> bool:
        return all(asked(i) or self._tickets[i]._order.status in _CLOSED for i in sim.order_ids)

    def _cancel_asked(self, order_id: int) -> bool:
        request = self._tickets[order_id].cancel_request
        return request is not None and not request.response.is_error

    def _process_cancel(self, sim: _SimOrder, order_id: int) -> None:
        ticket = self._tickets[order_id]
        if ticket._order.status in _CLOSED:
            # HandleCancelOrderRequest: the order closed while the request waited -> -9 on the
            # request's response, no order event
            self._refuse_cancel(ticket, OrderResponseErrorCode.INVALID_ORDER_STATUS, self._closed_response(
                ticket._order).error_message)
            return
        if sim.cancel_sent:
            return
        if self.live_mode and not self._all_legs_asked(sim, self._cancel_asked):
            return  # TastyTrade plugin: nothing is sent until every leg of the combo asked
        try:
            self.broker.cancel(sim.ref)
        except BrokerUnavailable:
            # LEAN -8: the status falls back silently, no event
            for i in sim.order_ids:
                t = self._tickets[i]
                prior = sim.prior_status.pop(i, None)
                if prior is not None and t._order.status is OrderStatus.CANCEL_PENDING:
                    t._order.status = prior
                    self._refuse_cancel(t, OrderResponseErrorCode.BROKERAGE_FAILED_TO_CANCEL_ORDER,
                                        f"Brokerage failed to cancel order with id {i}")
            return
        sim.cancel_sent = True

    def _process_update(self, sim: _SimOrder, order_id: int, fields: UpdateOrderFields) -> None:
        if self.live_mode and not self._all_legs_asked(sim, lambda i: i in self._pending_update):
            return
        ticket = self._tickets[order_id]
        order = ticket._order
        limit = fields.limit_price if fields.limit_price is not None else order.limit_price
        if limit is None:
            self._pending_update.pop(order_id, None)
            self._dispatch([self._event(ticket, order.status, message="Brokerage failed to update order: no limit")])
            return
        if sim.combo:
            price = Decimal(repr(float(limit))) * sim.price_sign
            quantity = None if fields.quantity is None else abs(int(float(fields.quantity)))
        else:
            price = abs(Decimal(repr(float(limit))))
            quantity = None if fields.quantity is None else abs(int(float(fields.quantity)))
        try:
            self.broker.replace(sim.ref, price, quantity)
        except BrokerUnavailable as err:
            for i in sim.order_ids:
                if self._pending_update.pop(i, None) is not None:
                    t = self._tickets[i]
                    self._dispatch([self._event(t, t._order.status,
                                                message=f"Brokerage failed to update order: {err}")])
            return
        # further legs of the same combo asked in this step: one replace covers them
        for _, _, kind, other, _f in list(self._requests):
            if kind == "update" and other in sim.order_ids and other != order_id:
                self._requests = [r for r in self._requests if r[3] != other or r[2] != "update"]
                heapq.heapify(self._requests)

    def _apply_update(self, sim: _SimOrder, ticket: OrderTicket, fields: UpdateOrderFields) -> None:
        order = ticket._order
        if fields.limit_price is not None:
            order.limit_price = float(fields.limit_price)
            if order.group_order_manager is not None:
                order.group_order_manager.limit_price = float(fields.limit_price)
        if fields.quantity is not None:
            if sim.combo and order.group_order_manager is not None:
                # LEAN: a combo leg's update quantity is the *group* quantity
                group = order.group_order_manager
                group.quantity = int(float(fields.quantity))
                order.quantity = float(sim.units[order.id] * abs(group.quantity))
            else:
                order.quantity = float(fields.quantity)

    # -- scheduling -----------------------------------------------------------------------------

    def _add_schedule(self, date_rule: _DateRule, time_rule: _TimeRule, callback: Callable[[], Any]) -> None:
        index = len(self._schedules)
        self._schedules.append((date_rule, time_rule, callback))
        first = self._first_fire(time_rule)
        if first is not None and self._date_ok(date_rule):
            self._push_timer(first, index)

    def _session_seconds_of(self, local: dt.time) -> float:
        open_utc = self.broker.market.session_open
        day = open_utc.astimezone(NEW_YORK).date()
        when = dt.datetime.combine(day, local, tzinfo=NEW_YORK)
        return (when - open_utc).total_seconds()

    def _first_fire(self, rule: _TimeRule) -> float | None:
        if rule.kind == "at" and rule.at is not None:
            t = self._session_seconds_of(rule.at)
            return t if t >= self.seconds else None
        if rule.every is not None:
            step = rule.every.total_seconds()
            return (math.floor(self.seconds / step) + 1) * step
        return None

    def _date_ok(self, rule: _DateRule) -> bool:
        """``every_day`` fires on every session; ``week_start`` on the first session of a week."""
        return rule.kind == "every_day" or (rule.kind == "week_start" and self._week_start)

    def _push_timer(self, when: float, index: int) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, index))

    def _fire_timers(self) -> None:
        now = self.seconds
        while self._timers and self._timers[0][0] <= now:
            _, _, index = heapq.heappop(self._timers)
            _date_rule, time_rule, callback = self._schedules[index]
            if time_rule.every is not None:
                self._push_timer(now + time_rule.every.total_seconds(), index)
            callback()


def next_session_broker(broker: BrokerSimulator) -> BrokerSimulator:
    """A simulated broker for the weekday after ``broker``'s session (weekends skipped, holidays ignored).

    Same chaos profile, session length, market parameters and time of the open (New York); the
    underlying starts where today's closed; the seed is derived from today's seed and the new date,
    so a run of days is reproducible from its first seed.
    """
    market = broker.market
    opened = market.session_open.astimezone(NEW_YORK)
    day = opened.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    session_open = dt.datetime.combine(day, opened.time(), tzinfo=NEW_YORK)
    seed = derive_seed(broker.seed, f"lean.session.{day.isoformat()}")
    next_market = MarketModel(
        seed, session_open=session_open, session_seconds=market.session_seconds, underlying=market.underlying,
        root=market.root, spot=market.spot(market.session_seconds), annual_vol=market.annual_vol, rate=market.rate,
        step_seconds=market.step_seconds, drift=market.drift, strike_step=market.strike_step,
        base_half_spread=market.base_half_spread, spread_price_frac=market.spread_price_frac,
        spread_moneyness=market.spread_moneyness, default_dte=market.default_dte,
    )
    return BrokerSimulator(seed, broker.profile, next_market, session_seconds=broker.session_seconds,
                           event_log=broker.event_log_enabled)


def _api() -> LeanApi:
    namespace: Any = {
        "Symbol": Symbol, "Leg": Leg, "UpdateOrderFields": UpdateOrderFields, "OrderStatus": OrderStatus,
        "OrderResponseErrorCode": OrderResponseErrorCode, "SecurityType": SecurityType, "OptionRight": OptionRight,
        "OptionStyle": OptionStyle, "Market": Market,
    }
    return LeanApi(**namespace)


#: The stand-in's classes as the namespace the QuantConnect backend uses.
STAND_IN_API: LeanApi = _api()
QCAlgorithm.lean_stand_in_api = STAND_IN_API
