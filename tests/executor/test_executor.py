"""The executor against a scripted broker: every decision it makes, step by step."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from atomic_orders.backends.scripted import ScriptedBackend
from atomic_orders.fsm import invariants
from atomic_orders.fsm.errors import AtomicOrdersError, SubmissionOutcomeUnknown, SubmissionRefused, ValidationError
from atomic_orders.fsm.events import Acknowledged, BrokerStatus, Canceled, Fill, Rejected, Updated
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, Purpose
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol

EXP = dt.date(2026, 1, 16)
SC = OptionSymbol.of("SPXW", EXP, "C", "5100")
LC = OptionSymbol.of("SPXW", EXP, "C", "5125")
SP = OptionSymbol.of("SPXW", EXP, "P", "4900")
LP = OptionSymbol.of("SPXW", EXP, "P", "4875")
#: The condor above by role, for ``execute_iron_condor(**CONDOR_ROLES, quantity=...)``.
CONDOR_ROLES = {"short_call": SC, "long_call": LC, "short_put": SP, "long_put": LP}


def make(policy: ExecutionPolicy | None = None) -> tuple[ScriptedBackend, AtomicOrderExecutor]:
    backend = ScriptedBackend()
    backend.quotes = {
        SC: (Decimal("4.00"), Decimal("4.20")),
        LC: (Decimal("1.50"), Decimal("1.60")),
        SP: (Decimal("3.80"), Decimal("4.00")),
        LP: (Decimal("1.40"), Decimal("1.50")),
    }
    return backend, AtomicOrderExecutor(backend, policy or ExecutionPolicy())


def pump(backend: ScriptedBackend, executor: AtomicOrderExecutor, seconds: float = 0.0) -> None:
    if seconds:
        backend.clock.advance(seconds)
    executor.process_events()
    executor.on_timer()


def settled(group) -> None:  # type: ignore[no-untyped-def]
    assert invariants.check_group(group, replay=True) == []


def test_combo_condor_commits_at_mid_credit() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=3)
    assert g.state == "executing"
    [req] = backend.submitted
    assert req.is_combo and req.quantity == 3 and req.purpose is Purpose.ENTRY
    # net mid per unit = -4.10 + 1.55 - 3.90 + 1.45 = -5.00: a credit, so a negative signed limit
    assert req.limit_price == Decimal("-5.00")
    backend.fill_all(req.order_ref)
    pump(backend, ex)
    assert g.state == "committed"
    assert g.ledger.positions() == {SC: -3, LC: 3, SP: -3, LP: 3}
    assert dict(backend.positions()) == g.ledger.positions()
    settled(g)


def test_legged_sends_protective_longs_first_then_shorts() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2, mode=ExecutionMode.LEGGED)
    assert [r.legs[0].symbol for r in backend.submitted] == [LC, LP]
    assert all(r.legs[0].side is Side.BUY for r in backend.submitted)
    backend.fill_all(backend.submitted[0].order_ref)
    pump(backend, ex)
    assert len(backend.submitted) == 2  # shorts wait until both longs are filled
    backend.fill_all(backend.submitted[1].order_ref)
    pump(backend, ex)
    assert [r.legs[0].symbol for r in backend.submitted[2:]] == [SC, SP]
    for r in backend.submitted[2:]:
        backend.fill_all(r.order_ref)
    pump(backend, ex)
    assert g.state == "committed"
    settled(g)


def test_legged_rollback_cancels_then_buys_back_shorts_before_selling_longs() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2, mode=ExecutionMode.LEGGED)
    for r in list(backend.submitted):
        backend.fill_all(r.order_ref)
    pump(backend, ex)
    short_call, short_put = backend.submitted[2], backend.submitted[3]
    now = backend.now()
    backend.push(short_call.order_ref, Acknowledged(now, "B-sc"))
    backend.push(short_call.order_ref, Fill(now, "sc-1", 1, Decimal("4.10")))
    backend.push(short_put.order_ref, Rejected(now, "halted"))
    pump(backend, ex)
    assert g.state == "rolling_back"
    assert backend.cancels == [short_call.order_ref]  # the working short is canceled first
    backend.push(short_call.order_ref, Canceled(backend.now()))
    pump(backend, ex)
    unwinds = [r for r in backend.submitted if r.purpose is Purpose.UNWIND]
    # only the buy-back of the short call goes out while a short position is open
    assert [(r.legs[0].symbol, r.legs[0].side, r.quantity) for r in unwinds] == [(SC, Side.BUY, 1)]
    assert unwinds[0].limit_price is not None and unwinds[0].limit_price > Decimal("4.20")  # marketable
    backend.fill_all(unwinds[0].order_ref)
    pump(backend, ex)
    sells = [r for r in backend.submitted if r.purpose is Purpose.UNWIND][1:]
    assert sorted((r.legs[0].symbol.occ, r.legs[0].side, r.quantity) for r in sells) == sorted(
        [(LC.occ, Side.SELL, 2), (LP.occ, Side.SELL, 2)]
    )
    for r in sells:
        backend.fill_all(r.order_ref)
    pump(backend, ex)
    assert g.state == "rolled_back"
    assert g.ledger.positions() == {} and dict(backend.positions()) == {}
    settled(g)


def test_combo_deadline_cancels_and_unwinds_the_partial_fill() -> None:
    backend, ex = make(ExecutionPolicy(deadline_seconds=30.0, step_seconds=5.0))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=3)
    [req] = backend.submitted
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    backend.push(req.order_ref, Fill(backend.now(), "f1", 1, Decimal("-5.00")))
    pump(backend, ex)
    for _ in range(5):
        pump(backend, ex, 5.0)
        if g.tickets[0].state == "update_pending":  # the broker confirms each replace
            backend.push(req.order_ref, Updated(backend.now()))
    assert backend.replaces, "the price steps toward natural while working"
    assert all(price > Decimal("-5.00") for _, price, _ in backend.replaces)  # less credit each step
    assert g.state == "executing"
    pump(backend, ex, 10.0)
    assert g.state == "rolling_back" and "deadline" in (g.rollback_reason or "")
    assert backend.cancels == [req.order_ref]
    backend.push(req.order_ref, Canceled(backend.now()))
    pump(backend, ex)
    first = [r for r in backend.submitted if r.purpose is Purpose.UNWIND]
    assert {(r.legs[0].symbol, r.legs[0].side) for r in first} == {(SC, Side.BUY), (SP, Side.BUY)}
    for r in first:
        backend.fill_all(r.order_ref)
    pump(backend, ex)
    second = [r for r in backend.submitted if r.purpose is Purpose.UNWIND][2:]
    assert {(r.legs[0].symbol, r.legs[0].side) for r in second} == {(LC, Side.SELL), (LP, Side.SELL)}
    for r in second:
        backend.fill_all(r.order_ref)
    pump(backend, ex)
    assert g.state == "rolled_back"
    settled(g)


def test_unwind_rejected_beyond_retries_fails_with_exact_residual_and_alert() -> None:
    alerts: list[str] = []
    backend, ex = make(ExecutionPolicy(max_unwind_retries=1, unwind_retry_delay=1.0))
    ex.on_alert = alerts.append
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2, mode=ExecutionMode.LEGGED)
    lc, lp = backend.submitted
    backend.fill_all(lc.order_ref)
    backend.push(lp.order_ref, Rejected(backend.now(), "insufficient buying power"))
    pump(backend, ex)
    assert g.state == "rolling_back"
    for attempt in range(2):  # the first try and one retry, both rejected
        unwinds = [r for r in backend.submitted if r.purpose is Purpose.UNWIND]
        assert len(unwinds) == attempt + 1
        backend.push(unwinds[-1].order_ref, Rejected(backend.now(), "halted"))
        pump(backend, ex)
        pump(backend, ex, 5.0)
    assert g.state == "failed"
    assert g.residual_exposure == {LC: 2} == g.ledger.positions()
    assert alerts and "FAILED" in alerts[-1]
    settled(g)


def test_submission_outcome_unknown_is_reconciled_never_resent() -> None:
    backend, ex = make(ExecutionPolicy(reconcile_interval=3.0))

    def timeout_first(req: OrderRequest) -> BaseException | None:
        return SubmissionOutcomeUnknown(req.order_ref, "read timed out") if req.is_combo else None

    backend.submit_rule = timeout_first
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    [req] = backend.submitted
    ticket = g.ticket(req.order_ref)
    assert ticket.state == "unknown"
    backend.down = True  # the broker cannot answer yet: still unknown, nothing resent
    pump(backend, ex, 3.0)
    assert ticket.state == "unknown" and len(backend.submitted) == 1
    backend.down = False
    fill = Fill(backend.now(), "late-1", 2, Decimal("-5.00"))
    backend.reports[req.order_ref] = OrderReport(req.order_ref, BrokerStatus.FILLED, (fill,), "B9")
    pump(backend, ex, 3.0)
    assert ticket.state == "filled" and g.state == "committed"
    assert len(backend.submitted) == 1, "an order with an unknown outcome is never submitted twice"
    assert backend.reconcile_calls and all(call == (req.order_ref,) for call in backend.reconcile_calls)
    settled(g)


def test_unknown_submission_not_found_at_broker_rolls_back_without_resending() -> None:
    backend, ex = make()
    backend.submit_rule = lambda req: SubmissionOutcomeUnknown(req.order_ref, "connection reset")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    pump(backend, ex, 5.0)
    assert g.state == "rolled_back"
    assert g.tickets[0].state == "rejected" and len(backend.submitted) == 1
    settled(g)


def test_order_given_up_as_not_found_that_surfaces_later_is_cancelled_and_its_fill_unwound() -> None:
    alerts: list[str] = []
    backend = ScriptedBackend()
    ex = AtomicOrderExecutor(backend, ExecutionPolicy(), on_alert=alerts.append)
    backend.submit_rule = lambda req: SubmissionOutcomeUnknown(req.order_ref, "connection reset") if (
        req.purpose is Purpose.ENTRY) else None
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=2)
    pump(backend, ex, 5.0)
    [req] = backend.submitted
    assert g.state == "rolled_back" and g.ticket(req.order_ref).state == "rejected"
    assert backend.cancels == [], "nothing to cancel while the broker does not know the order"
    # The request landed after all (delayed routing): the broker now works it.
    backend.down = True  # first the cancel cannot be delivered: retried on the timer
    backend.push(req.order_ref, Acknowledged(backend.now(), "B-late"))
    pump(backend, ex)
    assert backend.cancels == [] and ex.stats.surfaced_cancels == 0
    assert any("surfaced" in a and req.order_ref in a for a in alerts)
    backend.down = False
    pump(backend, ex, 1.0)
    assert backend.cancels == [], "the retry waits out its backoff (reconcile_interval at first)"
    pump(backend, ex, ex.policy.reconcile_interval)
    assert backend.cancels == [req.order_ref] and ex.stats.surfaced_cancels == 1
    # One unit filled before our cancel reached it: the fill is kept, flagged, and unwound.
    backend.push(req.order_ref, Fill(backend.now(), "late-fill", 1, Decimal("0.00")))
    backend.push(req.order_ref, Acknowledged(backend.now(), "B-late"))  # duplicate: no second cancel
    backend.push(req.order_ref, Canceled(backend.now()))  # the broker took our cancel for the rest
    pump(backend, ex)
    assert backend.cancels == [req.order_ref]
    assert g.ticket(req.order_ref).quantity_filled == 1 and g.state == "rolling_back"
    for _ in range(2):  # shorts are bought back first, then the longs are sold
        for unwind in backend.submitted[1:]:
            if g.ticket(unwind.order_ref).state == "submitting":
                backend.fill_all(unwind.order_ref)
        pump(backend, ex, 1.0)
    assert g.state == "rolled_back" and g.ledger.positions() == {}
    assert dict(backend.positions()) == {} and ex.violations == []
    settled(g)


def test_refused_submission_rolls_back_and_nothing_is_left() -> None:
    backend, ex = make()
    backend.submit_rule = lambda req: SubmissionRefused(req.order_ref, "invalid price")
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    assert g.state == "rolled_back" and backend.submitted == []
    settled(g)


def test_invalid_group_sends_nothing_and_names_the_field() -> None:
    backend, ex = make()
    # A hand-built group given to execute() is returned invalid, its errors on it.
    legs = [Leg(SC, Side.SELL), Leg(LC, Side.BUY), Leg(SP, Side.SELL), Leg(LP, Side.BUY)]
    g = ex.execute(AtomicOrderGroup("G1", legs, 0, strategy=StrategyKind.IRON_CONDOR))
    assert g.state == "invalid" and backend.submitted == []
    assert any(err.field == "quantity" for err in g.validation_errors)
    # The helpers raise for the same input, after recording the group invalid as execute() does.
    with pytest.raises(ValidationError) as bad:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=0)
    assert (bad.value.field, bad.value.value) == ("quantity", 0) and backend.submitted == []
    assert ex.stats.invalid == 2
    with pytest.raises(ValidationError) as refused:  # short call above the long call: refused by role
        ex.execute_iron_condor(short_call=LC, long_call=SC, short_put=SP, long_put=LP, quantity=1)
    assert refused.value.field == "long_call" and backend.submitted == []


def test_lean_style_ticket_cancel_goes_through_the_executor() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    ticket = g.tickets[0]
    backend.push(ticket.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex)
    ticket.cancel()
    assert backend.cancels == [ticket.order_ref] and ticket.state == "cancel_pending"
    backend.push(ticket.order_ref, Canceled(backend.now()))
    pump(backend, ex)
    assert g.state == "rolled_back"
    detached = g.clone_definition()
    detached.validate(backend.now())
    with pytest.raises(AtomicOrdersError, match="not attached to an executor"):
        detached.tickets[0].cancel()


def test_unexpected_fill_is_kept_as_stray_and_counted_as_violation() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    backend.fill_all(g.tickets[0].order_ref)
    pump(backend, ex)
    assert g.state == "committed"
    backend._outbox.append(BrokerEvent("nobody-1", Fill(backend.now(), "x", 1, Decimal(1))))  # nobody placed it
    pump(backend, ex)
    assert ex.stats.stray_events == 1 and ex.stats.invariant_violations == 1
    assert ex.stray_events[0].order_ref == "nobody-1"


def test_update_of_an_order_that_cannot_take_one_sends_nothing() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    ticket = g.tickets[0]
    ticket.update(limit_price=Decimal("-4.90"))  # still submitting: no acknowledgement yet
    assert backend.replaces == [] and ticket.state == "submitting"
    backend.push(ticket.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex)
    ticket.update(limit_price=Decimal("-4.90"))
    assert backend.replaces == [(ticket.order_ref, Decimal("-4.90"), None)] and ticket.state == "update_pending"
