"""The executor-tick request figures of the bench (counts, not timings)."""

from __future__ import annotations

from atomic_orders.simulator.cli.live_bench import executor_tick_requests


def test_an_executor_tick_polls_quotes_and_reprices_and_the_streamer_spares_the_polls() -> None:
    off = executor_tick_requests(2, streamer=False, ticks=10)
    on = executor_tick_requests(2, streamer=True, ticks=10)
    assert off["open"] == 2 and on["open"] == 2 and off["ticks"] == 10
    # polling only: the live list every tick (fast_interval 1 s = one tick)
    assert off["by_route"]["GET /orders/live"] == 1.0
    # one quote request per pricing step (5 s) covers both groups' legs; each step replaces each entry
    assert off["by_route"]["GET /market-data/by-type"] == on["by_route"]["GET /market-data/by-type"] == 0.2
    assert off["by_route"]["PUT /orders/{id}"] == on["by_route"]["PUT /orders/{id}"] > 0
    assert on["by_route"].get("GET /orders/live", 0) < 1.0 and on["per_tick"] < off["per_tick"]


def test_the_live_loop_reaction_is_measured_per_group() -> None:
    from atomic_orders.simulator.cli.live_bench import live_reject_reaction

    for streamer in (True, False):
        r = live_reject_reaction(2, streamer)
        # each legged condor: the long call rejected, the resting long put cancelled, the group rolled back
        assert r["settled"] == {"rolled_back": 2} and r["left_open"] == 0
        assert r["wall_ms"]["n"] == 2 and r["wall_ms"]["p50"] is not None and r["wall_ms"]["p50"] > 0
