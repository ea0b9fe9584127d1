"""The emulated customer, account and balances: the objects of reference 4.2 with fixed values.

Field names and JSON types are those of the recorded answers the reference cites (QuantConnect
LEAN ``TestData/Get_Account_Balance.json``; the tastyware SDK's ``Account``, ``Customer`` models):
decimal strings for money, ISO-8601 timestamps, kebab-case keys. The values are constants: the
simulator keeps no cash, so buying power is the constant the submit answers report, and the
balances do not move with fills (a documented simplification, see the package docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["BUYING_POWER", "account_record", "balances_record", "customer_record", "validated_session"]

#: Buying power every answer reports (the submit answers' ``current-buying-power`` too), dollars.
BUYING_POWER = "100000.0"

_OPENED = "2024-01-02T14:30:00.000+00:00"
_CUSTOMER_ID = "me"
_EMAIL = "emulator@example.invalid"

# Decimal-string balance fields, in the order of the recorded answer (LEAN Get_Account_Balance.json).
_BALANCE_FIELDS = (
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
# The cash-like fields that hold the account's money (the rest are 0.0).
_FUNDED = frozenset({
    "available-trading-funds", "cash-available-to-withdraw", "cash-balance", "cash-settle-balance",
    "closed-loop-available-balance", "day-trading-buying-power", "derivative-buying-power",
    "equity-buying-power", "margin-equity", "margin-settle-balance", "net-liquidating-value",
    "sma-equity-option-buying-power", "special-memorandum-account-value", "total-settle-balance",
    "maintenance-excess",
})


def account_record(account_number: str) -> dict[str, Any]:
    """The ``account`` object of ``GET /customers/me/accounts`` items and ``GET /customers/me/accounts/{n}``."""
    return {
        "account-number": account_number,
        "external-id": f"A{account_number}",
        "opened-at": _OPENED,
        "nickname": "emulator",
        "account-type-name": "Individual",
        "day-trader-status": False,
        "is-closed": False,
        "is-firm-error": False,
        "is-firm-proprietary": False,
        "is-futures-approved": False,
        "is-test-drive": False,
        "margin-or-cash": "Margin",
        "is-foreign": False,
        "investment-objective": "SPECULATION",
        "suitable-options-level": "No Restrictions",
        "created-at": _OPENED,
    }


def customer_record() -> dict[str, Any]:
    """``GET /customers/me``: every field the tastyware SDK's ``Customer`` model requires."""
    address = {"city": "Chicago", "country": "USA", "is-domestic": True, "is-foreign": False,
               "postal-code": "60604", "state-region": "IL", "street-one": "1 Emulator Way"}
    return {
        "id": _CUSTOMER_ID,
        "first-name": "Emu",
        "last-name": "Lator",
        "address": address,
        "mailing-address": dict(address),
        "is-foreign": False,
        "usa-citizenship-type": "Citizen",
        "mobile-phone-number": "+1 555 0100",
        "birth-date": "1970-01-01",
        "email": _EMAIL,
        "external-id": "U0000000001",
        "tax-number-type": "SSN",
        "subject-to-tax-withholding": False,
        "agreed-to-margining": True,
        "agreed-to-terms": True,
        "has-industry-affiliation": False,
        "has-listed-affiliation": False,
        "has-political-affiliation": False,
        "has-delayed-quotes": False,
        "has-pending-or-approved-application": False,
        "is-professional": False,
        "permitted-account-types": [{
            "name": "Individual", "description": "Individual account", "is-tax-advantaged": False,
            "is-publicly-available": True, "has-multiple-owners": False,
            "margin-types": [{"name": "Margin", "is-margin": True}, {"name": "Cash", "is-margin": False}],
        }],
        "created-at": _OPENED,
    }


def validated_session() -> dict[str, Any]:
    """``POST /sessions/validate`` for a valid token: the user it belongs to (legacy session shape,
    reference 1.4; clients only read the 2xx status, reference 1.3)."""
    return {"email": _EMAIL, "username": "emulator", "external-id": "U0000000001", "is-confirmed": True}


def balances_record(account_number: str, now: dt.datetime) -> dict[str, Any]:
    """``GET /accounts/{n}/balances`` (and ``/balances/USD``) at virtual time ``now`` (UTC)."""
    out: dict[str, Any] = {"account-number": account_number, "currency": "USD"}
    out.update({name: BUYING_POWER if name in _FUNDED else "0.0" for name in _BALANCE_FIELDS})
    out.update({
        "pending-cash-effect": "None",
        "unsettled-cryptocurrency-fiat-effect": "None",
        "buying-power-adjustment-effect": "None",
        "snapshot-date": now.astimezone(dt.UTC).date().isoformat(),
        "updated-at": now.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
    })
    return out
