"""The market model: a seeded random walk of the underlying and Black-Scholes option quotes.

Choices (documented here because tests and the broker rely on them):

- **Time.** The underlying is sampled every ``step_seconds`` of the session; a quote at any
  instant uses the sample of the step containing it, so quotes are constant within a step and
  are cached per ``(symbol, step)``. Volatility is annualised over *trading* time: a year is
  252 sessions of 6.5 hours, so one session moves the underlying by about ``vol / sqrt(252)``.
- **Expiry.** An option expires at the session's closing time of day on its expiry date (the
  16:00 ET close for a 9:30 ET open of 6.5 hours). Time to expiry is the trading time left in
  today's session plus one trading day (1/252 year) per weekday strictly after the session
  date up to and including the expiry date (holidays are ignored). An expired option is worth
  its intrinsic value. The session date is ``session_open``'s UTC date.
- **Quotes.** Mid from Black-Scholes with a fixed volatility; the half-spread is
  ``base_half_spread + mid * (spread_price_frac + spread_moneyness * |K/S - 1|)``: it grows with
  the price, and relative to the price it grows with the distance from the money (kept relative
  so that bid and ask stay monotone in the strike). Bid rounds down and ask up to the SPX tick
  (0.05 below $3, 0.10 from $3); the bid is floored at 0.05 and the ask is always at least one
  tick above the bid.

Internal math is float; everything that leaves the model (quotes, net prices) is ``Decimal``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal

from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.orders import Quote
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.simulator.broker.engine import make_rng

__all__ = [
    "DEFAULT_SESSION_OPEN",
    "SESSION_SECONDS",
    "TRADING_SECONDS_PER_YEAR",
    "MarketModel",
    "black_scholes",
    "cents_to_decimal",
]

#: A regular US session: 9:30 to 16:00 ET.
SESSION_SECONDS = 6.5 * 3600
#: Trading seconds in a year (252 sessions of 6.5 hours): the unit of ``annual_vol``.
TRADING_SECONDS_PER_YEAR = 252 * SESSION_SECONDS
#: Default session open: Monday 2026-01-05, 9:30 ET.
DEFAULT_SESSION_OPEN = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)

_SQRT2 = math.sqrt(2.0)
_PATH_CHUNK = 4096
_DEC_CACHE: dict[int, Decimal] = {}


def cents_to_decimal(cents: int) -> Decimal:
    """``cents`` as a two-place Decimal (``150 -> Decimal('1.50')``), cached."""
    d = _DEC_CACHE.get(cents)
    if d is None:
        d = Decimal(cents).scaleb(-2)
        if len(_DEC_CACHE) < 100_000:  # bounded: prices live in a small range
            _DEC_CACHE[cents] = d
    return d


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def black_scholes(spot: float, strike: float, years: float, vol: float, rate: float, is_call: bool) -> float:
    """The Black-Scholes price of a European option (intrinsic value when ``years <= 0``)."""
    if years <= 0.0 or vol <= 0.0:
        return max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    sd = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / sd
    d2 = d1 - sd
    disc = strike * math.exp(-rate * years)
    if is_call:
        return spot * _ncdf(d1) - disc * _ncdf(d2)
    return disc * _ncdf(-d2) - spot * _ncdf(-d1)


def _weekdays_after(start: dt.date, end: dt.date) -> int:
    """Weekdays in ``(start, end]``."""
    if end <= start:
        return 0
    days = (end - start).days
    full_weeks, rest = divmod(days, 7)
    count = full_weeks * 5
    wd = start.weekday()
    for i in range(1, rest + 1):
        if (wd + i) % 7 < 5:
            count += 1
    return count


class MarketModel:
    """A seeded market for one underlying: spot path plus option quotes on demand.

    ``spot`` may be a float or Decimal; ``step_seconds`` is the sampling interval of the walk.
    See the module docstring for the pricing and expiry conventions.
    """

    __slots__ = (
        "seed",
        "session_open",
        "session_seconds",
        "underlying",
        "root",
        "start_spot",
        "annual_vol",
        "rate",
        "drift",
        "step_seconds",
        "strike_step",
        "base_half_spread",
        "spread_price_frac",
        "spread_moneyness",
        "default_dte",
        "_session_date",
        "_path",
        "_path_rng",
        "_step_mu",
        "_step_sd",
        "_index",
        "_symbols",
        "_info",
        "_q_step",
        "_q_val",
        "_q_obj_step",
        "_q_obj",
        "_t_after",
        "_t_step",
        "_t_val",
        "_when_step",
        "_when",
        "_sym_cache",
    )

    def __init__(
        self,
        seed: int,
        session_open: dt.datetime | None = None,
        session_seconds: float = SESSION_SECONDS,
        underlying: str = "SPX",
        root: str = "SPXW",
        spot: float | Decimal = 5000.0,
        annual_vol: float = 0.18,
        rate: float = 0.04,
        step_seconds: float = 1.0,
        drift: float = 0.0,
        strike_step: int = 5,
        base_half_spread: float = 0.05,
        spread_price_frac: float = 0.003,
        spread_moneyness: float = 0.5,
        default_dte: int = 7,
    ) -> None:
        if session_open is None:
            session_open = DEFAULT_SESSION_OPEN
        if session_open.tzinfo is None:
            raise ValueError(f"session_open={session_open!r}: must be timezone-aware")
        if step_seconds <= 0:
            raise ValueError(f"step_seconds={step_seconds!r}: must be positive")
        if float(spot) <= 0:
            raise ValueError(f"spot={spot!r}: must be positive")
        if annual_vol < 0:
            raise ValueError(f"annual_vol={annual_vol!r}: must not be negative")
        if strike_step <= 0:
            raise ValueError(f"strike_step={strike_step!r}: must be positive")
        self.seed = seed
        self.session_open = session_open.astimezone(dt.UTC)
        self.session_seconds = float(session_seconds)
        self.underlying = underlying
        self.root = root
        self.start_spot = float(spot)
        self.annual_vol = float(annual_vol)
        self.rate = float(rate)
        self.drift = float(drift)
        self.step_seconds = float(step_seconds)
        self.strike_step = int(strike_step)
        self.base_half_spread = float(base_half_spread)
        self.spread_price_frac = float(spread_price_frac)
        self.spread_moneyness = float(spread_moneyness)
        self.default_dte = int(default_dte)
        self._session_date = self.session_open.date()
        dt_years = self.step_seconds / TRADING_SECONDS_PER_YEAR
        self._step_mu = (self.drift - 0.5 * self.annual_vol**2) * dt_years
        self._step_sd = self.annual_vol * math.sqrt(dt_years)
        self._path: list[float] = [self.start_spot]
        self._path_rng = make_rng(seed, "market.path")
        # Symbols are interned to small ints once (per order leg, by the broker), so the hot path
        # indexes lists instead of hashing and comparing attrs objects.
        self._index: dict[OptionSymbol, int] = {}
        self._symbols: list[OptionSymbol] = []
        # per-symbol constants: (strike, is_call, trading years after today's close)
        self._info: list[tuple[float, bool, float]] = []
        # the last quote computed per symbol and its step: one entry per symbol, bounded memory
        self._q_step: list[int] = []
        self._q_val: list[tuple[int, int]] = []
        # the last Quote object built per symbol (callers poll the same symbols again and again)
        self._q_obj_step: list[int] = []
        self._q_obj: list[Quote | None] = []
        # the time terms of the last (years after today's close, step) priced: the legs of one
        # expiry share them, and callers ask for several legs at the same step
        self._t_after = math.nan
        self._t_step = -1
        self._t_val: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        # the quote time of the last step quoted (every symbol's quote in a step carries it)
        self._when_step = -1
        self._when = self.session_open
        # symbols built by symbol() with an int strike, so that equal symbols are one object (dict
        # lookups then stop at identity instead of comparing five fields); bounded like _DEC_CACHE
        self._sym_cache: dict[tuple[dt.date, Right, int], OptionSymbol] = {}

    # -- underlying ---------------------------------------------------------------------------

    @property
    def session_date(self) -> dt.date:
        """The calendar date of the session (``session_open``'s UTC date)."""
        return self._session_date

    @property
    def default_expiry(self) -> dt.date:
        """The session date plus ``default_dte`` calendar days."""
        return self._session_date + dt.timedelta(days=self.default_dte)

    def step_of(self, seconds: float) -> int:
        """The index of the walk step containing ``seconds`` (0 before the open)."""
        return int(seconds // self.step_seconds) if seconds > 0 else 0

    def _extend(self, step: int) -> None:
        path = self._path
        gauss = self._path_rng.gauss
        mu, sd = self._step_mu, self._step_sd
        target = max(step + 1, len(path) + _PATH_CHUNK)
        last = path[-1]
        exp = math.exp
        while len(path) < target:
            last *= exp(mu + sd * gauss(0.0, 1.0))
            path.append(last)

    def spot_at_step(self, step: int) -> float:
        """The underlying's price at walk step ``step``."""
        path = self._path
        if step >= len(path):
            self._extend(step)
        return path[step]

    def spot(self, seconds: float) -> float:
        """The underlying's price at ``seconds`` since the open."""
        return self.spot_at_step(self.step_of(seconds))

    # -- options ------------------------------------------------------------------------------

    def intern(self, symbol: OptionSymbol) -> int:
        """A small int standing for ``symbol`` in :meth:`quote_cents_at` and :meth:`combo_cents`.

        Raises ``ValueError`` for a symbol of another underlying.
        """
        idx = self._index.get(symbol)
        if idx is None:
            if symbol.underlying != self.underlying:
                raise ValueError(f"symbol={symbol.occ!r}: underlying {symbol.underlying} is not {self.underlying}")
            if symbol.expiry < self._session_date:
                after = -math.inf  # expired before the session: intrinsic value only
            else:
                after = _weekdays_after(self._session_date, symbol.expiry) / 252.0
            idx = len(self._symbols)
            self._index[symbol] = idx
            self._symbols.append(symbol)
            self._info.append((float(symbol.strike), symbol.right is Right.CALL, after))
            self._q_step.append(-1)
            self._q_val.append((0, 0))
            self._q_obj_step.append(-1)
            self._q_obj.append(None)
        return idx

    def _years_left(self, after_close: float, seconds: float) -> float:
        if after_close == -math.inf:
            return 0.0
        return after_close + max(self.session_seconds - seconds, 0.0) / TRADING_SECONDS_PER_YEAR

    def theoretical(self, symbol: OptionSymbol, seconds: float) -> float:
        """The model's fair value (Black-Scholes mid, float) of ``symbol`` at ``seconds``."""
        strike, is_call, after = self._info[self.intern(symbol)]
        step = self.step_of(seconds)
        t = step * self.step_seconds
        return black_scholes(
            self.spot_at_step(step), strike, self._years_left(after, t), self.annual_vol, self.rate, is_call
        )

    def _compute(self, idx: int, step: int) -> tuple[int, int]:
        strike, is_call, after = self._info[idx]
        path = self._path
        s = path[step] if step < len(path) else self.spot_at_step(step)
        vol = self.annual_vol
        if self._t_step == step and self._t_after == after:
            years, sd, carry, growth = self._t_val
        else:
            # the terms that depend on time only, computed as black_scholes() does (same floats)
            if after == -math.inf:
                years = 0.0
            else:
                left = self.session_seconds - step * self.step_seconds
                years = after + (left if left > 0.0 else 0.0) / TRADING_SECONDS_PER_YEAR
            if years <= 0.0 or vol <= 0.0:
                sd = carry = growth = 0.0
            else:
                rate = self.rate
                sd = vol * math.sqrt(years)
                carry = (rate + 0.5 * vol * vol) * years
                growth = math.exp(-rate * years)
            self._t_after = after
            self._t_step = step
            self._t_val = (years, sd, carry, growth)
        if years <= 0.0 or vol <= 0.0:
            mid = max(s - strike, 0.0) if is_call else max(strike - s, 0.0)
        else:
            # black_scholes() inlined: this is the simulator's hottest function
            d1 = (math.log(s / strike) + carry) / sd
            d2 = d1 - sd
            disc = strike * growth
            erfc = math.erfc
            if is_call:
                mid = s * 0.5 * erfc(-d1 / _SQRT2) - disc * 0.5 * erfc(-d2 / _SQRT2)
            else:
                mid = disc * 0.5 * erfc(d2 / _SQRT2) - s * 0.5 * erfc(d1 / _SQRT2)
        # relative widening away from the money keeps bid and ask monotone in the strike
        half = self.base_half_spread + mid * (self.spread_price_frac + self.spread_moneyness * abs(strike / s - 1.0))
        # onto the SPX tick grid in cents (0.05 below $3, 0.10 from $3): bid down, ask up
        cents = (mid - half) * 100.0
        bid = math.floor(cents / 5.0 + 1e-9) * 5
        if bid >= 300:
            bid = math.floor(cents / 10.0 + 1e-9) * 10
        if bid < 5:
            bid = 5
        cents = (mid + half) * 100.0
        ask = math.ceil(cents / 5.0 - 1e-9) * 5
        if ask >= 300:
            ask = math.ceil(cents / 10.0 - 1e-9) * 10
        if ask <= bid:
            ask = bid + (10 if bid >= 300 else 5)
        result = (bid, ask)
        self._q_step[idx] = step
        self._q_val[idx] = result
        return result

    def quote_cents_at(self, idx: int, step: int) -> tuple[int, int]:
        """``(bid, ask)`` in integer cents of interned symbol ``idx`` at walk step ``step``."""
        if self._q_step[idx] == step:
            return self._q_val[idx]
        return self._compute(idx, step)

    def quote_cents(self, symbol: OptionSymbol, step: int) -> tuple[int, int]:
        """``(bid, ask)`` in integer cents of ``symbol`` at walk step ``step``."""
        return self.quote_cents_at(self.intern(symbol), step)

    def quote(self, symbol: OptionSymbol, seconds: float) -> Quote:
        """Top of book for ``symbol`` at ``seconds`` (Decimal bid/ask on the tick, bid < ask).

        The quote's ``time`` is the start of the walk step it belongs to (when the market last
        moved), so the same object serves every request within a step.
        """
        idx = self._index.get(symbol)
        if idx is None:
            idx = self.intern(symbol)
        step = int(seconds // self.step_seconds) if seconds > 0 else 0  # step_of(), inlined: a hot path
        if self._q_obj_step[idx] == step:
            cached = self._q_obj[idx]
            if cached is not None:
                return cached
        if self._q_step[idx] == step:
            bid, ask = self._q_val[idx]
        else:
            bid, ask = self._compute(idx, step)
        if self._when_step != step:
            self._when_step = step
            self._when = self.session_open + dt.timedelta(seconds=step * self.step_seconds)
        dec = _DEC_CACHE.get
        bid_d = dec(bid)
        if bid_d is None:
            bid_d = cents_to_decimal(bid)
        ask_d = dec(ask)
        if ask_d is None:
            ask_d = cents_to_decimal(ask)
        quote = Quote(symbol=symbol, bid=bid_d, ask=ask_d, time=self._when)
        self._q_obj_step[idx] = step
        self._q_obj[idx] = quote
        return quote

    def combo_cents(self, units: Sequence[tuple[int, int]], step: int) -> tuple[int, int]:
        """Signed ``(net_bid, net_ask)`` in cents per unit; ``units`` are ``(interned symbol, signed contracts)``.

        Debit is positive: a bought contract costs its ask (natural) or earns its bid; a sold one
        receives its bid (natural) or pays its ask. This is the broker's hot path.
        """
        net_bid = 0
        net_ask = 0
        q_step = self._q_step
        q_val = self._q_val
        for idx, n in units:
            if q_step[idx] == step:
                bid, ask = q_val[idx]
            else:
                bid, ask = self._compute(idx, step)
            if n > 0:
                net_bid += bid * n
                net_ask += ask * n
            else:
                net_bid += ask * n
                net_ask += bid * n
        return net_bid, net_ask

    def combo_quote(self, legs: Sequence[Leg], seconds: float) -> tuple[Decimal, Decimal, Decimal]:
        """``(net_bid, net_mid, net_ask)`` per strategy unit as signed Decimals (debit positive).

        ``net_ask`` is the natural price for a buyer of the combo: the sum over legs of the ask
        of bought legs minus the bid of sold legs, times the ratio. A credit iron condor has a
        negative ``net_ask``. For a single leg the same rule gives the signed price per contract.
        """
        units = [(self.intern(leg.symbol), leg.signed_ratio) for leg in legs]
        nb, na = self.combo_cents(units, self.step_of(seconds))
        mid = (Decimal(nb + na) / 2).scaleb(-2)
        return cents_to_decimal(nb), mid, cents_to_decimal(na)

    # -- strategy helpers -----------------------------------------------------------------------

    def symbol(self, expiry: dt.date, right: Right | str, strike: int | Decimal) -> OptionSymbol:
        """An option of this market's root (the same object for the same int strike, expiry and right)."""
        right = Right(right)
        if type(strike) is not int or type(expiry) is not dt.date:
            return OptionSymbol(
                underlying=self.underlying, root=self.root, expiry=expiry, right=right, strike=Decimal(strike)
            )
        key = (expiry, right, strike)
        symbol = self._sym_cache.get(key)
        if symbol is None:
            symbol = OptionSymbol(
                underlying=self.underlying, root=self.root, expiry=expiry, right=right, strike=Decimal(strike)
            )
            if len(self._sym_cache) < 100_000:  # bounded: a session trades a few hundred strikes
                self._sym_cache[key] = symbol
        return symbol

    def strikes_for_iron_condor(
        self, seconds: float, expiry: dt.date, width: int, wing_distance: float
    ) -> tuple[OptionSymbol, OptionSymbol, OptionSymbol, OptionSymbol]:
        """``(short call, long call, short put, long put)`` on the strike grid around the spot.

        The short strikes are the first grid strikes at least ``wing_distance`` points away from
        the spot at ``seconds``; the long strikes are ``width`` points further out. ``width``
        must be a positive multiple of ``strike_step``.
        """
        step = self.strike_step
        if width <= 0 or width % step:
            raise ValueError(f"width={width!r}: must be a positive multiple of the strike step {step}")
        if wing_distance < 0:
            raise ValueError(f"wing_distance={wing_distance!r}: must not be negative")
        s = self.spot(seconds)
        short_call = math.ceil((s + wing_distance) / step) * step
        short_put = math.floor((s - wing_distance) / step) * step
        if short_put - width <= 0:
            raise ValueError(f"wing_distance={wing_distance!r}, width={width!r}: put strikes would not be positive")
        return (
            self.symbol(expiry, Right.CALL, short_call),
            self.symbol(expiry, Right.CALL, short_call + width),
            self.symbol(expiry, Right.PUT, short_put),
            self.symbol(expiry, Right.PUT, short_put - width),
        )

    def iron_condor_legs(
        self,
        seconds: float,
        expiry: dt.date,
        width: int,
        wing_distance: float,
        position_effect: PositionEffect = PositionEffect.OPEN,
    ) -> tuple[Leg, Leg, Leg, Leg]:
        """A short iron condor's legs from :meth:`strikes_for_iron_condor` (sell, buy, sell, buy)."""
        sc, lc, sp, lp = self.strikes_for_iron_condor(seconds, expiry, width, wing_distance)
        return (
            Leg(sc, Side.SELL, 1, position_effect),
            Leg(lc, Side.BUY, 1, position_effect),
            Leg(sp, Side.SELL, 1, position_effect),
            Leg(lp, Side.BUY, 1, position_effect),
        )
