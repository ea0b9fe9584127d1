"""JournalRecorder: what the executor's hooks write, and when.

The executor calls it at a handful of points (see ``docs/journal.md``):

* :meth:`intent` -- a ticket recorded its ``Submit``: the group's pending transitions and the
  intent (order_ref + the full request) are COMMITTED, then the request may leave;
* :meth:`broker_events` -- a batch arrived from the backend: COMMITTED before the machines see it;
* :meth:`touch` -- a group changed: its new transitions are staged at the next commit;
* :meth:`finished` -- a group reached a terminal state: its finish record is staged;
* :meth:`commit` -- a decision point (end of an event batch, a timer round, ``execute``).

It also names the crash points the crash test kills the process at (:meth:`point`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor_report import GroupSummary
from atomic_orders.fsm.group import AtomicOrderGroup
from atomic_orders.fsm.journal.codec import encode_audit, encode_event, encode_group, encode_policy, encode_request
from atomic_orders.fsm.journal.store import Journal
from atomic_orders.fsm.orders import BrokerEvent, OrderRequest

__all__ = ["CRASH_POINTS", "JournalRecorder", "encode_summary"]

#: The crash-relevant points the executor passes, in the order of one order's life.
CRASH_POINTS: tuple[str, ...] = (
    "intent_committed",  # the intent is durable; the request has not left yet
    "submit_returned",  # the broker answered the POST; the answer is not journaled yet
    "events_polled",  # broker events arrived; not committed yet
    "events_committed",  # broker events are durable; the machines have not seen them yet
    "decision_applied",  # the machines acted; their transitions are not committed yet
    "decision_committed",  # a decision point's transitions are durable
)


#: Staged rows that force a decision commit even within ``batch_seconds``.
_BATCH_ROWS = 2048


def encode_summary(summary: GroupSummary) -> dict[str, Any]:
    """A finished group's summary as JSON (money as strings)."""
    out: dict[str, Any] = {}
    for key, value in attrs.asdict(summary, recurse=False).items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


class JournalRecorder:
    """Writes one executor's journal (see the module docstring)."""

    def __init__(self, journal: Journal, policy: ExecutionPolicy) -> None:
        self.journal = journal
        self._policy = encode_policy(policy)
        self._dirty: dict[str, AtomicOrderGroup] = {}

    def point(self, name: str) -> None:
        """Pass a crash point (the journal's ``on_point`` hook sees it)."""
        self.journal.point(name)

    def touch(self, group: AtomicOrderGroup) -> None:
        """The group changed: stage its new transitions at the next commit."""
        self._dirty[group.group_id] = group

    def _sync(self, group: AtomicOrderGroup) -> None:
        j = self.journal
        gid = group.group_id
        if not j.has_group(gid):
            created = group.created_at or group.audit[0].time
            j.group(gid, created, group.strategy.value, group.mode.value, group.quantity, encode_group(group),
                    self._policy)
        done = j.audit_written(gid)
        if done < len(group.audit):
            j.transitions(gid, [encode_audit(r) for r in group.audit[done:]])

    def _sync_dirty(self) -> None:
        dirty = self._dirty
        if dirty:
            for group in dirty.values():
                self._sync(group)
            dirty.clear()

    def intent(self, group: AtomicOrderGroup, request: OrderRequest, now: dt.datetime) -> None:
        """Commit the group's transitions and the intent; the request has not left yet."""
        self._dirty.pop(group.group_id, None)
        self._sync_dirty()
        self._sync(group)
        self.journal.intent(request.order_ref, group.group_id, request.purpose.value, now, encode_request(request))
        self.journal.commit()
        self.journal.point("intent_committed")

    def broker_events(self, events: Sequence[BrokerEvent], owner: Callable[[str], str | None]) -> None:
        """Commit a batch of broker events as they arrived, before anything acts on them."""
        j = self.journal
        for be in events:
            event = be.event
            j.broker_event(be.order_ref, owner(be.order_ref), event.trigger, event.time, encode_event(event))
        j.point("events_polled")
        self._sync_dirty()
        j.commit()
        j.point("events_committed")

    def finished(self, group: AtomicOrderGroup, summary: GroupSummary, now: dt.datetime) -> None:
        """Stage the group's last transitions and its finish record."""
        self._dirty.pop(group.group_id, None)
        self._sync(group)
        self.journal.finish(group.group_id, now, group.state, encode_summary(summary))

    def commit(self) -> None:
        """A decision point: stage every changed group's transitions and commit.

        Within the journal's ``batch_seconds`` of the last commit (and below ``_BATCH_ROWS``
        staged rows) the transitions wait for the next commit instead: they are not write-ahead
        records (the intent and the broker events are) and reconciliation re-derives them.
        """
        j = self.journal
        if not self._dirty and not j.pending:
            return
        if j.batch_seconds and j.pending < _BATCH_ROWS and time.monotonic() - j.last_commit < j.batch_seconds:
            return
        self.journal.point("decision_applied")
        self._sync_dirty()
        self.journal.commit()
        self.journal.point("decision_committed")
