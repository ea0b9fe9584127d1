"""The generated parts of docs/ come from the code, and the committed files still match it."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from atomic_orders.backends.tastytrade.parsing import STATUS_TABLE
from atomic_orders.fsm.group import GROUP_MACHINE
from atomic_orders.fsm.machine import Row
from atomic_orders.fsm.state_tables import DOCUMENTED, DocumentedMachine, machine_section, state_tables_markdown
from atomic_orders.fsm.ticket import TICKET_MACHINE
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.cli.docs import (
    DEFAULT_DOCS_DIR,
    REGIONS,
    STATE_TABLES_FILE,
    check_docs,
    expected_docs,
    fill_regions,
    write_docs,
)
from atomic_orders.simulator.cli.main import main

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
HINT = "run `atomic-orders docs` to regenerate the generated parts of docs/"


def test_the_docs_dir_is_the_repository_docs() -> None:
    assert DEFAULT_DOCS_DIR.resolve() == DOCS.resolve()
    assert [m.spec for m in DOCUMENTED] == [TICKET_MACHINE, GROUP_MACHINE]


def test_committed_docs_are_fresh() -> None:
    assert check_docs(DOCS) == [], HINT
    committed = (DOCS / STATE_TABLES_FILE).read_text(encoding="utf-8")
    assert committed == state_tables_markdown(), HINT


def test_every_region_the_generator_knows_is_used_somewhere() -> None:
    texts = "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    for name in REGIONS:
        assert f"<!-- BEGIN GENERATED: {name} -->" in texts, f"region {name} is not used by any doc"


@pytest.mark.parametrize("machine", DOCUMENTED, ids=lambda m: m.spec.name)
def test_every_state_row_guard_and_callback_is_documented(machine: DocumentedMachine) -> None:
    spec = machine.spec
    text = machine_section(machine)
    table = text.split("### Transitions (table order)", 1)[1].split("### From each state", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert len(rows) == len(spec.rows)
    for line, row in zip(rows, spec.rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert cells[1] == f"`{row.trigger}`"
        assert cells[2] == ", ".join(f"`{s}`" for s in row.source)
        assert cells[3] == (f"`{row.dest}`" if row.dest else "internal (state kept)")
        for guard in row.conditions:
            assert f"`{guard}`" in cells[4]
        for guard in row.unless:
            assert f"not `{guard}`" in cells[4]
        for effect in row.before:
            assert f"`{effect}`" in cells[5]
        for effect in row.after:
            assert f"`{effect}`" in cells[6]
    for state in spec.states:
        assert f"| `{state}` |" in text
    terminal = ", ".join(f"`{s}`" for s in spec.states if s in spec.terminal)
    assert f"- Terminal states: {terminal}:" in text
    assert f"- Initial state: `{spec.initial}`." in text
    for name in {g for r in spec.rows for g in r.conditions + r.unless}:
        doc = (machine.guards[name].__doc__ or "").strip().splitlines()[0]
        assert f"| `{name}` | {doc} |" in text


def test_a_changed_table_makes_the_committed_file_stale() -> None:
    committed = (DOCS / STATE_TABLES_FILE).read_text(encoding="utf-8")
    extra = attrs.evolve(TICKET_MACHINE, rows=(*TICKET_MACHINE.rows, Row("expired", "new", "expired")))
    changed = tuple(attrs.evolve(m, spec=extra) if m.spec is TICKET_MACHINE else m for m in DOCUMENTED)
    assert state_tables_markdown(changed) != committed
    new_guard = attrs.evolve(
        GROUP_MACHINE,
        rows=tuple(attrs.evolve(r, unless=("is_flat",)) if r.trigger == "start" else r for r in GROUP_MACHINE.rows),
    )
    changed = tuple(attrs.evolve(m, spec=new_guard) if m.spec is GROUP_MACHINE else m for m in DOCUMENTED)
    text = state_tables_markdown(changed)
    assert text != committed
    assert "| `start` | `validated` | `executing` | not `is_flat` |" in text


def test_status_and_preset_tables_come_from_the_code() -> None:
    status = REGIONS["tastytrade-status-table"]()
    for name, info in STATUS_TABLE.items():
        assert f"| `{name}` | {info.phase} | {'yes' if info.terminal else 'no'} | {info.broker_status.name}" in status
    chaos = REGIONS["chaos-presets"]()
    hostile = ChaosProfile.hostile()
    assert f"| `reject_rate` | 0 | {ChaosProfile.calm().reject_rate:g} | {ChaosProfile.rough().reject_rate:g} | " \
           f"{hostile.reject_rate:g} |" in chaos
    assert chaos.count("\n") == len(attrs.fields(ChaosProfile)) - 1 + 2  # every knob but the name, + header
    assert "| `error_rate` |" in REGIONS["http-fault-presets"]()


def test_regions_are_refilled_and_the_rest_is_kept(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- BEGIN GENERATED: chaos-presets -->\nold\n<!-- END GENERATED: chaos-presets -->\n"
                    "outro\n", encoding="utf-8")
    assert sorted(p.name for p in expected_docs(tmp_path)) == ["page.md", STATE_TABLES_FILE]
    assert sorted(check_docs(tmp_path)) == ["page.md", STATE_TABLES_FILE]
    assert sorted(p.name for p in write_docs(tmp_path)) == ["page.md", STATE_TABLES_FILE]
    text = page.read_text(encoding="utf-8")
    assert text.startswith("intro\n<!-- BEGIN GENERATED: chaos-presets -->\n| knob |")
    assert text.endswith("<!-- END GENERATED: chaos-presets -->\noutro\n")
    assert check_docs(tmp_path) == []
    assert write_docs(tmp_path) == []  # fresh files are not rewritten


def test_unknown_or_unclosed_regions_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown generated region 'nope'"):
        fill_regions("<!-- BEGIN GENERATED: nope -->\n<!-- END GENERATED: nope -->\n", "x.md")
    with pytest.raises(ValueError, match="'chaos-presets' has no"):
        fill_regions("<!-- BEGIN GENERATED: chaos-presets -->\nno end\n", "x.md")


def test_cli_docs_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 1
    assert f"{STATE_TABLES_FILE} is stale" in capsys.readouterr().out
    assert main(["docs", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / STATE_TABLES_FILE)
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 0
    (tmp_path / STATE_TABLES_FILE).write_text("edited by hand\n", encoding="utf-8")
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 1
