"""Order JSON out (payloads) and back (parsing, the status table, fills in strategy units)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.backends.tastytrade.errors import MalformedResponseError
from atomic_orders.backends.tastytrade.monitor import TicketTracker
from atomic_orders.backends.tastytrade.parsing import (
    STATUS_TABLE,
    WORKING_STATUSES,
    combo_shape,
    parse_order,
    unit_price,
)
from atomic_orders.backends.tastytrade.payloads import build_order_payload, build_replace_payload, signed_price
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.events import BrokerStatus
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose
from atomic_orders.fsm.symbol import OptionSymbol

EXP = dt.date(2026, 1, 16)
NOW = dt.datetime(2026, 1, 9, 15, 0, tzinfo=dt.UTC)


def sym(right: str, strike: int) -> OptionSymbol:
    return OptionSymbol.of("SPXW", EXP, right, strike)


CONDOR = (
    Leg(sym("C", 5050), Side.SELL), Leg(sym("C", 5060), Side.BUY),
    Leg(sym("P", 4950), Side.SELL), Leg(sym("P", 4940), Side.BUY),
)


def combo(limit: str = "-1.25", quantity: int = 3, ref: str = "G1-C", legs: tuple[Leg, ...] = CONDOR) -> OrderRequest:
    return OrderRequest(ref, "G1", Purpose.ENTRY, legs, quantity, limit_price=Decimal(limit))


def test_combo_credit_payload() -> None:
    p = build_order_payload(combo(), source="atomic-orders/0.1.0")
    assert p["order-type"] == "Limit" and p["time-in-force"] == "Day"
    assert (p["price"], p["price-effect"]) == ("1.25", "Credit")
    assert p["external-identifier"] == "G1-C" and p["source"] == "atomic-orders/0.1.0"
    assert [(leg["symbol"], leg["quantity"], leg["action"], leg["instrument-type"]) for leg in p["legs"]] == [
        ("SPXW  260116C05050000", 3, "Sell to Open", "Equity Option"),
        ("SPXW  260116C05060000", 3, "Buy to Open", "Equity Option"),
        ("SPXW  260116P04950000", 3, "Sell to Open", "Equity Option"),
        ("SPXW  260116P04940000", 3, "Buy to Open", "Equity Option"),
    ]
    assert signed_price(p["price"], p["price-effect"]) == Decimal("-1.25")


def test_debit_and_ratio_and_closing_legs() -> None:
    legs = (Leg(sym("C", 5050), Side.BUY, 1, PositionEffect.CLOSE), Leg(sym("C", 5060), Side.SELL, 2,
                                                                        PositionEffect.CLOSE))
    p = build_order_payload(combo("0.40", 2, legs=legs))
    assert (p["price"], p["price-effect"]) == ("0.40", "Debit")
    assert [(leg["quantity"], leg["action"]) for leg in p["legs"]] == [(2, "Buy to Close"), (4, "Sell to Close")]


def test_single_leg_payload_price_is_positive_and_effect_follows_side() -> None:
    sell = OrderRequest("G1-L0", "G1", Purpose.ENTRY, (Leg(sym("C", 5050), Side.SELL, 2),), 6,
                        limit_price=Decimal("3.10"))
    p = build_order_payload(sell)
    assert (p["price"], p["price-effect"], p["legs"][0]["quantity"]) == ("3.10", "Credit", 6)


@pytest.mark.parametrize(
    ("request_factory", "field"),
    [
        (lambda: combo(legs=(CONDOR[0], CONDOR[0])), "legs"),
        (lambda: combo("-1.23"), "limit_price"),
        (lambda: OrderRequest("G1-L0", "G1", Purpose.ENTRY, (CONDOR[0],), 1, limit_price=Decimal("3.05")),
         "limit_price"),
        (lambda: OrderRequest("G1-C", "G1", Purpose.ENTRY, CONDOR, 1, order_type=OrderType.MARKET), "order_type"),
    ],
)
def test_invalid_orders_are_refused_before_sending(request_factory: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        build_order_payload(request_factory())
    assert info.value.field == field


def test_replace_payload_omits_legs_unless_resized() -> None:
    assert "legs" not in build_replace_payload(combo(), Decimal("-1.20"))
    resized = build_replace_payload(combo(), Decimal("-1.20"), remaining_units=2)
    assert resized["price"] == "1.20" and [leg["quantity"] for leg in resized["legs"]] == [2, 2, 2, 2]


# -- parsing ------------------------------------------------------------------------------------


def order_json(status: str, fills: list[list[tuple[int, str]]] | None = None, *, oid: int = 100, legs=CONDOR,
               size: int = 3, counted: int | None = None, **extra: Any) -> dict[str, Any]:
    """An order record; ``counted``: units the legs' ``remaining-quantity`` counts filled (None: no count)."""
    fills = fills or [[] for _ in legs]
    out: dict[str, Any] = {
        "id": oid, "status": status, "size": size, "price": "1.25", "price-effect": "Credit",
        "external-identifier": "G1-C", "order-type": "Limit",
        "legs": [{"symbol": leg.symbol.occ, "instrument-type": "Equity Option", "quantity": size * leg.ratio,
                  "action": "Buy to Open" if leg.side is Side.BUY else "Sell to Open",
                  "fills": [{"fill-id": f"{oid}-{i}-{j}", "quantity": q, "fill-price": p}
                            for j, (q, p) in enumerate(leg_fills)]}
                 for i, (leg, leg_fills) in enumerate(zip(legs, fills, strict=True))],
    }
    if counted is not None:
        for leg, raw in zip(legs, out["legs"], strict=True):
            raw["remaining-quantity"] = (size - counted) * leg.ratio
    out.update(extra)
    return out


