"""A session's event log read back: its header, each group's record and its orders' events.

The log is JSON lines (``atomic-orders simulate --events PATH``, see
:mod:`atomic_orders.simulator.session.records`): a ``session`` header first, the broker's lines
(each with ``kind`` and ``t``, simulated seconds as a decimal string), one ``group`` line per group,
and the ``report`` last. Broker lines this reader does not draw (deliveries, kinds added later) are
checked for ``kind`` and ``t`` and otherwise skipped. A torn last line (no newline, not JSON) is
dropped: the log of a killed session still reads, without its report line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.simulator.session.records import GroupRecord, SessionHeader

__all__ = ["ORDER_KINDS", "OrderEvent", "SessionLog", "parse_lines", "read_log"]

#: Broker line kinds drawn on a group's timeline (each names its order by ``ref``).
ORDER_KINDS = ("received", "acknowledged", "fill", "replace_requested", "updated", "update_rejected",
               "cancel_requested", "canceled", "cancel_rejected", "rejected", "expired", "duplicate",
               "lost_in_outage", "silenced")
#: Keys of a broker line that are not its detail.
_NOT_DETAIL = frozenset({"kind", "t", "ref", "broker_id"})


@attrs.frozen
class OrderEvent:
    """One broker line about one order: ``t`` simulated seconds, ``ref`` the order's reference
    (``G000001-C`` combo, ``-L0``.. legs, ``-U1``.. unwinds), ``detail`` a short text for a tooltip
    (plain text, lines split by ``\n``: it may hold broker text, which the page escapes)."""

    t: float
    kind: str
    ref: str
    detail: str


@attrs.frozen
class SessionLog:
    """A whole event log: ``events`` maps a group id to its orders' events in log order;
    ``outages`` are (start, end) seconds; ``report`` is the last line's report (empty when the
    session did not finish writing one)."""

    header: SessionHeader
    groups: tuple[GroupRecord, ...]
    events: Mapping[str, tuple[OrderEvent, ...]]
    outages: tuple[tuple[float, float], ...]
    report: Mapping[str, Any]


def read_log(path: Path) -> SessionLog:
    """Read the event log at ``path``.

    Raises ``ValidationError`` whose field is ``line N`` (1-based) or ``line N: FIELD`` for a line
    that is not UTF-8, not a JSON object, or holds a bad value; ``OSError`` when it cannot be read.
    """
    with path.open("rb") as fh:
        return parse_lines(fh)


def _detail(line: Mapping[str, Any]) -> str:
    kind = line["kind"]
    if kind == "received":
        legs = line.get("legs") or []
        head = f"{line.get('type', '')} order x{line.get('quantity', '')} @ {line.get('limit', 'market')}" \
               f" ({line.get('tif', '')})"
        return head + "".join(f"\n{leg}" for leg in legs if isinstance(leg, str))
    if kind == "fill":
        return f"{line.get('quantity')} @ {line.get('price')} ({line.get('filled')}/{line.get('of')})"
    parts = [f"{k} {v}" for k, v in sorted(line.items()) if k not in _NOT_DETAIL and v not in (None, False)]
    return ", ".join(parts)


def _seconds(value: Any, field: str) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValidationError(field, value, "expected simulated seconds as a decimal string")
    try:
        seconds = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(field, value, "not a decimal number") from None
    # "1e999" is a finite Decimal but an infinite float, which the page's JSON cannot hold.
    if not seconds.is_finite() or seconds < 0 or not math.isfinite(float(seconds)):
        raise ValidationError(field, value, "expected simulated seconds >= 0")
    return float(seconds)


def _line(raw: bytes, n: int) -> Mapping[str, Any]:
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValidationError(f"line {n}", raw[:40], "not UTF-8 text: not an event log") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValidationError(f"line {n}", text[:80], f"not JSON ({err.msg}): not an event log") from None
    except (ValueError, RecursionError) as err:  # an int of over 4,300 digits; arrays nested too deep
        raise ValidationError(f"line {n}", text[:80], f"not an event log's JSON ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ValidationError(f"line {n}", text[:80], "expected a JSON object")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValidationError(f"line {n}: kind", kind, "expected a non-empty string")
    return data


def _short(value: Any) -> Any:
    """``value`` as quoted in an error: a long string cut to its first 80 characters (one line)."""
    return value[:80] + "..." if isinstance(value, str) and len(value) > 80 else value


def parse_lines(lines: Iterable[bytes]) -> SessionLog:
    """The log from its lines (bytes, as read from the file); see :func:`read_log` for the errors."""
    header: SessionHeader | None = None
    groups: list[GroupRecord] = []
    events: dict[str, list[OrderEvent]] = {}
    outages: list[tuple[float, float]] = []
    report: Mapping[str, Any] = {}
    n = 0
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            data = _line(raw, n)
        except ValidationError:
            # A last line without its newline is one cut mid-write (a killed session, a copy cut
            # short): drop it as the sweep's results file does; the page says the log is incomplete.
            if header is not None and not raw.endswith(b"\n"):
                break
            raise
        kind = data["kind"]
        try:
            if header is None:
                if kind != "session":
                    raise ValidationError("kind", kind, "expected the session header first (a log written by "
                                                        "atomic-orders simulate --events)")
                header = SessionHeader.from_json(data)
            elif kind == "group":
                groups.append(GroupRecord.from_json(data))
            elif kind == "report":
                report = data
            elif kind == "session":
                raise ValidationError("kind", kind, "a second session header")
            else:
                t = _seconds(data.get("t"), "t")
                if kind in ORDER_KINDS:
                    ref = data.get("ref")
                    if not isinstance(ref, str) or not ref:
                        raise ValidationError("ref", ref, "expected the order's reference")
                    events.setdefault(ref.split("-", 1)[0], []).append(OrderEvent(t, kind, ref, _detail(data)))
                elif kind == "outage_start":
                    outages.append((t, _seconds(data.get("until"), "until")))
        except ValidationError as err:
            field = err.field if err.field.startswith("line ") else f"line {n}: {err.field}"
            raise ValidationError(field, _short(err.value), err.reason) from None
    if header is None:
        raise ValidationError(f"line {n + 1}", "", "no session header: the file is empty")
    return SessionLog(header=header, groups=tuple(groups), events={g: tuple(e) for g, e in events.items()},
                      outages=tuple(outages), report=report)
