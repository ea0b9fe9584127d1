"""The boundary holds: caller input and quotes are valid and whole, or refused naming the field
and the value, before anything is sent; nothing from outside stops the executor's loop.

Each test names the input of the "nothing from outside stops the executor" issue it reproduces.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pytest

from atomic_orders.backends.scripted import ScriptedBackend
from atomic_orders.fsm.errors import QuoteUnavailable, ValidationError
from atomic_orders.fsm.events import Acknowledged, Fill
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import MAX_PRICE, MIN_PRICE_EXPONENT, BrokerEvent, OrderReport, Quote, quote_problem
from atomic_orders.fsm.pricing import PriceEffect
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from tests.executor.test_executor import CONDOR_ROLES, LC, LP, SC, SP, make, pump

EXP = dt.date(2026, 1, 16)


# -- 4: quotes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("bid", "ask", "field"), [
    (Decimal("NaN"), Decimal("1.20"), "bid"),
    (Decimal("1.00"), Decimal("sNaN"), "ask"),
    (Decimal("Infinity"), Decimal("1.20"), "bid"),
    (Decimal("-0.05"), Decimal("1.20"), "bid"),
    (Decimal("1.30"), Decimal("1.20"), "bid"),
    (Decimal("0"), Decimal("0"), "ask"),
    (Decimal("1E+30"), Decimal("1E+31"), "bid"),
    (1.0, Decimal("1.20"), "bid"),
])
def test_an_unusable_quote_refuses_the_group_before_it_starts(bid: object, ask: object, field: str) -> None:
    backend, ex = make()
    backend.quotes[LC] = (bid, ask)  # type: ignore[assignment]
    with pytest.raises(QuoteUnavailable) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    err = info.value
    assert err.symbol == LC.occ and err.field == field and str(bid if field == "bid" else ask) in str(err)
    assert backend.submitted == [] and ex.open_groups() == []


def _reference_quote_problem(bid: object, ask: object) -> tuple[str, object, str] | None:
    """quote_problem's rule written plainly, side by side (what the fast path must agree with)."""
    for field, value in (("bid", bid), ("ask", ask)):
        if not isinstance(value, Decimal) or isinstance(value, bool):
            return field, value, "must be a Decimal"
        if not value.is_finite():
            return field, value, "is not a finite number (a missing value)"
        if value < 0:
            return field, value, "is negative"
        if value > MAX_PRICE:
            return field, value, f"is above {MAX_PRICE}"
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < MIN_PRICE_EXPONENT:
            return field, value, f"is finer than 1E{MIN_PRICE_EXPONENT}"
    assert isinstance(bid, Decimal) and isinstance(ask, Decimal)
    if ask == 0:
        return "ask", ask, "is zero (nobody offers)"
    if bid > ask:
        return "bid", bid, f"is above the ask {ask} (a crossed quote)"
    return None


class _MyDecimal(Decimal):
    pass


_EDGE_PRICES: list[object] = [
    *(Decimal(t) for t in ("0", "-0", "0.00", "0.05", "1.20", "1.2000000000", "0.000001", "0.0000001", "1.0000001",
                           "1E-6", "1E-7", "99999.999999", "100000", "100000.000000", "100000.000001", "1E+5",
                           "1E+6", "-0.05", "NaN", "sNaN", "Infinity", "-Infinity",
                           "1.00000000000000000000000000001", "3.10")),
    _MyDecimal("1.20"), _MyDecimal("1.2000001"), 1, 1.2, True, None, "1.20",
]


def test_quote_problem_agrees_with_its_rule_on_every_edge_pair() -> None:
    for bid in _EDGE_PRICES:
        for ask in _EDGE_PRICES:
            assert quote_problem(bid, ask) == _reference_quote_problem(bid, ask), (bid, ask)


def test_a_nan_quote_mid_execution_is_no_quote_yet_then_an_explained_refusal() -> None:
    """Input 4 during execution: the shorts of a legged condor cannot be priced (NaN wing)."""
    backend, ex = make(ExecutionPolicy(max_quote_misses=3, deadline_seconds=600.0))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, mode=ExecutionMode.LEGGED)
    longs = list(backend.submitted)
    assert {r.legs[0].symbol for r in longs} == {LC, LP}
    backend.quotes[SP] = (Decimal("NaN"), Decimal("4.00"))  # streamed quotes carry "NaN" when missing
    for req in longs:
        backend.fill_all(req.order_ref)
    pump(backend, ex)
    assert g.state == "executing" and ex.stats.quote_misses >= 1  # no quote yet: retried
    for _ in range(20):
        pump(backend, ex, 10.0)
        if g.state != "executing":
            break
    assert g.state in ("rolling_back", "rolled_back")
    assert "no usable quote" in (g.rollback_reason or "") and "bid=Decimal('NaN')" in (g.rollback_reason or "")
    assert all(r.legs[0].symbol != SP for r in backend.submitted if r.purpose.value == "entry")
    assert ex.stats.quote_misses == 4


