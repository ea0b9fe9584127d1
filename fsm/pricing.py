"""Prices: option tick sizes, price effects, and rounding to the tick."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

import attrs

from atomic_orders.fsm.errors import ValidationError


class PriceEffect(StrEnum):
    """Whether a net price is paid (debit) or received (credit)."""

    DEBIT = "debit"
    CREDIT = "credit"


@attrs.frozen
class TickRule:
    """Minimum price increments.

    Defaults follow the classic (non-penny) option rule used for SPX: 0.05 below $3.00 and
    0.10 from $3.00; complex (multi-leg) orders use ``combo_tick`` on the net price.
    """

    below_threshold: Decimal = Decimal("0.05")
    at_or_above_threshold: Decimal = Decimal("0.10")
    threshold: Decimal = Decimal("3.00")
    combo_tick: Decimal = Decimal("0.05")

    def tick_for(self, price: Decimal, combo: bool = False) -> Decimal:
        """The increment that applies to ``price`` (its absolute value)."""
        if combo:
            return self.combo_tick
        return self.below_threshold if abs(price) < self.threshold else self.at_or_above_threshold

    def is_on_tick(self, price: Decimal, combo: bool = False) -> bool:
        """True when ``price`` is a whole number of ticks."""
        return price % self.tick_for(price, combo) == 0

    def round(self, price: Decimal, combo: bool = False, up: bool = False) -> Decimal:
        """Round ``price`` to the tick, down (default) or up."""
        tick = self.tick_for(price, combo)
        steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
        rounded = steps * tick
        if not combo and rounded != 0 and abs(rounded) >= self.threshold and abs(price) < self.threshold:
            # crossing the threshold changes the tick; re-round on the coarser grid
            rounded = self.round(rounded, combo, up)
        return rounded.quantize(tick)

    def check(self, field: str, price: Decimal, combo: bool = False) -> None:
        """Raise :class:`ValidationError` unless ``price`` is a positive Decimal on the tick."""
        if not isinstance(price, Decimal) or not price.is_finite():
            raise ValidationError(field, price, "must be a finite Decimal")
        if price <= 0:
            raise ValidationError(field, price, "must be positive")
        if price > MAX_LIMIT_PRICE:
            # checked before the tick arithmetic, which cannot represent absurd magnitudes
            raise ValidationError(field, price, f"must be at most {MAX_LIMIT_PRICE}")
        if not self.is_on_tick(price, combo):
            raise ValidationError(field, price, f"is not a multiple of the tick {self.tick_for(price, combo)}")


#: The largest limit price accepted from a caller (per contract, or net per strategy unit).
MAX_LIMIT_PRICE = Decimal(100_000)

DEFAULT_TICKS = TickRule()
