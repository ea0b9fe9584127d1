"""The crash test: a journaled session through the TastyTrade emulator, killed with SIGKILL, recovered.

Broker state must survive the trading process, so the parent process holds the emulator (a
:class:`ControlledEmulator` over a :class:`BrokerSimulator`) and a CHILD
process (``atomic-orders crash child ...``) runs the session through the real
:class:`~atomic_orders.backends.tastytrade.backend.TastytradeBackend` over HTTP, with a journal. The child
drives virtual time through two emulator-only routes (``GET /_emulator/clock``,
``POST /_emulator/advance``), so the broker's clock stops while no child runs and resumes
where it was. Quotes and strikes come from a replica of the emulator's market model (same seed,
the same numbers the emulator's ``GET /market-data/by-type`` serves, without the requests).

The parent kills the child with SIGKILL, either at a deterministic crash point (the child's
journal hook kills itself at the N-th passage of a named point: ``ATOMIC_ORDERS_KILL_AT``,
e.g. ``intent_committed:3``) or at a seeded random wall-clock moment, then starts it again: the
child recovers from the journal (``AtomicOrderExecutor.recover``) and carries on. After the
last run completes, :func:`verify` checks: zero invariant violations (every group replayed
from the journal and checked), no duplicate order at the emulator (by external identifier),
every order at the emulator has its intent in the journal, every fill the emulator made is in
the journal (per order, in units), every group terminal, and no position the journal does not
account for.

``atomic-orders crash run --runs 5 --kills 40`` runs a larger campaign and prints figures (the
command line, :mod:`atomic_orders.simulator.cli.crash`, parses; this module keeps the functions).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import requests

from atomic_orders.fsm import invariants
from atomic_orders.fsm.group import TERMINAL_STATES, ExecutionMode
from atomic_orders.fsm.journal import read_journal
from atomic_orders.fsm.journal.codec import decode_event, event_fills
from atomic_orders.fsm.journal.recorder import CRASH_POINTS
from atomic_orders.fsm.recovery import rebuild_group
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.engine import VirtualClock, make_rng
from atomic_orders.simulator.broker.market import MarketModel
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.server import TastytradeEmulator
from atomic_orders.simulator.emulator.state import EmulatorError

if TYPE_CHECKING:
    from atomic_orders.fsm.executor import AtomicOrderExecutor

__all__ = ["BrokerTruth", "ControlledEmulator", "CrashReport", "CrashSession", "emulator_truth", "run_crash_test",
           "simulator_truth", "verify"]

#: Environment variable naming a crash point and the passage to die at (``name:count``).
KILL_ENV = "ATOMIC_ORDERS_KILL_AT"


class ControlledEmulator(TastytradeEmulator):
    """The emulator plus two emulator-only routes that let a client process drive virtual time.

    ``GET /_emulator/clock`` and ``POST /_emulator/advance`` (``{"to": seconds}``) answer
    ``{"seconds", "next-event", "session-open"}``. Time never moves backwards.
    """

    def _handle(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                raw: bytes) -> tuple[int, Any]:
        if path == "/_emulator/advance" and method == "POST":
            try:
                target = float(json.loads(raw or b"{}")["to"])
            except (ValueError, KeyError, TypeError):
                raise EmulatorError(400, "validation_error", 'the body must be {"to": <seconds>}') from None
            if target > self.simulator.clock.seconds:
                self.simulator.advance_to(target)
            self.account.pump()
            return 200, self._clock_body()
        if path == "/_emulator/clock" and method == "GET":
            return 200, self._clock_body()
        return super()._handle(method, path, query, headers, raw)

    def _clock_body(self) -> dict[str, Any]:
        sim = self.simulator
        return {"seconds": sim.clock.seconds, "next-event": sim.next_event_time(),
                "session-open": sim.clock.session_open.isoformat()}


# ---------------------------------------------------------------------------------------------
# The plan both processes agree on


@attrs.frozen
class CrashSession:
    """The session the child runs (both processes derive the same plan from it)."""

    seed: int = 11
    groups: int = 8
    profile: str = "rough"
    session_seconds: float = 1200.0
    #: The journal's ``batch_seconds`` (0: every decision point commits, so every crash point is live).
    batch_seconds: float = 0.0

    def plan(self) -> list[tuple[str, float, int, int, float, ExecutionMode]]:
        """(group id, entry time, quantity, width, wing distance, mode) per condor, in time order."""
        rng = make_rng(self.seed, "crash-plan")
        times = sorted(rng.uniform(20.0, self.session_seconds * 0.5) for _ in range(self.groups))
        out = []
        for i, t in enumerate(times):
            mode = ExecutionMode.LEGGED if i % 2 else ExecutionMode.COMBO
            out.append((f"G{i + 1:06d}", t, rng.randint(1, 3), rng.choice((10, 25)), rng.choice((30.0, 45.0, 60.0)),
                        mode))
        return out

    def broker(self) -> BrokerSimulator:
        """The broker the parent's emulator wraps."""
        return BrokerSimulator(self.seed, ChaosProfile.preset(self.profile), session_seconds=self.session_seconds,
                               event_log=False)

    def market(self) -> MarketModel:
        """A replica of the broker's market (same seed and session)."""
        return MarketModel(self.seed, session_seconds=self.session_seconds)


