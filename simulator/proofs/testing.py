"""Everything a user's test suite needs to prove its own groups, importable from one place.

Needs the test extras (``pip install 'atomic-orders[testing]'``: pytest and Hypothesis)::

    from hypothesis import given
    from atomic_orders.simulator.proofs.testing import broker_scripts, group_specs, prove

    @given(group_specs(), broker_scripts())
    def test_groups_never_end_half_executed(spec, script):
        assert prove(spec.world(), script) == []

* Hypothesis strategies for adversarial brokers and valid groups (from :mod:`.strategies`):
  :func:`group_specs`, :func:`broker_scripts`, :func:`broker_actions`, :func:`iron_condor_legs`, ...
* :class:`World` (one group, a real executor and a consistent adversarial broker),
  :class:`Action`, :func:`format_script` / :func:`parse_script` (a script as one line of text and
  back), from :mod:`atomic_orders.simulator.proofs.exhaustive`;
* :func:`play` and :func:`prove` (run a script with the invariants checked after every step; a
  failing test prints the script), :class:`AtomicSession`, :class:`EmulatorEndpoint` and the
  defaults of the pytest plugin (:mod:`atomic_orders.simulator.proofs.pytest_plugin`, loaded automatically: fixtures
  ``broker_simulator``, ``tastytrade_emulator``, ``atomic_executor``, ...);
* :class:`ChaosProfile` (every knob of the simulated broker's misbehaviour).
"""

from __future__ import annotations

import importlib.util

# ruff: noqa: E402 (the imports follow the check below on purpose)
# Without the ``testing`` extra the first import below fails with a bare "No module named 'pytest'";
# say what to install instead.
_MISSING = [name for name in ("pytest", "hypothesis") if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ModuleNotFoundError(
        f"atomic_orders.simulator.proofs.testing needs {' and '.join(_MISSING)}: install the testing extra, "
        "e.g. pip install './atomic-orders[testing]' (README, Install)", name=_MISSING[0])

from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.proofs.exhaustive import Action, World, format_script, parse_script
from atomic_orders.simulator.proofs.pytest_plugin import (
    BACKENDS,
    DEFAULT_PROFILE,
    DEFAULT_SEED,
    AtomicSession,
    EmulatorEndpoint,
    play,
    prove,
)
from atomic_orders.simulator.proofs.strategies import (
    GroupSpec,
    broker_actions,
    broker_scripts,
    execution_policies,
    expiries,
    fills,
    group_specs,
    iron_condor_legs,
    legs,
    modes,
    option_symbols,
    quantities,
    roots,
    strangle_legs,
    strikes,
    submit_outcomes,
    ticket_events,
    vertical_legs,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_PROFILE",
    "DEFAULT_SEED",
    "Action",
    "AtomicSession",
    "ChaosProfile",
    "EmulatorEndpoint",
    "GroupSpec",
    "World",
    "broker_actions",
    "broker_scripts",
    "execution_policies",
    "expiries",
    "fills",
    "format_script",
    "group_specs",
    "iron_condor_legs",
    "legs",
    "modes",
    "option_symbols",
    "parse_script",
    "play",
    "prove",
    "quantities",
    "roots",
    "strangle_legs",
    "strikes",
    "submit_outcomes",
    "ticket_events",
    "vertical_legs",
]
