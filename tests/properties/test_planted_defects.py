"""Proof that the property suite can fail: each invariant catches a deliberately planted defect.

Every test plants one defect into the running machine, then runs the property suite on it with a
small fixed budget - the Hypothesis state machine (derandomized, no shrinking) and/or the
exhaustive checker at a small depth - and asserts that it FINDS the defect, tagged with the
invariant that caught it.

How a defect is planted (and why the real code is untouched afterwards): the ``transitions``
runtime machine resolves guards and effects when it is built (``atomic_orders.fsm.machine.build_runtime_machine``
wraps the registry functions), so patching ``GROUP_GUARDS``/``TICKET_EFFECTS`` alone changes
nothing. Instead a COPY of the runtime machine is built from the real table and a registry with
one entry replaced (or from a table with one row altered), and pytest's ``monkeypatch`` swaps it in
for the module-level ``_EVENTS`` that ``OrderTicket.apply`` / ``AtomicOrderGroup._fire`` look up
on every event. Methods (``Ledger.record``, ``AtomicOrderGroup.replay``, ``OrderTicket.apply``)
are patched the same way. ``monkeypatch`` restores everything when the test ends; the last test
re-runs a clean check to prove it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import atomic_orders.fsm.group
import atomic_orders.fsm.ticket
from atomic_orders.fsm.errors import InvalidTransition
from atomic_orders.fsm.events import Fill
from atomic_orders.fsm.group import (
    GROUP_EFFECTS,
    GROUP_GUARDS,
    GROUP_MACHINE,
    AtomicOrderGroup,
    ExecutionMode,
    GroupAuditRecord,
)
from atomic_orders.fsm.ledger import Ledger
from atomic_orders.fsm.machine import MachineSpec, build_runtime_machine
from atomic_orders.fsm.ticket import TICKET_EFFECTS, TICKET_GUARDS, TICKET_MACHINE, TICKET_TRANSITIONS, OrderTicket
from atomic_orders.simulator.proofs.exhaustive import CheckReport, run_check
from tests.properties._suite import STATS
from tests.properties.adversary import AdversarialBroker, ComboCondor, LeggedVertical

#: The fixed budget a planted defect must be found within.
PLANTED = settings(
    max_examples=150,
    stateful_step_count=50,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: we only need to know it is found
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
#: Exhaustive depth used against planted defects (every script of this many actions).
PLANTED_DEPTH = 4


@pytest.fixture(autouse=True)
def _keep_stats_clean() -> Iterator[None]:
    """Runs on planted defects are not part of the suite's coverage counters."""
    saved = STATS.copy()
    yield
    STATS.clear()
    STATS.update(saved)


def stateful_finds(machine: type[AdversarialBroker], tag: str) -> str:
    """Run the state machine on the planted defect; it must fail, tagged ``tag``."""
    with pytest.raises(AssertionError) as info:
        run_state_machine_as_test(machine, settings=PLANTED)
    text = str(info.value)
    assert tag in text, f"the run failed, but not on {tag}:\n{text}"
    return text


def exhaustive_finds(tag: str | tuple[str, ...], modes: tuple[ExecutionMode, ...] = (ExecutionMode.LEGGED,),
                     depth: int = PLANTED_DEPTH) -> CheckReport:
    """Run the exhaustive check on the planted defect; its shortest counterexample must carry ``tag``
    (one of the tags, when several invariants guard the same promise)."""
    report = run_check(depth, modes)
    assert not report.ok, f"no counterexample up to depth {depth}"
    first = report.counterexamples[0]
    tags = (tag,) if isinstance(tag, str) else tag
    assert any(t in v for v in first.violations for t in tags), str(first)
    return report


def plant_group(monkeypatch: pytest.MonkeyPatch, guards: dict[str, Any] | None = None,
                effects: dict[str, Any] | None = None) -> None:
    """Swap in a group runtime machine built from the real table and patched registries."""
    machine = build_runtime_machine(GROUP_MACHINE, {**GROUP_GUARDS, **(guards or {})},
                                    {**GROUP_EFFECTS, **(effects or {})})
    monkeypatch.setattr(atomic_orders.fsm.group, "_EVENTS", machine.events)


