"""ChaosProfile: every way the simulated broker is slow, unlucky or wrong, as one frozen value.

All times are simulated seconds. A latency is drawn from a log-normal distribution with the
given ``*_mean`` and log-space standard deviation ``*_jitter`` (``jitter == 0`` makes it a
constant). Rates named ``*_rate`` are probabilities in ``[0, 1]`` unless they say otherwise
(``limit_fill_rate`` is an intensity per second, ``outage_rate_per_hour`` a Poisson rate).

``ChaosProfile()`` is a perfectly behaved broker (no rejects, duplicates, reorders, races or
outages, small fixed latencies); the presets :meth:`ChaosProfile.calm`, :meth:`~ChaosProfile.rough`
and :meth:`~ChaosProfile.hostile` turn the knobs up. Use :func:`attrs.evolve` to change one knob.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["REJECT_REASONS", "ChaosProfile"]

#: Reasons the broker gives when chaos rejects an order, with their relative weights.
#: ("market closed" is not chosen by chance: it is what every order after the close gets.)
REJECT_REASONS: tuple[tuple[str, float], ...] = (
    ("insufficient buying power", 0.5),
    ("invalid price", 0.3),
    ("halted", 0.2),
)


def _probability(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{attr.name}={value!r}: must be a probability in [0, 1]")


def _non_negative(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{attr.name}={value!r}: must be a finite number >= 0")


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attr.name}={value!r}: must be a finite number > 0")


def _reasons(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) > 0
        and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and x[0] and x[1] > 0 for x in value)
    )
    if not ok:
        raise ValueError(f"{attr.name}={value!r}: must be a non-empty tuple of (reason, positive weight)")


def _p(default: float) -> Any:
    return attrs.field(default=default, validator=_probability)


def _nn(default: float) -> Any:
    return attrs.field(default=default, validator=_non_negative)


@attrs.frozen
class ChaosProfile:
    """The knobs of the simulated broker's misbehaviour (see the module docstring for units)."""

    #: Short name for reports ("custom" unless built by a preset).
    name: str = "custom"

    # -- acceptance -------------------------------------------------------------------------
    #: Probability an order is rejected (reason drawn from ``reject_reasons``).
    reject_rate: float = _p(0.0)
    #: ``(reason, weight)`` pairs for chance rejects.
    reject_reasons: tuple[tuple[str, float], ...] = attrs.field(default=REJECT_REASONS, validator=_reasons)
    #: Reject (reason "invalid price") any limit that is not on the option tick, as a real broker does.
    reject_off_tick: bool = True

    # -- latencies (submit -> ack/reject, execution -> fill report, request -> cancel/replace result)
    ack_latency_mean: float = _nn(0.05)
    ack_latency_jitter: float = _nn(0.0)
    fill_latency_mean: float = _nn(0.02)
    fill_latency_jitter: float = _nn(0.0)
    cancel_latency_mean: float = _nn(0.05)
    cancel_latency_jitter: float = _nn(0.0)
    replace_latency_mean: float = _nn(0.05)
    replace_latency_jitter: float = _nn(0.0)

    # -- fills ------------------------------------------------------------------------------
    #: Fill intensity (per second) of a limit order resting at the mid.
    limit_fill_rate: float = attrs.field(default=1 / 30, validator=_non_negative)
    #: Intensity multiplies by ``exp(limit_fill_decay * d)``, ``d`` = (limit - mid) / half-spread in the
    #: buyer's direction: it rises toward the natural price and falls for better prices (below the mid,
    #: at the far touch and beyond).
    limit_fill_decay: float = _nn(2.0)
    #: Mean delay (exponential) before a marketable order fills at the touch.
    marketable_fill_mean: float = _nn(0.2)
    #: Longest mean gap between fill opportunities of a resting order, so that a market moving through
    #: its limit is noticed (the order then fills at its limit).
    limit_recheck_seconds: float = attrs.field(default=5.0, validator=_positive)
    #: Probability a fill is partial (only for a remaining quantity above one unit).
    partial_fill_rate: float = _p(0.0)
    #: Probability an order that just partially filled never fills again (a replace does not revive it;
    #: it stays working until canceled or expired).
    partial_then_silence_rate: float = _p(0.0)

    # -- cancels ----------------------------------------------------------------------------
    #: Probability a cancel request races a fill: the order executes after the request, before the cancel.
    cancel_race_rate: float = _p(0.0)
    #: Given a race that left quantity to cancel, probability the fill report arrives after ``Canceled``.
    late_fill_rate: float = _p(0.0)
    #: Given a race that completed the order, probability the fill report arrives after the cancel's
    #: ``CancelRejected("already filled")``.
    cancel_reject_rate: float = _p(0.0)
    #: Mean extra delay (exponential) of a held-back race fill report after the cancel's result.
    late_report_delay_mean: float = _nn(0.5)

    # -- delivery ---------------------------------------------------------------------------
    #: Probability an event is delivered twice.
    duplicate_rate: float = _p(0.0)
    #: Mean delay (exponential) of the second copy after the first.
    duplicate_delay_mean: float = _nn(0.3)
    #: Probability an event is held back so that later events of the same order overtake it.
    reorder_rate: float = _p(0.0)
    #: Mean extra delay (exponential) of a reordered event.
    reorder_delay_mean: float = _nn(1.0)

    # -- outages ----------------------------------------------------------------------------
    #: Poisson rate of outages per simulated hour.
    outage_rate_per_hour: float = _nn(0.0)
    #: Mean outage length (exponential), seconds.
    outage_mean_seconds: float = _nn(30.0)
    #: Probability a submission during an outage reached the broker anyway.
    outage_landed_rate: float = _p(0.0)

    @classmethod
    def none(cls) -> ChaosProfile:
        """A perfectly behaved broker (the same as ``ChaosProfile()``, named ``none``)."""
        return cls(name="none")

    @classmethod
    def calm(cls) -> ChaosProfile:
        """Nearly nothing goes wrong: realistic latencies, rare rejects and partial fills."""
        return cls(
            name="calm",
            reject_rate=0.005,
            ack_latency_mean=0.08,
            ack_latency_jitter=0.3,
            fill_latency_mean=0.05,
            fill_latency_jitter=0.3,
            cancel_latency_mean=0.1,
            cancel_latency_jitter=0.3,
            replace_latency_mean=0.1,
            replace_latency_jitter=0.3,
            partial_fill_rate=0.02,
            cancel_race_rate=0.01,
            late_fill_rate=0.1,
            cancel_reject_rate=0.1,
        )

    @classmethod
    def rough(cls) -> ChaosProfile:
        """Moderate trouble: some rejects, duplicates, reorders, races and an occasional outage."""
        return cls(
            name="rough",
            reject_rate=0.03,
            ack_latency_mean=0.2,
            ack_latency_jitter=0.6,
            fill_latency_mean=0.15,
            fill_latency_jitter=0.6,
            cancel_latency_mean=0.3,
            cancel_latency_jitter=0.6,
            replace_latency_mean=0.3,
            replace_latency_jitter=0.6,
            partial_fill_rate=0.15,
            partial_then_silence_rate=0.05,
            cancel_race_rate=0.08,
            late_fill_rate=0.3,
            cancel_reject_rate=0.3,
            duplicate_rate=0.03,
            reorder_rate=0.03,
            outage_rate_per_hour=0.2,
            outage_mean_seconds=20.0,
            outage_landed_rate=0.3,
        )

    @classmethod
    def hostile(cls) -> ChaosProfile:
        """Everything frequent: 8% rejects, 10% duplicates and reorders, several outages, 50% landed."""
        return cls(
            name="hostile",
            reject_rate=0.08,
            ack_latency_mean=0.5,
            ack_latency_jitter=1.0,
            fill_latency_mean=0.4,
            fill_latency_jitter=1.0,
            cancel_latency_mean=0.8,
            cancel_latency_jitter=1.0,
            replace_latency_mean=0.8,
            replace_latency_jitter=1.0,
            partial_fill_rate=0.3,
            partial_then_silence_rate=0.15,
            cancel_race_rate=0.2,
            late_fill_rate=0.5,
            cancel_reject_rate=0.5,
            duplicate_rate=0.10,
            reorder_rate=0.10,
            reorder_delay_mean=2.0,
            outage_rate_per_hour=0.8,
            outage_mean_seconds=45.0,
            outage_landed_rate=0.5,
        )

    @classmethod
    def preset_names(cls) -> tuple[str, ...]:
        """The names :meth:`preset` accepts."""
        return ("none", "calm", "rough", "hostile")

    @classmethod
    def preset(cls, name: str) -> ChaosProfile:
        """The preset called ``name``; raise ``ValueError`` naming the bad value otherwise."""
        factories = {"none": cls.none, "calm": cls.calm, "rough": cls.rough, "hostile": cls.hostile}
        factory = factories.get(name) if isinstance(name, str) else None
        if factory is None:
            raise ValueError(f"chaos profile {name!r} is not a preset; expected one of {', '.join(factories)}")
        return factory()
