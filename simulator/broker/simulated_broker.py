"""BrokerSimulator: a deterministic broker with order matching, latency and configurable chaos.

How it works
------------
Everything happens on a :class:`~atomic_orders.simulator.broker.engine.Scheduler` in simulated seconds. The broker
keeps the *truth* about every order it received (status, fills, position); the client learns
about it only through *deliveries*: :class:`~atomic_orders.fsm.orders.BrokerEvent` values that become visible
to :meth:`BrokerSimulator.poll_events` at their delivery time. An event's ``time`` is when it
happened at the broker; its delivery can be later (latency), doubled (duplicate), held back
behind later events (reorder), or postponed to the end of an outage.

Lifecycle of an order:

1. :meth:`~BrokerSimulator.submit` -- the broker *receives* it (reported ``working`` by
   :meth:`~BrokerSimulator.reconcile` from now on, as a real broker's "received" state).
2. After the ack latency it is *processed*: rejected (after the close, an unknown underlying,
   an off-tick limit, or by chance) or acknowledged and working.
3. A working order gets *fill opportunities*, one scheduled event at a time (no scanning): a
   marketable order fills at the touch after a short delay; a resting limit order fills with an
   intensity that rises toward the natural price and falls for better prices, and fills at its
   limit; a resting order the market moves through fills at its limit on its next opportunity
   (opportunities are at most ``limit_recheck_seconds`` apart on average). Fills may be partial.
4. Cancels and replaces are processed after their latency; day orders still working at the
   close expire.

Per order, deliveries are first-in-first-out (a later event is never delivered before an earlier
one) unless the reorder knob holds one back or a race fill is deliberately reported late.

Quotes (:meth:`BrokerSimulator.quote`) come from the :class:`~atomic_orders.simulator.broker.market.MarketModel` and are
stamped with the start of their market step. Broker truth is what :meth:`~BrokerSimulator.reconcile`
and :meth:`~BrokerSimulator.positions` report; it never holds more fills than an order's quantity,
whatever the deliveries look like.

All prices are handled internally as signed integer cents per unit "as a buyer" (debit
positive): a bought leg costs its ask, a sold leg earns its bid. A single-leg sell order at limit
``L`` is a "buy" at ``-L``. This makes marketability one comparison: ``signed_limit >= net_ask``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import json
import math
import struct
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, cast

from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused, ValidationError
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    Expired,
    Fill,
    Rejected,
    TicketEvent,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, OrderType, Quote, TimeInForce
from atomic_orders.fsm.pricing import DEFAULT_TICKS
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.engine import EventHandle, Scheduler, VirtualClock, make_rng
from atomic_orders.simulator.broker.market import SESSION_SECONDS, MarketModel, cents_to_decimal
from atomic_orders.simulator.broker.script import BrokerScript, FillAt, FillOnCancel, Outcome, Reject

__all__ = ["BrokerSimulator"]

# Broker-side order states (small ints: compared on the hot path).
_PENDING, _WORKING, _FILLED, _CANCELED, _REJECTED, _EXPIRED = range(6)

_FINAL_REASON = {
    _FILLED: "already filled",
    _CANCELED: "already canceled",
    _REJECTED: "order rejected",
    _EXPIRED: "order expired",
}
_STATUS_NAMES = ("pending", "working", "filled", "canceled", "rejected", "expired")
_INF = math.inf


def _fmt_t(t: float) -> str:
    return f"{t:.6f}"


class _Order:
    """Broker-side truth about one order (mutable; one per order received).

    Once final (filled, canceled, rejected, expired) :meth:`settle` drops what only a working order
    needs (the request, its units), keeping status, fills, broker id and the delivery watermark that
    later answers (a cancel reject) still follow; between scheduler runs the broker then replaces
    it by a compact :class:`_Final` (callbacks still holding this object see its final status).
    """

    __slots__ = (
        "ref",
        "request",
        "broker_id",
        "status",
        "quantity",
        "filled",
        "fills",
        "units",
        "iunits",
        "bad_symbol",
        "is_combo",
        "is_market",
        "price_sign",
        "limit",
        "limit_c",
        "day",
        "resting",
        "silent",
        "opp",
        "cand_rate",
        "cancel_requested",
        "watermark",
        "held",
        "scripted",
    )

    def __init__(self, request: OrderRequest, broker_id: str, market: MarketModel) -> None:
        self.ref = request.order_ref
        self.request: OrderRequest | None = request
        self.broker_id = broker_id
        self.status = _PENDING
        self.quantity = request.quantity
        self.filled = 0
        self.fills: tuple[Fill, ...] = ()  # a tuple: most orders fill once, a list would cost more
        self.is_combo = request.is_combo
        legs = request.legs
        if self.is_combo:
            self.units: tuple[tuple[OptionSymbol, int], ...] = tuple((leg.symbol, leg.signed_ratio) for leg in legs)
            self.price_sign = 1
        else:
            # a single leg trades in contracts; its price is positive whatever the side
            sign = legs[0].side.sign
            self.units = ((legs[0].symbol, sign),)
            self.price_sign = sign
        # the same units with interned symbols, for the market's hot path
        self.bad_symbol = any(sym.underlying != market.underlying for sym, _ in self.units)
        self.iunits = () if self.bad_symbol else tuple((market.intern(sym), n) for sym, n in self.units)
        self.is_market = request.order_type is OrderType.MARKET
        self.limit: Decimal | None = request.limit_price
        self.limit_c = self._signed_cents(request.limit_price)
        self.day = request.time_in_force is TimeInForce.DAY
        self.resting = False  # evaluated non-marketable at its last opportunity
        self.silent = False  # partial-then-silence: no more fill opportunities
        self.opp: EventHandle | None = None
        self.cand_rate = _INF  # rate of the candidate process that produced the pending opportunity
        self.cancel_requested = False
        self.watermark = 0.0  # latest FIFO delivery time of this order's events
        self.held: tuple[Fill, ...] = ()  # race fill reports released after the cancel's result
        self.scripted: Outcome | None = None  # decided by a BrokerScript: no random matching

    def _signed_cents(self, limit: Decimal | None) -> int:
        """The limit as signed buyer's cents, rounded against us (exact for on-cent prices)."""
        if limit is None or not limit.is_finite():
            return 0
        return math.floor(limit * 100 * self.price_sign)

    def settle(self) -> None:
        """The order is final: keep only what reconcile, positions and later answers need."""
        self.request = None
        self.units = ()
        self.iunits = ()
        # the limit only matters while the order can fill or be replaced (a final order answers
        # a replace with its final reason before any price check)
        self.limit = None
        self.limit_c = 0

    def set_limit(self, limit: Decimal) -> None:
        """Change the limit (a replace)."""
        self.limit = limit
        self.limit_c = self._signed_cents(limit)

    def touch_price(self, net_ask_c: int) -> Decimal:
        """The touch as this order's price: the signed net for a combo, the positive option price for a leg."""
        return cents_to_decimal(net_ask_c * self.price_sign)


