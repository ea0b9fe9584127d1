"""Option symbology: :class:`OptionSymbol` <-> OCC text <-> dxFeed streamer symbol.

* OCC (what order legs and positions carry): root left-justified and space-padded to 6, ``YYMMDD``,
  ``C``/``P``, strike x 1000 in 8 digits -- ``'SPXW  250117C05000000'`` (21 characters).
* Streamer symbol (market data): ``.`` + root + ``YYMMDD`` + ``C``/``P`` + strike with trailing
  zeros (and a trailing ``.``) removed -- ``'.SPXW250117C5000'``, ``'.SPY250117C500.5'``.

The streamer form uses the option *root* (``SPXW``, not the underlying ``SPX``). The underlying of
a parsed symbol follows from the root (``SPXW -> SPX``) unless given. Malformed input raises
:class:`~atomic_orders.fsm.errors.ValidationError` quoting it. (The reference warns that the tastyware SDK's
streamer -> OCC conversion is wrong for two-decimal strikes; this one is exact: strikes are
Decimals throughout.)
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import WEEKLY_ROOTS, OptionSymbol, Right

__all__ = ["format_occ", "format_streamer", "occ_to_streamer", "parse_occ", "parse_streamer", "streamer_to_occ"]

_STREAMER_RE = re.compile(r"^\.([A-Z0-9]{1,6})(\d{6})([CP])(\d{1,5}(?:\.\d{1,3})?)$")


def format_occ(symbol: OptionSymbol) -> str:
    """The 21-character OCC symbol used in order legs and positions."""
    return symbol.occ


def parse_occ(text: str, underlying: str | None = None) -> OptionSymbol:
    """Parse OCC text (as TastyTrade sends it) into an :class:`OptionSymbol`."""
    return OptionSymbol.parse_occ(text, underlying)


def _strike_text(strike: Decimal) -> str:
    text = format(strike, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_streamer(symbol: OptionSymbol) -> str:
    """The dxFeed streamer symbol, e.g. ``'.SPXW250117C5000'``."""
    return f".{symbol.root}{symbol.expiry:%y%m%d}{symbol.right.value}{_strike_text(symbol.strike)}"


def parse_streamer(text: str, underlying: str | None = None) -> OptionSymbol:
    """Parse a streamer symbol such as ``'.SPY250117C500.5'``; raise ValidationError naming the bad part."""
    if not isinstance(text, str):
        raise ValidationError("streamer symbol", text, "must be a string")
    m = _STREAMER_RE.match(text)
    if m is None:
        raise ValidationError(
            "streamer symbol", text,
            "must be '.' + root (1-6 of A-Z/0-9) + yymmdd + C/P + strike (up to 5 digits, up to 3 decimals)",
        )
    root, raw_date, raw_right, raw_strike = m.groups()
    if len(raw_strike) > 1 and raw_strike.startswith("0") and not raw_strike.startswith("0."):
        raise ValidationError("streamer symbol", text, f"strike part {raw_strike!r} has a leading zero")
    try:
        expiry = dt.date(2000 + int(raw_date[:2]), int(raw_date[2:4]), int(raw_date[4:]))
    except ValueError:
        raise ValidationError("streamer symbol", text, f"expiry part {raw_date!r} is not a valid date") from None
    try:
        strike = Decimal(raw_strike)
    except InvalidOperation:  # pragma: no cover - the regex admits only numbers
        raise ValidationError("streamer symbol", text, f"strike part {raw_strike!r} is not a number") from None
    if strike <= 0:
        raise ValidationError("streamer symbol", text, "strike must be positive")
    try:
        return OptionSymbol(
            underlying=underlying if underlying is not None else WEEKLY_ROOTS.get(root, root),
            root=root,
            expiry=expiry,
            right=Right(raw_right),
            strike=strike,
        )
    except ValidationError as err:
        raise ValidationError("streamer symbol", text, f"{err.field} {err.value!r}: {err.reason}") from None


def occ_to_streamer(occ: str) -> str:
    """OCC text -> streamer symbol (validated)."""
    return format_streamer(parse_occ(occ))


def streamer_to_occ(streamer: str) -> str:
    """Streamer symbol -> OCC text (validated)."""
    return format_occ(parse_streamer(streamer))
