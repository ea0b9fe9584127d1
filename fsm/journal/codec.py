"""Values <-> JSON for the journal: legs, order requests, ticket events, group definitions.

Everything is plain JSON a person can read in the ``sqlite3`` shell: money as decimal strings
(never floats), times as ISO 8601 UTC, symbols as OCC strings, enums as their values. Decoding
rebuilds the exact frozen values, so a replayed audit trail is the recorded one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.events import TICKET_EVENT_TYPES, BrokerStatus, Fill, TicketEvent
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode, GroupAuditRecord
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.pricing import PriceEffect, TickRule
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol

__all__ = [
    "decode_audit",
    "decode_event",
    "decode_group",
    "decode_policy",
    "decode_request",
    "dumps",
    "encode_audit",
    "encode_event",
    "encode_group",
    "encode_policy",
    "encode_request",
    "loads",
]

_EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in TICKET_EVENT_TYPES}
_DECIMAL_FIELDS = frozenset({"limit_price", "price"})


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Canonical compact JSON (sorted keys): the same value always gives the same text."""
    return _ENCODER.encode(value)


def loads(text: str) -> Any:
    """JSON text -> plain values."""
    return json.loads(text)


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValidationError("time", text, "journal times must carry a timezone")
    return value


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _parse_dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# -- legs and orders ---------------------------------------------------------------------------


def _encode_symbol(symbol: OptionSymbol) -> dict[str, str]:
    return {"occ": symbol.occ, "underlying": symbol.underlying}


def _decode_symbol(data: Mapping[str, str]) -> OptionSymbol:
    return OptionSymbol.parse_occ(data["occ"], data.get("underlying"))


def encode_leg(leg: Leg) -> dict[str, Any]:
    """One leg as JSON."""
    return {"symbol": _encode_symbol(leg.symbol), "side": leg.side.value, "ratio": leg.ratio,
            "position_effect": leg.position_effect.value}


def decode_leg(data: Mapping[str, Any]) -> Leg:
    """The leg :func:`encode_leg` wrote."""
    return Leg(_decode_symbol(data["symbol"]), Side(data["side"]), int(data["ratio"]),
               PositionEffect(data["position_effect"]))


def encode_request(request: OrderRequest) -> dict[str, Any]:
    """An order request exactly as it leaves for the broker."""
    return {
        "order_ref": request.order_ref,
        "group_id": request.group_id,
        "purpose": request.purpose.value,
        "legs": [encode_leg(leg) for leg in request.legs],
        "quantity": request.quantity,
        "order_type": request.order_type.value,
        "limit_price": _dec(request.limit_price),
        "time_in_force": request.time_in_force.value,
    }


def decode_request(data: Mapping[str, Any]) -> OrderRequest:
    """The request :func:`encode_request` wrote."""
    return OrderRequest(
        order_ref=data["order_ref"],
        group_id=data["group_id"],
        purpose=Purpose(data["purpose"]),
        legs=tuple(decode_leg(leg) for leg in data["legs"]),
        quantity=int(data["quantity"]),
        order_type=OrderType(data["order_type"]),
        limit_price=_parse_dec(data["limit_price"]),
        time_in_force=TimeInForce(data["time_in_force"]),
    )


# -- ticket events -----------------------------------------------------------------------------


def _encode_fill(fill: Fill) -> dict[str, Any]:
    return {"time": _time(fill.time), "fill_id": fill.fill_id, "quantity": fill.quantity, "price": str(fill.price)}


def encode_event(event: TicketEvent) -> dict[str, Any]:
    """A ticket event as ``{"type": ClassName, field: value, ...}``."""
    out: dict[str, Any] = {"type": type(event).__name__}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if field.name == "time":
            out["time"] = _time(value)
        elif field.name in _DECIMAL_FIELDS:
            out[field.name] = _dec(value)
        elif field.name == "status":
            out["status"] = value.value
        elif field.name == "fills":
            out["fills"] = [_encode_fill(f) for f in value]
        else:
            out[field.name] = value
    return out


