"""Errors of ``POST /oauth/token``: the OAuth shape (reference 4.1), read with its code; hostile bodies named.

Pure parsing of every body shape (:func:`token_endpoint_error`), then the emulator's token endpoint
over real HTTP: the raw bodies it answers, and what the client makes of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from atomic_orders.backends.tastytrade import OAuthCredentials, Secret, TastytradeApiClient
from atomic_orders.backends.tastytrade.auth import token_endpoint_error
from atomic_orders.backends.tastytrade.errors import (
    AuthenticationError,
    RateLimitedError,
    ServerError,
    VersionNotSupportedError,
)
from tests.tastytrade.conftest import Harness


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


# -- pure parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "code", "message"), [
    # TastyTrade's own shape (tastyware/tastytrade issue #281)
    ({"error_code": "invalid_grant", "error_description": "Invalid JWT"}, "invalid_grant", "Invalid JWT"),
    # RFC 6749 section 5.2
    ({"error": "invalid_client", "error_description": "bad secret", "error_uri": "x"}, "invalid_client",
     "bad secret"),
    ({"error": "unsupported_grant_type"}, "unsupported_grant_type", "Unauthorized"),
    ({"error_code": "invalid_grant"}, "invalid_grant", "Unauthorized"),
    # the API's envelope, should a proxy answer with it
    ({"error": {"code": "unauthorized", "message": "no", "errors": [{"code": "a", "message": "b"}]}},
     "unauthorized", "no"),
    # both keys: error_code first
    ({"error_code": "invalid_grant", "error": "invalid_request", "error_description": "d"}, "invalid_grant", "d"),
])
def test_each_oauth_shape_keeps_its_code(body: Any, code: str, message: str) -> None:
    err = token_endpoint_error(401, _body(body), "Unauthorized")
    assert type(err) is AuthenticationError
    assert (err.status, err.code, err.message) == (401, code, message)
    assert err.method == "POST" and err.path == "/oauth/token"
    assert f"HTTP 401 {code}: {message}" in str(err)


@pytest.mark.parametrize(("raw", "named"), [
    (b"<html>502 Bad Gateway</html>", "not JSON (28 bytes)"),
    (b"", "an empty body"),
    (b"   \n", "an empty body"),
    (b"\xff\xfe\x00", "not JSON (3 bytes)"),
    (b"[" * 100_000, "not JSON (100000 bytes)"),
    (_body(["invalid_grant", "Invalid JWT"]), "JSON that is a list, not an object"),
    (_body("invalid_grant"), "JSON that is a string, not an object"),
    (_body(401), "JSON that is a number (401), not an object"),
    (_body(None), "JSON that is null, not an object"),
    (_body({}), "none of error_code, error, error_description in the body (keys: none)"),
    (_body({"status": "bad", "detail": "x"}), "none of error_code, error, error_description in the body "
                                              "(keys: status, detail)"),
    (_body({"error_code": 17, "error_description": "Invalid JWT"}), "Invalid JWT (error_code is a number (17))"),
    (_body({"error_code": True}), "error_code is a boolean (True)"),
    (_body({"error_code": ["invalid_grant"], "error_description": {"text": "x"}}),
     "error_code is a list; error_description is an object"),
    (_body({"error": 1.5e300}), "error is a number (1.5e+300)"),
    (_body({"error_code": "  ", "error_description": ""}), "error_code is an empty string; "
                                                           "error_description is an empty string"),
    (_body({"error": {"code": [1], "message": 3}}), "error.code is a list; error.message is a number (3)"),
    (b"x" * 2_000_000, "a body of 2000000 bytes, more than 1048576 (not read)"),
])
def test_a_hostile_body_is_an_authentication_error_naming_what_came_back(raw: bytes, named: str) -> None:
    for status in (400, 401, 403):
        err = token_endpoint_error(status, raw, "Unauthorized")
        assert type(err) is AuthenticationError and err.status == status
        assert err.code is None
        assert named in err.message, err.message
        assert len(str(err)) < 1500


def test_long_server_text_is_cut_after_redaction_so_no_secret_prefix_survives() -> None:
    secret = Secret("rt-" + "s" * 60)
    # the secret straddles the cut at 1000 characters
    description = "x" * 980 + secret.reveal()
    err = token_endpoint_error(401, _body({"error_code": "invalid_grant" + secret.reveal(),
                                           "error_description": description}))
    assert "[redacted]" in err.message and "sss" not in err.message
    assert err.code == "invalid_grant[redacted]"
    assert "rt-sss" not in str(err)


@pytest.mark.parametrize(("status", "kind", "code"), [
    (406, VersionNotSupportedError, 406),
    (429, RateLimitedError, "too_many_requests"),
    (500, ServerError, "internal_server_error"),
    (503, ServerError, "internal_server_error"),
])
def test_statuses_other_than_400_401_403_keep_their_api_error(status: int, kind: type[Exception],
                                                               code: str | int) -> None:
    body = ({"error": {"code": 406, "message": "version"}} if status == 406
            else {"error_code": code, "error_description": "later"})
    err = token_endpoint_error(status, _body(body), "x", retry_after=2.0)
    assert type(err) is kind and err.status == status and err.code == code
    if isinstance(err, RateLimitedError):
        assert err.retry_after == 2.0


# -- the emulator's token endpoint over HTTP ------------------------------------------------------

_GOOD_RT, _GOOD_CS = "emulator-refresh-token", "emulator-client-secret"


def _post(harness: Harness, **kwargs: Any) -> requests.Response:
    headers = {"User-Agent": "probe/1", **kwargs.pop("headers", {})}
    return requests.post(harness.emulator.url + "/oauth/token", headers=headers, timeout=5, **kwargs)


@pytest.mark.parametrize(("send", "status", "code"), [
    (lambda: {"json": {"grant_type": "refresh_token", "refresh_token": "nope", "client_secret": _GOOD_CS}},
     401, "invalid_grant"),
    (lambda: {"json": {"grant_type": "refresh_token", "refresh_token": _GOOD_RT, "client_secret": "nope"}},
     401, "invalid_client"),
    (lambda: {"json": {"grant_type": "refresh_token", "refresh_token": "ré", "client_secret": "sé"}},
     401, "invalid_grant"),
    (lambda: {"json": {"refresh_token": _GOOD_RT, "client_secret": _GOOD_CS}}, 400, "invalid_request"),
    (lambda: {"json": {"grant_type": "password", "refresh_token": _GOOD_RT, "client_secret": _GOOD_CS}},
     400, "unsupported_grant_type"),
    (lambda: {"json": {"grant_type": "refresh_token", "client_secret": _GOOD_CS}}, 400, "invalid_request"),
    (lambda: {"json": ["grant_type"]}, 400, "invalid_request"),
    # a lone surrogate (valid JSON escape) in a secret: a wrong secret, not a 500
    (lambda: {"data": b'{"grant_type":"refresh_token","refresh_token":"\\ud800","client_secret":"x"}',
              "headers": {"Content-Type": "application/json"}}, 401, "invalid_grant"),
    (lambda: {"data": (f'{{"grant_type":"refresh_token","refresh_token":"{_GOOD_RT}",'
                       '"client_secret":"\\udfff"}').encode(),
              "headers": {"Content-Type": "application/json"}}, 401, "invalid_client"),
    (lambda: {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "invalid_request"),
    (lambda: {"json": {"grant_type": "refresh_token", "refresh_token": _GOOD_RT, "client_secret": _GOOD_CS},
              "headers": {"Authorization": "Bearer x"}}, 400, "invalid_request"),
])
def test_the_emulator_refuses_a_token_request_in_the_oauth_shape(
        harness: Harness, send: Callable[[], dict[str, Any]], status: int, code: str) -> None:
    r = _post(harness, **send())
    body = r.json()
    assert r.status_code == status
    assert set(body) == {"error_code", "error_description"} and body["error_code"] == code
    assert isinstance(body["error_description"], str) and body["error_description"]
    for sent in ("nope", _GOOD_RT, _GOOD_CS, "ré", "sé"):
        assert sent not in r.text


def test_the_emulator_token_route_refuses_other_methods_in_the_oauth_shape(harness: Harness) -> None:
    r = requests.get(harness.emulator.url + "/oauth/token", headers={"User-Agent": "probe/1"}, timeout=5)
    assert r.status_code == 405 and r.json()["error_code"] == "invalid_request"


def test_the_emulator_still_issues_tokens(harness: Harness) -> None:
    r = _post(harness, json={"grant_type": "refresh_token", "refresh_token": _GOOD_RT, "client_secret": _GOOD_CS})
    assert r.status_code == 200 and r.json()["access_token"] and r.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(("client_secret", "refresh_token", "code"), [
    ("emulator-client-secret", "wrong-refresh-token-9f1", "invalid_grant"),
    ("wrong-client-secret-4c2", "emulator-refresh-token", "invalid_client"),
])
def test_the_client_keeps_the_code_of_the_emulators_refusal(harness: Harness, client_secret: str,
                                                            refresh_token: str, code: str) -> None:
    client = TastytradeApiClient(harness.config, OAuthCredentials(client_secret, refresh_token))
    with pytest.raises(AuthenticationError) as info:
        client.live_orders()
    client.close()
    err = info.value
    assert err.status == 401 and err.code == code and err.path == "/oauth/token"
    assert f"HTTP 401 {code}:" in str(err)
    for secret in ("wrong-refresh-token-9f1", "wrong-client-secret-4c2", "emulator-refresh-token",
                   "emulator-client-secret"):
        assert secret not in str(err) + repr(err) + err.message
    assert harness.emulator.request_count("GET /orders/live") == 0, "nothing was sent without a token"


@pytest.mark.parametrize(("length", "status"), [("abc", 400), ("-1", 400), ("1000000000000000000", 413)])
def test_the_emulator_answers_a_bad_content_length_in_the_envelope(harness: Harness, length: str,
                                                                   status: int) -> None:
    """A Content-Length that is not a count, or absurdly large, is refused in the error envelope (it dropped
    the connection: ValueError, MemoryError)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(harness.emulator.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"POST /oauth/token HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1\r\n"
                     f"Content-Length: {length}\r\n\r\n{{}}".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == str(status).encode(), head
    assert set(json.loads(body)["error"]) == {"code", "message"}


@pytest.mark.parametrize(("errors", "expected"), [
    ([[[["x"]]], [[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]], "..."),
    (["y" * 900_000], "y..."),
    ([10 ** 4000], "an integer of"),
])
def test_nested_error_details_from_the_server_are_bounded(errors: list[Any], expected: str) -> None:
    deep = "[" * 900 + "]" * 900  # 1.8 kB of nesting once made a RecursionError, not an AuthenticationError
    for body in (_body({"error": {"code": "x", "message": "m", "errors": errors}}),
                 b'{"error":{"code":"x","message":"m","errors":[' + deep.encode() + b"]}}"):
        err = token_endpoint_error(401, body, "Unauthorized")
        assert isinstance(err, AuthenticationError) and err.code == "x"
        assert len(str(err)) < 5_000, len(str(err))
    assert expected in str(token_endpoint_error(401, _body({"error": {"code": "x", "message": "m",
                                                                      "errors": errors}}), "U"))


def test_server_text_in_an_error_is_one_printable_line() -> None:
    body = _body({"error_code": "a\x1b[31mred\r\nX-Injected: 1", "error_description": "d\u202e\x00\ud800e"})
    err = token_endpoint_error(400, body, "Bad Request")
    text = str(err)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\u202e" not in text
    assert "\\x1b" in text and "\\u202e" in text  # escaped, still readable
    text.encode("utf-8")  # a lone surrogate would make writing it to a UTF-8 stream fail
    assert err.code is not None and "\n" not in str(err.code)
