"""The journal file: schema, write-ahead ordering, hash chain, corruption, salvage, no secrets."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.executor import AtomicOrderExecutor
from atomic_orders.fsm.journal import SCHEMA_VERSION, Journal, JournalCorrupted, check_no_secrets, read_journal, salvage
from atomic_orders.fsm.journal.codec import decode_event, decode_request, encode_event, encode_request
from atomic_orders.fsm.recovery import rebuild_group
from atomic_orders.simulator.broker.backend import SimulatedBackend
from atomic_orders.simulator.crash.harness import CrashSession, drive_plan
from atomic_orders.simulator.session.runner import SessionConfig, run_session


@pytest.fixture(scope="module")
def session_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journaled 60-condor rough session on the simulator."""
    path = tmp_path_factory.mktemp("journal") / "session.journal"
    report = run_session(SessionConfig(seed=5, groups=60, profile="rough"), journal_path=path, journal_sync="normal")
    assert report.ok
    return path


def test_schema_version_and_tables(session_journal: Path) -> None:
    db = sqlite3.connect(session_journal)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "sessions", "groups", "intents", "broker_events", "transitions", "finishes"} <= tables
    db.close()


def test_every_group_replays_to_its_journaled_end(session_journal: Path) -> None:
    contents = read_journal(session_journal)
    assert contents.problem is None and len(contents.groups) == 60
    for gid, info in contents.groups.items():
        group, mismatches = rebuild_group(info["definition"], contents.transitions[gid])
        assert mismatches == []
        assert contents.is_finished(gid)
        assert group.state == contents.finishes[gid][-1]["state"] == contents.last_state(gid)


def test_values_round_trip(session_journal: Path) -> None:
    contents = read_journal(session_journal)
    for intent in list(contents.intents.values())[:50]:
        request = decode_request(intent["request"])
        assert encode_request(request) == intent["request"]
    for row in contents.broker_events[:200]:
        assert encode_event(decode_event(row["event"])) == row["event"]


class _WitnessBackend(SimulatedBackend):
    """Checks, from a second connection, that the journal already holds what the executor acts on."""

    def __init__(self, broker: object, path: Path) -> None:
        super().__init__(broker)  # type: ignore[arg-type]
        self.path = path
        self.checked = 0

    def submit(self, request: object) -> None:
        db = sqlite3.connect(self.path)
        found = db.execute("SELECT request FROM intents WHERE order_ref = ?", (request.order_ref,)).fetchone()  # type: ignore[attr-defined]
        db.close()
        assert found is not None, f"{request.order_ref} left before its intent was committed"  # type: ignore[attr-defined]
        self.checked += 1
        super().submit(request)  # type: ignore[arg-type]


def test_intent_is_committed_before_the_request_leaves_and_events_before_they_act(tmp_path: Path) -> None:
    path = tmp_path / "wa.journal"
    session = CrashSession(seed=3, groups=6)
    broker = session.broker()
    backend = _WitnessBackend(broker, path)
    committed_events: list[int] = []

    def on_point(point: str) -> None:
        if point == "events_committed":  # the machines have not seen the batch yet
            db = sqlite3.connect(path)
            committed_events.append(db.execute("SELECT COUNT(*) FROM broker_events").fetchone()[0])
            db.close()

    journal = Journal(path, sync="normal", on_point=on_point)
    executor = AtomicOrderExecutor(backend, journal=journal)
    drive_plan(executor, broker.market, session.plan(), session.session_seconds, now=lambda: broker.clock.seconds,
               advance=broker.advance_to, next_event=broker.next_event_time)
    journal.close()
    assert backend.checked == executor.stats.orders_sent > 0
    assert committed_events and committed_events == sorted(committed_events)
    assert committed_events[-1] == len(read_journal(path).broker_events) == executor.stats.broker_events


def _copy(src: Path, dest: Path) -> Path:
    dest.write_bytes(src.read_bytes())
    return dest


def test_truncated_journal_is_detected_and_its_prefix_recovered(session_journal: Path, tmp_path: Path) -> None:
    whole = read_journal(session_journal)
    broken = _copy(session_journal, tmp_path / "cut.journal")
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(JournalCorrupted) as err:
        Journal(broken)
    assert str(broken) in str(err.value) and "corrupted" in str(err.value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 2000  # one readable line, not a page dump
    prefix = read_journal(broken, allow_prefix=True)
    assert prefix.problem is not None
    assert 0 < prefix.records < whole.records
    saved = salvage(broken, tmp_path / "saved.journal")
    assert saved.records == prefix.records
    reopened = Journal(tmp_path / "saved.journal")  # a salvaged journal verifies and accepts new records
    assert reopened.records == prefix.records
    reopened.close()


def test_a_changed_byte_is_detected_with_the_row_named(session_journal: Path, tmp_path: Path) -> None:
    broken = _copy(session_journal, tmp_path / "flip.journal")
    data = bytearray(broken.read_bytes())
    at = data.find(b'"fill_id":"SIM')  # inside a broker event's JSON: sqlite's structure stays intact
    assert at > 0
    data[at + 12] = ord("X") if data[at + 12] != ord("X") else ord("Y")
    broken.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupted) as err:
        read_journal(broken)
    assert "does not match its checksum" in err.value.problem
    assert str(broken) in str(err.value)
    prefix = read_journal(broken, allow_prefix=True)
    assert prefix.records == err.value.intact > 0


