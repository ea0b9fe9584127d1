"""The sweep's figure for ``atomic-orders bench --sweep``: seeds per minute on 1 and 2 worker processes.

:func:`sweep_throughput` runs the same seeds on a local cluster of one worker process, then of
two, and returns seeds per minute for each, their ratio (goal :data:`SPEEDUP_GOAL` on a 2-core
machine) and whether both gave the same result per seed (the fingerprints agree). Cluster start
and each worker's first imports are outside the timing (a warm-up task per worker), so the figure
is the sweep's own rate. Wall-clock figures: other processes on the machine lower them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from atomic_orders.simulator.sweep.cluster import map_bounded, open_client
from atomic_orders.simulator.sweep.run import WINDOW_PER_WORKER
from atomic_orders.simulator.sweep.task import SweepConfig, run_seed

__all__ = ["SPEEDUP_GOAL", "format_throughput", "sweep_throughput"]

#: Seeds per minute on 2 workers over 1 worker, on a 2-core machine (issue 16).
SPEEDUP_GOAL = 1.8


def _warm() -> bool:
    # Imports the session's modules in the worker before the timing starts.
    from atomic_orders.simulator.session import runner

    return runner is not None


def sweep_throughput(seeds: int = 40, groups: int = 100, profile: str = "hostile", mode: str = "combo",
                     workers: Sequence[int] = (1, 2), progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``{"seeds", "groups", "profile", "mode", "seeds_per_minute": {"1": x, "2": y},
    "seeds_per_cpu_minute": {...}, "speedup", "speedup_goal", "same_results"}``.

    ``speedup`` is the last worker count's wall-clock rate over the first's. Seeds per CPU-minute
    (the workers' own CPU time) shows the per-seed cost apart from the machine's load: equal for
    every worker count, the sweep adds no cost per seed, and a speedup below the worker count
    comes from cores the workers did not get.
    """
    config = SweepConfig(groups=groups, profile=profile, mode=mode)
    task = functools.partial(run_seed, config=config)
    rates: dict[str, float] = {}
    cpu_rates: dict[str, float] = {}
    prints: dict[int, list[str]] = {}
    for n in workers:
        with open_client(None, n) as client:
            untyped: Any = client  # Client.run carries no annotations
            untyped.run(_warm)
            started = time.perf_counter()
            lines = dict(map_bounded(client, task, range(1, seeds + 1), WINDOW_PER_WORKER * n))
            elapsed = time.perf_counter() - started
        rates[str(n)] = round(seeds / elapsed * 60, 1)
        cpu = sum(float(line.get("cpu", 0.0)) for line in lines.values())
        cpu_rates[str(n)] = round(seeds / cpu * 60, 1) if cpu else 0.0
        prints[n] = [str(lines[s].get("fingerprint")) + str(lines[s].get("ok")) for s in sorted(lines)]
        if progress is not None:
            progress(f"sweep: {seeds} seeds x {groups} groups on {n} worker(s): {rates[str(n)]} seeds/min")
    first, last = str(workers[0]), str(workers[-1])
    return {"seeds": seeds, "groups": groups, "profile": profile, "mode": mode, "seeds_per_minute": rates,
            "seeds_per_cpu_minute": cpu_rates,
            "speedup": round(rates[last] / rates[first], 2) if rates[first] else None,
            "speedup_goal": SPEEDUP_GOAL, "same_results": len({tuple(p) for p in prints.values()}) == 1}


def format_throughput(figures: dict[str, Any]) -> str:
    """The figures as lines for the bench report."""
    cpu = figures.get("seeds_per_cpu_minute", {})
    rates = ", ".join(f"{n} worker(s) {r} seeds/min ({cpu.get(n)} per CPU-minute)"
                      for n, r in figures["seeds_per_minute"].items())
    speedup = figures["speedup"]
    met = speedup is not None and speedup >= figures["speedup_goal"]
    return (f"sweep ({figures['seeds']} seeds x {figures['groups']} groups, {figures['profile']} {figures['mode']}): "
            f"{rates}\n  speedup {speedup} (goal >= {figures['speedup_goal']} on 2 cores) {'MET' if met else 'MISSED'};"
            f" same results on every worker count: {'yes' if figures['same_results'] else 'NO'}")
