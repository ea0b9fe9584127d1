"""Order monitoring: broker order snapshots -> ticket events, polled at a constant request cost.

:class:`TicketTracker` holds what we know about ONE of our orders (``order_ref``): the chain of
broker orders that carried it (a cancel-replace at TastyTrade creates a NEW order id, so a ticket
may span several broker orders), their latest snapshots and which events were already emitted.
:meth:`TicketTracker.events` derives the ticket events from the snapshots following the table
in :mod:`.parsing`; it is idempotent (each acknowledgement, update, fill and final status is
emitted once).

:class:`OrderMonitor` polls. Per tick it sends ONE ``GET /orders/live?status[]=<working statuses>``
for the account (one page holds 200 orders), plus one ``GET /orders/{id}`` for each order we
track that LEFT that list since the last tick (it reached a final status: that one request reads
its final fills). The request count per tick therefore does not grow with the number of open
orders. The interval adapts: ``fast_interval`` while any tracked order may still work,
``idle_interval`` otherwise; failures back off exponentially up to ``max_backoff``. When the
broker has not answered for ``stall_after`` seconds, every unsettled ticket gets
``SubmissionUnknown`` once (the executor then reconciles; it never resends).

The boundary: every raw record is first placed by its identity (:func:`~.parsing.peek_identity`:
our tracked id, our reference, or a replacement of one of our ids); a record that is not ours is
skipped without being parsed in full. One of ours is parsed whole (:func:`~.parsing.parse_order`,
bounded) and checked against our own request (every leg we sent is there). Anything raised while
reading or deriving from it is caught per record: logged with the record's id, counted
(:attr:`OrderMonitor.boundary_errors`) and reported once on its ticket as ``SubmissionUnknown``
(the executor reconciles: the answer comes from the last readable snapshots, never from the bad
record, and an order with none is left out, never ``NOT_FOUND``). The tracker keeps its last
readable snapshot, so one bad record never fails a batch, a poll, or a later tick, the order can
still be cancelled by its id, and the next readable record (a fill) is booked as usual.

Pushed records (the account streamer, :mod:`.streamer`): ``ingest(..., pushed=True)`` places and
parses them exactly like polled ones (same tracker, fills de-duplicated by fill id, events once);
a pushed record older than the one held (``updated-at`` earlier, fewer fills, working after final,
or an earlier status at the same ``updated-at``: a reordered or late notification) is dropped and
counted (:attr:`OrderMonitor.stale_pushes`). While :attr:`OrderMonitor.streaming` is True the poll
runs only as a watchdog (``watchdog_interval``) that catches what the socket missed.

All times are the backend clock's (virtual in a simulation).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from math import gcd
from typing import Any, Protocol

from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.errors import MalformedResponseError, NotFoundError, TastytradeError
from atomic_orders.backends.tastytrade.parsing import (
    WORKING_STATUSES,
    ComboShape,
    OrderSnapshot,
    RecordIdentity,
    combo_shape,
    leg_contradiction,
    parse_order,
    peek_identity,
    record_units,
    unit_price,
    units_filled,
    units_ordered,
)
from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    Expired,
    Fill,
    Rejected,
    SubmissionUnknown,
    TicketEvent,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest

__all__ = ["OrderMonitor", "TicketTracker"]

log = logging.getLogger("atomic_orders.tastytrade.monitor")

#: Statuses of a replacement order that show it took over from its original.
_TOOK_OVER = frozenset({"Received", "Routed", "In Flight", "Live", "Cancel Requested", "Replace Requested", "Filled"})
_CANCEL_LIKE = frozenset({"Cancelled", "Removed", "Partially Removed"})
#: How far along an order's life a working status is (a pushed record earlier than the held one
#: at the same ``updated-at`` is stale); final statuses rank above all.
_RANK = {"Received": 0, "Routed": 0, "Contingent": 0, "In Flight": 1, "Live": 2, "Cancel Requested": 3,
         "Replace Requested": 3}


class _Placed(Protocol):
    """What adoption reads of a record: an :class:`OrderSnapshot` or a :class:`RecordIdentity`."""

    @property
    def replaces_order_id(self) -> str | None: ...

    @property
    def received_at(self) -> dt.datetime | None: ...


class _FillConverter:
    """Fills of ONE broker order -> ticket Fill events (strategy units for a combo)."""

    __slots__ = ("fills", "order_id", "seen", "shape", "units")

    def __init__(self, order_id: str, shape: ComboShape | None) -> None:
        self.order_id = order_id
        self.shape = shape
        self.units = 0
        self.seen: set[str] = set()
        self.fills: list[Fill] = []

    def update(self, snap: OrderSnapshot, now: dt.datetime) -> list[Fill]:
        new: list[Fill] = []
        if self.shape is None:
            for leg in snap.legs[:1]:
                for f in leg.fills:
                    if f.fill_id in self.seen or f.quantity <= 0:
                        continue
                    self.seen.add(f.fill_id)
                    new.append(Fill(time=now, fill_id=f.fill_id, quantity=f.quantity, price=f.price))
        else:
            units = units_filled(snap, self.shape)
            if units > self.units:
                price = unit_price(snap, self.shape, self.units, units)
                new.append(Fill(time=now, fill_id=f"{self.order_id}-u{units}", quantity=units - self.units,
                                price=price))
                self.units = units
            elif units < self.units:
                log.warning("order %s: filled units went down from %d to %d (ignored)", self.order_id, self.units,
                            units)
        self.fills.extend(new)
        return new

    @property
    def quantity(self) -> int:
        """Units (combo) or contracts (one leg) reported so far."""
        return sum(f.quantity for f in self.fills)

    @property
    def covered(self) -> int:
        """Units (combo) or contracts (one leg) the order's listed fills account for."""
        return self.units if self.shape is not None else self.quantity

    def seed(self, snap: OrderSnapshot, known: tuple[Fill, ...]) -> None:
        """Start from fills a previous process already reported for this order (recovery).

        Combo fill ids count cumulative units (``<id>-u<units>``): without this a new process
        would report the units it finds again under a new id. One-leg fill ids are the broker's.
        """
        if self.shape is None:
            ids = {f.fill_id for leg in snap.legs[:1] for f in leg.fills}
            mine = [f for f in known if f.fill_id in ids]
            self.seen.update(f.fill_id for f in mine)
        else:
            prefix = f"{self.order_id}-u"
            mine = [f for f in known if f.fill_id.startswith(prefix) and f.fill_id[len(prefix):].isdigit()]
            if mine:
                self.units = max(int(f.fill_id[len(prefix):]) for f in mine)
        self.fills.extend(mine)


