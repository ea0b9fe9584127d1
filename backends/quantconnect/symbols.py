"""LEAN option ``Symbol`` <-> :class:`~atomic_orders.fsm.symbol.OptionSymbol`, validated both ways.

* Index options (SPX/SPXW, NDX/NDXP, RUT/RUTW, VIX/VIXW, XSP, DJX): LEAN builds them from an
  ``Index`` underlying with the root as *target option* (``Symbol.create_option(spx, "SPXW", ...)``),
  security type ``INDEX_OPTION``, European style. ``Symbol.create_option("SPX", ...)`` (the string
  overload) would make an *equity* option, so the underlying Symbol is always built explicitly.
* Equity options: ``OPTION`` from an ``Equity`` underlying, American style; the OCC root is the
  underlying's current ticker (LEAN's ``id.symbol`` is the *first* ticker of a renamed equity).
* Contracts are compared by their ``id`` fields (strike, expiry, right, root), never by
  ``symbol.value``: LEAN pads roots of 6+ characters with an extra space and keeps dots
  (``BRK.B``), so ``value`` is not always a 21-character OCC symbol.

Everything that cannot be represented raises :class:`~atomic_orders.fsm.errors.ValidationError` naming the LEAN
symbol (canonical ``?SPXW`` symbols, non-option securities, roots OCC cannot carry, strikes off the
0.001 grid). :meth:`SymbolMapper.to_lean` checks its own result by mapping it back.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from atomic_orders.backends.quantconnect.lean_api import LeanApi
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import OptionSymbol, Right

if TYPE_CHECKING:
    from QuantConnect import Symbol

__all__ = ["INDEX_UNDERLYINGS", "SymbolMapper"]

#: Underlyings whose options LEAN lists as index options (``SecurityType.INDEX_OPTION``).
INDEX_UNDERLYINGS: frozenset[str] = frozenset({"SPX", "NDX", "RUT", "VIX", "XSP", "DJX"})


def _describe(symbol: object) -> str:
    value = getattr(symbol, "value", None)
    return str(value) if value is not None else repr(symbol)


class SymbolMapper:
    """Converts option symbols between LEAN and the core, caching both directions."""

    def __init__(self, api: LeanApi, market: str | None = None) -> None:
        self.api = api
        self.market: str = market if market is not None else api.Market.USA
        self._to_lean: dict[OptionSymbol, Symbol] = {}
        self._from_lean: dict[str, OptionSymbol] = {}

    def is_index(self, option: OptionSymbol) -> bool:
        """True when LEAN lists this contract as an index option."""
        return option.underlying in INDEX_UNDERLYINGS

    def to_lean(self, option: OptionSymbol) -> Symbol:
        """The LEAN Symbol of ``option`` (checked by converting it back)."""
        cached = self._to_lean.get(option)
        if cached is not None:
            return cached
        api = self.api
        right = api.OptionRight.CALL if option.right is Right.CALL else api.OptionRight.PUT
        expiry = dt.datetime(option.expiry.year, option.expiry.month, option.expiry.day)
        strike = float(option.strike)
        if self.is_index(option):
            underlying = api.Symbol.create(option.underlying, api.SecurityType.INDEX, self.market)
            symbol = api.Symbol.create_option(underlying, option.root, self.market, api.OptionStyle.EUROPEAN,
                                              right, strike, expiry)
        else:
            if option.root != option.underlying:
                raise ValidationError("symbol", option.occ,
                                      f"equity option root {option.root!r} differs from its underlying "
                                      f"{option.underlying!r}: not representable as a LEAN equity option")
            underlying = api.Symbol.create(option.underlying, api.SecurityType.EQUITY, self.market)
            symbol = api.Symbol.create_option(underlying, self.market, api.OptionStyle.AMERICAN, right, strike,
                                              expiry)
        back = self.from_lean(symbol)
        if back != option:
            raise ValidationError("symbol", option.occ, f"LEAN symbol {_describe(symbol)!r} maps back to {back.occ!r}")
        self._to_lean[option] = symbol
        return symbol

    def from_lean(self, symbol: Symbol) -> OptionSymbol:
        """The core symbol of a LEAN option contract; raises :class:`ValidationError` naming it."""
        name = _describe(symbol)
        cached = self._from_lean.get(name)
        if cached is not None:
            return cached
        api = self.api
        sid = getattr(symbol, "id", None)
        if sid is None or not hasattr(sid, "security_type") or not hasattr(symbol, "is_canonical"):
            raise ValidationError("lean symbol", name, f"is not a LEAN Symbol (a {type(symbol).__name__})")
        security_type = sid.security_type
        if security_type == api.SecurityType.INDEX_OPTION:
            is_index = True
        elif security_type == api.SecurityType.OPTION:
            is_index = False
        else:
            raise ValidationError("lean symbol", name, f"is not an equity or index option (security type "
                                                        f"{security_type!r})")
        if symbol.is_canonical():
            raise ValidationError("lean symbol", name, "is a canonical option (a chain), not a contract")
        underlying = symbol.underlying
        if underlying is None:
            raise ValidationError("lean symbol", name, "has no underlying")
        underlying_ticker = str(underlying.value).upper()
        root = str(sid.symbol).upper() if is_index else underlying_ticker
        if is_index and underlying_ticker not in INDEX_UNDERLYINGS:
            raise ValidationError("lean symbol", name, f"index underlying {underlying_ticker!r} is not one of "
                                                        f"{sorted(INDEX_UNDERLYINGS)}")
        try:
            strike = Decimal(repr(float(sid.strike_price)))
        except (InvalidOperation, ValueError, TypeError):
            raise ValidationError("lean symbol", name, f"strike {sid.strike_price!r} is not a number") from None
        if strike == strike.to_integral_value():
            strike = strike.quantize(Decimal(1))
        right_value = sid.option_right
        if right_value == api.OptionRight.CALL:
            right = Right.CALL
        elif right_value == api.OptionRight.PUT:
            right = Right.PUT
        else:
            raise ValidationError("lean symbol", name, f"option right {right_value!r} is neither call nor put")
        expiry_raw = sid.date
        expiry = expiry_raw.date() if isinstance(expiry_raw, dt.datetime) else expiry_raw
        try:
            option = OptionSymbol(underlying=underlying_ticker, root=root, expiry=expiry, right=right, strike=strike)
        except ValidationError as err:
            raise ValidationError("lean symbol", name, f"{err.field} {err.value!r}: {err.reason}") from None
        self._from_lean[name] = option
        return option
