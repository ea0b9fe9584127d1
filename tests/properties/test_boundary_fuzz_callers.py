"""Boundary fuzz, callers: hostile values for the public constructors and the executor's entry points.

The property: every input is accepted whole and valid, or refused with a :class:`ValidationError`
(or :class:`QuoteUnavailable`) that names a field; no other exception escapes, and after a refusal
nothing was sent. (The broker side of the boundary is fuzzed in ``test_boundary_fuzz_tastytrade``.)
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from atomic_orders.fsm.errors import QuoteUnavailable, ValidationError
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.symbol import OptionSymbol, Right
from tests.executor.test_executor import CONDOR_ROLES, LC, make
from tests.properties._suite import STATS

#: Hostile scalars: wrong types, non-finite and absurd numbers, unicode and control characters.
ANYTHING: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1E+5000"), Decimal("-1E-5000"), Decimal("sNaN"), Decimal("1e999999")]),
    st.text(max_size=30),
    st.text(alphabet=st.characters(whitelist_categories=("Nd",)), max_size=10),  # any script's digits
    st.sampled_from(["SPX\n", "SPXW", "C", "P", "legged", "combo", "credit", "debit", "5100",
                     "\u0665\u0661\u0660\u0660", "\x00"]),
    st.lists(st.integers(), max_size=2),
)

REFUSALS = (ValidationError, QuoteUnavailable)


def _accepts_or_names(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except REFUSALS as err:
        field = getattr(err, "field", None)
        assert isinstance(field, str) and field, f"refusal without a field: {err!r}"
        STATS["boundary fuzz refusals"] += 1
        return None


@settings(max_examples=300, deadline=None)
@given(root=ANYTHING, right=ANYTHING, strike=ANYTHING,
       expiry=st.one_of(st.dates(), ANYTHING))
def test_option_symbols_are_built_whole_or_refused_by_name(root: Any, right: Any, strike: Any, expiry: Any) -> None:
    STATS["boundary fuzz examples"] += 1
    sym = _accepts_or_names(OptionSymbol.of, root, expiry, right, strike)
    if sym is not None:
        assert sym.occ.isascii() and len(sym.occ) == 21
        assert OptionSymbol.parse_occ(sym.occ) == sym  # exact round trip


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(min_size=21, max_size=21), ANYTHING))
def test_occ_text_is_parsed_whole_or_refused_by_name(text: Any) -> None:
    STATS["boundary fuzz examples"] += 1
    sym = _accepts_or_names(OptionSymbol.parse_occ, text)
    if sym is not None:
        assert sym.occ == text  # only canonical ASCII text parses


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["step_seconds", "step_ticks", "max_slippage", "deadline_seconds", "ack_timeout",
                              "reconcile_interval", "max_unwind_retries", "max_contracts", "max_quote_misses"]),
       value=ANYTHING)
def test_policy_numbers_are_finite_and_in_range_or_refused(field: str, value: Any) -> None:
    STATS["boundary fuzz examples"] += 1
    policy = _accepts_or_names(ExecutionPolicy, **{field: value})
    if policy is not None:
        got = getattr(policy, field)
        assert not isinstance(got, bool)
        assert math.isfinite(float(got)) and float(got) >= 0


@settings(max_examples=300, deadline=None)
@given(quantity=ANYTHING, limit=ANYTHING, effect=st.one_of(st.sampled_from(list(PriceEffect)), ANYTHING),
       mode=st.one_of(st.sampled_from(list(ExecutionMode)), ANYTHING), group_id=st.one_of(st.none(), ANYTHING),
       quote=st.one_of(st.none(), st.tuples(ANYTHING, ANYTHING)))
def test_the_executor_sends_nothing_after_a_refusal(quantity: Any, limit: Any, effect: Any, mode: Any,
                                                    group_id: Any, quote: Any) -> None:
    STATS["boundary fuzz examples"] += 1
    backend, ex = make()
    if quote is not None:
        backend.quotes[LC] = quote
    group = _accepts_or_names(ex.execute_iron_condor, **CONDOR_ROLES, quantity=quantity, mode=mode, limit_price=limit,
                              price_effect=effect, group_id=group_id)
    if group is None:
        assert backend.submitted == [], "nothing is sent after a refusal"
        return
    assert group.state in ("executing", "rolling_back")  # a helper raises rather than return an invalid group
    assert type(group.quantity) is int and 0 < group.quantity <= ex.policy.max_contracts
    for req in backend.submitted:  # whatever went out is a whole, valid order
        assert req.limit_price is None or (req.limit_price.is_finite() and abs(req.limit_price) <= 100_000)
    ex.process_events()
    ex.on_timer()


@settings(max_examples=200, deadline=None)
@given(side=ANYTHING, ratio=ANYTHING, effect=ANYTHING)
def test_legs_are_built_whole_or_refused_by_name(side: Any, ratio: Any, effect: Any) -> None:
    STATS["boundary fuzz examples"] += 1
    symbol = OptionSymbol.of("SPXW", dt.date(2026, 1, 16), Right.CALL, "5100")
    leg = _accepts_or_names(Leg, symbol, side, ratio, effect)
    if leg is not None:
        assert isinstance(leg.side, Side) and isinstance(leg.position_effect, PositionEffect)
        assert type(leg.ratio) is int and 0 < leg.ratio <= 100
