"""End-to-end group stories driven by scripted ticket events (no executor, no broker)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from atomic_orders.fsm.events import (
    BrokerStatus,
    Canceled,
    CancelRequested,
    Fill,
    Reconciled,
    SubmissionUnknown,
    Submit,
)
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.invariants import check_group
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.orders import OrderType, Purpose
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.fsm.ticket import OrderTicket

from .factories import (
    LC,
    LP,
    PRICE,
    SC,
    SP,
    cancel,
    combo_ticket,
    condor_legs,
    ev,
    failed_group,
    fill,
    fill_unwinds,
    group_in,
    leg_ticket,
    make_group,
    now,
    reject,
    send,
    started,
    sym,
    unwind_for,
)

LEGGED = ExecutionMode.LEGGED


def _sides(tickets: list[OrderTicket]) -> list[tuple[OptionSymbol, Side]]:
    return [(t.legs[0].symbol, t.legs[0].side) for t in tickets]


# -- combo ------------------------------------------------------------------------------------


def test_combo_condor_commits_and_ledger_moves_every_leg_by_ratio_times_units() -> None:
    g = started(make_group(quantity=3, legs=condor_legs(ratio=2)))
    t = combo_ticket(g)
    assert t.quantity == 3 and t.is_combo and t.limit_price == Decimal("-1.50")
    assert g.sendable_tickets() == [t]
    send(g, t, Decimal("-1.50"))
    assert fill(g, t, 1, Decimal("-1.55")) == "executing"
    assert g.ledger.positions() == {LP: 2, SP: -2, SC: -2, LC: 2}
    assert fill(g, t, 2, Decimal("-1.50")) == "committed"
    assert g.ledger.positions() == {LP: 6, SP: -6, SC: -6, LC: 6} == g.targets
    assert len(g.ledger) == 8  # one entry per leg per fill
    assert t.average_fill_price == (Decimal("-1.55") + 2 * Decimal("-1.50")) / 3
    assert g.is_terminal and g.sendable_tickets() == [] and g.cancelable_tickets() == []
    assert check_group(g, replay=True) == []


def test_combo_custom_ratio_spread_ledger_uses_signed_ratios() -> None:
    legs = (Leg(sym("C", 5000), Side.BUY, 1), Leg(sym("C", 5100), Side.SELL, 2))
    g = started(make_group(quantity=2, legs=legs, strategy=StrategyKind.CUSTOM, price_effect=PriceEffect.DEBIT))
    t = combo_ticket(g)
    send(g, t)
    assert fill(g, t) == "committed"
    assert g.ledger.positions() == {sym("C", 5000): 2, sym("C", 5100): -4}


def test_combo_partial_then_canceled_rolls_back_flat() -> None:
    g = started(make_group(quantity=3))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 2)
    ev(g, t, CancelRequested(now()))
    assert ev(g, t, Canceled(now())) == "rolling_back"
    assert "leg ended short" in (g.rollback_reason or "")
    # one unwind per leg, closing exactly what the 2 filled units opened
    unwinds = g.unwind_tickets
    assert {(u.legs[0].symbol, u.legs[0].side, u.legs[0].position_effect, u.quantity) for u in unwinds} == {
        (LP, Side.SELL, PositionEffect.CLOSE, 2),
        (SP, Side.BUY, PositionEffect.CLOSE, 2),
        (SC, Side.BUY, PositionEffect.CLOSE, 2),
        (LC, Side.SELL, PositionEffect.CLOSE, 2),
    }
    assert all(u.purpose is Purpose.UNWIND and u.order_type is OrderType.LIMIT for u in unwinds)
    # shorts are bought back before the protective longs are sold
    assert _sides(g.sendable_tickets()) == [(SP, Side.BUY), (SC, Side.BUY)]
    fill_unwinds(g)
    assert g.state == "rolled_back"
    assert g.ledger.is_flat and g.ledger.positions() == {}
    assert check_group(g, replay=True) == []


# -- legged -----------------------------------------------------------------------------------


def test_legged_condor_rolls_back_to_zero_exposure() -> None:
    g = started(make_group(mode=LEGGED, quantity=2))
    l0, l1, l2, l3 = (leg_ticket(g, i) for i in range(4))
    assert [(t.quantity, t.legs[0].side) for t in (l0, l1, l2, l3)] == [
        (2, Side.BUY), (2, Side.SELL), (2, Side.SELL), (2, Side.BUY)
    ]
    # protective longs go first; shorts are not sendable until every long is filled
    assert g.sendable_tickets() == [l0, l3]
    send(g, l0)
    send(g, l3)
    assert g.sendable_tickets() == []
    fill(g, l0)
    assert g.sendable_tickets() == []
    fill(g, l3, 1)
    assert g.sendable_tickets() == []
    fill(g, l3)
    assert g.sendable_tickets() == [l1, l2]

    ev(g, l1, Submit(now(), PRICE))  # in flight: the broker will refuse it
    send(g, l2)
    fill(g, l2, 1)
    assert g.state == "executing"
    assert reject(g, l1) == "rolling_back"
    assert l1.order_ref in (g.rollback_reason or "")
    # the working short is canceled; nothing is unwound while it may still fill
    assert g.cancelable_tickets() == [l2]
    assert g.unwind_tickets == [] and g.sendable_tickets() == []
    ev(g, l2, CancelRequested(now()))
    assert g.cancelable_tickets() == []
    assert ev(g, l2, Canceled(now())) == "rolling_back"
    assert {(u.legs[0].symbol, u.legs[0].side, u.legs[0].position_effect, u.quantity) for u in g.unwind_tickets} == {
        (LP, Side.SELL, PositionEffect.CLOSE, 2),
        (SC, Side.BUY, PositionEffect.CLOSE, 1),
        (LC, Side.SELL, PositionEffect.CLOSE, 2),
    }
    # buy back the short call first; the longs are only sold once no short is open
    assert _sides(g.sendable_tickets()) == [(SC, Side.BUY)]
    buy = unwind_for(g, SC)
    send(g, buy)
    assert g.sendable_tickets() == []  # the buy-back is working, not filled
    assert fill(g, buy) == "rolling_back"
    assert _sides(g.sendable_tickets()) == [(LP, Side.SELL), (LC, Side.SELL)]
    fill_unwinds(g)
    assert g.state == "rolled_back"
    assert g.ledger.is_flat and g.ledger.positions() == {}
    assert g.live_tickets() == []
    assert check_group(g, replay=True) == []


def test_legged_longs_first_can_be_disabled() -> None:
    g = started(make_group(mode=LEGGED, longs_first=False))
    assert g.sendable_tickets() == g.entry_tickets


def test_late_fill_completing_every_leg_during_rollback_commits() -> None:
    g = started(make_group(mode=LEGGED, quantity=1))
    l0, l1, l2, l3 = (leg_ticket(g, i) for i in range(4))
    for t in (l0, l3, l1):
        send(g, t)
        fill(g, t)
    send(g, l2)
    assert g.deadline(now()) == "rolling_back"
    assert g.cancelable_tickets() == [l2]
    ev(g, l2, CancelRequested(now()))
    # the fill races the cancel and completes the last leg: cheaper than unwinding
    assert fill(g, l2) == "committed"
    assert g.unwind_tickets == []
    assert g.ledger.positions() == g.targets == {LP: 1, SP: -1, SC: -1, LC: 1}
    assert check_group(g, replay=True) == []


def test_unwind_rejected_more_than_max_retries_fails_with_exact_residual_and_alert() -> None:
    g = started(make_group(mode=LEGGED, quantity=2, max_unwind_retries=2))
    l0, l1, l2, l3 = (leg_ticket(g, i) for i in range(4))
    for t in (l0, l3, l1):
        send(g, t)
        fill(g, t)
    send(g, l2)
    g.abort(now(), "risk")
    cancel(g, l2)
    assert g.state == "rolling_back"
    for attempt in range(1, 4):
        buy = unwind_for(g, SP)
        assert g.sendable_tickets() == [buy]
        send(g, buy)
        state = reject(g, buy)
        assert g.unwind_failures[SP] == attempt
        assert state == ("failed" if attempt == 3 else "rolling_back")
    assert g.residual_exposure == g.ledger.positions() == {LP: 2, SP: -2, LC: 2}
    assert len(g.alerts) == 1 and "FAILED" in g.alerts[0] and SP.occ in g.alerts[0]
    # the long wings were never sold: selling them would leave the short put naked
    assert all(u.state == "new" for u in g.unwind_tickets if u.legs[0].side is Side.SELL)
    assert g.sendable_tickets() == []
    assert check_group(g, replay=True) == []


def test_an_exhausted_symbol_does_not_stop_other_buy_backs() -> None:
    g = started(make_group(quantity=2, max_unwind_retries=0))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    cancel(g, t)
    sp, sc = unwind_for(g, SP), unwind_for(g, SC)
    send(g, sp)
    # the short put cannot be bought back, but the short call still can: do not give up yet
    assert reject(g, sp) == "rolling_back"
    assert g.exhausted_symbols() == [SP]
    assert g.sendable_tickets() == [sc]
    send(g, sc)
    assert reject(g, sc) == "failed"  # now every buy-back is exhausted and nothing else may be sent
    assert g.residual_exposure == g.ledger.positions() == {LP: 1, SP: -1, SC: -1, LC: 1}
    assert g.sendable_tickets() == [] and g.live_tickets() == []
    assert check_group(g, replay=True) == []


def test_unwind_position_effects_close_what_was_opened_and_reopen_what_was_closed() -> None:
    # an over-filled buy-back flips the short put long: selling it back closes it
    g = started(make_group(mode=LEGGED, quantity=1))
    l0, l1, l2, l3 = (leg_ticket(g, i) for i in range(4))
    for leg in (l0, l3, l1):
        send(g, leg)
        fill(g, leg)
    send(g, l2)
    assert reject(g, l2) == "rolling_back"
    buy = unwind_for(g, SP)
    assert (buy.legs[0].side, buy.legs[0].position_effect) == (Side.BUY, PositionEffect.CLOSE)
    send(g, buy)
    fill(g, buy, 2)
    assert buy.overfill_quantity == 1 and g.ledger.net(SP) == 1
    sell = unwind_for(g, SP)
    assert (sell.legs[0].side, sell.legs[0].position_effect, sell.quantity) == (Side.SELL, PositionEffect.CLOSE, 1)
    fill_unwinds(g)
    assert g.state == "rolled_back"
    assert check_group(g, replay=True) == []
    # a group that closes an existing condor re-opens what it closed when it unwinds
    closing = tuple(Leg(x.symbol, x.side, 1, PositionEffect.CLOSE) for x in condor_legs())
    h = started(make_group(legs=closing, gid="C"))
    t = combo_ticket(h)
    send(h, t)
    fill(h, t, 1)
    cancel(h, t)
    assert {(u.legs[0].symbol, u.legs[0].side, u.legs[0].position_effect) for u in h.unwind_tickets} == {
        (LP, Side.SELL, PositionEffect.OPEN),
        (SP, Side.BUY, PositionEffect.OPEN),
        (SC, Side.BUY, PositionEffect.OPEN),
        (LC, Side.SELL, PositionEffect.OPEN),
    }


def test_unsent_unwind_made_stale_by_a_late_fill_is_replaced() -> None:
    g = started(make_group(quantity=2))
    t = combo_ticket(g)
    send(g, t)
    fill(g, t, 1)
    cancel(g, t)
    buy = unwind_for(g, SP)
    send(g, buy)
    fill(g, buy, 2)  # over-filled buy-back: the short put is now +1
    stale = unwind_for(g, SP)
    assert (stale.legs[0].side, stale.quantity) == (Side.SELL, 1)
    assert fill(g, t, 2) == "rolling_back"  # late fill on the canceled combo: short put back to -1
    assert g.ledger.net(SP) == -1
    # the unsent sell is gone (it would deepen the short and, held back behind it, block the symbol)
    assert not g.has_ticket(stale.order_ref) and stale not in g.unwind_tickets
    fresh = unwind_for(g, SP)
    assert (fresh.legs[0].side, fresh.quantity) == (Side.BUY, 1)
    assert fresh in g.sendable_tickets()
    fill_unwinds(g)
    assert g.state == "rolled_back" and g.ledger.is_flat
    assert check_group(g, replay=True) == []


def test_failed_group_tracks_a_later_fill() -> None:
    g = failed_group()
    t = combo_ticket(g)
    assert g.residual_exposure == {LP: 1, SP: -1, LC: 1}
    fill(g, t, 1)  # late fill on the canceled entry order
    assert g.state == "failed"
    assert g.residual_exposure == g.ledger.positions() == {LP: 2, SP: -2, SC: -1, LC: 2}
    assert len(g.alerts) == 2
    assert check_group(g, replay=True) == []


def test_fill_after_rolled_back_reopens_with_alert_and_unwinds_again() -> None:
    g = started(make_group())
    t = combo_ticket(g)
    send(g, t)
    g.abort(now())
    assert cancel(g, t) == "rolled_back"
    assert g.alerts == []
    assert fill(g, t, 1) == "rolling_back"
    assert len(g.alerts) == 1 and "re-opened" in g.alerts[0]
    assert t.late_fill_quantity == 1 and g.flagged
    fill_unwinds(g)
    assert g.state == "rolled_back" and g.ledger.is_flat
    assert check_group(g, replay=True) == []


def test_overfill_on_an_entry_leg_rolls_back() -> None:
    g = started(make_group(mode=LEGGED, quantity=1))
    l0 = leg_ticket(g, 0)
    send(g, l0)
    assert fill(g, l0, 2) == "rolling_back"
    assert "over-filled" in (g.rollback_reason or "")
    assert g.cancelable_tickets() == []
    # l3 was never sent; the over-filled long is sold back entirely
    assert {(u.legs[0].symbol, u.legs[0].side, u.quantity) for u in g.unwind_tickets} == {(LP, Side.SELL, 2)}


@pytest.mark.parametrize(
    ("trigger", "reason"), [("deadline", "90s"), ("submit_failed", "refused: no margin"), ("abort", "user")]
)
def test_deadline_submit_failed_abort_cancel_then_unwind(trigger: str, reason: str) -> None:
    g = started(make_group(mode=LEGGED, quantity=1))
    l0, l3 = leg_ticket(g, 0), leg_ticket(g, 3)
    send(g, l0)
    fill(g, l0)
    send(g, l3)
    assert getattr(g, trigger)(now(), reason) == "rolling_back"
    assert g.rollback_reason == f"{trigger}: {reason}"
    assert g.cancelable_tickets() == [l3]
    assert g.unwind_tickets == []
    assert cancel(g, l3) == "rolling_back"
    assert _sides(g.unwind_tickets) == [(LP, Side.SELL)]
    fill_unwinds(g)
    assert g.state == "rolled_back"
    assert check_group(g, replay=True) == []


def test_unknown_entry_blocks_unwinds_until_reconciled() -> None:
    g = started(make_group())
    t = combo_ticket(g)
    ev(g, t, Submit(now(), PRICE))
    ev(g, t, SubmissionUnknown(now(), "timeout"))
    assert g.unknown_tickets() == [t]
    g.deadline(now())
    assert g.unwind_tickets == [] and g.cancelable_tickets() == []
    f = Fill(now(), "X1", 1, PRICE)
    assert ev(g, t, Reconciled(now(), BrokerStatus.CANCELED, (f,))) == "rolling_back"
    assert t.state == "canceled" and g.unknown_tickets() == []
    assert len(g.unwind_tickets) == 4
    fill_unwinds(g)
    assert g.state == "rolled_back"
    assert check_group(g, replay=True) == []


def test_combo_rejected_outright_settles_rolled_back_at_once() -> None:
    g = started(make_group())
    t = combo_ticket(g)
    ev(g, t, Submit(now(), PRICE))
    # nothing filled, nothing works and no further broker event will come: no waiting in rollback
    assert reject(g, t) == "rolled_back"
    assert [(r.source, r.dest) for r in g.audit[-2:]] == [
        ("executing", "rolling_back"),
        ("rolling_back", "rolled_back"),
    ]
    assert g.ledger.is_flat and g.live_tickets() == [] and g.unwind_tickets == []
    assert check_group(g, replay=True) == []


def test_abort_before_anything_was_sent_settles_rolled_back() -> None:
    g = started(make_group(mode=LEGGED))
    assert g.abort(now(), "changed my mind") == "rolled_back"
    assert all(t.state == "new" for t in g.tickets)
    assert g.sendable_tickets() == []
    assert check_group(g, replay=True) == []


def test_deadline_with_everything_final_and_filled_positions_opens_unwinds_at_once() -> None:
    g = started(make_group(mode=LEGGED, quantity=1))
    l0 = leg_ticket(g, 0)
    send(g, l0)
    fill(g, l0)
    assert g.deadline(now()) == "rolling_back"
    assert _sides(g.sendable_tickets()) == [(LP, Side.SELL)]


# -- replay -----------------------------------------------------------------------------------


def _states(g: AtomicOrderGroup) -> list[tuple[str, str, int]]:
    return [(t.order_ref, t.state, t.quantity_filled) for t in g.tickets]


@pytest.mark.parametrize("state", ["executing", "committed", "rolling_back", "rolled_back", "failed"])
def test_replay_reproduces_state_ledger_and_tickets(state: str) -> None:
    g = group_in(state)
    fresh = g.replay()
    assert fresh is not g
    assert fresh.state == g.state
    assert fresh.ledger.positions() == g.ledger.positions()
    assert [(e.order_ref, e.fill_id, e.symbol, e.quantity) for e in fresh.ledger] == [
        (e.order_ref, e.fill_id, e.symbol, e.quantity) for e in g.ledger
    ]
    assert _states(fresh) == _states(g)
    assert [(r.source, r.trigger, r.dest) for r in fresh.audit] == [(r.source, r.trigger, r.dest) for r in g.audit]
    assert fresh.residual_exposure == g.residual_exposure
    assert fresh.alerts == g.alerts


def test_replay_of_a_prefix_reproduces_the_intermediate_state() -> None:
    g = started(make_group(mode=LEGGED, quantity=1))
    l0, l3 = leg_ticket(g, 0), leg_ticket(g, 3)
    send(g, l0)
    fill(g, l0)
    mid_state, mid_positions, cut = g.state, g.ledger.positions(), len(g.audit)
    send(g, l3)
    g.abort(now())
    cancel(g, l3)
    fill_unwinds(g)
    assert g.state == "rolled_back"
    partial = g.replay(g.audit[:cut])
    assert (partial.state, partial.ledger.positions()) == (mid_state, mid_positions)
    assert partial.ticket(l0.order_ref).state == "filled"
    assert partial.ticket(l3.order_ref).state == "new"


def test_replay_of_a_reopened_group() -> None:
    g = started(make_group())
    t = combo_ticket(g)
    send(g, t)
    fill(g, t)
    fill(g, t, 1)  # over-fill after commit: re-opened
    assert g.state == "rolling_back"
    fill_unwinds(g)
    assert g.state == "rolled_back"
    fresh = g.replay()
    assert (fresh.state, _states(fresh), fresh.alerts) == (g.state, _states(g), g.alerts)
