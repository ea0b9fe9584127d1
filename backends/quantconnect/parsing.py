"""LEAN ``OrderEvent`` -> ticket events: the complete ``OrderStatus`` mapping, idempotent on replays.

One executor ticket is one LEAN order (a single leg) or one LEAN *combo*: N LEAN orders, one per
leg, sharing a ``GroupOrderManager``. LEAN reports per leg; the ticket wants strategy units.

======================  =========================================================================
LEAN status (code)      ticket event
======================  =========================================================================
``NEW`` (0)             none (created, not yet handed to the brokerage)
``SUBMITTED`` (1)       ``Acknowledged`` (first leg; later ones are duplicates the ticket ignores)
(any open status)       while an update is pending, a non-fill event whose message is LEAN's
                        "Brokerage failed to update order" (it carries the order's current status:
                        ``SUBMITTED``, ``PARTIALLY_FILLED`` or ``UPDATE_SUBMITTED``): ``UpdateRejected``
``PARTIALLY_FILLED``    ``Fill`` for every strategy unit that is now complete on *all* legs
(2) / ``FILLED`` (3)    (signed net per unit = sum of leg ratio x leg fill price; single leg:
                        contracts at the fill price). A fill after ``CANCELED`` is applied (LEAN
                        applies it and flips the status): the ticket records a late fill.
``CANCELED`` (5)        ``Canceled`` once every leg is closed (``Expired`` when LEAN says the order
                        expired)
``NONE`` (6)            none (LEAN does not forward these to ``on_order_event``; ignored if seen)
``INVALID`` (7)         ``Rejected`` (once per combo: LEAN invalidates every leg); ignored for a leg
                        already ``FILLED``/``CANCELED``, as LEAN's transaction handler does; on an
                        order that already has fills, ``Canceled`` once every leg is closed (the
                        fills stand, the rest is dead)
``CANCEL_PENDING`` (8)  none: LEAN's echo of our own cancel (fired inside ``ticket.cancel()``);
                        the executor already recorded ``CancelRequested``
``UPDATE_SUBMITTED``    ``Updated`` (once per update request, whatever the number of legs)
(9)
======================  =========================================================================

Replays: an event whose ``(order_id, id)`` was seen before changes nothing (``duplicates`` counts
it). Fill ids are ``QC<order id>-<event id>`` for a single leg and ``QC<first leg id>-F<n>`` for
the n-th complete-unit fill of a combo, so they are stable for a given event stream.

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

from backends.quantconnect.lean_api import LeanApi
from fsm.events import (
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
from fsm.orders import BrokerEvent, OrderReport, OrderRequest

if TYPE_CHECKING:
    from QuantConnect.Orders import OrderEvent, OrderStatus

__all__ = ["LegOrder", "OrderEventTranslator", "TrackedOrder", "to_decimal"]

log = logging.getLogger("atomic_orders.quantconnect")

_PRICE_QUANTUM = Decimal("0.0001")


def to_decimal(value: float) -> Decimal:
    """A LEAN decimal (a Python float through pythonnet) as the shortest Decimal that round-trips."""
    return Decimal(repr(float(value)))


def _aware(when: dt.datetime) -> dt.datetime:
    """LEAN's ``utc_time`` is naive UTC."""
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


@attrs.define
class LegOrder:
    """One LEAN order of a ticket: its id, contracts per unit (signed) and what it reported."""

    lean_id: int
    ratio: int
    status: str = "new"
    filled: int = 0  # signed contracts
    notional: Decimal = Decimal(0)  # sum of |fill quantity| x fill price

    @property
    def units_filled(self) -> int:
        """Complete strategy units this leg has filled."""
        return abs(self.filled) // abs(self.ratio)

    @property
    def average_price(self) -> Decimal:
        """Average fill price of this leg (0 before any fill)."""
        return self.notional / abs(self.filled) if self.filled else Decimal(0)


@attrs.define
class TrackedOrder:
    """What the translator knows about one executor ticket's LEAN orders."""

    order_ref: str
    request: OrderRequest
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
        """Every leg is filled, canceled or invalid."""
        return bool(self.legs) and all(leg.status in ("filled", "canceled", "invalid") for leg in self.legs.values())


