"""BrokerSimulator: matching, each chaos knob on its own, reconciliation, expiry, determinism."""

from __future__ import annotations

import contextlib
from collections import Counter
from decimal import Decimal

import pytest

from atomic_orders.fsm.errors import BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused, ValidationError
from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    Expired,
    Fill,
    Rejected,
    Updated,
    UpdateRejected,
)
from atomic_orders.fsm.leg import Side
from atomic_orders.fsm.orders import BrokerEvent, OrderType, TimeInForce
from atomic_orders.fsm.pricing import DEFAULT_TICKS
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import REJECT_REASONS, ChaosProfile
from atomic_orders.simulator.broker.market import MarketModel
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

from ._helpers import (
    acked,
    atm_call,
    combo_request,
    condor_legs,
    fills,
    make_sim,
    of,
    profile,
    round_combo,
    run,
    single_request,
)

ONE = Decimal("1.00")


def _fill_seconds(sim: BrokerSimulator, fill: Fill) -> float:
    return sim.clock.to_seconds(fill.time)


# -- matching ---------------------------------------------------------------------------------


def test_marketable_single_leg_buy_is_acked_then_filled_at_the_ask() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    limit = sim.quote(sym).ask + ONE
    sim.submit(single_request("b1", sym, Side.BUY, limit, quantity=2))
    events = of(run(sim, 30.0), "b1")
    assert isinstance(events[0], Acknowledged)
    assert all(isinstance(e, Fill) for e in events[1:]) and len(events) == 2
    fill = events[1]
    assert isinstance(fill, Fill)
    assert fill.quantity == 2
    assert fill.price == sim.market.quote(sym, _fill_seconds(sim, fill)).ask <= limit
    report = sim.reconcile(["b1"])["b1"]
    assert report.status is BrokerStatus.FILLED
    assert report.fills == (fill,)
    assert report.broker_order_id == events[0].broker_order_id
    assert sim.positions() == {sym: 2}


def test_marketable_single_leg_sell_fills_at_the_bid_and_goes_short() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    limit = Decimal("0.05")  # happy to sell at anything
    sim.submit(single_request("s1", sym, Side.SELL, limit, quantity=3))
    (fill,) = fills(run(sim, 30.0), "s1")
    assert fill.price == sim.market.quote(sym, _fill_seconds(sim, fill)).bid
    assert fill.price >= limit
    assert sim.positions() == {sym: -3}


def test_market_order_fills_at_the_touch() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    sim.submit(single_request("m1", sym, Side.BUY, None))
    (fill,) = fills(run(sim, 30.0), "m1")
    assert fill.price == sim.market.quote(sym, _fill_seconds(sim, fill)).ask


def test_combo_fills_in_whole_units_at_the_signed_net_price() -> None:
    sim = make_sim()
    legs = condor_legs(sim)
    _, _, net_ask = sim.market.combo_quote(legs, 0.0)
    limit = net_ask + ONE  # willing to take a smaller credit: marketable
    sim.submit(combo_request("c1", legs, limit, quantity=3))
    got = fills(run(sim, 30.0), "c1")
    assert sum(f.quantity for f in got) == 3
    for f in got:
        assert type(f.quantity) is int
        at = _fill_seconds(sim, f)
        assert f.price == sim.market.combo_quote(legs, at)[2]  # the natural net, a credit
        assert f.price < 0 and f.price <= limit
    assert sim.positions() == {leg.symbol: 3 * leg.signed_ratio for leg in legs}


