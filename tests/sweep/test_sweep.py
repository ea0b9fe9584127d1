"""Sweeps against a real Dask engine: local worker processes, and a scheduler and a worker started apart.

Everything listens on 127.0.0.1 without a dashboard; every cluster and process is shut down in a
``finally``, with bounded waits. A failing seed is made with the documented test hook
(``ATOMIC_ORDERS_SWEEP_FAIL`` in the worker's environment), never by editing a result.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_orders.simulator.sweep.results import ResultsFile
from atomic_orders.simulator.sweep.run import run_sweep
from atomic_orders.simulator.sweep.task import FAIL_ENV, SweepConfig, fingerprint

pytestmark = pytest.mark.slow

CONFIG = SweepConfig(groups=20, profile="hostile", mode="combo")
SEEDS = tuple(range(1, 7))
BIN = Path(sys.executable).parent
CLI = [sys.executable, "-m", "atomic_orders.simulator.cli"]


def _stable(line: dict[str, Any]) -> dict[str, Any]:
    """A results line without what the wall clock decides."""
    return {k: v for k, v in line.items() if k not in ("wall", "cpu")}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """Seeds 1-6 x 20 hostile combo groups on a local cluster of two worker processes."""
    path = tmp_path_factory.mktemp("straight") / "results.jsonl"
    report = run_sweep(SEEDS, CONFIG, path, workers=2)
    assert report.seeds == report.ran_now == len(SEEDS)
    lines = _lines(path)
    assert sorted(line["seed"] for line in lines) == list(SEEDS)  # each seed exactly once
    return {line["seed"]: line for line in lines}


def test_a_local_cluster_of_two_processes_runs_every_seed_once(straight: dict[int, dict[str, Any]]) -> None:
    for seed, line in straight.items():
        assert line["ok"] is True, line
        assert line["error"] is None
        assert sum(line["outcomes"].values()) == CONFIG.groups
        assert line["config"] == CONFIG.to_json()
        assert line["violations"] == {}
        assert len(line["fingerprint"]) == 64, seed


def test_one_worker_gives_the_same_results_as_two(tmp_path: Path, straight: dict[int, dict[str, Any]]) -> None:
    path = tmp_path / "one.jsonl"
    report = run_sweep(SEEDS, CONFIG, path, workers=1)
    assert report.ok
    assert {line["seed"]: _stable(line) for line in _lines(path)} == {s: _stable(v) for s, v in straight.items()}


def test_the_rerun_command_reproduces_a_seed_outside_the_cluster(straight: dict[int, dict[str, Any]]) -> None:
    seed = SEEDS[2]
    argv = CONFIG.rerun_command(seed).split()
    assert argv[:2] == ["atomic-orders", "simulate"]
    done = subprocess.run([*CLI, *argv[1:], "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert fingerprint(json.loads(done.stdout)) == straight[seed]["fingerprint"]


def _run_cli(args: list[str], env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "sweep", *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env=env)


def _stop(proc: subprocess.Popen[Any]) -> None:
    """End a process we started and its process group; bounded waits."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path: Path, straight: dict[int, dict[str, Any]]) -> None:
    results = tmp_path / "resume.jsonl"
    args = ["--seeds", f"{SEEDS[0]}-{SEEDS[-1]}", "--groups", str(CONFIG.groups), "--profile", CONFIG.profile,
            "--mode", CONFIG.mode, "--workers", "2", "--results", str(results), "--quiet"]
    proc = subprocess.Popen([*CLI, "sweep", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)  # the command alone: its worker processes must go by themselves
        proc.wait(timeout=20)
        deadline = time.monotonic() + 60
        while _group_alive(proc.pid):
            assert time.monotonic() < deadline, "worker processes outlived the killed sweep by 60 s"
            time.sleep(0.2)
    finally:
        _stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    before = _lines(results)
    assert 2 <= len(before) < len(SEEDS)
    with results.open("ab") as f:  # and a torn last line, as a kill in the middle of a write leaves
        f.write(b'{"config": {"crash": false, "gro')
    done = _run_cli(args)
    assert done.returncode == 0, done.stderr
    after = _lines(results)
    assert sorted(line["seed"] for line in after) == list(SEEDS)  # every seed exactly once
    assert after[: len(before)] == before  # the lines already there were kept, not re-run
    assert {line["seed"]: _stable(line) for line in after} == {s: _stable(v) for s, v in straight.items()}


def test_ctrl_c_ends_the_sweep_in_one_line_with_status_2_and_no_worker_left(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole foreground group, the worker processes included."""
    results = tmp_path / "r.jsonl"
    proc = subprocess.Popen([*CLI, "sweep", "--seeds", "1-8", "--groups", "100", "--workers", "2", "--results",
                             str(results), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a shell's job
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.read_bytes().count(b"\n") >= 1:
                break  # the workers are running sessions
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert err.strip() == "atomic-orders sweep: error: interrupted (Ctrl-C)"  # no worker's trace
        deadline = time.monotonic() + 30
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "a worker process outlived the sweep"
        assert all(json.loads(raw)["ok"] for raw in results.read_text(encoding="utf-8").splitlines())
    finally:
        _stop(proc)


def test_a_results_file_of_another_config_is_refused_naming_the_difference(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"seed": 1, "config": {**CONFIG.to_json(), "groups": 99}}) + "\n", encoding="utf-8")
    done = _run_cli(["--seeds", "1-2", "--groups", "20", "--results", str(path)])
    assert done.returncode == 2
    assert "groups=99 (this sweep: 20)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_second_sweep_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile.open(path, CONFIG.to_json()):
        done = _run_cli(["--seeds", "1", "--groups", "20", "--results", str(path)])
    assert done.returncode == 2
    assert "another sweep is writing this file" in done.stderr


@pytest.mark.parametrize(("spec", "said"), [
    ("1-x", "'1-x' is not a seed"),
    ("9-3", "ends below its start"),
    ("1-5,4", "seed 4 is named twice"),
    ("1-1000001", "more than 1,000,000 seeds"),
    ("", "expected seeds such as"),
])
def test_a_bad_seeds_spec_is_refused_naming_the_value(spec: str, said: str) -> None:
    done = _run_cli(["--seeds", spec], timeout=60)
    assert done.returncode == 2
    assert said in done.stderr
    assert f"'{spec}'" in done.stderr


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[str]:
    """A ``dask scheduler`` and one ``dask worker`` (one process, one thread) as separate processes."""
    info = tmp_path / "scheduler.json"
    procs: list[subprocess.Popen[Any]] = []
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(info)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 120
        while not info.exists() or not info.read_text(encoding="utf-8").strip():
            assert time.monotonic() < deadline, "the scheduler did not start in 120 s"
            assert procs[0].poll() is None, "the scheduler exited"
            time.sleep(0.1)
        address = json.loads(info.read_text(encoding="utf-8"))["address"]
        assert address.startswith("tcp://127.0.0.1:")
        env = dict(os.environ)
        env[FAIL_ENV] = "3"  # the documented hook: seed 3 fails in this worker
        procs.append(subprocess.Popen(
            [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1",
             "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True))
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_a_sweep_on_a_separate_scheduler_lists_the_failing_seed_with_its_command(
        scheduler: str, tmp_path: Path, straight: dict[int, dict[str, Any]]) -> None:
    done = _run_cli(["--seeds", "1-4", "--groups", "20", "--profile", "hostile", "--scheduler", scheduler,
                     "--out", str(tmp_path), "--json"])
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["seeds"] == 4 and report["ok_seeds"] == 3
    assert [f["seed"] for f in report["failing"]] == [3]
    assert report["failing"][0]["command"] == ("atomic-orders simulate --seed 3 --profile hostile --groups 20 "
                                               "--mode combo")
    assert FAIL_ENV in report["failing"][0]["why"]
    lines = {line["seed"]: line for line in _lines(tmp_path / "sweep-hostile-combo-20g.jsonl")}
    # The same seeds on another machine's worker: the same results.
    for seed in (1, 2, 4):
        assert _stable(lines[seed]) == _stable(straight[seed])
    text = _run_cli(["--seeds", "1-4", "--groups", "20", "--scheduler", scheduler, "--out", str(tmp_path)])
    assert text.returncode == 1
    assert "seed 3: error: RuntimeError" in text.stdout
    assert "    atomic-orders simulate --seed 3 --profile hostile --groups 20 --mode combo" in text.stdout


def test_without_dask_the_command_names_the_extra(tmp_path: Path) -> None:
    # A module that refuses to load stands for an uninstalled distributed (sys.path first).
    (tmp_path / "distributed.py").write_text("raise ImportError('not installed')\n", encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path)
    done = _run_cli(["--seeds", "1", "--groups", "1", "--out", str(tmp_path)], env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("atomic-orders sweep: error: sweeps need Dask: install the 'sweep' extra "
                                   "(pip install 'atomic-orders[sweep]')")
