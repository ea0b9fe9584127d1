"""AtomicOrderGroup: one multi-leg strategy, executed all or nothing.

The group owns its tickets (one combo ticket, or one per leg), a ledger of the net position
every fill produced, and an audit trail. After every ticket event it re-evaluates itself
through the ``ticket_update`` rows of the table below: commit when every leg is exactly at its
target, roll back when a leg ends short, and while rolling back open compensating (unwind)
tickets for whatever filled, closing short exposure before selling protective longs.

Terminal states are settled: ``committed`` (every leg at target), ``rolled_back`` (flat),
``failed`` (needs a human; ``residual_exposure`` is exactly what is left), ``invalid``
(nothing was sent). A broker that delivers a fill after the group settled re-opens it into
``rolling_back`` with an alert: a real position must never sit unmanaged behind a terminal label.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

import attrs
from transitions import MachineError

from atomic_orders.fsm.errors import InvalidTransition, ValidationError
from atomic_orders.fsm.events import TicketEvent
from atomic_orders.fsm.ledger import Ledger, signed_contracts
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.machine import MachineSpec, Row, build_runtime_machine
from atomic_orders.fsm.orders import OrderType, Purpose
from atomic_orders.fsm.pricing import DEFAULT_TICKS, PriceEffect, TickRule
from atomic_orders.fsm.strategy import StrategyKind, natural_price_effect, validate_legs
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.fsm.ticket import CANCELABLE_STATES, NEW, UNKNOWN, OrderTicket


class GroupState(StrEnum):
    """The states of an :class:`AtomicOrderGroup`."""

    PENDING = "pending"
    VALIDATED = "validated"
    INVALID = "invalid"
    EXECUTING = "executing"
    COMMITTED = "committed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


class ExecutionMode(StrEnum):
    """How the legs reach the broker: one multi-leg order, or one order per leg."""

    COMBO = "combo"
    LEGGED = "legged"


PENDING, VALIDATED, INVALID, EXECUTING = "pending", "validated", "invalid", "executing"
COMMITTED, ROLLING_BACK, ROLLED_BACK, FAILED = "committed", "rolling_back", "rolled_back", "failed"

GROUP_STATES: tuple[str, ...] = tuple(s.value for s in GroupState)
TERMINAL_STATES: frozenset[str] = frozenset({INVALID, COMMITTED, ROLLED_BACK, FAILED})

# fmt: off
#: The AtomicOrderGroup machine. Rows for one (state, trigger) are tried in order.
GROUP_TRANSITIONS: tuple[Row, ...] = (
    Row("validate", PENDING, VALIDATED, conditions="is_valid", before="create_entry_tickets"),
    Row("validate", PENDING, INVALID, unless="is_valid"),

    Row("start", VALIDATED, EXECUTING),

    Row("ticket_update", EXECUTING, COMMITTED, conditions=("is_complete", "broker_confirms")),
    Row("ticket_update", EXECUTING, ROLLING_BACK, conditions="has_failed_leg", before="note_failed_leg",
        after="open_unwinds"),
    Row("ticket_update", EXECUTING, None, note="still working"),
    Row("deadline", EXECUTING, ROLLING_BACK, before="note_reason", after="open_unwinds"),
    Row("submit_failed", EXECUTING, ROLLING_BACK, before="note_reason", after="open_unwinds"),
    Row("abort", EXECUTING, ROLLING_BACK, before="note_reason", after="open_unwinds"),
    Row("deadline", ROLLING_BACK, None, note="already rolling back"),
    Row("abort", ROLLING_BACK, None, note="already rolling back"),
    Row("broker_disputed", EXECUTING, FAILED, before="freeze_residual",
        note="the broker's record kept disagreeing with our fills: a human decides; residual from the broker"),
    Row("broker_disputed", ROLLING_BACK, FAILED, before="freeze_residual",
        note="the broker's record kept disagreeing with our fills: a human decides; residual from the broker"),
    Row("broker_disputed", FAILED, None, before="refresh_residual"),

    Row("ticket_update", ROLLING_BACK, COMMITTED, conditions=("is_complete", "broker_confirms"),
        note="late fills completed every leg exactly: cheaper than unwinding"),
    Row("ticket_update", ROLLING_BACK, ROLLED_BACK, conditions=("is_flat", "broker_confirms")),
    Row("ticket_update", ROLLING_BACK, FAILED, conditions=("unwind_retries_exhausted", "broker_confirms"),
        before="freeze_residual"),
    Row("ticket_update", ROLLING_BACK, None, after="open_unwinds", note="cancel, wait, unwind"),

    Row("ticket_update", COMMITTED, ROLLING_BACK, conditions="is_disturbed", before="alert_reopened",
        after="open_unwinds", note="a fill after settlement: the position is no longer the target"),
    Row("ticket_update", COMMITTED, None),
    Row("ticket_update", ROLLED_BACK, ROLLING_BACK, conditions="is_disturbed", before="alert_reopened",
        after="open_unwinds", note="a fill after settlement: the group is no longer flat"),
    Row("ticket_update", ROLLED_BACK, None),
    Row("ticket_update", FAILED, None, before="refresh_residual"),
)
# fmt: on

GROUP_MACHINE = MachineSpec(
    name="AtomicOrderGroup",
    states=GROUP_STATES,
    initial=PENDING,
    terminal=TERMINAL_STATES,
    rows=GROUP_TRANSITIONS,
)


_GROUP_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,40}", re.ASCII)


def _name(value: Any) -> str:
    """An enum's value, or the repr of whatever an invalid group was given instead."""
    return str(value.value) if isinstance(value, Enum) else repr(value)


