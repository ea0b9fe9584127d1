"""LEAN OrderEvent -> ticket events: every OrderStatus, replays, late fills, combo unit fills."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from atomic_orders.backends.quantconnect.parsing import OrderEventTranslator
from atomic_orders.backends.quantconnect.symbols import SymbolMapper
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    Expired,
    Fill,
    Rejected,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, Purpose
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.lean.api import STAND_IN_API
from atomic_orders.simulator.lean.lean_types import OrderDirection, OrderEvent, OrderStatus

EXPIRY = dt.date(2026, 1, 16)
SC = OptionSymbol.of("SPXW", EXPIRY, "C", 5050)
LC = OptionSymbol.of("SPXW", EXPIRY, "C", 5060)
T0 = dt.datetime(2026, 1, 5, 15, 0)  # LEAN: naive UTC
MAPPER = SymbolMapper(STAND_IN_API)


def combo_request() -> OrderRequest:
    return OrderRequest("G1-C", "G1", Purpose.ENTRY, (Leg(SC, Side.SELL), Leg(LC, Side.BUY)), 2,
                        limit_price=Decimal("-1.20"))


def single_request() -> OrderRequest:
    return OrderRequest("G1-L1", "G1", Purpose.ENTRY, (Leg(SC, Side.SELL),), 3, limit_price=Decimal("2.00"))


def ev(order_id: int, event_id: int, status: OrderStatus, qty: float = 0.0, price: float = 0.0,
       message: str = "", symbol: OptionSymbol = SC) -> OrderEvent:
    return OrderEvent(order_id, event_id, MAPPER.to_lean(symbol), T0 + dt.timedelta(seconds=event_id), status,
                      OrderDirection.SELL, 0.0, price, qty, message)


@pytest.fixture
def combo() -> OrderEventTranslator:
    tr = OrderEventTranslator(STAND_IN_API)
    tracked = tr.track(combo_request())
    tr.bind(tracked, 11, -1)
    tr.bind(tracked, 12, +1)
    return tr


def events(tr: OrderEventTranslator, *lean: OrderEvent) -> list[object]:
    return [be.event for e in lean for be in tr.translate(e)]


def lean_ticket(order_id: int, status: OrderStatus, *history: OrderEvent) -> Any:
    """LEAN's record of one order as reconcile reads it: status, quantity_filled, order_events."""
    return SimpleNamespace(order_id=order_id, status=status, order_events=list(history),
                           quantity_filled=sum(e.fill_quantity for e in history))


def test_submitted_acknowledges_once_and_times_are_utc(combo: OrderEventTranslator) -> None:
    out = events(combo, ev(11, 1, OrderStatus.SUBMITTED), ev(12, 1, OrderStatus.SUBMITTED, symbol=LC))
    assert len(out) == 1 and isinstance(out[0], Acknowledged)
    assert out[0].broker_order_id == "QC11" and out[0].time.tzinfo is dt.UTC


def test_new_none_and_cancel_pending_produce_nothing(combo: OrderEventTranslator) -> None:
    assert events(combo, ev(11, 1, OrderStatus.NEW), ev(11, 2, OrderStatus.NONE),
                  ev(11, 3, OrderStatus.CANCEL_PENDING)) == []


def test_combo_fills_become_unit_fills_at_the_signed_net(combo: OrderEventTranslator) -> None:
    out = events(
        combo,
        ev(11, 1, OrderStatus.SUBMITTED), ev(12, 1, OrderStatus.SUBMITTED, symbol=LC),
        ev(11, 2, OrderStatus.PARTIALLY_FILLED, -1, 3.40),  # one leg alone completes no unit
    )
    assert [type(e) for e in out] == [Acknowledged]
    out = events(combo, ev(12, 2, OrderStatus.PARTIALLY_FILLED, 1, 2.20, symbol=LC))
    assert out == [Fill(out[0].time, "QC11-F1", 1, Decimal("-1.2"))]  # type: ignore[attr-defined]
    out = events(combo, ev(11, 3, OrderStatus.FILLED, -1, 3.30), ev(12, 3, OrderStatus.FILLED, 1, 2.20, symbol=LC))
    assert len(out) == 1 and isinstance(out[0], Fill)
    assert (out[0].fill_id, out[0].quantity, out[0].price) == ("QC11-F2", 1, Decimal("-1.1"))


def test_replayed_events_change_nothing(combo: OrderEventTranslator) -> None:
    stream = [ev(11, 1, OrderStatus.SUBMITTED), ev(11, 2, OrderStatus.FILLED, -2, 3.0),
              ev(12, 1, OrderStatus.FILLED, 2, 1.5, symbol=LC)]
    first = events(combo, *stream)
    assert events(combo, *stream) == [] and combo.duplicates == 3
    assert [type(e) for e in first] == [Acknowledged, Fill]


def test_canceled_once_every_leg_closed_and_expired_when_lean_says_so(combo: OrderEventTranslator) -> None:
    assert events(combo, ev(11, 1, OrderStatus.CANCELED)) == []
    out = events(combo, ev(12, 1, OrderStatus.CANCELED, symbol=LC))
    assert [type(e) for e in out] == [Canceled]
    tr = OrderEventTranslator(STAND_IN_API)
    tr.bind(tr.track(single_request()), 5, -1)
    out = events(tr, ev(5, 1, OrderStatus.CANCELED, message="The order has expired."))
    assert [type(e) for e in out] == [Expired]


