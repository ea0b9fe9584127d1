"""The session event log's own lines: the header that opens it and one record per group.

``atomic-orders simulate --events PATH`` writes one JSON object per line. The first is a
:class:`SessionHeader` (``"kind": "session"``), then the broker's lines, then one
:class:`GroupRecord` (``"kind": "group"``) per group in submission order, and last the session
report (``"kind": "report"``, :meth:`SessionReport.to_json`). Whatever reads the log (the HTML
and CSV reports) rebuilds these records with ``from_json``, which refuses a bad value naming the
field (:class:`~atomic_orders.fsm.errors.ValidationError`).

Money is :class:`~decimal.Decimal` in dollars, written as a string: a price per unit times the
:data:`CONTRACT_MULTIPLIER` times the contracts (or strategy units) filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.strategy import StrategyKind

__all__ = [
    "CONTRACT_MULTIPLIER",
    "LOG_VERSION",
    "MAX_DOLLARS",
    "OUTCOMES",
    "REASONS",
    "GroupRecord",
    "SessionHeader",
]

#: Version of the event log's session/group/report lines.
LOG_VERSION = 1
#: Dollars per point of option price for one contract: 100 shares per standard equity/index
#: option (TastyTrade's positions report ``multiplier`` 100; LEAN's contract multiplier).
CONTRACT_MULTIPLIER = 100
#: Money read back from a log is refused at or beyond this many dollars (either sign).
MAX_DOLLARS = Decimal(10) ** 12
#: How a group ends.
OUTCOMES = ("committed", "rolled_back", "failed", "invalid")
#: Short, stable categories of why a group rolled back, failed or was refused:
#: ``timeout`` (not filled by the deadline), ``leg_rejected`` / ``leg_cancelled`` /
#: ``leg_expired`` (an entry order ended short that way), ``overfilled`` (the broker filled more
#: than ordered), ``submit_failed`` (an entry order could not be placed), ``aborted``,
#: ``reopened`` (a fill after the group had settled), ``broker_disagreement`` (failed: the
#: broker's record kept counting other fills than ours), ``unwind_exhausted`` (failed: the
#: unwinds kept failing), ``invalid`` (refused before anything was sent), ``other``.
REASONS = ("timeout", "leg_rejected", "leg_cancelled", "leg_expired", "overfilled", "submit_failed", "aborted",
           "reopened", "broker_disagreement", "unwind_exhausted", "invalid", "other")

_MODES = tuple(m.value for m in ExecutionMode)
_STRATEGIES = tuple(s.value for s in StrategyKind)


def _int(d: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    value = d.get(name)
    if type(value) is not int or value < minimum:
        raise ValidationError(name, value, f"expected an int >= {minimum}")
    return value


def _str(d: Mapping[str, Any], name: str, choices: tuple[str, ...] | None = None, *, null: bool = False) -> Any:
    value = d.get(name)
    if value is None and null:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(name, value, "expected a non-empty string" + (" or null" if null else ""))
    if choices is not None and value not in choices:
        raise ValidationError(name, value, f"expected one of {', '.join(choices)}")
    return value


def _money_or_none(d: Mapping[str, Any], name: str) -> Decimal | None:
    return None if d.get(name) is None else _money(d, name)


def _money(d: Mapping[str, Any], name: str) -> Decimal:
    value = d.get(name)
    # Strings only: a float would already have lost the cents.
    if not isinstance(value, str):
        raise ValidationError(name, value, "expected dollars as a decimal string")
    try:
        money = Decimal(value)
    except InvalidOperation:
        raise ValidationError(name, value, "not a decimal number") from None
    if not money.is_finite():
        raise ValidationError(name, value, "must be finite")
    # A bound far above any session's money: "1e999999999" is finite, but adding it overflows
    # the decimal context and formatting it writes a billion digits.
    if money.copy_abs() >= MAX_DOLLARS:  # copy_abs: abs() would round, and overflow, in the context
        raise ValidationError(name, value, f"expected dollars below {MAX_DOLLARS:,} in magnitude")
    return money


def _seconds(d: Mapping[str, Any], name: str) -> float | None:
    value = d.get(name)
    if value is None:
        return None
    if type(value) not in (int, float) or not 0 <= value < float("inf"):
        raise ValidationError(name, value, "expected simulated seconds >= 0, or null")
    return float(value)


def _bool(d: Mapping[str, Any], name: str) -> bool:
    value = d.get(name)
    if type(value) is not bool:
        raise ValidationError(name, value, "expected true or false")
    return value


def _kind(d: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ValidationError("line", d, "expected a JSON object")
    if d.get("kind") != kind:
        raise ValidationError("kind", d.get("kind"), f"expected {kind!r}")
    return d


@attrs.frozen
class SessionHeader:
    """The first line of a session's event log: what the session was asked to be."""

    seed: int
    profile: str
    mode: str
    backend: str
    http_faults: str
    groups: int
    version: int = LOG_VERSION

    def to_json(self) -> dict[str, Any]:
        """``{"kind": "session", "version": 1, "seed": int, "profile", "mode", "backend", "http_faults", "groups"}``."""
        return {"kind": "session", "version": self.version, "seed": self.seed, "profile": self.profile,
                "mode": self.mode, "backend": self.backend, "http_faults": self.http_faults, "groups": self.groups}

    @classmethod
    def from_json(cls, data: Any) -> SessionHeader:
        """The header from its JSON line; raises ValidationError naming a bad field."""
        d = _kind(data, "session")
        version = _int(d, "version", 1)
        if version != LOG_VERSION:
            raise ValidationError("version", version, f"this reader knows version {LOG_VERSION}")
        seed = d.get("seed")
        if type(seed) is not int:
            raise ValidationError("seed", seed, "expected an int")
        return cls(seed=seed, profile=_str(d, "profile"), mode=_str(d, "mode", _MODES), backend=_str(d, "backend"),
                   http_faults=_str(d, "http_faults"), groups=_int(d, "groups"), version=version)


