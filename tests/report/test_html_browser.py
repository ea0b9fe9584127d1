"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) driven by playwright.

Checks the rendered page, not the HTML text: every chart drawn with data, the group table filled
and filtered by a click, a row's click drawing that group's timeline, no console error, and no
request leaving the machine (only file:, data: and blob: URLs). Skipped when Chromium or playwright
is missing (``./tasks.sh test`` installs Chromium).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_orders.simulator.report.html import write_html
from atomic_orders.simulator.report.log import read_log
from tests.report._logs import write_log

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)

#: Chromium asked not to reach out on its own (updates, sync, field trials), so any request seen is the page's.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL = ("file:", "data:", "blob:", "about:")


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[str], list[str]]]:
    """A report of four groups opened once (loading 5 MB of plotly.js is the slow part); yields
    ``(page, every URL requested, console errors and uncaught exceptions)``."""
    folder = tmp_path_factory.mktemp("report")
    report = write_html(read_log(write_log(folder / "events.jsonl")), folder / "report.html")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(folder / "profile"), executable_path=CHROMIUM,
                                                        args=ARGS, headless=True,
                                                        viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri(), wait_until="load", timeout=120_000)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        yield page, requests, errors
        context.close()


def test_charts_drawn_with_data(opened: tuple[Any, list[str], list[str]]) -> None:
    page, _, errors = opened
    charts = page.eval_on_selector_all(
        ".chart .js-plotly-plot, #timeline.js-plotly-plot",
        "els => els.map(e => ({id: e.id, traces: (e.data || []).length,"
        " points: (e.data || []).reduce((n, t) => n + ((t.x || []).length), 0),"
        " drawn: e.querySelectorAll('g.trace path').length}))")
    ids = {c["id"] for c in charts}
    assert {"chart-outcomes", "chart-settle", "chart-pnl", "chart-slippage", "chart-reasons", "chart-chaos",
            "timeline"} <= ids
    for chart in charts:
        assert chart["traces"] and chart["points"], chart
        assert chart["drawn"] > 0, chart
    assert errors == []


def test_table_filled_and_filtered_by_a_click(opened: tuple[Any, list[str], list[str]]) -> None:
    page, _, errors = opened
    assert page.locator("#groups tbody tr").count() == 4
    page.click("#filters button[data-outcome='failed']")
    rows = page.locator("#groups tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-group") == "G000003"
    assert "1 of 4 groups" in page.inner_text("#count")
    page.click("#filters button[data-outcome='committed']")
    assert [r.get_attribute("data-outcome") for r in page.locator("#groups tbody tr").all()] == ["committed"]
    # A row's click draws that group's timeline.
    page.click("#groups tbody tr[data-group='G000001']")
    page.wait_for_function("document.getElementById('timeline').layout.title.text.startsWith('G000001')")
    names = page.evaluate("document.getElementById('timeline').data.map(t => t.name)")
    assert {"received", "acknowledged", "fill"} <= set(names)
    page.click("#filters button[data-outcome='all']")
    assert page.locator("#groups tbody tr").count() == 4
    # "Groups to look at": the failed group is named with its residual, and its button draws it.
    page.click("#worst button[data-group='G000003']")
    page.wait_for_function("document.getElementById('timeline').layout.title.text.startsWith('G000003: failed')")
    assert "failed (1) G000003 SPXW 260112C05080000 -2" in " ".join(page.inner_text("#worst").split())
    assert errors == []


def test_no_request_leaves_the_machine(opened: tuple[Any, list[str], list[str]], tmp_path: Path) -> None:
    page, requests, errors = opened
    page.click("#filters button[data-outcome='all']")
    page.click("#groups tbody tr[data-group='G000002']")
    page.hover("#chart-pnl .nsewdrag")
    page.wait_for_timeout(300)
    assert requests, "the page's own request was not recorded: the check would see nothing"
    assert [u for u in requests if not u.startswith(LOCAL)] == []
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert errors == []


def test_broker_text_in_a_tooltip_is_shown_not_read_as_markup(opened: tuple[Any, list[str], list[str]],
                                                              tmp_path: Path) -> None:
    # A reject's reason is the broker's text (the emulator rejects with any message it is given);
    # plotly reads <a href>, <b> and <br> in hover text, so unescaped it became a link in the page.
    path = write_log(tmp_path / "events.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hostile = '<a href="https://example.com/x">click</a></script><!--'
    lines.insert(3, json.dumps({"kind": "rejected", "t": "100.300000", "ref": "G000001-C", "reason": hostile}) + "\n")
    path.write_text("".join(lines), encoding="utf-8")
    report = write_html(read_log(path), tmp_path / "report.html")
    page = opened[0].context.new_page()  # the module's browser: one sync playwright at a time
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(report.as_uri(), wait_until="load", timeout=120_000)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        page.click("#groups tbody tr[data-group='G000001']")
        page.wait_for_function("document.getElementById('timeline').layout.title.text.startsWith('G000001')")
        texts = page.evaluate("document.getElementById('timeline').data"
                              ".filter(t => t.name === 'rejected').map(t => t.text[0])")
        submit = page.evaluate("document.getElementById('timeline').data"
                               ".filter(t => t.name === 'received').map(t => t.text[0])")
    finally:
        page.close()
    assert len(texts) == 1
    # &#34; for a quote: plotly shows &quot; as is, but decodes numeric entities.
    assert "&lt;a href=&#34;https://example.com/x&#34;&gt;click&lt;/a&gt;&lt;/script&gt;&lt;!--" in texts[0]
    assert "<a" not in texts[0]
    assert submit[0].endswith("<br>sell 2 SPXW  C")  # a submit's legs still one per line
    assert errors == []
