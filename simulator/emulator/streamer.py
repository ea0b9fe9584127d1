"""The emulator's account streamer: a websocket server on 127.0.0.1 pushing ``Order`` notifications.

As the real one (reference §5): no auth on the HTTP upgrade; every message carries ``auth-token``
(the REST ``Authorization`` value, ``Bearer <access token>``). ``connect`` with a valid token and
our account number (a list, or the bare string the JS SDK sends) is answered ``{"status": "ok",
"action": "connect", "web-socket-session-id", "value", "request-id"}`` and subscribes the socket;
anything invalid gets ``{"status": "error", ..., "message": "failed"}``. ``heartbeat`` is answered
``status: ok`` with its ``request-id``. Every change of an order (placed, live, fill, cancel,
reject, replace: whatever changes its status, fills or ``updated-at``) is pushed to every
subscribed socket as ``{"type": "Order", "data": <the REST order object, same serializer>,
"timestamp": <epoch ms, virtual time>}``. Nothing is replayed on connect.

Faults (attributes / methods of :class:`StreamerHub`, set by tests and by the emulator's knobs):
``drop()`` (close every socket abruptly), ``silent`` (no messages and no heartbeat replies; the
socket stays open), ``duplicate`` (every notification sent twice), ``reorder`` (each notification
is held back and sent after the next one), ``batch`` (up to that many notifications of one change
pass go out as one ``{"results": [...]}``), ``withhold(pattern)`` (no notification for orders whose
external identifier matches: what a watchdog poll must catch), ``inject(raw)`` (any text).

Threads: one server thread; per socket a handler thread (receives) and a sender thread (drains the
socket's queue), so a client that does not read never blocks the emulator. :meth:`StreamerHub.publish`
is called under the emulator's lock.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

__all__ = ["StreamerHub"]

log = logging.getLogger("atomic_orders.emulator.streamer")

_WIRE_LOG = logging.getLogger("atomic_orders.emulator.streamer.wire")
# The library logs frames (tokens) at DEBUG and every connection at INFO: noise in a session's output.
_WIRE_LOG.setLevel(logging.WARNING)


class _Socket:
    """One client socket: its session id, subscription and outgoing queue."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.session_id = secrets.token_hex(4)
        self.subscribed = False
        self.outbox: queue.Queue[str | None] = queue.Queue()
        #: Messages written to the socket.
        self.sent = 0


