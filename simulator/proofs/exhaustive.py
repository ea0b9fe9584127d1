"""An adversarial, consistent broker around a real executor, and an exhaustive small-scope check.

Two things live here, both without Hypothesis (``atomic-orders check`` must run without dev
dependencies):

* :class:`World` - one :class:`~atomic_orders.fsm.group.AtomicOrderGroup` executed by a real
  :class:`~atomic_orders.fsm.executor.AtomicOrderExecutor` through a
  :class:`~atomic_orders.backends.scripted.ScriptedBackend`,
  with a small *broker-truth* model (per order: status, filled quantity, fills, outstanding cancel
  and update requests). Broker actions (:class:`Action`) change the truth and emit the event a
  real broker would send; the event is delivered at once or *held* (released later, in any
  order, or delivered twice). The truth is never contradictory, except through the one
  deliberate over-fill action, which the machines must flag. Reconciliation answers always come
  from the truth; an outage (``down``) makes requests and reconciliation fail; a submission plan
  makes the next submissions refused or of unknown outcome, with or without the order reaching
  the broker. The Hypothesis state machine in ``tests/properties`` drives this world rule by rule.

* :func:`run_check` - the exhaustive small-scope check: from a fresh 2-leg vertical (combo and
  legged), it enumerates EVERY sequence of broker actions up to ``depth`` in breadth-first
  order, pruning a sequence once it reaches an abstract state seen before (group state, tickets,
  ledger, broker truth, held deliveries, clock phase and executor timers). Every step is checked
  against the six invariants of :mod:`atomic_orders.fsm.invariants` (the replay fed only the audit records the
  step added, on a shadow carried from the parent), every distinct state is also driven to a
  terminal state by a cooperative broker and checked again (a full replay of its trail included;
  a drive already made from an equal world is looked up, not redone).
  The levels can be split into chunks run in parallel processes (:data:`Mapper`), with the same
  report. BFS order makes the
  first counterexample of each mode a shortest script that breaks an invariant; it prints in the
  notation of :func:`format_script`, which :func:`parse_script` reads back (paste it into a
  regression test). ``atomic-orders check --depth K`` runs it from the command line.

Layering: this module is a simulator tool; it may import :mod:`backends` and :mod:`fsm`, and
:mod:`fsm` never imports it.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import enum
import gc
import hashlib
import io
import logging
import multiprocessing
import pickle
import re
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.backends.scripted import ScriptedBackend
from atomic_orders.fsm import invariants
from atomic_orders.fsm.errors import InvalidTransition, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    CancelRequested,
    Expired,
    Fill,
    Reconciled,
    Rejected,
    SubmissionUnknown,
    Submit,
    TicketEvent,
    Updated,
    UpdateRejected,
    UpdateRequested,
)
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import TERMINAL_STATES, AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.fsm.ticket import TICKET_MACHINE, OrderTicket

# ---------------------------------------------------------------------------------------------
# Actions: what the adversarial broker (or its environment) can do next.

#: Broker actions on one order (``Action.order`` indexes :attr:`World.orders`).
ORDER_ACTIONS: tuple[str, ...] = (
    "ack",
    "fill",
    "overfill",
    "fill_unlisted",
    "late_fill",
    "reject",
    "cancel_confirm",
    "cancel_reject",
    "expire",
    "update_confirm",
    "update_reject",
)
#: Actions on the delivery stream, the clock and the connection.
WORLD_ACTIONS: tuple[str, ...] = ("release", "redeliver", "tick", "tick_next", "down", "up", "plan")
#: What the broker does with the next submission (``plan`` actions queue one of these).
SUBMIT_OUTCOMES: tuple[str, ...] = ("accept", "refuse", "unknown_present", "unknown_absent")


@attrs.frozen
class Action:
    """One step of a broker script.

    ``order`` indexes :attr:`World.orders` (orders the broker has, in submission order) for
    order actions and :attr:`World.held` / :attr:`World.delivered` for ``release`` /
    ``redeliver``. ``qty`` is the fill quantity (0 = everything that remains), ``hold`` keeps
    the emitted event back for a later ``release``, ``seconds`` is the clock step of ``tick`` and
    ``outcome`` the submission outcome of ``plan``.
    """

    kind: str
    order: int = 0
    qty: int = 0
    hold: bool = False
    seconds: float = 0.0
    outcome: str = "accept"

    def __str__(self) -> str:
        k = self.kind
        held = ", held" if self.hold else ""
        if k in ("fill", "late_fill"):
            return f"{k}(#{self.order}, {self.qty or 'all'}{held})"
        if k in ORDER_ACTIONS:
            return f"{k}(#{self.order}{held})"
        if k in ("release", "redeliver"):
            return f"{k}({self.order})"
        if k == "tick":
            return f"tick({self.seconds:g}s)"
        if k == "plan":
            return f"plan({self.outcome})"
        return f"{k}()"


def format_script(script: Iterable[Action]) -> str:
    """A broker script on one line: ``ack(#0) -> fill(#0, 1, held) -> tick_next()``."""
    return " -> ".join(str(a) for a in script) or "(no action)"


_STEP = re.compile(r"^\s*(?P<kind>[a-z_]+)\((?P<args>[^)]*)\)\s*$")


def parse_script(text: str) -> list[Action]:
    """The inverse of :func:`format_script`: turn a printed counterexample back into actions.

    ``"ack(#0, held) -> fill(#0, 1) -> release(0) -> tick(5s) -> plan(refuse) -> tick_next()"``.
    """
    out: list[Action] = []
    for part in text.split("->"):
        m = _STEP.match(part)
        if m is None:
            raise ValueError(f"cannot parse broker step {part.strip()!r}")
        kind = m["kind"]
        args = [a.strip() for a in m["args"].split(",") if a.strip()]
        if kind in ORDER_ACTIONS:
            if not args or not args[0].startswith("#"):
                raise ValueError(f"{part.strip()!r}: an order action names its order as #N")
            hold = "held" in args[1:]
            rest = [a for a in args[1:] if a != "held"]
            qty = 0 if not rest or rest[0] == "all" else int(rest[0])
            out.append(Action(kind, int(args[0][1:]), qty, hold))
        elif kind in ("release", "redeliver"):
            out.append(Action(kind, int(args[0])))
        elif kind == "tick":
            out.append(Action(kind, seconds=float(args[0].rstrip("s"))))
        elif kind == "plan":
            out.append(Action(kind, outcome=args[0]))
        elif kind in WORLD_ACTIONS:
            out.append(Action(kind))
        else:
            raise ValueError(f"unknown broker step {kind!r}")
    return out


# ---------------------------------------------------------------------------------------------
# The broker's truth


_LIVE = frozenset({"pending", "working"})


@attrs.define
class BrokerOrder:
    """What the broker knows about one order it received.

    ``status``: ``pending`` (received, not acknowledged), ``working``, ``filled``, ``canceled``,
    ``rejected`` or ``expired``. A canceled or expired order may still carry fills.
    """

    ref: str
    quantity: int
    unwind: bool
    price: Decimal
    per_unit: tuple[tuple[OptionSymbol, int], ...]
    status: str = "pending"
    filled: int = 0
    fills: list[Fill] = attrs.Factory(list)
    cancel_pending: bool = False
    updates_pending: int = 0
    overfilled: bool = False
    #: Units the broker filled but neither delivered nor lists among its fills (its count includes them).
    unlisted: int = 0

    @property
    def live(self) -> bool:
        """The broker may still fill this order."""
        return self.status in _LIVE

    @property
    def remaining(self) -> int:
        """What the broker can still fill without over-filling."""
        return max(self.quantity - self.filled, 0)

    def key(self) -> tuple[Any, ...]:
        """Everything about the order that can change what happens next (fill ids are derived)."""
        return (self.ref, self.status, self.filled, self.cancel_pending, self.updates_pending, self.overfilled,
                self.unlisted)

    def report(self) -> OrderReport:
        """The broker's answer to a reconciliation query: truthful, except that unlisted units are
        in its count (``filled_quantity``) but not among its fills (a FILLED order without fills)."""
        if self.status == "pending" or self.status == "working":
            status = BrokerStatus.PARTIALLY_FILLED if self.filled else BrokerStatus.WORKING
        else:
            status = BrokerStatus(self.status)
        count = self.filled if self.unlisted else None
        return OrderReport(self.ref, status, tuple(self.fills), f"B-{self.ref}", filled_quantity=count)


#: Executor pacing used by the exhaustive check and as the state machine's default: every
#: timer is a multiple of 5 s, so "advance to the next wakeup" reaches every deadline quickly,
#: and one rejected unwind is enough to reach ``failed``.
CHECK_POLICY = ExecutionPolicy(
    step_seconds=5.0,
    deadline_seconds=20.0,
    ack_timeout=5.0,
    pending_timeout=10.0,
    unwind_timeout=10.0,
    reconcile_interval=5.0,
    unwind_retry_delay=5.0,
    max_unwind_retries=0,
)

EXPIRY = dt.date(2026, 1, 16)


def vertical_legs(low: int = 5000, high: int = 5050, right: Right = Right.CALL) -> tuple[Leg, ...]:
    """A debit vertical: buy the ``low`` strike, sell the ``high`` strike (the check's group)."""
    return (
        Leg(OptionSymbol.of("SPXW", EXPIRY, right, low), Side.BUY),
        Leg(OptionSymbol.of("SPXW", EXPIRY, right, high), Side.SELL),
    )


def default_quotes(legs: Sequence[Leg]) -> dict[OptionSymbol, tuple[Decimal, Decimal]]:
    """Fixed, distinct quotes per leg (cheaper further out of the money), 0.20 wide."""
    out: dict[OptionSymbol, tuple[Decimal, Decimal]] = {}
    for leg in legs:
        strike = leg.symbol.strike
        spot = Decimal(5000)
        distance = strike - spot if leg.symbol.right is Right.CALL else spot - strike
        bid = max(Decimal("0.50"), Decimal("12.00") - distance / Decimal(10)).quantize(Decimal("0.10"))
        out[leg.symbol] = (bid, bid + Decimal("0.20"))
    return out


class World:
    """One group, a real executor, a scripted backend, and the broker's truth.

    Every public action returns False (and does nothing) when it is not possible in the current
    truth; otherwise it changes the truth, emits the broker event (delivered now or held), then
    lets the executor run (:meth:`pump`).
    """

    def __init__(
        self,
        legs: Sequence[Leg] | None = None,
        quantity: int = 2,
        *,
        mode: ExecutionMode = ExecutionMode.COMBO,
        strategy: StrategyKind = StrategyKind.VERTICAL,
        policy: ExecutionPolicy | None = None,
        plan: Iterable[str] = (),
        quotes: dict[OptionSymbol, tuple[Decimal, Decimal]] | None = None,
        longs_first: bool = True,
        group_id: str = "G1",
    ) -> None:
        legs = tuple(legs) if legs is not None else vertical_legs()
        self.policy = policy if policy is not None else CHECK_POLICY
        self.backend = ScriptedBackend()
        self.backend.quotes = quotes if quotes is not None else default_quotes(legs)
        self.backend.submit_rule = self._on_submit
        self.executor = AtomicOrderExecutor(self.backend, self.policy, session_id="")
        self.orders: list[BrokerOrder] = []
        self._by_ref: dict[str, BrokerOrder] = {}
        self.held: list[BrokerEvent] = []
        self.delivered: list[BrokerEvent] = []
        self.plan: list[str] = list(plan)
        self.overfills = 0
        #: Orders the broker reported with units it never listed (at most one per world, as the over-fill).
        self.contradictions = 0
        self._cancels_seen = 0
        self._replaces_seen = 0
        self.start = self.backend.now()
        group = AtomicOrderGroup(
            group_id,
            legs,
            quantity,
            strategy=strategy,
            mode=mode,
            max_unwind_retries=self.policy.max_unwind_retries,
            longs_first=longs_first,
            created_at=self.start,
        )
        self.group = self.executor.execute(group)
        self._shadow: AtomicOrderGroup | None = None
        self._shadow_at = 0
        #: Invariant violations seen at any moment of the last :meth:`settle` (checked by check_final).
        self.drive_violations: list[str] = []
        self._absorb()

    # -- the broker side of the backend -------------------------------------------------------------

    def _on_submit(self, request: OrderRequest) -> BaseException | None:
        outcome = self.plan.pop(0) if self.plan else "accept"
        ref = request.order_ref
        if outcome == "refuse":
            return SubmissionRefused(ref, "refused (scripted)")
        if outcome in ("accept", "unknown_present"):
            per_unit = _per_unit(request)
            price = request.limit_price if request.limit_price is not None else Decimal("1.00")
            order = BrokerOrder(ref, request.quantity, request.purpose.value == "unwind", price, per_unit)
            self.orders.append(order)
            self._by_ref[ref] = order
            self._sync(order)
        if outcome in ("unknown_present", "unknown_absent"):
            return SubmissionOutcomeUnknown(ref, f"timeout (scripted, {outcome})")
        return None

    def _sync(self, order: BrokerOrder) -> None:
        self.backend.reports[order.ref] = order.report()

    def _absorb(self) -> None:
        """Note the cancel and replace requests the executor sent since the last look."""
        cancels = self.backend.cancels
        for ref in cancels[self._cancels_seen :]:
            order = self._by_ref.get(ref)
            if order is not None:
                order.cancel_pending = True
        self._cancels_seen = len(cancels)
        replaces = self.backend.replaces
        for ref, _price, _qty in replaces[self._replaces_seen :]:
            order = self._by_ref.get(ref)
            if order is not None:
                order.updates_pending += 1
        self._replaces_seen = len(replaces)

    def _emit(self, order: BrokerOrder, event: TicketEvent, hold: bool) -> None:
        be = BrokerEvent(order.ref, event)
        if hold:
            self.held.append(be)
        else:
            self._deliver(be)

    def _deliver(self, be: BrokerEvent) -> None:
        self.backend.push(be.order_ref, be.event)
        self.delivered.append(be)

    def pump(self) -> None:
        """Let the executor apply what arrived and run its due timers, then note its requests."""
        self.executor.process_events()
        self.executor.on_timer()
        self._absorb()

    @property
    def now(self) -> dt.datetime:
        """The world's (the backend's) current time."""
        return self.backend.now()

    # -- actions ----------------------------------------------------------------------------------

    def apply(self, action: Action) -> bool:
        """Perform one action; False when it is not possible now (nothing changed)."""
        handler = _HANDLERS.get(action.kind)
        if handler is None:
            raise ValueError(f"unknown action kind {action.kind!r}")
        ok = handler(self, action)
        if ok:
            self.pump()
        return ok

    def run(self, script: Iterable[Action]) -> int:
        """Apply a script; return how many of its actions were possible (the others are skipped)."""
        return sum(1 for a in script if self.apply(a))

    def _order(self, action: Action) -> BrokerOrder | None:
        return self.orders[action.order] if 0 <= action.order < len(self.orders) else None

    def _fill(self, order: BrokerOrder, qty: int, hold: bool) -> None:
        order.filled += qty
        fill = Fill(self.now, f"{order.ref}-f{len(order.fills) + 1}", qty, order.price)
        order.fills.append(fill)
        self._sync(order)
        self._emit(order, fill, hold)

    def _do_ack(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or o.status != "pending":
            return False
        o.status = "working"
        self._sync(o)
        self._emit(o, Acknowledged(self.now, f"B-{o.ref}"), a.hold)
        return True

    def _do_fill(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or o.status != "working" or o.remaining == 0:
            return False
        qty = a.qty or o.remaining
        if qty > o.remaining:
            return False
        if qty == o.remaining:
            o.status = "filled"
        self._fill(o, qty, a.hold)
        return True

    def _do_overfill(self, a: Action) -> bool:
        """The one deliberate contradiction: the broker fills one unit more than the order holds."""
        o = self._order(a)
        if o is None or o.status not in ("working", "filled") or o.overfilled:
            return False
        o.status = "filled"
        o.overfilled = True
        self.overfills += 1
        self._fill(o, o.remaining + 1, a.hold)
        return True

    def _do_fill_unlisted(self, a: Action) -> bool:
        """The broker fills what remains but never sends nor lists the fill: its record says FILLED
        with the full count and fewer listed fills (TastyTrade ``Filled`` legs without ``fills``)."""
        o = self._order(a)
        if o is None or o.status != "working" or o.remaining == 0 or self.contradictions:
            return False
        self.contradictions += 1
        o.unlisted += o.remaining
        o.filled = o.quantity
        o.status = "filled"
        self._sync(o)
        return True

    def _do_late_fill(self, a: Action) -> bool:
        """A fill the broker executed before the cancel/expiry took effect, reported after it."""
        o = self._order(a)
        if o is None or o.status not in ("canceled", "expired") or o.remaining == 0:
            return False
        qty = a.qty or o.remaining
        if qty > o.remaining:
            return False
        self._fill(o, qty, a.hold)
        return True

    def _do_reject(self, a: Action) -> bool:
        """Reject a live order; one that filled in part keeps its fills (the leg ends short)."""
        o = self._order(a)
        if o is None or not o.live or o.remaining == 0:
            return False
        o.status = "rejected"
        self._sync(o)
        self._emit(o, Rejected(self.now, "rejected (scripted)"), a.hold)
        return True

    def _do_cancel_confirm(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or not o.cancel_pending or not o.live:
            return False
        o.cancel_pending = False
        o.status = "canceled"
        self._sync(o)
        self._emit(o, Canceled(self.now), a.hold)
        return True

    def _do_cancel_reject(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or not o.cancel_pending:
            return False
        o.cancel_pending = False
        reason = "too late: order is " + o.status if not o.live else "cancel refused (scripted)"
        self._emit(o, CancelRejected(self.now, reason), a.hold)
        return True

    def _do_expire(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or not o.live:
            return False
        o.status = "expired"
        self._sync(o)
        self._emit(o, Expired(self.now), a.hold)
        return True

    def _do_update_confirm(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or not o.updates_pending:
            return False
        o.updates_pending -= 1
        self._emit(o, Updated(self.now), a.hold)
        return True

    def _do_update_reject(self, a: Action) -> bool:
        o = self._order(a)
        if o is None or not o.updates_pending:
            return False
        o.updates_pending -= 1
        self._emit(o, UpdateRejected(self.now, "update refused (scripted)"), a.hold)
        return True

    def _do_release(self, a: Action) -> bool:
        if not 0 <= a.order < len(self.held):
            return False
        self._deliver(self.held.pop(a.order))
        return True

    def _do_redeliver(self, a: Action) -> bool:
        if not 0 <= a.order < len(self.delivered):
            return False
        self._deliver(self.delivered[a.order])
        return True

    def _do_tick(self, a: Action) -> bool:
        if a.seconds <= 0:
            return False
        self.backend.clock.advance(a.seconds)
        return True

    def _do_tick_next(self, _a: Action) -> bool:
        wake = self.executor.next_wakeup()
        now = self.now
        self.backend.clock.set(wake if wake is not None and wake > now else now + dt.timedelta(seconds=1))
        return True

    def _do_down(self, _a: Action) -> bool:
        if self.backend.down:
            return False
        self.backend.down = True
        return True

    def _do_up(self, _a: Action) -> bool:
        if not self.backend.down:
            return False
        self.backend.down = False
        return True

    def _do_plan(self, a: Action) -> bool:
        if a.outcome not in SUBMIT_OUTCOMES:
            raise ValueError(f"unknown submission outcome {a.outcome!r}")
        self.plan.append(a.outcome)
        return True

    # -- enumeration (the exhaustive check's alphabet) ------------------------------------------------

    def enabled_actions(self) -> list[Action]:
        """Every distinct action possible now, in a fixed order (small alphabet: fills of 1 or all)."""
        out: list[Action] = []
        for i, o in enumerate(self.orders):
            for hold in (False, True):
                if o.status == "pending":
                    out.append(Action("ack", i, hold=hold))
                if o.status == "working":
                    out.append(Action("fill", i, 0, hold))
                    if o.remaining > 1:
                        out.append(Action("fill", i, 1, hold))
                if o.status in ("canceled", "expired") and o.remaining:
                    out.append(Action("late_fill", i, 1, hold))
                if o.live and o.remaining:
                    out.append(Action("reject", i, hold=hold))
                if o.cancel_pending and o.live:
                    out.append(Action("cancel_confirm", i, hold=hold))
                if o.cancel_pending:
                    out.append(Action("cancel_reject", i, hold=hold))
                if o.live:
                    out.append(Action("expire", i, hold=hold))
                if o.updates_pending:
                    out.append(Action("update_confirm", i, hold=hold))
                    out.append(Action("update_reject", i, hold=hold))
            if o.status in ("working", "filled") and not o.overfilled and not self.overfills:
                out.append(Action("overfill", i))
            if o.status == "working" and o.remaining and not self.contradictions:
                out.append(Action("fill_unlisted", i))
        out.extend(Action("release", j) for j in range(len(self.held)))
        if self.delivered:
            out.append(Action("redeliver", len(self.delivered) - 1))
        out.append(Action("tick_next"))
        out.append(Action("up") if self.backend.down else Action("down"))
        if not self.plan:
            out.extend(Action("plan", outcome=o) for o in SUBMIT_OUTCOMES[1:])
        return out

    def state_key(self) -> tuple[Any, ...]:
        """The abstract state: two worlds with the same key behave the same from here on."""
        g = self.group
        ex = self.executor
        now = self.now

        tickets = tuple(
            (
                t.order_ref,
                t.state,
                t.quantity,
                t.quantity_filled,
                len(t.fills),
                t.duplicate_fills > 0,
                t.overfill_quantity,
                t.late_fill_quantity,
                t.broker_order_id is not None,
                t.limit_price,
                t.pending_update is not None,
            )
            for t in g.tickets
        )
        gid = g.group_id
        return (
            g.state,
            tickets,
            tuple(sorted((s.occ, q) for s, q in g.ledger.positions().items())),
            tuple(sorted((s.occ, n) for s, n in g.unwind_failures.items())),
            len(g.alerts) > 0,
            tuple(o.key() for o in self.orders),
            tuple((be.order_ref, type(be.event).__name__, getattr(be.event, "fill_id", "")) for be in self.held),
            (lambda be: None if be is None else (be.order_ref, type(be.event).__name__))(
                self.delivered[-1] if self.delivered else None
            ),
            self.backend.down,
            tuple(self.plan),
            self.overfills,
            self.contradictions,
            tuple((t.order_ref, t.broker_record) for t in g.tickets),
            (now - self.start).total_seconds(),
            ex.plans_for(gid, now),
        )

    # -- checks -----------------------------------------------------------------------------------

    def check_step(self, replay: str = "incremental") -> list[str]:
        """Invariants 1-7 now (1 and 7 only bite on a terminal group), plus the executor's violation log.

        ``replay``: ``"full"`` replays the whole audit trail into a fresh group
        (:func:`atomic_orders.fsm.invariants.replay_matches`); ``"incremental"`` (default) keeps a shadow group
        that is fed only the audit records added since the last check - the same left fold as
        :meth:`~atomic_orders.fsm.group.AtomicOrderGroup.replay`, so the same verdict, without replaying a long
        history after every step; ``"none"`` skips invariant 5.

        Every message is tagged with the invariant it breaks (``[2 no_orphans] ...``), so a
        failure says which promise was broken.
        """
        g = self.group
        out = _tagged(g, replay == "full")
        if replay == "incremental":
            out += [f"[5 determinism] {v}" for v in self._shadow_replay()]
        out += [f"[executor] {v}" for v in dict.fromkeys(self.executor.violations)]
        return out

    def _shadow_replay(self) -> list[str]:
        g = self.group
        shadow = self._shadow
        if shadow is None:
            shadow = self._shadow = g.clone_definition()
        try:
            for rec in g.audit[self._shadow_at :]:
                shadow.replay_record(rec)
        except Exception as err:  # a replay that raises is itself the violation
            self._shadow, self._shadow_at = None, 0
            return [f"{g.group_id}: replay raised {err!r}"]
        self._shadow_at = len(g.audit)
        return invariants.replay_differences(g, shadow)

    def probe_illegal(self, seen: set[tuple[Any, ...]] | None = None, log: list[ProbeEntry] | None = None) -> list[str]:
        """Invariant 4, second half: every event the table refuses raises and changes nothing.

        For every ticket and every trigger with no row in the ticket's current state, apply such
        an event to the group directly and compare before/after. ``seen`` (optional) skips
        combinations of ticket state, purpose, fills, group state and trigger probed before.
        ``log`` (optional, with ``seen``) receives one :data:`ProbeEntry` per combination met, in
        order, probed or skipped: a parallel check replays it against the set a serial run holds.
        """
        g = self.group
        out: list[str] = []
        now = self.now
        for t in g.tickets:
            for trigger in TICKET_MACHINE.triggers:
                if TICKET_MACHINE.is_legal(t.state, trigger):
                    continue
                if seen is not None:
                    combo = (t.state, t.purpose, t.quantity_filled > 0, g.state, trigger)
                    if combo in seen:
                        if log is not None:
                            log.append((combo, False, ()))
                        continue
                    seen.add(combo)
                found = len(out)
                before = _snapshot(g, t)
                try:
                    g.apply_ticket_event(t.order_ref, probe_event(trigger, now))
                except InvalidTransition:
                    pass
                else:
                    out.append(f"[4 legality] {t.order_ref}: illegal {trigger!r} in {before[0][0]!r} did not raise")
                after = _snapshot(g, t)
                changed = after != before
                if changed:
                    out.append(
                        f"[4 legality] {t.order_ref}: illegal {trigger!r} in {before[0][0]!r} changed "
                        f"{before} -> {after}"
                    )
                if log is not None and seen is not None:
                    log.append((combo, True, tuple(out[found:])))
                if changed:
                    return out
        return out

    def truth_positions(self) -> dict[OptionSymbol, int]:
        """Signed net positions of every fill the broker executed for this group."""
        net: dict[OptionSymbol, int] = {}
        for o in self.orders:
            for symbol, per_unit in o.per_unit:
                net[symbol] = net.get(symbol, 0) + per_unit * o.filled
        return {s: q for s, q in net.items() if q}

    def _listed_positions(self) -> dict[OptionSymbol, int]:
        net: dict[OptionSymbol, int] = {}
        for o in self.orders:
            for symbol, per_unit in o.per_unit:
                net[symbol] = net.get(symbol, 0) + per_unit * (o.filled - o.unlisted)
        return {s: q for s, q in net.items() if q}

    def check_final(self) -> list[str]:
        """After :meth:`settle`: terminal, every invariant (replay included), and nothing lost.

        Besides :mod:`atomic_orders.fsm.invariants`, the broker's truth is compared with the group: the ledger
        equals the signed sum of every fill the broker executed (a fill is never lost nor
        invented), every ticket knows exactly its order's fills, and no order is still live.
        """
        g = self.group
        out = []
        if g.state not in TERMINAL_STATES:
            out.append(f"[1 terminal_settled] {g.group_id}: not terminal after the cooperative drive (state {g.state})")
        out += [f"{v} (during the drive)" for v in self.drive_violations]
        out += _tagged(g, replay=True)
        out += [f"[executor] {v}" for v in dict.fromkeys(self.executor.violations)]
        if self.held:
            out.append(f"[model] {len(self.held)} events still held")
        truth = self.truth_positions()
        # Invariant 7 judged by the broker's truth itself: the verdict agrees with what it holds.
        # Units the broker never delivered cannot be in the ledger, so with a contradictory record
        # the ledger is held against the listed fills instead.
        listed = self._listed_positions() if self.contradictions else truth
        out += [v for v in invariants.verdict_against(g, truth) if not v.startswith("[3 ")]
        if g.ledger.positions() != listed:
            what = "the broker's listed fills" if self.contradictions else "broker's executed fills"
            out.append(f"[3 conservation] {g.group_id}: ledger {_fmt(g.ledger.positions())} != {what} "
                       f"{_fmt(listed)} (a fill was lost or invented)")
        for o in self.orders:
            if not g.has_ticket(o.ref):
                out.append(f"[2 no_orphans] {o.ref}: the broker holds an order the group does not know")
                continue
            t = g.ticket(o.ref)
            if {f.fill_id for f in t.fills} != {f.fill_id for f in o.fills}:
                out.append(f"[3 conservation] {o.ref}: ticket fills {sorted(f.fill_id for f in t.fills)} != broker "
                           f"fills {sorted(f.fill_id for f in o.fills)}")
            if o.live and g.state in TERMINAL_STATES:
                out.append(f"[2 no_orphans] {o.ref}: still {o.status} at the broker after the group settled")
        return out

    def settle(self, max_rounds: int = 250) -> int:
        """Drive the group to a terminal state with a cooperative broker; return the rounds used.

        Cooperative: the connection is up, submissions are accepted, every held event is
        released, cancels are confirmed (or refused when the order already ended), updates are
        confirmed, new orders are acknowledged and working orders without a cancel are filled;
        between rounds the clock jumps to the executor's next wakeup.
        """
        self.backend.down = False
        self.plan.clear()
        self.drive_violations = []
        for rounds in range(max_rounds):
            if self._quiet():
                return rounds
            while self.held:
                self._deliver(self.held.pop(0))
            for o in self.orders:
                if o.cancel_pending:
                    if o.live:
                        o.cancel_pending = False
                        o.status = "canceled"
                        self._sync(o)
                        self._emit(o, Canceled(self.now), False)
                    else:
                        o.cancel_pending = False
                        self._emit(o, CancelRejected(self.now, f"too late: order is {o.status}"), False)
                while o.updates_pending:
                    o.updates_pending -= 1
                    self._emit(o, Updated(self.now), False)
                if o.status == "pending":
                    o.status = "working"
                    self._sync(o)
                    self._emit(o, Acknowledged(self.now, f"B-{o.ref}"), False)
                if o.status == "working" and not o.cancel_pending and o.remaining:
                    o.status = "filled"
                    self._fill(o, o.remaining, False)
            self._settle_pump()
            if not self._quiet():
                self._do_tick_next(Action("tick_next"))
                self._settle_pump()
        return max_rounds

    def _settle_pump(self) -> None:
        """Pump, then check the invariants at this moment of the drive too (kept for check_final)."""
        self.pump()
        for v in self.check_step(replay="none"):
            if not v.startswith("[executor]") and v not in self.drive_violations:
                self.drive_violations.append(v)

    def _quiet(self) -> bool:
        if self.group.state not in TERMINAL_STATES or self.held:
            return False
        return not any(o.cancel_pending or o.updates_pending or o.live for o in self.orders)

    def __getstate__(self) -> dict[str, Any]:
        # The replay shadow is a cache: a copy rebuilds it on its first incremental check.
        state = dict(self.__dict__)
        state["_shadow"], state["_shadow_at"] = None, 0
        return state

    def clone(self) -> World:
        """An independent copy of the whole world (executor, backend, group and truth).

        A pickle round trip: everything in a world is plain data (the ``transitions`` machines are
        module-level and never referenced by a model), and it is ~1.6x faster than ``deepcopy``.
        """
        return _thaw(_freeze(self))


_HANDLERS: dict[str, Callable[[World, Action], bool]] = {
    "ack": World._do_ack,
    "fill": World._do_fill,
    "overfill": World._do_overfill,
    "fill_unlisted": World._do_fill_unlisted,
    "late_fill": World._do_late_fill,
    "reject": World._do_reject,
    "cancel_confirm": World._do_cancel_confirm,
    "cancel_reject": World._do_cancel_reject,
    "expire": World._do_expire,
    "update_confirm": World._do_update_confirm,
    "update_reject": World._do_update_reject,
    "release": World._do_release,
    "redeliver": World._do_redeliver,
    "tick": World._do_tick,
    "tick_next": World._do_tick_next,
    "down": World._do_down,
    "up": World._do_up,
    "plan": World._do_plan,
}


#: The invariants of :mod:`atomic_orders.fsm.invariants`, with the tag their messages carry here.
_INVARIANTS: tuple[tuple[str, Callable[[AtomicOrderGroup], list[str]]], ...] = (
    ("1 terminal_settled", invariants.terminal_settled),
    ("2 no_orphans", invariants.no_orphans),
    ("3 conservation", invariants.conservation),
    ("4 legality", invariants.legality),
    ("6 exposure_bound", invariants.exposure_bound),
    ("7 broker_agreement", invariants.broker_agreement),
)


def _tagged(g: AtomicOrderGroup, replay: bool) -> list[str]:
    out = [f"[{tag}] {v}" for tag, check in _INVARIANTS for v in check(g)]
    if replay:
        out += [f"[5 determinism] {v}" for v in invariants.replay_matches(g)]
    return out


def _per_unit(request: OrderRequest) -> tuple[tuple[OptionSymbol, int], ...]:
    """Signed contracts per unit filled, per symbol (as :func:`atomic_orders.fsm.ledger.signed_contracts`)."""
    if len(request.legs) == 1:
        leg = request.legs[0]
        return ((leg.symbol, leg.side.sign),)
    return tuple((leg.symbol, leg.signed_ratio) for leg in request.legs)


def _snapshot(g: AtomicOrderGroup, t: OrderTicket) -> tuple[Any, ...]:
    return (
        (t.state, t.quantity, t.quantity_filled, len(t.fills), len(t.order_events), t.duplicate_fills,
         t.overfill_quantity, t.late_fill_quantity, t.broker_order_id, t.limit_price, t.reason,
         t.pending_update, t.reconciliations, len(t.anomalies)),
        (g.state, len(g.audit), tuple(sorted((s.occ, q) for s, q in g.ledger.positions().items())),
         len(g.alerts), len(g.tickets), dict(g.unwind_failures)),
    )


def probe_event(trigger: str, time: dt.datetime) -> TicketEvent:
    """A well-formed ticket event for ``trigger`` (used to probe illegal (state, trigger) pairs)."""
    one = Decimal("1.00")
    factories: dict[str, Callable[[], TicketEvent]] = {
        "submit": lambda: Submit(time, one),
        "acknowledged": lambda: Acknowledged(time, "B-probe"),
        "fill": lambda: Fill(time, "probe-fill", 1, one),
        "rejected": lambda: Rejected(time, "probe"),
        "cancel_requested": lambda: CancelRequested(time),
        "canceled": lambda: Canceled(time),
        "cancel_rejected": lambda: CancelRejected(time, "probe"),
        "update_requested": lambda: UpdateRequested(time, limit_price=one),
        "updated": lambda: Updated(time),
        "update_rejected": lambda: UpdateRejected(time, "probe"),
        "expired": lambda: Expired(time),
        "submission_unknown": lambda: SubmissionUnknown(time, "probe"),
        "reconciled": lambda: Reconciled(time, BrokerStatus.WORKING),
    }
    return factories[trigger]()


def _fmt(positions: dict[OptionSymbol, int]) -> dict[str, int]:
    return {s.occ: q for s, q in positions.items()}


# ---------------------------------------------------------------------------------------------
# The exhaustive small-scope check


@attrs.frozen
class Counterexample:
    """A shortest broker script that breaks an invariant, and what broke."""

    mode: str
    script: tuple[Action, ...]
    violations: tuple[str, ...]
    #: ``step``: right after the script's last action; ``settle``: in the cooperative drive after it.
    phase: str

    def __str__(self) -> str:
        lines = [f"[{self.mode}] after {format_script(self.script)} ({self.phase}):"]
        lines += [f"    {v}" for v in self.violations]
        return "\n".join(lines)


@attrs.frozen
class ModeReport:
    """What the check covered for one execution mode."""

    mode: str
    depth: int
    sequences: int
    states: int
    settled: int
    terminal_outcomes: dict[str, int]
    counterexamples: tuple[Counterexample, ...]
    seconds: float


@attrs.frozen
class CheckReport:
    """The result of :func:`run_check`: one :class:`ModeReport` per mode."""

    depth: int
    quantity: int
    modes: tuple[ModeReport, ...]
    #: Wall-clock seconds of the whole check (modes may run in parallel).
    wall_seconds: float = 0.0

    @property
    def sequences(self) -> int:
        """Action sequences examined (every extension of every non-pruned prefix)."""
        return sum(m.sequences for m in self.modes)

    @property
    def states(self) -> int:
        """Distinct abstract states reached."""
        return sum(m.states for m in self.modes)

    @property
    def counterexamples(self) -> tuple[Counterexample, ...]:
        """Every counterexample found (at most ``max_counterexamples`` per mode)."""
        return tuple(c for m in self.modes for c in m.counterexamples)

    @property
    def ok(self) -> bool:
        """True when no sequence broke an invariant."""
        return not self.counterexamples

    @property
    def seconds(self) -> float:
        """CPU-side time of the whole check: the sum over modes."""
        return sum(m.seconds for m in self.modes)


#: One combination met by :meth:`World.probe_illegal`: ``(combination, probed, messages)``.
ProbeEntry = tuple[tuple[Any, ...], bool, tuple[str, ...]]

#: How a parallel check runs its chunks: ``mapper(fn, shared, items)`` calls ``fn(shared, item)``
#: for every item (anywhere: the worker processes of a Dask cluster) and yields ``(item, result)``
#: as each finishes, in any order; closing the iterator early may cancel what is still running.
#: ``shared`` is the same for every item of one call (a mapper sends it once where it can).
Mapper = Callable[[Callable[[Any, Any], Any], Any, Iterable[Any]], Iterator[tuple[Any, Any]]]

#: Frontier states per chunk of a parallel level at most (a chunk is one task: about 1-2 s of work).
CHUNK = 64
#: A level is split over the mapper only when its frontier holds at least this many states per
#: worker: a task costs tens of milliseconds of scheduling, more on a loaded machine, and the
#: first levels hold a handful of states.
SPLIT_AT = 16


def run_check(
    depth: int,
    modes: Sequence[ExecutionMode] = (ExecutionMode.COMBO, ExecutionMode.LEGGED),
    *,
    quantity: int = 2,
    policy: ExecutionPolicy | None = None,
    max_counterexamples: int = 1,
    settle_every_state: bool = True,
    probe_illegal: bool = True,
    workers: int = 1,
    mapper: Mapper | None = None,
) -> CheckReport:
    """Enumerate every broker script up to ``depth`` actions against a 2-leg vertical.

    Breadth-first, one level at a time; a script whose resulting abstract state was already
    reached is not extended (pruned). Every step checks invariants 1-6 (a replay of the audit
    records the step added, on a shadow group carried from the parent state: the same left fold
    as a full replay); every distinct state is also settled by a cooperative broker and checked in
    full (:meth:`World.check_final`, a full replay of its trail included). A mode stops at its
    first ``max_counterexamples`` counterexamples: BFS order makes the first one a shortest script.

    ``mapper`` (see :data:`Mapper`) splits every level into chunks of frontier states run in
    parallel (``workers`` sizes the chunks: about four per worker); the modes then run one after
    the other. The report is identical to a serial run's (sequences, states, outcomes and
    counterexamples with their scripts): a chunk only expands and examines, and this process
    merges the chunks in serial order, re-examining here the rare state whose worker could not
    know what the serial order knew. Without a mapper, ``workers > 1`` checks the modes in
    parallel forked processes (the code checked is exactly the code loaded here, monkeypatches
    included); it falls back to one process where ``fork`` is not available.
    """
    if type(depth) is not int or depth < 0:
        raise ValueError(f"depth={depth!r}: must be an int >= 0")
    # The executor logs every alert and ignored event; millions of adversarial steps would drown
    # the report, so its logger is quietened for the duration (violations are collected instead).
    logger = logging.getLogger("atomic_orders")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    jobs = [
        (ExecutionMode(mode), depth, quantity, policy, max_counterexamples, settle_every_state, probe_illegal)
        for mode in modes
    ]
    started = time.perf_counter()
    try:
        if mapper is not None:
            reports = [_check_mode(*job, mapper=mapper, workers=workers) for job in jobs]
        elif workers > 1 and len(jobs) > 1 and "fork" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
                reports = list(pool.map(_check_job, jobs))
        else:
            reports = [_check_job(job) for job in jobs]
    finally:
        logger.setLevel(level)
    return CheckReport(depth, quantity, tuple(reports), time.perf_counter() - started)


def _check_job(job: tuple[Any, ...]) -> ModeReport:
    return _check_mode(*job)


@attrs.frozen
class _Exam:
    """What examining one newly reached state found."""

    #: Step violations (invariants, replay, executor), before probing.
    step: tuple[str, ...]
    #: Every illegal-event combination met by the probe, in order (empty when not probed).
    probes: tuple[ProbeEntry, ...]
    probe_bad: tuple[str, ...]
    #: The state before it was settled (shadow included), when it is to be expanded.
    blob: _Siblings | None
    #: The group's state after the cooperative drive; None when not settled.
    outcome: str | None
    final: tuple[str, ...]


#: One child of a frontier state: (action, state key, step violations without replay, exam or None).
_Child = tuple[Action, tuple[Any, ...], tuple[str, ...], _Exam | None]


class _Memo:
    """Exact caches of one check (never shared between checks: a planted defect changes the answers).

    ``settled``: a world's pickle (128-bit digest) taken after the cooperative drive's own first
    moves (connection up, submission plan cleared), mapped to the drive's outcome and final
    violations. Equal bytes are equal worlds, and the drive and its checks are deterministic, so
    a hit is what the drive would find; worlds that differ only in what the drive resets first
    (``down``, a queued ``plan``) share one drive: at depth 5 (legged) 13,306 drives started
    from 9,521 distinct worlds. (A cache of the full replay's verdict by trail was tried and
    dropped: after this one it found 23% of replays, and digesting the trail cost more than that.)
    """

    def __init__(self) -> None:
        self.settled: dict[bytes, tuple[str, tuple[str, ...]]] = {}


def _settled(world: World, memo: _Memo, kept: bool) -> tuple[str, tuple[str, ...]]:
    """Settle ``world`` in place (or find its drive in ``memo``): its outcome and final violations.

    ``kept``: the state is also expanded (a parent of the next level).
    """
    # A digest costs a fifth to a third of a drive. Measured at depth 4 (legged), a drive was
    # found again 873 times, 870 of them from a world that the drive's first moves change (the
    # connection down or a submission plan queued), and 701 of those matched such a world too;
    # digesting only those worlds and the kept states still finds 856 of the 873. Other worlds
    # are neither looked up nor noted: fewer hits, none wrong.
    digest = world.backend.down or bool(world.plan) or kept
    # World.settle's own first moves, made here so that the digest is taken after them.
    world.backend.down = False
    world.plan.clear()
    world.drive_violations = []
    mark = b""
    if digest:
        mark = hashlib.blake2b(pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL), digest_size=16).digest()
        done = memo.settled.get(mark)
        if done is not None:
            return done
    world.settle()
    # The one full replay of this trail (AtomicOrderGroup.replay itself, over the settled trail).
    done = (world.group.state, tuple(world.check_final()))
    if digest:
        memo.settled[mark] = done
    return done


def _executor_violations(world: World) -> list[str]:
    return [f"[executor] {v}" for v in dict.fromkeys(world.executor.violations)]


def _examine(world: World, quick: list[str], keep: bool, settle: bool, probe: bool,
             probed: set[tuple[Any, ...]], memo: _Memo) -> _Exam:
    """Check a newly reached state: the step checks, the probe, then a cooperative settle IN PLACE.

    ``quick`` is ``world.check_step(replay="none")`` (already computed by the caller). The result
    carries the state pickled before it was settled when it must be expanded (``keep``).
    """
    # check_step(replay="incremental") is quick's invariants, then the replay, then the executor's.
    executor = _executor_violations(world)
    tagged = quick[: len(quick) - len(executor)]
    step = (*tagged, *(f"[5 determinism] {v}" for v in world._shadow_replay()), *executor)
    log: list[ProbeEntry] = []
    bad: tuple[str, ...] = ()
    if probe and not step:
        bad = tuple(world.probe_illegal(probed, log))
    if step or bad:
        return _Exam(step, tuple(log), bad, None, None, ())
    blob = _freeze_shadowed(world) if keep else None
    if not settle:
        return _Exam((), tuple(log), (), blob, None, ())
    outcome, final = _settled(world, memo, keep)
    return _Exam((), tuple(log), (), None if final else blob, outcome, final)


def _mark(key: tuple[Any, ...]) -> int:
    """A state key as 64 bits, the same in every process (``hash`` of a str is salted per process)."""
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")


def _expand(blob: _Siblings, known: Container[Any], hashed: bool, local: set[Any], keep: bool, settle: bool,
            probe: bool, probed: set[tuple[Any, ...]], memo: _Memo) -> list[_Child]:
    """Every child of one frontier state; a child whose key (its :func:`_mark` when ``hashed``) is
    neither ``known`` nor in ``local`` is examined (and noted in ``local``)."""
    base = blob.copy()
    actions = base.enabled_actions()
    out: list[_Child] = []
    for k, action in enumerate(actions):
        # A child starts from its own copy of the parent; the last child may use the copy the
        # actions were listed from.
        child = base if k == len(actions) - 1 else blob.copy()
        if not child.apply(action):
            continue
        key = child.state_key()
        quick = child.check_step(replay="none")
        mark = _mark(key) if hashed else key
        exam = None
        if mark not in known and mark not in local:
            local.add(mark)
            exam = _examine(child, quick, keep, settle, probe, probed, memo)
        out.append((action, key, tuple(quick), exam))
    return out


def _expand_chunk(shared: tuple[Any, ...], item: tuple[int, list[tuple[_Siblings, tuple[Action, ...]]]],
                  memo: _Memo | None = None) -> tuple[int, list[list[_Child]]]:
    """One chunk of a level: ``shared`` is ``(known, hashed, keep, settle, probe, probed)`` as of
    the level's start; ``item`` is ``(index, [(state, script), ...])``. Runs in a worker process
    (with a memo of its own unless ``memo`` is given)."""
    known, hashed, keep, settle, probe, probed = shared
    index, parents = item
    logger = logging.getLogger("atomic_orders")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        local: set[Any] = set()
        mine = set(probed)
        memo = memo if memo is not None else _Memo()
        return index, [_expand(blob, known, hashed, local, keep, settle, probe, mine, memo) for blob, _ in parents]
    finally:
        logger.setLevel(level)


def _probes_agree(log: Sequence[ProbeEntry], probed: set[tuple[Any, ...]]) -> bool:
    """Whether a worker's probe log is what a serial run would have probed, given the combinations
    ``probed`` holds in serial order; if so, note the new ones in ``probed``."""
    added: set[tuple[Any, ...]] = set()
    for combo, did, messages in log:
        if combo in probed or combo in added:
            if did and messages:  # found something a serial run would not have probed
                return False
        elif not did:  # skipped what a serial run would have probed
            return False
        else:
            added.add(combo)
    probed |= added
    return True


def _chunks(frontier: list[tuple[_Siblings, tuple[Action, ...]]], workers: int
            ) -> list[tuple[int, list[tuple[_Siblings, tuple[Action, ...]]]]]:
    size = max(1, min(CHUNK, -(-len(frontier) // (4 * max(workers, 1)))))
    return [(i, frontier[at : at + size]) for i, at in enumerate(range(0, len(frontier), size))]


def _check_mode(
    mode: ExecutionMode,
    depth: int,
    quantity: int,
    policy: ExecutionPolicy | None,
    max_counterexamples: int,
    settle_every_state: bool,
    probe_illegal: bool,
    *,
    mapper: Mapper | None = None,
    workers: int = 1,
) -> ModeReport:
    started = time.perf_counter()
    root = World(vertical_legs(), quantity, mode=mode, policy=policy)
    found: list[Counterexample] = []
    probed: set[tuple[Any, ...]] = set()
    outcomes: dict[str, int] = {}
    sequences = 0
    settled = 0
    seen = {root.state_key()}
    marks = {_mark(root.state_key())} if mapper is not None else set()
    memo = _Memo()
    nxt: list[tuple[_Siblings, tuple[Action, ...]]] = []

    def record(exam: _Exam, path: tuple[Action, ...]) -> None:
        nonlocal settled
        if exam.step or exam.probe_bad:
            found.append(Counterexample(mode.value, path, exam.step or exam.probe_bad, "step"))
            return
        if exam.outcome is not None:
            settled += 1
            outcomes[exam.outcome] = outcomes.get(exam.outcome, 0) + 1
            if exam.final:
                found.append(Counterexample(mode.value, path, exam.final, "settle"))
                return
        if exam.blob is not None:
            nxt.append((exam.blob, path))

    def merge(parents: list[tuple[_Siblings, tuple[Action, ...]]], results: list[list[_Child]], keep: bool) -> bool:
        """Take one chunk's children in serial order; False once the counterexamples are enough."""
        nonlocal sequences
        for (blob, script), children in zip(parents, results, strict=True):
            for action, key, quick, exam in children:
                sequences += 1
                path = (*script, action)
                if key in seen:
                    # Still check the step: the same abstract state may hide a different history.
                    if quick:
                        found.append(Counterexample(mode.value, path, quick, "step"))
                    continue
                seen.add(key)
                if mapper is not None:
                    marks.add(_mark(key))
                if exam is None or not _probes_agree(exam.probes, probed):
                    # The worker took this state for a known one, or probed what the serial order
                    # had not: examine it here, against the serial order's probed combinations.
                    child = _thaw_shadowed(blob)
                    child.apply(action)
                    exam = _examine(child, child.check_step(replay="none"), keep, settle_every_state,
                                    probe_illegal, probed, memo)
                record(exam, path)
                if len(found) >= max_counterexamples:
                    return False
            if len(found) >= max_counterexamples:
                return False
        return True

    record(_examine(root, root.check_step(replay="none"), depth > 0, settle_every_state, probe_illegal, probed, memo),
           ())
    frontier, nxt = nxt, []
    # What the search keeps (known states, the frontier, the drive memo) grows past a GB at depth
    # 7, and the collector's full passes re-walk all of it. Frozen at the end of each level (with
    # the few discarded copies not yet collected, until the mode ends), it leaves the collector
    # the objects of the level under way. Nothing here depends on when a cycle is collected (no
    # weak references, no finalizers).
    freeze = gc.get_freeze_count() == 0
    try:
        for level in range(depth):
            if len(found) >= max_counterexamples or not frontier:
                break
            keep = level < depth - 1
            chunks = _chunks(frontier, workers)
            if mapper is None or len(frontier) < SPLIT_AT * max(workers, 1):
                for index, parents in chunks:
                    shared: tuple[Any, ...] = (seen, False, keep, settle_every_state, probe_illegal, probed)
                    if not merge(parents, _expand_chunk(shared, (index, parents), memo)[1], keep):
                        break
            else:
                shared = (frozenset(marks), True, keep, settle_every_state, probe_illegal, frozenset(probed))
                waiting: dict[int, list[list[_Child]]] = {}
                at = 0
                results = mapper(_expand_chunk, shared, chunks)
                try:
                    for _item, (index, children) in results:
                        waiting[index] = children
                        while at in waiting and merge(chunks[at][1], waiting.pop(at), keep):
                            at += 1
                        if len(found) >= max_counterexamples:
                            break
                finally:
                    close = getattr(results, "close", None)
                    if close is not None:
                        close()
            frontier, nxt = nxt, []
            if freeze:
                gc.freeze()
    finally:
        if freeze:
            gc.unfreeze()
    return ModeReport(
        mode=mode.value,
        depth=depth,
        sequences=sequences,
        states=len(seen),
        settled=settled,
        terminal_outcomes=dict(sorted(outcomes.items())),
        counterexamples=tuple(found[:max_counterexamples]),
        seconds=time.perf_counter() - started,
    )


def _freeze(world: World) -> bytes:
    return pickle.dumps(world, protocol=pickle.HIGHEST_PROTOCOL)


def _thaw(blob: bytes) -> World:
    world: World = pickle.loads(blob)
    return world


# Copies of one state for its children. Measured on a depth-4 frontier state (legged, 9 kB
# pickled): a plain pickle round trip 0.85 ms, copy.deepcopy about 2.5x that, and the copy below
# 0.17 ms: one pickle per state kept for the next level (0.47 ms, against 0.28 ms for a plain
# one) in which every frozen record is passed by reference, so a child builds only the mutable
# objects. Immutable records are shared between siblings (and across levels) safely. Keeping
# the sharing pickle as the frontier state saves each parent a plain pickle and its load.

_ATOMS = (str, int, float, type(None), Decimal, dt.datetime, dt.date, dt.timedelta, enum.Enum)
_FROZEN: dict[type, bool] = {}


def _frozen_class(cls: type) -> bool:
    frozen = _FROZEN.get(cls)
    if frozen is None:
        # attrs has no public "is frozen": a frozen class's __setattr__ is attrs' refusing one.
        frozen = _FROZEN[cls] = attrs.has(cls) and getattr(cls.__setattr__, "__name__", "") == "_frozen_setattrs"
    return frozen


def _immutable(value: object) -> bool:
    """True for atoms, tuples and frozensets of immutables, and frozen attrs records of immutables."""
    if isinstance(value, _ATOMS):
        return True
    if type(value) is tuple or type(value) is frozenset:
        return all(_immutable(v) for v in value)
    cls = type(value)
    record: Any = cls  # a frozen attrs class, once _frozen_class said so
    return _frozen_class(cls) and all(_immutable(getattr(value, f.name)) for f in attrs.fields(record))


class _Loading(threading.local):
    """The table of the sharing pickle this thread is loading (:meth:`_Siblings.copy`)."""

    table: list[object] = []


_LOADING = _Loading()


def _shared(at: int) -> object:
    """Entry ``at`` of the table of the sharing pickle being loaded (a pickle names this function
    where it passes a shared record; a plain function, so that pickle's own lookup finds it)."""
    return _LOADING.table[at]


class _SharingPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, table: list[object]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.table = table
        self.ids: dict[int, int] = {}

    # reducer_override, not persistent_id: pickle asks it only for objects that are not atoms,
    # builtin containers or already in its memo (persistent_id is asked for every int and str).
    # Enum members are passed by reference too: the same singleton, without Enum's lookup on load.
    def reducer_override(self, obj: object) -> Any:  # pickle's hook
        if not _frozen_class(type(obj)) and not isinstance(obj, enum.Enum):
            return NotImplemented
        at = self.ids.get(id(obj))
        if at is None:
            if not _immutable(obj):
                return NotImplemented
            at = self.ids[id(obj)] = len(self.table)
            self.table.append(obj)
        return _shared, (at,)


class _Siblings:
    """Independent copies of one world (its replay shadow included), one per child: a frontier state.

    It pickles (for a worker process) as its bytes and its table of shared records.
    """

    def __init__(self, world: World) -> None:
        self.table: list[object] = []
        out = io.BytesIO()
        _SharingPickler(out, self.table).dump((world, world._shadow, world._shadow_at))
        self.data = out.getvalue()

    def copy(self) -> World:
        world: World
        _LOADING.table = self.table
        try:
            world, world._shadow, world._shadow_at = pickle.loads(self.data)
        finally:
            _LOADING.table = []
        return world


def _freeze_shadowed(world: World) -> _Siblings:
    """A frontier state: the world and its replay shadow (a child replays only what it adds)."""
    return _Siblings(world)


def _thaw_shadowed(blob: _Siblings) -> World:
    return blob.copy()


def format_check(report: CheckReport) -> str:
    """A human-readable summary of a check (and every counterexample's script)."""
    lines = [
        f"exhaustive check: 2-leg vertical x{report.quantity}, every broker script up to {report.depth} actions",
    ]
    for m in report.modes:
        outcomes = ", ".join(f"{k} {v}" for k, v in m.terminal_outcomes.items()) or "-"
        lines.append(
            f"  {m.mode:<7} sequences {m.sequences:>9,}  distinct states {m.states:>8,}  "
            f"settled {m.settled:>8,}  ({m.seconds:.1f}s)  outcomes: {outcomes}"
        )
    lines.append(
        f"  total   sequences {report.sequences:>9,}  distinct states {report.states:>8,}  "
        f"({report.wall_seconds:.1f}s wall)"
    )
    if report.ok:
        lines.append("no counterexample: every invariant held on every sequence")
    else:
        lines.append(f"{len(report.counterexamples)} counterexample(s) (shortest first):")
        lines += [str(c) for c in report.counterexamples]
    return "\n".join(lines)
