"""Whole sessions through the real TastyTrade client over HTTP, and the command line."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests

from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.cli.main import main
from atomic_orders.simulator.emulator import run_standalone
from atomic_orders.simulator.session.runner import SessionConfig, run_session


@pytest.mark.slow
def test_chaos_session_of_200_groups_over_http_has_zero_violations() -> None:
    config = SessionConfig(seed=3, groups=200, profile="rough", mode=ExecutionMode.COMBO,
                           backend="tastytrade-emulator", http_faults="light")
    report = run_session(config)
    assert report.invariant_violations == 0, report.violation_samples
    assert report.unaccounted_exposure == {}
    assert report.unfinished == []
    assert sum(report.outcomes.values()) == 200
    assert report.outcomes["committed"] > 100
    assert report.chaos["fills"] > 200 and report.chaos["replaces_requested"] > 0
    assert report.to_json()["backend"] == "tastytrade-emulator"


def test_simulate_command_with_the_emulator_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code = main(["simulate", "--groups", "12", "--profile", "calm", "--mode", "legged", "--seed", "2",
                 "--backend", "tastytrade-emulator", "--json", str(out), "--quiet"])
    report = json.loads(out.read_text())
    assert code == 0 and report["backend"] == "tastytrade-emulator"
    assert report["invariant_violations"] == 0 and sum(report["outcomes"].values()) == 12
    assert "invariant violations" in capsys.readouterr().out


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend="):
        SessionConfig(backend="nope")


def test_standalone_emulator_serves_with_the_wall_clock() -> None:
    stop = threading.Event()
    lines: list[str] = []
    thread = threading.Thread(target=run_standalone, args=(0, "calm", 1),
                              kwargs={"speed": 10.0, "print_fn": lines.append, "stop": stop}, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if lines:
                break
            time.sleep(0.02)
        url = lines[0].split()[3]
        assert url.startswith("http://127.0.0.1:")
        token = requests.post(url + "/oauth/token", timeout=5, headers={"User-Agent": "probe/1"},
                              json={"grant_type": "refresh_token", "refresh_token": "emulator-refresh-token",
                                    "client_secret": "emulator-client-secret"}).json()["access_token"]
        headers = {"User-Agent": "probe/1", "Authorization": f"Bearer {token}"}
        first = requests.get(url + "/accounts/5WT00001/orders/live", headers=headers, timeout=5)
        assert first.status_code == 200 and first.json()["data"]["items"] == []
        quote = "/_emulator/quotes?symbol=SPXW%20%20260112C05000000"
        q1 = requests.get(url + quote, headers=headers, timeout=5).json()["data"]["items"][0]["updated-at"]
        time.sleep(0.3)
        q2 = requests.get(url + quote, headers=headers, timeout=5).json()["data"]["items"][0]["updated-at"]
        assert q2 > q1, "virtual time must follow the wall clock"
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
