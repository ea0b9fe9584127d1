"""``atomic-orders live``: the executor run standalone against TastyTrade, until Ctrl-C or SIGTERM.

``atomic-orders live --url URL --account N --journal PATH [--strategy module:function] [--grace S]``
wires a :class:`~atomic_orders.backends.tastytrade.live.LiveSession` (client, account streamer,
quote source, journal, executor) and runs it on the wall clock. Credentials come from the
environment only (``TASTYTRADE_CLIENT_SECRET``, ``TASTYTRADE_REFRESH_TOKEN``; a missing one is
named, its value never printed). ``--url`` is checked by ``TastytradeConfig`` (https, or http to
loopback); the production host is refused unless ``--production`` is given. ``--streamer-url``
defaults to the environment's streamer (production, certification); against a local emulator,
give the ``ws://`` URL ``atomic-orders emulate`` prints, or ``--no-streamer`` (polling only).

The strategy: ``--strategy module:function`` names a callable ``(executor, now) -> None``
called once per turn; without it, :class:`DemoCondors` places one iron condor every
``--demo-every`` seconds, ``--demo-groups`` in all, around the underlying (found from option
quotes by put-call parity, starting from ``--demo-spot``).

Exit status: 0 every group settled; 1 an invariant violation; 3 stopped with groups left open
in the journal (``atomic-orders recover`` takes over); 2 a user error (missing credentials, a bad
URL, an unreachable host, a locked journal, a strategy that does not load).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import math
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from atomic_orders.fsm.errors import BrokerError, QuoteUnavailable, ValidationError
from atomic_orders.fsm.execution_policy import MAX_SECONDS, ExecutionPolicy
from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.simulator.cli.options import (
    UserError,
    add_command,
    add_journal,
    add_mode,
    non_negative_float,
    positive_at_most,
    positive_float,
)

if TYPE_CHECKING:
    from atomic_orders.backends.tastytrade.live import Strategy
    from atomic_orders.fsm.executor import AtomicOrderExecutor

__all__ = ["DemoCondors", "add_live_commands", "load_strategy"]

log = logging.getLogger("atomic_orders.live.demo")

#: ``--demo-groups`` at most (a demo, not a trading program).
MAX_DEMO_GROUPS = 10_000


class DemoCondors:
    """A demo strategy: one credit iron condor every ``every`` seconds, ``groups`` in all.

    Strikes: the spot is estimated from one call and one put at the strike nearest the current
    guess (put-call parity, ``S ~ K + call mid - put mid``; repeated while it moves the strike);
    the short strikes are the first ``strike_step`` multiples at least ``wing`` points away, the
    long ones ``width`` points further. Expiry: ``dte`` calendar days after today (UTC). Quotes
    come from ``executor.backend.quote``; when one is missing, this turn places nothing.
    """

    def __init__(self, *, groups: int, every: float, spot: Decimal = Decimal(5000), root: str = "SPXW",
                 width: int = 10, wing: int = 40, strike_step: int = 5, dte: int = 7, quantity: int = 1,
                 mode: ExecutionMode = ExecutionMode.COMBO) -> None:
        if width <= 0 or width % strike_step:
            raise ValidationError("width", width, f"must be a positive multiple of strike_step={strike_step}")
        self.groups, self.every, self.spot, self.root = groups, every, spot, root
        self.width, self.wing, self.step, self.dte = width, wing, strike_step, dte
        self.quantity, self.mode = quantity, mode
        self.placed = 0
        self._last: dt.datetime | None = None

    def __repr__(self) -> str:
        return f"DemoCondors(groups={self.groups}, every={self.every}, placed={self.placed})"

    def _grid(self, value: Decimal, up: bool | None = None) -> int:
        x = float(value) / self.step
        return self.step * (math.ceil(x) if up else math.floor(x) if up is False else round(x))

    def _spot(self, executor: AtomicOrderExecutor, expiry: dt.date) -> Decimal:
        guess = self.spot
        for _ in range(3):
            strike = self._grid(guess)
            call = executor.backend.quote(OptionSymbol.of(self.root, expiry, Right.CALL, strike))
            put = executor.backend.quote(OptionSymbol.of(self.root, expiry, Right.PUT, strike))
            guess = Decimal(strike) + (call.bid + call.ask - put.bid - put.ask) / 2
            if self._grid(guess) == strike:
                break
        return guess

    def __call__(self, executor: AtomicOrderExecutor, now: dt.datetime) -> None:
        if self.placed >= self.groups:
            return
        if self._last is not None and (now - self._last).total_seconds() < self.every:
            return
        expiry = now.date() + dt.timedelta(days=self.dte)
        try:
            self.spot = self._spot(executor, expiry)
        except (BrokerError, QuoteUnavailable) as err:
            log.warning("demo: no quote to place a condor now (%s); next turn tries again", err)
            self._last = now
            return
        sc = self._grid(self.spot + self.wing, up=True)
        sp = self._grid(self.spot - self.wing, up=False)
        self._last = now
        self.placed += 1
        log.info("demo: condor %d/%d around %.2f: puts %d/%d, calls %d/%d, expiry %s", self.placed, self.groups,
                 self.spot, sp - self.width, sp, sc, sc + self.width, expiry)
        executor.execute_iron_condor(
            short_call=OptionSymbol.of(self.root, expiry, Right.CALL, sc),
            long_call=OptionSymbol.of(self.root, expiry, Right.CALL, sc + self.width),
            short_put=OptionSymbol.of(self.root, expiry, Right.PUT, sp),
            long_put=OptionSymbol.of(self.root, expiry, Right.PUT, sp - self.width),
            quantity=self.quantity, mode=self.mode)


def load_strategy(spec: str) -> Strategy:
    """``module:function`` -> that callable; a :class:`UserError` naming what is wrong."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"--strategy {spec!r}: expected module:function (e.g. my_strategies:condors)")
    if "" not in sys.path:
        sys.path.insert(0, "")  # a module in the current folder, as ``python -m`` finds it
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # any failure to import is the user's to fix
        raise UserError(f"--strategy {spec!r}: module {module_name!r} does not import ({type(err).__name__}: "
                        f"{err})") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise UserError(f"--strategy {spec!r}: {module_name!r} has no callable {attr!r}")
    strategy: Strategy = func
    return strategy


