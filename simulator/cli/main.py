"""The ``atomic-orders`` command line: simulate, emulate, diagrams, docs, bench, check."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from atomic_orders.fsm.group import ExecutionMode


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _cmd_simulate(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.session.runner import SessionConfig, format_report, run_session

    # Alerts are counted in the report; print each one only when asked. Violations always print.
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")

    config = SessionConfig(
        seed=args.seed,
        groups=args.groups,
        profile=args.profile,
        mode=ExecutionMode(args.mode),
        max_quantity=args.max_quantity,
        verify_replay=args.verify_replay,
        backend=args.backend,
        http_faults=args.http_faults,
    )
    events_path = Path(args.events) if args.events else None
    journal_path = Path(args.journal) if args.journal else None
    if journal_path is not None and journal_path.exists():
        print(f"error: journal {str(journal_path)!r} already exists (a new session needs a new journal; "
              "'atomic-orders recover' continues an old one)", file=sys.stderr)
        return 2
    if journal_path is not None:
        journal_path.parent.mkdir(parents=True, exist_ok=True)
    if events_path is not None:
        events_path.parent.mkdir(parents=True, exist_ok=True)
    show_progress = not args.quiet and sys.stderr.isatty()
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]simulating[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            transient=True,
        ) as progress:
            task = progress.add_task("groups", total=config.groups)
            report = run_session(
                config,
                events_path=events_path,
                on_group_finished=lambda done, _total: progress.update(task, completed=done),
                journal_path=journal_path,
                journal_sync=args.journal_sync,
            )
    else:
        report = run_session(config, events_path=events_path, journal_path=journal_path,
                             journal_sync=args.journal_sync)
    print(format_report(report))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"\nreport written to {path}")
    if events_path is not None:
        print(f"event log written to {events_path}")
    return 0 if report.ok else 1


def _cmd_diagrams(args: argparse.Namespace) -> int:
    from atomic_orders.fsm.diagrams import check_all, render_all

    if args.check:
        stale = check_all(Path(args.out))
        for line in stale:
            print(line)
        return 1 if stale else 0
    for path in render_all(Path(args.out)):
        print(path)
    return 0


# -- docs (generated documentation: simulator/cli/docs.py) ---------------------------------------------


def _cmd_docs(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.cli.docs import check_docs, write_docs

    if args.check:
        stale = check_docs(Path(args.out))
        for name in stale:
            print(f"{name} is stale: run `atomic-orders docs`")
        return 1 if stale else 0
    for path in write_docs(Path(args.out)):
        print(path)
    return 0


# -- end docs -------------------------------------------------------------------------------------


def _cmd_emulate(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.emulator import HttpFaults, run_standalone

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    run_standalone(args.port, args.profile, args.seed, speed=args.speed, faults=HttpFaults.preset(args.http_faults))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.cli.bench import format_report, run_bench, to_json
    from atomic_orders.simulator.cli.throughput import simulation_figures

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    sim = None if args.no_sim else (lambda: simulation_figures(quick=args.quick))
    result = run_bench(quick=args.quick, sim=sim, progress=lambda line: print(line, file=sys.stderr))
    print(format_report(result))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_json(result), encoding="utf-8")
        print(f"\nbench written to {path}")
    return 0


# -- check (exhaustive small-scope check of the rollback invariants; simulator/proofs/exhaustive.py) ----


def _cmd_check(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.proofs.exhaustive import format_check, run_check

    modes = [ExecutionMode(m) for m in args.mode] if args.mode else list(ExecutionMode)
    report = run_check(args.depth, modes, quantity=args.quantity, workers=args.workers)
    print(format_check(report))
    return 0 if report.ok else 1


# -- end check ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``atomic-orders`` command."""
    parser = argparse.ArgumentParser(prog="atomic-orders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="simulate a trading session of iron condors against a chaotic broker")
    sim.add_argument("--seed", type=int, default=7, help="one seed makes the whole session (default 7)")
    sim.add_argument("--groups", type=_positive_int, default=500, help="iron condors placed over the day (default 500)")
    sim.add_argument("--profile", choices=("calm", "rough", "hostile"), default="rough", help="chaos preset")
    sim.add_argument("--mode", choices=[m.value for m in ExecutionMode], default="combo", help="combo or legged")
    sim.add_argument("--max-quantity", type=int, default=5, help="condors are 1..N units (default 5)")
    sim.add_argument("--json", metavar="PATH", help="write the report as JSON")
    sim.add_argument("--events", metavar="PATH", help="write the broker event log (JSON lines) for replay")
    sim.add_argument("--verify-replay", action="store_true", help="also replay every group's audit trail at its end")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--verbose", action="store_true", help="print every alert as it is raised")
    sim.add_argument("--backend", choices=("simulated", "tastytrade-emulator"), default="simulated",
                     help="simulated (in-process) or tastytrade-emulator (real TastyTrade client over HTTP)")
    sim.add_argument("--http-faults", choices=("none", "light", "heavy"), default="none",
                     help="HTTP faults injected by the TastyTrade emulator (default none)")
    sim.add_argument("--journal", metavar="PATH", help="journal the session (write-ahead SQLite, docs/journal.md)")
    sim.add_argument("--journal-sync", choices=("full", "normal"), default="full",
                     help="full: fsync every commit (survives power loss); normal: survives a process crash")
    sim.set_defaults(func=_cmd_simulate)

    dia = sub.add_parser("diagrams", help="render every state machine from its table (graphviz)")
    dia.add_argument("--out", default="diagrams", help="output directory (default diagrams/)")
    dia.add_argument("--check", action="store_true", help="only list diagrams that no longer match their tables")
    dia.set_defaults(func=_cmd_diagrams)

    docs = sub.add_parser("docs", help="write the generated docs (state tables, status and preset tables)")
    docs.add_argument("--out", default="docs", help="docs directory (default docs/)")
    docs.add_argument("--check", action="store_true", help="only list docs whose generated parts are stale")
    docs.set_defaults(func=_cmd_docs)

    emu = sub.add_parser("emulate", help="serve a local TastyTrade API emulator on 127.0.0.1 (Ctrl-C stops)")
    emu.add_argument("--port", type=int, default=8765, help="TCP port on 127.0.0.1 (default 8765; 0 = any free)")
    emu.add_argument("--profile", choices=("none", "calm", "rough", "hostile"), default="rough", help="chaos preset")
    emu.add_argument("--seed", type=int, default=7, help="seed of the simulated broker (default 7)")
    emu.add_argument("--speed", type=float, default=1.0, help="virtual seconds per wall-clock second (default 1)")
    emu.add_argument("--http-faults", choices=("none", "light", "heavy"), default="none", help="HTTP fault preset")
    emu.set_defaults(func=_cmd_emulate)

    chk = sub.add_parser("check", help="exhaustively check every broker script up to --depth against the invariants")
    chk.add_argument("--depth", type=_positive_int, default=5,
                     help="script length K (default 5: ~20 s on 2 cores; 6: ~3 min)")
    chk.add_argument("--mode", action="append", choices=[m.value for m in ExecutionMode],
                     help="combo and/or legged (repeatable; default both)")
    chk.add_argument("--quantity", type=int, default=2, help="units of the 2-leg vertical (default 2)")
    chk.add_argument("--workers", type=int, default=2, help="modes checked in parallel processes (default 2)")
    chk.set_defaults(func=_cmd_check)

    bench = sub.add_parser("bench", help="measure the machines and the simulator; print figures")
    bench.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    bench.add_argument("--quick", action="store_true", help="small sizes (a smoke run, figures are noisy)")
    bench.add_argument("--no-sim", action="store_true", help="skip the simulated-session figures (10k condors x2)")
    bench.set_defaults(func=_cmd_bench)

    from atomic_orders.simulator.cli.journal import add_journal_commands

    add_journal_commands(sub)
    from atomic_orders.simulator.cli.lean_run import add_lean_commands

    add_lean_commands(sub)
    return parser


#: Exit status when the reader of our output went away (``| head``): what a SIGPIPE death gives.
EXIT_BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``atomic-orders`` console script.

    Output piped into a reader that stops early (``| head``) ends the command quietly with
    status 141, as a command killed by SIGPIPE would, instead of a ``BrokenPipeError`` trace.
    """
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # inside the guard: a pipe closed early fails here, not at exit
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is silent too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    raise SystemExit(main())
