"""atomic-orders core: the OrderTicket and AtomicOrderGroup machines, their values, the executor.

Holds the values (symbols, legs, events, orders), the two machines declared as tables
(:mod:`.ticket`, :mod:`.group`), the ledger, the invariants, the executor, the durable journal and
recovery, and the port every backend implements (:mod:`.ports`).

May import: the standard library, ``transitions``, ``attrs`` and ``graphviz`` (:mod:`.diagrams`
only). It imports no backend, no HTTP client and no simulator, not even for typing
(``tests/core/test_layering.py``).
"""

from atomic_orders.fsm.clock import Clock, ManualClock, SystemClock
from atomic_orders.fsm.errors import (
    AtomicOrdersError,
    BrokerUnavailable,
    InvalidTransition,
    SubmissionOutcomeUnknown,
    SubmissionRefused,
    ValidationError,
)
from atomic_orders.fsm.execution_policy import ExecutionPolicy
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode, GroupState
from atomic_orders.fsm.ledger import Ledger
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.pricing import PriceEffect, TickRule
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.fsm.ticket import OrderTicket, TicketState

__all__ = [
    "AtomicOrderExecutor",
    "AtomicOrderGroup",
    "AtomicOrdersError",
    "BrokerUnavailable",
    "Clock",
    "ExecutionMode",
    "ExecutionPolicy",
    "GroupState",
    "InvalidTransition",
    "Leg",
    "Ledger",
    "ManualClock",
    "OptionSymbol",
    "OrderTicket",
    "PositionEffect",
    "PriceEffect",
    "Right",
    "Side",
    "StrategyKind",
    "SubmissionOutcomeUnknown",
    "SubmissionRefused",
    "SystemClock",
    "TickRule",
    "TicketState",
    "ValidationError",
]
