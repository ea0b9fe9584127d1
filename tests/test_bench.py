"""The bench runs, reports every figure and checks its own lifecycles. No assertion on speed."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from atomic_orders.fsm.group import COMMITTED, ExecutionMode
from atomic_orders.fsm.ticket import FILLED, OrderTicket
from atomic_orders.simulator.cli import bench
from atomic_orders.simulator.cli.bench import REQUIRED_KEYS, TARGETS, format_report, run_bench, to_json


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    return run_bench(quick=True, n=40, rounds=2)


def test_every_figure_is_a_positive_number(quick: dict[str, Any]) -> None:
    for key in REQUIRED_KEYS:
        value = quick[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        assert math.isfinite(value) and value > 0, (key, value)
    for key in ("ticket_vs_bare_ratio", "group_create_speedup", "dict_ratio"):
        assert quick[key] > 0


def test_lifecycles_ended_where_expected(quick: dict[str, Any]) -> None:
    checks = quick["checks"]
    for name in (
        "groups_validated_with_4_tickets",
        "naive_groups_validated_with_4_tickets",
        "project_tickets_filled",
        "project_tickets_audited",
        "bare_tickets_filled",
        "naive_tickets_filled",
        "dict_tickets_filled",
        "condors_legged_committed",
        "condors_combo_committed",
        "idle_groups_validated",
    ):
        assert checks.get(name) is True, (name, checks)
    assert quick["checks_ok"] is True


def test_targets_and_facts_are_reported(quick: dict[str, Any]) -> None:
    assert set(quick["targets_met"]) == set(TARGETS)
    assert all(isinstance(v, bool) for v in quick["targets_met"].values())
    machine = quick["machine"]
    assert machine["python"] and machine["transitions"] and machine["platform"]
    assert quick["params"]["quick"] is True and quick["params"]["rounds"] == 2


def test_result_is_json_and_report_names_every_figure(quick: dict[str, Any]) -> None:
    assert json.loads(to_json(quick)) == json.loads(json.dumps(quick))
    report = format_report(quick)
    for key in REQUIRED_KEYS:
        assert key in report
    assert "MET" in report or "MISSED" in report


def test_sim_hook_is_merged() -> None:
    result = run_bench(quick=True, n=4, rounds=1, sim=lambda: {"sim_groups_per_s": 123.0})
    assert result["sim_groups_per_s"] == 123.0
    assert "sim_groups_per_s" in format_report(result)


def test_the_four_ticket_implementations_agree_on_the_lifecycle() -> None:
    events = bench._ticket_lifecycle()
    project = OrderTicket("T", (bench.iron_condor_legs()[0],), 100)
    naive = bench.NaiveTicket("N", (bench.iron_condor_legs()[0],), 100)
    bare, table = bench.BareTicket(100), bench.BareTicket(100)
    seen: dict[str, list[str]] = {"project": [], "naive": [], "bare": [], "dict": []}
    for e in events:
        project.apply(e)
        naive.apply(e)
        bench._BARE_EVENTS[e.trigger].trigger(bare, e)
        bench.dict_apply(table, e)
        for name, t in (("project", project), ("naive", naive), ("bare", bare), ("dict", table)):
            seen[name].append(t.state)
    assert seen["project"][-1] == FILLED
    assert seen["naive"] == seen["bare"] == seen["dict"] == seen["project"]
    assert seen["project"] == [
        "submitting",
        "submitted",
        "partially_filled",
        "partially_filled",
        "partially_filled",
        "filled",
    ]


@pytest.mark.parametrize("mode", [ExecutionMode.LEGGED, ExecutionMode.COMBO])
def test_condor_inputs_commit_a_group(mode: ExecutionMode) -> None:
    done: list[Any] = []
    bench._run_condors(bench._condor_inputs(2, mode, "X"), bench.iron_condor_legs(), mode, done)
    assert [g.state for g in done] == [COMMITTED, COMMITTED]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        run_bench(quick=True, n=0)
