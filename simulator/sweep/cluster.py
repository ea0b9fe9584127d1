"""A Dask client on this machine's cores or on a cluster, and a bounded map over it.

:func:`open_client` yields a :class:`distributed.Client`: a ``LocalCluster`` of worker PROCESSES
(one thread each: the sessions are CPU-bound Python, so threads would share one GIL) on
127.0.0.1 with no dashboard, or a client of an existing scheduler (``tcp://HOST:PORT``).
:func:`map_bounded` runs ``fn(item)`` for every item with at most ``window`` futures in flight
(10,000 seeds are not 10,000 futures held at once) and yields ``(item, result)`` as each finishes,
in completion order. ``fn`` must be a picklable, module-level pure function of its item. A
worker process that dies under a task (SIGKILL, out of memory) costs that item a bounded number of
re-runs, then ``lost(item, reason)`` stands for its result: the map never stops on one item's
worker, and never loses or repeats an item.

Dask is the optional extra ``sweep``: without it, :func:`open_client` raises
:class:`MissingDask` (one line naming the extra to install).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from atomic_orders.fsm.errors import ValidationError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["INSTALL_HINT", "MissingDask", "default_workers", "map_bounded", "open_client", "parse_scheduler"]

T = TypeVar("T")
R = TypeVar("R")

#: The one line printed when Dask is not installed.
INSTALL_HINT = "sweeps need Dask: install the 'sweep' extra (pip install 'atomic-orders[sweep]')"

#: Seconds to wait for a scheduler to answer before giving up (a wrong address fails, never hangs).
CONNECT_TIMEOUT = 10.0


class MissingDask(ImportError):
    """``dask.distributed`` is not installed; ``str()`` is :data:`INSTALL_HINT`."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


def _distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise MissingDask() from None


def default_workers() -> int:
    """Worker processes of a local cluster by default: the cores this process may run on (>= 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_scheduler(text: str) -> str:
    """``tcp://HOST:PORT`` -> the same address; else :class:`ValidationError` naming ``scheduler``."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # "tcp://[::1" fails in urlsplit itself, a bad port in .port
        raise ValidationError("scheduler", text, "expected tcp://HOST:PORT (a Dask scheduler's address)") from None
    if parts.scheme != "tcp" or not parts.hostname or port is None or port == 0 or parts.path not in ("", "/"):
        raise ValidationError("scheduler", text, "expected tcp://HOST:PORT (a Dask scheduler's address)")
    return f"tcp://{parts.netloc}"


def _probe(address: str) -> None:
    """Return when a Dask scheduler answers at ``address`` within :data:`CONNECT_TIMEOUT`; else refuse it.

    Asked before a ``Client`` is made because the client's own timeout covers only the TCP
    connect: a server that accepts and never speaks Dask (an HTTP server, a worker's port)
    would hold its handshake forever. Raises :class:`ValidationError` (field ``scheduler``).
    """
    import asyncio
    import concurrent.futures

    from distributed import core

    # distributed's rpc carries no annotations, and its operations are attributes made on demand.
    untyped: Any = core

    async def identity() -> Any:
        async with untyped.rpc(address, timeout=CONNECT_TIMEOUT) as remote:
            return await remote.identity()

    try:
        # On a thread of its own: asyncio.run refuses a thread whose event loop runs (a notebook).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            info = pool.submit(asyncio.run, asyncio.wait_for(identity(), CONNECT_TIMEOUT)).result()
    except Exception as err:  # refused, unresolvable, silent or not Dask: the address is the user's to fix
        raise ValidationError("scheduler", address, f"no Dask scheduler answered within {CONNECT_TIMEOUT:g} s "
                              f"({type(err).__name__}{': ' + str(err) if str(err) else ''})") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind != "Scheduler":
        raise ValidationError("scheduler", address, f"a Dask {kind or 'peer'} answered there, not a scheduler")