def _as_enum(cls: Any, value: Any) -> Any:
    """``value`` as a member of the enum ``cls`` when it is one or names one exactly; else unchanged."""
    if isinstance(value, cls) or not isinstance(value, str):
        return value
    try:
        return cls(value)
    except ValueError:
        return value


#: Reason carried by the evaluation the group fires on itself when it enters ``rolling_back``.
REEVALUATE = "re-evaluate on entering rolling_back"


@attrs.frozen
class GroupEvent:
    """An input of the group machine: a group-level event, or a ticket event it re-evaluates on."""

    time: dt.datetime
    trigger: str
    reason: str = ""
    order_ref: str | None = None
    ticket_event: TicketEvent | None = None


@attrs.frozen
class GroupAuditRecord:
    """One transition of the group: when, from, which event (and ticket event), to."""

    time: dt.datetime
    source: str
    trigger: str
    dest: str
    order_ref: str | None = None
    ticket_event: TicketEvent | None = None
    reason: str = ""


# ---------------------------------------------------------------------------------------------
# Guards


def _unsettled(g: AtomicOrderGroup) -> bool:
    # Loops, not any()/all() over generators: these run on every ticket event of every group.
    for t in g._tickets.values():  # noqa: SIM110
        if t.is_live:
            return True
    return False


def is_valid(g: AtomicOrderGroup, _e: GroupEvent) -> bool:
    """Validation found nothing wrong."""
    return not g.validation_errors


def is_at_target(g: AtomicOrderGroup) -> bool:
    """Every leg's net position equals its target exactly (and nothing else is held)."""
    net = g.ledger.held
    for symbol, target in g.targets.items():  # noqa: SIM110 - see _unsettled
        if net.get(symbol, 0) != target:
            return False
    return True


def is_complete(g: AtomicOrderGroup, _e: GroupEvent) -> bool:
    """Every leg is filled at its target and no order of the group is live."""
    return is_at_target(g) and not _unsettled(g)


def has_failed_leg(g: AtomicOrderGroup, _e: GroupEvent | None) -> bool:
    """Some entry order ended short of its quantity, or the broker over-filled a leg."""
    for t in g.entry_tickets:
        if t.state in _SHORT_END_STATES and t.quantity_filled < t.quantity:
            return True
        if t.overfill_quantity:
            return True
    return False


_SHORT_END_STATES = frozenset({"rejected", "canceled", "expired"})


def is_flat(g: AtomicOrderGroup, _e: GroupEvent) -> bool:
    """Every net position is zero and no order of the group is live."""
    return g.ledger.is_flat and not _unsettled(g)


def broker_confirms(g: AtomicOrderGroup, _e: GroupEvent) -> bool:
    """The broker's own record agrees with every order's booked fills (invariant 7).

    Under an executor (``verify_with_broker``) every sent order needs a final record that matches;
    the executor asks (reconciles every order) before a group can settle. A group driven by hand
    has no broker to ask, but still never settles over a record that disagrees.
    """
    if g.verify_with_broker:
        return all(t.broker_confirms for t in g._tickets.values())
    return not any(t.broker_disagrees for t in g._tickets.values())


