"""The stand-in's ``QCAlgorithm``: the algorithm base class, its log lines and its schedules.

An algorithm subclasses :class:`QCAlgorithm` as it would LEAN's and is attached to a
:class:`~atomic_orders.simulator.lean.brokerage.LeanStandIn`, which runs it; ``date_rules``,
``time_rules`` and ``schedule.on`` are LEAN's scheduling API (New York time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from atomic_orders.backends.quantconnect.lean_api import LeanApi
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.lean.api import STAND_IN_API
from atomic_orders.simulator.lean.lean_types import (
    BrokerageName,
    Leg,
    Market,
    OptionStrategy,
    OrderEvent,
    OrderTicket,
    OrderType,
    PascalCase,
    Security,
    SecurityManager,
    SecurityPortfolioManager,
    SecurityTransactionManager,
    SecurityType,
    Symbol,
)

if TYPE_CHECKING:
    from atomic_orders.simulator.lean.brokerage import LeanStandIn

__all__ = ["HOOKS", "LogLine", "QCAlgorithm", "check_hooks"]

#: LEAN's algorithm time zone (US equity and index options): ``time`` and the time rules.
NEW_YORK = ZoneInfo("America/New_York")


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
class DateRule:
    """Which trading days a scheduled event fires on (what ``date_rules`` returns)."""

    kind: str  # every_day | week_start


@attrs.frozen
class TimeRule:
    """When in a trading day a scheduled event fires (what ``time_rules`` returns): ``at`` New York or ``every``."""

    kind: str  # at | every
    at: dt.time | None = None
    every: dt.timedelta | None = None


class DateRules(PascalCase):
    """LEAN's ``date_rules`` (every day; the first day of each week); ``EveryDay`` too."""

    def every_day(self, *_args: Any, **_kwargs: Any) -> DateRule:
        """Every trading day."""
        return DateRule("every_day")

    def week_start(self, *_args: Any, **_kwargs: Any) -> DateRule:
        """The first trading day of each week the stand-in runs (its first session counts; holidays ignored)."""
        return DateRule("week_start")


class TimeRules(PascalCase):
    """LEAN's ``time_rules`` (New York time); ``AfterMarketOpen`` too."""

    def at(self, hour: int, minute: int, second: int = 0) -> TimeRule:
        """At a wall-clock time, New York."""
        return TimeRule("at", at=dt.time(hour, minute, second))

    def after_market_open(self, _symbol: Any = None, minutes_after_open: float = 0, *_args: Any) -> TimeRule:
        """``minutes_after_open`` after 9:30 New York."""
        base = dt.datetime(2000, 1, 1, 9, 30) + dt.timedelta(minutes=float(minutes_after_open))
        return TimeRule("at", at=base.time())

    def before_market_close(self, _symbol: Any = None, minutes_before_close: float = 0, *_args: Any) -> TimeRule:
        """``minutes_before_close`` before 16:00 New York."""
        base = dt.datetime(2000, 1, 1, 16, 0) - dt.timedelta(minutes=float(minutes_before_close))
        return TimeRule("at", at=base.time())

    def every(self, interval: dt.timedelta) -> TimeRule:
        """Repeatedly, every ``interval`` from the session open."""
        if interval <= dt.timedelta(0):
            raise ValueError(f"interval={interval!r}: must be positive")
        return TimeRule("every", every=interval)


class ScheduleManager(PascalCase):
    """LEAN's ``schedule``: ``on(date_rule, time_rule, callback)``."""

    def __init__(self, standin: LeanStandIn) -> None:
        self._standin = standin

    def on(self, date_rule: DateRule, time_rule: TimeRule, callback: Callable[[], Any]) -> None:
        """Register a scheduled event."""
        self._standin.add_schedule(date_rule, time_rule, callback)


# ---------------------------------------------------------------------------------------------
# The algorithm base class


