"""The journal file: SQLite (standard library), WAL mode, a versioned schema, a hash chain over rows.

Write-ahead discipline (enforced by the executor's hooks, see ``docs/journal.md``):

* an order intent (its external identifier and the full request) is COMMITTED before the request
  leaves for the broker;
* broker events are COMMITTED before the machines act on them;
* group transitions (the audit trail, which replays deterministically) are staged as they happen
  and committed in batches at decision points (the next intent, the end of an event batch or a
  timer round), so the journal costs one commit per decision, not one per row.

Every row of every record table carries ``seq`` (one sequence across all tables, the order in
which rows were written) and ``chain``: a SHA-256 over the previous row's chain and this row's
content. A row changed on disk, a row missing, a ``seq`` used twice, a file cut short or one that
is not a journal is detected on open (:class:`JournalCorrupted` names the file and what is
wrong; a damaged file is never re-initialised as a new journal); the intact prefix of the chain
can still be read (:func:`read_journal` with ``allow_prefix``) and copied out (:func:`salvage`).
One process writes a database file at a time, whatever path reaches it (:mod:`.lock`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from atomic_orders.fsm.errors import AtomicOrdersError, ValidationError
from atomic_orders.fsm.group import TERMINAL_STATES
from atomic_orders.fsm.journal.codec import dumps, loads
from atomic_orders.fsm.journal.lock import LockHeld, WriterLock, acquire_writer, read_start

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalContents",
    "JournalCorrupted",
    "JournalLocked",
    "read_journal",
    "salvage",
]

#: Version of the schema below; a journal written by a newer version is refused, not guessed at.
SCHEMA_VERSION = 1

#: Record tables, their columns (after ``seq``, before ``chain``), in schema order.
TABLES: dict[str, tuple[str, ...]] = {
    "sessions": ("session_id", "kind", "started_at", "config"),
    "groups": ("group_id", "session_id", "created_at", "strategy", "mode", "quantity", "definition", "policy"),
    "intents": ("order_ref", "group_id", "purpose", "time", "request"),
    "broker_events": ("order_ref", "group_id", "kind", "time", "event"),
    "transitions": ("group_id", "n", "time", "source", "trigger", "dest", "order_ref", "record"),
    "finishes": ("group_id", "time", "state", "summary"),
}

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY, session_id TEXT NOT NULL, kind TEXT NOT NULL, started_at TEXT NOT NULL,
    config TEXT NOT NULL, chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    seq INTEGER PRIMARY KEY, group_id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL, created_at TEXT NOT NULL,
    strategy TEXT NOT NULL, mode TEXT NOT NULL, quantity INTEGER NOT NULL, definition TEXT NOT NULL,
    policy TEXT NOT NULL, chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
    seq INTEGER PRIMARY KEY, order_ref TEXT NOT NULL UNIQUE, group_id TEXT NOT NULL, purpose TEXT NOT NULL,
    time TEXT NOT NULL, request TEXT NOT NULL, chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS broker_events (
    seq INTEGER PRIMARY KEY, order_ref TEXT NOT NULL, group_id TEXT, kind TEXT NOT NULL, time TEXT NOT NULL,
    event TEXT NOT NULL, chain TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
    seq INTEGER PRIMARY KEY, group_id TEXT NOT NULL, n INTEGER NOT NULL, time TEXT NOT NULL, source TEXT NOT NULL,
    trigger TEXT NOT NULL, dest TEXT NOT NULL, order_ref TEXT, record TEXT NOT NULL, chain TEXT NOT NULL,
    UNIQUE (group_id, n));
CREATE TABLE IF NOT EXISTS finishes (
    seq INTEGER PRIMARY KEY, group_id TEXT NOT NULL, time TEXT NOT NULL, state TEXT NOT NULL,
    summary TEXT NOT NULL, chain TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS finishes_by_group ON finishes (group_id);
"""

