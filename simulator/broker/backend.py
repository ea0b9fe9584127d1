"""SimulatedBackend: the :class:`ExecutionBackend` contract over a :class:`BrokerSimulator`.

A thin adapter: every call is delegated. Time is the simulator's virtual clock; whoever drives
the session moves it with ``backend.simulator.advance_to(...)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, Quote
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.engine import VirtualClock
from atomic_orders.simulator.broker.market import SESSION_SECONDS, MarketModel
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator

__all__ = ["SimulatedBackend"]


class SimulatedBackend(ExecutionBackend):
    """An execution backend whose broker is a deterministic :class:`BrokerSimulator`."""

    name = "simulated"

    def __init__(self, simulator: BrokerSimulator) -> None:
        self.simulator = simulator

    @classmethod
    def create(
        cls,
        seed: int,
        profile: ChaosProfile | str = "calm",
        market: MarketModel | None = None,
        session_open: dt.datetime | None = None,
        session_seconds: float = SESSION_SECONDS,
        event_log: bool = True,
    ) -> SimulatedBackend:
        """Build the simulator and the backend in one go (``profile`` may be a preset name)."""
        chaos = ChaosProfile.preset(profile) if isinstance(profile, str) else profile
        return cls(BrokerSimulator(seed, chaos, market, session_open, session_seconds, event_log))

    @property
    def clock(self) -> VirtualClock:
        """The simulator's virtual clock."""
        return self.simulator.clock

    def submit(self, request: OrderRequest) -> None:
        """Delegate to :meth:`BrokerSimulator.submit`."""
        self.simulator.submit(request)

    def cancel(self, order_ref: str) -> None:
        """Delegate to :meth:`BrokerSimulator.cancel`."""
        self.simulator.cancel(order_ref)

    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """Delegate to :meth:`BrokerSimulator.replace`."""
        self.simulator.replace(order_ref, limit_price, quantity)

    def poll_events(self) -> list[BrokerEvent]:
        """Delegate to :meth:`BrokerSimulator.poll_events`."""
        return self.simulator.poll_events()

    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        """Delegate to :meth:`BrokerSimulator.reconcile`."""
        return self.simulator.reconcile(order_refs)

    def find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        """Delegate to :meth:`BrokerSimulator.find_orders`."""
        return self.simulator.find_orders(prefix)

    def quote(self, symbol: OptionSymbol) -> Quote:
        """Delegate to :meth:`BrokerSimulator.quote`."""
        return self.simulator.quote(symbol)

    def positions(self) -> Mapping[OptionSymbol, int]:
        """Delegate to :meth:`BrokerSimulator.positions`."""
        return self.simulator.positions()
