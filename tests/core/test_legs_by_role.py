"""Strategy helpers take legs by role, keyword-only, and refuse roles that contradict what they declare.

Issue 14: ``execute_vertical(long_leg, short_leg)`` took its legs in the opposite order to
``execute_iron_condor(short_call, ...)``, and passing (short, long) bought a debit spread where a
credit spread was meant, with no warning. Every refusal here happens before any group exists:
the backend sees no order.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.fsm import AtomicOrderGroup, Leg, OptionSymbol, PositionEffect, PriceEffect, Side, ValidationError
from atomic_orders.fsm.strategy import (
    StrategyKind,
    iron_condor_legs,
    natural_price_effect,
    strangle_legs,
    validate_legs,
    vertical_legs,
)
from tests.executor.test_executor import CONDOR_ROLES, LC, LP, SC, SP, make

EXP = dt.date(2026, 1, 16)


def call(strike: int, expiry: dt.date = EXP) -> OptionSymbol:
    return OptionSymbol.of("SPXW", expiry, "C", strike)


def put(strike: int) -> OptionSymbol:
    return OptionSymbol.of("SPXW", EXP, "P", strike)


def refused(fn: Any, **kwargs: Any) -> ValidationError:
    """The helper's refusal, checked to have sent nothing and created no group."""
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        getattr(ex, fn)(**kwargs)
    assert backend.submitted == [] and ex.groups() == [], "nothing is sent after a refusal"
    return info.value


# -- keyword-only --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fn", "args"), [
    ("execute_iron_condor", (SC, LC, SP, LP, 1)),
    ("execute_vertical", (SC, LC, 1)),
    ("execute_strangle", (SC, SP, 1)),
])
def test_positional_legs_are_refused(fn: str, args: tuple[Any, ...]) -> None:
    backend, ex = make()
    with pytest.raises(TypeError, match="positional"):
        getattr(ex, fn)(*args)
    assert backend.submitted == []


def test_quantity_is_keyword_only_too() -> None:
    backend, ex = make()
    with pytest.raises(TypeError):
        ex.execute_iron_condor(1, **CONDOR_ROLES)  # type: ignore[misc]
    assert backend.submitted == []


# -- verticals: a declared credit or debit, both rights ------------------------------------------------


@pytest.mark.parametrize(("long_leg", "short_leg", "made"), [
    (call(5100), call(5125), PriceEffect.DEBIT),   # bull call: buys the lower call
    (call(5125), call(5100), PriceEffect.CREDIT),  # bear call: sells the lower call
    (put(4900), put(4875), PriceEffect.DEBIT),     # bear put: buys the higher put
    (put(4875), put(4900), PriceEffect.CREDIT),    # bull put: sells the higher put
])
def test_a_vertical_declared_the_other_way_is_refused_naming_price_effect(
    long_leg: OptionSymbol, short_leg: OptionSymbol, made: PriceEffect
) -> None:
    declared = PriceEffect.CREDIT if made is PriceEffect.DEBIT else PriceEffect.DEBIT
    err = refused("execute_vertical", long_leg=long_leg, short_leg=short_leg, price_effect=declared, quantity=1)
    assert err.field == "price_effect" and err.value == declared.value
    assert f"{made.value} {long_leg.right.name.lower()} spread" in err.reason
    backend, ex = make()
    group = ex.execute_vertical(long_leg=long_leg, short_leg=short_leg, price_effect=made, quantity=1)
    assert group.state == "executing" and len(backend.submitted) == 1
    sides = {leg.symbol: leg.side for leg in backend.submitted[0].legs}
    assert sides == {long_leg: Side.BUY, short_leg: Side.SELL}


def test_the_reported_credit_spread_mixup_is_caught() -> None:
    # The user meant a credit call spread (sell 5100, buy 5125) but passed the roles swapped.
    err = refused("execute_vertical", long_leg=call(5100), short_leg=call(5125), price_effect=PriceEffect.CREDIT,
                  quantity=1)
    assert err.field == "price_effect"
    assert "sells the lower strike and buys the higher" in err.reason


@pytest.mark.parametrize(("short_leg", "field", "words"), [
    (put(5125), "short_leg", "right"),
    (call(5125, EXP + dt.timedelta(days=7)), "short_leg.expiry", "long_leg"),
    (OptionSymbol.of("SPX", EXP, "C", 5125), "short_leg.root", "long_leg (SPXW)"),
    (call(5100), "short_leg", "different strikes"),
    ("SPXW 5125C", "short_leg", "OptionSymbol"),
])
def test_a_vertical_of_mismatched_legs_is_refused_naming_the_role(short_leg: Any, field: str, words: str) -> None:
    err = refused("execute_vertical", long_leg=call(5100), short_leg=short_leg, price_effect=PriceEffect.DEBIT,
                  quantity=1)
    assert err.field == field and words in err.reason


