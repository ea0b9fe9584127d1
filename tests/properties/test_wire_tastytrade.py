"""The adversary learns the TastyTrade wire: order JSON as the REST API sends it, through the REAL
backend (``backends/tastytrade``: parsing, the poll monitor, reconcile, cancel/replace) and a REAL
executor.

The broker is :class:`atomic_orders.simulator.proofs.wire_strategies.TtAccount` behind an in-process fake of ONLY the
HTTP client object the backend talks to (:class:`~atomic_orders.simulator.proofs.wire_strategies.WireTastytradeClient`;
the emulator cannot be told to serve arbitrary order JSON, it renders its own orders from the
simulator). Each example draws a group (iron condor or vertical, combo or legged, 1-6 units), an
execution policy, the status placed orders start in, whether DELETE echoes the prior state, and
whether the records give ``remaining-quantity`` at all and as numbers or strings; then up to
``stateful_step_count`` broker moves:

* statuses: submission (Received/Routed/In Flight) to Live, cancel answers (Cancelled / back to
  working), replacement chains (``Contingent`` replacement taking over - original ``Cancelled``
  with ``edited`` - or ``Rejected``), Filled, Rejected/Expired/Removed/Partially Removed with
  or without fills;
* fills: whole units executed on every leg, split into several fill records per leg, listed at
  once or withheld, counted by ``remaining-quantity`` at once or later (so: a count ahead of the
  fills, fills ahead of the count, ``Filled`` with no fills, fills listed after the final
  status), the record catching up leg by leg;
* foreign orders: no external identifier, another app's, or one of our references on an order
  received an hour before ours (another process), with fills, on our symbols or not;
* the connection: outages, submissions refused / lost with or without the order, answers of
  PUT/DELETE/POST lost after they took effect; the clock (poll interval, executor timers).

After every step: ``process_events`` + ``on_timer``, invariants 1-7 (``check_step``; the
conservation/legality/replay ones every 10 steps) and the executor's violation log. At teardown a
cooperative broker publishes everything and drives the group to a terminal state; then
``check_group(replay=True)``, the violation log, and the verdict against the truth generated here:
committed => truth == targets, rolled_back => flat, failed => residual == truth (and the ledger
equals the truth for committed/rolled_back).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.fsm import invariants
from atomic_orders.fsm.clock import ManualClock
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import TERMINAL_STATES, AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.orders import Quote
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.simulator.proofs.exhaustive import default_quotes
from atomic_orders.simulator.proofs.strategies import GroupSpec, execution_policies, group_specs
from atomic_orders.simulator.proofs.wire_strategies import (
    TT_FILLABLE,
    TT_SUBMISSION,
    ForeignOrder,
    TtAccount,
    TtOrder,
    WireTastytradeClient,
    fill_splits,
    leg_prices,
    submit_plans,
    tt_foreign_orders,
    tt_initial_statuses,
    tt_kill_statuses,
)
from tests.properties._suite import PROFILE, STATS

#: Examples per machine and steps per example, by profile (the ``ci`` run stays well under a minute).
BUDGET = {"ci": (60, 40), "dev": (40, 40), "deep": (1200, 80)}
EXAMPLES, STEPS = BUDGET[PROFILE]
PICK = st.integers(0, 7)
START = dt.datetime(2026, 1, 2, 15, 0, tzinfo=dt.UTC)


def _fmt(positions: dict[OptionSymbol, int]) -> dict[str, int]:
    return {s.occ: q for s, q in sorted(positions.items(), key=lambda kv: kv[0].occ)}


class TastytradeWire(RuleBasedStateMachine):
    """A TastyTrade account presenting adversarial order JSON to the real backend and executor."""

    MODE: ClassVar[ExecutionMode] = ExecutionMode.COMBO

    def __init__(self) -> None:
        super().__init__()
        self.account: TtAccount | None = None
        self.steps = 0
        self._broken = False
        self._checked = False
        self._seen_violations = 0
        self.flaky = False
        self.foreigners = 0
        self.log: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------

    @initialize(
        spec=group_specs(kinds=(StrategyKind.IRON_CONDOR, StrategyKind.VERTICAL), max_quantity=6),
        policy=execution_policies(),
        initial=tt_initial_statuses(),
        echo_prior=st.booleans(),
        gives_count=st.sampled_from([True, True, True, False]),
        as_text=st.booleans(),
        plan=st.lists(submit_plans(), max_size=2),
        flaky=st.booleans(),
        patience=st.integers(0, 20),
    )
    def start(self, spec: GroupSpec, policy: ExecutionPolicy, initial: str, echo_prior: bool, gives_count: bool,
              as_text: bool, plan: list[str], flaky: bool, patience: int) -> None:
        """Draw the account's temperament and execute one group through the real backend
        (``patience``: broker moves before an order may be killed)."""
        self.patience = patience
        spec = GroupSpec(spec.kind, spec.legs, spec.quantity, self.MODE, spec.longs_first)
        self.spec = spec
        self.clock = ManualClock(START)
        self.account = TtAccount(self.clock, initial_status=initial, echo_prior=echo_prior, gives_count=gives_count,
                                 as_text=as_text)
        self.account.plan = list(plan)
        self.flaky = flaky
        quotes = default_quotes(spec.legs)

        def quote(symbol: OptionSymbol) -> Quote:
            bid, ask = quotes[symbol]
            return Quote(symbol, bid, ask, self.clock.now())

        self.backend = TastytradeBackend(WireTastytradeClient(self.account), clock=self.clock, quote_source=quote)
        self.executor = AtomicOrderExecutor(self.backend, policy, clock=self.clock, session_id="")
        group = AtomicOrderGroup("W1", spec.legs, spec.quantity, strategy=spec.kind, mode=spec.mode,
                                 max_unwind_retries=policy.max_unwind_retries, longs_first=spec.longs_first,
                                 created_at=self.clock.now())
        self._broken = True
        self.group = self.executor.execute(group)
        self.pump()
        self._broken = False
        STATS["wire tastytrade examples"] += 1
        STATS[f"wire tastytrade examples {spec.kind.value} {spec.mode.value}"] += 1

    # -- helpers ----------------------------------------------------------------------------------

    @property
    def a(self) -> TtAccount:
        assert self.account is not None
        return self.account

    def pump(self) -> None:
        """Let the executor read the broker (when its poll is due) and run its due timers."""
        self.executor.process_events()
        self.executor.on_timer()

    def _orders(self, pred: object) -> list[TtOrder]:
        assert callable(pred)
        return [o for o in self.a.orders.values() if pred(o)]

    def _pick(self, pred: object, pick: int) -> TtOrder:
        eligible = self._orders(pred)
        return eligible[pick % len(eligible)]

    def _has(self, pred: object) -> bool:
        return self.account is not None and bool(self._orders(pred))

    def _move(self, kind: str) -> None:
        self.steps += 1
        self.log.append(kind)
        STATS[f"wire tastytrade move {kind}"] += 1
        self._broken = True
        self.pump()
        self._broken = False

    def active(self) -> bool:
        """The group works, or one of our orders is not final or not fully published."""
        if not self.group.is_terminal:
            return True
        return any(not o.terminal or not o.published or o.status == "Contingent" for o in self.a.ours())

    # -- order lifecycle ----------------------------------------------------------------------------

    @staticmethod
    def _routable(o: TtOrder) -> bool:
        return o.ours and o.status in TT_SUBMISSION

    @precondition(lambda self: self._has(self._routable))
    @rule(pick=PICK, live=st.booleans())
    def route(self, pick: int, live: bool) -> None:
        """A received order moves on (the next submission status, or straight to Live)."""
        o = self._pick(self._routable, pick)
        nxt = "Live"
        if not live and o.status != "In Flight":
            nxt = TT_SUBMISSION[TT_SUBMISSION.index(o.status) + 1]
        self.a.set_status(o, nxt)
        self._move("route")

    @staticmethod
    def _fillable(o: TtOrder) -> bool:
        return o.ours and o.status in TT_FILLABLE and o.remaining > 0

    @precondition(lambda self: self._has(self._fillable))
    @rule(pick=PICK, units=st.integers(1, 6), splits=st.lists(fill_splits(), min_size=1, max_size=4),
          prices=st.lists(leg_prices(), min_size=1, max_size=4), show_fills=st.sampled_from([True, True, False]),
          show_count=st.sampled_from([True, True, False]), finish=st.booleans())
    def fill(self, pick: int, units: int, splits: list[list[int]], prices: list[Decimal], show_fills: bool,
             show_count: bool, finish: bool) -> None:
        """The exchange fills whole units on every leg (several fill records per leg); the record
        lists them / counts them at once or later; a complete order says Filled at once or later."""
        o = self._pick(self._fillable, pick)
        n = 1 + (units - 1) % o.remaining
        self.a.execute(o, n, splits, prices, show_fills=show_fills, show_count=show_count)
        if o.remaining == 0 and finish and o.status != "Replace Requested":
            self.a.set_status(o, "Filled")
        self._move("fill")

    @staticmethod
    def _complete(o: TtOrder) -> bool:
        return o.ours and not o.terminal and o.remaining == 0 and o.status not in ("Replace Requested", "Contingent")

    @precondition(lambda self: self._has(self._complete))
    @rule(pick=PICK)
    def say_filled(self, pick: int) -> None:
        """A completely filled order's status catches up: Filled."""
        self.a.set_status(self._pick(self._complete, pick), "Filled")
        self._move("say_filled")

    @staticmethod
    def _unpublished(o: TtOrder) -> bool:
        return o.ours and not o.published

    @precondition(lambda self: self._has(self._unpublished))
    @rule(pick=PICK, legs=st.lists(st.booleans(), min_size=4, max_size=4),
          what=st.sampled_from(["both", "fills", "count"]))
    def publish(self, pick: int, legs: list[bool], what: str) -> None:
        """The record catches up on some legs: its fills list, its count, or both."""
        o = self._pick(self._unpublished, pick)
        for leg, chosen in zip(o.legs, legs, strict=False):
            if chosen:
                leg.publish(fills=what != "count", count=what != "fills")
        self.a.touch(o)
        self._move("publish")

    @staticmethod
    def _cancel_requested(o: TtOrder) -> bool:
        return o.ours and o.status == "Cancel Requested"

    @precondition(lambda self: self._has(self._cancel_requested))
    @rule(pick=PICK, confirm=st.sampled_from([True, True, False]))
    def answer_cancel(self, pick: int, confirm: bool) -> None:
        """The broker confirms a requested cancel (Cancelled) or refuses it (back to working)."""
        self.a.answer_cancel(self._pick(self._cancel_requested, pick), confirm)
        self._move("cancel_confirm" if confirm else "cancel_refuse")

    def _replace_pending(self, o: TtOrder) -> bool:
        return o.ours and self.a.pending_replacement(o) is not None

    @precondition(lambda self: self._has(self._replace_pending))
    @rule(pick=PICK, accept=st.sampled_from([True, True, False]))
    def answer_replace(self, pick: int, accept: bool) -> None:
        """The replacement takes over (the original Cancelled, edited) or is rejected."""
        o = self._pick(self._replace_pending, pick)
        if accept and o.remaining > 0 and o.status == "Replace Requested":
            self.a.apply_replace(o)
            self._move("replace_apply")
        else:
            self.a.refuse_replace(o)
            self._move("replace_refuse")

    @staticmethod
    def _killable(o: TtOrder) -> bool:
        return o.ours and not o.terminal and o.status != "Contingent"

    @precondition(lambda self: self.account is not None and self.steps >= self.patience
                  and self._has(self._killable))
    @rule(pick=PICK, status=tt_kill_statuses())
    def kill(self, pick: int, status: str) -> None:
        """End an order: Rejected, Expired, Removed or Partially Removed (keeping its fills)."""
        self.a.set_status(self._pick(self._killable, pick), status)
        self._move(f"kill {status}")

    # -- foreign orders ---------------------------------------------------------------------------------

    @precondition(lambda self: self.account is not None and self.foreigners < 3 and self.steps % 3 == 1)
    @rule(foreign=tt_foreign_orders(), splits=fill_splits(), price=leg_prices())
    def foreign(self, foreign: ForeignOrder, splits: list[int], price: Decimal) -> None:
        """Another app's order (or another process's with our reference) shows up on the account."""
        ours = [o for o in self.a.ours() if o.ticket_ref is not None]
        ext: str | None = None
        received = self.clock.now()
        if foreign.ext_kind == "other_app":
            ext = f"OTHER-APP-{len(self.a.orders)}"
        elif foreign.ext_kind == "our_ref" and ours:
            ext = ours[len(self.a.orders) % len(ours)].ticket_ref
            received = self.clock.now() - dt.timedelta(hours=1)
        leg = self.spec.legs[len(self.a.orders) % len(self.spec.legs)]
        other = OptionSymbol.of("QQQ", dt.date(2026, 3, 20), Right.CALL, 500)
        symbol = leg.symbol.occ if foreign.own_symbol else other.occ
        o = self.a.new_order([(symbol, "Buy to Open", 1)], foreign.units, ext=ext, ticket_ref=None,
                             price=Decimal("1.00"), status="Live", received_at=received)
        filled = min(foreign.filled_units, foreign.units)
        if filled:
            self.a.execute(o, filled, [splits], [price], show_fills=foreign.listed, show_count=True)
        if foreign.status != "Live" and not (foreign.status == "Filled" and o.remaining):
            if foreign.status in ("Received", "Cancel Requested"):
                o.status = foreign.status
            else:
                self.a.set_status(o, foreign.status)
        self.foreigners += 1
        self._move(f"foreign {foreign.ext_kind}")

    # -- the connection and the clock -----------------------------------------------------------------

    @precondition(lambda self: self.account is not None and self.flaky and self.active())
    @rule(down=st.booleans(), lose=st.booleans(), outcome=submit_plans())
    def connection(self, down: bool, lose: bool, outcome: str) -> None:
        """Outage on/off, the next answer lost after it took effect, the next submission's outcome."""
        if down != self.a.down:
            self.a.down = down
            self._move("down" if down else "up")
        elif lose:
            self.a.lose_next_answer = True
            self._move("lose_next_answer")
        else:
            self.a.plan.append(outcome)
            self._move(f"plan {outcome}")

    def _busy(self) -> bool:
        return any(self._routable(o) or self._fillable(o) or self._unpublished(o) or self._cancel_requested(o)
                   or self._replace_pending(o) for o in self.a.orders.values())

    @precondition(lambda self: self.account is not None and self.active()
                  and (self.steps % 3 == 0 or not self._busy()))
    @rule(step=st.sampled_from(["wakeup", 0.5, 1.0, 2.0, 5.0]))
    def tick(self, step: str | float) -> None:
        """Time passes: to the next poll or executor timer, or by seconds."""
        if step == "wakeup":
            self._to_next_wakeup()
        else:
            assert isinstance(step, float)
            self.clock.advance(step)
        self._move("tick")

    def _to_next_wakeup(self) -> None:
        now = self.clock.now()
        times = [t for t in (self.executor.next_wakeup(), self.backend.next_poll_time()) if t is not None and t > now]
        self.clock.set(min(times) if times else now + dt.timedelta(seconds=1))

    @precondition(lambda self: self.account is not None and not self.active())
    @rule()
    def idle(self) -> None:
        """Nothing is left to happen."""
        STATS["wire tastytrade idle steps"] += 1

    # -- checks ---------------------------------------------------------------------------------------

    def _violations(self, full: bool) -> list[str]:
        g = self.group
        out = invariants.check_group(g) if full else invariants.check_step(g)
        new = self.executor.violations[self._seen_violations:]
        self._seen_violations = len(self.executor.violations)
        return out + [f"[executor] {v}" for v in new]

    @invariant()
    def invariants_hold(self) -> None:
        """Invariants after every step (the whole-history ones every 10 steps)."""
        if self.account is None:
            return
        if self._checked:
            STATS["wire tastytrade steps"] += 1
        self._checked = True
        bad = self._violations(full=self.steps % 10 == 0)
        if bad:
            self._broken = True
            raise AssertionError(f"{self.spec}\nmoves: {self.log}\n" + "\n".join(bad))

    def settle(self, max_rounds: int = 400) -> None:
        """A cooperative broker: up, answers kept, replacements applied, cancels confirmed, orders
        routed and filled, every record published; time to the next wakeup between rounds."""
        a = self.a
        a.down, a.lose_next_answer = False, False
        a.plan.clear()
        for _ in range(max_rounds):
            if not self.active():
                return
            for o in list(a.ours()):
                if self.a.pending_replacement(o) is not None:
                    if o.remaining > 0 and o.status == "Replace Requested":
                        a.apply_replace(o)
                    else:
                        a.refuse_replace(o)
            for o in list(a.ours()):
                if o.status == "Cancel Requested":
                    a.answer_cancel(o, True)
                if o.status in TT_SUBMISSION:
                    a.set_status(o, "Live")
                if o.status == "Live" and o.remaining:
                    a.execute(o, o.remaining, [[o.remaining]], [Decimal("1.00")], show_fills=True, show_count=True)
                if not o.terminal and o.remaining == 0 and o.status not in ("Replace Requested", "Contingent"):
                    a.set_status(o, "Filled")
                if not o.published:
                    for leg in o.legs:
                        leg.publish()
                    a.touch(o)
            self.pump()
            if self.active():
                self._to_next_wakeup()
                self.pump()
        raise AssertionError(f"{self.spec}: no settlement after {max_rounds} cooperative rounds "
                             f"(group {self.group.state}); moves: {self.log}")

    def teardown(self) -> None:
        """Settle cooperatively; then everything, and the verdict against the broker's truth."""
        if self.account is None or self._broken:
            return
        g = self.group
        self._broken = True
        self.settle()
        bad = self._violations(full=False)
        bad += [f"[final] {v}" for v in invariants.check_group(g, replay=True)]
        if g.state not in TERMINAL_STATES:
            bad.append(f"[1 terminal_settled] not terminal after the cooperative drive ({g.state})")
        truth = self.a.truth_positions()
        bad += invariants.verdict_against(g, truth)
        if bad:
            raise AssertionError(f"{self.spec} (after the cooperative drive)\nmoves: {self.log}\n" + "\n".join(bad))
        self._broken = False
        STATS[f"wire tastytrade settled {g.state}"] += 1


class ComboWire(TastytradeWire):
    """Iron condors and verticals as one combo order."""

    MODE = ExecutionMode.COMBO


class LeggedWire(TastytradeWire):
    """Iron condors and verticals leg by leg."""

    MODE = ExecutionMode.LEGGED


_SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS)
ComboWire.TestCase.settings = _SETTINGS
LeggedWire.TestCase.settings = _SETTINGS
TestTastytradeWireCombo = ComboWire.TestCase
TestTastytradeWireLegged = LeggedWire.TestCase
