"""Every command shown in the docs is run, so none goes stale.

The convention (for every ``docs/**/*.md``, including pages added later, and ``README.md``):

* Commands live in fenced blocks whose info string is ``console``. In such a block a line that
  starts with ``$ `` is a command; a command line ending in ``\\`` continues on the next line.
  Every other line is sample output, shown to the reader and not compared (it holds timings).
* The commands of one page run in page order, each with ``bash -c``, in ONE scratch copy of the
  repository (so a page may write ``out/`` and read it back, and ``atomic-orders docs`` may
  rewrite the copy's docs), with the project's virtualenv first on ``PATH`` (``atomic-orders``,
  ``python`` and ``pytest`` are the project's) and ``CI=1``. Each must exit 0 within
  :data:`TIMEOUT` seconds. Each command is its own shell: ``cd`` and ``export`` do not carry over
  to the next one (write ``cd dir && command``).
* A command ending in `` &`` is a server: it runs in the background until the end of its block;
  the next command starts once the server printed its first line. The emulator's documented port
  ``8765`` is replaced by a free port, so parallel runs do not collide.
* Budgets, decided here and nowhere else (so a page shows the command a user types):

  - ``pytest`` on anything under ``tests/`` is run with ``--collect-only -q``: those tests run in
    the suite itself; here the command line (paths, ``-k``, options, the
    ``ATOMIC_ORDERS_PROFILE`` value) must be valid and select at least one test. This covers the
    deep Hypothesis profile (about an hour).
  - ``atomic-orders check --depth K`` with K above :data:`CHECK_DEPTH` runs at depth
    :data:`CHECK_DEPTH` (depth 5 takes ~20 s, 6 ~3 min; the suite runs the profile's depth).
  - ``./tasks.sh`` (it would build a virtualenv in the copy) is parse-only: its subcommand must
    be ``simulate`` or ``test`` and the options after it must parse (``atomic-orders simulate``'s
    parser; pytest ``--collect-only``).
  - A block preceded by the line ``<!-- docs-check: parse-only -->`` is parse-only: ``bash -n``
    for every command, plus the ``atomic-orders`` argument parser for ``atomic-orders`` commands
    and ``--collect-only`` for ``pytest`` commands. Use it for commands that need what a test
    machine lacks (real credentials, a QuantConnect account).

* A block preceded by the line ``<!-- docs-check: output -->`` also has its sample output
  checked (use it for deterministic output): every output line shown under a command must appear
  in what the command printed, in the same order (trailing spaces ignored); a line ``...`` (however
  indented) in the sample stands for any number of lines left out.

No command escapes the check: :func:`test_no_command_is_shown_outside_a_console_block` fails on
an indented code block or a ``bash``/``sh``/``shell`` (or unlabelled) block that shows a command.

Fenced ``python`` blocks are not commands; :func:`test_python_blocks_compile_and_import` checks
that each compiles and that every name it imports from this project exists. A ``python`` block
preceded by the line ``<!-- docs-check: run -->`` is also run, as a script with the project's
python in an empty directory: it must exit 0 within :data:`TIMEOUT` seconds and print something,
so such a block shows its outcome and asserts it (the README's quick start).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import select
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
VENV_BIN = Path(sys.executable).parent
#: Seconds one command may take.
TIMEOUT = 180
#: The exhaustive check's depth in the docs check (see the module docstring).
CHECK_DEPTH = 3
#: The port the docs show for the emulator (replaced by a free one).
EMULATOR_PORT = "8765"
PARSE_ONLY_MARK = "<!-- docs-check: parse-only -->"
OUTPUT_MARK = "<!-- docs-check: output -->"
RUN_MARK = "<!-- docs-check: run -->"
_SKIP_COPY = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".hypothesis", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".benchmarks",
    "out", "*.egg-info", "build", "dist",
)
#: Packages of this project: a python block importing from them must name things that exist.
_OWN = ("atomic_orders",)


@attrs.frozen
class Command:
    """One ``$ `` command of a console block."""

    text: str
    page: str
    line: int
    block: int
    parse_only: bool = False
    #: The sample output shown under the command, when the block's output is checked (else None).
    output: tuple[str, ...] | None = None

    @property
    def background(self) -> bool:
        """Ends in ``&``: a server kept running until the end of its block."""
        return self.text.rstrip().endswith("&") and not self.text.rstrip().endswith("&&")

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: $ {self.text}"


def doc_pages() -> list[Path]:
    """Every Markdown page under docs/, sorted, then the README."""
    return [*sorted(DOCS.rglob("*.md")), README]


_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


def fenced_blocks(text: str) -> Iterator[tuple[str, int, list[str], str]]:
    """``(info, first line number, lines, mark)`` of every fenced block of a Markdown text.

    ``mark`` is the ``<!-- docs-check: ... -->`` line right before the block, or ``""``.
    """
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(2), m.group(3), i + 1
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        yield info, start + 1, body, previous if previous in (PARSE_ONLY_MARK, OUTPUT_MARK, RUN_MARK) else ""


def console_commands(text: str, page: str) -> list[Command]:
    """The commands of every ``console`` block of ``text``, in order."""
    out: list[Command] = []
    for n, (info, first, body, mark) in enumerate(fenced_blocks(text)):
        if info != "console":
            continue
        j = 0
        while j < len(body):
            line = body[j]
            if line.startswith("$ "):
                number = first + j
                parts = [line[2:]]
                while parts[-1].endswith("\\") and j + 1 < len(body):
                    j += 1
                    parts.append(body[j])
                shown: list[str] = []
                while j + 1 < len(body) and not body[j + 1].startswith("$ "):
                    j += 1
                    shown.append(body[j])
                output = tuple(shown) if mark == OUTPUT_MARK else None
                out.append(Command("\n".join(parts), page, number, n, mark == PARSE_ONLY_MARK, output))
            j += 1
    return out


def output_matches(shown: tuple[str, ...], printed: str) -> str | None:
    """``None`` when every shown line appears in ``printed`` in order (``...`` skips); else the first missing one."""
    actual = [line.rstrip() for line in printed.splitlines()]
    i = 0
    for line in shown:
        want = line.rstrip()
        if want.strip() == "...":
            continue
        while i < len(actual) and actual[i] != want:
            i += 1
        if i == len(actual):
            return line
        i += 1
    return None


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, source)`` of every ``python`` block of ``text``."""
    return [(first, "\n".join(body)) for info, first, body, _ in fenced_blocks(text) if info == "python"]


