"""The emulator's account answers hold the fields the real API sends, with the real JSON types.

The field lists below are the recorded ones (reference ``tastytrade-api.md`` section 4.2 for
accounts, positions and balances; 3.3 for the submit blocks; 3 for the order's
``global-request-id``; 1.3 for ``/sessions/validate``; the tastyware SDK's ``Customer`` model for
``/customers/me``). Each endpoint is read over real HTTP from a running emulator; a field that
goes missing or changes type fails here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
import requests

from atomic_orders.backends.tastytrade.payloads import build_order_payload
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.symbol import OptionSymbol

from .conftest import Harness


def _decimal(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _iso(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


Check = Callable[[Any], bool]
DECIMAL: Check = _decimal  # a decimal string ("100", "0.0")
ISO: Check = _iso  # an ISO-8601 timestamp with an offset
DATE: Check = _date  # YYYY-MM-DD
STR: Check = lambda v: isinstance(v, str)  # noqa: E731
BOOL: Check = lambda v: isinstance(v, bool)  # noqa: E731
INT: Check = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
EFFECT: Check = lambda v: v in ("Credit", "Debit", "None")  # noqa: E731
HEX32: Check = lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{32}", v) is not None  # noqa: E731
OBJECT: Check = lambda v: isinstance(v, dict)  # noqa: E731
LIST: Check = lambda v: isinstance(v, list)  # noqa: E731

#: Reference 4.2: ``GET /customers/me/accounts`` items' ``account`` (and ``/customers/me/accounts/{n}``).
ACCOUNT_FIELDS: dict[str, Check] = {
    "account-number": STR, "nickname": STR, "account-type-name": STR, "margin-or-cash": STR,
    "is-closed": BOOL, "opened-at": ISO, "created-at": ISO, "day-trader-status": BOOL,
    "is-firm-error": BOOL, "is-firm-proprietary": BOOL, "is-futures-approved": BOOL, "is-foreign": BOOL,
}
#: Reference 4.2: ``authority-level`` beside ``account``.
ACCOUNT_ITEM_FIELDS: dict[str, Check] = {"account": OBJECT, "authority-level": STR}

#: Reference 4.2 (LEAN ``Get_Positions.json``): ``GET /accounts/{n}/positions`` rows.
POSITION_FIELDS: dict[str, Check] = {
    "symbol": STR, "instrument-type": STR, "underlying-symbol": STR, "quantity": DECIMAL,
    "quantity-direction": lambda v: v in ("Long", "Short", "Zero"), "multiplier": INT,
    "close-price": DECIMAL, "average-open-price": DECIMAL, "average-yearly-market-close-price": DECIMAL,
    "average-daily-market-close-price": DECIMAL, "realized-day-gain": DECIMAL, "realized-day-gain-effect": EFFECT,
    "realized-today": DECIMAL, "realized-today-effect": EFFECT, "cost-effect": EFFECT, "is-suppressed": BOOL,
    "is-frozen": BOOL, "expires-at": ISO, "created-at": ISO, "updated-at": ISO,
}

#: Reference 4.2 (LEAN ``Get_Account_Balance.json``): ``GET /accounts/{n}/balances`` decimal-string fields.
BALANCE_DECIMALS = (
    "available-trading-funds", "bond-margin-requirement", "cash-available-to-withdraw", "cash-balance",
    "cash-settle-balance", "closed-loop-available-balance", "cryptocurrency-margin-requirement",
    "day-equity-call-value", "day-trade-excess", "day-trading-buying-power", "day-trading-call-value",
    "derivative-buying-power", "equity-buying-power", "equity-offering-margin-requirement",
    "fixed-income-security-margin-requirement", "futures-margin-requirement", "long-bond-value",
    "long-cryptocurrency-value", "long-derivative-value", "long-equity-value",
    "long-fixed-income-security-value", "long-futures-derivative-value", "long-futures-value",
    "long-margineable-value", "maintenance-call-value", "maintenance-requirement", "margin-equity",
    "margin-settle-balance", "net-liquidating-value", "pending-cash", "reg-t-call-value",
    "short-cryptocurrency-value", "short-derivative-value", "short-equity-value",
    "short-futures-derivative-value", "short-futures-value", "short-margineable-value",
    "sma-equity-option-buying-power", "special-memorandum-account-apex-adjustment",
    "special-memorandum-account-value", "total-settle-balance", "unsettled-cryptocurrency-fiat-amount",
    "used-derivative-buying-power", "reg-t-margin-requirement", "futures-overnight-margin-requirement",
    "futures-intraday-margin-requirement", "maintenance-excess", "pending-margin-interest",
    "buying-power-adjustment", "effective-cryptocurrency-buying-power", "total-pending-liquidity-pool-rebate",
)
BALANCE_FIELDS: dict[str, Check] = {
    **dict.fromkeys(BALANCE_DECIMALS, DECIMAL), "account-number": STR, "currency": STR,
    "pending-cash-effect": EFFECT, "unsettled-cryptocurrency-fiat-effect": EFFECT,
    "buying-power-adjustment-effect": EFFECT, "snapshot-date": DATE, "updated-at": ISO,
}

#: Reference 3.3 (LEAN ``Post_Submit_Order_Response.json``): ``buying-power-effect``.
BUYING_POWER_FIELDS: dict[str, Check] = {
    **{f: DECIMAL for f in ("change-in-margin-requirement", "change-in-buying-power", "current-buying-power",
                            "new-buying-power", "isolated-order-margin-requirement", "impact")},
    **{f"{f}-effect": EFFECT for f in ("change-in-margin-requirement", "change-in-buying-power",
                                       "current-buying-power", "new-buying-power",
                                       "isolated-order-margin-requirement")},
    "is-spread": BOOL, "effect": EFFECT,
}
_FEES = ("regulatory-fees", "clearing-fees", "commission", "proprietary-index-option-fees", "total-fees", "rebates")
#: Reference 3.3: ``fee-calculation`` (each amount with its ``-effect``, the ``*-breakdown`` lists, ``per-quantity``).
FEE_FIELDS: dict[str, Check] = {
    **dict.fromkeys(_FEES, DECIMAL), **{f"{f}-effect": EFFECT for f in _FEES},
    **dict.fromkeys(("regulatory-fees-breakdown", "clearing-fees-breakdown", "commission-breakdown",
                     "proprietary-fees-breakdown", "rebates-breakdown"), LIST),
    "per-quantity": BOOL,
}
#: Reference 3.3: one ``*-breakdown`` entry.
BREAKDOWN_FIELDS: dict[str, Check] = {"name": STR, "value": DECIMAL, "effect": EFFECT}
#: Reference 2 / 3.3: the submit answer's ``data``; reference 3: the order's server ids.
SUBMIT_FIELDS: dict[str, Check] = {"order": OBJECT, "buying-power-effect": OBJECT, "fee-calculation": OBJECT,
                                   "warnings": LIST}
ORDER_ID_FIELDS: dict[str, Check] = {"global-request-id": HEX32, "updated-at": INT}

#: tastyware SDK ``Customer`` model (the fields it requires; the reference names only the route, 1.3).
CUSTOMER_FIELDS: dict[str, Check] = {
    "id": STR, "first-name": STR, "last-name": STR, "address": OBJECT, "mailing-address": OBJECT,
    "is-foreign": BOOL, "usa-citizenship-type": STR, "mobile-phone-number": STR, "birth-date": DATE,
    "email": STR, "tax-number-type": STR, "subject-to-tax-withholding": BOOL, "has-industry-affiliation": BOOL,
    "has-listed-affiliation": BOOL, "has-political-affiliation": BOOL, "has-delayed-quotes": BOOL,
    "has-pending-or-approved-application": BOOL, "is-professional": BOOL, "permitted-account-types": LIST,
    "created-at": ISO,
}
#: tastyware SDK ``Address`` model.
ADDRESS_FIELDS: dict[str, Check] = {"city": STR, "country": STR, "is-domestic": BOOL, "is-foreign": BOOL,
                                    "postal-code": STR, "state-region": STR, "street-one": STR}


def problems(record: Any, fields: Mapping[str, Check], where: str) -> list[str]:
    """Every required field missing from ``record`` or of the wrong JSON type, named."""
    if not isinstance(record, dict):
        return [f"{where}: not an object: {record!r:.80}"]
    out = []
    for name, check in fields.items():
        if name not in record:
            out.append(f"{where}.{name}: missing")
        elif not check(record[name]):
            out.append(f"{where}.{name}: wrong type or value {record[name]!r:.80}")
    return out


def _get(h: Harness, path: str, method: str = "GET", body: Any = None) -> requests.Response:
    headers = {"User-Agent": "fidelity/1.0", "Authorization": h.client.tokens.authorization()}
    return requests.request(method, h.emulator.url + path, headers=headers, json=body, timeout=5)


def _data(h: Harness, path: str, method: str = "GET", body: Any = None) -> Any:
    r = _get(h, path, method, body)
    assert 200 <= r.status_code < 300, (path, r.status_code, r.text[:300])
    envelope = r.json()
    assert set(envelope) >= {"data", "context"}, envelope
    return envelope["data"]


def _open_position(h: Harness) -> None:
    """Buy a one-leg option at a marketable price so the simulator holds a position."""
    m = h.sim.market
    symbol = m.symbol(m.default_expiry, "C", int(m.spot(h.now) // 5 * 5))
    ask = h.sim.quote(symbol).ask
    request = OrderRequest(order_ref="fid-1", group_id="fid", purpose=Purpose.ENTRY, legs=(Leg(symbol, Side.BUY),),
                           quantity=2, order_type=OrderType.LIMIT, limit_price=ask + Decimal("0.50"),
                           time_in_force=TimeInForce.DAY)
    h.client.place_order(build_order_payload(request))
    for _ in range(60):
        h.advance(1.0)
        if h.sim.positions():
            return
    pytest.fail("the marketable order never filled")


def test_accounts_and_account_by_number(harness: Harness) -> None:
    number = harness.emulator.account_number
    items = _data(harness, "/customers/me/accounts")["items"]
    assert len(items) == 1
    found = problems(items[0], ACCOUNT_ITEM_FIELDS, "items[0]")
    found += problems(items[0]["account"], ACCOUNT_FIELDS, "items[0].account")
    for path in (f"/accounts/{number}", f"/customers/me/accounts/{number}"):
        found += problems(_data(harness, path), ACCOUNT_FIELDS, path)
        other = _get(harness, path.replace(number, "5WX99999"))
        assert other.status_code == 404 and other.json()["error"]["code"] == "record_not_found"
    assert found == []


def test_customer_and_session_validation(harness: Harness) -> None:
    customer = _data(harness, "/customers/me")
    found = problems(customer, CUSTOMER_FIELDS, "customer")
    found += problems(customer["address"], ADDRESS_FIELDS, "customer.address")
    found += problems(customer["mailing-address"], ADDRESS_FIELDS, "customer.mailing-address")
    assert found == []
    assert _get(harness, "/sessions/validate", "POST").status_code // 100 == 2
    bad = requests.post(harness.emulator.url + "/sessions/validate",
                        headers={"User-Agent": "fidelity/1.0", "Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"


def test_positions_rows_carry_every_field(harness: Harness) -> None:
    number = harness.emulator.account_number
    _open_position(harness)
    rows = _data(harness, f"/accounts/{number}/positions")["items"]
    assert rows, "a filled order leaves a position"
    found = [p for i, row in enumerate(rows) for p in problems(row, POSITION_FIELDS, f"positions[{i}]")]
    assert found == []
    row = rows[0]
    assert row["quantity"] == "2" and row["quantity-direction"] == "Long"
    assert Decimal(row["average-open-price"]) > 0  # from the fill, not a placeholder
    # the client reads the decimal strings back into signed contracts
    assert sum(harness.backend.positions().values()) == 2


def test_balances_carry_every_field(harness: Harness) -> None:
    number = harness.emulator.account_number
    for path in (f"/accounts/{number}/balances", f"/accounts/{number}/balances/USD"):
        assert problems(_data(harness, path), BALANCE_FIELDS, path) == []


def test_submit_and_dry_run_answers_carry_the_blocks(harness: Harness) -> None:
    number = harness.emulator.account_number
    payload = build_order_payload(harness.resting_request("fid-2"))
    found: list[str] = []
    for path in (f"/accounts/{number}/orders/dry-run", f"/accounts/{number}/orders"):
        data = _data(harness, path, "POST", payload)
        found += problems(data, SUBMIT_FIELDS, path)
        found += problems(data["order"], ORDER_ID_FIELDS, f"{path}.order")
        found += problems(data["buying-power-effect"], BUYING_POWER_FIELDS, f"{path}.buying-power-effect")
        fees = data["fee-calculation"]
        found += problems(fees, FEE_FIELDS, f"{path}.fee-calculation")
        for key in (k for k in FEE_FIELDS if k.endswith("-breakdown")):
            entries = fees.get(key) or []
            assert entries, f"{path}.fee-calculation.{key} is empty"
            found += [p for i, e in enumerate(entries) for p in problems(e, BREAKDOWN_FIELDS, f"{key}[{i}]")]
    assert found == []


def test_the_checker_names_a_missing_or_mistyped_field() -> None:
    """The check itself can fail: a row without ``quantity`` or with an int ``quantity`` is named."""
    row = {"symbol": "x"}
    assert "positions[0].quantity: missing" in problems(row, POSITION_FIELDS, "positions[0]")
    assert any(p.startswith("r.quantity: wrong type") for p in problems({"quantity": 2}, POSITION_FIELDS, "r"))
    assert problems({"cash-balance": "abc"}, {"cash-balance": DECIMAL}, "b") == ["b.cash-balance: wrong type or "
                                                                                 "value 'abc'"]


#: Reference 5.1 (developer.tastytrade.com market-data guide; tastyware SDK ``MarketData``):
#: ``GET /market-data/by-type`` items, numbers as decimal strings.
MARKET_DATA_FIELDS: dict[str, Check] = {
    **dict.fromkeys(("bid", "bid-size", "ask", "ask-size", "mid", "mark", "last", "open", "day-high-price",
                     "day-low-price", "prev-close", "volume", "open-interest"), DECIMAL),
    "symbol": STR, "instrument-type": lambda v: v == "Equity Option", "updated-at": ISO,
    "halt-start-time": INT, "halt-end-time": INT, "is-trading-halted": BOOL,
    "summary-date": DATE, "prev-close-date": DATE, "close-price-type": STR, "prev-close-price-type": STR,
}


def _option_symbols(h: Harness, n: int) -> list[str]:
    m = h.sim.market
    base = int(m.spot(h.now) // 5 * 5) - 5 * (n // 4)
    return [m.symbol(m.default_expiry, "CP"[i % 2], base + 5 * (i // 2)).occ for i in range(n)]


def test_market_data_items_carry_every_field(harness: Harness) -> None:
    symbols = _option_symbols(harness, 3)
    query = "&".join(f"equity-option={requests.utils.quote(s)}" for s in symbols)
    data = _data(harness, f"/market-data/by-type?{query}")
    assert [item["symbol"] for item in data["items"]] == symbols
    found = [p for i, item in enumerate(data["items"]) for p in problems(item, MARKET_DATA_FIELDS, f"items[{i}]")]
    one = _data(harness, f"/market-data/equity-option/{requests.utils.quote(symbols[0])}")
    found += problems(one, MARKET_DATA_FIELDS, "equity-option/{symbol}")
    assert found == []
    # the quote is the simulated market's now
    q = harness.sim.quote(OptionSymbol.parse_occ(symbols[0]))
    item = data["items"][0]
    assert (Decimal(item["bid"]), Decimal(item["ask"])) == (q.bid, q.ask)
    assert dt.datetime.fromisoformat(item["updated-at"]) == q.time


def test_market_data_refusals_are_400_in_the_error_envelope(harness: Harness) -> None:
    too_many = "&".join(f"equity-option={requests.utils.quote(s)}" for s in _option_symbols(harness, 101))
    for query, needle in ((too_many, "at most 100"), ("equity-option=NOT-A-SYMBOL", "equity-option"),
                          (f"equity-option={requests.utils.quote('XYZ   260116C00100000')}", "unknown symbol")):
        r = _get(harness, f"/market-data/by-type?{query}")
        assert r.status_code == 400, (query[:40], r.status_code)
        error = r.json()["error"]
        assert error["code"] == "validation_error" and needle in error["message"], error
    # auth required
    r = requests.get(harness.emulator.url + "/market-data/by-type?equity-option=x",
                     headers={"User-Agent": "fidelity/1.0"}, timeout=5)
    assert r.status_code == 401
