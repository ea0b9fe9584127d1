"""Imports point down, between every room of the house.

Each package's ``__init__`` docstring says what the room holds and what it may import; this test
holds the code to the same rules (:data:`MAY_IMPORT`). Every import counts, type-only ones too
(the core imports no backend, HTTP client or simulator "not even for typing"). A new room must be
declared here before it can hold code, and no module reaches into another module's private names.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "atomic_orders"
#: Repository folder -> the installed name it becomes (pyproject.toml maps them).
FOLDERS = {"fsm": "fsm", "backends": "backends", "simulator": "simulator"}

_CORE = frozenset({"fsm"})
_BACKENDS = frozenset({"backends.scripted", "backends.tastytrade", "backends.quantconnect"})
_BELOW_TOOLS = _CORE | _BACKENDS | {"simulator.broker", "simulator.emulator"}

#: Room -> the other rooms it may import. A module's room is the longest room name its dotted name
#: (below ``atomic_orders.``) starts with. ``backends`` and ``simulator`` are the packages' own
#: ``__init__`` files, which import nothing.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "fsm": frozenset(),
    "backends": frozenset(),
    "backends.scripted": _CORE,
    "backends.tastytrade": _CORE,
    # The QuantConnect adapter routes a live algorithm's orders to TastyTrade.
    "backends.quantconnect": _CORE | {"backends.tastytrade"},
    "simulator": frozenset(),
    "simulator.broker": _CORE,
    "simulator.emulator": _CORE | {"backends.tastytrade", "simulator.broker"},
    "simulator.lean": _CORE | {"backends.quantconnect", "simulator.broker"},
    "simulator.session": _BELOW_TOOLS,
    "simulator.proofs": _BELOW_TOOLS,
    "simulator.crash": _BELOW_TOOLS,
    "simulator.cli": _BELOW_TOOLS | {"simulator.lean", "simulator.session", "simulator.proofs", "simulator.crash",
                                     "simulator.sweep", "simulator.report"},
    # The HTML and CSV reports read a session's event log through its record types.
    "simulator.report": _CORE | {"simulator.session"},
    # Sweeps run sessions and crash campaigns per seed on Dask.
    "simulator.sweep": _BELOW_TOOLS | {"simulator.session", "simulator.crash"},
}

#: Third-party modules a room may not load: the core and the simulated broker speak no HTTP.
NO_HTTP = frozenset({"requests", "urllib3", "httpx", "httpcore", "aiohttp", "http", "websocket", "websockets"})
FORBIDDEN_THIRD_PARTY: dict[str, frozenset[str]] = {"fsm": NO_HTTP, "simulator.broker": NO_HTTP}


def room_of(module: str) -> str | None:
    """``atomic_orders.simulator.broker.market`` -> ``simulator.broker``; None outside the package."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    rest = module[len(PACKAGE) + 1:]
    best: str | None = None
    for room in MAY_IMPORT:
        if (rest == room or rest.startswith(room + ".")) and (best is None or len(room) > len(best)):
            best = room
    return best


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def imports(tree: ast.Module, this: str, is_package: bool) -> list[tuple[int, str, tuple[str, ...]]]:
    """Every import of the module, type-only ones included: (line, absolute module, names taken)."""
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = this.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module, tuple(alias.name for alias in node.names)))
    return found


