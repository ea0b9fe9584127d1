"""``atomic-orders lean-bundle``: a QuantConnect project folder that imports without the simulator."""

from __future__ import annotations

import py_compile
import subprocess
import sys
import textwrap
from importlib.resources import files
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "simulator" / "cli" / "examples" / "iron_condor_algorithm.py"

#: Run in a fresh interpreter from the bundle folder: refuses the simulator (and ``requests`` until
#: allowed), stands in a minimal ``AlgorithmImports`` (LEAN's module exists only inside LEAN), and
#: imports what an algorithm imports, then main.py.
PROBE = textwrap.dedent('''
    import importlib.abc, sys, types
    blocked = {"atomic_orders.simulator", "requests"}

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in blocked):
                raise ImportError(f"the bundle imported {name}")
            return None

    sys.meta_path.insert(0, Refuse())
    sys.path.insert(0, ".")
    import atomic_orders.fsm.executor, atomic_orders.backends.quantconnect
    assert atomic_orders.fsm.executor.__file__.startswith(sys.argv[1]), atomic_orders.fsm.executor.__file__
    print("core and quantconnect backend: no requests")
    blocked.discard("requests")  # the TastyTrade backend (the example's live mode) needs it
    lean = types.ModuleType("AlgorithmImports")
    for name in ("BrokerageName", "Market", "OptionRight", "OptionStyle", "OrderEvent", "QCAlgorithm", "Symbol"):
        setattr(lean, name, type(name, (), {}))
    sys.modules["AlgorithmImports"] = lean
    import main
    assert issubclass(main.WeeklyIronCondorAlgorithm, lean.QCAlgorithm)
    assert not any(m.startswith("atomic_orders.simulator") for m in sys.modules)
    print("main.py: imported")
''')


def test_the_bundle_holds_main_py_and_the_package_files_and_imports_without_the_simulator(tmp_path: Path) -> None:
    target = tmp_path / "IronCondorProject"
    done = subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", "lean-bundle", str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert (target / "main.py").read_bytes() == EXAMPLE.read_bytes()
    assert {"atomic_orders/__init__.py", "atomic_orders/fsm/executor.py", "atomic_orders/fsm/journal/store.py",
            "atomic_orders/backends/quantconnect/adapter.py",
            "atomic_orders/backends/tastytrade/client.py"} <= set(files)
    assert all(f.endswith(".py") for f in files)  # a Cloud project holds code files
    assert not any(f.startswith("atomic_orders/simulator") or f.endswith("diagrams.py") for f in files)
    for path in target.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "compiled.pyc"), doraise=True)
    probe = subprocess.run([sys.executable, "-c", PROBE, str(target)], cwd=target, capture_output=True, text=True,
                           timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines() == ["core and quantconnect backend: no requests", "main.py: imported"]


def test_a_non_empty_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", "lean-bundle", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"atomic-orders lean-bundle: error: dir={str(tmp_path)!r}: exists and is not an empty folder; "
        "give a new or empty one"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("README.md", "# not an algorithm\n", "not a Python file"),
    ("helpers.py", "def helper() -> int:\n    return 1\n", "defines no QCAlgorithm subclass"),
    ("broken.py", "from AlgorithmImports import NoSuchName\n", "cannot be loaded: ImportError"),
])
def test_an_algorithm_lean_run_would_refuse_is_refused_in_one_line_and_nothing_is_written(
        tmp_path: Path, name: str, text: str, reason: str) -> None:
    algorithm = tmp_path / name
    algorithm.write_text(text, encoding="utf-8")
    target = tmp_path / "Project"
    done = subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", "lean-bundle", str(target),
                           "--algorithm", str(algorithm)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"error: algorithm={str(algorithm)!r}: {reason}" in line
    assert not target.exists()


def test_the_default_algorithm_is_the_example_shipped_with_the_package() -> None:
    from atomic_orders.simulator.cli.lean_bundle import default_algorithm

    shipped = files("atomic_orders.simulator.cli") / "examples" / "iron_condor_algorithm.py"
    assert default_algorithm() == Path(str(shipped)) and shipped.is_file()
    assert Path(str(shipped)).read_bytes() == EXAMPLE.read_bytes()
