"""The proof tools: what generates adversaries and checks the invariants against them.

- :mod:`.strategies` -- Hypothesis strategies for valid groups and adversarial broker scripts.
- :mod:`.wire_strategies` -- Hypothesis strategies for broker answers in the wire formats
  (TastyTrade order JSON, LEAN order events).
- :mod:`.exhaustive` -- ``World`` (one group, one executor, a scripted broker) and the exhaustive
  checker of every broker script up to a depth (``atomic-orders check``).
- :mod:`.testing` -- what users' own test suites import (strategies, ``World``, ``prove``).
- :mod:`.pytest_plugin` -- the pytest plugin (fixtures and options), loaded through the package's
  ``pytest11`` entry point.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends`, and the simulator rooms
:mod:`~atomic_orders.simulator.broker` and :mod:`~atomic_orders.simulator.emulator`.
"""
