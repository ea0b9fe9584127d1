"""Whole simulated sessions: determinism, the single path out, and the simulate command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.cli.main import main
from atomic_orders.simulator.session.runner import SessionConfig, run_session


@pytest.mark.parametrize("mode", [ExecutionMode.COMBO, ExecutionMode.LEGGED])
def test_hostile_session_settles_every_group_with_zero_violations(mode: ExecutionMode) -> None:
    report = run_session(SessionConfig(seed=5, groups=200, profile="hostile", mode=mode, verify_replay=True))
    assert report.invariant_violations == 0, report.violation_samples
    assert report.unaccounted_exposure == {}
    assert report.unfinished == []
    assert sum(report.outcomes.values()) == 200
    assert report.outcomes["rolled_back"] > 0, "hostile chaos must force some rollbacks"
    # every failed group states its residual, and the residual is what the report totals
    total: dict[str, int] = {}
    for info in report.failed_groups:
        assert info["residual_exposure"], info
        for k, v in info["residual_exposure"].items():
            total[k] = total.get(k, 0) + v
    assert {k: v for k, v in total.items() if v} == report.residual_exposure


def test_same_seed_same_event_log_byte_for_byte(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    cfg = SessionConfig(seed=9, groups=60, profile="hostile", mode=ExecutionMode.LEGGED)
    ra = run_session(cfg, events_path=a)
    rb = run_session(cfg, events_path=b)
    run_session(SessionConfig(seed=10, groups=60, profile="hostile", mode=ExecutionMode.LEGGED), events_path=c)
    assert a.read_bytes() == b.read_bytes()
    assert a.stat().st_size > 0 and a.read_bytes() != c.read_bytes()
    strip = {"wall_seconds", "events_per_second"}
    ja = {k: v for k, v in ra.to_json().items() if k not in strip}
    jb = {k: v for k, v in rb.to_json().items() if k not in strip}
    assert ja == jb


def test_every_order_the_broker_saw_belongs_to_a_group() -> None:
    seen: dict[str, object] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        seen["orders"] = list(broker.orders_seen)
        seen["owned"] = [executor.owns_order(r.order_ref) for r in broker.orders_seen]
        seen["groups"] = {r.group_id for r in broker.orders_seen}
        seen["known"] = executor.finished_group_ids()

    config = SessionConfig(seed=4, groups=120, profile="hostile", mode=ExecutionMode.LEGGED)
    report = run_session(config, on_end=inspect)
    orders = seen["orders"]
    assert isinstance(orders, list) and len(orders) >= 120 * 4
    assert all(seen["owned"]), "an order reached the broker outside every group"
    assert seen["groups"] <= seen["known"]  # type: ignore[operator]
    assert report.orders_sent >= len(orders) - report.chaos.get("landed_during_outage", 0)


def test_simulate_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, events = tmp_path / "r.json", tmp_path / "e.jsonl"
    code = main(["simulate", "--groups", "40", "--profile", "rough", "--mode", "legged", "--seed", "3",
                 "--json", str(out), "--events", str(events), "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())
    for key in ("groups", "outcomes", "invariant_violations", "residual_exposure", "events", "wall_seconds"):
        assert key in report
    assert report["groups"] == 40 and report["invariant_violations"] == 0
    assert set(report["outcomes"]) >= {"committed", "rolled_back", "failed"}
    assert sum(report["outcomes"].values()) == 40
    assert events.read_text().count("\n") > 40
    printed = capsys.readouterr().out
    assert "invariant violations" in printed and "committed" in printed


def test_simulate_rejects_a_bad_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--profile", "stormy"]) == 2  # a usage error: one line, status 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--profile" in err and "'stormy'" in err
    with pytest.raises(ValueError, match="stormy"):
        SessionConfig(profile="stormy")
