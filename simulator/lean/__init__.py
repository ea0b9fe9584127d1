"""A stand-in for LEAN: ``QCAlgorithm``, its order API and order events, outside LEAN's engine.

:mod:`.standin` gives the names LEAN gives a Python algorithm (``QCAlgorithm``, ``OrderTicket``,
``OrderEvent``, ``Leg``, ``OrderStatus``, ...) with LEAN's behaviour as documented in LEAN's source
(see docs/quantconnect.md), filling orders on the simulated broker. ``STAND_IN_API`` is the
:class:`~atomic_orders.backends.quantconnect.lean_api.LeanApi` namespace the QuantConnect backend
takes when LEAN itself is not importable.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends.quantconnect` (the shape of LEAN's
API it stands in for) and :mod:`atomic_orders.simulator.broker`.
"""
