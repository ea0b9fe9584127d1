"""The REST client against the emulator over real HTTP: headers, auth, versions, errors, retries, faults."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import requests

from atomic_orders.backends.tastytrade.auth import OAuthCredentials, Secret
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig, validate_base_url
from atomic_orders.backends.tastytrade.errors import (
    AuthenticationError,
    InsecureTransportError,
    MalformedResponseError,
    NotFoundError,
    ServerError,
    TastytradeTransportError,
    VersionNotSupportedError,
)
from atomic_orders.backends.tastytrade.payloads import build_order_payload
from atomic_orders.simulator.emulator import Fault, HttpFaults

from .conftest import Harness

LIVE = r"/orders/live$"


# -- transport security -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.5:8080", "http://localhost.evil.com",
                                 "ftp://127.0.0.1", "https://user:pw@api.tastyworks.com", "api.tastyworks.com"])
def test_plain_http_to_a_non_loopback_host_is_refused(url: str) -> None:
    with pytest.raises(InsecureTransportError):
        TastytradeConfig(account_number="5WT00001", base_url=url)


@pytest.mark.parametrize("url", ["https://api.tastyworks.com", "https://api.cert.tastyworks.com/",
                                 "http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:9"])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert validate_base_url(url) == url.rstrip("/")


def test_config_presets_and_headers() -> None:
    prod = TastytradeConfig.production("5WT00001")
    cert = TastytradeConfig.certification("5WT00001")
    assert prod.base_url == "https://api.tastyworks.com" and prod.api_version == "20261012"
    assert cert.base_url == "https://api.cert.tastyworks.com" and cert.api_version is None
    assert prod.user_agent.startswith("atomic-orders/") and prod.timeout == (3.05, 10.0)


# -- headers, auth and versions -----------------------------------------------------------------


def test_every_request_carries_user_agent_version_and_bearer(harness: Harness) -> None:
    seen: list[dict[str, str]] = []
    original = harness.emulator.dispatch

    def spy(method, target, headers, raw):  # type: ignore[no-untyped-def]
        seen.append(dict(headers))
        return original(method, target, headers, raw)

    harness.emulator.dispatch = spy  # type: ignore[method-assign]
    accounts = harness.client.accounts()
    assert accounts[0]["account"]["account-number"] == harness.emulator.account_number
    assert harness.client.live_orders() == []
    token_req, *api_reqs = seen
    assert "Authorization" not in token_req and token_req["User-Agent"].startswith("atomic-orders/")
    for h in api_reqs:
        assert h["User-Agent"].startswith("atomic-orders/") and h["Accept-Version"] == "20261012"
        assert h["Authorization"].startswith("Bearer ") and h["Accept"] == "application/json"


def test_missing_or_malformed_user_agent_is_401(harness: Harness) -> None:
    import http.client
    import json

    token = harness.client.tokens.authorization()
    for agent in (None, "bogus"):
        conn = http.client.HTTPConnection("127.0.0.1", harness.emulator.port, timeout=5)
        headers = {"Authorization": token} if agent is None else {"Authorization": token, "User-Agent": agent}
        conn.request("GET", "/customers/me/accounts", headers=headers)  # http.client adds no User-Agent
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        assert r.status == 401
        assert body["error"]["code"] == "unauthorized" and "User-Agent" in body["error"]["message"]
    ok = requests.get(harness.emulator.url + "/customers/me/accounts",
                      headers={"User-Agent": "probe/1.0", "Authorization": token}, timeout=5)
    assert ok.status_code == 200


def test_missing_or_bad_token_is_401(harness: Harness) -> None:
    url = harness.emulator.url + f"/accounts/{harness.emulator.account_number}/orders/live"
    for auth in ({}, {"Authorization": "Bearer nope"}):
        r = requests.get(url, headers={"User-Agent": "t/1", **auth}, timeout=5)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_unsupported_accept_version_is_406(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(api_version="20200101")
    with pytest.raises(VersionNotSupportedError) as info:
        h.client.live_orders()
    assert info.value.status == 406 and info.value.code == 406
    assert "Accept-Version" in str(info.value)


def test_unknown_order_is_a_typed_404(harness: Harness) -> None:
    with pytest.raises(NotFoundError) as info:
        harness.client.get_order(999)
    assert info.value.code == "record_not_found" and "999" in info.value.message


def test_history_requires_a_start_date_with_the_new_version(harness: Harness) -> None:
    r = requests.get(harness.emulator.url + f"/accounts/{harness.emulator.account_number}/orders",
                     headers={"User-Agent": "t/1", "Accept-Version": "20261012",
                              "Authorization": harness.client.tokens.authorization()}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["errors"] == [{"domain": "start-date", "reason": "is missing"}]


def test_token_expiring_mid_session_is_refreshed_once_and_the_request_succeeds(harness: Harness) -> None:
    harness.client.live_orders()
    assert harness.emulator.tokens_issued == 1
    harness.emulator.expire_tokens()
    assert harness.client.live_orders() == []
    assert harness.emulator.tokens_issued == 2 and harness.emulator.status_counts[401] == 1


def test_short_lived_tokens_are_refreshed_before_expiry(make_harness: Callable[..., Harness]) -> None:
    import time

    h = make_harness(token_lifetime=0.4)
    h.client.live_orders()
    time.sleep(0.32)  # inside the refresh margin (a quarter of the lifetime) but not expired
    h.client.live_orders()
    assert h.emulator.tokens_issued == 2 and h.emulator.status_counts[401] == 0


def test_bad_credentials_raise_without_leaking_them(harness: Harness) -> None:
    creds = OAuthCredentials("wrong-client-secret-123", "wrong-refresh-token-456")
    client = TastytradeApiClient(harness.config, creds)
    with pytest.raises(AuthenticationError) as info:
        client.live_orders()
    text = str(info.value) + repr(info.value) + repr(client) + repr(client.tokens) + repr(creds)
    assert info.value.code == "invalid_grant"
    assert "wrong-client-secret-123" not in text and "wrong-refresh-token-456" not in text
    client.close()


def test_secret_wrapper_masks_everything() -> None:
    s = Secret("hunter2-hunter2")
    assert "hunter2" not in repr(s) + str(s) + f"{s}" + f"{s!r}" and s.reveal() == "hunter2-hunter2"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_secrets_never_appear_in_logs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    harness.emulator.faults.script(Fault.SERVER_ERROR, method="GET", path=LIVE, count=2)
    harness.client.live_orders()
    harness.emulator.expire_tokens()
    harness.client.live_orders()
    bad = TastytradeApiClient(harness.config, OAuthCredentials("cs-should-not-leak", "rt-should-not-leak"))
    with pytest.raises(AuthenticationError):
        bad.live_orders()
    bad.close()
    creds = harness.emulator.credentials()
    tokens = list(harness.emulator._tokens)
    secrets = [creds.client_secret.reveal(), creds.refresh_token.reveal(), "cs-should-not-leak",
               "rt-should-not-leak", *tokens]
    assert len(tokens) == 2 and caplog.records, "the scenario must have logged something"
    for secret in secrets:
        assert secret not in caplog.text


# -- retries and HTTP faults --------------------------------------------------------------------


def test_5xx_burst_on_get_is_retried_with_backoff(harness: Harness) -> None:
    harness.emulator.faults.script(Fault.SERVER_ERROR, method="GET", path=LIVE, count=3)
    before = harness.emulator.request_count("GET /orders/live")
    assert harness.client.live_orders() == []
    assert harness.emulator.request_count("GET /orders/live") - before == 4
    assert len(harness.sleeps) == 3 and all(0 <= s <= harness.config.backoff_max for s in harness.sleeps)


def test_5xx_beyond_the_retry_budget_raises_server_error(harness: Harness) -> None:
    harness.emulator.faults.script(Fault.SERVER_ERROR, method="GET", path=LIVE, count=10)
    with pytest.raises(ServerError):
        harness.client.live_orders()
    assert harness.emulator.request_count("GET /orders/live") == 1 + harness.config.max_retries


def test_429_waits_for_retry_after(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(faults=HttpFaults(retry_after="1"))
    h.emulator.faults.script(Fault.RATE_LIMIT, method="GET", path=LIVE, count=1)
    assert h.client.live_orders() == []
    assert h.sleeps and h.sleeps[0] >= 1.0
    assert h.emulator.status_counts[429] == 1


@pytest.mark.parametrize("fault", [Fault.DROP_BEFORE, Fault.DROP_AFTER, Fault.SLOW, Fault.TRUNCATE, Fault.GARBAGE])
def test_get_survives_each_transport_fault(make_harness: Callable[..., Harness], fault: Fault) -> None:
    h = make_harness(faults=HttpFaults(slow_seconds=0.6), read_timeout=0.3)
    h.emulator.faults.script(fault, method="GET", path=LIVE, count=1)
    assert h.client.live_orders() == []
    assert h.emulator.request_count("GET /orders/live") == 2


def test_malformed_bodies_beyond_the_retry_budget_raise_a_clear_error(harness: Harness) -> None:
    harness.emulator.faults.script(Fault.TRUNCATE, method="GET", path=LIVE, count=10)
    with pytest.raises(MalformedResponseError) as info:
        harness.client.live_orders()
    text = str(info.value)
    assert "GET" in text and "/orders/live" in text and "malformed response" in text and "HTTP 200" in text


def test_delete_is_retried_but_post_and_put_never_are(make_harness: Callable[..., Harness]) -> None:
    h = make_harness()
    req = h.resting_request("R-1")
    payload = build_order_payload(req)
    h.emulator.faults.script(Fault.SERVER_ERROR, method="POST", path=r"/orders$", count=1)
    with pytest.raises(ServerError):
        h.client.place_order(payload)
    assert h.emulator.request_count("POST /orders") == 1
    h.emulator.faults.script(Fault.DROP_AFTER, method="POST", path=r"/orders$", count=1)
    with pytest.raises(TastytradeTransportError):
        h.client.place_order(build_order_payload(h.resting_request("R-2")))
    assert h.emulator.request_count("POST /orders") == 2 and h.emulator.orders_with_external_id("R-2")
    order = h.client.place_order(build_order_payload(h.resting_request("R-3")))["order"]
    h.emulator.faults.script(Fault.SERVER_ERROR, method="PUT", count=1)
    with pytest.raises(ServerError):
        h.client.replace_order(order["id"], {"order-type": "Limit", "time-in-force": "Day", "price": "0.10",
                                             "price-effect": "Debit"})
    assert h.emulator.request_count("PUT /orders/{id}") == 1
    h.emulator.faults.script(Fault.SERVER_ERROR, method="DELETE", count=2)
    cancelled = h.client.cancel_order(order["id"])
    assert cancelled["status"] == "Cancel Requested"
    assert h.emulator.request_count("DELETE /orders/{id}") == 3


def test_post_timing_out_after_acceptance_raises_a_timeout_and_the_order_exists(
        make_harness: Callable[..., Harness]) -> None:
    h = make_harness(faults=HttpFaults(slow_seconds=0.6), read_timeout=0.3)
    h.emulator.faults.script(Fault.SLOW, method="POST", path=r"/orders$", count=1)
    with pytest.raises(TastytradeTransportError) as info:
        h.client.place_order(build_order_payload(h.resting_request("R-9")))
    assert info.value.timed_out
    assert len(h.emulator.orders_with_external_id("R-9")) == 1
    assert h.emulator.request_count("POST /orders") == 1