def test_not_a_journal(tmp_path: Path) -> None:
    junk = tmp_path / "junk.journal"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalCorrupted) as err:
        read_journal(junk)
    assert str(junk) in str(err.value)


def test_no_secrets_in_config() -> None:
    with pytest.raises(ValidationError) as err:
        check_no_secrets({"backend": "tastytrade", "auth": {"client_secret": "s3cr3t"}})
    assert err.value.field == "config.auth.client_secret"
    assert "s3cr3t" not in str(err.value)


def test_salvage_never_overwrites(session_journal: Path, tmp_path: Path) -> None:
    dest = tmp_path / "exists.journal"
    dest.write_text("x")
    with pytest.raises(ValidationError):
        salvage(session_journal, dest)


def test_journal_and_recovery_stay_in_the_core() -> None:
    """atomic_orders.fsm.journal and atomic_orders.fsm.recovery load no backend, no simulator, no HTTP client."""
    import json
    import subprocess
    import sys

    code = ("import sys, json; import atomic_orders.fsm.journal, atomic_orders.fsm.journal.recorder, "
            "atomic_orders.fsm.recovery, atomic_orders.fsm.executor; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    assert not loaded & {"backends", "simulator", "requests", "urllib3", "http"}


def test_an_interrupted_creation_starts_afresh(tmp_path: Path) -> None:
    """A file with no tables (the process died while creating the journal) is a new journal."""
    path = tmp_path / "new.journal"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchone()
    assert path.stat().st_size > 0
    journal = Journal(path)
    journal.start_session("start", {"seed": 1})
    journal.close()
    assert read_journal(path).records == 1


def _doc_queries() -> list[str]:
    """The statements of the ``sql`` block of docs/journal.md (what a reader pastes into ``sqlite3``)."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "journal.md").read_text(encoding="utf-8")
    block = re.search(r"```sql\n(.*?)```", text, re.S)
    assert block is not None
    body = "\n".join(line for line in block.group(1).splitlines() if not line.lstrip().startswith("--"))
    return [q.strip() for q in body.split(";") if q.strip()]


def test_the_documented_sql_queries_run_and_count_fills_right(session_journal: Path) -> None:
    queries = _doc_queries()
    assert len(queries) >= 8
    db = sqlite3.connect(session_journal)
    try:
        for query in queries:
            db.execute(query).fetchall()  # every documented query runs on a real journal
        filled = dict(db.execute(next(q for q in queries if "AS filled" in q)).fetchall())
    finally:
        db.close()
    # The per-order units must be the broker's (each fill id once), duplicate deliveries and all.
    contents = read_journal(session_journal)
    by_fill: dict[str, dict[str, int]] = {}
    for row in contents.broker_events:
        if row["kind"] == "fill":
            by_fill.setdefault(row["order_ref"], {})[row["event"]["fill_id"]] = row["event"]["quantity"]
    assert filled and filled == {ref: sum(f.values()) for ref, f in by_fill.items()}


def test_the_documented_sql_runs_in_the_sqlite3_shell(session_journal: Path) -> None:
    import shutil
    import subprocess

    shell = shutil.which("sqlite3")
    if shell is None:
        pytest.skip("the sqlite3 shell is not installed (the queries are checked through Python above)")
    script = ";\n".join(_doc_queries()) + ";\n"
    out = subprocess.run([shell, "-bail", "-readonly", str(session_journal)], input=script, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0 and "Error" not in out.stderr, out.stderr
    assert "schema_version|1" in out.stdout


def test_a_newer_schema_version_is_refused_not_guessed(session_journal: Path, tmp_path: Path) -> None:
    newer = _copy(session_journal, tmp_path / "newer.journal")
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    for opener in (lambda: Journal(newer), lambda: read_journal(newer, allow_prefix=True)):
        with pytest.raises(JournalCorrupted) as err:
            opener()
        assert f"schema_version {SCHEMA_VERSION + 1} is newer" in str(err.value) and str(newer) in str(err.value)


def test_a_second_writer_is_refused_until_the_first_closes_or_dies(tmp_path: Path) -> None:
    import subprocess
    import sys

    from atomic_orders.fsm.journal import JournalLocked

    path = tmp_path / "one.journal"
    first = Journal(path)
    with pytest.raises(JournalLocked) as err:
        Journal(path)
    assert str(path) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
    first.close()
    Journal(path).close()  # released by close
    # A writer killed outright (SIGKILL) leaves no stale lock behind: the kernel drops it.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from atomic_orders.fsm.journal import Journal; "
         "j = Journal(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(JournalLocked, match=f"pid {holder.pid}"):
            Journal(path)
    finally:
        holder.kill()
        holder.wait()
    Journal(path).close()
