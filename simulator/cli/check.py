"""``atomic-orders check``, optionally on the sweep machinery: the exhaustive check's levels split over Dask.

:func:`run` runs :func:`~atomic_orders.simulator.proofs.exhaustive.run_check` with ``workers``
processes. By default the two execution modes are checked in parallel forked processes. With
``dask=True`` (``check --dask``) a local Dask cluster of ``workers`` processes
(:func:`atomic_orders.simulator.sweep.cluster.open_client`) runs the chunks of every level
(:func:`dask_mapper`); the report is identical to a serial run's either way. Dask is not the
default: measured on the 2-core box (loaded), ``check --depth 4`` took 63 s wall / 27 s CPU on
the forked modes against 190 s / 66 s on a two-worker cluster (cluster start-up, scattering each
level's known states, states re-checked across chunks). It is there for deeper checks on a
machine with more cores, or a cluster. Without Dask installed (the optional extra ``sweep``),
``--dask`` says so and the forked modes run instead.
"""

from __future__ import annotations

import functools
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.proofs.exhaustive import CheckReport, Mapper, run_check
from atomic_orders.simulator.sweep.cluster import MissingDask, map_bounded, open_client

if TYPE_CHECKING:
    from distributed import Client

#: Chunks in flight per worker (one running, one queued: a worker never waits for the next).
WINDOW_PER_WORKER = 2


def _call(fn: Callable[[Any, Any], Any], pair: tuple[Any, Any]) -> Any:
    return fn(pair[0], pair[1])


def dask_mapper(client: Client, window: int) -> Mapper:
    """A :data:`~atomic_orders.simulator.proofs.exhaustive.Mapper` on a Dask client.

    ``shared`` is scattered to every worker once per call (a level's known states travel once,
    not once per chunk); at most ``window`` chunks are in flight (:func:`map_bounded`).
    """
    dask_client: Any = client  # distributed carries no annotations

    def mapper(fn: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        [token] = dask_client.scatter([shared], broadcast=True, hash=False)  # one future, not one per field
        try:
            pairs = ((token, item) for item in items)
            for (_token, item), result in map_bounded(client, functools.partial(_call, fn), pairs, window):
                yield item, result
        finally:
            token.release()

    return mapper


def run(depth: int, modes: Sequence[ExecutionMode], *, quantity: int, workers: int,
        dask: bool = False) -> CheckReport:
    """The check with ``workers`` processes, on Dask when ``dask`` (see the module docstring)."""
    if dask and workers > 1:
        try:
            with open_client(workers=workers) as client:
                mapper = dask_mapper(client, WINDOW_PER_WORKER * workers)
                return run_check(depth, modes, quantity=quantity, workers=workers, mapper=mapper)
        except MissingDask as err:
            print(f"{err}; checking the modes in parallel processes instead", file=sys.stderr)
    return run_check(depth, modes, quantity=quantity, workers=workers)


#: The goal of issue 16: ``check --depth 7`` under 3 minutes of wall time on the 2-core box.
GOAL_DEPTH = 7
GOAL_SECONDS = 180.0


def check_figures(depth: int = GOAL_DEPTH, workers: int = 2,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time ``check --depth depth --workers workers`` (both modes) for ``atomic-orders bench``.

    Returns a JSON-ready dict: ``wall_s``, ``cpu_s`` (this process and its reaped children: the
    local cluster's workers), what was covered (``sequences``, ``states``, ``ok``) and, at the goal's
    depth, ``goal_s`` and ``goal_met`` (wall under :data:`GOAL_SECONDS`). A measurement, never an
    assertion: on a loaded machine the wall time is the other processes' too.
    """
    if progress is not None:
        progress(f"check --depth {depth} --workers {workers} ...")
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    report = run(depth, list(ExecutionMode), quantity=2, workers=workers)
    wall = time.perf_counter() - started
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
              for before, after in ((self_before, self_after), (children_before, children_after)))
    out: dict[str, Any] = {
        "depth": depth,
        "workers": workers,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "sequences": report.sequences,
        "states": report.states,
        "ok": report.ok,
    }
    if depth == GOAL_DEPTH:
        out["goal_s"] = GOAL_SECONDS
        out["goal_met"] = wall < GOAL_SECONDS
    return out


def format_check_figures(figures: dict[str, Any]) -> str:
    """The bench's ``check`` section as text: the figure beside its goal."""
    what = f"check --depth {figures['depth']} --workers {figures['workers']}"
    goal = ""
    if "goal_s" in figures:
        goal = f"  goal < {figures['goal_s']:.0f} s wall  {'MET' if figures['goal_met'] else 'MISSED'}"
    return "\n".join([
        f"{'exhaustive check':<32} {'wall s':>12} {'CPU s':>12}  goal",
        "-" * 80,
        f"{what:<32} {figures['wall_s']:>12.1f} {figures['cpu_s']:>12.1f}{goal}",
        f"  {figures['sequences']:,} sequences, {figures['states']:,} distinct states, "
        f"{'no counterexample' if figures['ok'] else 'COUNTEREXAMPLE FOUND'}",
    ])
