"""``atomic-orders report`` and ``simulate --html/--csv``, run as the real command line (a subprocess)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from atomic_orders.simulator.report.table import CSV_FIELDS
from tests.report._logs import RECORDS, write_log

CLI = [sys.executable, "-m", "atomic_orders.simulator.cli"]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_report_writes_the_page_and_the_csv_one_line_each(tmp_path: Path) -> None:
    write_log(tmp_path / "events.jsonl")
    proc = _run(["report", "events.jsonl", "--html", "out/report.html", "--csv", "out/groups.csv"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["HTML report written to out/report.html",
                                        "group CSV written to out/groups.csv"]
    page = (tmp_path / "out/report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "G000003" in page
    assert "<script src=" not in page  # plotly.js is inlined, nothing to fetch
    with (tmp_path / "out/groups.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["group"] for r in rows] == [r.group for r in RECORDS]
    assert tuple(rows[0]) == CSV_FIELDS


def test_report_user_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n", encoding="utf-8")
    cases = {
        ("report", "missing.jsonl", "--html", "r.html"): "'missing.jsonl' does not exist",
        ("report", "notes.txt", "--html", "r.html"): "line 1='hello': not JSON",
        ("report", "notes.txt"): "nothing to write",
        ("report", "notes.txt", "--html", "x.html", "--csv", "x.html"): "the same file",
    }
    for argv, expected in cases.items():
        proc = _run(list(argv), tmp_path)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("atomic-orders report: error: "), proc.stderr
        assert expected in proc.stderr, proc.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "x.html").exists()


def test_simulate_writes_the_reports_without_an_event_log_file(tmp_path: Path) -> None:
    proc = _run(["simulate", "--groups", "12", "--quiet", "--html", "r.html", "--csv", "g.csv"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-2:] == ["HTML report written to r.html", "group CSV written to g.csv"]
    assert "event log written" not in proc.stdout
    with (tmp_path / "g.csv").open(encoding="utf-8", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.csv", "r.html"]
