"""LEAN ``OrderEvent`` -> ticket events: the complete ``OrderStatus`` mapping, idempotent on replays.

One executor ticket is one LEAN order (a single leg) or one LEAN *combo*: N LEAN orders, one per
leg, sharing a ``GroupOrderManager``. LEAN reports per leg; the ticket wants strategy units.

Fills first: **any** event whose ``FillQuantity`` is non-zero is a fill, whatever its status --
LEAN's ticket counts it (``OrderTicket.AddOrderEvent`` adds every non-zero ``FillQuantity`` to
``QuantityFilled``), and brokerage plugins do put fills on ``UPDATE_SUBMITTED`` (an update in
flight), ``CANCELED`` or ``PARTIALLY_FILLED`` events and then close with ``FILLED`` and fill
quantity 0. Each event's fill is booked once (by LEAN's ``(order id, event id)``) at its
``FillPrice``; an event with fill quantity 0 never makes a fill, whatever its status says.

======================  =========================================================================
LEAN status (code)      ticket event (besides the fill the event may carry)
======================  =========================================================================
``NEW`` (0)             none (created, not yet handed to the brokerage)
``SUBMITTED`` (1)       ``Acknowledged`` (first leg; later ones are duplicates the ticket ignores)
(any open status)       while an update is pending, a non-fill event whose message is LEAN's
                        "Brokerage failed to update order" (it carries the order's current status:
                        ``SUBMITTED``, ``PARTIALLY_FILLED`` or ``UPDATE_SUBMITTED``): ``UpdateRejected``
``PARTIALLY_FILLED``    ``Acknowledged`` if none was; the fill (if any) gives a ``Fill`` for every
(2) / ``FILLED`` (3)    strategy unit now complete on *all* legs (signed net per unit = sum of leg
                        ratio x leg fill price; single leg: contracts at the fill price). A fill
                        after ``CANCELED`` is applied (LEAN applies it and flips the status): the
                        ticket records a late fill.
``CANCELED`` (5)        ``Canceled`` once every leg is closed (``Expired`` when LEAN says the order
                        expired), unless every leg is ``FILLED``
``NONE`` (6)            none (LEAN does not forward these to ``on_order_event``; ignored if seen)
``INVALID`` (7)         ``Rejected`` (once per combo: LEAN invalidates every leg); ignored for a leg
                        already ``FILLED``/``CANCELED``, as LEAN's transaction handler does; on an
                        order that already has fills, ``Canceled`` once every leg is closed (the
                        fills stand, the rest is dead)
``CANCEL_PENDING`` (8)  none: LEAN's echo of our own cancel (fired inside ``ticket.cancel()``);
                        the executor already recorded ``CancelRequested``
``UPDATE_SUBMITTED``    ``Updated`` (once per update request, whatever the number of legs), before
(9)                     the fill the event may carry
======================  =========================================================================

Replays: an event whose ``(order_id, id)`` was seen before changes nothing (``duplicates`` counts
it). Fill ids are ``QC<order id>-<event id>`` for a single leg and ``QC<first leg id>-F<n>`` for
the n-th complete-unit fill of a combo, so they are stable for a given event stream.

Reconciliation (:meth:`OrderEventTranslator.book_record`, :meth:`OrderEventTranslator.report`)
reads LEAN's own record -- each leg ticket's status, ``quantity_filled`` and ``order_events`` --
and books any fill an event carried that never reached ``on_order_event`` (a ``NONE``-status
event, a callback that did not forward), with the same per-event dedupe.

Leg fills that never complete a unit (a combo filled on some legs only, which LEAN's combo fill
models never produce) are kept per leg and reported in :attr:`OrderEventTranslator.anomalies`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from atomic_orders.backends.quantconnect.lean_api import LeanApi
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    Expired,
    Fill,
    Rejected,
    TicketEvent,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest

if TYPE_CHECKING:
    from QuantConnect.Orders import OrderEvent, OrderStatus, OrderTicket

__all__ = ["LegOrder", "OrderEventTranslator", "TrackedOrder", "to_decimal"]

log = logging.getLogger("atomic_orders.quantconnect")

_PRICE_QUANTUM = Decimal("0.0001")


def to_decimal(value: float) -> Decimal:
    """A LEAN decimal (a Python float through pythonnet) as the shortest Decimal that round-trips."""
    return Decimal(repr(float(value)))


def _aware(when: dt.datetime) -> dt.datetime:
    """LEAN's ``utc_time`` is naive UTC."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


