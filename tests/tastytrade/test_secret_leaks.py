"""No credential escapes through an error: not its text, not a log line, not a frame's locals.

The token endpoint here is a real HTTP server on 127.0.0.1 that ECHOES what it was sent (the
emulator's token endpoint does not quote credentials back): the worst a real server can do.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from atomic_orders.backends.tastytrade import OAuthCredentials, Secret, TastytradeApiClient, TastytradeConfig
from atomic_orders.backends.tastytrade.config import validate_base_url
from atomic_orders.backends.tastytrade.errors import (
    AuthenticationError,
    InsecureTransportError,
    MalformedResponseError,
    ServerError,
    TastytradeError,
    redact,
)
from atomic_orders.fsm.errors import SubmissionRefused
from atomic_orders.simulator.emulator import Fault, HttpFaults
from tests.tastytrade.conftest import NO_RESTING_FILLS, Harness

REPO = Path(__file__).resolve().parents[2]
CLIENT_SECRET = "cs-Zq8v-client-secret-0001"
REFRESH_TOKEN = "rt-Lm3k-refresh-token-0002"
ACCESS_TOKEN = "at-Pp9x-access-token-0003"

#: Answers by (method, path): a function of the request body (text) -> (status, JSON-able body).
Route = Callable[[str], tuple[int, Any]]


class EchoServer:
    """A tiny real HTTP server on 127.0.0.1 answering from ``routes``; remembers the bodies it got."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.bodies: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                server.bodies.append(body)
                path = urllib.parse.urlsplit(self.path).path
                route = server.routes.get((self.command, path))
                status, answer = route(body) if route else (404, {"error": {"code": "not_found", "message": path}})
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def _client(url: str) -> TastytradeApiClient:
    config = TastytradeConfig(account_number="5WT00001", base_url=url, max_retries=2, backoff_base=0.001,
                              backoff_max=0.002, connect_timeout=2.0, read_timeout=2.0)
    return TastytradeApiClient(config, OAuthCredentials(CLIENT_SECRET, REFRESH_TOKEN), sleep=lambda _s: None)