SOURCES = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_every_room_is_there_and_every_file_is_in_a_room() -> None:
    rooms = {room_of(module_name(p)) for p in SOURCES}
    assert None not in rooms
    assert rooms == set(MAY_IMPORT), f"rooms without rules or rules without rooms: {rooms ^ set(MAY_IMPORT)}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    this = module_name(path)
    room = room_of(this)
    assert room is not None
    allowed = MAY_IMPORT[room] | {room}
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = []
    for line, module, names in imports(tree, this, path.name == "__init__.py"):
        top = module.split(".")[0]
        if top in FOLDERS:
            bad.append(f"line {line}: {module} (the folder's name; installed it is {PACKAGE}.{module})")
            continue
        if top in FORBIDDEN_THIRD_PARTY.get(room, frozenset()):
            bad.append(f"line {line}: {module} (no HTTP in {room})")
            continue
        target = room_of(module)
        # ``from atomic_orders.simulator import broker`` takes the room named by module + name.
        targets = {room_of(f"{module}.{n}") or target for n in names} if names and target else {target}
        for t in targets:
            if t is not None and t not in allowed:
                bad.append(f"line {line}: {module} ({room} may not import {t})")
        if module.startswith(PACKAGE) and module != this:
            bad.extend(f"line {line}: {module}.{n} is private to its module" for n in names
                       if n.startswith("_") and not n.startswith("__"))
    assert bad == [], f"{path.relative_to(ROOT)}: " + "; ".join(bad)


def _own_private_names(tree: ast.Module) -> set[str]:
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            own.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            own.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in own if n.startswith("_")}


def foreign_private_attributes(tree: ast.Module) -> list[str]:
    """``something._name`` where ``_name`` is not a private name this module defines itself.

    A private name belongs to the module that defines it (its classes' ``self._x``, its ``_helpers``,
    its ``__slots__``); reading ``executor._groups`` or ``ledger._net`` from elsewhere is reaching in.
    """
    own = _own_private_names(tree)
    bad = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and node.attr not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reaches_into_another_modules_private_names(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert foreign_private_attributes(tree) == [], path.relative_to(ROOT)


@pytest.mark.parametrize("path", sorted(p for p in SOURCES if p.name == "__init__.py"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_room_says_what_it_holds_and_may_import(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert len(doc.split()) >= 20, f"{path.relative_to(ROOT)}: a paragraph on what the room holds"
    assert "import" in doc.lower(), f"{path.relative_to(ROOT)}: say what the room may import"


def test_the_checks_would_catch_what_they_forbid() -> None:
    src = (
        "from typing import TYPE_CHECKING\n"
        "import requests\n"
        "if TYPE_CHECKING:\n    from atomic_orders.simulator.broker.engine import Scheduler\n"
        "from atomic_orders.fsm.executor import _ALIVE_TRIGGERS\n"
        "from fsm import ticket\n"
        "def f(executor):\n    return executor._groups\n"
    )
    tree = ast.parse(src)
    found = {module for _, module, _ in imports(tree, "atomic_orders.fsm.x", False)}
    assert {"requests", "atomic_orders.simulator.broker.engine", "fsm"} <= found
    assert room_of("atomic_orders.simulator.broker.engine") == "simulator.broker"
    assert room_of("atomic_orders.simulator") == "simulator" and room_of("fsm.group") is None
    assert foreign_private_attributes(tree) == ["line 8: executor._groups"]
    assert foreign_private_attributes(ast.parse("class A:\n    def f(self):\n        self._x = 1\n"
                                                "def g(a):\n    return a._x\n")) == []


#: Core modules imported in a fresh interpreter: what the core loads at run time.
CORE_MODULES = sorted(module_name(p) for p in (ROOT / "fsm").rglob("*.py") if p.name != "__main__.py")


def test_importing_the_core_loads_no_backend_simulator_or_http_module(tmp_path: Path) -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # Run from an empty folder, so only the installed package answers (not the repository's folders).
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         timeout=60)
    loaded = json.loads(out.stdout)
    assert "atomic_orders.fsm.group" in loaded and "transitions" in loaded  # the probe really imported the core
    bad = [m for m in loaded if m.split(".")[0] in NO_HTTP | set(FOLDERS)
           or m.startswith((f"{PACKAGE}.backends", f"{PACKAGE}.simulator"))]
    assert bad == []


def test_the_architecture_page_draws_every_room() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [room for room in MAY_IMPORT if "." in room
               and f"`{room.replace('.', '/')}/" not in page and f"`{room.replace('.', '/')}.py" not in page]
    assert missing == [], f"docs/architecture.md's layers do not show {missing}"
