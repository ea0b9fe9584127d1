"""QuantConnect (LEAN) integration: a backend over LEAN's order API and the algorithm adapter.

* :mod:`.lean_api` -- the LEAN names used, resolved at run time (LEAN or the stand-in);
* :mod:`.symbols` -- LEAN option ``Symbol`` <-> ``OptionSymbol``;
* :mod:`.parsing` -- LEAN ``OrderEvent`` -> ticket events (every ``OrderStatus``);
* :mod:`.backend` -- :class:`QuantConnectBackend`;
* :mod:`.adapter` -- :class:`TastytradeIntegrationAdapter`, what an algorithm creates in ``initialize``.

Nothing here imports LEAN at module level: outside LEAN, :mod:`atomic_orders.simulator.lean` stands in.

May import: :mod:`atomic_orders.fsm`, LEAN's names at run time (through :mod:`.lean_api`), and
:mod:`atomic_orders.backends.tastytrade` (the adapter routes a live algorithm's orders there).
"""

from atomic_orders.backends.quantconnect.adapter import TastytradeIntegrationAdapter
from atomic_orders.backends.quantconnect.backend import LeanClock, QuantConnectBackend
from atomic_orders.backends.quantconnect.lean_api import LeanApi, LeanUnavailable, lean_api, lean_api_for
from atomic_orders.backends.quantconnect.symbols import SymbolMapper

__all__ = [
    "LeanApi",
    "LeanClock",
    "LeanUnavailable",
    "QuantConnectBackend",
    "SymbolMapper",
    "TastytradeIntegrationAdapter",
    "lean_api",
    "lean_api_for",
]