def test_resting_orders_fill_at_their_limit_and_never_worse() -> None:
    sim = make_sim(chaos=profile(limit_fill_rate=0.2))
    sym = atm_call(sim)
    q = sim.quote(sym)
    legs = condor_legs(sim)
    _, net_mid, _ = sim.market.combo_quote(legs, 0.0)
    limits: dict[str, tuple[Decimal, Side | None]] = {}
    for i in range(40):
        buy = q.bid + Decimal("0.10") * (i % 5)
        sell = q.ask - Decimal("0.10") * (i % 5)
        combo = round_combo(net_mid) - Decimal("0.05") * (i % 4)
        sim.submit(single_request(f"b{i}", sym, Side.BUY, buy))
        sim.submit(single_request(f"s{i}", sym, Side.SELL, sell))
        sim.submit(combo_request(f"c{i}", legs, combo))
        limits.update({f"b{i}": (buy, Side.BUY), f"s{i}": (sell, Side.SELL), f"c{i}": (combo, None)})
    events = run(sim, 900.0)
    got = [(e.order_ref, e.event) for e in events if isinstance(e.event, Fill)]
    assert len(got) > 60  # most of them filled
    at_limit = 0
    for ref, fill in got:
        limit, side = limits[ref]
        if side is Side.SELL:
            assert fill.price >= limit
        else:
            assert fill.price <= limit  # for a combo: never a smaller credit than asked
        at_limit += fill.price == limit
    assert at_limit > len(got) // 2  # resting orders are hit at their limit


def test_fill_intensity_falls_for_better_prices() -> None:
    # a quiet market, so that fills come from the intensity and not from the market moving through
    quiet = MarketModel(seed=1, step_seconds=3600.0)  # the quote stays put for the first hour
    sim = make_sim(chaos=profile(limit_fill_rate=1 / 60), market=quiet)
    sym = atm_call(sim, offset=50)
    q = sim.quote(sym)
    near = q.ask - DEFAULT_TICKS.tick_for(q.ask)
    assert q.bid < near < q.ask
    for i in range(150):
        sim.submit(single_request(f"far{i}", sym, Side.BUY, q.bid))  # far touch: the best price for us
        sim.submit(single_request(f"near{i}", sym, Side.BUY, near))  # one tick below the natural
    events = run(sim, 60.0)
    filled = Counter(e.order_ref.rstrip("0123456789") for e in events if isinstance(e.event, Fill))
    assert filled["near"] > 3 * filled["far"]
    assert filled["near"] > 50
    assert sim.stats["rejected"] == 0


# -- acceptance knobs ---------------------------------------------------------------------------


def test_reject_rate_one_rejects_everything_with_realistic_reasons() -> None:
    sim = make_sim(chaos=profile(reject_rate=1.0))
    sym = atm_call(sim)
    refs = [f"r{i}" for i in range(30)]
    for ref in refs:
        sim.submit(single_request(ref, sym, Side.BUY, sim.quote(sym).ask))
    events = run(sim, 60.0)
    assert not acked(events) and not fills(events)
    reasons = [e.event.reason for e in events if isinstance(e.event, Rejected)]
    assert len(reasons) == 30
    assert set(reasons) <= {name for name, _ in REJECT_REASONS}
    assert len(set(reasons)) > 1
    assert {r.status for r in sim.reconcile(refs).values()} == {BrokerStatus.REJECTED}
    assert sim.stats["rejected"] == 30
    assert sum(v for k, v in sim.stats.items() if k.startswith("rejects.")) == 30
    assert sim.positions() == {}


def test_orders_after_the_close_are_rejected_market_closed() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    run(sim, sim.session_seconds + 1)
    sim.submit(single_request("late", sym, Side.BUY, Decimal("100.00")))
    (event,) = of(run(sim, sim.session_seconds + 10), "late")
    assert isinstance(event, Rejected) and event.reason == "market closed"


def test_off_tick_limit_is_rejected_as_invalid_price_unless_disabled() -> None:
    for enforce, expected in ((True, Rejected), (False, Acknowledged)):
        sim = make_sim(chaos=profile(reject_off_tick=enforce))
        sym = atm_call(sim)
        sim.submit(single_request("x", sym, Side.BUY, Decimal("3.17")))
        first = of(run(sim, 1.0), "x")[0]
        assert isinstance(first, expected)
        if isinstance(first, Rejected):
            assert first.reason == "invalid price"


def test_duplicate_reference_and_foreign_underlying_are_refused_at_once() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    sim.submit(single_request("d", sym, Side.BUY, Decimal("1.00")))
    with pytest.raises(SubmissionRefused, match="duplicate order reference"):
        sim.submit(single_request("d", sym, Side.BUY, Decimal("1.00")))
    ndx = OptionSymbol.of("NDXP", sym.expiry, "C", 20000)
    with pytest.raises(SubmissionRefused, match="NDX"):
        sim.submit(single_request("n", ndx, Side.BUY, Decimal("1.00")))
    assert [r.order_ref for r in sim.orders_seen] == ["d"]


