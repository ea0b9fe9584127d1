"""TastytradeQuoteSource: top of book from ``GET /market-data/by-type``, one request per pricing tick.

The REST API serves quotes (reference 5.1; tastyware SDK ``market_data.py``
``get_market_data_by_type``): ``equity-option`` repeated per OCC symbol, at most 100 symbols per
request, answering ``data.items[]`` with ``bid``, ``ask``, ``updated-at``, halt fields ... as
decimal strings. Real-time only, funded accounts only, not a sandbox feature.

Batching. The executor asks :meth:`TastytradeBackend.quote` one leg at a time; the port stays
``quote(symbol) -> Quote``. The source answers from a per-tick cache: on the first miss of a tick
it fetches every symbol it is told to cover (``symbols()``: the open legs of the backend's
tracked orders, :meth:`TastytradeBackend.open_symbols`) plus the one asked, in batches of 100,
and keeps the answer for ``tick`` seconds of the backend clock. So N legs priced in one tick cost
``ceil(N/100)`` requests, not N. A symbol outside that set (a new group's legs, not sent yet)
costs one request at its first tick; a caller that knows them ahead calls :meth:`prefetch`.
Misses are cached too (a refused item, a symbol missing from the answer, a failed request): a
tick never asks twice for the same symbol.

Every item is read at the boundary (:func:`parse_market_item`); refused, as
:class:`~atomic_orders.fsm.errors.QuoteUnavailable` naming the symbol, field and reason: a bid or
ask absent, null, not a decimal string, not finite (``"NaN"``, ``"Infinity"``), negative,
crossed or off the core's bounds (:func:`~atomic_orders.fsm.orders.quote_problem`); an
``updated-at`` missing, unreadable, in the future by more than ``max_quote_age`` or older than
``max_quote_age`` seconds on the backend clock (stale); a halted instrument (``is-trading-halted``
as the reference names it, or ``trading-halted`` as the SDK reads it, true); a symbol missing
from the answer, or answered by two different items; a bid or ask string that is not plain ASCII
decimal text (``Decimal`` alone would read ``"1_000"`` as 1000), or a signed zero. A request
that fails (transport, 5xx, 429 after the client's retries, an unreadable answer) is
``BrokerUnavailable``: no quote now, the executor retries on its timers.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from atomic_orders.backends.tastytrade.client import MAX_MARKET_DATA_SYMBOLS, TastytradeApiClient
from atomic_orders.backends.tastytrade.errors import TastytradeError
from atomic_orders.backends.tastytrade.parsing import DECIMAL_TEXT
from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.errors import BrokerUnavailable, QuoteUnavailable, ValidationError
from atomic_orders.fsm.orders import Quote, quote_problem
from atomic_orders.fsm.symbol import OptionSymbol

__all__ = ["DEFAULT_MAX_QUOTE_AGE", "DEFAULT_TICK", "TastytradeQuoteSource", "parse_market_item"]

log = logging.getLogger("atomic_orders.tastytrade.quotes")

#: Quotes older than this (seconds, backend clock) are stale.
DEFAULT_MAX_QUOTE_AGE = 5.0
#: One fetch serves this many seconds (backend clock): the executor prices every open group
#: within one pass of its loop, well inside it.
DEFAULT_TICK = 0.5
_MAX_TEXT = 64
#: Spelled as such, these are read (and refused as not finite by ``quote_problem``, naming them).
_NON_FINITE = frozenset({"nan", "snan", "inf", "infinity"})


def _price(item: dict[str, Any], field: str, occ: str) -> Decimal:
    raw = item.get(field)
    if raw is None:
        raise QuoteUnavailable(occ, field, raw, "absent (no quote on this side)")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or (isinstance(raw, str) and len(raw) > _MAX_TEXT):
        raise QuoteUnavailable(occ, field, str(raw)[:_MAX_TEXT], "not a decimal string")
    # Decimal() alone also reads " 1.00", "1_000" (as 1000) and non-ASCII digits: not the API's strings
    if isinstance(raw, str) and not (DECIMAL_TEXT.fullmatch(raw) or raw.strip("+-").lower() in _NON_FINITE):
        raise QuoteUnavailable(occ, field, raw, "not a decimal string")
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        raise QuoteUnavailable(occ, field, raw, "not a decimal string") from None
    if value.is_zero() and value.is_signed():
        raise QuoteUnavailable(occ, field, raw, "is negative (a signed zero)")
    return value


def _updated_at(item: dict[str, Any], occ: str) -> dt.datetime:
    raw = item.get("updated-at")
    if not isinstance(raw, str) or len(raw) > _MAX_TEXT:
        raise QuoteUnavailable(occ, "updated-at", str(raw)[:_MAX_TEXT], "not an ISO-8601 time")
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise QuoteUnavailable(occ, "updated-at", raw, "not an ISO-8601 time") from None
    if when.tzinfo is None:
        raise QuoteUnavailable(occ, "updated-at", raw, "has no UTC offset")
    return when


def parse_market_item(item: object, symbol: OptionSymbol, now: dt.datetime, max_age: float) -> Quote:
    """One ``data.items[]`` entry as a usable :class:`Quote` of ``symbol`` at ``now``.

    Raises :class:`QuoteUnavailable` (symbol, field, value, reason) for anything unusable: see
    the module docstring. ``max_age`` is in seconds.
    """
    occ = symbol.occ
    if not isinstance(item, dict):
        raise QuoteUnavailable(occ, "item", type(item).__name__, "not an object")
    for flag in ("is-trading-halted", "trading-halted"):
        if item.get(flag) is True:
            raise QuoteUnavailable(occ, flag, True, "trading is halted")
    bid = _price(item, "bid", occ)
    ask = _price(item, "ask", occ)
    problem = quote_problem(bid, ask)
    if problem is not None:
        raise QuoteUnavailable(occ, *problem)
    when = _updated_at(item, occ)
    age = (now - when).total_seconds()
    if age > max_age:
        raise QuoteUnavailable(occ, "updated-at", item.get("updated-at"), f"stale: {age:.1f} s old, more than "
                               f"max_quote_age={max_age} s")
    if age < -max_age:
        raise QuoteUnavailable(occ, "updated-at", item.get("updated-at"), f"{-age:.1f} s in the future")
    return Quote(symbol=symbol, bid=bid, ask=ask, time=when)


class TastytradeQuoteSource:
    """A :data:`~.backend.QuoteSource` over ``GET /market-data/by-type`` (see the module docstring).

    ``symbols``: what to cover on every fetch (e.g. ``backend.open_symbols``); ``tick``: how long
    (seconds of ``clock``) one fetch serves, 0 = the same instant only; ``max_quote_age``: seconds.
    """

    def __init__(
        self,
        client: TastytradeApiClient,
        clock: Clock,
        *,
        symbols: Callable[[], Iterable[OptionSymbol]] | None = None,
        max_quote_age: float = DEFAULT_MAX_QUOTE_AGE,
        tick: float = DEFAULT_TICK,
    ) -> None:
        for name, value in (("max_quote_age", max_quote_age), ("tick", tick)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 86400:
                raise ValidationError(name, value, "must be a number of seconds in [0, 86400)")
        self.client = client
        self.clock = clock
        self.symbols = symbols
        self.max_quote_age = float(max_quote_age)
        self.tick = float(tick)
        self._at: dt.datetime | None = None
        #: This tick's answers: an item (any JSON) per OCC symbol, or an exception (a failed request).
        self._items: dict[str, object] = {}
        #: Requests sent (each batch counts).
        self.requests = 0
        #: Fetches (one per tick with a miss; a fetch may be several requests).
        self.fetches = 0

    def __repr__(self) -> str:
        return f"TastytradeQuoteSource(max_quote_age={self.max_quote_age}, tick={self.tick})"

    def __call__(self, symbol: OptionSymbol) -> Quote:
        """The quote of ``symbol`` now; raises ``QuoteUnavailable`` or ``BrokerUnavailable``."""
        now = self.clock.now()
        self._roll(now)
        occ = symbol.occ
        if occ not in self._items:
            wanted = {occ}
            if self.symbols is not None:
                try:
                    wanted.update(s.occ for s in self.symbols())
                except Exception as err:  # the cover list is an optimisation: without it, ask for this one
                    log.warning("quote symbols provider raised %s: %s", type(err).__name__, err)
            self._fetch(sorted(wanted - set(self._items)))
        item = self._items.get(occ, _MISSING)
        if isinstance(item, BaseException):
            raise BrokerUnavailable(f"quote of {occ}: {item}"[:500])
        if item is _MISSING:
            raise QuoteUnavailable(occ, "item", None, "the symbol is missing from the market-data answer")
        if item is _CONFLICT:
            raise QuoteUnavailable(occ, "item", None, "the market-data answer holds different items for the symbol")
        return parse_market_item(item, symbol, now, self.max_quote_age)

    def prefetch(self, symbols: Iterable[OptionSymbol]) -> None:
        """Fetch the quotes of ``symbols`` not yet held this tick (batched); failures are kept, not raised."""
        now = self.clock.now()
        self._roll(now)
        self._fetch(sorted({s.occ for s in symbols} - set(self._items)))

    def _roll(self, now: dt.datetime) -> None:
        at = self._at
        if at is None or now < at or (now - at).total_seconds() > self.tick:
            self._at = now
            self._items = {}

    def _fetch(self, occs: list[str]) -> None:
        if not occs:
            return
        self.fetches += 1
        for start in range(0, len(occs), MAX_MARKET_DATA_SYMBOLS):
            batch = occs[start:start + MAX_MARKET_DATA_SYMBOLS]
            self.requests += 1
            try:
                items = self.client.market_data(batch)
            except TastytradeError as err:
                for occ in batch:
                    self._items[occ] = err
                continue
            except Exception as err:  # outside the client's contract: no quotes for this batch now
                log.error("market data request raised %s: %s", type(err).__name__, err, exc_info=err)
                failure = BrokerUnavailable(f"market data request raised {type(err).__name__}")
                for occ in batch:
                    self._items[occ] = failure
                continue
            asked = set(batch)
            got: dict[str, object] = {}
            for item in items:
                key = _occ(item.get("symbol"))
                if key is None or key not in asked:
                    continue
                held = got.setdefault(key, item)
                if held is not item and held != item:
                    got[key] = _CONFLICT  # which one is the market? neither: no quote this tick
            self._items.update(got)
            for occ in batch:
                self._items.setdefault(occ, _MISSING)


_MISSING: Any = object()
#: Two different items for one symbol in one answer.
_CONFLICT: Any = object()


def _occ(raw: object) -> str | None:
    """An answer's ``symbol`` as our OCC text (any spacing the API uses), or None when unreadable."""
    if not isinstance(raw, str) or len(raw) > _MAX_TEXT:
        return None
    try:
        return OptionSymbol.parse_occ(raw).occ
    except Exception:  # not an option symbol: nobody asked for it
        return None
