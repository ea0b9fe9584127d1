"""The event log's session header and group records: round trip, and refusal naming the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.session.records import GroupRecord, SessionHeader


def _record(**changes: Any) -> GroupRecord:
    base: dict[str, Any] = dict(
        group="G000007", strategy="iron_condor", mode="legged", quantity=2, outcome="rolled_back",
        reason="leg_rejected", reason_detail="leg ended short: ['G000007-L1']", submitted_at=120.5,
        settled_at=131.25, settle_seconds=10.75, entry=Decimal("-312.00"), unwind=Decimal("290.00"), fees=None,
        slippage=None, fills=3, orders=6, unwind_orders=2, residual={}, flagged=False, anomalies=0, alerts=0)
    base.update(changes)
    return GroupRecord(**base)


def test_group_record_round_trips_and_states_its_pnl() -> None:
    rec = _record()
    line = rec.to_json()
    assert line["kind"] == "group"
    assert line["entry"] == "-312.00" and line["unwind"] == "290.00" and line["pnl"] == "-22.00"
    assert line["fees"] is None
    assert GroupRecord.from_json(line) == rec
    committed = _record(outcome="committed", reason=None, reason_detail=None, entry=Decimal("150.00"),
                        unwind=Decimal(0), fees=Decimal("2.50"), slippage=Decimal("10.00"), unwind_orders=0)
    assert committed.pnl == Decimal("147.50")
    assert GroupRecord.from_json(committed.to_json()) == committed


def test_session_header_round_trips() -> None:
    h = SessionHeader(seed=3, profile="hostile", mode="combo", backend="tastytrade-emulator", http_faults="heavy",
                      groups=200)
    line = h.to_json()
    assert line["kind"] == "session" and line["version"] == 1
    assert SessionHeader.from_json(line) == h


@pytest.mark.parametrize(("field", "value"), [
    ("entry", 1.5),            # a float has already lost the cents
    ("unwind", "lots"),
    ("fees", "NaN"),
    ("quantity", -1),
    ("outcome", "won"),
    ("reason", "bad_luck"),
    ("residual", {"SPXW 250117C05000000": "2"}),
    ("settle_seconds", -3.0),
    ("flagged", "no"),
    ("pnl", "-21.99"),          # must be entry + unwind - fees
    ("strategy", "butterfly"),
    ("kind", "session"),
])
def test_group_record_refuses_a_bad_value_naming_the_field(field: str, value: Any) -> None:
    line = _record().to_json()
    line[field] = value
    with pytest.raises(ValidationError) as err:
        GroupRecord.from_json(line)
    assert err.value.field == field
    assert err.value.value == value


def test_committed_group_has_no_reason_and_others_need_one() -> None:
    line = _record().to_json()
    line["outcome"] = "committed"
    with pytest.raises(ValidationError) as err:
        GroupRecord.from_json(line)
    assert err.value.field == "reason"


def test_session_header_refuses_an_unknown_version() -> None:
    line = SessionHeader(seed=1, profile="rough", mode="combo", backend="simulated", http_faults="none",
                         groups=1).to_json()
    line["version"] = 2
    with pytest.raises(ValidationError) as err:
        SessionHeader.from_json(line)
    assert err.value.field == "version"
