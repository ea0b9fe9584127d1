"""The ``atomic-orders`` command line.

Run ``atomic-orders COMMAND --help`` for a command's options; the options commands share have one
name and one set of choices everywhere (``--seed``, ``--groups``, ``--profile``, ``--backend``,
``--journal PATH``, ``--json [PATH]``). Exit status: 0 done, 1 done and something to look at
(the command's report says what), 2 a usage error, a user error or Ctrl-C (one line on stderr).
"""

from __future__ import annotations

import argparse
import errno
import importlib.metadata
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.cli.options import (
    MAX_DEPTH,
    MAX_GROUPS,
    STDOUT,
    Parser,
    UserError,
    add_backend,
    add_command,
    add_groups,
    add_http_faults,
    add_journal,
    add_json,
    add_mode,
    add_port,
    add_profile,
    add_seed,
    count_at_most,
    file_path,
    folder_path,
    int_above,
    must_not_exist,
    positive,
    positive_at_most,
    positive_float,
    write_json,
    write_text,
)
from atomic_orders.simulator.cli.report import add_report_outputs, write_reports


def _cmd_simulate(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.session.runner import SessionConfig, format_report, run_session

    # Alerts are counted in the report; print each one only when asked. Violations always print.
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")

    if args.streamer == "on" and args.backend != "tastytrade-emulator":
        raise UserError("--streamer on: the account streamer needs --backend tastytrade-emulator")
    config = SessionConfig(
        seed=args.seed,
        groups=args.groups,
        profile=args.profile,
        mode=ExecutionMode(args.mode),
        max_quantity=args.max_quantity,
        verify_replay=args.verify_replay,
        backend=args.backend,
        http_faults=args.http_faults,
        streamer=args.streamer == "on",
    )
    events_path = args.events
    scratch = None
    if events_path is None and (args.html is not None or args.csv is not None):
        # The report files are drawn from the session's event log: kept in a scratch folder without --events.
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="atomic-orders-session-")
        events_path = Path(scratch.name) / "events.jsonl"
    journal_path = args.journal
    if journal_path is not None:
        must_not_exist(journal_path, "--journal",
                       "a new session needs a new journal; 'atomic-orders recover' continues an old one")
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
    written = write_reports(events_path, args.html, args.csv) if events_path is not None else []
    if scratch is not None:
        scratch.cleanup()
        events_path = None
    if args.json == STDOUT:
        write_json(STDOUT, report.to_json())
        return 0 if report.ok else 1
    print(format_report(report))
    if args.json:
        print(f"\nreport written to {write_json(args.json, report.to_json())}")
    if events_path is not None:
        print(f"event log written to {events_path}")
    for line in written:
        print(line)
    return 0 if report.ok else 1


#: The one line for a missing graphviz ``dot`` (checked before a diagram is written, and at the boundary).
NO_DOT = "graphviz's 'dot' program is not on PATH: install graphviz (Debian: apt-get install graphviz)"


def _folder_to_check(path: Path, what: str) -> Path:
    """``path`` when it is a folder; else a :class:`UserError` (--check run away from a checkout)."""
    if not path.is_dir():
        raise UserError(f"--out {str(path)!r}: no such folder to check (the {what} of a checkout; run from "
                        "the repository's root or give --out DIR)")
    return path


def _cmd_diagrams(args: argparse.Namespace) -> int:
    from atomic_orders.fsm.diagrams import check_all, render_all

    if args.check:
        stale = check_all(_folder_to_check(args.out, "diagrams/ folder"))
        for line in stale:
            print(line)
        return 1 if stale else 0
    if shutil.which("dot") is None:  # before anything is written: no folder, no half of the diagrams
        raise UserError(NO_DOT)
    for path in render_all(args.out):
        print(path)
    return 0


# -- docs (generated documentation: simulator/cli/docs.py) ---------------------------------------------