#: Words that never belong in a journal's configuration keys (credentials are not journaled);
#: keys are compared lower-case with every non-alphanumeric character dropped (``x-api-key`` ->
#: ``xapikey``), and a key containing one of these words is refused.
_SECRET_WORDS = ("secret", "token", "password", "passwd", "passphrase", "credential", "apikey", "accesskey",
                 "privatekey", "signingkey", "authorization", "bearer", "cookie", "sessionid", "sessionkey")
#: Keys refused only when they are the whole name (as parts of other names they mean other things).
_SECRET_NAMES = frozenset({"auth", "pwd", "pass", "otp"})
#: A value that is authorization material: a header line, or an HTTP auth scheme and its credential
#: (``Token`` needs a digit or a symbol in what follows, ``Basic`` must be base64 of ``user:pass``:
#: "token bucket" and "basic strategies" are prose).
_AUTH_VALUE_RE = re.compile(
    r"\b(?:proxy-)?authorization\s*:|\b(?:set-)?cookie\s*:|\bx-api-key\s*:"
    r"|\bbearer\s+[A-Za-z0-9._~+/=-]{8,}|\bdigest\s+username\s*="
    r"|\btoken\s+(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}",
    re.IGNORECASE,
)
_BASIC_RE = re.compile(r"\bbasic\s+([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])", re.IGNORECASE)
#: A URL carrying user info (``scheme://user[:password]@host``).
_USERINFO_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s@]+@")

#: How durable a commit is: ``full`` survives power loss (fsync per commit), ``normal`` survives a
#: crash of the process (SIGKILL) but may lose the last commits on power loss (WAL default).
SYNC_MODES = ("full", "normal")


class JournalCorrupted(AtomicOrdersError):
    """The journal file is damaged; ``intact`` records (seq 1..intact) are still readable."""

    def __init__(self, path: Path, problem: str, intact: int) -> None:
        self.path = path
        self.problem = problem
        self.intact = intact
        super().__init__(
            f"journal {str(path)!r} is corrupted: {problem}; the first {intact} records (seq 1..{intact}) are intact "
            "and can be copied to a new journal with 'atomic-orders journal salvage'"
        )


