"""OCC option symbols: formatting, parsing, and the errors for malformed text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import OptionSymbol, Right

EXP = dt.date(2026, 1, 16)


@pytest.mark.parametrize(
    ("root", "right", "strike", "occ", "underlying"),
    [
        ("SPXW", "C", "5000", "SPXW  260116C05000000", "SPX"),
        ("SPX", "P", "4850", "SPX   260116P04850000", "SPX"),
        ("SPY", "C", "402.5", "SPY   260116C00402500", "SPY"),
        ("F", "P", "12.5", "F     260116P00012500", "F"),
        ("GOOGL", "C", "0.5", "GOOGL 260116C00000500", "GOOGL"),
        ("ABCDEF", "P", "99999.999", "ABCDEF260116P99999999", "ABCDEF"),
        ("NDXP", "C", "21000", "NDXP  260116C21000000", "NDX"),
        ("BRK2", "C", "0.001", "BRK2  260116C00000001", "BRK2"),
    ],
)
def test_format_and_parse_round_trip(root: str, right: str, strike: str, occ: str, underlying: str) -> None:
    s = OptionSymbol.of(root, EXP, right, Decimal(strike))
    assert s.occ == str(s) == occ
    assert len(s.occ) == 21
    assert s.underlying == underlying
    parsed = OptionSymbol.parse_occ(occ)
    assert parsed == s
    assert hash(parsed) == hash(s)
    assert parsed.strike == Decimal(strike)
    assert (parsed.root, parsed.expiry, parsed.right, parsed.underlying) == (root, EXP, Right(right), underlying)
    assert parsed.occ == occ


def test_parsed_strike_is_plain_not_exponent() -> None:
    s = OptionSymbol.parse_occ("SPXW  260116C05000000")
    assert str(s.strike) == "5000"
    assert str(OptionSymbol.parse_occ("SPY   260116C00402500").strike) == "402.5"


def test_parse_with_explicit_underlying() -> None:
    s = OptionSymbol.parse_occ("SPXW  260116C05000000", underlying="SPX")
    assert s.underlying == "SPX" and s.root == "SPXW"
    t = OptionSymbol.parse_occ("XYZ1  260116C00050000", underlying="XYZ")
    assert t.underlying == "XYZ"


def test_spx_and_spxw_are_different_contracts_on_one_underlying() -> None:
    a = OptionSymbol.of("SPX", EXP, "C", 5000)
    b = OptionSymbol.of("SPXW", EXP, "C", 5000)
    assert a != b and a.underlying == b.underlying == "SPX"


def test_equal_strikes_in_different_precision_are_equal_symbols() -> None:
    assert OptionSymbol.of("SPY", EXP, "C", Decimal("402.5")) == OptionSymbol.of("SPY", EXP, "C", Decimal("402.500"))


MALFORMED = [
    # (text, part named in the message)
    ("SPXW  260116C0500000", "21 characters, got 20"),
    ("SPXW  260116C050000000", "21 characters, got 22"),
    ("", "21 characters, got 0"),
    ("spxw  260116C05000000", "root part"),
    ("S PX  260116C05000000", "root part"),
    ("   SPX260116C05000000", "root part"),
    ("      260116C05000000", "root part"),
    ("SP-X  260116C05000000", "root part"),
    ("SPXW  26O116C05000000", "expiry part '26O116'"),
    ("SPXW  261316C05000000", "expiry part '261316' is not a valid date"),
    ("SPXW  260230C05000000", "expiry part '260230' is not a valid date"),
    ("SPXW  260100C05000000", "expiry part '260100' is not a valid date"),
    ("SPXW  2601 6C05000000", "expiry part"),
    ("SPXW  260116X05000000", "right part 'X'"),
    ("SPXW  260116c05000000", "right part 'c'"),
    ("SPXW  260116 05000000", "right part ' '"),
    ("SPXW  260116C0500000A", "strike part '0500000A'"),
    ("SPXW  260116C-5000000", "strike part '-5000000'"),
    ("SPXW  260116C 5000000", "strike part ' 5000000'"),
    ("SPXW  260116C00000000", "strike part must be positive"),
    # an all-digit root matches the root pattern but has no upper-case underlying to derive
    ("123   260116C00050000", "underlying '123'"),
]


@pytest.mark.parametrize(
    ("text", "part"), MALFORMED, ids=[f"{i:02d}-{p.split()[0]}" for i, (_, p) in enumerate(MALFORMED)]
)
def test_malformed_occ_is_rejected_quoting_text_and_naming_part(text: str, part: str) -> None:
    with pytest.raises(ValidationError) as info:
        OptionSymbol.parse_occ(text)
    err = info.value
    msg = str(err)
    assert repr(text) in msg
    assert part in msg
    assert err.field == "occ symbol" and err.value == text


@pytest.mark.parametrize("value", [None, 21, b"SPXW  260116C05000000"])
def test_non_string_is_rejected(value: object) -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        OptionSymbol.parse_occ(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"root": "SPXWXYZ"}, "root"),
        ({"root": "spy"}, "root"),
        ({"strike": Decimal("0")}, "strike"),
        ({"strike": Decimal("-5")}, "strike"),
        ({"strike": Decimal("100000")}, "strike"),
        ({"strike": Decimal("402.5005")}, "strike"),
        ({"strike": 402.5}, "strike"),
        ({"expiry": dt.date(1999, 12, 31)}, "expiry"),
        ({"expiry": dt.datetime(2026, 1, 16, tzinfo=dt.UTC)}, "expiry"),
        ({"right": "C"}, "right"),
        ({"underlying": "spx"}, "underlying"),
    ],
)
def test_constructor_validates_each_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"underlying": "SPY", "root": "SPY", "expiry": EXP, "right": Right.CALL,
                               "strike": Decimal("400")}
    base.update(kwargs)
    with pytest.raises(ValidationError) as info:
        OptionSymbol(**base)  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")


# -- property ---------------------------------------------------------------------------------------

# Roots: 1-6 of A-Z/0-9 with at least one letter (a real OCC root; an all-digit root has no
# upper-case underlying, see MALFORMED).
roots = st.from_regex(r"\A[A-Z0-9]{0,5}[A-Z][A-Z0-9]{0,5}\Z", fullmatch=True).filter(lambda r: len(r) <= 6)
symbols = st.builds(
    OptionSymbol.of,
    root=roots,
    expiry=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)),
    right=st.sampled_from(["C", "P"]),
    strike=st.integers(min_value=1, max_value=99_999_999).map(lambda m: Decimal(m) / 1000),
)


@given(symbols)
def test_parse_of_format_is_identity(s: OptionSymbol) -> None:
    text = s.occ
    assert len(text) == 21
    back = OptionSymbol.parse_occ(text)
    assert back == s
    assert back.occ == text


def test_all_digit_root_parses_with_an_explicit_underlying() -> None:
    assert OptionSymbol.parse_occ("123   260116C00050000", underlying="XYZ").root == "123"
