"""Recovery from the journal against a broker that survived (the simulator, in process).

A crash is an exception raised at a named crash point; the executor is dropped and the journal
closed without committing what was staged (what SIGKILL leaves). The broker keeps running.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.journal import Journal, read_journal
from atomic_orders.fsm.journal.recorder import CRASH_POINTS
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.crash.harness import CrashSession, run_in_process, simulator_truth, verify
from tests.journal.dying import run_until_death
from tests.roles import condor_roles


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("nth", [1, 3])
def test_crash_at_each_point_then_recover(point: str, nth: int, tmp_path: Path) -> None:
    session = CrashSession(seed=4, groups=6)
    path = tmp_path / "j.journal"
    broker, crashed = run_in_process(session, [(point, nth)], path)
    assert crashed[point] == 1, f"{point}#{nth} was never reached"
    problems, figures = verify(simulator_truth(broker), path, [p[0] for p in session.plan()])
    assert problems == []
    assert figures["invariant_violations"] == 0


def test_many_crashes_across_seeds_and_profiles(tmp_path: Path) -> None:
    total = 0
    for seed, profile, batch in ((7, "rough", 0.0), (8, "hostile", 0.0), (9, "hostile", 0.2)):
        session = CrashSession(seed=seed, groups=8, profile=profile, batch_seconds=batch)
        kills = [(CRASH_POINTS[(seed + k) % len(CRASH_POINTS)], 1 + (k % 4)) for k in range(12)]
        path = tmp_path / f"{seed}.journal"
        broker, crashed = run_in_process(session, kills, path)
        total += sum(crashed.values())
        problems, _ = verify(simulator_truth(broker), path, [p[0] for p in session.plan()])
        assert problems == [], (seed, problems[:5])
    assert total >= 20


def test_an_intent_the_broker_never_saw_is_abandoned_not_resent(tmp_path: Path) -> None:
    session = CrashSession(seed=4, groups=3)
    path = tmp_path / "j.journal"
    broker, crashed = run_in_process(session, [("intent_committed", 1)], path)
    assert crashed["intent_committed"] == 1
    contents = read_journal(path)
    first = min(contents.intents.values(), key=lambda i: i["seq"])
    ref = first["request"]["order_ref"]
    assert ref not in {r.order_ref for r in broker.orders_seen}  # never sent, not even after recovery
    gid = first["group_id"]
    assert contents.last_state(gid) in ("rolled_back", "failed")
    trail = contents.transitions[gid]
    assert any(t["order_ref"] == ref and t["ticket_event"]["type"] == "Reconciled"
               and t["ticket_event"]["status"] == "not_found" for t in trail)
    recover_sessions = [s for s in contents.sessions if s["kind"] == "recover"]
    assert len(recover_sessions) == 1


def test_recover_report_and_positions(tmp_path: Path) -> None:
    """Stop mid-session (crash after events were committed), recover by hand, check the report."""
    session = CrashSession(seed=6, groups=4)
    path = tmp_path / "j.journal"
    broker, _ = run_in_process(session, [("events_committed", 5)], path)
    # The campaign finished; recovering again finds nothing to do and every position explained.
    journal = Journal(path)
    executor, report = AtomicOrderExecutor.recover(journal, SimulatedBackend(broker))
    journal.close()
    assert report.groups_unfinished == ()
    assert report.unexplained_exposure == {} and report.positions_checked
    assert report.replay_mismatches == ()
    assert executor.stats.invariant_violations == 0
    # ids continue after the journaled ones, under this process's own session component
    new = executor.new_group_id()
    assert new.endswith("000005") and new not in read_journal(path).groups
    assert report.unjournaled == () and report.unjournaled_lookup == "done"


def test_broker_unavailable_during_recovery_defers_to_the_normal_loop(tmp_path: Path) -> None:
    from collections.abc import Mapping, Sequence

    from atomic_orders.fsm.errors import BrokerUnavailable
    from atomic_orders.fsm.orders import OrderReport
    from atomic_orders.simulator.crash.harness import drive_plan

    class FlakyBackend(SimulatedBackend):
        """Cannot answer the first reconciliation."""

        down = 1

        def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
            if self.down:
                self.down -= 1
                raise BrokerUnavailable("broker down during recovery")
            return super().reconcile(order_refs)

    session = CrashSession(seed=12, groups=5)
    path = tmp_path / "j.journal"
    broker = run_until_death(session, path, "events_committed", 4, batch_seconds=0)

    journal = Journal(path, sync="normal", batch_seconds=0)
    known = set(journal.contents.groups)
    executor, report = AtomicOrderExecutor.recover(journal, FlakyBackend(broker))
    assert report.deferred, "some order was unsettled at the crash"
    assert report.orders_reconciled > 0 and report.not_found == ()
    assert all(executor.group(g).ticket(ref).state in ("unknown", "filled", "canceled", "rejected", "expired")
               for g in report.groups_unfinished for ref in report.deferred if executor.group(g).has_ticket(ref))
    drive_plan(executor, broker.market, [p for p in session.plan() if p[0] not in known], session.session_seconds,
               now=lambda: broker.clock.seconds, advance=broker.advance_to, next_event=broker.next_event_time)
    executor.process_events()
    journal.close()
    problems, _ = verify(simulator_truth(broker), path, [p[0] for p in session.plan()])
    assert problems == []


def test_fills_lost_with_the_process_are_recovered_by_reconciliation(tmp_path: Path) -> None:
    """Die with a fill polled but not committed: recovery's reconcile (not a re-delivery) brings it back.

    The simulated backend of the new process never re-delivers what the old one polled, so the
    fill can only come from ``backend.reconcile`` applied by recovery.
    """
    from atomic_orders.simulator.crash.harness import drive_plan

    session = CrashSession(seed=12, groups=5)
    path = tmp_path / "j.journal"
    broker = run_until_death(session, path, "events_polled", 4, batch_seconds=0)

    journal = Journal(path, sync="normal", batch_seconds=0)
    known = set(journal.contents.groups)
    executor, report = AtomicOrderExecutor.recover(journal, SimulatedBackend(broker))
    assert report.fills_recovered >= 1
    assert report.unexplained_exposure == {} and report.positions_checked
    drive_plan(executor, broker.market, [p for p in session.plan() if p[0] not in known], session.session_seconds,
               now=lambda: broker.clock.seconds, advance=broker.advance_to, next_event=broker.next_event_time)
    executor.process_events()
    journal.close()
    problems, _ = verify(simulator_truth(broker), path, [p[0] for p in session.plan()])
    assert problems == []


def test_orders_the_journal_lacks_are_found_cancelled_and_alerted(tmp_path: Path) -> None:
    """A lost journal tail: an order sent under this journal's session prefix that the journal
    does not hold is found at the broker by prefix, cancelled while it works and alerted, never
    adopted into a ticket; the new process's references never repeat the old ones."""
    from atomic_orders.fsm.execution_policy import ExecutionPolicy
    from tests.simulator._helpers import condor_legs, make_sim

    broker = make_sim(seed=3)
    backend = SimulatedBackend(broker)
    path = tmp_path / "j.journal"
    journal = Journal(path, sync="normal", batch_seconds=0)
    journal.start_session("start", {"backend": "simulated"})
    policy = ExecutionPolicy(deadline_seconds=600.0)
    before = AtomicOrderExecutor(backend, policy, journal=journal, session_id="K3F9")
    legs = condor_legs(broker)
    roles = condor_roles([leg.symbol for leg in legs])
    kept = before.execute_iron_condor(**roles, quantity=1, limit_price=None)
    journal.close()
    # The same process kept sending after its journal's last durable write (the tail is lost):
    lost = AtomicOrderExecutor(backend, policy, session_id="K3F9")
    lost._seq = 1
    orphan = lost.execute_iron_condor(**roles, quantity=1)
    orphan_ref = orphan.entry_tickets[0].order_ref
    assert orphan_ref.startswith("GK3F9") and orphan_ref not in read_journal(path).intents
    # Another process on the same account, under its own session: never touched by this recovery.
    other = AtomicOrderExecutor(backend, policy, session_id="ZZ77")
    bystander = other.execute_iron_condor(**roles, quantity=1)
    broker.advance_to(broker.clock.seconds + 1.0)

    alerts: list[str] = []
    journal = Journal(path, sync="normal", batch_seconds=0)
    executor, report = AtomicOrderExecutor.recover(journal, backend, on_alert=alerts.append)
    assert report.unjournaled == (orphan_ref,)
    assert any(orphan_ref in a and "journal lacks it" in a for a in alerts)
    assert executor.stats.surfaced_cancels == 1
    broker.advance_to(broker.clock.seconds + 30.0)
    assert broker.order_status(orphan_ref) in ("canceled", "filled")  # the cancel reached it (or a fill won)
    assert not executor.owns_order(orphan_ref)  # never folded into a ticket
    bystander_ref = bystander.entry_tickets[0].order_ref
    assert broker.order_status(bystander_ref) in ("pending", "working", "filled")
    assert executor.session_id != "K3F9" and not executor.new_group_id().startswith("GK3F9")
    assert kept.group_id in {g.group_id for g in executor.groups()}
    journal.close()


