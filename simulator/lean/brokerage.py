"""The stand-in's brokerage: :class:`LeanStandIn` runs a ``QCAlgorithm`` on the simulated broker -- NOT LEAN.

LEAN cannot run here, so the stand-in (this room) imitates, with LEAN's own names (snake_case, and PascalCase
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
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, cast

import attrs

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
from atomic_orders.simulator.lean.algorithm import (
    NEW_YORK,
    DateRule,
    QCAlgorithm,
    ScheduleManager,
    TimeRule,
    check_hooks,
)
from atomic_orders.simulator.lean.api import STAND_IN_API
from atomic_orders.simulator.lean.lean_types import (
    CLOSED,
    BrokerageName,
    CancelOrderRequest,
    GroupOrderManager,
    Leg,
    Order,
    OrderEvent,
    OrderResponse,
    OrderResponseErrorCode,
    OrderStatus,
    OrderTicket,
    OrderType,
    Security,
    SecurityManager,
    SecurityPortfolioManager,
    SecurityTransactionManager,
    SecurityType,
    Symbol,
    UpdateOrderFields,
)

__all__ = ["BrokerageOrderEvent", "LeanStandIn", "next_session_broker"]

#: :meth:`LeanStandIn.run_session` runs this long after the close (the close's events arrive).
AFTER_CLOSE_SECONDS = 1800.0


@attrs.frozen
class BrokerageOrderEvent:
    """One order event as a brokerage plugin raises it (input of :meth:`LeanStandIn.brokerage_events`)."""

    order_id: int
    status: OrderStatus
    fill_quantity: float = 0.0
    fill_price: float = 0.0
    message: str = ""


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
        self._schedules: list[tuple[DateRule, TimeRule, Callable[[], Any]]] = []
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
        check_hooks(type(algorithm))  # Initialize and initialize both, differently: which would LEAN run?
        algorithm.attach_stand_in(self)
        algorithm.initialize()  # or the class's Initialize (QCAlgorithm.initialize runs it)

    @property
    def tickets(self) -> Mapping[int, OrderTicket]:
        """Every ticket with an order, by LEAN order id (pre-check-refused tickets are not kept)."""
        return self._tickets

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
            if ticket.order_id > 0 and ticket.order.status not in CLOSED:
                ticket.order.status = OrderStatus.CANCELED
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

    def add_security(self, symbol: Symbol) -> Security:
        """The security of ``symbol``, added on first use (``add_index``, ``add_option_contract``, orders)."""
        security = self.securities.get(symbol)
        if security is None:
            security = Security(self, symbol)
            self.securities[symbol] = security
        return security

    def _option(self, symbol: Symbol) -> OptionSymbol:
        return self.symbols.from_lean(cast(Any, symbol))

    def quote(self, symbol: Symbol) -> tuple[float, float]:
        """(bid, ask) of ``symbol`` now, in dollars: the simulator's quote, or its spot for the index."""
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
        self.add_security(symbol)
        if group is not None:
            group.order_ids.append(order.id)
        return ticket

    def _refused_ticket(self, symbol: Symbol, quantity: float, kind: OrderType, tag: str, message: str) -> OrderTicket:
        order = Order(-10, symbol, quantity, kind, tag, self.algorithm.utc_time)
        ticket = OrderTicket(self, order, status=OrderStatus.INVALID)
        self.algorithm.error(message)
        return ticket

    def submit_combo(self, legs: list[Leg], quantity: int, limit: float | None, kind: OrderType,
                     tag: str) -> list[OrderTicket]:
        """One combo order (``QCAlgorithm.combo_*_order``): a ticket per leg; ``ValueError`` for bad legs."""
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

    def submit_single(self, symbol: Symbol, quantity: float, limit: float | None, tag: str) -> OrderTicket:
        """One single-leg order (``QCAlgorithm.limit_order``/``market_order``, ``limit`` None for market)."""
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
            t.order.broker_id.append(ref)
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
            t.order.status = OrderStatus.INVALID
            batch.append(self._event(t, OrderStatus.INVALID, message=message))
        self._dispatch(batch)

    # -- events ---------------------------------------------------------------------------------

    def _event(self, ticket: OrderTicket, status: OrderStatus, *, fill_qty: float = 0.0, fill_price: float = 0.0,
               message: str = "") -> OrderEvent:
        order = ticket.order
        n = self._event_ids.get(order.id, 0) + 1
        self._event_ids[order.id] = n
        event = OrderEvent(order.id, n, order.symbol, self.algorithm.utc_time, status, order.direction,
                           order.quantity, fill_price, fill_qty, message,
                           order.limit_price if order.type in (OrderType.LIMIT, OrderType.COMBO_LEG_LIMIT) else None,
                           ticket=ticket)
        ticket.add_event(event)
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
                    if t.order.status is OrderStatus.NEW:
                        t.order.status = OrderStatus.SUBMITTED
                        batch.append(self._event(t, OrderStatus.SUBMITTED))
            elif isinstance(event, Rejected):
                for t in tickets:
                    if t.order.status not in (OrderStatus.FILLED, OrderStatus.CANCELED):
                        t.order.status = OrderStatus.INVALID
                        batch.append(self._event(t, OrderStatus.INVALID, message=event.reason))
            elif isinstance(event, Fill):
                batches = self._fill(sim, tickets, event)
                for part in batches[:-1]:
                    self._dispatch(part)
                batch = batches[-1] if batches else []
            elif isinstance(event, (Canceled, Expired)):
                message = "The order has expired." if isinstance(event, Expired) else ""
                for t in tickets:
                    if t.order.status not in CLOSED:
                        t.order.status = OrderStatus.CANCELED
                        batch.append(self._event(t, OrderStatus.CANCELED, message=message))
            elif isinstance(event, CancelRejected):
                # LEAN: the brokerage could not cancel; the status falls back silently (no event)
                for t in tickets:
                    prior = sim.prior_status.pop(t.order_id, None)
                    if prior is not None and t.order.status is OrderStatus.CANCEL_PENDING:
                        t.order.status = prior
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
                        batch.append(self._event(t, t.order.status,
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
            order = t.order
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

    def request_cancel(self, ticket: OrderTicket, tag: str | None = None) -> OrderResponse:
        """``ticket.cancel(tag)``: the answers are the module docstring's."""
        order = ticket.order
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
        if order.status in CLOSED:
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
            order = ticket.order
            if not (spec.status is OrderStatus.INVALID and order.status in (OrderStatus.FILLED, OrderStatus.CANCELED)):
                order.status = spec.status
            batch.append(self._event(ticket, spec.status, fill_qty=float(spec.fill_quantity),
                                     fill_price=float(spec.fill_price), message=spec.message))
        self._dispatch(batch)
        return batch

    def request_update(self, ticket: OrderTicket, fields: UpdateOrderFields) -> OrderResponse:
        """``ticket.update(fields)``: queued for the next step; -10/-32/-9/-11 answered at once."""
        order = ticket.order
        codes = OrderResponseErrorCode
        only_tag = fields.quantity is None and fields.limit_price is None and fields.tag is not None
        if order.id < 0:
            return OrderResponse(order.id, codes.UNABLE_TO_FIND_ORDER, "Unable to locate order")
        if order.status is OrderStatus.NEW:
            return OrderResponse(order.id, codes.INVALID_NEW_ORDER_STATUS, "submit confirmation not received yet")
        if order.status in CLOSED and not only_tag:
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
        return all(asked(i) or self._tickets[i].order.status in CLOSED for i in sim.order_ids)

    def _cancel_asked(self, order_id: int) -> bool:
        request = self._tickets[order_id].cancel_request
        return request is not None and not request.response.is_error

    def _process_cancel(self, sim: _SimOrder, order_id: int) -> None:
        ticket = self._tickets[order_id]
        if ticket.order.status in CLOSED:
            # HandleCancelOrderRequest: the order closed while the request waited -> -9 on the
            # request's response, no order event
            self._refuse_cancel(ticket, OrderResponseErrorCode.INVALID_ORDER_STATUS, self._closed_response(
                ticket.order).error_message)
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
                if prior is not None and t.order.status is OrderStatus.CANCEL_PENDING:
                    t.order.status = prior
                    self._refuse_cancel(t, OrderResponseErrorCode.BROKERAGE_FAILED_TO_CANCEL_ORDER,
                                        f"Brokerage failed to cancel order with id {i}")
            return
        sim.cancel_sent = True

    def _process_update(self, sim: _SimOrder, order_id: int, fields: UpdateOrderFields) -> None:
        if self.live_mode and not self._all_legs_asked(sim, lambda i: i in self._pending_update):
            return
        ticket = self._tickets[order_id]
        order = ticket.order
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
                    self._dispatch([self._event(t, t.order.status,
                                                message=f"Brokerage failed to update order: {err}")])
            return
        # further legs of the same combo asked in this step: one replace covers them
        for _, _, kind, other, _f in list(self._requests):
            if kind == "update" and other in sim.order_ids and other != order_id:
                self._requests = [r for r in self._requests if r[3] != other or r[2] != "update"]
                heapq.heapify(self._requests)

    def _apply_update(self, sim: _SimOrder, ticket: OrderTicket, fields: UpdateOrderFields) -> None:
        order = ticket.order
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

    def add_schedule(self, date_rule: DateRule, time_rule: TimeRule, callback: Callable[[], Any]) -> None:
        """``schedule.on``: armed for today when the date rule fires today, and again each next session."""
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

    def _first_fire(self, rule: TimeRule) -> float | None:
        if rule.kind == "at" and rule.at is not None:
            t = self._session_seconds_of(rule.at)
            return t if t >= self.seconds else None
        if rule.every is not None:
            step = rule.every.total_seconds()
            return (math.floor(self.seconds / step) + 1) * step
        return None

    def _date_ok(self, rule: DateRule) -> bool:
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
