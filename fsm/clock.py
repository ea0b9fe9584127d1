"""Injectable clocks: the machines never read the wall clock themselves."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> dt.datetime:
        """Return the current time."""
        ...


class SystemClock:
    """The wall clock, for live sessions."""

    def now(self) -> dt.datetime:
        """Return the current UTC time."""
        return dt.datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests, replays and simulations."""

    __slots__ = ("_now",)

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start if start is not None else dt.datetime(2026, 1, 2, 14, 30, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError(f"start={start!r}: must be timezone-aware")

    def now(self) -> dt.datetime:
        """Return the clock's current time."""
        return self._now

    def set(self, when: dt.datetime) -> None:
        """Move to ``when``; a clock never runs backwards."""
        if when < self._now:
            raise ValueError(f"when={when!r}: clock cannot move backwards from {self._now!r}")
        self._now = when

    def advance(self, seconds: float) -> dt.datetime:
        """Move forward by ``seconds`` and return the new time."""
        self.set(self._now + dt.timedelta(seconds=seconds))
        return self._now