def test_status_table_covers_every_api_status() -> None:
    assert set(STATUS_TABLE) == {"Received", "Routed", "In Flight", "Contingent", "Live", "Cancel Requested",
                                 "Replace Requested", "Filled", "Cancelled", "Expired", "Rejected", "Removed",
                                 "Partially Removed"}
    assert set(WORKING_STATUSES) == {"Received", "Routed", "In Flight", "Contingent", "Live", "Cancel Requested",
                                     "Replace Requested"}


EXPECTED_EVENTS = {
    "Received": ["acknowledged"], "Routed": ["acknowledged"], "In Flight": ["acknowledged"],
    "Contingent": ["acknowledged"], "Live": ["acknowledged"], "Cancel Requested": ["acknowledged"],
    "Replace Requested": ["acknowledged"], "Filled": ["acknowledged", "fill"],
    "Cancelled": ["acknowledged", "canceled"], "Expired": ["acknowledged", "expired"], "Rejected": ["rejected"],
    "Removed": ["acknowledged", "canceled"], "Partially Removed": ["acknowledged", "fill", "canceled"],
}
EXPECTED_RECONCILE = {
    "Filled": BrokerStatus.FILLED, "Cancelled": BrokerStatus.CANCELED, "Expired": BrokerStatus.EXPIRED,
    "Rejected": BrokerStatus.REJECTED, "Removed": BrokerStatus.CANCELED,
    "Partially Removed": BrokerStatus.CANCELED,
}


@pytest.mark.parametrize("status", sorted(STATUS_TABLE))
def test_every_status_maps_to_ticket_events_and_a_reconcile_status(status: str) -> None:
    full = [[(3, "1.00")], [(3, "0.50")], [(3, "1.20")], [(3, "0.45")]]
    part = [[(1, "1.00")], [(1, "0.50")], [(1, "1.20")], [(1, "0.45")]]
    fills = full if status == "Filled" else part if status == "Partially Removed" else None
    counted = 3 if status == "Filled" else 1 if status == "Partially Removed" else 0
    tracker = TicketTracker("G1-C", combo())
    tracker.add(parse_order(order_json(status, fills, counted=counted, **({"reject-reason": "no margin"}
                                                                            if status == "Rejected" else {}))))
    events = tracker.events(NOW)
    assert [e.trigger for e in events] == EXPECTED_EVENTS[status]
    assert tracker.events(NOW) == []  # idempotent
    report = tracker.report(NOW)
    assert report.status is EXPECTED_RECONCILE.get(status, BrokerStatus.WORKING)
    assert report.filled_quantity == counted and not report.fills_may_lag


@pytest.mark.parametrize("status", ["Cancelled", "Expired", "Rejected", "Removed", "Partially Removed"])
def test_a_final_status_without_a_count_short_of_its_fills_is_an_unknown_outcome(status: str) -> None:
    # Legs without remaining-quantity: the fills list (which may trail the final status) is all
    # the record says, so a final status short of the order never stands in for "nothing more filled".
    part = [[(1, "1.00")], [(1, "0.50")], [(1, "1.20")], [(1, "0.45")]]
    fills = part if status == "Partially Removed" else None
    tracker = TicketTracker("G1-C", combo())
    tracker.add(parse_order(order_json(status, fills)))
    triggers = [e.trigger for e in tracker.events(NOW)]
    assert triggers[-1] == "submission_unknown" and not {"canceled", "expired", "rejected"} & set(triggers)
    report = tracker.report(NOW)
    assert report.status is EXPECTED_RECONCILE[status]
    assert report.filled_quantity is None and report.fills_may_lag
    assert report.listed_quantity == (1 if fills else 0)


