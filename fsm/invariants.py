"""The rollback invariants, as functions that return violations (an empty list means it holds).

1. Terminal means settled: committed => every leg at target; rolled_back => flat;
   failed => ``residual_exposure`` equals what the broker's records count (the ledger, plus units
   a broker record says filled but never delivered) and an alert was raised.
2. No orphans: no order of a terminal group is live (or unknown) at the broker. An ``unknown``
   order whose broker record says it is finished is not live (its quantities are disputed).
3. Conservation: each ticket's filled quantity is the sum of its distinct fills, and the group
   ledger is the signed sum over all its tickets (entry and unwind).
4. Legality: every state change is a row of the machine's declared table.
5. Determinism: replaying the group's audit trail reproduces its state.
6. Exposure bound: no leg holds more than its target, unless the broker over-filled (flagged).
7. Broker agreement: a group settled as ``committed`` or ``rolled_back`` under an executor agrees
   with the broker's own record of every order it sent (status final, filled units equal to the
   fills booked, asked after the last fill), and the broker's count of the group's position is
   the target (committed) or flat (rolled_back). The record comes from the broker (its book,
   TastyTrade's order objects, LEAN's tickets), never from our own event stream.

Each violation text from :func:`check_group` and :func:`check_step` (and :func:`verdict_against`)
starts with the invariant's tag, ``[N name] `` (``[2 no_orphans] G1: committed but O3 is
working``), so a reader counts violations per invariant by :func:`invariant_name`, not by the
wording after the tag. The single-invariant functions return untagged texts.
"""

from __future__ import annotations

import re

from atomic_orders.fsm.group import (
    COMMITTED,
    FAILED,
    GROUP_MACHINE,
    INVALID,
    ROLLED_BACK,
    TERMINAL_STATES,
    AtomicOrderGroup,
)
from atomic_orders.fsm.ledger import ledger_from_tickets
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.fsm.ticket import TICKET_MACHINE

#: Invariant number -> its name, as each violation's tag says it.
NAMES: dict[int, str] = {1: "terminal_settled", 2: "no_orphans", 3: "conservation", 4: "legality",
                         5: "determinism", 6: "exposure_bound", 7: "broker_agreement"}
_TAG = re.compile(r"\[([1-7]) ([a-z_]+)\] ")

_GROUP_CHANGES = GROUP_MACHINE.allowed_changes()
_TICKET_CHANGES = TICKET_MACHINE.allowed_changes()


def terminal_settled(group: AtomicOrderGroup) -> list[str]:
    """Invariant 1."""
    gid, state, out = group.group_id, group.state, []
    if state == COMMITTED:
        for symbol, target in group.targets.items():
            net = group.ledger.net(symbol)
            if net != target:
                out.append(f"{gid}: committed but {symbol.occ} net {net} != target {target}")
        extra = set(group.ledger.positions()) - set(group.targets)
        if extra:
            out.append(f"{gid}: committed but holds symbols outside its legs: {sorted(s.occ for s in extra)}")
    elif state == ROLLED_BACK:
        if not group.ledger.is_flat:
            out.append(f"{gid}: rolled_back but not flat: {_fmt(group.ledger.positions())}")
    elif state == FAILED:
        if group.residual_exposure != group.broker_positions():
            residual, counted = _fmt(group.residual_exposure), _fmt(group.broker_positions())
            out.append(f"{gid}: failed with residual {residual} != the broker's count {counted}")
        if not group.alerts:
            out.append(f"{gid}: failed without an alert")
    elif state == INVALID and group.tickets and any(t.state != "new" for t in group.tickets):
        out.append(f"{gid}: invalid but an order was sent")
    return out


def no_orphans(group: AtomicOrderGroup) -> list[str]:
    """Invariant 2."""
    if group.state not in TERMINAL_STATES:
        return []
    return [
        f"{group.group_id}: {group.state} but {t.order_ref} is {t.state}"
        for t in group.tickets
        if t.is_live
    ] + [
        f"{group.group_id}: {group.state} but the broker's record says {t.order_ref} is {t.broker_record.status.value}"
        for t in group.tickets
        if group.verify_with_broker and t.broker_record is not None and not t.broker_record.final
        and t.broker_record.booked == t.quantity_filled and not t.is_live
    ]


