"""Execution backends: the places an order can go, each implementing the core's port.

(The backend over the deterministic simulated broker lives with that broker, in
:mod:`atomic_orders.simulator.broker.backend`.)

- :mod:`.scripted` -- a broker driven by a test (the exhaustive checker's).
- :mod:`.tastytrade` -- the TastyTrade REST API (auth, client, payloads, parsing, order monitor).
- :mod:`.quantconnect` -- LEAN's order API inside a QuantConnect algorithm, and the adapter an
  algorithm creates.

May import: :mod:`atomic_orders.fsm` (the port :mod:`atomic_orders.fsm.ports` and its values),
``requests`` (TastyTrade only) and LEAN's names (QuantConnect only, at run time inside LEAN). One
backend may use another only where it routes to it (the QuantConnect adapter sends a live
algorithm's orders to TastyTrade); no backend imports :mod:`atomic_orders.simulator`.
"""