def _cmd_live(args: argparse.Namespace) -> int:
    from atomic_orders.backends.tastytrade.auth import OAuthCredentials
    from atomic_orders.backends.tastytrade.config import (
        CERTIFICATION_STREAMER_URL,
        CERTIFICATION_URL,
        PRODUCTION_URL,
        TastytradeConfig,
    )
    from atomic_orders.backends.tastytrade.errors import InsecureTransportError, TastytradeError
    from atomic_orders.backends.tastytrade.live import ForeignJournal, LiveSession, LiveSettings
    from atomic_orders.fsm.journal import JournalCorrupted

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # one line per machine callback: noise here
    url = args.url.rstrip("/")
    if url == PRODUCTION_URL and not args.production:
        raise UserError(f"--url {url}: the production host trades real money; add --production to mean it")
    try:
        creds = OAuthCredentials.from_env()  # names the missing variables, never a value
    except ValueError as err:
        raise UserError(f"{err} (credentials are read from the environment only)") from None
    extra: dict[str, Any] = {}
    if args.streamer_url:
        extra["streamer_url"] = args.streamer_url
    elif url == CERTIFICATION_URL:
        extra["streamer_url"] = CERTIFICATION_STREAMER_URL
    elif url != PRODUCTION_URL and not args.no_streamer:  # never the production streamer for another host
        raise UserError(f"--url {url}: give --streamer-url (the emulator prints its ws:// URL) or --no-streamer")
    if url == CERTIFICATION_URL:
        extra["api_version"] = None  # the sandbox 404s with it (TastytradeConfig.certification)
    try:
        config = TastytradeConfig(args.account, url, **extra)
    except (InsecureTransportError, ValidationError, ValueError, TypeError) as err:
        raise UserError(str(err)) from None
    strategy = (load_strategy(args.strategy) if args.strategy else
                DemoCondors(groups=args.demo_groups, every=args.demo_every, spot=Decimal(str(args.demo_spot)),
                            mode=ExecutionMode(args.mode)))
    settings = LiveSettings(grace=args.grace, streamer=not args.no_streamer, journal_sync=args.journal_sync)
    try:
        policy = ExecutionPolicy() if args.deadline is None else ExecutionPolicy(deadline_seconds=args.deadline)
    except ValidationError as err:
        raise UserError(f"--deadline: {err}") from None
    try:
        session = LiveSession.open(config, creds, args.journal, strategy=strategy, settings=settings, policy=policy)
    except TastytradeError as err:
        raise UserError(f"--url {url}: {err}") from None
    except (JournalCorrupted, ForeignJournal) as err:  # a foreign or damaged file: never written over
        raise UserError(f"--journal: {err}") from None
    except OSError as err:  # the journal cannot be created there (no such folder, read-only, ...)
        if err.filename is None:
            raise
        raise UserError(f"--journal: {str(err.filename)!r}: {err.strerror}") from None
    with session, session.signals_handled():
        result = session.run(args.duration)
    print(f"stopped ({result.stop_reason}): groups {result.groups_submitted}, settled "
          f"{dict(sorted(result.settled.items()))}, left open {len(result.left_open)}, invariant violations "
          f"{len(result.violations)}")
    if result.left_open:
        print(f"left open in the journal: {', '.join(result.left_open)}; run 'atomic-orders recover --journal "
              f"{args.journal} --backend tastytrade-emulator --url {url} --account {args.account}' (against the "
              "emulator) once the broker answers")
    return result.exit_code


