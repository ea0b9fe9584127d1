"""AtomicOrderExecutor: the only way an order leaves the program.

The executor owns the groups it executes and one backend. It sends what each group says is
sendable, prices it (mid first, then stepping toward the natural price), cancels and unwinds
when a group rolls back, reconciles every ``unknown`` order with the broker before any decision,
and checks the invariants after every event (a violation is logged loudly and counted).

It is driven from outside: :meth:`process_events` applies what the broker reported, and
:meth:`on_timer` runs the clocks (price steps, deadlines, reconciliation, retries).
:meth:`next_wakeup` says when the timers next need to run, so a discrete-event simulation
can jump straight there and a live loop can sleep until then.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
import marshal
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from atomic_orders.fsm import invariants, smart_pricing
from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.dormant import Batch, Dormant, dump_batch, load_batch
from atomic_orders.fsm.errors import (
    BrokerUnavailable,
    InvalidTransition,
    QuoteUnavailable,
    SubmissionOutcomeUnknown,
    SubmissionRefused,
    ValidationError,
)
from atomic_orders.fsm.events import (
    BROKER_EVENT_TYPES,
    BrokerStatus,
    CancelRequested,
    Reconciled,
    Rejected,
    SubmissionUnknown,
    Submit,
    TicketEvent,
    UpdateRequested,
)
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor_report import ExecutorStats as ExecutorStats
from atomic_orders.fsm.executor_report import GroupSummary as GroupSummary
from atomic_orders.fsm.group import INVALID, AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.id_set import IdSet
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderType, Purpose, Quote, quote_problem
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.strategy import StrategyKind, iron_condor_legs, strangle_legs, vertical_legs
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.fsm.ticket import (
    CANCEL_PENDING,
    CANCELABLE_STATES,
    NEW,
    REJECTED,
    SUBMITTING,
    UPDATE_PENDING,
    OrderTicket,
)

if TYPE_CHECKING:
    from atomic_orders.fsm.journal.recorder import JournalRecorder
    from atomic_orders.fsm.journal.store import Journal
    from atomic_orders.fsm.ports import ExecutionBackend
    from atomic_orders.fsm.recovery import RecoveryReport

log = logging.getLogger("atomic_orders.executor")


def _well_formed(be: object) -> bool:
    """A BrokerEvent whose reference is text and whose event is one of the core's broker events."""
    return (isinstance(be, BrokerEvent) and isinstance(be.order_ref, str) and len(be.order_ref) <= 256
            and isinstance(be.event, BROKER_EVENT_TYPES))


def new_session_id() -> str:
    """A random 6-character session component (digits and upper-case letters) for group ids.

    36**6 (about 2.2e9) values: two of a thousand sessions on one account share one with a
    probability of about 2e-4.
    """
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(6))

_ONE_SECOND = dt.timedelta(seconds=1)
#: How many released tickets' fill ids are remembered to recognise late duplicates.
_RELEASED_FILLS_KEPT = 20_000
#: Broker events that show an order alive (working, or filling) at the broker.
_ALIVE_TRIGGERS = frozenset({"acknowledged", "fill", "updated"})
#: With ``compact_finished``: a finished group falls asleep (is kept pickled, see
#: ``AtomicOrderExecutor._sleep``) once it has been finished, or last woken, this long. Late events
#: come soon after the finish: in hostile 2,000-condor sessions every one arrived within 21 s of it
#: (95% within 5 s), so a sleeping group is almost never woken, and the groups still awake are a
#: minute's worth, not a linger's (1,800 s: about 8,000 groups at 100,000 condors a day).
_DORMANT_AFTER = dt.timedelta(seconds=60)
#: ... in batches of this many: one pickle for many groups shares class names, field names and enum
#: members, and costs about half as much per group as one pickle each (and compresses better).
_SLEEP_BATCH = 16
#: ... but only while more than this many finished groups are awake: putting a group to sleep costs
#: about 0.2-0.35 ms of CPU (legged), so a session that holds fewer (up to ~13,000 condors a day)
#: pays nothing, and a longer one keeps at most about 10 MB of awake finished groups.
_AWAKE_FINISHED_KEPT = 1_000


