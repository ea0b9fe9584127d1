"""The life of one iron condor, to ``committed`` and to ``rolled_back``, printed transition by transition.

Usage: ``python docs/examples/life_of_a_condor.py``. The broker is a script
(:class:`~atomic_orders.backends.scripted.ScriptedBackend`): every answer it gives is written out below, so the
output is the same on every run. docs/architecture.md walks through this output.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from atomic_orders.backends.scripted import ScriptedBackend
from atomic_orders.fsm import AtomicOrderGroup, ExecutionMode, OptionSymbol, Right
from atomic_orders.fsm.events import Acknowledged, Fill, Rejected
from atomic_orders.fsm.executor import AtomicOrderExecutor

EXPIRY = dt.date(2026, 1, 16)
SHORT_CALL = OptionSymbol.of("SPXW", EXPIRY, Right.CALL, 5050)
LONG_CALL = OptionSymbol.of("SPXW", EXPIRY, Right.CALL, 5075)
SHORT_PUT = OptionSymbol.of("SPXW", EXPIRY, Right.PUT, 4950)
LONG_PUT = OptionSymbol.of("SPXW", EXPIRY, Right.PUT, 4925)


def show(group: AtomicOrderGroup, start: dt.datetime) -> None:
    """Print the group's audit trail, then each ticket's, then the ledger."""
    print(f"{group.group_id} ({group.mode.value}): {group.state}")
    for rec in group.audit:
        cause = f" <- {rec.order_ref} {rec.ticket_event.trigger}" if rec.ticket_event is not None else ""
        why = f" ({rec.reason})" if rec.reason and rec.ticket_event is None else ""
        print(f"  t+{(rec.time - start).total_seconds():>4.0f}s  group  {rec.source} --{rec.trigger}--> {rec.dest}"
              f"{cause}{why}")
    for ticket in group.tickets:
        legs = ", ".join(f"{leg.side.value} {leg.symbol.occ}" for leg in ticket.legs)
        path = " -> ".join([ticket.order_events[0].source, *(r.dest for r in ticket.order_events)])
        price = f" @ {ticket.limit_price}" if ticket.limit_price is not None else ""
        print(f"  {ticket.order_ref:<12} {ticket.purpose.value:<6} x{ticket.quantity}{price} [{legs}]  {path}")
    print(f"  ledger: {({s.occ: q for s, q in group.ledger.positions().items()}) or 'flat'}")
    if group.rollback_reason:
        print(f"  rollback reason: {group.rollback_reason}")


def fill(backend: ScriptedBackend, ref: str, fill_id: str, quantity: int) -> None:
    """The broker reports a fill of ``quantity`` at the order's limit price."""
    price = backend.request(ref).limit_price
    assert price is not None
    backend.push(ref, Fill(backend.now(), fill_id, quantity, price))


def scripted_broker() -> ScriptedBackend:
    """A scripted broker with a fixed quote (bid, ask) per option of the condor."""
    backend = ScriptedBackend()
    backend.quotes = {
        SHORT_CALL: (Decimal("2.40"), Decimal("2.60")),
        LONG_CALL: (Decimal("1.00"), Decimal("1.20")),
        SHORT_PUT: (Decimal("2.90"), Decimal("3.10")),
        LONG_PUT: (Decimal("1.30"), Decimal("1.50")),
    }
    return backend


def committed() -> None:
    """A combo condor: one four-leg order, acknowledged, filled in two parts."""
    backend = scripted_broker()
    executor = AtomicOrderExecutor(backend, session_id="")  # a fresh scripted account: plain ids
    start = backend.now()
    group = executor.execute_iron_condor(short_call=SHORT_CALL, long_call=LONG_CALL, short_put=SHORT_PUT,
                                         long_put=LONG_PUT, quantity=2)
    sent = backend.submitted[0]
    print(f"sent {sent.order_ref}: {sent.quantity} x {len(sent.legs)} legs, limit {sent.limit_price} net per condor"
          " (negative: a credit; the mid)")
    backend.clock.advance(1)
    backend.push("G000001-C", Acknowledged(backend.now(), "B-1"))
    backend.clock.advance(2)
    fill(backend, "G000001-C", "F-1", 1)
    executor.process_events()
    backend.clock.advance(3)
    fill(backend, "G000001-C", "F-2", 1)
    executor.process_events()
    show(group, start)


def rolled_back() -> None:
    """A legged condor: the long wings fill, the short call fills, the short put is rejected."""
    backend = scripted_broker()
    executor = AtomicOrderExecutor(backend, session_id="")  # a fresh scripted account: plain ids
    start = backend.now()
    group = executor.execute_iron_condor(short_call=SHORT_CALL, long_call=LONG_CALL, short_put=SHORT_PUT,
                                         long_put=LONG_PUT, quantity=2, mode=ExecutionMode.LEGGED)
    print(f"sent first (protective longs): {[r.order_ref for r in backend.submitted]}")
    backend.clock.advance(1)
    for ref in ("G000001-L1", "G000001-L3"):
        backend.push(ref, Acknowledged(backend.now(), f"B-{ref}"))
        fill(backend, ref, f"F-{ref}", 2)
    executor.process_events()
    print(f"then the shorts: {[r.order_ref for r in backend.submitted[2:]]}")
    backend.clock.advance(1)
    backend.push("G000001-L0", Acknowledged(backend.now(), "B-L0"))
    fill(backend, "G000001-L0", "F-L0", 2)
    backend.push("G000001-L2", Rejected(backend.now(), "insufficient buying power"))
    executor.process_events()
    print(f"unwinds sent while a short is open (buy it back first): {[r.order_ref for r in backend.submitted[4:]]}")
    backend.clock.advance(1)
    backend.push("G000001-U1", Acknowledged(backend.now(), "B-U1"))
    fill(backend, "G000001-U1", "F-U1", 2)
    executor.process_events()
    print(f"then the longs are sold: {[r.order_ref for r in backend.submitted[5:]]}")
    backend.clock.advance(1)
    for ref in ("G000001-U2", "G000001-U3"):
        backend.push(ref, Acknowledged(backend.now(), f"B-{ref}"))
        fill(backend, ref, f"F-{ref}", 2)
    executor.process_events()
    show(group, start)


if __name__ == "__main__":
    committed()
    print()
    rolled_back()