def plant_ticket(monkeypatch: pytest.MonkeyPatch, spec: MachineSpec = TICKET_MACHINE,
                 effects: dict[str, Any] | None = None) -> None:
    """Swap in a ticket runtime machine built from ``spec`` (default: the real table) and patched effects."""
    machine = build_runtime_machine(spec, TICKET_GUARDS, {**TICKET_EFFECTS, **(effects or {})})
    monkeypatch.setattr(atomic_orders.fsm.ticket, "_EVENTS", machine.events)


# -- invariant 1: terminal means settled -------------------------------------------------------------


def test_inv1_commit_with_a_short_leg_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: the group commits as soon as nothing is working and something filled."""

    def commits_early(g: AtomicOrderGroup, _e: object) -> bool:
        return not atomic_orders.fsm.group._unsettled(g) and any(g.ledger._net.values())

    plant_group(monkeypatch, guards={"is_complete": commits_early})
    stateful_finds(LeggedVertical, "[1 terminal_settled]")
    report = exhaustive_finds("[1 terminal_settled]")
    assert len(report.counterexamples[0].script) <= 2  # ack and fill the long leg: committed


# -- invariant 2: no orphans -------------------------------------------------------------------------


def test_inv2_rollback_that_leaves_a_working_leg_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: the rollback is declared done once flat, forgetting an order still working."""

    def flat_is_enough(g: AtomicOrderGroup, _e: object) -> bool:
        return g.ledger.is_flat

    def asks_nobody(g: AtomicOrderGroup, _e: object) -> bool:
        return g.ledger.is_flat  # flat is enough here too: the broker is not asked either

    plant_group(monkeypatch, guards={"is_flat": flat_is_enough, "broker_confirms": asks_nobody})
    stateful_finds(ComboCondor, "[2 no_orphans]")
    # Two layers guard this promise: the shortest counterexample may be caught first by invariant 7
    # (settled without the broker's confirmation of an order it still works).
    exhaustive_finds(("[2 no_orphans]", "[7 broker_agreement]"))


# -- invariant 3: conservation -----------------------------------------------------------------------


def test_inv3_ledger_that_ignores_a_late_fill_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: the group ledger drops fills that arrive after a cancel or expiry."""
    real_record = Ledger.record

    def record(self: Ledger, ticket: OrderTicket, fill: Fill) -> None:  # forgets late fills
        if ticket.state in ("canceled", "expired"):
            return
        real_record(self, ticket, fill)

    # Named as the method it replaces: a ticket holds the bound ``ledger.record``, which the
    # checker pickles by name with the state.
    monkeypatch.setattr(Ledger, "record", record)
    stateful_finds(ComboCondor, "[3 conservation]")
    exhaustive_finds("[3 conservation]")


def test_inv3_ticket_that_double_counts_a_duplicate_fill_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: a duplicate fill id is counted AND added to the filled quantity."""

    def double_counts(t: OrderTicket, e: Fill) -> None:
        t.duplicate_fills += 1
        t.quantity_filled += e.quantity

    plant_ticket(monkeypatch, effects={"count_duplicate_fill": double_counts})
    stateful_finds(LeggedVertical, "[3 conservation]")
    exhaustive_finds("[3 conservation]")


# -- invariant 4: legality ---------------------------------------------------------------------------


