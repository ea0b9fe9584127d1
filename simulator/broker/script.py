"""Scripted broker outcomes: the same fills, rejects and races for every path to the simulator.

A :class:`BrokerScript` handed to :class:`BrokerSimulator` (``script=``) decides,
for every order the broker *receives*, what happens to it instead of the random matching engine:

* :class:`Reject` -- rejected with ``reason`` when processed (after the ack latency);
* :class:`FillAt` -- acknowledged, then filled ``quantity`` units (all that remains by default) at
  exactly ``price`` ``seconds`` after the acknowledgement (several may be given: partial fills);
* :class:`FillOnCancel` -- acknowledged, rests; when a cancel request arrives the order fills at
  ``price`` before the broker acts on the cancel (the cancel/fill race: a complete fill makes the
  cancel refused "already filled"; a partial one reported ``late`` arrives after ``Canceled``);
* :class:`Rest` -- acknowledged and never filled (the default for an order no rule matches).

Rules match orders by what every path to the broker preserves -- the legs (symbol and side) and
whether the order is multi-leg -- and optionally only the ``nth`` matching order in arrival
order. Order references differ between paths (the TastyTrade API assigns its own ids, LEAN its own
order numbers), so scripts never depend on them. The simulator's latencies and chaos still apply
to deliveries; use :meth:`ChaosProfile.none` for a scenario whose only events are the script's.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from atomic_orders.fsm.leg import Side
from atomic_orders.fsm.orders import OrderRequest
from atomic_orders.fsm.symbol import OptionSymbol

__all__ = ["BrokerScript", "FillAt", "FillOnCancel", "OrderMatch", "Outcome", "Reject", "Rest", "Rule"]


@attrs.frozen
class Reject:
    """The broker rejects the order with ``reason``."""

    reason: str


@attrs.frozen
class FillAt:
    """Fill ``quantity`` units (None: everything that remains) at ``price``, ``seconds`` after the ack.

    ``price`` is what the executor's ticket sees: the signed net per unit for a multi-leg order
    (positive = debit), the positive option price for a single leg.
    """

    seconds: float
    price: Decimal
    quantity: int | None = None


@attrs.frozen
class FillOnCancel:
    """Rest until a cancel is requested, then fill at ``price`` before the broker acts on the cancel.

    ``quantity`` None fills everything (the cancel is then refused "already filled"); a smaller
    quantity leaves the cancel to succeed. With ``late`` the fill is *reported* only after the
    cancel's result (a fill after ``Canceled``, as brokers do deliver).
    """

    price: Decimal
    quantity: int | None = None
    late: bool = False


@attrs.frozen
class Rest:
    """Acknowledged, never filled (it works until canceled or the close)."""


#: What the script decides for one order.
Outcome = Reject | tuple[FillAt, ...] | FillOnCancel | Rest


@attrs.frozen
class OrderMatch:
    """Which orders a rule is about.

    ``symbol``/``side``: some leg has this symbol (and side). ``combo``: only multi-leg (True) or
    single-leg (False) orders. ``nth``: only the n-th order (1-based, in arrival order) matching the
    other criteria; None matches every one.
    """

    symbol: OptionSymbol | None = None
    side: Side | None = None
    combo: bool | None = None
    nth: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.nth is not None and (type(self.nth) is not int or self.nth < 1):
            raise ValueError(f"nth={self.nth!r}: must be an int >= 1 or None")

    def accepts(self, request: OrderRequest) -> bool:
        """True when ``request`` meets the criteria (``nth`` is counted by the script)."""
        if self.combo is not None and request.is_combo != self.combo:
            return False
        if self.symbol is None and self.side is None:
            return True
        return any(
            (self.symbol is None or leg.symbol == self.symbol) and (self.side is None or leg.side is self.side)
            for leg in request.legs
        )


@attrs.frozen
class Rule:
    """When an order matches, this is its outcome."""

    match: OrderMatch
    outcome: Outcome


class BrokerScript:
    """Deterministic per-order outcomes: the first rule that matches a received order decides it."""

    def __init__(self, rules: Sequence[Rule], default: Outcome | None = None) -> None:
        self.rules = tuple(rules)
        self.default: Outcome = default if default is not None else Rest()
        self._seen = [0] * len(self.rules)
        #: Every decision made, in arrival order: (order_ref, outcome).
        self.decisions: list[tuple[str, Outcome]] = []

    def decide(self, request: OrderRequest) -> Outcome:
        """The outcome of a newly received order (called once per order by the broker)."""
        chosen: Outcome | None = None
        for i, rule in enumerate(self.rules):
            if not rule.match.accepts(request):
                continue
            self._seen[i] += 1
            nth = rule.match.nth
            if chosen is None and (nth is None or nth == self._seen[i]):
                chosen = rule.outcome
        outcome = chosen if chosen is not None else self.default
        self.decisions.append((request.order_ref, outcome))
        return outcome
