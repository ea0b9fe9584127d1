"""Reading a session's event log back: every bad line refused by number, field and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.report.log import read_log
from tests.report._logs import HEADER, RECORDS, write_log


def test_a_log_reads_back_whole(tmp_path: Path) -> None:
    log = read_log(write_log(tmp_path / "events.jsonl"))
    assert log.header == HEADER
    assert log.groups == RECORDS
    assert [e.kind for e in log.events["G000001"]] == ["received", "acknowledged", "fill"]  # deliveries skipped
    assert log.events["G000002"][-1].kind == "canceled"
    assert log.outages == ((150.0, 160.0),)
    assert log.report["chaos"]["duplicates"] == 3


def _with_line(path: Path, number: int, text: str) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _refused(path: Path) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        read_log(path)
    return caught.value


def test_a_bad_money_value_is_named_with_its_line(tmp_path: Path) -> None:
    path = write_log(tmp_path / "events.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    n = next(i for i, line in enumerate(lines, 1) if '"group": "G000002"' in line)
    bad = json.loads(lines[n - 1]) | {"unwind": "lots"}
    err = _refused(_with_line(path, n, json.dumps(bad)))
    assert (err.field, err.value) == (f"line {n}: unwind", "lots")


@pytest.mark.parametrize(("text", "field", "value"), [
    ("not json at all", "line 3", "not json at all"),
    ("[1, 2]", "line 3", "[1, 2]"),
    ('{"t": "1.0"}', "line 3: kind", None),
    ('{"kind": "fill", "t": "soon", "ref": "G000001-C"}', "line 3: t", "soon"),
    ('{"kind": "fill", "t": "-1", "ref": "G000001-C"}', "line 3: t", "-1"),
    ('{"kind": "fill", "t": "1.0"}', "line 3: ref", None),
    ('{"kind": "session", "version": 1}', "line 3: kind", "session"),
])
def test_a_bad_broker_line_is_refused(tmp_path: Path, text: str, field: str, value: object) -> None:
    err = _refused(_with_line(write_log(tmp_path / "events.jsonl"), 3, text))
    assert (err.field, err.value) == (field, value)


def test_broker_lines_it_does_not_draw_are_tolerated(tmp_path: Path) -> None:
    path = _with_line(write_log(tmp_path / "events.jsonl"), 3, '{"kind": "a_kind_from_later", "t": "5", "x": [1]}')
    assert len(read_log(path).groups) == len(RECORDS)


def test_a_log_without_its_header_is_not_a_session_log(tmp_path: Path) -> None:
    path = write_log(tmp_path / "events.jsonl")
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")
    err = _refused(path)
    assert err.field == "line 1: kind"
    assert "session header" in err.reason


def test_an_empty_or_binary_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert "empty" in _refused(empty).reason
    binary = tmp_path / "picture.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    err = _refused(binary)
    assert err.field == "line 1"
    assert "not UTF-8" in err.reason or "not JSON" in err.reason


def _group_line(path: Path) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if '"group": "G000002"' in line)


@pytest.mark.parametrize("money", ["1e999999999", "-1e999", "9" * 5000])
def test_money_beyond_any_session_is_refused_not_overflowed(tmp_path: Path, money: str) -> None:
    # "1e999999999" is a finite Decimal: adding it to a record's P&L raised decimal.Overflow.
    path = write_log(tmp_path / "events.jsonl")
    n = _group_line(path)
    bad = json.loads(path.read_text(encoding="utf-8").splitlines()[n - 1]) | {"unwind": money, "pnl": money}
    err = _refused(_with_line(path, n, json.dumps(bad)))
    assert err.field == f"line {n}: unwind"
    assert "below" in err.reason
    assert len(str(err)) < 300  # the value is quoted cut, not 5,000 digits long


def test_a_time_too_big_for_a_float_is_refused(tmp_path: Path) -> None:
    # Decimal("1e999") is finite, float("1e999") is inf: the page's JSON would hold Infinity and not parse.
    err = _refused(_with_line(write_log(tmp_path / "events.jsonl"), 3,
                              '{"kind": "fill", "t": "1e999", "ref": "G000001-C"}'))
    assert (err.field, err.value) == ("line 3: t", "1e999")


@pytest.mark.parametrize("text", ['{"kind": "fill", "t": "1", "quantity": ' + "9" * 5000 + "}",
                                  '{"kind": "x", "t": "1", "a": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_json_python_cannot_hold_is_refused_by_line(tmp_path: Path, text: str) -> None:
    # json.loads raises ValueError (an int over 4,300 digits) or RecursionError, not JSONDecodeError.
    err = _refused(_with_line(write_log(tmp_path / "events.jsonl"), 3, text))
    assert err.field == "line 3"
    assert "not an event log" in err.reason


def test_a_torn_last_line_is_dropped_a_torn_middle_line_is_not(tmp_path: Path) -> None:
    # A killed session's log ends mid-line: it was refused whole, while a log cut at a line's end read.
    path = write_log(tmp_path / "events.jsonl")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip("\n")[:-20], encoding="utf-8")  # the report line, torn
    log = read_log(path)
    assert (log.groups, log.report) == (RECORDS, {})
    path.write_text(text.rstrip("\n")[:-20] + "\n", encoding="utf-8")  # ended by its newline: not torn, damaged
    assert "not JSON" in _refused(path).reason
    lines = text.splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][:-20] + "\n" + "".join(lines[5:]), encoding="utf-8")
    assert _refused(path).field == "line 5"
    path.write_text(lines[0][:-20], encoding="utf-8")  # a torn header is no session log
    assert _refused(path).field == "line 1"
