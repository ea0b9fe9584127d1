"""The example algorithm runs unchanged on the LEAN stand-in and logs its condor's outcome."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.lean.brokerage import LeanStandIn

EXAMPLE = Path(__file__).resolve().parents[2] / "simulator" / "cli" / "examples" / "iron_condor_algorithm.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iron_condor_algorithm", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_example_sells_a_weekly_condor_and_logs_the_outcome() -> None:
    example = load_example()
    broker = BrokerSimulator(21, ChaosProfile.calm())
    algorithm = example.WeeklyIronCondorAlgorithm()
    lean = LeanStandIn(algorithm, broker)
    adapter = algorithm.adapter
    lean.run_until(3600.0, stop=lambda: bool(adapter.outcomes))
    lean.run_until(lean.seconds + 30.0)
    assert adapter.backend_kind == "quantconnect"
    (gid, state), = adapter.outcomes.items()
    assert state in ("committed", "rolled_back")
    opened = [line for line in algorithm.logs if line.startswith(f"condor {gid}: SPX")]
    assert opened and "expiry 2026-01-09" in opened[0]  # that week's Friday
    assert f"condor {gid} {state}" in algorithm.logs
    assert adapter.executor.stats.invariant_violations == 0 and not adapter.open_groups()
    # the condor was one LEAN combo limit order of four SPXW legs, all placed by the adapter
    tickets = algorithm.transactions.get_order_tickets()
    assert {t.symbol.id.symbol for t in tickets} == {"SPXW"}
    assert all(adapter.executor.owns_order(t.tag) for t in tickets)
    if state == "committed":
        assert {s.occ: q for s, q in adapter.positions().items()} == {
            s.occ: q for s, q in broker.positions().items()}
