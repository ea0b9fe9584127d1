"""The broker side of the boundary over real HTTP: hostile answers served by the emulator.

The rule: a broker record is accepted whole and valid, or refused naming the field and value;
the executor's loop keeps running (the core's last line, ``stats.boundary_errors``, is never
needed); nothing is sent after a refusal; no caller is told "failed" (refused, ``NOT_FOUND``)
for an order that may be live. Each test is one input from the issue, served by the emulator's
``tamper_orders`` / ``serve_foreign`` / ``claim_pages``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from atomic_orders.backends.tastytrade.client import _parse_json
from atomic_orders.backends.tastytrade.errors import MalformedResponseError
from atomic_orders.backends.tastytrade.parsing import parse_order_id, parse_price, parse_quantity
from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown
from atomic_orders.fsm.events import BrokerStatus
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.orders import BrokerEvent
from tests.roles import condor_roles

from .conftest import Harness


def _tick(h: Harness, ex: AtomicOrderExecutor, seconds: float = 1.0) -> None:
    h.advance(seconds)
    ex.process_events()
    ex.on_timer()


def _fills_priced(value: Any) -> Callable[[dict[str, Any]], Any]:
    """Every leg lists one fill of one unit priced ``value``."""
    def rewrite(order: dict[str, Any]) -> dict[str, Any]:
        for i, leg in enumerate(order["legs"]):
            leg["fills"] = [{"fill-id": f"bad-{i}", "quantity": 1, "fill-price": value,
                             "filled-at": "2026-01-02T15:00:00+00:00"}]
        return order
    return rewrite


def _events_for(events: list[BrokerEvent], ref: str) -> list[Any]:
    return [be.event for be in events if be.order_ref == ref]


def _check_settled(h: Harness, group: AtomicOrderGroup) -> None:
    truth = {s: q for s, q in h.sim.positions().items() if q}
    if group.state == "committed":
        assert truth == {leg.symbol: leg.signed_ratio * group.quantity for leg in group.legs}
    elif group.state == "rolled_back":
        assert truth == {}
    else:
        raise AssertionError((group.state, group.rollback_reason))
    assert {s: q for s, q in group.ledger.positions().items() if q} == truth


# -- 1. an absurd fill price on a working combo ---------------------------------------------------


@pytest.mark.parametrize("price", ["1e30", "1E+5000", "-0.05", "NaN", 1e300])
def test_absurd_fill_price_is_refused_and_a_later_fill_is_booked(harness: Harness, price: Any) -> None:
    h = harness
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=ExecutionMode.COMBO)
    ref = group.entry_tickets[0].order_ref
    _tick(h, ex)  # acknowledged, working
    h.emulator.tamper_orders(f"^{ref}$", _fills_priced(price))
    h.advance(1.0)
    events = h.backend.poll_events()  # before: decimal.InvalidOperation here, and on every later tick
    unknown = [e for e in _events_for(events, ref) if e.trigger == "submission_unknown"]
    assert len(unknown) == 1 and "fill-price" in unknown[0].reason and str(price)[:4] in unknown[0].reason
    assert not [e for e in _events_for(events, ref) if e.trigger == "fill"], "nothing read from a refused record"
    assert h.backend.boundary_errors >= 1
    for be in events:  # the executor takes what the backend reported
        ex._on_broker_event(be)
    for _ in range(4):
        _tick(h, ex)  # the record stays bad: reported once, the loop goes on
    ticket = group.entry_tickets[0]
    assert ticket.is_live  # reconciled from the last readable record: still working, still cancellable
    assert any(r.trigger == "submission_unknown" and "fill-price" in r.event.reason for r in ticket.order_events)
    h.emulator.stop_tampering()
    h.settle(ex)
    _check_settled(h, group)
    assert group.state == "committed" and group.entry_tickets[0].quantity_filled == 2  # the real fills, booked
    assert ex.stats.boundary_errors == 0, "the core's last line was never needed"
    assert h.emulator.orders_with_external_id(ref) and len(h.emulator.orders_with_external_id(ref)) == 1


def test_a_group_with_an_unreadable_record_can_still_be_aborted_and_unwound(harness: Harness) -> None:
    h = harness
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=2, mode=ExecutionMode.COMBO)
    ref = group.entry_tickets[0].order_ref
    _tick(h, ex)
    h.emulator.tamper_orders(f"^{ref}$", _fills_priced("1e30"))
    _tick(h, ex)
    deletes = h.emulator.request_count("DELETE /orders/{id}")
    ex.abort(group.group_id)
    for _ in range(3):
        _tick(h, ex)
    assert h.emulator.request_count("DELETE /orders/{id}") > deletes, "the cancel went out"
    h.emulator.stop_tampering()
    h.settle(ex)
    assert group.state == "rolled_back", (group.state, group.rollback_reason)
    _check_settled(h, group)
    assert ex.stats.boundary_errors == 0


# -- 2. an order id that is not an integer --------------------------------------------------------


def test_an_id_that_is_not_an_integer_in_the_post_answer_is_an_unknown_outcome(harness: Harness) -> None:
    h = harness
    h.emulator.tamper_orders("^ID-", lambda o: {**o, "id": "12-34"})
    with pytest.raises(SubmissionOutcomeUnknown, match="12-34"):  # before: accepted, then ValueError later
        h.backend.submit(h.resting_request("ID-1"))
    assert len(h.emulator.orders_with_external_id("ID-1")) == 1
    h.advance(1.0)
    events = _events_for(h.backend.poll_events(), "ID-1")
    assert [e.trigger for e in events] == ["submission_unknown"] and "12-34" in events[0].reason
    assert "ID-1" not in h.backend.reconcile(["ID-1"]), "unreadable: no answer, never NOT_FOUND"
    with pytest.raises(BrokerUnavailable):
        h.backend.cancel("ID-1")
    h.emulator.stop_tampering()
    h.advance(1.0)
    events = [e for e in _events_for(h.backend.poll_events(), "ID-1") if e.trigger != "submission_unknown"]
    real = str(h.emulator.orders_with_external_id("ID-1")[0])
    assert [(e.trigger, e.broker_order_id) for e in events] == [("acknowledged", real)]
    assert h.backend.reconcile(["ID-1"])["ID-1"].status is BrokerStatus.WORKING
    h.backend.cancel("ID-1")
    assert len(h.emulator.orders_with_external_id("ID-1")) == 1, "never sent again"


def test_an_id_that_is_not_an_integer_in_a_later_read_is_an_anomaly_of_that_order(harness: Harness) -> None:
    h = harness
    h.backend.submit(h.resting_request("ID-2"))
    h.advance(1.0)
    assert [e.trigger for e in _events_for(h.backend.poll_events(), "ID-2")] == ["acknowledged"]
    h.emulator.tamper_orders("^ID-2$", lambda o: {**o, "id": "12-34"})
    for _ in range(3):
        h.advance(1.0)
        events = _events_for(h.backend.poll_events(), "ID-2")  # before: ValueError out of poll
        assert [e.trigger for e in events] in ([], ["submission_unknown"])
    assert h.backend.boundary_errors >= 1
    # answered from the last readable record (nothing from the bad one), so it can be cancelled
    report = h.backend.reconcile(["ID-2"])["ID-2"]
    assert report.status is BrokerStatus.WORKING and report.broker_order_id == "310001"
    h.backend.cancel("ID-2")  # the id we know is valid: the cancel goes out
    h.emulator.stop_tampering()
    h.advance(1.0)
    h.backend.poll_events()
    assert h.backend.reconcile(["ID-2"])["ID-2"].status is BrokerStatus.CANCELED


@pytest.mark.parametrize("rewrite", [
    lambda o: {**o, "external-identifier": "x" * 300},  # the id reads, our reference does not
    lambda o: {**o, "external-identifier": "x" * 300, "id": "12-34"},  # neither reads
    lambda o: [],  # not even an order object (the POST answer has no 'order'; lists drop it)
])
def test_a_placed_order_whose_answer_cannot_be_read_is_never_not_found(harness: Harness,
                                                                       rewrite: Callable[[Any], Any]) -> None:
    h = harness
    h.emulator.tamper_orders("^NF-", rewrite)
    with pytest.raises(SubmissionOutcomeUnknown):
        h.backend.submit(h.resting_request("NF-1"))
    for _ in range(3):
        h.advance(1.0)
        h.backend.poll_events()
        # before: the search found no record carrying NF-1, so NOT_FOUND: the ticket rejected, the order live
        assert "NF-1" not in h.backend.reconcile(["NF-1"])
    h.emulator.stop_tampering()
    h.advance(1.0)
    h.backend.poll_events()
    report = h.backend.reconcile(["NF-1"])["NF-1"]
    assert report.status is BrokerStatus.WORKING
    assert report.broker_order_id == str(h.emulator.orders_with_external_id("NF-1")[0])


@pytest.mark.parametrize("value", ["12-34", "", " 12", "0012", "\u0661\u0662", -5, 0, True, 1.5, 2**63, None, "9" * 30])
def test_parsing_and_the_client_agree_on_what_an_id_is(value: Any) -> None:
    from atomic_orders.backends.tastytrade.client import _order_id

    with pytest.raises(ValueError, match="order_id="):
        _order_id(value)
    with pytest.raises(ValueError, match="id="):
        parse_order_id(value)
    assert _order_id(310001) == parse_order_id("310001") == "310001"


# -- 3. other applications' orders in /orders/live ------------------------------------------------


def _equity(quantity: Any, oid: Any = 990001) -> dict[str, Any]:
    return {"id": oid, "status": "Live", "order-type": "Notional Market", "underlying-symbol": "AAPL",
            "value": "100.0", "value-effect": "Debit", "external-identifier": "other-app-7",
            "legs": [{"instrument-type": "Equity", "symbol": "AAPL", "quantity": quantity,
                      "remaining-quantity": quantity, "action": "Buy", "fills": []}]}


def test_orders_of_other_applications_are_skipped_without_being_parsed(harness: Harness) -> None:
    h = harness
    for record in (_equity(None), _equity("0.5", 990002), _equity("1e999999", "x-y"), "not an object",
                   {"id": [1], "legs": None}, {"external-identifier": {"a": 1}}):
        h.emulator.serve_foreign(record)
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=1, mode=ExecutionMode.COMBO)
    ref = group.entry_tickets[0].order_ref
    h.advance(1.0)
    events = h.backend.poll_events()  # before: every poll failed on the foreign records
    assert [e.trigger for e in _events_for(events, ref)][:1] == ["acknowledged"]
    assert h.backend.boundary_errors == 0 and h.backend.monitor.skipped_records >= 4
    assert h.backend.monitor.last_error is None
    for be in events:
        ex._on_broker_event(be)
    h.settle(ex)
    assert group.state == "committed" and ex.stats.boundary_errors == 0
    assert h.backend.find_orders("ZZZ") == {}


# -- 4. costs: huge numbers and page counts -------------------------------------------------------


@pytest.mark.parametrize("call", [lambda: parse_quantity("1e999999"), lambda: parse_quantity("9" * 100_000),
                                  lambda: parse_price("1e999999", "fill-price"),
                                  lambda: parse_price("1" * 100_000, "fill-price"),
                                  lambda: parse_order_id("1" * 100_000)])
def test_huge_numbers_are_refused_before_any_conversion(call: Callable[[], Any]) -> None:
    start = time.process_time()
    with pytest.raises(ValueError):
        call()
    assert time.process_time() - start < 0.05  # before: parse_quantity("1e999999") took ~45 s


def test_deeply_nested_answers_are_malformed_not_a_recursion_error() -> None:
    with pytest.raises(MalformedResponseError, match="nested too deeply"):
        _parse_json(b"[" * 200_000, "GET", "/x", 200)


@pytest.mark.parametrize("claim", [1_000_000, "1000000", 10**30, "1e999", -1, None, float("inf"), [2]])
def test_a_claimed_page_count_costs_a_bounded_number_of_requests(harness: Harness, claim: Any) -> None:
    h = harness
    h.backend.submit(h.resting_request("PG-1"))
    h.advance(1.0)
    h.backend.poll_events()
    h.emulator.claim_pages(claim)
    before = h.emulator.request_count("GET /orders/live")
    h.advance(1.0)
    assert [e.trigger for e in _events_for(h.backend.poll_events(), "PG-1")] == []
    sent = h.emulator.request_count("GET /orders/live") - before
    assert 1 <= sent <= h.config.max_live_pages  # before: up to 1,000 GETs in one poll
    if claim in (1_000_000, "1000000"):
        with pytest.raises(BrokerUnavailable, match="total-pages=1000000"):
            h.backend.find_orders("PG-")
    h.emulator.stop_tampering()
    before = h.emulator.request_count("GET /orders/live")
    h.advance(1.0)
    h.backend.poll_events()
    assert h.emulator.request_count("GET /orders/live") - before == 1  # the ordinary poll: one request
    assert set(h.backend.find_orders("PG-")) == {"PG-1"}


# -- only the contract's exceptions leave -------------------------------------------------------


def test_a_failing_quote_source_is_broker_unavailable(harness: Harness) -> None:
    h = harness
    symbol = h.condor()[0]

    def broken(_symbol: Any) -> Any:
        raise KeyError("no such symbol")

    h.backend.quote_source = broken
    with pytest.raises(BrokerUnavailable, match="KeyError"):
        h.backend.quote(symbol)
    h.backend.quote_source = lambda _s: "not a quote"
    with pytest.raises(BrokerUnavailable, match="not a Quote"):
        h.backend.quote(symbol)
