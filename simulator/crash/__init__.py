"""The SIGKILL crash harness: run a journaled session, kill it, recover, verify against the broker.

:mod:`.harness` runs the session in a child process against the TastyTrade emulator (or in process
against the simulated broker), kills it at named points or at random, recovers from the journal and
holds the recovered groups against the broker's own record (docs/journal.md). The command line runs
it as ``atomic-orders crash``.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends`, and the simulator rooms
:mod:`~atomic_orders.simulator.broker` and :mod:`~atomic_orders.simulator.emulator`.
"""