def test_inv4_state_change_outside_the_table_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: the running machine lets a late or duplicate acknowledgement re-open the order as
    ``submitted`` (the declared table keeps the state: an internal row)."""
    rows = tuple(
        attrs.evolve(r, dest="submitted") if r.trigger == "acknowledged" and r.dest is None else r
        for r in TICKET_TRANSITIONS
    )
    assert rows != TICKET_TRANSITIONS
    plant_ticket(monkeypatch, spec=attrs.evolve(TICKET_MACHINE, rows=rows))
    stateful_finds(ComboCondor, "[4 legality]")
    report = exhaustive_finds("[4 legality]")
    assert len(report.counterexamples[0].script) <= 3  # ack (held), partial fill, the ack arrives late


def test_inv4_illegal_event_that_changes_the_ticket_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: an event the table refuses still marks the ticket ``rejected`` before raising."""
    real_apply = OrderTicket.apply

    def leaky_apply(self: OrderTicket, event: Any) -> str:
        if not TICKET_MACHINE.is_legal(self.state, event.trigger):
            self.state = "rejected"
            raise InvalidTransition("OrderTicket", self.order_ref, self.state, event.trigger)
        return real_apply(self, event)

    monkeypatch.setattr(OrderTicket, "apply", leaky_apply)
    stateful_finds(LeggedVertical, "[4 legality]")
    exhaustive_finds("[4 legality]")


# -- invariant 5: determinism ------------------------------------------------------------------------


def test_inv5_replay_that_drops_an_event_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: replaying the audit trail skips the last record that carries a fill.

    (The last one: a fill dropped earlier is healed by the broker's record listing it again.)
    """
    real_replay = AtomicOrderGroup.replay

    def lossy_replay(self: AtomicOrderGroup, audit: Any = None) -> AtomicOrderGroup:
        records: list[GroupAuditRecord] = list(self.audit if audit is None else audit)
        fills = [i for i, r in enumerate(records)
                 if isinstance(r.ticket_event, Fill) or getattr(r.ticket_event, "fills", ())][-1:]
        if fills:
            del records[fills[0]]
        return real_replay(self, records)

    monkeypatch.setattr(AtomicOrderGroup, "replay", lossy_replay)
    stateful_finds(LeggedVertical, "[5 determinism]")
    exhaustive_finds("[5 determinism]")


# -- invariant 6: exposure bound ---------------------------------------------------------------------


def test_inv6_entry_order_one_unit_too_large_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: every entry order is created one unit larger than the group's quantity."""
    real_create: Callable[[AtomicOrderGroup, Any], None] = GROUP_EFFECTS["create_entry_tickets"]

    def oversized(g: AtomicOrderGroup, e: Any) -> None:
        real_create(g, e)
        for t in g.entry_tickets:
            t.quantity += 1

    plant_group(monkeypatch, effects={"create_entry_tickets": oversized})
    stateful_finds(LeggedVertical, "[6 exposure_bound]")
    report = exhaustive_finds("[6 exposure_bound]")
    assert len(report.counterexamples[0].script) <= 2  # ack and fill the long leg: one too many


# -- invariant 7: broker agreement --------------------------------------------------------------------


def test_inv7_group_that_settles_on_its_own_ledger_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect: the group settles on its own ledger and never waits for the broker's record."""

    def trusts_itself(_g: AtomicOrderGroup, _e: object) -> bool:
        return True

    plant_group(monkeypatch, guards={"broker_confirms": trusts_itself})
    stateful_finds(ComboCondor, "[7 broker_agreement]")
    exhaustive_finds("[7 broker_agreement]", modes=(ExecutionMode.COMBO,))


# -- and the real code is untouched afterwards ---------------------------------------------------------


def test_the_real_machines_are_restored() -> None:
    """After the planted tests, the runtime machines are the real ones: a clean check passes."""
    assert atomic_orders.fsm.group._EVENTS is atomic_orders.fsm.group._RUNTIME.events
    assert atomic_orders.fsm.ticket._EVENTS is atomic_orders.fsm.ticket._RUNTIME.events
    assert Ledger.record.__qualname__ == "Ledger.record"
    assert AtomicOrderGroup.replay.__qualname__ == "AtomicOrderGroup.replay"
    assert OrderTicket.apply.__qualname__ == "OrderTicket.apply"
    report = run_check(2)
    assert report.ok, [str(c) for c in report.counterexamples]
