"""ScriptedBackend: a backend whose broker is a script (tests, property checks, replays).

Nothing happens unless the script says so: every request is recorded, and the script decides
what the broker answers (``push`` events, ``refuse``/``lose`` submissions, set what
``reconcile`` reports, take the broker down). Quotes are fixed per symbol.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from atomic_orders.fsm.clock import ManualClock
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.events import BrokerStatus, Fill, TicketEvent
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, Quote
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.symbol import OptionSymbol

#: Pushed events that end an order, and the status the record reports for them.
_FINAL: dict[str, BrokerStatus] = {
    "canceled": BrokerStatus.CANCELED,
    "rejected": BrokerStatus.REJECTED,
    "expired": BrokerStatus.EXPIRED,
}

#: What the script decides for a submission: None (accepted), or raise an exception.
SubmitRule = Callable[[OrderRequest], BaseException | None]


class ScriptedBackend(ExecutionBackend):
    """A broker driven entirely by the test: requests are recorded, answers are pushed."""

    name = "scripted"

    def __init__(self, clock: ManualClock | None = None, default_quote: tuple[str, str] = ("1.00", "1.20")) -> None:
        self._clock = clock if clock is not None else ManualClock()
        self.submitted: list[OrderRequest] = []
        self.cancels: list[str] = []
        self.replaces: list[tuple[str, Decimal, int | None]] = []
        self.reconcile_calls: list[tuple[str, ...]] = []
        self.reports: dict[str, OrderReport] = {}
        self.quotes: dict[OptionSymbol, tuple[Decimal, Decimal]] = {}
        self.default_quote = (Decimal(default_quote[0]), Decimal(default_quote[1]))
        self.submit_rule: SubmitRule | None = None
        self.down = False
        self._outbox: list[BrokerEvent] = []
        self._fill_ids: set[str] = set()
        self._positions: dict[OptionSymbol, int] = {}
        self._history: dict[str, list[TicketEvent]] = {}
        #: Submissions whose outcome the script made unknown: not at the broker until it says so.
        self._unconfirmed: set[str] = set()

    @property
    def clock(self) -> ManualClock:
        """The script's manual clock."""
        return self._clock

    # -- the script's controls -------------------------------------------------------------------

    def push(self, order_ref: str, event: TicketEvent) -> None:
        """Queue a broker event for the executor's next :meth:`poll_events`.

        A fill whose id is new moves the scripted broker's positions (a re-sent id does not).
        """
        if isinstance(event, Fill) and event.fill_id not in self._fill_ids:
            self._fill_ids.add(event.fill_id)
            req = self.request(order_ref)
            for leg in req.legs:
                per_unit = leg.signed_ratio if req.is_combo else leg.side.sign
                self._positions[leg.symbol] = self._positions.get(leg.symbol, 0) + per_unit * event.quantity
        self._history.setdefault(order_ref, []).append(event)
        self._outbox.append(BrokerEvent(order_ref, event))

    def now(self) -> dt.datetime:
        """The script's current time."""
        return self._clock.now()

    def request(self, order_ref: str) -> OrderRequest:
        """The request the broker received under ``order_ref``."""
        for req in self.submitted:
            if req.order_ref == order_ref:
                return req
        raise KeyError(f"no order {order_ref!r} was submitted")

    def fill_all(self, order_ref: str, price: Decimal | None = None, fill_id: str | None = None) -> None:
        """Push an acknowledgement and a complete fill for a submitted order."""
        from atomic_orders.fsm.events import Acknowledged

        req = self.request(order_ref)
        now = self.now()
        self.push(order_ref, Acknowledged(now, f"B-{order_ref}"))
        px = price if price is not None else (req.limit_price if req.limit_price is not None else Decimal("1.00"))
        self.push(order_ref, Fill(now, fill_id or f"F-{order_ref}", req.quantity, px))

    # -- ExecutionBackend ------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> None:
        """Record the request; the submit rule may refuse it or make its outcome unknown."""
        if self.down:
            raise SubmissionOutcomeUnknown(request.order_ref, "broker down (scripted)")
        outcome = self.submit_rule(request) if self.submit_rule is not None else None
        if isinstance(outcome, SubmissionRefused):
            raise outcome
        self.submitted.append(request)
        if outcome is not None:
            self._unconfirmed.add(request.order_ref)
            raise outcome

    def cancel(self, order_ref: str) -> None:
        """Record a cancel request."""
        if self.down:
            raise BrokerUnavailable("broker down (scripted)")
        self.cancels.append(order_ref)

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """Record a replace request."""
        if self.down:
            raise BrokerUnavailable("broker down (scripted)")
        self.replaces.append((order_ref, limit_price, quantity))

    def poll_events(self) -> list[BrokerEvent]:
        """Hand over everything pushed so far."""
        out, self._outbox = self._outbox, []
        return out

    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        """The script's broker record: :attr:`reports` where the script set one, else what it pushed.

        An order never submitted (or refused), or submitted with an unknown outcome and nothing
        pushed for it since, is ``NOT_FOUND``; a submitted one is reported from the events pushed
        for it: its fills (distinct ids) and the status they imply.
        """
        self.reconcile_calls.append(tuple(order_refs))
        if self.down:
            raise BrokerUnavailable("broker down (scripted)")
        return {ref: self.reports.get(ref) or self.record(ref) for ref in order_refs}

    def record(self, order_ref: str) -> OrderReport:
        """What the pushed events say about ``order_ref`` (``NOT_FOUND`` if it was never submitted)."""
        try:
            req = self.request(order_ref)
        except KeyError:
            return OrderReport(order_ref, BrokerStatus.NOT_FOUND)
        if order_ref in self._unconfirmed and order_ref not in self._history:
            return OrderReport(order_ref, BrokerStatus.NOT_FOUND)
        fills: dict[str, Fill] = {}
        status = BrokerStatus.WORKING
        broker_id: str | None = None
        for pushed in self._history.get(order_ref, ()):
            event = pushed
            if isinstance(event, Fill):
                fills.setdefault(event.fill_id, event)
            elif event.trigger == "acknowledged":
                broker_id = broker_id or getattr(event, "broker_order_id", None)
            elif event.trigger in _FINAL:
                status = _FINAL[event.trigger]
        filled = sum(f.quantity for f in fills.values())
        if filled >= req.quantity:
            status = BrokerStatus.FILLED
        elif status is BrokerStatus.WORKING and filled:
            status = BrokerStatus.PARTIALLY_FILLED
        return OrderReport(order_ref, status, tuple(fills.values()), broker_id)

    def quote(self, symbol: OptionSymbol) -> Quote:
        """The fixed quote for ``symbol``."""
        bid, ask = self.quotes.get(symbol, self.default_quote)
        return Quote(symbol, bid, ask, self.now())

    def positions(self) -> Mapping[OptionSymbol, int]:
        """Signed net positions from every distinct fill the script pushed."""
        return {s: q for s, q in self._positions.items() if q}

    def find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        """Every submitted order whose reference starts with ``prefix``, reported like :meth:`reconcile`."""
        if self.down:
            raise BrokerUnavailable("broker down (scripted)")
        refs = dict.fromkeys(r.order_ref for r in self.submitted if r.order_ref.startswith(prefix))
        return {ref: self.reports.get(ref) or self.record(ref) for ref in refs}
