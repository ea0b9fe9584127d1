"""A whole simulated trading session: many iron condors against a hostile, deterministic broker.

This is the project's main job (``atomic-orders simulate``). One seed makes the session: the
market path, the chaos, the times and shapes of the condors. Every group must end committed,
rolled back, or failed with its residual exposure stated; the report proves it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

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

#: Where a session's orders go: the simulated broker in process, or the same broker behind the
#: TastyTrade emulator over HTTP through the real client (loaded only when asked for).
BACKEND_NAMES = ("simulated", "tastytrade-emulator")

#: Condors are placed from this many seconds after the open ...
FIRST_ENTRY_SECONDS = 120.0
#: ... until this many seconds before the close, leaving time to finish or roll back.
LAST_ENTRY_BEFORE_CLOSE = 45 * 60.0
#: The session keeps running after the close at most this long (day orders expire at the close).
AFTER_CLOSE_SECONDS = 3600.0


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

    def __attrs_post_init__(self) -> None:
        if type(self.groups) is not int or self.groups < 0:
            raise ValueError(f"groups={self.groups!r}: must be an int >= 0")
        if type(self.max_quantity) is not int or self.max_quantity < 1:
            raise ValueError(f"max_quantity={self.max_quantity!r}: must be an int >= 1")
        ChaosProfile.preset(self.profile)  # raises a clear error naming a bad profile
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"backend={self.backend!r}: expected 'simulated' or 'tastytrade-emulator'")


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
        }

    @property
    def ok(self) -> bool:
        """No violation, no unaccounted exposure, every group finished."""
        return not self.invariant_violations and not self.unaccounted_exposure and not self.unfinished


class _Tally:
    """Compact aggregates of finished groups (the groups themselves are released)."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}
        self.fills: dict[str, int] = {}
        self.unwinds: dict[str, int] = {}
        self.settle: dict[str, float] = {}
        self.slippage: dict[str, Decimal] = {}
        self.failed: dict[str, dict[str, Any]] = {}
        self.flagged: set[str] = set()
        self.alerts: dict[str, int] = {}
        self.final_positions: dict[str, dict[str, int]] = {}

    def record(self, group: AtomicOrderGroup, s: GroupSummary) -> None:
        # Keyed by group: a group re-opened by a late fill and finished again counts once.
        gid = s.group_id
        self.outcome[gid] = s.state
        self.fills[gid] = s.fills
        self.unwinds[gid] = s.unwind_orders
        if s.settle_seconds is not None:
            self.settle[gid] = s.settle_seconds
        if s.slippage_per_unit is not None:
            self.slippage[gid] = s.slippage_per_unit
        if s.flagged:
            self.flagged.add(gid)
        self.alerts[gid] = len(s.alerts)
        self.final_positions[gid] = dict(s.residual_exposure)
        if s.state == "failed":
            self.failed[gid] = {"group": gid, "residual_exposure": dict(s.residual_exposure),
                                "reason": s.rollback_reason, "alerts": list(s.alerts)}
        else:
            self.failed.pop(gid, None)


def session_config_json(config: SessionConfig) -> dict[str, Any]:
    """The session's configuration as journaled (no credentials: the simulator needs none)."""
    return {"seed": config.seed, "groups": config.groups, "profile": config.profile, "mode": config.mode.value,
            "max_quantity": config.max_quantity, "backend": config.backend, "http_faults": config.http_faults,
            "session_seconds": config.session_seconds}