def runnable_python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, source)`` of every ``python`` block marked to run (:data:`RUN_MARK`)."""
    return [(first, "\n".join(body)) for info, first, body, mark in fenced_blocks(text)
            if info == "python" and mark == RUN_MARK]


# -- running -------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["CI"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _split(text: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` assignments and the argv of a simple command."""
    words = shlex.split(text.replace("\\\n", " "))
    env: dict[str, str] = {}
    while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


def _is_simple(text: str) -> bool:
    return not re.search(r"[|;<>]|&&|\$\(", text.replace("\\\n", " "))


def budgeted(command: Command) -> tuple[str, str]:
    """``(mode, shell text)``: ``run`` the text as is, or ``parse`` it (see the module docstring)."""
    text = command.text.rstrip()
    if command.background:
        text = text[:-1].rstrip()
    if command.parse_only:
        return "parse", text
    if _is_simple(text):
        env, argv = _split(text)
        if argv[:1] == ["./tasks.sh"]:
            return "parse", text
        if argv[:1] == ["pytest"] and any(a.startswith("tests") for a in argv[1:]):
            return "parse", text
        if argv[:2] == ["atomic-orders", "check"]:
            for i, word in enumerate(argv):
                if word == "--depth" and i + 1 < len(argv) and int(argv[i + 1]) > CHECK_DEPTH:
                    argv[i + 1] = str(CHECK_DEPTH)
            prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            return "run", (prefix + " " if prefix else "") + shlex.join(argv)
    return "run", text


