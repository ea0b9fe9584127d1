"""One scripted broker scenario, three paths to the same simulator.

* ``simulated``: :class:`SimulatedBackend` in-process;
* ``tastytrade``: the TastyTrade backend over real HTTP to the emulator;
* ``quantconnect``: the adapter in a stand-in LEAN algorithm, orders through LEAN's order API.

Each run returns what must agree between the paths: the group's final state, the sequence of
group states, the ledger (as a multiset of symbol, signed contracts, price), the rollback reason,
and every ticket's purpose, legs, final state and filled quantity (so a reject read as a cancel,
or a fill counted twice, shows even when the ledger happens to agree).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from atomic_orders.backends.quantconnect import TastytradeIntegrationAdapter
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode
from atomic_orders.fsm.symbol import OptionSymbol
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.script import BrokerScript
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.lean.algorithm import QCAlgorithm
from atomic_orders.simulator.lean.brokerage import LeanStandIn
from atomic_orders.simulator.lean.lean_types import OrderEvent
from tests.roles import condor_roles

HORIZON = 900.0
POLICY = ExecutionPolicy(max_unwind_retries=2, unwind_retry_delay=1.0)

Condor = tuple[OptionSymbol, OptionSymbol, OptionSymbol, OptionSymbol]
ScriptFactory = Callable[[Condor], BrokerScript]


@attrs.frozen
class Outcome:
    """What one path produced."""

    state: str
    states: tuple[str, ...]
    ledger: tuple[tuple[str, int, Decimal], ...]
    positions: tuple[tuple[str, int], ...]
    broker_orders: int
    owned: bool  # every order the broker saw belongs to the executor's group
    rollback_reason: str | None = None
    #: (purpose, legs, final state, filled) of every ticket, sorted: when an unwind is created may
    #: differ between paths (a late fill polled from TastyTrade), what every ticket ended as may not
    tickets: tuple[tuple[str, str, str, int], ...] = ()


def _states(group: AtomicOrderGroup) -> tuple[str, ...]:
    out: list[str] = []
    for record in group.audit:
        if not out or out[-1] != record.dest:
            out.append(record.dest)
    return tuple(out)


def _outcome(group: AtomicOrderGroup, broker: BrokerSimulator, owned: bool) -> Outcome:
    ledger = Counter((e.symbol.occ, e.quantity, e.price.normalize()) for e in group.ledger)
    positions = tuple(sorted((s.occ, q) for s, q in broker.positions().items()))
    tickets = tuple(sorted((t.purpose.value, " ".join(f"{leg.side.value} {leg.symbol.occ}" for leg in t.legs), t.state,
                     t.quantity_filled) for t in group.tickets))
    # group ids carry a per-session part that differs between executors: compare reasons without it
    reason = None if group.rollback_reason is None else group.rollback_reason.replace(group.group_id, "<group>")
    return Outcome(group.state, _states(group), tuple(sorted(ledger.elements())), positions,
                   len(broker.orders_seen), owned, reason, tickets)


def _broker(script: BrokerScript) -> BrokerSimulator:
    return BrokerSimulator(7, ChaosProfile.none(), script=script)


def condor(broker: BrokerSimulator) -> Condor:
    """The condor every path trades (from the market at the open)."""
    m = broker.market
    return m.strikes_for_iron_condor(0.0, m.default_expiry, 10, 40.0)


def _loop(broker_next: Callable[[], float | None], advance: Callable[[float], None], executor: AtomicOrderExecutor,
          group: AtomicOrderGroup, clock_seconds: Callable[[dt.datetime], float], now: Callable[[], float],
          drive: Callable[[], None]) -> None:
    while not group.is_terminal and now() < HORIZON:
        candidates = [t for t in (broker_next(),) if t is not None]
        wake = executor.next_wakeup()
        if wake is not None:
            candidates.append(clock_seconds(wake))
        if not candidates:
            break
        advance(max(min(candidates), now()))
        drive()


def run_simulated(make_script: ScriptFactory, mode: ExecutionMode, quantity: int) -> Outcome:
    """Path (a): the simulated backend."""
    probe = _broker(BrokerScript([]))
    legs = condor(probe)
    broker = _broker(make_script(legs))
    executor = AtomicOrderExecutor(SimulatedBackend(broker), POLICY, session_id="")
    group = executor.execute_iron_condor(**condor_roles(legs), quantity=quantity, mode=mode)

    def drive() -> None:
        executor.process_events()
        executor.on_timer()

    _loop(broker.next_event_time, broker.advance_to, executor, group, broker.clock.to_seconds,
          lambda: broker.clock.seconds, drive)
    owned = all(executor.owns_order(r.order_ref) for r in broker.orders_seen)
    return _outcome(group, broker, owned)


def run_tastytrade(make_script: ScriptFactory, mode: ExecutionMode, quantity: int) -> Outcome:
    """Path (b): the TastyTrade backend over HTTP to the emulator."""
    from atomic_orders.simulator.emulator import EmulatorDriver

    probe = _broker(BrokerScript([]))
    legs = condor(probe)
    broker = _broker(make_script(legs))
    with EmulatorDriver(broker) as driver:
        executor = AtomicOrderExecutor(driver.backend, POLICY, session_id="")
        group = executor.execute_iron_condor(**condor_roles(legs), quantity=quantity, mode=mode)

        def drive() -> None:
            executor.process_events()
            executor.on_timer()

        _loop(driver.next_event_time, driver.advance_to, executor, group, broker.clock.to_seconds,
              lambda: broker.clock.seconds, drive)
        owned = all(executor.owns_order(r.order_ref.split("#")[0]) for r in broker.orders_seen)
        return _outcome(group, broker, owned)


class ConsistencyAlgorithm(QCAlgorithm):
    """A stand-in LEAN algorithm whose only order path is the adapter."""

    adapter: TastytradeIntegrationAdapter

    def initialize(self) -> None:
        """Create the adapter once, as a real algorithm does."""
        self.adapter = TastytradeIntegrationAdapter(self, policy=POLICY)

    def on_order_event(self, order_event: OrderEvent) -> None:
        """Forward every LEAN order event to the adapter."""
        self.adapter.on_order_event(order_event)


def run_quantconnect(make_script: ScriptFactory, mode: ExecutionMode, quantity: int,
                     **standin: Any) -> tuple[Outcome, LeanStandIn]:
    """Path (c): the QuantConnect backend inside a stand-in LEAN algorithm."""
    probe = _broker(BrokerScript([]))
    legs = condor(probe)
    broker = _broker(make_script(legs))
    algorithm = ConsistencyAlgorithm()
    lean = LeanStandIn(algorithm, broker, **standin)
    adapter = algorithm.adapter
    group = adapter.execute_iron_condor(**condor_roles(legs), quantity=quantity, mode=mode)
    executor = adapter.executor

    def advance(t: float) -> None:
        lean.step(t)

    _loop(lean.next_time, advance, executor, group, broker.clock.to_seconds, lambda: lean.seconds, adapter.poll)
    tags = {t.tag for t in algorithm.transactions.get_order_tickets()}
    owned = all(executor.owns_order(tag) for tag in tags) and all(
        executor.owns_order(r.order_ref) for r in broker.orders_seen)
    return _outcome(group, broker, owned), lean
