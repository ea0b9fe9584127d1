"""A whole simulated trading session: many iron condors against a hostile, deterministic broker.

This is the project's main job (``atomic-orders simulate``). One seed makes the session: the
market path, the chaos, the times and shapes of the condors. Every group must end committed,
rolled back, or failed with its residual exposure stated; the report proves it.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import attrs

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor, GroupSummary
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.engine import make_rng
from atomic_orders.simulator.broker.market import MarketModel
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.session.accounting import group_record
from atomic_orders.simulator.session.records import GroupRecord, SessionHeader

#: Where a session's orders go: the simulated broker in process, or the same broker behind the
#: TastyTrade emulator over HTTP through the real client (loaded only when asked for).
BACKEND_NAMES = ("simulated", "tastytrade-emulator")

#: Condors are placed from this many seconds after the open ...
FIRST_ENTRY_SECONDS = 120.0
#: ... until this many seconds before the close, leaving time to finish or roll back.
LAST_ENTRY_BEFORE_CLOSE = 45 * 60.0
#: The session keeps running after the close at most this long (day orders expire at the close).
AFTER_CLOSE_SECONDS = 3600.0
#: The report names this many of the worst groups per measure (every failed group is named).
WORST_GROUPS = 3

_T = TypeVar("_T")


@attrs.frozen
class SessionConfig:
    """Everything that defines one simulated session (the same config gives the same session)."""

    seed: int = 1
    groups: int = 200
    profile: str = "rough"
    mode: ExecutionMode = ExecutionMode.COMBO
    max_quantity: int = 5
    widths: tuple[int, ...] = (10, 25)
    wing_distances: tuple[float, ...] = (30.0, 45.0, 60.0, 80.0)
    policy: ExecutionPolicy = attrs.field(factory=ExecutionPolicy)
    session_seconds: float = 6.5 * 3600
    verify_replay: bool = False
    event_log: bool = False
    #: ``simulated`` (in-process) or ``tastytrade-emulator`` (the same session through the real
    #: TastyTrade client over HTTP to the local emulator), with an HTTP fault preset for the latter.
    backend: str = "simulated"
    http_faults: str = "none"
    #: ``tastytrade-emulator`` only: also listen to the emulator's account streamer (pushed fills;
    #: polls become a 30 s watchdog). Off by default: pushes cross a real socket in wall-clock time,
    #: so a polled session is the reproducible one (same seed, same report).
    streamer: bool = False
    #: Keep one :class:`GroupRecord` per group in the report (``SessionReport.records``); the
    #: event log keeps them too. Off, the session keeps aggregates only.
    records: bool = False

    def __attrs_post_init__(self) -> None:
        if type(self.groups) is not int or self.groups < 0:
            raise ValueError(f"groups={self.groups!r}: must be an int >= 0")
        if type(self.max_quantity) is not int or self.max_quantity < 1:
            raise ValueError(f"max_quantity={self.max_quantity!r}: must be an int >= 1")
        ChaosProfile.preset(self.profile)  # raises a clear error naming a bad profile
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"backend={self.backend!r}: expected 'simulated' or 'tastytrade-emulator'")
        if self.streamer and self.backend != "tastytrade-emulator":
            raise ValueError(f"streamer={self.streamer!r}: the account streamer needs backend 'tastytrade-emulator'")


@attrs.define
class SessionReport:
    """The outcome of a session, as printed and as written to JSON."""

    config: SessionConfig
    outcomes: dict[str, int]
    invariant_violations: int
    violation_samples: list[str]
    residual_exposure: dict[str, int]
    failed_groups: list[dict[str, Any]]
    unaccounted_exposure: dict[str, int]
    fills: int
    unwind_orders: int
    orders_sent: int
    events: int
    stray_events: int
    anomalies: int
    alerts: int
    flagged_groups: int
    settle_p50: float | None
    settle_p99: float | None
    slippage_mean: float | None
    slippage_p50: float | None
    wall_seconds: float
    events_per_second: float
    sim_seconds: float
    chaos: dict[str, Any]
    executor: dict[str, int]
    unfinished: list[str]
    #: Groups not committed, per reason category (records.REASONS): sums to rolled back + failed + invalid.
    rollback_reasons: dict[str, int] = attrs.field(factory=dict)
    #: Session P&L in dollars at fill prices: entry (credits, debits, net), unwind, fees, total.
    pnl: dict[str, Decimal | None] = attrs.field(factory=dict)
    #: Entry cost beyond the mid at submission over committed groups, dollars (+ = worse for us).
    slippage_dollars: Decimal | None = None
    #: Groups with at least one anomaly event (records.GroupRecord.anomalies > 0).
    anomaly_groups: int = 0
    #: HTTP faults the emulator injected, per kind (empty unless the backend is the emulator).
    http_faults: dict[str, int] = attrs.field(factory=dict)
    #: ``longest_settle``, ``largest_unwind_cost`` (the WORST_GROUPS worst) and every ``failed`` group.
    worst_groups: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    #: One record per group in submission order, when ``SessionConfig.records`` or an event log asked.
    records: list[GroupRecord] = attrs.field(factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types (Decimals as strings)."""
        c = self.config
        return {
            "seed": c.seed,
            "profile": c.profile,
            "mode": c.mode.value,
            "backend": c.backend,
            "groups": c.groups,
            "outcomes": dict(self.outcomes),
            "invariant_violations": self.invariant_violations,
            "violation_samples": self.violation_samples,
            "residual_exposure": dict(self.residual_exposure),
            "failed_groups": self.failed_groups,
            "unaccounted_exposure": dict(self.unaccounted_exposure),
            "unfinished_groups": self.unfinished,
            "fills": self.fills,
            "unwind_orders": self.unwind_orders,
            "orders_sent": self.orders_sent,
            "events": self.events,
            "stray_events": self.stray_events,
            "anomalies": self.anomalies,
            "anomaly_groups": self.anomaly_groups,
            "alerts": self.alerts,
            "flagged_groups": self.flagged_groups,
            "settle_seconds_p50": self.settle_p50,
            "settle_seconds_p99": self.settle_p99,
            "slippage_per_unit_mean": self.slippage_mean,
            "slippage_per_unit_p50": self.slippage_p50,
            "wall_seconds": round(self.wall_seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "simulated_seconds": round(self.sim_seconds, 3),
            "chaos": self.chaos,
            "executor": self.executor,
            "http_faults_preset": c.http_faults,
            "streamer": c.streamer,
            "rollback_reasons": dict(self.rollback_reasons),
            "pnl": {k: None if v is None else str(v) for k, v in self.pnl.items()},
            "slippage_dollars": None if self.slippage_dollars is None else str(self.slippage_dollars),
            "http_faults": dict(self.http_faults),
            "worst_groups": self.worst_groups,
        }

    @property
    def ok(self) -> bool:
        """No violation, no unaccounted exposure, every group finished."""
        return not self.invariant_violations and not self.unaccounted_exposure and not self.unfinished


@attrs.frozen
class _Held:
    """A finished group's figures while the executor still holds it (a late fill may re-open it)."""

    outcome: str
    fills: int
    unwind_orders: int
    settle: float | None
    slippage_per_unit: Decimal | None
    flagged: bool
    alerts: int
    positions: dict[str, int]
    failed: dict[str, Any] | None
    reason: str | None
    entry: Decimal
    unwind: Decimal
    slippage: Decimal | None
    anomalies: int
    round_trip: Decimal | None


class _Tally:
    """The session's aggregates of finished groups, flat in memory.

    A finished group's figures are kept per group (:attr:`held`) only while the executor holds
    it: until then a late fill can re-open it and its next finish replaces them (it counts once).
    Once the executor releases it (``on_released``) it cannot finish again, and :meth:`fold` adds
    its figures to the running totals and drops them. Sums are exact (Decimal, int; float means by
    ``statistics.fmean``, which is exactly rounded), so the order groups are folded in changes no
    figure. Failed groups are kept whole (few; the report lists each); records only when asked.
    """

    def __init__(self) -> None:
        self.held: dict[str, _Held] = {}
        self.outcomes: Counter[str] = Counter()
        self.fills = 0
        self.unwind_orders = 0
        self.alerts = 0
        self.flagged = 0
        self.anomalies = 0
        self.anomaly_groups = 0
        #: Seconds (first fill -> settled) and slippage per unit, one double per group that has one.
        self.settle = array("d")
        self.slippage_per_unit = array("d")
        #: What every finished group leaves at the broker (OCC symbol -> signed contracts).
        self.positions: Counter[str] = Counter()
        self.failed: dict[str, dict[str, Any]] = {}
        self.reasons: Counter[str] = Counter()
        self.credits = Decimal(0)
        self.debits = Decimal(0)
        self.unwind = Decimal(0)
        self.slippage_dollars: Decimal | None = None
        #: The WORST_GROUPS worst so far: (group, settle seconds > 0), (group, round trip, entry, unwind).
        self.longest_settle: list[tuple[str, float]] = []
        self.costliest: list[tuple[str, Decimal, Decimal, Decimal]] = []
        self.records: dict[str, GroupRecord] | None = None

    def add(self, rec: GroupRecord, s: GroupSummary) -> bool:
        """Keep a finished group's figures until it is released; True the first time it finishes."""
        gid = s.group_id
        before = self.held.get(gid)
        settle, per_unit, flagged = s.settle_seconds, s.slippage_per_unit, s.flagged
        if before is not None:  # finished again: a measure this finish lacks keeps its earlier value
            settle = before.settle if settle is None else settle
            per_unit = before.slippage_per_unit if per_unit is None else per_unit
            flagged = flagged or before.flagged
        failed: dict[str, Any] | None = None
        if s.state == "failed":
            failed = {"group": gid, "residual_exposure": dict(s.residual_exposure), "reason": s.rollback_reason,
                      "alerts": list(s.alerts)}
            if rec.reason is not None:
                failed["category"] = rec.reason
        self.held[gid] = _Held(
            outcome=s.state, fills=s.fills, unwind_orders=s.unwind_orders, settle=settle,
            slippage_per_unit=per_unit, flagged=flagged, alerts=len(s.alerts),
            positions=dict(s.residual_exposure), failed=failed, reason=rec.reason, entry=rec.entry,
            unwind=rec.unwind, slippage=rec.slippage, anomalies=rec.anomalies,
            round_trip=rec.round_trip_cost if rec.unwind_orders else None)
        if self.records is not None:
            self.records[gid] = rec
        return before is None

    def fold(self, gid: str) -> None:
        """Add a released group's figures to the totals and forget them (unknown ids: nothing)."""
        h = self.held.pop(gid, None)
        if h is None:
            return
        self.outcomes[h.outcome] += 1
        self.fills += h.fills
        self.unwind_orders += h.unwind_orders
        self.alerts += h.alerts
        self.flagged += h.flagged
        if h.anomalies:
            self.anomalies += h.anomalies
            self.anomaly_groups += 1
        if h.settle is not None:
            self.settle.append(h.settle)
            if h.settle > 0:  # only groups that took time are named (see _worst_groups)
                _keep_worst(self.longest_settle, (gid, h.settle), _by_longest)
        if h.slippage_per_unit is not None:
            self.slippage_per_unit.append(float(h.slippage_per_unit))
        self.positions.update(h.positions)
        if h.failed is not None:
            self.failed[gid] = h.failed
        if h.reason is not None:
            self.reasons[h.reason] += 1
        if h.entry > 0:
            self.credits += h.entry
        elif h.entry < 0:
            self.debits += h.entry
        self.unwind += h.unwind
        if h.slippage is not None:
            # from Decimal(0) as sum() did: a lone -0.00 reads 0.00
            base = Decimal(0) if self.slippage_dollars is None else self.slippage_dollars
            self.slippage_dollars = base + h.slippage
        if h.round_trip is not None:
            _keep_worst(self.costliest, (gid, h.round_trip, h.entry, h.unwind), _by_cost)

    def fold_all(self) -> None:
        """At the session's end: fold every group still held."""
        for gid in list(self.held):
            self.fold(gid)


def _by_longest(item: tuple[str, float]) -> tuple[float, str]:
    return -item[1], item[0]


def _by_cost(item: tuple[str, Decimal, Decimal, Decimal]) -> tuple[Decimal, str]:
    return item[1], item[0]


def _keep_worst(kept: list[_T], item: _T, key: Callable[[_T], Any]) -> None:
    """Keep the WORST_GROUPS smallest by ``key`` (a total order: the group id breaks ties)."""
    kept.append(item)
    if len(kept) > WORST_GROUPS:
        kept.remove(max(kept, key=key))


def session_config_json(config: SessionConfig) -> dict[str, Any]:
    """The session's configuration as journaled (no credentials: the simulator needs none)."""
    return {"seed": config.seed, "groups": config.groups, "profile": config.profile, "mode": config.mode.value,
            "max_quantity": config.max_quantity, "backend": config.backend, "http_faults": config.http_faults,
            "session_seconds": config.session_seconds}


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return round(ordered[k], 3)


def run_session(
    config: SessionConfig,
    *,
    on_group_finished: Callable[[int, int], None] | None = None,
    events_path: Path | None = None,
    on_end: Callable[[BrokerSimulator, AtomicOrderExecutor], None] | None = None,
    journal_path: Path | None = None,
    journal_sync: str = "full",
) -> SessionReport:
    """Run one session on the built-in simulator and return its report.

    With ``journal_path`` every intent, broker event and group transition is journaled there
    (write-ahead, see ``docs/journal.md``); ``journal_sync`` is ``full`` or ``normal``.
    """
    wall_start = time.perf_counter()
    profile = ChaosProfile.preset(config.profile)
    market = MarketModel(config.seed, session_seconds=config.session_seconds)
    broker = BrokerSimulator(
        config.seed,
        profile,
        market=market,
        session_seconds=config.session_seconds,
        event_log=config.event_log or events_path is not None,
        keep_requests=on_end is not None,  # every request held only for a caller who looks at the broker
    )
    backend: ExecutionBackend = SimulatedBackend(broker)
    driver: Any = broker  # what the loop advances: the simulator itself, or the emulator's driver
    if config.backend == "tastytrade-emulator":
        from atomic_orders.simulator.emulator import EmulatorDriver, HttpFaults

        driver = EmulatorDriver(broker, faults=HttpFaults.preset(config.http_faults), fault_seed=config.seed,
                                streamer=config.streamer,
                                # with HTTP faults, the streamer's socket is also dropped every 10 virtual minutes
                                streamer_drop_every=600.0 if config.http_faults != "none" else None)
        backend = driver.backend
    tally = _Tally()
    if config.records or events_path is not None:
        tally.records = {}
    done = [0]
    clock = broker.clock

    def finished(group: AtomicOrderGroup, summary: GroupSummary) -> None:
        submitted = clock.to_seconds(group.created_at) if group.created_at is not None else None
        rec = group_record(group, summary, submitted_at=submitted, settled_at=round(clock.seconds, 6))
        first_time = tally.add(rec, summary)
        if summary.state == "invalid":  # refused at submission: never held, so never released nor re-opened
            tally.fold(summary.group_id)
        if first_time:
            done[0] += 1
            if on_group_finished is not None:
                on_group_finished(done[0], config.groups)

    journal = None
    if journal_path is not None:
        from atomic_orders.fsm.journal import Journal

        journal = Journal(journal_path, sync=journal_sync)
        journal.start_session("start", session_config_json(config))
    executor = AtomicOrderExecutor(
        backend,
        config.policy,
        on_finished=finished,
        on_released=tally.fold,  # a released group cannot finish again: its figures become totals
        release_finished=True,
        # lingering groups keep no audit trail unless a journal or the replay check reads it
        compact_finished=journal is None and not config.verify_replay,
        keep_summaries=False,
        verify_replay=config.verify_replay,
        session_id="",  # a fresh simulated account: plain ids (G000001), reproducible per seed
        journal=journal,
    )

    rng = make_rng(config.seed, "session-plan")
    last_entry = config.session_seconds - LAST_ENTRY_BEFORE_CLOSE
    first_entry = min(FIRST_ENTRY_SECONDS, last_entry)
    # Entry times as doubles; each condor's shape is drawn when it is placed, in entry order, which
    # is the order the whole plan was once drawn in up front (same draws, nothing kept per condor).
    entries = array("d", sorted(rng.uniform(first_entry, last_entry) for _ in range(config.groups)))
    expiry = market.default_expiry
    horizon = config.session_seconds + AFTER_CLOSE_SECONDS
    next_entry = 0

    while True:
        candidates: list[float] = []
        broker_next = driver.next_event_time()
        if broker_next is not None:
            candidates.append(broker_next)
        wake = executor.next_wakeup()
        if wake is not None:
            candidates.append(clock.to_seconds(wake))
        if next_entry < len(entries):
            candidates.append(entries[next_entry])
        if not candidates:
            break
        t = max(min(candidates), clock.seconds)
        if t > horizon:
            break
        driver.advance_to(t)
        while next_entry < len(entries) and entries[next_entry] <= t:
            next_entry += 1
            qty, width, wing = (rng.randint(1, config.max_quantity), rng.choice(config.widths),
                                rng.choice(config.wing_distances))
            sc, lc, sp, lp = market.strikes_for_iron_condor(t, expiry, width, wing)
            if getattr(driver, "quotes", None) is not None:  # over HTTP: the new legs' quotes in one request
                driver.quotes.prefetch((sc, lc, sp, lp))
            executor.execute_iron_condor(short_call=sc, long_call=lc, short_put=sp, long_put=lp, quantity=qty,
                                          mode=config.mode)
        executor.process_events()
        executor.on_timer()
        if next_entry >= len(entries) and not executor.open_groups() and t >= config.session_seconds:
            break

    executor.process_events()
    if journal is not None:
        journal.close()
    wall = time.perf_counter() - wall_start
    if on_end is not None:
        on_end(broker, executor)

    tally.fold_all()
    # Exposure the broker holds that no group accounts for would be a lost fill.
    expected: Counter[str] = Counter(tally.positions)
    for group in executor.open_groups():
        expected.update({s.occ: q for s, q in group.ledger.positions().items()})
    actual: Counter[str] = Counter({s.occ: q for s, q in backend.positions().items() if q})
    http_faults: dict[str, int] = {}
    if driver is not broker:
        http_faults = dict(sorted(driver.emulator.faults.injected.items()))
        driver.close()
    unaccounted = {k: actual.get(k, 0) - expected.get(k, 0) for k in set(actual) | set(expected)}
    unaccounted = {k: v for k, v in sorted(unaccounted.items()) if v}

    residual: Counter[str] = Counter()
    for info in tally.failed.values():
        residual.update(info["residual_exposure"])
    unfinished = [g.group_id for g in executor.open_groups()]
    for group in executor.open_groups():
        residual.update({s.occ: q for s, q in group.ledger.positions().items()})

    outcomes = tally.outcomes
    slippages = tally.slippage_per_unit
    stats = executor.stats
    report = SessionReport(
        config=config,
        outcomes={k: outcomes.get(k, 0) for k in ("committed", "rolled_back", "failed", "invalid")},
        invariant_violations=stats.invariant_violations,
        violation_samples=executor.violations[:20],
        residual_exposure={k: v for k, v in sorted(residual.items()) if v},
        failed_groups=[tally.failed[g] for g in sorted(tally.failed)],
        unaccounted_exposure=unaccounted,
        fills=tally.fills,
        unwind_orders=tally.unwind_orders,
        orders_sent=stats.orders_sent,
        events=stats.broker_events,
        stray_events=stats.stray_events,
        anomalies=tally.anomalies,
        alerts=tally.alerts,
        flagged_groups=tally.flagged,
        settle_p50=_percentile(tally.settle, 0.50),
        settle_p99=_percentile(tally.settle, 0.99),
        slippage_mean=round(statistics.fmean(slippages), 4) if slippages else None,
        slippage_p50=_percentile(slippages, 0.50),
        wall_seconds=wall,
        events_per_second=stats.broker_events / wall if wall > 0 else 0.0,
        sim_seconds=clock.seconds,
        chaos=dict(broker.stats),
        executor=attrs.asdict(stats),
        unfinished=unfinished,
        rollback_reasons=dict(sorted(tally.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        pnl=_session_pnl(tally),
        slippage_dollars=tally.slippage_dollars,
        anomaly_groups=tally.anomaly_groups,
        http_faults=http_faults,
        worst_groups=_worst_groups(tally),
        records=[tally.records[g] for g in sorted(tally.records)] if tally.records is not None else [],
    )
    if events_path is not None:
        _write_event_log(events_path, config, broker, report)
    return report


def _session_pnl(tally: _Tally) -> dict[str, Decimal | None]:
    """Dollars at fill prices: entry credits and debits, their net, unwinds, fees (None: not reported), total.

    Of the groups folded so far (:meth:`_Tally.fold_all` first for the whole session)."""
    credits, debits, unwind = tally.credits, tally.debits, tally.unwind
    return {"entry_credits": credits, "entry_debits": debits, "entry": credits + debits, "unwind": unwind,
            "fees": None, "total": credits + debits + unwind}


def _worst_groups(tally: _Tally) -> dict[str, list[dict[str, Any]]]:
    """The worst of the groups folded so far (:meth:`_Tally.fold_all` first for the whole session)."""
    # Only groups that took time: over the emulator a combo settles in 0 s, and "longest settle
    # G000001 0 s" named groups with nothing to look at (the page lists the same ones).
    settle = sorted(tally.longest_settle, key=_by_longest)
    costly = sorted(tally.costliest, key=_by_cost)
    return {
        "longest_settle": [{"group": g, "settle_seconds": round(v, 3)} for g, v in settle],
        "largest_unwind_cost": [{"group": g, "cost": str(v), "entry": str(e), "unwind": str(u)}
                                for g, v, e, u in costly if v < 0],
        "failed": [{"group": g, "residual": dict(info["residual_exposure"]), "reason": info.get("category"),
                    "detail": info["reason"]} for g, info in sorted(tally.failed.items())],
    }


def _write_event_log(path: Path, config: SessionConfig, broker: BrokerSimulator, report: SessionReport) -> None:
    """Header, the broker's lines, one line per group, the report (without wall-clock figures, so
    that the same seed writes the same bytes)."""
    def dumps(obj: dict[str, Any]) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)

    header = SessionHeader(seed=config.seed, profile=config.profile, mode=config.mode.value, backend=config.backend,
                           http_faults=config.http_faults, groups=config.groups)
    summary = {k: v for k, v in report.to_json().items() if k not in ("wall_seconds", "events_per_second")}
    with path.open("w", encoding="utf-8") as fh:
        fh.write(dumps(header.to_json()) + "\n")
        for line in broker.event_log_lines():
            fh.write(line + "\n")
        for rec in report.records:
            fh.write(dumps(rec.to_json()) + "\n")
        fh.write(dumps({"kind": "report", **summary}) + "\n")


def format_report(report: SessionReport) -> str:
    """A plain-text summary table of a session."""
    j = report.to_json()
    residual = sum(abs(v) for v in j["residual_exposure"].values())
    pnl = j["pnl"]
    lines = [
        f"atomic-orders simulate: seed={j['seed']} profile={j['profile']} mode={j['mode']} groups={j['groups']}",
        "",
        f"  committed            {j['outcomes']['committed']:>8}",
        f"  rolled back          {j['outcomes']['rolled_back']:>8}",
        f"  failed               {j['outcomes']['failed']:>8}",
        f"  invalid              {j['outcomes']['invalid']:>8}",
        *(f"    {reason:<19}{n:>8}   {'(reasons of the groups not committed)' if i == 0 else ''}".rstrip()
          for i, (reason, n) in enumerate(j["rollback_reasons"].items())),
        f"  unfinished           {len(j['unfinished_groups']):>8}",
        f"  invariant violations {j['invariant_violations']:>8}   (must be 0)",
        f"  unaccounted exposure {len(j['unaccounted_exposure']):>8}   (broker positions no group explains; must be 0)",
        f"  residual exposure    {residual:>8}   contracts (failed groups only)",
        f"  fills                {j['fills']:>8}",
        f"  orders sent          {j['orders_sent']:>8}   ({j['unwind_orders']} unwinds)",
        f"  anomaly events       {j['anomalies']:>8}   in {j['anomaly_groups']} groups"
        f" ({j['flagged_groups']} of them over-/late-filled)",
        f"  alerts raised        {j['alerts']:>8}   (re-opened or failed groups; --verbose prints them)",
        f"  settle p50 / p99     {_fmt(j['settle_seconds_p50']):>8} / {_fmt(j['settle_seconds_p99'])} s"
        "   (first fill -> committed or rolled back, simulated)",
        f"  slippage vs mid      {_fmt(j['slippage_per_unit_mean']):>8}   $/unit mean"
        f" (p50 {_fmt(j['slippage_per_unit_p50'])}); {_money(j['slippage_dollars'])} dollars over committed groups",
        "  P&L at fill prices, dollars (price x 100 multiplier x contracts; + = received):",
        f"    entry credits    {_money(pnl.get('entry_credits')):>12}",
        f"    entry debits     {_money(pnl.get('entry_debits')):>12}",
        f"    unwinds          {_money(pnl.get('unwind')):>12}   (what undoing rolled-back groups paid or received)",
        f"    fees             {_money(pnl.get('fees')):>12}",
        f"    total            {_money(pnl.get('total')):>12}",
        f"  broker events        {j['events']:>8}   ({j['events_per_second']:,.0f} per wall-clock second)",
        f"  wall time            {j['wall_seconds']:>8} s",
    ]
    if j["http_faults"]:
        lines.append("  http faults injected " + ", ".join(f"{k}={v}" for k, v in j["http_faults"].items())
                     + f"   (emulator, preset {j['http_faults_preset']})")
    worst = j["worst_groups"]
    if worst.get("longest_settle"):
        lines.append("  longest settle       " + ", ".join(
            f"{w['group']} {w['settle_seconds']:g} s" for w in worst["longest_settle"]))
    if worst.get("largest_unwind_cost"):
        lines.append("  largest unwind cost  " + ", ".join(
            f"{w['group']} {_money(w['cost'])}" for w in worst["largest_unwind_cost"]))
    if j["failed_groups"]:
        lines.append("")
        lines.append("  failed groups (residual exposure a human must handle):")
        for info in j["failed_groups"][:20]:
            lines.append(f"    {info['group']}: {info['residual_exposure']}  ({info.get('category', 'other')}:"
                         f" {info['reason']})")
        if len(j["failed_groups"]) > 20:
            lines.append(f"    ... and {len(j['failed_groups']) - 20} more (see --json)")
    if j["violation_samples"]:
        lines.append("")
        lines.append("  INVARIANT VIOLATIONS:")
        lines.extend(f"    {v}" for v in j["violation_samples"])
    chaos = {k: v for k, v in j["chaos"].items() if v}
    if chaos:
        lines.append("")
        lines.append("  chaos injected: " + ", ".join(f"{k}={v}" for k, v in sorted(chaos.items())))
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _money(value: str | Decimal | None) -> str:
    """Dollars with cents and thousands separators; None is a figure the backend does not report."""
    return "not reported" if value is None else f"{Decimal(value):,.2f}"

