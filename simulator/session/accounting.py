"""What one finished group did and cost, read from the group itself when it settles.

Computed once per finished group (off the per-event path): why it rolled back or failed as a
stable category (:data:`~.records.REASONS`), the cash of its entry and unwind fills in dollars,
its slippage in dollars, and its anomalies, as a :class:`~.records.GroupRecord`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from atomic_orders.fsm.executor_report import GroupSummary
from atomic_orders.fsm.group import AtomicOrderGroup
from atomic_orders.fsm.ticket import OrderTicket
from atomic_orders.simulator.session.records import CONTRACT_MULTIPLIER, GroupRecord

__all__ = ["anomaly_count", "fill_cash", "group_record", "reason_of"]

#: Longest reason detail kept (the category is the stable part; the detail is for a human).
DETAIL_CHARS = 200
_CENT = Decimal("0.01")
#: How an entry order that ended short ended -> the category.
_SHORT_END = {"rejected": "leg_rejected", "canceled": "leg_cancelled", "expired": "leg_expired"}
#: Rollback reasons as the group machine words them (fsm/group.py) -> the category.
_PREFIXES = (("deadline", "timeout"), ("submit_failed", "submit_failed"), ("abort", "aborted"),
             ("re-opened", "reopened"), ("broker over-filled", "overfilled"))


def fill_cash(tickets: Iterable[OrderTicket]) -> Decimal:
    """Dollars received (+) or paid (-) for the fills of ``tickets``.

    A combo fill's price is the signed net per strategy unit (+ = debit, fsm/events.py Fill); a
    single-leg fill's price is the option's, paid on a buy and received on a sell. Each is times
    the quantity filled and :data:`CONTRACT_MULTIPLIER`, in cents (prices are in ticks: exact).
    """
    total = Decimal(0)
    for t in tickets:
        sign = 1 if t.is_combo else t.legs[0].side.sign
        total -= sign * sum((f.quantity * f.price for f in t.fills), Decimal(0))
    return (total * CONTRACT_MULTIPLIER).quantize(_CENT)


def anomaly_count(group: AtomicOrderGroup) -> int:
    """Anomaly events of the group: late, over- or conflicting fills on its orders, and broker
    events its machines could not apply. The one definition the session report counts."""
    return len(group.anomalies) + sum(len(t.anomalies) for t in (*group.entry_tickets, *group.unwind_tickets))


def _short(detail: str) -> str:
    return detail if len(detail) <= DETAIL_CHARS else detail[: DETAIL_CHARS - 3] + "..."


def reason_of(group: AtomicOrderGroup, state: str) -> tuple[str | None, str | None]:
    """``(category, detail)`` of why the group ended in ``state``; ``(None, None)`` when committed."""
    if state == "committed":
        return None, None
    if state == "invalid":
        return "invalid", _short("; ".join(str(e) for e in group.validation_errors) or "refused")
    why = group.rollback_reason or ""
    if state == "failed":
        # freeze_residual words the failure in its alert; the rollback reason says what came before.
        failure = next((a.split(" FAILED: ", 1)[1].split("; residual", 1)[0]
                        for a in reversed(group.alerts) if " FAILED: " in a), "")
        category = ("broker_disagreement" if failure.startswith("broker record disputed")
                    else "unwind_exhausted" if failure.startswith("unwind retries exhausted") else "other")
        return category, _short(f"{failure} (after: {why})" if why and why != failure else failure or why)
    for prefix, category in _PREFIXES:
        if why.startswith(prefix):
            return category, _short(why)
    if why.startswith("leg ended short"):
        for t in group.entry_tickets:
            if t.state in _SHORT_END and t.quantity_filled < t.quantity:
                return _SHORT_END[t.state], _short(f"{why}; {t.order_ref} {t.state} with {t.quantity_filled}"
                                                   f" of {t.quantity} filled")
    return "other", _short(why) if why else None


def group_record(group: AtomicOrderGroup, summary: GroupSummary, *, submitted_at: float | None,
                 settled_at: float | None) -> GroupRecord:
    """The record of a group that just finished (times: simulated seconds from the open).

    Fees are None: no backend of the session reports them per fill. Slippage is measured on
    committed groups only (the executor's ``slippage_per_unit``), times quantity and multiplier.
    """
    reason, detail = reason_of(group, summary.state)
    slip = summary.slippage_per_unit
    return GroupRecord(
        group=summary.group_id,
        strategy=summary.strategy,
        mode=summary.mode,
        quantity=summary.quantity,
        outcome=summary.state,
        reason=reason,
        reason_detail=detail,
        submitted_at=submitted_at,
        settled_at=settled_at,
        settle_seconds=None if summary.settle_seconds is None else round(summary.settle_seconds, 6),
        entry=fill_cash(group.entry_tickets),
        unwind=fill_cash(group.unwind_tickets),
        fees=None,
        # per unit x quantity undoes the executor's division; cents absorb its rounding
        slippage=None if slip is None else (slip * summary.quantity * CONTRACT_MULTIPLIER).quantize(_CENT),
        fills=summary.fills,
        orders=sum(1 for t in (*group.entry_tickets, *group.unwind_tickets) if t.state != "new"),
        unwind_orders=summary.unwind_orders,
        residual=dict(summary.residual_exposure) if summary.state == "failed" else {},
        flagged=summary.flagged,
        anomalies=anomaly_count(group),
        alerts=len(summary.alerts),
    )
