"""One self-contained HTML page of a session: charts, each group's timeline, a filterable table.

Drawn with plotly (charts as data plus plotly.js, which is inlined: the page fetches nothing, so it
opens offline and from a mail attachment). The summary charts are built here; each group's
timeline and the group table are drawn in the page from one embedded JSON block, so a session of
10,000 groups stays one figure and one table page at a time (the timeline of the group picked, 50
rows per page) instead of 10,000 figures.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from atomic_orders.simulator.report.files import write_whole
from atomic_orders.simulator.report.log import ORDER_KINDS, SessionLog
from atomic_orders.simulator.session.records import OUTCOMES, GroupRecord

__all__ = ["OUTCOME_COLORS", "render_html", "write_html"]

#: One color per outcome, the same in every chart and in the table.
OUTCOME_COLORS = {"committed": "#2e7d32", "rolled_back": "#ef6c00", "failed": "#c62828", "invalid": "#757575"}
#: Width of a bucket of the outcome-over-time chart, in simulated seconds.
BUCKET_SECONDS = 15 * 60
#: plotly's options for every chart: no plotly logo linking to its website.
_CONFIG = {"displaylogo": False, "responsive": True}


def _hhmm(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def _dollars(value: Decimal) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _fig_html(fig: Any, div_id: str, *, first: bool) -> str:
    import plotly.io as pio

    # plotly.js once, inlined into the first chart's block: no CDN, nothing fetched when opened.
    return str(pio.to_html(fig, full_html=False, include_plotlyjs=first, div_id=div_id, config=_CONFIG,
                           include_mathjax=False))


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {"title": {"text": title}, "height": 340, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                              "template": "plotly_white"}
    layout.update(extra)
    return layout


def _outcomes_over_time(groups: Sequence[GroupRecord]) -> Any:
    import plotly.graph_objects as go

    counts: dict[str, Counter[int]] = {o: Counter() for o in OUTCOMES}
    for g in groups:
        t = g.settled_at if g.settled_at is not None else g.submitted_at
        if t is not None:
            counts[g.outcome][int(t // BUCKET_SECONDS)] += 1
    buckets = sorted({b for c in counts.values() for b in c})
    labels = [f"T+{_hhmm(b * BUCKET_SECONDS)}" for b in buckets]
    fig = go.Figure(layout=_layout(f"Outcomes over the session ({BUCKET_SECONDS // 60}-minute buckets, by the time "
                                   "each group settled)", barmode="stack",
                                   xaxis={"title": {"text": "time since the open"}},
                                   yaxis={"title": {"text": "groups"}}))
    for outcome in OUTCOMES:
        fig.add_bar(name=outcome, x=labels, y=[counts[outcome][b] for b in buckets],
                    marker_color=OUTCOME_COLORS[outcome])
    if not buckets:  # as the other charts say it: not empty axes that look like a drawing failed
        fig.add_annotation(text="no group to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def _histogram(values: list[float], title: str, xtitle: str, color: str, *, log_y: bool = False) -> Any:
    import plotly.graph_objects as go

    yaxis: dict[str, Any] = {"title": {"text": "groups (log scale)" if log_y else "groups"}}
    if log_y:  # most groups settle at once; the tail is what a trader looks for
        yaxis["type"] = "log"
    fig = go.Figure(layout=_layout(title, xaxis={"title": {"text": xtitle}}, yaxis=yaxis, bargap=0.05))
    fig.add_histogram(x=values, marker_color=color, nbinsx=60, name=xtitle)
    if not values:
        fig.add_annotation(text="no group to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def _bars(counts: Mapping[str, int], title: str, color: str) -> Any:
    import plotly.graph_objects as go

    items = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))
    fig = go.Figure(layout=_layout(title, yaxis={"title": {"text": "count"}}, height=380,
                                   margin={"l": 60, "r": 20, "t": 50, "b": 120}))
    fig.add_bar(x=[k for k, _ in items], y=[v for _, v in items], marker_color=color, name=title)
    if not items:
        fig.add_annotation(text="none", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


def _int_counts(data: Any) -> dict[str, int]:
    """``{name: count}`` of a report section, ints only (booleans and nested objects are not counts)."""
    if not isinstance(data, Mapping):
        return {}
    return {str(k): v for k, v in data.items() if type(v) is int}


def _page_data(log: SessionLog) -> dict[str, Any]:
    """What the page's script draws from: the groups as columns, each group's events, the outages."""
    gs = log.groups
    kinds = {k: i for i, k in enumerate(ORDER_KINDS)}
    events: dict[str, list[list[Any]]] = {}
    for gid, evs in log.events.items():
        events[gid] = [[round(e.t, 3), kinds[e.kind], e.ref.split("-", 1)[-1], e.detail] for e in evs]
    return {
        "kinds": list(ORDER_KINDS),
        "colors": OUTCOME_COLORS,
        "groups": {
            "group": [g.group for g in gs],
            "strategy": [g.strategy for g in gs],
            "quantity": [g.quantity for g in gs],
            "outcome": [g.outcome for g in gs],
            "reason": [g.reason or "" for g in gs],
            "detail": [g.reason_detail or "" for g in gs],
            "submitted": [g.submitted_at for g in gs],
            "settle": [None if g.settle_seconds is None else round(g.settle_seconds, 3) for g in gs],
            "entry": [str(g.entry) for g in gs],
            "unwind": [str(g.unwind) for g in gs],
            "pnl": [str(g.pnl) for g in gs],
            "slippage": [None if g.slippage is None else str(g.slippage) for g in gs],
            "fills": [g.fills for g in gs],
            "orders": [g.orders for g in gs],
            "unwinds": [g.unwind_orders for g in gs],
            "residual": [", ".join(f"{k} {v:+d}" for k, v in sorted(g.residual.items())) for g in gs],
        },
        "events": events,
        "outages": [[round(a, 3), round(b, 3)] for a, b in log.outages],
    }


def _json_for_script(data: Any) -> str:
    # Inside <script>, "</" would end the block early: JSON's \u003c reads back as "<".
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def _totals(groups: Sequence[GroupRecord]) -> list[tuple[str, str]]:
    fees = [g.fees for g in groups if g.fees is not None]
    slippage = [g.slippage for g in groups if g.slippage is not None]
    outcomes = Counter(g.outcome for g in groups)
    return [
        *((o.replace("_", " "), f"{outcomes.get(o, 0):,}") for o in OUTCOMES),
        ("entries (credit +, debit -)", _dollars(sum((g.entry for g in groups), Decimal(0)))),
        ("unwind costs", _dollars(sum((g.unwind for g in groups), Decimal(0)))),
        ("fees", "not reported" if not fees else _dollars(sum(fees, Decimal(0)))),
        ("P&L at fill prices", _dollars(sum((g.pnl for g in groups), Decimal(0)))),
        ("slippage vs mid (+ = worse)", _dollars(sum(slippage, Decimal(0))) if slippage else "-"),
    ]


def _worst(groups: Sequence[GroupRecord], n: int = 5) -> str:
    """The groups to look at first, as buttons that draw their timeline: longest settle, largest
    unwind cost, every failed one (at most 50) with its residual."""

    def buttons(picked: Sequence[GroupRecord], label: Any) -> str:
        return " ".join(f'<button type="button" class="pick" data-group="{html.escape(g.group)}">'
                        f"{html.escape(g.group)} {html.escape(label(g))}</button>" for g in picked) or "none"

    settle = sorted((g for g in groups if g.settle_seconds), key=lambda g: -(g.settle_seconds or 0))
    # What undoing cost (entry + unwind), as the text report ranks them: the unwind's cash alone
    # is mostly the credit taken at entry bought back.
    unwind = sorted((g for g in groups if g.round_trip_cost < 0), key=lambda g: (g.round_trip_cost, g.group))
    failed = [g for g in groups if g.outcome == "failed"]
    rows = [("longest settle", buttons(settle[:n], lambda g: f"{g.settle_seconds:.1f} s")),
            ("largest unwind cost", buttons(unwind[:n], lambda g: _dollars(g.round_trip_cost))),
            (f"failed ({len(failed)})", buttons(failed[:50], lambda g: ", ".join(
                f"{k} {v:+d}" for k, v in sorted(g.residual.items())) or "no residual"))]
    return "".join(f'<div class="bar"><b>{k}</b> {v}</div>' for k, v in rows)


def render_html(log: SessionLog, *, title: str | None = None) -> str:
    """The report page of ``log`` as one HTML document (UTF-8 text, plotly.js inlined, about 5 MB
    plus ~0.5 kB per group)."""
    h = log.header
    groups = log.groups
    title = title or (f"atomic-orders session: seed {h.seed}, profile {h.profile}, {h.mode}, "
                      f"{len(groups):,} groups")
    rollback = Counter(g.reason for g in groups if g.reason is not None)
    settle = [g.settle_seconds for g in groups if g.settle_seconds is not None]
    pnl = [float(g.pnl) for g in groups]
    slippage = [float(g.slippage) for g in groups if g.slippage is not None]
    charts = [
        ("outcomes", _outcomes_over_time(groups)),
        ("settle", _histogram(settle, "Settle time (first fill to committed or rolled back)", "simulated seconds",
                              "#1565c0", log_y=True)),
        ("pnl", _histogram(pnl, "P&L per group at fill prices (entry + unwind - fees)", "dollars", "#6a1b9a")),
        ("slippage", _histogram(slippage, "Slippage per committed group vs mid at submission (+ = worse for us)",
                                "dollars", "#00838f")),
        ("reasons", _bars(rollback, "Why groups rolled back, failed or were refused", OUTCOME_COLORS["rolled_back"])),
        ("chaos", _bars(_int_counts(log.report.get("chaos")), "Broker activity and chaos injected", "#5d4037")),
    ]
    http_faults = _int_counts(log.report.get("http_faults"))
    if http_faults:
        charts.append(("http", _bars(http_faults, "HTTP faults injected by the emulator", "#455a64")))
    blocks = [f'<div class="chart">{_fig_html(fig, f"chart-{name}", first=i == 0)}</div>'
              for i, (name, fig) in enumerate(charts)]
    totals = "".join(f'<div class="card"><div class="k">{html.escape(k)}</div><div class="v">{html.escape(v)}</div>'
                     "</div>" for k, v in _totals(groups))
    params = ", ".join(f"{k} {html.escape(str(v))}" for k, v in
                       (("seed", h.seed), ("profile", h.profile), ("mode", h.mode), ("backend", h.backend),
                        ("HTTP faults", h.http_faults), ("groups", f"{h.groups:,}")))
    worst = _worst(groups)
    # A log cut short (a killed session, a truncated copy) still draws, but says so: without this
    # line a log cut before its group lines read as a whole session of 0 groups.
    cut = "" if log.report and len(groups) == h.groups else (
        f'<div class="warn">This event log is incomplete: {len(groups):,} of the session\'s {h.groups:,} groups '
        f"recorded{'' if log.report else ', and no closing report line'} (the session did not finish writing "
        "it, or the file was cut). Everything below covers only what it holds.</div>")
    filters = "".join(f'<button type="button" data-outcome="{o}">{o.replace("_", " ")}</button>'
                      for o in ("all", *OUTCOMES))
    return _PAGE.format(
        title=html.escape(title), params=params, cut=cut, totals=totals, charts="\n".join(blocks), filters=filters,
        worst=worst,
        data=_json_for_script(_page_data(log)), script=_SCRIPT, style=_STYLE,
    )


def write_html(log: SessionLog, path: Path, *, title: str | None = None) -> Path:
    """Write :func:`render_html` to ``path`` (its folders created; whole or not at all); return ``path``."""
    return write_whole(path, render_html(log, title=title))


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 24px 40px; color: #222; }
h1 { font-size: 22px; margin: 18px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.params { color: #555; margin-bottom: 12px; }
.warn { background: #fff3e0; border: 1px solid #ef6c00; border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.card .k { font-size: 12px; color: #666; } .card .v { font-size: 18px; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px; }
.chart { border: 1px solid #eee; border-radius: 6px; min-width: 0; }
#timeline { border: 1px solid #eee; border-radius: 6px; min-height: 360px; }
.bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
button { border: 1px solid #bbb; background: #f7f7f7; border-radius: 4px; padding: 4px 10px; cursor: pointer; }
button.on { background: #1565c0; color: #fff; border-color: #1565c0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 6px; text-align: right; white-space: nowrap; }
th { background: #fafafa; position: sticky; top: 0; }
td.l, th.l { text-align: left; } tbody tr { cursor: pointer; } tbody tr:hover { background: #f1f8ff; }
tr.sel { background: #e3f2fd; }
.o { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 5px; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<div class="params">{params}. Money in dollars (price x 100 x contracts); times in simulated seconds since the
open.</div>
{cut}
<div class="cards">{totals}</div>
<h2>Session</h2>
<div class="charts">
{charts}
</div>
<h2>Groups to look at</h2>
<div id="worst">{worst}</div>
<h2>Group timeline</h2>
<div class="bar"><label for="group-pick">group</label><input id="group-pick" list="group-ids" size="12">
<datalist id="group-ids"></datalist><span id="group-info"></span></div>
<div id="timeline"></div>
<h2>Groups</h2>
<div class="bar" id="filters">{filters}<span id="count"></span></div>
<table id="groups"><thead><tr>
<th class="l">group</th><th class="l">strategy</th><th>qty</th><th class="l">outcome</th><th class="l">reason</th>
<th>submitted</th><th>settle s</th><th>entry $</th><th>unwind $</th><th>P&amp;L $</th><th>slippage $</th>
<th>fills</th><th>orders</th><th>unwinds</th><th class="l">residual</th>
</tr></thead><tbody></tbody></table>
<div class="bar"><button type="button" id="prev">previous</button><span id="page"></span>
<button type="button" id="next">next</button></div>
<script type="application/json" id="session-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""

# The page's own script: the timeline of the group picked, and the group table (filter, pages).
_SCRIPT = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("session-data").textContent);
  var G = D.groups, N = G.group.length, PAGE = 50;
  var SYMBOLS = {received: "triangle-right", acknowledged: "circle-open", fill: "circle",
    replace_requested: "diamond-open", updated: "diamond", update_rejected: "x", cancel_requested: "square-open",
    canceled: "square", cancel_rejected: "x-open", rejected: "x", expired: "hourglass", duplicate: "star-open",
    lost_in_outage: "cross", silenced: "hexagon-open"};
  var index = {};
  for (var i = 0; i < N; i++) index[G.group[i]] = i;
  function clock(t) {
    if (t === null || t === undefined) return "-";
    var s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60;
    return "T+" + String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0") + ":" + String(x).padStart(2, "0");
  }
  function esc(s) {
    // &#34;, not &quot;: plotly decodes numeric entities in text but not &quot; (it would show as is).
    var map = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;"};
    return String(s).replace(/[&<>"]/g, function (c) { return map[c]; });
  }
  function drawTimeline(gid) {
    var i = index[gid], evs = D.events[gid] || [];
    var info = document.getElementById("group-info");
    if (i === undefined) { info.textContent = "no group " + gid; return; }
    var t0 = G.submitted[i] !== null ? G.submitted[i] : (evs.length ? evs[0][0] : 0);
    var refs = [], byKind = {}, life = {};
    evs.forEach(function (e) {
      if (refs.indexOf(e[2]) < 0) refs.push(e[2]);
      var k = D.kinds[e[1]], x = +(e[0] - t0).toFixed(3);
      (byKind[k] = byKind[k] || {x: [], y: [], text: []});
      byKind[k].x.push(x); byKind[k].y.push(e[2]);
      // Plotly reads <b>, <br> and <a href> in hover text: broker text is escaped, its lines split.
      byKind[k].text.push("<b>" + k + "</b> " + esc(e[2]) + "<br>" + clock(e[0]) + " (+" + x + " s)" +
        (e[3] ? "<br>" + esc(e[3]).replace(/\n/g, "<br>") : ""));
      var l = life[e[2]] = life[e[2]] || [x, x]; l[0] = Math.min(l[0], x); l[1] = Math.max(l[1], x);
    });
    var lx = [], ly = [];
    refs.forEach(function (r) { lx.push(life[r][0], life[r][1], null); ly.push(r, r, null); });
    var traces = [{type: "scatter", mode: "lines", x: lx, y: ly, line: {color: "#ccc", width: 6}, hoverinfo: "skip",
                   name: "order alive", showlegend: true}];
    D.kinds.forEach(function (k) {
      if (!byKind[k]) return;
      traces.push({type: "scatter", mode: "markers", name: k, x: byKind[k].x, y: byKind[k].y, text: byKind[k].text,
                   hovertemplate: "%{text}<extra></extra>", marker: {size: 11, symbol: SYMBOLS[k] || "circle"}});
    });
    var shapes = D.outages.filter(function (o) {
      return evs.length && o[1] >= evs[0][0] && o[0] <= evs[evs.length - 1][0];
    }).map(function (o) {
      return {type: "rect", xref: "x", yref: "paper", x0: o[0] - t0, x1: o[1] - t0, y0: 0, y1: 1,
              fillcolor: "#ffcdd2", opacity: 0.4, line: {width: 0}, layer: "below"};
    });
    var title = gid + ": " + G.outcome[i].replace("_", " ") + (G.reason[i] ? " (" + G.reason[i] + ")" : "") +
      ", " + G.strategy[i] + " x" + G.quantity[i] + ", P&L $" + G.pnl[i];
    Plotly.react("timeline", traces, {
      title: {text: esc(title)}, height: 360, template: "plotly_white", margin: {l: 60, r: 20, t: 50, b: 50},
      xaxis: {title: {text: "seconds after submission (" + clock(t0) + "); outages shaded"}, zeroline: true},
      yaxis: {title: {text: "order"}, type: "category", categoryorder: "array", categoryarray: refs.slice().reverse()},
      shapes: shapes, hovermode: "closest"
    }, {displaylogo: false, responsive: true});
    info.textContent = (G.detail[i] ? G.detail[i] + "; " : "") + evs.length + " broker events";
    document.getElementById("group-pick").value = gid;
    Array.prototype.forEach.call(document.querySelectorAll("#groups tbody tr"), function (tr) {
      tr.classList.toggle("sel", tr.dataset.group === gid);
    });
  }
  var outcome = "all", page = 0, rows = [];
  function filter() {
    rows = [];
    for (var i = 0; i < N; i++) if (outcome === "all" || G.outcome[i] === outcome) rows.push(i);
    page = 0; render();
  }
  function cell(v, left) {
    return "<td" + (left ? " class=\"l\"" : "") + ">" + esc(v === null || v === undefined ? "-" : v) + "</td>";
  }
  function render() {
    var pages = Math.max(1, Math.ceil(rows.length / PAGE)), html = [];
    page = Math.min(page, pages - 1);
    rows.slice(page * PAGE, page * PAGE + PAGE).forEach(function (i) {
      html.push("<tr data-group=\"" + esc(G.group[i]) + "\" data-outcome=\"" + G.outcome[i] + "\">" +
        "<td class=\"l\">" + esc(G.group[i]) + "</td>" + cell(G.strategy[i], true) + cell(G.quantity[i]) +
        "<td class=\"l\"><span class=\"o\" style=\"background:" + D.colors[G.outcome[i]] + "\"></span>" +
        esc(G.outcome[i]) + "</td>" + cell(G.reason[i], true) + cell(clock(G.submitted[i])) + cell(G.settle[i]) +
        cell(G.entry[i]) + cell(G.unwind[i]) + cell(G.pnl[i]) + cell(G.slippage[i]) + cell(G.fills[i]) +
        cell(G.orders[i]) + cell(G.unwinds[i]) + cell(G.residual[i], true) + "</tr>");
    });
    document.querySelector("#groups tbody").innerHTML = html.join("");
    document.getElementById("count").textContent = rows.length.toLocaleString("en") + " of " +
      N.toLocaleString("en") + " groups";
    document.getElementById("page").textContent = "page " + (page + 1) + " of " + pages;
    Array.prototype.forEach.call(document.querySelectorAll("#filters button"), function (b) {
      b.classList.toggle("on", b.dataset.outcome === outcome);
    });
  }
  document.getElementById("filters").addEventListener("click", function (ev) {
    var b = ev.target.closest("button"); if (b) { outcome = b.dataset.outcome; filter(); }
  });
  document.getElementById("prev").addEventListener("click", function () { if (page > 0) { page--; render(); } });
  document.getElementById("next").addEventListener("click", function () { page++; render(); });
  document.querySelector("#groups tbody").addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr");
    if (!tr) return;
    drawTimeline(tr.dataset.group);
    document.getElementById("timeline").scrollIntoView({behavior: "smooth"});
  });
  document.getElementById("worst").addEventListener("click", function (ev) {
    var b = ev.target.closest("button");
    if (!b) return;
    drawTimeline(b.dataset.group);
    document.getElementById("timeline").scrollIntoView({behavior: "smooth"});
  });
  document.getElementById("group-pick").addEventListener("change", function (ev) {
    drawTimeline(ev.target.value.trim());
  });
  // The datalist offers at most 2,000 ids (a longer one slows typing); any id can still be typed.
  document.getElementById("group-ids").innerHTML = G.group.slice(0, 2000).map(function (g) {
    return "<option value=\"" + esc(g) + "\">"; }).join("");
  filter();
  // First shown: the first failed group, else the first rolled back, else the first group.
  var first = null;
  ["failed", "rolled_back", "committed", "invalid"].some(function (o) {
    var k = G.outcome.indexOf(o); if (k >= 0) { first = G.group[k]; return true; } return false;
  });
  if (first !== null) drawTimeline(first);
  document.body.dataset.ready = "1";
})();
"""
