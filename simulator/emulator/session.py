"""Driving the emulator: in-process (a session driver advances virtual time) or standalone (wall clock).

* :class:`EmulatorDriver` -- for ``run_session`` with ``backend="tastytrade-emulator"`` and for
  tests: starts the emulator on a free port of 127.0.0.1, builds a :class:`TastytradeBackend`
  on a real :class:`TastytradeApiClient` pointed at it (its clock is the simulator's
  VirtualClock; quotes come over HTTP too, through a :class:`TastytradeQuoteSource` on the
  emulator's ``GET /market-data/by-type``, or in-process with ``http_quotes=False``), and offers the two calls a
  discrete-event loop needs: :meth:`~EmulatorDriver.next_event_time` (the simulator's next event
  or the backend's next poll, whichever is first) and :meth:`~EmulatorDriver.advance_to`.
  With ``streamer=True`` the backend also listens to the emulator's account streamer
  (:class:`~atomic_orders.backends.tastytrade.streamer.AccountStreamer`); since virtual time does
  not wait for a socket, :meth:`~EmulatorDriver.advance_to` waits (a bounded wall-clock moment)
  until the streamer received what the emulator pushed on its socket.
* :func:`run_standalone` -- ``atomic-orders emulate``: a background thread moves virtual time with
  the wall clock (``speed`` x real time) until interrupted.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable

import attrs

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource
from atomic_orders.backends.tastytrade.streamer import AccountStreamer, StreamerSettings
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.faults import HttpFaults
from atomic_orders.simulator.emulator.server import TastytradeEmulator

__all__ = ["EmulatorDriver", "run_standalone"]

log = logging.getLogger("atomic_orders.emulator")


class EmulatorDriver:
    """An emulator over ``broker`` plus a TastyTrade backend talking to it over real HTTP."""

    def __init__(
        self,
        broker: BrokerSimulator,
        *,
        faults: HttpFaults | None = None,
        fault_seed: int = 0,
        read_timeout: float = 1.0,
        fast_interval: float = 1.0,
        idle_interval: float = 10.0,
        token_lifetime: float = 900.0,
        max_retries: int = 3,
        streamer: bool = False,
        watchdog_interval: float = 30.0,
        streamer_settings: StreamerSettings | None = None,
        streamer_drop_every: float | None = None,
        http_quotes: bool = True,
    ) -> None:
        self.broker = broker
        if faults is not None and faults.slow_rate and faults.slow_seconds <= read_timeout:
            faults = attrs.evolve(faults, slow_seconds=read_timeout + 0.25)  # a slow answer must time out
        self.emulator = TastytradeEmulator(broker, faults=faults, fault_seed=fault_seed,
                                           token_lifetime=token_lifetime).start()
        config = TastytradeConfig(
            account_number=self.emulator.account_number,
            base_url=self.emulator.url,
            connect_timeout=2.0,
            read_timeout=read_timeout,
            backoff_base=0.01,
            backoff_max=0.05,
            max_retries=max_retries,
            streamer_url=self.emulator.streamer_url,
        )
        self.client = TastytradeApiClient(config, self.emulator.credentials())
        self.streamer: AccountStreamer | None = None
        if streamer:
            self.streamer = AccountStreamer(config.streamer_url, config.account_number,
                                            self.client.tokens.authorization, on_refused=self.client.tokens.invalidate,
                                            settings=streamer_settings).start()
            self.streamer.wait_connected(5.0)
        #: Virtual seconds between two drops of the streamer's socket (a fault; None: never).
        self.streamer_drop_every = streamer_drop_every
        self._next_drop = streamer_drop_every
        #: Sockets dropped by that fault so far.
        self.streamer_drops = 0
        self.backend = TastytradeBackend(
            self.client,
            clock=broker.clock,
            quote_source=None if http_quotes else self.emulator.quote_source(),
            fast_interval=fast_interval,
            idle_interval=idle_interval,
            streamer=self.streamer,
            watchdog_interval=watchdog_interval,
        )
        #: The quote source over HTTP (None with ``http_quotes=False``).
        self.quotes: TastytradeQuoteSource | None = None
        if http_quotes:
            self.quotes = TastytradeQuoteSource(self.client, broker.clock, symbols=self.backend.open_symbols)
            self.backend.quote_source = self.quotes

    def next_event_time(self) -> float | None:
        """The simulator's next event or the backend's next poll (virtual seconds)."""
        t = self.broker.next_event_time()
        poll = self.broker.clock.to_seconds(self.backend.next_poll_time())
        return poll if t is None else min(t, poll)

    def advance_to(self, seconds: float) -> None:
        """Move virtual time (the emulator folds the simulator's deliveries into its orders)."""
        self.emulator.advance_to(seconds)
        every = self.streamer_drop_every
        if self.streamer is not None and every is not None and self._next_drop is not None \
                and seconds >= self._next_drop and self.streamer.connected:
            self.emulator.streamer.drop()  # reconnect, REST re-sync, polls meanwhile
            self.streamer_drops += 1
            self._next_drop = seconds + every
        self.sync_streamer()

    def sync_streamer(self, timeout: float = 0.5) -> bool:
        """Wait until the streamer received every message the emulator wrote to its socket (at
        most ``timeout`` wall seconds; True when it did, or when there is no streamer or socket)."""
        streamer = self.streamer
        if streamer is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            sent = self.emulator.streamer.sent_in_session(streamer.session_id)
            if sent is None or not streamer.connected or streamer.received_in_session >= sent:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0005)

    def close(self) -> None:
        """Close the client and stop the server."""
        if self.streamer is not None:
            self.streamer.stop()
        self.client.close()
        self.emulator.stop()

    def __enter__(self) -> EmulatorDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_standalone(
    port: int,
    profile: str = "rough",
    seed: int = 1,
    *,
    speed: float = 1.0,
    faults: HttpFaults | None = None,
    host: str = "127.0.0.1",
    print_fn: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the emulated API until ``stop`` is set (or Ctrl-C); virtual time follows the wall clock.

    At ``speed`` 1 the simulated session opens now (wall-clock UTC, whole seconds), so the
    emulator's times (quotes' ``updated-at``, orders) ARE the wall clock's and a client on the
    wall clock (``atomic-orders live``, ``recover``) agrees with it; at another speed it opens at
    the market model's default date. Prints the REST URL, the streamer URL and the test credentials.
    """
    opens = dt.datetime.now(dt.UTC).replace(microsecond=0) if speed == 1.0 else None
    broker = BrokerSimulator(seed, ChaosProfile.preset(profile), session_open=opens)
    emulator = TastytradeEmulator(broker, host=host, port=port, faults=faults, fault_seed=seed).start()
    stop = stop if stop is not None else threading.Event()
    creds = emulator.credentials()
    if print_fn is None:  # flushed: a parent process reads the URLs from a pipe while this serves
        print_fn = functools.partial(print, flush=True)
    print_fn(f"TastyTrade emulator on {emulator.url}  account {emulator.account_number}  profile {profile} seed {seed}")
    print_fn(f"  OAuth test credentials: refresh_token={creds.refresh_token.reveal()} "
             f"client_secret={creds.client_secret.reveal()}  (emulator-only values)")
    print_fn(f"  account streamer on {emulator.streamer_url}")
    started = time.monotonic()
    try:
        while not stop.is_set():
            emulator.advance_to((time.monotonic() - started) * speed)
            stop.wait(0.05)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        emulator.stop()
