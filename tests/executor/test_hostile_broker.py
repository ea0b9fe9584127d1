"""A hostile broker and a careless caller against the broker-truth and boundary rules.

Each test is a failing input a reviewer found by trying to break the finished work (kept as a
regression): answers that leave orders out, records that say an order works while it is said to
be canceled, fills booked twice under two ids, floods of refusals, outages while waiting for the
record, errors outside the contract from every backend method, and updates that were sent before
they were validated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import SimpleNamespace

import pytest

from atomic_orders.fsm import invariants
from atomic_orders.fsm.errors import SubmissionOutcomeUnknown, ValidationError
from atomic_orders.fsm.events import Acknowledged, BrokerStatus, Canceled, CancelRejected, Fill, UpdateRejected
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.orders import BrokerEvent, OrderReport
from tests.executor.test_broker_truth import times
from tests.executor.test_executor import CONDOR_ROLES, make, pump


def drive(backend, ex, seconds: float, step: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / step)):
        pump(backend, ex, step)


def test_an_answer_that_leaves_our_order_out_is_no_answer_not_a_dispute() -> None:
    alerts: list[str] = []
    backend, ex = make()
    ex.on_alert = alerts.append
    backend.submit_rule = lambda req: SubmissionOutcomeUnknown(req.order_ref, "timeout")

    def omit(refs: Sequence[str]) -> Mapping[str, OrderReport]:
        backend.reconcile_calls.append(tuple(refs))
        return {}

    backend.reconcile = omit  # type: ignore[method-assign]
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    drive(backend, ex, 600.0)
    assert g.state != "failed" and g.entry_tickets[0].state == "unknown"  # never terminal over a live unknown
    assert len(backend.reconcile_calls) <= 20, "asked again on a backoff capped at max_backoff_seconds"
    assert any("has not answered" in a for a in alerts)
    assert ex.stats.broker_disagreements == 0 and ex.stats.unanswered >= 5


@pytest.mark.parametrize("how", ["unknown, count above the fills", "canceled by its event"])
def test_a_group_never_fails_while_the_broker_says_its_order_works(how: str) -> None:
    alerts: list[str] = []
    backend, ex = make(ExecutionPolicy(max_broker_disagreements=2))
    ex.on_alert = alerts.append
    if how.startswith("unknown"):
        backend.submit_rule = lambda req: SubmissionOutcomeUnknown(req.order_ref, "timeout")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    if how.startswith("unknown"):
        backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.PARTIALLY_FILLED, (), "B1",
                                                     filled_quantity=1)
    else:
        backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
        backend.push(req.order_ref, Canceled(backend.now()))
        backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.WORKING, (), "B1", filled_quantity=0)
    drive(backend, ex, 900.0)
    assert g.state != "failed", "not while the broker reports the order working"
    assert req.order_ref in backend.cancels  # it is cancelled instead
    assert any("still working" in a for a in alerts)
    # the broker finally takes the cancel: the group settles on the record
    backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.CANCELED, (), "B1", filled_quantity=0)
    drive(backend, ex, 300.0)
    assert g.is_terminal and invariants.check_group(g, replay=True) == []


def test_a_fill_booked_twice_under_two_ids_is_not_unwound_into_a_reversed_position() -> None:
    backend, ex = make(ExecutionPolicy(max_broker_disagreements=2))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    backend.push(req.order_ref, Fill(backend.now(), "F1", 2, Decimal("-5.00")))
    backend.reports[req.order_ref] = OrderReport(
        req.order_ref, BrokerStatus.FILLED, (Fill(backend.now(), "X1", 2, Decimal("-5.00")),), "B1",
        filled_quantity=2)  # the same execution under another id: the broker counts 2
    pump(backend, ex)
    for _ in range(60):
        for r in backend.submitted[1:]:
            if g.ticket(r.order_ref).state == "submitting":
                backend.fill_all(r.order_ref)
        pump(backend, ex, 5.0)
    assert len(backend.submitted) == 1, "no unwind sent on a disputed count"
    assert g.state == "failed" and g.residual_exposure == times(2)  # what the broker counts
    assert invariants.check_group(g, replay=True) == []


def test_a_flood_of_refusals_asks_the_broker_once_per_backoff_window() -> None:
    backend, ex = make(ExecutionPolicy(deadline_seconds=10.0))
    ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex, 11.0)
    before = len(backend.reconcile_calls)
    for _ in range(500):
        backend.push(req.order_ref, CancelRejected(backend.now(), "no"))
        backend.push(req.order_ref, UpdateRejected(backend.now(), "no"))
    pump(backend, ex)
    assert len(backend.reconcile_calls) - before <= 2


def test_an_outage_while_waiting_for_the_record_backs_off() -> None:
    backend, ex = make(ExecutionPolicy(reconcile_interval=3.3))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    backend.clock.advance(0.37)
    backend.fill_all(req.order_ref)
    backend.down = True
    per_minute = []
    end = backend.now() + dt.timedelta(minutes=30)
    while backend.now() < end:
        start, minute = len(backend.reconcile_calls), backend.now() + dt.timedelta(minutes=1)
        while backend.now() < minute:
            ex.process_events()
            ex.on_timer()
            wake = ex.next_wakeup()
            backend.clock.set(max(wake, backend.now() + dt.timedelta(seconds=0.5)) if wake else minute)
        per_minute.append(len(backend.reconcile_calls) - start)
    assert max(per_minute[5:]) <= 2, per_minute  # at most one question per max_backoff_seconds (60 s)
    assert len(ex._timers) < 10, "one periodic timer per group, not one per retry"
    backend.down = False
    drive(backend, ex, 120.0)
    assert g.state == "committed"


def test_errors_outside_the_contract_from_cancel_and_reconcile_never_stop_the_timers() -> None:
    backend, ex = make()
    backend.submit_rule = lambda r: SubmissionOutcomeUnknown(r.order_ref, "timeout")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    drive(backend, ex, 25.0)  # NOT_FOUND -> rejected; the reference is kept dormant

    def bad_cancel(ref: str) -> None:
        raise RuntimeError("HTTP 500 with an HTML body")

    backend.cancel = bad_cancel  # type: ignore[method-assign]
    backend.push(req.order_ref, Acknowledged(backend.now(), "B-late"))  # it surfaces
    for _ in range(5):
        pump(backend, ex, 5.0)  # nothing escapes on_timer
    assert ex.stats.boundary_errors >= 1

    def bad_reconcile(refs: Sequence[str]) -> Mapping[str, OrderReport]:
        backend.reconcile_calls.append(tuple(refs))
        raise RuntimeError("garbage")

    backend.reconcile = bad_reconcile  # type: ignore[method-assign]
    calls = len(backend.reconcile_calls)
    drive(backend, ex, 600.0)
    assert len(backend.reconcile_calls) - calls <= 25
    assert g.is_terminal or g.state == "rolling_back"


def test_events_that_are_not_the_cores_are_skipped_and_the_batch_goes_on() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    fake = SimpleNamespace(trigger="fill", time=backend.now(), fill_id="Z", quantity=-5, price=Decimal("1"))
    backend._outbox += [BrokerEvent(["x"], Acknowledged(backend.now(), "B")),  # type: ignore[arg-type]
                        BrokerEvent(req.order_ref, fake)]  # type: ignore[arg-type]
    backend.fill_all(req.order_ref)
    pump(backend, ex)
    assert ex.stats.boundary_errors == 2
    assert g.state == "committed" and g.entry_tickets[0].quantity_filled == 1


@pytest.mark.parametrize("price", [Decimal("NaN"), Decimal("Infinity"), Decimal("5.00"), Decimal("-1E+9"),
                                   Decimal("-4.987654"), 1.5])
def test_an_update_is_validated_before_it_is_sent(price: object) -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=3, limit_price=Decimal("4.50"))
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex)
    ticket = g.entry_tickets[0]
    with pytest.raises(ValidationError) as info:
        ticket.update(limit_price=price)  # type: ignore[arg-type]
    assert info.value.field == "limit_price" and backend.replaces == []
    for quantity in (3.0, Decimal(3)):
        with pytest.raises(ValidationError):
            ticket.update(quantity=quantity)  # type: ignore[arg-type]
    assert backend.replaces == [] and ticket.state == "submitted"


def test_policy_timers_have_a_floor() -> None:
    with pytest.raises(ValidationError) as info:
        ExecutionPolicy(reconcile_interval=1e-6)
    assert info.value.field == "reconcile_interval"


def test_an_on_alert_that_raises_loses_nothing() -> None:
    backend, ex = make(ExecutionPolicy(max_broker_disagreements=0))
    fail = [True]
    seen: list[str] = []

    def on_alert(text: str) -> None:
        if fail[0]:
            fail[0] = False
            raise TimeoutError("pager down")
        seen.append(text)

    finished: list[str] = []
    ex.on_alert = on_alert
    ex.on_finished = lambda g, s: finished.append(g.group_id)
    backend.submit_rule = lambda r: SubmissionOutcomeUnknown(r.order_ref, "timeout")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.FILLED, (), "B1")
    drive(backend, ex, 100.0)
    assert g.state == "failed" and finished == [g.group_id] and ex.stats.boundary_errors >= 1


def test_abort_of_an_unknown_group_names_the_group_id() -> None:
    _, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.abort("nope")
    assert info.value.field == "group_id"


@pytest.mark.parametrize("bad", [["G000001"], {"group": 1}, 7])
def test_abort_of_a_group_id_that_is_no_string_names_the_group_id(bad: object) -> None:
    """Refused by name, also when it cannot key a table (unhashable): never a TypeError."""
    _, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.abort(bad)  # type: ignore[arg-type]
    assert info.value.field == "group_id" and info.value.value == bad



def test_a_quote_the_backend_refuses_keeps_its_reason_and_is_no_boundary_error() -> None:
    """``QuoteUnavailable`` is within the port's contract (fsm/ports.py): a stale or halted quote
    from a real broker keeps its reason (at execute and when repricing) and counts as a quote
    miss, never as data outside the contract."""
    from atomic_orders.fsm.errors import QuoteUnavailable
    from atomic_orders.fsm.orders import Quote
    from atomic_orders.fsm.symbol import OptionSymbol

    backend, ex = make()
    fresh = backend.quote
    refusing = {"on": True}

    def stale(symbol: OptionSymbol) -> Quote:
        if refusing["on"]:
            raise QuoteUnavailable(symbol.occ, "updated-at", "2026-01-12T14:00:00Z", "older than 5 s")
        return fresh(symbol)

    backend.quote = stale  # type: ignore[method-assign]
    with pytest.raises(QuoteUnavailable, match="older than 5 s"):
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    refusing["on"] = False
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex)
    price = g.entry_tickets[0].limit_price
    refusing["on"] = True
    drive(backend, ex, 30.0)  # unfilled: every step toward natural finds the quote refused
    assert ex.stats.boundary_errors == 0
    assert ex.stats.quote_misses >= 1  # each refused step is counted
    assert g.entry_tickets[0].limit_price == price  # no step without a usable quote
    assert g.state in ("executing", "rolling_back", "rolled_back")
