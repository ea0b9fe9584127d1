"""Dry run before sending: a refused or unavailable preflight refuses the group, nothing sent (real HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.dry_run import dry_run_refusal
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.emulator import Fault
from tests.roles import condor_roles

from .conftest import Harness

DRY = "POST /orders/dry-run"
PLACE = "POST /orders"
BROKE = "Account does not have sufficient buying power available for this order."


def _dry(h: Harness) -> Harness:
    h.backend.dry_run = True
    return h


def test_on_by_default_for_production_only() -> None:
    assert TastytradeConfig.production("5WT00001").dry_run_before_submit is True
    assert TastytradeConfig.production("5WT00001", dry_run_before_submit=False).dry_run_before_submit is False
    assert TastytradeConfig.certification("5WT00001").dry_run_before_submit is False
    assert TastytradeConfig("5WT00001").dry_run_before_submit is False
    with pytest.raises(ValueError, match="dry_run_blocking_warnings"):
        TastytradeConfig("5WT00001", dry_run_blocking_warnings="tif_next_valid_sesssion")


def test_a_passing_dry_run_precedes_the_one_post(harness: Harness) -> None:
    h = _dry(harness)
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2)
    h.settle(ex)
    assert group.state == "committed", group.rollback_reason
    assert (h.emulator.request_count(DRY), h.emulator.request_count(PLACE)) == (1, 1)


@pytest.mark.parametrize("status", [200, 422])
def test_a_refused_dry_run_refuses_the_group_with_the_brokers_reason(harness: Harness, status: int) -> None:
    h = _dry(harness)
    h.emulator.refuse_dry_run(".", BROKE, status=status)
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2)
    h.settle(ex)
    assert group.state == "rolled_back", group.state
    (ticket,) = group.entry_tickets
    assert ticket.state == "rejected" and ex.stats.submissions_refused == 1
    assert (ticket.reason or "").startswith("dry run refused: ") and BROKE in (ticket.reason or ""), ticket.reason
    assert h.emulator.request_count(DRY) == 1
    assert h.emulator.request_count(PLACE) == 0  # nothing sent
    assert h.emulator.orders_with_external_id(group.entry_tickets[0].order_ref) == []


@pytest.mark.parametrize("how", ["5xx", "timeout", "garbage"])
def test_an_unavailable_dry_run_fails_closed(harness: Harness, how: str) -> None:
    h = _dry(harness)
    if how == "5xx":
        h.emulator.refuse_dry_run(".", "the order service is unavailable", status=503)
    else:
        h.emulator.faults.script(Fault.SLOW if how == "timeout" else Fault.GARBAGE, method="POST", path="dry-run")
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=1)
    h.settle(ex)
    assert group.state == "rolled_back", group.state
    (ticket,) = group.entry_tickets
    assert ticket.state == "rejected" and (ticket.reason or "").startswith("dry run unavailable: "), ticket.reason
    assert h.emulator.request_count(DRY) == 1  # never retried
    assert h.emulator.request_count(PLACE) == 0


def test_single_leg_orders_are_not_dry_run(harness: Harness) -> None:
    h = _dry(harness)
    h.emulator.refuse_dry_run(".", BROKE)
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=1, mode=ExecutionMode.LEGGED)
    h.settle(ex)
    assert h.emulator.request_count(DRY) == 0
    assert h.emulator.request_count(PLACE) >= 4
    assert group.state in ("committed", "rolled_back")


def test_off_means_no_dry_run(harness: Harness) -> None:
    harness.emulator.refuse_dry_run(".", BROKE)
    ex = harness.executor()
    group = ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=1)
    harness.settle(ex)
    assert group.state == "committed", group.rollback_reason
    assert harness.emulator.request_count(DRY) == 0


#: The Go SDK's recorded failing dry run (``orderErrorDryRunResp``): 200, data and a top-level error.
RECORDED = {
    "buying-power-effect": {"new-buying-power": "1587.388", "new-buying-power-effect": "Debit"},
    "error": {"code": "preflight_check_failure", "message": "One or more preflight checks failed",
              "errors": [{"code": "margin_check_failed", "message": BROKE}]},
}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (RECORDED, f"preflight_check_failure: One or more preflight checks failed (margin_check_failed: {BROKE})"),
        ({"buying-power-effect": RECORDED["buying-power-effect"]}, "new-buying-power -1587.388 (Debit)"),
        ({"buying-power-effect": {"new-buying-power": "5.0", "new-buying-power-effect": "Credit"}}, None),
        ({"buying-power-effect": {}, "warnings": [{"code": "tif_next_valid_sesssion", "message": "next session"}]},
         None),
        ({"error": "no"}, "preflight_check_failure: no"),
        ({"error": {"code": ["x"], "errors": "y"}}, "preflight check failed"),
        ({"buying-power-effect": {"new-buying-power": {"x": 1}, "new-buying-power-effect": "Debit"}}, "-? (Debit)"),
        ({"warnings": "garbage", "buying-power-effect": {}}, None),
        ({"warnings": "garbage", "buying-power-effect": [1]}, "no buying-power-effect object"),
        ({}, "no buying-power-effect object"),  # a 2xx that is no dry run's answer: never a go
    ],
)
def test_what_a_dry_run_answer_says(answer: dict[str, Any], expected: str | None) -> None:
    reason = dry_run_refusal(answer)
    assert (reason is None) == (expected is None)
    if expected is not None:
        assert reason is not None and expected in reason, reason


def test_a_blocking_warning_refuses() -> None:
    answer = {"buying-power-effect": {}, "warnings": [{"code": "tif_next_valid_sesssion",
                                                       "message": "Your order will begin working during "
                                                       "next valid session."}]}
    reason = dry_run_refusal(answer, frozenset({"tif_next_valid_sesssion"}))
    assert reason is not None and "tif_next_valid_sesssion" in reason


def test_a_2xx_that_is_no_dry_run_answer_refuses_the_group_nothing_sent(harness: Harness) -> None:
    """A 2xx whose data has no buying-power-effect (a proxy's or a garbled answer) was a "go"."""
    import threading
    import urllib.error
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import attrs

    from atomic_orders.backends.tastytrade.backend import TastytradeBackend
    from atomic_orders.backends.tastytrade.client import TastytradeApiClient

    upstream = harness.emulator.url

    class Relay(BaseHTTPRequestHandler):
        """Everything goes to the emulator, except a dry run: answered 200 ``{"data": {}}``."""

        def log_message(self, *_args: Any) -> None:
            pass

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command == "POST" and self.path.endswith("/orders/dry-run"):
                status, payload, kind = 200, b'{"data": {}, "context": "/dry-run"}', "application/json"
            else:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(upstream + self.path, data=body or None, headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=5) as answer:
                        status, payload, kind = answer.status, answer.read(), answer.headers["Content-Type"]
                except urllib.error.HTTPError as err:
                    status, payload, kind = err.code, err.read(), err.headers["Content-Type"]
            self.send_response(status)
            self.send_header("Content-Type", kind or "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815 (http.server names them)

    relay = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        config = attrs.evolve(harness.config, base_url=f"http://127.0.0.1:{relay.server_address[1]}")
        client = TastytradeApiClient(config, harness.emulator.credentials(), sleep=lambda _s: None)
        harness.backend = TastytradeBackend(client, clock=harness.sim.clock, dry_run=True,
                                            quote_source=harness.emulator.quote_source())
        ex = harness.executor()
        group = ex.execute_iron_condor(**condor_roles(harness.condor()), quantity=1)
        harness.settle(ex)
    finally:
        relay.shutdown()
    assert group.state == "rolled_back", group.state
    (ticket,) = group.entry_tickets
    assert ticket.state == "rejected" and "no buying-power-effect" in (ticket.reason or ""), ticket.reason
    assert harness.emulator.request_count(PLACE) == 0  # nothing sent