# -- fills: partials ------------------------------------------------------------------------------


def test_partial_fill_rate_splits_fills_in_whole_units() -> None:
    sim = make_sim(chaos=profile(partial_fill_rate=1.0))
    legs = condor_legs(sim)
    limit = sim.market.combo_quote(legs, 0.0)[2] + ONE
    sim.submit(combo_request("p", legs, limit, quantity=6))
    got = fills(run(sim, 120.0), "p")
    assert len(got) >= 2
    assert sum(f.quantity for f in got) == 6
    assert all(type(f.quantity) is int and 1 <= f.quantity < 6 for f in got)
    assert len({f.fill_id for f in got}) == len(got)
    assert sim.reconcile(["p"])["p"].status is BrokerStatus.FILLED
    assert sim.stats["partial_fills"] == len(got) - 1


def test_partial_then_silence_leaves_a_partially_filled_order_that_then_expires() -> None:
    sim = make_sim(chaos=profile(partial_fill_rate=1.0, partial_then_silence_rate=1.0))
    sym = atm_call(sim)
    sim.submit(single_request("q", sym, Side.BUY, sim.quote(sym).ask + ONE, quantity=5))
    events = run(sim, 3600.0)
    (fill,) = fills(events, "q")
    assert fill.quantity < 5
    report = sim.reconcile(["q"])["q"]
    assert report.status is BrokerStatus.PARTIALLY_FILLED and report.fills == (fill,)
    assert sim.stats["partial_then_silence"] == 1
    tail = of(run(sim, sim.session_seconds + 5), "q")
    assert len(tail) == 1 and isinstance(tail[0], Expired)
    assert tail[0].time == sim.clock.to_datetime(sim.session_seconds)
    assert sim.reconcile(["q"])["q"].status is BrokerStatus.EXPIRED


# -- delivery knobs ---------------------------------------------------------------------------------


def _busy_session(sim: BrokerSimulator, n: int = 40) -> list[BrokerEvent]:
    """Marketable and resting orders, cancels and a replace: every kind of event."""
    sym = atm_call(sim)
    legs = condor_legs(sim)
    for i in range(n):
        ask = sim.quote(sym).ask
        sim.submit(single_request(f"o{i}", sym, Side.BUY, ask if i % 2 else ask - Decimal("2.00")))
        if i % 5 == 0:
            sim.submit(combo_request(f"c{i}", legs, round_combo(sim.market.combo_quote(legs, 0.0)[1])))
        run(sim, sim.clock.seconds + 3.0)
        if i % 3 == 0:
            sim.cancel(f"o{i}")
        if i % 7 == 0:
            sim.replace(f"o{i}", sim.quote(sym).ask + ONE)
    return run(sim, sim.clock.seconds + 120.0)


def test_duplicate_rate_one_delivers_every_event_exactly_twice() -> None:
    sim = make_sim(chaos=profile(duplicate_rate=1.0, limit_fill_rate=0.0))
    events: list[BrokerEvent] = []
    sym = atm_call(sim)
    sim.submit(single_request("a", sym, Side.BUY, sim.quote(sym).ask))
    sim.submit(single_request("b", sym, Side.BUY, Decimal("0.05")))
    events += run(sim, 10.0)
    sim.cancel("b")
    sim.cancel("zzz")
    events += run(sim, 20.0)
    counts = Counter(events)
    assert counts and set(counts.values()) == {2}
    kinds = {type(e.event) for e in counts}
    assert {Acknowledged, Fill, Canceled, CancelRejected} <= kinds
    assert sim.stats["duplicates"] == sim.stats["deliveries"] == len(counts)


def test_without_reorders_each_order_s_events_arrive_in_order() -> None:
    jittery = profile(ack_latency_jitter=1.5, fill_latency_jitter=1.5, ack_latency_mean=0.5, marketable_fill_mean=0.05)
    sim = make_sim(chaos=jittery)
    sym = atm_call(sim)
    for i in range(200):
        sim.submit(single_request(f"o{i}", sym, Side.BUY, sim.quote(sym).ask + ONE))
    events = run(sim, 60.0)
    for i in range(200):
        kinds = [type(e) for e in of(events, f"o{i}")]
        assert kinds == [Acknowledged, Fill]


