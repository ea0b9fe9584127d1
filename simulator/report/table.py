"""The per-group CSV of a session: one row per group record, for people who open spreadsheets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

import attrs

from atomic_orders.simulator.report.files import write_whole
from atomic_orders.simulator.session.records import GroupRecord

__all__ = ["CSV_FIELDS", "TEXT_FIELDS", "group_csv", "write_group_csv"]

#: The header: :class:`GroupRecord`'s fields in their order, then ``pnl`` (entry + unwind - fees).
CSV_FIELDS: tuple[str, ...] = (*(f.name for f in attrs.fields(GroupRecord)), "pnl")
#: Free-text columns (a group id, broker text): a cell starting with one of :data:`_FORMULA` is
#: prefixed with ``'`` so a spreadsheet shows it instead of running it as a formula (OWASP's advice
#: on CSV injection). Money columns are numbers a spreadsheet should read, "-16.50" included.
TEXT_FIELDS = ("group", "reason_detail")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # the residual: {"OCC symbol": contracts}
        return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""
    return str(value)  # Decimal dollars keep their cents as written ("-16.50")


def _text(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA) else cell


def group_csv(records: Iterable[GroupRecord]) -> str:
    """The CSV text: a header row of :data:`CSV_FIELDS`, then one row per record (money as decimal
    strings in dollars, empty cells for null, the residual as a JSON object, a free-text cell that
    a spreadsheet would run as a formula prefixed with ``'``: see :data:`TEXT_FIELDS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in records:
        row = attrs.asdict(r, recurse=False)
        row["residual"] = dict(r.residual)
        row["pnl"] = r.pnl
        writer.writerow(_text(_cell(row[name])) if name in TEXT_FIELDS else _cell(row[name]) for name in CSV_FIELDS)
    return out.getvalue()


def write_group_csv(records: Iterable[GroupRecord], path: Path) -> Path:
    """Write :func:`group_csv` to ``path`` (its folders created; whole or not at all); return ``path``."""
    return write_whole(path, group_csv(records))
