"""In-process "deaths" for the journal tests: run a session until a crash point, then stop there."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.journal import Journal
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.broker.simulated_broker import BrokerSimulator
from atomic_orders.simulator.crash.harness import CrashSession, drive_plan


class Died(BaseException):
    """Raised at the chosen crash point: the process "dies" there."""


def die_at(point: str, nth: int) -> Callable[[str], None]:
    """A journal ``on_point`` hook that raises :class:`Died` at the ``nth`` passage of ``point``."""
    seen = {"n": 0}

    def on_point(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Died

    return on_point


def run_until_death(session: CrashSession, path: Path, point: str, nth: int, *, batch_seconds: float = 0.2,
                    config: Mapping[str, Any] | None = None) -> BrokerSimulator:
    """Run ``session`` journaled at ``path`` until it dies at ``point``; return the surviving broker.

    The journal is closed without committing what was staged, exactly what SIGKILL leaves behind.
    """
    broker = session.broker()
    journal = Journal(path, sync="normal", batch_seconds=batch_seconds, on_point=die_at(point, nth))
    if config is not None:
        journal.start_session("start", dict(config))
    executor = AtomicOrderExecutor(SimulatedBackend(broker), journal=journal)
    with pytest.raises(Died):
        drive_plan(executor, broker.market, session.plan(), session.session_seconds,
                   now=lambda: broker.clock.seconds, advance=broker.advance_to, next_event=broker.next_event_time)
    journal.close(commit=False)
    return broker
