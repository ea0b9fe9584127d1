"""A user's project with its own top-level ``backends``, ``fsm`` and ``simulator`` packages, beside the wheel.

The project's tests import their own packages and use the plugin's fixtures in one pytest run
(a subprocess, the project directory first on ``sys.path``, the installed wheel on ``PYTHONPATH``,
the project's virtualenv supplying the dependencies). Before the package was one namespace, this
run failed while loading the plugin: ``No module named 'backends.base'``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import PORTIONS, clean_env

#: Seconds the user's pytest run may take (it settles two condors, one over HTTP).
RUN_TIMEOUT = 300

_USER_TESTS = '''
import os
from pathlib import Path

import pytest

import atomic_orders.simulator.proofs.pytest_plugin as plugin
from backends.base import Broker
from fsm.machine import Machine
from simulator.engine import Engine

INSTALLED = Path(os.environ["INSTALLED"]).resolve()
PROJECT = Path(__file__).resolve().parents[1]


def test_our_own_packages_are_ours():
    assert (Broker().name, Machine().name, Engine().name) == ("ours", "ours", "ours")
    for module in ("backends", "fsm", "simulator"):
        assert Path(__import__(module).__file__).resolve().is_relative_to(PROJECT), module


def test_the_plugin_comes_from_the_installed_wheel(request):
    assert request.config.pluginmanager.has_plugin("atomic_orders")
    assert Path(plugin.__file__).resolve().is_relative_to(INSTALLED), plugin.__file__


@pytest.mark.chaos_profile("rough")
@pytest.mark.chaos_seed(11)
@pytest.mark.parametrize("atomic_backend", plugin.BACKENDS)
def test_a_condor_through_the_plugin(atomic_session, atomic_executor, broker_simulator, atomic_backend):
    assert atomic_session.backend_name == atomic_backend and broker_simulator.seed == 11
    short_call, long_call, short_put, long_put = atomic_session.condor_strikes()
    group = atomic_executor.execute_iron_condor(short_call=short_call, long_call=long_call, short_put=short_put,
                                                long_put=long_put, quantity=1)
    atomic_session.settle()
    assert atomic_session.violations() == []
    assert group.is_terminal
'''


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def test_a_project_with_its_own_backends_fsm_and_simulator_packages(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "user-project"
    _write(project, {
        "pyproject.toml": """
            [tool.pytest.ini_options]
            testpaths = ["tests"]
            pythonpath = ["."]
            """,
        "backends/__init__.py": '"""The user\'s own backends."""\n',
        "backends/base.py": "class Broker:\n    name = 'ours'\n",
        "fsm/__init__.py": '"""The user\'s own state machines."""\n',
        "fsm/machine.py": "class Machine:\n    name = 'ours'\n",
        "simulator/__init__.py": '"""The user\'s own simulator."""\n',
        "simulator/engine.py": "class Engine:\n    name = 'ours'\n",
        "tests/test_mine.py": _USER_TESTS,
    })
    # the installed wheel holds none of the user's names at its top
    assert not any((installed / name).exists() for name in PORTIONS)
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestConfigWarning"],
        cwd=project, env=clean_env(PYTHONPATH=str(installed), INSTALLED=str(installed)),
        capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )
    output = res.stdout[-6000:] + res.stderr[-3000:]
    assert res.returncode == 0, output
    assert "4 passed" in res.stdout, output
    assert "Error while loading plugin" not in output
