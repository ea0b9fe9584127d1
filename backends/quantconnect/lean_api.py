"""The LEAN names the QuantConnect backend uses, resolved at run time.

LEAN is not an importable library outside its own engine, so nothing in this package imports it at
module level. Code is written against LEAN's real Python API (the snake_case names of current
LEAN: ``combo_limit_order``, ``Leg.create``, ``OrderStatus.FILLED``, ...) and type-checked with
``mypy`` against the ``quantconnect-stubs`` package (imports under ``TYPE_CHECKING`` only). At run
time the classes come from a :class:`LeanApi` namespace:

* inside LEAN: :func:`lean_api` takes them from ``AlgorithmImports``;
* outside LEAN: the stand-in in :mod:`atomic_orders.simulator.lean` provides a namespace with the same names
  (its ``QCAlgorithm`` class carries it as ``lean_stand_in_api``).

:func:`lean_api_for` picks one for an algorithm object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from atomic_orders.fsm.errors import AtomicOrdersError

if TYPE_CHECKING:
    from QuantConnect import Market as LeanMarket
    from QuantConnect import OptionRight as LeanOptionRight
    from QuantConnect import OptionStyle as LeanOptionStyle
    from QuantConnect import SecurityType as LeanSecurityType
    from QuantConnect import Symbol as LeanSymbol
    from QuantConnect.Orders import Leg as LeanLeg
    from QuantConnect.Orders import OrderResponseErrorCode as LeanErrorCode
    from QuantConnect.Orders import OrderStatus as LeanOrderStatus
    from QuantConnect.Orders import UpdateOrderFields as LeanUpdateOrderFields

__all__ = ["LeanApi", "LeanUnavailable", "lean_api", "lean_api_for"]


class LeanUnavailable(AtomicOrdersError):
    """LEAN's classes cannot be found (not running inside LEAN, and no stand-in was given)."""


@attrs.frozen
class LeanApi:
    """The LEAN classes the backend needs, as one injectable namespace."""

    Symbol: type[LeanSymbol]
    Leg: type[LeanLeg]
    UpdateOrderFields: type[LeanUpdateOrderFields]
    OrderStatus: type[LeanOrderStatus]
    OrderResponseErrorCode: type[LeanErrorCode]
    SecurityType: type[LeanSecurityType]
    OptionRight: type[LeanOptionRight]
    OptionStyle: type[LeanOptionStyle]
    Market: type[LeanMarket]


def lean_api() -> LeanApi:
    """LEAN's own classes; raises :class:`LeanUnavailable` outside a LEAN process."""
    try:
        import AlgorithmImports  # only importable inside LEAN (the stubs ship no module)

        ns: Any = AlgorithmImports
        return LeanApi(
            Symbol=ns.Symbol,
            Leg=ns.Leg,
            UpdateOrderFields=ns.UpdateOrderFields,
            OrderStatus=ns.OrderStatus,
            OrderResponseErrorCode=ns.OrderResponseErrorCode,
            SecurityType=ns.SecurityType,
            OptionRight=ns.OptionRight,
            OptionStyle=ns.OptionStyle,
            Market=ns.Market,
        )
    except (ImportError, AttributeError) as err:
        raise LeanUnavailable(
            f"LEAN is not available ({err}); outside LEAN pass lean=... "
            "(e.g. atomic_orders.simulator.lean.api.STAND_IN_API)"
        ) from None


def lean_api_for(algorithm: object) -> LeanApi:
    """The namespace for ``algorithm``: the stand-in's when it is the stand-in, else LEAN's own."""
    stand_in = getattr(type(algorithm), "lean_stand_in_api", None)
    if isinstance(stand_in, LeanApi):
        return stand_in
    return lean_api()
