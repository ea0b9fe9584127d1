"""atomic-orders core: the OrderTicket and AtomicOrderGroup machines and their values.

The core imports no backend, no HTTP and no simulator.
"""

from fsm.clock import Clock, ManualClock, SystemClock
from fsm.errors import (
    AtomicOrdersError,
    BrokerUnavailable,
    InvalidTransition,
    SubmissionOutcomeUnknown,
    SubmissionRefused,
    ValidationError,
)
from fsm.group import AtomicOrderGroup, ExecutionMode, GroupState
from fsm.ledger import Ledger
from fsm.leg import Leg, PositionEffect, Side
from fsm.pricing import PriceEffect, TickRule
from fsm.strategy import StrategyKind
from fsm.symbol import OptionSymbol, Right
from fsm.ticket import OrderTicket, TicketState

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
