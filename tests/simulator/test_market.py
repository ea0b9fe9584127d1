"""Market model sanity: tick-aligned Decimal quotes, monotone prices, combos, condor strikes."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from atomic_orders.fsm.leg import Side
from atomic_orders.fsm.pricing import DEFAULT_TICKS
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.simulator.broker.market import MarketModel, black_scholes

from ._helpers import utc


@pytest.fixture
def market() -> MarketModel:
    return MarketModel(seed=3)


def _grid(market: MarketModel, right: str) -> list[OptionSymbol]:
    return [market.symbol(market.default_expiry, right, k) for k in range(4500, 5505, 5)]


def test_quotes_are_decimals_on_the_tick_with_bid_below_ask(market: MarketModel) -> None:
    checked = 0
    for seconds in (0.0, 1234.5, 20000.0, market.session_seconds - 1):
        for right in ("C", "P"):
            for sym in _grid(market, right):
                q = market.quote(sym, seconds)
                assert isinstance(q.bid, Decimal) and isinstance(q.ask, Decimal)
                assert q.bid >= Decimal("0.05")
                assert q.bid < q.ask
                assert DEFAULT_TICKS.is_on_tick(q.bid) and DEFAULT_TICKS.is_on_tick(q.ask), (sym, q)
                # stamped with the start of its one-second walk step
                assert q.time == market.session_open + dt.timedelta(seconds=int(seconds))
                checked += 1
    assert checked == 4 * 2 * 201


def test_calls_fall_and_puts_rise_with_strike(market: MarketModel) -> None:
    for seconds in (0.0, 10000.0):
        calls = [market.theoretical(s, seconds) for s in _grid(market, "C")]
        puts = [market.theoretical(s, seconds) for s in _grid(market, "P")]
        assert all(a > b for a, b in itertools.pairwise(calls))
        assert all(a < b for a, b in itertools.pairwise(puts))
        call_mids = [market.quote(s, seconds).mid for s in _grid(market, "C")]
        put_mids = [market.quote(s, seconds).mid for s in _grid(market, "P")]
        assert all(a >= b for a, b in itertools.pairwise(call_mids))
        assert all(a <= b for a, b in itertools.pairwise(put_mids))


def test_quotes_bracket_fair_value_and_spread_widens_away_from_the_money(market: MarketModel) -> None:
    atm = market.symbol(market.default_expiry, "C", 5000)
    otm = market.symbol(market.default_expiry, "P", 4800)
    worthless = market.symbol(market.default_expiry, "P", 4000)
    for sym in (atm, otm, worthless):
        q = market.quote(sym, 0.0)
        fair = Decimal(str(market.theoretical(sym, 0.0)))
        assert max(q.bid - Decimal("0.05"), Decimal(0)) <= fair <= q.ask  # the bid is floored at 0.05
    # the spread is wider in dollars at the money and wider relative to price away from it
    q_atm, q_otm = market.quote(atm, 0.0), market.quote(otm, 0.0)
    assert q_atm.ask - q_atm.bid > q_otm.ask - q_otm.bid
    assert (q_otm.ask - q_otm.bid) / q_otm.mid > (q_atm.ask - q_atm.bid) / q_atm.mid
    assert market.quote(worthless, 0.0).bid == Decimal("0.05")


def test_black_scholes_put_call_parity_and_intrinsic_at_expiry() -> None:
    s, k, t, v, r = 5000.0, 4950.0, 0.05, 0.2, 0.04
    call = black_scholes(s, k, t, v, r, True)
    put = black_scholes(s, k, t, v, r, False)
    assert call - put == pytest.approx(s - k * __import__("math").exp(-r * t), abs=1e-6)
    assert black_scholes(s, k, 0.0, v, r, True) == 50.0
    assert black_scholes(s, k, 0.0, v, r, False) == 0.0


def test_path_is_deterministic_per_seed_and_moves(market: MarketModel) -> None:
    same = MarketModel(seed=3)
    other = MarketModel(seed=4)
    times = [0.0, 1.0, 600.0, 23399.0]
    assert [market.spot(t) for t in times] == [same.spot(t) for t in times]
    assert [market.spot(t) for t in times[1:]] != [other.spot(t) for t in times[1:]]
    assert market.spot(0.0) == 5000.0
    moves = {round(market.spot(t), 6) for t in range(0, 23400, 600)}
    assert len(moves) > 30  # it is a walk, not a constant
    # a session moves roughly vol/sqrt(252) (~1.1%): nowhere near 20%
    assert all(4000 < market.spot(t) < 6000 for t in range(0, 23400, 600))


def test_quotes_are_constant_within_a_step_and_cached(market: MarketModel) -> None:
    sym = market.symbol(market.default_expiry, "P", 4950)
    q1 = market.quote(sym, 100.1)
    q2 = market.quote(sym, 100.9)
    assert (q1.bid, q1.ask) == (q2.bid, q2.ask)


def test_expired_option_is_worth_intrinsic() -> None:
    market = MarketModel(seed=1, spot=5000)
    past = market.session_date - dt.timedelta(days=1)
    itm = market.symbol(past, "C", 4900)
    assert market.theoretical(itm, 0.0) == pytest.approx(100.0)
    # a zero-day option at the close is worth intrinsic too
    today = market.symbol(market.session_date, "P", 5100)
    assert market.theoretical(today, market.session_seconds) == pytest.approx(max(5100 - market.spot(23400), 0))


def test_combo_quote_is_signed_natural_from_leg_quotes(market: MarketModel) -> None:
    legs = market.iron_condor_legs(0.0, market.default_expiry, 10, 50)
    net_bid, net_mid, net_ask = market.combo_quote(legs, 0.0)
    expected_ask = Decimal(0)
    expected_bid = Decimal(0)
    for leg in legs:
        q = market.quote(leg.symbol, 0.0)
        if leg.side is Side.BUY:
            expected_ask += q.ask * leg.ratio
            expected_bid += q.bid * leg.ratio
        else:
            expected_ask -= q.bid * leg.ratio
            expected_bid -= q.ask * leg.ratio
    assert (net_bid, net_ask) == (expected_bid, expected_ask)
    assert net_bid < net_mid < net_ask < 0  # a short condor is a credit: negative "debit"
    assert net_mid == (net_bid + net_ask) / 2
    assert DEFAULT_TICKS.is_on_tick(net_ask, combo=True)


def test_strikes_for_iron_condor_sit_on_the_grid_around_spot(market: MarketModel) -> None:
    seconds = 5000.0
    spot = market.spot(seconds)
    sc, lc, sp, lp = market.strikes_for_iron_condor(seconds, market.default_expiry, 25, 40)
    assert (sc.right, lc.right, sp.right, lp.right) == (Right.CALL, Right.CALL, Right.PUT, Right.PUT)
    for sym in (sc, lc, sp, lp):
        assert sym.strike % 5 == 0
        assert sym.root == "SPXW" and sym.underlying == "SPX"
        assert sym.expiry == market.default_expiry
    assert lp.strike < sp.strike < Decimal(spot) < sc.strike < lc.strike
    assert sc.strike >= Decimal(spot) + 40 and sp.strike <= Decimal(spot) - 40
    assert lc.strike - sc.strike == 25 and sp.strike - lp.strike == 25
    with pytest.raises(ValueError, match="width"):
        market.strikes_for_iron_condor(seconds, market.default_expiry, 7, 40)


def test_other_underlyings_and_naive_open_are_refused(market: MarketModel) -> None:
    ndx = OptionSymbol.of("NDXP", market.default_expiry, "C", 20000)
    with pytest.raises(ValueError, match="NDX"):
        market.quote(ndx, 0.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        MarketModel(seed=1, session_open=dt.datetime(2026, 1, 5, 14, 30))
    assert MarketModel(seed=1, session_open=utc(2026, 3, 2, 14, 30)).session_date == dt.date(2026, 3, 2)


def _reference_cents(market: MarketModel, symbol: OptionSymbol, step: int) -> tuple[int, int]:
    """The module docstring's quote rule, from black_scholes() and the tick grid, one symbol at a time."""
    import math

    strike = float(symbol.strike)
    s = market.spot_at_step(step)
    if symbol.expiry < market.session_date:
        years = 0.0
    else:
        days = sum(1 for d in range(1, (symbol.expiry - market.session_date).days + 1)
                   if (market.session_date + dt.timedelta(days=d)).weekday() < 5)
        left = max(market.session_seconds - step * market.step_seconds, 0.0)
        years = days / 252.0 + left / (252 * market.session_seconds)
    mid = black_scholes(s, strike, years, market.annual_vol, market.rate, symbol.right is Right.CALL)
    half = market.base_half_spread + mid * (market.spread_price_frac + market.spread_moneyness * abs(strike / s - 1))
    low, high = (mid - half) * 100, (mid + half) * 100
    bid = math.floor(low / 5 + 1e-9) * 5
    if bid >= 300:
        bid = math.floor(low / 10 + 1e-9) * 10
    bid = max(bid, 5)
    ask = math.ceil(high / 5 - 1e-9) * 5
    if ask >= 300:
        ask = math.ceil(high / 10 - 1e-9) * 10
    if ask <= bid:
        ask = bid + (10 if bid >= 300 else 5)
    return bid, ask


