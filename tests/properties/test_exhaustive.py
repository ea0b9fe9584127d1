"""The exhaustive small-scope check: EVERY broker script up to depth K, both modes, zero counterexamples.

K depends on the profile (``ci`` 5, ``dev`` 4, ``deep`` 6). The two modes run in parallel
processes. Measured on the 2-core workplace machine: depth 5 reaches 19,413 distinct states over
36,244 sequences in ~20 s wall; depth 6 reaches 95,722 states over 190,346 sequences in ~3 min.

The floors below are the distinct abstract states the check must reach at each depth (about 90%
of what it reaches today), so a change that silently shrinks the explored space (a broker move
that stopped being enabled, an over-eager state key) fails here.
"""

from __future__ import annotations

import pytest

from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.proofs.exhaustive import (
    Action,
    World,
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