def _strings(value: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from ``value`` (containers, objects' ``__dict__``), and every repr."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 6:
        return
    seen.add(id(value))
    try:
        shown = repr(value)
    except Exception:  # a repr that fails shows nothing
        shown = ""
    yield shown
    if isinstance(value, str):
        yield value
    elif isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, depth + 1, seen)
            yield from _strings(v, depth + 1, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v, depth + 1, seen)
    elif isinstance(value, BaseException):
        yield from _strings(value.args, depth + 1, seen)
        yield from _strings(vars(value), depth + 1, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, type) and type(value).__module__ != "builtins":
        yield from _strings(vars(value), depth + 1, seen)


def _reachable(err: BaseException) -> Iterator[str]:
    """Everything an error reporter can show: the text and attributes of the error and of every
    exception chained to it, and the locals of every frame of their tracebacks (this test
    module's own frames aside: they hold the expected values to compare with)."""
    pending: list[BaseException | None] = [err]
    done: set[int] = set()
    while pending:
        exc = pending.pop()
        if exc is None or id(exc) in done:
            continue
        done.add(id(exc))
        yield str(exc)
        yield from _strings(exc)
        for frame, _ in traceback.walk_tb(exc.__traceback__):
            if frame.f_code.co_filename == __file__:
                continue
            for name, value in frame.f_locals.items():
                yield name
                yield from _strings(value)
        pending += [exc.__context__, exc.__cause__]


def _assert_clean(err: BaseException, secrets: tuple[str, ...], logs: str = "") -> None:
    frames = [f.f_code.co_name for f, _ in traceback.walk_tb(err.__traceback__)]
    for text in (*_reachable(err), logs):
        for secret in secrets:
            assert secret not in text, f"{secret[:6]}... is reachable from the error ({frames})"


def _oauth_echo(status: int) -> Route:
    def answer(body: str) -> tuple[int, Any]:
        sent = json.loads(body)
        return status, {"error": "invalid_grant",
                        "error_description": f"refresh token {sent['refresh_token']} with client secret "
                                             f"{sent['client_secret']} is revoked"}
    return answer


def _envelope_echo(status: int) -> Route:
    def answer(body: str) -> tuple[int, Any]:
        sent = json.loads(body)
        return status, {"error": {"code": f"bad_{sent['client_secret']}", "message": f"cannot use {body}",
                                  "errors": [{"domain": "refresh_token", "reason": sent["refresh_token"]},
                                             {"code": "x", "message": [sent["client_secret"]]}]}}
    return answer


@pytest.mark.parametrize(("route", "status", "error"), [
    (_oauth_echo, 400, AuthenticationError),
    (_oauth_echo, 401, AuthenticationError),
    (_envelope_echo, 403, AuthenticationError),
    (_envelope_echo, 500, ServerError),
    (_envelope_echo, 429, TastytradeError),
    (_oauth_echo, 404, TastytradeError),
])
def test_a_token_error_quoting_the_credentials_leaks_them_nowhere(
        echo: EchoServer, caplog: pytest.LogCaptureFixture, route: Callable[[int], Route], status: int,
        error: type[TastytradeError]) -> None:
    caplog.set_level(logging.DEBUG)
    echo.routes[("POST", "/oauth/token")] = route(status)
    client = _client(echo.url)
    with pytest.raises(error) as info:
        client.accounts()
    client.close()
    assert REFRESH_TOKEN in echo.bodies[0] and CLIENT_SECRET in echo.bodies[0]  # the server did echo them
    assert "[redacted]" in str(info.value), "the server's text is kept, the secrets masked"
    _assert_clean(info.value, (CLIENT_SECRET, REFRESH_TOKEN), caplog.text)


def test_a_token_answer_with_a_bad_expiry_keeps_the_new_token_out_of_reach(echo: EchoServer) -> None:
    echo.routes[("POST", "/oauth/token")] = lambda _b: (200, {"access_token": ACCESS_TOKEN,
                                                              "expires_in": f"{ACCESS_TOKEN}"})
    client = _client(echo.url)
    with pytest.raises(MalformedResponseError, match="bad expires_in") as info:
        client.accounts()
    client.close()
    _assert_clean(info.value, (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN))


@pytest.mark.parametrize("expiry", ["NaN", "inf", True, None, [900]])
def test_a_token_that_would_never_expire_is_refused(echo: EchoServer, expiry: Any) -> None:
    echo.routes[("POST", "/oauth/token")] = lambda _b: (200, {"access_token": ACCESS_TOKEN, "expires_in": expiry})
    client = _client(echo.url)
    with pytest.raises(MalformedResponseError, match="bad expires_in"):
        client.accounts()
    assert client.tokens.refreshes == 0
    client.close()


def test_an_api_error_quoting_the_access_token_is_scrubbed_in_text_and_logs(
        echo: EchoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo.routes[("POST", "/oauth/token")] = lambda _b: (200, {"access_token": ACCESS_TOKEN, "expires_in": 900})
    echo.routes[("GET", "/customers/me/accounts")] = lambda _b: (
        503, {"error": {"code": "unavailable", "message": f"token {ACCESS_TOKEN} (refresh {REFRESH_TOKEN}) is busy",
                        "errors": [{"domain": "auth", "reason": ACCESS_TOKEN}]}})
    client = _client(echo.url)
    with pytest.raises(ServerError) as info:
        client.accounts()
    assert [r for r in caplog.records if "retry" in r.getMessage()], "the retries were logged"
    err = info.value
    assert "[redacted]" in err.message and err.errors == ({"domain": "auth", "reason": "[redacted]"},)
    for text in (str(err), repr(err), err.message, repr(err.errors), caplog.text):
        assert ACCESS_TOKEN not in text and REFRESH_TOKEN not in text
    client.close()


def test_the_emulator_refusing_with_the_access_token_quoted_is_scrubbed(
        make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS)
    h.client.accounts()
    (token,) = list(h.emulator._tokens)
    refresh = h.emulator.credentials().refresh_token.reveal()
    h.emulator.refuse_orders("^X-", f"session {token} may not trade (refresh token {refresh})")
    with pytest.raises(SubmissionRefused) as info:
        h.backend.submit(h.resting_request("X-1"))
    assert "preflight_check_failure" in info.value.reason and "[redacted]" in info.value.reason
    for text in (str(info.value), repr(info.value), info.value.reason):
        assert token not in text and refresh not in text


def test_bad_credentials_at_the_emulator_leave_nothing_in_the_frames(harness: Harness) -> None:
    wrong_cs, wrong_rt = "wrong-cs-7f3a9c1e", "wrong-rt-5b2d8e4f"
    client = TastytradeApiClient(harness.config, OAuthCredentials(wrong_cs, wrong_rt))
    with pytest.raises(AuthenticationError) as info:
        client.live_orders()
    client.close()
    assert info.value.code == "invalid_grant"
    _assert_clean(info.value, (wrong_cs, wrong_rt))


def test_a_requester_bug_is_reported_without_the_body(echo: EchoServer) -> None:
    from atomic_orders.backends.tastytrade.auth import TokenManager

    def requester(body: dict[str, str]) -> dict[str, Any]:
        raise RuntimeError(f"cannot send {body}")

    manager = TokenManager(OAuthCredentials(CLIENT_SECRET, REFRESH_TOKEN), requester)
    with pytest.raises(TastytradeError, match="RuntimeError") as info:
        manager.authorization()
    _assert_clean(info.value, (CLIENT_SECRET, REFRESH_TOKEN))


def test_redact_masks_every_live_secret_and_forgets_dead_ones() -> None:
    short, long = Secret("k3y-abc"), Secret("k3y-abc-and-more")
    assert redact("a k3y-abc-and-more b k3y-abc c") == "a [redacted] b [redacted] c"
    twin = Secret("k3y-abc")  # equal value, separate life
    del short
    assert redact("k3y-abc") == "[redacted]"
    del twin, long
    assert redact("k3y-abc-and-more") == "k3y-abc-and-more"


@pytest.mark.parametrize("url", [
    "http://user:hunter2-pw@example.com",
    "https://user:hunter2-pw@api.tastyworks.com",
    "ftp://user:hunter2-pw@example.com/",
    "user:hunter2-pw@example.com",
    "https://api.tastyworks.com/?token=hunter2-pw",
    "https://api.tastyworks.com/#hunter2-pw",
    "https://[::1:hunter2-pw@x",
])
def test_a_base_url_with_credentials_is_refused_without_quoting_them(url: str) -> None:
    with pytest.raises(InsecureTransportError) as info:
        validate_base_url(url)
    assert "hunter2-pw" not in str(info.value)
    with pytest.raises(InsecureTransportError) as info:
        TastytradeConfig(account_number="5WT00001", base_url=url)
    assert "hunter2-pw" not in str(info.value)


_INNER = '''
import os
from atomic_orders.backends.tastytrade import OAuthCredentials, TastytradeApiClient, TastytradeConfig

def test_token_fetch_fails():
    config = TastytradeConfig(account_number="5WT00001", base_url=os.environ["LEAK_URL"], max_retries=0)
    client = TastytradeApiClient(config, OAuthCredentials(os.environ["LEAK_CS"], os.environ["LEAK_RT"]))
    client.accounts()
'''


def test_pytest_showlocals_prints_no_credential(echo: EchoServer, tmp_path: Path) -> None:
    """The original report: ``pytest -l`` on a failed token fetch printed the secrets in a frame."""
    echo.routes[("POST", "/oauth/token")] = _envelope_echo(500)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(_INNER))
    env = {**os.environ, "LEAK_URL": echo.url, "LEAK_CS": CLIENT_SECRET, "LEAK_RT": REFRESH_TOKEN,
           "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-l", "-p", "no:cacheprovider", "--tb=long",
                          "--log-level=DEBUG", "-rA", "test_inner.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    output = out.stdout + out.stderr
    assert out.returncode == 1 and "ServerError" in output, output[-3000:]
    assert CLIENT_SECRET not in output and REFRESH_TOKEN not in output
    assert "[redacted]" in output, "the server's echo is shown, masked"
    assert "config     = TastytradeConfig(" in output or "config = TastytradeConfig(" in output, \
        "locals were shown"


# -- secrets in the locals of the frames an API error passes through --------------------------------


def _provoke_api_error(h: Harness, case: str) -> Callable[[], object]:
    """Arrange ``case`` at the emulator (after a token was issued); return the call that then fails."""
    faults = h.emulator.faults
    live = r"/orders/live$"
    if case == "404":
        return lambda: h.client.get_order(999)
    if case == "422":
        h.emulator.refuse_orders(".*", "margin check failed")
        return lambda: h.client.place_order({"order-type": "Limit", "price": "0.05", "price-effect": "Debit",
                                                     "time-in-force": "Day", "legs": []})
    if case == "5xx":
        faults.script(Fault.SERVER_ERROR, method="GET", path=live, count=10)
    elif case == "429":
        faults.script(Fault.RATE_LIMIT, method="GET", path=live, count=10)
    elif case == "timeout":
        faults.script(Fault.SLOW, method="GET", path=live, count=10)
    elif case == "dropped":
        faults.script(Fault.DROP_BEFORE, method="GET", path=live, count=10)
    elif case == "garbage":
        faults.script(Fault.GARBAGE, method="GET", path=live, count=10)
    elif case == "401-then-token-5xx":  # the token expires; its refresh fails (the old header was still in a local)
        h.emulator.expire_tokens()
        faults.script(Fault.SERVER_ERROR, method="POST", path=r"^/oauth/token$", count=10)
    elif case == "401-then-token-timeout":
        h.emulator.expire_tokens()
        faults.script(Fault.SLOW, method="POST", path=r"^/oauth/token$", count=10)
    else:
        raise AssertionError(case)
    return h.client.live_orders


@pytest.mark.parametrize("case", ["404", "422", "5xx", "429", "timeout", "dropped", "garbage",
                                  "401-then-token-5xx", "401-then-token-timeout"])
def test_no_frame_an_api_error_passes_through_holds_a_token_or_a_credential(
        make_harness: Callable[..., Harness], case: str) -> None:
    """Every local of every frame of the error's traceback (and of chained errors), walked deep."""
    h = make_harness(NO_RESTING_FILLS, faults=HttpFaults(slow_seconds=0.6, retry_after="0"), read_timeout=0.3,
                     max_retries=1)
    h.client.live_orders()  # a token is issued and in use
    call = _provoke_api_error(h, case)
    with pytest.raises(TastytradeError) as info:
        call()
    tokens = tuple(h.emulator._tokens)
    creds = h.emulator.credentials()
    assert tokens and len(tokens) == h.emulator.tokens_issued
    frames = [f.f_code.co_name for f, _ in traceback.walk_tb(info.value.__traceback__)]
    assert "_send" in frames or "_decode" in frames or "_refresh_locked" in frames, frames
    _assert_clean(info.value, (*tokens, *(f"Bearer {t}" for t in tokens), creds.refresh_token.reveal(),
                               creds.client_secret.reveal()))


def test_the_walk_does_find_a_bearer_token_held_in_a_local(harness: Harness) -> None:
    """The check above can fail: a frame keeping the header dict is caught."""
    harness.client.live_orders()
    # compiled under another file name: the walk skips this module's own frames
    source = ("def keeps_the_header(client):\n"
              "    headers = {'Authorization': client.tokens.authorization()}\n"
              "    raise TastytradeError(f'failed with {len(headers)} header')\n")
    scope: dict[str, Any] = {"TastytradeError": TastytradeError}
    exec(compile(source, "<leaky>", "exec"), scope)
    with pytest.raises(TastytradeError) as info:
        scope["keeps_the_header"](harness.client)
    (token,) = harness.emulator._tokens
    with pytest.raises(AssertionError, match="is reachable from the error"):
        _assert_clean(info.value, (token,))


def test_the_answer_a_client_keeps_has_no_bearer_header(harness: Harness) -> None:
    """The answer's copy of the sent request loses its Authorization header (it outlives the call)."""
    harness.client.live_orders()
    response = harness.client._send("GET", f"/accounts/{harness.config.account_number}/orders/live")
    assert response.status_code == 200
    assert "Authorization" not in response.request.headers and response.request.body is None
    assert response.request.headers["User-Agent"] == harness.config.user_agent