def test_a_vertical_needs_a_price_effect() -> None:
    backend, ex = make()
    with pytest.raises(TypeError, match="price_effect"):
        ex.execute_vertical(long_leg=call(5100), short_leg=call(5125), quantity=1)  # type: ignore[call-arg]
    assert backend.submitted == []
    err = refused("execute_vertical", long_leg=call(5100), short_leg=call(5125), price_effect="debit", quantity=1)
    assert err.field == "price_effect" and err.value == "debit"


def test_vertical_legs_agree_with_the_group_validation() -> None:
    for long_leg, short_leg in [(call(5100), call(5125)), (put(4875), put(4900))]:
        for effect in PriceEffect:
            try:
                legs = vertical_legs(long_leg=long_leg, short_leg=short_leg, price_effect=effect,
                                     position_effect=PositionEffect.CLOSE)
            except ValidationError:
                continue
            assert validate_legs(StrategyKind.VERTICAL, legs) == []
            assert natural_price_effect(StrategyKind.VERTICAL, legs) is effect
            assert all(leg.position_effect is PositionEffect.CLOSE for leg in legs)


# -- iron condors: short strikes inside the longs (credit) ---------------------------------------------


def test_a_sold_condor_by_role() -> None:
    legs = iron_condor_legs(**CONDOR_ROLES)
    assert legs == (Leg(SC, Side.SELL), Leg(LC, Side.BUY), Leg(SP, Side.SELL), Leg(LP, Side.BUY))
    assert natural_price_effect(StrategyKind.IRON_CONDOR, legs) is PriceEffect.CREDIT


@pytest.mark.parametrize(("roles", "field"), [
    ({"short_call": LC, "long_call": SC, "short_put": SP, "long_put": LP}, "long_call"),
    ({"short_call": SC, "long_call": LC, "short_put": LP, "long_put": SP}, "long_put"),
    ({"short_call": LC, "long_call": SC, "short_put": LP, "long_put": SP}, "price_effect"),
    ({"short_call": SP, "long_call": LC, "short_put": SC, "long_put": LP}, "short_call"),  # a put as a call
])
def test_a_condor_with_swapped_roles_is_refused_naming_the_field(roles: dict[str, OptionSymbol], field: str) -> None:
    err = refused("execute_iron_condor", **roles, quantity=1)
    assert err.field == field


def test_a_condor_with_crossed_short_strikes_is_refused() -> None:
    err = refused("execute_iron_condor", short_call=call(4950), long_call=call(4975), short_put=put(5000),
                  long_put=put(4975), quantity=1)
    assert err.field == "short_put" and err.value == 5000


def test_a_bought_condor_is_declared_a_debit() -> None:
    backend, ex = make()
    group = ex.execute_iron_condor(short_call=LC, long_call=SC, short_put=LP, long_put=SP, quantity=1,
                                   price_effect=PriceEffect.DEBIT, position_effect=PositionEffect.CLOSE)
    assert group.state == "executing" and len(backend.submitted) == 1
    assert natural_price_effect(StrategyKind.IRON_CONDOR, group.legs) is PriceEffect.DEBIT


# -- strangles: a call above a put, both sold or both bought ---------------------------------------------


@pytest.mark.parametrize(("side", "effect"), [(Side.SELL, PriceEffect.CREDIT), (Side.BUY, PriceEffect.DEBIT)])
def test_a_strangle_by_side(side: Side, effect: PriceEffect) -> None:
    backend, ex = make()
    group = ex.execute_strangle(call=SC, put=SP, side=side, quantity=1)
    assert group.state == "executing"
    assert {leg.symbol: leg.side for leg in backend.submitted[0].legs} == {SC: side, SP: side}
    assert natural_price_effect(StrategyKind.STRANGLE, group.legs) is effect
    other = PriceEffect.DEBIT if effect is PriceEffect.CREDIT else PriceEffect.CREDIT
    err = refused("execute_strangle", call=SC, put=SP, side=side, price_effect=other, quantity=1)
    assert err.field == "price_effect" and err.value == other.value


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"call": call(4900), "put": put(4900)}, "call"),  # a straddle
    ({"call": call(4875), "put": put(4900)}, "call"),  # a guts
    ({"call": SP, "put": SC}, "call"),                 # the rights swapped
    ({"call": SC, "put": LC}, "put"),
])
def test_a_strangle_that_is_not_one_is_refused_naming_the_field(kwargs: dict[str, OptionSymbol], field: str) -> None:
    err = refused("execute_strangle", **kwargs, side=Side.SELL, quantity=1)
    assert err.field == field


def test_a_strangle_names_its_side() -> None:
    backend, ex = make()
    with pytest.raises(TypeError, match="side"):
        ex.execute_strangle(call=SC, put=SP, quantity=1)  # type: ignore[call-arg]
    assert backend.submitted == []
    err = refused("execute_strangle", call=SC, put=SP, side="sell", quantity=1)
    assert err.field == "side"
    assert strangle_legs(call=SC, put=SP, side=Side.BUY) == (Leg(SC, Side.BUY), Leg(SP, Side.BUY))


