"""Benchmarks of the machines: what the project's patterns cost against the alternatives.

Everything is measured in ONE process run, with :func:`time.perf_counter`, a
:func:`gc.collect` before every timed block (the cyclic GC stays on while timing: one-Machine-
per-object designs make cyclic garbage, and that is part of their cost), every measurement
repeated ``rounds`` times with the compared implementations interleaved in small chunks inside
each round (so machine drift and other processes' load hit them alike) and the median reported.
Ratios are also computed from this process's CPU time (``*_cpu``), which other processes' load
does not inflate. Events and inputs are built outside the timed blocks. Nothing here asserts a
speed: the bench checks that every lifecycle ended where it must (``checks``) and reports
targets as met or missed.

Implementations compared:

* ``project``: :class:`~atomic_orders.fsm.ticket.OrderTicket` / :class:`~atomic_orders.fsm.group.AtomicOrderGroup` (one
  shared static ``transitions`` machine per kind, models never registered).
* ``naive``: the same machines (same states, same rows, the project's guards and effects as
  model methods) written the way the ``transitions`` README shows first: one ``Machine(model=self)``
  per object, triggers called as model methods.
* ``bare``: the ticket table on a bare ``transitions`` machine, fired through the same static
  pattern (``machine.events[trigger].trigger(model, event)``, ``send_event=True``) with minimal
  guards and effects doing only the state-relevant arithmetic and nothing around them (no audit,
  no anomaly flags, no ledger hook): the library's floor for this table.
* ``dict``: a hand-written ``TABLE[(state, trigger)] -> [(guards, dest, effects)]`` built from the
  same rows with the same minimal guards: the pure-Python limit.

``run_bench`` returns a JSON-ready dict; ``format_report`` renders it as a text table. The CLI
(``atomic-orders bench [--quick] [--json [PATH]]``) calls both.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from transitions import Machine, MachineError

from atomic_orders.fsm.errors import InvalidTransition
from atomic_orders.fsm.events import Acknowledged, BrokerStatus, Fill, Reconciled, Submit, TicketEvent
from atomic_orders.fsm.group import (
    COMMITTED,
    GROUP_EFFECTS,
    GROUP_GUARDS,
    GROUP_MACHINE,
    PENDING,
    VALIDATED,
    AtomicOrderGroup,
    ExecutionMode,
    GroupAuditRecord,
    GroupEvent,
)
from atomic_orders.fsm.ledger import Ledger
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.machine import MachineSpec
from atomic_orders.fsm.orders import OrderType, Purpose, TimeInForce
from atomic_orders.fsm.pricing import DEFAULT_TICKS, PriceEffect
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.fsm.ticket import (
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    SUBMITTED,
    TICKET_EFFECTS,
    TICKET_GUARDS,
    TICKET_MACHINE,
    AuditRecord,
    OrderTicket,
)

__all__ = [
    "REQUIRED_KEYS",
    "TARGETS",
    "format_report",
    "iron_condor_legs",
    "run_bench",
    "to_json",
]

#: Keys every result carries (the figures; all positive numbers).
REQUIRED_KEYS: tuple[str, ...] = (
    "group_create_us",
    "naive_group_create_us",
    "ticket_events_per_s",
    "bare_transitions_events_per_s",
    "naive_ticket_events_per_s",
    "dict_ticket_events_per_s",
    "condor_lifecycle_us",
    "condor_lifecycle_combo_us",
    "idle_group_bytes",
)

#: The targets the project set itself: name -> (figure, comparison, threshold).
TARGETS: dict[str, tuple[str, str, float]] = {
    "group_create_vs_naive_50x": ("group_create_speedup", ">=", 50.0),
    "ticket_vs_bare_0.8x": ("ticket_vs_bare_ratio", ">=", 0.8),
    "idle_group_under_8192_bytes": ("idle_group_bytes", "<", 8192.0),
}

_T0 = dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC)
_EXPIRY = dt.date(2026, 1, 16)
_TICKET_QTY = 100
_TICKET_FILLS = (25, 25, 25, 25)  # three partial fills and the completing fill
_LEG_PRICE = Decimal("2.00")
_CONDOR_CREDIT = Decimal("1.50")


def iron_condor_legs() -> tuple[Leg, ...]:
    """A short SPXW iron condor: buy 5800P, sell 5850P, sell 6050C, buy 6100C."""

    def sym(right: Right, strike: int) -> OptionSymbol:
        return OptionSymbol.of("SPXW", _EXPIRY, right, strike)

    return (
        Leg(sym(Right.PUT, 5800), Side.BUY),
        Leg(sym(Right.PUT, 5850), Side.SELL),
        Leg(sym(Right.CALL, 6050), Side.SELL),
        Leg(sym(Right.CALL, 6100), Side.BUY),
    )


def _new_group(gid: str, legs: tuple[Leg, ...], mode: ExecutionMode, quantity: int = 1) -> AtomicOrderGroup:
    return AtomicOrderGroup(
        gid,
        legs,
        quantity,
        strategy=StrategyKind.IRON_CONDOR,
        mode=mode,
        # A net limit is a combo's: a legged group takes none (validation refuses it).
        limit_price=_CONDOR_CREDIT if mode is ExecutionMode.COMBO else None,
        price_effect=PriceEffect.CREDIT if mode is ExecutionMode.COMBO else None,
    )


def _ticket_lifecycle() -> tuple[TicketEvent, ...]:
    """Submit, Acknowledged, three partial fills, the final fill (one ticket of 100)."""
    fills = tuple(Fill(_T0, f"F{i}", q, _LEG_PRICE) for i, q in enumerate(_TICKET_FILLS))
    return (Submit(_T0, limit_price=_LEG_PRICE), Acknowledged(_T0, "B-1"), *fills)


# =============================================================================================
# naive: one transitions.Machine per object, the project's guards/effects as model methods


def _as_method(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def method(self: Any, event: Any) -> Any:
        return fn(self, event)

    method.__name__ = fn.__name__
    return method


def _naive_transitions(spec: MachineSpec) -> list[dict[str, Any]]:
    """The table's rows as ``transitions`` dicts naming model methods (the README style)."""
    return [
        {
            "trigger": row.trigger,
            "source": list(row.source),
            "dest": row.dest,
            "conditions": list(row.conditions),
            "unless": list(row.unless),
            "before": list(row.before),
            "after": list(row.after),
        }
        for row in spec.rows
    ]