def _recover_against(broker: BrokerSimulator, path: Path) -> list[str]:
    """Recover the journal at ``path`` against ``broker`` with its clock at the journal's last moment;
    return the groups the report lists as re-opened."""
    contents = read_journal(path)
    last = max(dt.datetime.fromisoformat(t[-1]["time"]) for t in contents.transitions.values() if t)
    broker.advance_to(max(broker.clock.seconds, broker.clock.to_seconds(last)))
    journal = Journal(path)
    _, report = AtomicOrderExecutor.recover(journal, SimulatedBackend(broker))
    journal.close()
    assert report.groups_unfinished == () and report.groups_rebuilt >= 1  # one is within the linger
    return list(report.reopened)


def test_a_finished_group_stays_finished_when_the_broker_agrees(tmp_path: Path) -> None:
    session = CrashSession(seed=6, groups=4)
    path = tmp_path / "j.journal"
    broker, _ = run_in_process(session, [], path)
    assert _recover_against(broker, path) == []
    contents = read_journal(path)
    assert all(len(contents.finishes[g]) == 1 for g in contents.groups)


def test_a_broker_denying_a_finished_groups_orders_reopens_it_and_the_report_says_so(tmp_path: Path) -> None:
    """A broker that does not know orders the journal holds as filled disagrees with the journal:
    the lingering group is re-opened (for a human, not silently kept) and the report lists it."""
    session = CrashSession(seed=6, groups=4)
    path = tmp_path / "j.journal"
    run_in_process(session, [], path)
    finished = read_journal(path).finishes
    reopened = _recover_against(session.broker(), path)  # a fresh simulator: it holds none of them
    assert reopened != [] and set(reopened) <= set(finished)
