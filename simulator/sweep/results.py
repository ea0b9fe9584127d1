"""The results file of a sweep: JSON lines, one per finished seed, durable line by line.

Each line is what :func:`~atomic_orders.simulator.sweep.task.run_seed` returned. :meth:`ResultsFile.append`
writes a line, flushes and fsyncs it before returning, so a sweep killed at any moment (Ctrl-C,
SIGKILL, power loss) leaves every line it reported, plus at most one torn last line.
:meth:`ResultsFile.open` reads what is there: a torn last line (no newline, or not JSON) is cut
off, a seed that appears twice keeps its first line; a damaged line elsewhere, or a line of another
sweep config, is refused (:class:`ValidationError` naming the file, the line and the difference):
one file holds one config, so its figures add up.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any, TypeGuard

from atomic_orders.fsm.errors import ValidationError

__all__ = ["ResultsFile"]


def _difference(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    keys = sorted(set(theirs) | set(ours))
    return ", ".join(f"{k}={theirs.get(k)!r} (this sweep: {ours.get(k)!r})" for k in keys
                     if theirs.get(k) != ours.get(k))


_DICTS = ("outcomes", "violations", "residual_exposure", "unaccounted_exposure")


def _is_results_line(line: object) -> TypeGuard[dict[str, Any]]:
    """A JSON object shaped as :func:`~.task.run_seed` writes it, as far as resuming and the report read it."""
    if not isinstance(line, dict) or not isinstance(line.get("config"), dict):
        return False
    seed = line.get("seed")
    if type(seed) is not int or seed < 0 or not isinstance(line.get("ok", False), bool):
        return False
    return all(isinstance(line.get(key, {}), dict) for key in _DICTS)


class ResultsFile:
    """An open results file for one sweep config; a context manager that closes it."""

    def __init__(self, path: Path, config: dict[str, Any], done: dict[int, dict[str, Any]], handle: IO[bytes]) -> None:
        self.path = path
        self.config = config
        #: Seed -> its results line, for every seed already in the file.
        self.done = done
        self._handle = handle

    @classmethod
    def open(cls, path: Path, config: dict[str, Any]) -> ResultsFile:
        """Open (or create) ``path`` for a sweep of ``config``, reading the seeds it already holds.

        Raises :class:`ValidationError` (field ``results``) for a line of another config or a
        damaged line before the last, or while another sweep has the file open (an exclusive lock,
        released when that sweep ends, however it ends); a torn last line is truncated away.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "ab")  # noqa: SIM115 (kept open for the sweep; closed by close())
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValidationError("results", str(path), "another sweep is writing this file") from None
            done, good_end = cls._read(path, config)
        except BaseException:
            handle.close()
            raise
        if handle.tell() != good_end:
            handle.truncate(good_end)
            handle.seek(good_end)
            os.fsync(handle.fileno())
        return cls(path, config, done, handle)

    @staticmethod
    def _read(path: Path, config: dict[str, Any]) -> tuple[dict[int, dict[str, Any]], int]:
        done: dict[int, dict[str, Any]] = {}
        good_end = 0
        if path.exists():
            data = path.read_bytes()
            offset = 0
            number = 0
            while offset < len(data):
                number += 1
                newline = data.find(b"\n", offset)
                end = len(data) if newline < 0 else newline + 1
                raw = data[offset:end]
                try:
                    line = json.loads(raw) if newline >= 0 else None
                except ValueError:
                    line = None
                if not _is_results_line(line):
                    if end == len(data):  # the torn last line of a killed sweep
                        break
                    raise ValidationError("results", str(path), f"line {number} is not a results line; "
                                          "the file is damaged (move it away to start afresh)")
                if line["config"] != config:
                    raise ValidationError("results", str(path), f"line {number} is of another sweep: "
                                          f"{_difference(line['config'], config)}; one file holds one config "
                                          "(give another --results or --out)")
                done.setdefault(int(line["seed"]), line)
                offset = end
                good_end = end
        return done, good_end

    def append(self, line: dict[str, Any]) -> None:
        """Write one results line durably (flushed and fsynced before this returns)."""
        self._handle.write(json.dumps(line, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.setdefault(int(line["seed"]), line)

    def close(self) -> None:
        """Close the file (every line is already on disk)."""
        self._handle.close()

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
