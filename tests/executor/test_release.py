"""Finished work is freed at once: no reference cycle keeps a settled group, and the simulated
broker keeps a settled order as a summary, not its request.

Each test runs a hostile session with the cyclic garbage collector switched off, so anything
still alive at the end is kept by a reference (or a cycle), never merely not yet collected.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import attrs
import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.events import Fill
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.orders import BrokerStatus, OrderRequest
from atomic_orders.fsm.ticket import OrderTicket
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.session.runner import SessionConfig, run_session


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    _BEFORE[:] = [obj for obj in gc.get_objects() if isinstance(obj, (AtomicOrderGroup, OrderTicket, OrderRequest))]
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        _BEFORE.clear()


#: Objects alive before a test's session (another test's fixtures may hold some): held here, so
#: their ids are not reused, and left out of the count.
_BEFORE: list[object] = []


def _alive(kind: type) -> int:
    """How many ``kind`` objects exist that did not before the test (see :func:`no_cyclic_gc`)."""
    old = {id(obj) for obj in _BEFORE}
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind) and id(obj) not in old)


@pytest.mark.parametrize("mode", [ExecutionMode.COMBO, ExecutionMode.LEGGED])
def test_released_groups_and_tickets_die_without_a_collector_pass(no_cyclic_gc: None, mode: ExecutionMode) -> None:
    seen: dict[str, int] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        seen["open"] = len(executor.open_groups())
        seen["groups"] = _alive(AtomicOrderGroup)
        seen["tickets"] = _alive(OrderTicket)

    report = run_session(SessionConfig(seed=5, groups=40, profile="hostile", mode=mode), on_end=inspect)
    assert sum(report.outcomes.values()) == 40 and seen["open"] == 0
    assert seen["groups"] == 0, f"{seen['groups']} finished groups still referenced after release"
    assert seen["tickets"] == 0, f"{seen['tickets']} tickets of finished groups still referenced"


def test_a_session_leaves_no_cyclic_garbage(no_cyclic_gc: None) -> None:
    run_session(SessionConfig(seed=6, groups=30, profile="hostile", mode=ExecutionMode.LEGGED))
    assert gc.collect() == 0  # everything the session made was freed by reference counting


def test_settled_orders_are_summaries_that_still_answer_reconcile(no_cyclic_gc: None) -> None:
    seen: dict[str, object] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        broker.orders_seen.clear()  # an un-inspected session keeps none (keep_requests=False)
        seen["requests"] = _alive(OrderRequest)
        refs = [ref for ref in broker._orders]
        seen["reports"] = broker.reconcile(refs)
        seen["fills"] = {ref: broker.order_fills(ref) for ref in refs}

    run_session(SessionConfig(seed=7, groups=30, profile="hostile"), on_end=inspect)
    assert seen["requests"] == 0, "a settled order still holds its request"
    reports = seen["reports"]
    assert isinstance(reports, dict) and reports
    filled = [r for r in reports.values() if r.status is BrokerStatus.FILLED]
    assert filled and all(r.fills and r.broker_order_id for r in filled)
    for r in filled:
        assert r.fills == seen["fills"][r.order_ref]  # type: ignore[index]
        assert all(isinstance(f, Fill) for f in r.fills)


def test_lingering_groups_keep_no_audit_trail_and_outcomes_do_not_change() -> None:
    lingering: list[AtomicOrderGroup] = []

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        lingering.extend(g for g in executor._groups.values() if g.is_terminal)

    # lingering past the session's end, so the end sees them; late fills still arrive meanwhile
    policy = ExecutionPolicy(linger_seconds=100_000.0)
    config = SessionConfig(seed=3, groups=60, profile="hostile", mode=ExecutionMode.LEGGED, policy=policy)
    compact = run_session(config, on_end=inspect)
    assert lingering, "the session should end with finished groups still held for late events"
    # what a finished group still records is what came after its finish (late fills, reconciles)
    assert not any(r.trigger in ("validate", "start") for g in lingering for r in g.audit)
    assert not any(r.source == "new" for g in lingering for t in g.tickets for r in t.order_events)
    # verify_replay needs the whole trail, so that session keeps it: the same decisions either way
    full = run_session(attrs.evolve(config, verify_replay=True))
    assert any(r.trigger == "fill" for g in lingering for t in g.tickets for r in t.order_events), \
        "the seed should send fills to groups after they finished"
    compact_json, full_json = compact.to_json(), full.to_json()
    for volatile in ("config", "wall_seconds", "events_per_second"):
        compact_json.pop(volatile, None)
        full_json.pop(volatile, None)
    assert compact_json == full_json


@pytest.mark.parametrize("kwargs", [{"verify_replay": True}, {"release_finished": False}])
def test_compact_finished_is_refused_where_the_whole_trail_is_read(kwargs: dict[str, bool]) -> None:
    broker = BrokerSimulator(1, ChaosProfile.preset("none"))
    options = {"release_finished": True, **kwargs}
    with pytest.raises(ValidationError) as err:
        AtomicOrderExecutor(SimulatedBackend(broker), compact_finished=True, **options)
    assert err.value.field == "compact_finished"
