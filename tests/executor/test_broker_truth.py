"""The broker's own record is the judge: the failing inputs of the "broker truth" issue, through the
real executor against a scripted broker (the HTTP and LEAN versions live in tests/tastytrade and
tests/quantconnect).

Each test names the input it reproduces; before the fix each ended with a group ``rolled_back``
(flat, finished, no alert) while the account held the condor, or with the executor stuck.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from atomic_orders.fsm import invariants
from atomic_orders.fsm.errors import SubmissionOutcomeUnknown, ValidationError
from atomic_orders.fsm.events import Acknowledged, BrokerStatus, CancelRejected, Fill, Rejected
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.orders import OrderReport
from atomic_orders.fsm.pricing import PriceEffect
from tests.executor.test_executor import CONDOR_ROLES, LC, LP, SC, SP, make, pump

CONDOR = {SC: -1, LC: 1, SP: -1, LP: 1}


def times(n: int) -> dict[object, int]:
    return {s: q * n for s, q in CONDOR.items()}


@pytest.mark.parametrize("listed", [0, 1])
def test_reconciled_filled_with_fewer_fills_than_the_order_never_rolls_back_over_the_condor(listed: int) -> None:
    """Input 1: reconciliation answers FILLED for an entry combo of 2 with no fills (or with 1)."""
    alerts: list[str] = []
    backend, ex = make(ExecutionPolicy(max_broker_disagreements=3))
    ex.on_alert = alerts.append
    backend.submit_rule = lambda req: SubmissionOutcomeUnknown(req.order_ref, "timeout")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    fills = tuple(Fill(backend.now(), f"F{i}", 1, Decimal("-5.00")) for i in range(listed))
    backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.FILLED, fills, "B1")
    for _ in range(60):
        pump(backend, ex, 5.0)
    ticket = g.entry_tickets[0]
    assert ticket.quantity_filled == listed and ticket.state == "unknown"  # a status is not a quantity
    assert g.state == "failed", "never rolled_back (or committed) on our ledger alone"
    assert g.residual_exposure == times(2)  # measured from the broker's record: the whole condor
    assert any("broker record disputed" in a for a in alerts)
    assert ex.stats.broker_disagreements == 4
    assert len(backend.reconcile_calls) <= 8, "asked again with backoff, boundedly"
    assert invariants.check_group(g, replay=True) == [] and ex.violations == []


def test_the_missing_fills_arriving_later_commit_the_group() -> None:
    """Input 1, the happy ending: the broker lists the fills on a later question."""
    backend, ex = make()
    backend.submit_rule = lambda req: SubmissionOutcomeUnknown(req.order_ref, "timeout")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.FILLED, (), "B1")
    pump(backend, ex, 5.0)
    pump(backend, ex, 5.0)
    assert g.state == "executing" and g.entry_tickets[0].state == "unknown"
    full = (Fill(backend.now(), "F1", 2, Decimal("-5.00")),)
    backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.FILLED, full, "B1")
    for _ in range(10):
        pump(backend, ex, 5.0)
    assert g.state == "committed" and g.ledger.positions() == times(2)
    assert invariants.check_group(g, replay=True) == [] and ex.violations == []


def test_a_refused_cancel_of_a_closed_order_is_reconciled_not_repeated() -> None:
    """Input 2's loop: each cancel refused because the order is closed, cancelled again at once."""
    backend, ex = make(ExecutionPolicy(deadline_seconds=10.0))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex, 11.0)  # the deadline: cancel
    assert backend.cancels == [req.order_ref]
    # The broker filled it (the fill event was lost) and refuses the cancel of a closed order.
    backend.reports[req.order_ref] = OrderReport(
        req.order_ref, BrokerStatus.FILLED, (Fill(backend.now(), "F1", 1, Decimal("-5.00")),), "B1")
    for _ in range(200):
        backend.push(req.order_ref, CancelRejected(backend.now(), "order is closed"))
        pump(backend, ex, 5.0)
        if g.is_terminal:
            break
    assert len(backend.cancels) == 1, "a refusal leads to reconciliation, never to the same request"
    assert g.state == "committed" and g.ledger.positions() == times(1)  # the record's fill is booked
    assert invariants.check_group(g, replay=True) == []


def test_ack_fill_one_of_two_then_rejected_rolls_back_at_once() -> None:
    """Input 4: Ack, Fill(1 of 2), Rejected: no table gap, no repricing of a dead order."""
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2, mode=ExecutionMode.LEGGED, longs_first=False)
    req = backend.submitted[0]
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    backend.push(req.order_ref, Fill(backend.now(), "F1", 1, Decimal("4.10")))
    backend.push(req.order_ref, Rejected(backend.now(), "rejected by the exchange"))
    pump(backend, ex)
    ticket = g.ticket(req.order_ref)
    assert ticket.state == "rejected" and ticket.quantity_filled == 1
    assert g.state == "rolling_back" and "leg ended short" in (g.rollback_reason or "")
    assert g.anomalies == [] and ex.stats.anomalies == 0
    replaces = len(backend.replaces)
    pump(backend, ex, 30.0)
    assert all(ref != req.order_ref for ref, _, _ in backend.replaces[replaces:])


