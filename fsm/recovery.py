"""Recovery: rebuild an executor from its journal after the process died, then reconcile.

The rules (also in ``docs/journal.md``):

1. Rebuild. Every group whose journal has no finish record after its last transition is
   rebuilt by replaying its journaled transitions (the audit trail replays deterministically);
   a group that finished within ``policy.linger_seconds`` is rebuilt too, so a late fill still
   reaches it. A replay that does not reproduce the journaled states is a violation.
2. Reconcile orders. Every order of a rebuilt group that was ever sent (its intent is in the
   journal) is looked up at the broker by its external identifier (``order_ref``): status and
   every fill. The answer is applied as a ``Reconciled`` ticket event: fills the journal lacks
   are added (idempotent by fill id), the ticket moves to the broker's status.
3. Intents without a broker order. ``NOT_FOUND`` is final for a process that died: the request
   never arrived. The ticket becomes ``rejected``; nothing is resent under that reference (an
   entry leg failing rolls the group back; an unwind is retried under a fresh reference by the
   normal rules). So no order is ever duplicated. Should such an order surface after all, the
   executor cancels it and unwinds whatever it filled (``AtomicOrderExecutor`` alerts).
4. Broker unavailable. Unsettled orders are marked ``unknown`` and reconciled by the normal
   loop once the broker answers (never resent).
   Orders the journal lacks (its tail was lost): every order the broker holds today under one of
   the journal's session prefixes (``find_orders``) that no journaled group sent is alerted, and
   cancelled while it works; it is never folded into a ticket. References never repeat: every
   process draws a fresh session component, so a lost tail cannot lead to a reused reference.
5. Positions. The broker's positions are compared with what the journal accounts for (open
   groups' ledgers plus finished groups' final positions); a difference is reported and alerted,
   never silently "fixed".
6. Carry on. Groups already terminal but without a finish record are finished; every other
   group is dispatched and scheduled under the normal rules (a deadline that passed while the
   process was down rolls it back at once).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.errors import BrokerUnavailable
from atomic_orders.fsm.events import BrokerStatus, Fill, Reconciled, SubmissionUnknown, Submit, TicketEvent
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor_report import ExecutorStats
from atomic_orders.fsm.group import AtomicOrderGroup
from atomic_orders.fsm.journal.codec import decode_audit, decode_event, decode_group, decode_policy, event_fills
from atomic_orders.fsm.journal.store import Journal
from atomic_orders.fsm.ticket import NEW, UNKNOWN, UNSETTLED_STATES

if TYPE_CHECKING:
    from atomic_orders.fsm.ports import ExecutionBackend

__all__ = ["RecoveryHost", "RecoveryReport", "recover_executor"]


class RecoveryHost(Protocol):
    """What recovery needs of the executor it rebuilds, and nothing more.

    :class:`~atomic_orders.fsm.executor.AtomicOrderExecutor` implements it (its methods marked
    "for recovery"); recovery reads and changes the executor only through these, so the two modules
    do not import each other. Times are timezone-aware datetimes of the executor's clock.
    """

    @property
    def clock(self) -> Clock:
        """The executor's clock."""
        ...

    @property
    def id_prefix(self) -> str:
        """The prefix of every group id the executor issues (``G`` by default)."""
        ...

    @property
    def stats(self) -> ExecutorStats:
        """The executor's counters (recovery counts its groups, reconciliations and outages there)."""
        ...

    def reserve_group_ids(self, up_to: int) -> None:
        """Never issue a group id whose sequence number is ``up_to`` or below (the journal holds them)."""
        ...

    def restore_group(self, group: AtomicOrderGroup, started: dt.datetime, sent_at: Mapping[str, dt.datetime],
                      first_fill: dt.datetime | None) -> None:
        """Hold a rebuilt group with its timings (start, each order's send, first fill); route its orders."""
        ...

    def apply_ticket_event(self, group: AtomicOrderGroup, order_ref: str, event: TicketEvent) -> bool:
        """Apply a ticket event (a broker record, an outage) to one of the group's orders."""
        ...

    def cancel_orphan(self, order_ref: str) -> None:
        """Cancel an order of ours the broker works that no group owns (retried while it cannot)."""
        ...

    def alert(self, text: str) -> None:
        """Raise an alert."""
        ...

    def record_violation(self, text: str) -> None:
        """Record an invariant violation."""
        ...

    def mark_finished(self, group_id: str, finished_at: dt.datetime | None = None) -> None:
        """A group finished before the crash: not held (no time), or held until it is released."""
        ...

    def resume_group(self, group: AtomicOrderGroup, now: dt.datetime) -> None:
        """Carry a restored group on under the normal rules: finish it if terminal, else dispatch it."""
        ...

    def commit_journal(self) -> None:
        """A decision point: make the transitions so far durable."""
        ...


