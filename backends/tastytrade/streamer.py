"""The TastyTrade account streamer: order notifications pushed over a websocket (reference §5, §5.3).

:class:`AccountStreamer` keeps one websocket to the streamer URL open from a background thread:

* it sends ``connect`` (``value`` = [account number]) with ``auth-token`` = the client's current
  ``Authorization`` value (``Bearer <access token>``, read afresh for every message, so an expired
  token is refreshed by the client's token manager) and waits for the ``status: ok`` ack;
* it sends an app ``heartbeat`` every ``heartbeat_interval`` seconds (the docs bound it to 2..60 s;
  20 s is what LEAN and the JS SDK use) and declares the socket dead when a heartbeat gets no reply
  within ``reply_timeout`` or nothing at all arrives for ``idle_timeout``;
* on any failure it reconnects with exponential backoff and jitter (``backoff_base`` doubling up to
  ``backoff_max``; after ``max_attempts`` failed attempts in a row it gives up: polling carries on);
  a session that was acknowledged but lasted less than ``stable_after`` does not reset the backoff
  (a server that acks then drops every socket is reconnected to ever more slowly, not twice a second);
* after EVERY successful (re)connect it queues a :data:`RESYNC` item: the server replays nothing
  (reference §5 "State"), so the orders are read again over REST;
* notifications (``{"type", "data", "timestamp"}``, possibly batched as ``{"results": [...]}``)
  of type ``Order`` are queued as :data:`ORDER` items whose ``data`` is the REST order object
  (one whose ``account-number`` names another account is dropped and counted as ``foreign``);
  other types are counted and dropped; malformed messages are counted and logged (at most
  ``log_limit`` lines, bounded and printable), never raised.

Thread model: only the background thread touches the socket; it hands items over through a
thread-safe queue that :meth:`AccountStreamer.drain` empties on the caller's (the executor's)
thread. Nothing here touches the backend's state. A full queue drops the item and queues a
:data:`RESYNC` instead (REST is the source of truth).

Secrets: messages we send are never logged; the token is only ever a local of :meth:`_send` (cleared
before anything can raise from there), never an attribute, and absent from every repr and log line.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from atomic_orders.backends.tastytrade.config import validate_streamer_url
from atomic_orders.backends.tastytrade.errors import redact
from atomic_orders.fsm.errors import ValidationError

__all__ = ["ORDER", "RESYNC", "AccountStreamer", "StreamItem", "StreamerSettings"]

log = logging.getLogger("atomic_orders.tastytrade.streamer")

#: An ``Order`` notification (``data`` is the REST order object).
ORDER = "order"
#: The socket (re)connected: read the live orders over REST (nothing is replayed).
RESYNC = "resync"

_MAX_SHOWN = 200
#: The websocket library's own logger: it logs frames (our messages carry the token) at DEBUG,
#: and its connection lifecycle at INFO (ours says "account streamer up/down"), so it is held at
#: WARNING whatever the application's level.
_WIRE_LOG = logging.getLogger("atomic_orders.tastytrade.streamer.wire")
_WIRE_LOG.setLevel(logging.WARNING)


def _in_range(low: float, high: float | None) -> Callable[[object, attrs.Attribute[float], float], None]:
    def check(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value >= low
        if not ok or (high is not None and value > high):
            bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise ValidationError(attr.name, value, f"must be a number {bound}")
    return check


def _count(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 1:
        raise ValidationError(attr.name, value, "must be an int >= 1")


@attrs.frozen
class StreamerSettings:
    """Timing and bounds of :class:`AccountStreamer` (seconds of wall-clock time)."""

    #: App heartbeat period; the docs (quoted by the tastyware SDK) bound it to 2..60 s.
    heartbeat_interval: float = attrs.field(default=20.0, validator=_in_range(2.0, 60.0))
    #: A connect ack or heartbeat reply later than this: the socket is dead.
    reply_timeout: float = attrs.field(default=10.0, validator=_in_range(0.01, None))
    #: Nothing received for this long (a silent socket): dead.
    idle_timeout: float = attrs.field(default=45.0, validator=_in_range(0.01, None))
    #: Opening handshake timeout.
    open_timeout: float = attrs.field(default=10.0, validator=_in_range(0.01, None))
    #: First reconnect delay; doubles per failed attempt up to ``backoff_max``; equal jitter.
    backoff_base: float = attrs.field(default=0.5, validator=_in_range(0.001, None))
    backoff_max: float = attrs.field(default=30.0, validator=_in_range(0.001, None))
    #: Failed attempts in a row after which the streamer gives up (the monitor keeps polling).
    max_attempts: int = attrs.field(default=50, validator=_count)
    #: An acknowledged session shorter than this (seconds) keeps the backoff growing (it is not
    #: counted towards ``max_attempts``: it did connect).
    stable_after: float = attrs.field(default=5.0, validator=_in_range(0.0, None))
    #: Items waiting for :meth:`AccountStreamer.drain` at most (more: dropped, a re-sync queued).
    queue_size: int = attrs.field(default=10_000, validator=_count)
    #: Largest message accepted (bytes); a larger one closes the socket (then reconnect + re-sync).
    max_message_bytes: int = attrs.field(default=4 << 20, validator=_count)
    #: Malformed messages logged at most (all are counted).
    log_limit: int = attrs.field(default=20, validator=_count)


@attrs.frozen
class StreamItem:
    """One thing the streamer learnt: ``kind`` is :data:`ORDER` (``data``: the order object,
    ``timestamp``: epoch ms or None) or :data:`RESYNC` (``data`` None)."""

    kind: str
    data: Any = None
    timestamp: int | None = None


#: What :meth:`AccountStreamer._receive` returns for a message that is not JSON (counted already).
_MALFORMED = object()


class _Dead(Exception):
    """The socket is to be dropped (no reply, silence, refused connect)."""


class AccountStreamer:
    """Account notifications from one websocket, handed over through a queue (module docstring).

    ``authorization`` returns the current ``Authorization`` value (``client.tokens.authorization``);
    ``on_refused`` is called when a ``connect`` is refused (``client.tokens.invalidate``), so the
    next attempt fetches a new token. ``rng`` draws the jitter.
    """

    def __init__(
        self,
        url: str,
        account_number: str,
        authorization: Callable[[], str],
        *,
        settings: StreamerSettings | None = None,
        on_refused: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = validate_streamer_url(url)
        self.account_number = account_number
        self.settings = settings if settings is not None else StreamerSettings()
        self._authorization = authorization
        self._on_refused = on_refused
        self._rng = rng if rng is not None else random.Random()
        self._queue: queue.Queue[StreamItem] = queue.Queue(self.settings.queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: ClientConnection | None = None
        self._up = threading.Event()
        self._request_id = 0
        self._acked = False
        self._acked_at: float | None = None
        self._lock = threading.Lock()
        #: Counters: connects, disconnects, refused, heartbeats, heartbeat_replies, dead_sockets,
        #: messages, orders, ignored, malformed, foreign (another account's Order), dropped (queue
        #: full), resyncs.
        self.stats: Counter[str] = Counter()
        #: Notifications of other types, by type.
        self.ignored_types: Counter[str] = Counter()
        #: The current connection's ``web-socket-session-id`` and messages received and handled on it
        #: (a notification counted here is in the queue already).
        self.session_id: str | None = None
        self.received_in_session = 0
        #: Delays waited before reconnect attempts (seconds), newest last (bounded).
        self.backoffs: list[float] = []
        #: True once ``max_attempts`` attempts in a row failed (the thread ended).
        self.gave_up = False

    def __repr__(self) -> str:
        return f"AccountStreamer(url={self.url!r}, account={self.account_number!r}, connected={self.connected})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> AccountStreamer:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tastytrade-account-streamer", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the socket and end the thread."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            ws.close_socket()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> AccountStreamer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        """True while a socket is open and its ``connect`` was acknowledged."""
        return self._up.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (or ``timeout`` seconds); True when connected."""
        return self._up.wait(timeout)

    def pending(self) -> bool:
        """True when items wait for :meth:`drain`."""
        return not self._queue.empty()

    def drain(self) -> list[StreamItem]:
        """Every item queued so far, oldest first (call from the consumer's thread)."""
        out: list[StreamItem] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    # -- the background thread ------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0  # attempts in a row never acknowledged (giving up counts these)
        streak = 0  # attempts in a row that failed or were acknowledged only briefly (the backoff's)
        while not self._stop.is_set():
            self._acked = False
            self._acked_at = None
            try:
                self._session()
            except (_Dead, WebSocketException, OSError, TimeoutError) as err:
                if not self._stop.is_set():
                    log.warning("account streamer: %s: %s", type(err).__name__, _shown(str(err)))
            except Exception as err:  # a bug here must not end the thread silently: logged, then reconnect
                log.error("account streamer failed: %s: %s", type(err).__name__, _shown(str(err)))
            finally:
                self._close()
            if self._stop.is_set():
                break
            failures = 0 if self._acked else failures + 1
            lasted = None if self._acked_at is None else time.monotonic() - self._acked_at
            streak = 0 if lasted is not None and lasted >= self.settings.stable_after else streak + 1
            if failures >= self.settings.max_attempts:
                self.gave_up = True
                log.error("account streamer: %d attempts in a row failed; giving up (orders are polled)", failures)
                break
            delay = self._backoff(streak if self._acked else failures)
            self.backoffs.append(delay)
            del self.backoffs[:-100]
            self._stop.wait(delay)

    def _backoff(self, failures: int) -> float:
        """Exponential in the failures in a row (a first reconnect after a working session waits
        ``backoff_base``), capped at ``backoff_max``, with equal jitter (half fixed, half random)."""
        s = self.settings
        cap = min(s.backoff_max, s.backoff_base * 2 ** min(failures, 30))
        return float(cap / 2 + self._rng.uniform(0, cap / 2))

    def _close(self) -> None:
        was_up = self._up.is_set()
        self._up.clear()
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close_socket()
        if was_up:
            self.stats["disconnects"] += 1

    def _send(self, action: str, value: Any = None) -> int:
        """Send one message with a fresh token; returns its request id."""
        ws = self._ws
        if ws is None:
            raise _Dead("not connected")
        with self._lock:
            self._request_id += 1
            rid = self._request_id
        message: dict[str, Any] = {"action": action, "request-id": rid}
        if value is not None:
            message["value"] = value
        message["auth-token"] = self._authorization()
        text = json.dumps(message)
        message.clear()  # the token stays out of any traceback's locals below
        failed: str | None = None
        try:
            ws.send(text)
        except (WebSocketException, OSError) as err:
            # raised afresh below, outside this block: no chained traceback whose frames (the
            # library's own) hold the message
            failed = type(err).__name__
        finally:
            text = ""
        if failed is not None:
            raise _Dead(f"send failed: {failed}")
        return rid

    def _session(self) -> bool:
        """One connection: connect, ack, then receive until it fails. True once acknowledged."""
        s = self.settings
        self.stats["attempts"] += 1
        with connect(self.url, open_timeout=s.open_timeout, ping_interval=None, close_timeout=1.0,
                     max_size=s.max_message_bytes, proxy=None, compression=None, logger=_WIRE_LOG) as ws:
            self._ws = ws
            return self._connected_session()

    def _connected_session(self) -> bool:
        s = self.settings
        rid = self._send("connect", [self.account_number])
        deadline = time.monotonic() + s.reply_timeout
        self.received_in_session = 0
        while True:
            message = self._receive(deadline - time.monotonic())
            if message is None:
                if time.monotonic() >= deadline:
                    raise _Dead("no connect ack")
                continue
            if isinstance(message, dict) and message.get("action") == "connect" and "status" in message:
                self.received_in_session += 1
                if message.get("status") == "ok":
                    break
                self.stats["refused"] += 1
                if self._on_refused is not None:
                    self._on_refused()
                raise _Dead(f"connect refused: {_shown(str(message.get('message')))}")
            self._handle(message)  # a notification before the ack is kept
            self.received_in_session += 1
        self._acked = True
        self._acked_at = time.monotonic()
        self.session_id = str(message.get("web-socket-session-id"))[:64]
        self.stats["connects"] += 1
        self._up.set()
        self._put(StreamItem(RESYNC))
        log.info("account streamer connected (request %d)", rid)
        next_beat = time.monotonic() + s.heartbeat_interval
        beat_due: float | None = None
        last_traffic = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                self._send("heartbeat")
                self.stats["heartbeats"] += 1
                next_beat = now + s.heartbeat_interval
                if beat_due is None:
                    beat_due = now + s.reply_timeout
            waits = [next_beat, last_traffic + s.idle_timeout] + ([beat_due] if beat_due is not None else [])
            message = self._receive(min(waits) - now)
            now = time.monotonic()
            if message is not None:
                last_traffic = now
                if isinstance(message, dict) and message.get("action") == "heartbeat" and "status" in message:
                    self.stats["heartbeat_replies"] += 1
                    beat_due = None
                else:
                    self._handle(message)
                # counted once handled: a caller waiting for it (see ``received_in_session``) finds it queued
                self.received_in_session += 1
            if beat_due is not None and now >= beat_due:
                self.stats["dead_sockets"] += 1
                raise _Dead("no heartbeat reply")
            if now - last_traffic >= s.idle_timeout:
                self.stats["dead_sockets"] += 1
                raise _Dead(f"nothing received for {s.idle_timeout:g}s")
        return True

    def _receive(self, timeout: float) -> Any:
        """One decoded message, or None (timeout, or malformed: counted). Raises when the socket closed."""
        ws = self._ws
        if ws is None:
            raise _Dead("not connected")
        try:
            raw = ws.recv(timeout=max(0.0, timeout))
        except TimeoutError:
            return None
        self.stats["messages"] += 1
        try:
            return json.loads(raw)
        except ValueError:
            self._malformed("not JSON", raw)
            return _MALFORMED
        except RecursionError:  # arrays nested thousands deep: one bad message, not a dropped socket
            self._malformed("nested too deep", raw[:_MAX_SHOWN])
            return _MALFORMED

    def _handle(self, message: Any) -> None:
        """A notification, a batch of them, or a status message; never raises."""
        if message is _MALFORMED:
            return
        if not isinstance(message, dict):
            self._malformed("not an object", message)
            return
        if "results" in message:
            results = message["results"]
            if not isinstance(results, list):
                self._malformed("results is not a list", message)
                return
            for item in results:
                self._notification(item)
            return
        if "status" in message:  # a reply to something we sent
            if message.get("status") != "ok":
                log.warning("account streamer: %s answered %s", _shown(str(message.get("action"))),
                            _shown(str(message.get("message"))))
            return
        self._notification(message)

    def _notification(self, item: Any) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            self._malformed("a notification without a type", item)
            return
        kind = item["type"]
        if kind != "Order":
            self.stats["ignored"] += 1
            if len(self.ignored_types) < 100 or kind in self.ignored_types:
                self.ignored_types[kind[:40]] += 1
            return
        data = item.get("data")
        if not isinstance(data, dict):
            self._malformed("an Order notification without an order object", item)
            return
        account = data.get("account-number")
        if account is not None and account != self.account_number:
            # another account's order (its ids may collide with ours): never ours to book
            self.stats["foreign"] += 1
            self._malformed("an Order of another account", {"account-number": account, "id": data.get("id")})
            return
        stamp = item.get("timestamp")
        self.stats["orders"] += 1
        self._put(StreamItem(ORDER, data, stamp if type(stamp) is int else None))

    def _put(self, item: StreamItem) -> None:
        try:
            self._queue.put_nowait(item)
            if item.kind == RESYNC:
                self.stats["resyncs"] += 1
        except queue.Full:
            self.stats["dropped"] += 1
            self._resync_after_drop()

    def _resync_after_drop(self) -> None:
        # The queue is full: an item was lost. A re-sync replaces it as soon as there is room.
        try:
            self._queue.put(StreamItem(RESYNC), timeout=1.0)
            self.stats["resyncs"] += 1
        except queue.Full:
            self.stats["dropped"] += 1

    def _malformed(self, what: str, raw: Any) -> None:
        self.stats["malformed"] += 1
        if self.stats["malformed"] <= self.settings.log_limit:
            log.warning("account streamer: malformed message (%s): %s", what, _shown(repr(raw)))


def _shown(text: str) -> str:
    """At most 200 printable characters (control characters escaped) of server text, live secrets
    masked (a server may quote the token it refused)."""
    cut = redact(text)[:_MAX_SHOWN]
    cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return cut + ("..." if len(text) > _MAX_SHOWN else "")
