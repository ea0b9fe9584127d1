"""``atomic-orders simulate --journal``, ``journal show|salvage`` and ``recover``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.fsm.journal import read_journal
from atomic_orders.simulator.cli.main import main
from atomic_orders.simulator.crash.harness import KILL_ENV, ControlledEmulator, CrashSession, emulator_truth, verify
from tests.journal.dying import run_until_death


@pytest.fixture(scope="module")
def journal_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "s.journal"
    assert main(["simulate", "--groups", "12", "--seed", "3", "--quiet", "--journal", str(path),
                 "--journal-sync", "normal"]) == 0
    return path


def test_simulate_refuses_an_existing_journal(journal_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--groups", "1", "--quiet", "--journal", str(journal_path)]) == 2
    assert str(journal_path) in capsys.readouterr().err


def test_journal_show(journal_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "show", "--journal", str(journal_path)]) == 0
    out = capsys.readouterr().out
    assert "12 groups" in out and "G000012" in out and "unfinished groups: 0" in out
    assert main(["journal", "show", "--journal", str(journal_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["groups"]) == 12 and data["open_groups"] == [] and data["problem"] is None
    written = journal_path.parent / "show" / "groups.json"  # --json PATH: the same JSON, to a file
    assert main(["journal", "show", "--journal", str(journal_path), "--json", str(written)]) == 0
    assert json.loads(written.read_text()) == data and str(written) in capsys.readouterr().out
    assert main(["journal", "show", "--journal", str(journal_path), "--group", "G000001"]) == 0
    trail = capsys.readouterr().out
    assert "pending -validate-> validated" in trail and "INTENT G000001-C" in trail and "FINISHED" in trail
    assert main(["journal", "show", "--journal", str(journal_path), "--group", "G999999"]) == 2


def test_journal_show_on_a_damaged_file(journal_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.journal"
    data = journal_path.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    assert main(["journal", "show", "--journal", str(broken)]) == 2
    captured = capsys.readouterr()
    assert str(broken) in captured.err and "corrupted" in captured.err
    assert "groups" in captured.out  # the intact prefix is still shown
    assert main(["journal", "salvage", "--journal", str(broken), "--out", str(tmp_path / "saved.journal")]) == 0
    assert read_journal(tmp_path / "saved.journal").records > 0


def test_recover_simulated_rehearsal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.journal"
    session = CrashSession(seed=2, groups=6)
    run_until_death(session, path, "events_committed", 6,
                    config={"seed": session.seed, "profile": session.profile,
                            "session_seconds": session.session_seconds})
    before = read_journal(path)
    assert any(not before.is_finished(g) for g in before.groups)
    assert main(["recover", "--journal", str(path), "--backend", "simulated"]) == 0
    out = capsys.readouterr().out
    assert "rehearsal" in out and "groups rebuilt" in out and "unfinished 0" in out
    after = read_journal(path)
    assert all(after.is_finished(g) for g in after.groups)


def test_recover_simulated_leaves_a_finished_session_as_it_finished(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: the rehearsal's fresh simulator denied the orders of the last group (finished
    within the linger, so rebuilt and reconciled), which re-opened that committed group and
    failed it against an empty account."""
    path = tmp_path / "done.journal"
    assert main(["simulate", "--groups", "5", "--seed", "7", "--quiet", "--journal", str(path)]) == 0
    before = read_journal(path)
    assert sorted(before.last_state(g) or "" for g in before.groups) == ["committed"] * 5
    assert all(before.is_finished(g) for g in before.groups)
    capsys.readouterr()
    assert main(["recover", "--journal", str(path), "--backend", "simulated"]) == 0
    out = capsys.readouterr().out
    rebuilt = next(int(line.split()[2]) for line in out.splitlines() if line.strip().startswith("groups rebuilt"))
    assert rebuilt >= 1  # a group finished within the linger was judged against the rehearsal's broker
    for line in ("finished, re-opened       0", "unexplained exposure      0", "intents not found         0",
                 "finished before recovery: 5, changed by recovery: 0", "after recovery: {'committed': 5}",
                 f"written to {path}"):
        assert line in out, line
    after = read_journal(path)
    for gid in before.groups:  # nothing re-opened: no transition, no second finish, the same final state
        assert after.transitions[gid] == before.transitions[gid], gid
        assert [f["state"] for f in after.finishes[gid]] == ["committed"], gid
    assert [s["kind"] for s in after.sessions] == ["start", "recover"]


