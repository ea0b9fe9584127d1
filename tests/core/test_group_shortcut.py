"""The group's "still working" shortcut answers exactly what its machine would.

``AtomicOrderGroup.apply_ticket_event`` skips the group machine when ``still_working`` proves the
table can only take its internal "still working" row. These tests pin the rows that proof reads,
and drive random walks twice, shortcut on and off, comparing everything an event may change.
"""

from __future__ import annotations

import copy
import logging
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atomic_orders.fsm import group as group_module
from atomic_orders.fsm.errors import InvalidTransition
from atomic_orders.fsm.events import CancelRequested, Submit, TicketEvent
from atomic_orders.fsm.group import GROUP_MACHINE, AtomicOrderGroup, ExecutionMode, still_working
from atomic_orders.fsm.ticket import OrderTicket

from .factories import ev, fill, group_snapshot, leg_ticket, make_group, now, send, started
from .test_properties import _broker_event


def test_the_rows_the_shortcut_relies_on_are_the_table_rows() -> None:
    # A table edit that changes these rows must revisit still_working (and this test).
    rows = [(r.dest, r.conditions, r.unless, r.before, r.after)
            for r in GROUP_MACHINE.rows_for("executing", "ticket_update")]
    assert rows == [
        ("committed", ("is_complete", "broker_confirms"), (), (), ()),
        ("rolling_back", ("has_failed_leg",), (), ("note_failed_leg",), ("open_unwinds",)),
        (None, (), (), (), ()),
    ]


def test_one_leg_filled_while_others_work_is_still_working_and_recorded() -> None:
    g = started(make_group(mode=ExecutionMode.LEGGED, quantity=1))
    first, second = leg_ticket(g, 0), leg_ticket(g, 1)
    send(g, first)
    send(g, second)
    assert still_working(g)
    before = len(g.audit)
    assert fill(g, first) == "executing"
    rec = g.audit[-1]
    assert len(g.audit) == before + 1
    assert (rec.source, rec.trigger, rec.dest, rec.order_ref, rec.reason) == (
        "executing", "ticket_update", "executing", first.order_ref, "")
    assert rec.ticket_event is first.order_events[-1].event


def _apply_both(g: AtomicOrderGroup, twin: AtomicOrderGroup, ref: str, event: TicketEvent,
                monkeypatch: pytest.MonkeyPatch) -> bool:
    """Apply ``event`` to ``g`` (shortcut on) and to ``twin`` (machine only); True when the shortcut applied."""
    took = still_working(g)
    outcomes = []
    for target, shortcut in ((g, True), (twin, False)):
        with monkeypatch.context() as m:
            if not shortcut:
                m.setattr(group_module, "still_working", lambda _g: False)
            try:
                outcomes.append(target.apply_ticket_event(ref, event))
            except InvalidTransition as err:
                outcomes.append(type(err).__name__)
    assert outcomes[0] == outcomes[1]
    return took


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_walks_agree_with_the_machine(data: st.DataObject) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        mode = data.draw(st.sampled_from(list(ExecutionMode)))
        g = started(make_group(mode=mode, quantity=data.draw(st.integers(1, 3)),
                               max_unwind_retries=data.draw(st.integers(0, 2))))
        twin = copy.deepcopy(g)
        serial = [0]
        for _ in range(data.draw(st.integers(1, 40))):
            choices: list[tuple[str, OrderTicket]] = [("send", t) for t in g.sendable_tickets()]
            choices += [("cancel", t) for t in g.cancelable_tickets()]
            choices += [("broker", t) for t in g.tickets if t.state != "new"]
            if not choices:
                break
            action, t = data.draw(st.sampled_from(choices))
            event: TicketEvent
            if action == "send":
                event = Submit(now(), Decimal("1.00"))
            elif action == "cancel":
                event = CancelRequested(now())
            else:
                event = _broker_event(data, t, serial)
            _apply_both(g, twin, t.order_ref, event, monkeypatch)
            assert group_snapshot(g) == group_snapshot(twin)
            assert g.audit == twin.audit
            assert [t.order_events for t in g.tickets] == [t.order_events for t in twin.tickets]
            assert g.ledger.entries == twin.ledger.entries


def test_a_machine_swapped_in_decides_every_ticket_update(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shortcut proves what the real table's rows do. A machine swapped in for it (the planted-defect
    # tests build one with a guard replaced) must see every event, or a planted has_failed_leg or
    # is_complete would go unexercised for every event of a working group.
    from atomic_orders.fsm.group import GROUP_EFFECTS, GROUP_GUARDS
    from atomic_orders.fsm.machine import build_runtime_machine

    asked: list[str] = []

    def every_leg_failed(g: AtomicOrderGroup, e: object) -> bool:
        asked.append(g.group_id)
        return True

    planted = build_runtime_machine(GROUP_MACHINE, {**GROUP_GUARDS, "has_failed_leg": every_leg_failed}, GROUP_EFFECTS)
    g = started(make_group(mode=ExecutionMode.LEGGED, quantity=1))
    first = leg_ticket(g, 0)
    monkeypatch.setattr(group_module, "_EVENTS", planted.events)
    ev(g, first, Submit(now(), Decimal("1.00")))  # a live order, no failed leg: the real table's "still working"
    assert asked
    assert g.state == "rolling_back"


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING])
def test_the_librarys_lines_for_a_working_group_appear_exactly_when_its_logger_listens(
    caplog: pytest.LogCaptureFixture, level: int
) -> None:
    # The "still working" row writes only debug lines; while the library listens at DEBUG the group
    # machine runs, so they appear as they did before the shortcut.
    caplog.set_level(level, logger="transitions.core")
    g = started(make_group(mode=ExecutionMode.LEGGED, quantity=1))
    first = leg_ticket(g, 0)
    assert send(g, first) == "executing"
    assert still_working(g)
    lines = [r.getMessage() for r in caplog.records if r.name == "transitions.core"]
    assert any("from state executing to state None" in m for m in lines) is (level <= logging.DEBUG)
    assert [r.source for r in g.audit[-2:]] == ["executing", "executing"]
