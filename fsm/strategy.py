"""Strategy kinds and their validation (iron condor, vertical, strangle, generic)."""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.symbol import OptionSymbol, Right


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


# -- legs by role ------------------------------------------------------------------------------------
# The executor's strategy helpers build their legs here, from keyword-only roles: a leg's side comes
# from its role's name, never from its position in an argument list, and a declared credit or debit
# that the strikes contradict is refused before any group exists (so nothing can be sent).


def _symbol(role: str, value: object, right: Right | None = None) -> OptionSymbol:
    if not isinstance(value, OptionSymbol):
        raise ValidationError(role, value, "must be an OptionSymbol")
    if right is not None and value.right is not right:
        raise ValidationError(role, value.occ, f"must be a {right.name.lower()}")
    return value


def _same_series(reference: str, ref: OptionSymbol, **others: OptionSymbol) -> None:
    """Every role shares ``ref``'s underlying, root and expiry; a mismatch is named by role
    (``long_call.root='SPX'``), not by the leg's position in the group the roles become."""
    for role, symbol in others.items():
        for attr in ("underlying", "root", "expiry"):
            value, wanted = getattr(symbol, attr), getattr(ref, attr)
            if value != wanted:
                # e.g. SPX (AM-settled) against SPXW (PM-settled): same date, different settlement
                raise ValidationError(f"{role}.{attr}", value, f"must match {reference} ({wanted})")


def _price_effect(value: object) -> PriceEffect:
    if not isinstance(value, PriceEffect):
        raise ValidationError("price_effect", value, "must be PriceEffect.CREDIT or PriceEffect.DEBIT")
    return value


def _position_effect(value: object) -> PositionEffect:
    if not isinstance(value, PositionEffect):
        raise ValidationError("position_effect", value, "must be PositionEffect.OPEN or PositionEffect.CLOSE")
    return value


class IronCondorRoles(TypedDict):
    """An iron condor's four options by role: ``executor.execute_iron_condor(**roles, quantity=1)``."""

    short_call: OptionSymbol
    long_call: OptionSymbol
    short_put: OptionSymbol
    long_put: OptionSymbol


def vertical_legs(
    *,
    long_leg: OptionSymbol,
    short_leg: OptionSymbol,
    price_effect: PriceEffect,
    position_effect: PositionEffect = PositionEffect.OPEN,
) -> tuple[Leg, Leg]:
    """``(bought long_leg, sold short_leg)`` of a vertical spread declared a credit or a debit.

    A credit call spread sells the lower strike and buys the higher; a credit put spread sells
    the higher strike and buys the lower; a debit spread is the opposite (the bought option is the
    one nearer the money, which costs more than the other earns). Raises :class:`ValidationError`
    naming the role (``long_leg``/``short_leg``: not an OptionSymbol, a different right, the same
    strike; ``short_leg.root``, ``.expiry`` or ``.underlying`` when it differs from ``long_leg``'s)
    or ``price_effect`` (not a PriceEffect, or not what these strikes make).
    """
    long_sym = _symbol("long_leg", long_leg)
    short_sym = _symbol("short_leg", short_leg)
    effect = _price_effect(price_effect)
    opening = _position_effect(position_effect)
    if short_sym.right is not long_sym.right:
        raise ValidationError("short_leg", short_sym.occ, f"a vertical's legs share a right (long_leg is a "
                                                          f"{long_sym.right.name.lower()})")
    _same_series("long_leg", long_sym, short_leg=short_sym)
    if short_sym.strike == long_sym.strike:
        raise ValidationError("short_leg", short_sym.occ, "a vertical needs two different strikes")
    legs = (Leg(long_sym, Side.BUY, 1, opening), Leg(short_sym, Side.SELL, 1, opening))
    made = _vertical_effect(legs[0], legs[1])
    if made is not effect:
        kind = long_sym.right.name.lower()
        rule = ("sells the lower strike and buys the higher" if long_sym.right is Right.CALL
                else "sells the higher strike and buys the lower")
        raise ValidationError("price_effect", effect.value, f"buying {long_sym.strike} and selling {short_sym.strike}"
                                                            f" is a {made.value} {kind} spread; a credit {kind} "
                                                            f"spread {rule}")
    return legs


