"""What the packaging tests share: the repository, the project's interpreter, one wheel per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The repository folders setuptools maps into ``atomic_orders`` (pyproject.toml, ``package-dir``).
PORTIONS = ("fsm", "backends", "simulator")
#: What a copy of the working tree leaves out: not part of any build, or made by one.
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".hypothesis", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".benchmarks",
    "out", "*.egg-info", "build", "dist",
)
#: Seconds a pip command may take (offline: no index, no build isolation).
PIP_TIMEOUT = 180


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a child process, without what the outer pytest or a caller's PYTHONPATH set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON", "PIP_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def pip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m pip ARGS`` with the project's interpreter; fails the test with pip's output on error."""
    res = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=clean_env(), capture_output=True,
                         text=True, timeout=PIP_TIMEOUT)
    assert res.returncode == 0, f"pip {' '.join(args)}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the working tree (the tree itself gets no build/ or egg-info)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "atomic-orders"
    shutil.copytree(REPO, source, ignore=SKIP)
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(base / "dist"), str(source))
    (built,) = (base / "dist").glob("atomic_orders-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the wheel installed (``pip install --target``): what site-packages would get."""
    target = tmp_path_factory.mktemp("site")
    pip("install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel))
    return target