def test_a_quote_that_returns_late_is_used_when_it_recovers() -> None:
    backend, ex = make(ExecutionPolicy(max_quote_misses=5))
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, mode=ExecutionMode.LEGGED)
    backend.quotes[SP] = (Decimal("NaN"), Decimal("4.00"))
    for req in list(backend.submitted):
        backend.fill_all(req.order_ref)
    pump(backend, ex)
    backend.quotes[SP] = (Decimal("3.80"), Decimal("4.00"))
    pump(backend, ex, 10.0)
    assert any(r.legs[0].symbol == SP for r in backend.submitted)
    assert g.state == "executing"


# -- 5: size and direction ------------------------------------------------------------------------


def test_an_absurd_quantity_is_refused_before_anything_is_sent() -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=10**12)
    assert info.value.field == "quantity" and info.value.value == 10**12
    assert "max_contracts" in str(info.value) and backend.submitted == []
    # the bound is a setting
    backend, ex = make(ExecutionPolicy(max_contracts=5))
    with pytest.raises(ValidationError):
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=6)
    assert ex.execute_iron_condor(**CONDOR_ROLES, quantity=5).state == "executing"


def test_a_sold_condor_with_a_debit_limit_is_refused() -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as refused:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, limit_price=Decimal("1.50"), price_effect=PriceEffect.DEBIT)
    assert refused.value.field == "price_effect" and backend.submitted == [] and ex.groups() == []
    assert "debit" in str(refused.value)


def test_a_bought_call_vertical_with_a_credit_limit_is_refused() -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as refused:
        ex.execute_vertical(long_leg=SC, short_leg=LC, price_effect=PriceEffect.CREDIT, quantity=1,
                            limit_price=Decimal("1.00"))
    assert refused.value.field == "price_effect" and backend.submitted == [] and ex.groups() == []
    ok = ex.execute_vertical(long_leg=SC, short_leg=LC, price_effect=PriceEffect.DEBIT, quantity=1,
                             limit_price=Decimal("1.00"))
    assert ok.state == "executing"


# -- 6: symbols, numbers, enums, policy -----------------------------------------------------------


@pytest.mark.parametrize("text", [
    "SPXW  260116C\uff10\uff15\uff11\uff10\uff10\uff10\uff10\uff10",  # fullwidth digits
    "SPXW  \u0662\u0666\u0660\u0661\u0661\u0666C05100000",  # Arabic-Indic digits
    "SPXW  260116C0510000\u0665",
])
def test_occ_text_with_non_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        OptionSymbol.parse_occ(text)
    assert info.value.field == "occ symbol"


@pytest.mark.parametrize("root", ["SPX\n", "SPX ", "spx", "\uff33\uff30\uff38", "", "SPXWXYZ"])
def test_a_root_that_is_not_ascii_upper_case_is_refused(root: str) -> None:
    with pytest.raises(ValidationError) as info:
        OptionSymbol.of(root, EXP, Right.CALL, Decimal("5100"))
    assert info.value.field == "root"


def test_symbol_round_trips_are_exact_in_ascii() -> None:
    sym = OptionSymbol.of("SPXW", EXP, "C", "5100.5")
    assert OptionSymbol.parse_occ(sym.occ) == sym and sym.occ.isascii()


@pytest.mark.parametrize("strike", [True, False, "5100\n", "\u0665\u0661\u0660\u0660", "abc", "1e999999"])
def test_a_strike_that_is_not_a_number_is_refused(strike: object) -> None:
    with pytest.raises(ValidationError) as info:
        OptionSymbol.of("SPXW", EXP, Right.CALL, strike)  # type: ignore[arg-type]
    assert info.value.field == "strike"


@pytest.mark.parametrize("price", [Decimal("1E+30"), Decimal("100000.05"), Decimal("1E+5000")])
def test_an_absurd_limit_price_is_refused_naming_limit_price(price: Decimal) -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, limit_price=price)
    assert info.value.field == "limit_price" and "also" not in info.value.reason
    assert backend.submitted == [] and ex.stats.invalid == 1


