"""OrderTicket races and fill accounting: duplicates, over-fills, late fills, unknown, averages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from atomic_orders.fsm.errors import AtomicOrdersError, InvalidTransition, ValidationError
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    CancelRequested,
    Fill,
    Reconciled,
    Rejected,
    SubmissionUnknown,
    Submit,
    Updated,
    UpdateRejected,
    UpdateRequested,
)
from atomic_orders.fsm.ticket import TICKET_MACHINE, OrderTicket, TicketState

from .factories import PRICE, default_event, fill_id, new_ticket, now, ticket_in, ticket_snapshot


def _fill(qty: int, price: Decimal = PRICE, fid: str | None = None) -> Fill:
    return Fill(now(), fid or fill_id(), qty, price)


def _working(qty: int = 10) -> OrderTicket:
    t = new_ticket(qty)
    t.apply(Submit(now(), PRICE))
    t.apply(Acknowledged(now(), "B-1"))
    return t


def test_partial_then_complete_fill() -> None:
    t = _working()
    assert t.apply(_fill(3)) == "partially_filled"
    assert (t.quantity_filled, t.quantity_remaining) == (3, 7)
    assert t.apply(_fill(6)) == "partially_filled"
    assert t.apply(_fill(1)) == "filled"
    assert t.status is TicketState.FILLED
    assert (t.quantity_filled, t.quantity_remaining, t.flagged, t.anomalies) == (10, 0, False, [])


def test_duplicate_fill_is_counted_and_ignored() -> None:
    t = _working()
    first = _fill(4, Decimal("1.10"))
    t.apply(first)
    again = Fill(now(), first.fill_id, 4, Decimal("1.10"))
    assert t.apply(again) == "partially_filled"
    assert t.apply(again) == "partially_filled"
    assert t.duplicate_fills == 2
    assert t.quantity_filled == 4
    assert t.fills == [first]
    assert t.average_fill_price == Decimal("1.10")
    assert not t.flagged and t.anomalies == []
    # the duplicate is still in the audit trail (it was delivered), as an internal transition
    assert [(r.source, r.dest) for r in t.order_events[-2:]] == [("partially_filled", "partially_filled")] * 2


def test_duplicate_of_the_completing_fill_after_filled_is_not_an_overfill() -> None:
    t = _working()
    last = _fill(10)
    assert t.apply(last) == "filled"
    assert t.apply(Fill(now(), last.fill_id, 10, PRICE)) == "filled"
    assert (t.duplicate_fills, t.overfill_quantity, t.quantity_filled) == (1, 0, 10)


def test_overfill_from_partially_filled_is_recorded_and_flagged() -> None:
    t = _working()
    t.apply(_fill(8))
    big = _fill(5)
    assert t.apply(big) == "filled"
    assert t.quantity_filled == 13
    assert big in t.fills
    assert t.overfill_quantity == 3
    assert t.flagged
    assert any("over-fill" in a and big.fill_id in a and "3" in a for a in t.anomalies)
    assert t.quantity_remaining == 0


def test_any_fill_after_filled_is_an_overfill() -> None:
    t = _working()
    t.apply(_fill(10))
    extra = _fill(2)
    assert t.apply(extra) == "filled"
    assert t.fills[-1] is extra
    assert (t.quantity_filled, t.overfill_quantity) == (12, 2)
    t.apply(_fill(1))
    assert (t.quantity_filled, t.overfill_quantity, len(t.anomalies)) == (13, 3, 2)


def test_fill_while_cancel_pending_that_completes_goes_to_filled() -> None:
    t = _working()
    t.apply(_fill(4))
    t.apply(CancelRequested(now()))
    assert t.apply(_fill(6)) == "filled"
    assert not t.flagged
    # and the cancel, answered after the fill, is refused harmlessly
    assert t.apply(CancelRejected(now(), "already filled")) == "filled"
    assert t.reason == "already filled"
    assert t.quantity_filled == 10


def test_partial_fill_while_cancel_pending_stays_cancel_pending() -> None:
    t = _working()
    t.apply(CancelRequested(now()))
    assert t.apply(_fill(3)) == "cancel_pending"
    assert t.quantity_filled == 3
    assert t.apply(Canceled(now())) == "canceled"
    assert t.quantity_filled == 3 and not t.flagged


def test_cancel_rejected_with_fills_returns_to_partially_filled() -> None:
    t = _working()
    t.apply(CancelRequested(now()))
    t.apply(_fill(3))
    assert t.apply(CancelRejected(now(), "busy")) == "partially_filled"
    t2 = _working()
    t2.apply(CancelRequested(now()))
    assert t2.apply(CancelRejected(now(), "busy")) == "submitted"


def test_fill_after_canceled_is_recorded_as_late_and_state_stays_canceled() -> None:
    t = _working()
    t.apply(_fill(2))
    t.apply(CancelRequested(now()))
    t.apply(Canceled(now()))
    late = _fill(3)
    assert t.apply(late) == "canceled"
    assert t.fills[-1] is late
    assert t.quantity_filled == 5
    assert t.late_fill_quantity == 3
    assert t.overfill_quantity == 0
    assert t.flagged
    assert any("late fill" in a and late.fill_id in a and "canceled" in a for a in t.anomalies)


def test_late_fill_that_completes_a_canceled_order_makes_it_filled_and_flagged() -> None:
    t = _working()
    t.apply(_fill(2))
    t.apply(CancelRequested(now()))
    t.apply(Canceled(now()))
    assert t.apply(_fill(8)) == "filled"
    assert (t.quantity_filled, t.late_fill_quantity, t.overfill_quantity) == (10, 8, 0)
    assert t.flagged


def test_late_fill_after_rejected_is_recorded_and_flagged() -> None:
    t = new_ticket()
    t.apply(Submit(now(), PRICE))
    t.apply(Rejected(now(), "no"))
    assert t.apply(_fill(10)) == "rejected"
    assert (t.quantity_filled, t.late_fill_quantity) == (10, 10)
    assert t.flagged


def test_cancel_rejected_after_filled_is_harmless() -> None:
    t = ticket_in("filled", "filled")
    before = ticket_snapshot(t)
    assert t.apply(CancelRejected(now(), "order already filled")) == "filled"
    after = ticket_snapshot(t)
    assert after["reason"] == "order already filled"
    for key in ("state", "quantity_filled", "fills", "anomalies", "overfill_quantity"):
        assert after[key] == before[key]


def test_out_of_order_fill_before_ack() -> None:
    t = new_ticket()
    t.apply(Submit(now(), PRICE))
    assert t.apply(_fill(4)) == "partially_filled"
    # the acknowledgement arrives afterwards: the id is remembered, the state is not rewound
    assert t.apply(Acknowledged(now(), "B-late")) == "partially_filled"
    assert t.broker_order_id == "B-late"
    assert t.apply(_fill(6)) == "filled"
    assert t.apply(Acknowledged(now(), "B-other")) == "filled"
    assert t.broker_order_id == "B-late"  # first id wins


def test_complete_fill_before_ack() -> None:
    t = new_ticket()
    t.apply(Submit(now(), PRICE))
    assert t.apply(_fill(10)) == "filled"
    assert t.apply(Acknowledged(now(), "B-1")) == "filled"


class TestUnknown:
    def _unknown(self) -> OrderTicket:
        t = new_ticket()
        t.apply(Submit(now(), PRICE))
        assert t.apply(SubmissionUnknown(now(), "timeout")) == "unknown"
        return t

    def test_acks_and_fills_are_recorded_but_state_stays_unknown(self) -> None:
        t = self._unknown()
        assert t.apply(Acknowledged(now(), "B-9")) == "unknown"
        assert t.broker_order_id == "B-9"
        f = _fill(10)
        assert t.apply(f) == "unknown"
        assert t.fills == [f] and t.quantity_filled == 10
        assert not t.flagged  # a fill while unknown is expected, not late
        assert t.apply(SubmissionUnknown(now(), "still nothing")) == "unknown"
        assert t.reason == "still nothing"
        assert t.is_unsettled

    @pytest.mark.parametrize("trigger", [t for t in TICKET_MACHINE.triggers if t != "reconciled"])
    def test_nothing_but_reconciliation_leaves_unknown(self, trigger: str) -> None:
        t = self._unknown()
        event = default_event(trigger, t)
        if t.can_apply(trigger):  # a broker report while unknown is kept, the state is not
            assert t.apply(event) == "unknown"
        else:
            with pytest.raises(InvalidTransition, match="unknown"):
                t.apply(event)
        assert t.state == "unknown"

    def test_reconciled_not_found_means_rejected(self) -> None:
        t = self._unknown()
        assert t.apply(Reconciled(now(), BrokerStatus.NOT_FOUND)) == "rejected"
        assert t.reconciliations == 1
        assert t.anomalies == []

    def test_reconciled_not_found_with_fills_is_an_anomaly(self) -> None:
        t = self._unknown()
        t.apply(_fill(2))
        assert t.apply(Reconciled(now(), BrokerStatus.NOT_FOUND)) == "rejected"
        assert any("not found" in a for a in t.anomalies)

    def test_reconciled_with_fills_applies_them_idempotently(self) -> None:
        t = self._unknown()
        seen = _fill(3, Decimal("1.00"))
        t.apply(seen)
        missed = _fill(7, Decimal("2.00"))
        report = Reconciled(now(), BrokerStatus.FILLED, (seen, missed), "B-7")
        assert t.apply(report) == "filled"
        assert t.fills == [seen, missed]
        assert t.quantity_filled == 10
        assert t.duplicate_fills == 0
        assert t.broker_order_id == "B-7"
        # the same answer again (a final order): nothing new, state kept
        assert t.apply(report) == "filled"
        assert t.fills == [seen, missed] and t.quantity_filled == 10 and t.reconciliations == 2
        assert t.average_fill_price == Decimal("1.70")

    def test_reconciled_working_with_partial_fills(self) -> None:
        t = self._unknown()
        assert t.apply(Reconciled(now(), BrokerStatus.WORKING, (_fill(4),))) == "partially_filled"
        assert t.quantity_filled == 4

    def test_reconciled_working_reports_every_unit_filled(self) -> None:
        t = self._unknown()
        assert t.apply(Reconciled(now(), BrokerStatus.PARTIALLY_FILLED, (_fill(4), _fill(6)))) == "filled"


def test_average_fill_price_is_volume_weighted_decimal() -> None:
    t = _working()
    assert t.average_fill_price == Decimal(0)
    t.apply(_fill(1, Decimal("1.00")))
    t.apply(_fill(3, Decimal("2.00")))
    avg = t.average_fill_price
    assert isinstance(avg, Decimal)
    assert avg == Decimal("1.75")  # (1*1 + 3*2) / 4, not the simple mean 1.5
    t.apply(_fill(6, Decimal("1.05")))
    assert t.average_fill_price == (Decimal("1.00") + 3 * Decimal("2.00") + 6 * Decimal("1.05")) / 10


def test_average_fill_price_ignores_duplicates_but_counts_overfills() -> None:
    t = _working(2)
    a = _fill(1, Decimal("1.00"))
    t.apply(a)
    t.apply(Fill(now(), a.fill_id, 1, Decimal("9.00")))  # duplicate id, different price: ignored
    assert t.average_fill_price == Decimal("1.00")
    t.apply(_fill(3, Decimal("2.00")))  # over-fill: recorded, so it is part of the average
    assert t.average_fill_price == Decimal("1.75")


def test_lean_surface() -> None:
    t = _working()
    assert t.order_id == t.order_ref == "T-1"
    assert t.status is TicketState.SUBMITTED
    assert t.quantity == 10
    assert t.quantity_filled == 0
    assert [r.trigger for r in t.order_events] == ["submit", "acknowledged"]
    assert t.fills == []


@pytest.mark.parametrize("call", ["cancel", "update"])
def test_cancel_and_update_without_executor_raise_and_change_nothing(call: str) -> None:
    t = _working()
    t.apply(_fill(2))
    before = ticket_snapshot(t)
    with pytest.raises(AtomicOrdersError, match="not attached to an executor"):
        if call == "cancel":
            t.cancel()
        else:
            t.update(limit_price=Decimal("1.10"), quantity=5)
    assert ticket_snapshot(t) == before


def test_cancel_and_update_go_through_the_router() -> None:
    calls: list[tuple[object, ...]] = []

    class Router:
        def request_cancel(self, ticket: OrderTicket) -> None:
            calls.append(("cancel", ticket.order_ref))

        def request_update(self, ticket: OrderTicket, limit_price: Decimal | None, quantity: int | None) -> None:
            calls.append(("update", ticket.order_ref, limit_price, quantity))

    t = _working()
    t.router = Router()
    t.cancel()
    t.update(limit_price=Decimal("1.10"))
    assert calls == [("cancel", "T-1"), ("update", "T-1", Decimal("1.10"), None)]
    assert t.state == "submitted"  # a request alone changes nothing: the executor applies events


def test_update_applies_only_when_the_broker_confirms() -> None:
    t = _working()
    t.apply(UpdateRequested(now(), limit_price=Decimal("1.20"), quantity=12))
    assert t.limit_price == PRICE and t.quantity == 10
    assert t.apply(Updated(now(), "B-2")) == "submitted"
    assert (t.limit_price, t.quantity, t.broker_order_id) == (Decimal("1.20"), 12, "B-2")
    t.apply(UpdateRequested(now(), limit_price=Decimal("1.30")))
    assert t.apply(UpdateRejected(now(), "no")) == "submitted"
    assert t.limit_price == Decimal("1.20")


def test_ticket_rejects_bad_quantity_and_no_legs() -> None:
    with pytest.raises(ValidationError, match="quantity"):
        OrderTicket("X", new_ticket().legs, 0)
    with pytest.raises(ValidationError, match="legs"):
        OrderTicket("X", (), 1)
