"""What a dry run's answer says about an order: go, or refused with the broker's reason.

``POST /accounts/{n}/orders/dry-run`` (reference 2 and 3.3) answers the submit's shape without
placing anything: ``{order (no id), buying-power-effect, fee-calculation, warnings[]}``. Read here:

* a refusal in an HTTP 4xx error envelope (raised by the client; worded by :func:`api_refusal`);
* a 2xx whose envelope carries a top-level ``error`` beside ``data.buying-power-effect``: the
  preflight failed (reference 2; the Go SDK's recorded ``orderErrorDryRunResp``:
  ``preflight_check_failure`` with ``errors[{code: margin_check_failed, message: ...}]``);
* ``buying-power-effect.new-buying-power-effect`` ``Debit`` with a non-zero ``new-buying-power``:
  the order would leave negative buying power (numbers are unsigned, the sign is the ``-effect``
  field: reference 3.3; the recorded failing dry run shows exactly this; reading it as a refusal
  when no ``error`` comes with it is our inference);
* a warning whose ``code`` is in ``TastytradeConfig.dry_run_blocking_warnings`` (none by default);
* a 2xx whose ``data`` has no ``buying-power-effect`` object (every dry run answers one): not a
  dry run's answer, so not a "go" (fail closed).

Anything else is "go". The reason texts are server text, bounded and redacted like every
TastyTrade error (:class:`~.errors.TastytradeApiError`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from atomic_orders.backends.tastytrade.errors import TastytradeApiError

__all__ = ["api_refusal", "dry_run_refusal"]


def api_refusal(err: TastytradeApiError) -> str:
    """``code: message (detail code: detail message; ...)`` of a refusing error (bounded)."""
    parts: list[str] = []
    for item in err.errors[:5]:
        if isinstance(item, dict):
            code = item.get("code") or item.get("domain") or "?"
            parts.append(f"{code}: {item.get('message') or item.get('reason') or '?'}")
        else:
            parts.append(str(item))
    detail = f" ({'; '.join(parts)})" if parts else ""
    return f"{err.code or err.status}: {err.message}{detail}"[:500]


def dry_run_refusal(answer: Mapping[str, Any], blocking_warnings: Collection[str] = ()) -> str | None:
    """Why the dry run's ``answer`` (its ``data``, with a top-level ``error`` under ``"error"``)
    refuses the order, or ``None`` when it may be sent. Never raises on any JSON shape."""
    error = answer.get("error")
    if error is not None:
        if isinstance(error, Mapping):
            errors = error.get("errors")
            wrapped = TastytradeApiError(200, error.get("code") if isinstance(error.get("code"), str) else None,
                                         str(error.get("message") or "preflight check failed"),
                                         errors=errors if isinstance(errors, list) else ())
        else:
            wrapped = TastytradeApiError(200, "preflight_check_failure", str(error)[:500])
        return api_refusal(wrapped)
    effect = answer.get("buying-power-effect")
    if not isinstance(effect, Mapping):
        # every dry run answers one (reference 2, 3.3): without it this is not a dry run's answer
        # (a proxy's or a garbled 2xx), and sending on it would not be failing closed
        return "unreadable answer: no buying-power-effect object"
    if effect.get("new-buying-power-effect") == "Debit":
        amount = _decimal(effect.get("new-buying-power"))
        if amount is None or amount != 0:
            shown = "?" if amount is None else format(amount, "f")
            return f"buying power: the order would leave new-buying-power -{shown} (Debit)"
    warnings = answer.get("warnings")
    if blocking_warnings and isinstance(warnings, list):
        for item in warnings[:50]:
            if isinstance(item, Mapping) and item.get("code") in blocking_warnings:
                wrapped = TastytradeApiError(200, str(item.get("code")), str(item.get("message") or "warning"))
                return f"blocking warning {api_refusal(wrapped)}"
    return None


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
