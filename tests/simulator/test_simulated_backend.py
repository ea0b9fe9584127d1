"""SimulatedBackend: the ExecutionBackend contract delegated to the simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from atomic_orders.fsm.events import Acknowledged, BrokerStatus, Canceled, Fill
from atomic_orders.fsm.leg import Side
from atomic_orders.fsm.ports import ExecutionBackend
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.chaos import ChaosProfile
from atomic_orders.simulator.broker.engine import VirtualClock

from ._helpers import atm_call, single_request


def test_backend_delegates_every_call() -> None:
    backend = SimulatedBackend.create(seed=9, profile=ChaosProfile())
    sim = backend.simulator
    assert isinstance(backend, ExecutionBackend)
    assert backend.name == "simulated"
    assert isinstance(backend.clock, VirtualClock) and backend.clock is sim.clock
    sym = atm_call(sim)
    quote = backend.quote(sym)
    assert quote.bid < quote.ask
    backend.submit(single_request("buy", sym, Side.BUY, quote.ask + Decimal("1.00")))
    backend.submit(single_request("rest", sym, Side.BUY, Decimal("0.05")))
    sim.advance_to(10.0)
    events = backend.poll_events()
    assert {type(e.event) for e in events if e.order_ref == "buy"} == {Acknowledged, Fill}
    assert backend.poll_events() == []  # each event is returned once
    backend.cancel("rest")
    backend.replace("rest", Decimal("0.10"))
    sim.advance_to(20.0)
    assert any(isinstance(e.event, Canceled) for e in backend.poll_events())
    reports = backend.reconcile(["buy", "rest", "nope"])
    assert reports["buy"].status is BrokerStatus.FILLED
    assert reports["rest"].status is BrokerStatus.CANCELED
    assert reports["nope"].status is BrokerStatus.NOT_FOUND
    assert backend.positions() == {sym: 1}


def test_create_accepts_a_preset_name_and_rejects_a_bad_one() -> None:
    assert SimulatedBackend.create(seed=1, profile="hostile").simulator.profile == ChaosProfile.hostile()
    with pytest.raises(ValueError, match="'wild'"):
        SimulatedBackend.create(seed=1, profile="wild")
