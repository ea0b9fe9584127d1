"""The session report's data: why groups did not commit, what they cost, which were worst, and
the event log's session/group/report lines (the contract the HTML and CSV reports read)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest

from atomic_orders.fsm.group import ExecutionMode
from atomic_orders.simulator.session.records import REASONS, GroupRecord, SessionHeader
from atomic_orders.simulator.session.runner import SessionConfig, SessionReport, format_report, run_session

#: A legged hostile session small enough to run in a few seconds, with unwinds, every kind of
#: ended-short leg, and (seed 10) three groups with late or over-fills.
LEGGED = SessionConfig(seed=10, groups=40, profile="hostile", mode=ExecutionMode.LEGGED, records=True)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> tuple[SessionReport, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("log") / "events.jsonl"
    report = run_session(LEGGED, events_path=path)
    return report, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_reasons_counted_match_the_groups(logged: tuple[SessionReport, list[dict[str, Any]]]) -> None:
    report, _ = logged
    recs = report.records
    assert [r.group for r in recs] == [f"G{n:06d}" for n in range(1, LEGGED.groups + 1)]
    not_committed = report.outcomes["rolled_back"] + report.outcomes["failed"] + report.outcomes["invalid"]
    assert not_committed > 0
    assert sum(report.rollback_reasons.values()) == not_committed
    assert report.rollback_reasons == dict(Counter(r.reason for r in recs if r.reason is not None))
    assert set(report.rollback_reasons) <= set(REASONS) and "other" not in report.rollback_reasons
    for r in recs:
        assert (r.reason is None) == (r.outcome == "committed"), r
        assert r.reason_detail or r.reason is None
    # legged hostile chaos rolls back for more than one reason, each named by its category
    assert len(report.rollback_reasons) >= 2


def _cash_from_broker_log(lines: list[dict[str, Any]]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per group, (entry, unwind) dollars recomputed from the broker's own lines: each order's legs
    (``received``) and its fills, price x quantity x 100, paid on a buy or a combo debit."""
    sides: dict[str, str] = {}
    cash: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in lines:
        if line["kind"] == "received":
            legs = line["legs"]
            sides[line["ref"]] = "combo" if len(legs) > 1 else legs[0].split()[0]
        elif line["kind"] == "fill":
            ref = line["ref"]
            gross = Decimal(line["price"]) * line["quantity"] * 100
            paid = gross if sides[ref] in ("combo", "buy") else -gross
            group, _, kind = ref.rpartition("-")
            cash[group][1 if kind.startswith("U") else 0] -= paid
    return {g: (e, u) for g, (e, u) in cash.items()}


def test_pnl_is_the_groups_own_fills_in_dollars(logged: tuple[SessionReport, list[dict[str, Any]]]) -> None:
    report, lines = logged
    by_broker = _cash_from_broker_log(lines)
    assert by_broker, "the session filled something"
    for r in report.records:
        assert (r.entry, r.unwind) == by_broker.get(r.group, (Decimal(0), Decimal(0))), r.group
        assert r.pnl == r.entry + r.unwind  # no fees reported by the simulator
        assert r.fees is None
    entries = [r.entry for r in report.records]
    pnl = report.pnl
    assert pnl["entry_credits"] == sum(e for e in entries if e > 0)
    assert pnl["entry_debits"] == sum(e for e in entries if e < 0)
    assert pnl["unwind"] == sum(r.unwind for r in report.records)
    assert pnl["fees"] is None
    assert pnl["total"] == sum(r.pnl for r in report.records)
    assert report.slippage_dollars == sum(r.slippage for r in report.records if r.slippage is not None)
    # legged: every long bought first is a debit; a rolled-back group sells it back
    assert pnl["entry_debits"] < 0 and any(r.unwind > 0 for r in report.records)


def test_one_group_by_hand() -> None:
    """Seed 3, one calm combo condor of 4 units, limit -5.15 (a credit): the broker's one fill line
    is 4 @ -4.90 per unit, so 4 x 4.90 x 100 = 1,960.00 dollars received; the mid at submission
    was -5.15, so it took 0.25 per unit less than mid: 4 x 0.25 x 100 = 100.00 of slippage."""
    report = run_session(SessionConfig(seed=3, groups=1, profile="calm", records=True))
    (rec,) = report.records
    assert (rec.outcome, rec.quantity, rec.fills) == ("committed", 4, 1)
    assert rec.entry == Decimal("1960.00")
    assert rec.unwind == 0 and rec.unwind_orders == 0 and rec.pnl == Decimal("1960.00")
    assert rec.slippage == Decimal("100.00") == report.slippage_dollars
    assert report.pnl == {"entry_credits": Decimal("1960.00"), "entry_debits": 0, "entry": Decimal("1960.00"),
                          "unwind": 0, "fees": None, "total": Decimal("1960.00")}