class AtomicOrderExecutor:
    """Executes :class:`AtomicOrderGroup` s through one backend, atomically."""

    def __init__(
        self,
        backend: ExecutionBackend,
        policy: ExecutionPolicy | None = None,
        *,
        clock: Clock | None = None,
        on_finished: Callable[[AtomicOrderGroup, GroupSummary], None] | None = None,
        on_alert: Callable[[str], None] | None = None,
        on_released: Callable[[str], None] | None = None,
        release_finished: bool = False,
        compact_finished: bool = False,
        keep_summaries: bool = True,
        verify_replay: bool = False,
        id_prefix: str = "G",
        session_id: str | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy if policy is not None else ExecutionPolicy()
        self.clock: Clock = clock if clock is not None else backend.clock
        self.on_finished = on_finished
        self.on_alert = on_alert
        #: With ``release_finished``: called with a finished group's id once the executor has
        #: forgotten it (``policy.linger_seconds`` after it finished, no order of it live). From
        #: then on the group cannot finish again (a later event for it is a stray), so an owner
        #: keeping per-group figures for a re-finish can fold them into totals. Not called for a
        #: group never held (one that ended ``invalid`` at :meth:`execute`).
        self.on_released = on_released
        self.release_finished = release_finished
        #: With ``release_finished``: a finished group's audit trails are dropped once
        #: ``on_finished`` has seen it (:meth:`AtomicOrderGroup.forget_history`), and while more
        #: than ``_AWAKE_FINISHED_KEPT`` finished groups are awake, those finished a minute ago
        #: fall asleep (kept pickled with other groups, see :meth:`_sleep`), so the groups
        #: lingering for late events stay small. An event for one of its orders, or
        #: any view of it (:meth:`group`, :meth:`groups`, :meth:`abort`), wakes it as a new, equal
        #: object: a group or ticket object kept from before then is no longer updated. Refused
        #: with a journal or ``verify_replay``: both read the whole trail again when a late event
        #: re-opens the group.
        if compact_finished and (journal is not None or verify_replay or not release_finished):
            raise ValidationError("compact_finished", compact_finished,
                                  "needs release_finished, and no journal or verify_replay (they read the whole "
                                  "audit trail again)")
        self.compact_finished = compact_finished
        #: Keep every finished group's summary in :attr:`summaries` (off for long sessions whose
        #: caller aggregates through ``on_finished``, so memory stays flat).
        self.keep_summaries = keep_summaries
        self.verify_replay = verify_replay
        self.id_prefix = id_prefix
        if session_id is None:
            session_id = new_session_id()
        if not isinstance(session_id, str) or not (session_id == "" or (session_id.isascii() and session_id.isalnum())):
            raise ValidationError("session_id", session_id, "must be ASCII letters and digits (or empty)")
        #: The per-process component of every group id: references stay unique per account across
        #: processes and restarts. Empty only for a broker that is new with the executor (a simulation).
        self.session_id = session_id
        self.stats = ExecutorStats()
        self.violations: list[str] = []
        self.stray_events: list[BrokerEvent] = []
        #: Fill ids of recently released tickets, so a late duplicate is told apart from a lost fill.
        #: Bounded (oldest forgotten first) so memory stays flat over a long session.
        #: (A tuple: most tickets fill once, and a frozenset costs four times as much.)
        self._released_fills: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        #: Every finished group's id, released or not; the executor's own ids cost a bit each.
        self._finished_ids = IdSet(f"{self.id_prefix}{self.session_id}")
        self.summaries: dict[str, GroupSummary] = {}
        self._groups: dict[str, AtomicOrderGroup] = {}
        self._route: dict[str, AtomicOrderGroup] = {}
        self._active: set[str] = set()
        self._timers: list[tuple[dt.datetime, int, str]] = []
        self._timer_seq = 0
        self._seq = 0
        self._started: dict[str, dt.datetime] = {}
        self._finished_at: dict[str, dt.datetime] = {}
        self._sent_at: dict[str, dt.datetime] = {}
        self._pending_since: dict[str, dt.datetime] = {}
        self._not_before: dict[str, dt.datetime] = {}
        self._next_step: dict[str, dt.datetime] = {}
        self._mid_at_submit: dict[str, Decimal] = {}
        self._reconcile_after: dict[str, dt.datetime] = {}
        self._first_fill: dict[str, dt.datetime] = {}
        self._release_at: dict[str, dt.datetime] = {}
        self._adopted: dict[str, tuple[int, int]] = {}
        #: Per group: consecutive questions to the broker that left its record disagreeing, and
        #: when the next may be asked (the wait doubles, capped by ``max_backoff_seconds``).
        self._disagreements: dict[str, int] = {}
        self._ask_after: dict[str, dt.datetime] = {}
        #: Per order: cancels the broker refused, and when the next cancel may go out.
        self._cancel_refusals: dict[str, int] = {}
        self._cancel_after: dict[str, dt.datetime] = {}
        #: Per order: replaces the broker refused, and when the next replace may go out.
        self._update_refusals: dict[str, int] = {}
        self._update_after: dict[str, dt.datetime] = {}
        #: Per group: how many of its alerts reached ``on_alert`` already.
        self._alerted: dict[str, int] = {}
        self._outages: dict[str, int] = {}
        #: Per group: when its periodic service timer next fires.
        self._step_timer: dict[str, dt.datetime] = {}
        #: Groups already alerted as not settling (``policy.stuck_alert_seconds``).
        self._stuck_alerted: set[str] = set()
        #: Surfaced orders whose cancel the broker could not take: tries, and when to try again.
        self._surfaced_tries: dict[str, int] = {}
        self._surfaced_after: dict[str, dt.datetime] = {}
        #: Per order: pricing attempts that found no usable quote.
        self._quote_misses: dict[str, int] = {}
        #: Orders given up as not found at the broker (rejected, never resent): ``dormant``, or,
        #: once one surfaces (delayed routing, a request that landed after all), ``pending`` until
        #: the broker took our cancel, then ``cancelled``: nothing of ours may work at the broker
        #: unowned. Bounded like ``_released_fills``.
        self._abandoned: OrderedDict[str, str] = OrderedDict()
        #: The ``pending`` refs of ``_abandoned``: the timers look at those only when there are any
        #: (scanning the bounded table on every tick made a long session's cost grow with its length).
        self._abandoned_pending: set[str] = set()
        #: With ``compact_finished``: lingering groups asleep (see :meth:`_sleep`); the finished groups
        #: still awake, oldest first (``(when it may sleep, group id)``; ``_awake_since`` holds each
        #: one's latest, so a woken group's older entry is skipped); and those due, waiting for a batch.
        self._dormant: dict[str, Dormant] = {}
        self._awake_finished: deque[tuple[dt.datetime, str]] = deque()
        self._awake_since: dict[str, dt.datetime] = {}
        self._drowsy: list[str] = []
        #: The durable journal (write-ahead; None: nothing survives the process).
        self.journal = journal
        self._recorder: JournalRecorder | None = None
        if journal is not None:
            from atomic_orders.fsm.journal.recorder import JournalRecorder

            self._recorder = JournalRecorder(journal, self.policy)

    # ------------------------------------------------------------------------------------------
    # Public entry points

    def new_group_id(self) -> str:
        """A fresh group id: prefix, this executor's session component, a sequence (``GK3F9000001``).

        Unique per account across processes as long as session ids are (a random 6-character
        component by default); the sequence makes them deterministic within one. A ``group_id``
        given by the caller is used as it is: its uniqueness is the caller's.
        """
        self._seq += 1
        return f"{self.id_prefix}{self.session_id}{self._seq:06d}"

    def execute(self, group: AtomicOrderGroup) -> AtomicOrderGroup:
        """Validate and start ``group``; send its first orders. Returns the group.

        An invalid group ends in ``invalid`` with nothing sent; ``group.validation_errors`` says
        why, each error naming the leg and field. Raises :class:`ValidationError` (``quantity``)
        for a group larger than ``policy.max_contracts`` per leg, and :class:`QuoteUnavailable`
        when a leg of a limit group has no usable quote now (missing, not finite, crossed): the
        group is then never started and nothing is sent.
        """
        if not isinstance(group.group_id, str):  # it keys every table: refused before any lookup
            raise ValidationError("group_id", group.group_id, "must be a string")
        if group.group_id in self._groups or group.group_id in self._finished_ids:
            raise ValidationError("group_id", group.group_id, "is already used by this executor")
        self._check_size(group)
        now = self.clock.now()
        self.stats.groups += 1
        group.verify_with_broker = True  # settle only on the broker's own record (invariant 7)
        group.validate(now)
        if group.state != "validated":
            self.stats.invalid += 1
            self._finish(group, now)
            self._journal_commit()
            return group
        if group.order_type is OrderType.LIMIT:
            # Started only once its first orders can be priced: an unusable quote refuses it here.
            for leg in group.legs:
                try:
                    self._leg_quote(leg.symbol)
                except BrokerUnavailable:
                    break  # unreachable now: started, and the send is retried on the timers
        group.start(now)
        self._groups[group.group_id] = group
        self._active.add(group.group_id)
        self._started[group.group_id] = now
        for ticket in group.tickets:
            self._adopt(group, ticket)
        self._schedule(group.group_id, now + dt.timedelta(seconds=self.policy.deadline_seconds))
        self._dispatch(group)
        self._journal_commit()
        return group

    def execute_iron_condor(
        self,
        *,
        short_call: OptionSymbol,
        long_call: OptionSymbol,
        short_put: OptionSymbol,
        long_put: OptionSymbol,
        quantity: int,
        mode: ExecutionMode = ExecutionMode.COMBO,
        limit_price: Decimal | None = None,
        price_effect: PriceEffect = PriceEffect.CREDIT,
        position_effect: PositionEffect = PositionEffect.OPEN,
        group_id: str | None = None,
        longs_first: bool = True,
    ) -> AtomicOrderGroup:
        """Sell (credit, the default: short strikes inside) or buy (``price_effect=DEBIT``) an iron
        condor as one atomic group; every leg by role, keyword-only.

        Raises :class:`ValidationError`, and nothing is sent: before any group exists when the roles
        contradict the declared ``price_effect`` or each other (a role of another root, expiry or
        underlying than ``short_call``: ``long_call.root='SPX'``; see
        :func:`~atomic_orders.fsm.strategy.iron_condor_legs`); otherwise for any other bad input
        (``quantity``, ``limit_price``, ``mode``, ``group_id``, ...) after the group is recorded
        ``invalid`` as :meth:`execute` records it (the first problem named, every one in the
        message); and as :meth:`execute` does for too many contracts.
        """
        legs = iron_condor_legs(short_call=short_call, long_call=long_call, short_put=short_put, long_put=long_put,
                                price_effect=price_effect, position_effect=position_effect)
        return self._execute_built(
            self._group(group_id, legs, quantity, StrategyKind.IRON_CONDOR, mode, limit_price, price_effect,
                        longs_first)
        )

    def execute_vertical(
        self,
        *,
        long_leg: OptionSymbol,
        short_leg: OptionSymbol,
        price_effect: PriceEffect,
        quantity: int,
        mode: ExecutionMode = ExecutionMode.COMBO,
        limit_price: Decimal | None = None,
        position_effect: PositionEffect = PositionEffect.OPEN,
        group_id: str | None = None,
    ) -> AtomicOrderGroup:
        """Buy ``long_leg`` and sell ``short_leg`` (same right and expiry) as one atomic group.

        ``price_effect`` (required) declares a credit or a debit spread; strikes that make the
        other one raise :class:`ValidationError` (``price_effect``) before anything is sent, as do
        mismatched legs (``short_leg``, ``short_leg.expiry``, ...; see
        :func:`~atomic_orders.fsm.strategy.vertical_legs`). Any other bad input (``quantity``,
        ``limit_price``, ``mode``, ``group_id``, ...) raises :class:`ValidationError` too, nothing
        sent, after the group is recorded ``invalid`` (the first problem named, every one in
        the message).
        """
        legs = vertical_legs(long_leg=long_leg, short_leg=short_leg, price_effect=price_effect,
                             position_effect=position_effect)
        return self._execute_built(
            self._group(group_id, legs, quantity, StrategyKind.VERTICAL, mode, limit_price, price_effect, True)
        )

    def execute_strangle(
        self,
        *,
        call: OptionSymbol,
        put: OptionSymbol,
        side: Side,
        quantity: int,
        mode: ExecutionMode = ExecutionMode.COMBO,
        limit_price: Decimal | None = None,
        price_effect: PriceEffect | None = None,
        position_effect: PositionEffect = PositionEffect.OPEN,
        group_id: str | None = None,
    ) -> AtomicOrderGroup:
        """Sell (``side=Side.SELL``, a short strangle, a credit) or buy (``Side.BUY``, a debit) a call
        above a put as one atomic group.

        Raises :class:`ValidationError` before anything is sent for a call strike not above the put
        strike, a put of another root or expiry (``put.root``, ``put.expiry``) or a ``price_effect``
        that ``side`` contradicts (see :func:`~atomic_orders.fsm.strategy.strangle_legs`); and for
        any other bad input (``quantity``, ``limit_price``, ``mode``, ``group_id``, ...), nothing
        sent, after the group is recorded ``invalid`` (the first problem named, every one in
        the message).
        """
        legs = strangle_legs(call=call, put=put, side=side, price_effect=price_effect, position_effect=position_effect)
        effect = PriceEffect.CREDIT if side is Side.SELL else PriceEffect.DEBIT
        return self._execute_built(self._group(group_id, legs, quantity, StrategyKind.STRANGLE, mode, limit_price,
                                               effect, True))

    def _execute_built(self, group: AtomicOrderGroup) -> AtomicOrderGroup:
        """:meth:`execute` for a group a strategy helper built; raises where ``execute`` returns ``invalid``.

        The invalid group is first recorded exactly as :meth:`execute` records it (``stats.invalid``,
        the journal, ``on_finished``, its audit), so nothing is lost; then the helper's caller, who
        may never look at ``group.state``, gets a :class:`ValidationError`: the first error's field
        and value, the others listed in its reason. ``execute(group)`` itself keeps returning an
        invalid hand-built group (its documented behaviour).
        """
        self.execute(group)
        if group.state == INVALID:
            first, *others = group.validation_errors
            reason = first.reason
            if others:
                reason += "; also " + "; ".join(str(err) for err in others)
            raise ValidationError(first.field, first.value, f"{reason} (group {group.group_id!r} recorded invalid, "
                                                            f"nothing sent)")
        return group

    def _check_update_price(self, group: AtomicOrderGroup, ticket: OrderTicket, price: object) -> None:
        """Refuse (nothing sent) a new limit that is not a finite Decimal on the tick, in range, of the
        order's own sign (a credit combo stays a credit), or beyond the group's declared limit."""
        smart_pricing.check_update_price(group.ticks, price, current=ticket.limit_price, combo=ticket.is_combo,
                                         entry=ticket.purpose is Purpose.ENTRY,
                                         declared_limit=group.signed_limit_price)

    def _check_size(self, group: AtomicOrderGroup) -> None:
        """Refuse (nothing sent) a group trading more contracts per leg than the policy allows."""
        quantity = group.quantity
        if type(quantity) is not int or not isinstance(group.legs, tuple):
            return  # validation names it
        ratio = max((leg.ratio for leg in group.legs if isinstance(leg, Leg)), default=1)
        if quantity * ratio > self.policy.max_contracts:
            raise ValidationError("quantity", quantity, f"{quantity} x ratio {ratio} is more than "
                                  f"{self.policy.max_contracts} contracts per leg (ExecutionPolicy.max_contracts)")

    def _group(
        self,
        group_id: str | None,
        legs: Sequence[Leg],
        quantity: int,
        kind: StrategyKind,
        mode: ExecutionMode,
        limit_price: Decimal | None,
        price_effect: PriceEffect | None,
        longs_first: bool,
    ) -> AtomicOrderGroup:
        return AtomicOrderGroup(
            self.new_group_id() if group_id is None else group_id,  # "" is refused by name, not replaced
            legs,
            quantity,
            strategy=kind,
            mode=mode,
            limit_price=limit_price,
            price_effect=price_effect if limit_price is not None else None,
            max_unwind_retries=self.policy.max_unwind_retries,
            longs_first=longs_first,
            created_at=self.clock.now(),
            verify_with_broker=True,
        )

    def abort(self, group_id: str, reason: str = "aborted by user") -> AtomicOrderGroup:
        """Stop executing a group: cancel what works and unwind what filled.

        Raises :class:`ValidationError` (``group_id``) for a group this executor does not hold.
        """
        group = self._groups.get(group_id) if isinstance(group_id, str) else None
        if group is None and isinstance(group_id, str) and group_id in self._dormant:  # a list would raise TypeError
            group = self._wake(group_id)
        if group is None:
            raise ValidationError("group_id", group_id, "is not a group this executor holds")
        group.abort(self.clock.now(), reason)
        self._after_change(group)
        self._journal_commit()
        return group

    # ------------------------------------------------------------------------------------------
    # Driving

    def process_events(self) -> int:
        """Apply every broker event that arrived; return how many were processed.

        Never raises on what the backend hands over: an outage or an error outside the backend
        contract is logged and counted (``stats.boundary_errors``), and the next call tries again.
        """
        try:
            events = self.backend.poll_events()
        except BrokerUnavailable as err:
            log.warning("poll: broker unavailable (%s); next tick tries again", err)
            return 0
        except Exception:  # outside the contract: a backend bug or an answer it failed to read
            self.stats.boundary_errors += 1
            log.exception("poll_events raised outside the backend contract; next tick tries again")
            return 0
        if not isinstance(events, list):
            self.stats.boundary_errors += 1
            log.error("poll_events returned %s, not a list; ignored", type(events).__name__)
            return 0
        good = [be for be in events if _well_formed(be)]
        if len(good) != len(events):
            self.stats.boundary_errors += len(events) - len(good)
            log.error("poll_events returned %d items that are not a BrokerEvent of a str reference and a broker "
                      "event of atomic_orders.fsm.events; skipped", len(events) - len(good))
            events = good
        if self._recorder is not None and events:
            # Write-ahead: the batch is durable before any machine acts on it.
            route = self._route
            self._recorder.broker_events(events, lambda ref: g.group_id if (g := route.get(ref)) else None)
        for be in events:
            try:
                self._on_broker_event(be)
            except Exception:  # one bad record never stops the batch or the loop
                self.stats.boundary_errors += 1
                log.exception("broker event for %s could not be applied; recorded and skipped", be.order_ref)
                group = self._route.get(be.order_ref)
                if group is not None:
                    group.record_anomaly(f"event {type(be.event).__name__} for {be.order_ref} could not be applied")
        self._journal_commit()
        return len(events)

    def on_timer(self) -> None:
        """Run every timer that is due: price steps, deadlines, reconciliation, retries, release."""
        now = self.clock.now()
        due: list[str] = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, gid = heapq.heappop(timers)
            if gid not in due:
                due.append(gid)
        for gid in due:
            group = self._groups.get(gid)
            if group is None and gid not in self._dormant:
                continue
            try:
                if group is None:
                    self._release_dormant(gid, now)
                elif gid in self._active:
                    self._service(group, now)
                elif self.release_finished:
                    self._maybe_release(group, now)
            except Exception:  # one group's trouble never stops the others' timers
                self.stats.boundary_errors += 1
                log.exception("servicing group %s raised; retried after a backoff", gid)
                failures = self._outages.get(gid, 0) + 1
                self._outages[gid] = failures
                self._step_timer[gid] = now + self._backoff(failures)
                self._schedule(gid, self._step_timer[gid])
        pending = [r for r, st in self._abandoned.items() if st == "pending"] if self._abandoned_pending else []
        for ref in pending:
            after = self._surfaced_after.get(ref)
            if after is None or now >= after:
                try:
                    self._cancel_surfaced(ref)  # a cancel the broker could not take earlier
                except Exception:  # outside the contract: counted, retried on a backoff like an outage
                    self.stats.boundary_errors += 1
                    log.exception("cancel of surfaced order %s raised outside the backend contract", ref)
                    n = self._surfaced_tries.get(ref, 0) + 1
                    self._surfaced_tries[ref] = n
                    self._surfaced_after[ref] = now + self._backoff(n)
                    self._schedule("", self._surfaced_after[ref])
        if self._awake_finished and self._awake_finished[0][0] <= now and len(self._awake_since) > _AWAKE_FINISHED_KEPT:
            self._sleep_quiet(now)
        self._journal_commit()

    def next_wakeup(self) -> dt.datetime | None:
        """When :meth:`on_timer` next has something to do (None: nothing scheduled)."""
        return self._timers[0][0] if self._timers else None

    def run_until_settled(self, advance: Callable[[dt.datetime | None], bool], max_steps: int = 1_000_000) -> None:
        """Drive events and timers until every group is terminal.

        ``advance(when)`` moves the outside world (a simulator) to ``when`` (or to its own next
        event when ``None``) and returns False when nothing more can happen.
        """
        for _ in range(max_steps):
            if not self._active:
                return
            self.process_events()
            self.on_timer()
            if not self._active:
                return
            if not advance(self.next_wakeup()):
                self.process_events()
                self.on_timer()
                return

    def _journal_commit(self) -> None:
        """A decision point: make the transitions so far durable (no-op without a journal)."""
        if self._recorder is not None:
            self._recorder.commit()

    @classmethod
    def recover(
        cls,
        journal: Journal,
        backend: ExecutionBackend,
        policy: ExecutionPolicy | None = None,
        **kwargs: object,
    ) -> tuple[AtomicOrderExecutor, RecoveryReport]:
        """Rebuild every unfinished group from ``journal``, reconcile it with ``backend``, carry on.

        Replays each group's journaled transitions, asks the broker about every order it sent
        (by external identifier: status and fills) and about positions, applies what happened
        while the process was down, and lets each group continue under the normal rules.
        Nothing is resent: an intent the broker never saw ends ``rejected`` (the group rolls
        back, or an unwind is retried under a fresh reference). See :mod:`atomic_orders.fsm.recovery`.
        """
        from atomic_orders.fsm.recovery import recover_executor

        return recover_executor(cls, journal, backend, policy, kwargs)

    # ------------------------------------------------------------------------------------------
    # For recovery: the operations :class:`atomic_orders.fsm.recovery.RecoveryHost` names, used
    # while the executor is rebuilt from its journal (before any event or timer runs)

    def reserve_group_ids(self, up_to: int) -> None:
        """For recovery: never issue a group id whose sequence number is ``up_to`` or below."""
        self._seq = max(self._seq, up_to)

    def restore_group(self, group: AtomicOrderGroup, started: dt.datetime, sent_at: Mapping[str, dt.datetime],
                      first_fill: dt.datetime | None) -> None:
        """For recovery: hold a group rebuilt from the journal, with its timings, and route its orders.

        ``started``: when it started; ``sent_at``: when each of its orders was sent, by reference;
        ``first_fill``: the time of its first fill (None without fills). Counted in ``stats.groups``.
        Nothing is sent and no timer is set (see :meth:`resume_group`).
        """
        gid = group.group_id
        self._groups[gid] = group
        self.stats.groups += 1
        for ticket in group.tickets:
            self._adopt(group, ticket)
        self._adopted[gid] = group.ticket_marker
        self._started[gid] = started
        self._sent_at.update(sent_at)
        if first_fill is not None:
            self._first_fill[gid] = first_fill

    def apply_ticket_event(self, group: AtomicOrderGroup, order_ref: str, event: TicketEvent) -> bool:
        """For recovery: apply ``event`` to the group's ticket ``order_ref``; False when the ticket
        could not take it (recorded on the group as an anomaly, never raised)."""
        return self._apply(group, order_ref, event)

    def cancel_orphan(self, order_ref: str) -> None:
        """For recovery: cancel an order of ours the broker works that no group owns (the journal
        lacks it). Retried on the timers while the broker cannot take the cancel."""
        self._mark_abandoned(order_ref, "pending")
        self._cancel_surfaced(order_ref)

    def alert(self, text: str) -> None:
        """For recovery: raise an alert (logged, counted, handed to ``on_alert``)."""
        self._alert(text)

    def record_violation(self, text: str) -> None:
        """For recovery: record an invariant violation (logged loudly, counted, kept in ``violations``)."""
        self._violation(text)

    def mark_finished(self, group_id: str, finished_at: dt.datetime | None = None) -> None:
        """For recovery: a group that finished before the crash.

        Without ``finished_at`` the group is not held (released long ago): its id stays used and
        late events for its orders are recognised as ours. With it the group is held (restored by
        :meth:`restore_group`) and, with ``release_finished``, released ``policy.linger_seconds``
        after ``finished_at``.
        """
        self._finished_ids.add(group_id)
        if finished_at is None:
            return
        self._finished_at[group_id] = finished_at
        if self.release_finished:
            release = finished_at + dt.timedelta(seconds=self.policy.linger_seconds)
            self._release_at[group_id] = release
            self._schedule(group_id, release)

    def resume_group(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        """For recovery: carry a restored group on under the normal rules at ``now``.

        A group that reached a terminal state while the process was down is finished now; any
        other is checked, dispatched and scheduled (a deadline that passed rolls it back at once).
        """
        gid = group.group_id
        self._active.add(gid)
        if group.is_terminal:
            self._finish(group, now)
            return
        self._schedule(gid, now)
        self._after_change(group)

    def commit_journal(self) -> None:
        """For recovery: a decision point: make the transitions so far durable (no-op without a journal)."""
        self._journal_commit()

    # ------------------------------------------------------------------------------------------
    # Views

    def group(self, group_id: str) -> AtomicOrderGroup:
        """A group still held by the executor (KeyError when it holds none of this id)."""
        if not isinstance(group_id, str):  # a list would raise TypeError, not the KeyError promised
            raise KeyError(f"no group {group_id!r}: group ids are strings")
        if group_id in self._dormant:
            return self._wake(group_id)
        return self._groups[group_id]

    def open_groups(self) -> list[AtomicOrderGroup]:
        """Groups not yet terminal."""
        return [self._groups[g] for g in sorted(self._active)]

    def groups(self) -> list[AtomicOrderGroup]:
        """Every group still held (finished ones until released; sleeping ones are woken first)."""
        loaded: dict[Batch, list[tuple[AtomicOrderGroup, list[tuple[int, str, object]]]]] = {}
        for gid in list(self._dormant):
            self._wake(gid, loaded)
        return list(self._groups.values())

    def finished_group_ids(self) -> set[str]:
        """Ids of every group that reached a terminal state (released or not)."""
        return set(self._finished_ids)

    def owns_order(self, order_ref: str) -> bool:
        """True when ``order_ref`` belongs to a group this executor executes or executed."""
        if order_ref in self._route:
            return True
        gid = order_ref.rsplit("-", 1)[0]
        return gid in self._finished_ids

    # ------------------------------------------------------------------------------------------
    # TicketRouter: LEAN-style ticket.cancel() / ticket.update() come back here

    def request_cancel(self, ticket: OrderTicket) -> None:
        """Cancel one order of a group (through the backend; never around the executor)."""
        group = self._group_of(ticket)
        # The group's own ticket: one kept from before the group slept is a stale copy.
        self._cancel(group, group.ticket(ticket.order_ref), self.clock.now())

    def request_update(self, ticket: OrderTicket, limit_price: Decimal | None, quantity: int | None) -> None:
        """Change one order's limit price and/or quantity (through the backend)."""
        group = self._group_of(ticket)
        ticket = group.ticket(ticket.order_ref)  # the group's own: a copy kept from before it slept is stale
        if limit_price is None and quantity is None:
            raise ValidationError("update", None, "give a limit_price or a quantity")
        if limit_price is not None:
            self._check_update_price(group, ticket, limit_price)
        if quantity is not None and (type(quantity) is not int or quantity != ticket.quantity):
            # A group's size is its targets: a resized order would leave the group waiting for
            # units it no longer asks for (or committing over a cut). Nothing is sent.
            raise ValidationError("quantity", quantity, f"order {ticket.order_ref!r} belongs to group "
                                  f"{group.group_id!r} of {group.quantity}; its size cannot change (abort the "
                                  f"group and execute a new one)")
        self._replace(group, ticket, limit_price if limit_price is not None else ticket.limit_price, quantity,
                      self.clock.now())

    # ------------------------------------------------------------------------------------------
    # Internals: events

    def _on_broker_event(self, be: BrokerEvent) -> None:
        self.stats.broker_events += 1
        if self._abandoned.get(be.order_ref) == "dormant" and be.event.trigger in _ALIVE_TRIGGERS:
            self._mark_abandoned(be.order_ref, "pending")
            self._alert(f"order {be.order_ref} surfaced at the broker after it was given up as not found: "
                        f"cancelling it ({be.event.trigger})")
            self._cancel_surfaced(be.order_ref)
        group = self._route.get(be.order_ref)
        if group is None and self._dormant:
            group = self._dormant_group_of(be.order_ref)
        if group is None:
            # Never dropped: kept, counted and alerted (a fill here is exposure outside any group).
            self.stray_events.append(be)
            self.stats.stray_events += 1
            event = be.event
            if event.trigger == "fill":
                known = self._released_fills.get(be.order_ref, ())
                if event.fill_id in known:  # type: ignore[union-attr]
                    self.stats.stray_duplicates += 1
                    return
                self._violation(f"fill {be.order_ref} {event!r} arrived for no open group")
            self._alert(f"broker event for an order no open group owns: {be.order_ref} {event!r}")
            return
        self._apply(group, be.order_ref, be.event)
        if be.event.trigger == "cancel_rejected":
            self._cancel_refused(group, be.order_ref)
        elif be.event.trigger == "update_rejected":
            self._update_refused(group, be.order_ref)
        self._after_change(group)

    def _apply(self, group: AtomicOrderGroup, order_ref: str, event: TicketEvent) -> bool:
        if self._recorder is not None:
            self._recorder.touch(group)
        ticket = group.ticket(order_ref)
        had_fill = bool(ticket.fills)
        try:
            group.apply_ticket_event(order_ref, event)
        except InvalidTransition as err:
            self.stats.anomalies += 1
            group.record_anomaly(f"{event.time.isoformat()} {err}")
            log.warning("ignored broker event (recorded as anomaly): %s", err)
            return False
        if not had_fill and ticket.fills and group.group_id not in self._first_fill:
            self._first_fill[group.group_id] = event.time
        if isinstance(event, Reconciled) and event.status is BrokerStatus.NOT_FOUND and ticket.state == REJECTED:
            self._abandoned.setdefault(order_ref, "dormant")  # nothing to cancel unless it surfaces
            if len(self._abandoned) > _RELEASED_FILLS_KEPT:
                evicted, _state = self._abandoned.popitem(last=False)
                self._abandoned_pending.discard(evicted)
        return True

    def _mark_abandoned(self, order_ref: str, state: str) -> None:
        self._abandoned[order_ref] = state
        if state == "pending":
            self._abandoned_pending.add(order_ref)
        else:
            self._abandoned_pending.discard(order_ref)

    def _cancel_surfaced(self, order_ref: str) -> None:
        """Cancel an order given up as not found that the broker now works (retried on timers)."""
        try:
            self.backend.cancel(order_ref)
        except BrokerUnavailable:
            # stays marked; on_timer tries again after a backoff (a timer with no group wakes it)
            n = self._surfaced_tries.get(order_ref, 0) + 1
            self._surfaced_tries[order_ref] = n
            after = self.clock.now() + self._backoff(n)
            self._surfaced_after[order_ref] = after
            self._schedule("", after)
            return
        self._surfaced_tries.pop(order_ref, None)
        self._surfaced_after.pop(order_ref, None)
        self._mark_abandoned(order_ref, "cancelled")
        self.stats.surfaced_cancels += 1
        self.stats.cancels_sent += 1

    def _after_change(self, group: AtomicOrderGroup) -> None:
        """After anything happened to a group: check it, then act on its new state."""
        violations = invariants.check_step(group)
        for v in violations:
            self._violation(v)
        self._deliver_alerts(group)
        if self._recorder is not None:
            self._recorder.touch(group)
        gid = group.group_id
        if group.is_terminal:
            if gid in self._active:
                self._finish(group, self.clock.now())
            elif group.state == "failed":
                self._refresh_failed(group)
            return
        if gid not in self._active:
            # A settled group re-opened (a fill after settlement): manage it again.
            self._active.add(gid)
            self._schedule(gid, self.clock.now() + dt.timedelta(seconds=self.policy.step_seconds))
        self._dispatch(group)

    def _refresh_failed(self, group: AtomicOrderGroup) -> None:
        """A fill reached a ``failed`` group: ask the broker again about the orders whose record it
        made stale, so the residual a human acts on is the broker's count, not a guess.

        Event-driven (one question per such fill), never a loop; an outage leaves the estimate.
        """
        stale = [t.order_ref for t in group.tickets
                 if t.broker_record is not None and t.broker_record.booked != t.quantity_filled]
        if not stale:
            return
        try:
            reports = self.backend.reconcile(stale)
        except BrokerUnavailable:
            return
        now = self.clock.now()
        for ref in stale:
            report = reports.get(ref)
            if report is not None:
                self.stats.reconciliations += 1
                self._apply(group, ref, Reconciled(now, report.status, tuple(report.fills), report.broker_order_id,
                                                   report.filled_quantity, fills_may_lag=report.fills_may_lag))
        self._deliver_alerts(group)

    def plans_for(self, group_id: str, now: dt.datetime) -> tuple[object, ...]:
        """What the executor still plans for one group, as seconds from ``now``: its timers, each
        order's send, pending, back-off and step times, the broker questions due, and the refusal,
        outage and disagreement counts.

        The exhaustive checker (:mod:`atomic_orders.simulator.proofs.exhaustive`) folds it into a
        state's identity: two states with equal plans behave alike from here on. A value to compare,
        not to read field by field; its shape may change with the executor.
        """

        def rel(when: dt.datetime | None) -> float | None:
            return None if when is None else (when - now).total_seconds()

        def table(d: dict[str, dt.datetime]) -> tuple[tuple[str, float | None], ...]:
            return tuple(sorted((k, rel(v)) for k, v in d.items()))

        return (
            tuple(sorted({(w - now).total_seconds() for w, _, _ in self._timers})),
            table(self._sent_at),
            table(self._pending_since),
            table(self._not_before),
            table(self._next_step),
            rel(self._reconcile_after.get(group_id)),
            rel(self._ask_after.get(group_id)),
            self._disagreements.get(group_id, 0),
            self._outages.get(group_id, 0),
            table(self._cancel_after),
            tuple(sorted(self._cancel_refusals.items())),
            table(self._update_after),
            tuple(sorted(self._update_refusals.items())),
            group_id in self._active,
        )

    def _violation(self, text: str) -> None:
        self.stats.invariant_violations += 1
        self.violations.append(text)
        log.error("INVARIANT VIOLATION: %s", text)

    def _alert(self, text: str) -> None:
        self.stats.alerts += 1
        log.warning("ALERT: %s", text)
        if self.on_alert is not None:
            try:
                self.on_alert(text)
            except Exception:  # the pager failing must not stop the executor (the log has the alert)
                self.stats.boundary_errors += 1
                log.exception("on_alert raised; the alert above stands in the log")

    def _deliver_alerts(self, group: AtomicOrderGroup) -> None:
        """Hand every alert the group raised since the last call to ``on_alert`` (and the log), now."""
        done = self._alerted.get(group.group_id, 0)
        if done < len(group.alerts):
            self._alerted[group.group_id] = len(group.alerts)
            for alert in group.alerts[done:]:
                self._alert(alert)

    # ------------------------------------------------------------------------------------------
    # Internals: actions

    def _adopt(self, group: AtomicOrderGroup, ticket: OrderTicket) -> None:
        if ticket.order_ref not in self._route:
            self._route[ticket.order_ref] = group
            ticket.router = self

    def _dispatch(self, group: AtomicOrderGroup) -> None:
        """Do what the group's state asks for: cancel, reconcile, send; repeat while that progresses."""
        now = self.clock.now()
        # A few rounds at most: a synchronous refusal can make a new unwind sendable, but every
        # retry after a failure is held back by a delay, so the loop always ends.
        acted = False
        for _ in range(8):
            if group.is_terminal:
                break
            self._route_new_tickets(group)
            for ticket in group.cancelable_tickets():
                self._cancel(group, ticket, now)
            if any(t.is_live for t in group.unknown_tickets()):
                self._reconcile_unknown(group, now)
            if group.awaiting_broker() and not group.sendable_tickets():
                self._ask_broker(group, now)
            self._route_new_tickets(group)  # the broker's answers may have opened unwinds
            sent = False
            for ticket in group.sendable_tickets():
                if ticket.state != NEW or group.is_terminal:
                    continue
                hold = self._not_before.get(ticket.order_ref)
                if hold is None and ticket.purpose is Purpose.UNWIND:
                    failures = group.unwind_failures.get(ticket.legs[0].symbol, 0)
                    if failures:
                        hold = now + dt.timedelta(seconds=self.policy.unwind_retry_delay * failures)
                        self._not_before[ticket.order_ref] = hold
                        self._schedule(group.group_id, hold)
                if hold is not None and hold > now:
                    continue
                sent = self._send(group, ticket, now) or sent
            if not sent:
                break
            acted = True
        if acted or group.state == "rolling_back":
            for v in invariants.check_step(group):
                self._violation(v)
        if group.is_terminal and group.group_id in self._active:
            self._finish(group, now)

    def _route_new_tickets(self, group: AtomicOrderGroup) -> None:
        """Route every ticket the group created since the last look (unwinds open on evaluations)."""
        # Keyed on the unwind sequence too: a stale unwind dropped and a new one opened in the
        # same evaluation leave the ticket count unchanged, and the new one must be routed.
        marker = group.ticket_marker
        if marker != self._adopted.get(group.group_id):
            for ticket in group.tickets:
                self._adopt(group, ticket)
            self._adopted[group.group_id] = marker

    def _send(self, group: AtomicOrderGroup, ticket: OrderTicket, now: dt.datetime) -> bool:
        """Submit one new ticket; True when a request went out (whatever its outcome)."""
        try:
            price, mid = self._initial_price(group, ticket)
        except BrokerUnavailable:
            self._schedule(group.group_id, now + dt.timedelta(seconds=self.policy.reconcile_interval))
            return False
        except QuoteUnavailable as err:
            self._quote_missed(group, ticket, now, err)
            return False
        self._quote_misses.pop(ticket.order_ref, None)
        # Write-ahead: the ticket records the intent (and its price) before the request leaves.
        if not self._apply(group, ticket.order_ref, Submit(now, price)):
            return False
        self._sent_at[ticket.order_ref] = now
        if mid is not None:
            self._mid_at_submit[ticket.order_ref] = mid
        request = ticket.to_request()
        if self._recorder is not None:
            self._recorder.intent(group, request, now)  # committed before the request leaves
        self.stats.orders_sent += 1
        try:
            self.backend.submit(request)
            if self._recorder is not None:
                self._recorder.point("submit_returned")
        except SubmissionRefused as err:
            self.stats.submissions_refused += 1
            self._apply(group, ticket.order_ref, Rejected(now, err.reason or "refused"))
        except (SubmissionOutcomeUnknown, BrokerUnavailable) as err:
            # Never resend: the order may be at the broker. Reconcile by our reference first.
            self.stats.submissions_unknown += 1
            self._apply(group, ticket.order_ref, SubmissionUnknown(now, str(err) or "unknown"))
            retry = now + dt.timedelta(seconds=self.policy.reconcile_interval)
            self._reconcile_after[group.group_id] = retry
            self._schedule(group.group_id, retry)
        except Exception as err:  # a bug or an unexpected transport failure: outcome unknown
            log.exception("submit of %s raised", ticket.order_ref)
            self.stats.submissions_unknown += 1
            self._apply(group, ticket.order_ref, SubmissionUnknown(now, f"submit raised {type(err).__name__}"))
            if group.state == "executing":
                group.submit_failed(now, f"{ticket.order_ref}: {type(err).__name__}")
        self._schedule(group.group_id, now + dt.timedelta(seconds=min(self.policy.step_seconds,
                                                                          self.policy.ack_timeout)))
        return True

    def _cancel(self, group: AtomicOrderGroup, ticket: OrderTicket, now: dt.datetime) -> None:
        if ticket.state not in CANCELABLE_STATES:
            return
        hold = self._cancel_after.get(ticket.order_ref)
        if hold is not None and now < hold:
            self._schedule(group.group_id, hold)
            return  # the broker refused the last cancel: it was reconciled; wait before asking again
        try:
            self.backend.cancel(ticket.order_ref)
        except BrokerUnavailable:
            self._schedule(group.group_id, now + dt.timedelta(seconds=self.policy.reconcile_interval))
            return
        self.stats.cancels_sent += 1
        if self._apply(group, ticket.order_ref, CancelRequested(now)):
            self._pending_since[ticket.order_ref] = now
            self._schedule(group.group_id, now + dt.timedelta(seconds=self.policy.pending_timeout))

    def _replace(
        self, group: AtomicOrderGroup, ticket: OrderTicket, price: Decimal | None, quantity: int | None,
        now: dt.datetime,
    ) -> None:
        if price is None or not ticket.can_apply("update_requested"):
            return  # nothing is sent for an order that cannot take an update now
        hold = self._update_after.get(ticket.order_ref)
        if hold is not None and now < hold:
            return  # the broker refused the last replace: reconciled; the next waits out its backoff
        try:
            self.backend.replace(ticket.order_ref, price, quantity)
        except BrokerUnavailable:
            return
        self.stats.updates_sent += 1
        if self._apply(group, ticket.order_ref, UpdateRequested(now, limit_price=price, quantity=quantity)):
            self._pending_since[ticket.order_ref] = now

    def _backoff(self, attempt: int) -> dt.timedelta:
        """The wait before question ``attempt + 1``: ``reconcile_interval`` doubling, capped."""
        policy = self.policy
        seconds = policy.reconcile_interval * 2 ** min(max(attempt - 1, 0), 20)
        return dt.timedelta(seconds=min(seconds, policy.max_backoff_seconds))

    def _reconcile(self, group: AtomicOrderGroup, now: dt.datetime, refs: Iterable[str] | None = None) -> bool:
        """Ask the broker about ``refs`` (default: the group's unknown orders) and apply its record.

        True when the broker answered. An outage is retried on a timer that backs off.
        """
        wanted = list(refs) if refs is not None else [t.order_ref for t in group.unknown_tickets()]
        if not wanted:
            return False
        gid = group.group_id
        after = self._reconcile_after.get(gid)
        if refs is None and after is not None and now < after:
            self._schedule(gid, after)
            return False
        try:
            reports = self.backend.reconcile(wanted)
            if not isinstance(reports, Mapping):
                raise TypeError(f"reconcile returned {type(reports).__name__}, not a mapping")
        except BrokerUnavailable:
            self._no_answer(group, now)
            return False
        except Exception:  # outside the contract: no answer, named in the log, retried on a backoff
            self.stats.boundary_errors += 1
            log.exception("reconcile of %s raised outside the backend contract", wanted)
            self._no_answer(group, now)
            return False
        answered = True
        for ref in wanted:
            report = reports.get(ref)
            if not isinstance(report, OrderReport) or report.order_ref != ref:
                # an order left out (or answered under another reference) is not answered: it is
                # never read as "nothing happened", nor as a dispute
                answered = False
                continue
            self.stats.reconciliations += 1
            self._apply(
                group, ref, Reconciled(now, report.status, tuple(report.fills), report.broker_order_id,
                                       report.filled_quantity, fills_may_lag=report.fills_may_lag)
            )
            self._pending_since.pop(ref, None)
        if not answered:
            self.stats.unanswered += 1
            log.warning("reconcile left out some of %s (or answered another reference): asked again later", wanted)
            self._no_answer(group, now)
            return False
        self._reconcile_after.pop(gid, None)
        self._outages.pop(gid, None)
        return True

    def _no_answer(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        """The broker did not answer (fully): ask again after a backoff; alert once it persists."""
        gid = group.group_id
        self.stats.reconcile_failures += 1
        failures = self._outages.get(gid, 0) + 1
        self._outages[gid] = failures
        retry = now + self._backoff(failures)
        self._reconcile_after[gid] = retry
        self._schedule(gid, retry)
        if failures == self.policy.max_broker_disagreements + 1:
            self._alert(f"group {gid}: the broker has not answered about its orders {failures} times; "
                        "still asking (nothing is resent)")

    def _reconcile_unknown(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        """Reconcile the group's unknown orders; an answer that leaves one unknown counts as a disagreement."""
        gid = group.group_id
        holds = [h for h in (self._ask_after.get(gid), self._reconcile_after.get(gid)) if h is not None]
        if holds and now < max(holds):
            self._schedule(gid, max(holds))
            return
        if self._reconcile(group, now) and any(t.is_live for t in group.unknown_tickets()):
            self._disagree(group, now, "an unknown order's record contradicts itself")

    def _ask_broker(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        """Before a group settles: ask the broker's own record about every order not yet confirmed.

        Missing fills it lists are booked (the group re-evaluates on them); a record that still
        disagrees is asked again after a backoff, and after ``max_broker_disagreements`` the group
        fails with the residual the broker counts (invariant 7).
        """
        gid = group.group_id
        holds = [h for h in (self._ask_after.get(gid), self._reconcile_after.get(gid)) if h is not None]
        if holds and now < max(holds):
            self._schedule(gid, max(holds))
            return
        refs = [t.order_ref for t in group.tickets if not t.broker_confirms]
        self.stats.broker_audits += 1
        if not self._reconcile(group, now, refs):
            return  # no (full) answer: retried on the outage backoff
        if group.is_terminal or all(t.broker_confirms for t in group.tickets):
            self._disagreements.pop(gid, None)
            self._ask_after.pop(gid, None)
            return
        if not group.awaiting_broker():
            return  # live again (a record that went back to WORKING): the count stands, no dispute
        self._disagree(group, now, "; ".join(
            f"{t.order_ref}: broker {t.broker_record.status.value} "
            f"{t.broker_record.filled} {'filled' if t.broker_record.counted else 'listed, no count'}, booked "
            f"{t.quantity_filled}" for t in group.tickets if not t.broker_confirms and t.broker_record is not None
        ) or "the broker's record does not confirm the fills")

    def _disagree(self, group: AtomicOrderGroup, now: dt.datetime, why: str) -> None:
        """Count one disagreeing answer; back off, or fail the group once they persist."""
        gid = group.group_id
        self.stats.broker_disagreements += 1
        n = self._disagreements.get(gid, 0) + 1
        self._disagreements[gid] = n
        log.warning("broker record disagrees for group %s (%d): %s", gid, n, why)
        if n > self.policy.max_broker_disagreements:
            working = [t for t in group.tickets if t.state != NEW and t.broker_record is not None
                       and not t.broker_record.final]
            if not working:
                group.broker_disputed(now, why)
                return
            # The broker says an order still works: cancel it before anyone calls this failed.
            for t in working:
                try:
                    self.backend.cancel(t.order_ref)
                    self.stats.cancels_sent += 1
                except BrokerUnavailable:
                    continue  # sent again with the next question, after the backoff below
            if gid not in self._stuck_alerted:
                self._stuck_alerted.add(gid)
                self._alert(f"group {gid}: the broker's record keeps disagreeing ({why}) and reports "
                            f"{[t.order_ref for t in working]} still working: cancelling, still asking")
        retry = now + self._backoff(n)
        self._ask_after[gid] = retry
        self._schedule(gid, retry)

    def _update_refused(self, group: AtomicOrderGroup, order_ref: str) -> None:
        """The broker refused our replace (the order may be closed): ask for its record, hold the next one."""
        now = self.clock.now()
        n = self._update_refusals.get(order_ref, 0) + 1
        self._update_refusals[order_ref] = n
        previous = self._update_after.get(order_ref)
        self._update_after[order_ref] = now + self._backoff(n)
        if previous is None or now >= previous:  # one question per backoff window, however many refusals
            self._reconcile(group, now, [order_ref])

    def _cancel_refused(self, group: AtomicOrderGroup, order_ref: str) -> None:
        """The broker refused our cancel: ask for its record (the order may be closed), and hold the next cancel."""
        now = self.clock.now()
        self.stats.cancels_refused += 1
        n = self._cancel_refusals.get(order_ref, 0) + 1
        self._cancel_refusals[order_ref] = n
        previous = self._cancel_after.get(order_ref)
        hold = now + self._backoff(n)
        self._cancel_after[order_ref] = hold
        self._schedule(group.group_id, hold)
        if previous is None or now >= previous:  # one question per backoff window, however many refusals
            self._reconcile(group, now, [order_ref])

    # ------------------------------------------------------------------------------------------
    # Internals: timers

    def _schedule(self, group_id: str, when: dt.datetime) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, group_id))

    def _service(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        gid = group.group_id
        policy = self.policy
        if group.state == "executing" and now >= self._started[gid] + dt.timedelta(seconds=policy.deadline_seconds):
            group.deadline(now, f"not filled within {policy.deadline_seconds:g}s")
            self._after_change(group)
            if group.is_terminal:
                return
        # Stale in-flight requests: no acknowledgement, or no answer to a cancel/update.
        stale: list[str] = []
        for ticket in group.tickets:
            ref = ticket.order_ref
            if ticket.state == SUBMITTING:
                sent = self._sent_at.get(ref, now)
                if now - sent >= dt.timedelta(seconds=policy.ack_timeout):
                    self._apply(group, ref, SubmissionUnknown(now, f"no acknowledgement in {policy.ack_timeout:g}s"))
            elif ticket.state in (CANCEL_PENDING, UPDATE_PENDING):
                since = self._pending_since.get(ref, now)
                if now - since >= dt.timedelta(seconds=policy.pending_timeout):
                    stale.append(ref)
        if stale:
            self._reconcile(group, now, stale)
            for ref in stale:
                self._pending_since[ref] = now
                # a cancel the broker neither took nor refused: the next one waits, doubling
                n = self._cancel_refusals.get(ref, 0) + 1
                self._cancel_refusals[ref] = n
                self._cancel_after[ref] = now + self._backoff(n)
        started = self._started.get(gid)
        if (started is not None and gid not in self._stuck_alerted
                and now - started >= dt.timedelta(seconds=policy.deadline_seconds + policy.stuck_alert_seconds)):
            self._stuck_alerted.add(gid)
            self._alert(f"group {gid} has not settled {(now - started).total_seconds():.0f}s after it started "
                        f"({group.state}; live orders {[t.order_ref for t in group.live_tickets()]}); still working")
        if group.state == "executing":
            self._step_prices(group, now)
        elif group.state == "rolling_back":
            limit = dt.timedelta(seconds=policy.unwind_timeout)
            for ticket in group.unwind_tickets:
                sent_at = self._sent_at.get(ticket.order_ref)
                if ticket.state in CANCELABLE_STATES and sent_at is not None and now - sent_at >= limit:
                    self._cancel(group, ticket, now)
        self._after_change(group)
        if gid in self._active and self._step_timer.get(gid, now) <= now:
            # One periodic timer per group: one-shot wake-ups (holds, retries) must not each start
            # a chain of their own, or an outage would multiply the questions it causes.
            self._step_timer[gid] = now + dt.timedelta(seconds=policy.step_seconds)
            self._schedule(gid, self._step_timer[gid])

    def _step_prices(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        step = dt.timedelta(seconds=self.policy.step_seconds)
        for ticket in group.entry_tickets:
            if ticket.state not in ("submitted", "partially_filled") or ticket.limit_price is None:
                continue
            ref = ticket.order_ref
            due = self._next_step.get(ref)
            if due is None:
                self._next_step[ref] = self._sent_at.get(ref, now) + step
                continue
            if now < due:
                continue
            self._next_step[ref] = now + step
            try:
                new_price = self._stepped_price(group, ticket)
            except BrokerUnavailable:
                continue  # no step while the broker cannot answer; the next step tries again
            except QuoteUnavailable as err:
                self.stats.quote_misses += 1  # no step without a usable quote; the next step tries again
                log.info("no price step for %s: %s", ref, err)
                continue
            if new_price is not None and new_price != ticket.limit_price:
                self._replace(group, ticket, new_price, None, now)

    # ------------------------------------------------------------------------------------------
    # Internals: pricing (signed net per unit for combos, debit positive; per contract for legs)

    def _leg_quote(self, symbol: OptionSymbol) -> tuple[Decimal, Decimal]:
        """(bid, ask) of a usable quote; raises :class:`QuoteUnavailable` (or ``BrokerUnavailable``)."""
        try:
            q = self.backend.quote(symbol)
        except (BrokerUnavailable, QuoteUnavailable):
            raise  # within the contract (fsm/ports.py): the backend's reason is kept
        except Exception as err:  # outside the contract: no quote, named
            self.stats.boundary_errors += 1
            log.warning("quote for %s raised %s: treated as no quote", symbol.occ, type(err).__name__)
            raise QuoteUnavailable(symbol.occ, "quote", type(err).__name__, "the quote source failed") from None
        if not isinstance(q, Quote):
            raise QuoteUnavailable(symbol.occ, "quote", type(q).__name__, "the quote source returned no Quote")
        problem = quote_problem(q.bid, q.ask)
        if problem is not None:
            raise QuoteUnavailable(symbol.occ, *problem)
        return q.bid, q.ask

    def _quote_missed(self, group: AtomicOrderGroup, ticket: OrderTicket, now: dt.datetime,
                      err: QuoteUnavailable) -> None:
        """No usable quote to price ``ticket``: retry on a backoff; give an entry up after the bound."""
        self.stats.quote_misses += 1
        ref = ticket.order_ref
        n = self._quote_misses.get(ref, 0) + 1
        self._quote_misses[ref] = n
        limit = self.policy.max_quote_misses
        log.warning("cannot price %s (%d/%d): %s", ref, n, limit, err)
        if n > limit and ticket.purpose is Purpose.ENTRY and group.state == "executing":
            group.submit_failed(now, f"{ref}: {err}")
            return
        if n == limit + 1 and ticket.purpose is Purpose.UNWIND:
            self._alert(f"group {group.group_id}: unwind {ref} cannot be priced after {limit} tries ({err}); "
                        "still trying")
        hold = now + self._backoff(n)
        self._not_before[ref] = hold
        self._schedule(group.group_id, hold)

    def _quotes(self, ticket: OrderTicket) -> list[smart_pricing.BidAsk]:
        """Every leg's usable (bid, ask), in leg order; raises like :meth:`_leg_quote`."""
        return [self._leg_quote(leg.symbol) for leg in ticket.legs]

    def _initial_price(self, group: AtomicOrderGroup, ticket: OrderTicket) -> tuple[Decimal | None, Decimal | None]:
        """(first limit, mid at submission) of a new ticket; (None, None) for a market order."""
        if ticket.order_type is OrderType.MARKET:
            return None, None
        policy = self.policy
        if ticket.purpose is Purpose.UNWIND:
            bid, ask = self._leg_quote(ticket.legs[0].symbol)
            return smart_pricing.unwind_price(group.ticks, ticket.legs[0].side, bid, ask,
                                              ticks_through=policy.unwind_ticks_through)
        return smart_pricing.entry_price(group.ticks, ticket.legs, self._quotes(ticket),
                                         max_slippage=policy.max_slippage, declared_limit=group.signed_limit_price)

    def _stepped_price(self, group: AtomicOrderGroup, ticket: OrderTicket) -> Decimal | None:
        """The working entry's next limit toward natural; None when it cannot move further."""
        current = ticket.limit_price
        if current is None:
            return None
        policy = self.policy
        return smart_pricing.stepped_price(group.ticks, current, ticket.legs, self._quotes(ticket),
                                           step_ticks=policy.step_ticks, max_slippage=policy.max_slippage,
                                           declared_limit=group.signed_limit_price)

    # ------------------------------------------------------------------------------------------
    # Internals: finishing

    def _finish(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        gid = group.group_id
        self._active.discard(gid)
        violations = invariants.check_group(group, replay=self.verify_replay)
        for v in violations:
            self._violation(v)
        self._deliver_alerts(group)
        summary = self._summarise(group, now, violations)
        if self._recorder is not None:
            self._recorder.finished(group, summary, now)
        self._finished_ids.add(gid)
        if self.keep_summaries:
            self.summaries[gid] = summary
        self._finished_at[gid] = now
        if self.on_finished is not None:
            self.on_finished(group, summary)
        if self.release_finished and gid in self._groups:
            if self.compact_finished:
                group.forget_history()
                self._note_finished(gid, now)  # put to sleep once it has been quiet a while
            release_at = now + dt.timedelta(seconds=self.policy.linger_seconds)
            self._release_at[gid] = release_at
            self._schedule(gid, release_at)

    def _maybe_release(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        gid = group.group_id
        release_at = self._release_at.get(gid)
        if release_at is None or now < release_at:
            return  # an older timer of the group; its release timer is still ahead
        if group.live_tickets():
            self._release_at[gid] = now + dt.timedelta(seconds=self.policy.linger_seconds)
            self._schedule(gid, self._release_at[gid])
            return
        # Forget everything about the group; a later event for it becomes a stray (kept, alerted).
        for ticket in group.tickets:
            ref = ticket.order_ref
            self._route.pop(ref, None)
            if ticket.fills:
                self._released_fills[ref] = tuple(f.fill_id for f in ticket.fills)
                if len(self._released_fills) > _RELEASED_FILLS_KEPT:
                    self._released_fills.popitem(last=False)
            for table in (self._sent_at, self._pending_since, self._not_before, self._next_step,
                          self._mid_at_submit, self._cancel_refusals, self._cancel_after, self._update_refusals,
                          self._update_after, self._quote_misses):
                table.pop(ref, None)
        for gtable in (self._started, self._finished_at, self._reconcile_after, self._first_fill, self._release_at,
                       self._adopted, self._disagreements, self._ask_after, self._alerted, self._outages,
                       self._step_timer):
            gtable.pop(gid, None)
        self._stuck_alerted.discard(gid)
        self._awake_since.pop(gid, None)
        del self._groups[gid]
        if self.on_released is not None:
            self.on_released(gid)

    # ------------------------------------------------------------------------------------------
    # Internals: sleeping finished groups (``compact_finished``)

    def _ref_tables(self) -> tuple[dict[str, Any], ...]:
        """The per-order tables (keyed by order reference) a finished group may still have entries in."""
        return (self._sent_at, self._pending_since, self._not_before, self._next_step, self._mid_at_submit,
                self._cancel_refusals, self._cancel_after, self._update_refusals, self._update_after,
                self._quote_misses)

    def _group_tables(self) -> tuple[dict[str, Any], ...]:
        """The per-group tables, but ``_release_at`` (its release timer reads it while it sleeps)."""
        return (self._started, self._finished_at, self._reconcile_after, self._first_fill, self._adopted,
                self._disagreements, self._ask_after, self._alerted, self._outages, self._step_timer)

    def _note_finished(self, gid: str, since: dt.datetime) -> None:
        """A finished group is awake from ``since``: it sleeps after ``_DORMANT_AFTER`` (:meth:`_sleep_quiet`)."""
        due = since + _DORMANT_AFTER
        self._awake_since[gid] = due
        self._awake_finished.append((due, gid))
        # Entries of groups released or woken again are skipped only once they reach the front, and
        # the front is reached only while more than _AWAKE_FINISHED_KEPT are awake: without this, a
        # long-running executor holding fewer kept one entry per group it ever finished.
        if len(self._awake_finished) > 2 * len(self._awake_since) + 64:
            since_of = self._awake_since
            self._awake_finished = deque(e for e in self._awake_finished if since_of.get(e[1]) == e[0])

    def _sleep_quiet(self, now: dt.datetime) -> None:
        """Put to sleep the finished groups awake for ``_DORMANT_AFTER``, oldest first and
        ``_SLEEP_BATCH`` at a time, while more than ``_AWAKE_FINISHED_KEPT`` are awake."""
        queue = self._awake_finished
        while queue and queue[0][0] <= now and len(self._awake_since) > _AWAKE_FINISHED_KEPT:
            due, gid = queue.popleft()
            if self._awake_since.get(gid) != due:
                continue  # released, or woken again since: a newer entry (if any) decides
            del self._awake_since[gid]
            self._drowsy.append(gid)
        if len(self._drowsy) < _SLEEP_BATCH:
            return
        batch: list[AtomicOrderGroup] = []
        for gid in self._drowsy:
            group = self._groups.get(gid)
            # still held, still finished, and not finished again meanwhile (that finish has its own wait)
            if group is not None and gid not in self._active and gid not in self._awake_since and group.is_terminal:
                batch.append(group)
        self._drowsy = []
        if batch:
            self._sleep(batch)

    def _sleep(self, groups: Sequence[AtomicOrderGroup]) -> None:
        """Keep lingering finished groups as one compressed pickle, with their entries in the
        executor's tables; what each one's release needs stays outside (:class:`Dormant`).

        A finished group's objects (tickets, fills, ledger, legs, ...) cost about 10 KB legged and
        4 KB combo with its table entries; asleep in a batch, well under 1 KB, none of it scanned
        by the collector. Nothing is lost: any event for one of its orders, and every view of it,
        wakes it (:meth:`_wake`) exactly as it was. Groups the pickler cannot take stay awake (logged).
        """
        ref_tables, group_tables = self._ref_tables(), self._group_tables()
        items: list[tuple[AtomicOrderGroup, list[tuple[int, str, object]]]] = []
        for group in groups:
            gid = group.group_id
            refs = [t.order_ref for t in group.tickets]
            entries: list[tuple[int, str, object]] = [
                (i, ref, table[ref]) for i, table in enumerate(ref_tables) for ref in refs if ref in table
            ]
            entries.extend((-1 - i, gid, table[gid]) for i, table in enumerate(group_tables) if gid in table)
            items.append((group, entries))
        for group in groups:
            for t in group.tickets:
                t.router = None  # the executor is not part of the snapshot
        try:
            blob = dump_batch(items)
            books = [marshal.dumps((tuple(t.order_ref for t in g.tickets),
                                    tuple((t.order_ref, tuple(f.fill_id for f in t.fills))
                                          for t in g.tickets if t.fills)))
                     for g in groups]
        except Exception as err:  # a value of a caller's own making that cannot be pickled: they stay awake
            log.warning("%d finished groups stay awake: they cannot be pickled (%s)", len(groups), type(err).__name__)
            return
        finally:
            for group in groups:
                for t in group.tickets:
                    t.router = self
        batch = Batch(blob)
        for index, (group, entries) in enumerate(items):
            gid = group.group_id
            for i, key, _ in entries:
                (ref_tables[i] if i >= 0 else group_tables[-1 - i]).pop(key)
            for t in group.tickets:
                self._route.pop(t.order_ref, None)
            del self._groups[gid]
            self._dormant[gid] = Dormant(batch, index, bool(group.live_tickets()), books[index])

    def _wake(self, gid: str,
              loaded: dict[Batch, list[tuple[AtomicOrderGroup, list[tuple[int, str, object]]]]] | None = None,
              ) -> AtomicOrderGroup:
        """Bring a sleeping group back (a new object equal to the one put to sleep), with its table
        entries and routes; it sleeps again after ``_DORMANT_AFTER`` if it stays finished. The rest
        of its batch sleeps on. ``loaded``: batches already unpickled (by :meth:`groups`)."""
        dormant = self._dormant.pop(gid)
        items = loaded.get(dormant.batch) if loaded is not None else None
        if items is None:
            items = load_batch(dormant.batch.blob)
            if loaded is not None:
                loaded[dormant.batch] = items
        group, entries = items[dormant.index]
        ref_tables, group_tables = self._ref_tables(), self._group_tables()
        for i, key, value in entries:
            (ref_tables[i] if i >= 0 else group_tables[-1 - i])[key] = value
        self._groups[gid] = group
        for t in group.tickets:
            self._route[t.order_ref] = group
            t.router = self
        self._note_finished(gid, self.clock.now())
        return group

    def _group_of(self, ticket: OrderTicket) -> AtomicOrderGroup:
        """The group (woken if asleep) of a caller's ticket; ValidationError (``order_ref``) when
        it is no order of this executor, whatever was passed."""
        ref = getattr(ticket, "order_ref", None)
        group = (self._route.get(ref) or self._dormant_group_of(ref)) if isinstance(ref, str) else None
        if group is None:
            raise ValidationError("order_ref", ref, "is not an order of this executor")
        return group

    def _dormant_group_of(self, order_ref: str) -> AtomicOrderGroup | None:
        """The sleeping group one of whose orders is ``order_ref``, woken; None when none is."""
        if not self._dormant:
            return None
        gid = order_ref.rsplit("-", 1)[0]  # references are "<group id>-<suffix>"
        dormant = self._dormant.get(gid)
        if dormant is None or order_ref not in marshal.loads(dormant.book)[0]:
            return None
        return self._wake(gid)

    def _release_dormant(self, gid: str, now: dt.datetime) -> None:
        """:meth:`_maybe_release` for a sleeping group: its table entries left with it when it fell asleep."""
        release_at = self._release_at.get(gid)
        if release_at is None or now < release_at:
            return  # an older timer of the group; its release timer is still ahead
        dormant = self._dormant[gid]
        if dormant.live:
            self._release_at[gid] = now + dt.timedelta(seconds=self.policy.linger_seconds)
            self._schedule(gid, self._release_at[gid])
            return
        filled: tuple[tuple[str, tuple[str, ...]], ...] = marshal.loads(dormant.book)[1]
        for ref, fill_ids in filled:
            self._released_fills[ref] = fill_ids
            if len(self._released_fills) > _RELEASED_FILLS_KEPT:
                self._released_fills.popitem(last=False)
        del self._dormant[gid]
        del self._release_at[gid]
        self._stuck_alerted.discard(gid)
        if self.on_released is not None:
            self.on_released(gid)

    def _summarise(self, group: AtomicOrderGroup, now: dt.datetime, violations: list[str]) -> GroupSummary:
        first = self._first_fill.get(group.group_id)
        settle = (now - first) / _ONE_SECOND if first is not None else None
        return GroupSummary(
            group_id=group.group_id,
            strategy=str(getattr(group.strategy, "value", group.strategy)),
            mode=str(getattr(group.mode, "value", group.mode)),
            quantity=group.quantity,
            state=group.state,
            rollback_reason=group.rollback_reason,
            fills=sum(len(t.fills) for t in group.tickets),
            unwind_orders=sum(1 for t in group.unwind_tickets if t.state != NEW),
            # As the broker's records count it (our ledger when they agree, invariant 7).
            residual_exposure={s.occ: q for s, q in group.broker_positions().items()},
            settle_seconds=settle,
            slippage_per_unit=self._slippage(group),
            anomalies=len(group.anomalies),
            alerts=tuple(group.alerts),
            violations=tuple(violations),
            flagged=group.flagged,
        )

    def _slippage(self, group: AtomicOrderGroup) -> Decimal | None:
        """Per strategy unit, what the entry cost beyond the mid at submission (positive = worse)."""
        if group.state != "committed" or not group.quantity:
            return None
        total = Decimal(0)
        for t in group.entry_tickets:
            mid = self._mid_at_submit.get(t.order_ref)
            if mid is None or not t.quantity_filled:
                return None
            if t.is_combo:
                total += (t.average_fill_price - mid) * t.quantity_filled
            else:
                sign = t.legs[0].side.sign
                total += sign * (t.average_fill_price - mid) * t.quantity_filled
        return total / group.quantity
