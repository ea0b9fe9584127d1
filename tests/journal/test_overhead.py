"""The journal's cost is measured by the bench (never asserted on time here): the measurement itself works."""

from __future__ import annotations

from atomic_orders.simulator.cli.bench import format_report
from atomic_orders.simulator.cli.throughput import journal_overhead


def test_the_same_session_without_and_with_each_sync_mode() -> None:
    # The simulator only: the same function through the emulator costs ~10 s for 3 condors (bench).
    groups, backend = 12, "simulated"
    out = journal_overhead(groups, backend=backend, profile="hostile")
    assert (out["groups"], out["backend"]) == (groups, backend)
    for label in ("none", "normal", "full"):
        assert out[label]["invariant_violations"] == 0
        assert out[label]["groups_per_s"] > 0
    for label in ("normal", "full"):  # a journal was really written, and its share is reported
        assert out[label]["journal_bytes_per_group"] > 1000
        assert isinstance(out[label]["overhead_pct"], float)
    assert "journal_bytes_per_group" not in out["none"]


def test_the_bench_report_prints_the_journal_rows() -> None:
    figures = {"sim_groups_per_s_journal_off": 700.0, "sim_groups_per_s_journal_normal": 300.0,
               "sim_groups_per_s_journal_full": 200.0, "emulator_groups_per_s_journal_off": 15.0,
               "emulator_groups_per_s_journal_normal": 14.0, "emulator_groups_per_s_journal_full": 12.0}
    text = format_report(figures)
    for key in figures:
        assert key in text
    assert "journal sync=full" in text
