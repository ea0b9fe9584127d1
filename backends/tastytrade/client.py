"""TastytradeApiClient: the REST endpoints a multi-leg option client needs, over one ``requests.Session``.

Every request carries ``User-Agent`` (``atomic-orders/<version>``), ``Accept: application/json``,
``Accept-Version`` (see :mod:`.config`) and, except the token request, ``Authorization: Bearer``.
Responses are unwrapped from the ``{"data": ..., "context": ...}`` envelope; errors become the
typed exceptions of :mod:`.errors`.

Retry rules
-----------
* GET and DELETE are retried (``max_retries`` times) on connection errors, timeouts, 5xx,
  malformed bodies and 429, with exponential backoff and full jitter; a 429 waits for its
  ``Retry-After`` (seconds) when given, unless it exceeds ``max_retry_after``.
* POST (place order, dry run) and PUT (replace) are never retried: a lost answer raises, the
  caller reconciles by the order's ``external-identifier``.
* A 401 is answered once, for any method, by refreshing the access token and resending: the
  API refused the request before acting on it.

Bounds on answers
-----------------
A body larger than ``max_response_bytes``, nested too deeply to decode, or not a JSON object is
:class:`MalformedResponseError` (never a ``RecursionError``). Paged lists follow at most a fixed
number of pages per call, whatever ``total-pages`` claims (a page count must be an int or an
ASCII digit string of at most 7 characters): ``max_live_pages`` for the live-order poll (1 page
of 200 orders covers an ordinary account: one request per poll), ``max_history_pages`` when an
order is looked up, ``max_find_pages`` for :meth:`TastytradeApiClient.list_orders` callers that
need the whole day (more pages claimed than that is an error, not a silent cut). Order ids in
request paths are checked by :func:`~.parsing.parse_order_id`, the function parsing reads them with.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from atomic_orders.backends.tastytrade.auth import OAuthCredentials, TokenManager, token_endpoint_error
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.errors import (
    MalformedResponseError,
    RateLimitedError,
    ServerError,
    TastytradeTransportError,
    api_error_for,
    redact,
)
from atomic_orders.backends.tastytrade.parsing import parse_order_id
from atomic_orders.fsm.errors import ValidationError

__all__ = ["MAX_MARKET_DATA_SYMBOLS", "JsonObject", "TastytradeApiClient"]

log = logging.getLogger("atomic_orders.tastytrade.client")

JsonObject = dict[str, Any]

_IDEMPOTENT = frozenset({"GET", "DELETE"})
#: Symbols one ``GET /market-data/by-type`` may name, across all types (reference 5.1).
MAX_MARKET_DATA_SYMBOLS = 100
_TOKEN_PATH = "/oauth/token"


class TastytradeApiClient:
    """A synchronous client of the TastyTrade REST API for one account.

    ``sleep`` (wall-clock waits between retries) and ``rng`` (jitter) are injectable for tests.
    """

    def __init__(
        self,
        config: TastytradeConfig,
        credentials: OAuthCredentials,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        time_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._session = session if session is not None else requests.Session()
        # Proxies, .netrc credentials and CA overrides from the environment are not picked up.
        self._session.trust_env = False
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, config.pool_maxsize), max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self.tokens = TokenManager(credentials, self._request_token, time_fn=time_fn)
        self._stats_lock = threading.Lock()
        #: Requests put on the wire (every attempt counts), by method.
        self.request_counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"TastytradeApiClient(base_url={self.config.base_url!r}, account={self.config.account_number!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def __enter__(self) -> TastytradeApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        """Total HTTP requests sent (all attempts, all methods)."""
        return sum(self.request_counts.values())

    # -- endpoints ------------------------------------------------------------------------------

    @property
    def _account_path(self) -> str:
        return f"/accounts/{urllib.parse.quote(self.config.account_number, safe='')}"

    def accounts(self) -> list[JsonObject]:
        """``GET /customers/me/accounts``: the accounts this token may use (``items``)."""
        return _items(self._request("GET", "/customers/me/accounts"), "GET", "/customers/me/accounts")

    def positions(self) -> list[JsonObject]:
        """``GET /accounts/{n}/positions``: current positions (``items``)."""
        path = f"{self._account_path}/positions"
        return _items(self._request("GET", path), "GET", path)

    def dry_run(self, order: Mapping[str, Any]) -> JsonObject:
        """``POST /accounts/{n}/orders/dry-run``: validate an order without placing it (never retried).

        Answers ``data`` (``{order, buying-power-effect, fee-calculation, warnings}``). A failed
        preflight may come as a 2xx whose envelope holds a top-level ``error`` beside ``data``
        (reference 2, the Go SDK's ``orderErrorDryRunResp``): that ``error`` object is returned
        under ``data["error"]`` (``data`` has no such key of its own); a 4xx raises as usual.
        """
        path = f"{self._account_path}/orders/dry-run"
        envelope = self._request_envelope("POST", path, body=order)
        data = _object(envelope.get("data"), "POST", path)
        error = envelope.get("error")
        if error is not None:
            data = {**data, "error": error}
        return data

    def market_data(self, equity_options: Sequence[str]) -> list[JsonObject]:
        """``GET /market-data/by-type?equity-option=A&equity-option=B``: quote items (reference 5.1).

        At most :data:`MAX_MARKET_DATA_SYMBOLS` (100) symbols per request (``ValidationError`` for
        more, or for a symbol that is not a string: the caller batches); the key is repeated per
        symbol as the tastyware SDK sends it. Retried like every GET. Answers ``data.items``
        (objects only).
        """
        if len(equity_options) > MAX_MARKET_DATA_SYMBOLS:
            raise ValidationError("equity_options", f"{len(equity_options)} symbols",
                                  f"at most {MAX_MARKET_DATA_SYMBOLS} per request")
        for symbol in equity_options:
            if not isinstance(symbol, str) or not symbol:
                raise ValidationError("equity_options", symbol, "every symbol must be a non-empty OCC string")
        path = "/market-data/by-type"
        params = [("equity-option", s) for s in equity_options]
        return _items(self._request("GET", path, params=params), "GET", path)

    def place_order(self, order: Mapping[str, Any]) -> JsonObject:
        """``POST /accounts/{n}/orders``: place an order; answers ``{order, buying-power-effect, ...}``.

        Never retried: a timeout, a lost connection or a 5xx raises and the order may exist.
        """
        path = f"{self._account_path}/orders"
        data = _object(self._request("POST", path, body=order), "POST", path)
        if not isinstance(data.get("order"), dict):
            raise MalformedResponseError("placed-order answer has no 'order' object", method="POST", path=path)
        return data

    def get_order(self, order_id: str | int) -> JsonObject:
        """``GET /accounts/{n}/orders/{id}``: one order."""
        path = f"{self._account_path}/orders/{_order_id(order_id)}"
        return _object(self._request("GET", path), "GET", path)

    def live_orders(self, statuses: Sequence[str] | None = None) -> list[JsonObject]:
        """``GET /accounts/{n}/orders/live``: today's orders plus older working ones.

        ``statuses`` filters (``status[]``); pages are followed when the answer is paginated, so
        up to ``page_size`` orders cost one request.
        """
        params: list[tuple[str, str]] = [("status[]", s) for s in statuses or ()]
        return list(self._paged(f"{self._account_path}/orders/live", params, max_pages=self.config.max_live_pages))

    def list_orders(
        self,
        *,
        start_date: dt.date,
        start_at: dt.datetime | None = None,
        end_date: dt.date | None = None,
        statuses: Sequence[str] | None = None,
        max_pages: int | None = None,
        complete: bool = False,
    ) -> Iterator[JsonObject]:
        """``GET /accounts/{n}/orders``: order history, newest first, page by page (lazily).

        The API has no filter on ``external-identifier``: callers search the pages themselves.
        ``start_at`` (an aware datetime) narrows the search to orders received since then. At
        most ``max_pages`` pages (default ``config.max_history_pages``) are read; with
        ``complete`` an answer claiming more raises :class:`MalformedResponseError` (naming the
        claimed count) instead of stopping short.
        """
        params: list[tuple[str, str]] = [("start-date", start_date.isoformat()), ("sort", "Desc")]
        if start_at is not None:
            params.append(("start-at", start_at.astimezone(dt.UTC).isoformat(timespec="milliseconds")))
        if end_date is not None:
            params.append(("end-date", end_date.isoformat()))
        params.extend(("status[]", s) for s in statuses or ())
        pages = self.config.max_history_pages if max_pages is None else max_pages
        return self._paged(f"{self._account_path}/orders", params, max_pages=pages, complete=complete)

    def cancel_order(self, order_id: str | int) -> JsonObject:
        """``DELETE /accounts/{n}/orders/{id}``: request a cancel; answers the order (retried)."""
        path = f"{self._account_path}/orders/{_order_id(order_id)}"
        return _object(self._request("DELETE", path), "DELETE", path)

    def replace_order(self, order_id: str | int, order: Mapping[str, Any]) -> JsonObject:
        """``PUT /accounts/{n}/orders/{id}``: cancel-replace; answers the NEW order (new id). Never retried."""
        path = f"{self._account_path}/orders/{_order_id(order_id)}"
        return _object(self._request("PUT", path, body=order), "PUT", path)

    # -- plumbing -------------------------------------------------------------------------------

    def _paged(self, path: str, params: list[tuple[str, str]], max_pages: int,
               complete: bool = False) -> Iterator[JsonObject]:
        """Items of up to ``max_pages`` pages (at least one); see "Bounds on answers"."""
        per_page = self.config.page_size or 200
        max_pages = max(1, max_pages)
        offset = 0
        while True:
            query = [*params, ("per-page", str(per_page)), ("page-offset", str(offset))]
            answer = self._request_envelope("GET", path, params=query)
            data = answer.get("data")
            yield from _items(data, "GET", path)
            pagination = answer.get("pagination")
            if not isinstance(pagination, dict) and isinstance(data, dict):
                pagination = data.get("pagination")
            total_pages = _page_count(pagination.get("total-pages")) if isinstance(pagination, dict) else None
            offset += 1
            if total_pages is not None and offset == 1 and total_pages > max_pages:
                if complete:
                    raise MalformedResponseError(f"pagination.total-pages={total_pages}: more than the {max_pages} "
                                                 "pages read per request", method="GET", path=path)
                log.warning("GET %s: the answer claims %d pages; reading the first %d only", path, total_pages,
                            max_pages)
            if total_pages is None or offset >= total_pages or offset >= max_pages:
                return

    def _request(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        """Send one API request and return the envelope's ``data``."""
        return self._request_envelope(method, path, params=params, body=body).get("data")

    def _count(self, method: str) -> None:
        with self._stats_lock:
            self.request_counts[method] = self.request_counts.get(method, 0) + 1

    def _headers(self, with_auth: bool, has_body: bool) -> dict[str, str]:
        headers = {"User-Agent": self.config.user_agent, "Accept": "application/json"}
        if self.config.api_version:
            headers["Accept-Version"] = self.config.api_version
        if has_body:
            headers["Content-Type"] = "application/json"
        if with_auth:
            headers["Authorization"] = self.tokens.authorization()
        return headers

    def _backoff(self, attempt: int) -> float:
        cap = min(self.config.backoff_max, self.config.backoff_base * (2**attempt))
        return self._rng.uniform(0, cap)

    def _send(self, method: str, path: str, *, params: Any = None, body: Any = None, with_auth: bool = True,
              retire_refused_token: bool = False) -> requests.Response:
        """Put one request on the wire and return the answer, whatever its status.

        No frame an error passes through holds the bearer token (a traceback printed with its
        locals would show it): the headers go straight from :meth:`_headers` into the call, a
        transport failure is raised after its ``except`` block is over (the ``requests``
        exception, which holds the sent headers, is gone by then), and the answer's copy of the
        sent request loses its ``Authorization`` header and body (:meth:`_scrub`).
        ``retire_refused_token``: on a 401, forget the token that was sent (if still current).
        """
        self._count(method)
        try:
            response = self._session.request(
                method,
                self.config.base_url + path,
                params=params,
                data=json.dumps(body, separators=(",", ":")) if body is not None else None,
                headers=self._headers(with_auth=with_auth, has_body=body is not None),
                timeout=self.config.timeout,
                allow_redirects=False,
                verify=self.config.ca_bundle or True,
            )
        except requests.RequestException as err:
            failure = _transport_error(err, method, path)
        else:
            self._scrub(response, retire=retire_refused_token and response.status_code == 401)
            return response
        raise failure

    def _scrub(self, response: requests.Response, *, retire: bool) -> None:
        """Drop the secrets from the request ``response`` keeps (``retire``: first forget its token)."""
        sent = response.request
        if retire:
            self.tokens.invalidate(sent.headers.get("Authorization"))
        sent.headers.pop("Authorization", None)
        sent.body = None  # the token request's body holds the refresh token and the client secret

    def _request_envelope(self, method: str, path: str, *, params: Any = None, body: Any = None) -> JsonObject:
        retryable = method in _IDEMPOTENT
        attempts = 1 + (self.config.max_retries if retryable else 0)
        reauthenticated = False
        attempt = 0
        while True:
            try:
                response = self._send(method, path, params=params, body=body, retire_refused_token=not reauthenticated)
                if response.status_code == 401 and not reauthenticated:
                    # The API refused before acting (_send forgot the token): fetch another once and resend.
                    reauthenticated = True
                    log.info("%s %s: 401, refreshing the access token once", method, path)
                    continue
                return self._decode(method, path, response)
            except (TastytradeTransportError, ServerError, RateLimitedError, MalformedResponseError) as err:
                attempt += 1
                if attempt >= attempts:
                    raise
                wait = self._backoff(attempt - 1)
                if isinstance(err, RateLimitedError) and err.retry_after is not None:
                    if err.retry_after > self.config.max_retry_after:
                        raise
                    wait = max(wait, err.retry_after)
                log.warning("%s %s: %s; retry %d/%d in %.2fs", method, path, _short(err), attempt, attempts - 1,
                            wait)
                if wait > 0:
                    self._sleep(wait)

    def _decode(self, method: str, path: str, response: requests.Response) -> JsonObject:
        status = response.status_code
        raw = response.content
        if len(raw) > self.config.max_response_bytes:
            raise MalformedResponseError(f"body of {len(raw)} bytes, more than max_response_bytes="
                                         f"{self.config.max_response_bytes}", method=method, path=path, status=status)
        if 200 <= status < 300:
            if not raw.strip():
                return {}
            parsed = _parse_json(raw, method, path, status)
            if not isinstance(parsed, dict):
                raise MalformedResponseError(f"expected a JSON object, got {type(parsed).__name__}", method=method,
                                             path=path, status=status)
            return parsed
        code: str | int | None = None
        message = response.reason or "error"
        errors: list[Any] = []
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            err = parsed.get("error")
            if isinstance(err, dict):
                raw_code = err.get("code")
                # a code is a short string or the int 406; anything else is not a code
                code = raw_code if isinstance(raw_code, (str, int)) and not isinstance(raw_code, bool) else None
                message = str(err.get("message") or message)
                nested = err.get("errors")
                if isinstance(nested, list):
                    errors = nested[:20]
            elif isinstance(err, str):  # OAuth2-style {"error": "...", "error_description": "..."}
                code = err
                message = str(parsed.get("error_description") or message)
        # Redacted before the cut: a secret cut in two would escape redaction.
        if isinstance(code, str) and len(code) > 256:
            code = redact(code)[:256] + "..."
        if len(message) > 1000:  # server text is shown, never parsed: keep it readable
            message = redact(message)[:1000] + "..."
        retry_after = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
        raise api_error_for(status, code, message, method=method, path=path, errors=errors, retry_after=retry_after)

    def _request_token(self, body: dict[str, str]) -> Mapping[str, Any]:
        """POST the refresh-token grant (no Authorization header; never retried, never logged)."""
        response = self._send("POST", _TOKEN_PATH, body=body, with_auth=False)
        status = response.status_code
        if not 200 <= status < 300:
            retry_after = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
            raise token_endpoint_error(status, response.content, response.reason or "", retry_after=retry_after,
                                       max_bytes=self.config.max_response_bytes)
        try:
            parsed = json.loads(response.content)
        except ValueError:
            # The body holds the token: do not quote it.
            raise MalformedResponseError("token answer is not JSON", method="POST", path=_TOKEN_PATH,
                                         status=status) from None
        if not isinstance(parsed, dict):
            raise MalformedResponseError("token answer is not a JSON object", method="POST", path=_TOKEN_PATH)
        # Some deployments wrap it in the usual envelope.
        inner = parsed.get("data")
        if "access_token" not in parsed and isinstance(inner, dict):
            return inner
        return parsed


def _transport_error(err: requests.RequestException, method: str, path: str) -> TastytradeTransportError:
    """What a failed exchange becomes: its kind only (the ``requests`` text may name the request)."""
    if isinstance(err, requests.Timeout):
        return TastytradeTransportError(f"timed out ({type(err).__name__})", method=method, path=path,
                                        timed_out=True)
    return TastytradeTransportError(f"connection failed ({type(err).__name__})", method=method, path=path)


def _parse_json(raw: bytes, method: str, path: str, status: int) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise MalformedResponseError(f"nested too deeply to decode ({len(raw)} bytes)", method=method, path=path,
                                     status=status) from None
    except ValueError as err:
        snippet = raw[:80].decode("utf-8", "replace")
        raise MalformedResponseError(f"{err} (body starts {snippet!r}, {len(raw)} bytes)", method=method, path=path,
                                     status=status) from None


def _items(data: Any, method: str, path: str) -> list[JsonObject]:
    items: list[Any]
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        items = data["items"]
    elif isinstance(data, list):
        items = data
    else:
        raise MalformedResponseError("expected data.items to be a list", method=method, path=path)
    objects = [dict(i) for i in items if isinstance(i, dict)]
    if len(objects) < len(items):  # nobody can own a record that is not an object: one never fails the list
        log.warning("%s %s: %d of %d items are not objects; skipped", method, path, len(items) - len(objects),
                    len(items))
    return objects


def _object(data: Any, method: str, path: str) -> JsonObject:
    if not isinstance(data, dict):
        raise MalformedResponseError("expected data to be an object", method=method, path=path)
    return data


def _order_id(order_id: str | int) -> str:
    """The id as it goes into a path: what parsing accepts (:func:`~.parsing.parse_order_id`), else ValueError."""
    return parse_order_id(order_id, "order_id")


def _page_count(value: Any) -> int | None:
    """``total-pages`` as an int: a JSON int or ASCII digits (at most 7), 0 .. 10**6; anything else None."""
    if type(value) is int:
        return value if 0 <= value <= 10**6 else None
    if isinstance(value, str) and 0 < len(value) <= 7 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _retry_after(value: str | None) -> float | None:
    if value is None or len(value) > 32:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: not used by this API (429 carries no headers in production)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _short(err: Exception) -> str:
    text = str(err)
    return text if len(text) <= 200 else text[:200] + "..."