def _cmd_docs(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.cli.docs import check_docs, write_docs

    if args.check:
        stale = check_docs(_folder_to_check(args.out, "docs/ folder"))
        for name in stale:
            print(f"{name} is stale: run `atomic-orders docs`")
        return 1 if stale else 0
    for path in write_docs(args.out):
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
    if args.scaling is not None:
        from atomic_orders.simulator.cli.scaling import scaling_figures

        result["scaling"] = scaling_figures(large=args.scaling, progress=lambda line: print(line, file=sys.stderr))
    if args.sweep is not None:
        from atomic_orders.simulator.sweep.cluster import MissingDask
        from atomic_orders.simulator.sweep.throughput import sweep_throughput

        try:
            result["sweep"] = sweep_throughput(seeds=args.sweep, progress=lambda line: print(line, file=sys.stderr))
        except MissingDask as err:
            raise UserError(str(err)) from None
    if args.check_depth is not None:
        from atomic_orders.simulator.cli.check import check_figures

        result["check"] = check_figures(args.check_depth, progress=lambda line: print(line, file=sys.stderr))
    # Exit 1 when a correctness check of the bench failed (the implementations disagreed).
    code = 0 if result["checks_ok"] else 1
    if args.json == STDOUT:
        write_text(STDOUT, to_json(result))
        return code
    print(format_report(result))
    if args.json:
        print(f"\nbench written to {write_text(args.json, to_json(result))}")
    return code


# -- check (exhaustive small-scope check of the rollback invariants; simulator/proofs/exhaustive.py) ----


def _cmd_check(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.cli.check import run
    from atomic_orders.simulator.proofs.exhaustive import format_check

    modes = [ExecutionMode(m) for m in args.mode] if args.mode else list(ExecutionMode)
    report = run(args.depth, modes, quantity=args.quantity, workers=args.workers, dask=args.dask)
    print(format_check(report))
    return 0 if report.ok else 1


# -- end check ------------------------------------------------------------------------------------


def _version() -> str:
    try:
        return importlib.metadata.version("atomic-orders")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def add_main_commands(sub: Any) -> None:
    """Register ``simulate``, ``diagrams``, ``docs``, ``emulate``, ``check`` and ``bench``."""
    sim = add_command(sub, "simulate", "simulate a trading session of iron condors against a chaotic broker",
                      _cmd_simulate)
    add_seed(sim, 7)
    add_groups(sim, 500, "iron condors placed over the day")
    add_profile(sim)
    add_mode(sim)
    sim.add_argument("--max-quantity", type=positive_at_most(MAX_CONTRACTS), default=5, metavar="N",
                     help=f"condors are 1..N units (default 5, at most {MAX_CONTRACTS}: the execution policy's "
                          "max_contracts)")
    add_json(sim, "the report")
    sim.add_argument("--events", type=file_path, metavar="PATH",
                     help="write the broker event log (JSON lines) for replay")
    add_report_outputs(sim)
    sim.add_argument("--verify-replay", action="store_true", help="also replay every group's audit trail at its end")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--verbose", action="store_true", help="print every alert as it is raised")
    add_backend(sim, default="simulated",
                help="simulated (in-process, the default) or tastytrade-emulator (the real TastyTrade client over "
                     "HTTP to a local emulator)")
    add_http_faults(sim)
    sim.add_argument("--streamer", choices=("on", "off"), default="off",
                     help="tastytrade-emulator: also listen to the account streamer (pushed fills; polls become "
                          "a watchdog). Default off: a polled session is reproducible from its seed")
    add_journal(sim, required=False, exists=False,
                help="journal the session to this new file (write-ahead SQLite, docs/journal.md)")
    sim.add_argument("--journal-sync", choices=("full", "normal"), default="full",
                     help="full: fsync every commit (survives power loss); normal: survives a process crash")

    dia = add_command(sub, "diagrams", "render every state machine from its table as SVG (needs graphviz's dot)",
                      _cmd_diagrams)
    dia.add_argument("--out", type=folder_path, default=Path("diagrams"), metavar="DIR",
                     help="output folder (default diagrams/)")
    dia.add_argument("--check", action="store_true", help="only list diagrams that no longer match their tables")

    docs = add_command(sub, "docs", "write the generated parts of docs/ (state tables, status and preset tables)",
                       _cmd_docs)
    docs.add_argument("--out", type=folder_path, default=Path("docs"), metavar="DIR",
                      help="docs folder (default docs/)")
    docs.add_argument("--check", action="store_true", help="only list docs whose generated parts are stale")

    emu = add_command(sub, "emulate", "serve a TastyTrade API emulator on 127.0.0.1 until Ctrl-C", _cmd_emulate)
    add_port(emu, 8765)
    add_profile(emu)
    add_seed(emu, 7, "seed of the simulated broker")
    emu.add_argument("--speed", type=positive_float, default=1.0,
                     help="virtual seconds per wall-clock second (default 1)")
    add_http_faults(emu)

    chk = add_command(sub, "check", "exhaustively check every broker script up to --depth against the invariants",
                      _cmd_check)
    chk.add_argument("--depth", type=count_at_most(MAX_DEPTH), default=5, metavar="K",
                     help=f"script length K (default 5; each step multiplies the work ~5-8x; at most {MAX_DEPTH})")
    add_mode(chk, repeatable=True)
    chk.add_argument("--quantity", type=positive_at_most(MAX_CONTRACTS), default=2, metavar="N",
                     help=f"units of the 2-leg vertical (default 2, at most {MAX_CONTRACTS:,}: "
                          "the policy's contracts per leg)")
    chk.add_argument("--workers", type=positive, default=2, metavar="N",
                     help="worker processes (default 2: the two modes in parallel; 1: serial; the report is the same)")
    chk.add_argument("--dask", action="store_true",
                     help="split every level of the search over a local Dask cluster of --workers processes (the "
                          "'sweep' extra; pays off on more cores than two)")

    bench = add_command(sub, "bench", "measure the machines and the simulator; print figures", _cmd_bench)
    add_json(bench, "the figures")
    bench.add_argument("--quick", action="store_true", help="small sizes (a smoke run, figures are noisy)")
    bench.add_argument("--no-sim", action="store_true", help="skip the simulated-session figures (10k condors x2)")
    bench.add_argument("--check-depth", nargs="?", const=7, type=count_at_most(MAX_DEPTH), metavar="K",
                       help="also time 'check --depth K' (default 7) on 2 local worker processes beside its goal: "
                       "depth 7 under 3 minutes (slow: minutes)")
    # checked here, not after minutes of the other figures: the large session must exceed the 1,000 compared
    bench.add_argument("--scaling", nargs="?", const=100_000, type=int_above(1_000, MAX_GROUPS), metavar="N",
                       help="also run N hostile groups (above 1,000; default 100,000) against 1,000 in child "
                       "processes: per-condor cost, peak RSS and CPU time beside their goals (slow: minutes)")
    bench.add_argument("--sweep", nargs="?", const=40, type=positive_at_most(10_000), metavar="SEEDS",
                       help="also sweep SEEDS hostile sessions of 100 groups (default 40) on 1 then 2 local worker "
                       "processes: seeds per minute and their ratio (needs the 'sweep' extra; slow: minutes)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``atomic-orders`` command.

    Each module of commands exposes one registration function taking the subparsers; adding a
    command family is one call here.
    """
    parser = Parser(prog="atomic-orders",
                    description="Multi-leg option orders that execute atomically: every leg fills, or everything "
                                "is undone. Simulate sessions, serve an emulator, check, journal and recover.",
                    epilog="'atomic-orders COMMAND --help' shows a command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(func=None, help_parser=parser)
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    add_main_commands(sub)

    from atomic_orders.simulator.cli.journal import add_journal_commands

    add_journal_commands(sub)
    from atomic_orders.simulator.cli.crash import add_crash_commands

    add_crash_commands(sub)
    from atomic_orders.simulator.cli.lean_run import add_lean_commands

    add_lean_commands(sub)
    from atomic_orders.simulator.cli.report import add_report_commands

    add_report_commands(sub)
    from atomic_orders.simulator.cli.sweep import add_sweep_commands

    add_sweep_commands(sub)
    from atomic_orders.simulator.cli.live import add_live_commands

    add_live_commands(sub)
    return parser


#: Exit status when the reader of our output went away (``| head``): what a SIGPIPE death gives.
#: The largest condor ``simulate --max-quantity`` may ask for: the session's policy refuses more per leg.
MAX_CONTRACTS = ExecutionPolicy().max_contracts

EXIT_BROKEN_PIPE = 128 + 13


#: Exit status of a user error, a usage error and Ctrl-C (the issue asks 2 for Ctrl-C too, not 130).
EXIT_USER_ERROR = 2


def _user_error(err: BaseException, args: argparse.Namespace | None) -> str | None:
    """The one line that reports ``err`` when it is the user's to fix; ``None`` for a bug (traceback)."""
    if isinstance(err, UserError):
        return str(err)
    from atomic_orders.fsm.journal import JournalLocked

    if isinstance(err, JournalLocked):  # another process writes that journal: wait for it, or stop it
        return str(err)
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(err, OSError) and err.errno == errno.EADDRINUSE:
        port = getattr(args, "port", None)
        return (f"--port {port}: the port is already in use on 127.0.0.1 (choose another, or 0 for any free port)"
                if port is not None else f"address already in use: {err}")
    if isinstance(err, IsADirectoryError | NotADirectoryError | PermissionError) and err.filename:
        return f"{err.filename!r}: {err.strerror}"
    import graphviz

    if isinstance(err, graphviz.ExecutableNotFound):
        return NO_DOT
    return None


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGINT while a command runs: stop it (KeyboardInterrupt), and ignore any further Ctrl-C.

    The process is ending from the first Ctrl-C on. A second one, pressed while it shuts down
    (the journal closing, ``threading`` joining its threads after :func:`main` returned), would
    otherwise add an "Exception ignored ... KeyboardInterrupt" trace to the one line, or end the
    process by the signal instead of status 2.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _report(prog: str, message: str) -> None:
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``atomic-orders`` console script; returns the exit status.

    The error boundary: a user's mistake (a bad option value, a port in use, a folder where a
    file goes, a missing ``dot``, Ctrl-C) is one line on stderr and status 2
    (:data:`EXIT_USER_ERROR`); any other exception is a bug and keeps its traceback. Without a
    command (or a command group without its subcommand) the help is printed and the status is 2:
    nothing was done, so a script that forgot the command must not pass as if it had run.
    Output piped into a reader that stops early (``| head``) ends the command quietly with
    status 141, as a command killed by SIGPIPE would, instead of a ``BrokenPipeError`` trace.
    Every error line starts with the command's full name (``atomic-orders journal show: error:``).
    After a Ctrl-C, SIGINT stays ignored (:func:`_interrupted`): the process is ending.
    """
    parser = build_parser()
    args: argparse.Namespace | None = None
    prog = parser.prog
    # Python's own handler only, in the main thread (signal.signal is refused elsewhere).
    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if ours:
        signal.signal(signal.SIGINT, _interrupted)
    try:
        try:
            args, extra = parser.parse_known_args(argv)
            if extra:  # said by the command they were given to, not by the top-level parser
                getattr(args, "help_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
        except SystemExit as done:  # --help and --version print, then exit through argparse
            return done.code if isinstance(done.code, int) else 0
        # The parser of the command that runs knows its whole path (``atomic-orders crash run``).
        prog = args.help_parser.prog
        if args.func is None:
            args.help_parser.print_help()
            return EXIT_USER_ERROR
        code = int(args.func(args))
        sys.stdout.flush()  # inside the guard: a pipe closed early fails here, not at exit
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is silent too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except (Exception, KeyboardInterrupt) as err:
        message = _user_error(err, args)
        if message is None:
            raise
        _report(getattr(err, "prog", "") or prog, message)
        return EXIT_USER_ERROR
    finally:
        if ours and signal.getsignal(signal.SIGINT) is _interrupted:  # not interrupted: as it was
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