# -- every bad input raises: a caller who never reads group.state cannot believe the order went in ---------

HELPERS: dict[str, dict[str, Any]] = {
    "execute_iron_condor": dict(CONDOR_ROLES),
    "execute_vertical": {"long_leg": call(5125), "short_leg": call(5100), "price_effect": PriceEffect.CREDIT},
    "execute_strangle": {"call": SC, "put": SP, "side": Side.SELL},
}

BAD_INPUTS: list[tuple[str, Any]] = [
    ("quantity", "1"), ("quantity", 0), ("quantity", -1), ("quantity", True), ("quantity", False),
    ("quantity", 1.5), ("quantity", 1.0), ("quantity", None), ("quantity", Decimal(1)), ("quantity", float("nan")),
    ("limit_price", 1.5), ("limit_price", Decimal("NaN")), ("mode", "foo"), ("group_id", "a b/c"), ("group_id", ""),
]


def _same(a: object, b: object) -> bool:
    """Equal and of one type (True == 1 == 1.0 == Decimal(1)), or both NaN."""
    if type(a) is not type(b):
        return False
    return a == b or (a != a and b != b)


@pytest.mark.parametrize("fn", sorted(HELPERS))
@pytest.mark.parametrize(("field", "value"), BAD_INPUTS, ids=[f"{f}={v!r}" for f, v in BAD_INPUTS])
def test_every_bad_input_raises_naming_it_and_nothing_is_sent(fn: str, field: str, value: Any) -> None:
    backend, ex = make()
    kwargs = {**HELPERS[fn], "quantity": 1, field: value}
    with pytest.raises(ValidationError) as info:
        getattr(ex, fn)(**kwargs)
    err = info.value
    assert err.field == field and _same(err.value, value), err
    assert backend.submitted == [] and ex.open_groups() == [], "the backend saw no order"
    # Recorded as execute() records an invalid group: counted and finished, never started.
    assert ex.stats.groups == 1 and ex.stats.invalid == 1 and ex.stats.orders_sent == 0
    assert len(ex.finished_group_ids()) == 1 and ex.groups() == []
    assert "recorded invalid, nothing sent" in err.reason


def test_several_problems_raise_the_first_and_list_them_all() -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=0, mode="foo", group_id="a b/c")  # type: ignore[arg-type]
    err = info.value
    assert (err.field, err.value) == ("group_id", "a b/c")  # the group's own first check
    assert "quantity=0" in err.reason and "mode='foo'" in err.reason
    assert backend.submitted == []


def test_a_valid_group_from_a_helper_is_returned_executing() -> None:
    backend, ex = make()
    group = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, limit_price=Decimal("1.50"))
    assert group.state == "executing" and len(backend.submitted) == 1 and ex.stats.invalid == 0


def test_execute_of_a_hand_built_invalid_group_still_returns_it_invalid() -> None:
    # execute(group)'s documented behaviour: the caller built the group and reads its state.
    backend, ex = make()
    group = ex.execute(AtomicOrderGroup("G1", list(iron_condor_legs(**CONDOR_ROLES)), 0,
                                        strategy=StrategyKind.IRON_CONDOR))
    assert group.state == "invalid" and group.validation_errors[0].field == "quantity"
    assert backend.submitted == []


@pytest.mark.parametrize(("roles", "field", "value"), [
    ({"long_call": OptionSymbol.of("SPX", EXP, "C", 5125)}, "long_call.root", "SPX"),
    ({"short_put": OptionSymbol.of("SPX", EXP, "P", 4900)}, "short_put.root", "SPX"),
    ({"long_put": OptionSymbol.of("SPXW", EXP + dt.timedelta(days=1), "P", 4875)}, "long_put.expiry",
     EXP + dt.timedelta(days=1)),
    ({"long_call": OptionSymbol.of("XSP", EXP, "C", 5125)}, "long_call.underlying", "XSP"),
])
def test_a_condor_of_mixed_series_is_refused_by_role(roles: dict[str, OptionSymbol], field: str, value: Any) -> None:
    err = refused("execute_iron_condor", **{**CONDOR_ROLES, **roles}, quantity=1)
    assert (err.field, err.value) == (field, value)
    assert "short_call" in err.reason and "legs[" not in str(err)


@pytest.mark.parametrize(("put_symbol", "field"), [
    (OptionSymbol.of("SPX", EXP, "P", 4900), "put.root"),
    (OptionSymbol.of("SPXW", EXP + dt.timedelta(days=7), "P", 4900), "put.expiry"),
])
def test_a_strangle_of_mixed_series_is_refused_by_role(put_symbol: OptionSymbol, field: str) -> None:
    err = refused("execute_strangle", call=SC, put=put_symbol, side=Side.SELL, quantity=1)
    assert err.field == field and "legs[" not in str(err)
