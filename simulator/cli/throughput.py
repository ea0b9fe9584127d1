"""Throughput and memory of whole simulated sessions, for ``atomic-orders bench``.

The issue's scale target: a hostile session of 10,000 iron condors finishes on one core in under
60 s of wall time, with memory that stays flat once groups finish (finished groups are
summarised and released). This measures both, in the same process as the machine benchmarks.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.ticket import OrderTicket
from atomic_orders.simulator.session.runner import SessionConfig, run_session


def session_throughput(groups: int, mode: ExecutionMode, seed: int = 3, profile: str = "hostile") -> dict[str, Any]:
    """Wall time and groups per second of one session, plus its outcome counts."""
    gc.collect()
    start = time.perf_counter()
    report = run_session(SessionConfig(seed=seed, groups=groups, profile=profile, mode=mode))
    wall = time.perf_counter() - start
    return {
        "groups": groups,
        "wall_s": round(wall, 3),
        "groups_per_s": round(groups / wall, 1) if wall > 0 else 0.0,
        "broker_events": report.events,
        "invariant_violations": report.invariant_violations,
        "outcomes": report.outcomes,
    }


def session_memory(groups: int, mode: ExecutionMode, samples: int = 5, seed: int = 3) -> dict[str, Any]:
    """Traced memory (KiB) after each ``groups/samples`` finished groups: flat means released.

    Run with tracemalloc on (slower), so it uses its own, smaller session.
    """
    marks = {max(1, round(groups * (i + 1) / samples)) for i in range(samples)}
    points: list[tuple[int, float]] = []
    alive: list[tuple[int, int, int]] = []

    def on_finished(done: int, _total: int) -> None:
        if done in marks:
            gc.collect()
            points.append((done, round(tracemalloc.get_traced_memory()[0] / 1024, 1)))
            objs = gc.get_objects()
            groups_alive = sum(1 for o in objs if type(o) is AtomicOrderGroup)
            tickets_alive = sum(1 for o in objs if type(o) is OrderTicket)
            alive.append((done, groups_alive, tickets_alive))

    gc.collect()
    tracemalloc.start()
    try:
        config = SessionConfig(seed=seed, groups=groups, profile="hostile", mode=mode)
        run_session(config, on_group_finished=on_finished)
    finally:
        tracemalloc.stop()
    return {
        "groups": groups,
        "traced_kib_after_finished": points,
        # includes the simulated exchange, which keeps every order's status and fills for reconcile
        "kib_per_1000_finished_groups": _growth(points),
        # (finished, AtomicOrderGroup objects alive, OrderTicket objects alive): bounded by the
        # groups still lingering (routable for late fills), not by how many have finished
        "alive_after_finished": alive,
    }


def _growth(points: list[tuple[int, float]]) -> float | None:
    """KiB per 1,000 finished groups between the second sample and the last (skips warm-up)."""
    if len(points) < 3:
        return None
    (g1, m1), (g2, m2) = points[1], points[-1]
    return round((m2 - m1) / (g2 - g1) * 1000, 1) if g2 > g1 else None


def journal_overhead(groups: int, backend: str = "simulated", profile: str = "hostile",
                     seed: int = 3) -> dict[str, Any]:
    """The same session without a journal, with ``sync=normal`` and with ``sync=full``: wall and groups/s.

    Through the simulator the session itself is nearly free, so the journal's commits (one per
    intent and one per broker event batch, written before anything acts on them) are most of the
    cost; through the TastyTrade client over HTTP they are a small share.
    """
    import tempfile
    from pathlib import Path

    out: dict[str, Any] = {"groups": groups, "backend": backend, "profile": profile}
    with tempfile.TemporaryDirectory() as tmp:
        for label, sync in (("none", None), ("normal", "normal"), ("full", "full")):
            path = Path(tmp) / f"{label}.journal" if sync else None
            gc.collect()
            start = time.perf_counter()
            report = run_session(SessionConfig(seed=seed, groups=groups, profile=profile, backend=backend),
                                 journal_path=path, journal_sync=sync or "full")
            wall = time.perf_counter() - start
            out[label] = {"wall_s": round(wall, 3), "groups_per_s": round(groups / wall, 1) if wall > 0 else 0.0,
                          "invariant_violations": report.invariant_violations}
            if path is not None:
                out[label]["journal_bytes_per_group"] = round(path.stat().st_size / max(groups, 1))
    base = out["none"]["wall_s"]
    for label in ("normal", "full"):
        out[label]["overhead_pct"] = round((out[label]["wall_s"] / base - 1) * 100, 1) if base > 0 else None
    return out


def simulation_figures(quick: bool = False) -> dict[str, Any]:
    """``sim_groups_per_s`` (hostile, combo and legged) and memory growth, for the bench report."""
    n = 300 if quick else 10_000
    combo = session_throughput(n, ExecutionMode.COMBO)
    legged = session_throughput(n, ExecutionMode.LEGGED)
    memory = session_memory(200 if quick else 2_000, ExecutionMode.LEGGED)
    journal_sim = journal_overhead(300 if quick else 2_000)
    journal_http = journal_overhead(20 if quick else 100, backend="tastytrade-emulator", profile="rough")
    from atomic_orders.simulator.cli.live_bench import executor_tick_figures, live_reaction_figures
    from atomic_orders.simulator.cli.streamer_bench import streamer_figures
    from atomic_orders.simulator.cli.tastytrade_bench import tastytrade_figures

    return {
        **tastytrade_figures(quick),
        **streamer_figures(quick),
        **executor_tick_figures(quick),
        **live_reaction_figures(quick),
        "sim_groups_per_s_journal_off": journal_sim["none"]["groups_per_s"],
        "sim_groups_per_s_journal_normal": journal_sim["normal"]["groups_per_s"],
        "sim_groups_per_s_journal_full": journal_sim["full"]["groups_per_s"],
        "emulator_groups_per_s_journal_off": journal_http["none"]["groups_per_s"],
        "emulator_groups_per_s_journal_normal": journal_http["normal"]["groups_per_s"],
        "emulator_groups_per_s_journal_full": journal_http["full"]["groups_per_s"],
        "journal_simulated": journal_sim,
        "journal_emulator": journal_http,
        "sim_groups_per_s": combo["groups_per_s"],
        "sim_groups_per_s_legged": legged["groups_per_s"],
        "sim_hostile_combo": combo,
        "sim_hostile_legged": legged,
        "sim_memory": memory,
        "sim_10k_under_60s": (not quick) and combo["wall_s"] < 60 and legged["wall_s"] < 60,
    }
