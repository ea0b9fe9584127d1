"""The core's port: the contract every execution backend implements.

The core owns this contract and the backends (:mod:`atomic_orders.backends`) implement it, so
imports point down: nothing in the core imports a backend, not even for typing.

The :class:`~atomic_orders.fsm.executor.AtomicOrderExecutor` is the only caller. A backend moves orders to a
broker and reports back; it never decides anything about a group. Requests are synchronous and
either succeed, fail definitely (:class:`SubmissionRefused`), fail ambiguously
(:class:`SubmissionOutcomeUnknown`: the executor reconciles, it never resends), or find the
broker unreachable (:class:`BrokerUnavailable`: nothing happened, try later). Everything the
broker does afterwards (acknowledgements, fills, cancels, expiries) arrives through
:meth:`ExecutionBackend.poll_events`, possibly duplicated or out of order.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from atomic_orders.fsm.clock import Clock
from atomic_orders.fsm.errors import BrokerError, BrokerUnavailable, SubmissionOutcomeUnknown, SubmissionRefused
from atomic_orders.fsm.events import Fill
from atomic_orders.fsm.orders import BrokerEvent, OrderReport, OrderRequest, Quote
from atomic_orders.fsm.symbol import OptionSymbol

__all__ = [
    "BrokerError",
    "BrokerUnavailable",
    "ExecutionBackend",
    "SubmissionOutcomeUnknown",
    "SubmissionRefused",
]


class ExecutionBackend(abc.ABC):
    """Where orders go. One instance per broker connection (or simulated broker)."""

    #: Short name used in reports and logs (``simulated``, ``tastytrade``, ``quantconnect``).
    name: str = "backend"

    @property
    @abc.abstractmethod
    def clock(self) -> Clock:
        """The time the broker lives in (virtual in a simulation, the wall clock live)."""

    @abc.abstractmethod
    def submit(self, request: OrderRequest) -> None:
        """Send a new order.

        Raises :class:`SubmissionRefused` when the broker definitely refused it and
        :class:`SubmissionOutcomeUnknown` when it cannot be known whether it arrived.
        """

    @abc.abstractmethod
    def cancel(self, order_ref: str) -> None:
        """Ask the broker to cancel a working order (idempotent; the outcome arrives as events).

        Raises :class:`BrokerUnavailable` when the request could not be delivered.
        """

    @abc.abstractmethod
    def replace(self, order_ref: str, limit_price: Decimal, quantity: int | None = None) -> None:
        """Ask the broker to change a working order's limit price (and optionally quantity).

        Raises :class:`BrokerUnavailable` when the request could not be delivered.
        """

    @abc.abstractmethod
    def poll_events(self) -> list[BrokerEvent]:
        """Return the broker events that arrived since the last call, in arrival order."""

    @abc.abstractmethod
    def reconcile(self, order_refs: Sequence[str]) -> Mapping[str, OrderReport]:
        """Ask the broker what it knows about these orders (by our external identifier).

        An order the broker has never seen is reported with status ``NOT_FOUND``.
        Raises :class:`BrokerUnavailable` when the broker cannot answer now.
        """

    @abc.abstractmethod
    def quote(self, symbol: OptionSymbol) -> Quote:
        """Top of book for one option.

        Raises :class:`QuoteUnavailable` when the broker has no usable quote (absent, stale, halted,
        not finite: its reason is kept in logs and counted as a quote miss) and
        :class:`BrokerUnavailable` when the broker cannot answer now. Anything else raised is outside
        the contract: the executor counts it as a boundary error and treats it as no quote.
        """

    @abc.abstractmethod
    def positions(self) -> Mapping[OptionSymbol, int]:
        """Signed option positions the broker holds for the account."""

    def find_orders(self, prefix: str) -> Mapping[str, OrderReport]:
        """Every order the broker holds today (working and closed) whose reference starts with ``prefix``.

        Keyed by our reference (the broker's external identifier), each reported like
        :meth:`reconcile`. Recovery uses it to find orders its journal lacks. Raises
        :class:`BrokerUnavailable` when the broker cannot answer now; the default raises
        :class:`NotImplementedError` naming the backend.
        """
        raise NotImplementedError(f"{type(self).__name__} ({self.name!r}) cannot list orders by reference prefix")

    def adopt_orders(self, orders: Sequence[tuple[OrderRequest, dt.datetime, tuple[Fill, ...]]]) -> None:
        """Orders a previous process sent (when, and the fills it journaled), handed over by recovery.

        A backend that keeps per-order state outside the broker (ids, replacement chains) starts
        tracking them again; nothing is sent. The default has nothing to do.
        """
        return
