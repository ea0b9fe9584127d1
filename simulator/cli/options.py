"""The options every ``atomic-orders`` subcommand shares: one name, one type, one set of choices.

A subcommand that takes a seed, a chaos profile, a journal, a JSON report, ... adds it through
the function here, so ``--profile`` offers the same presets in ``simulate``, ``emulate`` and
``crash``, and ``--journal PATH`` names a journal wherever one is read or written. Values are
checked while parsing: a bad one is a :class:`UserError` (one line on stderr, exit status 2).

The names:

* ``--seed N`` (int), ``--groups N`` (0 .. :data:`MAX_GROUPS`), ``--profile`` (:meth:`ChaosProfile.preset_names`),
  ``--mode combo|legged``, ``--backend simulated|tastytrade-emulator``,
  ``--http-faults none|light|heavy``, ``--port N`` (0..65535, 0 = any free port);
* ``--journal PATH`` (a journal file), ``--json [PATH]`` (JSON to PATH, or to stdout without
  PATH), ``--out PATH`` (where a command writes), ``--url``/``--account`` (an emulator).

Sizes have upper bounds (:data:`MAX_GROUPS`, :data:`MAX_DEPTH`, :data:`MAX_DAYS`, ...), refused
while parsing: a typo of a few digits must not run for hours or eat the machine's memory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.session.runner import BACKEND_NAMES  # not the emulator's: no HTTP stack

__all__ = [
    "HTTP_FAULT_PRESETS", "MAX_DAYS", "MAX_DEPTH", "MAX_GROUPS", "MAX_KILLS", "MAX_RUNS", "STDOUT", "Parser",
    "UserError", "add_backend", "add_command", "add_groups", "add_http_faults", "add_journal", "add_json",
    "add_mode", "add_port", "add_profile", "add_seed", "count", "count_at_most", "file_path", "folder_path",
    "input_file", "must_exist", "must_not_exist", "non_negative_float", "plain_text", "port", "positive",
    "positive_at_most", "positive_float", "write_json", "write_text",
]

#: ``--http-faults`` presets (:meth:`HttpFaults.preset`).
HTTP_FAULT_PRESETS = ("none", "light", "heavy")
#: ``--json`` without a path: the JSON goes to standard output.
STDOUT = "-"

# Upper bounds of sizes. Each is far above any use seen (tests, docs, the bench) and low enough that
# a mistyped value is refused instead of running for hours or filling the memory.
#: ``--groups``: iron condors of one session (a session holds every group's summary in memory).
MAX_GROUPS = 1_000_000
#: ``check --depth``: the scripts grow about 10x per step (5: ~20 s on 2 cores; 6: ~3 min; 8: hours).
MAX_DEPTH = 8
#: ``lean-run --days``: trading days, one year of them (each simulated day is a whole session).
MAX_DAYS = 260
#: ``crash run --runs``: campaigns (each starts and SIGKILLs trading processes).
MAX_RUNS = 1_000
#: ``crash run --kills``: planned SIGKILLs per campaign.
MAX_KILLS = 10_000


class UserError(Exception):
    """A mistake of the user's, not a bug: reported as one line on stderr, exit status 2.

    ``prog`` names the command the line is about (``atomic-orders simulate``); empty when the
    error boundary in :func:`atomic_orders.simulator.cli.main.main` should name it.
    """

    def __init__(self, message: str, prog: str = "") -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block) raised as :class:`UserError`."""

    def error(self, message: str) -> NoReturn:
        # argparse prints the usage block then the error; one line naming the fix reads better.
        raise UserError(" ".join(f"{message} (see '{self.prog} --help')".split()), prog=self.prog)


_RST_ROLE = re.compile(r":[\w:]+:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


def plain_text(doc: str) -> str:
    """``doc`` (a docstring) without its reStructuredText markup, for a terminal.

    A literal (two backquotes each side) keeps its text; a role such as ``:mod:`` keeps its target
    (after a ``~``, only the last dotted name, as Sphinx shows it).
    """

    def role(m: re.Match[str]) -> str:
        return m[1].rsplit(".", 1)[-1] if "`~" in m[0] else m[1]

    return _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(role, doc))


def add_command(sub: Any, name: str, summary: str, func: Callable[[argparse.Namespace], int] | None,
                *, description: str | None = None, **kwargs: Any) -> argparse.ArgumentParser:
    """Add subcommand ``name``: ``summary`` is its line in the parent's help; ``func(args)`` runs it.

    ``description`` (default ``summary``) heads its own ``--help``, a docstring's markup removed
    (:func:`plain_text`). A command with subcommands of its own passes ``func=None``: run without
    one, it prints its help.
    """
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary,
                                                     description=plain_text(description or summary), **kwargs)
    parser.set_defaults(func=func, help_parser=parser)
    return parser


# -- value types (argparse ``type=``): ArgumentTypeError becomes a one-line UserError -----------------


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def count(text: str) -> int:
    """An int >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def positive(text: str) -> int:
    """An int >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _at_most(kind: Callable[[str], int], maximum: int) -> Callable[[str], int]:
    def bounded(text: str) -> int:
        value = kind(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} is above the maximum {maximum}")
        return value

    return bounded


