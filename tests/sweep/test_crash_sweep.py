"""``--crash``: the SIGKILL campaign per seed, on a worker process (real emulator, real kills)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atomic_orders.simulator.sweep.run import run_sweep
from atomic_orders.simulator.sweep.task import SweepConfig

pytestmark = pytest.mark.slow


def test_a_crash_sweep_kills_recovers_and_verifies_each_seed(tmp_path: Path) -> None:
    config = SweepConfig(groups=2, profile="calm", crash=True, kills=1)
    path = tmp_path / "crash.jsonl"
    report = run_sweep([5], config, path, workers=1)
    line = json.loads(path.read_text(encoding="utf-8"))
    assert report.ok, line
    assert line["kills"] == 1 and line["runs"] == 2  # killed once, then recovered and completed
    assert sum(line["outcomes"].values()) == config.groups
    assert line["violations"] == {}
    assert report.failing == []
