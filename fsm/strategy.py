"""Strategy kinds and their validation (iron condor, vertical, strangle, generic)."""

from __future__ import annotations

from enum import StrEnum

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.symbol import Right


class StrategyKind(StrEnum):
    """The shape of a group: it decides which checks its legs must pass."""

    IRON_CONDOR = "iron_condor"
    VERTICAL = "vertical"
    STRANGLE = "strangle"
    CUSTOM = "custom"


def _err(errors: list[ValidationError], field: str, value: object, reason: str) -> None:
    errors.append(ValidationError(field, value, reason))


def validate_legs(kind: StrategyKind, legs: tuple[Leg, ...]) -> list[ValidationError]:
    """Every reason ``legs`` is not a valid ``kind``, each naming the leg and field (empty = valid).

    Written as single passes over the legs: it runs for every group an executor creates.
    """
    errors: list[ValidationError] = []
    if not isinstance(legs, tuple) or not 1 <= len(legs) <= 4:
        _err(errors, "legs", legs, "a group has 1 to 4 legs")
        return errors
    for i, leg in enumerate(legs):
        if not isinstance(leg, Leg):
            _err(errors, f"legs[{i}]", leg, "must be a Leg")
    if errors:
        return errors
    first = legs[0].symbol
    underlying = first.underlying
    seen: dict[object, int] = {}
    for i, leg in enumerate(legs):
        symbol = leg.symbol
        if symbol in seen:
            _err(errors, f"legs[{i}].symbol", symbol.occ, f"repeats legs[{seen[symbol]}] (legs must be distinct)")
        else:
            seen[symbol] = i
        if symbol.underlying != underlying:
            _err(errors, f"legs[{i}].symbol.underlying", symbol.underlying, f"differs from legs[0] ({underlying})")
    if kind is StrategyKind.IRON_CONDOR:
        _check_iron_condor(legs, errors)
    elif kind is StrategyKind.VERTICAL:
        _check_vertical(legs, errors)
    elif kind is StrategyKind.STRANGLE:
        _check_strangle(legs, errors)
    return errors


def _same_shape(legs: tuple[Leg, ...], errors: list[ValidationError], right: bool = False) -> None:
    """Every leg shares legs[0]'s expiry, ratio and position effect (and right, when asked)."""
    l0 = legs[0]
    expiry, ratio, effect, kind = l0.symbol.expiry, l0.ratio, l0.position_effect, l0.symbol.right
    root = l0.symbol.root
    for i in range(1, len(legs)):
        leg = legs[i]
        symbol = leg.symbol
        if symbol.root != root:
            # e.g. SPX (AM-settled) against SPXW (PM-settled): same date, different settlement
            _err(errors, f"legs[{i}].symbol.root", symbol.root, f"root must match legs[0] ({root})")
        if symbol.expiry != expiry:
            _err(errors, f"legs[{i}].symbol.expiry", symbol.expiry, f"expiry must match legs[0] ({expiry})")
        if leg.ratio != ratio:
            _err(errors, f"legs[{i}].ratio", leg.ratio, f"ratio must match legs[0] ({ratio})")
        if leg.position_effect is not effect:
            _err(errors, f"legs[{i}].position_effect", leg.position_effect,
                 f"position effect must match legs[0] ({effect})")
        if right and symbol.right is not kind:
            _err(errors, f"legs[{i}].symbol.right", symbol.right, f"right must match legs[0] ({kind})")


def _check_iron_condor(legs: tuple[Leg, ...], errors: list[ValidationError]) -> None:
    if len(legs) != 4:
        _err(errors, "legs", len(legs), "an iron condor has exactly 4 legs")
        return
    _same_shape(legs, errors)
    calls = sum(1 for leg in legs if leg.symbol.right is Right.CALL)
    if calls != 2:
        _err(errors, "legs.right", [leg.symbol.right.value for leg in legs], "an iron condor has 2 calls and 2 puts")
        return
    # (index, leg) by (right, side): exactly one of each of the four roles.
    roles: dict[tuple[Right, Side], tuple[int, Leg]] = {}
    for i, leg in enumerate(legs):
        key = (leg.symbol.right, leg.side)
        if key in roles:
            name = "call" if key[0] is Right.CALL else "put"
            _err(errors, f"legs[{i}].side", leg.side.value,
                 f"an iron condor has one bought and one sold {name}; legs[{roles[key][0]}] is also {leg.side.value}")
            return
        roles[key] = (i, leg)
    lp_i, lp = roles[(Right.PUT, Side.BUY)]
    sp_i, sp = roles[(Right.PUT, Side.SELL)]
    sc_i, sc = roles[(Right.CALL, Side.SELL)]
    lc_i, lc = roles[(Right.CALL, Side.BUY)]
    # Whether the condor is sold (long wings outside) or bought, outer strikes straddle inner ones.
    if lp.symbol.strike < sp.symbol.strike:
        lo, li, hi, ho = (lp_i, lp), (sp_i, sp), (sc_i, sc), (lc_i, lc)
        names = ("long put", "short put", "short call", "long call")
    else:
        lo, li, hi, ho = (sp_i, sp), (lp_i, lp), (lc_i, lc), (sc_i, sc)
        names = ("short put", "long put", "long call", "short call")
    if not lo[1].symbol.strike < li[1].symbol.strike:
        _err(errors, f"legs[{li[0]}].strike", li[1].symbol.strike, f"{names[1]} must be above the {names[0]}")
    if not li[1].symbol.strike <= hi[1].symbol.strike:
        _err(errors, f"legs[{hi[0]}].strike", hi[1].symbol.strike, f"{names[2]} must not be below the {names[1]}")
    if not hi[1].symbol.strike < ho[1].symbol.strike:
        _err(errors, f"legs[{ho[0]}].strike", ho[1].symbol.strike, f"{names[3]} must be above the {names[2]}")