def test_a_mode_given_as_its_string_is_taken_and_a_wrong_one_named() -> None:
    _, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, mode="legged")  # type: ignore[arg-type]
    assert g.mode is ExecutionMode.LEGGED and g.state == "executing"
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, mode="fast")  # type: ignore[arg-type]
    assert (info.value.field, info.value.value) == ("mode", "fast") and "also" not in info.value.reason
    [bad] = [s for s in ex.summaries.values() if s.state == "invalid"]
    assert bad.mode == "fast"  # the summary of the recorded invalid group does not crash on it


@pytest.mark.parametrize("field", ["step_seconds", "deadline_seconds", "ack_timeout", "reconcile_interval"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0, True, 10.0**9])
def test_every_policy_number_is_finite_and_in_range(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        ExecutionPolicy(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize("group_id", ["G 1", "G\n1", "\uff271", "x" * 41])
def test_a_group_id_that_cannot_be_an_external_identifier_is_invalid(group_id: str) -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, group_id=group_id)
    assert (info.value.field, info.value.value) == ("group_id", group_id)
    assert backend.submitted == [] and ex.stats.invalid == 1


def test_a_leg_ratio_is_bounded() -> None:
    with pytest.raises(ValidationError) as info:
        Leg(SC, Side.SELL, 10**9)
    assert info.value.field == "ratio"


# -- the loop never stops on what the backend hands over -----------------------------------------


class _Hostile(ScriptedBackend):
    """A backend that breaks its contract on demand."""

    poll_error: BaseException | None = None
    quote_error: BaseException | None = None

    def poll_events(self) -> list[BrokerEvent]:
        if self.poll_error is not None:
            raise self.poll_error
        return super().poll_events()

    def quote(self, symbol: OptionSymbol) -> Quote:
        if self.quote_error is not None:
            raise self.quote_error
        return super().quote(symbol)

    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        return super().reconcile(order_refs)


def test_errors_outside_the_contract_are_counted_and_the_loop_keeps_running() -> None:
    backend = _Hostile()
    ex = AtomicOrderExecutor(backend)
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend.poll_error = ArithmeticError("decimal.InvalidOperation reading a fill price")
    for _ in range(3):
        assert ex.process_events() == 0
        ex.on_timer()
    assert ex.stats.boundary_errors == 3
    backend.poll_error = None
    backend.quote_error = KeyError("no such symbol")  # price steps find no quote: skipped, not fatal
    backend.push(req.order_ref, Acknowledged(backend.now(), "B1"))
    pump(backend, ex, 10.0)
    backend.quote_error = None
    backend.push(req.order_ref, Fill(backend.now(), "F1", 1, Decimal("-5.00")))
    pump(backend, ex)
    assert g.state == "committed"


def test_a_batch_with_a_record_that_is_not_an_event_applies_the_rest() -> None:
    backend, ex = make()
    g = ex.execute_iron_condor(**CONDOR_ROLES, quantity=1)
    [req] = backend.submitted
    backend._outbox.append("garbage")  # type: ignore[arg-type]
    backend.fill_all(req.order_ref)
    pump(backend, ex)
    assert g.state == "committed" and ex.stats.boundary_errors == 1


def test_groups_built_by_hand_take_enum_values_and_refuse_others_by_name() -> None:
    legs = (Leg(SC, Side.SELL), Leg(LC, Side.BUY), Leg(SP, Side.SELL), Leg(LP, Side.BUY))
    g = AtomicOrderGroup("G1", legs, 1, strategy="iron_condor", mode="combo")  # type: ignore[arg-type]
    assert g.strategy is StrategyKind.IRON_CONDOR and g.mode is ExecutionMode.COMBO
    bad = AtomicOrderGroup("G2", legs, 1, strategy="condor")  # type: ignore[arg-type]
    assert bad.validate(dt.datetime(2026, 1, 2, tzinfo=dt.UTC)) == "invalid"
    assert [e.field for e in bad.validation_errors] == ["strategy"]


@pytest.mark.parametrize("value", ["no", 0, None])
def test_longs_first_takes_only_a_bool(value: object) -> None:
    backend, ex = make()
    with pytest.raises(ValidationError) as info:
        ex.execute_iron_condor(**CONDOR_ROLES, quantity=1, mode=ExecutionMode.LEGGED, longs_first=value)  # type: ignore[arg-type]
    assert info.value.field == "longs_first" and "also" not in info.value.reason
    assert backend.submitted == []
