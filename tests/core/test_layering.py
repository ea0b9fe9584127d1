"""The core (fsm/) depends on no backend, no simulator and no HTTP client."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FSM = ROOT / "fsm"

#: Top-level packages the core must never load (backends, the simulator, HTTP clients).
FORBIDDEN = (
    "backends", "simulator", "requests", "urllib3", "httpx", "httpcore", "aiohttp", "http", "websocket", "websockets",
)

#: Core modules to import in the fresh interpreter (the executor and diagrams are checked statically).
CORE_MODULES = (
    "fsm",
    "atomic_orders.fsm.invariants",
    "atomic_orders.fsm.group",
    "atomic_orders.fsm.ticket",
    "atomic_orders.fsm.events",
    "atomic_orders.fsm.machine",
    "atomic_orders.fsm.ledger",
    "atomic_orders.fsm.leg",
    "atomic_orders.fsm.strategy",
    "atomic_orders.fsm.symbol",
    "atomic_orders.fsm.pricing",
    "atomic_orders.fsm.orders",
    "atomic_orders.fsm.clock",
    "atomic_orders.fsm.errors",
    "atomic_orders.fsm.execution_policy",
    "atomic_orders.fsm.journal",
    "atomic_orders.fsm.journal.store",
    "atomic_orders.fsm.journal.codec",
    "atomic_orders.fsm.journal.recorder",
    "atomic_orders.fsm.recovery",
)


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def test_importing_the_core_loads_no_backend_simulator_or_http_module() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    loaded = json.loads(out.stdout)
    assert "atomic_orders.fsm.group" in loaded and "transitions" in loaded  # the probe really imported the core
    assert [m for m in loaded if _forbidden(m)] == []


def test_forbidden_predicate() -> None:
    assert _forbidden("requests.adapters") and _forbidden("http.client") and _forbidden("backends")
    assert not _forbidden("atomic_orders.fsm.orders") and not _forbidden("httplib2x") and not _forbidden("transitions")


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Every module imported at run time (imports under ``if TYPE_CHECKING:`` are type-only)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if _is_type_checking_block(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _all_imports(tree: ast.Module) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


CORE_FILES = sorted(FSM.rglob("*.py"))


def test_there_are_core_files() -> None:
    names = {p.name for p in CORE_FILES}
    assert {"ticket.py", "group.py", "machine.py", "invariants.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_core_file_imports_backends_simulator_or_http(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [(line, mod) for line, mod in runtime_imports(tree) if _forbidden(mod)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"
    # Type-only imports may name a backend's interface (the executor's ExecutionBackend), never
    # the simulator or an HTTP client.
    typed = [(line, mod) for line, mod in _all_imports(tree) if _forbidden(mod) and mod.split(".")[0] != "backends"]
    assert typed == [], f"{path.relative_to(ROOT)} imports {typed}"


def test_the_static_check_would_catch_a_forbidden_import() -> None:
    src = (
        "from typing import TYPE_CHECKING\n"
        "import requests\n"
        "if TYPE_CHECKING:\n    from atomic_orders.fsm.ports import ExecutionBackend\n"
        "def f():\n    from simulator import engine\n"
    )
    found = {mod for _, mod in runtime_imports(ast.parse(src)) if _forbidden(mod)}
    assert found == {"requests", "simulator"}
