"""Typed errors of the TastyTrade client.

Every error the API answers with becomes a :class:`TastytradeApiError` subclass chosen by HTTP
status, carrying the API's ``code`` (a string such as ``validation_error``; the 406 answer uses
the integer 406), its ``message`` and the nested ``errors`` list. Transport failures (timeouts,
dropped connections) are :class:`TastytradeTransportError`; a body that is not the JSON the API
promises is :class:`MalformedResponseError`.

No message built here ever contains a request header or a request body, and the server's own
text (an error message may quote what it was sent) is scrubbed: every exact occurrence of a
secret value the process holds -- the value of every live :class:`~.auth.Secret`, that is the
refresh token, the client secret and the current access token -- becomes ``[redacted]`` in the
message, the ``code``, the nested ``errors`` and ``str()`` of every error of this module, before
the error can reach a log or a caller (:func:`redact`).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

from atomic_orders.fsm.errors import BrokerError

__all__ = [
    "AuthenticationError",
    "InsecureTransportError",
    "MalformedResponseError",
    "NotFoundError",
    "OrderRejectedError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "TastytradeApiError",
    "TastytradeError",
    "TastytradeTransportError",
    "ValidationFailedError",
    "VersionNotSupportedError",
    "api_error_for",
    "redact",
    "register_secret",
]

#: What replaces a secret value quoted in server text.
REDACTED = "[redacted]"


class _Revealing(Protocol):
    def reveal(self) -> str: ...


# Live secrets by id (weakly: a secret forgotten by its owner stops being masked and is not kept
# alive by the mask list). Keyed by id, not by value: Secret compares by value, and two equal
# secrets must not share one entry that dies with the first.
_LIVE: weakref.WeakValueDictionary[int, _Revealing] = weakref.WeakValueDictionary()
_LIVE_LOCK = threading.Lock()


def register_secret(secret: _Revealing) -> None:
    """Mask ``secret.reveal()`` in every error text of this module for as long as ``secret`` lives."""
    with _LIVE_LOCK:
        _LIVE[id(secret)] = secret


def redact(text: str) -> str:
    """``text`` with every exact occurrence of a live secret's value replaced by ``[redacted]``.

    Longer values first, so a secret that contains another is masked whole.
    """
    with _LIVE_LOCK:
        values = sorted({s.reveal() for s in _LIVE.values()}, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _redact_any(value: Any) -> Any:
    """Strings anywhere inside JSON-like values (dicts, lists, tuples) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_redact_any(k): _redact_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_any(v) for v in value)
    return value


#: Control characters, bidi overrides and lone surrogates: escaped in server text, so an error
#: message is one printable line (no log injection) that any UTF-8 stream can write.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: How deep and how long the server's nested error details are kept (a 1 kB body can nest 600 deep).
_DETAIL_DEPTH = 4
_DETAIL_CHARS = 200


def _server_text(text: str, limit: int) -> str:
    """Server-supplied ``text`` redacted, unprintables escaped, then cut to ``limit`` characters."""
    text = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), redact(text))
    return text if len(text) <= limit else text[:limit] + "..."


def _server_value(value: Any, depth: int = 0) -> Any:
    """A server's JSON-like error detail, bounded: strings as :func:`_server_text`, at most 20 items
    per list or object, nothing below :data:`_DETAIL_DEPTH` levels, numbers by a short repr."""
    if isinstance(value, str):
        return _server_text(value, _DETAIL_CHARS)
    if depth >= _DETAIL_DEPTH and isinstance(value, (dict, list, tuple)):
        return "..."
    if isinstance(value, dict):
        return {_server_text(str(k), 60): _server_value(v, depth + 1) for k, v in list(value.items())[:20]}
    if isinstance(value, (list, tuple)):
        return [_server_value(v, depth + 1) for v in list(value)[:20]]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (int, float)):
        return value
    return _server_text(repr(value), _DETAIL_CHARS)


class TastytradeError(BrokerError):
    """Base class of every error raised by the TastyTrade client (its text is always :func:`redact`-ed)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(_redact_any(a) for a in args))


class InsecureTransportError(TastytradeError, ValueError):
    """A plain ``http://`` base URL to a host that is not the loopback interface."""