def count_at_most(maximum: int) -> Callable[[str], int]:
    """The type of an int in 0..``maximum``."""
    return _at_most(count, maximum)


def positive_at_most(maximum: int) -> Callable[[str], int]:
    """The type of an int in 1..``maximum``."""
    return _at_most(positive, maximum)


def int_above(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """The type of an int above ``minimum`` (and at most ``maximum``, when given)."""

    def above(text: str) -> int:
        value = _integer(text)
        if value <= minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be above {minimum:,}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} is above the maximum {maximum:,}")
        return value

    return above


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0..65535)")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value



def _under_a_folder(text: str, path: Path) -> Path:
    """``path`` when its nearest existing parent is a folder (the missing ones are created later)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {str(parent)!r} is a file, not a folder")
    return path

def file_path(text: str) -> Path:
    """A file to write: not a folder, and its nearest existing parent is a folder (created if missing)."""
    if not text or text.endswith(("/", "\\")):
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file")
    return _under_a_folder(text, path)


def folder_path(text: str) -> Path:
    """A folder to write into: not a file, and its nearest existing parent is a folder (created if missing)."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("'' is not a folder")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; expected a folder")
    return _under_a_folder(text, path)


def input_file(text: str) -> Path:
    """A file to read: not a folder (whether it exists is the command's to say: :func:`must_exist`)."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file")
    return path


# Existence is checked when the command runs, not while parsing: a command line parses the same
# whatever the file system holds (the docs check parses commands whose files do not exist).


def must_exist(path: Path, option: str) -> Path:
    """``path`` when it exists; else a :class:`UserError` naming ``option``."""
    if not path.exists():
        raise UserError(f"{option} {str(path)!r} does not exist")
    return path


def must_not_exist(path: Path, option: str, why: str) -> Path:
    """``path`` when nothing is there yet; else a :class:`UserError` naming ``option`` and ``why``."""
    if path.exists():
        raise UserError(f"{option} {str(path)!r} already exists ({why})")
    return path


def _json_target(text: str) -> str:
    return text if text == STDOUT else str(file_path(text))


# -- the shared options ---------------------------------------------------------------------------------


def add_seed(p: argparse.ArgumentParser, default: int, what: str = "one seed makes the whole session") -> None:
    """``--seed N``."""
    p.add_argument("--seed", type=_integer, default=default, metavar="N", help=f"{what} (default {default})")


def add_groups(p: argparse.ArgumentParser, default: int, what: str = "iron condors placed") -> None:
    """``--groups N`` (0 .. :data:`MAX_GROUPS`)."""
    p.add_argument("--groups", type=count_at_most(MAX_GROUPS), default=default, metavar="N",
                   help=f"{what} (default {default}, at most {MAX_GROUPS:,})")


def add_profile(p: argparse.ArgumentParser, default: str = "rough") -> None:
    """``--profile`` with every chaos preset (docs/chaos.md)."""
    p.add_argument("--profile", choices=ChaosProfile.preset_names(), default=default,
                   help=f"chaos preset of the simulated broker (default {default})")


def add_mode(p: argparse.ArgumentParser, *, repeatable: bool = False) -> None:
    """``--mode combo|legged`` (repeatable: a list, default both)."""
    modes = [m.value for m in ExecutionMode]
    if repeatable:
        p.add_argument("--mode", action="append", choices=modes, help="combo and/or legged (repeatable; default both)")
    else:
        p.add_argument("--mode", choices=modes, default="combo", help="one combo order, or one order per leg "
                                                                     "(default combo)")


def add_backend(p: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    """``--backend simulated|tastytrade-emulator`` (required when ``default`` is None)."""
    p.add_argument("--backend", choices=BACKEND_NAMES, default=default, required=default is None, help=help)


def add_http_faults(p: argparse.ArgumentParser) -> None:
    """``--http-faults none|light|heavy``."""
    p.add_argument("--http-faults", choices=HTTP_FAULT_PRESETS, default="none",
                   help="HTTP faults injected by the TastyTrade emulator (default none)")


def add_port(p: argparse.ArgumentParser, default: int) -> None:
    """``--port N`` on 127.0.0.1."""
    p.add_argument("--port", type=port, default=default, metavar="N",
                   help=f"TCP port on 127.0.0.1 (default {default}; 0 = any free port)")


def add_journal(p: argparse.ArgumentParser, *, required: bool, exists: bool, help: str) -> None:
    """``--journal PATH``: a journal to read (``exists``) or to write."""
    p.add_argument("--journal", type=input_file if exists else file_path, required=required, metavar="PATH",
                   help=help)


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    """``--json [PATH]``: ``what`` as JSON, written to PATH, or to stdout without PATH."""
    p.add_argument("--json", nargs="?", const=STDOUT, type=_json_target, metavar="PATH",
                   help=f"{what} as JSON: written to PATH, or without PATH printed instead of the text")


def write_json(target: str, data: Any) -> Path | None:
    """Write ``data`` as indented JSON to ``target`` (a path, or :data:`STDOUT`); return the file written."""
    return write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(target: str, text: str) -> Path | None:
    """Write ``text`` to ``target`` (a path, its folders created, or :data:`STDOUT`); return the file written."""
    if target == STDOUT:
        sys.stdout.write(text)
        return None
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
