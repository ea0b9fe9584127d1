"""ExecutionPolicy: how the executor prices, paces and gives up ("smart order" rules)."""

from __future__ import annotations

from decimal import Decimal

import attrs

from fsm.errors import ValidationError


def _positive(inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ValidationError(attr.name, value, "must be a positive number of seconds")


def _non_negative_decimal(inst: object, attr: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValidationError(attr.name, value, "must be a non-negative Decimal")


def _non_negative_int(inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise ValidationError(attr.name, value, "must be an int >= 0")


@attrs.frozen
class ExecutionPolicy:
    """Pricing and pacing rules of the executor.

    Entry orders start at the mid and step toward the natural price by ``step_ticks`` every
    ``step_seconds``, never beyond ``max_slippage`` per unit from the mid (nor beyond the natural
    price, nor beyond the group's own limit). Not filled by ``deadline_seconds``: cancel and roll
    back. Unwinds are marketable limits ``unwind_ticks_through`` ticks through the touch, retried
    up to the group's ``max_unwind_retries`` with ``unwind_retry_delay`` x attempt between tries.
    """

    step_seconds: float = attrs.field(default=5.0, validator=_positive)
    step_ticks: int = attrs.field(default=1, validator=_non_negative_int)
    max_slippage: Decimal = attrs.field(default=Decimal("0.30"), validator=_non_negative_decimal)
    deadline_seconds: float = attrs.field(default=90.0, validator=_positive)
    unwind_ticks_through: int = attrs.field(default=2, validator=_non_negative_int)
    unwind_retry_delay: float = attrs.field(default=2.0, validator=_positive)
    #: An unwind still working after this long is canceled and retried at a fresh marketable price
    #: (a partial fill followed by silence must not wait for the close).
    unwind_timeout: float = attrs.field(default=10.0, validator=_positive)
    max_unwind_retries: int = attrs.field(default=3, validator=_non_negative_int)
    #: A submission without acknowledgement for this long is treated as unknown and reconciled.
    ack_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: A cancel or update without an answer for this long is reconciled with the broker.
    pending_timeout: float = attrs.field(default=15.0, validator=_positive)
    #: How often unknown orders are reconciled while the broker cannot answer.
    reconcile_interval: float = attrs.field(default=3.0, validator=_positive)
    #: Finished groups stay routable this long (late fills still reach them), then are released.
    linger_seconds: float = attrs.field(default=1800.0, validator=_positive)
    #: Questions to the broker that leave its record disagreeing with our fills (a FILLED order
    #: without its fills, a count above the listed fills) before the group fails with the residual
    #: the broker counts. Between questions the wait doubles from ``reconcile_interval``.
    max_broker_disagreements: int = attrs.field(default=4, validator=_non_negative_int)
    #: The longest wait between two questions to the broker (outage retries, disagreements, refused cancels).
    max_backoff_seconds: float = attrs.field(default=60.0, validator=_positive)