class TastytradeApiError(TastytradeError):
    """The API answered with an error status and (usually) an error envelope."""

    def __init__(
        self,
        status: int,
        code: str | int | None,
        message: str,
        *,
        method: str = "",
        path: str = "",
        errors: Sequence[Any] = (),
    ) -> None:
        self.status = status
        self.code = _server_text(code, 256) if isinstance(code, str) else code
        self.message = _server_text(message, 2000)
        self.method = method
        self.path = path
        self.errors = tuple(_server_value(e) for e in list(errors)[:20])
        where = f"{method} {path}: " if method else ""
        detail = f" ({_format_details(self.errors)})" if self.errors else ""
        super().__init__(f"{where}HTTP {status} {self.code or 'error'}: {self.message}{detail}")

    @property
    def is_client_error(self) -> bool:
        """True for a 4xx answer: the request was understood and definitely refused."""
        return 400 <= self.status < 500


class ValidationFailedError(TastytradeApiError):
    """HTTP 400: malformed request or schema violation (``validation_error``)."""


class AuthenticationError(TastytradeApiError):
    """HTTP 401: missing/expired token, bad credentials, missing User-Agent."""


class PermissionDeniedError(TastytradeApiError):
    """HTTP 403: token scope or account authority insufficient (``not_permitted``)."""


class NotFoundError(TastytradeApiError):
    """HTTP 404: unknown account, order id or symbol."""


class VersionNotSupportedError(TastytradeApiError):
    """HTTP 406: the ``Accept-Version`` header names a version the API does not serve."""


class OrderRejectedError(TastytradeApiError):
    """HTTP 422: a preflight or business-rule failure (``preflight_check_failure`` ...)."""


class RateLimitedError(TastytradeApiError):
    """HTTP 429: too many requests; ``retry_after`` is the server's ``Retry-After`` in seconds, if any."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(TastytradeApiError):
    """HTTP 5xx: the server failed; the outcome of a non-idempotent request is unknown."""


class TastytradeTransportError(TastytradeError):
    """The request or its response was lost: connect failure, timeout, dropped connection.

    ``timed_out`` is true for a timeout (connect or read). For a POST the request may have been
    processed: never resend it, reconcile by the order's external identifier.
    """

    def __init__(self, message: str, *, method: str = "", path: str = "", timed_out: bool = False) -> None:
        self.method = method
        self.path = path
        self.timed_out = timed_out
        super().__init__(f"{method} {path}: {message}" if method else message)


class MalformedResponseError(TastytradeError):
    """The response body is not the JSON the API promises (truncated, not JSON, wrong shape)."""

    def __init__(self, message: str, *, method: str = "", path: str = "", status: int | None = None) -> None:
        self.method = method
        self.path = path
        self.status = status
        where = f"{method} {path}: " if method else ""
        code = f"HTTP {status} " if status is not None else ""
        super().__init__(f"{where}{code}malformed response: {message}")


_BY_STATUS: dict[int, type[TastytradeApiError]] = {
    400: ValidationFailedError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    406: VersionNotSupportedError,
    422: OrderRejectedError,
    429: RateLimitedError,
}


def api_error_for(
    status: int,
    code: str | int | None,
    message: str,
    *,
    method: str = "",
    path: str = "",
    errors: Sequence[Any] = (),
    retry_after: float | None = None,
) -> TastytradeApiError:
    """The typed error for an HTTP error ``status`` (5xx -> :class:`ServerError`)."""
    if status == 429:
        return RateLimitedError(status, code, message, method=method, path=path, errors=errors,
                                retry_after=retry_after)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else TastytradeApiError
    return cls(status, code, message, method=method, path=path, errors=errors)


def _format_details(errors: Sequence[Any]) -> str:
    parts: list[str] = []
    for item in errors[:5]:
        if isinstance(item, dict):
            if "domain" in item or "reason" in item:
                parts.append(f"{item.get('domain', '?')}: {item.get('reason', '?')}")
            else:
                parts.append(f"{item.get('code', '?')}: {item.get('message', '?')}")
        else:
            parts.append(_server_text(str(item), _DETAIL_CHARS))
    if len(errors) > 5:
        parts.append(f"... {len(errors) - 5} more")
    return "; ".join(parts)