def test_resizing_an_entry_order_is_refused_before_anything_is_sent() -> None:
    """Input 5: ticket.update(quantity=2) on a working combo of 3."""
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=3)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex)
    ticket = g.entry_tickets[0]
    with pytest.raises(ValidationError) as info:
        ticket.update(quantity=2)
    assert info.value.field == "quantity" and info.value.value == 2
    assert backend.replaces == [] and ticket.quantity == 3 and ticket.state == "submitted"
    # A price-only update still works.
    assert ticket.update(limit_price=Decimal("-4.95")).is_success
    assert backend.replaces == [(req.order_ref, Decimal("-4.95"), None)]


def test_a_legged_group_with_a_net_limit_is_refused_naming_limit_price() -> None:
    """Input 6: a legged iron condor with limit_price=10.00 CREDIT when the mids give 5.00."""
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, mode=ExecutionMode.LEGGED, limit_price=Decimal("10.00"),
                               price_effect=PriceEffect.CREDIT)
    assert backend.submitted == [] and ex.stats.invalid == 1
    assert info.value.field == "limit_price" and "also" not in info.value.reason
    assert "combo" in str(info.value)


def test_an_extra_fill_after_commit_alerts_at_once_while_the_broker_is_down(caplog: pytest.LogCaptureFixture) -> None:
    """Input 7: a committed group gets an extra fill and the broker goes down: on_alert hears it now."""
    alerts: list[str] = []
    backend, ex = make()
    ex.on_alert = alerts.append
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend.fill_all(req.order_ref)
    pump(backend, ex)
    assert g.state == "committed" and alerts == []
    backend.push(req.order_ref, Fill(backend.now(), "F-extra", 1, Decimal("-5.00")))
    backend.down = True
    with caplog.at_level(logging.WARNING, logger="atomic_orders.executor"):
        pump(backend, ex)
        pump(backend, ex, 5.0)
    assert g.state == "rolling_back"  # re-opened; nothing can be unwound while the broker is down
    assert [a for a in alerts if "re-opened from committed" in a] != []
    assert any("re-opened from committed" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_a_late_fill_on_a_failed_group_alerts_at_once() -> None:
    """Input 7: a ``failed`` group gets a late fill: the changed residual is alerted when it happens."""
    alerts: list[str] = []
    backend, ex = make(ExecutionPolicy(max_unwind_retries=0, deadline_seconds=10.0))
    ex.on_alert = alerts.append
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    backend.push(req.order_ref, Fill(backend.now(), "F1", 1, Decimal("-5.00")))
    pump(backend, ex, 11.0)  # deadline: cancel the rest
    from atomic_orders.fsm.events import Canceled

    backend.push(req.order_ref, Canceled(backend.now()))
    pump(backend, ex)
    for _ in range(3):  # every unwind is rejected: retries exhausted -> failed
        for unwind in backend.submitted[1:]:
            if g.ticket(unwind.order_ref).state == "submitting":
                backend.push(unwind.order_ref, Rejected(backend.now(), "no"))
        pump(backend, ex, 5.0)
    assert g.state == "failed" and g.residual_exposure == times(1)
    seen = len(alerts)
    backend.down = True
    backend.push(req.order_ref, Fill(backend.now(), "F2", 1, Decimal("-5.00")))  # the cancel lost the race
    pump(backend, ex)
    assert g.state == "failed" and g.residual_exposure == times(2)
    assert any("residual changed after failure" in a for a in alerts[seen:])


def test_the_scripted_broker_lists_its_orders_by_prefix() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend.fill_all(req.order_ref)
    found = backend.find_orders(g.group_id)
    assert list(found) == [req.order_ref] and found[req.order_ref].status is BrokerStatus.FILLED
    assert backend.find_orders("ZZ") == {}


@pytest.mark.parametrize("lags", [False, True])
def test_rejected_without_a_count_from_a_fills_list_that_may_lag_is_not_nothing_filled(lags: bool) -> None:
    """Input 8: a combo of 2 is Rejected; the record lists no fill and gives no count. Where the
    broker's fills list is complete that is a rollback; where it may lag (TastyTrade without
    ``remaining-quantity``) it is not: the fill listed later is booked, unwound, and the group
    fails for a human instead of settling on a record that confirmed nothing."""
    backend, ex = make(ExecutionPolicy(max_broker_disagreements=3))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    ref = req.order_ref
    backend.push(ref, Acknowledged(backend.now(), "B1"))
    backend.push(ref, Rejected(backend.now(), "rejected by the exchange"))
    backend.reports[ref] = OrderReport(ref, BrokerStatus.REJECTED, (), "B1", fills_may_lag=lags)
    for _ in range(3):
        pump(backend, ex, 2.0)
    ticket = g.entry_tickets[0]
    assert ticket.broker_record is not None and ticket.broker_record.counted is not lags
    if not lags:
        assert g.state == "rolled_back" and ticket.broker_confirms
        return
    assert g.state == "rolling_back" and not ticket.broker_confirms  # asked again, never settled on it
    listed = (Fill(backend.now(), "F1", 1, Decimal("-5.00")),)
    backend.reports[ref] = OrderReport(ref, BrokerStatus.REJECTED, listed, "B1", fills_may_lag=True)
    for _ in range(40):
        pump(backend, ex, 2.0)
        for unwind in backend.submitted[1:]:
            if g.ticket(unwind.order_ref).state == "submitting":
                backend.fill_all(unwind.order_ref)
    assert ticket.quantity_filled == 1 and len(backend.submitted) == 5  # booked, then unwound leg by leg
    assert g.state == "failed" and g.residual_exposure == {} == g.ledger.positions()
    assert any("broker record disputed" in a and "no count" in a for a in g.alerts)
    assert invariants.check_group(g, replay=True) == [] and ex.violations == []
