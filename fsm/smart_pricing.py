"""Smart pricing: the limit price of every order the executor sends, and of every price change.

Pure functions of the quotes, the tick rule and the executor's pricing knobs; they hold no state
and ask no broker (the executor fetches the quotes and calls them). The rules, as
:class:`~atomic_orders.fsm.execution_policy.ExecutionPolicy` states them:

* **Entry, combo** (a multi-leg order, one net price per strategy unit, signed: debit positive,
  credit negative, i.e. what a buyer of the package pays): start at the mid rounded down to the
  combo tick, then step up by ``step_ticks`` combo ticks. Never above the cap: the natural price
  (every leg crossing its spread), ``max_slippage`` beyond the mid, and the group's declared
  limit, whichever is lowest, rounded down to the tick.
* **Entry, single leg** (a legged group's per-leg order, per contract, positive): start at the mid
  (a buy rounds down, a sell rounds up, never below the smallest tick), then step toward the
  touch (a buy up to the ask, a sell down to the bid), never more than ``max_slippage`` from the
  mid. A legged group has no net limit (its validation refuses one): its per-leg limit is this cap.
* **Unwind** (single leg): a marketable limit ``unwind_ticks_through`` ticks through the touch.
* **A caller's price change** (``ticket.update``): :func:`check_update_price`.

Why not in :mod:`atomic_orders.fsm.pricing`: that module states the market's rules (what a valid
price is: the tick grid, the largest price, a debit or a credit) and is read by validation and
every backend; this one is the executor's strategy for choosing a price within those rules, and
depends on legs and the policy. Each can change without the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.pricing import MAX_LIMIT_PRICE, TickRule

__all__ = [
    "BidAsk",
    "check_update_price",
    "combo_cap",
    "combo_mid_natural",
    "entry_price",
    "stepped_price",
    "unwind_price",
]

#: One leg's usable top of book, ``(bid, ask)``, per contract (checked by ``orders.quote_problem``).
BidAsk = tuple[Decimal, Decimal]


def combo_mid_natural(legs: Sequence[Leg], quotes: Sequence[BidAsk]) -> tuple[Decimal, Decimal]:
    """``(mid, natural)`` net per strategy unit, signed (debit positive): what a buyer of the package pays.

    ``quotes[i]`` is the top of book of ``legs[i]``. The natural price buys every bought leg at
    its ask and sells every sold leg at its bid, each times its ratio.
    """
    mid = Decimal(0)
    natural = Decimal(0)
    buy = Side.BUY
    for leg, (bid, ask) in zip(legs, quotes, strict=True):
        leg_mid = (bid + ask) / 2
        ratio = leg.ratio
        if ratio != 1:  # times 1 is the same Decimal (usable quotes have far fewer digits than the context)
            leg_mid *= ratio
            bid *= ratio
            ask *= ratio
        if leg.side is buy:
            mid += leg_mid
            natural += ask
        else:
            mid -= leg_mid
            natural -= bid
    return mid, natural


def combo_cap(ticks: TickRule, mid: Decimal, natural: Decimal, *, max_slippage: Decimal,
              declared_limit: Decimal | None) -> Decimal:
    """The highest signed net price a combo entry may reach, on the combo tick (rounded down).

    The lowest of ``natural``, ``mid + max_slippage`` and ``declared_limit`` (the group's signed
    limit: debit positive, credit negative; None without one).
    """
    cap = min(natural, mid + max_slippage)
    if declared_limit is not None:
        cap = min(cap, declared_limit)
    return ticks.round(cap, combo=True, up=False)


def entry_price(ticks: TickRule, legs: Sequence[Leg], quotes: Sequence[BidAsk], *, max_slippage: Decimal,
                declared_limit: Decimal | None) -> tuple[Decimal, Decimal]:
    """``(first limit price, mid)`` of an entry order of ``legs``.

    More than one leg: a combo, signed net per strategy unit, the mid rounded down but never above
    :func:`combo_cap`. One leg: per contract, the mid rounded toward the better side for us (a buy
    down, a sell up) and at least the smallest tick. ``declared_limit`` applies to combos only.
    """
    if len(legs) > 1:
        mid, natural = combo_mid_natural(legs, quotes)
        price = ticks.round(mid, combo=True, up=False)
        cap = combo_cap(ticks, mid, natural, max_slippage=max_slippage, declared_limit=declared_limit)
        return min(price, cap), mid
    bid, ask = quotes[0]
    mid = (bid + ask) / 2
    if legs[0].side is Side.BUY:
        price = max(ticks.round(mid, up=False), ticks.below_threshold)
    else:
        price = max(ticks.round(mid, up=True), ticks.below_threshold)
    return price, mid


def unwind_price(ticks: TickRule, side: Side, bid: Decimal, ask: Decimal, *, ticks_through: int
                 ) -> tuple[Decimal, Decimal]:
    """``(limit price, mid)`` of an unwind order: marketable, ``ticks_through`` ticks through the touch.

    A buy pays the ask (rounded up) plus the ticks, rounded up onto the grid that applies there; a
    sell takes the bid minus the ticks (rounded down), never below the smallest tick. Per contract,
    positive.
    """
    if side is Side.BUY:
        price = ticks.round(ask, up=True) + ticks.tick_for(ask) * ticks_through
        # ticks of the finer grid can carry it past 3.00 onto no price of the coarser one (3.05)
        price = ticks.round(price, up=True)
    else:
        price = bid - ticks.tick_for(bid) * ticks_through
        price = max(ticks.round(price, up=False), ticks.below_threshold)
    return price, (bid + ask) / 2


def stepped_price(ticks: TickRule, current: Decimal, legs: Sequence[Leg], quotes: Sequence[BidAsk], *,
                  step_ticks: int, max_slippage: Decimal, declared_limit: Decimal | None) -> Decimal | None:
    """The next limit of a working entry order priced ``current``; None when it cannot move further.

    A combo steps up ``step_ticks`` combo ticks, capped by :func:`combo_cap`. A single leg steps
    ``step_ticks`` ticks toward the touch: a buy up to ``min(ask, mid + max_slippage)`` (rounded
    down), a sell down to ``max(bid, mid - max_slippage)`` (rounded up, at least the smallest tick).
    A step that crosses 3.00 lands on the coarser tick (a buy rounds down, a sell up).
    """
    if len(legs) > 1:
        mid, natural = combo_mid_natural(legs, quotes)
        cap = combo_cap(ticks, mid, natural, max_slippage=max_slippage, declared_limit=declared_limit)
        candidate = min(current + ticks.combo_tick * step_ticks, cap)
        return candidate if candidate > current else None
    bid, ask = quotes[0]
    mid = (bid + ask) / 2
    if legs[0].side is Side.BUY:
        cap = ticks.round(min(ask, mid + max_slippage), up=False)
        candidate = min(current + ticks.tick_for(current) * step_ticks, cap)
        candidate = ticks.round(candidate, up=False)  # 2.95 + 2 ticks is 3.05: no price above 3.00
        return candidate if candidate > current else None
    floor = max(ticks.round(max(bid, mid - max_slippage), up=True), ticks.below_threshold)
    candidate = max(current - ticks.tick_for(current) * step_ticks, floor)
    candidate = ticks.round(candidate, up=True)
    return candidate if candidate < current else None


def check_update_price(ticks: TickRule, price: object, *, current: Decimal | None, combo: bool, entry: bool,
                       declared_limit: Decimal | None) -> None:
    """Refuse a caller's new limit ``price`` for an order now priced ``current``; nothing is sent.

    Raises :class:`ValidationError` (``limit_price``) unless ``price`` is a finite Decimal of at
    most ``MAX_LIMIT_PRICE``, a non-zero multiple of the tick, positive for a single leg, of the
    same sign as ``current`` for a combo (a credit stays a credit), and, for a combo entry, not
    beyond the group's signed ``declared_limit``.
    """
    if not isinstance(price, Decimal) or not price.is_finite() or abs(price) > MAX_LIMIT_PRICE:
        raise ValidationError("limit_price", price, f"must be a finite Decimal of at most {MAX_LIMIT_PRICE}")
    if price == 0 or not ticks.is_on_tick(abs(price), combo):
        raise ValidationError("limit_price", price, f"must be a non-zero multiple of the tick "
                              f"{ticks.tick_for(abs(price), combo)}")
    if not combo and price < 0:
        raise ValidationError("limit_price", price, "a single-leg limit price must be positive")
    if combo and current is not None and current != 0 and (price < 0) != (current < 0):
        raise ValidationError("limit_price", price, f"would turn the order's {'credit' if current < 0 else 'debit'}"
                              f" (limit {current}) into the opposite")
    if combo and entry and declared_limit is not None and price > declared_limit:
        raise ValidationError("limit_price", price, f"is worse than the group's declared limit {declared_limit}")
