"""``atomic-orders journal show|salvage`` and ``atomic-orders recover``: the journal from the command line.

``journal show --journal PATH`` lists every group with its state and exposure (``--group ID``:
that group's audit trail with its intents and broker events; ``--json [PATH]``: the same as
JSON). A damaged journal is reported (file and problem) and its intact prefix is still shown;
``journal salvage --journal PATH --out NEW`` copies that prefix into a new journal. A file that is
no journal at all (not SQLite, or SQLite without the journal's tables) is refused by every command.

``recover --journal PATH --backend ...`` rebuilds every unfinished group and drives it to a
terminal state:

* ``tastytrade-emulator``: the real TastyTrade client over HTTP to an emulator that kept the
  broker state while the trading process was down (``--url``/``--account``; credentials from
  ``TASTYTRADE_CLIENT_SECRET``/``TASTYTRADE_REFRESH_TOKEN``). An emulator with the emulator-only
  clock routes (``atomic-orders crash serve``) has its virtual time driven from here; one on its
  own real-time clock (``atomic-orders emulate``) is recovered on the wall clock, as the live
  loop does (``atomic-orders live``: polling, every group driven for up to ``--grace`` seconds).
* ``simulated``: the in-process simulator kept NO state after its process ended, so this is a
  rehearsal: a fresh simulator (same seed, clock moved to the journal's last moment) that holds
  what the journal says the broker settled (every order whose ticket was final, with its fills
  and the positions they made) and knows none of the unsettled orders. A finished group stays
  as it finished; every unsettled order reconciles as not found (abandoned, never resent),
  groups holding fills unwind in the fresh market, and fills of orders that were still open are
  not at the fresh broker (reported as unexplained exposure). The rehearsal's decisions are
  written to the journal as a recovery session (the simulated broker is gone: nothing else can
  recover its journal); rehearse on a copy to keep the original. Recover a real session against
  the broker that holds it.

Either way, a group that had finished before recovery and left its final state in it (a late
fill, or a broker record that disagrees with the journal) is listed and makes the exit status 1.

Exit status of ``recover``: 0 when every group ended with no invariant violation (and, against
the emulator, every broker position is accounted for by the journal); 1 otherwise (the report
says what); 2 for a missing, damaged or foreign journal file, missing credentials or an
unreachable emulator.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atomic_orders.fsm.journal import JournalContents, JournalCorrupted, read_journal, salvage
from atomic_orders.fsm.recovery import rebuild_group
from atomic_orders.simulator.cli.options import (
    UserError,
    add_backend,
    add_command,
    add_journal,
    add_json,
    file_path,
    must_exist,
    must_not_exist,
    non_negative_float,
    write_json,
)

if TYPE_CHECKING:
    from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

__all__ = ["add_journal_commands"]


def _read(path: Path, *, allow_prefix: bool, keep_rows: bool = False) -> JournalContents:
    """The journal at ``path`` (``--journal``); a :class:`UserError` for a file that is not a journal.

    The store tells the two apart: a damaged journal still has its ``meta`` table and schema version
    (its intact prefix can be shown and salvaged); a file without them (not SQLite, an empty file,
    another database) holds nothing of a journal, and salvaging it would only make an empty one.
    A damaged journal read without ``allow_prefix`` is a :class:`UserError` naming the damage.
    """
    must_exist(path, "--journal")
    try:
        contents = read_journal(path, allow_prefix=True, keep_rows=keep_rows)
    except JournalCorrupted as err:  # a schema newer than this program's: nothing here can read it
        raise UserError(f"--journal {str(path)!r}: {err.problem}") from None
    if contents.problem is not None and contents.schema_version < 1:
        # The store's wording ends in ": not a journal, or its start is damaged": said once, here.
        reason = contents.problem.split(": not a journal")[0]
        raise UserError(f"--journal: {str(path)!r} is not a journal ({reason})")
    if contents.problem is not None and not allow_prefix:
        raise UserError(str(JournalCorrupted(path, contents.problem, contents.records)))
    return contents


def _exposure(contents: JournalContents, gid: str) -> dict[str, int]:
    if contents.is_finished(gid):
        summary = contents.finishes[gid][-1]["summary"]
        return {k: int(v) for k, v in summary.get("residual_exposure", {}).items() if v}
    group, _ = rebuild_group(contents.groups[gid]["definition"], contents.transitions.get(gid, []))
    return {s.occ: q for s, q in group.ledger.positions().items() if q}


def _short_event(event: dict[str, Any] | None) -> str:
    if not event:
        return ""
    parts = [str(event.get("type"))]
    for key in ("limit_price", "quantity", "price", "fill_id", "status", "broker_order_id", "reason"):
        if event.get(key) not in (None, ""):
            parts.append(f"{key}={event[key]}")
    if event.get("fills"):
        parts.append(f"fills={[f['fill_id'] for f in event['fills']]}")
    return " ".join(parts)


def _emit(json_to: str, data: dict[str, Any]) -> int:
    written = write_json(json_to, data)
    if written is not None:
        print(f"written to {written}")
    return 0


def show(contents: JournalContents, group_id: str | None, json_to: str | None = None) -> int:
    """Print the journal's groups (or one group's audit trail); ``json_to``: JSON to that path, or ``"-"`` stdout.

    Raises :class:`UserError` for a ``group_id`` the journal does not hold.
    """
    if group_id is not None:
        if group_id not in contents.groups:
            raise UserError(f"--group {group_id!r} is not in the journal {str(contents.path)!r}")
        return _show_group(contents, group_id, json_to)
    rows = []
    total: Counter[str] = Counter()
    for gid, info in contents.groups.items():
        definition = info["definition"]
        exposure = _exposure(contents, gid)
        state = contents.last_state(gid) or "pending"
        finished = contents.is_finished(gid)
        if not finished:
            total.update(exposure)
        rows.append({"group": gid, "strategy": definition["strategy"], "mode": definition["mode"],
                     "quantity": definition["quantity"], "state": state, "finished": finished,
                     "orders": sum(1 for i in contents.intents.values() if i["group_id"] == gid),
                     "exposure": exposure})
    open_groups = [r["group"] for r in rows if not r["finished"]]
    if json_to is not None:
        return _emit(json_to, {"path": str(contents.path), "schema_version": contents.schema_version,
                               "records": contents.records, "problem": contents.problem, "groups": rows,
                               "open_groups": open_groups, "open_exposure": dict(total)})
    states = Counter(r["state"] for r in rows)
    print(f"journal {contents.path}: schema v{contents.schema_version}, {contents.records} records, "
          f"{len(contents.sessions)} sessions ({sum(1 for s in contents.sessions if s['kind'] == 'recover')} "
          f"recoveries), {len(rows)} groups, {len(contents.intents)} orders, {len(contents.broker_events)} broker "
          "events")
    print("  states: " + ", ".join(f"{k}={v}" for k, v in sorted(states.items())))
    print(f"  unfinished groups: {len(open_groups)}   open exposure: {dict(sorted(total.items())) or '{}'}")
    print()
    print(f"  {'group':<10} {'strategy':<12} {'mode':<7} {'qty':>3} {'state':<12} {'orders':>6}  exposure")
    for r in rows:
        mark = "" if r["finished"] else "  (unfinished)"
        held = ", ".join(f"{k.replace(' ', '')}:{v:+d}" for k, v in sorted(r["exposure"].items())) or "flat"
        print(f"  {r['group']:<10} {r['strategy']:<12} {r['mode']:<7} {r['quantity']:>3} {r['state']:<12} "
              f"{r['orders']:>6}  {held}{mark}")
    return 0


def _show_group(contents: JournalContents, gid: str, json_to: str | None) -> int:
    trail = contents.transitions.get(gid, [])
    intents = {ref: i for ref, i in contents.intents.items() if i["group_id"] == gid}
    events = [e for e in contents.broker_events if e["group_id"] == gid or e["order_ref"] in intents]
    if json_to is not None:
        return _emit(json_to, {"group": gid, "definition": contents.groups[gid]["definition"], "transitions": trail,
                               "intents": intents, "broker_events": events,
                               "finishes": contents.finishes.get(gid, [])})
    definition = contents.groups[gid]["definition"]
    legs = ", ".join(f"{leg['side']} {leg['ratio']}x {leg['symbol']['occ'].replace(' ', '')}"
                     for leg in definition["legs"])
    print(f"group {gid}: {definition['strategy']} {definition['mode']} x{definition['quantity']}  legs: {legs}")
    held = ", ".join(f"{k.replace(' ', '')}:{v:+d}" for k, v in sorted(_exposure(contents, gid).items())) or "flat"
    print(f"  state {contents.last_state(gid)}  finished={contents.is_finished(gid)}  exposure {held}")
    merged: list[tuple[int, str]] = []
    for rec in trail:
        ref = f" [{rec['order_ref']}]" if rec.get("order_ref") else ""
        why = f" ({rec['reason']})" if rec.get("reason") else ""
        merged.append((rec["seq"], f"{rec['time']}  {rec['source']} -{rec['trigger']}-> {rec['dest']}{ref} "
                                   f"{_short_event(rec.get('ticket_event'))}{why}"))
    for ref, intent in intents.items():
        req = intent["request"]
        merged.append((intent["seq"], f"{intent['time']}  INTENT {ref} {req['purpose']} x{req['quantity']} "
                                      f"{req['order_type']} {req['limit_price']}"))
    for e in events:
        merged.append((e["seq"], f"{e['time']}  BROKER {e['order_ref']} {_short_event(e['event'])}"))
    for fin in contents.finishes.get(gid, []):
        merged.append((fin["seq"], f"{fin['time']}  FINISHED {fin['state']}"))
    for seq, line in sorted(merged):
        print(f"  {seq:>7}  {line}")
    return 0


def _cmd_salvage(args: argparse.Namespace) -> int:
    must_not_exist(args.out, "--out", "salvage never overwrites a journal")
    _read(args.journal, allow_prefix=True)  # salvage is for a damaged journal, not for any file
    kept = salvage(args.journal, args.out)
    print(f"copied the first {kept.records} intact records of {args.journal} to {args.out}"
          + (f" (dropped from the damage on: {kept.problem})" if kept.problem else " (the journal was intact)"))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    path = args.journal
    contents = _read(path, allow_prefix=True)
    code = show(contents, args.group, args.json)
    if contents.problem is not None:  # said after the prefix was shown: the last line, where it is seen
        raise UserError(f"journal {str(path)!r} is corrupted: {contents.problem}; shown above: its intact prefix "
                        f"({contents.records} records); 'atomic-orders journal salvage' copies it to a new journal")
    return code


def _cmd_recover(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    path = args.journal
    contents = _read(path, allow_prefix=False)  # never recover from a guess: a damaged journal is refused
    config: dict[str, Any] = next((s["config"] for s in contents.sessions if s["kind"] == "start"), {})
    if args.backend == "tastytrade-emulator":
        import requests

        from atomic_orders.backends.tastytrade.auth import OAuthCredentials
        from atomic_orders.simulator.crash.harness import CrashSession, run_child

        if not args.url or not args.account:
            raise UserError("--backend tastytrade-emulator needs --url and --account")
        try:
            OAuthCredentials.from_env()  # checked before anything is opened (names the variables, never values)
        except ValueError as err:
            raise UserError(str(err)) from None
        session = CrashSession(int(config.get("seed", 1)), 0, str(config.get("profile", "rough")),
                               float(config.get("session_seconds", 6.5 * 3600)))
        try:
            if _clock_routes(args.url):
                result = run_child(args.url, args.account, path, session, run_plan=False)
            else:  # an emulator on its own (real-time) clock, as 'atomic-orders emulate' runs it
                result = _recover_wall_clock(args.url, args.account, path, args.grace)
        except requests.RequestException as err:
            # An unreachable emulator (or one that stopped answering mid-recovery).
            raise UserError(f"--url {args.url!r}: the emulator did not answer ({err}); start one with "
                            "'atomic-orders emulate' (or 'atomic-orders crash serve'). The journal is as it was or "
                            "further recovered; run recover again") from None
        print(json.dumps(result, indent=2, sort_keys=True))
        unexplained = result["recovery"].get("unexplained") if result["recovery"] else None
        if unexplained:  # a position no group owns is somebody's problem now: never exit 0 on it
            print(f"{args.help_parser.prog}: error: broker positions the journal does not account for: "
                  f"{unexplained}", file=sys.stderr)
        ok = not result["violations"] and not result["open"] and not unexplained
    else:
        ok = _recover_simulated(path, contents, config)
    after = read_journal(path)
    open_groups = [g for g in after.groups if not after.is_finished(g)]
    states = Counter(after.last_state(g) for g in after.groups)
    print(f"after recovery: {dict(sorted((k or '-', v) for k, v in states.items()))}, unfinished {len(open_groups)}")
    changed = _finished_changed(contents, after)
    print(f"finished before recovery: {sum(1 for g in contents.groups if contents.is_finished(g))}, "
          f"changed by recovery: {len(changed)}")
    for gid, line in changed.items():
        print(f"  {gid}: {line}")
    return 0 if ok and not open_groups and not changed else 1


def _clock_routes(url: str) -> bool:
    """True when the emulator at ``url`` has the time-controlled routes (``atomic-orders crash serve``).

    A plain ``atomic-orders emulate`` refuses the unauthenticated route; an unreachable host raises
    :class:`requests.RequestException`.
    """
    import requests

    with requests.Session() as probe:
        return probe.get(f"{url.rstrip('/')}/_emulator/clock", timeout=10).status_code == 200


def _recover_wall_clock(url: str, account: str, path: Path, grace: float) -> dict[str, Any]:
    """Recover against an emulator that keeps its own real-time clock: the live loop's recovery path.

    :class:`LiveSession` (polling only, no strategy) recovers the journal and drives every group on
    the wall clock until none is open or ``grace`` seconds passed. Answers what ``run_child`` answers.
    """
    from atomic_orders.backends.tastytrade.auth import OAuthCredentials
    from atomic_orders.backends.tastytrade.config import TastytradeConfig
    from atomic_orders.backends.tastytrade.errors import TastytradeError
    from atomic_orders.backends.tastytrade.live import ForeignJournal, LiveSession, LiveSettings

    try:
        config = TastytradeConfig(account, url)
    except (ValueError, TypeError) as err:
        raise UserError(str(err)) from None
    try:
        session = LiveSession.open(config, OAuthCredentials.from_env(), path,
                                   settings=LiveSettings(grace=grace, streamer=False, journal_sync="normal"))
    except TastytradeError as err:
        raise UserError(f"--url {url!r}: {err}") from None
    except ForeignJournal as err:
        raise UserError(f"--journal: {err}") from None
    with session:
        result = session.run(until_idle=True)
        report = result.recovery
        recovery = {} if report is None else {
            "rebuilt": report.groups_rebuilt, "unfinished": len(report.groups_unfinished),
            "not_found": len(report.not_found), "fills_recovered": report.fills_recovered,
            "unexplained": report.unexplained_exposure, "mismatches": list(report.replay_mismatches)}
        return {"recovered": report is not None, "recovery": recovery, "violations": list(result.violations),
                "open": list(result.left_open), "orders_sent": session.executor.stats.orders_sent,
                "clock": "wall"}


def _finished_changed(before: JournalContents, after: JournalContents) -> dict[str, str]:
    """Groups that had finished before recovery and left that state in it (group id -> what happened).

    A transition after the finish into another state is a re-opening (a late fill, or a broker
    record disagreeing with the journal); against a broker that agrees with the journal, none.
    """
    out: dict[str, str] = {}
    for gid in before.groups:
        if not before.is_finished(gid):
            continue
        final = before.finishes[gid][-1]["state"]
        later = after.transitions.get(gid, [])[len(before.transitions.get(gid, [])):]
        moved = [r["dest"] for r in later if r["dest"] != final]
        if moved:
            out[gid] = f"finished {final}, re-opened to {moved[0]}, now {after.last_state(gid)}"
    return out


def _recover_simulated(path: Path, contents: JournalContents, config: dict[str, Any]) -> bool:
    from atomic_orders.fsm.executor import AtomicOrderExecutor
    from atomic_orders.fsm.journal import Journal
    from atomic_orders.simulator.broker.backend import SimulatedBackend
    from atomic_orders.simulator.broker.chaos import ChaosProfile
    from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

    profile = str(config.get("profile", "rough"))
    broker = BrokerSimulator(int(config.get("seed", 1)), ChaosProfile.preset(profile),
                             session_seconds=float(config.get("session_seconds", 6.5 * 3600)), event_log=False)
    times = [dt.datetime.fromisoformat(t[-1]["time"]) for t in contents.transitions.values() if t]
    if times:
        broker.advance_to(max(0.0, broker.clock.to_seconds(max(times))))
    held = _hold_settled_orders(broker, contents)
    print(f"rehearsal on a fresh in-process simulator: it holds the {held} orders the journal saw settle and "
          "none of the unsettled ones (see 'atomic-orders recover --help')")
    journal = Journal(path)  # before saying so: another process may hold it (JournalLocked)
    print(f"the rehearsal's decisions are written to {path} as a recovery session")
    executor, report = AtomicOrderExecutor.recover(journal, SimulatedBackend(broker))
    print("\n".join(report.lines()))

    def advance(when: dt.datetime | None) -> bool:
        target = broker.next_event_time() if when is None else broker.clock.to_seconds(when)
        nxt = broker.next_event_time()
        if nxt is not None and (target is None or nxt < target):
            target = nxt
        if target is None:
            return False
        broker.advance_to(max(target, broker.clock.seconds))
        return True

    executor.run_until_settled(advance)
    journal.close()
    print(f"violations: {executor.stats.invariant_violations}")
    return executor.stats.invariant_violations == 0 and not executor.open_groups()


def _hold_settled_orders(broker: BrokerSimulator, contents: JournalContents) -> int:
    """Give a fresh simulator every order whose journaled ticket is final; return how many.

    Without them the fresh broker would deny orders the journal holds as filled: a group that
    finished within the linger would be judged against an empty account and re-opened. An order
    whose fills no broker could hold (more than its quantity) stays unknown to it, and is named.
    """
    from atomic_orders.fsm.errors import ValidationError
    from atomic_orders.fsm.events import BrokerStatus
    from atomic_orders.fsm.ticket import FINAL_STATES

    held = 0
    for gid, info in contents.groups.items():
        group, _ = rebuild_group(info["definition"], contents.transitions.get(gid, []))
        for ticket in group.tickets:
            if ticket.state not in FINAL_STATES:
                continue
            # an order with every unit filled is filled at the broker, whatever the ticket's last word
            full = sum(f.quantity for f in ticket.fills) >= ticket.quantity
            try:
                broker.hold_settled(ticket.to_request(), BrokerStatus.FILLED if full else BrokerStatus(ticket.state),
                                    ticket.fills, ticket.broker_order_id)
            except ValidationError as err:
                print(f"not held by the rehearsal's broker: {ticket.order_ref} ({err})")
                continue
            held += 1
    return held


def add_journal_commands(sub: Any) -> None:
    """Add ``journal`` (show, salvage) and ``recover`` to the ``atomic-orders`` parser."""
    jr = add_command(sub, "journal", "inspect a journal (groups, states, exposure; one group's audit trail)", None)
    jsub = jr.add_subparsers(dest="journal_command", title="commands", metavar="COMMAND")
    js = add_command(jsub, "show", "list the journal's groups, states and exposure (--group ID: its audit trail)",
                     _cmd_show)
    add_journal(js, required=True, exists=True, help="the journal file")
    js.add_argument("--group", metavar="ID", help="show this group's audit trail, intents and broker events")
    add_json(js, "the groups (or the group's trail)")
    jsv = add_command(jsub, "salvage", "copy the intact prefix of a damaged journal into a new journal", _cmd_salvage)
    add_journal(jsv, required=True, exists=True, help="the damaged journal")
    jsv.add_argument("--out", type=file_path, required=True, metavar="PATH", help="the new journal (must not exist)")

    rc = add_command(sub, "recover", "rebuild unfinished groups from a journal and drive them to a terminal state",
                     _cmd_recover, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_journal(rc, required=True, exists=True, help="the journal of the session that died")
    add_backend(rc, default=None, help="where the orders are: tastytrade-emulator (the broker that kept them) or "
                                       "simulated (a rehearsal, see above); no default, the two differ too much")
    rc.add_argument("--url", help="the emulator's URL (tastytrade-emulator)")
    rc.add_argument("--account", help="the account number (tastytrade-emulator)")
    rc.add_argument("--grace", type=non_negative_float, default=120.0, metavar="S",
                    help="tastytrade-emulator on its own clock: seconds to drive the groups to settlement on the "
                         "wall clock before giving up (default 120)")