_NAIVE_TICKET_TRANSITIONS = _naive_transitions(TICKET_MACHINE)
_NAIVE_GROUP_TRANSITIONS = _naive_transitions(GROUP_MACHINE)


class NaiveTicket:
    """OrderTicket with its own ``transitions.Machine`` (same states, rows, guards and effects)."""

    def __init__(
        self,
        order_ref: str,
        legs: tuple[Leg, ...],
        quantity: int,
        *,
        group_id: str = "",
        purpose: Purpose = Purpose.ENTRY,
        order_type: OrderType = OrderType.LIMIT,
        limit_price: Decimal | None = None,
    ) -> None:
        self.state = NEW
        self.order_ref = order_ref
        self.group_id = group_id
        self.purpose = purpose
        self.legs = legs
        self.quantity = quantity
        self.order_type = order_type
        self.limit_price = limit_price
        self.time_in_force = TimeInForce.DAY
        self.broker_order_id: str | None = None
        self.fills: list[Fill] = []
        self._fill_ids: dict[str, tuple[int, Decimal]] = {}
        self.quantity_filled = 0
        self._notional = Decimal(0)
        self.duplicate_fills = 0
        self.overfill_quantity = 0
        self.late_fill_quantity = 0
        self.anomalies: list[str] = []
        self.order_events: list[AuditRecord] = []
        self.reason: str | None = None
        self.reconciliations = 0
        self.broker_record: Any = None
        self.conflicting_fills: list[Fill] = []
        self._pending_update: Any = None
        self.router: Any = None
        self.on_fill: Callable[[Any, Fill], None] | None = None
        self.machine = Machine(
            model=self,
            states=list(TICKET_MACHINE.states),
            initial=NEW,
            transitions=_NAIVE_TICKET_TRANSITIONS,
            auto_transitions=False,
        )

    # The project's derived views, read by its guards.
    is_live = OrderTicket.is_live
    broker_confirms = OrderTicket.broker_confirms
    broker_filled = OrderTicket.broker_filled

    def apply(self, event: TicketEvent) -> str:
        """Fire the event's trigger method on the model; audit it like the project does."""
        source = self.state
        try:
            ok = getattr(self, event.trigger)(event)
        except MachineError:
            raise InvalidTransition("NaiveTicket", self.order_ref, source, event.trigger) from None
        if not ok:
            raise InvalidTransition("NaiveTicket", self.order_ref, source, event.trigger)
        self.order_events.append(AuditRecord(event.time, source, event.trigger, self.state, event))
        return self.state


for _name, _fn in (*TICKET_GUARDS.items(), *TICKET_EFFECTS.items()):
    setattr(NaiveTicket, _name, _as_method(_fn))


def _naive_create_entry_tickets(g: NaiveGroup, _e: GroupEvent) -> None:
    """The project's ``create_entry_tickets`` with naive tickets."""
    gid = g.group_id
    if g.mode is ExecutionMode.COMBO:
        tickets = [NaiveTicket(f"{gid}-C", g.legs, g.quantity, group_id=gid, limit_price=g.signed_limit_price)]
    else:
        tickets = [
            NaiveTicket(f"{gid}-L{i}", (leg,), leg.ratio * g.quantity, group_id=gid, order_type=g.order_type)
            for i, leg in enumerate(g.legs)
        ]
    for t in tickets:
        g._tickets[t.order_ref] = t
        t.on_fill = g._record_fill
    g.entry_tickets = tickets


