"""Strategy-aware validation: every failure names the leg and field and quotes the value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.pricing import DEFAULT_TICKS, PriceEffect, TickRule
from atomic_orders.fsm.strategy import StrategyKind, validate_legs

from .factories import LC, LP, SC, SP, condor_legs, make_group, now, strangle_legs, sym, vertical_legs

IC, VERT, STR, CUSTOM = StrategyKind.IRON_CONDOR, StrategyKind.VERTICAL, StrategyKind.STRANGLE, StrategyKind.CUSTOM
OTHER_EXPIRY = dt.date(2026, 1, 23)


def _replace(legs: tuple[Leg, ...], i: int, **kw: Any) -> tuple[Leg, ...]:
    out = list(legs)
    leg = out[i]
    out[i] = Leg(kw.get("symbol", leg.symbol), kw.get("side", leg.side), kw.get("ratio", leg.ratio),
                 kw.get("position_effect", leg.position_effect))
    return tuple(out)


def _fields(errors: list[ValidationError]) -> list[str]:
    return [e.field for e in errors]


def _one(kind: StrategyKind, legs: tuple[Leg, ...], field: str, value_text: str) -> ValidationError:
    errors = validate_legs(kind, legs)
    assert field in _fields(errors), [str(e) for e in errors]
    err = next(e for e in errors if e.field == field)
    msg = str(err)
    assert msg.startswith(f"{field}=")
    assert value_text in msg
    return err


# -- valid strategies ----------------------------------------------------------------------------


@pytest.mark.parametrize("sold", [True, False], ids=["sold-credit", "bought-debit"])
def test_valid_condor_sold_and_bought(sold: bool) -> None:
    assert validate_legs(IC, condor_legs(sold=sold)) == []
    effect = PriceEffect.CREDIT if sold else PriceEffect.DEBIT
    g = make_group(legs=condor_legs(sold=sold), price_effect=effect)
    assert g.validate(now()) == "validated"
    assert g.validation_errors == []
    expected = {LP: 2, SP: -2, SC: -2, LC: 2} if sold else {LP: -2, SP: 2, SC: 2, LC: -2}
    assert g.targets == expected
    assert g.signed_limit_price == (Decimal("-1.50") if sold else Decimal("1.50"))


def test_condor_legs_in_any_order_and_iron_butterfly_are_valid() -> None:
    lp, sp, sc, lc = condor_legs()
    assert validate_legs(IC, (sc, lc, sp, lp)) == []
    fly_call = Leg(sym("C", 4900), Side.SELL)
    assert validate_legs(IC, (lp, sp, fly_call, lc)) == []  # short put == short call strike


def test_valid_vertical_strangle_and_custom() -> None:
    assert validate_legs(VERT, vertical_legs()) == []
    assert validate_legs(STR, strangle_legs()) == []
    assert validate_legs(STR, strangle_legs(Side.BUY)) == []
    assert validate_legs(CUSTOM, (Leg(LP, Side.BUY),)) == []
    assert validate_legs(CUSTOM, (Leg(LP, Side.BUY, 2), Leg(SP, Side.SELL, 3), Leg(SC, Side.SELL))) == []


# -- iron condor -------------------------------------------------------------------------------


def test_condor_strike_order_errors_name_leg_and_strike() -> None:
    legs = condor_legs()
    # short put above the short call: the call body is the one reported
    bad = _replace(legs, 1, symbol=sym("P", 5150))
    err = _one(IC, bad, "legs[2].strike", "5100")
    assert "short call" in err.reason and "short put" in err.reason
    # long call below the short call
    bad = _replace(legs, 3, symbol=sym("C", 5050))
    err = _one(IC, bad, "legs[3].strike", "5050")
    assert "long call must be above the short call" in err.reason
    # wing on the body strike: the repeat and the broken strike order are both named
    bad = _replace(legs, 0, symbol=sym("P", 4900))
    errors = validate_legs(IC, bad)
    assert "legs[1].symbol" in _fields(errors)
    assert "legs[0].strike" in _fields(errors)


def test_condor_mixed_wings_are_rejected() -> None:
    # put side "bought", call side "sold": the strikes cannot straddle
    legs = (Leg(LP, Side.SELL), Leg(SP, Side.BUY), Leg(SC, Side.SELL), Leg(LC, Side.BUY))
    err = _one(IC, legs, "legs[2].strike", "5100")
    assert "short call must be above the long call" in err.reason


def test_condor_expiry_ratio_effect_and_underlying_errors() -> None:
    legs = condor_legs()
    other = sym("C", 5100, expiry=OTHER_EXPIRY)
    _one(IC, _replace(legs, 2, symbol=other), "legs[2].symbol.expiry", "2026, 1, 23")
    _one(IC, _replace(legs, 3, ratio=2), "legs[3].ratio", "=2")
    _one(IC, _replace(legs, 1, position_effect=PositionEffect.CLOSE), "legs[1].position_effect", "close")
    ndx = sym("C", 5100, root="NDX")
    _one(IC, _replace(legs, 2, symbol=ndx), "legs[2].symbol.underlying", "'NDX'")


def test_condor_needs_four_legs_two_calls_two_puts_one_buy_one_sell() -> None:
    legs = condor_legs()
    err = _one(IC, legs[:3], "legs", "3")
    assert "exactly 4" in err.reason
    two_calls_more = _replace(legs, 0, symbol=sym("C", 5300))
    err = _one(IC, two_calls_more, "legs.right", "'C'")
    assert "2 calls and 2 puts" in err.reason
    both_sold = _replace(legs, 0, side=Side.SELL)
    _one(IC, both_sold, "legs[1].side", "'sell'")


def test_duplicate_leg_names_the_repeat_and_quotes_the_symbol() -> None:
    legs = condor_legs()
    dup = _replace(legs, 3, symbol=LP)
    err = _one(IC, dup, "legs[3].symbol", LP.occ)
    assert "legs[0]" in err.reason


# -- vertical / strangle / custom ------------------------------------------------------------------


def test_vertical_errors() -> None:
    legs = vertical_legs()
    _one(VERT, (legs[0], Leg(sym("P", 5050), Side.SELL)), "legs[1].symbol.right", "'P'")
    _one(VERT, (legs[0], Leg(legs[1].symbol, Side.BUY)), "legs[1].side", "'buy'")
    # same strike (another root of the same underlying, so the symbols are distinct)
    _one(VERT, (legs[0], Leg(sym("C", 5000, root="SPX"), Side.SELL)), "legs[1].strike", "5000")
    _one(VERT, (legs[0], Leg(sym("C", 5050, expiry=OTHER_EXPIRY), Side.SELL)), "legs[1].symbol.expiry", "23")
    _one(VERT, (legs[0], Leg(legs[1].symbol, Side.SELL, 2)), "legs[1].ratio", "2")
    _one(VERT, legs[:1], "legs", "1")


def test_strangle_errors() -> None:
    call, put = strangle_legs()
    _one(STR, (call, Leg(put.symbol, Side.BUY)), "legs[1].side", "'buy'")
    _one(STR, (call, Leg(sym("C", 5200), Side.SELL)), "legs[1].right", "'C'")
    _one(STR, (Leg(sym("C", 4800), Side.SELL), Leg(sym("P", 4900), Side.SELL)), "legs[0].strike", "4800")
    _one(STR, (call, Leg(sym("P", 4900, expiry=OTHER_EXPIRY), Side.SELL)), "legs[1].symbol.expiry", "23")


def test_custom_leg_count_and_types() -> None:
    five = (*condor_legs(), Leg(sym("C", 5300), Side.BUY))
    _one(CUSTOM, five, "legs", "Leg(")
    _one(CUSTOM, (), "legs", "()")
    _one(CUSTOM, (Leg(LP, Side.BUY), "SPXW 4900P"), "legs[1]", "'SPXW 4900P'")  # type: ignore[arg-type]


def test_leg_itself_rejects_bad_values_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"^ratio=0"):
        Leg(LP, Side.BUY, 0)
    with pytest.raises(ValidationError, match=r"^side='buy'"):
        Leg(LP, "buy")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^symbol="):
        Leg("SPXW  260116P04800000", Side.BUY)  # type: ignore[arg-type]


# -- group-level: quantity, limit price, invalid means nothing sent ---------------------------------


def _invalid(g: AtomicOrderGroup) -> list[ValidationError]:
    assert g.validate(now()) == "invalid"
    assert g.is_terminal
    assert g.tickets == [] and g.entry_tickets == []
    assert g.sendable_tickets() == [] and g.cancelable_tickets() == []
    assert g.targets == {}
    return g.validation_errors


@pytest.mark.parametrize("qty", [0, -1, 1.5, "2", True], ids=["zero", "negative", "float", "str", "bool"])
def test_bad_quantity_is_invalid(qty: Any) -> None:
    errors = _invalid(make_group(quantity=qty))
    assert _fields(errors) == ["quantity"]
    assert repr(qty) in str(errors[0])


@pytest.mark.parametrize(
    ("price", "combo", "why"),
    [
        (Decimal("1.23"), True, "tick 0.05"),
        (Decimal("-1.50"), True, "positive"),
        (Decimal("0"), True, "positive"),
        (1.5, True, "Decimal"),
        (Decimal("NaN"), True, "Decimal"),
        (Decimal("3.05"), False, "tick 0.10"),
        (Decimal("1.02"), False, "tick 0.05"),
    ],
    ids=["off-combo-tick", "negative", "zero", "float", "nan", "off-tick-above-3", "off-tick-below-3"],
)
def test_bad_limit_price_is_invalid_naming_limit_price(price: Any, combo: bool, why: str) -> None:
    legs = condor_legs() if combo else (Leg(LP, Side.BUY),)
    kind = IC if combo else CUSTOM
    effect = PriceEffect.CREDIT if combo else PriceEffect.DEBIT  # a sold condor is a credit
    g = make_group(legs=legs, strategy=kind, limit_price=price, price_effect=effect)
    errors = _invalid(g)
    assert _fields(errors) == ["limit_price"]
    assert str(price) in str(errors[0]) and why in str(errors[0])


def test_limit_price_without_effect_is_invalid() -> None:
    errors = _invalid(make_group(price_effect=None))
    assert _fields(errors) == ["price_effect"]


def test_on_tick_prices_are_accepted() -> None:
    for price, legs in ((Decimal("3.10"), (Leg(LP, Side.BUY),)), (Decimal("2.95"), (Leg(LP, Side.BUY),)),
                        (Decimal("4.05"), condor_legs())):
        kind = IC if len(legs) == 4 else CUSTOM
        effect = PriceEffect.CREDIT if kind is IC else PriceEffect.DEBIT
        g = make_group(legs=legs, strategy=kind, limit_price=price, price_effect=effect)
        assert g.validate(now()) == "validated", g.validation_errors


def test_no_limit_price_is_allowed_the_executor_prices_it() -> None:
    g = make_group(limit_price=None, price_effect=None)
    assert g.validate(now()) == "validated"
    assert g.entry_tickets[0].limit_price is None


def test_invalid_condor_collects_every_error_and_sends_nothing() -> None:
    legs = _replace(_replace(condor_legs(), 3, ratio=2), 1, symbol=sym("P", 5150))
    g = make_group(legs=legs, quantity=0, limit_price=Decimal("1.51"))
    errors = _invalid(g)
    fields = set(_fields(errors))
    assert {"quantity", "legs[3].ratio", "legs[2].strike", "limit_price"} <= fields
    assert g.state == "invalid" and g.audit[-1].dest == "invalid"


def test_bad_mode_and_retries_are_invalid() -> None:
    errors = _invalid(make_group(mode="fast", max_unwind_retries=-1))  # type: ignore[arg-type]
    assert set(_fields(errors)) == {"mode", "max_unwind_retries"}
    assert _fields(_invalid(make_group(strategy="condor"))) == ["strategy"]  # type: ignore[arg-type]


def test_group_id_must_be_a_non_empty_string() -> None:
    errors = _invalid(make_group(gid=""))
    assert _fields(errors) == ["group_id"]


def test_legged_mode_validates_the_same_way() -> None:
    g = make_group(mode=ExecutionMode.LEGGED, legs=_replace(condor_legs(), 2, side=Side.BUY))
    assert _fields(_invalid(g)) == ["legs[3].side"]  # both calls bought: the pair's second leg is named


# -- TickRule ---------------------------------------------------------------------------------------


def test_tick_rule_round_and_check() -> None:
    ticks = TickRule()
    assert ticks.tick_for(Decimal("2.99")) == Decimal("0.05")
    assert ticks.tick_for(Decimal("3.00")) == Decimal("0.10")
    assert ticks.tick_for(Decimal("7"), combo=True) == Decimal("0.05")
    assert ticks.round(Decimal("1.23")) == Decimal("1.20")
    assert ticks.round(Decimal("1.23"), up=True) == Decimal("1.25")
    assert ticks.round(Decimal("2.98"), up=True) == Decimal("3.00")
    assert ticks.round(Decimal("3.04")) == Decimal("3.00")
    assert ticks.round(Decimal("-1.23"), combo=True) == Decimal("-1.25")
    assert ticks.is_on_tick(ticks.round(Decimal("2.97"), up=True))
    with pytest.raises(ValidationError, match=r"^px=Decimal\('1.01'\): is not a multiple of the tick 0.05"):
        DEFAULT_TICKS.check("px", Decimal("1.01"))


def test_a_validation_error_crosses_a_process_boundary_whole() -> None:
    import pickle

    back = pickle.loads(pickle.dumps(ValidationError("quantity", 0, "must be at least 1")))
    assert (type(back), back.field, back.value, back.reason, str(back)) == (
        ValidationError, "quantity", 0, "must be at least 1", "quantity=0: must be at least 1")