class StreamerHub:
    """The streamer server (see the module docstring).

    ``valid_token(auth_token)`` says whether an ``auth-token`` value is a live bearer token;
    ``account_number`` is the only account a ``connect`` may name.
    """

    def __init__(self, valid_token: Callable[[str], bool], account_number: str, host: str = "127.0.0.1") -> None:
        self._valid = valid_token
        self.account_number = account_number
        self._host = host
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sockets: list[_Socket] = []
        self.silent = False
        self.duplicate = False
        self.reorder = False
        self.batch = 1
        self._withhold: list[re.Pattern[str]] = []
        self._held: str | None = None
        #: Counters: connects, refused, heartbeats, notifications (order changes published),
        #: messages (written to sockets), drops.
        self.counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"StreamerHub(url={self.url if self._server else None!r})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> StreamerHub:
        """Listen on a free port of ``host`` and serve from a daemon thread."""
        if self._server is None:
            self._server = serve(self._serve, self._host, 0, ping_interval=None, compression=None,
                                 logger=_WIRE_LOG)
            self._thread = threading.Thread(target=self._server.serve_forever, name="emulator-streamer",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close every socket and stop listening."""
        server = self._server
        if server is None:
            return
        self.drop()
        server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError("the streamer is not started")
        return f"ws://{self._host}:{self._server.socket.getsockname()[1]}"

    def _bump(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + n

    # -- faults ---------------------------------------------------------------------------------

    def drop(self) -> None:
        """Close every socket now, without a close frame (a dropped connection)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.outbox.put(None)
            sock.ws.close_socket()
            self._bump("drops")

    def withhold(self, pattern: str) -> None:
        """Push nothing about orders whose external identifier matches ``pattern``."""
        self._withhold.append(re.compile(pattern))

    def clear_faults(self) -> None:
        """No fault any more (a held message is sent)."""
        self.silent = self.duplicate = self.reorder = False
        self.batch = 1
        self._withhold.clear()
        held, self._held = self._held, None
        if held is not None:
            self._broadcast([held])

    def listening(self) -> bool:
        """True when some socket is subscribed (else changes are not even serialized)."""
        with self._lock:
            return any(s.subscribed for s in self._sockets)

    def inject(self, raw: str) -> None:
        """Send ``raw`` text as is to every subscribed socket (malformed messages, for tests)."""
        self._broadcast([raw])

    def sent_in_session(self, session_id: str | None) -> int | None:
        """Messages written to the socket of ``session_id`` so far (None: no such open socket)."""
        with self._lock:
            for sock in self._sockets:
                if sock.session_id == session_id:
                    return sock.sent + sock.outbox.qsize()
        return None

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, orders: list[tuple[str | None, Any]], timestamp_ms: int) -> None:
        """Push one change pass: ``(external identifier, order JSON)`` per changed order."""
        notes = [{"type": "Order", "data": data, "timestamp": timestamp_ms} for ext, data in orders
                 if not (ext is not None and any(p.search(ext) for p in self._withhold))]
        if not notes:
            return
        self._bump("notifications", len(notes))
        size = max(1, self.batch)
        if size > 1:
            messages = [json.dumps({"results": notes[i:i + size]}) for i in range(0, len(notes), size)]
        else:
            messages = [json.dumps(n) for n in notes]
        if self.reorder:
            out: list[str] = []
            for m in messages:
                if self._held is None:
                    self._held = m
                else:
                    out.extend((m, self._held))
                    self._held = None
            messages = out
        if self.duplicate:
            messages = [m for m in messages for _ in (0, 1)]
        self._broadcast(messages)

    def _broadcast(self, messages: list[str]) -> None:
        if self.silent or not messages:
            return
        with self._lock:
            targets = [s for s in self._sockets if s.subscribed]
        for sock in targets:
            for m in messages:
                sock.outbox.put(m)

    # -- one socket -----------------------------------------------------------------------------

    def _serve(self, ws: ServerConnection) -> None:
        sock = _Socket(ws)
        with self._lock:
            self._sockets.append(sock)
        sender = threading.Thread(target=self._send_loop, args=(sock,), name="emulator-streamer-send", daemon=True)
        sender.start()
        try:
            for raw in ws:
                self._on_message(sock, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if sock in self._sockets:
                    self._sockets.remove(sock)
            sock.outbox.put(None)

    def _send_loop(self, sock: _Socket) -> None:
        while True:
            message = sock.outbox.get()
            if message is None:
                return
            if self.silent:
                continue
            try:
                sock.ws.send(message)
            except (ConnectionClosed, OSError):
                return
            sock.sent += 1
            self._bump("messages")

    def _reply(self, sock: _Socket, body: dict[str, Any]) -> None:
        sock.outbox.put(json.dumps(body))

    def _on_message(self, sock: _Socket, raw: str | bytes) -> None:
        if self.silent:
            return
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self._reply(sock, {"status": "error", "web-socket-session-id": sock.session_id, "message": "failed"})
            return
        action = msg.get("action")
        rid = msg.get("request-id")
        token = msg.get("auth-token")
        valid = isinstance(token, str) and self._valid(token)
        head = {"action": action, "web-socket-session-id": sock.session_id}
        if action == "connect":
            value = msg.get("value")
            accounts = [value] if isinstance(value, str) else value
            if valid and isinstance(accounts, list) and accounts == [self.account_number]:
                sock.subscribed = True
                self._bump("connects")
                self._reply(sock, {"status": "ok", **head, "value": accounts, "request-id": rid})
            else:
                self._bump("refused")
                self._reply(sock, {"status": "error", **head, "message": "failed"})
        elif action == "heartbeat" and valid:
            self._bump("heartbeats")
            self._reply(sock, {"status": "ok", **head, "request-id": rid})
        else:
            self._reply(sock, {"status": "error", **head, "message": "failed"})