_CLOSED = frozenset({"filled", "canceled", "invalid"})
_FILL_STATUSES = frozenset({"partially_filled", "filled"})


@attrs.define
class LegOrder:
    """One LEAN order of a ticket: its id, contracts per unit (signed) and what it reported.

    ``status`` mirrors LEAN's ``Order.Status`` (the transaction handler copies every event's
    status onto the order, except an ``INVALID`` over ``FILLED``/``CANCELED``). ``was_closed`` stays
    true once a ``CANCELED``/``INVALID`` arrived: a fill after it flips LEAN's status back to
    ``PARTIALLY_FILLED``/``FILLED`` but the order is dead at the broker (a late fill).
    """

    lean_id: int
    ratio: int
    status: str = "new"
    filled: int = 0  # signed contracts
    notional: Decimal = Decimal(0)  # sum of |fill quantity| x fill price
    was_closed: bool = False
    #: signed contracts booked from events whose status is not PARTIALLY_FILLED/FILLED: LEAN's
    #: portfolio skips those (``Portfolio.ProcessFills`` only takes fill statuses), the ticket counts them
    off_book: int = 0

    @property
    def units_filled(self) -> int:
        """Complete strategy units this leg has filled."""
        return abs(self.filled) // abs(self.ratio)

    @property
    def average_price(self) -> Decimal:
        """Average fill price of this leg (0 before any fill)."""
        return self.notional / abs(self.filled) if self.filled else Decimal(0)

    @property
    def closed(self) -> bool:
        """LEAN closed this order (filled, canceled or invalid), late fills notwithstanding."""
        return self.status in _CLOSED or self.was_closed


@attrs.define
class TrackedOrder:
    """What the translator knows about one executor ticket's LEAN orders.

    ``request`` is None for an order adopted from LEAN's record (placed in an earlier session);
    ``combo`` and ``leg_count`` then come from LEAN's orders.
    """

    order_ref: str
    request: OrderRequest | None
    combo: bool
    leg_count: int
    legs: dict[int, LegOrder] = attrs.field(factory=dict)
    acknowledged: bool = False
    rejected: bool = False
    closed_reported: bool = False
    pending_updates: int = 0
    units_reported: int = 0
    notional_reported: Decimal = Decimal(0)
    fills: list[Fill] = attrs.field(factory=list)
    expired: bool = False

    @property
    def first_id(self) -> int:
        """The lowest LEAN order id of the ticket (its broker id)."""
        return min(self.legs) if self.legs else -1

    @property
    def all_closed(self) -> bool:
        """Every leg is closed (filled, canceled or invalid, late fills notwithstanding)."""
        return bool(self.legs) and all(leg.closed for leg in self.legs.values())

    @property
    def any_leg_fill(self) -> bool:
        """Some leg has filled contracts (a complete unit or not)."""
        return any(leg.filled for leg in self.legs.values())


