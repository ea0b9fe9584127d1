"""What the executor reports: a finished group's summary and the executor's counters.

Its own module so that what reads a report (the journal recorder, recovery, the session runner,
an algorithm's ``on_finished``) need not import the executor that writes it: the executor imports
this module, nothing here imports the executor. ``atomic_orders.fsm.executor`` re-exports both
names for its callers.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = ["ExecutorStats", "GroupSummary"]


@attrs.frozen
class GroupSummary:
    """What remains of a finished group once it is released from memory."""

    group_id: str
    strategy: str
    mode: str
    quantity: int
    state: str
    rollback_reason: str | None
    fills: int
    unwind_orders: int
    residual_exposure: dict[str, int]
    #: Seconds from the first fill of the group to its terminal state (None without fills).
    settle_seconds: float | None
    #: Price paid beyond the mid at submission, per strategy unit (positive = worse than mid).
    slippage_per_unit: Decimal | None
    anomalies: int
    alerts: tuple[str, ...]
    violations: tuple[str, ...]
    flagged: bool


@attrs.define
class ExecutorStats:
    """Counters of what the executor did."""

    groups: int = 0
    invalid: int = 0
    orders_sent: int = 0
    cancels_sent: int = 0
    updates_sent: int = 0
    broker_events: int = 0
    anomalies: int = 0
    stray_events: int = 0
    stray_duplicates: int = 0
    reconciliations: int = 0
    reconcile_failures: int = 0
    submissions_unknown: int = 0
    submissions_refused: int = 0
    invariant_violations: int = 0
    #: Cancels sent for orders that surfaced at the broker after being given up as not found.
    surfaced_cancels: int = 0
    #: Questions to the broker before a group settles (invariant 7) and those it answered with a
    #: record that disagreed with our fills.
    broker_audits: int = 0
    broker_disagreements: int = 0
    #: Cancels the broker refused (the order was closed, or not cancelable): each leads to a
    #: reconciliation, never straight to the same request again.
    cancels_refused: int = 0
    alerts: int = 0
    #: Pricing attempts that found no usable quote (missing, NaN, crossed...): retried, bounded.
    quote_misses: int = 0
    #: Errors outside the backend contract caught at the boundary (a bad answer, a backend bug):
    #: logged with the record they concern and counted; the loop keeps running.
    boundary_errors: int = 0
    #: Reconciliations that left an order out (a backend may, on purpose, for a reference it has
    #: no readable record of): asked again on a backoff, never read as "nothing happened".
    unanswered: int = 0
