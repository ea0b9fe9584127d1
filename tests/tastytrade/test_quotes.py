"""TastytradeQuoteSource over real HTTP to the emulator's ``GET /market-data/by-type``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource, parse_market_item
from atomic_orders.fsm.errors import BrokerUnavailable, QuoteUnavailable, ValidationError
from atomic_orders.fsm.orders import Quote
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator import EmulatorDriver, Fault
from tests.roles import condor_roles

from .conftest import NO_RESTING_FILLS, PERFECT, Harness

ROUTE = "GET /market-data/by-type"


def _source(h: Harness, **kwargs: Any) -> TastytradeQuoteSource:
    return TastytradeQuoteSource(h.client, h.sim.clock, **kwargs)


def _wired(h: Harness, **kwargs: Any) -> TastytradeQuoteSource:
    source = _source(h, symbols=h.backend.open_symbols, **kwargs)
    h.backend.quote_source = source
    return source


def _symbols(h: Harness, n: int) -> list[OptionSymbol]:
    m = h.sim.market
    base = int(m.spot(h.now) // 5 * 5) - 5 * (n // 4)
    return [m.symbol(m.default_expiry, "CP"[i % 2], base + 5 * (i // 2)) for i in range(n)]


def test_150_symbols_cost_two_requests_and_match_the_market(harness: Harness) -> None:
    source = _source(harness)
    symbols = _symbols(harness, 150)
    source.prefetch(symbols)
    assert harness.emulator.request_count(ROUTE) == 2
    for symbol in symbols:
        quote = source(symbol)
        truth = harness.sim.quote(symbol)
        assert (quote.symbol, quote.bid, quote.ask, quote.time) == (symbol, truth.bid, truth.ask, truth.time)
    assert harness.emulator.request_count(ROUTE) == 2  # every quote of the tick came from the two answers
    harness.advance(1.0)  # the next tick asks again
    source(symbols[0])
    assert harness.emulator.request_count(ROUTE) == 3


def test_quote_calls_of_one_tick_cost_one_request_for_the_covered_symbols(harness: Harness) -> None:
    symbols = _symbols(harness, 12)
    source = _source(harness, symbols=lambda: symbols)
    for symbol in symbols:
        source(symbol)
    assert harness.emulator.request_count(ROUTE) == 1
    assert (source.fetches, source.requests) == (1, 1)


def test_one_request_per_tick_for_several_open_groups(make_harness: Callable[..., Harness]) -> None:
    """Three resting condors (12 legs) are repriced on the executor's timers: every tick that
    prices more than one group's legs costs one market-data request, whatever the number of legs."""
    h = make_harness(NO_RESTING_FILLS, seed=3)
    source = _wired(h)
    calls = [0]

    def counted(symbol: OptionSymbol) -> Quote:
        calls[0] += 1
        return source(symbol)

    h.backend.quote_source = counted
    ex = h.executor()
    groups = [ex.execute_iron_condor(**condor_roles(h.condor(width=w)), quantity=1) for w in (5, 10, 15)]
    ex.process_events()
    busy_ticks = 0
    for _ in range(40):
        h.advance(0.5)
        before_calls, before_requests = calls[0], h.emulator.request_count(ROUTE)
        ex.process_events()
        ex.on_timer()
        priced = calls[0] - before_calls
        requests_now = h.emulator.request_count(ROUTE) - before_requests
        if priced > 4:
            busy_ticks += 1
            assert requests_now == 1, (priced, requests_now)
        assert requests_now <= 1
    assert busy_ticks >= 3, busy_ticks
    assert all(g.state in ("executing", "rolled_back", "rolling_back") for g in groups)


_NOW = "2026-01-02T15:00:00.000+00:00"


@pytest.mark.parametrize(
    ("rewrite", "field", "reason"),
    [
        (lambda i: {**i, "updated-at": "2020-01-01T00:00:00.000+00:00"}, "updated-at", "stale"),
        (lambda i: {**i, "is-trading-halted": True}, "is-trading-halted", "halted"),
        (lambda i: {**i, "trading-halted": True}, "trading-halted", "halted"),
        (lambda i: {**i, "bid": "NaN"}, "bid", "not a finite number"),
        (lambda i: {**i, "ask": "Infinity"}, "ask", "not a finite number"),
        (lambda i: {k: v for k, v in i.items() if k != "ask"}, "ask", "absent"),
        (lambda i: {**i, "bid": None}, "bid", "absent"),
        (lambda i: {**i, "bid": "-0.05"}, "bid", "negative"),
        (lambda i: {**i, "bid": str(Decimal(i["ask"]) + 1)}, "bid", "crossed"),
        (lambda i: {**i, "bid": "one dollar"}, "bid", "not a decimal string"),
        (lambda i: {**i, "bid": "-0"}, "bid", "signed zero"),
        (lambda i: {**i, "bid": "0_1"}, "bid", "not a decimal string"),  # Decimal() reads it as 1
        (lambda i: {**i, "ask": " 9.00"}, "ask", "not a decimal string"),
        (lambda i: {**i, "ask": "\u0669.\u0660\u0660"}, "ask", "not a decimal string"),  # Arabic-Indic 9.00
        (lambda i: {**i, "updated-at": 1700000000000}, "updated-at", "not an ISO-8601 time"),
        (lambda i: None, "item", "missing from the market-data answer"),
        (lambda i: "garbage", "item", "missing from the market-data answer"),
        (lambda i: {**i, "symbol": 42}, "item", "missing from the market-data answer"),
    ],
)
def test_unusable_items_are_no_quote(harness: Harness, rewrite: Callable[[dict[str, Any]], Any], field: str,
                                     reason: str) -> None:
    good, bad = _symbols(harness, 2)
    harness.emulator.tamper_quotes(bad.occ.replace(" ", r"\s"), rewrite)
    source = _source(harness, symbols=lambda: [good, bad])
    with pytest.raises(QuoteUnavailable) as info:
        source(bad)
    assert (info.value.symbol, info.value.field) == (bad.occ, field)
    assert reason in info.value.reason
    assert source(good).bid == harness.sim.quote(good).bid  # one bad item never spoils the others
    with pytest.raises(QuoteUnavailable):
        source(bad)  # the refusal is kept for the tick: no second request
    assert harness.emulator.request_count(ROUTE) == 1


