"""A user's mistake is one line on stderr and exit status 2, never a traceback.

Each case runs the real command line as a subprocess (``python -m atomic_orders.simulator.cli``):
a bad option value, a port already in use, a folder where a file goes, Ctrl-C, a missing
graphviz ``dot``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "atomic_orders.simulator.cli"]


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def _assert_one_line_exit_2(returncode: int, stderr: str, *expected: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert returncode == 2, (returncode, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), stderr
    for word in expected:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize(("argv", "expected"), [
    (["simulate", "--profile", "stormy"], ["atomic-orders simulate", "--profile", "'stormy'"]),
    (["simulate", "--groups", "-3"], ["--groups", "'-3'", ">= 0"]),
    (["simulate", "--seed", "seven"], ["--seed", "'seven'"]),
    (["simulate", "--max-quantity", "0"], ["--max-quantity", "'0'"]),
    (["emulate", "--port", "70000"], ["--port", "'70000'"]),
    (["check", "--workers", "0"], ["--workers", "'0'"]),
    (["check", "--quantity", "0"], ["--quantity", "'0'"]),
    (["simulate", "--no-such-option"], ["--no-such-option"]),
    (["no-such-command"], ["'no-such-command'"]),
    (["recover", "--journal", "missing.journal", "--backend", "simulated"], ["--journal", "does not exist"]),
    (["crash", "run", "--runs", "0"], ["atomic-orders crash run", "--runs"]),
])
def test_a_bad_option_value(argv: list[str], expected: list[str], tmp_path: Path) -> None:
    proc = _run(argv, tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, *expected)
    assert proc.stdout == ""


@pytest.mark.parametrize("argv", [
    ["simulate", "--groups", "1", "--quiet", "--json", "out/"],
    ["simulate", "--groups", "1", "--quiet", "--json", "out"],
    ["simulate", "--groups", "1", "--quiet", "--events", "out"],
    ["simulate", "--groups", "1", "--quiet", "--journal", "out"],
    ["simulate", "--groups", "1", "--quiet", "--json", "a-file/report.json"],
    ["bench", "--quick", "--json", "out"],
    ["journal", "show", "--journal", "out"],
    ["journal", "salvage", "--journal", "out", "--out", "new.journal"],
    ["recover", "--journal", "out", "--backend", "simulated"],
    ["crash", "child", "--url", "http://127.0.0.1:9", "--account", "A", "--journal", "out"],
])
def test_a_folder_where_a_file_goes(argv: list[str], tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "a-file").write_text("a file, not a folder\n")
    proc = _run(argv, tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr)
    assert "'out" in proc.stderr or "'a-file" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "out"]  # nothing was written
    assert list((tmp_path / "out").iterdir()) == []


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _run(["emulate", "--port", str(port)], tmp_path, timeout=60)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, "atomic-orders emulate", f"--port {port}", "in use")


def test_ctrl_c(tmp_path: Path) -> None:
    """SIGINT while a session runs (its journal exists: the session has started)."""
    journal = tmp_path / "s.journal"
    proc = subprocess.Popen([*CLI, "simulate", "--groups", "100000", "--quiet", "--journal", str(journal)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not journal.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert journal.exists() and proc.poll() is None, "the session did not start"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    _assert_one_line_exit_2(proc.returncode, err, "atomic-orders simulate", "interrupted")


def test_graphviz_dot_missing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))  # python is started by its full path; dot is nowhere
    proc = _run(["diagrams", "--out", str(tmp_path / "diagrams")], tmp_path, env=env)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, "atomic-orders diagrams", "'dot'", "graphviz")


def test_a_bug_still_shows_its_traceback(tmp_path: Path) -> None:
    """The boundary maps only known user errors: anything else keeps its traceback (and is no status 2)."""
    code = ("import sys; from atomic_orders.simulator.cli import main as m; "
            "m._cmd_check = lambda args: 1 / 0; sys.exit(m.main(['check']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert proc.returncode == 1