def _child_killed_mid_session(emulator: ControlledEmulator, path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> OAuthCredentials:
    """Run the seed-9, 4-condor session in a child process that SIGKILLs itself after the 4th event
    commit; export the emulator's credentials for the ``recover`` that follows and return them."""
    creds = emulator.credentials()
    env = dict(os.environ, TASTYTRADE_CLIENT_SECRET=creds.client_secret.reveal(),
               TASTYTRADE_REFRESH_TOKEN=creds.refresh_token.reveal())
    env[KILL_ENV] = "events_committed:4"
    child = subprocess.run(
        [sys.executable, "-m", "atomic_orders.simulator.cli", "crash", "child", "--url", emulator.url, "--account",
         emulator.account_number, "--journal", str(path), "--seed", "9", "--groups", "4"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr
    monkeypatch.setenv("TASTYTRADE_CLIENT_SECRET", creds.client_secret.reveal())
    monkeypatch.setenv("TASTYTRADE_REFRESH_TOKEN", creds.refresh_token.reveal())
    return creds


def test_recover_against_the_emulator_after_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    session = CrashSession(seed=9, groups=4)
    emulator = ControlledEmulator(session.broker()).start()
    try:
        path = tmp_path / "e.journal"
        creds = _child_killed_mid_session(emulator, path, monkeypatch)
        before = read_journal(path)
        assert any(not before.is_finished(g) for g in before.groups)
        assert main(["recover", "--journal", str(path), "--backend", "tastytrade-emulator", "--url", emulator.url,
                     "--account", emulator.account_number]) == 0
        assert "unfinished 0" in capsys.readouterr().out
        after = read_journal(path)
        problems, figures = verify(emulator_truth(emulator), path, sorted(after.groups))
        assert problems == []
        assert figures["groups"] == len(before.groups)
        # no secret reached the journal (nor its WAL): client secret, refresh token, access tokens
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("e.journal"))
        for secret in (creds.client_secret.reveal(), creds.refresh_token.reveal(), *emulator._tokens):
            assert secret.encode() not in raw
        assert emulator.tokens_issued >= 2
    finally:
        emulator.stop()


@pytest.mark.parametrize("command", [["journal", "show", "--journal"], ["simulate", "--groups", "3", "--seed", "3"]])
def test_output_into_a_closed_pipe_ends_quietly(command: list[str], journal_path: Path) -> None:
    """``atomic-orders ... | head``: the reader is gone, so no BrokenPipeError trace, status 141."""
    argv = [*command, str(journal_path)] if command[0] == "journal" else command
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone: the first write fails (deterministically)
    try:
        proc = subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 141


def test_recover_refuses_a_damaged_journal(journal_path: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A journal changed on disk: a clear error naming the file, status 2, the file left as it was."""
    import shutil
    import sqlite3

    damaged = tmp_path / "changed.journal"
    shutil.copy(journal_path, damaged)
    db = sqlite3.connect(damaged)
    db.execute("UPDATE intents SET purpose = 'unwind' WHERE seq = (SELECT MIN(seq) FROM intents)")
    db.commit()
    db.close()
    before = damaged.read_bytes()
    assert main(["recover", "--journal", str(damaged), "--backend", "simulated"]) == 2
    err = capsys.readouterr().err
    assert str(damaged) in err and "does not match its checksum" in err and "Traceback" not in err
    assert damaged.read_bytes() == before  # nothing appended to a journal that does not verify


def test_recover_without_credentials_or_emulator_is_a_clear_error(journal_path: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    import socket

    path = tmp_path / "copy.journal"
    shutil.copy(journal_path, path)
    before = path.read_bytes()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    argv = ["recover", "--journal", str(path), "--backend", "tastytrade-emulator", "--url", url, "--account", "5WT1"]
    monkeypatch.delenv("TASTYTRADE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("TASTYTRADE_REFRESH_TOKEN", raising=False)
    assert main(argv) == 2
    assert "TASTYTRADE_CLIENT_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("TASTYTRADE_CLIENT_SECRET", "emulator-only-secret")
    monkeypatch.setenv("TASTYTRADE_REFRESH_TOKEN", "emulator-only-token")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert url in err and "did not answer" in err and "emulator-only" not in err
    assert path.read_bytes() == before


def test_recover_exits_nonzero_on_a_position_no_group_owns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from atomic_orders.backends.tastytrade.client import TastytradeApiClient
    from atomic_orders.backends.tastytrade.config import TastytradeConfig
    from atomic_orders.backends.tastytrade.payloads import build_order_payload
    from atomic_orders.fsm.leg import Leg, Side
    from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose

    session = CrashSession(seed=9, groups=4)
    emulator = ControlledEmulator(session.broker()).start()
    try:
        path = tmp_path / "e.journal"
        creds = _child_killed_mid_session(emulator, path, monkeypatch)
        # While the process is down somebody trades in the account by hand: a position no group owns.
        market = emulator.simulator.market
        strike = int(market.spot(emulator.simulator.clock.seconds) // 5 * 5)
        manual = OrderRequest("MANUAL-1", "MANUAL", Purpose.ENTRY,
                              (Leg(market.symbol(market.default_expiry, "P", strike), Side.BUY),), 1,
                              order_type=OrderType.MARKET)
        client = TastytradeApiClient(TastytradeConfig(account_number=emulator.account_number, base_url=emulator.url),
                                     creds)
        client.place_order(build_order_payload(manual))
        client.close()
        emulator.simulator.advance_to(emulator.simulator.clock.seconds + 30)
        emulator.account.pump()
        code = main(["recover", "--journal", str(path), "--backend", "tastytrade-emulator", "--url", emulator.url,
                     "--account", emulator.account_number])
        err = capsys.readouterr().err
        assert code == 1
        assert "does not account for" in err and manual.legs[0].symbol.occ in err
    finally:
        emulator.stop()
