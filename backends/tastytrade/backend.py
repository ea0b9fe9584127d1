"""TastytradeBackend: the :class:`~atomic_orders.fsm.ports.ExecutionBackend` contract over the TastyTrade REST API.

* ``submit``: validate and build the order JSON (:mod:`.payloads`), dry-run it when it is a
  multi-leg entry and ``dry_run`` is on (:mod:`.dry_run`; default: the config's
  ``dry_run_before_submit``), then ``POST`` it once. A dry run that refuses (4xx, a preflight
  ``error``, negative buying power, a blocking warning) or cannot be had (timeout, 5xx, an
  unreadable answer) raises ``SubmissionRefused`` before anything is sent (fail closed: "dry run
  unavailable"; the group is refused, never resubmitted blindly). Unwinds are never dry-run: a
  preflight must not delay or block closing a position. The POST: a 4xx answer (validation,
  preflight/business rule, auth) raises
  ``SubmissionRefused``; a timeout, a lost connection, a 5xx or an unreadable answer raises
  ``SubmissionOutcomeUnknown`` (the order may exist: the executor reconciles by our
  ``external-identifier``, it never resends; the monitor also adopts an order carrying that
  identifier when it shows up in the live list).
* ``cancel``: ``DELETE`` the broker order that carries the ticket (retried by the client; it is
  idempotent). Its answer is an echo (the order as the request found it), never recorded: the
  outcome comes from the next poll or reconcile. A definitive refusal (4xx: the order closed,
  unknown) is ``CancelRejected`` at once; undeliverable: ``BrokerUnavailable`` (the only raise).
* ``replace``: ``PUT`` a new price; TastyTrade answers a NEW order (new id, ``Contingent`` until its
  original is cancelled). The answer only makes the new id known (an echo); the ticket keeps the
  chain order_ref -> broker ids; ``Updated(new id)`` is emitted when a read shows the replacement
  took over, ``UpdateRejected`` when it is rejected (or the PUT answers 4xx). PUT is not retried;
  when its answer is lost we raise ``BrokerUnavailable`` and still adopt the replacement if it
  appears.
* ``poll_events``: the :class:`~.monitor.OrderMonitor` (one list request per tick). With an
  :class:`~.streamer.AccountStreamer` (``streamer=``), its pushed ``Order`` records are drained
  first and fed to the same monitor (same parser, fills de-duplicated by id); every (re)connect
  asks for a poll (the REST re-sync), and while it is connected the poll is a watchdog
  (``watchdog_interval``); while it is down, polls run at ``fast_interval`` as before.
* ``reconcile``: the broker's own record, by our identifier: known broker orders are read by id
  (final ones are not read again unless their count disagrees with their fills); orders we never
  learnt the id of are searched in ``GET /orders`` from shortly before their submission (newest
  first, paged; the API has no filter on ``external-identifier``), and orders this process never
  tracked in ``GET /orders/live`` (today's orders, any status). Absent: ``NOT_FOUND``. Reports
  every fill the legs list (the same ids the poll emits) and ``filled_quantity``, the broker's
  count (``quantity - remaining-quantity``; a combo's least-filled leg in units). An order
  carrying our reference is adopted only under :meth:`~.monitor.TicketTracker.may_adopt`.
* ``find_orders``: every order of today whose ``external-identifier`` starts with a prefix,
  reported like ``reconcile`` (for recovery).
* ``quote``: from the injected :data:`QuoteSource`: :class:`~.quotes.TastytradeQuoteSource`
  (``GET /market-data/by-type``, one request per pricing tick covering :meth:`open_symbols`), or
  any callable (the simulated market in-process, a DXLink stream).
* ``positions``: ``GET /accounts/{n}/positions`` (``Equity Option`` rows, signed by
  ``quantity-direction``).

The boundary: only ``SubmissionRefused``, ``SubmissionOutcomeUnknown`` and ``BrokerUnavailable``
leave these methods (and ``ValueError`` for ``find_orders("")``, a caller's mistake). Broker
records are bounded and read per record (:mod:`.parsing`, :mod:`.monitor`): an unreadable record
of ours is logged, counted (:attr:`TastytradeBackend.boundary_errors`) and reported on its ticket
as ``SubmissionUnknown``; one that is not ours is skipped unparsed. Anything else raised inside a
method is caught there, counted, and mapped by what may have happened: before a POST was sent,
``SubmissionRefused`` (nothing exists); after, ``SubmissionOutcomeUnknown`` (never "refused" for
an order that may be live); elsewhere ``BrokerUnavailable`` (try later). Reconciliation answers
for an order whose latest record cannot be read from its last readable ones (so it can still be
cancelled), and leaves a reference with no readable record out (never ``NOT_FOUND``; an order our
POST placed, answered 2xx, is never ``NOT_FOUND``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs

from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.dry_run import api_refusal, dry_run_refusal
from atomic_orders.backends.tastytrade.errors import (
    MalformedResponseError,
    TastytradeApiError,
    TastytradeError,
)
from atomic_orders.backends.tastytrade.monitor import OrderMonitor, TicketTracker
from atomic_orders.backends.tastytrade.parsing import (
    MAX_TEXT,
    OrderSnapshot,
    parse_order,
    parse_quantity,
    peek_identity,
)
from atomic_orders.backends.tastytrade.payloads import build_order_payload, build_replace_payload
from atomic_orders.backends.tastytrade.streamer import ORDER, RESYNC, AccountStreamer
from atomic_orders.fsm.clock import Clock, SystemClock
from atomic_orders.fsm.errors import (
    BrokerError,
    BrokerUnavailable,
    QuoteUnavailable,
    SubmissionOutcomeUnknown,
    SubmissionRefused,
    ValidationError,
)
from atomic_orders.fsm.events import BrokerStatus, CancelRejected, Fill, UpdateRejected
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, Purpose, Quote
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.pricing import DEFAULT_TICKS, TickRule
from atomic_orders.fsm.symbol import OptionSymbol

__all__ = ["QuoteSource", "TastytradeBackend"]

log = logging.getLogger("atomic_orders.tastytrade")

#: Where quotes come from (the streamer in production, the simulator's market in the emulator).
QuoteSource = Callable[[OptionSymbol], Quote]

#: Answers that say "not now" rather than "no": the request had no effect.
_TRANSIENT_STATUSES = frozenset({401, 403, 408, 429})
#: The trading day's time zone (US equity options): which orders are "today's".
_MARKET_TZ = ZoneInfo("America/New_York")


class TastytradeBackend(ExecutionBackend):
    """Orders to TastyTrade through :class:`TastytradeApiClient`; events from :class:`OrderMonitor`."""

    name = "tastytrade"

    def __init__(
        self,
        client: TastytradeApiClient,
        *,
        clock: Clock | None = None,
        quote_source: QuoteSource | None = None,
        ticks: TickRule = DEFAULT_TICKS,
        dry_run: bool | None = None,
        search_margin: float = 300.0,
        fast_interval: float = 1.0,
        idle_interval: float = 10.0,
        stall_after: float = 20.0,
        streamer: AccountStreamer | None = None,
        watchdog_interval: float = 30.0,
    ) -> None:
        self.client = client
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.quote_source = quote_source
        self.ticks = ticks
        #: Dry-run multi-leg entries before sending them (``None``: the config's ``dry_run_before_submit``).
        self.dry_run = client.config.dry_run_before_submit if dry_run is None else dry_run
        self.search_margin = dt.timedelta(seconds=search_margin)
        self.monitor = OrderMonitor(client, self._clock, fast_interval=fast_interval, idle_interval=idle_interval,
                                    stall_after=stall_after, watchdog_interval=watchdog_interval)
        self._queued: list[BrokerEvent] = []
        #: The account streamer (started by the caller), or None: polling only.
        self.streamer = streamer
        #: REST re-syncs asked for by streamer (re)connects.
        self.resyncs = 0

    def __repr__(self) -> str:
        return f"TastytradeBackend({self.client!r})"

    @property
    def clock(self) -> Clock:
        """The injected clock (the wall clock by default)."""
        return self._clock

    @property
    def boundary_errors(self) -> int:
        """Broker records (or failures inside a method) caught at the boundary so far."""
        return self.monitor.boundary_errors

    def _caught(self, what: str, err: BaseException) -> str:
        """Count and log an error outside the contract caught in ``what``; the text for the mapped error."""
        self.monitor.boundary_errors += 1
        log.error("%s raised %s outside the backend contract: %s", what, type(err).__name__, err, exc_info=err)
        return f"{what}: {type(err).__name__}: {err}"[:500]

    def next_poll_time(self) -> dt.datetime:
        """When :meth:`poll_events` next talks to the broker (for a driver that sleeps until then)."""
        if self._queued or (self.streamer is not None and self.streamer.pending()):
            return self._clock.now()
        return self.monitor.next_poll_time()

    # -- orders ---------------------------------------------------------------------------------

    def submit(self, request: OrderRequest) -> None:
        """Validate, (dry-run), POST once. See the module docstring for the error mapping.

        The POST's answer is read at the boundary: an answer whose order cannot be read (an id
        that is not an integer, an absurd price ...) means the order may exist:
        ``SubmissionOutcomeUnknown``, and the poll adopts it by our reference when it can be read.
        """
        ref = getattr(request, "order_ref", None)
        if not isinstance(ref, str) or not ref:
            raise SubmissionRefused(str(ref), "order_ref: not a non-empty string")
        if ref in self.monitor.trackers:
            raise SubmissionRefused(ref, "duplicate order reference (never resent)")
        try:
            payload = build_order_payload(request, ticks=self.ticks, source=self.client.config.user_agent)
        except ValidationError as err:
            raise SubmissionRefused(ref, f"invalid order: {err}") from None
        except Exception as err:  # nothing was sent
            raise SubmissionRefused(ref, self._caught(f"submit({ref!r}) building the order", err)) from None
        if self.dry_run and request.is_combo and request.purpose is Purpose.ENTRY:
            self._dry_run(ref, payload)
        tracker = self.monitor.track(request, self._clock.now())
        try:
            answer = self.client.place_order(payload)
        except TastytradeApiError as err:
            if err.is_client_error:
                self.monitor.forget(ref)
                raise SubmissionRefused(ref, f"{err.code}: {err.message}") from None
            tracker.submission_unknown = True
            raise SubmissionOutcomeUnknown(ref, str(err)) from None
        except TastytradeError as err:  # timeout, lost connection, unreadable answer
            tracker.submission_unknown = True
            if (isinstance(err, MalformedResponseError) and err.path.endswith("/orders")
                    and (err.status is None or 200 <= err.status < 300)):
                tracker.placed = True  # our POST was answered 2xx (a body we cannot read): the order exists
            raise SubmissionOutcomeUnknown(ref, str(err)) from None
        except Exception as err:  # the request may have left: its outcome is unknown
            tracker.submission_unknown = True
            raise SubmissionOutcomeUnknown(ref, self._caught(f"submit({ref!r})", err)) from None
        tracker.placed = True  # a 2xx: the order exists, whatever its answer says
        try:
            snap = parse_order(answer.get("order"))
            misfit = tracker.misfit(snap)
            if misfit is not None:
                raise MalformedResponseError(f"order {snap.order_id}: {misfit}")
            self.monitor.record(tracker, snap)
        except Exception as err:  # the order exists (2xx) but its answer cannot be read
            tracker.submission_unknown = True
            self.monitor.boundary_errors += 1
            oid = peek_identity(answer.get("order")).order_id
            if oid is not None and self.monitor.tracker_of_id(oid) is None:
                self.monitor.expect_id(tracker, oid)  # read by the id the answer names
            log.warning("submit(%r): unreadable answer about order %s: %s; outcome unknown", ref, oid, err)
            raise SubmissionOutcomeUnknown(ref, f"unreadable answer: {err}"[:500]) from None

    def _dry_run(self, ref: str, payload: Mapping[str, object]) -> None:
        """``POST .../orders/dry-run``; raise ``SubmissionRefused`` unless it says go (fail closed).

        Nothing has been sent when this raises, so "refused" is the truth whatever went wrong: a
        refusal carries the broker's reason (``dry run refused: ...``); a dry run that cannot be
        had (timeout, lost connection, 5xx, 401/429 after the client's handling, an unreadable
        answer) is ``dry run unavailable: ...``. The dry run itself is never retried.
        """
        try:
            answer = self.client.dry_run(payload)
            reason = dry_run_refusal(answer, self.client.config.dry_run_blocking_warnings)
        except TastytradeApiError as err:
            if err.is_client_error and err.status not in _TRANSIENT_STATUSES:
                reason = api_refusal(err)
            else:
                raise SubmissionRefused(ref, f"dry run unavailable: {err}"[:500]) from None
        except TastytradeError as err:
            raise SubmissionRefused(ref, f"dry run unavailable: {err}"[:500]) from None
        except Exception as err:  # the dry run placed nothing
            raise SubmissionRefused(ref, "dry run unavailable: " + self._caught(f"dry run of {ref!r}", err)) from None
        if reason is not None:
            log.warning("submit(%r): the dry run refuses the order: %s; nothing sent", ref, reason)
            raise SubmissionRefused(ref, f"dry run refused: {reason}"[:500])

    def adopt_orders(self, orders: Sequence[tuple[OrderRequest, dt.datetime, tuple[Fill, ...]]]) -> None:
        """Track orders a previous process sent; the next reconcile finds them by our identifier.

        The fills already journaled seed the trackers, so fill ids stay the ones reported before.
        """
        for request, sent_at, fills in orders:
            if request.order_ref in self.monitor.trackers:
                continue
            tracker = self.monitor.track(request, sent_at)
            tracker.submission_unknown = True
            tracker.known_fills = tuple(fills)

    def cancel(self, order_ref: str) -> None:
        """DELETE the order carrying the ticket; see :meth:`_cancel` (anything else raised: ``BrokerUnavailable``)."""
        try:
            self._cancel(order_ref)
        except BrokerError:
            raise
        except Exception as err:  # cancel is idempotent: the executor asks again later
            raise BrokerUnavailable(self._caught(f"cancel of {order_ref!r}", err)) from None

    def _cancel(self, order_ref: str) -> None:
        """DELETE the order carrying the ticket; the outcome arrives as events from later reads.

        * The DELETE's answer (the order as the request found it: ``Live``, ``Cancel Requested``,
          even ``Cancelled``) is an echo, not the outcome: it is not recorded; the order is read
          on the next poll (``Canceled``, or ``CancelRejected`` when it is read working again).
        * A definitive refusal (any 4xx but 401/403/408/429: the order is closed, unknown, or the
          request invalid; the reference documents the error envelope, not the code, so the
          status decides) gives ``CancelRejected(code: message)`` at once; the executor then
          reconciles. An order we already read final is refused the same way without a request.
        * Anything else (transport, 5xx, 429 after retries, a replacement not known yet) raises
          :class:`BrokerUnavailable`, the only exception this method raises.
        """
        tracker = self.monitor.trackers.get(order_ref)
        target = tracker.latest_id if tracker is not None else None
        if tracker is None or target is None:
            raise BrokerUnavailable(f"cancel of {order_ref!r}: no broker order id known yet")
        now = self._clock.now()
        cur = tracker.orders[target]
        if cur.terminal:
            tracker.refresh.add(target)
            self.monitor.mark_due()
            if cur.status not in ("Filled", "Rejected"):
                if cur.edited:  # replaced: the replacement (not read yet) carries the ticket
                    raise BrokerUnavailable(f"cancel of {order_ref!r}: order {target} was replaced, "
                                            "the replacement is not read yet")
                self.monitor.touch(order_ref)  # cancelled or expired already: its final event follows
                return
            tracker.cancel_pending = False
            self._queued.append(BrokerEvent(order_ref, CancelRejected(time=now, reason=f"order is {cur.status}")))
            return
        try:
            self.client.cancel_order(target)
        except TastytradeApiError as err:
            if err.is_client_error and err.status not in _TRANSIENT_STATUSES:
                log.info("cancel of %s (%s) refused: %s; reconciling", order_ref, target, err)
                tracker.cancel_pending = False
                tracker.refresh.add(target)
                self.monitor.mark_due()
                self._queued.append(BrokerEvent(order_ref, CancelRejected(
                    time=now, reason=f"cancel refused: {err.code}: {err.message}"[:500])))
                return
            raise BrokerUnavailable(f"cancel of {order_ref!r}: {err}") from None
        except (TastytradeError, ValueError) as err:
            raise BrokerUnavailable(f"cancel of {order_ref!r}: {err}") from None
        # The answer is not the outcome: read the order on the next tick.
        tracker.cancel_sent(target)
        self.monitor.mark_due()

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """PUT a new limit (and total quantity); see :meth:`_replace` (anything else raised: ``BrokerUnavailable``).

        A replacement that may exist after such a failure is adopted by its link to our order.
        """
        try:
            self._replace(order_ref, limit_price, quantity)
        except BrokerError:
            raise
        except Exception as err:
            self.monitor.mark_due()
            raise BrokerUnavailable(self._caught(f"replace of {order_ref!r}", err)) from None

    def _replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """PUT a new limit (and total quantity); the replacement's fate arrives as events."""
        tracker = self.monitor.trackers.get(order_ref)
        target = tracker.latest_id if tracker is not None else None
        if tracker is None or target is None or tracker.request is None:
            raise BrokerUnavailable(f"replace of {order_ref!r}: no broker order id known yet")
        now = self._clock.now()
        cur = tracker.orders[target]
        if cur.terminal or tracker.has_pending_replacement():
            reason = f"order is {cur.status}" if cur.terminal else "a replacement is already pending"
            self._queued.append(BrokerEvent(order_ref, UpdateRejected(time=now, reason=reason)))
            return
        remaining: int | None = None
        if quantity is not None:
            remaining = quantity - tracker.filled_quantity()
            if remaining <= 0:
                self._queued.append(BrokerEvent(order_ref, UpdateRejected(
                    time=now, reason="quantity not above filled quantity")))
                return
        try:
            payload = build_replace_payload(tracker.request, limit_price, remaining_units=remaining, ticks=self.ticks,
                                            source=self.client.config.user_agent)
        except ValidationError as err:
            self._queued.append(BrokerEvent(order_ref, UpdateRejected(time=now, reason=f"invalid update: {err}")))
            return
        try:
            answer = self.client.replace_order(target, payload)
        except TastytradeApiError as err:
            if err.is_client_error and err.status not in _TRANSIENT_STATUSES:
                self._queued.append(BrokerEvent(order_ref, UpdateRejected(time=now,
                                                                          reason=f"{err.code}: {err.message}")))
                return
            self.monitor.mark_due()
            raise BrokerUnavailable(f"replace of {order_ref!r}: {err}") from None
        except TastytradeError as err:
            self.monitor.mark_due()
            raise BrokerUnavailable(f"replace of {order_ref!r}: {err}") from None
        tracker.request = attrs.evolve(tracker.request, limit_price=limit_price,
                                       quantity=quantity if quantity is not None else tracker.request.quantity)
        self._record_answer(tracker, answer, target)

    def _record_answer(self, tracker: TicketTracker, answer: Mapping[str, object], target: str) -> None:
        """A PUT's answer: the NEW order. Only its id is learnt (an echo); its state comes from reads."""
        try:
            snap = parse_order(answer)
        except Exception as err:  # parse_order raises MalformedResponseError; anything else is counted too
            self.monitor.boundary_errors += 1
            log.warning("unreadable answer about %s (%s): %s; reading it back", tracker.order_ref, target, err)
            tracker.refresh.add(target)
            self.monitor.mark_due()
            return
        self.monitor.record(tracker, snap, echo=True)

    # -- events and reconciliation --------------------------------------------------------------

    def poll_events(self) -> list[BrokerEvent]:
        """Events queued by requests, then whatever the monitor learnt (it polls when due)."""
        out = self._queued
        self._queued = []
        try:
            self._drain_streamer()
            out.extend(self.monitor.poll(self._clock.now()))
        except Exception as err:  # the monitor reads per record; this is the last line (queued events are kept)
            self._caught("poll_events", err)
            out.extend(self.monitor.take_pending())
        return out

    def _drain_streamer(self) -> None:
        """Feed what the streamer pushed to the monitor (on this, the executor's, thread)."""
        streamer = self.streamer
        if streamer is None:
            return
        now = self._clock.now()
        for item in streamer.drain():
            if item.kind == RESYNC:
                self.resyncs += 1
                self.monitor.mark_due()  # nothing is replayed: read the live orders now
            elif item.kind == ORDER:
                self.monitor.ingest(item.data, now, pushed=True)
        self.monitor.streaming = streamer.connected

    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        """What the broker knows about each of our orders, looked up by our identifier.

        An order whose latest record cannot be read is reported from its last readable records
        (the read is counted and its ticket got ``SubmissionUnknown`` naming the field): nothing
        read from the bad record is used, so the answer never settles on it, and the executor can
        still cancel the order by the id it knows. A reference none of whose records could ever be
        read (or anything raised while reporting) is left out of the answer, never reported
        ``NOT_FOUND``: it may be live. The executor asks again.
        """
        now = self._clock.now()
        try:
            refs = [r for r in dict.fromkeys(order_refs) if isinstance(r, str)]
            unreadable: set[str] = set()
            self._refresh_known(refs, unreadable, now)
            self._search_unknown(refs, now, unreadable)
        except TastytradeError as err:
            raise BrokerUnavailable(f"reconcile: {err}") from None
        except Exception as err:
            raise BrokerUnavailable(self._caught("reconcile", err)) from None
        out: dict[str, OrderReport] = {}
        for ref in refs:
            if ref in unreadable:
                continue
            tracker = self.monitor.trackers.get(ref)
            if tracker is not None and not tracker.chain and tracker.placed:
                continue  # placed (2xx) but no record of it read yet: never NOT_FOUND
            if tracker is None or not tracker.chain:
                out[ref] = OrderReport(order_ref=ref, status=BrokerStatus.NOT_FOUND)
                continue
            try:
                out[ref] = tracker.report(now)
            except Exception as err:  # this order is not answered; the others are
                self.monitor.unreadable(tracker, None, err, now)
                continue
            self.monitor.touch(ref)
        return out

    def _refresh_known(self, refs: Sequence[str], unreadable: set[str], now: dt.datetime) -> None:
        for ref in refs:
            tracker = self.monitor.trackers.get(ref)
            if tracker is None:
                continue  # orders with no id known (and no chain) are searched by reference
            todo = tracker.open_order_ids() + sorted(tracker.refresh) + tracker.incomplete_ids()
            seen: set[str] = set()
            while todo:
                oid = todo.pop(0)
                if oid in seen:
                    continue
                seen.add(oid)
                raw = self.client.get_order(oid)
                if self.monitor.ingest(raw, now, expect=tracker, expect_id=oid) is None:
                    # Counted and reported on the ticket by the monitor. The answer comes from the
                    # last readable records: never final or settling on what could not be read,
                    # but the executor may still cancel the order by the id it knows.
                    continue
                follow = tracker.orders[oid].replacing_order_id
                if follow is not None and follow not in tracker.orders:
                    todo.append(follow)

    def _search_unknown(self, refs: Sequence[str], now: dt.datetime, unreadable: set[str]) -> None:
        missing = {ref for ref in refs if ref not in self.monitor.trackers or not self.monitor.trackers[ref].chain}
        if not missing:
            return
        tracked = [self.monitor.trackers[r] for r in missing if r in self.monitor.trackers]
        since = [t.submitted_at for t in tracked if t.submitted_at is not None]
        found: dict[str, list[OrderSnapshot]] = {}
        if since and len(since) == len(missing):
            start = min(since) - self.search_margin
            for item in self.client.list_orders(start_date=start.date(), start_at=start):
                self._collect(item, missing.__contains__, found, unreadable)
        else:
            for item in self.client.live_orders():
                self._collect(item, missing.__contains__, found, unreadable)
        for ref, snaps in found.items():
            tracker = self.monitor.tracker_for(ref)
            self._adopt_chain(tracker, snaps)
        for ref in list(unreadable & missing):
            known = self.monitor.trackers.get(ref)
            if known is not None and known.chain:
                unreadable.discard(ref)  # one readable order of ours answers for the reference
            elif known is not None:
                self.monitor.unreadable(known, None, MalformedResponseError(
                    f"an order carrying {ref} cannot be read"), now)

    def _adopt_chain(self, tracker: TicketTracker, snaps: Sequence[OrderSnapshot]) -> None:
        """Record the orders among ``snaps`` (all carrying ``tracker``'s reference) that are its own.

        Of several originals only the one received closest after our submission is ours (the
        others are another process's, same reference); replacements follow the broker's links.
        """
        ordered = sorted({s.order_id: s for s in snaps}.values(), key=lambda s: _id_key(s.order_id))
        if not tracker.chain:
            originals = [s for s in ordered if s.replaces_order_id is None
                         and tracker.may_adopt(s, self.monitor.adopt_margin)]
            if len(originals) > 1:
                log.warning("%d broker orders carry %s: %s; adopting the one received closest after our submission",
                            len(originals), tracker.order_ref, [s.order_id for s in originals])
            if originals:
                self.monitor.record(tracker, min(originals, key=lambda s: self._distance(tracker, s)))
        for snap in ordered:
            if snap.order_id in tracker.orders or self.monitor.owner(snap) is tracker:
                self.monitor.record(tracker, snap)

    @staticmethod
    def _distance(tracker: TicketTracker, snap: OrderSnapshot) -> tuple[float, tuple[int, str]]:
        if tracker.submitted_at is None or snap.received_at is None:
            return (0.0, _negated(_id_key(snap.order_id)))  # nothing to compare: the newest
        return (abs((snap.received_at - tracker.submitted_at).total_seconds()), _id_key(snap.order_id))

    def _collect(self, item: Mapping[str, object], wanted: Callable[[str], bool],
                 found: dict[str, list[OrderSnapshot]], unreadable: set[str]) -> None:
        """Parse ``item`` when its reference is wanted (others are skipped unparsed); an unreadable
        one is counted and its reference noted in ``unreadable``."""
        ref = peek_identity(item).external_identifier
        if ref is None or not wanted(ref):
            return
        try:
            found.setdefault(ref, []).append(parse_order(item))
        except Exception as err:
            self.monitor.boundary_errors += 1
            unreadable.add(ref)
            log.warning("unreadable broker order %s carrying %s: %s", peek_identity(item).order_id, ref, err)

    def find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        """Every order the broker holds today whose ``external-identifier`` starts with ``prefix``.

        Reads ``GET /accounts/{n}/orders`` from the start of today's trading day (New York date;
        every page, newest first, so an order placed while paging is never missed) and ``GET
        /orders/live`` (today's orders in any status plus older GTC orders still working;
        reference §2). Answer: ``{external-identifier: OrderReport}`` reported like
        :meth:`reconcile` (status, every fill the legs carry, the broker's own filled count); an
        order this backend tracks is reported from its tracker (same fill ids as the poll), any
        other from a fresh one, without tracking it. Several unrelated orders with one reference
        (two processes) are reported by the newest chain, with a warning.

        At most ``config.max_find_pages`` pages are read; an answer claiming more raises
        :class:`BrokerUnavailable` (the list would be incomplete). An order carrying the prefix
        whose record cannot be read is left out, logged as an error and counted
        (:attr:`boundary_errors`).

        Raises :class:`BrokerUnavailable` when the broker cannot answer now, :class:`ValueError`
        for an empty ``prefix``.
        """
        if not isinstance(prefix, str) or not prefix or len(prefix) > MAX_TEXT:
            raise ValueError(f"prefix={prefix!r}: must be a non-empty string (empty would match every order "
                             "of the account)")
        try:
            return self._find_orders(prefix)
        except BrokerError:
            raise
        except Exception as err:
            raise BrokerUnavailable(self._caught(f"find_orders({prefix!r})", err)) from None

    def _find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        now = self._clock.now()
        day = now.astimezone(_MARKET_TZ).date()
        found: dict[str, list[OrderSnapshot]] = {}
        unreadable: set[str] = set()
        wanted = lambda ref: ref.startswith(prefix)  # noqa: E731
        try:
            for item in self.client.list_orders(start_date=day, max_pages=self.client.config.max_find_pages,
                                                complete=True):
                self._collect(item, wanted, found, unreadable)
            for item in self.client.live_orders():
                self._collect(item, wanted, found, unreadable)
        except TastytradeError as err:
            raise BrokerUnavailable(f"find_orders({prefix!r}): {err}") from None
        for ref in sorted(unreadable - set(found)):
            log.error("find_orders(%r): an order carrying %s cannot be read; left out (see the log above)", prefix,
                      ref)
        out: dict[str, OrderReport] = {}
        for ref in sorted(found):
            try:
                out[ref] = self._found_report(ref, found[ref], now)
            except Exception as err:  # one order's report never fails the others
                self.monitor.boundary_errors += 1
                log.error("find_orders(%r): %s could not be reported (%s: %s); left out", prefix, ref,
                          type(err).__name__, err)
        return out

    def _found_report(self, ref: str, snaps: Sequence[OrderSnapshot], now: dt.datetime) -> OrderReport:
        tracker = self.monitor.trackers.get(ref)
        if tracker is not None and tracker.chain:
            self._adopt_chain(tracker, snaps)
            self.monitor.touch(ref)
            return tracker.report(now)
        fresh = TicketTracker(ref, tracker.request if tracker is not None else None)
        for snap in _newest_chain(ref, snaps):
            fresh.add(snap)
        return fresh.report(now)

    # -- market data and account ----------------------------------------------------------------

    def open_symbols(self) -> list[OptionSymbol]:
        """Every leg symbol of the orders this backend tracks that are not final yet (what a
        :class:`~.quotes.TastytradeQuoteSource` covers on each fetch), sorted, no duplicates."""
        out: set[OptionSymbol] = set()
        for tracker in list(self.monitor.trackers.values()):
            if tracker.final is None and tracker.request is not None:
                out.update(leg.symbol for leg in tracker.request.legs)
        return sorted(out, key=lambda s: s.occ)

    def quote(self, symbol: OptionSymbol) -> Quote:
        """Top of book from the injected quote source (see the module docstring)."""
        if self.quote_source is None:
            raise BrokerUnavailable(
                "no quote source: inject quote_source (e.g. TastytradeQuoteSource over GET /market-data/by-type)"
            )
        try:
            quote = self.quote_source(symbol)
        except (BrokerError, QuoteUnavailable):
            raise
        except Exception as err:  # the injected source failed: no quote now (the core validates the values)
            raise BrokerUnavailable(self._caught(f"quote({getattr(symbol, 'occ', symbol)!r})", err)) from None
        if not isinstance(quote, Quote):
            raise BrokerUnavailable(f"quote({getattr(symbol, 'occ', symbol)!r}): the quote source returned "
                                    f"{type(quote).__name__}, not a Quote")
        return quote

    def positions(self) -> Mapping[OptionSymbol, int]:
        """Signed option positions from ``GET /accounts/{n}/positions``.

        Rows of other instruments are skipped unread. An option row that cannot be read (a symbol
        that is not OCC text, a quantity out of bounds) makes the whole answer unavailable
        (``BrokerUnavailable``, counted): a position map missing a row would read as flat.
        """
        try:
            rows = self.client.positions()
        except TastytradeError as err:
            raise BrokerUnavailable(f"positions: {err}") from None
        except Exception as err:
            raise BrokerUnavailable(self._caught("positions", err)) from None
        out: dict[OptionSymbol, int] = {}
        for i, row in enumerate(rows):
            if row.get("instrument-type") != "Equity Option":
                continue
            raw_symbol = row.get("symbol")
            try:
                if not isinstance(raw_symbol, str) or len(raw_symbol) > MAX_TEXT:
                    raise ValueError(f"positions[{i}].symbol={raw_symbol!r:.80}: not OCC text")
                symbol = OptionSymbol.parse_occ(raw_symbol)
                qty = parse_quantity(row.get("quantity"), f"positions[{i}].quantity")
            except Exception as err:
                self.monitor.boundary_errors += 1
                raise BrokerUnavailable(f"positions: unreadable row: {err}"[:500]) from None
            if row.get("quantity-direction") == "Short":
                qty = -qty
            if qty:
                out[symbol] = out.get(symbol, 0) + qty
        return out


def _id_key(order_id: str) -> tuple[int, str]:
    return (int(order_id), "") if order_id.isdigit() else (0, order_id)


def _negated(key: tuple[int, str]) -> tuple[int, str]:
    return (-key[0], key[1])


def _newest_chain(ref: str, snaps: Sequence[OrderSnapshot]) -> list[OrderSnapshot]:
    """The newest original among ``snaps`` and the replacements linked to it, oldest first."""
    ordered = sorted({s.order_id: s for s in snaps}.values(), key=lambda s: _id_key(s.order_id))
    originals = [s for s in ordered if s.replaces_order_id is None]
    if len(originals) > 1:
        log.warning("%d unrelated broker orders carry %s: %s; reporting the newest", len(originals), ref,
                    [s.order_id for s in originals])
    if not originals:
        return ordered  # only replacements (the original is older than the search): keep their links
    chain = [originals[-1]]
    ids = {chain[0].order_id}
    for snap in ordered:
        if snap.replaces_order_id is not None and snap.replaces_order_id in ids:
            chain.append(snap)
            ids.add(snap.order_id)
    return chain