def _parse(text: str, cwd: Path) -> None:
    """Check a command line without running its work."""
    syntax = subprocess.run(["bash", "-n", "-c", text], capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, f"bash cannot parse it: {syntax.stderr}"
    if not _is_simple(text):
        return
    env, argv = _split(text)
    if argv[:1] == ["./tasks.sh"]:
        assert (cwd / "tasks.sh").exists()
        assert argv[1:2] in (["simulate"], ["test"]), f"tasks.sh has no subcommand {argv[1:2]}"
        argv = ["atomic-orders", *argv[1:]] if argv[1] == "simulate" else ["pytest", *argv[2:]]
    if argv[:1] == ["atomic-orders"]:
        code = ("import sys; from atomic_orders.simulator.cli.main import build_parser; "
                "build_parser().parse_args(sys.argv[1:])")
        res = subprocess.run([sys.executable, "-c", code, *argv[1:]], cwd=cwd, env={**_env(), **env},
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"atomic-orders cannot parse it: {res.stderr}"
    elif argv[:1] == ["pytest"]:
        collect = [sys.executable, "-m", "pytest", *argv[1:], "--collect-only", "-q", "-p", "no:cacheprovider"]
        res = subprocess.run(collect, cwd=cwd, env={**_env(), **env}, capture_output=True, text=True, timeout=TIMEOUT)
        # exit 0 means it collected at least one test (no test at all is exit 5)
        assert res.returncode == 0, f"pytest cannot collect it:\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}"


def _start_server(text: str, cwd: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    first = proc.stdout.readline() if ready else ""
    if not first:
        _stop(proc)
        raise AssertionError(f"the server printed nothing within 30 s: $ {text}")
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run_page(page: Path, scratch: Path) -> list[str]:
    """Run (or parse) every command of ``page`` in ``scratch``; return what was done, one line each."""
    commands = console_commands(page.read_text(encoding="utf-8"), str(page.relative_to(REPO)))
    done: list[str] = []
    servers: dict[int, list[subprocess.Popen[str]]] = {}
    port = _free_port()
    try:
        for command in commands:
            for block in [b for b in servers if b != command.block]:
                for proc in servers.pop(block):
                    _stop(proc)
            mode, text = budgeted(command)
            text = text.replace(EMULATOR_PORT, port)
            if mode == "parse":
                _parse(text, scratch)
            elif command.background:
                servers.setdefault(command.block, []).append(_start_server(text, scratch))
            else:
                res = subprocess.run(["bash", "-c", text], cwd=scratch, env=_env(), capture_output=True, text=True,
                                     timeout=TIMEOUT)
                assert res.returncode == 0, (
                    f"{command}\nexit {res.returncode}\n--- stdout\n{res.stdout[-4000:]}\n"
                    f"--- stderr\n{res.stderr[-4000:]}"
                )
                if command.output is not None:
                    missing = output_matches(command.output, res.stdout)
                    assert missing is None, f"{command}\nprinted no line {missing!r} (in order):\n{res.stdout[-4000:]}"
            done.append(f"{mode}: {text}")
    finally:
        for procs in servers.values():
            for proc in procs:
                _stop(proc)
    return done


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS)) if page.is_relative_to(DOCS) else page.name


# -- the tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parent directory for one scratch copy of the repository per page."""
    return tmp_path_factory.mktemp("docs-commands")


PAGES_WITH_COMMANDS = [p for p in doc_pages() if console_commands(p.read_text(encoding="utf-8"), p.name)]


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=_page_id)
def test_every_command_of_the_page_runs(page: Path, scratch_parent: Path) -> None:
    scratch = scratch_parent / _page_id(page).replace("/", "_")
    shutil.copytree(REPO, scratch, ignore=_SKIP_COPY)
    done = run_page(page, scratch)
    assert done, f"{page.name}: no command found"


