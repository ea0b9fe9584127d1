"""Strategy kinds and their validation (iron condor, vertical, strangle, generic)."""

from __future__ import annotations

from enum import StrEnum

from fsm.errors import ValidationError
from fsm.leg import Leg, Side
from fsm.symbol import Right


class StrategyKind(StrEnum):
    """The shape of a group: it decides which checks its legs must pass."""

    IRON_CONDOR = "iron_condor"
    VERTICAL = "vertical"
    STRANGLE = "strangle"
    CUSTOM = "custom"


def _err(errors: list[ValidationError], field: str, value: object, reason: str) -> None:
    errors.append(ValidationError(field, value, reason))


def validate_legs(kind: StrategyKind, legs: tuple[Leg, ...]) -> list[ValidationError]:
    """Every reason ``legs`` is not a valid ``kind``, each naming the leg and field (empty = valid)."""
    errors: list[ValidationError] = []
    if not isinstance(legs, tuple) or not 1 <= len(legs) <= 4:
        _err(errors, "legs", legs, "a group has 1 to 4 legs")
        return errors
    for i, leg in enumerate(legs):
        if not isinstance(leg, Leg):
            _err(errors, f"legs[{i}]", leg, "must be a Leg")
    if errors:
        return errors
    seen: dict[object, int] = {}
    for i, leg in enumerate(legs):
        if leg.symbol in seen:
            first = seen[leg.symbol]
            _err(errors, f"legs[{i}].symbol", leg.symbol.occ, f"repeats legs[{first}] (legs must be distinct)")
        seen.setdefault(leg.symbol, i)
    underlying = legs[0].symbol.underlying
    for i, leg in enumerate(legs[1:], start=1):
        if leg.symbol.underlying != underlying:
            _err(errors, f"legs[{i}].symbol.underlying", leg.symbol.underlying, f"differs from legs[0] ({underlying})")
    if kind is StrategyKind.IRON_CONDOR:
        _check_iron_condor(legs, errors)
    elif kind is StrategyKind.VERTICAL:
        _check_vertical(legs, errors)
    elif kind is StrategyKind.STRANGLE:
        _check_strangle(legs, errors)
    return errors


def _same(legs: tuple[Leg, ...], errors: list[ValidationError], attr: str, what: str) -> None:
    first = getattr(legs[0], attr) if attr in ("ratio", "position_effect") else getattr(legs[0].symbol, attr)
    for i, leg in enumerate(legs[1:], start=1):
        value = getattr(leg, attr) if attr in ("ratio", "position_effect") else getattr(leg.symbol, attr)
        if value != first:
            field = f"legs[{i}].{attr}" if attr in ("ratio", "position_effect") else f"legs[{i}].symbol.{attr}"
            _err(errors, field, value, f"{what} must match legs[0] ({first})")


def _check_iron_condor(legs: tuple[Leg, ...], errors: list[ValidationError]) -> None:
    if len(legs) != 4:
        _err(errors, "legs", len(legs), "an iron condor has exactly 4 legs")
        return
    _same(legs, errors, "expiry", "expiry")
    _same(legs, errors, "ratio", "ratio")
    _same(legs, errors, "position_effect", "position effect")
    calls = [(i, leg) for i, leg in enumerate(legs) if leg.symbol.right is Right.CALL]
    puts = [(i, leg) for i, leg in enumerate(legs) if leg.symbol.right is Right.PUT]
    if len(calls) != 2 or len(puts) != 2:
        _err(errors, "legs.right", [leg.symbol.right.value for leg in legs], "an iron condor has 2 calls and 2 puts")
        return
    roles = {}
    for name, pair in (("call", calls), ("put", puts)):
        sides = sorted(leg.side.value for _, leg in pair)
        if sides != ["buy", "sell"]:
            i = pair[1][0]
            _err(errors, f"legs[{i}].side", pair[1][1].side.value, f"the two {name}s must be one buy and one sell")
            return
        for i, leg in pair:
            roles[(name, leg.side)] = (i, leg)
    # Whether the condor is bought or sold, the outer strikes must straddle the inner ones.
    lp_i, lp = roles[("put", Side.BUY)]
    sp_i, sp = roles[("put", Side.SELL)]
    sc_i, sc = roles[("call", Side.SELL)]
    lc_i, lc = roles[("call", Side.BUY)]
    sold = lp.symbol.strike < sp.symbol.strike  # a short (credit) condor: long wings outside
    if sold:
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
    _same(legs, errors, "expiry", "expiry")
    _same(legs, errors, "right", "right")
    _same(legs, errors, "ratio", "ratio")
    if legs[0].side is legs[1].side:
        _err(errors, "legs[1].side", legs[1].side.value, "a vertical buys one strike and sells the other")
    if legs[0].symbol.strike == legs[1].symbol.strike:
        _err(errors, "legs[1].strike", legs[1].symbol.strike, "a vertical needs two different strikes")


def _check_strangle(legs: tuple[Leg, ...], errors: list[ValidationError]) -> None:
    if len(legs) != 2:
        _err(errors, "legs", len(legs), "a strangle has exactly 2 legs")
        return
    _same(legs, errors, "expiry", "expiry")
    _same(legs, errors, "ratio", "ratio")
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
