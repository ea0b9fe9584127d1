"""Symbology: OptionSymbol <-> OCC <-> streamer symbol."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atomic_orders.backends.tastytrade.symbols import (
    format_occ,
    format_streamer,
    occ_to_streamer,
    parse_occ,
    parse_streamer,
    streamer_to_occ,
)
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import OptionSymbol, Right

# (OCC, streamer) pairs from the reference's symbology table (§6.1).
REFERENCE = [
    ("SPY   240324P00480500", ".SPY240324P480.5"),
    ("TSLA  250620C00345000", ".TSLA250620C345"),
    ("F     250620C00002020", ".F250620C2.02"),
    ("IRBT  260116C00022500", ".IRBT260116C22.5"),
    ("GOOGL 270617P00235000", ".GOOGL270617P235"),
    ("SPX   250919C05050000", ".SPX250919C5050"),
    ("SPXW  250718C03500000", ".SPXW250718C3500"),
    ("RUTW  250731C01200000", ".RUTW250731C1200"),
    ("BRKB  250620C00200000", ".BRKB250620C200"),
]


@pytest.mark.parametrize(("occ", "streamer"), REFERENCE)
def test_reference_examples_convert_both_ways(occ: str, streamer: str) -> None:
    assert occ_to_streamer(occ) == streamer
    assert streamer_to_occ(streamer) == occ
    assert parse_occ(occ) == parse_streamer(streamer)


def test_weekly_root_keeps_its_root_and_maps_the_underlying() -> None:
    s = parse_streamer(".SPXW250117C5000")
    assert (s.root, s.underlying, s.strike, s.right) == ("SPXW", "SPX", Decimal(5000), Right.CALL)
    assert format_streamer(s) == ".SPXW250117C5000" and format_occ(s) == "SPXW  250117C05000000"
    assert parse_streamer(".SPY250117C500.5").strike == Decimal("500.5")


@pytest.mark.parametrize(
    "bad",
    ["SPXW250117C5000", ".SPXW250117X5000", ".SPXW251317C5000", ".SPXW250117C", ".spxw250117C5000",
     ".SPXWEEKLY250117C5000", ".SPX250117C123456", ".SPX250117C1.2345", ".SPX250117C0", ".SPX250117C0500", ""],
)
def test_malformed_streamer_symbols_raise_quoting_the_input(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_streamer(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", ["SPXW 250117C05000000", "SPXW  250117C0500000", "SPXW  251317C05000000",
                                 "SPXW  250117Q05000000", "      250117C05000000"])
def test_malformed_occ_symbols_raise_quoting_the_input(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_occ(bad)
    assert repr(bad) in str(info.value)


roots = st.from_regex(r"\A[A-Z][A-Z0-9]{0,5}\Z")
expiries = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))
strikes = st.integers(min_value=1, max_value=99_999_999).map(lambda m: (Decimal(m) / 1000).normalize())


@given(root=roots, expiry=expiries, right=st.sampled_from(Right), strike=strikes)
def test_round_trip_property(root: str, expiry: dt.date, right: Right, strike: Decimal) -> None:
    symbol = OptionSymbol.of(root, expiry, right, strike)
    assert parse_streamer(format_streamer(symbol)) == symbol
    assert parse_occ(format_occ(symbol)) == symbol
    assert streamer_to_occ(format_streamer(symbol)) == symbol.occ
    text = format_streamer(symbol)
    assert not text.endswith(".") and not (("." in text[1:]) and text.endswith("0"))