def iron_condor_legs(
    *,
    short_call: OptionSymbol,
    long_call: OptionSymbol,
    short_put: OptionSymbol,
    long_put: OptionSymbol,
    price_effect: PriceEffect = PriceEffect.CREDIT,
    position_effect: PositionEffect = PositionEffect.OPEN,
) -> tuple[Leg, Leg, Leg, Leg]:
    """``(short_call, long_call, short_put, long_put)`` legs (sold, bought, sold, bought) of an iron condor.

    A credit (sold) condor has its short strikes inside the long ones:
    ``long_put < short_put <= short_call < long_call``; a debit (bought) condor, e.g. one that
    closes a sold condor, the opposite: ``short_put < long_put <= long_call < short_call``. Raises
    :class:`ValidationError` naming the role (not an OptionSymbol, the wrong right, one vertical
    the wrong way round, the inner strikes crossed; ``long_call.root='SPX'`` and likewise
    ``.expiry``/``.underlying`` for a role that differs from ``short_call``) or ``price_effect``
    (not a PriceEffect, or both verticals the other way round from what it declares).
    """
    sc = _symbol("short_call", short_call, Right.CALL)
    lc = _symbol("long_call", long_call, Right.CALL)
    sp = _symbol("short_put", short_put, Right.PUT)
    lp = _symbol("long_put", long_put, Right.PUT)
    _same_series("short_call", sc, long_call=lc, short_put=sp, long_put=lp)
    effect = _price_effect(price_effect)
    opening = _position_effect(position_effect)
    legs = (Leg(sc, Side.SELL, 1, opening), Leg(lc, Side.BUY, 1, opening),
            Leg(sp, Side.SELL, 1, opening), Leg(lp, Side.BUY, 1, opening))
    credit = effect is PriceEffect.CREDIT
    calls_ok = sc.strike < lc.strike if credit else lc.strike < sc.strike
    puts_ok = lp.strike < sp.strike if credit else sp.strike < lp.strike
    words = "short strikes inside the long ones" if credit else "long strikes inside the short ones"
    if not calls_ok and not puts_ok:
        raise ValidationError("price_effect", effect.value, f"these roles make the opposite condor: a {effect.value}"
                                                            f" iron condor has its {words}")
    if not calls_ok:
        raise ValidationError("long_call", lc.strike, f"is on the wrong side of short_call {sc.strike}: a "
                                                      f"{effect.value} iron condor has its {words}")
    if not puts_ok:
        raise ValidationError("long_put", lp.strike, f"is on the wrong side of short_put {sp.strike}: a "
                                                     f"{effect.value} iron condor has its {words}")
    inner_put, inner_call = (sp, sc) if credit else (lp, lc)
    if inner_put.strike > inner_call.strike:
        role = "short_put" if credit else "long_put"
        raise ValidationError(role, inner_put.strike, f"is above the inner call strike {inner_call.strike}")
    return legs


def strangle_legs(
    *,
    call: OptionSymbol,
    put: OptionSymbol,
    side: Side,
    price_effect: PriceEffect | None = None,
    position_effect: PositionEffect = PositionEffect.OPEN,
) -> tuple[Leg, Leg]:
    """``(call, put)`` legs of a strangle, both sold (``side=Side.SELL``, a short strangle, a credit)
    or both bought (``Side.BUY``, a long strangle, a debit).

    The call strike is above the put strike (at or below it, the pair is a straddle or a guts).
    ``price_effect``, when given, must be what ``side`` makes. Raises :class:`ValidationError`
    naming ``side``, ``call``, ``put`` (``put.root``/``.expiry``/``.underlying`` when it differs
    from the call's) or ``price_effect``.
    """
    if not isinstance(side, Side):
        raise ValidationError("side", side, "must be Side.SELL (a short strangle) or Side.BUY (a long strangle)")
    call_sym = _symbol("call", call, Right.CALL)
    put_sym = _symbol("put", put, Right.PUT)
    _same_series("call", call_sym, put=put_sym)
    opening = _position_effect(position_effect)
    made = PriceEffect.CREDIT if side is Side.SELL else PriceEffect.DEBIT
    if price_effect is not None and _price_effect(price_effect) is not made:
        raise ValidationError("price_effect", price_effect.value, f"a strangle of side {side.value} is a {made.value}")
    if not call_sym.strike > put_sym.strike:
        raise ValidationError("call", call_sym.strike, f"must be above the put strike {put_sym.strike} (at or "
                                                       f"below it the pair is a straddle or a guts)")
    return (Leg(call_sym, side, 1, opening), Leg(put_sym, side, 1, opening))
