"""The bench's sweep figure, at a toy size (the figures are not asserted: speed is the bench's)."""

from __future__ import annotations

import pytest

from atomic_orders.simulator.sweep.throughput import format_throughput, sweep_throughput

pytestmark = pytest.mark.slow


def test_the_sweep_figure_runs_on_one_and_two_workers_with_the_same_results() -> None:
    figures = sweep_throughput(seeds=4, groups=5)
    assert set(figures["seeds_per_minute"]) == {"1", "2"}
    assert all(rate > 0 for rate in figures["seeds_per_minute"].values())
    assert figures["same_results"] is True
    assert figures["speedup_goal"] == 1.8
    text = format_throughput(figures)
    assert "speedup" in text and ("MET" in text or "MISSED" in text)
