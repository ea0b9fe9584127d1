"""One seed of a sweep: a chaos session (or a SIGKILL crash campaign), reduced to a small dict.

:func:`run_seed` is the task a Dask worker runs: a pure function of ``(seed, config)``
(:class:`SweepConfig`) returning one results line (plain JSON types, a few hundred bytes):

``seed``, ``config`` (:meth:`SweepConfig.to_json`), ``ok``, ``outcomes`` (groups per final
state), ``violations`` (count per invariant name, :func:`invariant_of`), ``violation_samples``
(at most :data:`SAMPLES`), ``residual_exposure`` and ``unaccounted_exposure`` (contracts per OCC
symbol), ``unfinished`` (groups), ``error`` (the exception that ended the task, or None), ``wall``
(seconds), ``cpu`` (the worker process's CPU seconds for it) and ``fingerprint`` (SHA-256 of the
session report without its wall-clock figures: the same seed gives the same fingerprint on any
worker; None for crash campaigns, whose kills land at wall-clock moments).

A crash campaign (``config.crash``) runs :func:`~atomic_orders.simulator.crash.harness.run_crash_test`
in a temporary folder of its own; its line has ``outcomes`` from the journal (groups per final
state), ``violations`` by invariant or crash check, ``kills`` and ``runs``.

Test hook: the environment variable :data:`FAIL_ENV` (``ATOMIC_ORDERS_SWEEP_FAIL``), a comma list
of seeds, makes the task raise for those seeds in the worker that runs them, so a test can make
a seed fail without editing a session (docs/chaos.md, "Sweeps").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.invariants import invariant_name
from atomic_orders.fsm.journal.recorder import CRASH_POINTS
from atomic_orders.simulator.broker.chaos import ChaosProfile

__all__ = ["FAIL_ENV", "SAMPLES", "SweepConfig", "fingerprint", "invariant_of", "lost_line", "run_seed"]

#: Seeds (comma list) whose task raises: the documented way to make a seed fail in a test.
FAIL_ENV = "ATOMIC_ORDERS_SWEEP_FAIL"
#: Violation texts kept per seed (the counts per invariant are complete).
SAMPLES = 5
#: Report fields measured on the wall clock: left out of the fingerprint.
_WALL_FIELDS = frozenset({"wall_seconds", "events_per_second"})


def _mode(value: str) -> str:
    return ExecutionMode(value).value


@attrs.frozen
class SweepConfig:
    """What every seed of a sweep shares; a results file holds one config only.

    ``groups`` iron condors per session (crash: per campaign), ``profile`` a chaos preset,
    ``mode`` ``combo`` or ``legged`` (a crash campaign alternates both and records ``mode`` as
    given), ``crash`` runs the SIGKILL campaign with ``kills`` kills per seed.
    """

    groups: int
    profile: str
    mode: str = attrs.field(default="combo", converter=_mode)
    crash: bool = False
    kills: int = len(CRASH_POINTS)

    def __attrs_post_init__(self) -> None:
        if type(self.groups) is not int or self.groups < 0:
            raise ValidationError("groups", self.groups, "must be an int >= 0")
        if self.profile not in ChaosProfile.preset_names():
            raise ValidationError("profile", self.profile, f"expected one of {', '.join(ChaosProfile.preset_names())}")
        if type(self.kills) is not int or self.kills < 0:
            raise ValidationError("kills", self.kills, "must be an int >= 0")

    def to_json(self) -> dict[str, Any]:
        """The config as a results line holds it (the fields that decide a seed's result)."""
        out: dict[str, Any] = {"groups": self.groups, "profile": self.profile, "mode": self.mode,
                               "crash": self.crash}
        if self.crash:
            out["kills"] = self.kills
        return out

    def rerun_command(self, seed: int) -> str:
        """The command that runs ``seed`` alone, as this sweep ran it."""
        if self.crash:
            return (f"atomic-orders crash run --seed {seed} --runs 1 --kills {self.kills} --groups {self.groups} "
                    f"--profile {self.profile}")
        return (f"atomic-orders simulate --seed {seed} --profile {self.profile} --groups {self.groups} "
                f"--mode {self.mode}")


_CRASH_CHECKS: tuple[tuple[str, str], ...] = (
    ("duplicate order at the broker", "crash:duplicate_order"),
    ("without an intent in the journal", "crash:intent_missing"),
    ("the journal holds", "crash:fill_missing"),
    ("never reached the journal", "crash:group_missing"),
    ("is not terminal", "crash:unfinished"),
    ("position ", "crash:position"),
)


def invariant_of(text: str) -> str:
    """The invariant a violation text reports: its ``[N name]`` tag (:func:`fsm.invariants.invariant_name`:
    ``terminal_settled``, ``no_orphans``, ...); ``recovery`` for a journal mismatch found when
    recovering, ``stray_fill`` for a fill of no open group (the executor's own checks); else ``other``."""
    name = invariant_name(text)
    if name is not None:
        return name
    if text.startswith("recovery: "):
        return "recovery"
    if "arrived for no open group" in text:
        return "stray_fill"
    return "other"


def _crash_check_of(problem: str) -> str:
    for prefix in ("invariant: ", "child violation: "):
        if problem.startswith(prefix):
            name = invariant_of(problem[len(prefix):])
            # The harness lists recovery's journal mismatches (fsm.recovery.rebuild_group, untagged)
            # with the invariants; the executor files the same texts under "recovery: ".
            return "recovery" if name == "other" and "journal" in problem else name
    for needle, name in _CRASH_CHECKS:
        if needle in problem:
            return name
    return "crash:run"


def _count(names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in names:
        out[name] = out.get(name, 0) + 1
    return dict(sorted(out.items()))


def fingerprint(report_json: dict[str, Any]) -> str:
    stable = {k: v for k, v in report_json.items() if k not in _WALL_FIELDS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def _failing_by_hook(seed: int) -> bool:
    spec = os.environ.get(FAIL_ENV, "")
    return str(seed) in {s.strip() for s in spec.split(",")}


def run_seed(seed: int, config: SweepConfig) -> dict[str, Any]:
    """One results line for ``seed`` (never raises for a session's own error: it is the line's ``error``)."""
    # Alerts are counted in the line; printed from every worker they would bury the sweep's output
    # (violations are ERROR and still print).
    logging.getLogger("atomic_orders").setLevel(logging.ERROR)
    started, cpu = time.perf_counter(), time.process_time()
    line: dict[str, Any] = {"seed": seed, "config": config.to_json()}
    try:
        if _failing_by_hook(seed):
            raise RuntimeError(f"{FAIL_ENV} names seed {seed}")
        line.update(_crash(seed, config) if config.crash else _session(seed, config))
        line["error"] = None
    except Exception as err:  # a crashed session is a failing seed, not the end of the sweep
        line.update(_failed(f"{type(err).__name__}: {err}"))
    line["wall"] = round(time.perf_counter() - started, 3)
    line["cpu"] = round(time.process_time() - cpu, 3)
    return line


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "outcomes": {}, "violations": {}, "violation_samples": [], "residual_exposure": {},
            "unaccounted_exposure": {}, "unfinished": 0, "error": error[:500], "fingerprint": None}


def lost_line(seed: int, config: SweepConfig, reason: str) -> dict[str, Any]:
    """The results line of a seed whose worker process died under it every time it ran.

    A failing seed (``ok`` false, ``error`` "worker lost: <reason>", ``wall``/``cpu`` 0): the
    report lists it with its re-run command, and the sweep goes on with the other seeds.
    """
    return {"seed": seed, "config": config.to_json(), **_failed(f"worker lost: {reason}"), "wall": 0.0, "cpu": 0.0}


def _session(seed: int, config: SweepConfig) -> dict[str, Any]:
    from atomic_orders.simulator.session.runner import SessionConfig, run_session

    texts: list[str] = []
    report = run_session(SessionConfig(seed=seed, groups=config.groups, profile=config.profile,
                                       mode=ExecutionMode(config.mode)),
                         on_end=lambda _broker, executor: texts.extend(executor.violations))
    data = report.to_json()
    return {
        "ok": report.ok,
        "outcomes": dict(sorted(report.outcomes.items())),
        "violations": _count([invariant_of(t) for t in texts]),
        "violation_samples": texts[:SAMPLES],
        "residual_exposure": dict(sorted(report.residual_exposure.items())),
        "unaccounted_exposure": dict(sorted(report.unaccounted_exposure.items())),
        "unfinished": len(report.unfinished),
        "fingerprint": fingerprint(data),
    }


def _crash(seed: int, config: SweepConfig) -> dict[str, Any]:
    from atomic_orders.simulator.crash.harness import CrashSession, run_crash_test

    with tempfile.TemporaryDirectory(prefix="sweep-crash-") as tmp:
        report = run_crash_test(CrashSession(seed, config.groups, config.profile), config.kills, Path(tmp))
    figures = report.figures
    outcomes = {state: figures.get(f"groups_{state}", 0) for state in ("committed", "rolled_back", "failed")}
    return {
        "ok": report.ok,
        "outcomes": {k: v for k, v in outcomes.items() if v},
        "violations": _count([_crash_check_of(p) for p in report.problems]),
        "violation_samples": report.problems[:SAMPLES],
        "residual_exposure": {},
        "unaccounted_exposure": {},
        "unfinished": sum(1 for p in report.problems if "is not terminal" in p),
        "kills": report.kills,
        "runs": report.runs,
        "fingerprint": None,
    }
