"""The durable journal: write-ahead record of intents, broker events and group transitions.

:mod:`.store` is the SQLite file (schema, hash chain, verification, salvage); :mod:`.codec`
turns the core's values into readable JSON and back; :mod:`.recorder` is what the executor
writes through (intents before the POST, broker events before the machines see them, batched
transitions); :mod:`.lock` keeps one writer per journal (an advisory lock naming its pid). Recovery from a journal is
:meth:`atomic_orders.fsm.executor.AtomicOrderExecutor.recover` (:mod:`atomic_orders.fsm.recovery`). The schema and the
recovery rules are documented in ``docs/journal.md``.

May import: the rest of the core (its values and machines) and the standard library's ``sqlite3``;
no backend, no simulator.
"""

from atomic_orders.fsm.journal.store import (
    SCHEMA_VERSION,
    Journal,
    JournalContents,
    JournalCorrupted,
    JournalLocked,
    check_no_secrets,
    read_journal,
    salvage,
)

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalContents",
    "JournalCorrupted",
    "JournalLocked",
    "check_no_secrets",
    "read_journal",
    "salvage",
]
