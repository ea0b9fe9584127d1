"""OrderRequest -> TastyTrade order JSON (kebab-case keys), validated before anything is sent.

A combo (group) request becomes ONE order with up to four ``Equity Option`` legs; a legged request
is a one-leg order. Fields (reference §2.1):

* ``order-type``: ``Limit`` / ``Market``; ``time-in-force``: ``Day`` / ``GTC``.
* ``price``: the absolute net price per strategy unit (per contract for one leg) as a decimal
  string, with ``price-effect`` ``Debit`` (we pay) or ``Credit`` (we receive). Our combo limit is
  signed, debit positive: ``+1.25`` -> ``1.25 Debit``, ``-1.25`` -> ``1.25 Credit``. A one-leg
  order's price is positive; the effect follows the side (buy = Debit, sell = Credit).
* ``legs[]``: ``instrument-type: "Equity Option"``, ``symbol`` (OCC, 21 chars), ``quantity``
  (contracts: units x ratio for a combo, the order quantity for one leg), ``action``
  (``Buy to Open``, ``Sell to Open``, ``Buy to Close``, ``Sell to Close``).
* ``external-identifier``: our ``order_ref``. The API has no client order id and no
  idempotency key; it echoes ``external-identifier`` back on every order object (reference §2,
  "Idempotency"), which is what reconciliation searches for. ``source`` carries the user agent.

Checks before sending: 1-4 legs, distinct leg symbols, positive whole quantities, a limit on the
tick (combo tick on the absolute net; the option tick for one leg), no multi-leg market orders.
Violations raise :class:`~atomic_orders.fsm.errors.ValidationError` (the backend turns it into ``SubmissionRefused``:
nothing was sent).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.leg import PositionEffect, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, TimeInForce
from atomic_orders.fsm.pricing import DEFAULT_TICKS, TickRule

__all__ = [
    "ACTIONS",
    "INSTRUMENT_TYPE",
    "MAX_LEGS",
    "build_order_payload",
    "build_replace_payload",
    "format_price",
    "parse_action",
    "price_and_effect",
    "signed_price",
    "validate_request",
]

#: Most legs an equity-option order may have.
MAX_LEGS = 4
#: ``instrument-type`` of equity and index options.
INSTRUMENT_TYPE = "Equity Option"

#: (side, position effect) -> ``action``.
ACTIONS: dict[tuple[Side, PositionEffect], str] = {
    (Side.BUY, PositionEffect.OPEN): "Buy to Open",
    (Side.SELL, PositionEffect.OPEN): "Sell to Open",
    (Side.BUY, PositionEffect.CLOSE): "Buy to Close",
    (Side.SELL, PositionEffect.CLOSE): "Sell to Close",
}
_BY_ACTION = {v: k for k, v in ACTIONS.items()}
_TIF = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GTC"}
_ORDER_TYPE = {OrderType.LIMIT: "Limit", OrderType.MARKET: "Market"}


def parse_action(action: str) -> tuple[Side, PositionEffect]:
    """``'Sell to Open'`` -> ``(Side.SELL, PositionEffect.OPEN)``; ValidationError otherwise."""
    try:
        return _BY_ACTION[action]
    except (KeyError, TypeError):
        raise ValidationError("action", action, f"must be one of {', '.join(_BY_ACTION)}") from None


def format_price(value: Decimal) -> str:
    """A non-negative Decimal as the API's decimal string (no exponent)."""
    text = format(abs(value), "f")
    return text if text else "0"


def price_and_effect(signed: Decimal) -> tuple[str, str]:
    """Signed net (debit positive) -> (``price``, ``price-effect``)."""
    return format_price(signed), ("Credit" if signed < 0 else "Debit")


def signed_price(price: Any, effect: Any) -> Decimal:
    """(``price``, ``price-effect``) from the wire -> signed net, debit positive."""
    try:
        value = Decimal(str(price))
    except ArithmeticError:
        raise ValidationError("price", price, "must be a decimal string") from None
    if not value.is_finite() or value < 0:
        raise ValidationError("price", price, "must be a finite, non-negative decimal")
    if effect == "Debit" or effect == "None" or effect is None:
        return value
    if effect == "Credit":
        return -value
    raise ValidationError("price-effect", effect, "must be 'Debit' or 'Credit'")