class NaiveGroup:
    """AtomicOrderGroup with its own ``transitions.Machine`` and naive tickets (creation is timed).

    The guards and effects are the project's functions bound as model methods, except that the
    entry tickets are :class:`NaiveTicket`. (Unwinds are never exercised by the bench.)
    """

    def __init__(self, group_id: str, legs: Sequence[Leg], quantity: int, *, mode: ExecutionMode) -> None:
        self.state = PENDING
        self.group_id = group_id
        self.strategy = StrategyKind.IRON_CONDOR
        self.legs: tuple[Leg, ...] = tuple(legs)
        self.quantity = quantity
        self.mode = mode
        self.order_type = OrderType.LIMIT
        legged = mode is ExecutionMode.LEGGED  # a net limit is a combo's (validation refuses it legged)
        self.limit_price: Decimal | None = None if legged else _CONDOR_CREDIT
        self.price_effect = None if legged else PriceEffect.CREDIT
        self.ticks = DEFAULT_TICKS
        self.max_unwind_retries = 3
        self.longs_first = True
        self.targets: dict[OptionSymbol, int] = {}
        self.ledger = Ledger()
        self.entry_tickets: list[NaiveTicket] = []
        self.unwind_tickets: list[NaiveTicket] = []
        self._tickets: dict[str, NaiveTicket] = {}
        self._unwind_seq = 0
        self.unwind_failures: dict[OptionSymbol, int] = {}
        self._counted_failures: set[str] = set()
        self.validation_errors: list[Any] = []
        self.rollback_reason: str | None = None
        self.residual_exposure: dict[OptionSymbol, int] = {}
        self.alerts: list[str] = []
        self.anomalies: list[str] = []
        self.audit: list[GroupAuditRecord] = []
        self.created_at = None
        self.verify_with_broker = False
        self.machine = Machine(
            model=self,
            states=list(GROUP_MACHINE.states),
            initial=PENDING,
            transitions=_NAIVE_GROUP_TRANSITIONS,
            auto_transitions=False,
        )

    @property
    def signed_limit_price(self) -> Decimal | None:
        """The limit as a signed net per unit (positive = debit), as the project's group."""
        if self.limit_price is None:
            return None
        return -self.limit_price if self.price_effect is PriceEffect.CREDIT else self.limit_price

    exhausted_symbols = AtomicOrderGroup.exhausted_symbols

    def _record_fill(self, ticket: Any, fill: Fill) -> None:
        self.ledger.record(ticket, fill)

    def run_validation(self, time: dt.datetime) -> str:
        """The project's ``validate`` (same checks), firing the ``validate`` trigger method."""
        self.validation_errors = AtomicOrderGroup.collect_errors(self)  # type: ignore[arg-type]
        if not self.validation_errors:
            self.targets = {leg.symbol: leg.signed_ratio * self.quantity for leg in self.legs}
        source = self.state
        event = GroupEvent(time, "validate")
        if not self.validate(event):  # type: ignore[attr-defined]  # bound by the Machine
            raise InvalidTransition("NaiveGroup", self.group_id, source, "validate")
        self.audit.append(GroupAuditRecord(time, source, "validate", self.state))
        return self.state


for _name, _fn in (*GROUP_GUARDS.items(), *GROUP_EFFECTS.items()):
    setattr(NaiveGroup, _name, _as_method(_fn))
NaiveGroup.create_entry_tickets = _as_method(_naive_create_entry_tickets)  # type: ignore[attr-defined]


# =============================================================================================
# bare transitions and the dict FSM: the same ticket table, minimal guards and effects


class BareTicket:
    """Only what the ticket table's guards need."""

    __slots__ = (
        "state",
        "quantity",
        "quantity_filled",
        "fill_ids",
        "broker_order_id",
        "limit_price",
        "reason",
        "pending",
        "duplicates",
    )

    def __init__(self, quantity: int) -> None:
        self.state = NEW
        self.quantity = quantity
        self.quantity_filled = 0
        self.fill_ids: set[str] = set()
        self.broker_order_id: str | None = None
        self.limit_price: Decimal | None = None
        self.reason: str | None = None
        self.pending: Any = None
        self.duplicates = 0


def _min_filled(m: BareTicket, e: Reconciled) -> int:
    return m.quantity_filled + sum(f.quantity for f in e.fills if f.fill_id not in m.fill_ids)


def _min_reconciled(m: BareTicket, e: Reconciled) -> str:
    filled = _min_filled(m, e)
    if e.status is BrokerStatus.WORKING or e.status is BrokerStatus.PARTIALLY_FILLED:
        return FILLED if filled >= m.quantity else PARTIALLY_FILLED if filled > 0 else SUBMITTED
    return "rejected" if e.status is BrokerStatus.NOT_FOUND else e.status.value


def _min_fill(m: BareTicket, e: Fill) -> None:
    m.fill_ids.add(e.fill_id)
    m.quantity_filled += e.quantity


def _min_update(m: BareTicket, e: Any) -> None:
    p = m.pending
    if p is not None:
        if p.quantity is not None:
            m.quantity = p.quantity
        m.pending = None


def _min_reconcile(m: BareTicket, e: Reconciled) -> None:
    for f in e.fills:
        if f.fill_id not in m.fill_ids:
            _min_fill(m, f)


def _reconciles_to(state: str) -> Callable[[Any, Any], bool]:
    def guard(m: Any, e: Any) -> bool:
        return _min_reconciled(m, e) == state

    return guard


#: Minimal guards over (model, event): the same arithmetic as the project's.
_MIN_GUARDS: dict[str, Callable[[Any, Any], bool]] = {
    "is_duplicate_fill": lambda m, e: e.fill_id in m.fill_ids,
    # The bench's broker never re-sends a fill id with other numbers nor contradicts itself.
    "is_conflicting_fill": lambda m, e: False,
    "contradicts_itself": lambda m, e: e.status is BrokerStatus.FILLED and _min_filled(m, e) < m.quantity,
    "completes_order": lambda m, e: e.quantity >= m.quantity - m.quantity_filled,
    "is_partial_fill": lambda m, e: e.quantity < m.quantity - m.quantity_filled,
    "has_fills": lambda m, e: m.quantity_filled > 0,
    **{
        f"reconciles_to_{s}": _reconciles_to(s)
        for s in ("submitted", "partially_filled", "filled", "canceled", "rejected", "expired")
    },
}

#: Minimal effects over (model, event): only what keeps the guards' inputs right.
_MIN_EFFECTS: dict[str, Callable[[Any, Any], None]] = {
    "record_submission": lambda m, e: setattr(m, "limit_price", e.limit_price),
    "record_broker_id": lambda m, e: setattr(m, "broker_order_id", m.broker_order_id or e.broker_order_id),
    "count_duplicate_fill": lambda m, e: setattr(m, "duplicates", m.duplicates + 1),
    "flag_conflicting_fill": lambda m, e: setattr(m, "duplicates", m.duplicates + 1),
    "record_fill": _min_fill,
    "record_reason": lambda m, e: setattr(m, "reason", e.reason),
    "stash_update": lambda m, e: setattr(m, "pending", e),
    "apply_update": _min_update,
    "drop_update": lambda m, e: setattr(m, "pending", None),
    "apply_reconciliation": _min_reconcile,
}


