"""A stand-in for LEAN: ``QCAlgorithm``, its order API and order events, outside LEAN's engine.

The names LEAN gives a Python algorithm, with LEAN's behaviour as documented in LEAN's source (see
docs/quantconnect.md), filling orders on the simulated broker:

- :mod:`.lean_types` -- LEAN's enums and values: ``OrderStatus``, ``OrderType``, ``SecurityType``,
  ``OptionRight``, ..., ``Symbol``, ``Leg``, ``UpdateOrderFields``, ``OrderResponse``, ``OrderEvent``,
  ``OptionStrategies``, ``Order``, ``OrderTicket``, ``Security`` and the securities, portfolio and
  transactions managers.
- :mod:`.algorithm` -- ``QCAlgorithm`` (the base class an algorithm subclasses), its ``LogLine`` s and
  its schedules (``date_rules``, ``time_rules``, ``schedule.on``).
- :mod:`.brokerage` -- ``LeanStandIn``: the brokerage over the simulated broker that runs an algorithm
  (events, cancel and update requests, scheduled events, trading days); the LEAN rules it reproduces.
- :mod:`.api` -- ``STAND_IN_API``: the
  :class:`~atomic_orders.backends.quantconnect.lean_api.LeanApi` namespace the QuantConnect backend
  takes when LEAN itself is not importable.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends.quantconnect` (the shape of LEAN's
API it stands in for) and :mod:`atomic_orders.simulator.broker`.
"""
