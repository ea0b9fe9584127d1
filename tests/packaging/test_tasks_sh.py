"""``./tasks.sh``: a ``.venv`` made by another Python is noticed (and would be rebuilt), in one line.

``./tasks.sh venv-check`` runs the same check ``simulate`` and ``test`` run before they install,
without installing anything. Each test runs a copy of the script in a temporary directory (the
script works in its own directory), so the project's own ``.venv`` is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, clean_env

BASE = os.path.realpath(sys.base_prefix)
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy2(REPO / "tasks.sh", tmp_path / "tasks.sh")
    return tmp_path


def _stub(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _check(checkout: Path, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["./tasks.sh", "venv-check"], cwd=checkout, env=clean_env(PYTHON=python),
                          capture_output=True, text=True, timeout=60)


def test_no_venv_yet_is_created(checkout: Path) -> None:
    res = _check(checkout)
    assert (res.returncode, res.stdout) == (1, f"creating .venv with {sys.executable} (Python {VERSION})\n")
    assert not (checkout / ".venv").exists()


def test_a_venv_of_the_same_python_is_reused(checkout: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(checkout / ".venv")], check=True, timeout=60)
    res = _check(checkout)
    assert (res.returncode, res.stdout) == (0, f".venv is reused: Python {VERSION} ({BASE})\n"), res.stderr


def test_a_venv_of_another_python_is_rebuilt(checkout: Path) -> None:
    # what a Python 3.10 from another install answers to the script's question
    _stub(checkout / ".venv" / "bin" / "python", 'echo "3.10 /opt/python-3.10"')
    res = _check(checkout)
    assert res.returncode == 1
    assert res.stdout == (f"rebuilding .venv with {sys.executable} (Python {VERSION}, {BASE}): "
                          "it was made by Python 3.10 (/opt/python-3.10)\n")
    assert (checkout / ".venv" / "bin" / "python").exists(), "the check alone changes nothing"


def test_a_venv_whose_python_is_gone_is_rebuilt(checkout: Path) -> None:
    _stub(checkout / ".venv" / "bin" / "python", "exit 127")
    res = _check(checkout)
    assert res.returncode == 1
    assert res.stdout == f"rebuilding .venv with {sys.executable} (Python {VERSION}): its own python does not run\n"


def test_a_python_older_than_3_11_is_refused_by_name(checkout: Path) -> None:
    old = checkout / "old" / "python3"
    _stub(old, "exit 1")  # answers the script's version question "older than 3.11"
    res = _check(checkout, str(old))
    assert res.returncode == 1 and res.stdout == ""
    assert "needs Python 3.11 or newer" in res.stderr and str(old) in res.stderr


def test_an_unknown_command_prints_the_usage(checkout: Path) -> None:
    res = subprocess.run(["./tasks.sh", "deploy"], cwd=checkout, env=clean_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2
    assert "./tasks.sh simulate" in res.stderr and "./tasks.sh test" in res.stderr
