"""``GET /market-data/by-type`` and ``GET /market-data/equity-option/{symbol}`` from the simulated market.

Shape (reference 5.1; field names also as the tastyware SDK's ``MarketData`` reads them): one
item per symbol with ``symbol``, ``instrument-type`` (``Equity Option``), ``updated-at``
(ISO-8601, the time the simulated market last moved: the start of its walk step), ``bid``,
``bid-size``, ``ask``, ``ask-size``, ``mid``, ``mark``, ``last``, ``open``, ``day-high-price``,
``day-low-price``, ``prev-close``, ``volume``, ``open-interest`` as decimal strings,
``halt-start-time`` / ``halt-end-time`` (ints, -1 when none), ``is-trading-halted`` (bool),
``summary-date``, ``prev-close-date``, ``close-price-type``, ``prev-close-price-type``.

What the emulator makes up (the simulator models a top of book, nothing else): sizes are a
constant 10 contracts; ``last`` and ``mark`` are the mid; ``open`` and ``prev-close`` are the mid
at the session's open; the day's high and low are the larger and smaller of the open and the
current mid; ``volume`` and ``open-interest`` are 0.

Refusals (400 in the API's error envelope, ``validation_error``): more than 100 symbols in one
request (reference 5.1: at most 100 across all types), a symbol that is not OCC text, an option
of another underlying than the simulated market's, and any instrument key but ``equity-option``
(the emulator has no equities, indices or futures). No symbol at all answers no items.

Scenario knob: :meth:`MarketDataDesk.tamper` rewrites matching items as given (``None`` leaves the
item out of the answer): stale, halted, NaN, crossed or absent quotes a calm market never shows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from atomic_orders.backends.tastytrade.payloads import format_price
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.state import EmulatorError

__all__ = ["MAX_SYMBOLS", "MarketDataDesk"]

#: Symbols one request may name, across all instrument keys (reference 5.1).
MAX_SYMBOLS = 100
#: Query keys the real endpoint takes (reference 5.1); only ``equity-option`` is emulated.
INSTRUMENT_KEYS = ("equity-option", "equity", "index", "future", "future-option", "cryptocurrency")
_SIZE = "10.0"


def _bad(domain: str, reason: str) -> EmulatorError:
    return EmulatorError(400, "validation_error", f"{domain} {reason}", [{"domain": domain, "reason": reason}])


class MarketDataDesk:
    """Quote items for the emulator's market-data routes (called under the emulator's lock)."""

    def __init__(self, simulator: BrokerSimulator) -> None:
        self.sim = simulator
        self._tamper: list[tuple[re.Pattern[str], Callable[[dict[str, Any]], Any]]] = []

    def tamper(self, pattern: str, rewrite: Callable[[dict[str, Any]], Any]) -> None:
        """Items whose symbol matches ``pattern`` (``re.search``) are answered as ``rewrite(item)``
        (any JSON; ``None`` leaves the item out). The first matching rewrite applies."""
        self._tamper.append((re.compile(pattern), rewrite))

    def stop_tampering(self) -> None:
        """Every item is the market's again."""
        self._tamper.clear()

    def by_type(self, query: Mapping[str, Sequence[str]]) -> dict[str, Any]:
        """``GET /market-data/by-type``: ``{"items": [...]}`` in the order the symbols were named.

        ``equity-option`` may be repeated (``equity-option=A&equity-option=B``, as the SDK sends)
        or hold comma-separated symbols (as the docs describe); both are read.
        """
        symbols: list[str] = []
        for key, values in query.items():
            if key not in INSTRUMENT_KEYS:
                continue
            for value in values:
                parts = [p for p in value.split(",") if p.strip()] if "," in value else [value]
                if key != "equity-option" and parts:
                    raise _bad(key, "is not served by the emulator (only equity-option)")
                symbols.extend(parts)
        if len(symbols) > MAX_SYMBOLS:
            raise _bad("symbols", f"at most {MAX_SYMBOLS} symbols per request, got {len(symbols)}")
        items: list[Any] = []
        for occ in symbols:
            item = self._answer(occ)
            if item is not None:
                items.append(item)
        return {"items": items}

    def one(self, occ: str) -> Any:
        """``GET /market-data/equity-option/{symbol}``: the item itself (404 when tampered away)."""
        item = self._answer(occ)
        if item is None:
            raise EmulatorError(404, "record_not_found", "no market data for the symbol")
        return item

    def _answer(self, occ: str) -> Any:
        item: Any = self.item(occ)
        for pattern, rewrite in self._tamper:
            if pattern.search(occ):
                item = rewrite(item)
                break
        return item

    def item(self, occ: str) -> dict[str, Any]:
        """The market's item for one OCC symbol (400 for text that is not one of its options)."""
        try:
            symbol = OptionSymbol.parse_occ(occ)
        except ValidationError as err:
            raise _bad("equity-option", f"{occ[:40]!r}: {err.reason}") from None
        market = self.sim.market
        if symbol.underlying != market.underlying:
            raise _bad("equity-option", f"{symbol.occ!r}: unknown symbol (not an option of {market.underlying})")
        q = self.sim.quote(symbol)
        first = market.quote(symbol, 0.0)
        mid = (q.bid + q.ask) / 2
        open_mid = (first.bid + first.ask) / 2
        today = q.time.date()

        def price(value: Decimal) -> str:
            return format_price(value.quantize(Decimal("0.0001")).normalize())

        return {
            "symbol": symbol.occ,
            "instrument-type": "Equity Option",
            "updated-at": q.time.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
            "bid": format_price(q.bid), "bid-size": _SIZE,
            "ask": format_price(q.ask), "ask-size": _SIZE,
            "mid": price(mid), "mark": price(mid), "last": price(mid),
            "open": price(open_mid), "day-high-price": price(max(mid, open_mid)),
            "day-low-price": price(min(mid, open_mid)), "prev-close": price(open_mid),
            "volume": "0.0", "open-interest": "0.0",
            "halt-start-time": -1, "halt-end-time": -1, "is-trading-halted": False,
            "summary-date": today.isoformat(), "prev-close-date": (today - dt.timedelta(days=1)).isoformat(),
            "close-price-type": "Unknown", "prev-close-price-type": "Final",
        }
