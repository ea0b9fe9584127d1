"""The per-group CSV: one row per group record, the record's fields as the header, exact money."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import attrs

from atomic_orders.simulator.report.table import CSV_FIELDS, group_csv
from atomic_orders.simulator.session.records import GroupRecord
from tests.report._logs import RECORDS, record


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_header_is_the_record_fields_then_pnl() -> None:
    assert (*(f.name for f in attrs.fields(GroupRecord)), "pnl") == CSV_FIELDS
    assert group_csv([]).splitlines() == [",".join(CSV_FIELDS)]


def test_one_row_per_group_with_money_as_decimal_strings() -> None:
    records = (*RECORDS, record(5, "committed", entry=Decimal("0.10"), fees=Decimal("4.32")))
    rows = _rows(group_csv(records))
    assert [r["group"] for r in rows] == [r.group for r in records]
    committed, rolled_back, failed, _, cheap = rows
    assert (committed["entry"], committed["pnl"], committed["fees"]) == ("1060.00", "1060.00", "")
    assert (rolled_back["unwind"], rolled_back["pnl"], rolled_back["reason"]) == ("-16.50", "-16.50", "timeout")
    assert json.loads(failed["residual"]) == {"SPXW  260112C05080000": -2}
    assert (cheap["entry"], cheap["fees"], cheap["pnl"]) == ("0.10", "4.32", "-4.22")
    assert committed["flagged"] == "false"
    assert committed["slippage"] == "10.00"


def test_free_text_a_spreadsheet_would_run_is_quoted_money_is_not() -> None:
    # Broker text reaches reason_detail; a cell starting with =, +, -, @ (or a tab or CR) is a formula
    # to a spreadsheet (OWASP: CSV injection), so it is prefixed with "'". A negative amount is a number.
    records = (record(1, "rolled_back", reason_detail='=HYPERLINK("https://example.com","x")'),
               record(2, "rolled_back", group="@SUM(A1)", reason_detail="-2+3"),
               record(3, "rolled_back", reason_detail="+1", unwind=Decimal("-16.50")))
    rows = _rows(group_csv(records))
    assert [r["reason_detail"] for r in rows] == ['\'=HYPERLINK("https://example.com","x")', "'-2+3", "'+1"]
    assert rows[1]["group"] == "'@SUM(A1)"
    assert (rows[0]["group"], rows[2]["unwind"], rows[2]["pnl"]) == ("G000001", "-16.50", "-16.50")
