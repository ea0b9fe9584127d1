"""``atomic-orders lean-run``: the example algorithm over several trading days, as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "simulator" / "cli" / "examples" / "iron_condor_algorithm.py"
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d (.*)$")


def lean_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "atomic_orders.simulator.cli", "lean-run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def count(report: str, label: str) -> int:
    match = re.search(rf"^  {label} +(\d+)", report, re.MULTILINE)
    assert match is not None, f"no {label!r} line in the report:\n{report}"
    return int(match.group(1))


def test_the_example_runs_three_trading_days_and_reports_consistent_counts() -> None:
    done = lean_run(str(EXAMPLE), "--days", "3")
    assert done.returncode == 0, done.stderr
    log, _, report = done.stdout.partition("\natomic-orders lean-run: ")
    dated = [m for m in map(LOG_LINE.match, log.splitlines()) if m]
    days = sorted({m.group(1) for m in dated})
    assert days == ["2026-01-05", "2026-01-06", "2026-01-07"]  # Monday to Wednesday, the log of each day
    assert [m.group(1) for m in dated if re.fullmatch(r"condor \S+ (committed|rolled_back.*)", m.group(2))] == [
        "2026-01-05"]  # Monday's condor and its outcome
    assert "WeeklyIronCondorAlgorithm (iron_condor_algorithm.py), 3 trading days 2026-01-05 .. 2026-01-07" in report
    groups = count(report, "groups")
    outcomes = {label: count(report, label) for label in ("committed", "rolled back", "failed", "invalid",
                                                          "unfinished")}
    assert groups == 1  # one condor a week: Monday's
    assert groups == sum(outcomes.values())
    assert count(report, "invariant violations") == 0 and outcomes["unfinished"] == 0
    assert count(report, "rollbacks") == outcomes["rolled back"] + outcomes["failed"]
    assert count(report, "orders sent") >= groups
    held = count(report, "positions held")
    # positions are kept across days: a committed condor is still held on Wednesday
    assert held == (4 if outcomes["committed"] else 0)
    assert dated[-1].group(2).startswith("end of day: SPX ") and f"{held} option positions" in dated[-1].group(2)


@pytest.mark.parametrize(("args", "message"), [
    (["missing_algorithm.py", "--days", "3"],
     "atomic-orders lean-run: error: algorithm='missing_algorithm.py': no such file"),
    (["fsm/errors.py", "--days", "3"],
     "atomic-orders lean-run: error: algorithm='fsm/errors.py': defines no QCAlgorithm subclass"),
    # Caught while parsing, like every count of the command line.
    ([str(EXAMPLE), "--days", "0"],
     "atomic-orders lean-run: error: argument --days: '0' must be >= 1 (see 'atomic-orders lean-run --help')"),
])
def test_unusable_input_is_one_line_naming_the_field_and_value(args: list[str], message: str) -> None:
    done = lean_run(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [message]


def test_the_stand_in_skips_weekends_and_fires_week_start_on_the_first_session_of_each_week() -> None:
    import datetime as dt

    from atomic_orders.simulator.broker.chaos import ChaosProfile
    from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
    from atomic_orders.simulator.lean.algorithm import QCAlgorithm
    from atomic_orders.simulator.lean.brokerage import LeanStandIn

    class Calendar(QCAlgorithm):
        def initialize(self) -> None:
            self.fired: list[tuple[str, dt.date]] = []
            self.schedule.on(self.date_rules.week_start(), self.time_rules.at(10, 0),
                             lambda: self.fired.append(("week_start", self.time.date())))
            self.schedule.on(self.date_rules.every_day(), self.time_rules.before_market_close(None, 10),
                             lambda: self.fired.append(("every_day", self.time.date())))

    friday = dt.datetime(2026, 1, 9, 14, 30, tzinfo=dt.UTC)
    algorithm = Calendar()
    lean = LeanStandIn(algorithm, BrokerSimulator(5, ChaosProfile.none(), session_open=friday))
    lean.run_session()
    monday = lean.next_session()
    assert lean.session_date == dt.date(2026, 1, 12) and monday.market.session_open.hour == 14  # 9:30 New York
    lean.run_session()
    lean.next_session()
    lean.run_session()
    fri, mon, tue = dt.date(2026, 1, 9), dt.date(2026, 1, 12), dt.date(2026, 1, 13)
    assert algorithm.fired == [("week_start", fri), ("every_day", fri), ("week_start", mon), ("every_day", mon),
                               ("every_day", tue)]
    with pytest.raises(ValueError, match="must be after today's session"):
        lean.next_session(BrokerSimulator(5, ChaosProfile.none(), session_open=friday))


# -- classic QuantConnect Python: PascalCase hooks ----------------------------------------------------

CLASSIC = """\
from AlgorithmImports import *


