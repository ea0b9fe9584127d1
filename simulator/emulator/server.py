"""A real HTTP server on 127.0.0.1 speaking the TastyTrade REST API, backed by a BrokerSimulator.

Endpoints (same paths, envelopes ``{"data": ..., "context": ...}``, kebab-case fields, status
strings and error shapes as the API):

==========  ===========================================  ==========================================
method      path                                         answer
==========  ===========================================  ==========================================
POST        ``/oauth/token``                             ``access_token``, ``expires_in``, ``token_type``
GET         ``/customers/me/accounts``                   ``items[{account, authority-level}]``
GET         ``/customers/me/accounts/{n}``               the ``account`` (404 for another number)
GET         ``/accounts/{n}``                            the ``account`` (404 for another number)
GET         ``/customers/me``                            the customer (:mod:`.records`)
POST        ``/sessions/validate``                       the token's user (201; 401 for a bad token)
GET         ``/accounts/{n}/positions``                  ``items`` (Equity Option rows, reference 4.2)
GET         ``/accounts/{n}/balances``                   the balances (also ``/balances/USD``)
POST        ``/accounts/{n}/orders/dry-run``             ``{order (no id), buying-power-effect, ...}``
POST        ``/accounts/{n}/orders``                     ``{order, buying-power-effect, fee-calculation, warnings}``
GET         ``/accounts/{n}/orders/live``                ``items`` (+ ``pagination`` with ``per-page``)
GET         ``/accounts/{n}/orders``                     ``items`` + ``pagination`` (history)
GET         ``/accounts/{n}/orders/{id}``                the order
DELETE      ``/accounts/{n}/orders/{id}``                the order (``Cancel Requested``)
PUT         ``/accounts/{n}/orders/{id}``                the NEW order (``Contingent``)
GET         ``/market-data/by-type``                     ``items`` of quotes (``equity-option=<OCC>``)
GET         ``/market-data/equity-option/{symbol}``      one quote item (:mod:`.market_data`)
GET         ``/_emulator/quotes?symbol=<OCC>``           emulator only: ``items[{symbol, bid, ask, mid}]``
==========  ===========================================  ==========================================

Checks, in this order: HTTP faults that hit before processing (:mod:`.faults`), ``User-Agent``
(missing or not ``<product>/<version>``: 401), ``Accept-Version`` (not a date ``YYYYMMDD`` on or
after 20250813: 406 with ``{"error": {"code": 406, ...}}``; a version date selects the newest
API version on or before it), the bearer token (401 ``unauthorized`` when missing, unknown or
expired), the account (404), a broker outage of the simulator (503), then the endpoint. Version
``20261012`` or later requires ``start-date`` or ``start-at`` on ``GET /orders`` (400).

Time: the simulator's :class:`~atomic_orders.simulator.broker.engine.VirtualClock` (order timestamps). Tokens expire in
wall-clock time (``token_lifetime``), or at once through :meth:`TastytradeEmulator.expire_tokens`.
Every request is counted per route (:meth:`TastytradeEmulator.request_count`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict

from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.fsm.orders import Quote
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.faults import Fault, FaultInjector, HttpFaults
from atomic_orders.simulator.emulator.market_data import MarketDataDesk
from atomic_orders.simulator.emulator.records import account_record, balances_record, customer_record, validated_session
from atomic_orders.simulator.emulator.state import EmulatedAccount, EmulatorError
from atomic_orders.simulator.emulator.streamer import StreamerHub

__all__ = ["TastytradeEmulator"]

log = logging.getLogger("atomic_orders.emulator")

_UA_RE = re.compile(r"^[^\s/]+/\S+")
_EARLIEST_VERSION = "20250813"
_PAGINATED_VERSION = "20261012"
_ACCOUNT_RE = re.compile(r"^/accounts/([^/]+)(/.*)$")
_ORDER_ID_RE = re.compile(r"^/orders/(\d+)$")
_NO_CLAIM = object()


class _Response:
    __slots__ = ("body", "fault", "headers", "status")

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None,
                 fault: Fault | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.fault = fault


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: TastytradeEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (after a timeout or a dropped answer) is not an error worth a traceback."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


#: The largest request body read (an order is a few kB); more is refused 413 unread.
MAX_BODY_BYTES = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A socket that goes silent mid-request (a body shorter than its Content-Length) frees its
    # thread after this many seconds instead of holding it for ever (idle keep-alives too: clients
    # see the closed socket and reconnect).
    timeout = 60
    # headers and body leave in one segment; no Nagle / delayed-ACK stalls on keep-alive connections
    disable_nagle_algorithm = True
    wbufsize = -1
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (it would print request lines, never headers)."""

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer a request the HTTP layer cannot take, in the API's error envelope, and close."""
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    def _serve(self, method: str) -> None:
        declared = self.headers.get("Content-Length") or "0"
        if not declared.isascii() or not declared.isdigit():
            self._refuse(400, "invalid_request", "Content-Length is not a non-negative integer")
            return
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self._refuse(413, "request_too_large", f"a body of more than {MAX_BODY_BYTES} bytes")
            return
        try:
            raw = self.rfile.read(length) if length > 0 else b""
        except TimeoutError:  # fewer bytes than Content-Length promised: free the thread
            self._refuse(400, "invalid_request", "the body is shorter than its Content-Length")
            return
        if len(raw) < length:
            self._refuse(400, "invalid_request", "the body is shorter than its Content-Length")
            return
        emulator = self.server.emulator
        response = emulator.dispatch(method, self.path, CaseInsensitiveDict(self.headers.items()), raw)
        fault = response.fault
        if fault in (Fault.DROP_BEFORE, Fault.DROP_AFTER):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        if fault is Fault.SLOW:
            time.sleep(emulator.faults.faults.slow_seconds)
        body = b"" if response.body is None else json.dumps(response.body, separators=(",", ":")).encode()
        if fault is Fault.TRUNCATE and body:
            body = body[: max(1, len(body) // 2)]
        elif fault is Fault.GARBAGE:
            body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if body and method != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (a slow answer after its timeout)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve("POST")

    def do_PUT(self) -> None:
        """Serve a PUT."""
        self._serve("PUT")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        """PATCH (edit) is not emulated."""
        self._serve("PATCH")


class TastytradeEmulator:
    """The emulated API over one :class:`BrokerSimulator` (see the module docstring).

    In-process use: ``start()``, then drive time with :meth:`advance_to` (it holds the lock the
    request handlers hold). Standalone: :func:`atomic_orders.simulator.emulator.run_standalone` advances time
    with the wall clock from a background thread.
    """

    def __init__(
        self,
        simulator: BrokerSimulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        account_number: str = "5WT00001",
        faults: HttpFaults | None = None,
        fault_seed: int = 0,
        token_lifetime: float = 900.0,
        client_secret: str = "emulator-client-secret",
        refresh_token: str = "emulator-refresh-token",
        client_id: str | None = None,
    ) -> None:
        self.simulator = simulator
        self.account = EmulatedAccount(simulator, account_number)
        #: The market-data routes (quotes of the simulated market).
        self.market_data = MarketDataDesk(simulator)
        self.faults = FaultInjector(faults, fault_seed)
        self.lock = threading.RLock()
        self.token_lifetime = token_lifetime
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._client_id = client_id
        self._tokens: dict[str, float] = {}
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counts: Counter[str] = Counter()
        #: Answers sent, by HTTP status (0 = connection dropped without an answer).
        self.status_counts: Counter[int] = Counter()
        self._count_lock = threading.Lock()
        #: Tokens issued so far.
        self.tokens_issued = 0
        #: What list answers claim as ``pagination.total-pages`` (see :meth:`claim_pages`).
        self._claimed_pages: Any = _NO_CLAIM
        #: The account streamer (websocket, its own port): see :mod:`.streamer`.
        self.streamer = StreamerHub(self.token_valid, account_number, host)
        self._stream_baseline = True

    def __repr__(self) -> str:
        return f"TastytradeEmulator(url={self.url if self._server else None!r})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> TastytradeEmulator:
        """Listen (port 0 picks a free port) and serve from a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="tastytrade-emulator", daemon=True)
        self._thread.start()
        self.streamer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server = self._server
        if server is None:
            return
        self.streamer.stop()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TastytradeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self.port}"

    @property
    def streamer_url(self) -> str:
        """The account streamer's ``ws://127.0.0.1:<port>``."""
        return self.streamer.url

    def token_valid(self, auth_token: str) -> bool:
        """True when ``auth_token`` (``Bearer <token>``, as the streamer's messages carry it) is live."""
        if not auth_token.startswith("Bearer "):
            return False
        with self.lock:
            expiry = self._tokens.get(auth_token[len("Bearer "):])
        return expiry is not None and time.monotonic() < expiry

    def _publish(self) -> None:
        """Push every order change since the last call to the account streamer (under the lock).

        Costs nothing while no socket listens. The first call after one subscribed only takes a
        baseline (pushes nothing): whatever changed before it, the client reads in the REST
        re-sync it makes after every connect, which comes at or after this call.
        """
        if not self.streamer.listening():
            self._stream_baseline = True
            return
        baseline, self._stream_baseline = self._stream_baseline, False
        try:
            changed = self.account.changed_orders(views=not baseline)
        except Exception:  # a test's tamper rewrite that raises: the REST answer decides, not the push
            log.exception("the account streamer could not show a changed order")
            return
        if changed and not baseline:
            self.streamer.publish(changed, int(self.account.now.timestamp() * 1000))

    @property
    def account_number(self) -> str:
        """The emulated account."""
        return self.account.account_number

    def credentials(self) -> OAuthCredentials:
        """OAuth credentials this emulator accepts (test values, not secrets of anyone)."""
        return OAuthCredentials(self._client_secret, self._refresh_token, self._client_id)

    # -- time and inspection --------------------------------------------------------------------

    def advance_to(self, seconds: float) -> None:
        """Move the simulator to ``seconds`` (virtual) and fold its deliveries into the orders."""
        with self.lock:
            self.simulator.advance_to(seconds)
            self.account.pump()
            self._publish()

    def pump(self) -> None:
        """Fold the simulator's pending deliveries into the orders (under the lock)."""
        with self.lock:
            self.account.pump()
            self._publish()

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self.lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def quote_source(self) -> Callable[[OptionSymbol], Quote]:
        """An in-process quote source for :class:`~atomic_orders.backends.tastytrade.backend.TastytradeBackend`."""

        def quote(symbol: OptionSymbol) -> Quote:
            with self.lock:
                return self.simulator.quote(symbol)

        return quote

    def request_count(self, route: str | None = None) -> int:
        """Requests received, in total or for one route key such as ``"GET /orders/live"``."""
        with self._count_lock:
            if route is None:
                return sum(self._counts.values())
            return self._counts.get(route, 0)

    def request_counts(self) -> dict[str, int]:
        """Requests received per route key."""
        with self._count_lock:
            return dict(self._counts)

    def orders_with_external_id(self, external_id: str) -> list[int]:
        """Broker order ids placed (POSTed) with this external identifier."""
        with self.lock:
            return list(self.account.placed_by_external_id.get(external_id, []))

    # -- dispatch -------------------------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._count_lock:
            self._counts[key] += 1

    def _answer(self, response: _Response) -> _Response:
        with self._count_lock:
            dropped = response.fault in (Fault.DROP_BEFORE, Fault.DROP_AFTER)
            self.status_counts[0 if dropped else response.status] += 1
        return response

    def refuse_orders(self, pattern: str, message: str = "margin check failed") -> None:
        """Answer 422 ``preflight_check_failure`` to every new order whose external identifier matches ``pattern``."""
        with self.lock:
            self.account.refuse(pattern, message)

    def refuse_dry_run(self, pattern: str, message: str = "Account does not have sufficient buying power "
                       "available for this order.", status: int = 200) -> None:
        """Dry runs of orders whose external identifier matches ``pattern`` fail their preflight
        (:meth:`EmulatedAccount.refuse_dry_run`: 200 with a top-level ``error``, or ``status``)."""
        with self.lock:
            self.account.refuse_dry_run(pattern, message, status)

    def withhold_fills(self, pattern: str) -> None:
        """Orders whose external identifier matches ``pattern`` list no leg fills (counts stay; see
        :meth:`EmulatedAccount.withhold_fills`): e.g. ``Filled`` with ``fills: []``."""
        with self.lock:
            self.account.withhold_fills(pattern)

    def release_fills(self) -> None:
        """Every order lists its fills again."""
        with self.lock:
            self.account.release_fills()

    def reject_after_fill(self, pattern: str, reason: str = "rejected by the exchange") -> None:
        """New orders whose external identifier matches ``pattern`` end ``Rejected`` after their first
        (partial) fill, keeping it (:meth:`EmulatedAccount.reject_after_fill`)."""
        with self.lock:
            self.account.reject_after_fill(pattern, reason)

    def echo_prior_state(self, pattern: str) -> None:
        """DELETEs of matching orders answer the order as the request found it (e.g. ``Live``)."""
        with self.lock:
            self.account.echo_prior_state(pattern)

    # -- hostile answers: what a broker may send that the client must survive -------------------

    def tamper_orders(self, pattern: str, rewrite: Callable[[dict[str, Any]], Any]) -> None:
        """Answers show ``rewrite(order JSON)`` for orders whose external identifier matches
        ``pattern`` (every answer: POST, GET, lists, DELETE, PUT; the simulator is untouched).
        See :meth:`EmulatedAccount.tamper`."""
        with self.lock:
            self.account.tamper(pattern, rewrite)

    def serve_foreign(self, record: Any) -> None:
        """List ``record`` (any JSON: another application's order, or garbage) in ``/orders/live``
        and ``/orders`` answers, as given, after the account's own orders."""
        with self.lock:
            self.account.foreign_records.append(record)

    def claim_pages(self, total_pages: Any) -> None:
        """Paged list answers claim ``pagination.total-pages = total_pages`` (any JSON value),
        whatever they hold (pages beyond the real ones are empty)."""
        with self.lock:
            self._claimed_pages = total_pages

    def stop_tampering(self) -> None:
        """Answers are honest again: no rewrite, no foreign record, true page counts."""
        with self.lock:
            self.account.stop_tampering()
            self._claimed_pages = _NO_CLAIM

    def tamper_quotes(self, pattern: str, rewrite: Callable[[dict[str, Any]], Any]) -> None:
        """Market-data items whose symbol matches ``pattern`` are answered as ``rewrite(item)``
        (``None`` leaves them out): see :meth:`.market_data.MarketDataDesk.tamper`."""
        with self.lock:
            self.market_data.tamper(pattern, rewrite)

    def honest_quotes(self) -> None:
        """Market-data items are the market's again."""
        with self.lock:
            self.market_data.stop_tampering()

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Response:
        """Answer one request (called by the handler thread)."""
        parts = urllib.parse.urlsplit(target)
        path = parts.path
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        route = _route_key(method, path)
        self._count(route)
        is_auth = path == "/oauth/token"
        fault = self.faults.decide(method, path, is_auth)
        if fault is Fault.SERVER_ERROR:
            status = self.faults.server_error_status()
            return self._answer(_Response(status, {"error": {"code": "internal_server_error",
                                                             "message": "try again later"}}))
        if fault is Fault.RATE_LIMIT:
            limited = {"error": {"code": "too_many_requests", "message": "rate limit exceeded"}}
            return self._answer(_Response(429, limited, {"Retry-After": self.faults.faults.retry_after}))
        if fault is Fault.DROP_BEFORE:
            return self._answer(_Response(0, None, fault=fault))
        try:
            with self.lock:
                try:
                    status, body = self._handle(method, path, query, headers, raw)
                finally:
                    self._publish()
        except EmulatorError as err:
            status, body = err.status, err.body()
        except Exception:  # a bug in the emulator: answer 500 like a real server would
            log.exception("emulator failed on %s %s", method, path)
            status, body = 500, {"error": {"code": "internal_server_error", "message": "internal error"}}
        return self._answer(_Response(status, body, fault=fault))

    def _handle(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                raw: bytes) -> tuple[int, Any]:
        agent = headers.get("User-Agent") or ""
        if not _UA_RE.match(agent):
            raise EmulatorError(401, "unauthorized", "a User-Agent header of the form <product>/<version> is required")
        version = headers.get("Accept-Version")
        if version is not None and not _valid_version(version):
            raise EmulatorError(406, 406, f"Accept-Version {version!r} is not supported")
        effective = version or _EARLIEST_VERSION
        if path == "/oauth/token":
            if method != "POST":
                raise _TokenRefused(405, "invalid_request", "the token endpoint takes POST only")
            return 200, self._token(headers, raw)
        self._authenticate(headers)
        self.account.pump()
        if path == "/customers/me/accounts" and method == "GET":
            return 200, self._envelope(path, {"items": [{
                "account": account_record(self.account.account_number), "authority-level": "owner"}]})
        if path.startswith("/customers/me/accounts/") and method == "GET":
            return 200, self._envelope(path, self._account_by_number(path[len("/customers/me/accounts/"):]))
        if path == "/customers/me" and method == "GET":
            return 200, self._envelope(path, customer_record())
        if path == "/sessions/validate" and method == "POST":
            return 201, self._envelope(path, validated_session())
        if path.startswith("/accounts/") and path.count("/") == 2 and method == "GET":
            return 200, self._envelope(path, self._account_by_number(path[len("/accounts/"):]))
        if path == "/market-data/by-type" and method == "GET":
            return 200, self._envelope(path, self.market_data.by_type(query))
        if path.startswith("/market-data/equity-option/") and method == "GET":
            occ = urllib.parse.unquote(path[len("/market-data/equity-option/"):])
            return 200, self._envelope(path, self.market_data.one(occ))
        if path == "/_emulator/quotes" and method == "GET":
            items = [self.account.quote(s) for s in query.get("symbol", [])]
            return 200, self._envelope(path, {"items": items})
        m = _ACCOUNT_RE.match(path)
        if m is None:
            raise EmulatorError(404, "not_found", f"no route {method} {path}")
        account, rest = urllib.parse.unquote(m.group(1)), m.group(2)
        if account != self.account.account_number:
            raise EmulatorError(404, "record_not_found", f"account {account!r} not found")
        if self.simulator.in_outage() and not (method == "POST" and rest == "/orders"):
            raise EmulatorError(503, "service_unavailable", "the order service is unavailable")
        body = _json_body(raw) if method in ("POST", "PUT") else None
        acc = self.account
        if rest == "/positions" and method == "GET":
            return 200, self._envelope(path, {"items": acc.positions()})
        if rest in ("/balances", "/balances/USD") and method == "GET":
            return 200, self._envelope(path, balances_record(acc.account_number, acc.now))
        if rest == "/orders/dry-run" and method == "POST":
            refused = acc.dry_run_refusal(body)
            if refused is not None:
                return refused[0], {**refused[1], "context": path}
            return 200, self._envelope(path, acc.place(body, dry_run=True))
        if rest == "/orders" and method == "POST":
            return 201, self._envelope(path, acc.place(body))
        if rest == "/orders/live" and method == "GET":
            items = acc.live(query.get("status[]", []), _first(query, "underlying-symbol"))
            return 200, self._paged(path, items, query, effective >= _PAGINATED_VERSION, default_per_page=None)
        if rest == "/orders" and method == "GET":
            start_at = _when(query, "start-at", "start-date", start=True)
            end_at = _when(query, "end-at", "end-date", start=False)
            if effective >= _PAGINATED_VERSION and start_at is None:
                raise EmulatorError(400, "validation_error", "start-date or start-at is required",
                                    [{"domain": "start-date", "reason": "is missing"}])
            sort = _first(query, "sort") or "Desc"
            items = acc.history(start_at=start_at, end_at=end_at, statuses=query.get("status[]", []),
                                underlying=_first(query, "underlying-symbol"), newest_first=sort != "Asc")
            return 200, self._paged(path, items, query, True, default_per_page=10)
        m2 = _ORDER_ID_RE.match(rest)
        if m2 is not None:
            oid = int(m2.group(1))
            if method == "GET":
                return 200, self._envelope(path, acc.get(oid))
            if method == "DELETE":
                return 200, self._envelope(path, acc.cancel(oid))
            if method == "PUT":
                return 200, self._envelope(path, acc.replace(oid, body))
        raise EmulatorError(404, "not_found", f"no route {method} {path}")

    def _account_by_number(self, quoted: str) -> dict[str, Any]:
        number = urllib.parse.unquote(quoted)
        if number != self.account.account_number:
            raise EmulatorError(404, "record_not_found", f"account {number!r} not found")
        return account_record(number)

    @staticmethod
    def _envelope(path: str, data: Any) -> dict[str, Any]:
        return {"data": data, "context": path}

    def _paged(self, path: str, items: list[dict[str, Any]], query: dict[str, list[str]], paginate: bool,
               default_per_page: int | None) -> dict[str, Any]:
        per_raw = _first(query, "per-page")
        if per_raw is None and (not paginate or default_per_page is None):
            return {"data": {"items": items}, "context": path}
        try:
            per_page = int(per_raw) if per_raw is not None else int(default_per_page or 10)
            offset = int(_first(query, "page-offset") or 0)
        except ValueError:
            raise EmulatorError(400, "validation_error", "per-page and page-offset must be integers") from None
        if per_page <= 0 or per_page > 200 or offset < 0:
            raise EmulatorError(400, "validation_error", "per-page must be 1-200 and page-offset >= 0")
        total = len(items)
        pages = max(1, -(-total // per_page))
        chunk = items[offset * per_page:(offset + 1) * per_page]
        return {
            "data": {"items": chunk},
            "context": path,
            "pagination": {
                "per-page": per_page, "page-offset": offset, "item-offset": offset * per_page,
                "total-items": total, "current-item-count": len(chunk),
                "total-pages": pages if self._claimed_pages is _NO_CLAIM else self._claimed_pages,
                "previous-link": None, "next-link": None, "paging-link-template": None,
            },
        }

    # -- auth -----------------------------------------------------------------------------------

    def _token(self, headers: Mapping[str, str], raw: bytes) -> dict[str, Any]:
        """The refresh-token grant; a refusal is an OAuth error (:class:`_TokenRefused`), never the API envelope."""
        if headers.get("Authorization"):
            raise _TokenRefused(400, "invalid_request", "do not send an Authorization header to the token endpoint")
        content_type = headers.get("Content-Type") or ""
        if "application/x-www-form-urlencoded" in content_type:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace")).items()}
        else:
            try:
                parsed = json.loads(raw) if raw.strip() else None
            except (ValueError, RecursionError):
                raise _TokenRefused(400, "invalid_request", "the body is not valid JSON") from None
            if not isinstance(parsed, dict):
                raise _TokenRefused(400, "invalid_request", "the body must be a JSON object")
            form = {str(k): str(v) for k, v in parsed.items()}
        grant = form.get("grant_type")
        if not grant:
            raise _TokenRefused(400, "invalid_request", "grant_type is required")
        if grant != "refresh_token":
            raise _TokenRefused(400, "unsupported_grant_type", "only grant_type=refresh_token is supported")
        for name in ("refresh_token", "client_secret"):
            if not form.get(name):
                raise _TokenRefused(400, "invalid_request", f"{name} is required")
        # Bytes: compare_digest refuses str with non-ASCII characters (a 500 for a hostile body).
        # (surrogatepass: a lone surrogate in the JSON is a wrong secret, not a 500)
        if not secrets.compare_digest(form["refresh_token"].encode("utf-8", "surrogatepass"),
                                      self._refresh_token.encode()):
            raise _TokenRefused(401, "invalid_grant", "Invalid JWT")
        client_id_ok = self._client_id is None or form.get("client_id") in (None, self._client_id)
        if not (secrets.compare_digest(form["client_secret"].encode("utf-8", "surrogatepass"),
                                       self._client_secret.encode()) and client_id_ok):
            raise _TokenRefused(401, "invalid_client", "the client secret or client id is not valid")
        token = secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        self.tokens_issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime,
                "scope": form.get("scope", "read trade")}

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        value = headers.get("Authorization") or ""
        if not value.startswith("Bearer "):
            raise EmulatorError(401, "unauthorized", "a bearer token is required")
        expiry = self._tokens.get(value[len("Bearer "):])
        if expiry is None or time.monotonic() >= expiry:
            raise EmulatorError(401, "unauthorized", "the access token is invalid or expired")


class _TokenRefused(EmulatorError):
    """A refusal of ``POST /oauth/token``, in the OAuth shape the real endpoint answers with.

    ``{"error_code": ..., "error_description": ...}`` (reference 4.1: 401 ``invalid_grant`` "Invalid
    JWT" for a bad refresh token, quoted from tastyware/tastytrade issue #281). ``invalid_client``
    (bad client secret, 401) and the 400 ``invalid_request`` / ``unsupported_grant_type`` follow
    RFC 6749 section 5.2; their statuses on the real endpoint are unverified. The description
    never quotes what was sent.
    """

    def body(self) -> dict[str, Any]:
        """``{"error_code": code, "error_description": message}``."""
        return {"error_code": self.code, "error_description": self.message}


def _route_key(method: str, path: str) -> str:
    """``GET /orders/live``, ``DELETE /orders/{id}``, ... (account number and ids folded)."""
    m = _ACCOUNT_RE.match(path)
    rest = m.group(2) if m else path
    rest = re.sub(r"/orders/\d+", "/orders/{id}", rest)
    rest = re.sub(r"^/market-data/equity-option/.+", "/market-data/equity-option/{symbol}", rest)
    return f"{method} {rest}"


def _valid_version(value: str) -> bool:
    if len(value) != 8 or not value.isdigit() or value < _EARLIEST_VERSION:
        return False
    try:
        dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return False
    return True


def _json_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise EmulatorError(400, "validation_error", "the body is not valid JSON") from None


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _when(query: dict[str, list[str]], at_key: str, date_key: str, *, start: bool) -> dt.datetime | None:
    at = _first(query, at_key)
    if at:
        try:
            parsed = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise EmulatorError(400, "validation_error", f"{at_key} {at!r} is not an ISO timestamp") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    day = _first(query, date_key)
    if day:
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            raise EmulatorError(400, "validation_error", f"{date_key} {day!r} is not a date") from None
        return dt.datetime.combine(date, dt.time.min if start else dt.time.max, dt.UTC)
    return None