def test_the_docs_show_commands() -> None:
    """The check is not vacuous: the pages this project ships show commands, and all are found."""
    names = {p.name for p in PAGES_WITH_COMMANDS}
    assert {"chaos.md", "tastytrade.md", "invariants.md", "architecture.md"} <= names
    total = sum(len(console_commands(p.read_text(encoding="utf-8"), p.name)) for p in doc_pages())
    assert total >= 15


@pytest.mark.parametrize("page", doc_pages(), ids=_page_id)
def test_python_blocks_compile_and_import(page: Path) -> None:
    for line, source in python_blocks(page.read_text(encoding="utf-8")):
        where = f"{page.name}:{line}"
        tree = compile(source, where, "exec", ast.PyCF_ONLY_AST)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _OWN:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                        f"{where}: {node.module} has no {alias.name}"
                    )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in _OWN:
                        importlib.import_module(alias.name)


PAGES_WITH_RUNNABLE_PYTHON = [p for p in doc_pages() if runnable_python_blocks(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", PAGES_WITH_RUNNABLE_PYTHON, ids=_page_id)
def test_marked_python_blocks_run(page: Path, tmp_path: Path) -> None:
    for line, source in runnable_python_blocks(page.read_text(encoding="utf-8")):
        res = subprocess.run([sys.executable, "-c", source], cwd=tmp_path, env=_env(), capture_output=True,
                             text=True, timeout=TIMEOUT)
        where = f"{page.name}:{line}"
        assert res.returncode == 0, f"{where}: exit {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
        assert res.stdout.strip(), f"{where}: printed nothing (a run block shows its outcome)"


def test_the_readme_quick_start_is_run() -> None:
    """The check is not vacuous: the README's Python quick start is one of the blocks run."""
    blocks = runnable_python_blocks(README.read_text(encoding="utf-8"))
    assert any("execute_iron_condor(" in source and "execute_vertical(" in source for _, source in blocks)


#: What a shown command starts with (a prompt, a path to run, or one of the tools the docs use).
_COMMAND_LIKE = re.compile(
    r"^\s*(\$ |\./|\.venv/|(sudo|export|cd|pip|python3?|pytest|atomic-orders|bash|sh|git|sqlite3|curl|grep|cmp)\b)"
)


def escaped_commands(text: str) -> list[tuple[int, str]]:
    """``(line, text)`` of command-like lines shown where the check does not run them.

    That is: in an indented code block (four spaces after a blank line, outside a fence and a
    list), or in a fenced block labelled ``bash``, ``sh``, ``shell``, ``zsh`` or not labelled at all.
    """
    found: list[tuple[int, str]] = []
    for info, first, body, _ in fenced_blocks(text):
        if info in ("", "bash", "sh", "shell", "zsh", "shell-session"):
            found += [(first + i, line) for i, line in enumerate(body) if _COMMAND_LIKE.match(line)]
    lines = text.splitlines()
    in_fence, in_list, fence = False, False, ""
    for n, line in enumerate(lines, start=1):
        m = _FENCE.match(line)
        if in_fence:
            in_fence = not line.strip().startswith(fence)
            continue
        if m:
            in_fence, fence = True, m.group(2)
            continue
        if re.match(r"^\s{0,3}([-*+]|\d+\.)\s", line):
            in_list = True
        elif line.strip() and not line.startswith(" "):
            in_list = False
        blank_before = n == 1 or not lines[n - 2].strip() or lines[n - 2].startswith("    ")
        if not in_list and line.startswith("    ") and blank_before and _COMMAND_LIKE.match(line):
            found.append((n, line))
    return found


@pytest.mark.parametrize("page", doc_pages(), ids=_page_id)
def test_no_command_is_shown_outside_a_console_block(page: Path) -> None:
    """A command a reader can copy is in a ``console`` block, so the check above runs it."""
    assert escaped_commands(page.read_text(encoding="utf-8")) == []


def test_escaped_commands_are_found() -> None:
    text = (
        "Run it:\n\n    ./tasks.sh simulate\n\n```bash\npytest -q\n```\n\n```\nfsm/  the core\n```\n"
        "- a list item\n\n    pytest, continued: not code\n\n```console\n$ pytest -q\n```\n"
    )
    assert escaped_commands(text) == [(6, "pytest -q"), (3, "    ./tasks.sh simulate")]


# -- the convention itself -------------------------------------------------------------------------------

_SAMPLE = """\
text
```console
$ atomic-orders simulate --groups 5 \\
    --quiet
output line
$ atomic-orders emulate --port 8765 &
banner
$ python client.py
```

<!-- docs-check: parse-only -->

```console
$ ATOMIC_ORDERS_PROFILE=deep pytest tests/properties
```

```python
print("not a command")
```
"""


def test_the_convention() -> None:
    commands = console_commands(_SAMPLE, "sample.md")
    assert [c.text for c in commands] == [
        "atomic-orders simulate --groups 5 \\\n    --quiet",
        "atomic-orders emulate --port 8765 &",
        "python client.py",
        "ATOMIC_ORDERS_PROFILE=deep pytest tests/properties",
    ]
    assert [c.line for c in commands] == [3, 6, 8, 14]
    assert [c.background for c in commands] == [False, True, False, False]
    assert [c.parse_only for c in commands] == [False, False, False, True]
    assert commands[0].block == commands[2].block != commands[3].block
    assert python_blocks(_SAMPLE) == [(18, 'print("not a command")')]
    assert [c.output for c in commands] == [None, None, None, None]
    checked = console_commands(f"{OUTPUT_MARK}\n```console\n$ echo a\na\n...\nc\n$ true\n```\n", "o.md")
    assert [c.output for c in checked] == [("a", "...", "c"), ()]
    marked = f"{RUN_MARK}\n\n```python\nprint(1)\n```\n\n```python\nprint(2)\n```\n"
    assert runnable_python_blocks(marked) == [(4, "print(1)")]


def test_output_matching() -> None:
    assert output_matches(("a", "...", "c"), "a\nb\nc  \n") is None
    assert output_matches(("a", "c"), "x\na\nb\nc\n") is None
    assert output_matches(("c", "a"), "a\nc\n") == "a"
    assert output_matches(("z",), "a\n") == "z"
    assert output_matches(("a", "  ...", "b"), "a\nx\nb\n") is None


def test_budgets() -> None:
    def mode(text: str) -> tuple[str, str]:
        return budgeted(Command(text, "x.md", 1, 0))

    assert mode("atomic-orders simulate --groups 5") == ("run", "atomic-orders simulate --groups 5")
    assert mode("atomic-orders check --depth 6") == ("run", f"atomic-orders check --depth {CHECK_DEPTH}")
    assert mode("atomic-orders check --depth 2") == ("run", "atomic-orders check --depth 2")
    assert mode("ATOMIC_ORDERS_PROFILE=deep pytest tests/properties")[0] == "parse"
    assert mode("pytest docs/examples/test_my_strategy.py")[0] == "run"
    assert mode("./tasks.sh test -q")[0] == "parse"
    assert mode("atomic-orders emulate --port 8765 &") == ("run", "atomic-orders emulate --port 8765")


def test_parse_only_catches_a_bad_command_line(tmp_path: Path) -> None:
    (tmp_path / "tasks.sh").write_text("", encoding="utf-8")
    _parse("atomic-orders check --depth 6 --mode combo", tmp_path)
    with pytest.raises(AssertionError, match="cannot parse"):
        _parse("atomic-orders check --deepness 6", tmp_path)
    with pytest.raises(AssertionError, match="no subcommand"):
        _parse("./tasks.sh deploy", tmp_path)
    with pytest.raises(AssertionError, match="bash cannot parse"):
        _parse("echo 'unclosed", tmp_path)
