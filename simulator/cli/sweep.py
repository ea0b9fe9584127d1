"""``atomic-orders sweep``: one chaos session (or crash campaign) per seed, many at once on Dask.

The sweep itself is :mod:`atomic_orders.simulator.sweep` (docs/chaos.md, "Sweeps"). Results
stream to a JSON-lines file (``--results PATH``, or a name made of the config in ``--out DIR``,
default the current folder); running the same command again resumes. Exit status 1 when a seed
failed (the report lists each with the command that re-runs it alone); 2 for a usage error,
a results file of another config, or Dask not installed (one line naming the extra).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.journal.recorder import CRASH_POINTS
from atomic_orders.simulator.cli.options import (
    MAX_KILLS,
    STDOUT,
    UserError,
    add_command,
    add_groups,
    add_json,
    add_mode,
    add_profile,
    count_at_most,
    file_path,
    folder_path,
    positive_at_most,
    write_json,
)
from atomic_orders.simulator.sweep.cluster import MissingDask, parse_scheduler
from atomic_orders.simulator.sweep.seeds import parse_seeds

__all__ = ["MAX_WORKERS", "add_sweep_commands", "results_name"]

#: Local worker processes at most (one per core is the point; more only queue).
MAX_WORKERS = 256


def _type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises :class:`ValidationError` (its reason is the message)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValidationError as err:
            raise argparse.ArgumentTypeError(f"{text!r}: {err.reason}") from None

    return convert


def results_name(groups: int, profile: str, mode: str, crash: bool, kills: int) -> str:
    """The default results file of a config: the same command finds the same file, and resumes."""
    kind = f"crash{kills}k" if crash else mode
    return f"sweep-{profile}-{kind}-{groups}g.jsonl"


def _cmd_sweep(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.sweep.report import format_report
    from atomic_orders.simulator.sweep.run import run_sweep
    from atomic_orders.simulator.sweep.task import SweepConfig

    if args.scheduler is not None and args.workers is not None:
        raise UserError("--workers is for the local cluster; a --scheduler's cluster has its own workers")
    config = SweepConfig(groups=args.groups, profile=args.profile, mode=args.mode, crash=args.crash,
                         kills=args.kills)
    results = args.results or (args.out or Path(".")) / results_name(
        config.groups, config.profile, config.mode, config.crash, config.kills)
    show = not args.quiet and sys.stderr.isatty()
    try:
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("[bold]sweeping[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("seeds", total=len(args.seeds))
                report = run_sweep(args.seeds, config, results, scheduler=args.scheduler, workers=args.workers,
                                   on_start=lambda total, done: progress.update(task, total=total, completed=done),
                                   on_result=lambda _line: progress.advance(task))
        else:
            report = run_sweep(args.seeds, config, results, scheduler=args.scheduler, workers=args.workers)
    except MissingDask as err:
        raise UserError(str(err)) from None
    except ValidationError as err:
        raise UserError(f"--{err.field} {err.value!r}: {err.reason}") from None
    code = 0 if report.ok else 1
    if args.json == STDOUT:
        write_json(STDOUT, report.to_json())
        return code
    print(format_report(report))
    if args.json:
        print(f"\nreport written to {write_json(args.json, report.to_json())}")
    return code


def add_sweep_commands(sub: Any) -> None:
    """Register ``sweep``."""
    p = add_command(sub, "sweep", "run one chaos session per seed on every core, or on a Dask cluster",
                    _cmd_sweep, description=__doc__)
    p.add_argument("--seeds", type=_type(parse_seeds), required=True, metavar="SPEC",
                   help="seeds such as 1-10000 or 1,5,9-12 (at most 1,000,000)")
    add_groups(p, 100, "iron condors per session")
    add_profile(p, "hostile")
    add_mode(p)
    p.add_argument("--crash", action="store_true",
                   help="per seed, the SIGKILL crash campaign (journal, kill, recover, verify) instead of a session")
    p.add_argument("--kills", type=count_at_most(MAX_KILLS), default=len(CRASH_POINTS), metavar="N",
                   help=f"with --crash: SIGKILLs per campaign (default {len(CRASH_POINTS)}: each crash point once)")
    p.add_argument("--workers", type=positive_at_most(MAX_WORKERS), default=None, metavar="K",
                   help="worker processes of the local cluster (default: one per core)")
    p.add_argument("--scheduler", type=_type(parse_scheduler), default=None, metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler's cluster instead of a local one")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=folder_path, default=None, metavar="DIR",
                       help="folder of the results file (named after the config; default the current folder)")
    where.add_argument("--results", type=file_path, default=None, metavar="PATH",
                       help="the results file (JSON lines; re-running the same command resumes it)")
    add_json(p, "the sweep report")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