def test_anomalies_are_counted_one_way(logged: tuple[SessionReport, list[dict[str, Any]]]) -> None:
    report, _ = logged
    recs = report.records
    assert report.anomalies == sum(r.anomalies for r in recs)
    assert report.anomaly_groups == sum(1 for r in recs if r.anomalies)
    assert report.flagged_groups == sum(1 for r in recs if r.flagged)
    # every over- or late-filled group has anomaly events: the old line printed "0 flagged (3 groups ...)"
    assert all(r.anomalies for r in recs if r.flagged)
    assert report.anomaly_groups >= report.flagged_groups == 3
    line = next(x for x in format_report(report).splitlines() if "anomaly events" in x)
    assert f"{report.anomalies}   in {report.anomaly_groups} groups ({report.flagged_groups} of them" in line


def test_worst_groups_are_named(logged: tuple[SessionReport, list[dict[str, Any]]]) -> None:
    report, _ = logged
    worst = report.worst_groups
    settles = sorted((r for r in report.records if r.settle_seconds is not None),
                     key=lambda r: (-(r.settle_seconds or 0.0), r.group))
    assert [w["group"] for w in worst["longest_settle"]] == [r.group for r in settles[:3]]
    costs = sorted((r for r in report.records if r.unwind_orders and r.pnl < 0), key=lambda r: (r.pnl, r.group))
    assert costs, "a legged hostile session pays to unwind"
    assert [(w["group"], Decimal(w["cost"])) for w in worst["largest_unwind_cost"]] == [
        (r.group, r.pnl) for r in costs[:3]]
    assert worst["failed"] == [{"group": r.group, "residual": dict(r.residual), "reason": r.reason,
                                "detail": w["detail"]}
                               for r, w in zip([r for r in report.records if r.outcome == "failed"],
                                               worst["failed"], strict=True)]
    text = format_report(report)
    assert f"longest settle       {settles[0].group}" in text
    assert f"largest unwind cost  {costs[0].group} {costs[0].pnl:,.2f}" in text


def test_event_log_lines_follow_the_contract(logged: tuple[SessionReport, list[dict[str, Any]]]) -> None:
    report, lines = logged
    header = SessionHeader.from_json(lines[0])
    assert (header.seed, header.mode, header.groups, header.backend) == (10, "legged", 40, "simulated")
    groups = [GroupRecord.from_json(x) for x in lines if x["kind"] == "group"]
    assert groups == report.records
    kinds = [x["kind"] for x in lines]
    first_group = kinds.index("group")
    assert all(k == "group" for k in kinds[first_group:-1]) and kinds[-1] == "report"
    assert "session" not in kinds[1:] and "report" not in kinds[:-1]
    last = lines[-1]
    assert "wall_seconds" not in last  # the same seed writes the same bytes
    assert last["rollback_reasons"] == report.rollback_reasons
    assert last["pnl"]["total"] == str(report.pnl["total"]) and last["pnl"]["fees"] is None
    assert last["http_faults"] == {} and set(last["worst_groups"]) == {"longest_settle", "largest_unwind_cost",
                                                                       "failed"}


def test_records_are_kept_only_when_asked() -> None:
    cfg = SessionConfig(seed=2, groups=10, profile="rough")
    assert run_session(cfg).records == []
    report = run_session(SessionConfig(seed=2, groups=10, profile="rough", records=True))
    assert len(report.records) == 10
    assert report.pnl["total"] == sum(r.pnl for r in report.records)


def test_text_report_shows_reasons_money_and_worst_groups(
        logged: tuple[SessionReport, list[dict[str, Any]]]) -> None:
    report, _ = logged
    text = format_report(report)
    for reason, n in report.rollback_reasons.items():
        assert any(x.split() == [reason, str(n), *x.split()[2:]] and x.startswith("    ") for x in text.splitlines())
    for label in ("entry credits", "entry debits", "unwinds", "total"):
        assert any(x.strip().startswith(label) for x in text.splitlines()), label
    assert "fees             not reported" in text
    assert f"{report.pnl['total']:,.2f}" in text


def test_http_faults_are_counted_with_the_emulator() -> None:
    # a short day: the client polls the emulator all session long, and HTTP takes wall-clock time
    report = run_session(SessionConfig(seed=3, groups=2, profile="calm", backend="tastytrade-emulator",
                                       http_faults="heavy", session_seconds=1200.0))
    assert report.http_faults and all(n > 0 for n in report.http_faults.values())
    assert report.to_json()["http_faults"] == report.http_faults
    line = next(x for x in format_report(report).splitlines() if x.startswith("  http faults injected"))
    assert all(f"{k}={v}" in line for k, v in report.http_faults.items()) and "heavy" in line
    assert run_session(SessionConfig(seed=3, groups=2, profile="calm", session_seconds=1200.0)).http_faults == {}


