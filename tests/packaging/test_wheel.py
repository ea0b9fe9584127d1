"""The wheel a user installs: one package, ``atomic_orders``, and nothing else at the top of site-packages.

Users reported that the package used to install ``fsm``, ``backends`` and ``simulator`` as top-level
packages, so a project with its own ``backends`` package failed to load the pytest plugin
(``No module named 'backends.base'``). These tests build the real wheel (offline, with the
project's setuptools) and read it.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

from .conftest import PORTIONS, REPO, clean_env

EXAMPLE = "atomic_orders/simulator/proofs/examples/test_my_strategy.py"
#: The QuantConnect example algorithm, lean-bundle's default ``main.py``.
ALGORITHM = "atomic_orders/simulator/cli/examples/iron_condor_algorithm.py"


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def _read(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(suffix) and ".dist-info/" in n]
        return z.read(name).decode("utf-8")


def test_the_wheel_holds_only_atomic_orders_and_its_dist_info(wheel: Path) -> None:
    tops = {name.split("/")[0] for name in _names(wheel)}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and next(iter(dist_info)).startswith("atomic_orders-"), tops
    assert tops - dist_info == {"atomic_orders"}, f"top-level entries besides atomic_orders: {sorted(tops)}"


def test_every_module_of_the_three_folders_ships_under_atomic_orders(wheel: Path) -> None:
    names = set(_names(wheel))
    expected = {
        f"atomic_orders/{path.relative_to(REPO).as_posix()}"
        for portion in PORTIONS
        for path in (REPO / portion).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected, "no module found in the repository folders"
    assert sorted(expected - names) == []
    assert not any(n.startswith("atomic_orders/") and "/tests/" in n for n in names)


def test_type_markers_and_the_example_test_ship(wheel: Path) -> None:
    names = set(_names(wheel))
    for portion in PORTIONS:
        assert f"atomic_orders/{portion}/py.typed" in names
    assert EXAMPLE in names and ALGORITHM in names
    # data next to the proofs, not a package: pytest imports it by its own name wherever it is
    assert "atomic_orders/simulator/proofs/examples/__init__.py" not in names
    assert "atomic_orders/simulator/cli/examples/__init__.py" not in names
    # a namespace package (PEP 420): no __init__.py at the top that another distribution could clash with
    assert "atomic_orders/__init__.py" not in names


def test_entry_points_name_atomic_orders_modules(wheel: Path) -> None:
    names = set(_names(wheel))
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_read(wheel, "/entry_points.txt"))
    assert dict(entry_points["console_scripts"]) == {"atomic-orders": "atomic_orders.simulator.cli.main:main"}
    assert dict(entry_points["pytest11"]) == {"atomic_orders": "atomic_orders.simulator.proofs.pytest_plugin"}
    for section in ("console_scripts", "pytest11"):
        for target in entry_points[section].values():
            module = target.split(":")[0]
            assert module.startswith("atomic_orders."), target
            assert module.replace(".", "/") + ".py" in names, f"{target}: no such module in the wheel"


def test_the_testing_extra_brings_pytest_and_hypothesis(wheel: Path) -> None:
    metadata = Parser().parsestr(_read(wheel, "/METADATA"))
    assert metadata["Name"] == "atomic-orders"
    assert "testing" in metadata.get_all("Provides-Extra", [])
    testing = sorted(r.split(";")[0].strip() for r in metadata.get_all("Requires-Dist", [])
                     if 'extra == "testing"' in r)
    assert [r.split(">")[0] for r in testing] == ["hypothesis", "pytest"], testing


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """A new room (a folder with an ``__init__.py``) cannot be left out of the wheel."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    assert config["package-dir"] == {f"atomic_orders.{p}": p for p in PORTIONS}
    folders = {
        "atomic_orders." + ".".join(init.parent.relative_to(REPO).parts)
        for portion in PORTIONS
        for init in (REPO / portion).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert {f"atomic_orders.{p}" for p in PORTIONS} <= folders
    assert sorted(folders - listed) == [], "package folders missing from [tool.setuptools] packages"
    assert sorted(listed - folders) == [], "listed packages with no folder (or no __init__.py)"


def test_lean_bundle_installed_from_the_wheel_bundles_the_shipped_example(installed: Path, tmp_path: Path) -> None:
    """Without ``--algorithm``, away from any checkout: the example comes from the installed package."""
    env = clean_env(PYTHONPATH=str(installed))
    where = subprocess.run([sys.executable, "-c", "import atomic_orders.simulator.cli.lean_bundle as m; "
                            "print(m.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout + where.stderr
    target = tmp_path / "IronCondorProject"
    done = subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", "lean-bundle", str(target)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("(main.py = iron_condor_algorithm.py)\n")
    shipped = (installed / ALGORITHM).read_bytes()
    assert (target / "main.py").read_bytes() == shipped == (REPO / "simulator/cli/examples/iron_condor_algorithm.py"
                                                            ).read_bytes()