# ---------------------------------------------------------------------------------------------
# Child


def _install_kill_point(spec: str | None) -> Any:
    if not spec:
        return None
    name, _, count = spec.partition(":")
    target = int(count or "1")
    seen = Counter[str]()

    def on_point(point: str) -> None:
        key = "*" if name == "*" else point
        seen[key] += 1
        if key == name and seen[key] == target:
            sys.stderr.write(f"crash-point {point}\n")  # the parent attributes the kill
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return on_point


def run_child(url: str, account: str, journal_path: Path, session: CrashSession, *,
              run_plan: bool = True) -> dict[str, Any]:
    """One life of the trading process: recover if the journal has history, run the plan to the end.

    Credentials come from ``TASTYTRADE_CLIENT_SECRET`` / ``TASTYTRADE_REFRESH_TOKEN``. Without
    ``run_plan`` no new group is placed: recover, then drive every group to a terminal state.
    """
    from atomic_orders.backends.tastytrade.auth import OAuthCredentials
    from atomic_orders.backends.tastytrade.backend import TastytradeBackend
    from atomic_orders.backends.tastytrade.client import TastytradeApiClient
    from atomic_orders.backends.tastytrade.config import TastytradeConfig
    from atomic_orders.fsm.executor import AtomicOrderExecutor
    from atomic_orders.fsm.journal import Journal

    control = requests.Session()

    def clock_call(method: str, route: str, body: Any = None) -> dict[str, Any]:
        answer = control.request(method, f"{url}{route}", json=body, timeout=10)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    state = clock_call("GET", "/_emulator/clock")
    market = session.market()
    clock = VirtualClock(market.session_open)
    clock.advance_to(float(state["seconds"]))
    next_broker: list[float | None] = [state["next-event"]]
    creds = OAuthCredentials.from_env()
    config = TastytradeConfig(account_number=account, base_url=url, connect_timeout=2.0, read_timeout=2.0,
                              backoff_base=0.01, backoff_max=0.05)
    client = TastytradeApiClient(config, creds)
    backend = TastytradeBackend(client, clock=clock, quote_source=lambda s: market.quote(s, clock.seconds))
    journal = Journal(journal_path, sync="normal", batch_seconds=session.batch_seconds,
                      on_point=_install_kill_point(os.environ.get(KILL_ENV)))
    recovered = bool(journal.contents.groups)
    known = set(journal.contents.groups)
    if recovered:
        executor, report = AtomicOrderExecutor.recover(journal, backend, release_finished=True)
        recovery = {"rebuilt": report.groups_rebuilt, "unfinished": len(report.groups_unfinished),
                    "not_found": len(report.not_found), "fills_recovered": report.fills_recovered,
                    "unexplained": report.unexplained_exposure, "mismatches": list(report.replay_mismatches)}
    else:
        journal.start_session("start", {"seed": session.seed, "groups": session.groups, "profile": session.profile,
                                        "session_seconds": session.session_seconds,
                                        "backend": "tastytrade-emulator"})
        executor = AtomicOrderExecutor(backend, release_finished=True, journal=journal)
        recovery = {}
    plan = [p for p in session.plan() if p[0] not in known] if run_plan else []

    def advance(t: float) -> None:
        state = clock_call("POST", "/_emulator/advance", {"to": t})
        clock.advance_to(max(clock.seconds, float(state["seconds"])))
        next_broker[0] = state["next-event"]

    def next_event() -> float | None:
        poll = clock.to_seconds(backend.next_poll_time())
        nxt = next_broker[0]
        return poll if nxt is None else min(poll, float(nxt))

    drive_plan(executor, market, plan, session.session_seconds if run_plan else 0.0,
               now=lambda: clock.seconds, advance=advance, next_event=next_event)
    executor.process_events()
    journal.close()
    client.close()
    return {"recovered": recovered, "recovery": recovery, "violations": executor.violations,
            "open": [g.group_id for g in executor.open_groups()], "orders_sent": executor.stats.orders_sent}