def test_reorder_rate_delivers_some_fills_before_their_ack() -> None:
    chaos = profile(reorder_rate=0.5, reorder_delay_mean=2.0, marketable_fill_mean=0.05)
    sim = make_sim(chaos=chaos)
    sym = atm_call(sim)
    for i in range(200):
        sim.submit(single_request(f"o{i}", sym, Side.BUY, sim.quote(sym).ask + ONE))
    events = run(sim, 60.0)
    fill_first = sum(1 for i in range(200) if isinstance(of(events, f"o{i}")[0], Fill))
    assert fill_first > 10
    assert sim.stats["reorders"] > 50
    # reordering changes delivery only: every order still got exactly one ack and its fill
    assert len(acked(events)) == 200 and len(fills(events)) == 200


# -- outages ------------------------------------------------------------------------------------------


def _outage_sim(landed: float) -> tuple[BrokerSimulator, float, float]:
    chaos = profile(outage_rate_per_hour=6.0, outage_mean_seconds=120.0, outage_landed_rate=landed)
    sim = make_sim(seed=5, chaos=chaos)
    start, end = max(sim.outage_windows, key=lambda w: w[1] - w[0])
    assert end - start > 10
    return sim, start, end


def test_outage_makes_requests_fail_and_holds_deliveries_until_it_ends() -> None:
    sim, start, end = _outage_sim(landed=1.0)
    sym = atm_call(sim)
    sim.submit(single_request("before", sym, Side.BUY, Decimal("0.05")))  # rests, never fills
    run(sim, start)
    assert sim.in_outage(start) and not sim.in_outage(end)
    sim.advance_to(start + 1)
    with pytest.raises(SubmissionOutcomeUnknown, match="landed"):
        sim.submit(single_request("landed", sym, Side.BUY, sim.quote(sym).ask + ONE))
    with pytest.raises(BrokerUnavailable):
        sim.reconcile(["landed"])
    with pytest.raises(BrokerUnavailable):
        sim.cancel("before")
    with pytest.raises(BrokerUnavailable):
        sim.replace("before", Decimal("0.10"))
    sim.advance_to(end - 1e-6)
    assert sim.poll_events() == []  # nothing is delivered during an outage
    sim.advance_to(end)
    delivered = of(sim.poll_events(), "landed")
    assert delivered and isinstance(delivered[0], Acknowledged)
    report = sim.reconcile(["landed"])["landed"]
    assert report.status is not BrokerStatus.NOT_FOUND
    assert "landed" in [r.order_ref for r in sim.orders_seen]
    assert sim.stats["landed_during_outage"] == 1 and sim.stats["outages"] >= 1


def test_outage_submission_that_did_not_land_is_not_found() -> None:
    sim, start, end = _outage_sim(landed=0.0)
    sym = atm_call(sim)
    sim.advance_to(start + 1)
    with pytest.raises(SubmissionOutcomeUnknown):
        sim.submit(single_request("lost", sym, Side.BUY, Decimal("1.00")))
    events = run(sim, end + 60)
    assert of(events, "lost") == []
    assert sim.reconcile(["lost"])["lost"].status is BrokerStatus.NOT_FOUND
    assert sim.orders_seen == [] and sim.stats["lost_during_outage"] == 1


# -- cancels and races ---------------------------------------------------------------------------------


def _resting(sim: BrokerSimulator, ref: str, quantity: int) -> None:
    legs = condor_legs(sim)
    net_bid = sim.market.combo_quote(legs, sim.clock.seconds)[0]
    sim.submit(combo_request(ref, legs, round_combo(net_bid) - ONE, quantity=quantity))


def test_cancel_of_a_resting_order_is_confirmed() -> None:
    sim = make_sim(chaos=profile(limit_fill_rate=0.0))
    _resting(sim, "r", 2)
    before = run(sim, 5.0)
    sim.cancel("r")
    sim.cancel("r")  # idempotent: the second one finds it canceled
    events = of(before + run(sim, 10.0), "r")
    assert [type(e) for e in events] == [Acknowledged, Canceled, CancelRejected]
    assert isinstance(events[2], CancelRejected) and events[2].reason == "already canceled"
    assert sim.reconcile(["r"])["r"].status is BrokerStatus.CANCELED