def test_two_different_items_for_one_symbol_are_no_quote(harness: Harness) -> None:
    good, bad, other = _symbols(harness, 3)
    # the answer for `other` names `bad`, with other's prices: two items for bad that disagree
    harness.emulator.tamper_quotes(other.occ.replace(" ", r"\s"), lambda i: {**i, "symbol": bad.occ})
    source = _source(harness, symbols=lambda: [good, bad, other])
    with pytest.raises(QuoteUnavailable, match="different items") as info:
        source(bad)  # before: the first item won, whichever it was
    assert (info.value.symbol, info.value.field) == (bad.occ, "item")
    assert source(good).bid == harness.sim.quote(good).bid
    harness.emulator.honest_quotes()
    harness.emulator.tamper_quotes(other.occ.replace(" ", r"\s"), lambda i: harness.emulator.market_data.item(bad.occ))
    harness.advance(1.0)
    assert source(bad).bid == harness.sim.quote(bad).bid  # the same item twice is one quote


def test_staleness_is_measured_on_the_backend_clock() -> None:
    symbol = OptionSymbol.parse_occ("SPXW  260116C05000000")
    item = {"symbol": symbol.occ, "bid": "1.10", "ask": "1.20", "updated-at": _NOW}
    now = dt.datetime.fromisoformat(_NOW)
    assert parse_market_item(item, symbol, now + dt.timedelta(seconds=4.9), 5.0).ask == Decimal("1.20")
    with pytest.raises(QuoteUnavailable, match="stale"):
        parse_market_item(item, symbol, now + dt.timedelta(seconds=5.1), 5.0)
    with pytest.raises(QuoteUnavailable, match="in the future"):
        parse_market_item(item, symbol, now - dt.timedelta(seconds=60), 5.0)
    with pytest.raises(ValidationError, match="max_quote_age"):
        TastytradeQuoteSource(None, None, max_quote_age=-1)  # type: ignore[arg-type]


def test_an_unreadable_answer_is_broker_unavailable_once_per_tick(harness: Harness) -> None:
    symbols = _symbols(harness, 3)
    source = _source(harness, symbols=lambda: symbols)
    harness.emulator.faults.script(Fault.GARBAGE, method="GET", path="market-data", count=10)
    for symbol in symbols:
        with pytest.raises(BrokerUnavailable):
            source(symbol)
    # one fetch, retried by the client (GETs are), never once per symbol
    assert source.requests == 1
    assert harness.emulator.request_count(ROUTE) == 1 + harness.config.max_retries
    harness.emulator.faults.clear()
    harness.advance(1.0)
    assert source(symbols[0]).bid == harness.sim.quote(symbols[0]).bid


def test_garbage_quotes_never_crash_the_executor_loop(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(NO_RESTING_FILLS, seed=3)
    _wired(h)
    ex = h.executor()
    group = ex.execute_iron_condor(**condor_roles(h.condor()), quantity=1)
    ex.process_events()
    h.emulator.tamper_quotes(".", lambda i: {**i, "bid": {"nested": ["x"] * 5}, "ask": "NaN"})
    for _ in range(20):
        h.advance(1.0)
        ex.process_events()
        ex.on_timer()
    # nothing was priced from garbage (the executor counts each refused pricing attempt)
    assert ex.stats.updates_sent == 0
    assert ex.stats.quote_misses + ex.stats.boundary_errors > 0
    assert ex.stats.invariant_violations == 0
    h.emulator.honest_quotes()
    h.settle(ex)
    assert group.state in ("committed", "rolled_back"), group.state


def test_the_client_refuses_more_than_100_symbols(harness: Harness) -> None:
    with pytest.raises(ValidationError, match="at most 100"):
        harness.client.market_data([s.occ for s in _symbols(harness, 101)])
    with pytest.raises(ValidationError, match="equity_options"):
        harness.client.market_data(["", "x"])
    assert harness.emulator.request_count(ROUTE) == 0


def test_the_emulator_driver_prices_over_http() -> None:
    """The emulator-backed session's driver wires the HTTP quote source (not the in-process one)."""
    with EmulatorDriver(BrokerSimulator(3, PERFECT)) as driver:
        assert driver.quotes is not None and driver.backend.quote_source is driver.quotes
        m = driver.broker.market
        symbol = m.symbol(m.default_expiry, "C", int(m.spot(0.0) // 5 * 5))
        assert driver.backend.quote(symbol).ask == driver.broker.quote(symbol).ask
        assert driver.emulator.request_count(ROUTE) == 1
