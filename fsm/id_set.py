"""A set of ids that stays small when they are numbered: every group id an executor ever used.

An executor must remember the id of every group it finished, released or not (an id is never
used twice; a late event for a released group's order is recognised as ours). A long session
finishes hundreds of thousands of groups, and a string in a set costs about 100 bytes. The ids the
executor makes are a stem and a sequence (:meth:`AtomicOrderExecutor.new_group_id`: ``G000042``,
``GK3F9000042``); here each of those is one bit.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["IdSet"]

#: How far past the bits already held a new number may be and still become a bit (further ones
#: are kept as strings: a caller's own id with a large number must not allocate a huge bitmap).
_SLACK_BYTES = 4096


class IdSet:
    """A set of strings in which ``<stem><n:06d>`` (``n`` >= 0, the executor's own ids) costs one bit.

    Any other string (another stem, a caller's own id) is kept in a plain set. ``add``, ``in``,
    ``len`` and iteration behave as a ``set[str]``'s; iteration yields the numbered ids first,
    in ascending order. Memory: one bit per number up to the largest held, plus the other strings.
    """

    __slots__ = ("stem", "_bits", "_numbered", "_other")

    def __init__(self, stem: str) -> None:
        self.stem = stem
        self._bits = bytearray()
        self._numbered = 0
        self._other: set[str] = set()

    def _number(self, item: str) -> int:
        """``n`` when ``item`` is exactly ``f"{stem}{n:06d}"``, else -1."""
        stem = self.stem
        if not item.startswith(stem):
            return -1
        digits = item[len(stem):]
        if len(digits) < 6 or not (digits.isascii() and digits.isdigit()):
            return -1
        if len(digits) > 6 and digits[0] == "0":  # zero-padding never goes beyond six digits
            return -1
        return int(digits)

    def add(self, item: str) -> None:
        """Hold ``item`` (a no-op when it is held already)."""
        n = self._number(item)
        if n >= 0 and item not in self._other:
            bits = self._bits
            index, mask = n >> 3, 1 << (n & 7)
            if index >= len(bits):
                if index > 2 * len(bits) + _SLACK_BYTES:
                    self._other.add(item)
                    return
                bits.extend(bytes(index + 1 - len(bits)))
            if not bits[index] & mask:
                bits[index] |= mask
                self._numbered += 1
            return
        self._other.add(item)

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        n = self._number(item)
        if n >= 0:
            index = n >> 3
            if index < len(self._bits) and self._bits[index] & (1 << (n & 7)):
                return True
        return item in self._other

    def __len__(self) -> int:
        return self._numbered + len(self._other)

    def __iter__(self) -> Iterator[str]:
        stem = self.stem
        for index, byte in enumerate(self._bits):
            if byte:
                for bit in range(8):
                    if byte & (1 << bit):
                        yield f"{stem}{index * 8 + bit:06d}"
        yield from self._other

    def __repr__(self) -> str:
        return f"IdSet(stem={self.stem!r}, {len(self)} ids)"
