"""OAuth2 for the TastyTrade API: a refresh token and a client secret buy short-lived access tokens.

``POST /oauth/token`` (on the REST host, without an ``Authorization`` header) with
``grant_type=refresh_token``, ``refresh_token``, ``client_secret`` (and ``client_id``/``scope``
when configured) answers ``access_token`` + ``expires_in`` (900 s in production). Requests then
carry ``Authorization: Bearer <access_token>``. :class:`TokenManager` refreshes before expiry
(``refresh_margin`` seconds early, at most a quarter of the token's lifetime) and, on a 401, the
client asks it for a fresh token once.

Secrets never appear in logs, reprs or exceptions: they are held by :class:`Secret`, whose
``repr``/``str`` are masked; only :meth:`Secret.reveal` gives the value, and only the client
calls it, to build a header or the token request body. Every live :class:`Secret` is also
registered with :func:`.errors.redact`, so a server answer that quotes one (an error message
echoing the refresh token, say) is scrubbed before it becomes an exception's text or a log line.

A failed token fetch keeps no secret within reach of an error reporter that shows locals
(``pytest -l``, crash reporters): the plaintext request body exists only as an argument inside
the requester's frames, and a failure raised there is detached from them (traceback and
chained exceptions dropped, see :meth:`TokenManager._fetch`) and raised again from a frame that
holds neither the body nor the server's answer.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from atomic_orders.backends.tastytrade.errors import (
    AuthenticationError,
    MalformedResponseError,
    TastytradeApiError,
    TastytradeError,
    api_error_for,
    redact,
    register_secret,
)

__all__ = ["AccessToken", "OAuthCredentials", "Secret", "TokenManager", "token_endpoint_error"]

log = logging.getLogger("atomic_orders.tastytrade.auth")

_MASK = "********"


class Secret:
    """A string that does not print itself: ``repr``/``str``/``format`` show ``********``."""

    __slots__ = ("__weakref__", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value
        register_secret(self)  # masked in every error text while it lives

    def reveal(self) -> str:
        """The secret value (for building a request; never log it)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not picklable")


class OAuthCredentials:
    """The long-lived OAuth2 material: client secret, refresh token, optional client id and scope."""

    __slots__ = ("client_id", "client_secret", "refresh_token", "scope")

    def __init__(
        self,
        client_secret: str | Secret,
        refresh_token: str | Secret,
        client_id: str | None = None,
        scope: str | None = None,
    ) -> None:
        self.client_secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)
        self.refresh_token = refresh_token if isinstance(refresh_token, Secret) else Secret(refresh_token)
        self.client_id = client_id
        self.scope = scope

    @classmethod
    def from_env(cls, prefix: str = "TASTYTRADE_", environ: Mapping[str, str] | None = None) -> OAuthCredentials:
        """Read ``<prefix>CLIENT_SECRET``, ``<prefix>REFRESH_TOKEN`` (and optional ``CLIENT_ID``, ``SCOPE``)."""
        env = os.environ if environ is None else environ
        missing = [name for name in ("CLIENT_SECRET", "REFRESH_TOKEN") if not env.get(prefix + name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(prefix + m for m in missing)}")
        return cls(env[prefix + "CLIENT_SECRET"], env[prefix + "REFRESH_TOKEN"], env.get(prefix + "CLIENT_ID"),
                   env.get(prefix + "SCOPE"))

    def token_request(self) -> dict[str, str]:
        """The JSON body of the refresh-token grant (contains secrets: never log it)."""
        body = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token.reveal(),
            "client_secret": self.client_secret.reveal(),
        }
        if self.client_id:
            body["client_id"] = self.client_id
        if self.scope:
            body["scope"] = self.scope
        return body

    def __repr__(self) -> str:
        return (f"OAuthCredentials(client_secret={_MASK!r}, refresh_token={_MASK!r}, "
                f"client_id={self.client_id!r}, scope={self.scope!r})")


class AccessToken:
    """A bearer token and the (monotonic) time it expires at."""

    __slots__ = ("expires_at", "lifetime", "value")

    def __init__(self, value: str | Secret, expires_at: float, lifetime: float) -> None:
        self.value = value if isinstance(value, Secret) else Secret(value)
        self.expires_at = expires_at
        self.lifetime = lifetime

    def __repr__(self) -> str:
        return f"AccessToken({_MASK!r}, lifetime={self.lifetime:g}s)"


