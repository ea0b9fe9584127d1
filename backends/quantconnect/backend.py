"""QuantConnectBackend: the :class:`~atomic_orders.fsm.ports.ExecutionBackend` contract over a LEAN algorithm.

Orders go out through the algorithm's own order API, so LEAN (backtest or live, whatever brokerage
the algorithm is deployed with) does the routing; this module is the only place in the package
that calls LEAN order methods.

* ``submit``: a multi-leg request becomes one LEAN **combo limit** order:
  ``combo_limit_order([Leg.create(symbol, signed ratio), ...], quantity, limit)`` where ``limit`` is
  the signed net per unit (positive = debit), so a credit condor bought as +1/-1/-1/+1 has a
  negative limit -- LEAN's own convention (ComboLimit fill rule; the TastyTrade plugin derives
  Debit/Credit from the sign). Combo *market* orders are refused here (``SubmissionRefused``): LEAN's
  TastyTrade brokerage model rejects ``ComboMarket`` (what ``buy(OptionStrategies.iron_condor(...))``
  sends), so the executor always prices combos itself. A single leg becomes ``limit_order`` (or
  ``market_order``) with signed contracts. Every order carries our reference as its LEAN ``tag``.
  LEAN raising before anything was created, or pre-order checks refusing (a shorter ticket list,
  ``INVALID`` tickets with order id -10), is ``SubmissionRefused``; an exception after LEAN created
  orders for our tag is ``SubmissionOutcomeUnknown`` (the executor reconciles, never resends).
* Events: LEAN calls the algorithm's ``on_order_event`` -- often *inside* ``combo_limit_order()`` or
  ``ticket.cancel()``; the adapter forwards it to :meth:`QuantConnectBackend.on_order_event`, which
  only queues (events seen while a submission is still returning are held until its tickets are
  known). :meth:`poll_events` hands the translated events (:mod:`.parsing`) to the executor.
* ``cancel``/``replace``: through LEAN's tickets, on **every leg** of a combo: LEAN's TastyTrade
  plugin (like its TradeStation one) only sends a combo cancel/update once it was asked for all legs
  (a single-leg call is a silent no-op at the broker). In backtests canceling one leg already
  cancels the whole combo; the later leg cancels are harmless. A combo update's quantity is the
  *group* quantity (``ComboOrder.ApplyUpdateOrderRequest`` sets ``GroupOrderManager.quantity``).
  Request errors come back synchronously as ``OrderResponse``: -32 (order still ``NEW``) means "not
  yet" (``BrokerUnavailable``, the executor retries); -9 (already closed) and others are queued as
  ``CancelRejected`` / ``UpdateRejected``.
  A request refused because the order is closed first queues any fill LEAN's tickets hold that no
  event carried. Cancels carry no tag: LEAN's ``CancelOrder`` writes a cancel's tag over the
  order's, and the tag is our reference. A -23 on a closed leg is a refusal, not "in progress".
* ``reconcile``: LEAN's own record -- the tickets tagged with our reference (adopted when an
  earlier session placed them): statuses of every leg, fills rebuilt from ticket order events,
  ``quantity_filled`` as ``filled_quantity`` (see :meth:`OrderEventTranslator.report`);
  ``find_orders(prefix)``: the same for every order whose tag starts with ``prefix``.
* ``quote``: ``algorithm.securities[symbol].bid_price / ask_price``; ``positions``: LEAN's portfolio
  for every contract this backend traded, plus fills LEAN's portfolio skipped (carried by events
  whose status is not a fill status).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from atomic_orders.backends.quantconnect.lean_api import LeanApi
from atomic_orders.backends.quantconnect.parsing import OrderEventTranslator, TrackedOrder, to_decimal
from atomic_orders.backends.quantconnect.symbols import SymbolMapper
from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused, ValidationError
from atomic_orders.fsm.events import BrokerStatus, CancelRejected, UpdateRejected
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, OrderType, Quote
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.symbol import OptionSymbol

if TYPE_CHECKING:
    from QuantConnect import Symbol
    from QuantConnect.Algorithm import QCAlgorithm
    from QuantConnect.Orders import OrderEvent, OrderResponse, OrderTicket

__all__ = ["LeanClock", "QuantConnectBackend"]

log = logging.getLogger("atomic_orders.quantconnect")


class LeanClock(Clock):
    """The algorithm's time (``utc_time``, naive UTC in LEAN) as an aware UTC datetime."""

    def __init__(self, algorithm: QCAlgorithm) -> None:
        self.algorithm = algorithm

    def now(self) -> dt.datetime:
        """The algorithm's current UTC time."""
        when = self.algorithm.utc_time
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


