"""``atomic-orders lean-bundle DIR``: the files a QuantConnect project needs, written into DIR.

QuantConnect Cloud runs a project's own files and the libraries of its environment; it does not
pip-install a package from a project (docs/quantconnect.md, "Deploying"). So the package goes in
as source files:

* ``DIR/main.py`` -- the algorithm (``--algorithm FILE``; default the example shipped with the
  package, ``simulator/cli/examples/iron_condor_algorithm.py``), byte for byte, once it loads as
  ``lean-run`` loads an algorithm (one ``QCAlgorithm`` subclass);
* ``DIR/atomic_orders/`` -- the ``.py`` files of :mod:`atomic_orders.fsm` and of the backends an
  algorithm uses (:mod:`atomic_orders.backends.quantconnect`, and
  :mod:`atomic_orders.backends.tastytrade` for live TastyTrade routing), copied unchanged from
  the installed package, plus an ``__init__.py`` naming what the bundle is.

Left out: :mod:`atomic_orders.simulator` (tests and tools, never needed inside LEAN), the scripted
test backend, ``fsm/diagrams.py`` (graphviz rendering) and every non-Python file (a Cloud project
holds ``.py`` files). The bundle imports ``attrs`` and ``transitions``, and ``requests`` only when
``backends.tastytrade`` is imported (the example does, for its live mode).

Exit status 0, or 2 with one line ``atomic-orders lean-bundle: error: field='value': reason`` for an
unusable ``DIR`` (a file, or a folder that is not empty) or algorithm file.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
from pathlib import Path
from typing import Any

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.cli.lean_run import check_algorithm
from atomic_orders.simulator.cli.options import UserError, add_command, folder_path

__all__ = ["BUNDLED_PACKAGES", "add_lean_bundle_command", "default_algorithm", "write_bundle"]

#: The subpackages copied into a bundle (with every subpackage below them).
BUNDLED_PACKAGES = ("atomic_orders.fsm", "atomic_orders.backends.quantconnect", "atomic_orders.backends.tastytrade")
#: Modules of the bundled packages left out (nothing an algorithm imports needs them).
LEFT_OUT = frozenset({"atomic_orders/fsm/diagrams.py"})

_INIT = '''"""atomic-orders, bundled for a QuantConnect project by ``atomic-orders lean-bundle``.

Only the core (``fsm``) and the backends an algorithm uses are here; see the project's
docs/quantconnect.md. Files are copies of the package: change them there and bundle again.
"""
'''


def default_algorithm() -> Path | None:
    """The example algorithm shipped with the package (its data, in a checkout or a wheel alike);
    ``None`` only when an install dropped it."""
    example = Path(__file__).resolve().parent / "examples" / "iron_condor_algorithm.py"
    return example if example.is_file() else None


def _package_dir(name: str) -> Path:
    module = importlib.import_module(name)
    if module.__file__ is None:
        raise ValidationError("package", name, "is not installed from files")
    return Path(module.__file__).resolve().parent


def write_bundle(target: Path, algorithm: Path) -> list[Path]:
    """Write the bundle into ``target`` (created; must be new or empty); the files written, sorted.

    Raises :class:`ValidationError` for a non-empty ``target`` (field ``dir``) or an
    ``algorithm`` that ``lean-run`` would refuse (field ``algorithm``: not a file, not Python, no or
    several ``QCAlgorithm`` subclasses; :func:`~atomic_orders.simulator.cli.lean_run.check_algorithm`),
    before anything is written.
    """
    check_algorithm(algorithm)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValidationError("dir", str(target), "exists and is not an empty folder; give a new or empty one")
    target.mkdir(parents=True, exist_ok=True)
    written = [target / "main.py"]
    shutil.copyfile(algorithm, written[0])
    package = target / "atomic_orders"
    package.mkdir()
    (package / "__init__.py").write_text(_INIT, encoding="utf-8")
    written.append(package / "__init__.py")
    backends = package / "backends"
    backends.mkdir()
    shutil.copyfile(_package_dir("atomic_orders.backends") / "__init__.py", backends / "__init__.py")
    written.append(backends / "__init__.py")
    for name in BUNDLED_PACKAGES:
        source = _package_dir(name)
        relative = Path(*name.split("."))
        for path in sorted(source.rglob("*.py")):
            inside = relative / path.relative_to(source)
            if "__pycache__" in inside.parts or inside.as_posix() in LEFT_OUT:
                continue
            destination = target / inside
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            written.append(destination)
    return sorted(written)


def _cmd_lean_bundle(args: argparse.Namespace) -> int:
    algorithm = Path(args.algorithm) if args.algorithm else default_algorithm()
    try:
        if algorithm is None:
            raise ValidationError("algorithm", None, "no example next to the package; give --algorithm FILE")
        written = write_bundle(Path(args.dir), algorithm)
    except ValidationError as err:  # the user's input: one line, with the command's name (the boundary)
        raise UserError(str(err)) from None
    print(f"{len(written)} files written to {args.dir} (main.py = {algorithm.name})")
    return 0


def add_lean_bundle_command(subparsers: Any) -> None:
    """Register ``lean-bundle`` on the ``atomic-orders`` parser's subparsers."""
    bundle = add_command(subparsers, "lean-bundle", "write a QuantConnect project folder: the algorithm as "
                                                    "main.py and the atomic_orders package files it needs",
                         _cmd_lean_bundle)
    bundle.add_argument("dir", type=folder_path, metavar="DIR", help="the project folder to write (new or empty)")
    bundle.add_argument("--algorithm", metavar="FILE",
                        help="the algorithm to bundle as main.py (default: the example shipped with the package)")
