"""The exceptions of the core: bad input and illegal state changes."""

from __future__ import annotations

from typing import Any


class AtomicOrdersError(Exception):
    """Base class of every error raised by atomic-orders."""


class ValidationError(AtomicOrdersError, ValueError):
    """Input that cannot be accepted; names the field, quotes the value and says why."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, Any, str]]:
        # Raised in a worker process (the exhaustive check's pool), it must cross back whole.
        return (type(self), (self.field, self.value, self.reason))


class InvalidTransition(AtomicOrdersError):
    """An event that the machine's declared table does not allow in the current state.

    The machine is left exactly as it was.
    """

    def __init__(self, machine: str, ident: str, state: str, event: str) -> None:
        self.machine = machine
        self.ident = ident
        self.state = state
        self.event = event
        super().__init__(f"{machine} {ident!r}: event {event!r} is not allowed in state {state!r}")


class BrokerError(AtomicOrdersError):
    """Base class of the errors a backend raises about the broker."""


class SubmissionRefused(BrokerError):
    """The broker definitely refused an order at submission (nothing is working)."""

    def __init__(self, order_ref: str, reason: str) -> None:
        self.order_ref = order_ref
        self.reason = reason
        super().__init__(f"order {order_ref!r} refused: {reason}")


class SubmissionOutcomeUnknown(BrokerError):
    """A submission timed out or lost its connection: the order may or may not be at the broker.

    Never resend on this error; reconcile by the order's external identifier first.
    """

    def __init__(self, order_ref: str, reason: str) -> None:
        self.order_ref = order_ref
        self.reason = reason
        super().__init__(f"order {order_ref!r}: outcome unknown ({reason})")


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached right now (outage); the request had no effect or is idempotent."""


class QuoteUnavailable(AtomicOrdersError):
    """No usable quote for a symbol now (missing, not finite, negative, crossed or absurd).

    ``field`` names the part of the quote (``bid``, ``ask``) and ``value`` what the source gave.
    The executor treats it as "no quote yet": it retries on its timers within a bound, then
    refuses with this error's text; nothing is priced or sent from such a quote.
    """

    def __init__(self, symbol: str, field: str, value: object, reason: str) -> None:
        self.symbol, self.field, self.value, self.reason = symbol, field, value, reason
        super().__init__(f"no usable quote for {symbol}: {field}={value!r}: {reason}")