class OrderEventTranslator:
    """Turns LEAN order events into :class:`~fsm.orders.BrokerEvent` s for the executor."""

    def __init__(self, api: LeanApi) -> None:
        self.api = api
        self._by_ref: dict[str, TrackedOrder] = {}
        self._by_lean_id: dict[int, TrackedOrder] = {}
        self._seen: set[tuple[int, int]] = set()
        #: Replayed events (same order id and event id) that were ignored.
        self.duplicates = 0
        #: Events about LEAN orders no ticket owns (placed around the executor): kept, never dropped.
        self.foreign_events: list[OrderEvent] = []
        #: Things that should not happen (uneven combo leg fills, unknown statuses), as text.
        self.anomalies: list[str] = []

    # -- registration ---------------------------------------------------------------------------

    def track(self, request: OrderRequest) -> TrackedOrder:
        """Start tracking a ticket (before its LEAN orders exist)."""
        tracked = TrackedOrder(request.order_ref, request)
        self._by_ref[request.order_ref] = tracked
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
        """The ticket events one LEAN order event means (empty for echoes and replays)."""
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
        out: list[TicketEvent] = []
        if status in ("new", "none", "cancel_pending"):
            pass
        elif self._update_failed(tracked, status, event, message):
            # LEAN's "Brokerage failed to update order" event carries the order's *current* status
            # (Submitted, PartiallyFilled or UpdateSubmitted) and no fill
            tracked.pending_updates -= 1
            if leg.status == "new":
                leg.status = "submitted"
            out.append(UpdateRejected(when, message))
        elif status == "submitted":
            if leg.status == "new":
                leg.status = "submitted"
            if not tracked.acknowledged:
                tracked.acknowledged = True
                out.append(Acknowledged(when, f"QC{tracked.first_id}"))
        elif status in ("partially_filled", "filled"):
            qty = round(float(event.fill_quantity))
            if qty:
                leg.filled += qty
                leg.notional += abs(qty) * to_decimal(event.fill_price)
            leg.status = status
            if not tracked.acknowledged:
                tracked.acknowledged = True
                out.append(Acknowledged(when, f"QC{tracked.first_id}"))
            out.extend(self._unit_fills(tracked, when, key))
        elif status == "canceled":
            leg.status = "canceled"
            if "expire" in message.lower():
                tracked.expired = True
            out.extend(self._closed(tracked, when))
        elif status == "invalid":
            if leg.status in ("filled", "canceled"):
                pass  # LEAN ignores an Invalid for an order already filled or canceled
            elif tracked.units_reported or any(x.filled for x in tracked.legs.values()):
                # LEAN closes a partly filled order as Invalid (e.g. a refused update): the fills
                # stand, the rest will never fill -- for the ticket that is a cancel, not a reject
                leg.status = "invalid"
                out.extend(self._closed(tracked, when))
            else:
                leg.status = "invalid"
                if not tracked.rejected:
                    tracked.rejected = True
                    out.append(Rejected(when, message or "invalid (LEAN)"))
        elif status == "update_submitted":
            if tracked.pending_updates:
                tracked.pending_updates -= 1
                out.append(Updated(when, None))
        else:
            self.anomalies.append(f"unknown LEAN order status {event.status!r} for order {key[0]}")
        return [BrokerEvent(tracked.order_ref, e) for e in out]

    @staticmethod
    def _update_failed(tracked: TrackedOrder, status: str, event: OrderEvent, message: str) -> bool:
        """A non-fill event for an open order answering our pending update with a failure."""
        return (bool(tracked.pending_updates) and tracked.acknowledged
                and status in ("submitted", "partially_filled", "update_submitted")
                and not round(float(event.fill_quantity)) and "failed to update" in message.lower())

    def _unit_fills(self, tracked: TrackedOrder, when: dt.datetime, key: tuple[int, int]) -> list[TicketEvent]:
        request = tracked.request
        if not request.is_combo:
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
        if len(tracked.legs) < len(request.legs):
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
        if len(tracked.legs) < len(tracked.request.legs):
            return []
        tracked.closed_reported = True
        uneven = {leg.lean_id: leg.filled for leg in tracked.legs.values()
                  if leg.units_filled * abs(leg.ratio) != abs(leg.filled) or leg.units_filled != tracked.units_reported}
        if uneven:
            self.anomalies.append(f"{tracked.order_ref}: legs closed with uneven fills {uneven} "
                                  f"(complete units {tracked.units_reported})")
        return [Expired(when) if tracked.expired else Canceled(when)]

    # -- reconciliation -------------------------------------------------------------------------

    def report(self, tracked: TrackedOrder, statuses: Sequence[str]) -> OrderReport:
        """The broker's view of a ticket from its legs' current LEAN statuses (names as above).

        Fills are the ones already reported through events (same ids), so nothing is counted twice.
        """
        if not statuses:
            status = BrokerStatus.NOT_FOUND
        elif "invalid" in statuses and not tracked.units_reported:
            status = BrokerStatus.REJECTED
        elif all(s == "filled" for s in statuses):
            status = BrokerStatus.FILLED
        elif all(s in ("filled", "canceled", "invalid") for s in statuses):
            status = BrokerStatus.EXPIRED if tracked.expired else BrokerStatus.CANCELED
        elif tracked.units_reported:
            status = BrokerStatus.PARTIALLY_FILLED
        else:
            status = BrokerStatus.WORKING
        broker_id = f"QC{tracked.first_id}" if tracked.legs else None
        return OrderReport(tracked.order_ref, status, tuple(tracked.fills), broker_id)

    def status_name(self, status: OrderStatus) -> str:
        """The lower-case name used above for a LEAN ``OrderStatus``."""
        return self._status_name(status)
