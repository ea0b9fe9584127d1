"""The account streamer over a real websocket on 127.0.0.1, against the emulator's streamer route.

Waits are bounded (wall clock, a few seconds at most); virtual time is moved by the driver, which
waits until the streamer received what the emulator pushed (``sync_streamer``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from atomic_orders.backends.tastytrade.streamer import RESYNC, AccountStreamer, StreamerSettings
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.events import Acknowledged, Fill, TicketEvent
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator import EmulatorDriver

PERFECT = ChaosProfile()
NO_RESTING_FILLS = attrs.evolve(PERFECT, limit_fill_rate=0.0)
#: Fast reconnects, quick dead-socket detection (the heartbeat's lower bound is 2 s).
FAST = StreamerSettings(heartbeat_interval=2.0, reply_timeout=1.5, idle_timeout=30.0, backoff_base=0.02,
                        backoff_max=0.2, open_timeout=2.0)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.fixture
def make_driver() -> Iterator[Callable[..., EmulatorDriver]]:
    made: list[EmulatorDriver] = []

    def make(profile: ChaosProfile = PERFECT, **kwargs: Any) -> EmulatorDriver:
        kwargs.setdefault("streamer", True)
        kwargs.setdefault("streamer_settings", FAST)
        d = EmulatorDriver(BrokerSimulator(3, profile), **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def buy(d: EmulatorDriver, ref: str, *, marketable: bool = True, quantity: int = 1) -> OrderRequest:
    """A one-leg buy: at the ask plus a dollar (fills) or far below it (rests)."""
    m = d.broker.market
    strike = int(m.spot(d.broker.clock.seconds) // 5 * 5)
    symbol = m.symbol(m.default_expiry, "C", strike)
    ask = d.emulator.quote_source()(symbol).ask
    price = (ask + Decimal("1.00")) if marketable else Decimal("0.05")
    return OrderRequest(order_ref=ref, group_id=ref.rsplit("-", 1)[0], purpose=Purpose.ENTRY,
                        legs=(Leg(symbol, Side.BUY),), quantity=quantity, order_type=OrderType.LIMIT,
                        limit_price=price, time_in_force=TimeInForce.DAY)


def step(d: EmulatorDriver, seconds: float) -> list[tuple[str, TicketEvent]]:
    """Advance virtual time (streamer synced), then poll the backend once."""
    d.advance_to(d.broker.clock.seconds + seconds)
    return [(be.order_ref, be.event) for be in d.backend.poll_events()]


def polls(d: EmulatorDriver) -> int:
    """REST reads of orders so far (the live list and reads by id)."""
    return d.emulator.request_count("GET /orders/live") + d.emulator.request_count("GET /orders/{id}")


def run_until(d: EmulatorDriver, done: Callable[[list[tuple[str, TicketEvent]]], bool], *, dt_: float = 0.5,
              limit: float = 20.0) -> list[tuple[str, TicketEvent]]:
    seen: list[tuple[str, TicketEvent]] = []
    t = 0.0
    while t < limit and not done(seen):
        seen.extend(step(d, dt_))
        t += dt_
    return seen


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="heartbeat_interval"):
        StreamerSettings(heartbeat_interval=1.0)
    with pytest.raises(ValidationError, match="heartbeat_interval"):
        StreamerSettings(heartbeat_interval=61.0)
    with pytest.raises(ValidationError, match="backoff_base"):
        StreamerSettings(backoff_base=0.0)  # a socket acked then dropped at once would spin
    with pytest.raises(ValidationError, match="max_attempts"):
        StreamerSettings(max_attempts=0)


def test_connect_is_acknowledged_and_asks_for_a_resync(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    st = d.streamer
    assert st is not None and st.connected
    assert d.emulator.streamer.counts.get("connects") == 1
    assert st.session_id is not None and len(st.session_id) == 8
    items = st.drain()
    assert [i.kind for i in items] == [RESYNC]


def test_a_bad_token_is_refused_and_retried_with_bounded_backoff(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver(streamer=False)
    refused: list[int] = []
    st = AccountStreamer(d.emulator.streamer_url, d.emulator.account_number, lambda: "Bearer not-a-token",
                         on_refused=lambda: refused.append(1),
                         settings=attrs.evolve(FAST, max_attempts=4)).start()
    try:
        assert wait_for(lambda: st.gave_up, 10.0)
        assert not st.connected
        assert st.stats["refused"] == 4 and len(refused) == 4
        assert d.emulator.streamer.counts.get("refused") == 4
        assert len(st.backoffs) == 3 and all(0 < b <= FAST.backoff_max for b in st.backoffs)
        assert st.backoffs[2] > FAST.backoff_base  # exponential: the third wait's floor is 2x the base
    finally:
        st.stop()


def test_heartbeats_are_answered(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    st = d.streamer
    assert st is not None
    assert wait_for(lambda: st.stats["heartbeat_replies"] >= 1, 5.0)
    assert d.emulator.streamer.counts.get("heartbeats", 0) >= 1
    assert st.connected and st.stats["dead_sockets"] == 0


def test_a_pushed_fill_reaches_the_backend_without_a_poll(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    d.backend.poll_events()  # the first poll (and the re-sync the connect asked for)
    before = polls(d)
    d.backend.submit(buy(d, "g1-e"))
    seen = run_until(d, lambda s: any(isinstance(e, Fill) for _r, e in s), limit=10.0)
    fills = [e for _r, e in seen if isinstance(e, Fill)]
    assert sum(f.quantity for f in fills) == 1
    assert any(isinstance(e, Acknowledged) for _r, e in seen)
    assert polls(d) == before  # no REST read: the fill came over the socket
    assert d.backend.monitor.pushed_records >= 2


def test_a_dropped_socket_reconnects_with_backoff_then_resyncs(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    st = d.streamer
    assert st is not None
    d.backend.poll_events()
    lists = d.emulator.request_count("GET /orders/live")
    d.emulator.streamer.drop()
    assert wait_for(lambda: st.stats["connects"] == 2 and st.connected, 5.0)
    assert st.backoffs and st.backoffs[-1] <= FAST.backoff_max
    d.backend.poll_events()
    assert d.backend.resyncs == 2
    assert d.emulator.request_count("GET /orders/live") == lists + 1  # the REST re-sync


def test_a_silent_socket_is_detected_and_replaced(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    st = d.streamer
    assert st is not None
    d.emulator.streamer.silent = True
    assert wait_for(lambda: st.stats["dead_sockets"] >= 1, 10.0)
    d.emulator.streamer.silent = False
    assert wait_for(lambda: st.connected and st.stats["connects"] >= 2, 5.0)


def test_duplicated_and_reordered_notifications_are_booked_once(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    d.backend.poll_events()
    hub = d.emulator.streamer
    hub.duplicate = True
    hub.reorder = True
    before = polls(d)
    d.backend.submit(buy(d, "g1-e", quantity=3))
    seen = run_until(d, lambda s: sum(e.quantity for _r, e in s if isinstance(e, Fill)) >= 3, limit=8.0)
    hub.clear_faults()  # the last held message goes out
    d.sync_streamer()
    seen.extend((be.order_ref, be.event) for be in d.backend.poll_events())
    fills = [e for _r, e in seen if isinstance(e, Fill)]
    assert sum(f.quantity for f in fills) == 3
    assert len({f.fill_id for f in fills}) == len(fills)
    assert sum(isinstance(e, Acknowledged) for _r, e in seen) == 1
    assert d.backend.monitor.stale_pushes >= 1  # an older record arrived after a newer one: dropped
    assert polls(d) == before


def test_batched_results_are_unpacked(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver(NO_RESTING_FILLS)
    d.backend.poll_events()
    hub = d.emulator.streamer
    hub.batch = 10
    for i in range(3):
        d.backend.submit(buy(d, f"g{i}-e", marketable=False))
    lists = d.emulator.request_count("GET /orders/live")
    d.advance_to(d.broker.clock.seconds + 2.0)  # all three go live in one pass: one message
    st = d.streamer
    assert st is not None
    seen = [(be.order_ref, be.event) for be in d.backend.poll_events()]
    seen += run_until(d, lambda s: sum(isinstance(e, Acknowledged) for _r, e in s) >= 3, dt_=0.1, limit=1.0)
    assert sorted(r for r, e in seen if isinstance(e, Acknowledged)) == ["g0-e", "g1-e", "g2-e"]
    # Three routed and three live notifications; the live batch may still be on the wire.
    assert wait_for(lambda: st.stats["orders"] >= 6, 5.0), st.stats
    assert st.stats["malformed"] == 0
    assert d.emulator.request_count("GET /orders/live") == lists  # all of it came over the socket


def test_malformed_messages_do_not_stop_the_loop(make_driver: Callable[..., EmulatorDriver],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    d = make_driver()
    st = d.streamer
    assert st is not None
    caplog.set_level(logging.WARNING, logger="atomic_orders.tastytrade.streamer")
    hub = d.emulator.streamer
    for raw in ["not json \x1b[31m", "[1, 2]", '{"results": 5}', '{"type": 3}', '{"type": "Order", "data": "x"}',
                '{"type": "AccountBalance", "data": {}}',
                '{"type": "Order", "data": {"id": "abc", "legs": "zzz"}, "timestamp": 1}']:
        hub.inject(raw)
    assert wait_for(lambda: st.stats["malformed"] == 5 and st.stats["ignored"] == 1, 5.0)
    assert st.ignored_types["AccountBalance"] == 1
    assert "\x1b" not in caplog.text
    d.backend.poll_events()  # the foreign record is skipped, never raised
    assert d.backend.monitor.skipped_records >= 1
    d.backend.submit(buy(d, "g1-e"))
    seen = run_until(d, lambda s: any(isinstance(e, Fill) for _r, e in s), limit=10.0)
    assert any(isinstance(e, Fill) for _r, e in seen)
    assert st.stats["dead_sockets"] == 0 or wait_for(lambda: st.connected, 5.0)


def test_polls_fall_back_to_the_fast_interval_while_the_socket_is_down(
        make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver(NO_RESTING_FILLS)
    d.backend.submit(buy(d, "g1-e", marketable=False))
    d.backend.poll_events()
    d.sync_streamer()
    d.backend.poll_events()  # the order's push
    clock = d.broker.clock
    assert clock.to_seconds(d.backend.next_poll_time()) - clock.seconds == pytest.approx(30.0)  # watchdog
    lists = d.emulator.request_count("GET /orders/live")
    for _ in range(4):
        step(d, 1.0)
    assert d.emulator.request_count("GET /orders/live") == lists
    assert d.streamer is not None
    d.streamer.stop()
    for _ in range(4):
        step(d, 1.0)
    assert d.emulator.request_count("GET /orders/live") >= lists + 3  # polled every second again


def test_the_watchdog_poll_catches_a_withheld_notification(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver()
    d.backend.poll_events()
    d.emulator.streamer.withhold("^g1-")
    d.backend.submit(buy(d, "g1-e"))
    early = run_until(d, lambda s: False, dt_=1.0, limit=20.0)
    assert not any(isinstance(e, Fill) for _r, e in early)  # nothing pushed, no poll due yet
    late = run_until(d, lambda s: any(isinstance(e, Fill) for _r, e in s), dt_=1.0, limit=15.0)
    assert any(isinstance(e, Fill) for _r, e in late)


def test_the_token_is_in_no_log_and_no_repr(make_driver: Callable[..., EmulatorDriver],
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    d = make_driver()
    st = d.streamer
    assert st is not None
    assert wait_for(lambda: st.stats["heartbeats"] >= 1, 5.0)
    d.emulator.streamer.drop()
    assert wait_for(lambda: st.stats["connects"] >= 2, 5.0)
    d.emulator.expire_tokens()
    d.emulator.streamer.drop()  # reconnect with an expired token: refused, then a fresh one
    assert wait_for(lambda: st.stats["connects"] >= 3, 8.0)
    token = d.client.tokens.authorization()
    secret = token.split(" ", 1)[1]
    text = caplog.text + repr(st) + repr(d.backend) + repr(st.drain()) + repr(st.stats)
    assert secret not in text
    assert "Bearer" not in caplog.text
    assert any(r.name.startswith("atomic_orders.tastytrade.streamer") for r in caplog.records)


def test_the_bench_figures_count_what_they_claim() -> None:
    from atomic_orders.simulator.cli.streamer_bench import reject_reaction, requests_per_tick

    pushed, polled = reject_reaction(3, True), reject_reaction(3, False)
    assert pushed["virtual_ms"]["n"] == polled["virtual_ms"]["n"] == 3  # every group: a reject, then a cancel
    # virtual time, not this machine's speed: the push is acted on in the step that received it,
    # the poll waits for its next tick (1 s)
    assert pushed["virtual_ms"]["p99"] == 0.0 and 0 < polled["virtual_ms"]["p50"] <= 1000
    assert requests_per_tick(10, False, ticks=5) == 1.0 and requests_per_tick(10, True, ticks=5) == 0.0


def test_a_failed_send_leaves_the_token_in_no_frame(make_driver: Callable[..., EmulatorDriver]) -> None:
    import traceback

    from atomic_orders.backends.tastytrade import streamer as module

    d = make_driver(streamer=False)
    token = d.client.tokens.authorization()
    st = AccountStreamer(d.emulator.streamer_url, d.emulator.account_number, lambda: token)
    with module.connect(st.url, proxy=None) as ws:
        st._ws = ws
        ws.close_socket()  # the send below fails on a dead socket
        with pytest.raises(Exception) as info:
            for _ in range(50):  # the library may buffer the first frames of a dying socket
                st._send("heartbeat")
    shown: list[str] = [str(info.value)]
    pending: list[BaseException | None] = [info.value]
    while pending:
        exc = pending.pop()
        if exc is None:
            continue
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_filename == __file__:
                continue
            shown += [repr(v) for v in frame.f_locals.values()]
        pending += [exc.__context__, exc.__cause__]
    assert len(shown) > 1  # the streamer's own frames were walked
    assert not any(token.split(" ", 1)[1] in text for text in shown)


def test_the_driver_drops_the_socket_on_schedule(make_driver: Callable[..., EmulatorDriver]) -> None:
    d = make_driver(streamer_drop_every=5.0)
    st = d.streamer
    assert st is not None
    for connects in (2, 3):
        for _ in range(5):
            d.advance_to(d.broker.clock.seconds + 1.0)
            d.backend.poll_events()
        assert wait_for(lambda: st.stats["connects"] == connects and st.connected, 5.0)  # noqa: B023
    assert d.streamer_drops == 2 and d.emulator.streamer.counts.get("drops") == 2
    d.backend.poll_events()
    assert d.backend.resyncs == 3


def test_the_websocket_library_logs_neither_frames_nor_connections(caplog: pytest.LogCaptureFixture) -> None:
    """Frames carry the token (DEBUG); connection open/close lines (INFO) were printed in the middle
    of a session's report: both websocket loggers pass only warnings."""
    import atomic_orders.backends.tastytrade.streamer
    import atomic_orders.simulator.emulator.streamer  # noqa: F401  (both set their wire loggers up)

    caplog.set_level(logging.DEBUG)  # even when the application logs everything
    for name in ("atomic_orders.tastytrade.streamer.wire", "atomic_orders.emulator.streamer.wire"):
        wire = logging.getLogger(name)
        wire.info("connection open")
        wire.debug("> TEXT '{\"auth-token\": \"Bearer x\"}'")
        assert not wire.isEnabledFor(logging.INFO)
    assert "connection open" not in caplog.text and "Bearer" not in caplog.text