def drive_plan(
    executor: AtomicOrderExecutor,
    market: MarketModel,
    plan: Sequence[tuple[str, float, int, int, float, ExecutionMode]],
    end: float,
    *,
    now: Callable[[], float],
    advance: Callable[[float], None],
    next_event: Callable[[], float | None],
) -> None:
    """The discrete-event loop of a session: place the plan's condors, drive events and timers.

    Ends once every condor is placed, no group is open and the clock reached ``end``.
    """
    expiry = market.default_expiry
    i = 0
    while True:
        candidates: list[float] = []
        nxt = next_event()
        if nxt is not None:
            candidates.append(nxt)
        wake = executor.next_wakeup()
        if wake is not None:
            candidates.append((wake - market.session_open).total_seconds())
        if i < len(plan):
            candidates.append(plan[i][1])
        if not candidates:
            break
        t = max(min(candidates), now())
        if t > end + 3600:
            break
        advance(t)
        while i < len(plan) and plan[i][1] <= now():
            gid, _, qty, width, wing, mode = plan[i]
            i += 1
            sc, lc, sp, lp = market.strikes_for_iron_condor(now(), expiry, width, wing)
            executor.execute_iron_condor(short_call=sc, long_call=lc, short_put=sp, long_put=lp, quantity=qty,
                                          mode=mode, group_id=gid)
        executor.process_events()
        executor.on_timer()
        if i >= len(plan) and not executor.open_groups() and now() >= end:
            break


class _Crash(BaseException):
    """Raised at a crash point by the in-process campaign: the process "dies" there."""


