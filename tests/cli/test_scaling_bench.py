"""``atomic-orders bench --scaling``: the figures come from real child sessions, each beside its goal."""

from __future__ import annotations

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.cli.scaling import SCALING_TARGETS, format_scaling, run_child_session, scaling_figures


def test_a_child_session_reports_its_own_cpu_and_peak_memory() -> None:
    run = run_child_session(20, "combo")
    assert run["groups"] == 20 and run["invariant_violations"] == 0
    assert sum(run["outcomes"].values()) == 20
    assert run["cpu_s"] > 0 and 10 < run["peak_rss_mb"] < 1000


def test_scaling_figures_put_every_target_beside_its_goal() -> None:
    lines: list[str] = []
    figures = scaling_figures(large=30, small=10, progress=lines.append)
    assert set(figures["targets"]) == set(SCALING_TARGETS)
    for name, target in figures["targets"].items():
        key, op, goal = SCALING_TARGETS[name]
        assert target["figure"] == key and target["value"] == figures[key]
        value = figures[key]
        # tiny sessions cost about what start-up costs: a ratio may be unmeasurable (None), never met
        assert target["met"] == (value is not None and (value <= goal if op == "<=" else value < goal))
    assert [r["groups"] for r in figures["runs"]] == [0, 10, 30, 10, 30]
    assert figures["cpu_s_combo"] == figures["runs"][2]["cpu_s"] > 0
    assert figures["peak_rss_mb_legged"] == figures["runs"][4]["peak_rss_mb"] > 0
    text = format_scaling(figures)
    assert all(name in text for name in SCALING_TARGETS) and ("MET" in text or "MISSED" in text)
    assert lines and lines[0].startswith("scaling")


def test_a_child_forked_from_a_large_process_reports_its_own_peak_not_the_parents() -> None:
    # Linux keeps the forking process's high-water mark as a floor of its child's ru_maxrss: a
    # small session started from a bench that had grown large read as large as the bench.
    ballast = bytearray(400 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touched: resident
    run = run_child_session(5, "combo")
    del ballast
    assert 10 < run["peak_rss_mb"] < 300


@pytest.mark.parametrize(("large", "small", "field"), [(100, 0, "small"), (10, 10, "large"), (5.0, 1, "large")])
def test_sizes_out_of_order_are_refused_by_name(large: object, small: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        scaling_figures(large=large, small=small)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize("value", ["0", "-5", "1000", "abc"])
def test_a_scaling_size_not_above_the_1000_compared_is_refused_before_any_figure(
        value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from atomic_orders.simulator.cli.main import main

    assert main(["bench", "--quick", "--no-sim", "--scaling", value]) == 2
    err = capsys.readouterr().err
    assert "--scaling" in err and value in err and "Traceback" not in err
