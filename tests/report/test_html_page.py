"""The report page's HTML text (no browser): what it names and how it ranks the groups to look at."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from atomic_orders.simulator.report.html import render_html
from atomic_orders.simulator.report.log import read_log
from tests.report._logs import record, write_log


def test_largest_unwind_cost_ranks_what_undoing_cost_as_the_text_report_does(tmp_path: Path) -> None:
    # G000001 bought back for $1,100 a condor it sold for $1,000: undoing cost $100. G000002 paid
    # $300 to undo an entry that took nothing. The text report ranks by that cost (entry + unwind);
    # the page ranked by the unwind's cash alone and put G000001 first with "-$1,100.00".
    records = (record(1, "rolled_back", entry=Decimal("1000.00"), unwind=Decimal("-1100.00")),
               record(2, "rolled_back", entry=Decimal("0"), unwind=Decimal("-300.00")))
    page = render_html(read_log(write_log(tmp_path / "events.jsonl", records)))
    row = re.search(r"<b>largest unwind cost</b>(.*?)</div>", page)
    assert row is not None
    assert re.findall(r'data-group="(G\d+)">\S+ ([^<]+)</button>', row.group(1)) == [
        ("G000002", "-$300.00"), ("G000001", "-$100.00")]


def test_a_log_cut_short_says_so(tmp_path: Path) -> None:
    # A log cut before its group lines drew as a whole session of 0 groups, its header's 4 groups
    # mentioned only in passing.
    path = write_log(tmp_path / "events.jsonl")
    whole = render_html(read_log(path))
    assert "This event log is incomplete" not in whole
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:5]), encoding="utf-8")
    cut = render_html(read_log(path))
    assert "This event log is incomplete: 0 of the session's 4 groups recorded, and no closing report line" in cut
    path.write_text("".join(line for line in lines if '"G000004"' not in line or '"kind": "group"' not in line),
                    encoding="utf-8")
    assert "incomplete: 3 of the session's 4 groups recorded (" in render_html(read_log(path))


def test_an_empty_session_says_so_in_every_chart(tmp_path: Path) -> None:
    # A 0-group session: every other chart said "no group to show" or "none"; the outcomes chart drew bare axes.
    page = render_html(read_log(write_log(tmp_path / "events.jsonl", ())))
    for chart in ("outcomes", "settle", "pnl", "slippage", "reasons"):
        block = page.split(f'id="chart-{chart}"', 1)[1].split('class="chart"', 1)[0]
        assert '"text":"no group to show"' in block or '"text":"none"' in block, chart
