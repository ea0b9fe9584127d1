"""A real emulator on 127.0.0.1 (free port) and a real client/backend talking to it over HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

from atomic_orders.backends.tastytrade.backend import TastytradeBackend
from atomic_orders.backends.tastytrade.client import TastytradeApiClient
from atomic_orders.backends.tastytrade.config import TastytradeConfig
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.leg import Leg, Side
from atomic_orders.fsm.orders import OrderRequest, OrderType, Purpose, TimeInForce
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.emulator import HttpFaults, TastytradeEmulator

#: A broker with no chaos and small fixed latencies.
PERFECT = ChaosProfile()
#: Resting limit orders never fill (only marketable ones do): orders stay open as long as we like.
NO_RESTING_FILLS = attrs.evolve(PERFECT, limit_fill_rate=0.0)


class Harness:
    """Simulator + emulator + client + backend, and a discrete-event driver for an executor."""

    def __init__(
        self,
        profile: ChaosProfile = PERFECT,
        *,
        faults: HttpFaults | None = None,
        seed: int = 1,
        read_timeout: float = 1.0,
        token_lifetime: float = 900.0,
        max_retries: int = 3,
        fast_interval: float = 1.0,
        idle_interval: float = 10.0,
        api_version: str | None = "20261012",
        script: BrokerScript | None = None,
    ) -> None:
        self.sim = BrokerSimulator(seed, profile, script=script)
        self.emulator = TastytradeEmulator(self.sim, faults=faults, fault_seed=seed,
                                           token_lifetime=token_lifetime).start()
        self.config = TastytradeConfig(
            account_number=self.emulator.account_number,
            base_url=self.emulator.url,
            read_timeout=read_timeout,
            connect_timeout=1.0,
            backoff_base=0.005,
            backoff_max=0.01,
            max_retries=max_retries,
            api_version=api_version,
        )
        #: Every wait the client asked for between retries (not actually slept).
        self.sleeps: list[float] = []
        self.client = TastytradeApiClient(self.config, self.emulator.credentials(), sleep=self.sleeps.append)
        self.backend = TastytradeBackend(self.client, clock=self.sim.clock, quote_source=self.emulator.quote_source(),
                                         fast_interval=fast_interval, idle_interval=idle_interval)

    @property
    def now(self) -> float:
        """Virtual seconds since the open."""
        return self.sim.clock.seconds

    def advance(self, seconds: float) -> None:
        """Move virtual time forward (the emulator folds the simulator's deliveries in)."""
        self.emulator.advance_to(self.sim.clock.seconds + seconds)

    def executor(self, **policy: Any) -> AtomicOrderExecutor:
        """An executor on the TastyTrade backend."""
        return AtomicOrderExecutor(self.backend, ExecutionPolicy(**policy))

    def settle(self, executor: AtomicOrderExecutor, limit: float = 4 * 3600.0,
               on_step: Callable[[float], None] | None = None) -> None:
        """Run events, timers and polls until every group is terminal (virtual time)."""
        clock = self.sim.clock
        start = clock.seconds

        def advance(when: dt.datetime | None) -> bool:
            candidates = [self.sim.next_event_time(), clock.to_seconds(self.backend.next_poll_time())]
            if when is not None:
                candidates.append(clock.to_seconds(when))
            t = max(min(c for c in candidates if c is not None), clock.seconds)
            if t - start > limit:
                return False
            self.emulator.advance_to(t)
            if on_step is not None:
                on_step(t)
            return True

        executor.run_until_settled(advance)

    def condor(self, width: int = 10, wing: float = 50.0) -> tuple[OptionSymbol, OptionSymbol, OptionSymbol,
                                                                   OptionSymbol]:
        """Strikes of a short iron condor around the current spot."""
        m = self.sim.market
        return m.strikes_for_iron_condor(self.sim.clock.seconds, m.default_expiry, width, wing)

    def resting_request(self, ref: str, strike_offset: int = 0) -> OrderRequest:
        """A one-leg buy far below the market (never fills under NO_RESTING_FILLS)."""
        m = self.sim.market
        strike = int(m.spot(self.sim.clock.seconds) // 5 * 5) + 100 + 5 * strike_offset
        symbol = m.symbol(m.default_expiry, "C", strike)
        return OrderRequest(order_ref=ref, group_id=ref.rsplit("-", 1)[0], purpose=Purpose.ENTRY,
                            legs=(Leg(symbol, Side.BUY),), quantity=1, order_type=OrderType.LIMIT,
                            limit_price=Decimal("0.05"), time_in_force=TimeInForce.DAY)

    def close(self) -> None:
        """Stop everything."""
        self.client.close()
        self.emulator.stop()


@pytest.fixture
def make_harness() -> Iterator[Callable[..., Harness]]:
    """Build harnesses; all are stopped at teardown."""
    made: list[Harness] = []

    def make(*args: Any, **kwargs: Any) -> Harness:
        h = Harness(*args, **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    """A harness with a perfect broker and no HTTP faults (seed 3: its condors fill by the deadline)."""
    return make_harness(seed=3)