#: Posts the token request body and returns the decoded JSON answer.
TokenRequester = Callable[[dict[str, str]], Mapping[str, Any]]


class TokenManager:
    """Holds the current access token; refreshes it before expiry or when told it was refused.

    Thread-safe: concurrent callers share one refresh.
    """

    def __init__(
        self,
        credentials: OAuthCredentials,
        requester: TokenRequester,
        *,
        time_fn: Callable[[], float] = time.monotonic,
        refresh_margin: float = 60.0,
    ) -> None:
        self.credentials = credentials
        self._requester = requester
        self._time = time_fn
        self.refresh_margin = refresh_margin
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        #: How many tokens were obtained (for tests and statistics).
        self.refreshes = 0

    def __repr__(self) -> str:
        state = "none" if self._token is None else repr(self._token)
        return f"TokenManager(credentials={self.credentials!r}, token={state})"

    def _needs_refresh(self, token: AccessToken | None) -> bool:
        if token is None:
            return True
        margin = min(self.refresh_margin, token.lifetime / 4)
        return self._time() >= token.expires_at - margin

    def authorization(self) -> str:
        """The ``Authorization`` header value, refreshing the token first when it is (nearly) expired."""
        with self._lock:
            if self._needs_refresh(self._token):
                self._refresh_locked()
            assert self._token is not None
            return f"Bearer {self._token.value.reveal()}"

    def invalidate(self, header_value: str | None = None) -> None:
        """Forget the token (after a 401); with ``header_value``, only if it is still the current one."""
        with self._lock:
            if self._token is None:
                return
            if header_value is None or header_value == f"Bearer {self._token.value.reveal()}":
                self._token = None

    def refresh(self) -> None:
        """Obtain a new access token now."""
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        # Only ``token`` and ``failure`` live here: the request body and the answer stayed in
        # _fetch's frame, which is gone by the time anything is raised.
        token, failure = self._fetch()
        if failure is not None:
            raise failure
        assert token is not None
        self._token = token
        self.refreshes += 1
        log.info("access token refreshed (valid for %gs)", token.lifetime)

    def _fetch(self) -> tuple[AccessToken | None, TastytradeError | None]:
        """Ask for a token; a failure is returned, never raised from here.

        The plaintext body is built as the requester's argument (no local of ours holds it). A
        failure raised by the requester is detached from the frames it came through (theirs hold
        the body and the raw answer) before it is handed back; anything that is not a
        :class:`TastytradeError` becomes one, its text redacted.
        """
        try:
            answer = self._requester(self.credentials.token_request())
        except TastytradeError as err:
            return None, _detached(err)
        except Exception as err:  # a requester's bug: its text may quote the body
            failure = TastytradeError(f"POST {_TOKEN_PATH}: the token request failed "
                                      f"({type(err).__name__}: {redact(str(err))})")
            return None, failure
        return _parse_token_answer(answer, self._time())


_TOKEN_PATH = "/oauth/token"


def _detached(err: TastytradeError) -> TastytradeError:
    """``err`` cut from every frame and exception it was raised through (they may hold secrets)."""
    err.__traceback__ = None
    err.__context__ = None
    err.__cause__ = None
    err.__suppress_context__ = False
    return err


def _parse_token_answer(answer: Any, now: float) -> tuple[AccessToken | None, TastytradeError | None]:
    """The token in a decoded token answer, or the error saying why there is none.

    The access token is wrapped in a :class:`Secret` first: from then on its value is masked in
    any error text (a bad ``expires_in`` quoting it, say).
    """
    value = answer.get("access_token") if isinstance(answer, Mapping) else None
    if not isinstance(value, str) or not value:
        return None, MalformedResponseError("token answer has no access_token", path=_TOKEN_PATH, method="POST")
    secret = Secret(value)
    raw_expiry = answer.get("expires_in", 900)
    try:
        lifetime = float(raw_expiry)
    except (TypeError, ValueError, OverflowError):
        lifetime = math.nan
    if isinstance(raw_expiry, bool) or not math.isfinite(lifetime):
        # nan or inf would never expire (no refresh ever again): refused like text.
        return None, MalformedResponseError(f"token answer has a bad expires_in {raw_expiry!r:.80}", method="POST",
                                            path=_TOKEN_PATH)
    if lifetime <= 0:
        return None, AuthenticationError(401, "invalid_token", "the token server issued an expired token",
                                         method="POST", path=_TOKEN_PATH)
    return AccessToken(secret, now + lifetime, lifetime), None


