"""The committed diagrams are drawn from the tables, one view at a time, and still match them.

The dot text is parsed back here (clusters, choices and listings expanded into table cells) so the
checks hold for what is drawn, not for the drawing code's own bookkeeping.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from atomic_orders.fsm.diagrams import (
    DEFAULT_DIR,
    MACHINES,
    VIEWS,
    Cluster,
    Pick,
    View,
    check_all,
    diagram_source,
    layout,
    machine_cells,
    render_all,
    view_source,
)
from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.group import GROUP_MACHINE
from atomic_orders.fsm.machine import MachineSpec, Row
from atomic_orders.fsm.ticket import TICKET_MACHINE

REPO = Path(__file__).resolve().parent.parent
DIAGRAMS = REPO / "diagrams"
HINT = "run `atomic-orders diagrams` to regenerate diagrams/ from the tables"
PARTIAL_TICKET_VIEWS = ("order_ticket_lifecycle", "order_ticket_reconciliation", "order_ticket_anomalies")
#: Readable on a 1,200 px wide page; the full ticket view may be wider (it is there for completeness).
MAX_WIDTH_PX = {stem: 1200.0 for stem in VIEWS} | {"order_ticket": 2000.0}
#: The smallest font drawn, in px at 96 dpi (graphviz writes points: 1 pt = 4/3 px).
MIN_FONT_PX = 14.0

# (source, trigger, guard, dest): one table row for one source state, as drawn or as declared
CellKey = tuple[str, str, str, str]

_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')
_EDGE = re.compile(r'^"?(\w+)"?\s*->\s*"?(\w+)"?\s*(?:\[(.*)\])?$')
_NODE = re.compile(r'^"?(\w+)"?\s*(?:\[(.*)\])?$')
_BR = '<BR ALIGN="LEFT"/>'


def _attrs(text: str) -> dict[str, str]:
    out = {}
    for key, value in _ATTR.findall(text or ""):
        out[key] = value[1:-1] if value.startswith('"') else value
    return out


@attrs.define
class Drawing:
    """What one dot text draws: edges, cluster members, and node/cluster labels."""

    edges: list[tuple[str, str, dict[str, str]]] = attrs.field(factory=list)
    members: dict[str, set[str]] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    nodes: set[str] = attrs.field(factory=set)


def _parse(source: str) -> Drawing:
    d = Drawing()
    stack: list[str] = []
    for raw in source.splitlines()[1:]:
        line = raw.strip()
        sub = re.match(r"subgraph (\w+) \{$", line)
        if sub:
            stack.append(sub.group(1))
            if sub.group(1).startswith("cluster_"):
                d.members[sub.group(1)] = set()
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        edge = _EDGE.match(line)
        if edge:
            d.edges.append((edge.group(1), edge.group(2), _attrs(edge.group(3) or "")))
            continue
        if stack and stack[-1].startswith("cluster_") and re.match(r"\w+=", line):  # the cluster's own attributes
            d.labels[stack[-1]] = _attrs(line).get("label", "")
            continue
        if line.startswith(("graph", "node", "edge", "rank")):
            continue
        node = _NODE.match(line)
        if node:
            name = node.group(1)
            d.nodes.add(name)
            for cluster in stack:
                if cluster.startswith("cluster_"):
                    d.members[cluster].add(name)
            label = _attrs(node.group(2) or "").get("label")
            if label is not None:
                d.labels[name] = label
    return d


def _label_lines(label: str) -> list[str]:
    """The lines of an edge label; a continuation line (``  and ...``) is joined to the one before."""
    out: list[str] = []
    for part in label.split(r"\l"):
        if part.startswith("  and ") and out:
            out[-1] += part[1:]
        elif part:
            out.append(part)
    return out


def _split(line: str) -> tuple[str, str]:
    m = re.fullmatch(r"(\w*)(?: ?\[(.*)\])?", line)
    assert m, f"not a `trigger [guard]` line: {line!r}"
    return m.group(1), m.group(2) or ""


def _listing(label: str) -> list[str]:
    """The rows listed in an HTML label under ``stays on:`` (without the ``(re-enters)`` mark)."""
    m = re.search(r"stays on:</I>" + re.escape(_BR) + r"(.*?)</FONT>", label)
    if not m:
        return []
    lines = [html.unescape(x).replace("  (re-enters)", "") for x in m.group(1).split(_BR)]
    return [x for x in lines if x]


def _edge_label(attrs_: dict[str, str]) -> str:
    return attrs_.get("label") or attrs_.get("xlabel") or attrs_.get("headlabel") or ""


def drawn_cells(source: str) -> set[CellKey]:
    """Every table cell a dot text draws: edges, cluster edges, choices and listings expanded."""
    d = _parse(source)
    out: set[CellKey] = set()
    into_choice: dict[str, tuple[set[str], str]] = {}  # choice -> (sources, trigger)
    for src, dst, a in d.edges:
        if dst.startswith("choice_"):
            sources = d.members[a["ltail"]] if "ltail" in a else {src}
            (trigger,) = _label_lines(_edge_label(a))
            into_choice[dst] = (sources, trigger)
    for src, dst, a in d.edges:
        if src == "__start__" or dst.startswith("choice_"):
            continue
        label = _edge_label(a)
        if src.startswith("choice_"):
            sources, trigger = into_choice[src]
            for line in _label_lines(label):
                guard = _split(line)[1]
                out |= {(s, trigger, guard, dst) for s in sources}
            continue
        sources = d.members[a["ltail"]] if "ltail" in a else {src}
        for line in _label_lines(label):
            trigger, guard = _split(line)
            out |= {(s, trigger, guard, dst) for s in sources}
    for name, label in d.labels.items():
        owners = d.members.get(name, {name})
        for line in _listing(label):
            trigger, guard = _split(line)
            out |= {(s, trigger, guard, s) for s in owners}
    return out


def table_cells(spec: MachineSpec) -> set[CellKey]:
    return {(c.source, c.trigger, c.guard, c.dest) for c in machine_cells(spec)}


def _committed(stem: str, ext: str) -> str:
    path = DIAGRAMS / f"{stem}.{ext}"
    assert path.exists(), f"{path.name} is missing: {HINT}"
    return path.read_text(encoding="utf-8")


def _svg_size(svg: str) -> tuple[float, float]:
    """(width in px, viewBox width): graphviz writes the width in points (1 pt = 4/3 px at 96 dpi)."""
    m = re.search(r'<svg width="([\d.]+)pt" height="[\d.]+pt"\s+viewBox="[\d.]+ [\d.]+ ([\d.]+) [\d.]+"', svg)
    assert m, "no width/viewBox in the svg"
    return float(m.group(1)) * 4 / 3, float(m.group(2))


# -- registry and drift --------------------------------------------------------------------------------


def test_registry_names_every_machine_and_view() -> None:
    assert MACHINES == {"order_ticket": TICKET_MACHINE, "atomic_order_group": GROUP_MACHINE}
    assert list(VIEWS) == [
        "order_ticket_lifecycle",
        "order_ticket_reconciliation",
        "order_ticket_anomalies",
        "order_ticket",
        "atomic_order_group",
    ]
    assert DEFAULT_DIR.resolve() == DIAGRAMS.resolve()


@pytest.mark.parametrize("stem", list(VIEWS))
def test_committed_dot_matches_its_table(stem: str) -> None:
    assert _committed(stem, "dot") == view_source(VIEWS[stem]), f"{stem}.dot no longer matches its table: {HINT}"


def test_check_all_reports_fresh_diagrams_and_a_stale_one(tmp_path: Path) -> None:
    assert check_all(DIAGRAMS) == []
    for stem in VIEWS:
        (tmp_path / f"{stem}.dot").write_text(view_source(VIEWS[stem]), encoding="utf-8")
    (tmp_path / "order_ticket_anomalies.dot").write_text("digraph x {}\n", encoding="utf-8")
    (tmp_path / "atomic_order_group.dot").unlink()
    assert check_all(tmp_path) == ["order_ticket_anomalies.dot", "atomic_order_group.dot"]


def test_full_views_are_the_machines_diagram_source() -> None:
    for stem, spec in MACHINES.items():
        assert diagram_source(spec) == view_source(VIEWS[stem])


# -- every row drawn, nothing else ----------------------------------------------------------------------


@pytest.mark.parametrize("stem", list(VIEWS))
def test_each_view_draws_exactly_its_selection(stem: str) -> None:
    view = VIEWS[stem]
    selected = {(c.source, c.trigger, c.guard, c.dest) for c in view.cells()}
    assert selected, f"{stem} selects no row"
    assert drawn_cells(view_source(view)) == selected


@pytest.mark.parametrize("stem", list(MACHINES))
def test_every_table_row_is_drawn_in_some_view_and_nothing_else(stem: str) -> None:
    spec = MACHINES[stem]
    drawn: set[CellKey] = set()
    for view in VIEWS.values():
        if view.spec is spec:
            drawn |= drawn_cells(_committed(view.stem, "dot"))
    assert drawn == table_cells(spec)


def test_the_three_ticket_views_together_draw_the_whole_table() -> None:
    drawn: set[CellKey] = set()
    for stem in PARTIAL_TICKET_VIEWS:
        drawn |= drawn_cells(_committed(stem, "dot"))
    missing = table_cells(TICKET_MACHINE) - drawn
    assert not missing, f"rows only the full view draws: {sorted(missing)}"
    assert drawn == table_cells(TICKET_MACHINE)


def test_the_coverage_check_sees_a_row_no_view_draws() -> None:
    extra = Row("vanished", "submitted", "expired")  # a trigger no partial view picks
    changed = attrs.evolve(TICKET_MACHINE, rows=(*TICKET_MACHINE.rows, extra))
    drawn: set[CellKey] = set()
    for stem in PARTIAL_TICKET_VIEWS:
        drawn |= drawn_cells(view_source(attrs.evolve(VIEWS[stem], spec=changed)))
    assert table_cells(changed) - drawn == {("submitted", "vanished", "", "expired")}
    # the full view draws it, and the committed full view is stale
    assert ("submitted", "vanished", "", "expired") in drawn_cells(diagram_source(changed))
    assert diagram_source(changed) != _committed("order_ticket", "dot")


def test_a_changed_guard_makes_the_committed_diagram_stale() -> None:
    changed = attrs.evolve(
        GROUP_MACHINE,
        rows=tuple(attrs.evolve(r, conditions=("is_flat",)) if r.trigger == "start" else r for r in GROUP_MACHINE.rows),
    )
    assert diagram_source(changed) != _committed("atomic_order_group", "dot")
    assert ("validated", "start", "is_flat", "executing") in drawn_cells(diagram_source(changed))


# -- what each view looks like ------------------------------------------------------------------------

#: Edges drawn per view (the initial-state arrow not counted). Pinned: a change here is a change to read.
EDGES_PER_VIEW = {
    "order_ticket_lifecycle": 17,  # 4 from the working box
    "order_ticket_reconciliation": 9,  # unsettled box -> choice, 7 branches, working box -> unknown
    "order_ticket_anomalies": 2,  # late fills that complete the order; the rest is listed
    "order_ticket": 28,
    "atomic_order_group": 10,
}


@pytest.mark.parametrize("stem", list(VIEWS))
def test_edges_per_view_are_pinned(stem: str) -> None:
    edges = [(s, d) for s, d, _ in _parse(_committed(stem, "dot")).edges if s != "__start__"]
    assert len(edges) == EDGES_PER_VIEW[stem]


@pytest.mark.parametrize("stem", list(VIEWS))
def test_no_self_loop_is_drawn(stem: str) -> None:
    d = _parse(_committed(stem, "dot"))
    loops = [(s, t) for s, t, _ in d.edges if s == t]
    assert not loops, f"{stem}: self-loops drawn {loops}; they belong in the state's listing"
    # and the rows that keep a state are in a listing, not lost
    spec = VIEWS[stem].spec
    stays = {(c.source, c.trigger, c.guard) for c in VIEWS[stem].cells() if c.stays}
    listed = {(s, t, g) for s, t, g, dst in drawn_cells(_committed(stem, "dot")) if s == dst}
    assert stays == listed, spec.name


def test_cluster_edges_stand_for_every_member() -> None:
    d = _parse(_committed("order_ticket_lifecycle", "dot"))
    working = d.members["cluster_working"]
    assert working == {"submitting", "submitted", "partially_filled", "cancel_pending", "update_pending"}
    from_box = {(t, _edge_label(a)) for _s, t, a in d.edges if a.get("ltail") == "cluster_working"}
    assert from_box == {
        ("filled", r"fill [completes_order]\l"),
        ("canceled", r"canceled\l"),
        ("rejected", r"rejected\l"),
        ("expired", r"expired\l"),
    }


def test_reconciliation_is_one_trigger_and_a_choice() -> None:
    d = _parse(_committed("order_ticket_reconciliation", "dot"))
    into = [(s, t, a) for s, t, a in d.edges if t.startswith("choice_")]
    assert len(into) == 1 and into[0][2]["ltail"] == "cluster_unsettled"
    assert d.members["cluster_unsettled"] == {
        "submitting", "submitted", "partially_filled", "cancel_pending", "update_pending", "unknown",
    }
    heads = {t for s, t, _ in d.edges if s == into[0][1]}
    assert heads == {"unknown", "submitted", "partially_filled", "filled", "canceled", "rejected", "expired"}


def test_group_self_loops_are_listed_by_their_state_only() -> None:
    d = _parse(_committed("atomic_order_group", "dot"))
    assert _listing(d.labels.get("invalid", "")) == []  # the issue: `invalid` seemed to accept ticket_update
    assert _listing(d.labels["failed"]) == ["broker_disputed", "ticket_update"]
    assert _listing(d.labels["rolling_back"]) == ["deadline", "abort", "ticket_update [else]"]
    assert _listing(d.labels["cluster_settled"]) == ["ticket_update [else]"]
    assert d.members["cluster_settled"] == {"committed", "rolled_back"}
    out = [_edge_label(a) for s, t, a in d.edges if (s, t) == ("executing", "rolling_back")]
    assert _label_lines(out[0]) == ["ticket_update [has_failed_leg]", "deadline", "submit_failed", "abort"]


@pytest.mark.parametrize("stem", list(VIEWS))
def test_terminal_and_initial_states_are_marked(stem: str) -> None:
    view = VIEWS[stem]
    spec = view.spec
    source = _committed(stem, "dot")
    for line in source.splitlines():
        m = _NODE.match(line.strip())
        if m and m.group(1) in spec.states and m.group(2):
            marked = "peripheries=2" in m.group(2)
            assert marked == (m.group(1) in spec.terminal), line
    if spec.initial in layout(view).states:
        assert any(s == "__start__" and t == spec.initial for s, t, _ in _parse(source).edges)


@pytest.mark.parametrize("stem", list(VIEWS))
def test_committed_svg_is_readable_at_its_width(stem: str) -> None:
    svg = _committed(stem, "svg")
    assert "Generated by graphviz" not in svg
    width_px, view_box = _svg_size(svg)
    assert width_px <= MAX_WIDTH_PX[stem], f"{stem}.svg is {width_px:.0f} px wide"
    # drawn at its natural size (not shrunk to fit), so a font's size is its size on the page
    assert abs(width_px * 3 / 4 - view_box) < 1.5
    sizes = [float(x) for x in re.findall(r'font-size="([\d.]+)"', svg)]
    assert sizes and min(sizes) * 4 / 3 >= MIN_FONT_PX, f"{stem}.svg has a {min(sizes)} pt font"
    for state in layout(VIEWS[stem]).states:
        assert f">{state}</text>" in svg, f"{stem}.svg lacks state {state!r}: {HINT}"


# -- the drawing code's own rules ---------------------------------------------------------------------


def test_overlapping_clusters_are_refused() -> None:
    bad = attrs.evolve(
        VIEWS["order_ticket_lifecycle"],
        clusters=(
            Cluster("a", "a", {"submitted", "partially_filled"}),
            Cluster("b", "b", {"partially_filled", "filled"}),
        ),
    )
    with pytest.raises(ValueError, match="overlap"):
        layout(bad)


def test_a_bad_cluster_label_mode_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        View("x", TICKET_MACHINE, "t", "c", picks=(Pick(),), cluster_labels="float")
    assert "cluster_labels" in str(info.value) and "float" in str(info.value)


def test_pick_selects_by_every_given_field() -> None:
    cells = machine_cells(TICKET_MACHINE)
    picked = [c for c in cells if Pick(triggers={"fill"}, sources={"canceled"}, internal=False).matches(c)]
    assert [(c.source, c.guard, c.dest) for c in picked] == [("canceled", "completes_order", "filled")]
    assert all(Pick().matches(c) for c in cells)


def test_source_is_deterministic_and_has_no_paths_or_times() -> None:
    for view in VIEWS.values():
        text = view_source(view)
        assert text == view_source(view)
        assert str(REPO) not in text
        assert "graphviz version" not in text.lower()
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text)


def test_source_does_not_depend_on_hash_seed() -> None:
    code = (
        "import sys; from atomic_orders.fsm.diagrams import VIEWS, view_source; "
        "sys.stdout.write(''.join(view_source(v) for v in VIEWS.values()))"
    )
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outs.add(res.stdout)
    assert outs == {"".join(view_source(v) for v in VIEWS.values())}


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` binary not installed")
def test_render_all_writes_every_view(tmp_path: Path) -> None:
    paths = render_all(tmp_path)
    assert [p.name for p in paths] == [f"{stem}.{ext}" for stem in VIEWS for ext in ("dot", "svg")]
    for stem, view in VIEWS.items():
        assert (tmp_path / f"{stem}.dot").read_text(encoding="utf-8") == view_source(view)
        svg = (tmp_path / f"{stem}.svg").read_text(encoding="utf-8")
        assert svg.startswith("<?xml") or svg.startswith("<svg")
        assert "</svg>" in svg and "Generated by graphviz" not in svg
        assert _svg_size(svg)[0] <= MAX_WIDTH_PX[stem]
    # a second run is byte-identical and leaves unchanged files alone
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}
    assert render_all(tmp_path) == paths
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths} == before
