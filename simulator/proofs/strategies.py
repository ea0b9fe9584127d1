"""Hypothesis strategies for atomic-orders: symbols, legs, groups, policies and broker scripts.

This module requires ``hypothesis`` (a development dependency: ``pip install -e .[dev]``); the
rest of the package does not. It is the one place the property suite draws its inputs from, and
it is meant to be reused to test your own groups::

    from hypothesis import given
    from atomic_orders.simulator.proofs.strategies import broker_scripts, group_specs

    @given(group_specs(), broker_scripts())
    def test_my_groups_never_end_half_executed(spec, script):
        world = spec.world()            # a real executor against a consistent, adversarial broker
        world.run(script)               # acks, fills, duplicates, reorderings, outages, ticks...
        assert world.check_step() == []
        world.settle()                  # a cooperative broker drives the group to a terminal state
        assert world.check_final() == []

What is here:

* contracts: :func:`roots`, :func:`expiries`, :func:`strikes`, :func:`option_symbols`;
* legs and groups with *valid* strikes: :func:`legs`, :func:`vertical_legs`,
  :func:`iron_condor_legs`, :func:`strangle_legs`, :func:`quantities`, :func:`modes`,
  :func:`group_specs` (a :class:`GroupSpec` builds the :class:`~atomic_orders.fsm.group.AtomicOrderGroup` or a
  whole :class:`~atomic_orders.simulator.proofs.exhaustive.World` around it);
* execution: :func:`execution_policies`, :func:`submit_outcomes`;
* the broker: :func:`fills`, :func:`ticket_events` (any ticket event, for driving machines
  directly), :func:`broker_actions` and :func:`broker_scripts` (steps of an adversarial broker,
  interpreted by :meth:`atomic_orders.simulator.proofs.exhaustive.World.apply`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs
from hypothesis import strategies as st

from atomic_orders.fsm.events import (
    Acknowledged,
    BrokerStatus,
    Canceled,
    CancelRejected,
    CancelRequested,
    Expired,
    Fill,
    Reconciled,
    Rejected,
    SubmissionUnknown,
    Submit,
    TicketEvent,
    Updated,
    UpdateRejected,
    UpdateRequested,
)
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.simulator.proofs.exhaustive import ORDER_ACTIONS, SUBMIT_OUTCOMES, Action, World

__all__ = [
    "GroupSpec",
    "broker_actions",
    "broker_scripts",
    "execution_policies",
    "expiries",
    "fills",
    "group_specs",
    "iron_condor_legs",
    "legs",
    "modes",
    "option_symbols",
    "quantities",
    "roots",
    "strangle_legs",
    "strikes",
    "submit_outcomes",
    "ticket_events",
    "vertical_legs",
]

#: The first and last expiry drawn by default (OCC years are 2000-2099).
FIRST_EXPIRY = dt.date(2026, 1, 2)
LAST_EXPIRY = dt.date(2027, 12, 17)
#: Times drawn for events: one trading day from this instant.
T0 = dt.datetime(2026, 1, 2, 14, 30, tzinfo=dt.UTC)

# -- contracts ------------------------------------------------------------------------------------


def roots() -> st.SearchStrategy[str]:
    """Option roots, weekly and standard (``SPXW`` maps to the ``SPX`` underlying)."""
    return st.sampled_from(["SPXW", "SPX", "XSP", "NDXP", "RUTW", "QQQ"])


def expiries(min_value: dt.date = FIRST_EXPIRY, max_value: dt.date = LAST_EXPIRY) -> st.SearchStrategy[dt.date]:
    """Expiry dates (any weekday between the bounds)."""
    return st.dates(min_value=min_value, max_value=max_value).filter(lambda d: d.weekday() < 5)


def strikes(low: int = 4000, high: int = 6000, step: int = 5) -> st.SearchStrategy[Decimal]:
    """Strikes on a ``step`` grid between ``low`` and ``high`` (Decimal, positive)."""
    if step <= 0 or low <= 0 or high < low:
        raise ValueError(f"strikes(low={low}, high={high}, step={step}): need 0 < low <= high and step > 0")
    return st.integers(low // step, high // step).map(lambda k: Decimal(k * step))


def option_symbols(
    root: str | None = None, expiry: dt.date | None = None, right: Right | None = None
) -> st.SearchStrategy[OptionSymbol]:
    """Valid option contracts; fix any of ``root``, ``expiry`` or ``right`` to constrain them."""
    return st.builds(
        OptionSymbol.of,
        st.just(root) if root is not None else roots(),
        st.just(expiry) if expiry is not None else expiries(),
        st.just(right) if right is not None else st.sampled_from(list(Right)),
        strikes(),
    )


def _distinct_strikes(n: int, step: int = 5) -> st.SearchStrategy[list[Decimal]]:
    """``n`` distinct strikes, ascending."""
    return st.lists(strikes(step=step), min_size=n, max_size=n, unique=True).map(sorted)


def legs(
    symbol: st.SearchStrategy[OptionSymbol] | None = None,
    side: Side | None = None,
    ratio: int = 1,
    position_effect: PositionEffect = PositionEffect.OPEN,
) -> st.SearchStrategy[Leg]:
    """One leg (any side unless fixed)."""
    return st.builds(
        Leg,
        symbol if symbol is not None else option_symbols(),
        st.just(side) if side is not None else st.sampled_from(list(Side)),
        st.just(ratio),
        st.just(position_effect),
    )


@st.composite
def _contract_base(draw: st.DrawFn) -> tuple[str, dt.date]:
    return draw(roots()), draw(expiries())


@st.composite
def vertical_legs(draw: st.DrawFn, right: Right | None = None, debit: bool | None = None) -> tuple[Leg, ...]:
    """A vertical: one right and expiry, two distinct strikes, one bought and one sold.

    ``debit=True`` buys the more expensive strike (lower call / higher put); the legs come in
    either order.
    """
    root, expiry = draw(_contract_base())
    r = right if right is not None else draw(st.sampled_from(list(Right)))
    low, high = draw(_distinct_strikes(2))
    is_debit = debit if debit is not None else draw(st.booleans())
    # the more expensive leg: the lower call strike, the higher put strike
    rich, cheap = (low, high) if r is Right.CALL else (high, low)
    bought, sold = (rich, cheap) if is_debit else (cheap, rich)
    pair = (
        Leg(OptionSymbol.of(root, expiry, r, bought), Side.BUY),
        Leg(OptionSymbol.of(root, expiry, r, sold), Side.SELL),
    )
    return pair if draw(st.booleans()) else pair[::-1]


@st.composite
def iron_condor_legs(draw: st.DrawFn, sold: bool | None = None) -> tuple[Leg, ...]:
    """An iron condor with valid strikes: put wing < put body <= call body < call wing.

    Sold (``sold=True``, a credit): long wings, short bodies. Bought: the reverse. The four legs
    come in any order (validation must not depend on it).
    """
    root, expiry = draw(_contract_base())
    p_wing, p_body, c_body, c_wing = draw(_distinct_strikes(4))
    if draw(st.booleans()):  # an iron butterfly: both bodies on one strike
        c_body = p_body
    is_sold = sold if sold is not None else draw(st.booleans())
    outer, inner = (Side.BUY, Side.SELL) if is_sold else (Side.SELL, Side.BUY)
    condor = [
        Leg(OptionSymbol.of(root, expiry, Right.PUT, p_wing), outer),
        Leg(OptionSymbol.of(root, expiry, Right.PUT, p_body), inner),
        Leg(OptionSymbol.of(root, expiry, Right.CALL, c_body), inner),
        Leg(OptionSymbol.of(root, expiry, Right.CALL, c_wing), outer),
    ]
    return tuple(draw(st.permutations(condor)))


@st.composite
def strangle_legs(draw: st.DrawFn, side: Side | None = None) -> tuple[Leg, ...]:
    """A strangle: a put and a call (put strike <= call strike), both bought or both sold."""
    root, expiry = draw(_contract_base())
    put_k, call_k = sorted(draw(st.lists(strikes(), min_size=2, max_size=2)))
    s = side if side is not None else draw(st.sampled_from(list(Side)))
    pair = (
        Leg(OptionSymbol.of(root, expiry, Right.CALL, call_k), s),
        Leg(OptionSymbol.of(root, expiry, Right.PUT, put_k), s),
    )
    return pair if draw(st.booleans()) else pair[::-1]


def quantities(max_value: int = 10) -> st.SearchStrategy[int]:
    """Strategy units per group: 1..``max_value`` (10 by default)."""
    return st.integers(1, max_value)


def modes() -> st.SearchStrategy[ExecutionMode]:
    """Combo (one multi-leg order) or legged (one order per leg)."""
    return st.sampled_from(list(ExecutionMode))


# -- groups ---------------------------------------------------------------------------------------

_LEG_STRATEGIES: dict[StrategyKind, Callable[[], st.SearchStrategy[tuple[Leg, ...]]]] = {
    StrategyKind.IRON_CONDOR: iron_condor_legs,
    StrategyKind.VERTICAL: vertical_legs,
    StrategyKind.STRANGLE: strangle_legs,
}


@attrs.frozen
class GroupSpec:
    """Everything needed to build one group (drawn by :func:`group_specs`)."""

    kind: StrategyKind
    legs: tuple[Leg, ...]
    quantity: int
    mode: ExecutionMode
    longs_first: bool = True

    def group(self, group_id: str = "G1", max_unwind_retries: int = 3) -> AtomicOrderGroup:
        """A fresh ``pending`` group with this definition."""
        return AtomicOrderGroup(
            group_id,
            self.legs,
            self.quantity,
            strategy=self.kind,
            mode=self.mode,
            max_unwind_retries=max_unwind_retries,
            longs_first=self.longs_first,
        )

    def world(self, policy: ExecutionPolicy | None = None, plan: Sequence[str] = ()) -> World:
        """A :class:`~atomic_orders.simulator.proofs.exhaustive.World`: this group executing against a scripted broker.

        ``plan`` decides the outcome of the first submissions (see :func:`submit_outcomes`).
        """
        return World(
            self.legs,
            self.quantity,
            mode=self.mode,
            strategy=self.kind,
            policy=policy,
            plan=plan,
            longs_first=self.longs_first,
        )

    def __str__(self) -> str:
        legs = ", ".join(f"{leg.side.value} {leg.symbol.occ}" for leg in self.legs)
        return f"{self.kind.value} x{self.quantity} {self.mode.value} [{legs}]"


@st.composite
def group_specs(
    draw: st.DrawFn,
    kinds: Sequence[StrategyKind] = (StrategyKind.IRON_CONDOR, StrategyKind.VERTICAL, StrategyKind.STRANGLE),
    mode: ExecutionMode | None = None,
    max_quantity: int = 10,
) -> GroupSpec:
    """A valid group definition: kind, legs with valid strikes, quantity 1..``max_quantity``, mode."""
    kind = draw(st.sampled_from(list(kinds)))
    leg_strategy = _LEG_STRATEGIES.get(kind)
    if leg_strategy is None:
        raise ValueError(f"group_specs: no leg strategy for {kind!r}")
    return GroupSpec(
        kind=kind,
        legs=draw(leg_strategy()),
        quantity=draw(quantities(max_quantity)),
        mode=mode if mode is not None else draw(modes()),
        longs_first=draw(st.booleans()) if kind is StrategyKind.IRON_CONDOR else True,
    )


# -- execution ------------------------------------------------------------------------------------


def execution_policies(max_retries: int = 2) -> st.SearchStrategy[ExecutionPolicy]:
    """Executor policies with short, distinct timers (so a few clock steps reach every deadline)."""
    return st.builds(
        ExecutionPolicy,
        step_seconds=st.sampled_from([2.0, 5.0]),
        deadline_seconds=st.sampled_from([30.0, 60.0, 120.0]),
        ack_timeout=st.sampled_from([3.0, 5.0, 10.0]),
        pending_timeout=st.sampled_from([5.0, 10.0]),
        unwind_timeout=st.sampled_from([5.0, 10.0]),
        reconcile_interval=st.sampled_from([2.0, 5.0]),
        unwind_retry_delay=st.sampled_from([1.0, 3.0]),
        max_unwind_retries=st.integers(0, max_retries),
    )


def submit_outcomes(accept_weight: int = 1) -> st.SearchStrategy[str]:
    """What the broker does with a submission: ``accept``, ``refuse``, or an unknown outcome with
    (``unknown_present``) or without (``unknown_absent``) the order having reached it."""
    return st.sampled_from(["accept"] * (accept_weight - 1) + list(SUBMIT_OUTCOMES))


# -- the broker -----------------------------------------------------------------------------------


def _times() -> st.SearchStrategy[dt.datetime]:
    return st.integers(0, 6 * 3600).map(lambda s: T0 + dt.timedelta(seconds=s))


def _prices() -> st.SearchStrategy[Decimal]:
    return st.integers(-2000, 2000).map(lambda c: Decimal(c) / 100)


def fills(max_quantity: int = 12) -> st.SearchStrategy[Fill]:
    """Fills with a small set of ids (so duplicates happen), any quantity up to ``max_quantity``."""
    return st.builds(
        Fill,
        _times(),
        st.integers(1, 8).map(lambda i: f"F{i}"),
        st.integers(1, max_quantity),
        _prices(),
    )


_REASON = st.sampled_from(["rejected", "too late", "halted", "timeout"])


def ticket_events(triggers: Sequence[str] | None = None) -> st.SearchStrategy[TicketEvent]:
    """Any ticket event (optionally only those with the given triggers), well-formed."""
    by_trigger: dict[str, st.SearchStrategy[TicketEvent]] = {
        "submit": st.builds(Submit, _times(), st.none() | _prices()),
        "acknowledged": st.builds(Acknowledged, _times(), st.sampled_from(["B1", "B2"])),
        "fill": fills(),
        "rejected": st.builds(Rejected, _times(), _REASON),
        "cancel_requested": st.builds(CancelRequested, _times()),
        "canceled": st.builds(Canceled, _times()),
        "cancel_rejected": st.builds(CancelRejected, _times(), _REASON),
        "update_requested": st.builds(UpdateRequested, _times(), _prices().filter(lambda p: p > 0)),
        "updated": st.builds(Updated, _times(), st.none() | st.just("B3")),
        "update_rejected": st.builds(UpdateRejected, _times(), _REASON),
        "expired": st.builds(Expired, _times()),
        "submission_unknown": st.builds(SubmissionUnknown, _times(), _REASON),
        "reconciled": st.builds(
            Reconciled,
            _times(),
            st.sampled_from(list(BrokerStatus)),
            st.lists(fills(), max_size=3, unique_by=lambda f: f.fill_id).map(tuple),
        ),
    }
    wanted = list(by_trigger) if triggers is None else list(triggers)
    unknown = [t for t in wanted if t not in by_trigger]
    if unknown:
        raise ValueError(f"ticket_events: unknown triggers {unknown}")
    return st.one_of(*(by_trigger[t] for t in wanted))


def broker_actions(max_orders: int = 4) -> st.SearchStrategy[Action]:
    """One step of an adversarial broker (see :class:`~atomic_orders.simulator.proofs.exhaustive.Action`).

    Order indices run over the orders the broker received, so most scripts refer to real orders;
    an action impossible when it is reached (no such order, wrong status) is skipped by
    :meth:`~atomic_orders.simulator.proofs.exhaustive.World.run`.
    """
    order = st.integers(0, max_orders - 1)
    on_order = st.builds(
        Action,
        st.sampled_from([k for k in ORDER_ACTIONS if k != "overfill"]),
        order,
        st.integers(0, 3),
        st.booleans(),
    )
    return st.one_of(
        on_order,
        on_order,
        on_order,
        st.builds(Action, st.just("overfill"), order),
        st.builds(Action, st.sampled_from(["release", "redeliver"]), st.integers(0, 3)),
        st.builds(Action, st.just("tick"), seconds=st.sampled_from([1.0, 2.0, 5.0, 10.0, 30.0])),
        st.builds(Action, st.sampled_from(["tick_next", "down", "up"])),
        st.builds(Action, st.just("plan"), outcome=submit_outcomes()),
    )


def broker_scripts(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[list[Action]]:
    """A sequence of broker actions (a script for :meth:`~atomic_orders.simulator.proofs.exhaustive.World.run`)."""
    return st.lists(broker_actions(), min_size=min_size, max_size=max_size)
