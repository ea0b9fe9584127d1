"""A deterministic, event-driven broker simulator for atomic-orders.

One integer seed makes a whole session: the market path, every latency, every fill and every
piece of chaos. Nothing reads the wall clock; a virtual clock moves only when the simulation is
advanced.

Modules:

- :mod:`atomic_orders.simulator.engine` -- the discrete-event core (`engine.VirtualClock`,
  `engine.Scheduler`) and the seed derivation used everywhere.
- :mod:`atomic_orders.simulator.market` -- `market.MarketModel`: a seeded random walk of the
  underlying and Black-Scholes option quotes on the SPX tick grid.
- :mod:`atomic_orders.simulator.chaos` -- `chaos.ChaosProfile`: every way the broker misbehaves,
  with the ``calm``, ``rough`` and ``hostile`` presets.
- :mod:`atomic_orders.simulator.broker` -- `broker.BrokerSimulator`: order matching, latency,
  chaos, reconciliation and the event log.

The simulator speaks only the value types of :mod:`atomic_orders.fsm`; it knows nothing of any broker's API.

For users' own test suites: :mod:`atomic_orders.simulator.testing` (Hypothesis strategies for valid groups and
adversarial broker scripts, ``World``, ``prove``) and the pytest plugin :mod:`atomic_orders.simulator.pytest_plugin`
(loaded by pytest through the package's ``pytest11`` entry point; see docs/invariants.md).
"""