def test_invalid_rejects_once_and_is_ignored_after_fill(combo: OrderEventTranslator) -> None:
    out = events(combo, ev(11, 1, OrderStatus.INVALID, message="BrokerageModelRefusedToSubmitOrder"),
                 ev(12, 1, OrderStatus.INVALID, symbol=LC))
    assert len(out) == 1 and isinstance(out[0], Rejected) and "Refused" in out[0].reason
    tr = OrderEventTranslator(STAND_IN_API)
    tr.bind(tr.track(single_request()), 5, -1)
    events(tr, ev(5, 1, OrderStatus.FILLED, -3, 2.0))
    assert events(tr, ev(5, 2, OrderStatus.INVALID, message="update rejected: already filled")) == []


def test_fill_after_canceled_is_applied(combo: OrderEventTranslator) -> None:
    events(combo, ev(11, 1, OrderStatus.CANCELED), ev(12, 1, OrderStatus.CANCELED, symbol=LC))
    out = events(combo, ev(11, 2, OrderStatus.FILLED, -2, 3.0), ev(12, 2, OrderStatus.FILLED, 2, 1.75, symbol=LC))
    fills = [e for e in out if isinstance(e, Fill)]
    assert [(f.quantity, f.price) for f in fills] == [(2, Decimal("-1.25"))]


def test_updates_map_to_updated_or_update_rejected(combo: OrderEventTranslator) -> None:
    tracked = combo.tracked("G1-C")
    assert tracked is not None
    events(combo, ev(11, 1, OrderStatus.SUBMITTED))
    assert events(combo, ev(11, 2, OrderStatus.UPDATE_SUBMITTED)) == []  # nothing pending: a duplicate
    tracked.pending_updates = 1
    out = events(combo, ev(11, 3, OrderStatus.UPDATE_SUBMITTED), ev(12, 1, OrderStatus.UPDATE_SUBMITTED, symbol=LC))
    assert [type(e) for e in out] == [Updated]
    tracked.pending_updates = 1
    out = events(combo, ev(11, 4, OrderStatus.SUBMITTED, message="Brokerage failed to update order"))
    assert [type(e) for e in out] == [UpdateRejected]


def test_single_leg_fills_in_contracts_at_the_option_price() -> None:
    tr = OrderEventTranslator(STAND_IN_API)
    tracked = tr.track(single_request())
    tr.bind(tracked, 5, -1)
    history = (ev(5, 1, OrderStatus.PARTIALLY_FILLED, -1, 2.05), ev(5, 2, OrderStatus.FILLED, -2, 2.10))
    out = events(tr, *history)
    fills = [e for e in out if isinstance(e, Fill)]
    assert [(f.fill_id, f.quantity, f.price) for f in fills] == [("QC5-1", 1, Decimal("2.05")),
                                                                  ("QC5-2", 2, Decimal("2.1"))]
    record = [lean_ticket(5, OrderStatus.FILLED, *history)]
    assert tr.book_record(tracked, record) == []  # nothing new: the events carried every fill
    report = tr.report(tracked, record)
    assert report.status is BrokerStatus.FILLED and report.fills == tuple(fills) and report.filled_quantity == 3


def test_events_for_orders_nobody_owns_are_kept() -> None:
    tr = OrderEventTranslator(STAND_IN_API)
    assert tr.translate(ev(99, 1, OrderStatus.FILLED, 1, 1.0)) == []
    assert len(tr.foreign_events) == 1


def test_every_lean_status_is_mapped() -> None:
    tr = OrderEventTranslator(STAND_IN_API)
    names = {tr.status_name(s) for s in OrderStatus}
    assert "unknown" not in names and len(names) == 9
    assert sorted({int(s) for s in OrderStatus}) == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_a_failed_update_on_a_partly_filled_order_is_rejected() -> None:
    # LEAN's "Brokerage failed to update order" event carries the order's current status
    tr = OrderEventTranslator(STAND_IN_API)
    tracked = tr.track(single_request())
    tr.bind(tracked, 5, -1)
    events(tr, ev(5, 1, OrderStatus.SUBMITTED), ev(5, 2, OrderStatus.PARTIALLY_FILLED, -1, 2.0))
    tracked.pending_updates = 1
    out = events(tr, ev(5, 3, OrderStatus.PARTIALLY_FILLED, message="Brokerage failed to update order"))
    assert [type(e) for e in out] == [UpdateRejected] and tracked.pending_updates == 0
    tracked.pending_updates = 1
    out = events(tr, ev(5, 4, OrderStatus.UPDATE_SUBMITTED, message="Brokerage failed to update order"))
    assert [type(e) for e in out] == [UpdateRejected]
    # a message on an event that is not about a pending update changes nothing
    assert events(tr, ev(5, 5, OrderStatus.PARTIALLY_FILLED, message="Brokerage failed to update order")) == []


def test_invalid_on_a_partly_filled_order_cancels_the_rest() -> None:
    tr = OrderEventTranslator(STAND_IN_API)
    tracked = tr.track(single_request())
    tr.bind(tracked, 5, -1)
    history = (ev(5, 1, OrderStatus.SUBMITTED), ev(5, 2, OrderStatus.PARTIALLY_FILLED, -1, 2.0),
               ev(5, 3, OrderStatus.INVALID, message="update refused"))
    events(tr, *history[:2])
    out = events(tr, history[2])
    assert [type(e) for e in out] == [Canceled]
    record = [lean_ticket(5, OrderStatus.INVALID, *history)]
    assert tr.report(tracked, record).status is BrokerStatus.CANCELED
    assert tr.report(tracked, record).fills == tuple(tracked.fills) and len(tracked.fills) == 1