def test_cancel_race_fill_is_reported_after_canceled_as_a_late_fill() -> None:
    chaos = profile(limit_fill_rate=0.0, cancel_race_rate=1.0, late_fill_rate=1.0, partial_fill_rate=1.0)
    sim = make_sim(chaos=chaos)
    _resting(sim, "r", 4)
    before = run(sim, 5.0)
    requested = sim.clock.seconds
    sim.cancel("r")
    events = of(before + run(sim, 30.0), "r")
    assert [type(e) for e in events] == [Acknowledged, Canceled, Fill]
    canceled, fill = events[1], events[2]
    assert isinstance(fill, Fill) and isinstance(canceled, Canceled)
    assert requested < sim.clock.to_seconds(fill.time) <= sim.clock.to_seconds(canceled.time)
    report = sim.reconcile(["r"])["r"]
    assert report.status is BrokerStatus.CANCELED and report.fills == (fill,)
    assert fill.quantity < 4  # the broker never fills more than it holds
    assert sim.stats["cancel_races"] == 1 and sim.stats["late_fills"] == 1


def test_cancel_race_without_hold_back_delivers_the_fill_before_canceled() -> None:
    sim = make_sim(chaos=profile(limit_fill_rate=0.0, cancel_race_rate=1.0, partial_fill_rate=1.0))
    _resting(sim, "r", 4)
    before = run(sim, 5.0)
    sim.cancel("r")
    assert [type(e) for e in of(before + run(sim, 30.0), "r")] == [Acknowledged, Fill, Canceled]


def test_cancel_race_that_completes_the_order_is_rejected_already_filled() -> None:
    chaos = profile(limit_fill_rate=0.0, cancel_race_rate=1.0, cancel_reject_rate=1.0)
    sim = make_sim(chaos=chaos)
    _resting(sim, "r", 1)
    before = run(sim, 5.0)
    sim.cancel("r")
    events = of(before + run(sim, 30.0), "r")
    assert [type(e) for e in events] == [Acknowledged, CancelRejected, Fill]
    assert isinstance(events[1], CancelRejected) and events[1].reason == "already filled"
    assert sim.reconcile(["r"])["r"].status is BrokerStatus.FILLED
    assert sim.stats["fills_after_cancel_reject"] == 1


def test_cancel_of_filled_and_unknown_orders_is_rejected() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    sim.submit(single_request("f", sym, Side.BUY, sim.quote(sym).ask + ONE))
    run(sim, 10.0)
    sim.cancel("f")
    sim.cancel("nobody")
    events = run(sim, 20.0)
    (f_reject,) = [e for e in of(events, "f") if isinstance(e, CancelRejected)]
    assert f_reject.reason == "already filled"
    (unknown,) = of(events, "nobody")
    assert isinstance(unknown, CancelRejected) and unknown.reason == "unknown order"


# -- replace ----------------------------------------------------------------------------------------------


def test_replace_moves_the_limit_and_a_filled_order_cannot_be_replaced() -> None:
    sim = make_sim(chaos=profile(limit_fill_rate=0.0))
    sym = atm_call(sim)
    sim.submit(single_request("u", sym, Side.BUY, Decimal("0.05")))
    ack = of(run(sim, 5.0), "u")[0]
    assert isinstance(ack, Acknowledged)
    new_limit = sim.quote(sym).ask + ONE
    sim.replace("u", new_limit)
    events = of(run(sim, 30.0), "u")
    assert isinstance(events[0], Updated) and events[0].broker_order_id == ack.broker_order_id
    (fill,) = [e for e in events if isinstance(e, Fill)]
    assert fill.price <= new_limit
    sim.replace("u", new_limit + ONE)
    sim.replace("ghost", ONE)
    later = run(sim, 40.0)
    (rejected,) = of(later, "u")
    assert isinstance(rejected, UpdateRejected) and rejected.reason == "already filled"
    (ghost,) = of(later, "ghost")
    assert isinstance(ghost, UpdateRejected) and ghost.reason == "unknown order"


