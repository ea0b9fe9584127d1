"""``atomic-orders --version``, the help without a command, and a description for every subcommand."""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

from atomic_orders.simulator.cli.main import build_parser, main

CLI = [sys.executable, "-m", "atomic_orders.simulator.cli"]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """``name -> (its line in the parent's help, its parser)`` of ``parser``'s subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def test_version(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"atomic-orders {importlib.metadata.version('atomic-orders')}"


def test_no_command_prints_the_help_and_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(CLI, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and proc.stderr == ""
    assert proc.stdout.startswith("usage: atomic-orders") and "simulate" in proc.stdout


def test_every_subcommand_has_a_description_and_the_help_lists_it(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one listing line per command: argparse wraps to the terminal
    top = _subcommands(build_parser())
    # the commands this project ships (another module may add more: they are checked the same way)
    assert {"simulate", "diagrams", "docs", "emulate", "bench", "check", "journal", "recover", "crash"} <= set(top)
    assert main(["--help"]) == 0
    groups = {"atomic-orders": (top, capsys.readouterr().out)}
    for name in ("journal", "crash"):
        assert main([name]) == 2  # a command group without its subcommand prints its help
        groups[f"atomic-orders {name}"] = (_subcommands(top[name][1]), capsys.readouterr().out)
    assert set(groups["atomic-orders journal"][0]) == {"show", "salvage"}
    assert set(groups["atomic-orders crash"][0]) == {"run", "child", "serve"}
    for group, (commands, listing) in groups.items():
        # argparse puts a long name alone on its line and its description on the next: join them
        text = re.sub(r"^( +[\w-]+)\n {8,}", r"\1 ", listing, flags=re.MULTILINE)
        lines = [line.split(None, 1) for line in text.splitlines() if line.strip()]
        for name, (summary, sub) in commands.items():
            assert summary.strip() and "\n" not in summary, f"{group} {name} has no one-line description"
            assert [name, summary] in lines, f"{group} --help does not list {name} with its description:\n{listing}"
            assert main([*group.split()[1:], name, "--help"]) == 0
            own = capsys.readouterr().out
            assert own.startswith(f"usage: {group} {name}")
            if sub.description:  # this project's commands say on their own page what they do
                assert " ".join(sub.description.split()[:6]) in " ".join(own.split()), f"{group} {name} --help"
            else:
                raise AssertionError(f"{group} {name} --help has no description")


def test_the_command_line_loads_the_http_stack_only_for_commands_that_use_it(tmp_path: Path) -> None:
    # Startup cost of every command: the emulator and the TastyTrade client pull in requests.
    code = ("import sys; from atomic_orders.simulator.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('requests', 'urllib3', 'http')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "[]"
