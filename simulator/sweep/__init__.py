"""Chaos sweeps: one session (or one crash campaign) per seed, many seeds at once on Dask.

:mod:`.cluster` opens a Dask client (a local cluster of worker processes, or an existing
scheduler) and maps a pure function over many items with a bounded window of futures; the rest
of the room runs a sweep on it: :mod:`.seeds` parses a seeds spec, :mod:`.task` runs one seed,
:mod:`.results` streams results to a resumable JSON-lines file, :mod:`.report` aggregates them
and :mod:`.run` ties them together (docs/chaos.md, "Sweeps"). Dask (``dask.distributed``) is the
optional extra ``sweep``; nothing here imports it before a cluster is opened.

May import: :mod:`atomic_orders.fsm`, :mod:`atomic_orders.backends`, and the simulator rooms
:mod:`~atomic_orders.simulator.broker`, :mod:`~atomic_orders.simulator.emulator`,
:mod:`~atomic_orders.simulator.session` and :mod:`~atomic_orders.simulator.crash`.
"""