class JournalLocked(AtomicOrdersError):
    """Another live process has the journal open for writing (two writers would interleave orders)."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"journal {str(path)!r} is open for writing by another process ({holder}); stop it first, or "
            "recover from the journal once that process has ended"
        )


def _chain(prev: str, table: str, seq: int, values: Sequence[Any]) -> str:
    # Columns are text (JSON already) or integers: joined with a record separator, NULL as \0.
    payload = "\x1e".join([prev, table, str(seq), *("\x00" if v is None else str(v) for v in values)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


_SQLITE_MAGIC = b"SQLite format 3\x00"


@attrs.frozen
class _Start:
    """What the first 100 bytes (SQLite's header) say about a file."""

    size: int
    #: Why the file cannot be a journal, before SQLite is even asked (None: a plausible SQLite file).
    problem: str | None = None
    page_size: int = 0
    #: The header's own count of pages (0 when the header does not keep it).
    pages: int = 0


def _start(path: Path) -> _Start:
    """Read and check the SQLite header (through the lock module: see its doc on descriptors)."""
    head = read_start(path, 100)
    size = path.stat().st_size
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        return _Start(size, f"not a SQLite file ({size} bytes, no SQLite header): not a journal, or its start "
                            "is damaged or cut off")
    raw_page = int.from_bytes(head[16:18], "big")
    page_size = 65536 if raw_page == 1 else raw_page
    if page_size < 512 or page_size & (page_size - 1):
        return _Start(size, f"SQLite header names an impossible page size {raw_page}: the start is damaged")
    if size < page_size:
        return _Start(size, f"cut short inside its first page ({size} bytes of {page_size})", page_size)
    return _Start(size, None, page_size, int.from_bytes(head[28:32], "big"))


def _is_new(path: Path) -> bool:
    """A journal that was never created: no file, an empty one, or one whose creation was interrupted.

    Interrupted creation leaves exactly one page (the header written by the switch to WAL mode) and
    no table at all: the schema is committed in one transaction. Anything else that is not a whole
    journal -- a file cut short, one that is not SQLite, a foreign database -- is NOT new: opening it
    as new would throw away what it holds, so it goes to verification, which refuses it.
    """
    if not path.exists():
        return True
    start = _start(path)
    if start.size == 0:
        return True
    if start.problem is not None or start.size != start.page_size or start.pages > 1:
        return False
    try:
        conn = sqlite3.connect(str(path))
        try:
            return bool(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False  # read_journal names the problem


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


def _normal_key(key: object) -> str:
    """``X-Api-Key``, ``x_api_key`` and ``x api key`` alike: lower case, separators dropped."""
    return "".join(ch for ch in str(key).lower() if ch.isalnum())


def _secret_key(key: object) -> bool:
    name = _normal_key(key)
    return name in _SECRET_NAMES or any(word in name for word in _SECRET_WORDS)


def _is_basic_credential(word: str) -> bool:
    try:
        return b":" in base64.b64decode(word + "=" * (-len(word) % 4), validate=True)
    except ValueError:
        return False


def _secret_text(text: str) -> str | None:
    """Why a string value looks like a credential (None: it does not). Never says the value."""
    if _AUTH_VALUE_RE.search(text) or any(_is_basic_credential(m.group(1)) for m in _BASIC_RE.finditer(text)):
        return "holds an authorization value (a header, or a Bearer/Basic credential)"
    if _USERINFO_RE.search(text):
        return "holds a URL with user info (user:password@host)"
    return None


def check_no_secrets(config: Mapping[str, Any], where: str = "config") -> None:
    """Refuse configuration that carries credentials (they must never reach a journal).

    Looks at every key and value at any depth (mappings, and lists/tuples/sets inside them):
    keys named like credentials (case, ``-``, ``_`` and spaces ignored: ``api-key``,
    ``X-Api-Key``, ``client_secret``, ``refresh-token``, ``private_key``, ``cookie``...), string
    values that are authorization material (``Bearer ...``, ``Basic ...``, ``Authorization: ...``,
    ``Cookie: ...``) and URLs with user info (``https://user:pass@host/``) anywhere in a value.

    Raises :class:`ValidationError` whose field is the offending path (``config.auth[0].token``);
    the value is never quoted (``<hidden>``).
    """
    _check_value(config, where)


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            path = f"{where}.{key}"
            if isinstance(key, str) and _secret_text(key) is not None:  # a URL or a header used as a key
                raise ValidationError(f"{where}[<key>]", "<hidden>", f"a key that {_secret_text(key)}")
            _check_value(inner, path)  # first: a deeper offender is the more precise name
            if _secret_key(key):
                raise ValidationError(path, "<hidden>", "credentials are never written to the journal")
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            _check_value(inner, f"{where}[{i}]")
    elif isinstance(value, (set, frozenset)):
        for inner in value:
            _check_value(inner, f"{where}[<item>]")
    elif isinstance(value, str):
        why = _secret_text(value)
        if why is not None:
            raise ValidationError(where, "<hidden>", f"{why}; credentials are never written to the journal")


# ---------------------------------------------------------------------------------------------
# Reading


@attrs.define
class JournalContents:
    """Every intact record of a journal, decoded to plain JSON values, in write order."""

    path: Path
    schema_version: int
    records: int = 0
    last_chain: str = ""
    #: What is wrong with the file (None: the whole journal verified).
    problem: str | None = None
    sessions: list[dict[str, Any]] = attrs.field(factory=list)
    #: group_id -> {"seq", "session_id", "created_at", "definition", "policy"}
    groups: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: group_id -> encoded audit records in order (each with its "seq")
    transitions: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    #: order_ref -> {"seq", "group_id", "purpose", "time", "request"}
    intents: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: every broker event: {"seq", "order_ref", "group_id", "kind", "time", "event"}
    broker_events: list[dict[str, Any]] = attrs.field(factory=list)
    #: group_id -> finish records in order: {"seq", "time", "state", "summary"}
    finishes: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
    #: The verified rows as stored, (table, row) in seq order (only when asked for: salvage).
    rows: list[tuple[str, tuple[Any, ...]]] = attrs.field(factory=list, repr=False)

    def last_state(self, group_id: str) -> str | None:
        """The group's state after its last journaled transition."""
        trail = self.transitions.get(group_id)
        return trail[-1]["dest"] if trail else None

    def is_finished(self, group_id: str) -> bool:
        """The group has a finish record and its last transition left it terminal.

        (A duplicate broker event after the finish adds a transition that stays terminal; a
        late fill that re-opened the group leaves it ``rolling_back`` until a new finish.)
        """
        if not self.finishes.get(group_id):
            return False
        trail = self.transitions.get(group_id)
        return not trail or trail[-1]["dest"] in TERMINAL_STATES


def _scan(conn: sqlite3.Connection, table: str) -> tuple[list[tuple[Any, ...]], str | None]:
    """Rows of ``table`` in seq order, up to the first unreadable one."""
    rows: list[tuple[Any, ...]] = []
    cols = ", ".join(("seq", *TABLES[table], "chain"))
    try:
        cursor = conn.execute(f"SELECT {cols} FROM {table} ORDER BY seq")
        while True:
            try:
                row = cursor.fetchone()
            except sqlite3.DatabaseError as err:
                after = rows[-1][0] if rows else 0
                return rows, f"table {table}: unreadable after seq {after} ({err})"
            if row is None:
                return rows, None
            rows.append(tuple(row))
    except sqlite3.DatabaseError as err:
        return rows, f"table {table}: unreadable ({err})"


def _integrity(conn: sqlite3.Connection) -> str | None:
    try:
        result = [r[0] for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
    except sqlite3.DatabaseError as err:
        return f"sqlite integrity check failed: {err}"
    if result == ["ok"]:
        return None
    # One answer can hold many lines ("*** in database main ***" then one per bad cell): the
    # first few say what is wrong; the rest would bury the message.
    lines = [ln for r in result for ln in str(r).splitlines() if ln.strip() and not ln.startswith("***")]
    more = " (and more)" if len(lines) > 3 else ""
    return "sqlite integrity check: " + "; ".join(lines[:3]) + more


def _connect(path: Path, *, damaged_ok: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    if damaged_ok:
        # Read-only use: lets sqlite open a file shorter than its header says (a truncated
        # journal), so the pages that are there can still be read.
        conn.execute("PRAGMA writable_schema=ON")
    return conn


def read_journal(path: str | Path, *, allow_prefix: bool = False, integrity: bool = True,
                 keep_rows: bool = False) -> JournalContents:
    """Read and verify a journal.

    Raises :class:`JournalCorrupted` (naming the file and the problem) when anything is wrong,
    unless ``allow_prefix``: then the intact prefix is returned with ``problem`` set.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"journal {str(path)!r} does not exist")
    start = _start(path)
    if start.problem is not None:
        return _fail(path, start.problem, JournalContents(path, 0), allow_prefix)
    try:
        conn = _connect(path, damaged_ok=True)
    except sqlite3.DatabaseError as err:
        return _fail(path, f"cannot open: {err}", JournalContents(path, 0), allow_prefix)
    try:
        # One read transaction: every table below is read from the same snapshot (WAL), so a
        # writer's commits landing between two SELECTs cannot look like missing records.
        conn.execute("BEGIN")
        return _read(conn, path, allow_prefix, integrity, keep_rows)
    finally:
        conn.close()


def _fail(path: Path, problem: str, contents: JournalContents, allow_prefix: bool) -> JournalContents:
    if not allow_prefix:
        raise JournalCorrupted(path, problem, contents.records)
    contents.problem = problem
    return contents


def _read(conn: sqlite3.Connection, path: Path, allow_prefix: bool, integrity: bool,
          keep_rows: bool = False) -> JournalContents:
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as err:
        return _fail(path, f"no readable meta table ({err}): not a journal, or its first pages are damaged",
                     JournalContents(path, 0), allow_prefix)
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        version = 0
    contents = JournalContents(path, version)
    if version < 1:
        return _fail(path, f"meta.schema_version={meta.get('schema_version')!r} is not a journal schema version",
                     contents, allow_prefix)
    if version > SCHEMA_VERSION:
        raise JournalCorrupted(path, f"schema_version {version} is newer than this program's {SCHEMA_VERSION}", 0)
    problems: list[str] = []
    if integrity:
        bad = _integrity(conn)
        if bad is not None:
            problems.append(bad)
    by_seq: dict[int, tuple[str, tuple[Any, ...]]] = {}
    # seq is unique per table (its primary key) but one sequence runs over all tables: a seq used
    # in two tables, or one outside 1.., is a forged or damaged row, never something to skip.
    reused: dict[int, list[str]] = {}
    for table in TABLES:
        rows, problem = _scan(conn, table)
        if problem is not None:
            problems.append(problem)
        for row in rows:
            seq = int(row[0])
            if seq < 1:
                problems.append(f"record seq {seq} in table {table} is not a sequence number (they start at 1)")
            elif seq in by_seq:
                reused.setdefault(seq, [by_seq[seq][0]]).append(table)
            else:
                by_seq[seq] = (table, row)
    problems.extend(f"record seq {seq} is used {'twice' if len(tables) == 2 else f'{len(tables)} times'} "
                    f"(tables {' and '.join(tables)})" for seq, tables in sorted(reused.items()))
    prev = ""
    seq = 0
    chain_problem: str | None = None
    for seq in range(1, len(by_seq) + 2):
        item = by_seq.get(seq)
        if item is None:
            if seq <= max(by_seq, default=0):
                chain_problem = f"record seq {seq} is missing (later records exist)"
            break
        if seq in reused:  # which of the rows is the real one cannot be told: the prefix ends before
            break
        table, row = item
        values = row[1:-1]
        if _chain(prev, table, seq, values) != row[-1]:
            chain_problem = f"record seq {seq} in table {table} does not match its checksum (changed on disk)"
            break
        try:
            _add(contents, table, seq, values)
        except (ValueError, KeyError, TypeError) as err:
            chain_problem = f"record seq {seq} in table {table} is unreadable ({err})"
            break
        prev = row[-1]
        contents.records = seq
        if keep_rows:
            contents.rows.append((table, row))
    contents.last_chain = prev
    if chain_problem is not None:
        problems.insert(0, chain_problem)
    if problems:
        return _fail(path, "; ".join(problems), contents, allow_prefix)
    return contents


def _add(c: JournalContents, table: str, seq: int, v: tuple[Any, ...]) -> None:
    if table == "sessions":
        c.sessions.append({"seq": seq, "session_id": v[0], "kind": v[1], "started_at": v[2], "config": loads(v[3])})
    elif table == "groups":
        c.groups[v[0]] = {"seq": seq, "session_id": v[1], "created_at": v[2], "definition": loads(v[6]),
                          "policy": loads(v[7])}
    elif table == "intents":
        c.intents[v[0]] = {"seq": seq, "group_id": v[1], "purpose": v[2], "time": v[3], "request": loads(v[4])}
    elif table == "broker_events":
        c.broker_events.append({"seq": seq, "order_ref": v[0], "group_id": v[1], "kind": v[2], "time": v[3],
                                "event": loads(v[4])})
    elif table == "transitions":
        record = loads(v[7])
        record["seq"] = seq
        c.transitions.setdefault(v[0], []).append(record)
    elif table == "finishes":
        c.finishes.setdefault(v[0], []).append({"seq": seq, "time": v[1], "state": v[2], "summary": loads(v[3])})


def salvage(source: str | Path, dest: str | Path) -> JournalContents:
    """Copy the intact prefix of a damaged journal into a new journal at ``dest``; return what was kept."""
    source, dest = Path(source), Path(dest)
    if dest.exists():
        raise ValidationError("dest", str(dest), "already exists; salvage never overwrites a journal")
    contents = read_journal(source, allow_prefix=True, keep_rows=True)
    journal = Journal(dest)
    try:
        journal._restore(contents.rows)
    finally:
        journal.close()
    contents.rows = []
    return contents


# ---------------------------------------------------------------------------------------------
# Writing


class Journal:
    """An open journal: stage rows, commit them at decision points.

    ``sync`` is ``full`` (fsync at every commit: survives power loss) or ``normal`` (survives the
    death of the process). ``batch_seconds`` bounds how long transitions staged at a decision
    point may wait for the next commit (an intent or a broker event batch commits at once and
    takes them along); transitions lost with the process are re-derived by reconciliation.

    Opening an existing file verifies it first (integrity check and the whole hash chain) and
    raises :class:`JournalCorrupted` when anything is wrong; the verified records are kept in
    :attr:`contents` for recovery. ``on_point`` is called with the name of each crash-relevant
    point the executor passes (used by the crash test to die exactly there).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sync: str = "full",
        batch_seconds: float = 0.2,
        on_point: Callable[[str], None] | None = None,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValidationError("sync", sync, f"expected one of {SYNC_MODES}")
        if not isinstance(batch_seconds, (int, float)) or batch_seconds < 0:
            raise ValidationError("batch_seconds", batch_seconds, "must be a number of seconds >= 0")
        self.path = Path(path)
        self.on_point = on_point
        #: Transitions alone wait up to this long (wall clock) for the next commit; intents and broker
        #: events never wait (0: every decision point commits).
        self.batch_seconds = float(batch_seconds)
        self.last_commit = time.monotonic()
        # One writer at a time: a second process appending to the same journal would interleave
        # record numbers and, worse, act on the same groups. Taken before anything is read.
        # The lock is on the database file itself (see atomic_orders.fsm.journal.lock): every path to it is one.
        try:
            self._lock: WriterLock | None = acquire_writer(self.path)
        except LockHeld as held:
            raise JournalLocked(self.path, held.holder) from None
        try:
            self._open(sync)
        except BaseException:
            self._release_lock()
            raise

    def _open(self, sync: str) -> None:
        fresh = _is_new(self.path)
        if fresh:
            self.contents = JournalContents(self.path, SCHEMA_VERSION)
        else:
            self.contents = read_journal(self.path)
        self._db = _connect(self.path)
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AtomicOrdersError(f"journal {str(self.path)!r}: cannot switch to WAL mode (got {mode!r})")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        if fresh:  # schema and meta in one transaction: a crash leaves a journal or no tables at all
            meta = [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", _now_iso()),
                ("chain", "sha256 of previous chain, table, seq, columns (NULL as \\0) joined by \\x1e; first 32 hex"),
                ("writer", "atomic-orders"),
            ]
            self._db.execute("BEGIN")
            for statement in _DDL.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta)
            self._db.execute("COMMIT")
        self._seq = self.contents.records
        self._chain = self.contents.last_chain
        self._staged: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        self._staged_count = 0
        #: Rows written per group's audit trail (the next transition's ``n``).
        self._audit_written: dict[str, int] = {
            gid: len(trail) for gid, trail in self.contents.transitions.items()
        }
        self._groups_written: set[str] = set(self.contents.groups)
        self.session_id = uuid.uuid4().hex[:12]
        #: Commits and rows written by this process (for the bench figures).
        self.commits = 0
        self.rows_written = 0

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, records={self._seq})"

    def release_contents(self) -> None:
        """Forget the records read at open (recovery is done with them; a long journal is large)."""
        self.contents = JournalContents(self.path, self.contents.schema_version, self.contents.records,
                                        self.contents.last_chain)

    # -- crash points ------------------------------------------------------------------------------

    def point(self, name: str) -> None:
        """The executor passed a crash-relevant point (see ``docs/journal.md`` for the list)."""
        if self.on_point is not None:
            self.on_point(name)

    # -- staging -----------------------------------------------------------------------------------

    def _stage(self, table: str, values: tuple[Any, ...]) -> None:
        self._seq += 1
        self._chain = _chain(self._chain, table, self._seq, values)
        self._staged[table].append((self._seq, *values, self._chain))
        self._staged_count += 1

    def start_session(self, kind: str, config: Mapping[str, Any]) -> str:
        """Record that a process started writing (``start`` or ``recover``) with its configuration."""
        check_no_secrets(config)
        self._stage("sessions", (self.session_id, kind, _now_iso(), dumps(dict(config))))
        self.commit()
        return self.session_id

    def has_group(self, group_id: str) -> bool:
        """The group's definition is journaled (committed or staged)."""
        return group_id in self._groups_written

    def group(self, group_id: str, created_at: dt.datetime, strategy: str, mode: str, quantity: int,
              definition: Mapping[str, Any], policy: Mapping[str, Any]) -> None:
        """Stage a group's definition (once)."""
        if group_id in self._groups_written:
            return
        self._groups_written.add(group_id)
        self._stage("groups", (group_id, self.session_id, _iso(created_at), strategy, mode, quantity,
                               dumps(dict(definition)), dumps(dict(policy))))

    def audit_written(self, group_id: str) -> int:
        """How many of the group's transitions are journaled (committed or staged)."""
        return self._audit_written.get(group_id, 0)

    def transitions(self, group_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Stage the group's next transitions (encoded audit records, in order)."""
        n = self._audit_written.get(group_id, 0)
        for rec in records:
            self._stage("transitions", (group_id, n, rec["time"], rec["source"], rec["trigger"], rec["dest"],
                                        rec.get("order_ref"), dumps(dict(rec))))
            n += 1
        self._audit_written[group_id] = n

    def intent(self, order_ref: str, group_id: str, purpose: str, time: dt.datetime,
               request: Mapping[str, Any]) -> None:
        """Stage an order intent; the caller commits it before the request leaves."""
        self._stage("intents", (order_ref, group_id, purpose, _iso(time), dumps(dict(request))))

    def broker_event(self, order_ref: str, group_id: str | None, kind: str, time: dt.datetime,
                     event: Mapping[str, Any]) -> None:
        """Stage one broker event as it arrived; the caller commits before acting on it."""
        self._stage("broker_events", (order_ref, group_id, kind, _iso(time), dumps(dict(event))))

    def finish(self, group_id: str, time: dt.datetime, state: str, summary: Mapping[str, Any]) -> None:
        """Stage a group's finish record (its terminal state and summary)."""
        self._stage("finishes", (group_id, _iso(time), state, dumps(dict(summary))))

    # -- committing --------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Rows staged and not committed yet."""
        return self._staged_count

    @property
    def records(self) -> int:
        """Rows in the journal (committed and staged)."""
        return self._seq

    def commit(self) -> None:
        """Write every staged row in one transaction (nothing when nothing is staged)."""
        if not self._staged_count:
            return
        db = self._db
        db.execute("BEGIN")
        try:
            for table, rows in self._staged.items():
                if rows:
                    cols = ("seq", *TABLES[table], "chain")
                    marks = ", ".join("?" * len(cols))
                    db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self.last_commit = time.monotonic()
        self.commits += 1
        self.rows_written += self._staged_count
        for rows in self._staged.values():
            rows.clear()
        self._staged_count = 0

    def _restore(self, rows: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Insert verified rows as they were (salvage); they keep their seq and chain."""
        db = self._db
        db.execute("BEGIN")
        for table, row in rows:
            cols = ("seq", *TABLES[table], "chain")
            db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                       row)
        db.execute("COMMIT")
        if rows:
            self._seq = int(rows[-1][1][0])
            self._chain = str(rows[-1][1][-1])

    def close(self, *, commit: bool = True) -> None:
        """Commit what is staged and close (the WAL is checkpointed into the main file).

        ``commit=False`` drops what is staged, exactly what a crash leaves behind (tests and the
        in-process crash campaign use it); the single-writer lock is released either way.
        """
        if self._db is None:  # type: ignore[comparison-overlap]
            return
        if commit:
            self.commit()
        self._db.close()
        self._db = None  # type: ignore[assignment]
        self._release_lock()

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
