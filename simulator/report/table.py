"""The per-group CSV of a session: one row per group record, for people who open spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

import attrs

from atomic_orders.simulator.session.records import GroupRecord

__all__ = ["CSV_FIELDS", "group_csv", "write_group_csv"]

#: The header: :class:`GroupRecord`'s fields in their order, then ``pnl`` (entry + unwind - fees).
CSV_FIELDS: tuple[str, ...] = (*(f.name for f in attrs.fields(GroupRecord)), "pnl")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # the residual: {"OCC symbol": contracts}
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""
    return str(value)  # Decimal dollars keep their cents as written ("-16.50")


def group_csv(records: Iterable[GroupRecord]) -> str:
    """The CSV text: a header row of :data:`CSV_FIELDS`, then one row per record (money as decimal
    strings in dollars, empty cells for null, the residual as a JSON object)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in records:
        row = attrs.asdict(r, recurse=False)
        row["residual"] = dict(r.residual)
        row["pnl"] = r.pnl
        writer.writerow(_cell(row[name]) for name in CSV_FIELDS)
    return out.getvalue()


def write_group_csv(records: Iterable[GroupRecord], path: Path) -> Path:
    """Write :func:`group_csv` to ``path`` (its folders created); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(group_csv(records), encoding="utf-8")
    return path