def unwind_retries_exhausted(g: AtomicOrderGroup, _e: GroupEvent) -> bool:
    """An unwind failed more often than allowed, nothing is live and no other unwind can still be sent.

    A buy-back of another symbol that is still sendable (e.g. waiting for its retry) only reduces
    risk: it goes out before the group gives up.
    """
    return g.exhausted_symbols() != [] and not _unsettled(g) and not g.sendable_tickets()


def is_disturbed(g: AtomicOrderGroup, _e: GroupEvent) -> bool:
    """The settled promise no longer holds: a fill arrived after settlement, or the broker's
    record now counts another position than the one the group settled on."""
    if g.state == COMMITTED:
        return not is_at_target(g) or g.broker_positions() != {s: q for s, q in g.targets.items() if q}
    return not g.ledger.is_flat or bool(g.broker_positions())


def still_working(g: AtomicOrderGroup) -> bool:
    """An executing group whose ``ticket_update`` can only take the table's "still working" row.

    The ``(executing, ticket_update)`` rows, in order: ``committed`` if ``is_complete and
    broker_confirms``; ``rolling_back`` if ``has_failed_leg``; otherwise an internal row with no
    effect. While some order of the group is live ``is_complete`` is false, and with no failed
    leg the second row fails too: the machine would change nothing but the audit trail. The
    guards are pure, so this answers without running the machine. Most events of a working
    group are of this kind (two thirds of a hostile legged session's ticket events): acks,
    replaces, partial fills, one leg filling while another still works.
    """
    return g.state == EXECUTING and _unsettled(g) and not has_failed_leg(g, None)


GROUP_GUARDS: dict[str, Callable[[Any, Any], bool]] = {
    f.__name__: f
    for f in (is_valid, is_complete, has_failed_leg, is_flat, broker_confirms, unwind_retries_exhausted, is_disturbed)
}


# ---------------------------------------------------------------------------------------------
# Effects


def create_entry_tickets(g: AtomicOrderGroup, _e: GroupEvent) -> None:
    """Create the entry tickets: one combo ticket, or one ticket per leg (ratio x quantity)."""
    gid = g.group_id
    if g.mode is ExecutionMode.COMBO:
        tickets = [
            OrderTicket(
                f"{gid}-C",
                g.legs,
                g.quantity,
                group_id=gid,
                order_type=g.order_type,
                limit_price=g.signed_limit_price,
            )
        ]
    else:
        tickets = [
            OrderTicket(f"{gid}-L{i}", (leg,), leg.ratio * g.quantity, group_id=gid, order_type=g.order_type)
            for i, leg in enumerate(g.legs)
        ]
    for t in tickets:
        g._attach(t)
    g.entry_tickets = tickets


def note_failed_leg(g: AtomicOrderGroup, e: GroupEvent) -> None:
    """Say why the group is rolling back."""
    short = [t.order_ref for t in g.entry_tickets if t.state in _SHORT_END_STATES and t.quantity_filled < t.quantity]
    over = [t.order_ref for t in g.entry_tickets if t.overfill_quantity]
    g.rollback_reason = f"leg ended short: {short}" if short else f"broker over-filled: {over}"


def note_reason(g: AtomicOrderGroup, e: GroupEvent) -> None:
    """Keep the reason of a deadline, submission failure or abort."""
    g.rollback_reason = f"{e.trigger}: {e.reason}" if e.reason else e.trigger


