"""The exhaustive small-scope check: EVERY broker script up to depth K, both modes, zero counterexamples.

K depends on the profile (``ci`` 5, ``dev`` 4, ``deep`` 6). The two modes run in parallel
processes. Measured on the 2-core workplace machine: depth 5 reaches 19,413 distinct states over
36,244 sequences in ~20 s wall; depth 6 reaches 95,722 states over 190,346 sequences in ~3 min.

The floors below are the distinct abstract states the check must reach at each depth (about 90%
of what it reaches today), so a change that silently shrinks the explored space (a broker move
that stopped being enabled, an over-eager state key) fails here.
"""

from __future__ import annotations

import enum
import gc
import pickle
import types
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import pytest

from atomic_orders.fsm.errors import InvalidTransition
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.ticket import TICKET_MACHINE, OrderTicket
from atomic_orders.simulator.proofs import exhaustive
from atomic_orders.simulator.proofs.exhaustive import (
    Action,
    CheckReport,
    World,
    _freeze_shadowed,
    _Siblings,
    _thaw_shadowed,
    format_check,
    format_script,
    parse_script,
    run_check,
    vertical_legs,
)
from tests.properties._suite import NOTES, PROFILE, STATS

DEPTH = {"ci": 5, "dev": 4, "deep": 6}[PROFILE]
#: Minimum distinct states per mode at each depth.
STATE_FLOOR = {
    2: {"combo": 70, "legged": 70},
    4: {"combo": 1_600, "legged": 1_900},
    5: {"combo": 7_000, "legged": 10_000},
    6: {"combo": 31_000, "legged": 55_000},
}


def test_every_script_up_to_the_profile_depth_keeps_every_invariant() -> None:
    report = run_check(DEPTH, workers=2)
    text = format_check(report)
    NOTES.append(text)
    STATS["exhaustive sequences"] += report.sequences
    STATS["exhaustive distinct states"] += report.states
    assert report.ok, text
    assert [m.mode for m in report.modes] == ["combo", "legged"]
    for m in report.modes:
        assert m.states >= STATE_FLOOR[DEPTH][m.mode], text
        assert m.sequences > m.states, "some scripts must revisit a state (pruning at work)"
        assert m.settled == m.states, "every distinct state is driven to a terminal state"
        # every terminal outcome is reached: commit, roll back, and fail with a residual
        assert {"committed", "rolled_back", "failed"} <= set(m.terminal_outcomes), text


def test_depth_zero_is_the_initial_state_only() -> None:
    report = run_check(0, (ExecutionMode.COMBO,))
    assert report.ok and report.states == 1 and report.sequences == 0
    assert report.modes[0].terminal_outcomes == {"committed": 1}  # a cooperative broker fills it


def test_state_key_tells_apart_what_matters_and_merges_what_does_not() -> None:
    a = World(vertical_legs(), 2)
    b = World(vertical_legs(), 2)
    assert a.state_key() == b.state_key()
    a.apply(Action("ack", 0))
    assert a.state_key() != b.state_key()
    b.apply(Action("ack", 0, hold=True))
    assert a.state_key() != b.state_key()  # a held ack is not a delivered one
    b.apply(Action("release", 0))
    assert a.state_key() == b.state_key()  # ... until it is released


def test_clone_is_independent() -> None:
    w = World(vertical_legs(), 2, mode=ExecutionMode.LEGGED)
    c = w.clone()
    c.run(parse_script("ack(#0) -> fill(#0)"))
    assert w.group.entry_tickets[0].state == "submitting" and len(w.orders) == 1
    assert c.group.entry_tickets[0].state == "filled" and len(c.orders) == 2
    assert c.group.tickets[0].router is c.executor and c.backend.submit_rule.__self__ is c  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "ack(#0, held) -> fill(#0, 1) -> release(0) -> redeliver(1)",
        "tick(2.5s) -> tick_next() -> down() -> up() -> plan(unknown_absent)",
        "overfill(#1) -> late_fill(#0, all, held) -> cancel_reject(#2) -> update_confirm(#0)",
    ],
)
def test_scripts_round_trip_through_their_printed_form(text: str) -> None:
    assert format_script(parse_script(text)) == text


def test_unparseable_scripts_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        parse_script("ack #0")
    with pytest.raises(ValueError, match="unknown broker step"):
        parse_script("teleport()")
    with pytest.raises(ValueError, match="#N"):
        parse_script("ack(0)")