def conservation(group: AtomicOrderGroup) -> list[str]:
    """Invariant 3."""
    out = []
    for t in group.tickets:
        ids = [f.fill_id for f in t.fills]
        if len(ids) != len(set(ids)):
            out.append(f"{t.order_ref}: the same fill id was applied twice")
        total = sum(f.quantity for f in t.fills)
        if t.quantity_filled != total:
            out.append(f"{t.order_ref}: quantity_filled {t.quantity_filled} != sum of distinct fills {total}")
    expected = ledger_from_tickets(group.tickets)
    actual = group.ledger.positions()
    if expected != actual:
        out.append(f"{group.group_id}: ledger {_fmt(actual)} != signed sum of ticket fills {_fmt(expected)}")
    return out


def legality(group: AtomicOrderGroup) -> list[str]:
    """Invariant 4."""
    out = []
    for rec in group.audit:
        if (rec.source, rec.trigger, rec.dest) not in _GROUP_CHANGES:
            out.append(f"{group.group_id}: {rec.source} --{rec.trigger}--> {rec.dest} is not in the table")
    for t in group.tickets:
        for trec in t.order_events:
            if (trec.source, trec.trigger, trec.dest) not in _TICKET_CHANGES:
                out.append(f"{t.order_ref}: {trec.source} --{trec.trigger}--> {trec.dest} is not in the table")
    return out


def replay_matches(group: AtomicOrderGroup) -> list[str]:
    """Invariant 5 (costs a full replay; run it at the end or in tests)."""
    try:
        fresh = group.replay()
    except Exception as err:  # a replay that raises is itself the violation being reported
        return [f"{group.group_id}: replay raised {err!r}"]
    return replay_differences(group, fresh)


def replay_differences(group: AtomicOrderGroup, replayed: AtomicOrderGroup) -> list[str]:
    """How ``replayed`` (driven through ``group``'s audit trail) differs from ``group``: state,
    ledger, tickets. Empty when invariant 5 holds."""
    out = []
    if replayed.state != group.state:
        out.append(f"{group.group_id}: replay state {replayed.state} != {group.state}")
    theirs_pos, mine_pos = replayed.ledger.positions(), group.ledger.positions()
    if theirs_pos != mine_pos:
        out.append(f"{group.group_id}: replay ledger differs: "
                   f"{ {s.occ: q for s, q in theirs_pos.items()} } != { {s.occ: q for s, q in mine_pos.items()} }")
    mine = [(t.order_ref, t.state, t.quantity_filled) for t in group.tickets]
    theirs = [(t.order_ref, t.state, t.quantity_filled) for t in replayed.tickets]
    if mine != theirs:
        out.append(f"{group.group_id}: replay tickets {theirs} != {mine}")
    return out


def exposure_bound(group: AtomicOrderGroup) -> list[str]:
    """Invariant 6."""
    if group.flagged:
        return []
    out = []
    for symbol, net in group.ledger.positions().items():
        target = group.targets.get(symbol, 0)
        lo, hi = min(0, target), max(0, target)
        if not lo <= net <= hi:
            out.append(f"{group.group_id}: {symbol.occ} net {net} outside [0, target {target}] without an over-fill")
    return out


def broker_agreement(group: AtomicOrderGroup) -> list[str]:
    """Invariant 7."""
    if group.state not in (COMMITTED, ROLLED_BACK):
        return []
    gid, out = group.group_id, []
    if group.verify_with_broker:
        for t in group.tickets:
            if t.broker_confirms:
                continue
            rec = t.broker_record
            if rec is None:
                out.append(f"{gid}: {group.state} but the broker was never asked about {t.order_ref}")
            else:
                out.append(f"{gid}: {group.state} but the broker's record of {t.order_ref} is {rec.status.value} "
                           f"{rec.filled} filled (asked at {rec.booked} booked) and we booked {t.quantity_filled}")
    counted = group.broker_positions()
    if group.state == COMMITTED:
        wanted = {s: q for s, q in group.targets.items() if q}
        if counted != wanted:
            out.append(f"{gid}: committed but the broker counts {_fmt(counted)} != target {_fmt(wanted)}")
    elif counted:
        out.append(f"{gid}: rolled_back but the broker counts {_fmt(counted)}")
    return out


