"""The generated parts of ``docs/``: written by ``atomic-orders docs``, checked by ``--check``.

Two kinds of generated text, both built from the code so they cannot drift from it:

* a whole file, ``docs/state-tables.md``: every state and transition of the machines
  (:func:`atomic_orders.fsm.state_tables.state_tables_markdown`);
* regions inside hand-written pages, between ``<!-- BEGIN GENERATED: name -->`` and
  ``<!-- END GENERATED: name -->`` lines. Any ``docs/*.md`` may hold a region; its ``name`` must be
  one of :data:`REGIONS` (an unknown name is an error, not silently left alone). Everything outside
  the markers is left untouched.

The output is deterministic (table order, no times, no paths).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import attrs

from atomic_orders.backends.tastytrade.parsing import STATUS_TABLE
from atomic_orders.fsm.state_tables import state_tables_markdown
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.emulator.faults import HttpFaults

__all__ = [
    "DEFAULT_DOCS_DIR",
    "REGIONS",
    "STATE_TABLES_FILE",
    "check_docs",
    "chaos_presets_markdown",
    "expected_docs",
    "fill_regions",
    "http_fault_presets_markdown",
    "status_table_markdown",
    "write_docs",
]

#: The repository's ``docs/`` directory (next to the packages).
DEFAULT_DOCS_DIR: Path = Path(__file__).resolve().parents[2] / "docs"
#: The wholly generated file, relative to the docs directory.
STATE_TABLES_FILE = "state-tables.md"

_REGION = re.compile(
    r"^<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n(?P<body>.*?)^<!-- END GENERATED: (?P=name) -->$",
    re.MULTILINE | re.DOTALL,
)
_BEGIN = re.compile(r"^<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->$", re.MULTILINE)


def status_table_markdown() -> str:
    """Every TastyTrade order status and what it means here (from ``backends/tastytrade/parsing.py``)."""
    lines = [
        "| TastyTrade `status` | phase | terminal | reconciliation reports | meaning |",
        "|---|---|---|---|---|",
    ]
    for status, info in STATUS_TABLE.items():
        reported = info.broker_status.name
        if not info.terminal:
            reported += " (PARTIALLY_FILLED once a leg has a fill)"
        lines.append(
            f"| `{status}` | {info.phase} | {'yes' if info.terminal else 'no'} | {reported} | {info.meaning} |"
        )
    return "\n".join(lines) + "\n"


def _knob_value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ", ".join(f"{reason} ({weight:g})" for reason, weight in value)
    return str(value)


def chaos_presets_markdown() -> str:
    """Every knob of :class:`~atomic_orders.simulator.broker.chaos.ChaosProfile` and its value in each preset."""
    presets = [ChaosProfile.preset(name) for name in ChaosProfile.preset_names()]
    header = "| knob | " + " | ".join(f"`{p.name}`" for p in presets) + " |"
    lines = [header, "|---|" + "---|" * len(presets)]
    for field in attrs.fields(ChaosProfile):
        if field.name == "name":
            continue
        values = [_knob_value(getattr(p, field.name)) for p in presets]
        lines.append(f"| `{field.name}` | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def http_fault_presets_markdown() -> str:
    """Every knob of :class:`~atomic_orders.simulator.emulator.faults.HttpFaults` in each preset.

    The presets are ``none``, ``light`` and ``heavy``.
    """
    names = ("none", "light", "heavy")
    presets = [HttpFaults.preset(name) for name in names]
    lines = ["| knob | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    for field in attrs.fields(HttpFaults):
        lines.append(f"| `{field.name}` | " + " | ".join(_knob_value(getattr(p, field.name)) for p in presets) + " |")
    return "\n".join(lines) + "\n"


#: Generated regions by name: what a ``<!-- BEGIN GENERATED: name -->`` block is filled with.
REGIONS: dict[str, Callable[[], str]] = {
    "tastytrade-status-table": status_table_markdown,
    "chaos-presets": chaos_presets_markdown,
    "http-fault-presets": http_fault_presets_markdown,
}


def fill_regions(text: str, where: str = "<text>") -> str:
    """``text`` with every generated region refilled; ``ValueError`` names an unknown or unclosed region."""
    for m in _BEGIN.finditer(text):
        if m["name"] not in REGIONS:
            raise ValueError(f"{where}: unknown generated region {m['name']!r}; known: {', '.join(REGIONS)}")
    closed = {m["name"] for m in _REGION.finditer(text)}
    unclosed = [m["name"] for m in _BEGIN.finditer(text) if m["name"] not in closed]
    if unclosed:
        raise ValueError(f"{where}: generated region {unclosed[0]!r} has no '<!-- END GENERATED: {unclosed[0]} -->'")

    def refill(m: re.Match[str]) -> str:
        name = m["name"]
        return f"<!-- BEGIN GENERATED: {name} -->\n{REGIONS[name]()}<!-- END GENERATED: {name} -->"

    return _REGION.sub(refill, text)


def expected_docs(docs_dir: Path = DEFAULT_DOCS_DIR) -> dict[Path, str]:
    """Every generated file or file with generated regions, and the content it should have."""
    docs_dir = Path(docs_dir)
    out: dict[Path, str] = {docs_dir / STATE_TABLES_FILE: state_tables_markdown()}
    for path in sorted(docs_dir.glob("*.md")):
        if path.name == STATE_TABLES_FILE:
            continue
        text = path.read_text(encoding="utf-8")
        if _BEGIN.search(text):
            out[path] = fill_regions(text, path.name)
    return out


def write_docs(docs_dir: Path = DEFAULT_DOCS_DIR) -> list[Path]:
    """Write what :func:`expected_docs` says; return the files that changed (others are not touched)."""
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for path, text in expected_docs(docs_dir).items():
        data = text.encode("utf-8")
        if path.exists() and path.read_bytes() == data:
            continue
        path.write_bytes(data)
        changed.append(path)
    return changed


def check_docs(docs_dir: Path = DEFAULT_DOCS_DIR) -> list[str]:
    """Names of the files whose generated content is stale or missing (empty: all fresh)."""
    stale = []
    for path, text in expected_docs(Path(docs_dir)).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
    return stale