def token_endpoint_error(status: int, raw: bytes, reason: str = "", *, max_bytes: int = 1 << 20,
                         retry_after: float | None = None) -> TastytradeApiError:
    """The error for an answer of ``POST /oauth/token`` with a non-2xx HTTP ``status``.

    ``raw`` is the body as received. The token endpoint answers in the OAuth shape, not the API's
    envelope (reference 4.1, from tastyware/tastytrade issue #281): TastyTrade sends
    ``{"error_code": "invalid_grant", "error_description": "Invalid JWT"}``, RFC 6749 section 5.2
    ``{"error": ..., "error_description": ...}``; the API's ``{"error": {"code", "message",
    "errors"}}`` is read too. The code (``invalid_grant``, ``invalid_client``, ..., or the API's
    integer 406) is kept as the error's ``code``.

    400, 401 and 403 are an :class:`AuthenticationError` whatever the body (no token can be had
    with these credentials); any other status is the API's typed error (:func:`.errors.api_error_for`:
    406 version not supported, 429 rate limited, 5xx server error, ...). A body that is none of
    those shapes (not JSON, a list, a number where a string goes, too large) gives ``code=None``
    and a message naming what came back; raw bytes are never quoted (a cut could split a secret
    past :func:`redact`), server strings are redacted before they are shortened.
    """
    code, message, errors = _token_error_fields(raw, reason or "error", max_bytes)
    if status in (400, 401, 403):
        return AuthenticationError(status, code, message, method="POST", path=_TOKEN_PATH, errors=errors)
    return api_error_for(status, code, message, method="POST", path=_TOKEN_PATH, errors=errors,
                         retry_after=retry_after)


def _token_error_fields(raw: bytes, reason: str, max_bytes: int) -> tuple[str | int | None, str, list[Any]]:
    """``(code, message, nested errors)`` read from a token-endpoint error body (see above)."""
    if len(raw) > max_bytes:
        return None, f"{reason}: a body of {len(raw)} bytes, more than {max_bytes} (not read)", []
    if not raw.strip():
        return None, f"{reason}: an empty body", []
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to decode
        return None, f"{reason}: a body that is not JSON ({len(raw)} bytes)", []
    if not isinstance(parsed, dict):
        return None, f"{reason}: JSON that is {_kind(parsed)}, not an object", []
    envelope = parsed.get("error")
    nested: Mapping[str, Any] = envelope if isinstance(envelope, dict) else {}
    code: str | int | None = None
    description: str | None = None
    notes: list[str] = []
    for name, value in (("error_code", parsed.get("error_code")), ("error", parsed.get("error")),
                        ("error.code", nested.get("code"))):
        if value is None or (name == "error" and isinstance(value, dict)):
            continue
        if isinstance(value, str) and value.strip():
            code = code or _clipped(value, 256)
        elif name == "error.code" and type(value) is int:  # the API's envelope: 406 is an int
            code = code or value
        else:
            notes.append(f"{name} is {_kind(value)}")
    for name, value in (("error_description", parsed.get("error_description")),
                        ("error.message", nested.get("message"))):
        if value is None:
            continue
        if isinstance(value, str) and value.strip():
            description = description or _clipped(value, 1000)
        else:
            notes.append(f"{name} is {_kind(value)}")
    raw_errors = nested.get("errors")
    errors = raw_errors[:20] if isinstance(raw_errors, list) else []
    if code is None and description is None and not notes:
        keys = ", ".join(_clipped(str(k), 40) for k in list(parsed)[:5]) or "none"
        return None, f"{reason}: none of error_code, error, error_description in the body (keys: {keys})", errors
    message = description or reason
    if notes:
        message += f" ({'; '.join(notes)})"
    return code, message, errors


def _clipped(text: str, limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters (in this order: a cut secret would escape redaction)."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "..."


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: ``a number (3)``, ``a list``, ... (never a string's content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({_clipped(repr(value), 40)})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
