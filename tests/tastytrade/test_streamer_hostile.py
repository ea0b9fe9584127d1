"""The account streamer against hostile servers on 127.0.0.1: a socket of our own (websockets'
sync server) or the emulator's streamer route with injected messages. Waits are bounded."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from atomic_orders.backends.tastytrade.auth import Secret
from atomic_orders.backends.tastytrade.streamer import ORDER, AccountStreamer, StreamerSettings
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator import EmulatorDriver

FAST = StreamerSettings(heartbeat_interval=2.0, reply_timeout=1.5, idle_timeout=30.0, backoff_base=0.02,
                        backoff_max=1.0, open_timeout=2.0)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if cond():
            return True
        event.wait(0.01)
    return cond()


@pytest.fixture
def server() -> Iterator[Callable[[Callable[[ServerConnection], None]], str]]:
    started: list[Server] = []

    def start(handler: Callable[[ServerConnection], None]) -> str:
        srv = serve(handler, "127.0.0.1", 0, compression=None, logger=logging.getLogger("hostile.wire"))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"ws://127.0.0.1:{srv.socket.getsockname()[1]}"

    yield start
    for srv in started:
        srv.shutdown()


@pytest.fixture
def driver() -> Iterator[EmulatorDriver]:
    d = EmulatorDriver(BrokerSimulator(3, ChaosProfile()), streamer=True, streamer_settings=FAST)
    yield d
    d.close()


def test_a_server_that_acks_then_drops_every_socket_is_reconnected_to_ever_more_slowly(
        server: Callable[[Callable[[ServerConnection], None]], str]) -> None:
    def ack_then_close(ws: ServerConnection) -> None:
        ws.recv()
        ws.send(json.dumps({"action": "connect", "status": "ok", "web-socket-session-id": "s"}))
        ws.close()

    st = AccountStreamer(server(ack_then_close), "5WT00001", lambda: "Bearer t", settings=FAST).start()
    try:
        assert wait_for(lambda: st.stats["connects"] >= 7, 20.0)
    finally:
        st.stop()
    # before: every reconnect after an acked session waited backoff_base (0.01..0.02 s), forever
    assert max(st.backoffs) > 4 * FAST.backoff_base
    assert all(b <= FAST.backoff_max for b in st.backoffs)
    assert not st.gave_up  # it did connect: polling is not left alone for that


def test_a_deeply_nested_message_is_malformed_not_a_dropped_socket(driver: EmulatorDriver) -> None:
    st = driver.streamer
    assert st is not None and st.connected
    driver.emulator.streamer.inject("[" * 100_000 + "]" * 100_000)
    assert wait_for(lambda: st.stats["malformed"] == 1, 5.0)
    driver.emulator.streamer.inject(json.dumps({"type": "AccountBalance", "data": {}}))
    assert wait_for(lambda: st.stats["ignored"] == 1, 5.0)  # the same socket carries on
    assert st.stats["connects"] == 1 and st.stats["disconnects"] == 0 and st.connected


def test_an_order_of_another_account_is_not_handed_over(driver: EmulatorDriver) -> None:
    st = driver.streamer
    assert st is not None and st.connected
    st.drain()
    other = {"id": 310001, "account-number": "5WT99999", "status": "Filled", "legs": []}
    ours = dict(other, **{"account-number": driver.emulator.account_number})
    for data in (other, ours):
        driver.emulator.streamer.inject(json.dumps({"type": "Order", "data": data, "timestamp": 1}))
    assert wait_for(lambda: st.stats["orders"] == 1, 5.0)
    assert st.stats["foreign"] == 1
    orders = [item.data for item in st.drain() if item.kind == ORDER]
    assert orders == [ours]


def test_a_refusal_quoting_the_token_is_logged_masked(server: Callable[[Callable[[ServerConnection], None]], str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    token = Secret("hostile-access-token-123")  # registered: masked while it lives

    def echo_refusal(ws: ServerConnection) -> None:
        sent: Any = json.loads(ws.recv())
        ws.send(json.dumps({"action": "connect", "status": "error", "message": f"bad token {sent['auth-token']}"}))
        ws.recv()

    caplog.set_level(logging.DEBUG, logger="atomic_orders.tastytrade.streamer")
    st = AccountStreamer(server(echo_refusal), "5WT00001", lambda: f"Bearer {token.reveal()}",
                         settings=FAST).start()
    try:
        assert wait_for(lambda: st.stats["refused"] >= 2, 10.0)
    finally:
        st.stop()
    assert "connect refused: bad token Bearer [redacted]" in caplog.text
    assert token.reveal() not in caplog.text
