"""Hypothesis profiles of the property suite, and a summary of what it ran.

Profiles (select with the environment variable ``ATOMIC_ORDERS_PROFILE``):

* ``ci`` - derandomized (the same cases every run), no example database, no deadline, sized so
  the whole ``tests/properties`` run stays around a minute on a 2-core machine. Registered on
  top of Hypothesis' own ``ci`` profile (which Hypothesis loads by itself when ``CI`` is set).
* ``dev`` - random, with the local example database (failures replay first), a little smaller.
* ``deep`` - the nightly run: 20x the ``ci`` examples, random seeds (each night explores new
  cases), ``print_blob`` so a failure can be reproduced with ``@reproduce_failure``.

Default: ``ci`` when ``CI`` is set, else ``dev``. The end of the run prints how many examples and
steps the state machines ran, and what the exhaustive check covered.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.properties._suite import NOTES, PROFILE, STATS

#: Examples per state machine under ``ci``; the other profiles scale from it.
CI_EXAMPLES = 300
#: Rules per example (Hypothesis' default is 50).
STEPS = 50

_QUIET = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    parent=settings.get_profile("ci"),
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=CI_EXAMPLES,
    stateful_step_count=STEPS,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=CI_EXAMPLES // 2,
    stateful_step_count=STEPS,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "deep",
    parent=settings.get_profile("ci"),
    derandomize=False,
    max_examples=CI_EXAMPLES * 20,
    stateful_step_count=STEPS * 2,
)


settings.load_profile(PROFILE)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the property suite ran (examples, steps, settled outcomes, exhaustive coverage)."""
    if not STATS and not NOTES:
        return
    tr = terminalreporter
    current = settings.get_profile(PROFILE)
    tr.section(f"atomic-orders properties (profile {PROFILE}: max_examples={current.max_examples}, "
               f"stateful_step_count={current.stateful_step_count})")
    for key in sorted(STATS):
        tr.write_line(f"{key:<40} {STATS[key]:>12,}")
    for line in NOTES:
        tr.write_line(line)
