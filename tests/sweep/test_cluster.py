"""The reusable machinery: a local cluster of worker processes and the bounded map over it."""

from __future__ import annotations

import os

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


def test_bad_arguments_are_refused_naming_the_value() -> None:
    with pytest.raises(ValidationError, match="window"):
        list(map_bounded(object(), _boom, [1], window=0))  # type: ignore[arg-type]
    for bad in ("127.0.0.1:8786", "tcp://127.0.0.1", "http://h:1", "tcp://h:0"):
        with pytest.raises(ValidationError, match="scheduler"):
            parse_scheduler(bad)
    assert parse_scheduler("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
    with pytest.raises(ValidationError, match="workers"), open_client(None, 0):
        pass
