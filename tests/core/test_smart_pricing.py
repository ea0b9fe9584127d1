"""Smart pricing: first prices, steps toward natural, caps, ticks, unwinds, and a caller's price change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.pricing import DEFAULT_TICKS, MAX_LIMIT_PRICE
from atomic_orders.fsm.smart_pricing import (
    check_update_price,
    combo_cap,
    combo_mid_natural,
    entry_price,
    stepped_price,
    unwind_price,
)
from tests.core.factories import sym

D = Decimal
TICKS = DEFAULT_TICKS
SLIP = D("0.30")

#: A sold iron condor: short call, long call, short put, long put.
CONDOR = (Leg(sym("C", 6000), Side.SELL), Leg(sym("C", 6050), Side.BUY),
          Leg(sym("P", 5800), Side.SELL), Leg(sym("P", 5750), Side.BUY))
#: A bought call vertical.
VERTICAL = (Leg(sym("C", 6000), Side.BUY), Leg(sym("C", 6050), Side.SELL))
#: Condor quotes: (bid, ask) per leg, in CONDOR's order.
CONDOR_QUOTES = ((D("3.00"), D("3.20")), (D("1.00"), D("1.10")), (D("2.50"), D("2.70")), (D("0.90"), D("1.00")))
VERTICAL_QUOTES = ((D("5.00"), D("5.40")), (D("2.00"), D("2.20")))


# ----------------------------------------------------------------------------------------------
# Combos (signed net per unit: debit positive, credit negative)

def test_mid_and_natural_of_a_credit_condor() -> None:
    mid, natural = combo_mid_natural(CONDOR, CONDOR_QUOTES)
    # mid: -3.10 + 1.05 - 2.60 + 0.95; natural: sell at the bids, buy at the asks
    assert mid == D("-3.70")
    assert natural == D("-3.00") + D("1.10") - D("2.50") + D("1.00") == D("-3.40")


def test_mid_and_natural_of_a_debit_vertical_and_ratios() -> None:
    assert combo_mid_natural(VERTICAL, VERTICAL_QUOTES) == (D("3.10"), D("3.40"))
    ratio = (Leg(sym("C", 6000), Side.BUY, 1), Leg(sym("C", 6050), Side.SELL, 2))
    assert combo_mid_natural(ratio, VERTICAL_QUOTES) == (D("5.20") - 2 * D("2.10"), D("5.40") - 2 * D("2.00"))


def test_combo_starts_at_the_mid_rounded_down_to_the_combo_tick() -> None:
    quotes = ((D("3.00"), D("3.21")), *CONDOR_QUOTES[1:])  # mid -3.705: a credit, rounded to more credit
    price, mid = entry_price(TICKS, CONDOR, quotes, max_slippage=SLIP, declared_limit=None)
    assert mid == D("-3.705")
    assert price == D("-3.75")
    assert entry_price(TICKS, VERTICAL, ((D("5.00"), D("5.43")), VERTICAL_QUOTES[1]), max_slippage=SLIP,
                       declared_limit=None) == (D("3.10"), D("3.115"))  # a debit: rounded to pay less


def test_combo_steps_toward_natural_and_stops_there() -> None:
    price, _ = entry_price(TICKS, CONDOR, CONDOR_QUOTES, max_slippage=D("10"), declared_limit=None)
    seen = [price]
    while (nxt := stepped_price(TICKS, seen[-1], CONDOR, CONDOR_QUOTES, step_ticks=1, max_slippage=D("10"),
                                declared_limit=None)) is not None:
        seen.append(nxt)
    assert seen == [D("-3.70"), D("-3.65"), D("-3.60"), D("-3.55"), D("-3.50"), D("-3.45"), D("-3.40")]


def test_combo_steps_several_ticks_and_never_beyond_max_slippage() -> None:
    step = stepped_price(TICKS, D("-3.70"), CONDOR, CONDOR_QUOTES, step_ticks=2, max_slippage=D("0.10"),
                         declared_limit=None)
    assert step == D("-3.60")  # mid -3.70 + 0.10
    assert stepped_price(TICKS, D("-3.60"), CONDOR, CONDOR_QUOTES, step_ticks=2, max_slippage=D("0.10"),
                         declared_limit=None) is None


def test_combo_never_beyond_the_declared_limit() -> None:
    # a credit of at least 3.60 declared: signed -3.60; the natural (-3.40) would give more away
    assert combo_cap(TICKS, D("-3.70"), D("-3.40"), max_slippage=SLIP, declared_limit=D("-3.60")) == D("-3.60")
    assert stepped_price(TICKS, D("-3.60"), CONDOR, CONDOR_QUOTES, step_ticks=1, max_slippage=SLIP,
                         declared_limit=D("-3.60")) is None
    # a limit better than the mid: the first price is the limit itself
    price, _ = entry_price(TICKS, CONDOR, CONDOR_QUOTES, max_slippage=SLIP, declared_limit=D("-3.90"))
    assert price == D("-3.90")


def test_combo_cap_rounds_down_to_the_combo_tick() -> None:
    assert combo_cap(TICKS, D("3.10"), D("3.43"), max_slippage=D("5"), declared_limit=None) == D("3.40")
    assert combo_cap(TICKS, D("-3.70"), D("-3.42"), max_slippage=D("5"), declared_limit=None) == D("-3.45")


# ----------------------------------------------------------------------------------------------
# Single legs (a legged group's per-leg orders, per contract, positive)

BUY = (Leg(sym("C", 6000), Side.BUY),)
SELL = (Leg(sym("C", 6000), Side.SELL),)


def test_single_leg_starts_at_the_mid_on_its_own_tick() -> None:
    assert entry_price(TICKS, BUY, ((D("1.00"), D("1.15")),), max_slippage=SLIP, declared_limit=None) == (
        D("1.05"), D("1.075"))
    assert entry_price(TICKS, SELL, ((D("1.00"), D("1.15")),), max_slippage=SLIP, declared_limit=None)[0] == D("1.10")
    # at or above 3.00 the tick is 0.10
    assert entry_price(TICKS, BUY, ((D("4.00"), D("4.30")),), max_slippage=SLIP, declared_limit=None)[0] == D("4.10")
    assert entry_price(TICKS, SELL, ((D("4.00"), D("4.30")),), max_slippage=SLIP, declared_limit=None)[0] == D("4.20")
    # never below the smallest tick
    assert entry_price(TICKS, BUY, ((D("0"), D("0.05")),), max_slippage=SLIP, declared_limit=None)[0] == D("0.05")


def test_legged_limits_step_to_the_touch_within_max_slippage() -> None:
    quote = ((D("1.00"), D("1.40")),)  # mid 1.20
    assert stepped_price(TICKS, D("1.20"), BUY, quote, step_ticks=1, max_slippage=SLIP,
                         declared_limit=None) == D("1.25")
    assert stepped_price(TICKS, D("1.40"), BUY, quote, step_ticks=1, max_slippage=SLIP, declared_limit=None) is None
    assert stepped_price(TICKS, D("1.30"), BUY, quote, step_ticks=5, max_slippage=D("0.10"),
                         declared_limit=None) is None  # already at mid + slippage
    assert stepped_price(TICKS, D("1.20"), SELL, quote, step_ticks=3, max_slippage=SLIP,
                         declared_limit=None) == D("1.05")
    assert stepped_price(TICKS, D("1.00"), SELL, quote, step_ticks=1, max_slippage=SLIP, declared_limit=None) is None


def test_a_buy_step_across_three_dollars_lands_on_the_coarser_tick() -> None:
    # 2.95 + 2 x 0.05 = 3.05 is not a price at or above 3.00 (tick 0.10): the step stops at 3.00
    quote = ((D("3.00"), D("3.40")),)
    step = stepped_price(TICKS, D("2.95"), BUY, quote, step_ticks=2, max_slippage=SLIP, declared_limit=None)
    assert step == D("3.00") and TICKS.is_on_tick(step)


def test_unwinds_are_marketable_through_the_touch() -> None:
    assert unwind_price(TICKS, Side.BUY, D("1.00"), D("1.10"), ticks_through=2) == (D("1.20"), D("1.05"))
    assert unwind_price(TICKS, Side.SELL, D("1.00"), D("1.10"), ticks_through=2)[0] == D("0.90")
    assert unwind_price(TICKS, Side.SELL, D("0.05"), D("0.10"), ticks_through=2)[0] == D("0.05")
    assert unwind_price(TICKS, Side.SELL, D("4.00"), D("4.20"), ticks_through=1)[0] == D("3.90")
    # through the $3.00 threshold: 2.95 + 2 x 0.05 is not on the 0.10 grid; rounded up, still marketable
    assert unwind_price(TICKS, Side.BUY, D("2.80"), D("2.95"), ticks_through=2)[0] == D("3.10")


# ----------------------------------------------------------------------------------------------
# A caller's price change

CREDIT_NOW = D("-3.70")


def _check(price: object, current: Decimal | None = CREDIT_NOW, combo: bool = True, entry: bool = True,
           limit: Decimal | None = None) -> None:
    check_update_price(TICKS, price, current=current, combo=combo, entry=entry, declared_limit=limit)


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D("-Infinity"), D("sNaN"), 1.5, "1.50", None,
                                 MAX_LIMIT_PRICE + 1])
def test_update_refuses_what_is_not_a_finite_decimal_in_range(bad: object) -> None:
    with pytest.raises(ValidationError) as err:
        _check(bad)
    assert err.value.field == "limit_price"


def test_update_refuses_off_tick_zero_and_wrong_sign() -> None:
    for bad in (D("-3.72"), D("0")):
        with pytest.raises(ValidationError, match="multiple of the tick"):
            _check(bad)
    with pytest.raises(ValidationError, match=r"multiple of the tick 0\.10"):
        _check(D("3.15"), current=D("3.00"), combo=False)
    with pytest.raises(ValidationError, match="must be positive"):
        _check(D("-1.00"), current=D("1.00"), combo=False)
    with pytest.raises(ValidationError, match="credit"):
        _check(D("0.50"))  # a credit combo cannot become a debit


def test_update_refuses_a_combo_entry_beyond_the_declared_limit_only() -> None:
    with pytest.raises(ValidationError, match=r"declared limit -3\.60"):
        _check(D("-3.55"), limit=D("-3.60"))
    _check(D("-3.60"), limit=D("-3.60"))
    _check(D("-3.55"), limit=D("-3.60"), entry=False)  # an unwind is not held to the entry's limit
    _check(D("3.10"), current=D("3.00"), combo=False)


# ----------------------------------------------------------------------------------------------
# Properties: on the tick, between the mid and the cap

cents = st.integers(min_value=0, max_value=2_000).map(lambda c: D(c).scaleb(-2))
positive_cents = st.integers(min_value=1, max_value=2_000).map(lambda c: D(c).scaleb(-2))


@st.composite
def bid_ask(draw: st.DrawFn) -> tuple[Decimal, Decimal]:
    bid = draw(cents)
    return bid, bid + draw(positive_cents)


legs_strategy = st.sampled_from([CONDOR, VERTICAL, (Leg(sym("C", 6000), Side.SELL), Leg(sym("P", 5800), Side.SELL))])
limits = st.none() | st.integers(min_value=-400, max_value=400).map(lambda n: D(n) * TICKS.combo_tick)
slippages = st.integers(min_value=0, max_value=100).map(lambda c: D(c).scaleb(-2))


@settings(max_examples=300, deadline=None)
@given(legs=legs_strategy, data=st.data(), slip=slippages, limit=limits, step_ticks=st.integers(0, 5))
def test_combo_prices_stay_on_the_tick_and_between_mid_and_the_cap(
    legs: tuple[Leg, ...], data: st.DataObject, slip: Decimal, limit: Decimal | None, step_ticks: int,
) -> None:
    quotes = tuple(data.draw(bid_ask()) for _ in legs)
    mid, natural = combo_mid_natural(legs, quotes)
    cap = combo_cap(TICKS, mid, natural, max_slippage=slip, declared_limit=limit)
    assert TICKS.is_on_tick(cap, combo=True) and cap <= natural and cap <= mid + slip
    assert limit is None or cap <= limit
    price, _ = entry_price(TICKS, legs, quotes, max_slippage=slip, declared_limit=limit)
    assert TICKS.is_on_tick(price, combo=True)
    assert price <= mid and price <= cap
    assert price == cap or price > mid - TICKS.combo_tick  # at the mid unless the cap is below it
    current = price
    for _ in range(50):
        nxt = stepped_price(TICKS, current, legs, quotes, step_ticks=step_ticks, max_slippage=slip,
                            declared_limit=limit)
        if nxt is None:
            break
        assert TICKS.is_on_tick(nxt, combo=True) and current < nxt <= cap
        current = nxt
    assert current <= natural and (limit is None or current <= limit)


@settings(max_examples=300, deadline=None)
@given(side=st.sampled_from(list(Side)), quote=bid_ask(), slip=slippages, step_ticks=st.integers(0, 5),
       through=st.integers(0, 5))
def test_single_leg_prices_stay_on_the_tick_and_between_mid_and_the_touch(
    side: Side, quote: tuple[Decimal, Decimal], slip: Decimal, step_ticks: int, through: int,
) -> None:
    bid, ask = quote
    mid = (bid + ask) / 2
    legs = (Leg(sym("C", 6000), side),)
    price, _ = entry_price(TICKS, legs, (quote,), max_slippage=slip, declared_limit=None)
    assert TICKS.is_on_tick(price) and price >= TICKS.below_threshold
    if side is Side.BUY:
        assert price <= max(mid, TICKS.below_threshold)
    else:
        assert price >= mid
    current = price
    for _ in range(100):
        nxt = stepped_price(TICKS, current, legs, (quote,), step_ticks=step_ticks, max_slippage=slip,
                            declared_limit=None)
        if nxt is None:
            break
        assert TICKS.is_on_tick(nxt)
        if side is Side.BUY:
            assert current < nxt <= min(ask, mid + slip)
        else:
            assert max(bid, mid - slip, TICKS.below_threshold) <= nxt < current
        current = nxt
    unwind, _ = unwind_price(TICKS, side, bid, ask, ticks_through=through)
    assert TICKS.is_on_tick(unwind) and unwind >= TICKS.below_threshold
    assert unwind >= ask if side is Side.BUY else (unwind <= bid or unwind == TICKS.below_threshold)