_Host = TypeVar("_Host", bound=RecoveryHost)


@attrs.frozen
class RecoveryReport:
    """What recovery found and did."""

    #: Groups rebuilt from the journal (unfinished plus recently finished).
    groups_rebuilt: int
    #: Groups that were not terminal when the process died.
    groups_unfinished: tuple[str, ...]
    #: Orders looked up at the broker by external identifier.
    orders_reconciled: int
    #: Intents the broker never received (abandoned as rejected, never resent).
    not_found: tuple[str, ...]
    #: Fills the broker reported that the journal did not hold (they happened while down).
    fills_recovered: int
    #: The broker could not answer: these orders are ``unknown`` and reconciled later.
    deferred: tuple[str, ...]
    #: Replays that did not reproduce the journaled transitions (must be empty).
    replay_mismatches: tuple[str, ...]
    #: Broker position minus journaled position, per OCC symbol (must be empty).
    unexplained_exposure: dict[str, int]
    positions_checked: bool
    #: Broker orders carrying this journal's session prefixes that the journal lacks (alerted;
    #: the working ones cancelled).
    unjournaled: tuple[str, ...] = ()
    #: Whether that lookup ran: ``done``, or why not.
    unjournaled_lookup: str = "done"
    #: Groups that had finished (a finish record) and left their final state when their orders
    #: were reconciled: a late fill or a broker record that disagrees (alerted; must be empty
    #: when the broker agrees with the journal).
    reopened: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """A plain-text summary."""
        out = [
            f"  groups rebuilt       {self.groups_rebuilt:>6}   "
            f"({len(self.groups_unfinished)} unfinished at the crash)",
            f"  orders reconciled    {self.orders_reconciled:>6}   (by external identifier)",
            f"  intents not found    {len(self.not_found):>6}   (abandoned as rejected, never resent)",
            f"  fills recovered      {self.fills_recovered:>6}   (made by the broker while the process was down)",
            f"  deferred (unknown)   {len(self.deferred):>6}   (broker unavailable: reconciled by the normal loop)",
            f"  replay mismatches    {len(self.replay_mismatches):>6}   (must be 0)",
            f"  finished, re-opened  {len(self.reopened):>6}   (a late fill or a disagreeing broker record; "
            "0 when the broker agrees with the journal)",
        ]
        out.extend(f"    {gid}" for gid in self.reopened)
        if self.unjournaled_lookup == "done":
            out.append(f"  orders not journaled {len(self.unjournaled):>6}   (our prefix at the broker, lacking from "
                       "the journal: alerted, working ones cancelled; must be 0)")
            out.extend(f"    {ref}" for ref in self.unjournaled)
        else:
            out.append(f"  orders not journaled  not looked up ({self.unjournaled_lookup})")
        if self.positions_checked:
            out.append(f"  unexplained exposure {len(self.unexplained_exposure):>6}   (broker positions the journal "
                       "does not account for; must be 0)")
            for occ, qty in sorted(self.unexplained_exposure.items()):
                out.append(f"    {occ}: {qty:+d}")
        else:
            out.append("  positions            not checked (the broker did not answer)")
        return out


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def rebuild_group(contents_definition: Mapping[str, Any], trail: list[dict[str, Any]]) -> tuple[AtomicOrderGroup,
                                                                                               list[str]]:
    """Replay a group's journaled transitions; return it and any mismatch with the journal."""
    group = decode_group(contents_definition).replay([decode_audit(r) for r in trail])
    mismatches: list[str] = []
    if len(group.audit) != len(trail):
        mismatches.append(f"group {group.group_id}: replay gave {len(group.audit)} transitions, journal has "
                          f"{len(trail)}")
    for i, (rec, row) in enumerate(zip(group.audit, trail, strict=False)):
        if (rec.source, rec.trigger, rec.dest) != (row["source"], row["trigger"], row["dest"]):
            mismatches.append(f"group {group.group_id}: transition {i} replays {rec.source}-{rec.trigger}->"
                              f"{rec.dest}, journal says {row['source']}-{row['trigger']}->{row['dest']}")
            break
    return group, mismatches


