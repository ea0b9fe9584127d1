"""atomic-orders core: the OrderTicket and AtomicOrderGroup machines and their values.

The core imports no backend, no HTTP and no simulator.
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
from atomic_orders.fsm.group import AtomicOrderGroup, ExecutionMode, GroupState
from atomic_orders.fsm.ledger import Ledger
from atomic_orders.fsm.leg import Leg, PositionEffect, Side
from atomic_orders.fsm.pricing import PriceEffect, TickRule
from atomic_orders.fsm.strategy import StrategyKind
from atomic_orders.fsm.symbol import OptionSymbol, Right
from atomic_orders.fsm.ticket import OrderTicket, TicketState

__all__ = [
    "AtomicOrderGroup",
    "AtomicOrdersError",
    "BrokerUnavailable",
    "Clock",
    "ExecutionMode",
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
