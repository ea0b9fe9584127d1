"""``atomic-orders report``: a session's HTML page and per-group CSV, from its event log.

``atomic-orders report EVENTS.jsonl --html PATH [--csv PATH]`` draws them from a log written by
``atomic-orders simulate --events``; ``simulate --html PATH --csv PATH`` writes them at the end of a
session (:func:`add_report_outputs`, :func:`write_reports`). Each file written is one line on
stdout; a missing file or one that is not a session's event log is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.cli.options import UserError, add_command, file_path, input_file, must_exist

__all__ = ["add_report_commands", "add_report_outputs", "write_reports"]


def add_report_outputs(p: argparse.ArgumentParser) -> None:
    """``--html PATH`` and ``--csv PATH``: the session's report page and its per-group CSV."""
    p.add_argument("--html", type=file_path, metavar="PATH",
                   help="write the session's report as one self-contained HTML page (opens offline)")
    p.add_argument("--csv", type=file_path, metavar="PATH", help="write one CSV row per group (money in dollars)")


def _distinct(events: Path, html: Path | None, csv: Path | None) -> None:
    if html is not None and csv is not None and html.resolve() == csv.resolve():
        raise UserError(f"--html and --csv name the same file {str(html)!r}")
    for option, path in (("--html", html), ("--csv", csv)):
        if path is not None and path.resolve() == events.resolve():
            raise UserError(f"{option} {str(path)!r} is the event log it is drawn from")


def write_reports(events: Path, html: Path | None, csv: Path | None) -> list[str]:
    """Read the event log ``events`` and write the HTML page and/or the CSV; return one line per file.

    Raises :class:`UserError` when ``events`` is missing or not a session's event log (the log's
    :class:`ValidationError` names the line, the field and the value), or when a file cannot be
    written (each is written whole or not at all).
    """
    from atomic_orders.simulator.report.log import read_log

    _distinct(events, html, csv)
    try:
        log = read_log(must_exist(events, "event log"))
    except ValidationError as err:
        raise UserError(f"{str(events)!r} is not a session's event log (atomic-orders simulate --events): {err}")\
            from None
    from atomic_orders.simulator.report.html import write_html
    from atomic_orders.simulator.report.table import write_group_csv

    lines: list[str] = []
    option, path = "--html", html
    try:
        if html is not None:
            lines.append(f"HTML report written to {write_html(log, html)}")
        option, path = "--csv", csv
        if csv is not None:
            lines.append(f"group CSV written to {write_group_csv(log.groups, csv)}")
    except OSError as err:  # a full disk, a folder that cannot be made: nothing half-written is left
        raise UserError(f"{option} {str(path)!r}: cannot write it ({err.strerror or err})") from None
    return lines


def _cmd_report(args: argparse.Namespace) -> int:
    if args.html is None and args.csv is None:
        raise UserError("nothing to write: give --html PATH and/or --csv PATH")
    for line in write_reports(args.events, args.html, args.csv):
        print(line)
    return 0


def add_report_commands(sub: Any) -> None:
    """Register ``report``."""
    rep = add_command(sub, "report", "draw a session's HTML report and per-group CSV from its event log",
                      _cmd_report)
    rep.add_argument("events", type=input_file, metavar="EVENTS.jsonl",
                     help="the event log of a session (atomic-orders simulate --events PATH)")
    add_report_outputs(rep)
