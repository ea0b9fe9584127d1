"""LEAN option Symbols <-> OptionSymbol: round trips and errors that name the LEAN symbol."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from atomic_orders.backends.quantconnect.symbols import SymbolMapper
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.lean.api import STAND_IN_API
from atomic_orders.simulator.lean.lean_types import Market, OptionRight, OptionStyle, SecurityType, Symbol

EXPIRY = dt.date(2026, 1, 16)


@pytest.fixture
def mapper() -> SymbolMapper:
    return SymbolMapper(STAND_IN_API)


@pytest.mark.parametrize(
    ("occ", "security_type", "value"),
    [
        ("SPXW  260116C05000000", SecurityType.INDEX_OPTION, "SPXW  260116C05000000"),
        ("SPX   260116P04950500", SecurityType.INDEX_OPTION, "SPX   260116P04950500"),
        ("NDXP  260116C21000000", SecurityType.INDEX_OPTION, "NDXP  260116C21000000"),
        ("SPY   260116P00590000", SecurityType.OPTION, "SPY   260116P00590000"),
        ("AAPL  260116C00232500", SecurityType.OPTION, "AAPL  260116C00232500"),
    ],
)
def test_round_trip(mapper: SymbolMapper, occ: str, security_type: SecurityType, value: str) -> None:
    option = OptionSymbol.parse_occ(occ)
    lean = mapper.to_lean(option)
    assert lean.id.security_type is security_type
    assert lean.value == value
    assert lean.id.option_style is (OptionStyle.EUROPEAN if security_type is SecurityType.INDEX_OPTION
                                    else OptionStyle.AMERICAN)
    assert SymbolMapper(STAND_IN_API).from_lean(lean) == option


def test_spxw_has_the_spx_index_as_underlying(mapper: SymbolMapper) -> None:
    lean = mapper.to_lean(OptionSymbol.of("SPXW", EXPIRY, "C", 5000))
    assert lean.underlying is not None and lean.underlying.value == "SPX"
    assert lean.underlying.id.security_type is SecurityType.INDEX
    assert lean.id.symbol == "SPXW" and lean.id.strike_price == 5000.0


def test_a_lean_built_spxw_contract_maps_to_the_core(mapper: SymbolMapper) -> None:
    spx = Symbol.create("SPX", SecurityType.INDEX, Market.USA)
    lean = Symbol.create_option(spx, "SPXW", Market.USA, OptionStyle.EUROPEAN, OptionRight.PUT, 4875.0,
                                dt.datetime(2026, 1, 16))
    assert mapper.from_lean(lean) == OptionSymbol(underlying="SPX", root="SPXW", expiry=EXPIRY,
                                                  right=OptionSymbol.of("SPXW", EXPIRY, "P", 1).right,
                                                  strike=Decimal(4875))


def _err(mapper: SymbolMapper, symbol: Symbol) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        mapper.from_lean(symbol)
    return info.value


def test_unrepresentable_lean_symbols_raise_naming_the_symbol(mapper: SymbolMapper) -> None:
    spx = Symbol.create("SPX", SecurityType.INDEX, Market.USA)
    canonical = Symbol.create_canonical_option(spx, "SPXW")
    err = _err(mapper, canonical)
    assert err.value == "?SPXW" and "canonical" in err.reason
    err = _err(mapper, spx)
    assert err.value == "SPX" and "not an equity or index option" in err.reason
    brk = Symbol.create_option("BRK.B", Market.USA, OptionStyle.AMERICAN, OptionRight.CALL, 495.0,
                               dt.datetime(2026, 2, 6))
    err = _err(mapper, brk)
    assert err.value == "BRK.B 260206C00495000" and "root" in err.reason
    odd = Symbol.create_option("SPY", Market.USA, OptionStyle.AMERICAN, OptionRight.CALL, 500.0005,
                               dt.datetime(2026, 2, 6))
    err = _err(mapper, odd)
    assert "SPY" in str(err.value) and "strike" in err.reason


def test_core_symbols_that_lean_cannot_carry_are_refused(mapper: SymbolMapper) -> None:
    weird = OptionSymbol(underlying="SPY", root="SPYX", expiry=EXPIRY, right=OptionSymbol.of(
        "SPY", EXPIRY, "C", 1).right, strike=Decimal(500))
    with pytest.raises(ValidationError) as info:
        mapper.to_lean(weird)
    assert info.value.value == weird.occ


@pytest.mark.parametrize("thing", ["SPXW  260116C05000000", None, 5000.0])
def test_something_that_is_not_a_lean_symbol_is_refused_by_name(mapper: SymbolMapper, thing: object) -> None:
    with pytest.raises(ValidationError, match="is not a LEAN Symbol") as info:
        mapper.from_lean(thing)  # type: ignore[arg-type]
    assert info.value.value == repr(thing)
