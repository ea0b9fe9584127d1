"""``atomic-orders lean-run ALGORITHM --days N``: a QuantConnect algorithm on the LEAN stand-in.

The algorithm file is loaded as LEAN would load ``main.py``: its one ``QCAlgorithm`` subclass is
instantiated and attached to :class:`~atomic_orders.simulator.lean.brokerage.LeanStandIn` over the
simulated broker, which calls ``initialize`` (or classic QuantConnect's ``Initialize``; the same for
``on_order_event``/``OnOrderEvent``, whichever the class defines). ``from AlgorithmImports
import ...`` in the file
resolves to the stand-in's names (LEAN is not importable here). The stand-in then runs N trading
days (weekends skipped; each day a fresh simulated session, positions kept) firing the
algorithm's scheduled events, and the command prints the algorithm's ``log``/``debug``/``error``
lines with their algorithm time, then the executor's report: groups by outcome, fills, rollbacks,
orders sent, invariant violations, and the positions LEAN's portfolio holds at the end.

The report covers every :class:`~atomic_orders.backends.quantconnect.TastytradeIntegrationAdapter`
the algorithm keeps as an attribute (what ``initialize`` created).

Exit status: 0 when no invariant was violated and no group is still executing; 1 otherwise; 2
for input the command cannot use (a missing file, a file without a ``QCAlgorithm`` subclass,
``--days`` outside 1..260), reported on one line as ``atomic-orders lean-run: error: field='value': reason``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.cli.options import (
    MAX_DAYS,
    UserError,
    add_command,
    add_profile,
    add_seed,
    positive_at_most,
)

if TYPE_CHECKING:
    from atomic_orders.backends.quantconnect.adapter import TastytradeIntegrationAdapter
    from atomic_orders.fsm.executor import GroupSummary
    from atomic_orders.simulator.lean.algorithm import LogLine, QCAlgorithm

# The simulator and the backends are imported when a command runs, not when the parser is built.

__all__ = ["LeanRunReport", "add_lean_commands", "check_algorithm", "format_lean_report", "load_algorithm",
           "run_algorithm"]

#: The outcomes a finished group can have, in report order.
OUTCOMES = ("committed", "rolled_back", "failed", "invalid")


@attrs.frozen
class LeanRunReport:
    """What one ``lean-run`` did: the algorithm's output and the executor's outcome counts."""

    algorithm: str
    days: tuple[dt.date, ...]
    seed: int
    profile: str
    output: tuple[LogLine, ...]
    #: Finished groups by outcome (every key of :data:`OUTCOMES`).
    outcomes: dict[str, int]
    #: Groups still executing or rolling back at the end.
    unfinished: tuple[str, ...]
    fills: int
    unwind_orders: int
    orders_sent: int
    invariant_violations: int
    alerts: int
    #: Signed contracts held in LEAN's portfolio at the end, by LEAN symbol value.
    positions: dict[str, float]

    @property
    def groups(self) -> int:
        """Every group the algorithm executed: finished ones plus unfinished ones."""
        return sum(self.outcomes.values()) + len(self.unfinished)

    @property
    def ok(self) -> bool:
        """No invariant violation and no group left executing."""
        return not self.invariant_violations and not self.unfinished


@contextmanager
def _algorithm_imports() -> Iterator[None]:
    """``AlgorithmImports`` as the stand-in's names while an algorithm is loaded and run."""
    from atomic_orders.simulator.lean import algorithm, api, brokerage, lean_types

    shim = ModuleType("AlgorithmImports", "The LEAN stand-in's names (atomic-orders lean-run).")
    for module in (lean_types, algorithm, brokerage, api):
        for name in module.__all__:
            setattr(shim, name, getattr(module, name))
    # LEAN's AlgorithmImports also re-exports the datetime names algorithms commonly use.
    shim.date, shim.datetime, shim.timedelta = dt.date, dt.datetime, dt.timedelta  # type: ignore[attr-defined]
    saved = sys.modules.get("AlgorithmImports")
    sys.modules["AlgorithmImports"] = shim
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("AlgorithmImports", None)
        else:
            sys.modules["AlgorithmImports"] = saved


