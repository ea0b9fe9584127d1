"""The discrete-event core: a virtual clock, a cancellable event queue, and seed derivation.

Time is a float number of simulated seconds since the session opened. Events are kept in a
binary heap keyed by ``(time, seq)``; ``seq`` is a global insertion counter, so events due at the
same instant run in the order they were scheduled and the run order never depends on anything
but the calls made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import random
from collections.abc import Callable
from typing import Any

__all__ = ["EventHandle", "Scheduler", "VirtualClock", "derive_seed", "make_rng"]


def derive_seed(seed: int, purpose: str) -> int:
    """A 64-bit seed for one ``purpose`` of a session seeded with ``seed``.

    Stable across processes and platforms (a SHA-256 digest, never ``hash()`` of a string,
    which Python salts per process).
    """
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:8], "big")


def make_rng(seed: int, purpose: str) -> random.Random:
    """An independent :class:`random.Random` stream for ``purpose`` within session ``seed``."""
    return random.Random(derive_seed(seed, purpose))


class VirtualClock:
    """A clock that tells simulated time; implements :class:`atomic_orders.fsm.clock.Clock`.

    ``seconds`` is the float number of simulated seconds since ``session_open``; :meth:`now`
    is the same instant as an aware UTC datetime. Only the :class:`Scheduler` (or
    :meth:`advance_to`) moves it, and never backwards.
    """

    __slots__ = ("_open", "_seconds", "_now_seconds", "_now_dt")

    def __init__(self, session_open: dt.datetime) -> None:
        if session_open.tzinfo is None:
            raise ValueError(f"session_open={session_open!r}: must be timezone-aware")
        self._open = session_open.astimezone(dt.UTC)
        self._seconds = 0.0
        # cache of the last conversion: now() is called far more often than time moves
        self._now_seconds = 0.0
        self._now_dt = self._open

    @property
    def session_open(self) -> dt.datetime:
        """The instant that ``seconds == 0`` stands for (aware UTC)."""
        return self._open

    @property
    def seconds(self) -> float:
        """Simulated seconds since the session opened."""
        return self._seconds

    def now(self) -> dt.datetime:
        """The current simulated time as an aware UTC datetime."""
        if self._now_seconds != self._seconds:
            self._now_seconds = self._seconds
            # timedelta(days, seconds): the same value as seconds=..., without parsing a keyword
            # (this runs whenever time moves, once per simulated event)
            self._now_dt = self._open + dt.timedelta(0, self._seconds)
        return self._now_dt

    def to_datetime(self, seconds: float) -> dt.datetime:
        """The aware UTC datetime of ``seconds`` since the open (any instant, not just now)."""
        if seconds == self._seconds:
            return self.now()
        return self._open + dt.timedelta(seconds=seconds)

    def to_seconds(self, when: dt.datetime) -> float:
        """Seconds since the open of an aware datetime."""
        return (when - self._open).total_seconds()

    def advance_to(self, seconds: float) -> None:
        """Move to ``seconds``; raise ``ValueError`` if that is in the past."""
        if seconds < self._seconds:
            raise ValueError(f"seconds={seconds!r}: clock cannot move backwards from {self._seconds!r}")
        self._seconds = seconds


class EventHandle:
    """A scheduled callback; :meth:`cancel` stops it from running (lazy removal from the heap)."""

    __slots__ = ("time", "seq", "callback", "args", "cancelled")

    def __init__(self, time: float, seq: int, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.time = time
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run this callback (a no-op if it already ran)."""
        self.cancelled = True

    @property
    def active(self) -> bool:
        """True while the callback is still due to run (neither cancelled nor run)."""
        return not self.cancelled

    def __repr__(self) -> str:
        state = "" if self.active else " done"
        return f"<EventHandle t={self.time:.6f} seq={self.seq} {getattr(self.callback, '__name__', '?')}{state}>"


class Scheduler:
    """A discrete-event queue driving a :class:`VirtualClock`.

    Callbacks run in ``(time, seq)`` order. A callback may schedule more events, including at
    the current instant (they run in the same :meth:`run_until` call, after those already due).
    Scheduling in the past is clamped to the current time: the clock never goes backwards.
    """

    __slots__ = ("clock", "_heap", "_seq", "executed")

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, EventHandle]] = []
        self._seq = 0
        #: How many callbacks have run (for statistics).
        self.executed = 0

    def __len__(self) -> int:
        """Number of entries in the queue (including cancelled ones not yet discarded)."""
        return len(self._heap)

    def schedule(self, at_seconds: float, callback: Callable[..., Any], *args: Any) -> EventHandle:
        """Run ``callback(*args)`` at ``at_seconds`` (clamped to now); return a cancellable handle."""
        now = self.clock.seconds
        if at_seconds < now:
            at_seconds = now
        self._seq += 1
        handle = EventHandle(at_seconds, self._seq, callback, args)
        heapq.heappush(self._heap, (at_seconds, self._seq, handle))
        return handle

    def schedule_in(self, delay: float, callback: Callable[..., Any], *args: Any) -> EventHandle:
        """Run ``callback(*args)`` ``delay`` seconds from now."""
        return self.schedule(self.clock.seconds + delay, callback, *args)

    def next_time(self) -> float | None:
        """The time of the next live event, or ``None`` when nothing is scheduled."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_until(self, t_seconds: float) -> int:
        """Run every event due at or before ``t_seconds`` in order, then set the clock to it.

        Returns how many callbacks ran. A ``t_seconds`` in the past runs what is due now and
        leaves the clock where it is.
        """
        heap = self._heap
        clock = self.clock
        pop = heapq.heappop
        ran = 0
        while heap and heap[0][0] <= t_seconds:
            at, _seq, handle = pop(heap)
            if handle.cancelled:
                continue
            if at > clock._seconds:  # hot path: skip the method call
                clock._seconds = at
            handle.cancelled = True  # a handle runs at most once; cancel() afterwards is a no-op
            handle.callback(*handle.args)
            ran += 1
        if t_seconds > clock._seconds:
            clock._seconds = t_seconds
        self.executed += ran
        return ran
