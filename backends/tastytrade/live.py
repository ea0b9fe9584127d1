"""LiveSession: the executor run standalone against TastyTrade on the wall clock, until stopped.

One object wires what a trader needs: the REST client (:class:`TastytradeApiClient`, OAuth
credentials given by the caller, e.g. :meth:`OAuthCredentials.from_env`), the account streamer
(:class:`~.streamer.AccountStreamer`, pushed fills; polling stays as fallback and watchdog), the
quote source (:class:`~.quotes.TastytradeQuoteSource`), the backend, the SQLite journal
(:class:`~atomic_orders.fsm.journal.Journal`, write-ahead) and the
:class:`~atomic_orders.fsm.executor.AtomicOrderExecutor`. A journal that already holds groups is
recovered first (:meth:`AtomicOrderExecutor.recover`: nothing is resent).

Each turn of :meth:`LiveSession.run`: drain broker events (``process_events``: streamer pushes,
then a poll when one is due), run due timers (``on_timer``), ask the strategy
(``strategy(executor, now)``, which may call ``execute_iron_condor`` ...) for new groups, then
sleep until the next due time (the executor's next timer or the backend's next poll), at most
``max_sleep`` seconds and woken early by a streamer push or a stop request.

Stopping: :meth:`LiveSession.request_stop` (the SIGINT / SIGTERM handlers of
:meth:`LiveSession.signals_handled` call it; a second signal ends the grace at once). From then
on the strategy is not asked again; open groups are driven to settlement under the normal rules
for ``grace`` seconds, and whatever is still open stays in the journal for
``atomic-orders recover`` (logged by id). :attr:`LiveResult.exit_code`: :data:`EXIT_SETTLED` (0),
:data:`EXIT_VIOLATIONS` (1), :data:`EXIT_LEFT_OPEN` (3) or :data:`EXIT_FAILED_GROUPS` (4).

Logs (logger ``atomic_orders.tastytrade.live``, INFO): connected, streamer up / down, group
submitted, group settled with its outcome and reason, stop requested, groups left. They hold
ids, counts and the base URL (validated: no user info), never a token or a secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import attrs

from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.backends.tastytrade.quotes import TastytradeQuoteSource
from atomic_orders.backends.tastytrade.streamer import AccountStreamer, StreamerSettings
from atomic_orders.fsm.clock import Clock, SystemClock
from atomic_orders.fsm.errors import AtomicOrdersError, ValidationError
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.executor_report import GroupSummary
from atomic_orders.fsm.group import AtomicOrderGroup
from atomic_orders.fsm.journal import Journal
from atomic_orders.fsm.recovery import RecoveryReport

__all__ = ["EXIT_FAILED_GROUPS", "EXIT_LEFT_OPEN", "EXIT_SETTLED", "EXIT_VIOLATIONS", "ForeignJournal", "LiveResult",
           "LiveSession", "LiveSettings", "Strategy"]

log = logging.getLogger("atomic_orders.tastytrade.live")

#: A trader's strategy: called once per turn with the executor and the wall-clock time (UTC).
Strategy = Callable[[AtomicOrderExecutor, dt.datetime], None]

#: Every group settled, no invariant violation.
EXIT_SETTLED = 0
#: An invariant violation was recorded (the log and the journal say which).
EXIT_VIOLATIONS = 1
#: Stopped with groups still open: they are in the journal, ``atomic-orders recover`` takes over.
EXIT_LEFT_OPEN = 3
#: A group ended ``failed``: its unwinds were exhausted or the broker disputed it, and the account
#: holds a position a human must handle (the log names the group and its residual).
EXIT_FAILED_GROUPS = 4


class ForeignJournal(AtomicOrdersError):
    """The journal was written for another TastyTrade host or account than this session's.

    Recovering it here would read its orders as never placed (``NOT_FOUND`` at this broker) and
    roll back groups whose orders may be working at the other one.
    """

    def __init__(self, path: Path, field: str, theirs: object, ours: object) -> None:
        self.path = path
        super().__init__(f"journal {str(path)!r} was written for {field} {theirs!r}, not {ours!r}: "
                         "recover it against that broker, or use another journal")


def check_journal_broker(journal: Journal, path: Path, config: TastytradeConfig) -> None:
    """Raise :class:`ForeignJournal` when a session of ``journal`` (one the live loop started: its
    config names ``backend: tastytrade``) names another ``base_url`` or ``account`` than ``config``.
    A journal of no such session (empty, or another tool's) passes."""
    for session in journal.contents.sessions:
        recorded = session.get("config")
        if not isinstance(recorded, dict) or recorded.get("backend") != "tastytrade":
            continue
        for field, ours in (("base_url", config.base_url), ("account", config.account_number)):
            theirs = recorded.get(field)
            if theirs is not None and theirs != ours:
                raise ForeignJournal(path, field, theirs, ours)


def _seconds(low: float, high: float, *, low_open: bool = False) -> Callable[[object, Any, float], None]:
    def check(_inst: object, attr: Any, value: float) -> None:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high
        if not ok or (low_open and value == low):
            raise ValidationError(attr.name, value, f"must be a number of seconds in {'(' if low_open else '['}"
                                                    f"{low}, {high}]")
    return check


@attrs.frozen
class LiveSettings:
    """How a :class:`LiveSession` runs and stops (seconds of wall-clock time)."""

    #: After a stop request, open groups are driven this long before they are left journaled.
    grace: float = attrs.field(default=60.0, validator=_seconds(0.0, 86400.0))
    #: The longest sleep between two turns (a turn also runs when something is due).
    max_sleep: float = attrs.field(default=1.0, validator=_seconds(0.0, 60.0, low_open=True))
    #: While sleeping, how often a streamer push is looked for (the push-to-reaction granularity).
    push_check: float = attrs.field(default=0.005, validator=_seconds(0.0, 1.0, low_open=True))
    #: Listen to the account streamer (False: polling only).
    streamer: bool = True
    #: How long :meth:`LiveSession.open` waits for the streamer's first connect (then polls meanwhile).
    streamer_wait: float = attrs.field(default=5.0, validator=_seconds(0.0, 600.0))
    #: The journal's fsync mode (``full`` or ``normal``, see :class:`Journal`).
    journal_sync: str = "full"
    #: Poll interval while a group is working and the streamer is down (the backend's ``fast_interval``).
    fast_interval: float = attrs.field(default=1.0, validator=_seconds(0.0, 600.0, low_open=True))
    #: Watchdog poll interval while the streamer is up (the backend's ``watchdog_interval``).
    watchdog_interval: float = attrs.field(default=30.0, validator=_seconds(0.0, 3600.0, low_open=True))


@attrs.frozen
class LiveResult:
    """How a run ended: why, what settled, what was left open (group ids) and what went wrong."""

    stop_reason: str
    groups_submitted: int
    #: Groups that reached a terminal state in this run, by state (``committed``, ``rolled_back`` ...).
    settled: dict[str, int]
    left_open: tuple[str, ...]
    violations: tuple[str, ...]
    #: The recovery this run started with (None: the journal held no group).
    recovery: RecoveryReport | None = None

    @property
    def exit_code(self) -> int:
        """:data:`EXIT_VIOLATIONS` over :data:`EXIT_FAILED_GROUPS` over :data:`EXIT_LEFT_OPEN` over
        :data:`EXIT_SETTLED`: a position no process will touch again outranks one recovery takes over."""
        if self.violations:
            return EXIT_VIOLATIONS
        if self.settled.get("failed"):
            return EXIT_FAILED_GROUPS
        return EXIT_LEFT_OPEN if self.left_open else EXIT_SETTLED


class LiveSession:
    """The live loop (module docstring). Build it with :meth:`open`; or from parts for tests.

    ``backend`` carries the client, quote source and streamer; ``journal`` is open for writing.
    ``strategy`` None: nothing new is placed (recovery). ``policy``: the executor's (default
    :class:`ExecutionPolicy`: entries are worked up to ``deadline_seconds``, 90 s).
    """

    def __init__(
        self,
        backend: TastytradeBackend,
        journal: Journal,
        *,
        strategy: Strategy | None = None,
        settings: LiveSettings | None = None,
        policy: ExecutionPolicy | None = None,
        journal_config: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.journal = journal
        self.strategy = strategy
        self.settings = settings if settings is not None else LiveSettings()
        self.clock: Clock = backend.clock
        self._stop = threading.Event()
        self._stop_reason = ""
        self._hurry = False
        self._submitted: set[str] = set()
        self.settled: Counter[str] = Counter()
        self._streamer_up: bool | None = None
        self._drops = 0
        self.recovery: RecoveryReport | None = None
        if journal.contents.groups:
            self.executor, self.recovery = AtomicOrderExecutor.recover(
                journal, backend, policy, release_finished=True, on_finished=self._finished)
            unfinished = self.recovery.groups_unfinished
            log.info("recovered %d groups from the journal; %d unfinished%s", self.recovery.groups_rebuilt,
                     len(unfinished), f": {', '.join(unfinished)}" if unfinished else "")
            for line in self.recovery.lines():
                log.info("recovery: %s", line)
        else:
            journal.start_session("start", dict(journal_config or {"backend": backend.name}))
            self.executor = AtomicOrderExecutor(backend, policy, release_finished=True, journal=journal,
                                                on_finished=self._finished)
        self._submitted.update(g.group_id for g in self.executor.open_groups())

    def __repr__(self) -> str:
        return f"LiveSession({self.backend!r}, open_groups={len(self.executor.open_groups())})"

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        config: TastytradeConfig,
        credentials: OAuthCredentials,
        journal_path: Path,
        *,
        strategy: Strategy | None = None,
        settings: LiveSettings | None = None,
        policy: ExecutionPolicy | None = None,
        clock: Clock | None = None,
        streamer_settings: StreamerSettings | None = None,
    ) -> LiveSession:
        """Connect (one account request, so bad credentials fail here), start the streamer, open the journal.

        Raises the client's errors (:class:`~.errors.AuthenticationError` ...), the journal's
        (:class:`~atomic_orders.fsm.journal.JournalLocked` ...) and :class:`ForeignJournal` (a journal
        of another host or account, before anything talks to the broker); nothing is left open when
        it does.
        """
        settings = settings if settings is not None else LiveSettings()
        clock = clock if clock is not None else SystemClock()
        # The journal first: a locked or foreign file fails before anything talks to the broker.
        journal = Journal(journal_path, sync=settings.journal_sync)
        try:
            check_journal_broker(journal, journal_path, config)
        except BaseException:
            journal.close()
            raise
        client = TastytradeApiClient(config, credentials)
        streamer: AccountStreamer | None = None
        try:
            accounts = client.accounts()
            log.info("connected to %s, account %s (%d accounts visible)", config.base_url, config.account_number,
                     len(accounts))
            if settings.streamer:
                streamer = AccountStreamer(config.streamer_url, config.account_number, client.tokens.authorization,
                                           on_refused=client.tokens.invalidate, settings=streamer_settings).start()
                if not streamer.wait_connected(settings.streamer_wait):
                    log.warning("account streamer not connected after %.0f s: polling meanwhile",
                                settings.streamer_wait)
            backend = TastytradeBackend(client, clock=clock, streamer=streamer, fast_interval=settings.fast_interval,
                                        watchdog_interval=settings.watchdog_interval)
            backend.quote_source = TastytradeQuoteSource(client, clock, symbols=backend.open_symbols)
            return cls(backend, journal, strategy=strategy, settings=settings, policy=policy,
                       journal_config={"backend": "tastytrade", "base_url": config.base_url,
                                       "account": config.account_number, "streamer": settings.streamer})
        except BaseException:
            if streamer is not None:
                streamer.stop()
            client.close()
            journal.close()
            raise

    def close(self) -> None:
        """Stop the streamer, close the journal and the client (idempotent)."""
        streamer = self.backend.streamer
        if streamer is not None:
            streamer.stop()
        self.journal.close()
        self.backend.client.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stopping -------------------------------------------------------------------------------

    def request_stop(self, reason: str = "stop requested") -> None:
        """Accept no new group from now on; a second request ends the grace period at once.

        Safe from a signal handler or another thread (it only sets flags).
        """
        if self._stop.is_set():
            self._hurry = True
        else:
            self._stop_reason = reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stop.is_set()

    @contextlib.contextmanager
    def signals_handled(self) -> Iterator[None]:
        """SIGINT and SIGTERM call :meth:`request_stop` while inside (main thread only); restored after."""
        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(f"{signal.Signals(signum).name} received")

        saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, previous in saved.items():
                signal.signal(s, previous)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, duration: float | None = None, *, until_idle: bool = False) -> LiveResult:
        """Run turns until stopped (see the module docstring); returns how it ended.

        ``duration`` (seconds): stop by itself then, as a stop request would. ``until_idle``:
        stop once no group is open (recovery: nothing new is placed, so idle means done); the
        grace period then bounds how long that may take.
        """
        started = time.monotonic()
        grace_end: float | None = None
        if until_idle:
            grace_end = started + self.settings.grace
        while True:
            now_m = time.monotonic()
            if duration is not None and not self.stopping and now_m - started >= duration:
                self.request_stop(f"duration of {duration:g} s reached")
            if self.stopping and grace_end is None:
                grace_end = now_m + self.settings.grace
                open_ids = [g.group_id for g in self.executor.open_groups()]
                log.info("%s: no new groups; %d open groups get up to %g s to settle%s", self._stop_reason,
                         len(open_ids), self.settings.grace, f": {', '.join(open_ids)}" if open_ids else "")
            self.turn(ask_strategy=not self.stopping and not until_idle)
            idle = not self.executor.open_groups()
            if (self.stopping or until_idle) and idle:
                break
            if grace_end is not None and (time.monotonic() >= grace_end or self._hurry):
                break
            self._sleep(grace_end)
        return self._result(until_idle)

    def turn(self, *, ask_strategy: bool = True) -> None:
        """One turn: events, timers, the strategy (when asked); logs what changed."""
        executor = self.executor
        executor.process_events()
        executor.on_timer()
        self._watch_streamer()
        if ask_strategy and self.strategy is not None:
            try:
                self.strategy(executor, self.clock.now())
            except ValidationError as err:  # a bad group: refused, nothing sent; the strategy carries on
                log.error("the strategy's group was refused: %s", err)
            except Exception:
                log.exception("the strategy raised: stopping (open groups are still driven to settlement)")
                self.request_stop("the strategy raised")
            self._log_new_groups()

    def _log_new_groups(self) -> None:
        for group in self.executor.open_groups():
            gid = group.group_id
            if gid not in self._submitted:
                self._submitted.add(gid)
                log.info("group %s submitted: %s %s x%d, %d legs", gid, group.strategy.value, group.mode.value,
                         group.quantity, len(group.legs))

    def _finished(self, group: AtomicOrderGroup, summary: GroupSummary) -> None:
        self._submitted.add(group.group_id)
        self.settled[summary.state] += 1
        why = f", reason: {summary.rollback_reason}" if summary.rollback_reason else ""
        held = (f", residual {summary.residual_exposure}" if summary.residual_exposure and summary.state != "committed"
                else "")
        log.info("group %s settled: %s%s (fills %d, unwind orders %d)%s", group.group_id, summary.state, why,
                 summary.fills, summary.unwind_orders, held)
        for violation in summary.violations:
            log.error("group %s invariant violation: %s", group.group_id, violation)

    def _watch_streamer(self) -> None:
        streamer = self.backend.streamer
        if streamer is None:
            return
        up = streamer.connected
        drops = streamer.stats["disconnects"]
        if drops > self._drops and self._streamer_up:  # dropped and maybe back already between two turns
            log.warning("account streamer down (%d drops so far): polling every %g s until it reconnects", drops,
                        self.settings.fast_interval)
            self._streamer_up = False
        self._drops = drops
        if up != self._streamer_up:
            if up:
                log.info("account streamer up (pushed fills; polling is the watchdog)")
            elif self._streamer_up is not None:
                log.warning("account streamer down: polling every %g s until it reconnects",
                            self.settings.fast_interval)
            self._streamer_up = up
        if streamer.gave_up and self._streamer_up is not None:
            log.warning("account streamer gave up reconnecting: polling only from now on")
            self._streamer_up = None
            self.backend.streamer = None

    def _sleep(self, grace_end: float | None) -> None:
        """Until the next due time (bounded by ``max_sleep`` and the grace), woken by a push or a stop."""
        now = self.clock.now()
        due = [self.backend.next_poll_time()]
        wake = self.executor.next_wakeup()
        if wake is not None:
            due.append(wake)
        seconds = min(self.settings.max_sleep, max(0.0, (min(due) - now).total_seconds()))
        if grace_end is not None:
            seconds = min(seconds, max(0.0, grace_end - time.monotonic()))
        until = time.monotonic() + seconds
        streamer = self.backend.streamer
        stopping = self.stopping
        while True:
            left = until - time.monotonic()
            if left <= 0 or (streamer is not None and streamer.pending()) or self._hurry:
                return
            step = min(left, self.settings.push_check)
            if stopping:  # the event stays set from now on: waiting on it would not wait
                time.sleep(step)
            elif self._stop.wait(step):
                return  # a fresh stop request: log it now

    def _result(self, until_idle: bool) -> LiveResult:
        self.executor.process_events()
        left = tuple(g.group_id for g in self.executor.open_groups())
        self.executor.commit_journal()
        reason = self._stop_reason or ("recovery done" if until_idle else "stopped")
        if left:
            log.warning("%d groups left open in the journal: %s; 'atomic-orders recover' takes over",
                        len(left), ", ".join(left))
        log.info("stopped (%s): %d groups submitted, settled %s, left open %d, invariant violations %d", reason,
                 len(self._submitted), dict(sorted(self.settled.items())), len(left), len(self.executor.violations))
        return LiveResult(stop_reason=reason, groups_submitted=len(self._submitted), settled=dict(self.settled),
                          left_open=left, violations=tuple(self.executor.violations), recovery=self.recovery)
