"""One writer per journal file, whatever path reaches it.

The lock is an exclusive ``flock`` on the database file itself (not on a name beside it), so a
symlink, a hard link, a relative path or a deleted side file cannot give a second writer: every
path that reaches the file reaches the same inode, and the kernel drops the lock when its holder
dies (even by SIGKILL), so a crash never leaves a stale lock.

Why the descriptor is handled with care: SQLite holds POSIX (``fcntl``) locks on the database
file (a WAL connection keeps a SHARED lock for as long as it is open), and POSIX drops every
such lock a process holds on a file as soon as the process closes ANY descriptor of that file.
Closing our lock descriptor while a connection of this process has the file open would silently
strip SQLite's locks (a documented way to corrupt a database). So a descriptor is closed only when
no other descriptor of this process refers to the file; otherwise it is kept, unlocked, and
reused the next time the file is locked. Within one process a table keyed by (device, inode)
refuses a second writer (``flock`` alone would not: the same descriptor can re-lock).

Limits (documented in ``docs/journal.md``): POSIX platforms only (elsewhere nothing is locked);
local file systems (over NFS, Linux emulates ``flock`` with ``fcntl`` locks, which would clash
with SQLite's; SQLite's WAL mode needs a local file system anyway).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import attrs

try:  # POSIX advisory locks; elsewhere the single-writer check is skipped (documented)
    import fcntl
except ImportError:  # pragma: no cover - not on the supported platforms
    fcntl = None  # type: ignore[assignment]

__all__ = ["LockHeld", "WriterLock", "acquire_writer", "read_start"]

#: (st_dev, st_ino) of a file.
FileKey = tuple[int, int]


class LockHeld(Exception):
    """Raised by :func:`acquire_writer`: ``holder`` says who holds the lock (``pid N``)."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(holder)


@attrs.define
class _Descriptor:
    """Our descriptor of one database file; ``pid`` is the holder while it is locked."""

    fd: int
    pid: int | None = None


_TABLE: dict[FileKey, _Descriptor] = {}
_TABLE_LOCK = threading.Lock()


@attrs.define(eq=False)
class WriterLock:
    """The single-writer lock on one database file; :meth:`release` drops it (idempotent)."""

    key: FileKey
    path: Path
    released: bool = False

    def release(self) -> None:
        """Unlock; close the descriptor when no other descriptor of this process reaches the file."""
        with _TABLE_LOCK:
            if self.released:
                return
            self.released = True
            entry = _TABLE.get(self.key)
            if entry is None:  # pragma: no cover - the table only loses entries here
                return
            fcntl.flock(entry.fd, fcntl.LOCK_UN)
            entry.pid = None
            _close_if_alone(self.key, entry)


def acquire_writer(path: Path) -> WriterLock | None:
    """Lock the database file at ``path`` (created empty when missing) for this writer.

    Returns the lock (None where POSIX locks do not exist). Raises :class:`LockHeld` naming the
    holder when another writer, in this process or another, has the file; ``OSError`` when the
    file cannot be opened.
    """
    if fcntl is None:  # pragma: no cover
        return None
    with _TABLE_LOCK:
        key, entry = _descriptor(path)
        if entry.pid is not None:
            raise LockHeld(f"pid {entry.pid}, this process")
        try:
            fcntl.flock(entry.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _close_if_alone(key, entry)
            raise LockHeld(_holder(key)) from None
        entry.pid = os.getpid()
        return WriterLock(key, path)


def read_start(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of the file (fewer when it is shorter), read without endangering
    this process's SQLite locks on it (see the module doc). Raises ``OSError`` (missing file...).
    """
    with _TABLE_LOCK:
        key, entry = _descriptor(path, create=False)
        try:
            return os.pread(entry.fd, size, 0)
        finally:
            _close_if_alone(key, entry)


def _descriptor(path: Path, *, create: bool = True) -> tuple[FileKey, _Descriptor]:
    """Our descriptor of the file ``path`` reaches (opened once per file, see the module doc)."""
    try:
        st = os.stat(path)  # follows symlinks: the file, not the name
    except FileNotFoundError:
        pass
    else:
        key = (st.st_dev, st.st_ino)
        # A descriptor we hold pins its inode, so a matching key is the same file (never a reused inode).
        if key in _TABLE:
            return key, _TABLE[key]
    # O_RDONLY is enough for flock (a read-only journal still gets sqlite's own error later).
    fd = os.open(path, os.O_RDONLY | (os.O_CREAT if create else 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    fst = os.fstat(fd)
    key = (fst.st_dev, fst.st_ino)
    if key in _TABLE:  # the file was renamed in between: keep ours; closing this one could drop sqlite's locks
        _SPARE.append(fd)
        return key, _TABLE[key]
    entry = _TABLE[key] = _Descriptor(fd)
    return key, entry


#: Descriptors that could not be closed safely and are not in the table (kept until exit).
_SPARE: list[int] = []


def _close_if_alone(key: FileKey, entry: _Descriptor) -> None:
    """Close an unlocked ``entry`` unless another descriptor of this process reaches the same file."""
    if entry.pid is None and _other_descriptor(entry.fd, key) is False:
        os.close(entry.fd)
        del _TABLE[key]


def _other_descriptor(fd: int, key: FileKey) -> bool | None:
    """Whether a descriptor of this process other than ``fd`` refers to the file (None: unknown)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(listing)
        except OSError:
            continue
        for name in names:
            if not name.isdigit() or int(name) == fd:
                continue
            try:
                st = os.fstat(int(name))
            except OSError:  # closed since the listing (the listing's own descriptor, say)
                continue
            if (st.st_dev, st.st_ino) == key:
                return True
        return False
    return None  # pragma: no cover - every supported platform lists its descriptors


def _holder(key: FileKey) -> str:
    """``pid N`` of the process holding the file's flock (Linux ``/proc/locks``), or a generic text."""
    dev, ino = key
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 4711 fe:00:2147016 0 EOF" (blocked waiters have "->")
                # (pid 0: the holder is not visible from our pid namespace)
                if (len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5] == wanted
                        and fields[4].isdigit() and fields[4] != "0"):
                    return f"pid {fields[4]}"
    except OSError:
        pass
    return "another process, pid unknown"
