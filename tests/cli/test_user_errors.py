"""A user's mistake is one line on stderr and exit status 2, never a traceback.

Each case runs the real command line as a subprocess (``python -m atomic_orders.simulator.cli``):
a bad option value, a size above its maximum, a port already in use, a folder where a file goes
and a file where a folder goes, a file that is not a journal, an unreachable emulator, Ctrl-C
(once or twice), a missing graphviz ``dot``. Every line starts with the command's full name.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
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
    (["simulate", "--no-such-option"], ["atomic-orders simulate: error: unrecognized", "--no-such-option"]),
    (["journal", "show", "--journal", "j", "--bogus"], ["atomic-orders journal show: error:", "--bogus"]),
    (["crash", "run", "extra"], ["atomic-orders crash run: error:", "extra"]),
    (["simulate", "--max-quantity", "100000"], ["--max-quantity", "above the maximum 1000"]),
    (["no-such-command"], ["'no-such-command'"]),
    (["recover", "--journal", "missing.journal", "--backend", "simulated"], ["--journal", "does not exist"]),
    (["crash", "run", "--runs", "0"], ["atomic-orders crash run", "--runs"]),
    # sizes have upper bounds, refused while parsing (a typo must not run for hours or eat the memory)
    (["simulate", "--groups", "99999999999999999999"], ["--groups", "above the maximum 1000000"]),
    (["check", "--depth", "99"], ["atomic-orders check:", "--depth", "'99'", "maximum"]),
    (["lean-run", "algorithm.py", "--days", "100000"], ["atomic-orders lean-run:", "--days", "maximum 260"]),
    (["crash", "run", "--runs", "100000"], ["atomic-orders crash run:", "--runs", "maximum"]),
    (["crash", "run", "--kills", "100000000"], ["atomic-orders crash run:", "--kills", "maximum"]),
    (["check", "--quantity", "1001"], ["atomic-orders check:", "--quantity", "'1001'", "maximum 1000"]),
    (["bench", "--scaling", "1000001"], ["atomic-orders bench:", "--scaling", "'1000001'", "maximum 1,000,000"]),
    # an option that needs another backend is refused before anything runs, not by a traceback
    (["simulate", "--groups", "5", "--streamer", "on"], ["--streamer on", "--backend tastytrade-emulator"]),
    # lean-run's numbers are the shared option types, with the same words
    (["lean-run", "algorithm.py", "--days", "x"], ["--days", "'x' is not an integer"]),
    (["lean-run", "algorithm.py", "--seed", "x"], ["--seed", "'x' is not an integer"]),
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


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c(presses: int, tmp_path: Path) -> None:
    """SIGINT while a session runs (its journal exists: the session has started); a second one,
    impatient, while it shuts down changes nothing (no "Exception ignored" trace, no death by signal)."""
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
        for _ in range(presses - 1):
            time.sleep(0.05)
            if proc.poll() is None:
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
    assert not (tmp_path / "diagrams").exists()  # checked before anything is written: nothing half-done


def test_a_bug_still_shows_its_traceback(tmp_path: Path) -> None:
    """The boundary maps only known user errors: anything else keeps its traceback (and is no status 2)."""
    code = ("import sys; from atomic_orders.simulator.cli import main as m; "
            "m._cmd_check = lambda args: 1 / 0; sys.exit(m.main(['check']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert "Traceback" in proc.stderr and "ZeroDivisionError" in proc.stderr
    assert proc.returncode == 1


@pytest.mark.parametrize(("command", "maximum"), [
    (["simulate"], "at most 1,000,000"), (["check"], "at most 8"), (["lean-run"], "at most 260"),
    (["crash", "run"], "at most 1,000"),
])
def test_the_help_says_the_maxima(command: list[str], maximum: str, tmp_path: Path) -> None:
    proc = _run([*command, "--help"], tmp_path, env=dict(os.environ, COLUMNS="400"))
    assert proc.returncode == 0 and maximum in proc.stdout, proc.stdout
    if command == ["lean-run"]:
        assert "--days N" in proc.stdout and "--seed N" in proc.stdout


@pytest.mark.parametrize(("argv", "command"), [
    (["diagrams", "--out", "a-file"], "diagrams"),
    (["docs", "--out", "a-file"], "docs"),
    (["diagrams", "--out", "a-file/diagrams"], "diagrams"),
    (["crash", "run", "--out", "a-file"], "crash run"),
    (["lean-bundle", "a-file"], "lean-bundle"),
])
def test_a_file_where_a_folder_goes(argv: list[str], command: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("a file, not a folder\n")
    proc = _run(argv, tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, f"atomic-orders {command}: error:", "'a-file")
    assert "is a file" in proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
    assert (tmp_path / "a-file").read_text() == "a file, not a folder\n"


@pytest.mark.parametrize("argv", [["docs", "--check"], ["diagrams", "--check"]])
def test_check_outside_a_checkout_says_there_is_no_folder(argv: list[str], tmp_path: Path) -> None:
    proc = _run(argv, tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, f"atomic-orders {argv[0]}: error: --out", "no such folder")
    assert proc.stdout == "" and "stale" not in proc.stderr


def _not_journals(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "README.md").write_text("# a project\n\nNot a journal.\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "random").write_bytes(bytes(range(256)) * 20)
    db = sqlite3.connect(tmp_path / "other.db")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    return {"text": tmp_path / "README.md", "empty": tmp_path / "empty", "random": tmp_path / "random",
            "sqlite": tmp_path / "other.db", "devnull": Path(os.devnull)}


@pytest.mark.parametrize("kind", ["text", "empty", "random", "sqlite", "devnull"])
@pytest.mark.parametrize("command", [["journal", "show"], ["journal", "salvage"], ["recover"]])
def test_a_file_that_is_not_a_journal(kind: str, command: list[str], tmp_path: Path) -> None:
    """One line naming the file (not "corrupted", no salvage advice); salvage writes nothing."""
    path = _not_journals(tmp_path)[kind]
    extra = {"journal salvage": ["--out", "new.journal"], "recover": ["--backend", "simulated"]}
    proc = _run([*command, "--journal", str(path), *extra.get(" ".join(command), [])], tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, f"atomic-orders {' '.join(command)}: error: --journal:",
                            f"{str(path)!r} is not a journal (")
    said = proc.stderr.split(": error: ", 1)[1]
    assert "corrupted" not in said and "salvage" not in said
    assert proc.stdout == ""
    assert not (tmp_path / "new.journal").exists()


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("journal") / "s.journal"
    proc = _run(["simulate", "--groups", "1", "--quiet", "--journal", str(path)], path.parent)
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.mark.parametrize(("argv", "expected"), [
    (["journal", "show", "--group", "NOPE"], ["atomic-orders journal show: error: --group 'NOPE' is not in"]),
    (["recover", "--backend", "tastytrade-emulator"],
     ["atomic-orders recover: error: --backend tastytrade-emulator needs --url and --account"]),
])
def test_errors_found_while_running_name_the_whole_command(argv: list[str], expected: list[str], journal: Path,
                                                           tmp_path: Path) -> None:
    proc = _run([*argv, "--journal", str(journal)], tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, *expected)
    assert proc.stdout == ""


def test_a_damaged_journal_is_shown_and_salvage_is_suggested(journal: Path, tmp_path: Path) -> None:
    """Unlike a file that is no journal: the intact prefix is shown, the last line names the damage."""
    broken = tmp_path / "broken.journal"
    data = journal.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    proc = _run(["journal", "show", "--journal", str(broken)], tmp_path)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, "atomic-orders journal show: error:", "is corrupted",
                            "journal salvage")
    assert "groups" in proc.stdout


@pytest.mark.parametrize(("argv", "command"), [
    (["crash", "child", "--account", "5WT1", "--journal", "j.journal"], "crash child"),
    (["recover", "--backend", "tastytrade-emulator", "--account", "5WT1"], "recover"),
])
def test_an_unreachable_emulator(argv: list[str], command: str, journal: Path, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    if argv[0] == "recover":
        copy = tmp_path / "copy.journal"
        copy.write_bytes(journal.read_bytes())
        argv = [*argv, "--journal", str(copy)]
    env = dict(os.environ, TASTYTRADE_CLIENT_SECRET="emulator-only-secret",
               TASTYTRADE_REFRESH_TOKEN="emulator-only-token")
    proc = _run([*argv, "--url", url], tmp_path, env=env)
    _assert_one_line_exit_2(proc.returncode, proc.stderr, f"atomic-orders {command}: error: --url",
                            url, "did not answer", "crash serve")
    assert "emulator-only" not in proc.stderr
    assert not (tmp_path / "j.journal").exists()


def test_the_recover_help_is_plain_text(tmp_path: Path) -> None:
    proc = _run(["recover", "--help"], tmp_path)
    assert proc.returncode == 0 and "tastytrade-emulator" in proc.stdout
    assert "``" not in proc.stdout and ":mod:" not in proc.stdout


def test_a_journal_another_process_writes(journal: Path, tmp_path: Path) -> None:
    """recover refuses a journal another process holds open for writing, before saying it writes to it."""
    held = tmp_path / "held.journal"
    held.write_bytes(journal.read_bytes())
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from atomic_orders.fsm.journal import Journal; "
         "j = Journal(sys.argv[1]); print('open', flush=True); time.sleep(60)", str(held)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        proc = _run(["recover", "--journal", str(held), "--backend", "simulated"], tmp_path)
        _assert_one_line_exit_2(proc.returncode, proc.stderr, "atomic-orders recover: error:",
                                f"pid {holder.pid}")
        assert "written to" not in proc.stdout
    finally:
        holder.kill()
        holder.wait(timeout=30)