def load_algorithm(path: Path) -> type[QCAlgorithm]:
    """The one ``QCAlgorithm`` subclass the Python file at ``path`` defines.

    Call it inside the run (``AlgorithmImports`` must resolve to the stand-in). Raises
    :class:`ValidationError` (field ``algorithm``) for a missing file, a file that fails to load
    (the error's type and text in the reason), a file with no or several subclasses, or a class
    that defines a hook under both its names, differently (``Initialize`` and ``initialize``:
    :func:`~atomic_orders.simulator.lean.algorithm.check_hooks`).
    """
    from atomic_orders.simulator.lean.algorithm import QCAlgorithm, check_hooks

    if not path.is_file():
        raise ValidationError("algorithm", str(path), "no such file")
    name = f"lean_algorithm_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationError("algorithm", str(path), "not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the module's own annotations and attrs classes look it up by name
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise ValidationError("algorithm", str(path), f"cannot be loaded: {type(err).__name__}: {err}") from None
    found = [obj for obj in vars(module).values()
             if isinstance(obj, type) and issubclass(obj, QCAlgorithm) and obj is not QCAlgorithm
             and obj.__module__ == name]
    if not found:
        raise ValidationError("algorithm", str(path), "defines no QCAlgorithm subclass")
    if len(found) > 1:
        names = ", ".join(sorted(cls.__name__ for cls in found))
        raise ValidationError("algorithm", str(path), f"defines several QCAlgorithm subclasses ({names}); keep one")
    try:
        check_hooks(found[0])
    except ValidationError as err:
        raise ValidationError("algorithm", str(path), f"{found[0].__name__} {err.reason}") from None
    return found[0]


def check_algorithm(path: Path) -> str:
    """The name of the one ``QCAlgorithm`` subclass the file at ``path`` defines, loaded as
    ``lean-run`` loads it (what ``lean-bundle`` checks before writing anything).

    Raises :class:`ValidationError` (field ``algorithm``) as :func:`load_algorithm` does.
    """
    with _algorithm_imports():
        return load_algorithm(path).__name__


def run_algorithm(path: Path, days: int, *, seed: int = 7, profile: str = "calm") -> LeanRunReport:
    """Run the algorithm at ``path`` on the stand-in for ``days`` trading days; its report.

    The first day is the simulated market's default session (Monday 2026-01-05); ``seed`` and
    ``profile`` (a chaos preset) make the broker, and each later day's broker derives from them.
    Raises :class:`ValidationError` for ``days`` below 1 and for an unusable file
    (:func:`load_algorithm`).
    """
    from atomic_orders.backends.quantconnect.adapter import TastytradeIntegrationAdapter
    from atomic_orders.simulator.broker.chaos import ChaosProfile
    from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
    from atomic_orders.simulator.lean.brokerage import LeanStandIn

    if type(days) is not int or days < 1:
        raise ValidationError("days", days, "must be an integer of at least 1")
    chaos = ChaosProfile.preset(profile)
    summaries: dict[str, GroupSummary] = {}
    with _algorithm_imports():
        algorithm_class = load_algorithm(path)
        algorithm = algorithm_class()
        lean = LeanStandIn(algorithm, BrokerSimulator(seed, chaos))
        adapters = [v for v in vars(algorithm).values() if isinstance(v, TastytradeIntegrationAdapter)]
        for adapter in adapters:
            _record_summaries(adapter, summaries)
        dates = [lean.session_date]
        lean.run_session()
        for _ in range(days - 1):
            lean.next_session()
            dates.append(lean.session_date)
            lean.run_session()
    outcomes = Counter(s.state for s in summaries.values())
    unfinished = tuple(g.group_id for a in adapters for g in a.open_groups())
    return LeanRunReport(
        algorithm=f"{algorithm_class.__name__} ({path.name})",
        days=tuple(dates),
        seed=seed,
        profile=profile,
        output=tuple(algorithm.output),
        outcomes={k: outcomes.get(k, 0) for k in OUTCOMES},
        unfinished=unfinished,
        fills=sum(s.fills for s in summaries.values()),
        unwind_orders=sum(s.unwind_orders for s in summaries.values()),
        orders_sent=sum(a.executor.stats.orders_sent for a in adapters),
        invariant_violations=sum(a.executor.stats.invariant_violations for a in adapters),
        alerts=sum(a.executor.stats.alerts for a in adapters),
        positions={h.symbol.value: h.quantity for h in algorithm.portfolio.values() if h.quantity},
    )


