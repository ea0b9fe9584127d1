"""Chaos sessions: many groups through one executor against a misbehaving broker, and their report.

:mod:`.runner` runs a session (``SessionConfig`` -> ``SessionReport``) on the simulated broker, or
over HTTP through the real TastyTrade client against the emulator, and formats the report
(docs/chaos.md). :mod:`.accounting` reads a finished group's reason, money and anomalies into a
:mod:`.records` ``GroupRecord``; :mod:`.records` holds the event log's session and group lines.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends`, and the simulator rooms
:mod:`~atomic_orders.simulator.broker` and :mod:`~atomic_orders.simulator.emulator`.
"""