def _check_vertical(legs: tuple[Leg, ...], errors: list[ValidationError]) -> None:
    if len(legs) != 2:
        _err(errors, "legs", len(legs), "a vertical has exactly 2 legs")
        return
    _same_shape(legs, errors, right=True)
    if legs[0].side is legs[1].side:
        _err(errors, "legs[1].side", legs[1].side.value, "a vertical buys one strike and sells the other")
    if legs[0].symbol.strike == legs[1].symbol.strike:
        _err(errors, "legs[1].strike", legs[1].symbol.strike, "a vertical needs two different strikes")


def _check_strangle(legs: tuple[Leg, ...], errors: list[ValidationError]) -> None:
    if len(legs) != 2:
        _err(errors, "legs", len(legs), "a strangle has exactly 2 legs")
        return
    _same_shape(legs, errors)
    if legs[0].side is not legs[1].side:
        _err(errors, "legs[1].side", legs[1].side.value, "both legs of a strangle are bought or both sold")
    rights = {leg.symbol.right for leg in legs}
    if rights != {Right.CALL, Right.PUT}:
        _err(errors, "legs[1].right", legs[1].symbol.right.value, "a strangle has one call and one put")
        return
    put = next(leg for leg in legs if leg.symbol.right is Right.PUT)
    call_i, call = next((i, leg) for i, leg in enumerate(legs) if leg.symbol.right is Right.CALL)
    if put.symbol.strike > call.symbol.strike:
        _err(errors, f"legs[{call_i}].strike", call.symbol.strike, "the call strike must not be below the put strike")


def _vertical_effect(long_leg: Leg, short_leg: Leg) -> PriceEffect:
    """Buying the option nearer the money costs more than the other earns: a debit."""
    if long_leg.symbol.right is Right.CALL:
        return PriceEffect.DEBIT if long_leg.symbol.strike < short_leg.symbol.strike else PriceEffect.CREDIT
    return PriceEffect.DEBIT if long_leg.symbol.strike > short_leg.symbol.strike else PriceEffect.CREDIT


def natural_price_effect(kind: StrategyKind, legs: tuple[Leg, ...]) -> PriceEffect | None:
    """Whether valid ``legs`` of ``kind`` are paid for (debit) or paid (credit); None when it depends.

    A vertical is a debit when its bought option is the one nearer the money (the lower call
    strike, the higher put strike); an iron condor is a credit when both its verticals are (the
    sold condor: short strikes inside) and a debit when both are debits; a strangle is a credit
    sold and a debit bought. Custom groups and mixed shapes have no fixed direction (None). Only
    for legs that :func:`validate_legs` accepts.
    """
    if kind is StrategyKind.STRANGLE:
        return PriceEffect.CREDIT if legs[0].side is Side.SELL else PriceEffect.DEBIT
    if kind is StrategyKind.VERTICAL:
        long_leg, short_leg = (legs[0], legs[1]) if legs[0].side is Side.BUY else (legs[1], legs[0])
        return _vertical_effect(long_leg, short_leg)
    if kind is StrategyKind.IRON_CONDOR:
        effects = set()
        for right in (Right.CALL, Right.PUT):
            pair = [leg for leg in legs if leg.symbol.right is right]
            long_leg = next(leg for leg in pair if leg.side is Side.BUY)
            short_leg = next(leg for leg in pair if leg.side is Side.SELL)
            effects.add(_vertical_effect(long_leg, short_leg))
        return effects.pop() if len(effects) == 1 else None
    return None