def _record_summaries(adapter: TastytradeIntegrationAdapter, into: dict[str, GroupSummary]) -> None:
    """Keep every group summary the adapter's executor reports, besides what it already does with it."""
    executor = adapter.executor
    previous = executor.on_finished

    def finished(group: Any, summary: GroupSummary) -> None:
        into[summary.group_id] = summary  # a group re-opened by a late fill and finished again counts once
        if previous is not None:
            previous(group, summary)

    executor.on_finished = finished


def format_lean_report(report: LeanRunReport) -> str:
    """The algorithm's log lines, then a plain-text summary table."""
    first, last = report.days[0], report.days[-1]
    o = report.outcomes
    lines = [str(line) for line in report.output]
    held = sum(abs(q) for q in report.positions.values())
    lines += [
        "",
        f"atomic-orders lean-run: {report.algorithm}, {len(report.days)} trading days {first} .. {last}, "
        f"seed={report.seed} profile={report.profile}",
        "",
        f"  groups               {report.groups:>8}",
        f"  committed            {o['committed']:>8}",
        f"  rolled back          {o['rolled_back']:>8}",
        f"  failed               {o['failed']:>8}",
        f"  invalid              {o['invalid']:>8}",
        f"  unfinished           {len(report.unfinished):>8}",
        f"  invariant violations {report.invariant_violations:>8}   (must be 0)",
        f"  fills                {report.fills:>8}",
        f"  rollbacks            {o['rolled_back'] + o['failed']:>8}   ({report.unwind_orders} unwind orders)",
        f"  orders sent          {report.orders_sent:>8}",
        f"  alerts raised        {report.alerts:>8}",
        f"  positions held       {len(report.positions):>8}   options ({held:g} contracts)",
    ]
    lines += [f"    {symbol}: {quantity:+g}" for symbol, quantity in sorted(report.positions.items())]
    return "\n".join(lines)


def _cmd_lean_run(args: argparse.Namespace) -> int:
    try:
        report = run_algorithm(Path(args.algorithm), args.days, seed=args.seed, profile=args.profile)
    except ValidationError as err:  # the file is the user's: one line, with the command's name (the boundary)
        raise UserError(str(err)) from None
    print(format_lean_report(report))
    return 0 if report.ok else 1


def add_lean_commands(subparsers: Any) -> None:
    """Register ``lean-run`` and ``lean-bundle`` on the ``atomic-orders`` parser's subparsers."""
    run = add_command(subparsers, "lean-run", "run a QuantConnect algorithm on the LEAN stand-in over N trading "
                                              "days; print its log and the executor's report", _cmd_lean_run)
    run.add_argument("algorithm", help="a Python file defining one QCAlgorithm subclass")
    run.add_argument("--days", type=positive_at_most(MAX_DAYS), default=5, metavar="N",
                     help=f"trading days to run, weekends skipped (default 5, at most {MAX_DAYS})")
    add_seed(run, 7, "seed of the simulated market and broker")
    add_profile(run, "calm")
    from atomic_orders.simulator.cli.lean_bundle import add_lean_bundle_command

    add_lean_bundle_command(subparsers)