def test_quotes_follow_the_rule_whatever_the_order_they_are_asked_in(market: MarketModel) -> None:
    # legs of two expiries (one already expired) asked interleaved, steps moving on: the market's
    # per-step and per-symbol caches must never hand one symbol's or one step's terms to another
    expiries = (market.default_expiry, market.session_date + dt.timedelta(days=2),
                market.session_date - dt.timedelta(days=1))
    symbols = [market.symbol(e, r, k) for k in (4800, 4995, 5000, 5205) for e in expiries for r in ("C", "P")]
    for step in (0, 0, 1, 7, 7, 3600, 23399, 23400, 23401):
        for sym in symbols:
            assert market.quote_cents(sym, step) == _reference_cents(market, sym, step), (sym, step)


def test_symbol_gives_one_object_per_int_strike(market: MarketModel) -> None:
    expiry = market.default_expiry
    one = market.symbol(expiry, "C", 5000)
    assert market.symbol(expiry, Right.CALL, 5000) is one
    assert one == OptionSymbol.of("SPXW", expiry, "C", 5000)
    assert market.symbol(expiry, "P", 5000) is not one and market.symbol(expiry, "C", 5005) is not one
    # a Decimal strike keeps its own spelling (5000.0 is not rewritten as 5000)
    assert str(market.symbol(expiry, "C", Decimal("5000.0")).strike) == "5000.0"
