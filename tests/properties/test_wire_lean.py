"""The adversary learns LEAN's order events: sequences of ``OrderEvent`` s through the REAL QuantConnect
backend (``backends/quantconnect``: the translator, reconcile from LEAN's tickets, cancel/update
through tickets) inside the LEAN stand-in (:mod:`atomic_orders.simulator.lean`), and a REAL executor (through
the algorithm adapter, as a LEAN algorithm runs it).

The brokerage behind the stand-in is :class:`atomic_orders.simulator.proofs.wire_strategies.InertBroker`: it records
what LEAN sends (orders, cancels, updates) and never emits anything itself. Every order event is
written here and applied by :meth:`LeanStandIn.brokerage_events` (LEAN's transaction handler:
status copied onto the order, every non-zero fill quantity counted by the ticket, ``NONE``
events recorded but never forwarded). The brokerage is consistent (it fills whole units of a
combo on every leg, never more than ordered, never after it closed the order) and adversarial in
reporting:

* leg fills reported on any status - ``PARTIALLY_FILLED``/``FILLED``, ``UPDATE_SUBMITTED`` (an
  update in flight, then ``FILLED`` with fill quantity 0), ``CANCEL_PENDING``, ``CANCELED`` (the
  last fill on the cancel), ``NONE`` (on the ticket, never delivered: recovered only from
  LEAN's record); ``FILLED`` with fill quantity 0 closing a complete leg later;
* per-leg races: a combo's leg events one batch per leg in any order, legs canceled while other
  legs' fills are still to come (late fills flip a ``CANCELED`` leg back), acknowledgements leg by
  leg;
* cancels confirmed at the brokerage (or failing there while it is down: LEAN -8, the status falls
  back silently), updates confirmed or failed ("Brokerage failed to update order"), rejections
  (``INVALID`` on every leg, after fills too), expiries; closed-order refusals (-9, -23) of the
  executor's own cancels/updates come from the stand-in's tickets;
* submissions refused or of unknown outcome with or without the order; the clock.

After every step: invariants 1-7 (``check_step``; the whole-history ones every 10 steps) and the
executor's violation log. At teardown a cooperative brokerage reports everything and drives the
group to a terminal state; then ``check_group(replay=True)`` and the verdict against the truth
generated here (committed => truth == targets, rolled_back => flat, failed => residual == truth).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from atomic_orders.backends.quantconnect import TastytradeIntegrationAdapter
from atomic_orders.fsm import invariants
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import TERMINAL_STATES, AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.lean.algorithm import QCAlgorithm
from atomic_orders.simulator.lean.brokerage import BrokerageOrderEvent, LeanStandIn
from atomic_orders.simulator.lean.lean_types import OrderEvent, OrderStatus
from atomic_orders.simulator.proofs.strategies import execution_policies
from atomic_orders.simulator.proofs.wire_strategies import InertBroker, lean_fill_statuses, submit_plans
from tests.properties._suite import PROFILE, STATS

BUDGET = {"ci": (60, 40), "dev": (40, 40), "deep": (1200, 80)}
EXAMPLES, STEPS = BUDGET[PROFILE]
PICK = st.integers(0, 7)
_CLOSED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.INVALID)


def _fmt(positions: dict[OptionSymbol, int]) -> dict[str, int]:
    return {s.occ: q for s, q in sorted(positions.items(), key=lambda kv: kv[0].occ)}


class WireAlgorithm(QCAlgorithm):
    """A stand-in LEAN algorithm whose only order path is the adapter."""

    policy: ClassVar[ExecutionPolicy] = ExecutionPolicy()
    adapter: TastytradeIntegrationAdapter

    def initialize(self) -> None:
        """Create the adapter once, as a real algorithm does."""
        self.adapter = TastytradeIntegrationAdapter(self, policy=self.policy, log_outcomes=False)

    def on_order_event(self, order_event: OrderEvent) -> None:
        """Forward every LEAN order event to the adapter."""
        self.adapter.on_order_event(order_event)

    def error(self, message: str) -> None:
        """Alerts are expected here (failed groups, refusals): keep them quiet."""


@attrs.define
class Truth:
    """The brokerage's truth about one of our orders (a combo or one leg)."""

    ref: str
    ids: list[int]
    per_unit: dict[int, int]  # LEAN order id -> signed contracts per unit
    symbols: dict[int, OptionSymbol]
    units: int
    status: str = "new"  # new, working, filled, canceled, expired, rejected
    executed: int = 0
    #: Executed leg fills not reported yet: (LEAN order id, signed contracts, price).
    pending: list[tuple[int, int, float]] = attrs.Factory(list)
    reported: dict[int, int] = attrs.Factory(dict)
    cancel_at_broker: bool = False
    updates_at_broker: int = 0

    @property
    def live(self) -> bool:
        return self.status in ("new", "working")

    def leg_quantity(self, oid: int) -> int:
        return abs(self.per_unit[oid]) * self.units


