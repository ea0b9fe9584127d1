"""TastytradeIntegrationAdapter: the one object a LEAN algorithm executes multi-leg orders through.

Created once in ``initialize``::

    self.adapter = TastytradeIntegrationAdapter(self)                 # backtest: LEAN's order API
    self.adapter = TastytradeIntegrationAdapter(self, tastytrade=TastytradeConfig(...),
                                                credentials=OAuthCredentials.from_env())  # live

It owns one :class:`~atomic_orders.fsm.executor.AtomicOrderExecutor` -- the only way an order leaves -- and picks
its backend:

=====================================  ========================================================
situation                              backend
=====================================  ========================================================
``backend=...`` given                  that one (paper trading, the TastyTrade emulator, tests)
``algorithm.live_mode`` and TastyTrade  :class:`~atomic_orders.backends.tastytrade.TastytradeBackend`: orders go
config + credentials                   straight to TastyTrade's API; quotes still come from
                                       LEAN's data feed
otherwise (backtest, or live without   :class:`~atomic_orders.backends.quantconnect.backend.QuantConnectBackend`:
TastyTrade credentials)                LEAN's own order API (LEAN routes to the brokerage the
                                       algorithm is deployed with)
=====================================  ========================================================

The algorithm forwards ``on_order_event`` to :meth:`on_order_event` and schedules :meth:`poll`
(the executor's timers and, live, the TastyTrade order monitor). LEAN calls ``on_order_event``
re-entrantly (inside ``combo_limit_order()``, ``ticket.cancel()``); such events are queued and the
executor is driven once the outer call returns, never re-entered.

In live TastyTrade mode LEAN's portfolio does not see orders placed at TastyTrade directly, so
:meth:`positions` asks the broker. LEAN order events in that mode belong to orders LEAN placed
itself (not through the executor): they are kept in :attr:`foreign_events` and alerted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from atomic_orders.backends.quantconnect.backend import LeanClock, QuantConnectBackend
from atomic_orders.backends.quantconnect.lean_api import LeanApi, lean_api_for
from atomic_orders.fsm.errors import AtomicOrdersError, ValidationError
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor, GroupSummary
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.symbol import OptionSymbol

if TYPE_CHECKING:
    from QuantConnect import Symbol
    from QuantConnect.Algorithm import QCAlgorithm
    from QuantConnect.Orders import OrderEvent

    from atomic_orders.backends.tastytrade.auth import OAuthCredentials
    from atomic_orders.backends.tastytrade.config import TastytradeConfig

__all__ = ["TastytradeIntegrationAdapter"]

log = logging.getLogger("atomic_orders.quantconnect")

#: Either a core symbol or a LEAN option Symbol.
AnySymbol = Any

_MAX_DRAIN_ROUNDS = 1000

_T = TypeVar("_T")


class TastytradeIntegrationAdapter:
    """Plugs the atomic executor into a LEAN algorithm (see the module docstring)."""

    def __init__(
        self,
        algorithm: QCAlgorithm,
        *,
        policy: ExecutionPolicy | None = None,
        mode: ExecutionMode = ExecutionMode.COMBO,
        tastytrade: TastytradeConfig | None = None,
        credentials: OAuthCredentials | None = None,
        backend: ExecutionBackend | None = None,
        lean: LeanApi | None = None,
        on_finished: Callable[[AtomicOrderGroup, GroupSummary], None] | None = None,
        log_outcomes: bool = True,
    ) -> None:
        self.algorithm = algorithm
        self.mode = mode
        self.lean = lean if lean is not None else lean_api_for(algorithm)
        self.user_on_finished = on_finished
        self.log_outcomes = log_outcomes
        #: LEAN's own side: symbols, quotes, and (backtest) orders.
        self.lean_backend = QuantConnectBackend(algorithm, self.lean)
        self.backend_kind: str
        chosen: ExecutionBackend
        if backend is not None:
            chosen, self.backend_kind = backend, "override"
        elif bool(algorithm.live_mode) and tastytrade is not None and credentials is not None:
            from atomic_orders.backends.tastytrade.backend import TastytradeBackend
            from atomic_orders.backends.tastytrade.client import TastytradeApiClient

            chosen = TastytradeBackend(TastytradeApiClient(tastytrade, credentials), clock=LeanClock(algorithm),
                                       quote_source=self.lean_backend.quote)
            self.backend_kind = "tastytrade"
        elif bool(algorithm.live_mode) and (tastytrade is not None or credentials is not None):
            missing = "tastytrade" if tastytrade is None else "credentials"  # name the one that is missing
            raise ValidationError(missing, None, "live TastyTrade routing needs both tastytrade= (config) and "
                                                 "credentials=; give both, or neither to route through LEAN")
        else:
            chosen, self.backend_kind = self.lean_backend, "quantconnect"
        self.backend = chosen
        self.executor = AtomicOrderExecutor(chosen, policy, clock=LeanClock(algorithm), on_finished=self._finished,
                                            on_alert=self._alert)
        self.outcomes: dict[str, str] = {}
        self._busy = False

    # -- the algorithm's entry points -------------------------------------------------------------

    def execute_iron_condor(
        self,
        *,
        short_call: AnySymbol,
        long_call: AnySymbol,
        short_put: AnySymbol,
        long_put: AnySymbol,
        quantity: int,
        limit_price: Decimal | None = None,
        mode: ExecutionMode | None = None,
    ) -> AtomicOrderGroup:
        """Sell an iron condor atomically, every leg by role (keyword-only); ``limit_price`` is the least
        credit per unit (positive). Roles the wrong way round (a short strike outside its long one)
        and every other bad input (``quantity``, ``limit_price``, ``mode``) raise
        :class:`ValidationError`; nothing is sent."""
        legs = [self._core(s, name) for s, name in ((short_call, "short_call"), (long_call, "long_call"),
                                                    (short_put, "short_put"), (long_put, "long_put"))]
        self._subscribe(legs)
        sc, lc, sp, lp = legs
        return self._drive(lambda: self.executor.execute_iron_condor(
            short_call=sc, long_call=lc, short_put=sp, long_put=lp, quantity=quantity, mode=mode or self.mode,
            limit_price=limit_price))

    def execute(self, group: AtomicOrderGroup) -> AtomicOrderGroup:
        """Execute any prepared group (its legs are subscribed in LEAN first when LEAN routes)."""
        self._subscribe([leg.symbol for leg in group.legs])
        return self._drive(lambda: self.executor.execute(group))

    def on_order_event(self, event: OrderEvent) -> None:
        """Forward of the algorithm's ``on_order_event``; safe to call re-entrantly."""
        if self.backend is self.lean_backend:
            foreign = len(self.foreign_events)
            self.lean_backend.on_order_event(event)
            if len(self.foreign_events) > foreign:
                self._alert(f"LEAN order event for an order placed around the executor: {event}")
            # Inside an executor call (or a LEAN order call made by the backend, e.g. a user's
            # ticket.cancel()), the event waits: the executor is never re-entered.
            if not self._busy and not self.lean_backend.in_lean_call:
                self._drive(lambda: None)
        else:
            # LEAN placed this order itself: it did not go through the executor. Kept and alerted.
            self.lean_backend.translator.foreign_events.append(event)
            self._alert(f"LEAN order event for an order placed around the executor: {event}")

    def poll(self) -> None:
        """Scheduled hook: apply broker events, run the executor's timers (price steps, deadlines)."""
        self._drive(self.executor.on_timer)

    def open_groups(self) -> list[AtomicOrderGroup]:
        """Groups still executing or rolling back."""
        return self.executor.open_groups()

    def positions(self) -> dict[OptionSymbol, int]:
        """Signed option positions from the broker (TastyTrade live) or LEAN's portfolio."""
        return dict(self.backend.positions())

    @property
    def foreign_events(self) -> list[OrderEvent]:
        """LEAN order events about orders the executor did not place."""
        return self.lean_backend.translator.foreign_events

    # -- internals --------------------------------------------------------------------------------

    def _core(self, symbol: AnySymbol, name: str) -> OptionSymbol:
        if isinstance(symbol, OptionSymbol):
            return symbol
        try:
            return self.lean_backend.symbols.from_lean(symbol)
        except ValidationError as err:
            raise ValidationError(name, err.value, err.reason) from None

    def _subscribe(self, symbols: list[OptionSymbol]) -> None:
        """LEAN needs a contract subscribed for quotes (and orders); add the ones missing."""
        algorithm = self.algorithm
        for option in symbols:
            lean_symbol: Symbol = self.lean_backend.symbols.to_lean(option)
            if algorithm.securities.contains_key(lean_symbol):
                continue
            if self.lean_backend.symbols.is_index(option):
                algorithm.add_index_option_contract(lean_symbol)
            else:
                algorithm.add_option_contract(lean_symbol)

    def _drive(self, action: Callable[[], _T]) -> _T:
        """Run ``action`` on the executor, then apply every event LEAN queued meanwhile."""
        if self._busy:
            raise AtomicOrdersError("the adapter was re-entered while driving the executor")
        self._busy = True
        try:
            result = action()
            for _ in range(_MAX_DRAIN_ROUNDS):
                self.executor.process_events()
                if not (self.backend is self.lean_backend and self.lean_backend.has_events()):
                    break
            return result
        finally:
            self._busy = False

    def _finished(self, group: AtomicOrderGroup, summary: GroupSummary) -> None:
        self.outcomes[group.group_id] = group.state
        if self.log_outcomes:
            failed = summary.state == "failed"
            residual = f" residual {summary.residual_exposure}" if failed and summary.residual_exposure else ""
            reason = f" ({summary.rollback_reason})" if summary.rollback_reason else ""
            self.algorithm.log(f"atomic group {group.group_id} {summary.strategy} x{summary.quantity}: "
                               f"{summary.state}{reason}{residual}")
        if self.user_on_finished is not None:
            self.user_on_finished(group, summary)

    def _alert(self, text: str) -> None:
        log.warning("ALERT: %s", text)
        self.algorithm.error(f"atomic-orders alert: {text}")