def test_replace_quantity_below_filled_is_rejected() -> None:
    sim = make_sim(chaos=profile(partial_fill_rate=1.0, partial_then_silence_rate=1.0))
    sym = atm_call(sim)
    sim.submit(single_request("q", sym, Side.BUY, sim.quote(sym).ask + ONE, quantity=5))
    (fill,) = fills(run(sim, 30.0), "q")
    sim.replace("q", sim.quote(sym).ask + ONE, quantity=fill.quantity)
    (event,) = of(run(sim, 40.0), "q")
    assert isinstance(event, UpdateRejected) and "quantity" in event.reason


# -- session close ------------------------------------------------------------------------------------------


def test_day_orders_expire_at_the_close_and_gtc_orders_do_not() -> None:
    sim = make_sim(chaos=profile(limit_fill_rate=0.0))
    sym = atm_call(sim)
    sim.submit(single_request("day", sym, Side.BUY, Decimal("0.05")))
    sim.submit(single_request("gtc", sym, Side.BUY, Decimal("0.05"), tif=TimeInForce.GTC))
    sim.close_session()
    assert sim.clock.seconds == sim.session_seconds
    events = run(sim, sim.session_seconds + 60)
    assert [type(e) for e in of(events, "day")] == [Acknowledged, Expired]
    expired = of(events, "day")[1]
    assert isinstance(expired, Expired) and expired.time == sim.clock.to_datetime(sim.session_seconds)
    assert [type(e) for e in of(events, "gtc")] == [Acknowledged]
    reports = sim.reconcile(["day", "gtc"])
    assert reports["day"].status is BrokerStatus.EXPIRED
    assert reports["gtc"].status is BrokerStatus.WORKING
    assert sim.stats["expiries"] == 1


# -- determinism and broker truth -------------------------------------------------------------------------


def _hostile_scenario(seed: int, event_log: bool = True) -> tuple[BrokerSimulator, list[BrokerEvent]]:
    sim = make_sim(seed=seed, chaos=ChaosProfile.hostile(), event_log=event_log)
    market = sim.market
    events: list[BrokerEvent] = []
    refs: list[str] = []
    for i in range(150):
        t = 60.0 + i * 150.0
        events += run(sim, t)
        legs = market.iron_condor_legs(t, market.default_expiry, 10 + 5 * (i % 3), 30 + 10 * (i % 4))
        _, mid, ask = market.combo_quote(legs, t)
        limit = ask if i % 3 == 0 else round_combo(mid)
        ref = f"g{i}"
        try:
            sim.submit(combo_request(ref, legs, limit, quantity=1 + i % 4))
            refs.append(ref)
        except SubmissionOutcomeUnknown:
            refs.append(ref)
        if i % 2 and refs:
            with contextlib.suppress(BrokerUnavailable):
                sim.cancel(refs[-2] if len(refs) > 1 else refs[-1])
    events += run(sim, sim.session_seconds + 600)
    end = max([sim.session_seconds + 600, *(e for _, e in sim.outage_windows)]) + 1
    events += run(sim, end)
    return sim, events


def test_same_seed_gives_a_byte_identical_event_log_and_different_seed_does_not() -> None:
    sim_a, events_a = _hostile_scenario(11)
    sim_b, events_b = _hostile_scenario(11)
    sim_c, _ = _hostile_scenario(12)
    log_a = "\n".join(sim_a.event_log_lines())
    assert log_a == "\n".join(sim_b.event_log_lines())
    assert events_a == events_b
    assert sim_a.stats == sim_b.stats
    assert log_a != "\n".join(sim_c.event_log_lines())
    kinds = {line.split('"kind":"')[1].split('"')[0] for line in log_a.splitlines()}
    assert {"received", "acknowledged", "fill", "deliver", "expired", "close"} <= kinds


