"""The atomic-orders pytest plugin: a seeded chaotic broker, a TastyTrade emulator and an executor as fixtures.

Installed with the package (entry point ``pytest11``: ``atomic_orders``), so any test suite of a
project that depends on atomic-orders can use it without a conftest. It adds nothing automatic:
no autouse fixture, and a test that uses none of the fixtures, markers or helpers below is not
touched.

Fixtures
--------
``chaos_seed``
    The seed (``int``): ``@pytest.mark.chaos_seed(n)``, else ``--chaos-seed``, else
    :data:`DEFAULT_SEED`.
``chaos_profile``
    The broker's :class:`~atomic_orders.simulator.broker.chaos.ChaosProfile`: ``@pytest.mark.chaos_profile("hostile")``
    (a preset name or a ``ChaosProfile``), else ``--chaos-profile``, else :data:`DEFAULT_PROFILE`.
``broker_simulator``
    A :class:`BrokerSimulator` built from the seed and the profile, with its
    event log on.
``tastytrade_emulator``
    The TastyTrade REST API emulator over that broker, listening on ``127.0.0.1`` on a free port,
    stopped after the test: an :class:`EmulatorEndpoint` (``base_url``, ``account_number``,
    ``credentials``, ``config()``, ``client()``, ``advance()``).
``atomic_backend``
    ``"simulated"`` (the broker in-process) or ``"tastytrade-emulator"`` (the real TastyTrade
    client over HTTP to the emulator): ``@pytest.mark.atomic_backend(name)``, else ``simulated``.
    Run a test against both with ``@pytest.mark.parametrize("atomic_backend", BACKENDS)`` (or
    ``@pytest.mark.parametrize("atomic_executor", BACKENDS, indirect=True)``).
``atomic_session``
    An :class:`AtomicSession`: the executor, the broker, the backend, and ``settle()`` (drive
    everything in virtual time until every group is terminal) and ``violations()``.
``atomic_executor``
    ``atomic_session.executor``: the :class:`~atomic_orders.fsm.executor.AtomicOrderExecutor` to hand to the
    code under test.

When a test fails
-----------------
A test that used these fixtures (or :func:`play` / :func:`prove`) gets a report section,
"atomic-orders: reproduce", with the seed, the profile, the command that re-runs it with both,
and the event script: the broker scripts it played (in the notation of
:func:`atomic_orders.simulator.proofs.exhaustive.format_script`, which
:func:`~atomic_orders.simulator.proofs.exhaustive.parse_script` reads
back) and the seeded broker's event log (the same seed and test replay it byte for byte).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from atomic_orders.backends.tastytrade.auth import OAuthCredentials
from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.fsm import invariants
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.strategy import IronCondorRoles
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator.server import TastytradeEmulator
from atomic_orders.simulator.proofs.exhaustive import Action, World, format_script

__all__ = [
    "BACKENDS",
    "DEFAULT_PROFILE",
    "DEFAULT_SEED",
    "AtomicSession",
    "EmulatorEndpoint",
    "play",
    "prove",
]

#: The seed when neither a ``chaos_seed`` marker nor ``--chaos-seed`` gives one.
DEFAULT_SEED = 7
#: The chaos preset when neither a ``chaos_profile`` marker nor ``--chaos-profile`` gives one.
DEFAULT_PROFILE = "rough"
#: The backends ``atomic_backend`` accepts.
BACKENDS: tuple[str, ...] = ("simulated", "tastytrade-emulator")
#: At most this many lines of the broker's event log are printed under a failing test.
LOG_LINES = 200

_MARKERS = (
    "chaos_profile(profile): the broker's chaos for this test: a preset name (none, calm, rough, hostile) "
    "or a atomic_orders.simulator.broker.chaos.ChaosProfile (atomic-orders)",
    "chaos_seed(seed): the broker's seed for this test (atomic-orders)",
    "atomic_backend(name): wire atomic_executor to 'simulated' or 'tastytrade-emulator' (atomic-orders)",
)


@attrs.define
class _Repro:
    """What a failing test needs to print to be reproduced."""

    seed: int | None = None
    profile: str | None = None
    backend: str | None = None
    broker: BrokerSimulator | None = None
    scripts: list[str] = attrs.Factory(list)


_REPRO = pytest.StashKey[_Repro]()
#: The test running now (set for the duration of each test, so :func:`play` can find it).
_current: list[pytest.Item] = []


def _repro(item: pytest.Item) -> _Repro:
    found = item.stash.get(_REPRO, None)
    if found is None:
        found = item.stash[_REPRO] = _Repro()
    return found


# -- options and markers -----------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-profile`` and ``--chaos-seed``."""
    group = parser.getgroup("atomic-orders", "atomic-orders broker simulation")
    group.addoption(
        "--chaos-profile",
        choices=ChaosProfile.preset_names(),
        default=None,
        help=f"chaos preset of the broker_simulator fixture (default {DEFAULT_PROFILE}; a marker wins)",
    )
    group.addoption(
        "--chaos-seed",
        type=int,
        default=None,
        help=f"seed of the broker_simulator fixture (default {DEFAULT_SEED}; a marker wins)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the markers (so ``--strict-markers`` accepts them)."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say which chaos options are in effect, when any was given."""
    profile, seed = config.getoption("--chaos-profile"), config.getoption("--chaos-seed")
    if profile is None and seed is None:
        return None
    return f"atomic-orders: chaos profile {profile or DEFAULT_PROFILE}, seed {DEFAULT_SEED if seed is None else seed}"


# -- fixtures ------------------------------------------------------------------------------------


def _marker_arg(request: pytest.FixtureRequest, name: str) -> Any:
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.kwargs:
        raise pytest.UsageError(f"@pytest.mark.{name} takes exactly one argument, got {marker.args!r}")
    return marker.args[0]


@pytest.fixture
def chaos_seed(request: pytest.FixtureRequest) -> int:
    """The broker's seed: ``chaos_seed`` marker, else ``--chaos-seed``, else :data:`DEFAULT_SEED`."""
    value = _marker_arg(request, "chaos_seed")
    if value is None:
        value = request.config.getoption("--chaos-seed")
    if value is None:
        value = DEFAULT_SEED
    if type(value) is not int:
        raise pytest.UsageError(f"chaos_seed={value!r}: must be an int")
    _repro(request.node).seed = value
    return value


@pytest.fixture
def chaos_profile(request: pytest.FixtureRequest) -> ChaosProfile:
    """The broker's chaos: ``chaos_profile`` marker, else ``--chaos-profile``, else :data:`DEFAULT_PROFILE`."""
    value = _marker_arg(request, "chaos_profile")
    if value is None:
        value = request.config.getoption("--chaos-profile") or DEFAULT_PROFILE
    if isinstance(value, ChaosProfile):
        profile = value
    else:
        try:
            profile = ChaosProfile.preset(value)
        except ValueError as err:
            raise pytest.UsageError(str(err)) from None
    _repro(request.node).profile = profile.name
    return profile


@pytest.fixture
def broker_simulator(request: pytest.FixtureRequest, chaos_seed: int, chaos_profile: ChaosProfile) -> BrokerSimulator:
    """A deterministic simulated broker (seeded, with the test's chaos profile and an event log)."""
    broker = BrokerSimulator(chaos_seed, chaos_profile, event_log=True)
    _repro(request.node).broker = broker
    return broker


class EmulatorEndpoint:
    """A running TastyTrade API emulator: where it listens and the credentials it accepts.

    The emulator's clock is the broker's virtual clock: nothing happens to an order until time is
    moved with :meth:`advance` (or by :meth:`AtomicSession.settle`).
    """

    def __init__(self, emulator: TastytradeEmulator, broker: BrokerSimulator) -> None:
        self.emulator = emulator
        self.broker = broker
        #: ``http://127.0.0.1:<port>``: the REST base URL to point a client at.
        self.base_url: str = emulator.url
        self.account_number: str = emulator.account_number
        #: OAuth credentials the emulator accepts (test values, not anyone's secrets).
        self.credentials: OAuthCredentials = emulator.credentials()
        self._clients: list[TastytradeApiClient] = []

    def __repr__(self) -> str:
        return f"EmulatorEndpoint({self.base_url!r}, account={self.account_number!r})"

    def config(self, **overrides: Any) -> TastytradeConfig:
        """A client configuration for this emulator (short timeouts and backoffs; ``overrides`` win)."""
        settings: dict[str, Any] = {
            "account_number": self.account_number,
            "base_url": self.base_url,
            "connect_timeout": 2.0,
            "read_timeout": 1.0,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
        }
        settings.update(overrides)
        return TastytradeConfig(**settings)

    def client(self, **overrides: Any) -> TastytradeApiClient:
        """A real REST client on this emulator (closed when the test ends)."""
        client = TastytradeApiClient(self.config(**overrides), self.credentials)
        self._clients.append(client)
        return client

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (orders are acknowledged, filled, expired...)."""
        self.emulator.advance_to(self.broker.clock.seconds + seconds)

    def close(self) -> None:
        """Close the clients made here and stop the server."""
        for client in self._clients:
            client.close()
        self.emulator.stop()


@pytest.fixture
def tastytrade_emulator(broker_simulator: BrokerSimulator, chaos_seed: int) -> Iterator[EmulatorEndpoint]:
    """The TastyTrade API emulator over ``broker_simulator`` on 127.0.0.1 (free port); stopped afterwards."""
    emulator = TastytradeEmulator(broker_simulator, fault_seed=chaos_seed).start()
    endpoint = EmulatorEndpoint(emulator, broker_simulator)
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture
def atomic_backend(request: pytest.FixtureRequest) -> str:
    """Which backend ``atomic_executor`` uses.

    An indirect parametrization of ``atomic_executor`` or ``atomic_session``
    (``@pytest.mark.parametrize("atomic_executor", BACKENDS, indirect=True)``), else the
    ``atomic_backend`` marker, else ``simulated``. (Parametrizing ``atomic_backend`` itself
    replaces this fixture altogether.)
    """
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec is not None else {}
    indirect = [params[name] for name in ("atomic_executor", "atomic_session") if name in params]
    value = indirect[0] if indirect else (_marker_arg(request, "atomic_backend") or "simulated")
    if value not in BACKENDS:
        raise pytest.UsageError(f"atomic_backend={value!r}: expected one of {', '.join(BACKENDS)}")
    return str(value)


class AtomicSession:
    """An executor wired to a seeded broker, and the discrete-event loop that drives them.

    With ``backend="simulated"`` the executor talks to the broker in-process; with
    ``"tastytrade-emulator"`` it talks to the emulator over HTTP through the real
    :class:`~atomic_orders.backends.tastytrade.backend.TastytradeBackend`. Time is virtual in both cases.
    """

    def __init__(
        self,
        broker: BrokerSimulator,
        emulator: EmulatorEndpoint | None = None,
        policy: ExecutionPolicy | None = None,
    ) -> None:
        self.broker = broker
        self.emulator = emulator
        self._tastytrade: TastytradeBackend | None = None
        backend: ExecutionBackend
        if emulator is None:
            backend = SimulatedBackend(broker)
        else:
            self._tastytrade = TastytradeBackend(
                emulator.client(), clock=broker.clock, quote_source=emulator.emulator.quote_source()
            )
            backend = self._tastytrade
        self.backend = backend
        self.executor = AtomicOrderExecutor(backend, policy, verify_replay=True, session_id="")

    @property
    def backend_name(self) -> str:
        """``simulated`` or ``tastytrade-emulator``."""
        return "simulated" if self.emulator is None else "tastytrade-emulator"

    def __repr__(self) -> str:
        return f"AtomicSession({self.backend_name}, seed={self.broker.seed}, profile={self.broker.profile.name})"

    def spot(self) -> float:
        """The simulated underlying's price now."""
        return self.broker.market.spot(self.broker.clock.seconds)

    @property
    def expiry(self) -> dt.date:
        """The expiry the simulated market quotes by default (the session's own day)."""
        return self.broker.market.default_expiry

    def condor_strikes(self, width: int = 10, wing: float = 50.0) -> tuple[OptionSymbol, ...]:
        """``(short call, long call, short put, long put)`` of a short iron condor around the spot now."""
        market = self.broker.market
        return tuple(market.strikes_for_iron_condor(self.broker.clock.seconds, market.default_expiry, width, wing))

    def condor_roles(self, width: int = 10, wing: float = 50.0) -> IronCondorRoles:
        """:meth:`condor_strikes` by role: ``executor.execute_iron_condor(**session.condor_roles(), quantity=1)``."""
        sc, lc, sp, lp = self.condor_strikes(width, wing)
        return IronCondorRoles(short_call=sc, long_call=lc, short_put=sp, long_put=lp)

    def _advance_to(self, seconds: float) -> None:
        if self.emulator is not None:
            self.emulator.emulator.advance_to(seconds)
        else:
            self.broker.advance_to(seconds)

    def advance(self, seconds: float) -> None:
        """Move virtual time by ``seconds``, then let the executor apply events and run its timers."""
        self._advance_to(self.broker.clock.seconds + seconds)
        self.executor.process_events()
        self.executor.on_timer()

    def _step(self, when: dt.datetime | None, until: float) -> bool:
        clock = self.broker.clock
        candidates = [self.broker.next_event_time()]
        if self._tastytrade is not None:
            candidates.append(clock.to_seconds(self._tastytrade.next_poll_time()))
        if when is not None:
            candidates.append(clock.to_seconds(when))
        times = [c for c in candidates if c is not None]
        if not times:
            return False
        t = max(min(times), clock.seconds)
        if t > until:
            return False
        self._advance_to(t)
        return True

    def settle(self, limit_seconds: float = 4 * 3600.0, quiet_seconds: float = 600.0) -> None:
        """Drive broker and executor until every group is terminal and the broker went quiet.

        After the last group settles, time keeps moving for ``quiet_seconds`` (late fills,
        duplicates and held reports still arrive; a fill after settlement re-opens a group, which
        is then driven again). Gives up ``limit_seconds`` after the call (virtual time); a group
        still open then is reported by :meth:`violations`.
        """
        clock = self.broker.clock
        end = clock.seconds + limit_seconds
        executor = self.executor
        while True:
            executor.run_until_settled(lambda when: self._step(when, end))
            if executor.open_groups():
                return  # the limit was reached, or nothing more can happen: violations() says so
            quiet_end = min(clock.seconds + quiet_seconds, end)
            while not executor.open_groups() and self._step(None, quiet_end):
                executor.process_events()
                executor.on_timer()
            if not executor.open_groups():
                return
            # a fill after settlement re-opened a group: drive it again

    def violations(self) -> list[str]:
        """Everything wrong, as sentences (empty: proven for this run).

        The six invariants of every group (with a full replay), the executor's own violation log,
        groups that are not terminal, and exposure the broker holds that no group accounts for.
        """
        out: list[str] = list(self.executor.violations)
        expected: Counter[OptionSymbol] = Counter()
        for group in self.executor.groups():
            out += invariants.check_group(group, replay=True)
            if not group.is_terminal:
                out.append(f"{group.group_id}: not terminal ({group.state})")
            expected.update(group.ledger.positions())
        actual = self.broker.positions()
        for symbol in sorted(set(actual) | set(expected), key=lambda s: s.occ):
            diff = actual.get(symbol, 0) - expected.get(symbol, 0)
            if diff:
                out.append(f"broker holds {diff:+d} {symbol.occ} that no group accounts for")
        return list(dict.fromkeys(out))


@pytest.fixture
def atomic_session(
    request: pytest.FixtureRequest, broker_simulator: BrokerSimulator, atomic_backend: str
) -> AtomicSession:
    """An :class:`AtomicSession` on ``broker_simulator``, through the backend ``atomic_backend`` names."""
    emulator = request.getfixturevalue("tastytrade_emulator") if atomic_backend == "tastytrade-emulator" else None
    _repro(request.node).backend = atomic_backend
    return AtomicSession(broker_simulator, emulator)


@pytest.fixture
def atomic_executor(atomic_session: AtomicSession) -> AtomicOrderExecutor:
    """The executor of ``atomic_session`` (drive it with ``atomic_session.settle()``)."""
    return atomic_session.executor


# -- broker scripts (Hypothesis-driven tests) ------------------------------------------------------


def play(world: World, script: Sequence[Action]) -> list[str]:
    """Play a broker ``script`` against ``world``, checking the invariants after every step.

    Returns the violations of the first step that broke one (empty: every step kept them). The
    script is remembered, so a failing test prints it (under Hypothesis, the last one played is
    the minimal failing example).
    """
    _remember(format_script(script))
    for action in script:
        world.apply(action)
        found = world.check_step()
        if found:
            return [f"after {action}: {v}" for v in found]
    return []


def prove(world: World, script: Sequence[Action]) -> list[str]:
    """:func:`play`, then let a cooperative broker settle the group and check everything again."""
    found = play(world, script)
    if found:
        return found
    world.settle()
    return world.check_final()


def _remember(script: str) -> None:
    if _current:
        scripts = _repro(_current[-1]).scripts
        if script not in scripts[-1:]:
            scripts.append(script)
            del scripts[:-3]  # the last few are what matters (Hypothesis replays the failing one last)


# -- reporting -----------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Know which test is running (for :func:`play`)."""
    _current.append(item)
    try:
        return (yield)
    finally:
        _current.remove(item)


def _rerun_command(item: pytest.Item, repro: _Repro) -> str:
    seed = repro.seed if repro.seed is not None else item.config.getoption("--chaos-seed")
    if seed is None:
        seed = DEFAULT_SEED
    # always quoted, and a quote inside a test id (a parametrize value) survives the shell
    node = "'" + item.nodeid.replace("'", "'\"'\"'") + "'"
    command = f"pytest {node} --chaos-seed={seed}"
    if repro.profile in ChaosProfile.preset_names():
        command += f" --chaos-profile={repro.profile}"
    return command


def _reproduction(item: pytest.Item, repro: _Repro) -> str:
    lines = []
    if repro.seed is not None or repro.profile is not None:
        lines.append(f"seed: {repro.seed}   chaos profile: {repro.profile}"
                     + (f"   backend: {repro.backend}" if repro.backend else ""))
        lines.append(f"re-run: {_rerun_command(item, repro)}")
    if repro.scripts:
        lines.append("")
        lines.append("broker script (replay: world.run(parse_script(...)) "
                     "from atomic_orders.simulator.proofs.testing):")
        lines.extend(f"  {s}" for s in repro.scripts[-1:])
    broker = repro.broker
    if broker is not None and broker.event_log_enabled:
        log = list(broker.event_log_lines())
        lines.append("")
        lines.append(f"broker event log ({len(log)} events; the same seed and test replay it byte for byte):")
        if len(log) > LOG_LINES:
            lines.append(f"  ... {len(log) - LOG_LINES} earlier events not shown")
        lines.extend(f"  {line}" for line in log[-LOG_LINES:])
    return "\n".join(lines).strip("\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Add the "atomic-orders: reproduce" section to a failing test that used the plugin."""
    report = yield
    repro = item.stash.get(_REPRO, None)
    if repro is not None and report.failed and report.when in ("setup", "call"):
        text = _reproduction(item, repro)
        if text:
            report.sections.append(("atomic-orders: reproduce", text))
    return report
