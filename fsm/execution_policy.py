"""ExecutionPolicy: how the executor prices, paces and gives up ("smart order" rules)."""

from __future__ import annotations

import math
from decimal import Decimal

import attrs

from atomic_orders.fsm.errors import ValidationError

#: The longest any timer may be (one week): a larger value is a unit mistake, not a policy.
MAX_SECONDS = 7 * 24 * 3600.0
#: The shortest any timer may be.
MIN_SECONDS = 0.1
#: The largest count any setting takes (ticks per step, retries).
MAX_COUNT = 1000


def _positive(inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValidationError(attr.name, value, "must be a positive, finite number of seconds")
    if value > MAX_SECONDS:
        raise ValidationError(attr.name, value, f"must be at most {MAX_SECONDS:g} seconds (one week)")
    if value < MIN_SECONDS:
        # below this a timer is a tight loop against the broker, not a policy
        raise ValidationError(attr.name, value, f"must be at least {MIN_SECONDS:g} seconds")


def _non_negative_decimal(inst: object, attr: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value > 10_000:
        raise ValidationError(attr.name, value, "must be a Decimal from 0 to 10000")


def _non_negative_int(inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValidationError(attr.name, value, f"must be an int from 0 to {MAX_COUNT}")


def _quantity_bound(inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or not 0 < value <= 1_000_000:
        raise ValidationError(attr.name, value, "must be an int from 1 to 1000000")


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
    #: The most contracts any leg of one group may trade (strategy units x ratio): a typo such as
    #: ``quantity=10**12`` is refused before anything is sent.
    max_contracts: int = attrs.field(default=1000, validator=_quantity_bound)
    #: Pricing attempts that find no usable quote (missing, NaN, crossed) before an entry order is
    #: given up (the group rolls back, the reason names the quote); unwinds keep trying, alerted.
    max_quote_misses: int = attrs.field(default=5, validator=_non_negative_int)
    #: A group not settled this long after its deadline is alerted once (it keeps being worked).
    stuck_alert_seconds: float = attrs.field(default=900.0, validator=_positive)