def run_in_process(session: CrashSession, kills: Sequence[tuple[str, int]],
                   journal_path: Path) -> tuple[BrokerSimulator, Counter[str]]:
    """The campaign in one process against the simulated backend (fast; used by the unit tests).

    The broker (a :class:`BrokerSimulator`) outlives each "process"; a crash is an exception
    raised at the crash point, after which the executor is dropped and the journal connection
    closed WITHOUT committing what was staged, exactly what SIGKILL leaves behind. Returns the
    broker and how many crashes happened at each point.
    """
    from atomic_orders.fsm.executor import AtomicOrderExecutor
    from atomic_orders.fsm.journal import Journal
    from atomic_orders.simulator.broker.backend import SimulatedBackend

    broker = session.broker()
    market = broker.market
    pending = list(kills)
    crashed: Counter[str] = Counter()
    while True:
        spec = pending.pop(0) if pending else None
        seen: Counter[str] = Counter()

        def on_point(point: str, spec: tuple[str, int] | None = spec, seen: Counter[str] = seen) -> None:
            key = "*" if spec is not None and spec[0] == "*" else point
            seen[key] += 1
            if spec is not None and key == spec[0] and seen[key] == spec[1]:
                raise _Crash(point)

        journal = Journal(journal_path, sync="normal", batch_seconds=session.batch_seconds, on_point=on_point)
        backend = SimulatedBackend(broker)
        known = set(journal.contents.groups)
        try:
            if known:
                executor, _ = AtomicOrderExecutor.recover(journal, backend, release_finished=True)
            else:
                journal.start_session("start", {"seed": session.seed, "groups": session.groups,
                                                "profile": session.profile,
                                                "session_seconds": session.session_seconds, "backend": "simulated"})
                executor = AtomicOrderExecutor(backend, release_finished=True, journal=journal)
            plan = [p for p in session.plan() if p[0] not in known]
            drive_plan(executor, market, plan, session.session_seconds, now=lambda: broker.clock.seconds,
                       advance=broker.advance_to, next_event=broker.next_event_time)
            executor.process_events()
        except _Crash as crash:
            crashed[str(crash.args[0])] += 1
            journal.close(commit=False)  # staged rows die with the "process"
            continue
        journal.close()
        return broker, crashed


# ---------------------------------------------------------------------------------------------
# Verification


@attrs.frozen
class BrokerTruth:
    """What the broker itself holds, to check the journal against."""

    #: Orders placed per external identifier (more than one is a duplicate).
    placed: dict[str, int]
    #: Filled units (combo) or contracts (one leg) per external identifier, over replacements.
    units: dict[str, int]
    #: Signed positions per OCC symbol.
    positions: dict[str, int]


def emulator_truth(emulator: TastytradeEmulator) -> BrokerTruth:
    """The emulator's orders, fills and positions."""
    with emulator.lock:
        account = emulator.account
        placed = {ref: len(ids) for ref, ids in account.placed_by_external_id.items()}
        units: Counter[str] = Counter()
        for order in account.orders.values():
            if order.external_identifier is not None:
                units[order.external_identifier] += order.filled_units()
        positions = {s.occ: q for s, q in emulator.simulator.positions().items() if q}
    return BrokerTruth(placed, dict(units), positions)


def simulator_truth(broker: BrokerSimulator) -> BrokerTruth:
    """The in-process simulator's orders, fills and positions."""
    placed = Counter(r.order_ref for r in broker.orders_seen)
    units = {ref: sum(f.quantity for f in broker.order_fills(ref)) for ref in placed}
    return BrokerTruth(dict(placed), units, {s.occ: q for s, q in broker.positions().items() if q})


