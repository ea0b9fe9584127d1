"""What a sweep found: results lines summed, and every failing seed with the command that re-runs it.

:func:`aggregate` folds results lines (:mod:`.task`) into a :class:`SweepReport`;
:func:`format_report` prints it. A seed fails when its line is not ``ok`` (a violation,
unaccounted exposure, an unfinished group, a crash-check problem, or an error).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import attrs

from atomic_orders.simulator.sweep.task import SweepConfig

__all__ = ["SweepReport", "aggregate", "format_report"]


@attrs.frozen
class SweepReport:
    """Sums over a sweep's seeds.

    ``outcomes`` groups per final state; ``violations`` per invariant; ``residual_exposure`` and
    ``unaccounted_exposure`` contracts per OCC symbol, summed over seeds; ``failing`` one entry per
    failing seed (``seed``, ``why``, ``command``), in seed order; ``wall`` the sum of the seeds'
    own wall seconds (CPU-side work, not the sweep's elapsed time); ``ran_now`` seeds this run
    executed (the others were already in the results file).
    """

    config: SweepConfig
    seeds: int
    ran_now: int
    ok_seeds: int
    outcomes: dict[str, int]
    violations: dict[str, int]
    residual_exposure: dict[str, int]
    unaccounted_exposure: dict[str, int]
    unfinished: int
    failing: list[dict[str, Any]]
    wall: float
    elapsed: float
    results_path: str

    @property
    def ok(self) -> bool:
        """Every seed passed."""
        return not self.failing

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return {"config": self.config.to_json(), "seeds": self.seeds, "ran_now": self.ran_now,
                "ok_seeds": self.ok_seeds, "failing_seeds": len(self.failing), "outcomes": self.outcomes,
                "violations": self.violations, "residual_exposure": self.residual_exposure,
                "unaccounted_exposure": self.unaccounted_exposure, "unfinished_groups": self.unfinished,
                "failing": self.failing, "seed_wall_seconds": round(self.wall, 3),
                "elapsed_seconds": round(self.elapsed, 3), "results": self.results_path, "ok": self.ok}


def _why(line: dict[str, Any]) -> str:
    if line.get("error"):
        return f"error: {line['error']}"
    parts = [f"{n} {name}" for name, n in sorted(line.get("violations", {}).items())]
    if line.get("unaccounted_exposure"):
        parts.append(f"unaccounted exposure {line['unaccounted_exposure']}")
    if line.get("unfinished"):
        parts.append(f"{line['unfinished']} unfinished group(s)")
    return ", ".join(parts) or "not ok"


def aggregate(lines: Iterable[dict[str, Any]], config: SweepConfig, *, ran_now: int = 0, elapsed: float = 0.0,
              results_path: str = "") -> SweepReport:
    """Sum results lines (one per seed) into a :class:`SweepReport`."""
    outcomes: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    residual: Counter[str] = Counter()
    unaccounted: Counter[str] = Counter()
    failing: list[dict[str, Any]] = []
    seeds = ok_seeds = unfinished = 0
    wall = 0.0
    for line in sorted(lines, key=lambda item: int(item["seed"])):
        seeds += 1
        outcomes.update(line.get("outcomes", {}))
        violations.update(line.get("violations", {}))
        residual.update(line.get("residual_exposure", {}))
        unaccounted.update(line.get("unaccounted_exposure", {}))
        unfinished += int(line.get("unfinished", 0))
        wall += float(line.get("wall", 0.0))
        if line.get("ok"):
            ok_seeds += 1
        else:
            seed = int(line["seed"])
            failing.append({"seed": seed, "why": _why(line), "command": config.rerun_command(seed)})
    return SweepReport(config=config, seeds=seeds, ran_now=ran_now, ok_seeds=ok_seeds,
                       outcomes=dict(sorted(outcomes.items())), violations=dict(sorted(violations.items())),
                       residual_exposure=dict(sorted(residual.items())),
                       unaccounted_exposure=dict(sorted(unaccounted.items())), unfinished=unfinished,
                       failing=failing, wall=wall, elapsed=elapsed, results_path=results_path)


def format_report(report: SweepReport) -> str:
    """The report as text: figures, then every failing seed and its re-run command."""
    c = report.config
    kind = f"crash campaigns ({c.kills} kills each)" if c.crash else "sessions"
    rate = f", {report.ran_now / report.elapsed * 60:.1f} seeds/min" if report.ran_now and report.elapsed else ""
    out = [
        f"sweep: {report.seeds} seeds x {c.groups} groups, profile {c.profile}, mode {c.mode}, {kind}",
        f"  run now {report.ran_now}, {report.seeds - report.ran_now} already in the results file, "
        f"{report.elapsed:.1f} s elapsed{rate}",
        f"  seeds ok {report.ok_seeds}, failing {len(report.failing)}",
        "  outcomes " + (", ".join(f"{k}={v}" for k, v in report.outcomes.items()) or "-"),
        f"  invariant violations {sum(report.violations.values())}   (must be 0)"
        + ("".join(f"\n    {name}: {n}" for name, n in report.violations.items())),
        "  residual exposure (failed groups, stated) "
        + (", ".join(f"{k}={v}" for k, v in report.residual_exposure.items()) or "none"),
        "  unaccounted exposure " + (", ".join(f"{k}={v}" for k, v in report.unaccounted_exposure.items())
                                     or "none") + "   (must be none)",
        f"  unfinished groups {report.unfinished}   (must be 0)",
        f"  results: {report.results_path}",
    ]
    if report.failing:
        out.append(f"failing seeds ({len(report.failing)}), each re-run alone by its command:")
        for f in report.failing:
            out.append(f"  seed {f['seed']}: {f['why']}")
            out.append(f"    {f['command']}")
    return "\n".join(out)
