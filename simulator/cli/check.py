"""``atomic-orders check`` on the sweep machinery: the exhaustive check's levels split over Dask.

:func:`run` runs :func:`~atomic_orders.simulator.proofs.exhaustive.run_check` with ``workers``
worker processes: a local Dask cluster (:func:`atomic_orders.simulator.sweep.cluster.open_client`)
runs the chunks of every level (:func:`dask_mapper`), and the report is identical to a serial
run's. With one worker, or without Dask installed (the optional extra ``sweep``), no cluster is
started; without Dask the two modes are checked in parallel forked processes instead, as before.
"""

from __future__ import annotations

import functools
import sys
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


def run(depth: int, modes: Sequence[ExecutionMode], *, quantity: int, workers: int) -> CheckReport:
    """The check with ``workers`` processes (see the module docstring)."""
    if workers > 1:
        try:
            with open_client(workers=workers) as client:
                mapper = dask_mapper(client, WINDOW_PER_WORKER * workers)
                return run_check(depth, modes, quantity=quantity, workers=workers, mapper=mapper)
        except MissingDask as err:
            print(f"{err}; checking the modes in parallel processes instead", file=sys.stderr)
    return run_check(depth, modes, quantity=quantity, workers=workers)
