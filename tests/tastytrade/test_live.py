"""The live loop: ``atomic-orders live`` against ``atomic-orders emulate`` (real processes, loopback),
``atomic-orders recover`` on the wall clock, and an in-process LiveSession with streamer faults on."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.live import EXIT_LEFT_OPEN, EXIT_SETTLED, LiveSession, LiveSettings
from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource
from atomic_orders.backends.tastytrade.streamer import AccountStreamer, StreamerSettings
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.journal import Journal, read_journal
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.cli.live import DemoCondors
from atomic_orders.simulator.emulator import TastytradeEmulator

CLI = [sys.executable, "-m", "atomic_orders.simulator.cli"]
ENV = dict(os.environ, TASTYTRADE_CLIENT_SECRET="emulator-client-secret",
           TASTYTRADE_REFRESH_TOKEN="emulator-refresh-token", PYTHONUNBUFFERED="1")
ACCOUNT = "5WT00001"


def _wait_for(path: Path, text: str, count: int, proc: subprocess.Popen[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = path.read_text() if path.exists() else ""
        if seen.count(text) >= count:
            return seen
        assert proc.poll() is None, f"the process ended early ({proc.returncode}):\n{seen}"
        time.sleep(0.1)
    raise AssertionError(f"{text!r} x{count} not seen within {timeout} s:\n{path.read_text()}")


@pytest.fixture
def emulate(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``atomic-orders emulate --port 0 --profile calm`` as a process; yields (REST URL, streamer URL)."""
    proc = subprocess.Popen([*CLI, "emulate", "--port", "0", "--profile", "calm"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=ENV, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        url = streamer = ""
        deadline = time.monotonic() + 60
        while not streamer and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the emulator ended before printing its URLs"
            if line.startswith("TastyTrade emulator on "):
                url = line.split()[3]
            elif "account streamer on " in line:
                streamer = line.split()[-1]
        assert url.startswith("http://127.0.0.1:") and streamer.startswith("ws://127.0.0.1:")
        yield url, streamer
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_live_command_stops_on_sigint_and_recover_settles_what_it_left(emulate: tuple[str, str],
                                                                      tmp_path: Path) -> None:
    url, streamer = emulate
    journal = tmp_path / "live.journal"
    log_path = tmp_path / "live.log"
    with log_path.open("w") as log_file:
        live = subprocess.Popen([*CLI, "live", "--url", url, "--account", ACCOUNT, "--journal", str(journal),
                                 "--streamer-url", streamer, "--demo-groups", "3", "--demo-every", "0.3",
                                 "--grace", "0"],
                                stdout=subprocess.PIPE, stderr=log_file, text=True, env=ENV, cwd=tmp_path)
        try:
            # the streamer may connect after the first turns on a loaded machine (polling meanwhile)
            _wait_for(log_path, "account streamer up", 1, live, timeout=90)
            _wait_for(log_path, " submitted: iron_condor", 2, live, timeout=90)
            live.send_signal(signal.SIGINT)
            out, _ = live.communicate(timeout=60)
        finally:
            if live.poll() is None:
                live.kill()
                live.wait()
    log = log_path.read_text()
    # Grace 0: the groups' entries (seconds to fill at the calm broker) are left to recovery.
    assert live.returncode == EXIT_LEFT_OPEN, (live.returncode, out, log)
    for line in (f"connected to {url}, account {ACCOUNT}", "account streamer up", "SIGINT received: no new groups",
                 "groups left open in the journal", "'atomic-orders recover' takes over"):
        assert line in log, line
    assert "left open in the journal:" in out and "atomic-orders recover" in out
    assert "emulator-client-secret" not in log + out and "emulator-refresh-token" not in log + out
    assert "Bearer" not in log + out
    submitted = {line.split()[5] for line in log.splitlines() if " submitted: iron_condor" in line}
    contents = read_journal(journal)
    assert submitted and submitted <= set(contents.groups)
    left = {g for g in contents.groups if not contents.is_finished(g)}
    assert left and left == set(out.split("left open in the journal: ")[1].split(";")[0].split(", "))

    rec = subprocess.run([*CLI, "recover", "--journal", str(journal), "--backend", "tastytrade-emulator",
                          "--url", url, "--account", ACCOUNT, "--grace", "180"],
                         capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=240)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert '"clock": "wall"' in rec.stdout and "unfinished 0" in rec.stdout
    after = read_journal(journal)
    assert all(after.is_finished(g) for g in after.groups)
    assert {s["kind"] for s in after.sessions} == {"start", "recover"}


def test_live_command_refuses_without_credentials_and_production_without_the_flag(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if not k.startswith("TASTYTRADE_")}
    proc = subprocess.run([*CLI, "live", "--url", "http://127.0.0.1:9", "--account", ACCOUNT, "--journal",
                           str(tmp_path / "j"), "--no-streamer"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 2 and "TASTYTRADE_CLIENT_SECRET" in proc.stderr
    proc = subprocess.run([*CLI, "live", "--url", "https://api.tastyworks.com", "--account", ACCOUNT, "--journal",
                           str(tmp_path / "j")], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 2 and "--production" in proc.stderr
    proc = subprocess.run([*CLI, "live", "--url", "http://10.0.0.1", "--account", ACCOUNT, "--journal",
                           str(tmp_path / "j"), "--no-streamer"], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 2 and "loopback" in proc.stderr
    assert not (tmp_path / "j").exists()
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a journal\n")
    proc = subprocess.run([*CLI, "live", "--url", "http://127.0.0.1:9", "--account", ACCOUNT, "--journal",
                           str(foreign), "--no-streamer"], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 2 and "--journal" in proc.stderr and "not a SQLite file" in proc.stderr
    assert foreign.read_text() == "not a journal\n"


class _WallEmulator:
    """An in-process emulator whose simulated session opens now and follows the wall clock."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.sim = BrokerSimulator(3, ChaosProfile.preset("calm"), session_open=now)
        self.emulator = TastytradeEmulator(self.sim).start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        opened = self.sim.clock.session_open
        while not self._stop.wait(0.02):
            self.emulator.advance_to((dt.datetime.now(dt.UTC) - opened).total_seconds())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.emulator.stop()


def test_live_session_settles_every_group_with_streamer_faults_on(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="atomic_orders.tastytrade")
    wall = _WallEmulator()
    hub = wall.emulator.streamer
    hub.duplicate = True
    hub.reorder = True
    hub.batch = 3
    config = TastytradeConfig(ACCOUNT, wall.emulator.url, streamer_url=wall.emulator.streamer_url,
                              backoff_base=0.01, backoff_max=0.05)
    client = TastytradeApiClient(config, wall.emulator.credentials())
    streamer = AccountStreamer(config.streamer_url, ACCOUNT, client.tokens.authorization,
                               on_refused=client.tokens.invalidate,
                               settings=StreamerSettings(backoff_base=0.05, backoff_max=0.2)).start()
    assert streamer.wait_connected(10)
    backend = TastytradeBackend(client, streamer=streamer, fast_interval=0.5)
    backend.quote_source = TastytradeQuoteSource(client, backend.clock, symbols=backend.open_symbols)
    demo = DemoCondors(groups=4, every=0.2)
    # Entries worked for 6 s at most (then cancelled and rolled back): every group ends within the grace.
    policy = ExecutionPolicy(step_seconds=0.5, deadline_seconds=6.0)
    session = LiveSession(backend, Journal(tmp_path / "j.journal", sync="normal"), strategy=demo,
                          settings=LiveSettings(grace=60, max_sleep=0.2), policy=policy)

    def faults() -> None:  # drop the socket once groups are working, then go silent briefly
        time.sleep(1.0)
        hub.drop()
        time.sleep(1.0)
        hub.drop()

    chaos = threading.Thread(target=faults, daemon=True)
    try:
        chaos.start()
        result = session.run(duration=4.0)
    finally:
        chaos.join(timeout=5)
        session.close()
        wall.close()
    assert demo.placed == 4 and result.groups_submitted == 4
    assert result.exit_code == EXIT_SETTLED, result
    assert result.left_open == () and result.violations == ()
    assert sum(result.settled.values()) == 4
    assert result.stop_reason == "duration of 4 s reached"
    assert backend.resyncs >= 2  # the first connect and at least one reconnect re-read the orders
    assert streamer.stats["connects"] >= 2
    text = caplog.text
    assert "account streamer up" in text and "account streamer down" in text
    assert text.count(" settled: ") == 4
    contents = read_journal(tmp_path / "j.journal")
    assert len(contents.groups) == 4 and all(contents.is_finished(g) for g in contents.groups)


def test_live_settings_and_the_demo_refuse_bad_values() -> None:
    with pytest.raises(ValidationError, match="grace"):
        LiveSettings(grace=-1)
    with pytest.raises(ValidationError, match="max_sleep"):
        LiveSettings(max_sleep=0)
    with pytest.raises(ValidationError, match="width"):
        DemoCondors(groups=1, every=1, width=7)
