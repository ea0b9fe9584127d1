"""The deterministic discrete-event broker: one seed, one session, no wall clock.

- :mod:`.engine` -- the virtual clock, the event scheduler and the seed derivation used everywhere.
- :mod:`.market` -- ``MarketModel``: a seeded random walk of the underlying and Black-Scholes option
  quotes on the SPX tick grid.
- :mod:`.chaos` -- ``ChaosProfile``: every way the broker misbehaves, with the ``calm``, ``rough`` and
  ``hostile`` presets.
- :mod:`.simulated_broker` -- ``BrokerSimulator``: order matching, latency, chaos, reconciliation and
  the event log.
- :mod:`.backend` -- ``SimulatedBackend``: the core's port (:mod:`atomic_orders.fsm.ports`) over the
  simulated broker.
- :mod:`.script` -- scripted fates for received orders (a test decides what the broker does).

May import: :mod:`atomic_orders.fsm` (its value types) and the standard library. It knows nothing of
any broker's API, of the backends, or of the other simulator rooms.
"""