def test_a_failed_group_is_named_with_its_residual_and_why() -> None:
    """Hostile sessions of this size rarely fail a group, so one is scripted: the long call of a
    legged condor fills (2 @ 1.55, a debit of 310.00 dollars), the long put is rejected, and both
    unwinds of the long call are rejected."""
    from atomic_orders.fsm.events import Rejected
    from atomic_orders.fsm.execution_policy import ExecutionPolicy
    from atomic_orders.fsm.executor import GroupSummary
    from atomic_orders.fsm.group import AtomicOrderGroup
    from atomic_orders.fsm.orders import Purpose
    from atomic_orders.simulator.session import runner
    from atomic_orders.simulator.session.accounting import group_record
    from tests.executor.test_executor import CONDOR_ROLES, LC, make, pump

    backend, ex = make(ExecutionPolicy(max_unwind_retries=1, unwind_retry_delay=1.0))
    done: list[tuple[AtomicOrderGroup, GroupSummary]] = []
    ex.on_finished = lambda g, s: done.append((g, s))
    ex.execute_iron_condor(**CONDOR_ROLES, quantity=2, mode=ExecutionMode.LEGGED)
    lc, lp = backend.submitted
    backend.fill_all(lc.order_ref, price=Decimal("1.55"))
    backend.push(lp.order_ref, Rejected(backend.now(), "insufficient buying power"))
    pump(backend, ex)
    for _ in range(2):
        unwinds = [r for r in backend.submitted if r.purpose is Purpose.UNWIND]
        backend.push(unwinds[-1].order_ref, Rejected(backend.now(), "halted"))
        pump(backend, ex)
        pump(backend, ex, 5.0)
    (group, summary), = done
    rec = group_record(group, summary, submitted_at=0.0, settled_at=12.0)
    assert (rec.outcome, rec.reason) == ("failed", "unwind_exhausted")
    assert rec.reason_detail is not None and "leg ended short" in rec.reason_detail
    assert rec.residual == {LC.occ: 2}
    assert (rec.entry, rec.unwind, rec.pnl) == (Decimal("-310.00"), 0, Decimal("-310.00"))
    assert GroupRecord.from_json(rec.to_json()) == rec

    tally = runner._Tally()
    tally.add(rec, summary)
    tally.fold_all()
    worst = runner._worst_groups(tally)
    assert worst["failed"] == [{"group": rec.group, "residual": {LC.occ: 2}, "reason": "unwind_exhausted",
                                "detail": group.rollback_reason}]
    assert worst["largest_unwind_cost"] == [{"group": rec.group, "cost": "-310.00", "entry": "-310.00",
                                             "unwind": "0.00"}]


def test_longest_settle_names_only_groups_that_took_time() -> None:
    # Over the TastyTrade emulator a combo fills at once: the text said "longest settle G000001 0 s,
    # G000002 0 s, G000003 0 s" while the page (rightly) listed none.
    from atomic_orders.simulator.session.runner import _Tally, _worst_groups

    def tally_of(finishes: list[tuple[str, float]]) -> _Tally:
        tally = _Tally()
        for gid, settle in finishes:
            tally.add(*_committed(gid, settle))
        tally.fold_all()
        return tally

    finishes = [("G000001", 0.0), ("G000002", 0.0), ("G000003", 2.5), ("G000004", 0.0)]
    assert _worst_groups(tally_of(finishes))["longest_settle"] == [{"group": "G000003", "settle_seconds": 2.5}]
    # G000003 re-opened and finished again before it was released: its second finish is the one kept
    assert _worst_groups(tally_of([*finishes, ("G000003", 0.0)]))["longest_settle"] == []


def _committed(gid: str, settle: float) -> tuple[GroupRecord, Any]:
    """The record and summary of a committed one-lot condor that settled in ``settle`` seconds."""
    from atomic_orders.fsm.executor import GroupSummary

    summary = GroupSummary(group_id=gid, strategy="iron_condor", mode="combo", quantity=1, state="committed",
                           rollback_reason=None, fills=1, unwind_orders=0, residual_exposure={},
                           settle_seconds=settle, slippage_per_unit=None, anomalies=0, alerts=(), violations=(),
                           flagged=False)
    rec = GroupRecord(group=gid, strategy="iron_condor", mode="combo", quantity=1, outcome="committed", reason=None,
                      reason_detail=None, submitted_at=0.0, settled_at=settle, settle_seconds=settle,
                      entry=Decimal("100.00"), unwind=Decimal(0), fees=None, slippage=None, fills=1, orders=1,
                      unwind_orders=0, residual={}, flagged=False, anomalies=0, alerts=0)
    return rec, summary