class LeanWire(RuleBasedStateMachine):
    """A LEAN brokerage reporting adversarial order events to the real backend and executor."""

    MODE: ClassVar[ExecutionMode] = ExecutionMode.COMBO

    def __init__(self) -> None:
        super().__init__()
        self.lean: LeanStandIn | None = None
        self.truths: dict[str, Truth] = {}
        self.steps = 0
        self._broken = False
        self._checked = False
        self._seen_violations = 0
        self._cancels_seen = 0
        self._replaces_seen = 0
        self.log: list[str] = []

    # -- set-up -----------------------------------------------------------------------------------

    @initialize(
        kind=st.sampled_from([StrategyKind.IRON_CONDOR, StrategyKind.VERTICAL]),
        quantity=st.integers(1, 5),
        policy=execution_policies(),
        live_mode=st.booleans(),
        plan=st.lists(submit_plans(), max_size=2),
        flaky=st.booleans(),
        patience=st.integers(0, 20),
    )
    def start(self, kind: StrategyKind, quantity: int, policy: ExecutionPolicy, live_mode: bool, plan: list[str],
              flaky: bool, patience: int) -> None:
        """Draw the group and execute it through the adapter inside the LEAN stand-in (``patience``:
        brokerage moves before an order may be rejected or expired)."""
        self.patience = patience
        self.broker = InertBroker()
        self.broker.plan = list(plan)
        self.flaky = flaky
        algo_cls = type("Algo", (WireAlgorithm,), {"policy": policy})
        self.algorithm = algo_cls()
        self.lean = LeanStandIn(self.algorithm, self.broker, live_mode=live_mode)
        m = self.broker.market
        sc, lc, sp, lp = m.strikes_for_iron_condor(0.0, m.default_expiry, 10, 40.0)
        if kind is StrategyKind.IRON_CONDOR:
            legs: tuple[Leg, ...] = (Leg(sc, Side.SELL), Leg(lc, Side.BUY), Leg(sp, Side.SELL), Leg(lp, Side.BUY))
        else:
            legs = (Leg(lc, Side.BUY), Leg(sc, Side.SELL))
        self.kind = kind
        group = AtomicOrderGroup("W1", legs, quantity, strategy=kind, mode=self.MODE,
                                 max_unwind_retries=policy.max_unwind_retries, created_at=self.broker.clock.now())
        self.desc = f"{kind.value} x{quantity} {self.MODE.value} live_mode={live_mode} plan={plan}"
        self._broken = True
        self.group = self.adapter.execute(group)
        self.pump()
        self._broken = False
        STATS["wire lean examples"] += 1
        STATS[f"wire lean examples {kind.value} {self.MODE.value}"] += 1

    # -- helpers ----------------------------------------------------------------------------------

    @property
    def adapter(self) -> TastytradeIntegrationAdapter:
        return self.algorithm.adapter

    @property
    def L(self) -> LeanStandIn:  # noqa: N802
        assert self.lean is not None
        return self.lean

    def _absorb(self) -> None:
        """New orders at the brokerage, and the cancels/updates LEAN sent it since the last look."""
        lean = self.L
        for ref, sim in lean._sim.items():
            if ref in self.truths or ref not in self.broker.received:
                continue
            units = self.broker.received[ref].quantity
            symbols = {oid: lean._option(lean._tickets[oid].symbol) for oid in sim.order_ids}
            self.truths[ref] = Truth(ref, list(sim.order_ids), dict(sim.units), symbols, units,
                                     reported={oid: 0 for oid in sim.order_ids})
        for ref in self.broker.cancels[self._cancels_seen:]:
            t = self.truths.get(ref)
            if t is not None and t.live:
                t.cancel_at_broker = True
        self._cancels_seen = len(self.broker.cancels)
        for ref, _price, _qty in self.broker.replaces[self._replaces_seen:]:
            t = self.truths.get(ref)
            if t is not None and t.live:
                t.updates_at_broker += 1
        self._replaces_seen = len(self.broker.replaces)

    def pump(self) -> None:
        """The adapter's scheduled poll (events are applied as LEAN delivers them)."""
        self._absorb()
        self.adapter.poll()
        self._absorb()

    def _move(self, kind: str) -> None:
        self.steps += 1
        self.log.append(kind)
        STATS[f"wire lean move {kind}"] += 1
        self._broken = True
        self.pump()
        self._broken = False

    def _status(self, oid: int) -> OrderStatus:
        return self.L.tickets[oid].order.status

    def _send(self, events: list[BrokerageOrderEvent]) -> None:
        if events:
            self._broken = True
            self.L.brokerage_events(events)
            self._broken = False

    def _eligible(self, pred: object) -> list[Truth]:
        assert callable(pred)
        return [t for t in self.truths.values() if pred(t)]

    def _has(self, pred: object) -> bool:
        return self.lean is not None and bool(self._eligible(pred))

    def _pick(self, pred: object, pick: int) -> Truth:
        eligible = self._eligible(pred)
        return eligible[pick % len(eligible)]

    @staticmethod
    def _order(ids: list[int], rot: int, rev: bool) -> list[int]:
        ids = ids[rot % len(ids):] + ids[: rot % len(ids)] if ids else ids
        return ids[::-1] if rev else ids

    def active(self) -> bool:
        if not self.group.is_terminal or self.L._requests:
            return True
        return any(t.live or t.pending or t.cancel_at_broker or t.updates_at_broker for t in self.truths.values())

    # -- the brokerage's moves --------------------------------------------------------------------------

    @precondition(lambda self: self._has(lambda t: t.status == "new"))
    @rule(pick=PICK, split=st.booleans(), rot=st.integers(0, 3), rev=st.booleans())
    def ack(self, pick: int, split: bool, rot: int, rev: bool) -> None:
        """The brokerage acknowledges an order: SUBMITTED on every leg (one batch, or leg by leg)."""
        t = self._pick(lambda t: t.status == "new", pick)
        t.status = "working"
        events = [BrokerageOrderEvent(oid, OrderStatus.SUBMITTED) for oid in self._order(t.ids, rot, rev)
                  if self._status(oid) is OrderStatus.NEW]
        for part in ([[e] for e in events] if split else [events]):
            self._send(part)
        self._move("ack")

    @precondition(lambda self: self._has(lambda t: t.status == "working" and t.executed < t.units))
    @rule(pick=PICK, units=st.integers(1, 5), price=st.integers(5, 300), report=st.sampled_from(["now", "later"]))
    def execute(self, pick: int, units: int, price: int, report: str) -> None:
        """The brokerage fills whole units of an order on every leg; reported at once (one batch,
        as LEAN's combo fills) or later (leg by leg, in any order, on any status)."""
        t = self._pick(lambda t: t.status == "working" and t.executed < t.units, pick)
        n = 1 + (units - 1) % (t.units - t.executed)
        t.executed += n
        for i, oid in enumerate(t.ids):
            t.pending.append((oid, t.per_unit[oid] * n, (price + 7 * i) / 100))
        if t.executed == t.units:
            t.status = "filled"
            t.cancel_at_broker = False
        if report == "now":
            self._report(t, list(t.pending), "natural")
        self._move(f"execute {report}")

    def _report(self, t: Truth, items: list[tuple[int, int, float]], how: str) -> None:
        events: list[BrokerageOrderEvent] = []
        for item in items:
            t.pending.remove(item)
            oid, qty, price = item
            t.reported[oid] += qty
            complete = abs(t.reported[oid]) == t.leg_quantity(oid)
            natural = OrderStatus.FILLED if complete else OrderStatus.PARTIALLY_FILLED
            status = natural
            extra: list[BrokerageOrderEvent] = []
            if how == "update_submitted" and t.updates_at_broker:
                t.updates_at_broker -= 1
                status = OrderStatus.UPDATE_SUBMITTED
                extra = [BrokerageOrderEvent(o, OrderStatus.UPDATE_SUBMITTED) for o in t.ids
                         if o != oid and self._status(o) not in _CLOSED]
                if complete:
                    extra.append(BrokerageOrderEvent(oid, OrderStatus.FILLED))
            elif how == "cancel_pending" and self._status(oid) is OrderStatus.CANCEL_PENDING:
                status = OrderStatus.CANCEL_PENDING
            elif how == "canceled" and t.status in ("canceled", "expired"):
                status = OrderStatus.CANCELED
            elif how == "none":
                status = OrderStatus.NONE
            events.append(BrokerageOrderEvent(oid, status, fill_quantity=float(qty), fill_price=price))
            events.extend(extra)
        self._send(events)

    @precondition(lambda self: self._has(lambda t: bool(t.pending)))
    @rule(pick=PICK, which=st.integers(0, 15), how=lean_fill_statuses(), batch=st.booleans(), rot=st.integers(0, 3),
          rev=st.booleans())
    def report(self, pick: int, which: int, how: str, batch: bool, rot: int, rev: bool) -> None:
        """Report executed leg fills: one leg's, or all the order's in one batch in any leg order,
        on the status drawn (when it can carry it; else the natural one)."""
        t = self._pick(lambda t: bool(t.pending), pick)
        if batch:
            order = self._order(t.ids, rot, rev)
            items = sorted(t.pending, key=lambda p: order.index(p[0]))
        else:
            items = [t.pending[which % len(t.pending)]]
        self._report(t, items, how)
        self._move(f"report {how}")

    def _open_complete(self, t: Truth) -> list[int]:
        return [oid for oid in t.ids if abs(t.reported[oid]) == t.leg_quantity(oid)
                and self._status(oid) is not OrderStatus.FILLED]

    @precondition(lambda self: self._has(lambda t: bool(self._open_complete(t))))
    @rule(pick=PICK)
    def close_filled(self, pick: int) -> None:
        """A completely reported leg is closed with FILLED and fill quantity 0."""
        t = self._pick(lambda t: bool(self._open_complete(t)), pick)
        self._send([BrokerageOrderEvent(self._open_complete(t)[0], OrderStatus.FILLED)])
        self._move("filled_zero")

    def _cancel(self, t: Truth, expire: bool, rot: int = 0, rev: bool = False) -> None:
        t.status = "expired" if expire else "canceled"
        t.cancel_at_broker = False
        message = "The order has expired." if expire else ""
        self._send([BrokerageOrderEvent(oid, OrderStatus.CANCELED, message=message)
                    for oid in self._order(t.ids, rot, rev) if self._status(oid) not in _CLOSED])

    @precondition(lambda self: self._has(lambda t: t.cancel_at_broker))
    @rule(pick=PICK, rot=st.integers(0, 3), rev=st.booleans())
    def confirm_cancel(self, pick: int, rot: int, rev: bool) -> None:
        """The brokerage cancels: CANCELED on every open leg (fills still to report come late)."""
        t = self._pick(lambda t: t.cancel_at_broker, pick)
        if t.live:
            self._cancel(t, False, rot, rev)
        t.cancel_at_broker = False
        self._move("cancel_confirm")

    @precondition(lambda self: self._has(lambda t: t.updates_at_broker > 0))
    @rule(pick=PICK, accept=st.booleans())
    def answer_update(self, pick: int, accept: bool) -> None:
        """The brokerage confirms an update (UPDATE_SUBMITTED on every open leg) or fails it."""
        t = self._pick(lambda t: t.updates_at_broker > 0, pick)
        t.updates_at_broker -= 1
        open_ids = [oid for oid in t.ids if self._status(oid) not in _CLOSED]
        if accept:
            self._send([BrokerageOrderEvent(oid, OrderStatus.UPDATE_SUBMITTED) for oid in open_ids])
        else:
            self._send([BrokerageOrderEvent(oid, self._status(oid), message="Brokerage failed to update order: "
                                            "refused") for oid in open_ids[:1]])
        self._move("update_confirm" if accept else "update_fail")

    @precondition(lambda self: self.lean is not None and self.steps >= self.patience and self._has(lambda t: t.live))
    @rule(pick=PICK, how=st.sampled_from(["reject", "expire"]))
    def kill(self, pick: int, how: str) -> None:
        """Reject an order (INVALID on every leg, after fills too) or let it expire."""
        t = self._pick(lambda t: t.live, pick)
        if how == "expire" and t.status == "working":
            self._cancel(t, True)
        else:
            t.status = "rejected"
            t.cancel_at_broker = False
            self._send([BrokerageOrderEvent(oid, OrderStatus.INVALID, message="rejected by the brokerage")
                        for oid in t.ids if self._status(oid) not in _CLOSED])
        self._move(how)

    # -- connection and clock ---------------------------------------------------------------------------

    @precondition(lambda self: self.lean is not None and self.flaky and self.active())
    @rule(down=st.booleans(), outcome=submit_plans())
    def connection(self, down: bool, outcome: str) -> None:
        """The brokerage unreachable for cancels/updates (or back); the next submission's outcome."""
        if down != self.broker.down:
            self.broker.down = down
            self._move("down" if down else "up")
        else:
            self.broker.plan.append(outcome)
            self._move(f"plan {outcome}")

    def _advance(self, seconds: float) -> None:
        self._broken = True
        self.L.run_until(self.L.seconds + seconds)
        self._broken = False

    def _to_next_wakeup(self) -> None:
        now = self.L.seconds
        times = [t for t in (self.L.next_time(),) if t is not None and t > now]
        wake = self.adapter.executor.next_wakeup()
        if wake is not None:
            times.append(self.broker.clock.to_seconds(wake))
        target = min([t for t in times if t > now], default=now + 1.0)
        self._advance(max(target - now, 0.001))

    def _busy(self) -> bool:
        return any(t.status == "new" or t.pending or t.cancel_at_broker or t.updates_at_broker
                   or (t.status == "working" and t.executed < t.units) for t in self.truths.values())

    @precondition(lambda self: self.lean is not None and self.active() and (self.steps % 3 == 0 or not self._busy()))
    @rule(step=st.sampled_from(["wakeup", 1.0, 2.0, 5.0]))
    def tick(self, step: str | float) -> None:
        """Time passes: LEAN processes queued cancel/update requests, the executor's timers run."""
        if step == "wakeup":
            self._to_next_wakeup()
        else:
            assert isinstance(step, float)
            self._advance(step)
        self._move("tick")

    @precondition(lambda self: self.lean is not None and not self.active())
    @rule()
    def idle(self) -> None:
        """Nothing is left to happen."""
        STATS["wire lean idle steps"] += 1

    # -- checks -----------------------------------------------------------------------------------------

    def _violations(self, full: bool) -> list[str]:
        g = self.group
        out = invariants.check_group(g) if full else invariants.check_step(g)
        executor = self.adapter.executor
        new = executor.violations[self._seen_violations:]
        self._seen_violations = len(executor.violations)
        return out + [f"[executor] {v}" for v in new]

    @invariant()
    def invariants_hold(self) -> None:
        """Invariants after every step (the whole-history ones every 10 steps)."""
        if self.lean is None:
            return
        if self._checked:
            STATS["wire lean steps"] += 1
        self._checked = True
        bad = self._violations(full=self.steps % 10 == 0)
        if bad:
            self._broken = True
            raise AssertionError(f"{self.desc}\nmoves: {self.log}\n" + "\n".join(bad))

    def truth_positions(self) -> dict[OptionSymbol, int]:
        net: dict[OptionSymbol, int] = {}
        for t in self.truths.values():
            for oid in t.ids:
                net[t.symbols[oid]] = net.get(t.symbols[oid], 0) + t.per_unit[oid] * t.executed
        return {s: q for s, q in net.items() if q}

    def settle(self, max_rounds: int = 400) -> None:
        """A cooperative brokerage: up, everything reported, updates confirmed, cancels done, orders
        acknowledged and filled, complete legs closed; time to the next wakeup between rounds."""
        self.broker.down = False
        self.broker.plan.clear()
        for _ in range(max_rounds):
            self._absorb()
            if not self.active():
                return
            for t in list(self.truths.values()):
                if t.pending:
                    self._report(t, list(t.pending), "natural")
                while t.updates_at_broker:
                    t.updates_at_broker -= 1
                    self._send([BrokerageOrderEvent(o, OrderStatus.UPDATE_SUBMITTED) for o in t.ids
                                if self._status(o) not in _CLOSED])
                if t.cancel_at_broker:
                    if t.live:
                        self._cancel(t, False)
                    t.cancel_at_broker = False
                if t.status == "new":
                    t.status = "working"
                    self._send([BrokerageOrderEvent(o, OrderStatus.SUBMITTED) for o in t.ids
                                if self._status(o) is OrderStatus.NEW])
                cancel_asked = any(self._status(o) is OrderStatus.CANCEL_PENDING for o in t.ids)
                if t.status == "working" and t.executed < t.units and not cancel_asked:
                    n = t.units - t.executed
                    t.executed = t.units
                    t.status = "filled"
                    fills = [(o, t.per_unit[o] * n, 1.0) for o in t.ids]
                    t.pending.extend(fills)
                    self._report(t, fills, "natural")
                for oid in self._open_complete(t):
                    self._send([BrokerageOrderEvent(oid, OrderStatus.FILLED)])
            self.pump()
            if self.active():
                self._to_next_wakeup()
                self.pump()
        raise AssertionError(f"{self.desc}: no settlement after {max_rounds} cooperative rounds "
                             f"(group {self.group.state}); moves: {self.log}")

    def teardown(self) -> None:
        """Settle cooperatively; then everything, and the verdict against the brokerage's truth."""
        if self.lean is None or self._broken:
            return
        g = self.group
        self._broken = True
        self.settle()
        bad = self._violations(full=False)
        bad += [f"[final] {v}" for v in invariants.check_group(g, replay=True)]
        if g.state not in TERMINAL_STATES:
            bad.append(f"[1 terminal_settled] not terminal after the cooperative drive ({g.state})")
        truth = self.truth_positions()
        bad += invariants.verdict_against(g, truth)
        if bad:
            raise AssertionError(f"{self.desc} (after the cooperative drive)\nmoves: {self.log}\n" + "\n".join(bad))
        self._broken = False
        STATS[f"wire lean settled {g.state}"] += 1


class ComboLean(LeanWire):
    """Combos: N LEAN orders (one per leg) sharing a GroupOrderManager."""

    MODE = ExecutionMode.COMBO


class LeggedLean(LeanWire):
    """One LEAN order per leg."""

    MODE = ExecutionMode.LEGGED


_SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS)
ComboLean.TestCase.settings = _SETTINGS
LeggedLean.TestCase.settings = _SETTINGS
TestLeanWireCombo = ComboLean.TestCase
TestLeanWireLegged = LeggedLean.TestCase