@attrs.frozen
class GroupRecord:
    """How one group ended and what it cost, from its own fills.

    Times are simulated seconds from the session's open. Money is dollars (Decimal):
    ``entry`` is the cash of the entry fills (+ = credit received, - = debit paid), ``unwind``
    the cash of the unwind fills (same sign convention: selling back a long receives, buying
    back a short pays), ``fees`` what the backend charged (None: the backend reports none),
    ``pnl`` = entry + unwind - fees at fill prices (for a committed group: the credit or debit
    of the open position; for a rolled-back one: what the round trip cost). ``slippage`` is the
    entry's cost beyond the mid at submission (+ = worse for us), None where it cannot be
    measured (a group that did not commit). ``residual`` is the exposure left by a failed
    group (OCC symbol -> signed contracts).
    """

    group: str
    strategy: str
    mode: str
    quantity: int
    outcome: str
    reason: str | None
    reason_detail: str | None
    submitted_at: float | None
    settled_at: float | None
    settle_seconds: float | None
    entry: Decimal
    unwind: Decimal
    fees: Decimal | None
    slippage: Decimal | None
    fills: int
    orders: int
    unwind_orders: int
    residual: Mapping[str, int]
    flagged: bool
    anomalies: int
    alerts: int

    @property
    def pnl(self) -> Decimal:
        """entry + unwind - fees, in dollars (fees not reported count as 0)."""
        return self.entry + self.unwind - (self.fees or 0)

    @property
    def round_trip_cost(self) -> Decimal:
        """What undoing the group cost (<= 0 normally): its P&L when it unwound anything, else 0."""
        return self.pnl if self.unwind_orders else Decimal(0)

    def to_json(self) -> dict[str, Any]:
        """The group line of the event log (money as decimal strings)."""
        return {
            "kind": "group", "group": self.group, "strategy": self.strategy, "mode": self.mode,
            "quantity": self.quantity, "outcome": self.outcome, "reason": self.reason,
            "reason_detail": self.reason_detail, "submitted_at": self.submitted_at, "settled_at": self.settled_at,
            "settle_seconds": self.settle_seconds, "entry": str(self.entry), "unwind": str(self.unwind),
            "fees": None if self.fees is None else str(self.fees), "pnl": str(self.pnl),
            "slippage": None if self.slippage is None else str(self.slippage), "fills": self.fills,
            "orders": self.orders, "unwind_orders": self.unwind_orders, "residual": dict(self.residual),
            "flagged": self.flagged, "anomalies": self.anomalies, "alerts": self.alerts,
        }

    @classmethod
    def from_json(cls, data: Any) -> GroupRecord:
        """The record from its JSON line; raises ValidationError naming a bad field."""
        d = _kind(data, "group")
        residual = d.get("residual")
        if not isinstance(residual, Mapping) or not all(
                isinstance(k, str) and k and type(v) is int for k, v in residual.items()):
            raise ValidationError("residual", residual, "expected an object of OCC symbol -> int contracts")
        outcome = _str(d, "outcome", OUTCOMES)
        reason = _str(d, "reason", REASONS, null=True)
        if (reason is None) != (outcome == "committed"):
            raise ValidationError("reason", reason, f"a reason is given exactly when the outcome is not committed"
                                                    f" (outcome {outcome!r})")
        record = cls(
            group=_str(d, "group"), strategy=_str(d, "strategy", _STRATEGIES), mode=_str(d, "mode", _MODES),
            quantity=_int(d, "quantity"), outcome=outcome, reason=reason,
            reason_detail=_str(d, "reason_detail", null=True), submitted_at=_seconds(d, "submitted_at"),
            settled_at=_seconds(d, "settled_at"), settle_seconds=_seconds(d, "settle_seconds"),
            entry=_money(d, "entry"), unwind=_money(d, "unwind"), fees=_money_or_none(d, "fees"),
            slippage=_money_or_none(d, "slippage"), fills=_int(d, "fills"), orders=_int(d, "orders"),
            unwind_orders=_int(d, "unwind_orders"), residual=dict(residual), flagged=_bool(d, "flagged"),
            anomalies=_int(d, "anomalies"), alerts=_int(d, "alerts"),
        )
        if "pnl" in d and _money(d, "pnl") != record.pnl:
            raise ValidationError("pnl", d["pnl"], f"must equal entry + unwind - fees ({record.pnl})")
        return record
