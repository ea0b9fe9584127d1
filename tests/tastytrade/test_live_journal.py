"""The live loop refuses a journal written for another TastyTrade host or account (in-process
emulators on 127.0.0.1): recovering it there would read its orders as never placed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.live import ForeignJournal, LiveSession, LiveSettings
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator import TastytradeEmulator

POLL_ONLY = LiveSettings(streamer=False)


@pytest.fixture
def two_brokers() -> Iterator[tuple[TastytradeEmulator, TastytradeEmulator]]:
    first = TastytradeEmulator(BrokerSimulator(1, ChaosProfile())).start()
    second = TastytradeEmulator(BrokerSimulator(2, ChaosProfile())).start()
    yield first, second
    first.stop()
    second.stop()


def test_a_journal_of_another_host_or_account_is_refused_before_any_request(
        tmp_path: Path, two_brokers: tuple[TastytradeEmulator, TastytradeEmulator]) -> None:
    first, second = two_brokers
    path = tmp_path / "live.journal"
    account = first.account_number
    with LiveSession.open(TastytradeConfig(account, first.url), first.credentials(), path, settings=POLL_ONLY):
        pass  # the session's start (host, account) is journaled
    written = path.read_bytes()
    before = second.request_count("POST /oauth/token")
    with pytest.raises(ForeignJournal, match="base_url") as info:
        LiveSession.open(TastytradeConfig(account, second.url), second.credentials(), path, settings=POLL_ONLY)
    assert first.url in str(info.value) and second.url in str(info.value)
    assert second.request_count("POST /oauth/token") == before  # refused before talking to the broker
    with pytest.raises(ForeignJournal, match="account"):
        LiveSession.open(TastytradeConfig("5WT99999", first.url), first.credentials(), path, settings=POLL_ONLY)
    assert path.read_bytes() == written
    # the same host and account carry on with it
    with LiveSession.open(TastytradeConfig(account, first.url), first.credentials(), path, settings=POLL_ONLY):
        pass


def test_a_journal_that_cannot_be_created_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        two_brokers: tuple[TastytradeEmulator, TastytradeEmulator]) -> None:
    from atomic_orders.simulator.cli.main import EXIT_USER_ERROR, main

    first, _second = two_brokers
    monkeypatch.setenv("TASTYTRADE_CLIENT_SECRET", "emulator-client-secret")
    monkeypatch.setenv("TASTYTRADE_REFRESH_TOKEN", "emulator-refresh-token")
    missing = tmp_path / "no-such-folder" / "live.journal"
    code = main(["live", "--url", first.url, "--account", first.account_number, "--no-streamer",
                 "--journal", str(missing), "--duration", "1"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR  # before: a FileNotFoundError traceback
    assert err.count("\n") == 1 and "--journal" in err and "No such file or directory" in err, err
    assert first.request_count("POST /oauth/token") == 0


def test_a_failed_group_is_not_a_clean_exit() -> None:
    """A ``failed`` group leaves a position for a human: the run must not exit 0 on it."""
    from atomic_orders.backends.tastytrade.live import (
        EXIT_FAILED_GROUPS,
        EXIT_LEFT_OPEN,
        EXIT_SETTLED,
        EXIT_VIOLATIONS,
        LiveResult,
    )

    def result(settled: dict[str, int], left: tuple[str, ...] = (), violations: tuple[str, ...] = ()) -> int:
        return LiveResult("stopped", sum(settled.values()), settled, left, violations).exit_code

    assert result({"committed": 3, "rolled_back": 1}) == EXIT_SETTLED
    assert result({"committed": 3, "failed": 1}) == EXIT_FAILED_GROUPS
    assert result({"failed": 1}, left=("G2",)) == EXIT_FAILED_GROUPS
    assert result({"committed": 1}, left=("G2",)) == EXIT_LEFT_OPEN
    assert result({"failed": 1}, violations=("[1 x] y",)) == EXIT_VIOLATIONS