def validate_request(request: OrderRequest, ticks: TickRule = DEFAULT_TICKS) -> None:
    """Raise ValidationError unless TastyTrade can take ``request`` as one order."""
    legs = request.legs
    if not 1 <= len(legs) <= MAX_LEGS:
        raise ValidationError("legs", len(legs), f"an equity-option order has 1 to {MAX_LEGS} legs")
    symbols = [leg.symbol.occ for leg in legs]
    if len(set(symbols)) != len(symbols):
        raise ValidationError("legs", symbols, "each leg must use a distinct symbol")
    if type(request.quantity) is not int or request.quantity <= 0:
        raise ValidationError("quantity", request.quantity, "must be a positive int")
    for leg in legs:
        if type(leg.ratio) is not int or leg.ratio <= 0:
            raise ValidationError("ratio", leg.ratio, f"leg {leg.symbol.occ}: must be a positive int")
    if request.order_type is OrderType.MARKET:
        if request.is_combo:
            raise ValidationError("order_type", "market", "multi-leg orders must be limit orders at TastyTrade")
        return
    price = request.limit_price
    if price is None or not price.is_finite():
        raise ValidationError("limit_price", price, "a limit order needs a finite price")
    if request.is_combo:
        if not ticks.is_on_tick(abs(price), combo=True):
            raise ValidationError("limit_price", price, f"is not a multiple of the combo tick {ticks.combo_tick}")
    else:
        ticks.check("limit_price", price)


def _legs(request: OrderRequest, units: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for leg in request.legs:
        quantity = units * leg.ratio if request.is_combo else units
        out.append({
            "instrument-type": INSTRUMENT_TYPE,
            "symbol": leg.symbol.occ,
            "quantity": quantity,
            "action": ACTIONS[(leg.side, leg.position_effect)],
        })
    return out


def _price_fields(request: OrderRequest, limit: Decimal | None) -> dict[str, str]:
    if request.order_type is OrderType.MARKET or limit is None:
        return {}
    if request.is_combo:
        price, effect = price_and_effect(limit)
    else:
        price = format_price(limit)
        effect = "Debit" if request.legs[0].side is Side.BUY else "Credit"
    return {"price": price, "price-effect": effect}


def build_order_payload(
    request: OrderRequest, *, ticks: TickRule = DEFAULT_TICKS, source: str | None = None
) -> dict[str, Any]:
    """The ``POST /accounts/{n}/orders`` body for ``request`` (validated first)."""
    validate_request(request, ticks)
    payload: dict[str, Any] = {
        "time-in-force": _TIF[request.time_in_force],
        "order-type": _ORDER_TYPE[request.order_type],
    }
    payload.update(_price_fields(request, request.limit_price))
    payload["legs"] = _legs(request, request.quantity)
    payload["external-identifier"] = request.order_ref
    if source:
        payload["source"] = source
    return payload


def build_replace_payload(
    request: OrderRequest,
    limit_price: Decimal,
    *,
    remaining_units: int | None = None,
    ticks: TickRule = DEFAULT_TICKS,
    source: str | None = None,
) -> dict[str, Any]:
    """The ``PUT /accounts/{n}/orders/{id}`` body: a new price (and, optionally, a new size).

    Without ``remaining_units`` the legs are left out (as the tastyware SDK does) and the
    replacement keeps the remaining quantity; with it, the replacement's legs carry that many
    units (what is still to fill after the fills already reported).
    """
    if request.order_type is OrderType.MARKET:
        raise ValidationError("order_type", "market", "a market order cannot be replaced")
    probe = OrderRequest(
        order_ref=request.order_ref,
        group_id=request.group_id,
        purpose=request.purpose,
        legs=request.legs,
        quantity=remaining_units if remaining_units is not None else request.quantity,
        order_type=request.order_type,
        limit_price=limit_price,
        time_in_force=request.time_in_force,
    )
    validate_request(probe, ticks)
    payload: dict[str, Any] = {
        "time-in-force": _TIF[request.time_in_force],
        "order-type": _ORDER_TYPE[request.order_type],
    }
    payload.update(_price_fields(request, limit_price))
    if remaining_units is not None:
        payload["legs"] = _legs(request, remaining_units)
    payload["external-identifier"] = request.order_ref
    if source:
        payload["source"] = source
    return payload
