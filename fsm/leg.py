"""Leg: one option of a multi-leg strategy (symbol, side, ratio, position effect)."""

from __future__ import annotations

from enum import StrEnum

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import OptionSymbol


class Side(StrEnum):
    """Direction of a leg: buy or sell."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell: the sign of the position a fill of this side adds."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        """The side that undoes this one."""
        return Side.SELL if self is Side.BUY else Side.BUY


class PositionEffect(StrEnum):
    """Whether a leg opens a new position or closes an existing one."""

    OPEN = "open"
    CLOSE = "close"

    @property
    def opposite(self) -> PositionEffect:
        """The effect of the order that undoes this one."""
        return PositionEffect.CLOSE if self is PositionEffect.OPEN else PositionEffect.OPEN


def _check_symbol(_inst: object, _attr: object, value: OptionSymbol) -> None:
    if not isinstance(value, OptionSymbol):
        raise ValidationError("symbol", value, "must be an OptionSymbol")


def _check_side(_inst: object, _attr: object, value: Side) -> None:
    if not isinstance(value, Side):
        raise ValidationError("side", value, "must be Side.BUY or Side.SELL")


def _check_ratio(_inst: object, _attr: object, value: int) -> None:
    if type(value) is not int or not 0 < value <= 100:
        raise ValidationError("ratio", value, "must be an int from 1 to 100")


def _check_effect(_inst: object, _attr: object, value: PositionEffect) -> None:
    if not isinstance(value, PositionEffect):
        raise ValidationError("position_effect", value, "must be PositionEffect.OPEN or PositionEffect.CLOSE")


@attrs.frozen(cache_hash=True)
class Leg:
    """One leg of a strategy: ``ratio`` contracts of ``symbol`` per strategy unit."""

    symbol: OptionSymbol = attrs.field(validator=_check_symbol)
    side: Side = attrs.field(validator=_check_side)
    ratio: int = attrs.field(default=1, validator=_check_ratio)
    position_effect: PositionEffect = attrs.field(default=PositionEffect.OPEN, validator=_check_effect)

    @property
    def signed_ratio(self) -> int:
        """Contracts per strategy unit, positive for a buy and negative for a sell."""
        return self.ratio if self.side is Side.BUY else -self.ratio

    @property
    def is_long(self) -> bool:
        """True for a bought (protective) leg."""
        return self.side is Side.BUY

    def reversed(self) -> Leg:
        """The leg that undoes this one (opposite side and position effect)."""
        return Leg(self.symbol, self.side.opposite, self.ratio, self.position_effect.opposite)