def _ed_guard(name: str) -> Callable[[Any], bool]:
    """The guard written directly against ``EventData`` (no wrapper call), as a bare user would."""
    if name == "is_duplicate_fill":
        return lambda ed: ed.args[0].fill_id in ed.model.fill_ids
    if name == "completes_order":
        return lambda ed: ed.args[0].quantity >= ed.model.quantity - ed.model.quantity_filled
    if name == "is_partial_fill":
        return lambda ed: ed.args[0].quantity < ed.model.quantity - ed.model.quantity_filled
    if name == "has_fills":
        return lambda ed: ed.model.quantity_filled > 0
    if name in ("is_conflicting_fill", "contradicts_itself"):
        fn = _MIN_GUARDS[name]
        return lambda ed: fn(ed.model, ed.args[0])
    target = name.removeprefix("reconciles_to_")
    return lambda ed: _min_reconciled(ed.model, ed.args[0]) == target


def _ed_effect(name: str) -> Callable[[Any], None]:
    if name == "record_fill":

        def record_fill(ed: Any) -> None:
            m, e = ed.model, ed.args[0]
            m.fill_ids.add(e.fill_id)
            m.quantity_filled += e.quantity

        return record_fill
    if name == "record_submission":

        def record_submission(ed: Any) -> None:
            ed.model.limit_price = ed.args[0].limit_price

        return record_submission
    if name == "record_broker_id":

        def record_broker_id(ed: Any) -> None:
            m = ed.model
            if m.broker_order_id is None:
                m.broker_order_id = ed.args[0].broker_order_id

        return record_broker_id
    fn = _MIN_EFFECTS[name]
    return lambda ed: fn(ed.model, ed.args[0])


def _bare_machine(spec: MachineSpec) -> Machine:
    transitions = [
        {
            "trigger": row.trigger,
            "source": list(row.source),
            "dest": row.dest,
            "conditions": [_ed_guard(n) for n in row.conditions],
            "unless": [_ed_guard(n) for n in row.unless],
            "before": [_ed_effect(n) for n in row.before],
            "after": [_ed_effect(n) for n in row.after],
        }
        for row in spec.rows
    ]
    return Machine(
        model=None,
        states=list(spec.states),
        initial=spec.initial,
        transitions=transitions,
        auto_transitions=False,
        send_event=True,
    )


_BARE_EVENTS = _bare_machine(TICKET_MACHINE).events

_DictRow = tuple[
    tuple[Callable[[Any, Any], bool], ...],
    tuple[Callable[[Any, Any], bool], ...],
    str | None,
    tuple[Callable[[Any, Any], None], ...],
]


def _dict_table(spec: MachineSpec) -> dict[tuple[str, str], list[_DictRow]]:
    table: dict[tuple[str, str], list[_DictRow]] = {}
    for row in spec.rows:
        entry: _DictRow = (
            tuple(_MIN_GUARDS[n] for n in row.conditions),
            tuple(_MIN_GUARDS[n] for n in row.unless),
            row.dest,
            tuple(_MIN_EFFECTS[n] for n in (*row.before, *row.after)),
        )
        for source in row.source:
            table.setdefault((source, row.trigger), []).append(entry)
    return table


_DICT_TABLE = _dict_table(TICKET_MACHINE)


def dict_apply(m: BareTicket, e: Any) -> str:
    """The ticket table as a dict lookup: first row whose guards hold wins."""
    try:
        rows = _DICT_TABLE[(m.state, e.trigger)]
    except KeyError:
        raise InvalidTransition("DictTicket", "", m.state, e.trigger) from None
    for conds, unless, dest, effects in rows:
        ok = True
        for c in conds:
            if not c(m, e):
                ok = False
                break
        if ok:
            for u in unless:
                if u(m, e):
                    ok = False
                    break
        if ok:
            for f in effects:
                f(m, e)
            if dest is not None:
                m.state = dest
            return m.state
    raise InvalidTransition("DictTicket", "", m.state, e.trigger)


# =============================================================================================
# timed blocks


def _timed(fn: Callable[[], object]) -> float:
    """Seconds spent in ``fn()`` (``perf_counter``), after a full collection."""
    return _timed2(fn)[0]


