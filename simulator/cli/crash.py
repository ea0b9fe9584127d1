"""``atomic-orders crash run|child|serve``: the SIGKILL crash test from the command line.

* ``run`` -- crash campaigns (seeds ``--seed`` .. ``--seed + --runs - 1``): ``--kills`` planned
  SIGKILLs each, recovery, verification against the emulator's record; prints figures, exit
  status 1 when a campaign found a problem.
* ``child`` -- one life of the trading process; ``run`` starts it (``sys.executable -m
  atomic_orders.simulator.cli crash child ...``) with the emulator's credentials in its environment.
* ``serve`` -- a time-controlled TastyTrade emulator (the clock routes ``recover --backend
  tastytrade-emulator`` needs) until Ctrl-C.

The harness itself is :mod:`atomic_orders.simulator.crash.harness` (docs/journal.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from atomic_orders.simulator.cli.options import (
    MAX_KILLS,
    MAX_RUNS,
    UserError,
    add_command,
    add_groups,
    add_journal,
    add_port,
    add_profile,
    add_seed,
    count_at_most,
    folder_path,
    non_negative_float,
    positive_at_most,
    positive_float,
)

__all__ = ["add_crash_commands"]


def _session(args: argparse.Namespace) -> Any:
    from atomic_orders.simulator.crash.harness import CrashSession

    return CrashSession(args.seed, args.groups, args.profile, args.session_seconds, args.batch_seconds)


def _cmd_child(args: argparse.Namespace) -> int:
    import requests

    from atomic_orders.backends.tastytrade.auth import OAuthCredentials
    from atomic_orders.simulator.crash.harness import run_child

    try:
        OAuthCredentials.from_env()  # checked before anything is opened (names the variables, never values)
    except ValueError as err:
        raise UserError(str(err)) from None
    try:
        result = run_child(args.url, args.account, args.journal, _session(args))
    except requests.RequestException as err:  # as 'recover' says it: the emulator is the user's to start
        raise UserError(f"--url {args.url!r}: the time-controlled emulator did not answer ({err}); start one "
                        "with 'atomic-orders crash serve'") from None
    print(json.dumps(result, sort_keys=True))  # the parent reads this last line
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.crash.harness import ControlledEmulator

    emulator = ControlledEmulator(_session(args).broker(), port=args.port).start()
    try:
        creds = emulator.credentials()
        print(f"time-controlled TastyTrade emulator on {emulator.url}  account {emulator.account_number}")
        print(f"  export TASTYTRADE_CLIENT_SECRET={creds.client_secret.reveal()} "
              f"TASTYTRADE_REFRESH_TOKEN={creds.refresh_token.reveal()}  (emulator-only test values)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:  # Ctrl-C is how a server is stopped, as with 'emulate': not an error
            return 0
    finally:
        emulator.stop()


def _cmd_run(args: argparse.Namespace) -> int:
    from atomic_orders.simulator.crash.harness import CrashSession, run_crash_test

    total_kills = Counter[str]()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        where = args.out if args.out is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for k in range(args.runs):
            session = CrashSession(args.seed + k, args.groups, args.profile, args.session_seconds, args.batch_seconds)
            report = run_crash_test(session, args.kills, where)
            print("\n".join(report.lines()), flush=True)
            total_kills.update(report.kills_by_point)
            total_kills["random time"] += report.time_kills
            failures += 0 if report.ok else 1
    print(f"total: {sum(total_kills.values())} SIGKILLs ({dict(sorted(total_kills.items()))}), "
          f"{failures} campaign(s) with problems")
    return 1 if failures else 0


def _session_args(p: argparse.ArgumentParser) -> None:
    add_seed(p, 11, "seed of the session (broker, market and plan)")
    add_groups(p, 8, "iron condors in the session")
    add_profile(p)
    p.add_argument("--session-seconds", type=positive_float, default=1200.0, metavar="S",
                   help="length of the simulated session in virtual seconds (default 1200)")
    p.add_argument("--batch-seconds", type=non_negative_float, default=0.0, metavar="S",
                   help="the journal's batch_seconds (default 0: every decision point commits)")


def add_crash_commands(sub: Any) -> None:
    """Add ``crash`` (run, child, serve) to the ``atomic-orders`` parser."""
    crash = add_command(sub, "crash", "the SIGKILL crash test: kill a journaled session, recover, verify", None)
    csub = crash.add_subparsers(dest="crash_command", title="commands", metavar="COMMAND")

    run = add_command(csub, "run", "run crash campaigns (kill, recover, verify against the broker); print figures",
                      _cmd_run)
    run.add_argument("--runs", type=positive_at_most(MAX_RUNS), default=3, metavar="N",
                     help=f"campaigns, seeds --seed .. --seed+N-1 (default 3, at most {MAX_RUNS:,})")
    run.add_argument("--kills", type=count_at_most(MAX_KILLS), default=20, metavar="N",
                     help=f"planned SIGKILLs per campaign (default 20, at most {MAX_KILLS:,})")
    run.add_argument("--out", type=folder_path, default=None, metavar="DIR",
                     help="where the journals go (default: a temporary folder, removed at the end)")
    _session_args(run)

    child = add_command(csub, "child", "one life of the trading process (started by 'crash run')", _cmd_child)
    child.add_argument("--url", required=True, help="the time-controlled emulator's URL")
    child.add_argument("--account", required=True, help="the account number")
    add_journal(child, required=True, exists=False, help="the session's journal (recovered from when it has history)")
    _session_args(child)

    serve = add_command(csub, "serve", "serve a time-controlled emulator until Ctrl-C (for 'atomic-orders recover')",
                        _cmd_serve)
    add_port(serve, 8766)
    _session_args(serve)