class OrderEventTranslator:
    """Turns LEAN order events into :class:`~atomic_orders.fsm.orders.BrokerEvent` s for the executor."""

    def __init__(self, api: LeanApi) -> None:
        self.api = api
        self._by_ref: dict[str, TrackedOrder] = {}
        self._by_lean_id: dict[int, TrackedOrder] = {}
        self._seen: set[tuple[int, int]] = set()
        # fills booked, by (order id, event id): an event's fill is booked once, whether it came
        # through on_order_event or was read back from the ticket's order events
        self._fills_booked: set[tuple[int, int]] = set()
        #: Replayed events (same order id and event id) that were ignored.
        self.duplicates = 0
        #: Fills read back from LEAN's tickets that no delivered event had carried.
        self.recovered_fills = 0
        #: Events about LEAN orders no ticket owns (placed around the executor): kept, never dropped.
        self.foreign_events: list[OrderEvent] = []
        #: Things that should not happen (uneven combo leg fills, unknown statuses), as text.
        self.anomalies: list[str] = []

    # -- registration ---------------------------------------------------------------------------

    def track(self, request: OrderRequest) -> TrackedOrder:
        """Start tracking a ticket (before its LEAN orders exist)."""
        tracked = TrackedOrder(request.order_ref, request, request.is_combo, len(request.legs))
        self._by_ref[request.order_ref] = tracked
        return tracked

    def adopt(self, order_ref: str, legs: Sequence[tuple[int, int]], combo: bool) -> TrackedOrder:
        """Track LEAN orders this translator did not place (an earlier session's), by tag.

        ``legs`` are ``(LEAN order id, signed contracts per unit)``; the caller replays their
        record with :meth:`book_record`.
        """
        tracked = self._by_ref.get(order_ref)
        if tracked is None:
            tracked = TrackedOrder(order_ref, None, combo, len(legs))
            self._by_ref[order_ref] = tracked
        for lean_id, ratio in legs:
            self.bind(tracked, lean_id, ratio)
        return tracked

    def bind(self, tracked: TrackedOrder, lean_id: int, ratio: int) -> None:
        """Attach one LEAN order (a leg) to a tracked ticket."""
        if lean_id in tracked.legs:
            return
        tracked.legs[lean_id] = LegOrder(lean_id, ratio)
        self._by_lean_id[lean_id] = tracked

    def forget(self, order_ref: str) -> None:
        """Stop tracking a ticket whose submission LEAN refused before creating any order."""
        tracked = self._by_ref.pop(order_ref, None)
        if tracked is not None:
            for lean_id in tracked.legs:
                self._by_lean_id.pop(lean_id, None)

    def tracked(self, order_ref: str) -> TrackedOrder | None:
        """The tracked ticket for ``order_ref``."""
        return self._by_ref.get(order_ref)

    def owner(self, lean_id: int) -> TrackedOrder | None:
        """The tracked ticket a LEAN order belongs to."""
        return self._by_lean_id.get(lean_id)

    def all_tracked(self) -> Sequence[TrackedOrder]:
        """Every tracked ticket."""
        return list(self._by_ref.values())

    # -- events ---------------------------------------------------------------------------------

    def _status_name(self, status: OrderStatus) -> str:
        s = self.api.OrderStatus
        for member, name in (
            (s.NEW, "new"), (s.SUBMITTED, "submitted"), (s.PARTIALLY_FILLED, "partially_filled"),
            (s.FILLED, "filled"), (s.CANCELED, "canceled"), (s.NONE, "none"), (s.INVALID, "invalid"),
            (s.CANCEL_PENDING, "cancel_pending"), (s.UPDATE_SUBMITTED, "update_submitted"),
        ):
            if status == member:
                return name
        return "unknown"

    def translate(self, event: OrderEvent) -> list[BrokerEvent]:
        """The ticket events one LEAN order event means (empty for echoes and replays).

        Order of what one event yields: status news (``Acknowledged``, ``Updated``,
        ``UpdateRejected``), then the fills it carries, then closing news (``Canceled``,
        ``Expired``, ``Rejected``).
        """
        key = (int(event.order_id), int(event.id))
        if key in self._seen:
            self.duplicates += 1
            return []
        tracked = self._by_lean_id.get(key[0])
        if tracked is None:
            self.foreign_events.append(event)
            log.warning("order event for LEAN order %s that no executor ticket owns: %s", key[0], event)
            return []
        self._seen.add(key)
        leg = tracked.legs[key[0]]
        status = self._status_name(event.status)
        when = _aware(event.utc_time)
        message = str(event.message or "")
        quantity = round(float(event.fill_quantity))
        prior = leg.status
        before: list[TicketEvent] = []
        after: list[TicketEvent] = []
        if status == "unknown":
            self.anomalies.append(f"unknown LEAN order status {event.status!r} for order {key[0]}")
        elif status == "invalid" and prior in ("filled", "canceled"):
            pass  # LEAN's transaction handler does not let an Invalid overwrite Filled/Canceled
        else:
            leg.status = status  # LEAN copies the event's status onto the order
            if status in ("canceled", "invalid"):
                leg.was_closed = True
        if self._update_failed(tracked, status, quantity, message):
            # LEAN's "Brokerage failed to update order" event carries the order's *current* status
            # (Submitted, PartiallyFilled or UpdateSubmitted) and no fill
            tracked.pending_updates -= 1
            before.append(UpdateRejected(when, message))
        elif status == "update_submitted" and tracked.pending_updates:
            tracked.pending_updates -= 1
            before.append(Updated(when, None))
        if not tracked.acknowledged and (status in ("submitted", "update_submitted") or status in _FILL_STATUSES
                                         or quantity):
            tracked.acknowledged = True
            before.insert(0, Acknowledged(when, f"QC{tracked.first_id}"))
        fills: list[TicketEvent] = []
        if quantity:
            # a fill is a fill whatever status carries it (plugins report fills on UpdateSubmitted,
            # Canceled, ...); LEAN's ticket counts every non-zero FillQuantity the same way
            fills = self._book(tracked, key, quantity, event, when)
        if status == "canceled":
            if "expire" in message.lower():
                tracked.expired = True
            after.extend(self._closed(tracked, when))
        elif status == "invalid" and prior not in ("filled", "canceled"):
            if tracked.units_reported or tracked.any_leg_fill:
                # LEAN closes a partly filled order as Invalid (e.g. a refused update): the fills
                # stand, the rest will never fill -- for the ticket that is a cancel, not a reject
                after.extend(self._closed(tracked, when))
            elif not tracked.rejected:
                tracked.rejected = True
                after.append(Rejected(when, message or "invalid (LEAN)"))
        return [BrokerEvent(tracked.order_ref, e) for e in (*before, *fills, *after)]

    def _book(self, tracked: TrackedOrder, key: tuple[int, int], quantity: int, event: OrderEvent,
              when: dt.datetime) -> list[TicketEvent]:
        """Book one event's fill on its leg (once per event id); the unit fills it completes."""
        if key in self._fills_booked:
            return []
        self._fills_booked.add(key)
        leg = tracked.legs[key[0]]
        leg.filled += quantity
        leg.notional += abs(quantity) * to_decimal(event.fill_price)
        if self._status_name(event.status) not in _FILL_STATUSES:
            leg.off_book += quantity
        return self._unit_fills(tracked, when, key)

    @staticmethod
    def _update_failed(tracked: TrackedOrder, status: str, quantity: int, message: str) -> bool:
        """A non-fill event for an open order answering our pending update with a failure."""
        return (bool(tracked.pending_updates) and tracked.acknowledged
                and status in ("submitted", "partially_filled", "update_submitted")
                and not quantity and "failed to update" in message.lower())

    def _unit_fills(self, tracked: TrackedOrder, when: dt.datetime, key: tuple[int, int]) -> list[TicketEvent]:
        if not tracked.combo:
            leg = tracked.legs[key[0]]
            units = abs(leg.filled)
            new = units - tracked.units_reported
            if new <= 0:
                return []
            notional = leg.notional - tracked.notional_reported
            price = (notional / new).quantize(_PRICE_QUANTUM).normalize()
            tracked.units_reported = units
            tracked.notional_reported = leg.notional
            fill = Fill(when, f"QC{key[0]}-{key[1]}", new, price)
            tracked.fills.append(fill)
            return [fill]
        if len(tracked.legs) < tracked.leg_count:
            return []  # not every leg is known yet
        units = min(leg.units_filled for leg in tracked.legs.values())
        new = units - tracked.units_reported
        if new <= 0:
            return []
        # signed net per unit over the complete units: sum of ratio x average leg price
        total = sum((leg.ratio * leg.average_price for leg in tracked.legs.values()), Decimal(0)) * units
        price = ((total - tracked.notional_reported) / new).quantize(_PRICE_QUANTUM).normalize()
        tracked.units_reported = units
        tracked.notional_reported = total
        fill = Fill(when, f"QC{tracked.first_id}-F{len(tracked.fills) + 1}", new, price)
        tracked.fills.append(fill)
        return [fill]

    def _closed(self, tracked: TrackedOrder, when: dt.datetime) -> list[TicketEvent]:
        if tracked.closed_reported or not tracked.all_closed:
            return []
        if len(tracked.legs) < tracked.leg_count:
            return []
        tracked.closed_reported = True
        uneven = {leg.lean_id: leg.filled for leg in tracked.legs.values()
                  if leg.units_filled * abs(leg.ratio) != abs(leg.filled) or leg.units_filled != tracked.units_reported}
        if uneven:
            self.anomalies.append(f"{tracked.order_ref}: legs closed with uneven fills {uneven} "
                                  f"(complete units {tracked.units_reported})")
        if all(leg.status == "filled" for leg in tracked.legs.values()):
            return []  # every leg filled (late fills included): the fills say it all
        return [Expired(when) if tracked.expired else Canceled(when)]

    # -- reconciliation -------------------------------------------------------------------------

    def book_record(self, tracked: TrackedOrder, tickets: Sequence[OrderTicket]) -> list[Fill]:
        """Book every fill LEAN's tickets record that no delivered event carried; the new unit fills.

        LEAN's own record of an order is its ticket: ``order_events`` (every event the transaction
        handler applied, including ``NONE``-status ones it never forwards to ``on_order_event``)
        and ``quantity_filled`` (the running sum of every non-zero ``FillQuantity``,
        ``Common/Orders/OrderTicket.cs`` ``AddOrderEvent``). Fills are booked by (order id,
        event id), so one read back is never counted again when its event arrives later.
        """
        missing: list[tuple[dt.datetime, int, int, int, OrderEvent]] = []
        for leg_index, ticket in enumerate(sorted(tickets, key=lambda t: int(t.order_id))):
            order_id = int(ticket.order_id)
            if order_id not in tracked.legs:
                continue
            for position, event in enumerate(ticket.order_events):
                quantity = round(float(event.fill_quantity))
                if quantity and (order_id, int(event.id)) not in self._fills_booked:
                    missing.append((_aware(event.utc_time), position, leg_index, quantity, event))
        # in time order, legs of one instant in order-id order (LEAN's batch order): units complete
        # as they did at the broker, each unit fill priced from the leg fills up to it
        missing.sort(key=lambda m: (m[0], m[2], m[1]))
        out: list[Fill] = []
        for when, _position, _leg, quantity, event in missing:
            self.recovered_fills += 1
            for fill in self._book(tracked, (int(event.order_id), int(event.id)), quantity, event, when):
                if isinstance(fill, Fill):
                    out.append(fill)
        return out

    def report(self, tracked: TrackedOrder, tickets: Sequence[OrderTicket]) -> OrderReport:
        """The broker's view of a ticket from LEAN's record of its legs (call :meth:`book_record` first).

        * status from every leg: ``NOT_FOUND`` without LEAN orders; ``REJECTED`` when a leg is
          ``INVALID`` and nothing filled; ``FILLED`` when every leg is ``FILLED``; ``CANCELED``
          (``EXPIRED``) when every leg is closed -- a leg whose record shows ``CANCELED``/``INVALID``
          stays closed although a late fill flipped LEAN's status back; else ``PARTIALLY_FILLED``
          with complete units, ``WORKING`` without;
        * ``fills``: the unit fills (the ids the events gave);
        * ``filled_quantity``: LEAN's own count, the least ``|QuantityFilled| / |ratio|`` over the
          legs (strategy units; contracts for a single leg).
        """
        legs = [(t, tracked.legs[int(t.order_id)]) for t in tickets if int(t.order_id) in tracked.legs]
        broker_id = f"QC{tracked.first_id}" if tracked.legs else None
        if not legs:
            return OrderReport(tracked.order_ref, BrokerStatus.NOT_FOUND)
        statuses: list[str] = []
        filled_units: list[int] = []
        expired = tracked.expired
        for ticket, leg in legs:
            name = self._status_name(ticket.status)
            history = [(self._status_name(e.status), str(e.message or "")) for e in ticket.order_events]
            closed_before = any(s in ("canceled", "invalid") for s, _ in history)
            expired = expired or any(s == "canceled" and "expire" in m.lower() for s, m in history)
            statuses.append(name if name in _CLOSED or not closed_before else "canceled")
            filled_units.append(abs(round(float(ticket.quantity_filled))) // abs(leg.ratio))
        units = min(filled_units) if len(legs) == tracked.leg_count else 0
        if "invalid" in statuses and not units and not tracked.any_leg_fill:
            status = BrokerStatus.REJECTED
        elif all(s == "filled" for s in statuses) and len(legs) == tracked.leg_count:
            status = BrokerStatus.FILLED
        elif all(s in _CLOSED for s in statuses) and len(legs) == tracked.leg_count:
            status = BrokerStatus.EXPIRED if expired else BrokerStatus.CANCELED
        elif units:
            status = BrokerStatus.PARTIALLY_FILLED
        else:
            status = BrokerStatus.WORKING
        return OrderReport(tracked.order_ref, status, tuple(tracked.fills), broker_id, units)

    def status_name(self, status: OrderStatus) -> str:
        """The lower-case name used above for a LEAN ``OrderStatus``."""
        return self._status_name(status)
