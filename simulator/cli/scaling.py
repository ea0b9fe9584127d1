"""Scaling figures for ``atomic-orders bench --scaling``: does a session cost the same per condor at
100,000 groups as at 1,000, in bounded memory?

Each session runs alone in a child process (``atomic-orders simulate ... --json``); its CPU time
(user + system, seconds) is the kernel's accounting of that child (``os.wait4``), and its peak
resident set (MB) is the child's own high-water mark (``VmHWM`` in Linux's ``/proc/self/status``;
elsewhere the kernel's ``ru_maxrss``), so neither the bench's own heap nor other processes' load is
counted. The cost of
starting a child (the imports) is measured once with ``--groups 0`` and taken off every per-condor
figure. The goals are issue 16's: per-condor cost at 100,000 groups within 1.2x of the cost at
1,000, peak RSS under 200 MB, 100,000 hostile combo condors in under 60 s on one core, legged in
under 180 s. Slow (several minutes): opt-in, never part of ``bench --quick``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from atomic_orders.fsm.errors import ValidationError

__all__ = ["SCALING_TARGETS", "run_child_session", "scaling_figures"]

#: name -> (figure, comparison, goal); the figures are keys of :func:`scaling_figures`' result.
SCALING_TARGETS: dict[str, tuple[str, str, float]] = {
    "per_condor_cost_large_vs_1k_combo": ("cost_ratio_combo", "<=", 1.2),
    "peak_rss_large_combo_mb": ("peak_rss_mb_combo", "<", 200.0),
    "combo_large_cpu_s": ("cpu_s_combo", "<", 60.0),
    "legged_large_cpu_s": ("cpu_s_legged", "<", 180.0),
}


def _maxrss_mb(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


_PEAK_LINE = "atomic-orders-peak-rss-kb "
# The child session, which reports its own memory high-water mark (Linux: VmHWM of
# /proc/self/status) as its last stderr line. The kernel's ru_maxrss of a child is not enough: on
# exec Linux keeps the forking process's high-water mark as a floor, so after the bench's own
# figures a 1,000-group child read as large as the bench process itself.
_CHILD = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    try:\n"
    "        with open('/proc/self/status') as f:\n"
    "            kb = [line.split()[1] for line in f if line.startswith('VmHWM:')]\n"
    "    except OSError:\n"
    "        return\n"
    "    if kb:\n"
    f"        sys.stderr.write({_PEAK_LINE!r} + kb[0] + '\\n')\n"
    "atexit.register(_peak)\n"
    "from atomic_orders.simulator.cli.main import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


def _own_peak_mb(stderr: str) -> float | None:
    """The child's own high-water mark (MB) from its last stderr line; None where it cannot tell."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(_PEAK_LINE):
            return int(line[len(_PEAK_LINE):]) / 1024
    return None


def run_child_session(groups: int, mode: str, seed: int = 3, profile: str = "hostile") -> dict[str, Any]:
    """Run one simulated session in a child process; its CPU seconds, peak RSS (MB) and outcomes.

    Raises ``RuntimeError`` when the child fails (its exit code and last error line).
    """
    cmd = [sys.executable, "-c", _CHILD, "simulate", "--groups", str(groups),
           "--seed", str(seed), "--profile", profile, "--mode", mode, "--quiet", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    # wait4, not Popen.wait: it hands back this child's own resource usage
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        lines = [ln for ln in err.decode(errors="replace").strip().splitlines() if not ln.startswith(_PEAK_LINE)]
        tail = lines[-1:] or [""]
        raise RuntimeError(f"simulate --groups {groups} --mode {mode} exited {proc.returncode}: {tail[0]}")
    report = json.loads(out)
    own = _own_peak_mb(err.decode(errors="replace"))
    return {
        "groups": groups,
        "mode": mode,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(own if own is not None else _maxrss_mb(usage.ru_maxrss), 1),
        "wall_s": report.get("wall_seconds"),
        "outcomes": report.get("outcomes"),
        "invariant_violations": report.get("invariant_violations"),
    }


def _meets(value: float, op: str, goal: float) -> bool:
    return value <= goal if op == "<=" else value < goal


def scaling_figures(large: int = 100_000, small: int = 1_000,
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The scaling figures and each target beside its goal.

    ``large`` and ``small`` are the session sizes compared (``large > small >= 1``; the goals are
    set for 100,000 and 1,000). Returns ``cpu_s_{combo,legged}`` and ``peak_rss_mb_{combo,legged}``
    of the large sessions, ``ms_per_condor_{small,large}_{mode}`` (start-up taken off),
    ``cost_ratio_{mode}`` (large over small), ``runs`` (every child's figures) and ``targets``
    (figure, goal, met). Raises :class:`ValidationError` for sizes out of order.
    """
    if type(small) is not int or small < 1:
        raise ValidationError("small", small, "must be an int >= 1")
    if type(large) is not int or large <= small:
        raise ValidationError("large", large, f"must be an int above small ({small})")
    say = progress or (lambda _line: None)
    say("scaling: start-up (0 groups)")
    startup = run_child_session(0, "combo")
    base = startup["cpu_s"]
    out: dict[str, Any] = {"large": large, "small": small, "startup_cpu_s": base, "runs": [startup]}
    for mode in ("combo", "legged"):
        per: dict[int, float] = {}
        for n in (small, large):
            say(f"scaling: {n:,} hostile {mode} groups")
            run = run_child_session(n, mode)
            out["runs"].append(run)
            per[n] = max(run["cpu_s"] - base, 0.0) / n * 1000
            out[f"ms_per_condor_{'small' if n == small else 'large'}_{mode}"] = round(per[n], 4)
            if n == large:
                out[f"cpu_s_{mode}"] = run["cpu_s"]
                out[f"peak_rss_mb_{mode}"] = run["peak_rss_mb"]
        out[f"cost_ratio_{mode}"] = round(per[large] / per[small], 3) if per[small] > 0 else None
    targets: dict[str, dict[str, Any]] = {}
    for name, (key, op, goal) in SCALING_TARGETS.items():
        value = out.get(key)
        met = isinstance(value, (int, float)) and _meets(float(value), op, goal)
        targets[name] = {"figure": key, "value": value, "goal": f"{op} {goal:g}", "met": met}
    out["targets"] = targets
    return out


def format_scaling(figures: dict[str, Any]) -> str:
    """The scaling section of the bench report: each figure beside its goal."""
    lines = [f"scaling: {figures['large']:,} vs {figures['small']:,} hostile groups, one child process each "
             f"(CPU = user + system; start-up {figures['startup_cpu_s']} s taken off per-condor costs)",
             f"{'target':<36} {'figure':>10}  goal"]
    lines.append("-" * 70)
    for name, t in figures["targets"].items():
        value = t["value"]
        shown = f"{value:,.3f}" if isinstance(value, (int, float)) else str(value)
        lines.append(f"{name:<36} {shown:>10}  {t['goal']:<8} {'MET' if t['met'] else 'MISSED'}")
    for mode in ("combo", "legged"):
        lines.append(f"  {mode}: {figures.get(f'ms_per_condor_small_{mode}')} ms/condor at {figures['small']:,}, "
                     f"{figures.get(f'ms_per_condor_large_{mode}')} at {figures['large']:,}; peak RSS "
                     f"{figures.get(f'peak_rss_mb_{mode}')} MB")
    return "\n".join(lines) + "\n"