def _timed2(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds by ``perf_counter``, this process's CPU seconds) spent in ``fn()``, after a full collection.

    The CPU time does not count the time other processes held the CPU: on a shared machine it is
    the steadier of the two, and the bench reports ratios from both.
    """
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    return t1 - t0, time.process_time() - c0


def _run_project_tickets(tickets: list[OrderTicket], events: tuple[TicketEvent, ...]) -> None:
    for t in tickets:
        apply = t.apply
        for e in events:
            apply(e)


def _run_naive_tickets(tickets: list[NaiveTicket], events: tuple[TicketEvent, ...]) -> None:
    for t in tickets:
        apply = t.apply
        for e in events:
            apply(e)


def _run_bare_tickets(tickets: list[BareTicket], events: tuple[TicketEvent, ...]) -> None:
    ev = _BARE_EVENTS
    for t in tickets:
        for e in events:
            ev[e.trigger].trigger(t, e)


def _run_dict_tickets(tickets: list[BareTicket], events: tuple[TicketEvent, ...]) -> None:
    for t in tickets:
        for e in events:
            dict_apply(t, e)


def _tickets_done(tickets: Iterable[Any]) -> bool:
    return all(t.state == FILLED and t.quantity_filled == t.quantity == _TICKET_QTY for t in tickets)


def _condor_inputs(n: int, mode: ExecutionMode, tag: str) -> list[tuple[str, list[tuple[str, TicketEvent]]]]:
    """Per condor: its id and every (order_ref, event) that drives it to committed, pre-built."""
    legs = iron_condor_legs()
    out = []
    per_ticket: list[tuple[str, list[TicketEvent]]]
    if mode is ExecutionMode.COMBO:
        per_ticket = [("C", [Submit(_T0), Acknowledged(_T0, "B-C"), Fill(_T0, "F-C", 1, -_CONDOR_CREDIT)])]
    else:
        per_ticket = [
            (
                f"L{i}",
                [Submit(_T0, limit_price=_LEG_PRICE), Acknowledged(_T0, f"B-{i}"), Fill(_T0, f"F-{i}", 1, _LEG_PRICE)],
            )
            for i in range(len(legs))
        ]
    for k in range(n):
        gid = f"{tag}{k}"
        out.append((gid, [(f"{gid}-{suffix}", e) for suffix, evs in per_ticket for e in evs]))
    return out


def _run_condors(
    inputs: list[tuple[str, list[tuple[str, TicketEvent]]]],
    legs: tuple[Leg, ...],
    mode: ExecutionMode,
    sink: list[AtomicOrderGroup],
) -> None:
    t = _T0
    for gid, evs in inputs:
        g = _new_group(gid, legs, mode)
        g.validate(t)
        g.start(t)
        apply = g.apply_ticket_event
        for ref, e in evs:
            apply(ref, e)
        sink.append(g)


def _idle_group_bytes(n: int, legs: tuple[Leg, ...], naive: bool = False) -> tuple[float, bool]:
    """tracemalloc bytes retained per validated, idle 4-leg legged group (tickets included)."""
    ids = [f"M{k}" for k in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        groups: list[Any] = []
        if naive:
            for gid in ids:
                ng = NaiveGroup(gid, legs, 1, mode=ExecutionMode.LEGGED)
                ng.run_validation(_T0)
                groups.append(ng)
        else:
            for gid in ids:
                g = _new_group(gid, legs, ExecutionMode.LEGGED)
                g.validate(_T0)
                groups.append(g)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    ok = all(g.state == VALIDATED and len(g.entry_tickets) == 4 for g in groups)
    return used / n, ok


class _Block:
    """One implementation's timed work: ``make(tag)`` builds a chunk's inputs (untimed),
    ``run(inputs)`` is timed, ``verify(inputs)`` names the checks it passed; ``units`` per chunk."""

    __slots__ = ("key", "units", "make", "run", "verify")

    def __init__(
        self,
        key: str,
        units: int,
        make: Callable[[str], Any],
        run: Callable[[Any], None],
        verify: Callable[[Any], dict[str, bool]],
    ) -> None:
        self.key, self.units, self.make, self.run, self.verify = key, units, make, run, verify


def _run_blocks(
    blocks: list[_Block], round_no: int, chunks: int, check: Callable[[str, bool], None]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds per unit of every block, per chunk; the blocks alternate (rotated) chunk by chunk."""
    out: dict[str, list[float]] = {b.key: [] for b in blocks}
    cpu: dict[str, list[float]] = {b.key: [] for b in blocks}
    for c in range(chunks):
        for b in _rotated(blocks, round_no + c):
            inputs = b.make(f"{b.key[:3]}{round_no}.{c}")
            wall_s, cpu_s = _timed2(partial(b.run, inputs))
            out[b.key].append(wall_s / b.units)
            cpu[b.key].append(max(cpu_s, 1e-9) / b.units)
            for name, ok in b.verify(inputs).items():
                check(name, ok)
            del inputs
    return out, cpu


def _create_groups(ids: list[str], legs: tuple[Leg, ...], sink: list[AtomicOrderGroup]) -> None:
    for gid in ids:
        g = AtomicOrderGroup(
            gid,
            legs,
            1,
            strategy=StrategyKind.IRON_CONDOR,
            mode=ExecutionMode.LEGGED,
        )
        g.validate(_T0)
        sink.append(g)


def _create_naive_groups(ids: list[str], legs: tuple[Leg, ...], sink: list[NaiveGroup]) -> None:
    for gid in ids:
        ng = NaiveGroup(gid, legs, 1, mode=ExecutionMode.LEGGED)
        ng.run_validation(_T0)
        sink.append(ng)


def _rotated(items: list[Any], k: int) -> list[Any]:
    """``items`` starting at position ``k`` (mod len): each round runs the implementations in another order."""
    k %= len(items)
    return items[k:] + items[:k]


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _machine_facts() -> dict[str, Any]:
    def ver(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "unknown"

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "transitions": ver("transitions"),
        "attrs": ver("attrs"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def run_bench(
    quick: bool = False,
    n: int | None = None,
    rounds: int | None = None,
    *,
    sim: Callable[[], dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure everything in this process and return a JSON-ready dict.

    ``n`` is the number of tickets (and of groups) per timed block (default 2,000; 100 when
    ``quick``) and of condors per mode (``n // 2``). Group creation, project and naive alike,
    uses ``n // 10`` groups per round (the same number for both: the live population drives the
    cyclic-GC cost of the naive design), naive tickets ``n // 4`` (each costs a millisecond to
    build). ``rounds`` repeats everything (default 7; 3 when ``quick``); inside a round the
    compared implementations run in alternating chunks (4 per round; 2 when ``quick``), each chunk
    after a ``gc.collect()``, in a rotated order. Figures are medians over rounds (min/max in
    ``ranges``, every value in ``samples``); the two headline ratios are medians of the per-chunk
    ratios (each pairs two chunks timed moments apart, so load from other processes mostly cancels).
    ``sim``, when given, is called once at the end and its dict merged into the result (the
    simulated-session throughput, ``sim_groups_per_s``). ``progress`` receives one line per phase.
    """
    n = n if n is not None else (100 if quick else 2_000)
    rounds = rounds if rounds is not None else (3 if quick else 7)
    chunks = 2 if quick else 4
    if n < 1 or rounds < 1:
        raise ValueError(f"n={n}, rounds={rounds}: both must be >= 1")
    n_groups = max(n // 10, 1)
    n_condor = max(n // 2, 1)
    n_naive_tickets = max(n // 4, 1)
    n_mem = 200 if quick else 2_000
    say = progress or (lambda _msg: None)
    legs = iron_condor_legs()
    events = _ticket_lifecycle()
    n_events = len(events)
    samples: dict[str, list[float]] = {}
    checks: dict[str, bool] = {}

    def add(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    def check(name: str, ok: bool) -> None:
        checks[name] = checks.get(name, True) and ok

    wall = time.perf_counter()
    leg = legs[0]
    per_chunk = max(n // chunks, 1)
    groups_per_chunk = max(n_groups // chunks, 1)
    naive_tickets_per_chunk = max(n_naive_tickets // chunks, 1)

    def groups_ok(name: str) -> Callable[[Any], dict[str, bool]]:
        return lambda st: {name: all(g.state == VALIDATED and len(g.entry_tickets) == 4 for g in st[1])}

    def tickets_ok(name: str, audited: bool = False) -> Callable[[Any], dict[str, bool]]:
        def verify(tickets: list[Any]) -> dict[str, bool]:
            out = {f"{name}_tickets_filled": _tickets_done(tickets)}
            if audited:
                out[f"{name}_tickets_audited"] = all(len(t.order_events) == n_events for t in tickets)
            return out

        return verify

    group_blocks = [
        _Block(
            "group_create_us",
            groups_per_chunk,
            lambda tag: ([f"{tag}-{k}" for k in range(groups_per_chunk)], []),
            lambda st: _create_groups(st[0], legs, st[1]),
            groups_ok("groups_validated_with_4_tickets"),
        ),
        _Block(
            "naive_group_create_us",
            groups_per_chunk,
            lambda tag: ([f"{tag}-{k}" for k in range(groups_per_chunk)], []),
            lambda st: _create_naive_groups(st[0], legs, st[1]),
            groups_ok("naive_groups_validated_with_4_tickets"),
        ),
    ]
    ticket_blocks = [
        _Block(
            "ticket_events_per_s",
            per_chunk * n_events,
            lambda tag: [OrderTicket(f"{tag}-{k}", (leg,), _TICKET_QTY) for k in range(per_chunk)],
            partial(_run_project_tickets, events=events),
            tickets_ok("project", audited=True),
        ),
        _Block(
            "bare_transitions_events_per_s",
            per_chunk * n_events,
            lambda tag: [BareTicket(_TICKET_QTY) for _ in range(per_chunk)],
            partial(_run_bare_tickets, events=events),
            tickets_ok("bare"),
        ),
        _Block(
            "naive_ticket_events_per_s",
            naive_tickets_per_chunk * n_events,
            lambda tag: [NaiveTicket(f"{tag}-{k}", (leg,), _TICKET_QTY) for k in range(naive_tickets_per_chunk)],
            partial(_run_naive_tickets, events=events),
            tickets_ok("naive", audited=True),
        ),
        _Block(
            "dict_ticket_events_per_s",
            per_chunk * n_events,
            lambda tag: [BareTicket(_TICKET_QTY) for _ in range(per_chunk)],
            partial(_run_dict_tickets, events=events),
            tickets_ok("dict"),
        ),
    ]

    for r in range(rounds):
        say(f"round {r + 1}/{rounds}: group creation")
        spu, cpu = _run_blocks(group_blocks, r, chunks, check)
        add("group_create_us", statistics.fmean(spu["group_create_us"]) * 1e6)
        add("naive_group_create_us", statistics.fmean(spu["naive_group_create_us"]) * 1e6)
        for mine, naive in zip(spu["group_create_us"], spu["naive_group_create_us"], strict=True):
            add("group_create_speedup", naive / mine)
        for mine, naive in zip(cpu["group_create_us"], cpu["naive_group_create_us"], strict=True):
            add("group_create_speedup_cpu", naive / mine)

        say(f"round {r + 1}/{rounds}: ticket lifecycles")
        spu, cpu = _run_blocks(ticket_blocks, r, chunks, check)
        for block in ticket_blocks:
            add(block.key, 1.0 / statistics.fmean(spu[block.key]))
        for mine, bare in zip(spu["ticket_events_per_s"], spu["bare_transitions_events_per_s"], strict=True):
            add("ticket_vs_bare_ratio", bare / mine)
        for mine, bare in zip(cpu["ticket_events_per_s"], cpu["bare_transitions_events_per_s"], strict=True):
            add("ticket_vs_bare_ratio_cpu", bare / mine)

        say(f"round {r + 1}/{rounds}: condor lifecycles")
        for mode, key in (
            (ExecutionMode.LEGGED, "condor_lifecycle_us"),
            (ExecutionMode.COMBO, "condor_lifecycle_combo_us"),
        ):
            inputs = _condor_inputs(n_condor, mode, f"C{r}{mode.value[0]}-")
            done: list[AtomicOrderGroup] = []
            add(key, _timed(partial(_run_condors, inputs, legs, mode, done)) / n_condor * 1e6)
            want_tickets = 4 if mode is ExecutionMode.LEGGED else 1
            check(
                f"condors_{mode.value}_committed",
                len(done) == n_condor
                and all(
                    g.state == COMMITTED
                    and len(g.tickets) == want_tickets
                    and all(t.state == FILLED for t in g.tickets)
                    and g.ledger.positions() == g.targets
                    for g in done
                ),
            )
            del done, inputs

    say("memory")
    idle, idle_ok = _idle_group_bytes(n_mem, legs)
    check("idle_groups_validated", idle_ok)
    naive_idle, naive_idle_ok = _idle_group_bytes(max(n_mem // 10, 1), legs, naive=True)
    check("naive_idle_groups_validated", naive_idle_ok)

    result: dict[str, Any] = {name: round(_median(vals), 3) for name, vals in samples.items()}
    result["idle_group_bytes"] = round(idle, 1)
    result["naive_idle_group_bytes"] = round(naive_idle, 1)
    result["ticket_us_per_event"] = round(1e6 / result["ticket_events_per_s"], 3)
    result["bare_transitions_us_per_event"] = round(1e6 / result["bare_transitions_events_per_s"], 3)
    # ticket_vs_bare_ratio and group_create_speedup: medians of the per-round (paired) ratios
    # (``*_cpu``: the same pairs timed by this process's CPU time, immune to other processes' load)
    for key in ("ticket_vs_bare_ratio", "ticket_vs_bare_ratio_cpu"):
        result[key] = round(result[key], 3)
    for key in ("group_create_speedup", "group_create_speedup_cpu"):
        result[key] = round(result[key], 1)
    result["dict_ratio"] = round(result["dict_ticket_events_per_s"] / result["ticket_events_per_s"], 2)
    result["naive_ticket_vs_ticket_ratio"] = round(
        result["naive_ticket_events_per_s"] / result["ticket_events_per_s"], 3
    )
    result["ranges"] = {name: [round(min(v), 3), round(max(v), 3)] for name, v in samples.items()}
    result["samples"] = {name: [round(x, 3) for x in v] for name, v in samples.items()}

    # ---- HOOK: simulation throughput --------------------------------------------------------------
    # The lead's CLI passes ``sim`` (a simulated hostile session) returning e.g.
    # {"sim_groups_per_s": ...}; it is merged here, before the targets are evaluated.
    if sim is not None:
        say("simulation")
        result.update(sim())
    # -----------------------------------------------------------------------------------------------

    result["targets_met"] = {name: _meets(result.get(key), op, limit) for name, (key, op, limit) in TARGETS.items()}
    result["checks"] = checks
    result["checks_ok"] = all(checks.values())
    result["params"] = {
        "quick": quick,
        "n": n,
        "n_groups_per_round": n_groups,
        "n_naive_tickets": n_naive_tickets,
        "n_condors": n_condor,
        "n_memory_groups": n_mem,
        "rounds": rounds,
        "chunks_per_round": chunks,
        "events_per_ticket": n_events,
        "gc_enabled_while_timing": gc.isenabled(),
        "statistic": "median over rounds",
    }
    result["machine"] = _machine_facts()
    result["wall_s"] = round(time.perf_counter() - wall, 2)
    return result


def _meets(value: Any, op: str, limit: float) -> bool:
    if not isinstance(value, (int, float)):
        return False
    return value >= limit if op == ">=" else value < limit


def to_json(result: dict[str, Any]) -> str:
    """The result as indented JSON (keys sorted), ending with a newline."""
    return json.dumps(result, indent=2, sort_keys=True) + "\n"


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("group_create_us", "us", "create + validate a 4-leg legged condor (4 tickets)"),
    ("naive_group_create_us", "us", "same, one transitions.Machine per group and ticket"),
    ("ticket_events_per_s", "ev/s", "OrderTicket.apply, submit/ack/3 partial/fill"),
    ("bare_transitions_events_per_s", "ev/s", "same table on bare transitions (static pattern)"),
    ("naive_ticket_events_per_s", "ev/s", "same table, Machine per ticket, model methods"),
    ("dict_ticket_events_per_s", "ev/s", "same table as a dict lookup (pure Python limit)"),
    ("condor_lifecycle_us", "us", "legged condor: create -> committed (12 ticket events)"),
    ("condor_lifecycle_combo_us", "us", "combo condor: create -> committed (3 ticket events)"),
    ("idle_group_bytes", "B", "tracemalloc per idle validated legged group + tickets"),
    ("naive_idle_group_bytes", "B", "same, naive machines"),
    ("sim_groups_per_s", "grp/s", "simulated hostile session"),
    ("sim_groups_per_s_journal_off", "grp/s", "journal overhead: simulated hostile session, no journal"),
    ("sim_groups_per_s_journal_normal", "grp/s", "  same session, journal sync=normal (survives a crash)"),
    ("sim_groups_per_s_journal_full", "grp/s", "  same session, journal sync=full (fsync: survives power loss)"),
    ("emulator_groups_per_s_journal_off", "grp/s", "journal overhead: TastyTrade client over HTTP, no journal"),
    ("emulator_groups_per_s_journal_normal", "grp/s", "  same session, journal sync=normal"),
    ("emulator_groups_per_s_journal_full", "grp/s", "  same session, journal sync=full"),
    ("tastytrade_submit_ms_dry_run_off", "ms", "TastyTrade combo submit over HTTP (emulator), no dry run"),
    ("tastytrade_submit_ms_dry_run_on", "ms", "  same, dry run first (dry_run_before_submit)"),
    ("tastytrade_dry_run_cost_ms", "ms", "  the dry run's cost per order"),
    ("quote_requests_per_tick_1", "req", "GET /market-data/by-type per pricing tick, 1 open group"),
    ("quote_requests_per_tick_10", "req", "  10 open groups"),
    ("quote_requests_per_tick_100", "req", "  100 open groups (quote_legs_per_tick_100 legs)"),
    ("reject_to_cancel_virtual_ms_p50_streamer", "ms", "broker reject -> our cancel at the emulator, streamer"),
    ("reject_to_cancel_virtual_ms_p99_streamer", "ms", "  p99 (virtual time; wall: reject_to_cancel_wall_ms_*)"),
    ("reject_to_cancel_virtual_ms_p50_polling", "ms", "  same, polling every 1 s, p50"),
    ("reject_to_cancel_virtual_ms_p99_polling", "ms", "  polling, p99"),
    ("rest_requests_per_tick_1_streamer_on", "req", "REST requests per executor tick, 1 open group, streamer"),
    ("rest_requests_per_tick_1_streamer_off", "req", "  same, polling only"),
    ("rest_requests_per_tick_10_streamer_on", "req", "  10 open groups, streamer"),
    ("rest_requests_per_tick_10_streamer_off", "req", "  10 open groups, polling only"),
    ("rest_requests_per_tick_100_streamer_on", "req", "  100 open groups, streamer"),
    ("rest_requests_per_tick_100_streamer_off", "req", "  100 open groups, polling only"),
    ("executor_requests_per_tick_1_streamer_on", "req", "whole executor tick (polls, quotes, reprices), 1 group, "
     "streamer"),
    ("executor_requests_per_tick_1_streamer_off", "req", "  same, polling only"),
    ("executor_requests_per_tick_10_streamer_on", "req", "  10 working groups, streamer"),
    ("executor_requests_per_tick_10_streamer_off", "req", "  10 working groups, polling only"),
    ("executor_requests_per_tick_100_streamer_on", "req", "  100 working groups, streamer"),
    ("executor_requests_per_tick_100_streamer_off", "req", "  100 working groups, polling only"),
    ("live_reject_to_cancel_wall_ms_p50_streamer", "ms", "live loop (wall clock): reject -> our cancel, streamer"),
    ("live_reject_to_cancel_wall_ms_p99_streamer", "ms", "  p99"),
    ("live_reject_to_cancel_wall_ms_p50_polling", "ms", "  same, polling every 1 s, p50"),
    ("live_reject_to_cancel_wall_ms_p99_polling", "ms", "  polling, p99"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_report(result: dict[str, Any]) -> str:
    """A plain-text report: figures (median and range), ratios against targets, checks, machine."""
    ranges = result.get("ranges", {})
    lines = ["atomic-orders bench", ""]
    lines.append(f"{'figure':<32} {'median':>12} {'unit':<6} {'range (min-max)':>24}  what")
    lines.append("-" * 120)
    for key, unit, what in _ROWS:
        if key not in result:
            continue
        rng = ranges.get(key)
        rtext = f"{_fmt(rng[0])} - {_fmt(rng[1])}" if rng else ""
        lines.append(f"{key:<32} {_fmt(result[key]):>12} {unit:<6} {rtext:>24}  {what}")
    lines += ["", f"{'ratio':<32} {'value':>12} {'by CPU time':>12}  target"]
    lines.append("-" * 80)
    by_key = {key: (name, op, limit) for name, (key, op, limit) in TARGETS.items()}
    for key in ("group_create_speedup", "ticket_vs_bare_ratio", "dict_ratio", "naive_ticket_vs_ticket_ratio"):
        if key not in result:
            continue
        target = ""
        if key in by_key:
            name, op, limit = by_key[key]
            met = result.get("targets_met", {}).get(name)
            target = f"{op} {_fmt(limit)}  {'MET' if met else 'MISSED'}"
        cpu = _fmt(result[f"{key}_cpu"]) if f"{key}_cpu" in result else ""
        lines.append(f"{key:<32} {_fmt(result[key]):>12} {cpu:>12}  {target}")
    mem_met = result.get("targets_met", {}).get("idle_group_under_8192_bytes")
    if "idle_group_bytes" in result:
        lines.append(
            f"{'idle_group_bytes':<32} {_fmt(result['idle_group_bytes']):>12} {'':>12}  < 8192  "
            f"{'MET' if mem_met else 'MISSED'}"
        )
    if "scaling" in result:
        from atomic_orders.simulator.cli.scaling import format_scaling

        lines += ["", format_scaling(result["scaling"]).rstrip("\n")]
    if "sweep" in result:
        from atomic_orders.simulator.sweep.throughput import format_throughput

        lines += ["", format_throughput(result["sweep"])]
    if "check" in result:
        from atomic_orders.simulator.cli.check import format_check_figures

        lines += ["", format_check_figures(result["check"])]
    checks = result.get("checks", {})
    failed = [k for k, ok in checks.items() if not ok]
    lines += [
        "",
        "ratios: medians of per-chunk pairs timed moments apart; 'by CPU time' uses this process's CPU time",
        f"checks: {len(checks) - len(failed)}/{len(checks)} passed" + (f"; FAILED: {failed}" if failed else ""),
    ]
    params = result.get("params", {})
    m = result.get("machine", {})
    lines.append(
        f"params: n={params.get('n')} rounds={params.get('rounds')} quick={params.get('quick')} "
        f"chunks={params.get('chunks_per_round')} (groups/round {params.get('n_groups_per_round')}, "
        f"naive tickets {params.get('n_naive_tickets')}, condors {params.get('n_condors')}, "
        f"memory groups {params.get('n_memory_groups')}); wall {result.get('wall_s')} s"
    )
    lines.append(
        f"machine: Python {m.get('python')} ({m.get('implementation')}), transitions {m.get('transitions')}, "
        f"{m.get('platform')}, {m.get('cpu_count')} CPUs"
    )
    return "\n".join(lines) + "\n"
