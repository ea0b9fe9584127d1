"""The journal file's guards: one writer per database file, seq reuse, damaged files, secret check."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_orders.fsm.errors import ValidationError
from atomic_orders.fsm.journal import Journal, JournalCorrupted, JournalLocked, check_no_secrets, read_journal, salvage

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the single-writer lock is POSIX only")


def _journal(path: Path, sessions: int = 3) -> Path:
    """A small closed journal with ``sessions`` session rows (seq 1..sessions)."""
    journal = Journal(path)
    for i in range(sessions):
        journal.start_session("start", {"seed": i})
    journal.close()
    return path


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process with ``held.journal`` open for writing (killed at teardown)."""
    path = _journal(tmp_path / "held.journal")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from atomic_orders.fsm.journal import Journal; "
         "j = Journal(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        yield path, proc
    finally:
        proc.kill()
        proc.wait()


# -- one writer per database file ----------------------------------------------------------------


@posix_only
def test_every_path_to_the_file_meets_the_other_processes_lock(
        holder: tuple[Path, subprocess.Popen[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, proc = holder
    link = tmp_path / "sym.journal"
    link.symlink_to(path)
    hard = tmp_path / "hard.journal"
    os.link(path, hard)
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    relative = Path("..") / path.name
    # A side lock file, deleted or not, plays no part: there is none to delete.
    assert not (tmp_path / "held.journal.lock").exists()
    for other in (path, link, hard, relative, Path(os.path.relpath(link))):
        with pytest.raises(JournalLocked) as err:
            Journal(other)
        assert f"pid {proc.pid}" in str(err.value) and str(other) in str(err.value)
    proc.kill()
    proc.wait()
    Journal(link).close()  # the kernel dropped the dead holder's lock


@posix_only
def test_every_path_to_the_file_meets_this_processes_lock(tmp_path: Path) -> None:
    path = _journal(tmp_path / "mine.journal")
    link = tmp_path / "link.journal"
    link.symlink_to(path)
    hard = tmp_path / "hard.journal"
    os.link(path, hard)
    first = Journal(hard)
    for other in (path, link, hard):
        with pytest.raises(JournalLocked, match=f"pid {os.getpid()}"):
            Journal(other)
    first.close()
    second = Journal(link)  # released by close, whatever name took it
    assert second.records == 3
    second.close()


def _posix_locks(pid: int, path: Path) -> list[str]:
    st = os.stat(path)
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks", encoding="ascii") as locks:
        return [ln for ln in locks if " POSIX " in ln and f" {pid} {ident} " in ln]


def _descriptors_of(path: Path) -> int:
    st = os.stat(path)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            other = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        count += (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
    return count


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_a_refused_writer_leaves_sqlites_own_locks_alone(tmp_path: Path) -> None:
    """POSIX drops all of a process's fcntl locks on a file when it closes ANY descriptor of it.

    The first writer's SQLite connection holds such a lock (WAL mode keeps a SHARED lock while
    open); a refused second writer in the same process must not strip it by closing a descriptor.
    """
    path = _journal(tmp_path / "j.journal")
    first = Journal(path)
    before = _posix_locks(os.getpid(), path)
    assert before, "a WAL connection holds a POSIX lock on the database file"
    for _ in range(3):
        with pytest.raises(JournalLocked):
            Journal(path)
    read_journal(path)  # a reader in the same process reads the header: same rule
    assert _posix_locks(os.getpid(), path) == before
    first.close()
    assert _descriptors_of(path) == 0, "closing the journal leaves no descriptor behind"


# -- a seq used twice, or out of range -----------------------------------------------------------


def _mixed_journal(path: Path) -> Path:
    """seq 1: a session; seq 2 and 3: finish records (a table read after sessions)."""
    import datetime as dt

    journal = Journal(path)
    journal.start_session("start", {"seed": 1})
    now = dt.datetime(2026, 1, 12, 15, 0, tzinfo=dt.UTC)
    journal.finish("G000001", now, "committed", {"fills": 4})
    journal.finish("G000002", now, "rolled_back", {"fills": 0})
    journal.close()
    return path


def _forge(path: Path, table: str, seq: int) -> None:
    """Add a row numbered ``seq`` to ``table`` (plausible content, a made-up chain)."""
    db = sqlite3.connect(path)
    if table == "sessions":
        db.execute("INSERT INTO sessions VALUES (?, 'forged', 'start', '2026-01-12T15:00:00+00:00', '{}', ?)",
                   (seq, "0" * 32))
    else:
        db.execute("INSERT INTO finishes VALUES (?, 'G000009', '2026-01-12T15:00:00+00:00', 'committed', '{}', ?)",
                   (seq, "0" * 32))
    db.commit()
    db.close()


@pytest.mark.parametrize(("table", "order"), [("sessions", "sessions and finishes"),
                                              ("finishes", "finishes and sessions")])
def test_a_seq_used_twice_is_refused_with_the_seq_named(tmp_path: Path, table: str, order: str) -> None:
    path = _mixed_journal(tmp_path / "dup.journal")
    assert read_journal(path).records == 3
    # sessions: the forged row is in a table read BEFORE the real one's (this verified as fine, the
    # forged row silently dropped); finishes holds seq 1's twin, read after the real session row.
    seq = 3 if table == "sessions" else 1
    _forge(path, table, seq)
    for opener in (lambda: read_journal(path), lambda: Journal(path)):
        with pytest.raises(JournalCorrupted) as err:
            opener()
        assert f"record seq {seq} is used twice" in str(err.value) and str(path) in str(err.value)
    prefix = read_journal(path, allow_prefix=True)
    assert prefix.records == seq - 1 and prefix.problem is not None and f"seq {seq}" in prefix.problem
    saved = salvage(path, tmp_path / "saved.journal")
    assert saved.records == seq - 1 and read_journal(tmp_path / "saved.journal").records == seq - 1


def test_a_seq_below_one_is_refused(tmp_path: Path) -> None:
    path = _journal(tmp_path / "zero.journal", sessions=2)
    _forge(path, "finishes", 0)
    with pytest.raises(JournalCorrupted) as err:
        read_journal(path)
    assert "record seq 0 in table finishes is not a sequence number" in str(err.value)


# -- damaged files are refused, never re-initialised ---------------------------------------------


def _cut(data: bytes, size: int) -> bytes:
    return data[:size]


@pytest.mark.parametrize(("name", "make"), [
    ("one byte", lambda real: _cut(real, 1)),
    ("half a header", lambda real: _cut(real, 50)),
    ("header only", lambda real: _cut(real, 100)),
    ("half the first page", lambda real: _cut(real, 2048)),
    ("first page zeroed", lambda real: bytes(4096) + real[4096:]),
    ("not sqlite", lambda real: b"hello, this is a text file\n" * 200),
    ("one byte of text", lambda real: b"x"),
])
def test_a_damaged_file_is_refused_and_left_as_it_was(tmp_path: Path, name: str, make: Any) -> None:
    real = _journal(tmp_path / "real.journal", sessions=5).read_bytes()
    path = tmp_path / "damaged.journal"
    path.write_bytes(make(real))
    before = path.read_bytes()
    with pytest.raises(JournalCorrupted) as opened:
        Journal(path)
    with pytest.raises(JournalCorrupted) as read:
        read_journal(path)
    for err in (opened.value, read.value):
        assert str(path) in str(err) and "corrupted" in str(err) and err.problem
    assert path.read_bytes() == before, f"{name}: the file must not be touched"
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('keep me')")
    db.commit()
    db.close()
    with pytest.raises(JournalCorrupted, match="no readable meta table"):
        Journal(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'meta'").fetchone()[0] == 0
    db.close()


@pytest.mark.parametrize("start", ["missing", "empty"])
def test_only_a_missing_or_empty_file_becomes_a_new_journal(tmp_path: Path, start: str) -> None:
    path = tmp_path / "new.journal"
    if start == "empty":
        path.write_bytes(b"")
    journal = Journal(path)
    journal.start_session("start", {"seed": 1})
    journal.close()
    assert read_journal(path).records == 1


def test_read_journal_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.journal"
    path.write_bytes(b"")
    with pytest.raises(JournalCorrupted, match="0 bytes"):
        read_journal(path)


# -- the secret check ------------------------------------------------------------------------------

SECRET = "s3cr3t-VALUE-0123456789"


@pytest.mark.parametrize(("config", "field"), [
    ({"api-key": SECRET}, "config.api-key"),
    ({"X-Api-Key": SECRET}, "config.X-Api-Key"),
    ({"client_secret": SECRET}, "config.client_secret"),
    ({"Refresh-Token": SECRET}, "config.Refresh-Token"),
    ({"refresh token": SECRET}, "config.refresh token"),
    ({"bearer": SECRET}, "config.bearer"),
    ({"private_key": SECRET}, "config.private_key"),
    ({"session-token": SECRET}, "config.session-token"),
    ({"Cookie": SECRET}, "config.Cookie"),
    ({"PASSWORD": SECRET}, "config.PASSWORD"),
    ({"auth": SECRET}, "config.auth"),
    ({"broker": {"accounts": [{"id": 1}, {"id": 2, "creds": [{"user": "u", "apiKey": SECRET}]}]}},
     "config.broker.accounts[1].creds[0].apiKey"),
    ({"a": [[{"b": ({"token": SECRET},)}]]}, "config.a[0][0].b[0].token"),
    ({"credentials": {"user": "someone"}}, "config.credentials"),
    ({"headers": {"Accept": "application/json", "X": f"Bearer {SECRET}"}}, "config.headers.X"),
    ({"headers": ["Accept: application/json", f"Authorization: {SECRET}"]}, "config.headers[1]"),
    ({"note": f"sent with authorization: token {SECRET}"}, "config.note"),
    ({"basic": "Basic dXNlcjpodW50ZXIy"}, "config.basic"),
    ({"url": "https://someone:pa55w0rd@api.example.com/"}, "config.url"),
    ({"urls": ["https://api.example.com/", f"https://{SECRET}@github.com/x.git"]}, "config.urls[1]"),
    ({"text": "see https://u:hunter22@example.com/path for details"}, "config.text"),
])
def test_the_secret_check_finds_credentials_at_any_depth(config: dict[str, Any], field: str,
                                                        tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        check_no_secrets(config)
    assert err.value.field == field
    shown = str(err.value) + repr(err.value) + repr(err.value.value) + repr(err.value.args)
    for leaked in (SECRET, "hunter2", "dXNlcjpodW50ZXIy", "pa55w0rd", "someone"):
        assert leaked not in shown
    journal = Journal(tmp_path / "s.journal")
    with pytest.raises(ValidationError):
        journal.start_session("start", config)
    assert journal.records == 0 and journal.pending == 0
    journal.close()


def test_ordinary_configuration_passes_the_secret_check(tmp_path: Path) -> None:
    config = {"seed": 7, "groups": 200, "profile": "rough", "session_seconds": 23400.0, "records": 12,
              "backend": "tastytrade-emulator", "url": "https://api.cert.tastyworks.com/accounts?x=a@b",
              "contact": "ops@example.com", "notes": ["token bucket of 5 per second", "basic strategies",
                                                       {"max_quantity": 3, "keys": ["G000001"]}]}
    check_no_secrets(config)
    journal = Journal(tmp_path / "ok.journal")
    journal.start_session("start", config)
    journal.close()
    assert read_journal(tmp_path / "ok.journal").sessions[0]["config"] == config


def test_a_journal_read_while_a_session_writes_it_is_one_consistent_snapshot(tmp_path: Path) -> None:
    """A reader takes no lock (docs/journal.md), so it must not see a writer's commits halfway:
    records missing between two tables' reads looked like corruption, and salvage cut a healthy file."""
    import time

    path = tmp_path / "live.journal"
    writer = subprocess.Popen(
        [sys.executable, "-m", "atomic_orders.simulator.cli", "simulate", "--groups", "100000", "--quiet",
         "--journal", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Ready once the writer has created its tables (a file that exists may still be empty: on a
        # loaded machine the first read came before the schema). Bounded; torn reads count after it.
        deadline, ready = time.monotonic() + 60, False
        while not ready and time.monotonic() < deadline and writer.poll() is None:
            try:
                ready = read_journal(path, integrity=False).records > 0
            except (FileNotFoundError, JournalCorrupted):
                time.sleep(0.05)
        assert ready, "the writer never wrote a first record"
        reads, grew = 0, set()
        stop = time.monotonic() + 4
        while time.monotonic() < stop and writer.poll() is None:
            contents = read_journal(path, integrity=False)  # raises JournalCorrupted on a torn read
            grew.add(contents.records)
            reads += 1
        assert writer.poll() is None, "the writer ended before the reads were done"
        assert reads >= 3 and len(grew) >= 2, (reads, sorted(grew))  # it really read a journal being written
    finally:
        writer.kill()
        writer.wait(timeout=30)
