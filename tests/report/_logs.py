"""Small event logs for the report tests, built from the log's own record types."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from atomic_orders.simulator.session.records import GroupRecord, SessionHeader

HEADER = SessionHeader(seed=7, profile="rough", mode="combo", backend="simulated", http_faults="none", groups=4)


def record(n: int, outcome: str, **changes: Any) -> GroupRecord:
    """Group ``G00000n`` ending with ``outcome`` (a reason given unless committed)."""
    fields: dict[str, Any] = {
        "group": f"G{n:06d}", "strategy": "iron_condor", "mode": "combo", "quantity": 2, "outcome": outcome,
        "reason": None if outcome == "committed" else ("timeout" if outcome != "invalid" else "invalid"),
        "reason_detail": None if outcome == "committed" else "not filled by the deadline",
        "submitted_at": 100.0 * n, "settled_at": 100.0 * n + 40, "settle_seconds": 40.0,
        "entry": Decimal("1060.00") if outcome == "committed" else Decimal("0"),
        "unwind": Decimal("0") if outcome == "committed" else Decimal("-16.50"),
        "fees": None, "slippage": Decimal("10.00") if outcome == "committed" else None,
        "fills": 1, "orders": 1, "unwind_orders": 0 if outcome == "committed" else 1,
        "residual": {"SPXW  260112C05080000": -2} if outcome == "failed" else {},
        "flagged": False, "anomalies": 0, "alerts": 1 if outcome == "failed" else 0,
    }
    fields.update(changes)
    return GroupRecord(**fields)


RECORDS = (record(1, "committed"), record(2, "rolled_back"), record(3, "failed"), record(4, "invalid"))


def broker_lines(records: tuple[GroupRecord, ...]) -> list[dict[str, Any]]:
    """A submit, an acknowledgement and a fill or a cancel per group, at its times."""
    lines: list[dict[str, Any]] = [{"kind": "outage_start", "t": "150.000000", "until": "160.000000"}]
    for r in records:
        t = r.submitted_at or 0.0
        ref = f"{r.group}-C"
        lines += [
            {"kind": "received", "t": f"{t:.6f}", "ref": ref, "broker_id": "SIM1", "legs": ["sell 2 SPXW  C"],
             "limit": "-5.30", "quantity": r.quantity, "tif": "day", "type": "limit", "landed_in_outage": False},
            {"kind": "acknowledged", "t": f"{t + 0.2:.6f}", "ref": ref, "broker_id": "SIM1"},
            {"kind": "deliver", "t": f"{t + 0.2:.6f}", "ref": ref, "event": "acknowledged", "at": f"{t + 0.2:.6f}",
             "late": False, "reordered": False},
        ]
        if r.outcome == "committed":
            lines.append({"kind": "fill", "t": f"{t + 30:.6f}", "ref": ref, "fill_id": "F1", "filled": 2, "of": 2,
                          "price": "-5.30", "quantity": 2})
        else:
            lines.append({"kind": "canceled", "t": f"{t + 30:.6f}", "ref": ref, "reason": None})
    lines.append({"kind": "close", "t": "23400.000000", "expired": 0})
    return lines


def write_log(path: Path, records: tuple[GroupRecord, ...] = RECORDS, *, header: SessionHeader = HEADER,
              report: dict[str, Any] | None = None) -> Path:
    """The log as ``simulate --events`` writes it: header, broker lines, group lines, report."""
    lines: list[Any] = [header.to_json(), *broker_lines(records), *(r.to_json() for r in records)]
    lines.append(report if report is not None else
                 {"kind": "report", "chaos": {"fills": 1, "rejected": 0, "duplicates": 3, "outages": 1},
                  "http_faults": {}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path
