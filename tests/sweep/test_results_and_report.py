"""The results file, the per-invariant names and the report, without a cluster (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.sweep.report import aggregate, format_report
from atomic_orders.simulator.sweep.results import ResultsFile
from atomic_orders.simulator.sweep.seeds import parse_seeds
from atomic_orders.simulator.sweep.task import SweepConfig, invariant_of, lost_line

CONFIG = SweepConfig(groups=5, profile="rough", mode="legged")


def _line(seed: int, ok: bool = True, **extra: object) -> dict[str, object]:
    return {"seed": seed, "config": CONFIG.to_json(), "ok": ok, "outcomes": {"committed": 5}, "violations": {},
            "residual_exposure": {}, "unaccounted_exposure": {}, "unfinished": 0, "error": None, "wall": 0.5,
            **extra}


def test_lines_survive_reopening_and_a_torn_last_line_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile.open(path, CONFIG.to_json()) as f:
        f.append(_line(1))
        f.append(_line(2))
    with path.open("ab") as raw:
        raw.write(b'{"seed": 3, "con')
    with ResultsFile.open(path, CONFIG.to_json()) as f:
        assert sorted(f.done) == [1, 2]
        f.append(_line(3))
    lines = [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]
    assert [line["seed"] for line in lines] == [1, 2, 3]


def test_a_damaged_line_before_the_last_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_line(1)) + "\nnot json\n" + json.dumps(_line(2)) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="line 2 is not a results line"):
        ResultsFile.open(path, CONFIG.to_json())


@pytest.mark.parametrize("bad", [{"seed": "x"}, {"seed": -1}, {"seed": True}, {"seed": 1.5}, {"ok": "yes"},
                                 {"outcomes": [1]}, {"violations": "no_orphans"}, {"config": "hostile"}])
def test_a_line_of_the_wrong_shape_is_damage_not_a_crash(tmp_path: Path, bad: dict[str, object]) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({**_line(1), **bad}) + "\n" + json.dumps(_line(2)) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="line 1 is not a results line"):
        ResultsFile.open(path, CONFIG.to_json())


def test_another_config_is_refused_naming_the_difference(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsFile.open(path, CONFIG.to_json()) as f:
        f.append(_line(1))
    other = SweepConfig(groups=5, profile="rough", mode="combo").to_json()
    with pytest.raises(ValidationError, match=r"mode='legged' \(this sweep: 'combo'\)"):
        ResultsFile.open(path, other)


def test_seeds_specs() -> None:
    assert parse_seeds("1-3,7, 9-10") == (1, 2, 3, 7, 9, 10)
    assert len(parse_seeds("1-1000000")) == 1_000_000
    with pytest.raises(ValidationError, match="more than 1,000,000"):
        parse_seeds("0-1000000")
    with pytest.raises(ValidationError, match="seed 9 is named twice"):
        parse_seeds("9-12,1-9")
    assert parse_seeds("999999999999999999") == (999_999_999_999_999_999,)
    with pytest.raises(ValidationError, match="at most 18 digits"):  # too big, said so: not "not a seed >= 0"
        parse_seeds("9999999999999999999")


@pytest.mark.parametrize(("text", "name"), [
    ("[1 terminal_settled] G000001: committed but SPX 250117C05000000 net 1 != target 2", "terminal_settled"),
    ("[2 no_orphans] G000001: rolled_back but O7 is working", "no_orphans"),
    ("[7 broker_agreement] G1: rolled_back but the broker holds {'X': 1}", "broker_agreement"),
    ("recovery: G1 ledger differs", "recovery"),
    ("fill O1 Fill(...) arrived for no open group", "stray_fill"),
    # Untagged wording is no longer guessed at, and a tag must be one of the seven.
    ("G000001: rolled_back but O7 is working", "other"),
    ("[2 conservation] G1: x", "other"),
    ("something new", "other"),
])
def test_violations_are_named_by_invariant(text: str, name: str) -> None:
    assert invariant_of(text) == name


def test_crash_problems_are_named_by_tag_or_check() -> None:
    from atomic_orders.simulator.sweep.task import _crash_check_of

    assert _crash_check_of("invariant: [2 no_orphans] G1: committed but O3 is working") == "no_orphans"
    assert _crash_check_of("invariant: group G1: replay gave 3 transitions, journal has 4") == "recovery"
    assert _crash_check_of("child violation: [6 exposure_bound] G1: X net 3 outside") == "exposure_bound"
    assert _crash_check_of("duplicate order at the broker: G1-L0") == "crash:duplicate_order"


def test_the_report_sums_seeds_and_lists_each_failing_one_with_its_command() -> None:
    lines = [_line(2, ok=False, violations={"no_orphans": 2}, unaccounted_exposure={"X": 1}),
             _line(1), _line(4, ok=False, error="RuntimeError: boom", outcomes={})]
    report = aggregate(lines, CONFIG, ran_now=3, elapsed=6.0, results_path="r.jsonl")
    assert (report.seeds, report.ok_seeds, report.ok) == (3, 1, False)
    assert report.outcomes == {"committed": 10}
    assert report.violations == {"no_orphans": 2}
    assert report.unaccounted_exposure == {"X": 1}
    assert [f["seed"] for f in report.failing] == [2, 4]
    text = format_report(report)
    assert "  seed 2: 2 no_orphans, unaccounted exposure {'X': 1}" in text
    assert "    atomic-orders simulate --seed 2 --profile rough --groups 5 --mode legged" in text
    assert "  seed 4: error: RuntimeError: boom" in text
    assert "30.0 seeds/min" in text
    crash = SweepConfig(groups=2, profile="calm", crash=True, kills=3)
    assert crash.rerun_command(9) == "atomic-orders crash run --seed 9 --runs 1 --kills 3 --groups 2 --profile calm"


def test_a_seed_whose_worker_died_every_time_is_a_failing_line_with_the_reason(tmp_path: Path) -> None:
    line = lost_line(7, CONFIG, "KilledWorker: boom (3 attempts)")
    assert (line["seed"], line["ok"], line["config"]) == (7, False, CONFIG.to_json())
    with ResultsFile.open(tmp_path / "r.jsonl", CONFIG.to_json()) as f:  # a line the file takes
        f.append(line)
    report = aggregate([line, _line(1)], CONFIG)
    assert [f["seed"] for f in report.failing] == [7]
    assert report.failing[0]["why"] == "error: worker lost: KilledWorker: boom (3 attempts)"

