"""The bench's TastyTrade figures count what they claim (requests at the emulator), over real HTTP."""

from __future__ import annotations

from atomic_orders.simulator.cli.bench import format_report
from atomic_orders.simulator.cli.tastytrade_bench import tastytrade_figures


def test_dry_run_and_quote_figures() -> None:
    figures = tastytrade_figures(quick=True)
    assert figures["tastytrade_submit_requests"] == {"POST /orders": 40, "POST /orders/dry-run": 20,
                                                     "submits_per_setting": 20}
    assert figures["tastytrade_submit_ms_dry_run_on"] > 0 and figures["tastytrade_submit_ms_dry_run_off"] > 0
    # one request per tick covers every open leg, up to 100 per request
    for n in (1, 10, 100):
        legs = figures[f"quote_legs_per_tick_{n}"]
        assert legs >= 4 * n if n < 100 else legs > 100
        assert figures[f"quote_requests_per_tick_{n}"] == -(-legs // 100)
    report = format_report({**figures, "checks": {}, "params": {}, "machine": {}})
    assert "tastytrade_dry_run_cost_ms" in report and "quote_requests_per_tick_100" in report