def _percentile(values: list[float], q: float) -> float | None:
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
    )
    backend: ExecutionBackend = SimulatedBackend(broker)
    driver: Any = broker  # what the loop advances: the simulator itself, or the emulator's driver
    if config.backend == "tastytrade-emulator":
        from atomic_orders.simulator.emulator import EmulatorDriver, HttpFaults

        driver = EmulatorDriver(broker, faults=HttpFaults.preset(config.http_faults), fault_seed=config.seed)
        backend = driver.backend
    tally = _Tally()
    done = [0]

    def finished(group: AtomicOrderGroup, summary: GroupSummary) -> None:
        first_time = summary.group_id not in tally.outcome
        tally.record(group, summary)
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
        release_finished=True,
        keep_summaries=False,
        verify_replay=config.verify_replay,
        session_id="",  # a fresh simulated account: plain ids (G000001), reproducible per seed
        journal=journal,
    )
    clock = broker.clock

    rng = make_rng(config.seed, "session-plan")
    last_entry = config.session_seconds - LAST_ENTRY_BEFORE_CLOSE
    first_entry = min(FIRST_ENTRY_SECONDS, last_entry)
    entries = sorted(rng.uniform(first_entry, last_entry) for _ in range(config.groups))
    plan = [
        (t, rng.randint(1, config.max_quantity), rng.choice(config.widths), rng.choice(config.wing_distances))
        for t in entries
    ]
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
        if next_entry < len(plan):
            candidates.append(plan[next_entry][0])
        if not candidates:
            break
        t = max(min(candidates), clock.seconds)
        if t > horizon:
            break
        driver.advance_to(t)
        while next_entry < len(plan) and plan[next_entry][0] <= t:
            _, qty, width, wing = plan[next_entry]
            next_entry += 1
            sc, lc, sp, lp = market.strikes_for_iron_condor(t, expiry, width, wing)
            executor.execute_iron_condor(short_call=sc, long_call=lc, short_put=sp, long_put=lp, quantity=qty,
                                          mode=config.mode)
        executor.process_events()
        executor.on_timer()
        if next_entry >= len(plan) and not executor.open_groups() and t >= config.session_seconds:
            break

    executor.process_events()
    if journal is not None:
        journal.close()
    wall = time.perf_counter() - wall_start
    if on_end is not None:
        on_end(broker, executor)

    if events_path is not None:
        with events_path.open("w", encoding="utf-8") as fh:
            for line in broker.event_log_lines():
                fh.write(line + "\n")

    # Exposure the broker holds that no group accounts for would be a lost fill.
    expected: Counter[str] = Counter()
    for positions in tally.final_positions.values():
        expected.update(positions)
    for group in executor.open_groups():
        expected.update({s.occ: q for s, q in group.ledger.positions().items()})
    actual: Counter[str] = Counter({s.occ: q for s, q in backend.positions().items() if q})
    if driver is not broker:
        driver.close()
    unaccounted = {k: actual.get(k, 0) - expected.get(k, 0) for k in set(actual) | set(expected)}
    unaccounted = {k: v for k, v in sorted(unaccounted.items()) if v}

    residual: Counter[str] = Counter()
    for info in tally.failed.values():
        residual.update(info["residual_exposure"])
    unfinished = [g.group_id for g in executor.open_groups()]
    for group in executor.open_groups():
        residual.update({s.occ: q for s, q in group.ledger.positions().items()})

    outcomes = Counter(tally.outcome.values())
    slippages = [float(v) for v in tally.slippage.values()]
    stats = executor.stats
    return SessionReport(
        config=config,
        outcomes={k: outcomes.get(k, 0) for k in ("committed", "rolled_back", "failed", "invalid")},
        invariant_violations=stats.invariant_violations,
        violation_samples=executor.violations[:20],
        residual_exposure={k: v for k, v in sorted(residual.items()) if v},
        failed_groups=[tally.failed[g] for g in sorted(tally.failed)],
        unaccounted_exposure=unaccounted,
        fills=sum(tally.fills.values()),
        unwind_orders=sum(tally.unwinds.values()),
        orders_sent=stats.orders_sent,
        events=stats.broker_events,
        stray_events=stats.stray_events,
        anomalies=stats.anomalies,
        alerts=sum(tally.alerts.values()),
        flagged_groups=len(tally.flagged),
        settle_p50=_percentile(list(tally.settle.values()), 0.50),
        settle_p99=_percentile(list(tally.settle.values()), 0.99),
        slippage_mean=round(statistics.fmean(slippages), 4) if slippages else None,
        slippage_p50=_percentile(slippages, 0.50),
        wall_seconds=wall,
        events_per_second=stats.broker_events / wall if wall > 0 else 0.0,
        sim_seconds=clock.seconds,
        chaos=dict(broker.stats),
        executor=attrs.asdict(stats),
        unfinished=unfinished,
    )


def format_report(report: SessionReport) -> str:
    """A plain-text summary table of a session."""
    j = report.to_json()
    residual = sum(abs(v) for v in j["residual_exposure"].values())
    lines = [
        f"atomic-orders simulate: seed={j['seed']} profile={j['profile']} mode={j['mode']} groups={j['groups']}",
        "",
        f"  committed            {j['outcomes']['committed']:>8}",
        f"  rolled back          {j['outcomes']['rolled_back']:>8}",
        f"  failed               {j['outcomes']['failed']:>8}",
        f"  invalid              {j['outcomes']['invalid']:>8}",
        f"  unfinished           {len(j['unfinished_groups']):>8}",
        f"  invariant violations {j['invariant_violations']:>8}   (must be 0)",
        f"  unaccounted exposure {len(j['unaccounted_exposure']):>8}   (broker positions no group explains; must be 0)",
        f"  residual exposure    {residual:>8}   contracts (failed groups only)",
        f"  fills                {j['fills']:>8}",
        f"  orders sent          {j['orders_sent']:>8}   ({j['unwind_orders']} unwinds)",
        f"  anomalies flagged    {j['anomalies']:>8}   ({j['flagged_groups']} groups over-/late-filled)",
        f"  alerts raised        {j['alerts']:>8}   (re-opened or failed groups; --verbose prints them)",
        f"  settle p50 / p99     {_fmt(j['settle_seconds_p50']):>8} / {_fmt(j['settle_seconds_p99'])} s"
        "   (first fill -> committed or rolled back, simulated)",
        f"  slippage vs mid      {_fmt(j['slippage_per_unit_mean']):>8}   $/unit mean"
        f" (p50 {_fmt(j['slippage_per_unit_p50'])})",
        f"  broker events        {j['events']:>8}   ({j['events_per_second']:,.0f} per wall-clock second)",
        f"  wall time            {j['wall_seconds']:>8} s",
    ]
    if j["failed_groups"]:
        lines.append("")
        lines.append("  failed groups (residual exposure a human must handle):")
        for info in j["failed_groups"][:20]:
            lines.append(f"    {info['group']}: {info['residual_exposure']}  ({info['reason']})")
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

