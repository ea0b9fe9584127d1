"""OptionSymbol: one listed option contract, with its canonical 21-character OCC form."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import attrs

from atomic_orders.fsm.errors import ValidationError

#: Weekly / PM-settled roots whose underlying differs from the root itself.
WEEKLY_ROOTS: dict[str, str] = {
    "SPXW": "SPX",
    "SPXPM": "SPX",
    "NDXP": "NDX",
    "RUTW": "RUT",
    "VIXW": "VIX",
    "XSPW": "XSP",
    "DJXW": "DJX",
}

# ASCII only, matched whole (``$`` would accept a trailing newline; ``\d`` any script's digits).
_ROOT_RE = re.compile(r"[A-Z0-9]{1,6}", re.ASCII)
_UNDERLYING_RE = re.compile(r"[A-Z0-9][A-Z0-9./]{0,9}", re.ASCII)
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
_STRIKE_TEXT_RE = re.compile(r"[0-9]{1,5}(\.[0-9]{1,3})?", re.ASCII)
_STRIKE_SCALE = Decimal(1000)
_MAX_STRIKE_MILLIS = 99_999_999
# OCC text per (root, expiry, strike, is call): asked for again and again (reports, logs, wire payloads)
# and not cheap to format. Keyed by the parts, so no symbol is kept alive. Bounded: a session trades a
# few hundred distinct contracts; past the bound the text is formatted each time.
_OCC_CACHE: dict[tuple[str, dt.date, Decimal, bool], str] = {}
_OCC_CACHE_MAX = 10_000


class Right(StrEnum):
    """Option right: call or put (the OCC letter is the value)."""

    CALL = "C"
    PUT = "P"


def _check_root(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not _ROOT_RE.fullmatch(value):
        raise ValidationError("root", value, "must be 1-6 characters A-Z or 0-9 (ASCII)")


def _check_underlying(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not _UNDERLYING_RE.fullmatch(value) or not any(c.isalpha() for c in value):
        raise ValidationError("underlying", value, "must be 1-10 upper-case ASCII characters (A-Z, 0-9, '.', '/')")


def _check_strike(_inst: object, _attr: object, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValidationError("strike", value, "must be a positive, finite Decimal")
    if value >= 100_000:  # before the arithmetic below, which cannot scale absurd magnitudes
        raise ValidationError("strike", value, "must be below 100000 (OCC encodes strike x1000 in 8 digits)")
    millis = value * _STRIKE_SCALE
    if millis != millis.to_integral_value() or millis > _MAX_STRIKE_MILLIS:
        raise ValidationError(
            "strike", value, "must be a multiple of 0.001 and below 100000 (OCC encodes strike x1000 in 8 digits)"
        )


def _check_expiry(_inst: object, _attr: object, value: dt.date) -> None:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValidationError("expiry", value, "must be a datetime.date")
    if not 2000 <= value.year <= 2099:
        raise ValidationError("expiry", value, "year must be within 2000-2099 (OCC uses two digits)")


def _check_right(_inst: object, _attr: object, value: Right) -> None:
    if not isinstance(value, Right):
        raise ValidationError("right", value, "must be Right.CALL or Right.PUT")


@attrs.frozen(cache_hash=True, order=False, repr=False)
class OptionSymbol:
    """An option contract: underlying, root (SPX vs SPXW), expiry, right and strike.

    ``str(symbol)`` and :attr:`occ` give the canonical 21-character OCC symbol:
    root padded to 6, ``yymmdd``, ``C``/``P``, strike x1000 in 8 digits.
    """

    underlying: str = attrs.field(validator=_check_underlying)
    root: str = attrs.field(validator=_check_root)
    expiry: dt.date = attrs.field(validator=_check_expiry)
    right: Right = attrs.field(validator=_check_right)
    strike: Decimal = attrs.field(validator=_check_strike)

    @classmethod
    def of(cls, root: str, expiry: dt.date, right: Right | str, strike: Decimal | str | int) -> OptionSymbol:
        """Build a symbol from its root; the underlying follows from the root (SPXW -> SPX)."""
        if isinstance(strike, bool):
            raise ValidationError("strike", strike, "must be a number, not a bool")
        if isinstance(strike, str):
            if not _STRIKE_TEXT_RE.fullmatch(strike):
                raise ValidationError("strike", strike, "must be ASCII digits with up to 3 decimals, below 100000")
            strike_dec = Decimal(strike)
        else:
            strike_dec = Decimal(strike) if isinstance(strike, int) else strike
        _check_root(None, None, root)  # first: the underlying is derived from it
        try:
            right_value = right if isinstance(right, Right) else Right(right)
        except ValueError:
            raise ValidationError("right", right, "must be Right.CALL or Right.PUT ('C' or 'P')") from None
        return cls(
            underlying=WEEKLY_ROOTS.get(root, root),
            root=root,
            expiry=expiry,
            right=right_value,
            strike=strike_dec,
        )

    @property
    def occ(self) -> str:
        """The 21-character OCC symbol, e.g. ``'SPXW  250117C05000000'``."""
        key = (self.root, self.expiry, self.strike, self.right is Right.CALL)
        occ = _OCC_CACHE.get(key)
        if occ is None:
            millis = int(self.strike * _STRIKE_SCALE)
            occ = f"{self.root:<6}{self.expiry:%y%m%d}{self.right.value}{millis:08d}"
            if len(_OCC_CACHE) < _OCC_CACHE_MAX:
                _OCC_CACHE[key] = occ
        return occ

    def __str__(self) -> str:
        return self.occ

    def __repr__(self) -> str:
        return f"OptionSymbol({self.occ!r})"

    @classmethod
    def parse_occ(cls, text: str, underlying: str | None = None) -> OptionSymbol:
        """Parse a 21-character OCC symbol; raise :class:`ValidationError` naming the bad part.

        The underlying is taken from ``underlying`` when given, else derived from the root.
        """
        if not isinstance(text, str):
            raise ValidationError("occ symbol", text, "must be a string")
        if len(text) != 21:
            raise ValidationError("occ symbol", text[:40], f"must be exactly 21 characters, got {len(text)}")
        if not text.isascii():
            raise ValidationError("occ symbol", text, "must be ASCII (digits 0-9, letters A-Z)")
        raw_root, raw_date, raw_right, raw_strike = text[:6], text[6:12], text[12], text[13:]
        root = raw_root.rstrip(" ")
        if not _ROOT_RE.fullmatch(root):
            raise ValidationError(
                "occ symbol", text, f"root part {raw_root!r} must be 1-6 characters A-Z/0-9, left-aligned"
            )
        if not _DIGITS_RE.fullmatch(raw_date):
            raise ValidationError("occ symbol", text, f"expiry part {raw_date!r} must be six digits yymmdd")
        try:
            expiry = dt.date(2000 + int(raw_date[:2]), int(raw_date[2:4]), int(raw_date[4:]))
        except ValueError:
            raise ValidationError("occ symbol", text, f"expiry part {raw_date!r} is not a valid date") from None
        if raw_right not in ("C", "P"):
            raise ValidationError("occ symbol", text, f"right part {raw_right!r} must be 'C' or 'P'")
        if not _DIGITS_RE.fullmatch(raw_strike):
            raise ValidationError("occ symbol", text, f"strike part {raw_strike!r} must be eight digits")
        try:
            strike = (Decimal(int(raw_strike)) / _STRIKE_SCALE).normalize()
        except InvalidOperation:  # pragma: no cover - isdigit() already guards this
            raise ValidationError("occ symbol", text, f"strike part {raw_strike!r} is not a number") from None
        if strike <= 0:
            raise ValidationError("occ symbol", text, "strike part must be positive")
        # normalize() can yield exponent form (5E+3); quantize keeps a plain representation.
        strike = strike.quantize(Decimal(1)) if strike == strike.to_integral_value() else strike
        try:
            return cls(
                underlying=underlying if underlying is not None else WEEKLY_ROOTS.get(root, root),
                root=root,
                expiry=expiry,
                right=Right(raw_right),
                strike=strike,
            )
        except ValidationError as err:  # e.g. an all-digit root has no upper-case underlying
            raise ValidationError("occ symbol", text, f"{err.field} {err.value!r}: {err.reason}") from None
