"""Finished work is freed at once: no reference cycle keeps a settled group, and the simulated
broker keeps a settled order as a summary, not its request.

Each test runs a hostile session with the cyclic garbage collector switched off, so anything
still alive at the end is kept by a reference (or a cycle), never merely not yet collected.
"""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc
import types
from collections.abc import Iterator
from decimal import Decimal

import attrs
import pytest

from atomic_orders.fsm import executor as executor_module
from atomic_orders.fsm.dormant import dump_batch, load_batch
from atomic_orders.fsm.errors import InvalidTransition, ValidationError
from atomic_orders.fsm.events import Fill
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg
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
        lingering.extend(g for g in executor.groups() if g.is_terminal)

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


def _drop_lingering(executor: AtomicOrderExecutor) -> int:
    """Forget every group the executor still holds, and its table entries; return how many it held."""
    held = len(executor._groups) + len(getattr(executor, "_dormant", {}))
    executor._groups.clear()
    executor._route.clear()
    getattr(executor, "_dormant", {}).clear()
    for table in (executor._sent_at, executor._pending_since, executor._not_before, executor._next_step,
                  executor._mid_at_submit, executor._cancel_refusals, executor._cancel_after,
                  executor._update_refusals, executor._update_after, executor._quote_misses, executor._started,
                  executor._finished_at, executor._reconcile_after, executor._first_fill, executor._adopted,
                  executor._disagreements, executor._ask_after, executor._alerted, executor._outages,
                  executor._step_timer):
        table.clear()
    return held


@pytest.mark.parametrize(("mode", "bound"), [(ExecutionMode.COMBO, 1_500), (ExecutionMode.LEGGED, 2_000)])
def test_a_lingering_group_costs_about_a_kilobyte(monkeypatch: pytest.MonkeyPatch, mode: ExecutionMode,
                                                  bound: int) -> None:
    """Measured with tracemalloc: what the executor frees when it forgets its lingering groups.

    Before finished groups slept (pickled in batches after a quiet minute), a lingering group with
    its table entries cost about 4 KB combo and 10 KB legged; a long session holds thousands at once
    (here, as in such a session, every group beyond the awake ones kept may sleep: none kept).
    """
    monkeypatch.setattr(executor_module, "_AWAKE_FINISHED_KEPT", 0)
    seen: dict[str, int] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        assert not executor.open_groups()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        seen["held"] = _drop_lingering(executor)
        gc.collect()
        seen["bytes"] = before - tracemalloc.get_traced_memory()[0]

    policy = ExecutionPolicy(linger_seconds=100_000.0)  # every group still lingers at the end
    tracemalloc.start()
    try:  # 4 batches of 16
        run_session(SessionConfig(seed=3, groups=64, profile="hostile", mode=mode, policy=policy), on_end=inspect)
    finally:
        tracemalloc.stop()
    assert seen["held"] == 64
    per_group = seen["bytes"] / seen["held"]
    assert per_group < bound, f"a lingering {mode.value} group holds {per_group:.0f} bytes"


@pytest.mark.parametrize("batch", [1, 3])
def test_sleeping_groups_wake_for_late_events_and_sessions_do_not_change(monkeypatch: pytest.MonkeyPatch,
                                                                          batch: int) -> None:
    """Groups put to sleep at once (not after a quiet minute) take their late events as if awake."""
    config = SessionConfig(seed=1, groups=80, profile="hostile", mode=ExecutionMode.LEGGED, records=True)
    awake = run_session(attrs.evolve(config, policy=ExecutionPolicy()))
    woken: list[str] = []
    wake = AtomicOrderExecutor._wake

    def counting_wake(self: AtomicOrderExecutor, gid: str) -> AtomicOrderGroup:
        woken.append(gid)
        return wake(self, gid)

    monkeypatch.setattr(executor_module, "_DORMANT_AFTER", dt.timedelta(0))
    monkeypatch.setattr(executor_module, "_SLEEP_BATCH", batch)
    monkeypatch.setattr(executor_module, "_AWAKE_FINISHED_KEPT", 0)
    monkeypatch.setattr(AtomicOrderExecutor, "_wake", counting_wake)
    asleep = run_session(config)
    assert len(woken) >= 5, "the seed should send late events to finished groups"
    one, other = awake.to_json(), asleep.to_json()
    for volatile in ("wall_seconds", "events_per_second"):
        one.pop(volatile)
        other.pop(volatile)
    assert one == other
    assert awake.records == asleep.records