def test_hostile_session_keeps_the_broker_truth_consistent() -> None:
    sim, events = _hostile_scenario(21, event_log=False)
    refs = [r.order_ref for r in sim.orders_seen]
    assert len(refs) == len(set(refs))
    reports = sim.reconcile(refs)
    positions: Counter[OptionSymbol] = Counter()
    all_fill_ids: list[str] = []
    requests = {r.order_ref: r for r in sim.orders_seen}
    for ref, report in reports.items():
        filled = sum(f.quantity for f in report.fills)
        assert filled <= requests[ref].quantity, ref  # never over-filled at the broker
        if report.status is BrokerStatus.FILLED:
            assert filled == requests[ref].quantity
        assert report.status not in (BrokerStatus.WORKING, BrokerStatus.PARTIALLY_FILLED)  # all day orders ended
        all_fill_ids += [f.fill_id for f in report.fills]
        for f in report.fills:
            for leg in requests[ref].legs:
                positions[leg.symbol] += f.quantity * leg.signed_ratio
    assert len(all_fill_ids) == len(set(all_fill_ids))
    assert sim.positions() == {s: n for s, n in positions.items() if n}
    # every delivered fill is a real one (duplicates carry the same id) and chaos did happen
    delivered_ids = {e.event.fill_id for e in events if isinstance(e.event, Fill)}
    assert delivered_ids <= set(all_fill_ids)
    assert sim.stats["duplicates"] > 0 and sim.stats["reorders"] > 0 and sim.stats["rejected"] > 0
    with pytest.raises(RuntimeError, match="disabled"):
        next(sim.event_log_lines())


def test_order_types_are_recorded_as_seen() -> None:
    sim = make_sim()
    sym = atm_call(sim)
    request = single_request("seen", sym, Side.BUY, None)
    sim.submit(request)
    assert sim.orders_seen == [request]
    assert sim.orders_seen[0].order_type is OrderType.MARKET
    assert sim.order_status("seen") == "pending"
    run(sim, 5.0)
    assert sim.order_status("seen") == "filled"
    assert sim.order_status("never") is None


# -- orders a previous broker process settled (a recovery rehearsal) --------------------------


def test_a_held_settled_order_is_reconciled_listed_and_in_the_positions() -> None:
    sim = make_sim()
    legs = condor_legs(sim)
    request = combo_request("held", legs, Decimal("-1.00"), quantity=2)
    fill = Fill(time=sim.clock.now(), fill_id="SIM0000042-1", quantity=2, price=Decimal("-1.00"))
    sim.hold_settled(request, BrokerStatus.FILLED, [fill], "SIM0000042")
    report = sim.reconcile(["held"])["held"]
    assert (report.status, report.fills, report.broker_order_id) == (BrokerStatus.FILLED, (fill,), "SIM0000042")
    assert set(sim.find_orders("he")) == {"held"}
    assert sim.positions() == {leg.symbol: 2 * leg.signed_ratio for leg in legs}
    assert run(sim, 30.0) == [] and sim.orders_seen == [] and sim.stats["submitted"] == 0  # nothing worked
    # a later order never reuses the held order's broker id
    sim.submit(single_request("next", atm_call(sim), Side.BUY, None))
    assert sim.reconcile(["next"])["next"].broker_order_id == "SIM0000043"


@pytest.mark.parametrize(("status", "filled", "field"), [
    (BrokerStatus.WORKING, 0, "status"),
    (BrokerStatus.NOT_FOUND, 0, "status"),
    (BrokerStatus.FILLED, 1, "fills"),
    (BrokerStatus.CANCELED, 2, "fills"),
])
def test_hold_settled_refuses_what_no_broker_settled(status: BrokerStatus, filled: int, field: str) -> None:
    sim = make_sim()
    request = combo_request("held", condor_legs(sim), Decimal("-1.00"), quantity=2)
    one = Fill(time=sim.clock.now(), fill_id="SIM0000001-1", quantity=max(filled, 1), price=Decimal("-1.00"))
    held = [one] if filled else []
    with pytest.raises(ValidationError) as raised:
        sim.hold_settled(request, status, held)
    assert raised.value.field == field
    assert sim.reconcile(["held"])["held"].status is BrokerStatus.NOT_FOUND and sim.positions() == {}


def test_hold_settled_refuses_an_order_the_simulator_holds() -> None:
    sim = make_sim()
    request = combo_request("twice", condor_legs(sim), Decimal("-1.00"))
    sim.hold_settled(request, BrokerStatus.CANCELED, [])
    with pytest.raises(ValidationError, match="'twice'") as raised:
        sim.hold_settled(request, BrokerStatus.CANCELED, [])
    assert raised.value.field == "request.order_ref"