def open_unwinds(g: AtomicOrderGroup, e: GroupEvent) -> None:
    """Open a closing ticket for every non-zero position, once no entry order is live.

    A group at its targets by our fills waits for the broker's record first (under an executor):
    if it confirms, committing beats unwinding.

    One unwind per symbol at a time; a symbol whose unwinds failed more than the retry limit
    gets no more. An unwind never sent whose side or size no longer fits the position (a late
    fill moved it) is dropped, so it can neither block its symbol nor be sent the wrong way.
    """
    if g.state != ROLLING_BACK:
        return
    net = g.ledger.held
    for t in [u for u in g.unwind_tickets if u.state == NEW]:
        held = net.get(t.legs[0].symbol, 0)
        if held == 0 or t.legs[0].side is not (Side.SELL if held > 0 else Side.BUY) or t.quantity > abs(held):
            g.unwind_tickets.remove(t)
            del g._tickets[t.order_ref]
            g._reevaluate = True  # the guards counted it as sendable: decide again without it
    for t in g.entry_tickets:
        if t.is_live:
            return
    if g.verify_with_broker and is_at_target(g) and not all(t.broker_confirms for t in g._tickets.values()):
        return  # complete by our fills: the broker's record decides between committing and unwinding
    busy = {t.legs[0].symbol for t in g.unwind_tickets if t.state == NEW or t.is_live}
    # Where the broker's records count another position than our fills (an order it says filled
    # without delivering the fill), no order is sent on either number: the executor asks the
    # broker again, and a dispute that persists fails the group for a human.
    counted = g.broker_positions()
    busy |= {s for s in set(net) | set(counted) if net.get(s, 0) != counted.get(s, 0)}
    for leg in g.legs:
        symbol = leg.symbol
        qty = net.get(symbol, 0)
        if qty == 0 or symbol in busy or g.unwind_failures.get(symbol, 0) > g.max_unwind_retries:
            continue
        g._unwind_seq += 1
        side = Side.SELL if qty > 0 else Side.BUY
        # Closing what this group opened (or re-opening what it closed): the opposite effect. An
        # unwind on the leg's own side only undoes an over-filled unwind: it always closes.
        effect = leg.position_effect.opposite if side is leg.side.opposite else PositionEffect.CLOSE
        ticket = OrderTicket(
            f"{g.group_id}-U{g._unwind_seq}",
            (Leg(symbol, side, 1, effect),),
            abs(qty),
            group_id=g.group_id,
            purpose=Purpose.UNWIND,
            order_type=OrderType.LIMIT,
        )
        g._attach(ticket)
        g.unwind_tickets.append(ticket)


def freeze_residual(g: AtomicOrderGroup, e: GroupEvent) -> None:
    """Record exactly what is left, as the broker counts it, and raise the alert a human must see."""
    g.residual_exposure = g.broker_positions()
    residual = {s.occ: q for s, q in g.residual_exposure.items()}
    why = f"broker record disputed ({e.reason})" if e.trigger == "broker_disputed" else "unwind retries exhausted"
    g.rollback_reason = g.rollback_reason or why
    g.alerts.append(f"{e.time.isoformat()} group {g.group_id} FAILED: {why}; residual {residual}")


def refresh_residual(g: AtomicOrderGroup, e: GroupEvent) -> None:
    """A failed group still tracks reality: a later fill changes the residual and re-alerts."""
    now = g.broker_positions()
    if now != g.residual_exposure:
        g.residual_exposure = now
        residual = {s.occ: q for s, q in now.items()}
        g.alerts.append(f"{e.time.isoformat()} group {g.group_id} residual changed after failure: {residual}")


def alert_reopened(g: AtomicOrderGroup, e: GroupEvent) -> None:
    """A settled group saw a fill: say so loudly before unwinding it."""
    g.alerts.append(f"{e.time.isoformat()} group {g.group_id} re-opened from {g.state}: fill after settlement")
    g.rollback_reason = f"re-opened from {g.state} by {e.order_ref}"


GROUP_EFFECTS: dict[str, Callable[[Any, Any], None]] = {
    f.__name__: f
    for f in (
        create_entry_tickets,
        note_failed_leg,
        note_reason,
        open_unwinds,
        freeze_residual,
        refresh_residual,
        alert_reopened,
    )
}

_RUNTIME = build_runtime_machine(GROUP_MACHINE, GROUP_GUARDS, GROUP_EFFECTS)
_EVENTS = _RUNTIME.events
#: The library's logger: while it listens at DEBUG the machine runs every ticket_update, so its
#: per-trigger lines appear as they always did (see AtomicOrderGroup.apply_ticket_event).
_LIBRARY_LOG = logging.getLogger("transitions.core")