def verdict_against(group: AtomicOrderGroup, held: dict[OptionSymbol, int]) -> list[str]:
    """Invariant 7 judged from outside: the group's verdict against what the broker holds for it.

    ``held``: signed contracts per symbol that the broker actually executed for this group (a
    test's broker truth, or an account known to hold nothing else). Committed: the targets;
    rolled_back or invalid: nothing; failed: exactly ``residual_exposure``; and a settled group's
    ledger equals what was executed (no fill lost or invented). Empty when it all holds.
    """
    gid, state, out = group.group_id, group.state, []
    held = {s: q for s, q in held.items() if q}
    wanted = {s: q for s, q in group.targets.items() if q}
    if state == COMMITTED and held != wanted:
        out.append(f"[7 broker_agreement] {gid}: committed but the broker holds {_fmt(held)} != targets {_fmt(wanted)}")
    elif state in (ROLLED_BACK, INVALID) and held:
        out.append(f"[7 broker_agreement] {gid}: {state} but the broker holds {_fmt(held)}")
    elif state == FAILED and group.residual_exposure != held:
        out.append(f"[7 broker_agreement] {gid}: failed with residual {_fmt(group.residual_exposure)} but the broker "
                   f"holds {_fmt(held)}")
    if state in (COMMITTED, ROLLED_BACK) and group.ledger.positions() != held:
        out.append(f"[3 conservation] {gid}: ledger {_fmt(group.ledger.positions())} != executed fills {_fmt(held)}")
    return out


def _tagged(number: int, texts: list[str]) -> list[str]:
    # Only violations pay for the prefix: a holding invariant returns an empty list.
    return [f"[{number} {NAMES[number]}] {t}" for t in texts] if texts else texts


def invariant_name(text: str) -> str | None:
    """The invariant a tagged violation text names (``"no_orphans"`` for ``"[2 no_orphans] ..."``); else None."""
    match = _TAG.match(text)
    return match.group(2) if match is not None and NAMES[int(match.group(1))] == match.group(2) else None


def check_group(group: AtomicOrderGroup, replay: bool = False) -> list[str]:
    """All invariants (replay only when asked: it is the expensive one), each text tagged ``[N name] ``."""
    out = (_tagged(1, terminal_settled(group)) + _tagged(2, no_orphans(group)) + _tagged(3, conservation(group))
           + _tagged(4, legality(group)) + _tagged(6, exposure_bound(group)) + _tagged(7, broker_agreement(group)))
    if replay:
        out += _tagged(5, replay_matches(group))
    return out


def check_step(group: AtomicOrderGroup) -> list[str]:
    """The cheap checks to run after every event: orphans, terminal settlement, exposure bound.

    Conservation and legality walk the whole history, so they run at the end of a group. This
    runs after every broker event, so the common case (a working group inside its bounds) is a
    single pass over the ledger.
    """
    if group.state in TERMINAL_STATES:
        return (_tagged(1, terminal_settled(group)) + _tagged(2, no_orphans(group)) + _tagged(6, exposure_bound(group))
                + _tagged(7, broker_agreement(group)))
    targets = group.targets
    for symbol, net in group.ledger.held.items():
        if net:
            target = targets.get(symbol, 0)
            if (net > target and net > 0) or (net < target and net < 0):
                return _tagged(6, exposure_bound(group))
    return []


def _fmt(positions: dict) -> dict[str, int]:  # type: ignore[type-arg]
    return {s.occ: q for s, q in positions.items()}
