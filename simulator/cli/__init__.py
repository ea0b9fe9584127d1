"""The ``atomic-orders`` command line, and what only the command line uses.

- :mod:`.main` -- the parser and the subcommands (``atomic-orders --help`` lists them).
- :mod:`.options` -- the options subcommands share (one name, one type, one set of choices) and
  :class:`~.options.UserError`, which the error boundary in :func:`.main.main` reports as one line, exit 2.
- :mod:`.journal` -- ``journal show|salvage`` and ``recover``.
- :mod:`.crash` -- ``crash run|child|serve``: the SIGKILL crash test (the harness keeps the functions).
- :mod:`.lean_run` -- ``lean-run``: a QuantConnect algorithm on the LEAN stand-in over N trading days.
- :mod:`.lean_bundle` -- ``lean-bundle``: the files of a QuantConnect project (``main.py`` and the package).
- :mod:`.bench` and :mod:`.throughput` -- the benchmarks of ``atomic-orders bench``.
- :mod:`.docs` -- the generated parts of docs/ (``atomic-orders docs``).

May import everything in the package; nothing imports it (it is the top of the house).
"""