def verify(truth: BrokerTruth, journal_path: Path, group_ids: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Every check of the crash test; returns (problems, figures)."""
    problems: list[str] = []
    contents = read_journal(journal_path)
    placed, units, positions = truth.placed, truth.units, truth.positions
    for ref, count in sorted(placed.items()):
        if count != 1:
            problems.append(f"duplicate order at the broker: {ref} placed {count} times")
        if ref not in contents.intents:
            problems.append(f"order {ref} reached the broker without an intent in the journal")
    journal_fills: dict[str, dict[str, int]] = {}
    for row in contents.broker_events:
        for f in event_fills(decode_event(row["event"])):
            journal_fills.setdefault(row["order_ref"], {})[f.fill_id] = f.quantity
    for trail in contents.transitions.values():
        for rec in trail:
            ev = rec.get("ticket_event")
            if ev is not None and rec.get("order_ref"):
                for f in event_fills(decode_event(ev)):
                    journal_fills.setdefault(rec["order_ref"], {})[f.fill_id] = f.quantity
    for ref in sorted(set(units) | set(journal_fills)):
        made = units.get(ref, 0)
        kept = sum(journal_fills.get(ref, {}).values())
        if made != kept:
            problems.append(f"order {ref}: the broker filled {made}, the journal holds {kept}")
    expected: Counter[str] = Counter()
    violations = 0
    for gid in group_ids:
        if gid not in contents.groups:
            problems.append(f"group {gid} never reached the journal")
            continue
        if not contents.is_finished(gid) or contents.last_state(gid) not in TERMINAL_STATES:
            problems.append(f"group {gid} is not terminal (last state {contents.last_state(gid)})")
        group, mismatches = rebuild_group(contents.groups[gid]["definition"], contents.transitions.get(gid, []))
        found = mismatches + invariants.check_group(group, replay=True)
        for fin in contents.finishes.get(gid, []):
            found.extend(fin["summary"].get("violations", []))
        violations += len(found)
        problems.extend(f"invariant: {v}" for v in found)
        expected.update({s.occ: q for s, q in group.ledger.positions().items()})
    for occ in sorted(set(positions) | set(expected)):
        if positions.get(occ, 0) != expected.get(occ, 0):
            problems.append(f"position {occ}: broker {positions.get(occ, 0)}, journal {expected.get(occ, 0)}")
    figures = {
        "orders_at_broker": len(placed),
        "intents": len(contents.intents),
        "intents_never_sent": sum(1 for ref in contents.intents if ref not in placed),
        "fills_at_broker_units": sum(units.values()),
        "journal_records": contents.records,
        "invariant_violations": violations,
        "groups": len(contents.groups),
        "groups_committed": sum(1 for g in contents.groups if contents.last_state(g) == "committed"),
        "groups_rolled_back": sum(1 for g in contents.groups if contents.last_state(g) == "rolled_back"),
        "groups_failed": sum(1 for g in contents.groups if contents.last_state(g) == "failed"),
    }
    return problems, figures


# ---------------------------------------------------------------------------------------------
# Parent


@attrs.define
class CrashReport:
    """What one crash campaign did and found."""

    seed: int
    runs: int = 0
    kills_by_point: Counter[str] = attrs.field(factory=Counter)
    point_requests_missed: int = 0
    time_kills: int = 0
    problems: list[str] = attrs.field(factory=list)
    figures: dict[str, int] = attrs.field(factory=dict)
    recoveries: list[dict[str, Any]] = attrs.field(factory=list)
    wall_seconds: float = 0.0

    @property
    def kills(self) -> int:
        """Every SIGKILL the child received."""
        return sum(self.kills_by_point.values()) + self.time_kills

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return not self.problems

    def lines(self) -> list[str]:
        """Plain-text figures."""
        points = ", ".join(f"{p}={n}" for p, n in sorted(self.kills_by_point.items())) or "-"
        out = [
            f"crash test seed={self.seed}: {self.runs} child runs, {self.kills} SIGKILLs "
            f"({sum(self.kills_by_point.values())} at crash points, {self.time_kills} at random times), "
            f"{len(self.kills_by_point)}/{len(CRASH_POINTS)} kill points exercised, {self.wall_seconds:.1f} s",
            f"  kills by point: {points}",
        ]
        out.append("  " + ", ".join(f"{k}={v}" for k, v in self.figures.items()))
        out.append(f"  problems: {len(self.problems)}")
        out.extend(f"    {p}" for p in self.problems[:20])
        return out


def _kill_plan(seed: int, kills: int, named: Sequence[str] = CRASH_POINTS) -> list[tuple[str, int] | float]:
    """Every crash point by name first, then the n-th passage of any point, or a random moment.

    ``("*", n)`` always lands while the session has n more crash points to pass, whatever their
    names, so a campaign absorbs many kills; the child reports which point it died at.
    """
    rng = make_rng(seed, "crash-kills")
    # Early passages: each life makes a little progress, so many kills fit in one session.
    reach = {"intent_committed": 3, "submit_returned": 3, "events_polled": 4, "events_committed": 4,
             "decision_applied": 6, "decision_committed": 6}
    plan: list[tuple[str, int] | float] = []
    for k in range(kills):
        if k < len(named):  # every named point once, then seeded choices
            point = named[k]
            plan.append((point, rng.randint(1, reach[point])))
        elif rng.random() < 0.25:
            plan.append(rng.uniform(0.2, 2.5))
        else:
            plan.append(("*", rng.randint(1, 12)))
    return plan


def run_crash_test(session: CrashSession, kills: int, workdir: Path, *, max_runs: int | None = None,
                   log: Any = None) -> CrashReport:
    """Run one campaign: ``kills`` planned SIGKILLs, then a run to completion; verify everything."""
    started = time.perf_counter()
    report = CrashReport(seed=session.seed)
    journal_path = workdir / f"crash-{session.seed}.journal"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{journal_path}{suffix}").unlink(missing_ok=True)
    emulator = ControlledEmulator(session.broker()).start()
    creds = emulator.credentials()
    env = dict(os.environ)
    env["TASTYTRADE_CLIENT_SECRET"] = creds.client_secret.reveal()
    env["TASTYTRADE_REFRESH_TOKEN"] = creds.refresh_token.reveal()
    env.pop(KILL_ENV, None)
    # The child is the command line's 'crash child' (a string: the crash room never imports the CLI).
    cmd = [sys.executable, "-m", "atomic_orders.simulator.cli", "crash", "child", "--url", emulator.url, "--account",
           emulator.account_number, "--journal", str(journal_path), "--seed", str(session.seed), "--groups",
           str(session.groups), "--profile", session.profile, "--session-seconds", str(session.session_seconds),
           "--batch-seconds", str(session.batch_seconds)]
    # With batching a decision point may never commit in a short run: kill there only by "*".
    named = CRASH_POINTS if not session.batch_seconds else [p for p in CRASH_POINTS if not p.startswith("decision")]
    plan = _kill_plan(session.seed, kills, named)
    limit = max_runs if max_runs is not None else kills + 10
    try:
        while report.runs < limit:
            step = plan.pop(0) if plan else None
            child_env = dict(env)
            if isinstance(step, tuple):
                child_env[KILL_ENV] = f"{step[0]}:{step[1]}"
            proc = subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            report.runs += 1
            timed_out = False
            if isinstance(step, float):
                try:
                    proc.wait(timeout=step)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                timed_out = True
            if timed_out:
                report.problems.append(f"run {report.runs}: the child did not finish in 300 s")
                break
            if proc.returncode == -signal.SIGKILL:
                at = [line.split(" ", 1)[1] for line in err.splitlines() if line.startswith("crash-point ")]
                if at:
                    report.kills_by_point[at[-1]] += 1
                else:
                    report.time_kills += 1
                if log is not None:
                    log(f"run {report.runs}: killed at {step}")
                continue
            if proc.returncode != 0:
                report.problems.append(f"run {report.runs}: child exited {proc.returncode}: {err.strip()[-2000:]}")
                break
            result = json.loads(out.strip().splitlines()[-1])
            if result.get("recovered"):
                report.recoveries.append(result["recovery"])
            report.problems.extend(f"child violation: {v}" for v in result["violations"])
            if step is not None:
                report.point_requests_missed += 1  # the kill point was not reached: the run completed
            if log is not None:
                log(f"run {report.runs}: completed ({step} not reached)" if step else f"run {report.runs}: completed")
            break  # the session is complete: what is left of the kill plan has nothing to hit
        else:
            report.problems.append(f"no run completed within {limit} runs")
        problems, figures = verify(emulator_truth(emulator), journal_path, [p[0] for p in session.plan()])
        report.problems.extend(problems)
        report.figures = figures
        report.figures["recovery_sessions"] = sum(1 for s in read_journal(journal_path).sessions
                                                  if s["kind"] == "recover")
    finally:
        emulator.stop()
    report.wall_seconds = time.perf_counter() - started
    return report