def add_live_commands(sub: Any) -> None:
    """Register ``live``."""
    live = add_command(sub, "live", "run the executor standalone against TastyTrade until Ctrl-C or SIGTERM",
                       _cmd_live, description=__doc__)
    live.add_argument("--url", required=True, help="REST base URL (https; http only to 127.0.0.1)")
    live.add_argument("--account", required=True, help="account number")
    add_journal(live, required=True, exists=False,
                help="the journal (SQLite, write-ahead); one that holds groups is recovered first")
    live.add_argument("--strategy", metavar="MODULE:FUNCTION",
                      help="a callable (executor, now) -> None asked once per turn (default: the demo condors)")
    live.add_argument("--grace", type=non_negative_float, default=60.0, metavar="S",
                      help="after a stop, seconds to drive open groups to settlement (default 60); then they are "
                           "left in the journal")
    live.add_argument("--deadline", type=positive_float, metavar="S",
                      help=f"entries unfilled after S seconds are cancelled and rolled back (the execution "
                           f"policy's deadline_seconds; default {ExecutionPolicy().deadline_seconds:g}, at most "
                           f"{MAX_SECONDS:g})")
    live.add_argument("--duration", type=positive_float, metavar="S",
                      help="stop by itself after S seconds, as SIGTERM would")
    live.add_argument("--streamer-url", metavar="URL",
                      help="account streamer websocket (default: the environment's; the emulator prints its own)")
    live.add_argument("--no-streamer", action="store_true", help="poll only, no account streamer")
    live.add_argument("--production", action="store_true", help="allow the production host")
    live.add_argument("--journal-sync", choices=("full", "normal"), default="full",
                      help="full: fsync every commit (survives power loss); normal: survives a process crash")
    live.add_argument("--demo-groups", type=positive_at_most(MAX_DEMO_GROUPS), default=5, metavar="M",
                      help="demo strategy: iron condors in all (default 5)")
    live.add_argument("--demo-every", type=positive_float, default=5.0, metavar="K",
                      help="demo strategy: seconds between condors (default 5)")
    live.add_argument("--demo-spot", type=positive_float, default=5000.0, metavar="PRICE",
                      help="demo strategy: first guess of the underlying (default 5000)")
    add_mode(live)