def _ignore_interrupt_plugin() -> Any:
    """A Dask worker plugin: the worker process ignores SIGINT (its setup runs on the worker's main thread).

    Made here, not at import: this module loads without Dask (a local class; Dask pickles it by value).
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    base: Any = WorkerPlugin  # distributed's classes carry no annotations

    class IgnoreInterrupt(base):  # type: ignore[misc]
        def setup(self, worker: object) -> None:
            import signal
            import threading

            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreInterrupt()


@contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A Dask client, closed (and its local cluster shut down) when the block ends.

    ``scheduler``: ``tcp://HOST:PORT`` of a running scheduler (``workers`` must then be None: the
    cluster has its own), or None for a local cluster of ``workers`` processes (default
    :func:`default_workers`), one thread each, on 127.0.0.1 without a dashboard.
    Raises :class:`MissingDask`, or :class:`ValidationError` for a bad address or worker count, or
    when no scheduler answers there within :data:`CONNECT_TIMEOUT`.
    """
    _distributed()
    import distributed

    # distributed's constructors and close() carry no annotations: held as Any here.
    dist: Any = distributed
    client: Any

    if scheduler is not None:
        if workers is not None:
            raise ValidationError("workers", workers, "a scheduler's cluster has its own workers; give one of the two")
        address = parse_scheduler(scheduler)
        _probe(address)
        try:
            client = dist.Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:  # it answered the probe, then went away
            raise ValidationError("scheduler", address, f"the scheduler stopped answering: {err}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = default_workers() if workers is None else workers
    if type(n) is not int or n < 1:
        raise ValidationError("workers", workers, "must be an int >= 1")
    # No dashboard. The scheduler serves its health and metrics routes over HTTP whatever it is
    # told (distributed 2026.8); without an address it takes 8787 and warns when that is taken, so
    # it gets a free port on the loopback instead.
    cluster: Any = dist.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None, silence_logs=logging.ERROR,
                                     scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    try:
        client = dist.Client(cluster)
        try:
            # A terminal's Ctrl-C reaches the whole foreground group, these workers included: each
            # would print its own KeyboardInterrupt trace. The sweep's process handles it and shuts
            # them down; restarted workers get the plugin too.
            client.register_plugin(_ignore_interrupt_plugin(), name="atomic-orders-ignore-sigint")
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def map_bounded(client: Client, fn: Callable[[T], R], items: Iterable[T], window: int, *, retries: int = 0,
                lost: Callable[[T, str], R] | None = None) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` for every item, as each finishes, with at most ``window`` tasks in flight.

    A task whose worker process died (Dask's ``KilledWorker``: the scheduler already re-ran it on
    another worker ``distributed.scheduler.allowed-failures`` times) is submitted again up to
    ``retries`` times; after that, with ``lost`` given, the item yields ``lost(item, reason)``
    (``reason`` names the error and the attempts), else the error is raised. Any other task
    exception is raised here. Either way the remaining futures are cancelled, as they are when the
    iterator is closed early.
    """
    import distributed

    # distributed's as_completed and cancel carry no annotations: held as Any here.
    dist: Any = distributed
    futures_of: Any = client
    if type(window) is not int or window < 1:
        raise ValidationError("window", window, "must be an int >= 1")
    if type(retries) is not int or retries < 0:
        raise ValidationError("retries", retries, "must be an int >= 0")
    source = iter(items)
    # future key -> (item, attempts so far): a re-submitted item keeps its count.
    pending: dict[object, tuple[T, int]] = {}

    def submit(item: T, attempt: int) -> Any:
        future = client.submit(fn, item, pure=False)
        pending[future.key] = (item, attempt)
        return future

    def submit_next() -> Any:
        for item in source:
            return submit(item, 1)
        return None

    first = [f for f in (submit_next() for _ in range(window)) if f is not None]
    if not first:
        return
    flow = dist.as_completed(first)
    try:
        for future in flow:
            item, attempt = pending.pop(future.key)
            if future.status == "error" and isinstance(future.exception(), dist.KilledWorker):
                error = future.exception()
                future.release()
                if attempt <= retries:
                    flow.add(submit(item, attempt + 1))
                    continue
                if lost is None:
                    raise error
                result = lost(item, f"{type(error).__name__}: {error} ({attempt} attempts)")
            else:
                result = future.result()
                future.release()
            more = submit_next()
            if more is not None:
                flow.add(more)
            yield item, result
    finally:
        if pending:
            futures_of.cancel(list(flow.futures))