_ONE_US = dt.timedelta(microseconds=1)
#: A final order as bytes (:meth:`_Final.encode`): status, broker id number, watermark; then per
#: fill microseconds since the open, quantity, price in cents.
_HEAD = struct.Struct("<BId")
_FILL = struct.Struct("<qIq")


class _Final:
    """A final order as the broker remembers it for the rest of the session.

    It answers all that a final order still must: :meth:`BrokerSimulator.reconcile` and
    ``find_orders`` (status, fills, broker id), a later cancel or replace (its final reason,
    delivered behind ``watermark``), duplicate-reference refusal (its key). Built from a settled
    :class:`_Order` once no callback can still change it (:meth:`BrokerSimulator._compact_settled`).

    A broker id ``SIM`` + 7 digits is kept as its number. Fills are kept flat in ``packed`` as
    ``(microseconds since the open, quantity, price)`` triples when the fill id is the broker's own
    (``<broker id>-<n>``, the n-th fill) and the time is on the session's clock; :meth:`fills` rebuilds
    them into :class:`Fill` values equal to the originals. Any other fill (one held from a journal)
    stays as it was in ``kept``. The broker holds it as bytes (:meth:`encode`, about 70 for an order
    filled once, the reason a settled order costs about 150 bytes with its key) whenever it can.
    """

    __slots__ = ("ref", "status", "bid", "watermark", "packed", "kept")

    def __init__(self, o: _Order, session_open: dt.datetime) -> None:
        self.ref = o.ref
        self.status = o.status
        bid = o.broker_id
        digits = bid[3:]
        numbered = bid.startswith("SIM") and digits.isascii() and digits.isdigit() and f"SIM{int(digits):07d}" == bid
        self.bid: int | str = int(digits) if numbered else bid
        self.watermark = o.watermark
        packed: list[int | Decimal] = []
        for i, f in enumerate(o.fills, 1):
            us = (f.time - session_open) // _ONE_US
            if (f.fill_id != f"{bid}-{i}" or f.time.tzinfo is not session_open.tzinfo
                    or session_open + dt.timedelta(microseconds=us) != f.time):
                packed = []
                break
            price = f.price
            if price and price.as_tuple().exponent == -2:  # a cent price: the shared value (same digits)
                price = cents_to_decimal(int(price.scaleb(2)))
            packed += (us, f.quantity, price)
        self.packed: tuple[int | Decimal, ...] = tuple(packed)
        self.kept: tuple[Fill, ...] = () if packed or not o.fills else o.fills

    @property
    def broker_id(self) -> str:
        """The broker's id of the order (``SIM0000042``)."""
        bid = self.bid
        return bid if isinstance(bid, str) else f"SIM{bid:07d}"

    def encode(self) -> bytes | None:
        """The record as bytes (about 70 for an order filled once), or ``None`` when it has a part
        bytes do not hold (a broker id or fill of another form, a price not in whole cents).

        Bytes are not tracked by the garbage collector and cost a third of the record's objects:
        :meth:`BrokerSimulator._compact_settled` keeps a final order so, :meth:`decode` reads it.
        """
        bid = self.bid
        if isinstance(bid, str) or self.kept or not 0 <= bid < 1 << 32:
            return None
        packed = self.packed
        out = [_HEAD.pack(self.status, bid, self.watermark)]
        for k in range(0, len(packed), 3):
            us, quantity, price = cast("tuple[int, int, Decimal]", packed[k:k + 3])
            if not (price and price.as_tuple().exponent == -2 and 0 < quantity < 1 << 32
                    and -(1 << 63) <= us < 1 << 63):
                return None
            cents = int(price.scaleb(2))
            if not -(1 << 63) <= cents < 1 << 63:
                return None
            out.append(_FILL.pack(us, quantity, cents))
        return b"".join(out)

    @classmethod
    def decode(cls, ref: str, data: bytes) -> _Final:
        """The record :meth:`encode` gave ``data`` for (prices as the shared cent values, equal and
        with the same digits)."""
        record = cls.__new__(cls)
        record.ref = ref
        record.status, record.bid, record.watermark = _HEAD.unpack_from(data)
        packed: list[int | Decimal] = []
        for us, quantity, cents in _FILL.iter_unpack(memoryview(data)[_HEAD.size:]):
            packed += (us, quantity, cents_to_decimal(cents))
        record.packed = tuple(packed)
        record.kept = ()
        return record

    def fills(self, session_open: dt.datetime) -> tuple[Fill, ...]:
        """Every fill of the order, equal to the ones it reported."""
        if self.kept:
            return self.kept
        packed = self.packed
        bid = self.broker_id
        fills: list[Fill] = []
        for n, k in enumerate(range(0, len(packed), 3), 1):
            us, quantity, price = cast("tuple[int, int, Decimal]", packed[k:k + 3])
            time = session_open + dt.timedelta(microseconds=us)
            fills.append(Fill(time=time, fill_id=f"{bid}-{n}", quantity=quantity, price=price))
        return tuple(fills)