def decode_event(data: Mapping[str, Any]) -> TicketEvent:
    """The ticket event :func:`encode_event` wrote."""
    kind = data.get("type")
    cls = _EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValidationError("event type", kind, f"expected one of {sorted(_EVENT_TYPES)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "type":
            continue
        if key == "time":
            kwargs["time"] = _parse_time(value)
        elif key in _DECIMAL_FIELDS:
            kwargs[key] = _parse_dec(value)
        elif key == "status":
            kwargs["status"] = BrokerStatus(value)
        elif key == "fills":
            kwargs["fills"] = tuple(
                Fill(_parse_time(f["time"]), f["fill_id"], int(f["quantity"]), Decimal(f["price"])) for f in value
            )
        else:
            kwargs[key] = value
    event: TicketEvent = cls(**kwargs)
    return event


def event_fills(event: TicketEvent) -> tuple[Fill, ...]:
    """The fills an event carries (a fill, or a reconciliation's fills)."""
    if isinstance(event, Fill):
        return (event,)
    fills = getattr(event, "fills", None)
    return tuple(fills) if fills else ()


# -- group audit records -------------------------------------------------------------------------


def encode_audit(record: GroupAuditRecord) -> dict[str, Any]:
    """One group transition (its ticket event included)."""
    return {
        "time": _time(record.time),
        "source": record.source,
        "trigger": record.trigger,
        "dest": record.dest,
        "order_ref": record.order_ref,
        "ticket_event": None if record.ticket_event is None else encode_event(record.ticket_event),
        "reason": record.reason,
    }


def decode_audit(data: Mapping[str, Any]) -> GroupAuditRecord:
    """The transition :func:`encode_audit` wrote."""
    event = data.get("ticket_event")
    return GroupAuditRecord(
        _parse_time(data["time"]), data["source"], data["trigger"], data["dest"], data.get("order_ref"),
        None if event is None else decode_event(event), data.get("reason", ""),
    )


# -- group definitions and policy ----------------------------------------------------------------


def encode_group(group: AtomicOrderGroup) -> dict[str, Any]:
    """Everything needed to rebuild the group before its first transition (no history)."""
    ticks = group.ticks
    return {
        "group_id": group.group_id,
        "strategy": group.strategy.value,
        "legs": [encode_leg(leg) for leg in group.legs],
        "quantity": group.quantity,
        "mode": group.mode.value,
        "order_type": group.order_type.value,
        "limit_price": _dec(group.limit_price),
        "price_effect": None if group.price_effect is None else group.price_effect.value,
        "ticks": {"below_threshold": str(ticks.below_threshold), "at_or_above_threshold":
                  str(ticks.at_or_above_threshold), "threshold": str(ticks.threshold),
                  "combo_tick": str(ticks.combo_tick)},
        "max_unwind_retries": group.max_unwind_retries,
        "longs_first": group.longs_first,
        "created_at": None if group.created_at is None else _time(group.created_at),
        "verify_with_broker": group.verify_with_broker,
    }


def decode_group(data: Mapping[str, Any]) -> AtomicOrderGroup:
    """A fresh ``pending`` group with the definition :func:`encode_group` wrote."""
    ticks = data["ticks"]
    created = data.get("created_at")
    return AtomicOrderGroup(
        data["group_id"],
        tuple(decode_leg(leg) for leg in data["legs"]),
        int(data["quantity"]),
        strategy=StrategyKind(data["strategy"]),
        mode=ExecutionMode(data["mode"]),
        order_type=OrderType(data["order_type"]),
        limit_price=_parse_dec(data["limit_price"]),
        price_effect=None if data["price_effect"] is None else PriceEffect(data["price_effect"]),
        ticks=TickRule(Decimal(ticks["below_threshold"]), Decimal(ticks["at_or_above_threshold"]),
                       Decimal(ticks["threshold"]), Decimal(ticks["combo_tick"])),
        max_unwind_retries=int(data["max_unwind_retries"]),
        longs_first=bool(data["longs_first"]),
        created_at=None if created is None else _parse_time(created),
        # Journals written before invariant 7 did not record it; every executor group verifies.
        verify_with_broker=bool(data.get("verify_with_broker", False)),
    )


def encode_policy(policy: ExecutionPolicy) -> dict[str, Any]:
    """The execution policy (seconds as numbers, money as decimal strings)."""
    out: dict[str, Any] = {}
    for field in attrs.fields(ExecutionPolicy):
        value = getattr(policy, field.name)
        out[field.name] = str(value) if isinstance(value, Decimal) else value
    return out


def decode_policy(data: Mapping[str, Any]) -> ExecutionPolicy:
    """The policy :func:`encode_policy` wrote (unknown keys from a newer writer are ignored)."""
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(ExecutionPolicy):
        if field.name not in data:
            continue
        value = data[field.name]
        kwargs[field.name] = Decimal(value) if isinstance(field.default, Decimal) else value
    return ExecutionPolicy(**kwargs)
