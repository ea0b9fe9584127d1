"""``STAND_IN_API``: the stand-in's LEAN names as the namespace the QuantConnect backend takes.

Outside LEAN, :class:`~atomic_orders.backends.quantconnect.lean_api.LeanApi` is filled from
:mod:`.lean_types` instead of ``AlgorithmImports``; the stand-in's ``QCAlgorithm`` carries it as
``lean_stand_in_api`` (see :func:`~atomic_orders.backends.quantconnect.lean_api.lean_api_for`).
"""

from __future__ import annotations

from typing import Any

from atomic_orders.backends.quantconnect.lean_api import LeanApi
from atomic_orders.simulator.lean.lean_types import (
    Leg,
    Market,
    OptionRight,
    OptionStyle,
    OrderResponseErrorCode,
    OrderStatus,
    SecurityType,
    Symbol,
    UpdateOrderFields,
)

__all__ = ["STAND_IN_API"]


def _api() -> LeanApi:
    namespace: Any = {
        "Symbol": Symbol, "Leg": Leg, "UpdateOrderFields": UpdateOrderFields, "OrderStatus": OrderStatus,
        "OrderResponseErrorCode": OrderResponseErrorCode, "SecurityType": SecurityType, "OptionRight": OptionRight,
        "OptionStyle": OptionStyle, "Market": Market,
    }
    return LeanApi(**namespace)


#: The stand-in's classes as the namespace the QuantConnect backend uses.
STAND_IN_API: LeanApi = _api()
