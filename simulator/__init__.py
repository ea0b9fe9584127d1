"""Everything that stands in for the outside world, and the tools that run against it.

One integer seed makes a whole simulated session: the market path, every latency, every fill and
every piece of chaos. Nothing here reads the wall clock except the HTTP emulator's standalone mode.

Rooms, each a subpackage whose ``__init__`` says what it holds and what it may import:

- :mod:`.broker` -- the deterministic discrete-event broker (engine, market, chaos, the simulated
  broker, scripted fates). Imports only :mod:`atomic_orders.fsm`.
- :mod:`.emulator` -- the TastyTrade REST API emulator over HTTP on 127.0.0.1, backed by the broker.
- :mod:`.lean` -- a stand-in for LEAN's ``QCAlgorithm`` and order API, backed by the broker.
- :mod:`.session` -- a chaos session of many groups, run through one executor, and its report.
- :mod:`.proofs` -- Hypothesis strategies, the exhaustive checker, ``testing`` (what users' own test
  suites import) and the pytest plugin.
- :mod:`.crash` -- the SIGKILL crash harness: journal, kill, recover, verify.
- :mod:`.cli` -- the ``atomic-orders`` command line and what only it uses (benchmarks, docs generation,
  the journal commands).

The allowed directions (``tests/core/test_layering.py`` enforces them): the broker sits at the
bottom; the emulator and the LEAN stand-in sit on it; session, proofs and crash may use the
broker and the emulator; only the command line may use everything. Nothing in :mod:`atomic_orders.fsm` or
:mod:`atomic_orders.backends` imports this package.
"""
