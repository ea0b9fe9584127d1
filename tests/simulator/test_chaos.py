"""ChaosProfile: presets, validation, knob values."""

from __future__ import annotations

import attrs
import pytest

from atomic_orders.simulator.broker.chaos import ChaosProfile


def test_default_profile_is_perfectly_behaved() -> None:
    p = ChaosProfile()
    rates = [
        p.reject_rate,
        p.partial_fill_rate,
        p.partial_then_silence_rate,
        p.cancel_race_rate,
        p.duplicate_rate,
        p.reorder_rate,
        p.outage_rate_per_hour,
        p.outage_landed_rate,
    ]
    assert rates == [0.0] * len(rates)
    assert ChaosProfile.none() == attrs.evolve(p, name="none")


def test_presets_escalate() -> None:
    calm, rough, hostile = ChaosProfile.calm(), ChaosProfile.rough(), ChaosProfile.hostile()
    assert (calm.name, rough.name, hostile.name) == ("calm", "rough", "hostile")
    for knob in ("reject_rate", "duplicate_rate", "reorder_rate", "outage_rate_per_hour", "cancel_race_rate"):
        assert getattr(calm, knob) <= getattr(rough, knob) <= getattr(hostile, knob), knob
    assert calm.outage_rate_per_hour == 0 and calm.duplicate_rate == 0
    assert hostile.reject_rate == 0.08
    assert hostile.duplicate_rate == 0.10 and hostile.reorder_rate == 0.10
    assert hostile.outage_landed_rate == 0.5
    # several outages in a 6.5 hour session
    assert hostile.outage_rate_per_hour * 6.5 >= 3


def test_preset_by_name_and_clear_error_for_a_bad_name() -> None:
    for name in ChaosProfile.preset_names():
        assert ChaosProfile.preset(name).name == name
    with pytest.raises(ValueError, match=r"'chaotic'.*calm, rough, hostile"):
        ChaosProfile.preset("chaotic")


@pytest.mark.parametrize(
    ("knob", "value"),
    [("reject_rate", 1.5), ("duplicate_rate", -0.1), ("ack_latency_mean", -1.0), ("limit_recheck_seconds", 0.0)],
)
def test_knobs_are_validated_and_named(knob: str, value: float) -> None:
    with pytest.raises(ValueError, match=knob):
        ChaosProfile(**{knob: value})  # type: ignore[arg-type]


def test_profiles_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ChaosProfile.hostile().reject_rate = 0.0  # type: ignore[misc]