#: The methods the stand-in calls on an algorithm, by the snake_case name current LEAN stubs give
#: them, with the PascalCase name classic QuantConnect Python overrides; LEAN's pythonnet binds both
#: (QuantConnect/pythonnet ClassManagerTests), looking the snake_case one up first.
HOOKS = {"initialize": "Initialize", "on_order_event": "OnOrderEvent"}


def check_hooks(cls: type[QCAlgorithm]) -> None:
    """Refuse an algorithm class that defines a hook under both names as two different methods.

    LEAN would call one and silently never the other. One name, or one aliasing the other
    (``Initialize = initialize``), is fine. Raises :class:`ValidationError` (field ``algorithm``,
    the class name) naming both methods.
    """
    for snake, pascal in HOOKS.items():
        mine, theirs = getattr(cls, snake), getattr(cls, pascal, None)
        if theirs is not None and mine is not getattr(QCAlgorithm, snake) and mine is not theirs:
            raise ValidationError("algorithm", cls.__name__, f"defines both {pascal} and {snake}, differently; LEAN "
                                                             f"calls only one of them: keep one")


class QCAlgorithm(PascalCase):
    """The stand-in's ``QCAlgorithm``: subclass it as you would LEAN's.

    Override ``initialize`` and ``on_order_event``, or classic QuantConnect's ``Initialize`` and
    ``OnOrderEvent`` (the stand-in calls whichever the class defines; :func:`check_hooks` refuses
    both, differently). Attach it to a :class:`LeanStandIn` (which calls ``initialize``) before use.
    """

    #: Marks the stand-in for :func:`atomic_orders.backends.quantconnect.lean_api.lean_api_for`.
    lean_stand_in_api: LeanApi = STAND_IN_API

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

    def attach_stand_in(self, standin: LeanStandIn) -> None:
        """Called by :class:`LeanStandIn` when it takes the algorithm (before ``initialize``)."""
        self._standin = standin

    # -- hooks ----------------------------------------------------------------------------------

    # Not overridden, each hook runs the class's PascalCase one, if any (a classic algorithm's).

    def initialize(self) -> None:
        """Override (or ``Initialize``): set up the algorithm."""
        self._pascal_hook("initialize")

    def on_order_event(self, order_event: OrderEvent) -> None:
        """Override (or ``OnOrderEvent``): called for every order event whose status is not ``NONE``."""
        self._pascal_hook("on_order_event", order_event)

    def _pascal_hook(self, snake: str, *args: Any) -> None:
        method = getattr(type(self), HOOKS[snake], None)  # on the class: PascalCase.__getattr__ would loop back
        if method is not None:
            method(self, *args)

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
        return self._env.add_security(Symbol.create(ticker, SecurityType.INDEX, Market.USA))

    def add_index_option_contract(self, symbol: Symbol, *_args: Any, **_kwargs: Any) -> Security:
        """Subscribe one index option contract."""
        return self._env.add_security(symbol)

    def add_option_contract(self, symbol: Symbol, *_args: Any, **_kwargs: Any) -> Security:
        """Subscribe one equity option contract."""
        return self._env.add_security(symbol)

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
        return self._env.submit_combo(legs, int(quantity), float(limit_price), OrderType.COMBO_LIMIT, tag)

    def combo_market_order(self, legs: list[Leg], quantity: int, asynchronous: bool = False, tag: str = "",
                           order_properties: Any = None) -> list[OrderTicket]:
        """One combo market order (refused under the TastyTrade brokerage model)."""
        return self._env.submit_combo(legs, int(quantity), None, OrderType.COMBO_MARKET, tag)

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
        return self._env.submit_single(symbol, float(quantity), float(limit_price), tag)

    def market_order(self, symbol: Symbol, quantity: float, asynchronous: bool = False, tag: str = "",
                     order_properties: Any = None) -> OrderTicket:
        """One market order (signed contracts)."""
        return self._env.submit_single(symbol, float(quantity), None, tag)
