"""The adversarial broker as a Hypothesis ``RuleBasedStateMachine``, against a REAL executor.

Each example draws one group (iron condor or vertical, quantity 1-10, combo or legged, per
subclass), an execution policy with short timers and the outcome of the first submissions, then
plays up to ``stateful_step_count`` broker moves through :class:`atomic_orders.simulator.proofs.exhaustive.World`:
a :class:`~atomic_orders.backends.scripted.ScriptedBackend` whose broker is this machine. The broker keeps a
truth model per order (status, filled quantity, fill ids, outstanding cancel/update requests)
and only does what a real broker can do from that truth (including rejecting a partly filled
order); what is adversarial is the delivery (held back, released out of order, delivered twice),
the timing (clock jumps that fire price steps, deadlines, ack/pending timeouts, unwind retries),
the connection (outages: requests and reconciliation fail; submissions of unknown outcome with or
without the order reaching the broker) and two deliberate contradictions: an over-fill (which
must be flagged) and a FILLED record whose
fills were never sent nor listed (which must fail the group with the broker's count, invariant 7).

After every step: invariants 1-7 and the executor's own violation log (:meth:`World.check_step`;
invariant 5 as an incremental replay into a shadow group), plus invariant 4's "an event the table
refuses raises and changes nothing" (:meth:`World.probe_illegal`). At teardown: a cooperative
broker drives the group to a terminal state, checking at every moment of the drive, and then
everything is checked again with a full replay, including the broker's truth against the group's
ledger (:meth:`World.check_final`).

Budget: the active Hypothesis profile (``tests/properties/conftest.py``). Counters of what ran
(examples, steps, moves, states reached, settled outcomes) are printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.simulator.proofs.exhaustive import Action, BrokerOrder, World
from atomic_orders.simulator.proofs.strategies import GroupSpec, execution_policies, group_specs, submit_outcomes
from tests.properties._suite import STATS

#: An index into the eligible orders (taken modulo their number; shrinks toward the first one).
PICK = st.integers(0, 7)
HOLD = st.booleans()


def _pending(o: BrokerOrder) -> bool:
    return o.status == "pending"


def _partial_ok(o: BrokerOrder) -> bool:
    return o.status == "working" and o.remaining >= 2


def _late_ok(o: BrokerOrder) -> bool:
    return o.status in ("canceled", "expired") and o.remaining > 0


def _rejectable(o: BrokerOrder) -> bool:
    return o.live and o.remaining > 0  # a partly filled order may be rejected too (it keeps its fills)


def _unwind_rejectable(o: BrokerOrder) -> bool:
    return o.unwind and o.live and not o.filled


def _unlistable(o: BrokerOrder) -> bool:
    return o.status == "working" and o.remaining > 0


def _cancel_pending(o: BrokerOrder) -> bool:
    return o.cancel_pending


def _live(o: BrokerOrder) -> bool:
    return o.live


def _update_pending(o: BrokerOrder) -> bool:
    return o.updates_pending > 0


def _overfillable(o: BrokerOrder) -> bool:
    return o.status in ("working", "filled") and not o.overfilled


def _has(pred: Callable[[BrokerOrder], bool]) -> Callable[[AdversarialBroker], bool]:
    def check(self: AdversarialBroker) -> bool:
        return self.world is not None and any(pred(o) for o in self.world.orders)

    return check


class AdversarialBroker(RuleBasedStateMachine):
    """Plays a consistent but adversarial broker against one group and a real executor."""

    #: Fixed by the concrete subclasses (None: drawn).
    MODE: ClassVar[ExecutionMode | None] = None
    KINDS: ClassVar[tuple[StrategyKind, ...]] = (StrategyKind.IRON_CONDOR, StrategyKind.VERTICAL)

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.spec: GroupSpec | None = None
        self._broken = False
        self._checked = False
        self.steps = 0
        self.patience = 0
        self.flaky = False
        self._mark: tuple[int, ...] = ()
        #: (ticket state, purpose, filled, group state, trigger) already probed in this example.
        self._probed: set[tuple[object, ...]] = set()

    # -- set-up ---------------------------------------------------------------------------------

    @initialize(
        data=st.data(),
        policy=execution_policies(),
        plan=st.lists(submit_outcomes(accept_weight=3), max_size=2),
        patience=st.integers(0, 25),
        flaky=st.booleans(),
    )
    def start(self, data: st.DataObject, policy: ExecutionPolicy, plan: list[str], patience: int,
              flaky: bool) -> None:
        """Draw the group and execute it (its first submissions follow ``plan``).

        The example's temperament: ``patience`` broker moves before entry orders may be completed,
        killed or surprised (full fills, rejects, expiries, late fills, the over-fill), so examples
        reach deep into execution as well as end early; only a ``flaky`` broker has outages and
        refused or unknown submissions after the first ones.
        """
        spec = data.draw(group_specs(kinds=self.KINDS, mode=self.MODE), label="group")
        self.spec = spec
        self.patience, self.flaky = patience, flaky
        self._broken = True
        self.world = spec.world(policy=policy, plan=plan)
        self._broken = False
        STATS["stateful examples"] += 1
        STATS[f"stateful examples {spec.kind.value} {spec.mode.value}"] += 1

    # -- helpers --------------------------------------------------------------------------------

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    def _act(self, action: Action) -> None:
        self.steps += 1
        self._broken = True
        assert self.w.apply(action), f"the broker model refused {action} although its precondition held"
        self._broken = False
        STATS[f"stateful move {action.kind}"] += 1

    def active(self) -> bool:
        """Something can still happen: the group is not terminal, or the broker still has work
        (a live order, an unanswered request, a held event)."""
        w = self.w
        if not w.group.is_terminal or w.held:
            return True
        return any(o.live or o.cancel_pending or o.updates_pending for o in w.orders)

    def _pick(self, pred: Callable[[BrokerOrder], bool], pick: int) -> int:
        eligible = [i for i, o in enumerate(self.w.orders) if pred(o)]
        return eligible[pick % len(eligible)]

    def _on_order(self, kind: str, pred: Callable[[BrokerOrder], bool], pick: int, hold: bool = False,
                  qty: int = 0) -> None:
        self._act(Action(kind, self._pick(pred, pick), qty, hold))

    # -- broker moves on orders -----------------------------------------------------------------

    @precondition(_has(_pending))
    @rule(pick=PICK, hold=HOLD)
    def ack(self, pick: int, hold: bool) -> None:
        """Acknowledge a received order (held: a fill may overtake the ack)."""
        self._on_order("ack", _pending, pick, hold)

    @precondition(_has(_partial_ok))
    @rule(pick=PICK, hold=HOLD, size=st.integers(0, 20))
    def partial_fill(self, pick: int, hold: bool, size: int) -> None:
        """Fill part of a working order."""
        i = self._pick(_partial_ok, pick)
        remaining = self.w.orders[i].remaining
        self._act(Action("fill", i, 1 + size % (remaining - 1), hold))

    @precondition(lambda self: self.world is not None and _has(self._completable)(self))
    @rule(pick=PICK, hold=HOLD)
    def full_fill(self, pick: int, hold: bool) -> None:
        """Fill everything a working order has left (an entry order only after the example's
        ``patience``: completing the entry early ends most of the story)."""
        self._on_order("fill", self._completable, pick, hold)

    def _completable(self, o: BrokerOrder) -> bool:
        return o.status == "working" and (o.unwind or self.steps >= self.patience)

    @precondition(_has(_cancel_pending))
    @rule(pick=PICK, hold=HOLD, confirm=st.booleans())
    def answer_cancel(self, pick: int, hold: bool, confirm: bool) -> None:
        """Confirm a requested cancel, or refuse it (the order keeps working, or already ended)."""
        i = self._pick(_cancel_pending, pick)
        self._act(Action("cancel_confirm" if confirm and self.w.orders[i].live else "cancel_reject", i, hold=hold))

    @precondition(_has(_update_pending))
    @rule(pick=PICK, hold=HOLD, accept=st.booleans())
    def answer_update(self, pick: int, hold: bool, accept: bool) -> None:
        """Confirm or refuse a price update (replace)."""
        self._on_order("update_confirm" if accept else "update_reject", _update_pending, pick, hold)

    @precondition(lambda self: self.world is not None and self.steps >= self.patience and _has(_rejectable)(self))
    @rule(pick=PICK, hold=HOLD, how=st.sampled_from(["reject", "reject_unwind", "expire"]))
    def kill(self, pick: int, hold: bool, how: str) -> None:
        """End an order without (more) fills: reject one that has not filled (an unwind first, when
        asked: that drives retries and, past the limit, ``failed``), or let one expire.

        Only after the example's drawn ``patience`` (so examples also get deep into executing).
        """
        if how == "reject_unwind" and _has(_unwind_rejectable)(self):
            self._on_order("reject", _unwind_rejectable, pick, hold)
        elif how == "expire":
            self._on_order("expire", _live, pick, hold)
        else:
            self._on_order("reject", _rejectable, pick, hold)

    @precondition(lambda self: self.world is not None and self.steps >= self.patience
                  and (_has(_late_ok)(self) or (self.world.overfills == 0 and _has(_overfillable)(self))))
    @rule(pick=PICK, hold=HOLD, size=st.integers(0, 20), over=st.booleans())
    def surprise_fill(self, pick: int, hold: bool, size: int, over: bool) -> None:
        """A late fill (executed before a cancel/expiry took effect, reported after it), or the one
        deliberate contradiction: an over-fill of one unit (which the machines must flag)."""
        can_over = self.w.overfills == 0 and _has(_overfillable)(self)
        if (over and can_over) or not _has(_late_ok)(self):
            self._on_order("overfill", _overfillable, pick, hold)
        else:
            i = self._pick(_late_ok, pick)
            self._act(Action("late_fill", i, 1 + size % self.w.orders[i].remaining, hold))

    @precondition(lambda self: self.world is not None and self.steps >= self.patience
                  and self.world.contradictions == 0 and _has(_unlistable)(self))
    @rule(pick=PICK)
    def contradict(self, pick: int) -> None:
        """The broker's record contradicts itself: it fills what remains of a working order, says
        FILLED with the full count, and never sends nor lists that fill. No group may settle on
        our ledger alone: it must fail with the residual the broker counts (invariant 7)."""
        self._on_order("fill_unlisted", _unlistable, pick)

    # -- delivery, clock, connection ------------------------------------------------------------

    @precondition(lambda self: self.world is not None and bool(self.world.held))
    @rule(pick=st.integers(0, 30), everything=st.booleans())
    def release(self, pick: int, everything: bool) -> None:
        """Deliver one held event (any of them: out of order), or every held event newest first."""
        if everything:
            while self.w.held:
                self._act(Action("release", len(self.w.held) - 1))
        else:
            self._act(Action("release", pick % len(self.w.held)))

    @precondition(lambda self: self.world is not None and bool(self.world.delivered) and self.active()
                  and self.steps % 2 == 0)
    @rule(pick=st.integers(0, 30), fills_only=st.booleans())
    def duplicate_delivery(self, pick: int, fills_only: bool) -> None:
        """Deliver a past event again: a fill (same fill id) or anything (ack, cancel, reject...)."""
        delivered = self.w.delivered
        fills = [j for j, be in enumerate(delivered) if be.event.trigger == "fill"]
        choices = fills if fills_only and fills else list(range(len(delivered)))
        self._act(Action("redeliver", choices[pick % len(choices)]))

    @precondition(lambda self: self.world is not None and self.active())
    @rule(step=st.sampled_from(["wakeup", 1.0, 2.0, 5.0, 10.0, 30.0]))
    def clock(self, step: str | float) -> None:
        """Let time pass (to the executor's next timer, or by seconds): price steps, deadlines,
        ack/pending timeouts, reconciliation retries, unwind timeouts and retries.

        Always possible while something can still happen: every example can make progress.
        """
        if step == "wakeup":
            self._act(Action("tick_next"))
        else:
            self._act(Action("tick", seconds=float(step)))

    @precondition(lambda self: self.world is not None and self.flaky and self.active())
    @rule(down=st.booleans(), outcome=submit_outcomes())
    def connection(self, down: bool, outcome: str) -> None:
        """Take the connection down (requests and reconciliation fail) or bring it back; or decide
        what happens to the next submission (refused, unknown with or without the order).

        Only in examples drawn ``flaky``.
        """
        if down != self.w.backend.down:
            self._act(Action("down" if down else "up"))
        elif len(self.w.plan) < 2:
            self._act(Action("plan", outcome=outcome))

    @precondition(lambda self: self.world is not None and not self.active())
    @rule()
    def idle(self) -> None:
        """Nothing is left to happen (the group settled, the broker holds nothing): wait."""
        STATS["stateful idle steps"] += 1

    # -- checks ---------------------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        """Invariants 1-6 (incremental replay) and the executor's violation log, after every step.

        Invariant 4's second half (an event the table refuses raises and changes nothing) is
        probed on every ticket for every refused trigger, once per new combination of ticket
        state and group state in the example.
        """
        if self.world is None:
            return
        if self._checked:
            STATS["stateful steps"] += 1  # the first check follows the set-up, every later one a step
        self._checked = True
        w = self.world
        mark = (len(w.group.audit), sum(len(t.order_events) for t in w.group.tickets),
                len(w.executor.violations), len(w.delivered), len(w.group.anomalies))
        if mark == self._mark:
            return  # nothing happened since the last check (an idle step)
        self._mark = mark
        bad = w.check_step() or w.probe_illegal(self._probed)
        if bad:
            self._broken = True
            raise AssertionError(f"{self.spec}\n" + "\n".join(bad))

    def teardown(self) -> None:
        """A cooperative broker settles the group; then everything is checked once more."""
        if self.world is None or self._broken:
            return
        g = self.world.group
        for state in {rec.dest for rec in g.audit} | {r.dest for t in g.tickets for r in t.order_events}:
            STATS[f"stateful examples reaching {state}"] += 1
        self._broken = True
        self.world.settle()
        bad = self.world.check_final()
        if bad:
            raise AssertionError(f"{self.spec} (after the cooperative drive)\n" + "\n".join(bad))
        self._broken = False
        STATS[f"settled {self.world.group.state}"] += 1
        if self.world.group.flagged:
            STATS["settled flagged (over-fill or late fill)"] += 1


class ComboCondor(AdversarialBroker):
    """Iron condors as one combo order."""

    MODE = ExecutionMode.COMBO
    KINDS = (StrategyKind.IRON_CONDOR,)


class LeggedCondor(AdversarialBroker):
    """Iron condors leg by leg (longs first, or not)."""

    MODE = ExecutionMode.LEGGED
    KINDS = (StrategyKind.IRON_CONDOR,)


class ComboVertical(AdversarialBroker):
    """Verticals as one combo order."""

    MODE = ExecutionMode.COMBO
    KINDS = (StrategyKind.VERTICAL,)


class LeggedVertical(AdversarialBroker):
    """Verticals leg by leg."""

    MODE = ExecutionMode.LEGGED
    KINDS = (StrategyKind.VERTICAL,)


MACHINES: tuple[type[AdversarialBroker], ...] = (ComboCondor, LeggedCondor, ComboVertical, LeggedVertical)
