"""Recovery from the journal against a broker that survived (the simulator, in process).

A crash is an exception raised at a named crash point; the executor is dropped and the journal
closed without committing what was staged (what SIGKILL leaves). The broker keeps running.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.simulated import SimulatedBackend
from fsm.executor import AtomicOrderExecutor
from fsm.journal import Journal, read_journal
from fsm.journal.recorder import CRASH_POINTS
from simulator.crash import CrashSession, run_in_process, simulator_truth, verify


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
    assert executor.new_group_id() == "G000005"  # ids continue after the journaled ones