def _shape_from_snapshot(snap: OrderSnapshot) -> ComboShape | None:
    """Leg ratios read from a broker order (only for orders we did not submit ourselves)."""
    if len(snap.legs) <= 1:
        return None
    size = 0
    for leg in snap.legs:
        size = gcd(size, leg.quantity)
    size = size or 1
    return tuple((leg.symbol, max(1, leg.quantity // size), leg.sign) for leg in snap.legs)


def _filled(snap: OrderSnapshot) -> int:
    return sum(f.quantity for leg in snap.legs for f in leg.fills)


def _stale(snap: OrderSnapshot, held: OrderSnapshot | None, held_is_echo: bool) -> bool:
    """True when a pushed ``snap`` shows an order earlier in its life than the ``held`` record."""
    if held is None or held_is_echo:
        return False
    if held.terminal and not snap.terminal:
        return True
    if _filled(snap) < _filled(held):
        return True
    if snap.updated_at is not None and held.updated_at is not None:
        if snap.updated_at != held.updated_at:
            return snap.updated_at < held.updated_at
        return not snap.terminal and _RANK.get(snap.status, 2) < (9 if held.terminal else _RANK.get(held.status, 2))
    return False


class TicketTracker:
    """One ticket's broker orders (original first, then replacements) and what was emitted."""

    def __init__(self, order_ref: str, request: OrderRequest | None, shape: ComboShape | None = None) -> None:
        self.order_ref = order_ref
        self.request = request
        if request is not None:
            shape = combo_shape(request.legs) if request.is_combo else None
        self.shape = shape
        self.chain: list[str] = []
        self.orders: dict[str, OrderSnapshot] = {}
        self._converters: dict[str, _FillConverter] = {}
        self.acked = False
        self.rejected = False
        self._updates: set[str] = set()
        self._update_rejects: set[str] = set()
        self.final: str | None = None
        self.cancel_pending = False
        #: The submission's outcome is unknown: adopt a broker order carrying our identifier.
        self.submission_unknown = False
        #: Our POST was answered 2xx: the order exists, even when its answer could not be read
        #: (then it is never reported NOT_FOUND; reconciliation leaves it out until it reads).
        self.placed = False
        #: Order ids to read again on the next tick whatever the live list says.
        self.refresh: set[str] = set()
        self.submitted_at: dt.datetime | None = None
        self.settled_at: dt.datetime | None = None
        #: When the tracker last learnt something (the time of fills first seen by a reconciliation).
        self.last_seen: dt.datetime | None = None
        #: Fills a previous process already reported for this ticket (recovery), not to be re-reported.
        self.known_fills: tuple[Fill, ...] = ()
        #: Orders known only from a request's answer (a PUT's new order): an echo of the request,
        #: not an outcome. Nothing is derived from them until a poll or a read shows them.
        self.echo_ids: set[str] = set()
        #: The order our last cancel named, its ``updated-at`` when we sent it, and whether a read
        #: since showed it ``Cancel Requested``: a working status read after that is a refused cancel.
        self.cancel_target: str | None = None
        self.cancel_baseline: int | None = None
        self.cancel_seen = False
        #: The order's record counts more fills than it lists (or says Filled while a leg is not):
        #: reported as unknown; reconciliation reads it again.
        self.disputed: str | None = None
        #: Records of this ticket that could not be read, by order id (``""``: deriving events
        #: failed): what was wrong. Reported once each; cleared when the order reads again.
        self.unreadable: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"TicketTracker({self.order_ref!r}, chain={self.chain}, final={self.final})"

    # -- snapshots ------------------------------------------------------------------------------

    def add(self, snap: OrderSnapshot, *, echo: bool = False) -> None:
        """Record the latest snapshot of one of this ticket's broker orders.

        ``echo``: the snapshot is a request's own answer (a DELETE's or PUT's), which shows the
        order as the request found it, not its outcome. An echo of an order we know is dropped
        (the order is read again); an echo of a new order (a replacement) only makes its id known.
        """
        oid = snap.order_id
        if echo:
            self.refresh.add(oid)
            if oid in self.orders:
                return
            self.echo_ids.add(oid)
        else:
            self.echo_ids.discard(oid)
        if oid not in self.orders:
            if self.shape is None and self.request is None:
                self.shape = _shape_from_snapshot(snap)
            if snap.replaces_order_id is not None and snap.replaces_order_id in self.chain:
                at = self.chain.index(snap.replaces_order_id) + 1
                while at < len(self.chain) and self.chain[at] in self.orders and self._newer(self.chain[at], oid):
                    at += 1
                self.chain.insert(at, oid)
            elif self.chain and self.orders[self.chain[0]].replaces_order_id == oid:
                self.chain.insert(0, oid)  # we learnt of the original after its replacement
            else:
                self.chain.append(oid)
            converter = _FillConverter(oid, self.shape)
            if self.known_fills:
                converter.seed(snap, self.known_fills)
            self._converters[oid] = converter
            self.submission_unknown = False
        self.orders[oid] = snap
        if not echo:
            self.refresh.discard(oid)
            self.unreadable.pop(oid, None)

    def misfit(self, snap: OrderSnapshot) -> str | None:
        """Why ``snap`` cannot be one of this ticket's orders (a leg we sent is missing), or None."""
        if self.shape is not None:
            wanted = [symbol for symbol, _r, _s in self.shape]
        elif self.request is not None:
            wanted = [leg.symbol.occ for leg in self.request.legs]
        else:
            return None
        have = {leg.symbol for leg in snap.legs}
        missing = [symbol for symbol in wanted if symbol not in have]
        if missing:
            return f"legs: no leg {missing[0]!r} of {self.order_ref} in order {snap.order_id}"
        return None

    def may_adopt(self, snap: _Placed, margin: dt.timedelta) -> bool:
        """True when a broker order carrying our reference, id not known yet, is this ticket's.

        A replacement of one of our orders is ours (the broker links it). An original is ours
        only while we wait for our own submission's id (its answer was lost) and it was received
        no earlier than ``margin`` before we sent ours. Anything else carrying the same reference
        is another process's order (same external-identifier shape, not issued by us): it is
        never folded into this ticket.
        """
        if snap.replaces_order_id is not None:
            return snap.replaces_order_id in self.chain
        if self.chain:
            return False  # we hold our original: another original with our reference is not ours
        if self.submitted_at is None:
            return True  # a reference we were asked about but never sent from this process
        if not self.submission_unknown:
            return False
        return snap.received_at is None or snap.received_at >= self.submitted_at - margin

    @staticmethod
    def _newer(a: str, b: str) -> bool:
        try:
            return int(a) < int(b)
        except ValueError:
            return a < b

    def open_order_ids(self) -> list[str]:
        """Ids of this ticket's orders that are not final yet (they are watched)."""
        return [oid for oid in self.chain if not self.orders[oid].terminal]

    @property
    def settled(self) -> bool:
        """Every broker order final and the final event emitted (or nothing was ever placed)."""
        if self.rejected:
            return True
        return self.final is not None and not self.open_order_ids()

    def current(self) -> OrderSnapshot | None:
        """The broker order that carries the ticket now (the newest replacement that took over)."""
        if not self.chain:
            return None
        for oid in reversed(self.chain[1:]):
            s = self.orders[oid]
            if s.status == "Contingent" or oid in self.echo_ids:
                continue
            if s.status in _TOOK_OVER or s.has_fills or s.live_at is not None or oid in self._updates:
                return s  # it took over (a replacement rejected after working ends the ticket Rejected)
            # a replacement that ended without ever taking over: its original decides
        return self.orders[self.chain[0]]

    @property
    def latest_id(self) -> str | None:
        """The id requests (cancel, replace) should name: the order that carries the ticket now."""
        cur = self.current()
        return None if cur is None else cur.order_id

    def has_pending_replacement(self) -> bool:
        """True while a replacement waits (``Contingent``, or known only from the PUT's answer)."""
        return any(self.orders[oid].status == "Contingent" or oid in self.echo_ids for oid in self.chain[1:])

    def record_count(self) -> int | None:
        """The broker's own count of filled units over the chain (``quantity - remaining-quantity``).

        None when an order of the chain gives no count. Orders known only from an echo count 0.
        """
        total = 0
        for oid in self.chain:
            if oid in self.echo_ids:
                continue
            count = record_units(self.orders[oid], self.shape)
            if count is None:
                return None
            total += count
        return total

    def gap(self) -> str | None:
        """Why the broker's record of this ticket contradicts its own fills, or None.

        An order whose count (``quantity - remaining-quantity``) exceeds the units its fills list
        (fills withheld), a ``Filled`` order whose fills cover less than the order when it gives
        no count, a ``Filled`` combo with a leg not filled, or the final order carrying the ticket
        (not replaced) when it gives no count and its fills cover less than the order: its fills
        list may still grow, so what it filled is unknown, not zero. Call after the converters ran.
        """
        cur = self.current()
        for oid in self.chain:
            if oid in self.echo_ids:
                continue
            snap = self.orders[oid]
            wrong = leg_contradiction(snap)
            if wrong is not None:
                return wrong
            covered = self._converters[oid].covered
            count = record_units(snap, self.shape)
            if count is None and snap.status == "Filled":
                count = units_ordered(snap, self.shape)
            if count is not None and count > covered:
                return (f"order {oid} ({snap.status}): the broker counts {count} filled, its fills list "
                        f"{covered}")
            if (count is None and snap is cur and snap.terminal and not (snap.status in _CANCEL_LIKE and snap.edited)
                    and covered < units_ordered(snap, self.shape)):
                return (f"order {oid} ({snap.status}): the broker gives no count, its fills list {covered} "
                        f"of {units_ordered(snap, self.shape)}")
        return None

    def incomplete_ids(self) -> list[str]:
        """Final orders to read again: their record contradicts their fills (see :meth:`gap`)."""
        return sorted(oid for oid in self.chain if self.disputed is not None and self.orders[oid].terminal
                      and oid not in self.echo_ids)

    def filled_quantity(self) -> int:
        """Units (combo) or contracts (one leg) reported so far over the whole chain."""
        return sum(c.quantity for c in self._converters.values())

    def fills(self) -> tuple[Fill, ...]:
        """Every fill reported so far over the chain, in chain order."""
        return tuple(f for oid in self.chain for f in self._converters[oid].fills)

    # -- events ---------------------------------------------------------------------------------

    def events(self, now: dt.datetime) -> list[TicketEvent]:
        """The ticket events the snapshots imply and that were not emitted yet."""
        out: list[TicketEvent] = []
        if not self.chain:
            return out
        first = self.orders[self.chain[0]]
        if not self.acked and not self.rejected:
            if first.status == "Rejected" and not first.has_fills and record_units(first, self.shape) == 0:
                self.rejected = True
                out.append(Rejected(time=now, reason=first.reject_reason or "rejected by the broker"))
                self.final = "Rejected"
                return out
            self.acked = True
            out.append(Acknowledged(time=now, broker_order_id=first.order_id))
        for oid in self.chain[1:]:
            if oid in self._updates or oid in self._update_rejects or oid in self.echo_ids:
                continue
            s = self.orders[oid]
            if s.status == "Rejected" and not (s.has_fills or s.live_at is not None):
                self._update_rejects.add(oid)
                out.append(UpdateRejected(time=now, reason=s.reject_reason or "replacement rejected"))
            elif s.status in _TOOK_OVER or s.has_fills or s.live_at is not None:
                self._updates.add(oid)
                out.append(Updated(time=now, broker_order_id=oid))
        for oid in self.chain:
            if oid not in self.echo_ids:  # fills from any order object that lists them, whatever its status
                out.extend(self._converters[oid].update(self.orders[oid], now))
        cur = self.current()
        assert cur is not None
        if self.final is None and cur.terminal:
            status = cur.status
            if status in _CANCEL_LIKE and cur.edited:
                return out  # replaced: the replacement (not known yet) carries the ticket
            gap = self.gap()
            if gap is not None:
                # A status never stands in for fills: the ticket's outcome is unknown until the
                # broker's fills agree with its count (reconciliation reads the order again).
                log.warning("%s: %s; outcome unknown until the fills agree", self.order_ref, gap)
                self.disputed = gap
                out.append(SubmissionUnknown(time=now, reason=gap[:500]))
                self.final = status
                self.cancel_pending = False
                self.settled_at = now
                return out
            if status == "Filled":
                if self.cancel_pending:
                    out.append(CancelRejected(time=now, reason="order already filled"))
            elif status in _CANCEL_LIKE:
                out.append(Canceled(time=now))
            elif status == "Expired":
                out.append(Expired(time=now))
            elif status == "Rejected":
                out.append(Rejected(time=now, reason=cur.reject_reason or "rejected by the broker"))
            self.final = status
            self.cancel_pending = False
            self.settled_at = now
        elif self.cancel_pending and not cur.terminal:
            if cur.status == "Cancel Requested":
                self.cancel_seen = True
            elif cur.status != "Contingent" and self._read_since_cancel(cur):
                self.cancel_pending = False
                out.append(CancelRejected(time=now, reason=f"cancel not applied (order is {cur.status})"))
        return out

    def cancel_sent(self, target: str) -> None:
        """Our DELETE of ``target`` was accepted; its outcome comes from later reads, never its answer."""
        self.cancel_pending = True
        self.cancel_target = target
        self.cancel_baseline = self.orders[target].updated_at if target in self.orders else None
        self.cancel_seen = False

    def _read_since_cancel(self, cur: OrderSnapshot) -> bool:
        """The snapshot of ``cur`` was read after our cancel reached the broker (not the one we had)."""
        if self.cancel_seen:
            return True
        if cur.order_id != self.cancel_target:
            return False
        return cur.updated_at is not None and self.cancel_baseline is not None and cur.updated_at > self.cancel_baseline

    def report(self, now: dt.datetime) -> OrderReport:
        """The reconciliation answer from the current snapshots (fills as emitted to the ticket).

        Fills first seen here are recorded as emitted, so the poll does not report them with
        different ids later: reconciliation and polling agree on every fill id.
        """
        cur = self.current()
        if cur is None:
            return OrderReport(order_ref=self.order_ref, status=BrokerStatus.NOT_FOUND)
        for oid in self.chain:
            if oid not in self.echo_ids:
                self._converters[oid].update(self.orders[oid], now)
        status = cur.info.broker_status
        if cur.status in _CANCEL_LIKE and cur.edited:
            status = BrokerStatus.WORKING  # replaced by an order we have not seen yet
        fills = self.fills()
        count = self.record_count()
        if status is BrokerStatus.WORKING and (fills or count):
            status = BrokerStatus.PARTIALLY_FILLED
        gap = self.gap()
        if gap is not None:
            log.warning("%s: broker record contradicts itself: %s", self.order_ref, gap)
        elif self.disputed is not None and cur.terminal:
            log.info("%s: the broker's fills now agree with its count", self.order_ref)
            self.disputed = None
        # TastyTrade may list an order's fills after its final status: without a count they are a lower bound.
        return OrderReport(order_ref=self.order_ref, status=status, fills=fills, broker_order_id=cur.order_id,
                           filled_quantity=count, fills_may_lag=count is None)


class OrderMonitor:
    """Polls the broker's order lists and turns snapshots into :class:`BrokerEvent` s."""

    def __init__(
        self,
        client: TastytradeApiClient,
        clock: Clock,
        *,
        fast_interval: float = 1.0,
        idle_interval: float = 10.0,
        error_backoff: float = 1.0,
        max_backoff: float = 8.0,
        stall_after: float = 20.0,
        linger: float = 1800.0,
        adopt_margin: float = 300.0,
        watchdog_interval: float = 30.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.fast_interval = dt.timedelta(seconds=fast_interval)
        self.idle_interval = dt.timedelta(seconds=idle_interval)
        self.error_backoff = error_backoff
        self.max_backoff = max_backoff
        self.stall_after = dt.timedelta(seconds=stall_after)
        self.linger = dt.timedelta(seconds=linger)
        self.adopt_margin = dt.timedelta(seconds=adopt_margin)
        self.watchdog_interval = dt.timedelta(seconds=watchdog_interval)
        #: True while the account streamer is connected: polls are a slow watchdog then.
        self.streaming = False
        #: Pushed records placed, and pushed records dropped as older than the one held.
        self.pushed_records = 0
        self.stale_pushes = 0
        #: Broker orders seen carrying one of our references that were not ours (another process's), by id.
        self.foreign: set[str] = set()
        self.trackers: dict[str, TicketTracker] = {}
        self._by_id: dict[str, TicketTracker] = {}
        self._dirty: set[str] = set()
        #: Refs of trackers not settled yet (the ones a tick must look after).
        self._watch: set[str] = set()
        self._last_poll: dt.datetime | None = None
        self._last_success: dt.datetime | None = None
        self._next_due: dt.datetime | None = None
        self._failures = 0
        self.stalled = False
        self.last_error: str | None = None
        #: Poll ticks run (successful or not) and HTTP requests they sent.
        self.ticks = 0
        self.tick_requests: list[int] = []
        self.unknown_statuses: set[str] = set()
        self._next_prune = clock.now()
        #: Records (or derivations) that failed at the boundary: caught, logged, counted here.
        self.boundary_errors = 0
        #: Records skipped because they are not ours (never parsed in full).
        self.skipped_records = 0
        #: Events found while reading (an unreadable record of ours), handed out by the next poll.
        self._pending: list[BrokerEvent] = []

    # -- tracking -------------------------------------------------------------------------------

    def track(self, request: OrderRequest, now: dt.datetime) -> TicketTracker:
        """Start tracking one of our orders (before it is sent)."""
        tracker = TicketTracker(request.order_ref, request)
        tracker.submitted_at = now
        self.trackers[request.order_ref] = tracker
        self._watch.add(request.order_ref)
        self._next_due = None  # re-evaluate the interval: something works now
        return tracker

    def forget(self, order_ref: str) -> None:
        """Stop tracking an order that was never placed."""
        tracker = self.trackers.pop(order_ref, None)
        self._watch.discard(order_ref)
        if tracker is not None:
            for oid in [*tracker.chain, *tracker.refresh]:
                if self._by_id.get(oid) is tracker:
                    del self._by_id[oid]

    def tracker_of_id(self, oid: str) -> TicketTracker | None:
        """The tracker a broker order id belongs to, if any."""
        return self._by_id.get(oid)

    def expect_id(self, tracker: TicketTracker, oid: str) -> None:
        """``oid`` is one of ``tracker``'s orders although no record of it could be read yet (our
        POST's answer named it): records with this id are its, and it is read by id until one reads."""
        self._by_id[oid] = tracker
        tracker.refresh.add(oid)
        self._watch.add(tracker.order_ref)
        self.mark_due()

    def tracker_for(self, order_ref: str, request: OrderRequest | None = None) -> TicketTracker:
        """The tracker of ``order_ref`` (created for an order we did not submit in this process)."""
        tracker = self.trackers.get(order_ref)
        if tracker is None:
            tracker = TicketTracker(order_ref, request)
            self.trackers[order_ref] = tracker
        return tracker

    def record(self, tracker: TicketTracker, snap: OrderSnapshot, *, echo: bool = False) -> None:
        """Record a snapshot of one of ``tracker``'s orders (``echo``: a request's own answer, see
        :meth:`TicketTracker.add`; it moves nothing and the order is read again on the next tick)."""
        self._note_status(snap)
        tracker.add(snap, echo=echo)
        self._by_id[snap.order_id] = tracker
        self._watch.add(tracker.order_ref)
        if echo:
            self.mark_due()
        else:
            self._dirty.add(tracker.order_ref)

    def _note_status(self, snap: OrderSnapshot) -> None:
        if not snap.known_status and snap.status not in self.unknown_statuses:
            self.unknown_statuses.add(snap.status)
            log.warning("order %s has status %r, not in the status table: treated as working", snap.order_id,
                        snap.status)

    def _owner(self, ident: RecordIdentity | OrderSnapshot) -> TicketTracker | None:
        oid = ident.order_id
        tracker = self._by_id.get(oid) if oid is not None else None
        if tracker is not None:
            return tracker
        if ident.replaces_order_id is not None and ident.replaces_order_id in self._by_id:
            return self._by_id[ident.replaces_order_id]  # the broker links it to one of ours
        ref = ident.external_identifier
        if ref is None:
            return None
        tracker = self.trackers.get(ref)
        if tracker is None:
            return None
        if not tracker.may_adopt(ident, self.adopt_margin):
            # same reference, not an order we issued (another process on the account): not ours
            if oid is not None and oid not in self.foreign:
                self.foreign.add(oid)
                log.warning("broker order %s carries our reference %s but is not ours: ignored", oid, ref)
            return None
        # one of ours that we did not know the id of: a submission whose answer was lost, or a
        # replacement created by a request whose answer was lost
        log.info("adopting broker order %s for %s", oid, ref)
        return tracker

    def owner(self, snap: OrderSnapshot | RecordIdentity) -> TicketTracker | None:
        """The tracker ``snap`` belongs to (by id, or adopted by our reference; see :meth:`TicketTracker.may_adopt`)."""
        return self._owner(snap)

    def unreadable(self, tracker: TicketTracker, oid: str | None, err: BaseException, now: dt.datetime) -> None:
        """A record (or a derivation) of ``tracker``'s failed at the boundary: log, count, report once.

        The ticket gets ``SubmissionUnknown`` naming the record and what was wrong (once per order
        and problem); its last readable snapshot stays, so later records are still read.
        """
        self.boundary_errors += 1
        key = oid or ""
        what = f"{type(err).__name__}: {err}" if not isinstance(err, TastytradeError) else str(err)
        reason = f"unreadable broker record of order {oid or '?'}: {what}"[:500]
        if tracker.unreadable.get(key) == reason:
            return
        tracker.unreadable[key] = reason
        log.warning("%s: %s", tracker.order_ref, reason)
        self._pending.append(BrokerEvent(tracker.order_ref, SubmissionUnknown(time=now, reason=reason)))

    def ingest(self, item: Any, now: dt.datetime, expect: TicketTracker | None = None,
               expect_id: str | None = None, *, pushed: bool = False) -> TicketTracker | None:
        """Place one raw record, parse it if it is ours and record it; never raises.

        ``expect``/``expect_id``: the record was read by id for this tracker (its id must match).
        ``pushed``: the record came from the account streamer (dropped when older than the one
        held, see the module docstring). Returns the tracker that recorded it, or None (not ours,
        or unreadable: counted).
        """
        if pushed:
            self.pushed_records += 1
        try:
            ident = peek_identity(item)
            tracker = expect if expect is not None else self._owner(ident)
            if tracker is None:
                self.skipped_records += 1
                return None
            oid = ident.order_id or expect_id
            try:
                snap = parse_order(item)
                if expect_id is not None and snap.order_id != expect_id:
                    raise MalformedResponseError(f"id={snap.order_id!r}: the answer about order {expect_id} "
                                                 "names another order")
                misfit = tracker.misfit(snap)
                if misfit is not None:
                    raise MalformedResponseError(f"order {snap.order_id}: {misfit}")
            except Exception as err:  # any failure to read one record stays with that record
                self.unreadable(tracker, oid, err, now)
                return None
            if pushed and _stale(snap, tracker.orders.get(snap.order_id), snap.order_id in tracker.echo_ids):
                self.stale_pushes += 1
                return tracker
            self.record(tracker, snap)
            return tracker
        except Exception:  # a bug while placing a record: counted, the batch goes on
            self.boundary_errors += 1
            log.exception("a broker record could not be placed; skipped")
            return None

    def touch(self, order_ref: str) -> None:
        """Derive ``order_ref``'s events on the next :meth:`poll` even when no request is due."""
        self._dirty.add(order_ref)

    def mark_due(self) -> None:
        """Poll at the next opportunity (after a request whose outcome must be read back)."""
        self._next_due = self.clock.now()

    # -- polling --------------------------------------------------------------------------------

    def _working(self) -> bool:
        return bool(self._watch)

    def next_poll_time(self) -> dt.datetime:
        """When the next poll is due."""
        if self._next_due is not None:
            return self._next_due
        if self._last_poll is None:
            return self.clock.now()
        if self.streaming:
            return self._last_poll + self.watchdog_interval
        return self._last_poll + (self.fast_interval if self._working() else self.idle_interval)

    def poll(self, now: dt.datetime, force: bool = False) -> list[BrokerEvent]:
        """Poll when due (or ``force``); return the events implied by everything learnt.

        Never raises: a failure deriving one ticket's events is that ticket's anomaly.
        """
        out: list[BrokerEvent] = []
        if force or now >= self.next_poll_time():
            out.extend(self._tick(now))
        for ref in sorted(self._dirty):
            tracker = self.trackers.get(ref)
            if tracker is None:
                continue
            tracker.last_seen = now
            try:
                out.extend(BrokerEvent(ref, e) for e in tracker.events(now))
            except Exception as err:  # the tracker keeps its state; the next readable record goes on
                self.unreadable(tracker, None, err, now)
            if tracker.settled:
                self._watch.discard(ref)
        self._dirty.clear()
        self._prune(now)
        out.extend(self.take_pending())
        return out

    def take_pending(self) -> list[BrokerEvent]:
        """Events found while reading (unreadable records), once each."""
        out, self._pending = self._pending, []
        return out

    def _tick(self, now: dt.datetime) -> list[BrokerEvent]:
        self.ticks += 1
        self._last_poll = now
        self._next_due = None
        before = self.client.requests_sent
        try:
            items = self.client.live_orders(WORKING_STATUSES)
        except TastytradeError as err:
            self.tick_requests.append(self.client.requests_sent - before)
            return self._failed(now, err)
        seen: set[str] = set()
        for item in items:
            oid = peek_identity(item).order_id
            if oid is not None:
                seen.add(oid)  # read (well or not) this tick: not read again by id
            self.ingest(item, now)
        for ref in sorted(self._watch):
            tracker = self.trackers.get(ref)
            if tracker is None:
                continue
            for oid in tracker.open_order_ids() + sorted(tracker.refresh):
                if oid in seen and oid not in tracker.refresh and oid not in tracker.echo_ids:
                    continue
                self._read_one(tracker, oid)
            if tracker.chain:
                last = tracker.orders[tracker.chain[-1]]
                follow = last.replacing_order_id
                if follow is not None and follow not in tracker.orders:
                    self._read_one(tracker, follow)
        self._failures = 0
        self._last_success = now
        if self.stalled:
            log.warning("broker answers again")
        self.stalled = False
        self.last_error = None
        self.tick_requests.append(self.client.requests_sent - before)
        return []

    def _read_one(self, tracker: TicketTracker, oid: str) -> None:
        """``GET /orders/{id}`` for an order that left the live list (or must be re-read)."""
        try:
            raw = self.client.get_order(oid)
        except NotFoundError:
            log.warning("order %s of %s: the broker does not know it", oid, tracker.order_ref)
            tracker.refresh.discard(oid)
            return
        except TastytradeError as err:
            log.warning("reading order %s of %s failed: %s (retried next tick)", oid, tracker.order_ref, err)
            return
        self.ingest(raw, self.clock.now(), expect=tracker, expect_id=oid)

    def _failed(self, now: dt.datetime, err: TastytradeError) -> list[BrokerEvent]:
        self._failures += 1
        self.last_error = str(err)
        wait = min(self.max_backoff, self.error_backoff * 2 ** (self._failures - 1))
        self._next_due = now + dt.timedelta(seconds=wait)
        log.warning("order poll failed (%d in a row, next in %gs): %s", self._failures, wait, err)
        since = self._last_success or self._first_tracked()
        out: list[BrokerEvent] = []
        if not self.stalled and since is not None and now - since >= self.stall_after:
            self.stalled = True
            silent = (now - since).total_seconds()
            log.error("broker stalled: no answer for %.0fs; outcome of open orders unknown", silent)
            reason = f"broker not answering for {silent:.0f}s ({err})"
            for ref in sorted(self._watch):
                tracker = self.trackers.get(ref)
                if tracker is not None and not tracker.settled:
                    out.append(BrokerEvent(ref, SubmissionUnknown(time=now, reason=reason[:500])))
        return out

    def _first_tracked(self) -> dt.datetime | None:
        times = [t.submitted_at for t in self.trackers.values() if t.submitted_at is not None]
        return min(times) if times else None

    def _prune(self, now: dt.datetime) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + self.linger / 10
        drop = [ref for ref, t in self.trackers.items()
                if t.settled and t.settled_at is not None and now - t.settled_at > self.linger]
        for ref in drop:
            self.forget(ref)

    def open_orders(self) -> Iterable[str]:
        """Refs of tracked orders that may still work."""
        return sorted(self._watch)
