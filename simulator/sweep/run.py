"""Run a sweep: the seeds not yet in the results file, on Dask, each line written as it finishes.

:func:`run_sweep` opens the results file (:mod:`.results`; refusing another config), runs every
requested seed it does not hold through :func:`~.cluster.map_bounded` on :func:`~.cluster.open_client`,
appends each line as it arrives, and returns the :class:`~.report.SweepReport` over all the
requested seeds (those run now and those found in the file). Killed at any moment, the same
call later runs only what is missing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.sweep.cluster import map_bounded, open_client
from atomic_orders.simulator.sweep.report import SweepReport, aggregate
from atomic_orders.simulator.sweep.results import ResultsFile
from atomic_orders.simulator.sweep.task import SweepConfig, lost_line, run_seed

__all__ = ["WINDOW_PER_WORKER", "WORKER_RETRIES", "run_sweep"]

#: Futures in flight per worker thread: enough to keep every worker busy between two results,
#: few enough that a 1,000,000-seed sweep holds a few thousand futures at most.
WINDOW_PER_WORKER = 4
#: Re-submissions of a seed whose worker process died under it (on top of Dask's own re-runs,
#: ``distributed.scheduler.allowed-failures``); then its line says "worker lost" and it fails.
#: Bounded: a seed that kills every worker it runs on (memory) must not stall the sweep.
WORKER_RETRIES = 2


def run_sweep(seeds: Sequence[int], config: SweepConfig, results: Path, *, scheduler: str | None = None,
              workers: int | None = None, on_start: Callable[[int, int], None] | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None) -> SweepReport:
    """Run ``seeds`` under ``config``, streaming lines to ``results``; the report over every seed.

    ``scheduler``/``workers`` as :func:`~.cluster.open_client`. ``on_start(total, already_done)``
    is called once before any task; ``on_result(line)`` after each line is on disk. Raises
    :class:`ValidationError` for a results file of another config, :class:`~.cluster.MissingDask`
    without Dask.
    """
    if not seeds:
        raise ValidationError("seeds", list(seeds), "no seed to run")
    started = time.perf_counter()
    with ResultsFile.open(results, config.to_json()) as file:
        todo = [s for s in seeds if s not in file.done]
        if on_start is not None:
            on_start(len(seeds), len(seeds) - len(todo))
        if todo:
            with open_client(scheduler, workers) as client:
                untyped: Any = client  # Client.nthreads carries no annotations
                threads = sum(untyped.nthreads().values()) or 1
                task = functools.partial(run_seed, config=config)
                for _seed, line in map_bounded(client, task, todo, WINDOW_PER_WORKER * threads,
                                               retries=WORKER_RETRIES,
                                               lost=lambda seed, why: lost_line(seed, config, why)):
                    file.append(line)
                    if on_result is not None:
                        on_result(line)
        wanted = set(seeds)
        lines = [line for seed, line in file.done.items() if seed in wanted]
    return aggregate(lines, config, ran_now=len(todo), elapsed=time.perf_counter() - started,
                     results_path=str(results))