class QuantConnectBackend(ExecutionBackend):
    """Orders through a LEAN ``QCAlgorithm``'s order API; events from its ``on_order_event``."""

    name = "quantconnect"

    def __init__(self, algorithm: QCAlgorithm, api: LeanApi, *, clock: Clock | None = None) -> None:
        self.algorithm = algorithm
        self.api = api
        self.symbols = SymbolMapper(api)
        self.translator = OrderEventTranslator(api)
        self._clock: Clock = clock if clock is not None else LeanClock(algorithm)
        self._queued: list[BrokerEvent] = []
        self._held: list[OrderEvent] | None = None  # events that arrive while a submission returns
        self._traded: dict[OptionSymbol, Symbol] = {}
        self._in_lean = 0  # depth of calls into LEAN's order API (events may arrive inside them)

    @property
    def clock(self) -> Clock:
        """The algorithm's clock."""
        return self._clock

    # -- events ---------------------------------------------------------------------------------

    def on_order_event(self, event: OrderEvent) -> None:
        """Take one LEAN order event (called from the algorithm's ``on_order_event``); only queues."""
        if self._held is not None:
            self._held.append(event)
            return
        self._queued.extend(self.translator.translate(event))

    @property
    def in_lean_call(self) -> bool:
        """True while this backend is inside a LEAN order call (the executor must not be re-entered)."""
        return self._in_lean > 0

    def has_events(self) -> bool:
        """True when events wait for :meth:`poll_events`."""
        return bool(self._queued)

    def poll_events(self) -> list[BrokerEvent]:
        """Everything translated since the last call, in arrival order."""
        out, self._queued = self._queued, []
        return out

    # -- orders ---------------------------------------------------------------------------------

    def _lean_legs(self, request: OrderRequest) -> list[tuple[Symbol, int]]:
        out: list[tuple[Symbol, int]] = []
        for leg in request.legs:
            try:
                symbol = self.symbols.to_lean(leg.symbol)
            except ValidationError as err:
                raise SubmissionRefused(request.order_ref, f"symbol not representable in LEAN: {err}") from None
            self._traded[leg.symbol] = symbol
            out.append((symbol, leg.signed_ratio if request.is_combo else leg.side.sign))
        return out

    def submit(self, request: OrderRequest) -> None:
        """Place the order through LEAN (see the module docstring for the error mapping)."""
        ref = request.order_ref
        if self.translator.tracked(ref) is not None:
            raise SubmissionRefused(ref, "duplicate order reference (never resent)")
        if request.is_combo and request.order_type is OrderType.MARKET:
            raise SubmissionRefused(ref, "combo market orders are not sent: LEAN's TastyTrade model rejects "
                                         "ComboMarket; use a combo limit")
        legs = self._lean_legs(request)
        tracked = self.translator.track(request)
        self._held = []
        try:
            self._in_lean += 1
            try:
                tickets = self._place(request, legs)
            finally:
                self._in_lean -= 1
        except Exception as err:
            held, self._held = self._held, None
            created = self._tickets_by_tag(ref)
            if not created:
                self.translator.forget(ref)
                raise SubmissionRefused(ref, f"LEAN refused the order: {type(err).__name__}: {err}") from None
            self._bind(tracked, created)
            self._replay(held)
            raise SubmissionOutcomeUnknown(ref, f"LEAN raised after creating orders: {err}") from None
        held, self._held = self._held, None
        refused = [t for t in tickets if int(t.order_id) < 0]
        if refused or len(tickets) < len(legs):
            self.translator.forget(ref)
            self._replay(held)
            status = ", ".join(self.translator.status_name(t.status) for t in refused) or "missing legs"
            raise SubmissionRefused(ref, f"LEAN pre-order checks refused the order ({status})")
        self._bind(tracked, tickets)
        self._replay(held)

    def _place(self, request: OrderRequest, legs: list[tuple[Symbol, int]]) -> list[OrderTicket]:
        algorithm = self.algorithm
        ref = request.order_ref
        if request.is_combo:
            assert request.limit_price is not None  # a combo limit (market combos are refused above)
            lean_legs = [self.api.Leg.create(symbol, ratio) for symbol, ratio in legs]
            return list(algorithm.combo_limit_order(lean_legs, request.quantity, float(request.limit_price),
                                                    tag=ref))
        symbol, sign = legs[0]
        quantity = sign * request.quantity
        if request.order_type is OrderType.MARKET:
            return [algorithm.market_order(symbol, quantity, asynchronous=True, tag=ref)]
        assert request.limit_price is not None
        return [algorithm.limit_order(symbol, quantity, float(request.limit_price), tag=ref)]

    def _bind(self, tracked: TrackedOrder, tickets: Sequence[OrderTicket]) -> None:
        request = tracked.request
        if request is None:
            return  # adopted orders are bound from LEAN's record (_adopt)
        by_symbol = {self._traded[leg.symbol]: leg for leg in request.legs}
        for ticket in tickets:
            order_id = int(ticket.order_id)
            if order_id < 0:
                continue
            leg = by_symbol.get(ticket.symbol)
            if leg is None:
                leg = next(x for x in request.legs if self.symbols.from_lean(ticket.symbol) == x.symbol)
            ratio = leg.signed_ratio if request.is_combo else leg.side.sign
            self.translator.bind(tracked, order_id, ratio)

    def _adopt(self, order_ref: str, tickets: Sequence[OrderTicket]) -> TrackedOrder:
        """Track LEAN orders tagged ``order_ref`` that this backend did not place (an earlier session).

        Ratios come from LEAN's orders: a combo leg's quantity over its ``GroupOrderManager``'s
        (signed) group quantity; a single order's sign.
        """
        transactions = self.algorithm.transactions
        legs: list[tuple[int, int]] = []
        combo = False
        for ticket in tickets:
            order_id = int(ticket.order_id)
            order = transactions.get_order_by_id(order_id)
            group = None if order is None else order.group_order_manager
            quantity = float(ticket.quantity)
            if group is not None and float(group.quantity):
                combo = True
                ratio = round(quantity / float(group.quantity))
            else:
                ratio = 1 if quantity > 0 else -1
            legs.append((order_id, ratio))
            try:
                self._traded.setdefault(self.symbols.from_lean(ticket.symbol), ticket.symbol)
            except ValidationError:
                log.warning("adopted LEAN order %s has a symbol outside the option mapping: %s", order_id,
                            ticket.symbol)
        return self.translator.adopt(order_ref, legs, combo)

    def _replay(self, held: list[OrderEvent] | None) -> None:
        for event in held or ():
            self.on_order_event(event)

    def _tickets_by_tag(self, tag: str) -> list[OrderTicket]:
        return list(self.algorithm.transactions.get_order_tickets(lambda t: t.tag == tag))

    def _leg_tickets(self, tracked: TrackedOrder) -> list[OrderTicket]:
        transactions = self.algorithm.transactions
        out: list[OrderTicket] = []
        for lean_id in sorted(tracked.legs):
            ticket = transactions.get_order_ticket(lean_id)
            if ticket is not None:
                out.append(ticket)
        return out

    def cancel(self, order_ref: str) -> None:
        """Cancel every leg's LEAN ticket; outcomes arrive as order events."""
        tracked = self.translator.tracked(order_ref)
        tickets = self._leg_tickets(tracked) if tracked is not None else []
        if tracked is None or not tickets:
            raise BrokerUnavailable(f"cancel of {order_ref!r}: LEAN has no order for it (yet)")
        codes = self.api.OrderResponseErrorCode
        accepted = False
        errors: list[str] = []
        not_yet = False
        for ticket in tickets:
            self._in_lean += 1
            try:
                # no tag: LEAN writes a cancel's tag over the order's (CancelOrder), and the tag
                # is our reference (reconcile and find_orders look orders up by it)
                response = ticket.cancel()
            finally:
                self._in_lean -= 1
            if response.is_success:
                accepted = True
                continue
            code = response.error_code
            if code == codes.REQUEST_CANCELED and not self._closed(ticket):
                accepted = True  # a cancel is already in progress for this leg
            elif code == codes.REQUEST_CANCELED:
                # LEAN versions answer any second cancel -23 (the first one's request stays on the
                # ticket) even once the order closed: nothing is in progress, the order is done
                errors.append(f"LEAN error {response.error_code!r}: the order is already "
                              f"{self.translator.status_name(ticket.status)}")
            elif code == codes.INVALID_NEW_ORDER_STATUS:
                not_yet = True
            else:
                errors.append(self._describe(response))
        if accepted:
            return
        if not_yet:
            raise BrokerUnavailable(f"cancel of {order_ref!r}: LEAN has not submitted it yet")
        self._recover(tracked, tickets)
        self._queued.append(BrokerEvent(order_ref, CancelRejected(self._clock.now(), "; ".join(errors))))

    def _recover(self, tracked: TrackedOrder, tickets: Sequence[OrderTicket]) -> None:
        """LEAN refused a request on a closed order: queue any fill its tickets hold that no event carried."""
        if any(self._closed(t) for t in tickets):
            recovered = self.translator.book_record(tracked, tickets)
            self._queued.extend(BrokerEvent(tracked.order_ref, fill) for fill in recovered)

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """Update every leg's LEAN ticket (same group limit, group quantity for combos)."""
        tracked = self.translator.tracked(order_ref)
        tickets = self._leg_tickets(tracked) if tracked is not None else []
        if tracked is None or not tickets:
            raise BrokerUnavailable(f"replace of {order_ref!r}: LEAN has no order for it (yet)")
        codes = self.api.OrderResponseErrorCode
        errors: list[str] = []
        accepted = 0
        not_yet = False
        # counted before asking: a brokerage may confirm (UPDATE_SUBMITTED) inside ticket.update()
        tracked.pending_updates += 1
        for ticket in tickets:
            fields = self.api.UpdateOrderFields()
            fields.limit_price = float(limit_price)
            if quantity is not None:
                leg = tracked.legs[int(ticket.order_id)]
                fields.quantity = float(quantity if tracked.combo else leg.ratio * quantity)
            self._in_lean += 1
            try:
                response = ticket.update(fields)
            finally:
                self._in_lean -= 1
            if response.is_success:
                accepted += 1
            elif response.error_code == codes.INVALID_NEW_ORDER_STATUS:
                not_yet = True
            else:
                errors.append(self._describe(response))
        if not accepted:
            tracked.pending_updates = max(tracked.pending_updates - 1, 0)
        if accepted:
            if errors:
                log.warning("update of %s accepted on some legs only: %s", order_ref, errors)
            return
        if not_yet:
            raise BrokerUnavailable(f"replace of {order_ref!r}: LEAN has not submitted it yet")
        self._recover(tracked, tickets)
        self._queued.append(BrokerEvent(order_ref, UpdateRejected(self._clock.now(), "; ".join(errors))))

    def _closed(self, ticket: OrderTicket) -> bool:
        return self.translator.status_name(ticket.status) in ("filled", "canceled", "invalid")

    def _describe(self, response: OrderResponse) -> str:
        return f"LEAN error {response.error_code!r}: {response.error_message}"

    # -- reconciliation, quotes, positions -------------------------------------------------------

    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        """LEAN's own record of each order: its leg tickets' statuses, fills and filled counts.

        For every reference: the LEAN tickets tagged with it (adopted when an earlier session
        placed them); fills rebuilt from each ticket's ``order_events`` that carry a fill quantity
        (those no delivered event carried are booked now, so later events do not count them
        again); ``filled_quantity`` from the tickets' ``quantity_filled`` (a combo: the least
        ``|filled| / |ratio|`` over its legs); the status from every leg
        (:meth:`OrderEventTranslator.report`). ``NOT_FOUND`` when LEAN holds no order with the tag.
        """
        out: dict[str, OrderReport] = {}
        for ref in order_refs:
            tracked = self.translator.tracked(ref)
            if tracked is None or not tracked.legs:
                created = self._tickets_by_tag(ref)
                if not created:
                    out[ref] = OrderReport(ref, BrokerStatus.NOT_FOUND)
                    continue
                if tracked is None:
                    tracked = self._adopt(ref, created)
                else:
                    self._bind(tracked, created)
            tickets = self._leg_tickets(tracked)
            self.translator.book_record(tracked, tickets)
            out[ref] = self.translator.report(tracked, tickets)
        return out

    def find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        """Every order LEAN's transaction manager holds whose tag starts with ``prefix``, as :meth:`reconcile`.

        Keys are the tags (our order references); orders placed by an earlier session are
        adopted, so their later events reach the executor. LEAN keeps only the latest 10,000
        completed orders in memory live (``BrokerageTransactionHandler``), older ones are gone.
        """
        tickets = self.algorithm.transactions.get_order_tickets(lambda t: str(t.tag).startswith(prefix))
        tags = sorted({str(t.tag) for t in tickets if int(t.order_id) > 0})
        return self.reconcile(tags)

    def quote(self, symbol: OptionSymbol) -> Quote:
        """Top of book from LEAN's security cache."""
        try:
            lean_symbol = self.symbols.to_lean(symbol)
        except ValidationError as err:
            raise BrokerUnavailable(f"quote of {symbol.occ}: {err}") from None
        securities = self.algorithm.securities
        if not securities.contains_key(lean_symbol):
            raise BrokerUnavailable(f"quote of {symbol.occ}: the contract is not subscribed in LEAN")
        security = securities[lean_symbol]
        bid, ask = to_decimal(security.bid_price), to_decimal(security.ask_price)
        if bid < 0 or ask <= 0 or ask < bid:
            raise BrokerUnavailable(f"quote of {symbol.occ}: no usable quote (bid {bid}, ask {ask})")
        return Quote(symbol, bid, ask, self._clock.now())

    def positions(self) -> Mapping[OptionSymbol, int]:
        """Signed holdings for every contract this backend traded: LEAN's portfolio, corrected.

        LEAN's portfolio takes fills only from ``PARTIALLY_FILLED``/``FILLED`` events
        (``BrokerageTransactionHandler.HandleOrderEvents`` -> ``Portfolio.ProcessFills``); a fill a
        plugin put on another status (``UPDATE_SUBMITTED``, ``CANCELED``) is on the ticket but not
        in the portfolio. Those contracts, booked from our own orders' events, are added back.
        """
        portfolio = self.algorithm.portfolio
        transactions = self.algorithm.transactions
        missing: dict[OptionSymbol, int] = {}
        for tracked in self.translator.all_tracked():
            for leg in tracked.legs.values():
                if not leg.off_book:
                    continue
                ticket = transactions.get_order_ticket(leg.lean_id)
                if ticket is None:
                    continue
                option = self.symbols.from_lean(ticket.symbol)
                missing[option] = missing.get(option, 0) + leg.off_book
        out: dict[OptionSymbol, int] = {}
        for option, lean_symbol in self._traded.items():
            holding: Any = portfolio[lean_symbol]
            qty = round(float(holding.quantity)) + missing.get(option, 0)
            if qty:
                out[option] = qty
        return out