def _sleep_at_once(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """Every finished group falls asleep at once, ``batch`` at a time (none kept awake)."""
    monkeypatch.setattr(executor_module, "_DORMANT_AFTER", dt.timedelta(0))
    monkeypatch.setattr(executor_module, "_SLEEP_BATCH", batch)
    monkeypatch.setattr(executor_module, "_AWAKE_FINISHED_KEPT", 0)


def test_views_wake_a_sleeping_group(monkeypatch: pytest.MonkeyPatch) -> None:
    _sleep_at_once(monkeypatch, batch=2)
    kept: dict[str, object] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        gid = next(iter(executor._dormant))
        kept["owns"] = executor.owns_order(f"{gid}-L0")
        group = executor.group(gid)
        kept["state"] = group.state
        kept["same"] = executor.group(gid) is group and gid not in executor._dormant
        with pytest.raises(InvalidTransition):
            executor.abort(gid)  # a finished group refuses an abort, asleep or not
        kept["all"] = len(executor.groups())
        kept["dormant"] = len(executor._dormant)

    policy = ExecutionPolicy(linger_seconds=100_000.0)
    run_session(SessionConfig(seed=2, groups=10, profile="hostile", mode=ExecutionMode.LEGGED, policy=policy),
                on_end=inspect)
    assert kept == {"owns": True, "state": kept["state"], "same": True, "all": 10, "dormant": 0}
    assert kept["state"] in ("committed", "rolled_back", "failed")


def test_a_batch_gives_back_equal_groups_with_working_hashes() -> None:
    """The fast reductions (fields in a tuple, ``__init__`` not run) give equal objects, and the
    legs and symbols, whose hash attrs caches, hash as a fresh one does."""
    kept: list[AtomicOrderGroup] = []

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        kept.extend(g for g in executor.groups() if g.is_terminal)

    policy = ExecutionPolicy(linger_seconds=100_000.0)
    run_session(SessionConfig(seed=4, groups=12, profile="hostile", mode=ExecutionMode.LEGGED, policy=policy),
                on_end=inspect)
    assert len(kept) == 12
    for group in kept:
        for t in group.tickets:
            t.router = None
    back = load_batch(dump_batch([(g, []) for g in kept]))
    for group, (copy, entries) in zip(kept, back, strict=True):
        assert copy is not group and entries == []
        assert (copy.group_id, copy.state, copy.legs, copy.targets, copy.residual_exposure, copy.alerts) == (
            group.group_id, group.state, group.legs, group.targets, group.residual_exposure, group.alerts)
        assert list(copy.ledger) == list(group.ledger) and dict(copy.ledger.held) == dict(group.ledger.held)
        for t, c in zip(group.tickets, copy.tickets, strict=True):
            assert (c.order_ref, c.state, c.fills, c.quantity_filled, c.average_fill_price, c.broker_record,
                    c.limit_price, c.anomalies) == (t.order_ref, t.state, t.fills, t.quantity_filled,
                                                    t.average_fill_price, t.broker_record, t.limit_price, t.anomalies)
            assert c.on_fill is not None and c.on_fill.__self__ is copy.ledger  # type: ignore[attr-defined]
        for leg, fresh in zip(copy.legs, group.legs, strict=True):
            assert hash(leg) == hash(Leg(fresh.symbol, fresh.side, fresh.ratio, fresh.position_effect))
            assert hash(leg.symbol) == hash(attrs.evolve(fresh.symbol))


def test_a_session_holding_few_finished_groups_puts_none_to_sleep() -> None:
    """Sleeping costs CPU: below ``_AWAKE_FINISHED_KEPT`` awake finished groups, none sleeps."""
    held: dict[str, int] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        held["awake"], held["asleep"] = len(executor._groups), len(executor._dormant)

    policy = ExecutionPolicy(linger_seconds=100_000.0)
    run_session(SessionConfig(seed=3, groups=40, profile="hostile", mode=ExecutionMode.COMBO, policy=policy),
                on_end=inspect)
    assert held == {"awake": 40, "asleep": 0}


def test_the_queue_of_groups_waiting_to_sleep_does_not_grow_with_the_groups_released() -> None:
    """Below ``_AWAKE_FINISHED_KEPT`` awake, nothing sleeps, and a released group's place in the
    queue is never reached: it used to stay there, one entry per group the executor ever finished."""
    seen: dict[str, int] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        seen["queued"], seen["awake"] = len(executor._awake_finished), len(executor._awake_since)
        seen["held"], seen["finished"] = len(executor._groups), len(executor.finished_group_ids())

    policy = ExecutionPolicy(linger_seconds=30.0)  # released soon after they finish
    run_session(SessionConfig(seed=1, groups=200, profile="rough", mode=ExecutionMode.COMBO, policy=policy),
                on_end=inspect)
    assert seen["finished"] == 200 and seen["held"] < 50
    assert seen["queued"] <= 2 * seen["awake"] + 64, seen


def test_cancel_and_update_act_on_the_groups_own_ticket_not_a_stale_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ticket object kept from before its group slept is a stale copy: the executor decides from
    the group's current ticket (here final, so nothing is sent), never from the object passed in."""
    _sleep_at_once(monkeypatch, batch=1)
    seen: dict[str, object] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        gid = next(iter(executor._dormant))
        ref = f"{gid}-L0"
        # what a caller's old copy may say: still working at the broker
        stale = types.SimpleNamespace(order_ref=ref, state="working", quantity=1, limit_price=Decimal("1.00"))
        sent = executor.stats.cancels_sent
        executor.request_cancel(stale)  # type: ignore[arg-type]
        executor.request_update(stale, Decimal("1.05"), None)  # type: ignore[arg-type]
        seen["current"] = executor.group(gid).ticket(ref).state
        seen["cancels"] = executor.stats.cancels_sent - sent

    policy = ExecutionPolicy(linger_seconds=100_000.0)
    run_session(SessionConfig(seed=2, groups=6, profile="hostile", mode=ExecutionMode.LEGGED, policy=policy),
                on_end=inspect)
    assert seen["current"] in ("filled", "canceled", "rejected", "expired")
    assert seen["cancels"] == 0


@pytest.mark.parametrize("bad", [None, "G000001", 7, object(), types.SimpleNamespace(order_ref=None),
                                 types.SimpleNamespace(order_ref=5), types.SimpleNamespace(order_ref=["x"])])
def test_cancel_and_update_of_no_ticket_name_the_order_ref_while_groups_sleep(monkeypatch: pytest.MonkeyPatch,
                                                                           bad: object) -> None:
    """Whatever a caller passes for a ticket, the answer is ValidationError(order_ref), also while
    groups sleep (the sleeping lookup once raised AttributeError for a reference that is no string)."""
    _sleep_at_once(monkeypatch, batch=1)
    seen: dict[str, object] = {}

    def inspect(broker: BrokerSimulator, executor: AtomicOrderExecutor) -> None:
        seen["asleep"] = len(executor._dormant)
        for name, call in (("cancel", lambda: executor.request_cancel(bad)),  # type: ignore[arg-type]
                           ("update", lambda: executor.request_update(bad, Decimal("1.05"), None))):  # type: ignore[arg-type]
            with pytest.raises(ValidationError) as info:
                call()
            seen[name] = info.value.field
        with pytest.raises(KeyError):
            executor.group(["G000001"])  # type: ignore[arg-type]

    run_session(SessionConfig(seed=2, groups=4, profile="hostile", mode=ExecutionMode.COMBO,
                              policy=ExecutionPolicy(linger_seconds=100_000.0)), on_end=inspect)
    assert seen["asleep"] and seen["cancel"] == seen["update"] == "order_ref"
