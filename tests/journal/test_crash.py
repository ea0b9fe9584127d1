"""The crash test: real processes, real SIGKILLs, the real TastyTrade client against the emulator.

The emulator (and so the broker state) lives in this process; the trading session runs in a
child process with a journal and is killed with SIGKILL at every crash point and at seeded
random moments, then restarted: it recovers from the journal and carries on. At the end:
zero invariant violations, no duplicate order at the emulator, every emulator fill in the
journal, every group terminal, every position explained.

Bounded for CI (one campaign, 14 planned kills, ~10 s). A larger run:
``ATOMIC_ORDERS_CRASH_CAMPAIGNS=5 ATOMIC_ORDERS_CRASH_KILLS=40 pytest -s tests/journal/test_crash.py``
or ``atomic-orders crash run --runs 5 --kills 40``.
"""

from __future__ import annotations

import os
from pathlib import Path

from atomic_orders.fsm.journal.recorder import CRASH_POINTS
from atomic_orders.simulator.crash.harness import CrashSession, run_crash_test


def test_sigkill_campaign_recovers_everything(tmp_path: Path) -> None:
    campaigns = int(os.environ.get("ATOMIC_ORDERS_CRASH_CAMPAIGNS", "1"))
    kills = int(os.environ.get("ATOMIC_ORDERS_CRASH_KILLS", "14"))
    exercised: set[str] = set()
    total = 0
    for k in range(campaigns):
        profile = "hostile" if k % 2 else "rough"
        report = run_crash_test(CrashSession(seed=31 + k, groups=8, profile=profile), kills, tmp_path)
        text = "\n".join(report.lines())
        print(text)
        assert report.ok, text
        assert report.figures["invariant_violations"] == 0
        assert report.figures["groups"] == 8
        exercised.update(report.kills_by_point)
        total += report.kills
    print(f"kill points exercised: {len(exercised)}/{len(CRASH_POINTS)} ({sorted(exercised)}), SIGKILLs: {total}")
    assert exercised == set(CRASH_POINTS)  # the first kills of every campaign visit every point
    assert total >= min(kills, 8) * campaigns