def test_cli_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    from atomic_orders.simulator.cli.main import main

    assert main(["check", "--depth", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "every broker script up to 2 actions" in out and "no counterexample" in out
    assert main(["check", "--depth", "1", "--mode", "legged", "--workers", "1"]) == 0
    assert "combo" not in capsys.readouterr().out.split("\n", 1)[1]


# -- copies of a frontier state, and the parallel check ----------------------------------------------


#: Shared by name or immutable: classes, functions, modules, enum members, and numbers and strings
#: (attrs caches a record's hash in an int subclass whose instance dict stays empty).
_NOT_STATE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, enum.Enum, int, float, str, bytes)


def _frozen(obj: object) -> bool:
    """True when setting an attribute of ``obj`` is refused (a frozen attrs record)."""
    fields = attrs.fields(type(obj)) if attrs.has(type(obj)) else ()
    if not fields:
        return False
    try:
        setattr(obj, fields[0].name, getattr(obj, fields[0].name))  # the same value: harmless if it is allowed
    except attrs.exceptions.FrozenInstanceError:
        return True
    return False


def _mutables(root: object) -> dict[int, object]:
    """Every container or object with settable attributes reachable from ``root`` (classes,
    functions, modules and enum members aside: they are shared by name, never copied; frozen
    records are walked through, so a list inside one would count)."""
    out: dict[int, object] = {}
    stack, visited = [root], set()
    while stack:
        obj = stack.pop()
        if id(obj) in visited or isinstance(obj, _NOT_STATE):
            continue
        visited.add(id(obj))
        if isinstance(obj, list | dict | set | bytearray) or (
            (hasattr(obj, "__dict__") or hasattr(obj, "__slots__")) and not _frozen(obj)
        ):
            out[id(obj)] = obj
        stack.extend(gc.get_referents(obj))
    return out


@pytest.mark.parametrize("copy", ["sibling", "frontier"])
def test_two_children_of_one_parent_share_no_mutable_state(copy: str) -> None:
    """Children are copies of their parent: by a pickle with frozen records shared (siblings), or
    from the parent's frontier state (the same sharing pickle, kept from the level before)."""
    parent = World(vertical_legs(), 2, mode=ExecutionMode.LEGGED)
    parent.run(parse_script("ack(#0) -> fill(#0, 1)"))
    assert parent.check_step("incremental") == []  # builds the replay shadow a frontier state carries
    if copy == "sibling":
        siblings = _Siblings(parent)
        a, b = siblings.copy(), siblings.copy()
    else:
        blob = _freeze_shadowed(parent)
        a, b = _thaw_shadowed(blob), _thaw_shadowed(blob)
    assert a._shadow is not None and b._shadow is not None
    mine, theirs = _mutables(a), _mutables(b)
    assert id(a.group.audit) in mine and id(a._shadow) in mine and id(a.backend) in mine
    assert not mine.keys() & theirs.keys(), [type(mine[i]) for i in mine.keys() & theirs.keys()]
    assert not mine.keys() & _mutables(parent).keys()
    # ... and a child's moves leave its sibling exactly as the parent was
    a.run(parse_script("fill(#0) -> ack(#1) -> fill(#1) -> tick_next()"))
    a.settle()
    assert a.group.state == "committed" and a.check_final() == []
    assert b.state_key() == parent.state_key() and len(b.group.audit) == len(parent.group.audit)
    assert b.check_step("incremental") == [] and b._shadow_at == len(parent.group.audit)


def _summary(report: CheckReport) -> list[tuple[object, ...]]:
    return [(m.mode, m.sequences, m.states, m.settled, m.terminal_outcomes, [str(c) for c in m.counterexamples])
            for m in report.modes]


def _last_first(fn: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    """A mapper that runs the chunks last first, each through a pickle round trip as to a worker
    process, in this process (so a planted defect reaches it)."""
    shared = pickle.loads(pickle.dumps(shared))
    for item in reversed(list(items)):
        yield item, pickle.loads(pickle.dumps(fn(shared, pickle.loads(pickle.dumps(item)))))


@pytest.fixture
def split_every_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even the first levels (a few states each) over the mapper."""
    monkeypatch.setattr(exhaustive, "SPLIT_AT", 1)


@pytest.mark.usefixtures("split_every_level")
def test_split_levels_merged_out_of_order_report_what_the_serial_check_reports() -> None:
    serial = run_check(3)
    split = run_check(3, workers=4, mapper=_last_first)
    assert serial.ok and _summary(split) == _summary(serial)


@pytest.mark.usefixtures("split_every_level")
def test_split_check_finds_the_same_counterexamples(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted defect (an illegal event that changes the ticket, caught by the probe): the same
    counterexamples, in the same order, after the same number of sequences."""
    real_apply = OrderTicket.apply

    def leaky_apply(self: OrderTicket, event: Any) -> str:
        if not TICKET_MACHINE.is_legal(self.state, event.trigger) and self.quantity_filled:
            self.state = "rejected"
            raise InvalidTransition("OrderTicket", self.order_ref, self.state, event.trigger)
        return real_apply(self, event)

    monkeypatch.setattr(OrderTicket, "apply", leaky_apply)
    serial = run_check(3, (ExecutionMode.LEGGED,), max_counterexamples=3)
    split = run_check(3, (ExecutionMode.LEGGED,), max_counterexamples=3, workers=3, mapper=_last_first)
    assert len(serial.counterexamples) == 3 and "[4 legality]" in str(serial.counterexamples[0])
    assert _summary(split) == _summary(serial)


@pytest.mark.usefixtures("split_every_level")
def test_check_on_a_local_dask_cluster_reports_what_the_serial_check_reports() -> None:
    pytest.importorskip("distributed")
    from atomic_orders.simulator.cli.check import run

    on_cluster = run(3, [ExecutionMode.LEGGED], quantity=2, workers=2, dask=True)
    serial = run_check(3, (ExecutionMode.LEGGED,))
    assert on_cluster.ok and _summary(on_cluster) == _summary(serial)
