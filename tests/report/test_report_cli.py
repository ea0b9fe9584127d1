"""``atomic-orders report`` and ``simulate --html/--csv``, run as the real command line (a subprocess)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_file_that_cannot_be_written_is_one_line_and_nothing_half_written(tmp_path: Path) -> None:
    # /dev/full fails every write with ENOSPC (a full disk); no folder can be made under /proc.
    # Both were tracebacks, and a write cut by a full disk left half a page under the name asked for.
    if not (Path("/dev/full").exists() and Path("/proc/self").exists()):
        pytest.skip("needs Linux's /dev/full and /proc")
    write_log(tmp_path / "events.jsonl")
    cases = [(["--csv", "/proc/nope/g.csv"], "--csv '/proc/nope/g.csv': cannot write it"),
             (["--html", "r.html", "--csv", "/proc/nope/g.csv"], "--csv '/proc/nope/g.csv': cannot write it"),
             (["--html", "/dev/full"], "--html '/dev/full': cannot write it (No space left on device)")]
    for argv, expected in cases:
        proc = _run(["report", "events.jsonl", *argv], tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "r.html"]  # no temporary file


def test_a_report_file_is_replaced_whole_or_kept(tmp_path: Path) -> None:
    from atomic_orders.simulator.report.files import write_whole

    target = tmp_path / "r.html"
    target.write_text("the old page", encoding="utf-8")

    try:
        write_whole(target, "x" * 100_000 + "\udcff")  # a lone surrogate: the encoder fails mid-write
    except UnicodeEncodeError:
        pass
    else:
        raise AssertionError("a text UTF-8 cannot hold was written")
    assert target.read_text(encoding="utf-8") == "the old page"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert write_whole(target, "new").read_text(encoding="utf-8") == "new"


def test_a_link_keeps_pointing_and_a_device_is_written_in_place(tmp_path: Path) -> None:
    # Renamed over blindly, the temporary file replaced a symbolic link with a file, and (as root)
    # the device /dev/full itself with a regular file.
    import os
    import stat

    from atomic_orders.simulator.report.files import write_whole

    (tmp_path / "real.html").write_text("old", encoding="utf-8")
    link = tmp_path / "link.html"
    link.symlink_to("real.html")
    write_whole(link, "new")
    assert link.is_symlink() and (tmp_path / "real.html").read_text(encoding="utf-8") == "new"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so opening it to write does not block
    try:
        write_whole(fifo, "through the pipe")
        assert os.read(fd, 100) == b"through the pipe"
    finally:
        os.close(fd)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.html", "pipe", "real.html"]
