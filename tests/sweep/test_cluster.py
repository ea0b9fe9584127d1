"""The reusable machinery: a local cluster of worker processes and the bounded map over it."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.sweep.cluster import map_bounded, open_client, parse_scheduler


def _square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def _boom(n: int) -> int:
    if n == 3:
        raise RuntimeError(f"item {n} failed")
    return n


def test_map_bounded_runs_every_item_once_in_worker_processes() -> None:
    with open_client(None, 2) as client:
        got = list(map_bounded(client, _square_and_pid, range(25), window=3))
        assert sorted(item for item, _ in got) == list(range(25))
        assert all(result[0] == item * item for item, result in got)
        pids = {result[1] for _, result in got}
        assert os.getpid() not in pids  # processes, not threads of this one
        assert len(client.scheduler_info()["workers"]) == 2


def test_a_task_error_is_raised_by_the_map() -> None:
    with open_client(None, 1) as client, pytest.raises(RuntimeError, match="item 3 failed"):
        list(map_bounded(client, _boom, range(6), window=2))


def _die_under(item: tuple[int, str]) -> int:
    """SIGKILL this worker process: item 2 on its first run only (a marker file), item 4 every time."""
    n, folder = item
    marker = Path(folder) / f"died-{n}"
    if n == 4 or (n == 2 and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return n


def test_a_worker_killed_under_a_task_neither_stops_the_map_nor_loses_or_repeats_an_item(tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(6)]
    # Dask's own re-runs off (they happen in this process's scheduler), so each death is ours to see.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), open_client(None, 2) as client:
        got: list[tuple[tuple[int, str], int | str]] = list(
            # One task in flight: a dying worker takes down every task queued on it, and with Dask's
            # re-runs off each of them is charged an attempt (a retry of item 2 queued behind item 4
            # was lost in CI); in a sweep such a seed is re-sent and at worst reported lost, never wrong.
            map_bounded(client, _die_under, items, window=1, retries=1, lost=lambda _item, why: why))
    assert sorted(item[0] for item, _ in got) == list(range(6))  # each item exactly once
    results = {item[0]: result for item, result in got}
    assert results[2] == 2  # died once, re-run, finished
    assert isinstance(results[4], str)  # died on every attempt: recorded as lost, with the reason
    assert results[4].startswith("KilledWorker") and "(2 attempts)" in results[4]
    assert [results[n] for n in (0, 1, 3, 5)] == [0, 1, 3, 5]


def test_bad_arguments_are_refused_naming_the_value() -> None:
    with pytest.raises(ValidationError, match="window"):
        list(map_bounded(object(), _boom, [1], window=0))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="retries"):
        list(map_bounded(object(), _boom, [1], window=1, retries=-1))  # type: ignore[arg-type]
    for bad in ("127.0.0.1:8786", "tcp://127.0.0.1", "http://h:1", "tcp://h:0"):
        with pytest.raises(ValidationError, match="scheduler"):
            parse_scheduler(bad)
    assert parse_scheduler("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    with pytest.raises(ValidationError, match="workers"), open_client(None, 0):
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1: it accepts a connection and waits for a request, never speaking Dask."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_scheduler_address_where_no_scheduler_answers_is_refused_not_waited_on(http_server: str) -> None:
    for address in (http_server, f"tcp://127.0.0.1:{_closed_port()}"):
        with pytest.raises(ValidationError, match="no Dask scheduler answered within"), open_client(address):
            pass
    with pytest.raises(ValidationError, match="scheduler"):
        parse_scheduler("tcp://[::1")  # urlsplit's own ValueError, said as the option's error


def test_the_scheduler_is_asked_even_from_a_thread_whose_event_loop_runs() -> None:
    """A notebook's thread has a running loop: the question must not fail on that instead of the address."""
    import asyncio

    async def inside() -> str:
        with pytest.raises(ValidationError) as info, open_client(f"tcp://127.0.0.1:{_closed_port()}"):
            pass
        return info.value.reason

    reason = asyncio.run(inside())
    assert "no Dask scheduler answered" in reason and "RuntimeError" not in reason, reason


def test_the_command_says_an_unanswering_scheduler_in_one_line(http_server: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", "sweep", "--seeds", "1", "--groups",
                           "1", "--scheduler", http_server, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"atomic-orders sweep: error: --scheduler '{http_server}': no Dask scheduler")
    assert len(done.stderr.strip().splitlines()) == 1