def test_unknown_status_is_treated_as_working_not_a_crash() -> None:
    tracker = TicketTracker("G1-C", combo())
    tracker.add(parse_order(order_json("Teleported")))
    assert [e.trigger for e in tracker.events(NOW)] == ["acknowledged"]
    assert tracker.report(NOW).status is BrokerStatus.WORKING


def test_cumulative_leg_fills_become_whole_units_with_deterministic_ids_and_net_prices() -> None:
    tracker = TicketTracker("G1-C", combo())
    # two units on three legs, one on the fourth: one whole unit
    tracker.add(parse_order(order_json("Live", [[(2, "1.00")], [(2, "0.50")], [(2, "1.20")], [(1, "0.45")]])))
    ev = [e for e in tracker.events(NOW) if e.trigger == "fill"]
    assert [(e.fill_id, e.quantity, e.price) for e in ev] == [("100-u1", 1, Decimal("-1.25"))]
    # resent cumulatively, the fourth leg catches up and a third unit fills at another price
    tracker.add(parse_order(order_json("Filled", [[(2, "1.00"), (1, "1.10")], [(2, "0.50"), (1, "0.50")],
                                                  [(2, "1.20"), (1, "1.20")], [(1, "0.45"), (2, "0.45")]])))
    ev = [e for e in tracker.events(NOW) if e.trigger == "fill"]
    assert [(e.fill_id, e.quantity, e.price) for e in ev] == [("100-u3", 2, Decimal("-1.30"))]
    assert tracker.events(NOW) == []
    assert tracker.report(NOW).status is BrokerStatus.FILLED
    assert sum(f.quantity for f in tracker.report(NOW).fills) == 3


def test_unit_price_uses_exactly_the_contracts_of_those_units() -> None:
    legs = (Leg(sym("C", 5050), Side.BUY, 1), Leg(sym("C", 5060), Side.SELL, 2))
    snap = parse_order(order_json("Live", [[(1, "2.00"), (1, "2.10")], [(2, "1.00"), (2, "0.90")]], legs=legs,
                                  size=2))
    shape = combo_shape(legs)
    assert unit_price(snap, shape, 0, 1) == Decimal("0.00")
    assert unit_price(snap, shape, 1, 2) == Decimal("0.30")
    assert unit_price(snap, shape, 0, 2) == Decimal("0.15")


def test_single_leg_fills_pass_through_by_fill_id() -> None:
    req = OrderRequest("G1-L0", "G1", Purpose.ENTRY, (CONDOR[1],), 3, limit_price=Decimal("0.50"))
    tracker = TicketTracker("G1-L0", req)
    tracker.add(parse_order(order_json("Live", [[(1, "0.50"), (2, "0.55")]], legs=(CONDOR[1],))))
    fills = [e for e in tracker.events(NOW) if e.trigger == "fill"]
    assert [(f.fill_id, f.quantity, f.price) for f in fills] == [("100-0-0", 1, Decimal("0.50")),
                                                                ("100-0-1", 2, Decimal("0.55"))]


def test_replace_chain_updated_then_original_edited_is_not_a_cancel() -> None:
    tracker = TicketTracker("G1-C", combo())
    tracker.add(parse_order(order_json("Replace Requested", oid=100, **{"replacing-order-id": 101})))
    tracker.add(parse_order(order_json("Contingent", oid=101, **{"replaces-order-id": 100,
                                                                 "contingent-status": "Pending Order"})))
    assert [e.trigger for e in tracker.events(NOW)] == ["acknowledged"]
    tracker.add(parse_order(order_json("Cancelled", oid=100, edited=True)))
    tracker.add(parse_order(order_json("Live", oid=101, **{"replaces-order-id": 100})))
    events = tracker.events(NOW)
    assert [(e.trigger, getattr(e, "broker_order_id", None)) for e in events] == [("updated", "101")]
    assert tracker.latest_id == "101"
    tracker.add(parse_order(order_json("Rejected", oid=102, **{"replaces-order-id": 101, "reject-reason": "x"})))
    assert [e.trigger for e in tracker.events(NOW)] == ["update_rejected"]
    assert tracker.latest_id == "101"


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda o: o.pop("id"), "id=None"),
        (lambda o: o.update(status=None), "status"),
        (lambda o: o["legs"][0].update(quantity="1.5"), "legs[0].quantity"),
        (lambda o: o["legs"][0].update(fills=[{"fill-id": "a", "quantity": 1, "fill-price": "abc"}]), "fill-price"),
        (lambda o: o.update(legs="nope"), "legs is not a list"),
    ],
)
def test_malformed_orders_raise_a_clear_error(mutate: Any, needle: str) -> None:
    obj = order_json("Live")
    mutate(obj)
    with pytest.raises(MalformedResponseError) as info:
        parse_order(obj)
    assert needle in str(info.value)
