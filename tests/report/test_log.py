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