def _submit_times(group: AtomicOrderGroup) -> dict[str, dt.datetime]:
    out: dict[str, dt.datetime] = {}
    for rec in group.audit:
        if rec.order_ref is not None and isinstance(rec.ticket_event, Submit):
            out.setdefault(rec.order_ref, rec.ticket_event.time)
    return out


def recover_executor(
    cls: Callable[..., _Host],
    journal: Journal,
    backend: ExecutionBackend,
    policy: ExecutionPolicy | None,
    kwargs: Mapping[str, Any],
) -> tuple[_Host, RecoveryReport]:
    """The implementation of :meth:`AtomicOrderExecutor.recover` (see the module docstring).

    ``cls(backend, policy, journal=journal, **kwargs)`` makes the executor to rebuild (a
    :class:`RecoveryHost`); ``policy`` None takes the policy of the journal's latest group.
    """
    contents = journal.contents
    if policy is None:
        last = max(contents.groups.values(), key=lambda g: g["seq"], default=None)
        policy = decode_policy(last["policy"]) if last is not None else ExecutionPolicy()
    executor = cls(backend, policy, journal=journal, **kwargs)
    journal.start_session("recover", {"backend": getattr(backend, "name", "backend"),
                                      "records": contents.records})
    now = executor.clock.now()
    linger = dt.timedelta(seconds=policy.linger_seconds)

    # 1. Rebuild.
    rebuilt: list[AtomicOrderGroup] = []
    unfinished: list[str] = []
    mismatches: list[str] = []
    finished_at: dict[str, dt.datetime] = {}
    expected: Counter[str] = Counter()
    top = 0
    prefix = executor.id_prefix
    #: The session components of this journal's groups (``G`` + session + 6 digits): the orders
    #: this journal's processes sent carry one of them; other processes' orders never do.
    sessions: set[str] = set()
    for gid, info in contents.groups.items():
        tail = gid[len(prefix):]
        if gid.startswith(prefix) and len(tail) >= 6 and tail[-6:].isdigit():
            top = max(top, int(tail[-6:]))
            sessions.add(tail[:-6])
        trail = contents.transitions.get(gid, [])
        done = contents.is_finished(gid)
        if done:
            fin = contents.finishes[gid][-1]
            finished_at[gid] = _parse(fin["time"])
            if now - finished_at[gid] > linger:
                executor.mark_finished(gid)
                expected.update({k: int(v) for k, v in fin["summary"].get("residual_exposure", {}).items()})
                continue
        group, bad = rebuild_group(info["definition"], trail)
        mismatches.extend(bad)
        rebuilt.append(group)
        if not done:
            unfinished.append(gid)
    executor.reserve_group_ids(top)
    for text in mismatches:
        executor.record_violation(f"recovery: {text}")

    # Register the groups with the executor (routes, clocks) before any event reaches them.
    sent: list[tuple[str, AtomicOrderGroup]] = []
    sent_at: dict[str, dt.datetime] = {}
    for group in rebuilt:
        start = next((r.time for r in group.audit if r.trigger == "start"), group.created_at or now)
        submits = _submit_times(group)
        sent_at.update(submits)
        fills = [f.time for t in group.tickets for f in t.fills]
        executor.restore_group(group, start, submits, min(fills) if fills else None)
        sent.extend((t.order_ref, group) for t in group.tickets if t.state != NEW)
    # Fills the journal holds: the replayed tickets' plus fills of broker events committed before
    # the crash whose transitions were not (the backend must not report those again under new ids).
    known: dict[str, dict[str, Fill]] = {}
    for ref, group in sent:
        known[ref] = {f.fill_id: f for f in group.ticket(ref).fills}
    for row in contents.broker_events:
        bucket = known.get(row["order_ref"])
        if bucket is not None:
            for fill in event_fills(decode_event(row["event"])):
                bucket.setdefault(fill.fill_id, fill)
    if sent:
        backend.adopt_orders([(group.ticket(ref).to_request(), sent_at.get(ref, now),
                               tuple(known[ref].values())) for ref, group in sent])

    # 2-4. Reconcile every order ever sent.
    not_found: list[str] = []
    deferred: list[str] = []
    fills_before = {ref: len(group.ticket(ref).fills) for ref, group in sent}
    if sent:
        try:
            reports = backend.reconcile([ref for ref, _ in sent])
        except BrokerUnavailable as err:
            reports = {}
            for ref, group in sent:
                if group.ticket(ref).state in UNSETTLED_STATES and group.ticket(ref).state != UNKNOWN:
                    executor.apply_ticket_event(group, ref,
                                                SubmissionUnknown(now, f"recovery: broker unavailable ({err})"))
                    deferred.append(ref)
            executor.stats.reconcile_failures += 1
        for ref, group in sent:
            report = reports.get(ref)
            if report is None:
                continue
            if report.status is BrokerStatus.NOT_FOUND and group.ticket(ref).state in UNSETTLED_STATES:
                not_found.append(ref)
            executor.stats.reconciliations += 1
            executor.apply_ticket_event(group, ref, Reconciled(now, report.status, tuple(report.fills),
                                                              report.broker_order_id, report.filled_quantity,
                                                              fills_may_lag=report.fills_may_lag))
    fills_recovered = sum(len(group.ticket(ref).fills) - fills_before[ref] for ref, group in sent)
    reopened = tuple(g.group_id for g in rebuilt
                     if g.group_id in finished_at and g.state != contents.finishes[g.group_id][-1]["state"])

    # 2b. Orders the journal lacks (a lost journal tail): today's broker orders carrying one of this
    # journal's session prefixes that no journaled group sent. Never adopted into a ticket (we do
    # not know what they were for): a working one is cancelled, every one is alerted, and what
    # they filled shows in the positions check below.
    journaled = {ref for ref, _ in sent} | {str(row["order_ref"]) for row in contents.broker_events}
    journaled |= set(contents.intents)
    unjournaled: list[str] = []
    lookup = "done"
    for session in sorted(sessions):
        try:
            found = backend.find_orders(prefix + session)
        except NotImplementedError:
            lookup = "not supported by the backend"
            break
        except BrokerUnavailable:
            lookup = "the broker did not answer"
            break
        for ref, report in sorted(found.items()):
            if ref in journaled or ref in unjournaled:
                continue
            unjournaled.append(ref)
            live = report.status in (BrokerStatus.WORKING, BrokerStatus.PARTIALLY_FILLED)
            executor.alert(f"recovery: order {ref} carries this journal's prefix but the journal lacks it: "
                           f"{report.status.value}, {report.broker_filled} filled"
                           + ("; cancelling it" if live else ""))
            if live:
                executor.cancel_orphan(ref)  # retried on the timers while the broker cannot take it

    # 5. Positions.
    for group in rebuilt:
        expected.update({s.occ: q for s, q in group.ledger.positions().items()})
    unexplained: dict[str, int] = {}
    checked = True
    try:
        held = {s.occ: q for s, q in backend.positions().items() if q}
    except BrokerUnavailable:
        checked = False
        held = {}
    if checked:
        for occ in sorted(set(held) | set(expected)):
            diff = held.get(occ, 0) - expected.get(occ, 0)
            if diff:
                unexplained[occ] = diff
        if unexplained:
            executor.alert(f"recovery: broker positions the journal does not account for: {unexplained}")

    # 6. Carry on under the normal rules.
    for group in rebuilt:
        gid = group.group_id
        if group.is_terminal and gid in finished_at:
            executor.mark_finished(gid, finished_at[gid])  # held until released after the linger
        else:
            executor.resume_group(group, now)  # one that finished while the process was down finishes now
    executor.commit_journal()
    journal.release_contents()
    result = RecoveryReport(
        groups_rebuilt=len(rebuilt),
        groups_unfinished=tuple(unfinished),
        orders_reconciled=len(sent),
        not_found=tuple(not_found),
        fills_recovered=fills_recovered,
        deferred=tuple(deferred),
        replay_mismatches=tuple(mismatches),
        unexplained_exposure=unexplained,
        positions_checked=checked,
        unjournaled=tuple(unjournaled),
        unjournaled_lookup=lookup,
        reopened=reopened,
    )
    return executor, result