class AtomicOrderGroup:
    """One strategy (iron condor, vertical, strangle or 1-4 generic legs), all or nothing.

    ``limit_price`` is the worst acceptable net price per strategy unit, a positive Decimal
    with its ``price_effect`` (credit or debit); ``None`` leaves pricing to the executor.
    """

    __slots__ = (
        "state",
        "group_id",
        "strategy",
        "legs",
        "quantity",
        "mode",
        "order_type",
        "limit_price",
        "price_effect",
        "ticks",
        "max_unwind_retries",
        "longs_first",
        "targets",
        "ledger",
        "entry_tickets",
        "unwind_tickets",
        "_tickets",
        "_unwind_seq",
        "unwind_failures",
        "_counted_failures",
        "_reevaluate",
        "validation_errors",
        "rollback_reason",
        "residual_exposure",
        "alerts",
        "anomalies",
        "verify_with_broker",
        "audit",
        "created_at",
    )

    def __init__(
        self,
        group_id: str,
        legs: Sequence[Leg],
        quantity: int,
        *,
        strategy: StrategyKind = StrategyKind.CUSTOM,
        mode: ExecutionMode = ExecutionMode.COMBO,
        order_type: OrderType = OrderType.LIMIT,
        limit_price: Decimal | None = None,
        price_effect: PriceEffect | None = None,
        ticks: TickRule = DEFAULT_TICKS,
        max_unwind_retries: int = 3,
        longs_first: bool = True,
        created_at: dt.datetime | None = None,
        verify_with_broker: bool = False,
    ) -> None:
        self.state: str = PENDING
        self.group_id = group_id
        # Enums are taken as enums, or their exact value ("legged"); anything else is kept for
        # validation to refuse by name (the group ends ``invalid``, nothing sent).
        self.strategy = _as_enum(StrategyKind, strategy)
        self.legs: tuple[Leg, ...] = tuple(legs)
        self.quantity = quantity
        self.mode = _as_enum(ExecutionMode, mode)
        self.order_type = _as_enum(OrderType, order_type)
        self.limit_price = limit_price
        self.price_effect = _as_enum(PriceEffect, price_effect) if price_effect is not None else None
        self.ticks = ticks
        self.max_unwind_retries = max_unwind_retries
        self.longs_first = longs_first
        self.targets: dict[OptionSymbol, int] = {}
        self.ledger = Ledger()
        self.entry_tickets: list[OrderTicket] = []
        self.unwind_tickets: list[OrderTicket] = []
        self._tickets: dict[str, OrderTicket] = {}
        self._unwind_seq = 0
        self.unwind_failures: dict[OptionSymbol, int] = {}
        self._counted_failures: set[str] = set()
        self._reevaluate = False
        self.validation_errors: list[ValidationError] = []
        self.rollback_reason: str | None = None
        self.residual_exposure: dict[OptionSymbol, int] = {}
        self.alerts: list[str] = []
        self.anomalies: list[str] = []
        self.audit: list[GroupAuditRecord] = []
        self.created_at = created_at
        #: Settle only once the broker's record confirms every order (set by the executor).
        self.verify_with_broker = verify_with_broker

    # -- derived -------------------------------------------------------------------------------

    @property
    def status(self) -> GroupState:
        """The current state as a :class:`GroupState`."""
        return GroupState(self.state)

    @property
    def is_terminal(self) -> bool:
        """True in ``invalid``, ``committed``, ``rolled_back`` and ``failed``."""
        return self.state in TERMINAL_STATES

    @property
    def signed_limit_price(self) -> Decimal | None:
        """The limit as a signed net per unit (positive = debit), or None."""
        if self.limit_price is None:
            return None
        return -self.limit_price if self.price_effect is PriceEffect.CREDIT else self.limit_price

    @property
    def tickets(self) -> list[OrderTicket]:
        """Every ticket of the group, entry then unwind, in creation order."""
        return list(self._tickets.values())

    @property
    def ticket_marker(self) -> tuple[int, int]:
        """``(tickets held, unwinds opened)``: changes whenever the group creates a ticket, even when
        a stale unwind it dropped and a new one leave the count unchanged (the executor routes new
        tickets when it changes)."""
        return len(self._tickets), self._unwind_seq

    def ticket(self, order_ref: str) -> OrderTicket:
        """The ticket with this reference (KeyError names it when unknown)."""
        try:
            return self._tickets[order_ref]
        except KeyError:
            raise KeyError(f"group {self.group_id!r} has no ticket {order_ref!r}") from None

    def has_ticket(self, order_ref: str) -> bool:
        """True when ``order_ref`` is one of this group's orders."""
        return order_ref in self._tickets

    def exhausted_symbols(self) -> list[OptionSymbol]:
        """Symbols whose unwinds failed more often than ``max_unwind_retries``."""
        limit = self.max_unwind_retries
        return [s for s, n in self.unwind_failures.items() if n > limit]

    @property
    def flagged(self) -> bool:
        """Some ticket was over-filled or filled late."""
        return any(t.flagged for t in self._tickets.values())

    # -- validation ------------------------------------------------------------------------------

    def collect_errors(self) -> list[ValidationError]:
        """Every problem of the group's specification (legs, quantity, mode, prices, id), each a
        :class:`ValidationError` naming its field; the group's state is not changed."""
        errors: list[ValidationError] = []
        if not isinstance(self.group_id, str) or not _GROUP_ID_RE.fullmatch(self.group_id):
            # it becomes the prefix of every order's external identifier at the broker
            errors.append(ValidationError("group_id", self.group_id,
                                          "must be 1-40 ASCII letters, digits, '_', '.' or '-'"))
        if type(self.quantity) is not int or self.quantity <= 0:
            errors.append(ValidationError("quantity", self.quantity, "must be a positive int"))
        if not isinstance(self.strategy, StrategyKind):
            errors.append(ValidationError("strategy", self.strategy, "must be a StrategyKind"))
            return errors
        if not isinstance(self.mode, ExecutionMode):
            errors.append(ValidationError("mode", self.mode, "must be ExecutionMode.COMBO or LEGGED"))
        if not isinstance(self.longs_first, bool):
            errors.append(ValidationError("longs_first", self.longs_first, "must be True or False"))
        if type(self.max_unwind_retries) is not int or self.max_unwind_retries < 0:
            errors.append(ValidationError("max_unwind_retries", self.max_unwind_retries, "must be an int >= 0"))
        leg_errors = validate_legs(self.strategy, self.legs)
        errors.extend(leg_errors)
        if self.limit_price is not None:
            try:
                self.ticks.check("limit_price", self.limit_price, combo=not leg_errors and len(self.legs) > 1)
            except ValidationError as err:
                errors.append(err)
            if not isinstance(self.price_effect, PriceEffect):
                errors.append(ValidationError("price_effect", self.price_effect, "a limit price needs CREDIT or DEBIT"))
            natural = natural_price_effect(self.strategy, self.legs) if not leg_errors else None
            if natural is not None and isinstance(self.price_effect, PriceEffect) and self.price_effect is not natural:
                # A DEBIT limit on a sold condor (or a CREDIT one on a bought vertical) would pay
                # where the trade collects, or the other way round: never what was meant.
                errors.append(ValidationError("price_effect", self.price_effect,
                                              f"this {self.strategy.value} is a {natural.value} by its legs; a "
                                              f"{self.price_effect.value} limit prices the opposite trade"))
            if self.mode is ExecutionMode.LEGGED:
                # Each leg fills at its own price, one after another: no net limit can be held across
                # them without risking a half-built position at a worse net. Refused, nothing sent.
                errors.append(ValidationError("limit_price", self.limit_price,
                                              "a legged group cannot hold a net limit across its separate leg "
                                              "orders; use mode=combo for a net limit, or omit limit_price"))
        if not isinstance(self.order_type, OrderType):
            errors.append(ValidationError("order_type", self.order_type, "must be OrderType.LIMIT or MARKET"))
        return errors

    # -- machine inputs ---------------------------------------------------------------------------

    def _fire(self, event: GroupEvent) -> str:
        source = self.state
        try:
            ok = _EVENTS[event.trigger].trigger(self, event)
        except MachineError:
            raise InvalidTransition("AtomicOrderGroup", self.group_id, source, event.trigger) from None
        if not ok:
            raise InvalidTransition("AtomicOrderGroup", self.group_id, source, event.trigger)
        self.audit.append(
            GroupAuditRecord(event.time, source, event.trigger, self.state, event.order_ref, event.ticket_event,
                             event.reason)
        )
        if self.state == ROLLING_BACK and (source != ROLLING_BACK or self._reevaluate):
            # Entering rollback: decide at once, there may be nothing left to wait for (e.g. the
            # only order was rejected unfilled). No later event would trigger this evaluation.
            # Likewise when open_unwinds dropped a stale unwind the guards had just counted as
            # sendable: with it gone there may be nothing left to send (failed).
            self._reevaluate = False
            self._fire(GroupEvent(event.time, "ticket_update", REEVALUATE))
        return self.state

    def validate(self, time: dt.datetime) -> str:
        """Check the strategy; go to ``validated`` (tickets created) or ``invalid`` (nothing sent)."""
        if self.state != PENDING:
            raise InvalidTransition("AtomicOrderGroup", self.group_id, self.state, "validate")
        self.validation_errors = self.collect_errors()
        if not self.validation_errors:
            self.targets = {leg.symbol: leg.signed_ratio * self.quantity for leg in self.legs}
        return self._fire(GroupEvent(time, "validate"))

    def start(self, time: dt.datetime) -> str:
        """Begin execution."""
        return self._fire(GroupEvent(time, "start"))

    def deadline(self, time: dt.datetime, reason: str = "not filled by the deadline") -> str:
        """The execution deadline passed: roll back."""
        return self._fire(GroupEvent(time, "deadline", reason))

    def submit_failed(self, time: dt.datetime, reason: str) -> str:
        """A submission failed definitely: roll back."""
        return self._fire(GroupEvent(time, "submit_failed", reason))

    def abort(self, time: dt.datetime, reason: str = "aborted") -> str:
        """Give up on execution (user or risk decision): roll back."""
        return self._fire(GroupEvent(time, "abort", reason))

    def apply_ticket_event(self, order_ref: str, event: TicketEvent) -> str:
        """Apply a ticket event, then let the group re-evaluate itself; return the group's state.

        Raises :class:`InvalidTransition` (nothing changed anywhere) when the ticket's table
        does not allow the event.
        """
        ticket = self.ticket(order_ref)
        ticket.apply(event)
        if (
            ticket.purpose is Purpose.UNWIND
            and ticket.state in _SHORT_END_STATES
            and ticket.quantity_filled < ticket.quantity
            and order_ref not in self._counted_failures
        ):
            self._counted_failures.add(order_ref)
            symbol = ticket.legs[0].symbol
            self.unwind_failures[symbol] = self.unwind_failures.get(symbol, 0) + 1
        if self.state in (PENDING, VALIDATED, INVALID):
            return self.state  # a ticket event before execution: nothing for the group to decide
        if _EVENTS is _RUNTIME.events and not _LIBRARY_LOG.isEnabledFor(logging.DEBUG) and still_working(self):
            # The machine's answer is known (see still_working): record exactly the transition it
            # would record, without the event object and the trigger around it. Only for the real
            # table's machine (one swapped in, a planted defect, decides every event itself) and
            # while the library's debug lines are off (the row writes only those).
            self.audit.append(GroupAuditRecord(event.time, EXECUTING, "ticket_update", EXECUTING, order_ref, event))
            return EXECUTING
        return self._fire(GroupEvent(event.time, "ticket_update", "", order_ref, event))

    def broker_disputed(self, time: dt.datetime, reason: str) -> str:
        """The broker's record kept contradicting our fills: fail, residual measured from the broker."""
        return self._fire(GroupEvent(time, "broker_disputed", reason))

    def broker_positions(self) -> dict[OptionSymbol, int]:
        """Signed positions per symbol as the broker's records count them.

        Our ledger, corrected by each order's broker count where its record differs from the fills
        we booked (a ``FILLED`` order without its fills; a fill booked twice under two ids).
        Equal to the ledger when the broker agrees.
        """
        out = dict(self.ledger.held)
        for t in self._tickets.values():
            extra = t.broker_filled - t.quantity_filled
            if extra:
                for symbol, per_unit in signed_contracts(t):
                    out[symbol] = out.get(symbol, 0) + per_unit * extra
        return {s: q for s, q in out.items() if q}

    def awaiting_broker(self) -> bool:
        """Nothing is live, but the broker has not confirmed every order: the executor must ask it."""
        if self.state not in (EXECUTING, ROLLING_BACK) or not self.verify_with_broker:
            return False
        tickets = self._tickets.values()
        return not any(t.is_live for t in tickets) and not all(t.broker_confirms for t in tickets)

    def record_anomaly(self, text: str) -> None:
        """Keep a broker event the machines could not accept (it is flagged, never dropped)."""
        self.anomalies.append(text)

    # -- what the executor should do next ---------------------------------------------------------

    def sendable_tickets(self) -> list[OrderTicket]:
        """Tickets to submit now.

        Executing: new entry tickets, protective longs first (shorts wait until every long leg
        is filled) when ``longs_first``. Rolling back: new unwind tickets, buying back shorts
        before selling longs so the group never holds naked short exposure it did not have.
        """
        if self.state == EXECUTING:
            new = [t for t in self.entry_tickets if t.state == NEW]
            if not new or not self.longs_first or self.mode is ExecutionMode.COMBO:
                return new
            longs_done = all(t.state == "filled" for t in self.entry_tickets if t.legs[0].is_long)
            return [t for t in new if t.legs[0].is_long or longs_done]
        if self.state == ROLLING_BACK:
            new = [t for t in self.unwind_tickets if t.state == NEW]
            if not new or not self.longs_first:
                return new
            net = self.ledger.held
            shorts_open = any(q < 0 for q in net.values())
            return [t for t in new if t.legs[0].side is Side.BUY or not shorts_open]
        return []

    def cancelable_tickets(self) -> list[OrderTicket]:
        """Entry orders to cancel now (while rolling back)."""
        if self.state != ROLLING_BACK:
            return []
        return [t for t in self.entry_tickets if t.state in CANCELABLE_STATES]

    def unknown_tickets(self) -> list[OrderTicket]:
        """Tickets whose outcome must be reconciled with the broker before any decision."""
        return [t for t in self._tickets.values() if t.state == UNKNOWN]

    def live_tickets(self) -> list[OrderTicket]:
        """Tickets live (or possibly live) at the broker."""
        return [t for t in self._tickets.values() if t.is_live]

    # -- internals -------------------------------------------------------------------------------

    def _attach(self, ticket: OrderTicket) -> None:
        self._tickets[ticket.order_ref] = ticket
        # The ledger's method, not one of the group's: a ticket pointing back at its group made a
        # reference cycle, and every finished group waited for a full collector pass to be freed.
        ticket.on_fill = self.ledger.record

    def forget_history(self) -> None:
        """Drop the audit trails (:attr:`audit`, each ticket's ``order_events``); keep everything else.

        For a finished group an executor holds only to answer late events: state, tickets, fills
        and ledger decide those, the trails are never read again (they hold every event the group
        saw, most of a finished group's memory). Afterwards :meth:`replay` replays only what came
        later: never call it on a group a journal or a replay check still needs.
        """
        self.audit.clear()
        for ticket in self._tickets.values():
            ticket.order_events.clear()

    def replay(self, audit: Iterable[GroupAuditRecord] | None = None) -> AtomicOrderGroup:
        """A fresh group with the same definition, driven through ``audit`` (default: this one's)."""
        fresh = self.clone_definition()
        for rec in list(self.audit if audit is None else audit):
            fresh.replay_record(rec)
        return fresh

    def replay_record(self, rec: GroupAuditRecord) -> None:
        """Drive this group through one audit record, as the original group was driven.

        :meth:`replay` is a left fold of this; incremental checkers feed new records one by one.
        """
        if rec.reason == REEVALUATE:
            return  # the replaying group fires its own re-evaluation
        if rec.trigger == "validate":
            self.validate(rec.time)
        elif rec.trigger == "ticket_update":
            assert rec.order_ref is not None and rec.ticket_event is not None
            self.apply_ticket_event(rec.order_ref, rec.ticket_event)
        else:
            self._fire(GroupEvent(rec.time, rec.trigger, rec.reason))

    def clone_definition(self) -> AtomicOrderGroup:
        """A new ``pending`` group with this group's definition and no history."""
        return AtomicOrderGroup(
            self.group_id,
            self.legs,
            self.quantity,
            strategy=self.strategy,
            mode=self.mode,
            order_type=self.order_type,
            limit_price=self.limit_price,
            price_effect=self.price_effect,
            ticks=self.ticks,
            max_unwind_retries=self.max_unwind_retries,
            longs_first=self.longs_first,
            created_at=self.created_at,
            verify_with_broker=self.verify_with_broker,
        )

    def __repr__(self) -> str:
        return (
            f"AtomicOrderGroup({self.group_id!r}, {_name(self.strategy)}, {_name(self.mode)}, x{self.quantity}, "
            f"state={self.state!r})"
        )