class BrokerSimulator:
    """A simulated broker for one session; deterministic for a given seed, profile and call sequence.

    ``session_open`` defaults to the market's (or the market model's default); ``session_seconds``
    is when the market closes (day orders expire, later submissions are rejected "market closed").
    With ``event_log=False`` no per-event history is kept, and with ``keep_requests=False`` no
    request (:attr:`orders_seen`): a final order is then a summary of a few hundred bytes
    (status, fills, broker id), all that :meth:`reconcile` and :meth:`positions` answer from. With a
    ``script`` (:mod:`atomic_orders.simulator.broker.script`) every received order's fate is the script's, not the
    random matching engine's (latencies and delivery chaos still apply).
    """

    def __init__(
        self,
        seed: int,
        profile: ChaosProfile,
        market: MarketModel | None = None,
        session_open: dt.datetime | None = None,
        session_seconds: float = SESSION_SECONDS,
        event_log: bool = True,
        script: BrokerScript | None = None,
        keep_requests: bool = True,
    ) -> None:
        if market is None:
            market = MarketModel(seed, session_open=session_open, session_seconds=session_seconds)
        elif session_open is not None and session_open != market.session_open:
            raise ValueError(f"session_open={session_open!r}: differs from the market's {market.session_open!r}")
        if session_seconds <= 0:
            raise ValueError(f"session_seconds={session_seconds!r}: must be positive")
        self.seed = seed
        self.profile = profile
        self.script = script
        self.market = market
        self.session_seconds = float(session_seconds)
        self.clock = VirtualClock(market.session_open)
        self.scheduler = Scheduler(self.clock)
        #: Every request that reached the broker, in arrival order (including ones landed in outages);
        #: left empty with ``keep_requests=False`` (a long session: each request holds its legs).
        self.orders_seen: list[OrderRequest] = []
        self._keep_requests = keep_requests
        #: What chaos did (and basic volumes); keys are stable, see :meth:`_new_stats`.
        self.stats: dict[str, int] = self._new_stats()
        #: Every order of the session by reference: an ``_Order`` while it can change, a compact
        #: ``_Final`` once it is final and no callback can still touch it, kept as bytes when it can be
        #: (:meth:`_Final.encode`; :meth:`_record` reads either).
        self._orders: dict[str, _Order | _Final | bytes] = {}
        #: Orders settled since the last compaction (see :meth:`_compact_settled`).
        self._settling: list[_Order] = []
        self._working: dict[str, _Order] = {}
        self._positions: dict[OptionSymbol, int] = {}
        self._deliveries: list[tuple[float, int, BrokerEvent]] = []
        self._dseq = 0
        self._n_orders = 0
        self._closed = False
        self._log: list[dict[str, Any]] | None = [] if event_log else None
        self._rng_accept = make_rng(seed, "broker.accept")
        self._rng_fill = make_rng(seed, "broker.fill")
        self._rng_cancel = make_rng(seed, "broker.cancel")
        self._rng_delivery = make_rng(seed, "broker.delivery")
        self._outages = self._draw_outages(make_rng(seed, "broker.outage"))
        self._outage_starts = [s for s, _ in self._outages]
        for start, end in self._outages:
            self.scheduler.schedule(start, self._outage_begins, start, end)
            self.scheduler.schedule(end, self._outage_ends, start, end)
        self.scheduler.schedule(self.session_seconds, self._close)

    # -- setup ----------------------------------------------------------------------------------

    @staticmethod
    def _new_stats() -> dict[str, int]:
        keys = (
            "submitted",
            "accepted",
            "rejected",
            "refused_duplicate_ref",
            "fills",
            "partial_fills",
            "partial_then_silence",
            "cancels_requested",
            "canceled",
            "cancel_rejected",
            "cancel_races",
            "late_fills",
            "fills_after_cancel_reject",
            "replaces_requested",
            "updated",
            "update_rejected",
            "expiries",
            "deliveries",
            "duplicates",
            "reorders",
            "outages",
            "outage_submits",
            "landed_during_outage",
            "lost_during_outage",
            "unavailable",
        )
        return dict.fromkeys(keys, 0)

    def _draw_outages(self, rng: Any) -> tuple[tuple[float, float], ...]:
        """Non-overlapping outage windows ``[start, end)`` as a Poisson process over the session."""
        p = self.profile
        rate = p.outage_rate_per_hour / 3600.0
        windows: list[tuple[float, float]] = []
        if rate <= 0 or p.outage_mean_seconds <= 0:
            return ()
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= self.session_seconds:
                break
            length = rng.expovariate(1.0 / p.outage_mean_seconds)
            windows.append((t, t + length))
            t += length
        return tuple(windows)

    # -- time -----------------------------------------------------------------------------------

    @property
    def outage_windows(self) -> tuple[tuple[float, float], ...]:
        """Every outage of the session as ``(start, end)`` seconds (the broker is down in ``[start, end)``)."""
        return self._outages

    def in_outage(self, seconds: float | None = None) -> bool:
        """True when the broker is unreachable at ``seconds`` (default: now)."""
        t = self.clock.seconds if seconds is None else seconds
        i = bisect.bisect_right(self._outage_starts, t) - 1
        return i >= 0 and t < self._outages[i][1]

    def _after_outage(self, t: float) -> float:
        """``t``, or the end of the outage containing it (nothing is delivered during an outage)."""
        starts = self._outage_starts
        if not starts:
            return t
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0:
            end = self._outages[i][1]
            if t < end:
                return end
        return t

    def next_event_time(self) -> float | None:
        """When something next happens (an internal event or a delivery), or ``None``.

        May be at or before the current time when deliveries are waiting for :meth:`poll_events`.
        """
        t = self.scheduler.next_time()
        if self._deliveries:
            d = self._deliveries[0][0]
            if t is None or d < t:
                return d
        return t

    def advance_to(self, seconds: float) -> None:
        """Run every internal event up to ``seconds`` and move the clock there (never backwards)."""
        if seconds < self.clock.seconds:
            return
        self.scheduler.run_until(seconds)
        if self._settling:
            self._compact_settled()

    def close_session(self) -> None:
        """Advance to the close: day orders still working expire."""
        self.advance_to(self.session_seconds)

    # -- requests -------------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> None:
        """Send a new order.

        Raises :class:`SubmissionRefused` for a duplicate ``order_ref`` or an underlying the
        market does not trade, and :class:`SubmissionOutcomeUnknown` during an outage (the
        order may still have landed: ``outage_landed_rate``).
        """
        ref = request.order_ref
        now = self.clock.seconds
        if self.in_outage(now):
            self.stats["outage_submits"] += 1
            rate = self.profile.outage_landed_rate
            landed = rate > 0 and self._rng_accept.random() < rate and ref not in self._orders
            if landed:
                self.stats["landed_during_outage"] += 1
                self._receive(request, now, landed=True)
            else:
                self.stats["lost_during_outage"] += 1
                if self._log is not None:
                    self._log.append({"t": _fmt_t(now), "kind": "lost_in_outage", "ref": ref})
            raise SubmissionOutcomeUnknown(ref, "broker unreachable (outage)")
        if ref in self._orders:
            self.stats["refused_duplicate_ref"] += 1
            raise SubmissionRefused(ref, "duplicate order reference")
        for leg in request.legs:
            if leg.symbol.underlying != self.market.underlying:
                raise SubmissionRefused(ref, f"unknown underlying {leg.symbol.underlying!r}")
        self._receive(request, now)

    def cancel(self, order_ref: str) -> None:
        """Ask to cancel; the outcome (``Canceled`` / ``CancelRejected``) arrives as events.

        Raises :class:`BrokerUnavailable` during an outage.
        """
        now = self.clock.seconds
        if self.in_outage(now):
            self.stats["unavailable"] += 1
            raise BrokerUnavailable(f"cancel of {order_ref!r}: broker unreachable (outage)")
        p = self.profile
        rng = self._rng_cancel
        delay = self._latency(rng, p.cancel_latency_mean, p.cancel_latency_jitter)
        self.stats["cancels_requested"] += 1
        o = self._record(order_ref)
        if self._log is not None:
            self._log.append({"t": _fmt_t(now), "kind": "cancel_requested", "ref": order_ref})
        if o is None:
            event = CancelRejected(time=self.clock.to_datetime(now + delay), reason="unknown order")
            self.stats["cancel_rejected"] += 1
            self._deliver(None, order_ref, event, now + delay)
            return
        if isinstance(o, _Final):  # final: nothing can race the cancel; its answer is the final reason
            self.scheduler.schedule(now + delay, self._process_cancel, o)
            return
        if isinstance(o.scripted, FillOnCancel) and not o.cancel_requested and o.status == _WORKING:
            race = o.scripted
            self.scheduler.schedule(now, self._scripted_fill, o, FillAt(0.0, race.price, race.quantity), race.late)
        elif (
            o.scripted is None
            and not o.cancel_requested
            and o.status == _WORKING
            and p.cancel_race_rate > 0
            and rng.random() < p.cancel_race_rate
        ):
            # the order executes after our request but before the broker acts on it
            self.scheduler.schedule(now + rng.random() * delay, self._race_fill, o)
        o.cancel_requested = True
        self.scheduler.schedule(now + delay, self._process_cancel, o)

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """Ask to change a working order's limit (and total quantity); ``Updated``/``UpdateRejected`` follows.

        Raises :class:`BrokerUnavailable` during an outage.
        """
        now = self.clock.seconds
        if self.in_outage(now):
            self.stats["unavailable"] += 1
            raise BrokerUnavailable(f"replace of {order_ref!r}: broker unreachable (outage)")
        p = self.profile
        delay = self._latency(self._rng_cancel, p.replace_latency_mean, p.replace_latency_jitter)
        self.stats["replaces_requested"] += 1
        o = self._record(order_ref)
        if self._log is not None:
            self._log.append(
                {
                    "t": _fmt_t(now),
                    "kind": "replace_requested",
                    "ref": order_ref,
                    "limit": str(limit_price),
                    "quantity": quantity,
                }
            )
        if o is None:
            event = UpdateRejected(time=self.clock.to_datetime(now + delay), reason="unknown order")
            self.stats["update_rejected"] += 1
            self._deliver(None, order_ref, event, now + delay)
            return
        self.scheduler.schedule(now + delay, self._process_replace, o, limit_price, quantity)

    def poll_events(self) -> list[BrokerEvent]:
        """Every event delivered up to now and not yet polled, in delivery order."""
        heap = self._deliveries
        now = self.clock.seconds
        out: list[BrokerEvent] = []
        pop = heapq.heappop
        while heap and heap[0][0] <= now:
            out.append(pop(heap)[2])
        return out

    def reconcile(self, order_refs: Iterable[str]) -> dict[str, OrderReport]:
        """The broker's truth about each order: status, every fill so far, broker id.

        ``NOT_FOUND`` for a reference the broker never received. Raises
        :class:`BrokerUnavailable` during an outage.
        """
        if self.in_outage():
            self.stats["unavailable"] += 1
            raise BrokerUnavailable("reconcile: broker unreachable (outage)")
        out: dict[str, OrderReport] = {}
        for ref in order_refs:
            o = self._record(ref)
            if o is None:
                out[ref] = OrderReport(order_ref=ref, status=BrokerStatus.NOT_FOUND)
            else:
                fills = o.fills if isinstance(o, _Order) else o.fills(self.market.session_open)
                out[ref] = OrderReport(
                    order_ref=ref, status=self._broker_status(o), fills=fills, broker_order_id=o.broker_id
                )
        return out

    def find_orders(self, prefix: str) -> dict[str, OrderReport]:
        """Every order received this session whose reference starts with ``prefix``, as :meth:`reconcile` reports it.

        Raises :class:`BrokerUnavailable` during an outage.
        """
        return self.reconcile([ref for ref in self._orders if ref.startswith(prefix)])

    def hold_settled(self, request: OrderRequest, status: BrokerStatus, fills: Iterable[Fill],
                     broker_order_id: str | None = None) -> None:
        """Hold an order that reached a final status before this simulator existed.

        For a recovery rehearsal: a fresh simulator standing in for the broker of a session that
        ended must still know what that broker settled. The order is kept with ``status``
        (``FILLED``, ``CANCELED``, ``REJECTED`` or ``EXPIRED``), its ``fills`` as given (ids kept)
        and the positions they made, so :meth:`reconcile`, :meth:`find_orders` and
        :meth:`positions` answer for it; nothing is scheduled, delivered or counted as submitted.
        ``broker_order_id`` (``SIM`` + 7 digits) is kept, and later orders are numbered after it.
        Raises :class:`ValidationError` for another status, a reference the simulator already
        holds, or fills that do not fit the status (``FILLED``: exactly the order's quantity;
        otherwise less).
        """
        final = {BrokerStatus.FILLED: _FILLED, BrokerStatus.CANCELED: _CANCELED,
                 BrokerStatus.REJECTED: _REJECTED, BrokerStatus.EXPIRED: _EXPIRED}
        if status not in final:
            raise ValidationError("status", status, "only a final status can be held (filled, canceled, rejected "
                                  "or expired)")
        if request.order_ref in self._orders:
            raise ValidationError("request.order_ref", request.order_ref, "the simulator already holds this order")
        held = tuple(fills)
        filled = sum(f.quantity for f in held)
        fits = filled == request.quantity if status is BrokerStatus.FILLED else filled < request.quantity
        if not fits:
            raise ValidationError("fills", filled, f"{status.value} with {filled} of {request.quantity} filled")
        if broker_order_id is None:
            self._n_orders += 1
            broker_order_id = f"SIM{self._n_orders:07d}"
        elif broker_order_id.startswith("SIM") and broker_order_id[3:].isdigit():
            self._n_orders = max(self._n_orders, int(broker_order_id[3:]))  # no later order reuses its id
        o = _Order(request, broker_order_id, self.market)
        o.status = final[status]
        o.filled = filled
        o.fills = held
        for fill in held:
            for symbol, n in o.units:
                self._positions[symbol] = self._positions.get(symbol, 0) + n * fill.quantity
        o.settle()
        record = _Final(o, self.market.session_open)  # nothing is scheduled for it
        self._orders[o.ref] = record.encode() or record

    def quote(self, symbol: OptionSymbol) -> Quote:
        """Top of book for ``symbol`` now."""
        return self.market.quote(symbol, self.clock.seconds)

    def positions(self) -> dict[OptionSymbol, int]:
        """Signed net contracts per symbol from every fill (zero positions left out)."""
        return {s: n for s, n in self._positions.items() if n}

    def order_status(self, order_ref: str) -> str | None:
        """The broker's internal state name of one order (``pending`` .. ``expired``), ``None`` if unknown."""
        o = self._record(order_ref)
        return None if o is None else _STATUS_NAMES[o.status]

    def order_fills(self, order_ref: str) -> tuple[Fill, ...]:
        """Every fill of one order as the broker holds it (truth, even during an outage; ``()`` if unknown).

        A hook for adapters that publish broker state in another form (the TastyTrade emulator
        folds fills not yet delivered into an order it reports final, so none is ever lost).
        """
        o = self._record(order_ref)
        if o is None:
            return ()
        return o.fills if isinstance(o, _Order) else o.fills(self.market.session_open)

    @property
    def working_count(self) -> int:
        """How many orders are working at the broker right now."""
        return len(self._working)

    # -- event log ------------------------------------------------------------------------------

    @property
    def event_log_enabled(self) -> bool:
        """Whether internal happenings are being logged."""
        return self._log is not None

    def event_log_lines(self) -> Iterator[str]:
        """The event log as JSON lines (sorted keys, compact, Decimals as strings).

        The same seed, profile and calls give a byte-identical log. Raises ``RuntimeError``
        when the simulator was built with ``event_log=False``.
        """
        if self._log is None:
            raise RuntimeError("the event log is disabled (BrokerSimulator(..., event_log=False))")
        dumps = json.dumps
        for entry in self._log:
            yield dumps(entry, sort_keys=True, separators=(",", ":"), default=str)

    # -- internals: acceptance ----------------------------------------------------------------

    @staticmethod
    def _latency(rng: Any, mean: float, jitter: float) -> float:
        """A log-normal latency with mean ``mean`` (constant when ``jitter`` is 0)."""
        if mean <= 0:
            return 0.0
        if jitter <= 0:
            return mean
        return float(rng.lognormvariate(math.log(mean) - 0.5 * jitter * jitter, jitter))

    def _fill_latency(self) -> float:
        p = self.profile
        return self._latency(self._rng_fill, p.fill_latency_mean, p.fill_latency_jitter)

    def _receive(self, request: OrderRequest, now: float, landed: bool = False) -> None:
        self._n_orders += 1
        o = _Order(request, f"SIM{self._n_orders:07d}", self.market)
        self._orders[o.ref] = o
        if self._keep_requests:
            self.orders_seen.append(request)
        if self.script is not None:
            o.scripted = self.script.decide(request)
        self.stats["submitted"] += 1
        p = self.profile
        delay = self._latency(self._rng_accept, p.ack_latency_mean, p.ack_latency_jitter)
        if self._log is not None:
            self._log.append(
                {
                    "t": _fmt_t(now),
                    "kind": "received",
                    "ref": o.ref,
                    "group": request.group_id,
                    "broker_id": o.broker_id,
                    "legs": [f"{leg.side.value} {leg.ratio} {leg.symbol.occ}" for leg in request.legs],
                    "quantity": request.quantity,
                    "type": request.order_type.value,
                    "limit": request.limit_price,
                    "tif": request.time_in_force.value,
                    "landed_in_outage": landed,
                }
            )
        self.scheduler.schedule(now + delay, self._process, o)

    def _price_ok(self, o: _Order, limit: Decimal) -> bool:
        if not isinstance(limit, Decimal) or not limit.is_finite():
            return False
        if not o.is_combo and limit <= 0:
            return False
        return not self.profile.reject_off_tick or DEFAULT_TICKS.is_on_tick(limit, combo=o.is_combo)

    def _process(self, o: _Order) -> None:
        """The broker acts on a received order: reject it or start working it."""
        if o.status != _PENDING:
            return  # canceled before it was processed
        now = self.clock.seconds
        p = self.profile
        reason: str | None = None
        if now >= self.session_seconds:
            reason = "market closed"
        elif o.bad_symbol:
            reason = "unknown symbol"
        elif o.limit is not None and not self._price_ok(o, o.limit):
            reason = "invalid price"
        elif isinstance(o.scripted, Reject):
            reason = o.scripted.reason
        elif o.scripted is None and p.reject_rate > 0 and self._rng_accept.random() < p.reject_rate:
            reasons = p.reject_reasons
            pick = self._rng_accept.random() * sum(w for _, w in reasons)
            for name, weight in reasons:
                reason = name
                pick -= weight
                if pick < 0:
                    break
        when = self.clock.now()
        if reason is not None:
            o.status = _REJECTED
            o.settle()
            self._settling.append(o)
            self.stats["rejected"] += 1
            key = f"rejects.{reason}"
            self.stats[key] = self.stats.get(key, 0) + 1
            if self._log is not None:
                self._log.append({"t": _fmt_t(now), "kind": "rejected", "ref": o.ref, "reason": reason})
            self._deliver(o, o.ref, Rejected(time=when, reason=reason), now)
            return
        o.status = _WORKING
        self._working[o.ref] = o
        self.stats["accepted"] += 1
        if self._log is not None:
            self._log.append({"t": _fmt_t(now), "kind": "acknowledged", "ref": o.ref, "broker_id": o.broker_id})
        self._deliver(o, o.ref, Acknowledged(time=when, broker_order_id=o.broker_id), now)
        if o.scripted is None:
            self._schedule_opportunity(o, now, first=True)
        elif isinstance(o.scripted, tuple):
            for step in o.scripted:
                self.scheduler.schedule(now + step.seconds, self._scripted_fill, o, step)

    # -- internals: matching --------------------------------------------------------------------

    def _intensity(self, o: _Order, net_bid: int, net_ask: int) -> float:
        """Fill intensity of a resting limit: ``rate * exp(decay * d)``, d = (limit - mid) / half-spread."""
        p = self.profile
        spread = net_ask - net_bid
        if spread <= 0:
            spread = 1
        d = (2 * o.limit_c - net_bid - net_ask) / spread
        return float(p.limit_fill_rate * math.exp(p.limit_fill_decay * d))

    def _schedule_opportunity(self, o: _Order, now: float, first: bool = False, net_bid: int | None = None,
                              net_ask: int = 0, lam: float | None = None) -> None:
        """Schedule the order's next fill opportunity from its current marketability.

        ``net_bid``/``net_ask`` (and the intensity ``lam``) when the caller already has them for
        ``o`` at ``now``: the market is constant within a step, so they are not asked again.
        """
        p = self.profile
        rng = self._rng_fill
        if net_bid is None:
            net_bid, net_ask = self.market.combo_cents(o.iunits, self.market.step_of(now))
        if o.is_market or o.limit_c >= net_ask:
            if first:
                o.resting = False
            o.cand_rate = _INF
            mean = p.marketable_fill_mean
            gap = rng.expovariate(1.0 / mean) if mean > 0 else 0.0
        else:
            if first:
                o.resting = True
            if lam is None:
                lam = self._intensity(o, net_bid, net_ask)
            rate = max(lam, 1.0 / p.limit_recheck_seconds)
            o.cand_rate = rate
            gap = rng.expovariate(rate)
        o.opp = self.scheduler.schedule(now + gap, self._opportunity, o)

    def _fill_quantity(self, o: _Order) -> int:
        remaining = o.quantity - o.filled
        p = self.profile
        if remaining > 1 and p.partial_fill_rate > 0 and self._rng_fill.random() < p.partial_fill_rate:
            return self._rng_fill.randint(1, remaining - 1)
        return remaining

    def _opportunity(self, o: _Order) -> None:
        """A chance for a working order to fill (thinning of a Poisson process, see module doc)."""
        o.opp = None
        if o.status != _WORKING or o.silent:
            return
        now = self.clock.seconds
        if now >= self.session_seconds:
            return  # nothing trades after the close (GTC orders wait)
        net_bid, net_ask = self.market.combo_cents(o.iunits, self.market.step_of(now))
        price: Decimal | None = None
        lam: float | None = None
        if o.is_market or o.limit_c >= net_ask:
            # a resting order the market moved through is hit at its limit; a marketable one takes the touch
            price = o.limit if (o.resting and o.limit is not None) else o.touch_price(net_ask)
        else:
            lam = self._intensity(o, net_bid, net_ask)
            if o.cand_rate != _INF and self._rng_fill.random() * o.cand_rate < lam:
                price = o.limit
            o.resting = True
        if price is not None:
            qty = self._fill_quantity(o)
            fill = self._fill(o, qty, price, now)
            p = self.profile
            self._deliver(o, o.ref, fill, now + self._fill_latency())
            if o.status != _WORKING:
                return
            if p.partial_then_silence_rate > 0 and self._rng_fill.random() < p.partial_then_silence_rate:
                o.silent = True
                self.stats["partial_then_silence"] += 1
                if self._log is not None:
                    self._log.append({"t": _fmt_t(now), "kind": "silenced", "ref": o.ref})
                return
        # a fill changes neither the market nor the limit: the same quote and intensity hold
        self._schedule_opportunity(o, now, net_bid=net_bid, net_ask=net_ask, lam=lam)

    def _fill(self, o: _Order, qty: int, price: Decimal, now: float) -> Fill:
        """Execute ``qty`` units of ``o`` at ``price`` (broker truth); return the Fill to report."""
        o.filled += qty
        fill = Fill(time=self.clock.now(), fill_id=f"{o.broker_id}-{len(o.fills) + 1}", quantity=qty, price=price)
        o.fills = (*o.fills, fill)
        positions = self._positions
        for symbol, n in o.units:
            positions[symbol] = positions.get(symbol, 0) + n * qty
        stats = self.stats
        stats["fills"] += 1
        if o.filled < o.quantity:
            stats["partial_fills"] += 1
        else:
            o.status = _FILLED
            self._working.pop(o.ref, None)
            if o.opp is not None:
                o.opp.cancel()
                o.opp = None
            o.settle()
            self._settling.append(o)
        if self._log is not None:
            self._log.append(
                {
                    "t": _fmt_t(now),
                    "kind": "fill",
                    "ref": o.ref,
                    "fill_id": fill.fill_id,
                    "quantity": qty,
                    "price": price,
                    "filled": o.filled,
                    "of": o.quantity,
                }
            )
        return fill

    # -- internals: cancel / replace / close ----------------------------------------------------

    def _race_fill(self, o: _Order) -> None:
        """The cancel race: the order executes between our cancel request and its processing."""
        if o.status != _WORKING:
            return
        now = self.clock.seconds
        if now >= self.session_seconds:
            return
        p = self.profile
        _net_bid, net_ask = self.market.combo_cents(o.iunits, self.market.step_of(now))
        if o.is_market or (o.limit_c >= net_ask and not o.resting):
            price = o.touch_price(net_ask)
        else:
            assert o.limit is not None  # a non-market order has a limit
            price = o.limit  # a resting order hit by someone else
        fill = self._fill(o, self._fill_quantity(o), price, now)
        self.stats["cancel_races"] += 1
        rng = self._rng_cancel
        hold_rate = p.cancel_reject_rate if o.status == _FILLED else p.late_fill_rate
        if hold_rate > 0 and rng.random() < hold_rate:
            o.held = (*o.held, fill)  # reported after the cancel's result
        else:
            self._deliver(o, o.ref, fill, now + self._fill_latency())

    def _scripted_fill(self, o: _Order, step: FillAt, late: bool = False) -> None:
        """A fill the script ordered (skipped when the order no longer works); ``late``: held until
        the cancel's result is delivered."""
        if o.status != _WORKING:
            return
        remaining = o.quantity - o.filled
        qty = remaining if step.quantity is None else min(step.quantity, remaining)
        if qty <= 0:
            return
        now = self.clock.seconds
        fill = self._fill(o, qty, step.price, now)
        if late:
            o.held = (*o.held, fill)
        else:
            self._deliver(o, o.ref, fill, now + self._fill_latency())

    def _stop_working(self, o: _Order, status: int) -> None:
        o.status = status
        self._working.pop(o.ref, None)
        if o.opp is not None:
            o.opp.cancel()
            o.opp = None
        o.settle()
        self._settling.append(o)

    def _record(self, ref: str) -> _Order | _Final | None:
        """What the broker holds about ``ref`` (a final order kept as bytes is read back), or ``None``."""
        o = self._orders.get(ref)
        if type(o) is bytes:
            return _Final.decode(ref, o)
        return o  # type: ignore[return-value]  # (not bytes)

    def _compact_settled(self) -> None:
        """Replace each order settled since the last call by its compact :class:`_Final`.

        Called between scheduler runs, never inside a callback (one that settled an order still
        delivers for it and moves its watermark). An order with race fills still held for its
        cancel's result waits for that cancel. Callbacks still scheduled with the old object see a
        final status and do nothing, except cancel and replace processing, which look the order up
        again (:meth:`_process_cancel`, :meth:`_process_replace`): one truth either way.
        """
        orders = self._orders  # (a _Final as bytes when it can be: not tracked by the collector, and small)
        session_open = self.market.session_open
        waiting: list[_Order] = []
        for o in self._settling:
            if o.held:
                waiting.append(o)
            else:
                record = _Final(o, session_open)
                orders[o.ref] = record.encode() or record
        self._settling = waiting

    def _process_cancel(self, sent: _Order | _Final) -> None:
        o = self._record(sent.ref)  # the record now: a final order may have been compacted since
        assert o is not None  # (an order is never forgotten)
        now = self.clock.seconds
        when = self.clock.now()
        event: TicketEvent
        if isinstance(o, _Order) and o.status in (_PENDING, _WORKING):
            self._stop_working(o, _CANCELED)
            self.stats["canceled"] += 1
            event = Canceled(time=when)
            kind, reason = "canceled", None
        else:
            reason = _FINAL_REASON[o.status]
            self.stats["cancel_rejected"] += 1
            event = CancelRejected(time=when, reason=reason)
            kind = "cancel_rejected"
        if self._log is not None:
            self._log.append({"t": _fmt_t(now), "kind": kind, "ref": o.ref, "reason": reason})
        at = self._deliver(o, o.ref, event, now)
        if isinstance(o, _Final):
            self._orders[o.ref] = o.encode() or o  # its watermark moved
        elif o.held:
            p = self.profile
            key = "late_fills" if kind == "canceled" else "fills_after_cancel_reject"
            for fill in o.held:
                mean = p.late_report_delay_mean
                extra = self._rng_cancel.expovariate(1.0 / mean) if mean > 0 else 0.0
                # strictly after the cancel's result, even at zero delay (same time, later sequence)
                self._deliver(o, o.ref, fill, at + extra, bypass=True)
                self.stats[key] += 1
            o.held = ()

    def _process_replace(self, sent: _Order | _Final, limit: Decimal, quantity: int | None) -> None:
        o = self._record(sent.ref)  # the record now: a final order may have been compacted since
        assert o is not None  # (an order is never forgotten)
        now = self.clock.seconds
        when = self.clock.now()
        reason: str | None = None
        if not isinstance(o, _Order) or o.status not in (_PENDING, _WORKING):
            reason = _FINAL_REASON[o.status]
        elif o.is_market:
            reason = "market order cannot be replaced"
        elif not self._price_ok(o, limit):
            reason = "invalid price"
        elif quantity is not None and (type(quantity) is not int or quantity <= o.filled):
            reason = "quantity not above filled quantity"
        event: TicketEvent
        if reason is not None:
            self.stats["update_rejected"] += 1
            event = UpdateRejected(time=when, reason=reason)
        else:
            assert isinstance(o, _Order)  # a final order always has a reason
            o.set_limit(limit)
            if quantity is not None:
                o.quantity = quantity
            self.stats["updated"] += 1
            event = Updated(time=when, broker_order_id=o.broker_id)
        if self._log is not None:
            kind = "updated" if reason is None else "update_rejected"
            self._log.append({"t": _fmt_t(now), "kind": kind, "ref": o.ref, "reason": reason})
        self._deliver(o, o.ref, event, now)
        if isinstance(o, _Final):
            self._orders[o.ref] = o.encode() or o  # its watermark moved
        if reason is None and isinstance(o, _Order) and o.status == _WORKING and not o.silent and o.scripted is None:
            # a replaced order is re-evaluated as if new (a silenced order stays silent)
            if o.opp is not None:
                o.opp.cancel()
            self._schedule_opportunity(o, now, first=True)

    def _close(self) -> None:
        """The close: every working day order expires."""
        now = self.clock.seconds
        when = self.clock.now()
        self._closed = True
        expired = 0
        for o in list(self._working.values()):
            if not o.day:
                continue
            self._stop_working(o, _EXPIRED)
            expired += 1
            if self._log is not None:
                self._log.append({"t": _fmt_t(now), "kind": "expired", "ref": o.ref})
            self._deliver(o, o.ref, Expired(time=when), now)
        self.stats["expiries"] += expired
        if self._log is not None:
            self._log.append({"t": _fmt_t(now), "kind": "close", "expired": expired})

    def _outage_begins(self, start: float, end: float) -> None:
        self.stats["outages"] += 1
        if self._log is not None:
            self._log.append({"t": _fmt_t(start), "kind": "outage_start", "until": _fmt_t(end)})

    def _outage_ends(self, start: float, end: float) -> None:
        if self._log is not None:
            self._log.append({"t": _fmt_t(end), "kind": "outage_end", "since": _fmt_t(start)})

    # -- internals: delivery ----------------------------------------------------------------------

    def _deliver(self, o: _Order | _Final | None, ref: str, event: TicketEvent, at: float,
                 bypass: bool = False) -> float:
        """Schedule delivery of ``event`` at ``at`` with FIFO, reorder, outage and duplicate rules.

        ``bypass`` skips the FIFO watermark and the reorder knob (for deliberately late reports).
        Returns the delivery time of the (first) copy.
        """
        p = self.profile
        rng = self._rng_delivery
        t = at
        reordered = False
        if not bypass:
            if o is not None and t < o.watermark:
                t = o.watermark
            if p.reorder_rate > 0 and rng.random() < p.reorder_rate:
                reordered = True
                if p.reorder_delay_mean > 0:
                    t += rng.expovariate(1.0 / p.reorder_delay_mean)
                self.stats["reorders"] += 1
        t = self._after_outage(t)
        if o is not None and not bypass and not reordered:
            o.watermark = t
        message = BrokerEvent(order_ref=ref, event=event)
        heap = self._deliveries
        self._dseq += 1
        heapq.heappush(heap, (t, self._dseq, message))
        self.stats["deliveries"] += 1
        log = self._log
        if log is not None:
            log.append(
                {
                    "t": _fmt_t(self.clock.seconds),
                    "kind": "deliver",
                    "ref": ref,
                    "event": event.trigger,
                    "at": _fmt_t(t),
                    "reordered": reordered,
                    "late": bypass,
                }
            )
        if p.duplicate_rate > 0 and rng.random() < p.duplicate_rate:
            t2 = t
            if p.duplicate_delay_mean > 0:
                t2 += rng.expovariate(1.0 / p.duplicate_delay_mean)
            t2 = self._after_outage(t2)
            self._dseq += 1
            heapq.heappush(heap, (t2, self._dseq, message))
            self.stats["duplicates"] += 1
            if log is not None:
                now_s = _fmt_t(self.clock.seconds)
                log.append({"t": now_s, "kind": "duplicate", "ref": ref, "event": event.trigger, "at": _fmt_t(t2)})
        return t

    def _broker_status(self, o: _Order | _Final) -> BrokerStatus:
        s = o.status
        if s == _PENDING:
            return BrokerStatus.WORKING
        if s == _WORKING:  # (never a _Final)
            return BrokerStatus.PARTIALLY_FILLED if isinstance(o, _Order) and o.filled else BrokerStatus.WORKING
        if s == _FILLED:
            return BrokerStatus.FILLED
        if s == _CANCELED:
            return BrokerStatus.CANCELED
        if s == _REJECTED:
            return BrokerStatus.REJECTED
        return BrokerStatus.EXPIRED