class Classic(QCAlgorithm):
    def Initialize(self):
        self.SetStartDate(2026, 1, 5)
        self.spx = self.AddIndex("SPX").Symbol
        self.Schedule.On(self.DateRules.EveryDay(self.spx), self.TimeRules.AfterMarketOpen(self.spx, 30), self.Trade)

    def Trade(self):
        today = self.Time.date()
        expiry = today + timedelta(days=(4 - today.weekday()) % 7)
        strike = round(float(self.Securities[self.spx].Price) / 5) * 5
        contract = Symbol.create_option(self.spx, "SPXW", Market.USA, OptionStyle.EUROPEAN, OptionRight.CALL,
                                        strike, datetime(expiry.year, expiry.month, expiry.day))
        self.AddIndexOptionContract(contract)
        self.Log("buying one call")
        self.MarketOrder(contract, 1)

    def OnOrderEvent(self, orderEvent):
        self.Log(f"order event: {orderEvent.Status.name}")
"""


def test_a_classic_pascal_case_algorithm_has_its_initialize_and_on_order_event_called(tmp_path: Path) -> None:
    algorithm = tmp_path / "classic.py"
    algorithm.write_text(CLASSIC, encoding="utf-8")
    done = lean_run(str(algorithm), "--days", "1")
    assert done.returncode == 0, done.stderr
    lines = [m.group(2) for m in map(LOG_LINE.match, done.stdout.splitlines()) if m]
    assert lines == ["buying one call", "order event: SUBMITTED", "order event: FILLED"]
    assert "positions held              1" in done.stdout


@pytest.mark.parametrize(("body", "ok"), [
    ("    def Initialize(self):\n        self.Log('pascal')\n\n    def initialize(self):\n        self.Log('snake')\n",
     False),
    ("    def OnOrderEvent(self, e):\n        pass\n\n    def on_order_event(self, e):\n        pass\n", False),
    ("    def initialize(self):\n        self.Log('one method, two names')\n\n    Initialize = initialize\n", True),
])
def test_a_hook_defined_under_both_names_differently_is_refused_in_one_line(tmp_path: Path, body: str,
                                                                              ok: bool) -> None:
    algorithm = tmp_path / "both.py"
    algorithm.write_text(f"from AlgorithmImports import QCAlgorithm\n\n\nclass Both(QCAlgorithm):\n{body}",
                         encoding="utf-8")
    done = lean_run(str(algorithm), "--days", "1")
    if ok:
        assert done.returncode == 0 and "one method, two names" in done.stdout, done.stderr
        return
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    pascal, snake = ("Initialize", "initialize") if "Initialize" in body else ("OnOrderEvent", "on_order_event")
    assert line.endswith(f"error: algorithm={str(algorithm)!r}: Both defines both {pascal} and {snake}, "
                         "differently; LEAN calls only one of them: keep one")


def test_the_stand_in_refuses_an_ambiguous_algorithm_before_calling_it() -> None:
    from atomic_orders.fsm.errors import ValidationError
    from atomic_orders.simulator.broker.chaos import ChaosProfile
    from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
    from atomic_orders.simulator.lean.algorithm import QCAlgorithm
    from atomic_orders.simulator.lean.brokerage import LeanStandIn

    calls: list[str] = []

    class Both(QCAlgorithm):
        def Initialize(self) -> None:  # noqa: N802 (LEAN's classic name)
            calls.append("Initialize")

        def initialize(self) -> None:
            calls.append("initialize")

    with pytest.raises(ValidationError) as info:
        LeanStandIn(Both(), BrokerSimulator(5, ChaosProfile.none()))
    assert (info.value.field, info.value.value) == ("algorithm", "Both") and calls == []
