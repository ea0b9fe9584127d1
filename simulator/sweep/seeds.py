"""The seeds of a sweep, from a spec such as ``1-10000`` or ``1,5,9-12``.

A spec is comma-separated items, each a seed ``N`` or an inclusive range ``A-B`` (``A <= B``),
seeds being integers >= 0. The count is bounded (:data:`MAX_SEEDS`) and checked before any
range is expanded; a seed given twice is refused. Errors are :class:`ValidationError` on the
field ``seeds`` naming the offending item.
"""

from __future__ import annotations

import itertools
import re

from atomic_orders.fsm.errors import ValidationError

__all__ = ["MAX_SEEDS", "parse_seeds"]

#: At most this many seeds in one sweep (each is one line of the results file and one entry in memory).
MAX_SEEDS = 1_000_000

_ITEM = re.compile(r"(\d{1,18})(?:-(\d{1,18}))?")


def parse_seeds(text: str) -> tuple[int, ...]:
    """The seeds a spec names, in the order given (ranges ascending).

    Raises :class:`ValidationError` (field ``seeds``) for an empty spec, an item that is not
    ``N`` or ``A-B``, a range whose end is below its start, a seed named twice, or more than
    :data:`MAX_SEEDS` seeds.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("seeds", text, "expected seeds such as 1-100 or 1,5,9-12")
    ranges: list[tuple[int, int]] = []
    total = 0
    for raw in text.split(","):
        item = raw.strip()
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValidationError("seeds", text, f"{item!r} is not a seed N >= 0 (at most 18 digits) or a range A-B")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValidationError("seeds", text, f"range {item!r} ends below its start")
        total += last - first + 1
        if total > MAX_SEEDS:
            raise ValidationError("seeds", text, f"more than {MAX_SEEDS:,} seeds in one sweep")
        ranges.append((first, last))
    # Overlaps by interval (no expansion needed): a seed twice would run twice.
    ordered = sorted(ranges)
    for (_a1, b1), (a2, _b2) in itertools.pairwise(ordered):
        if a2 <= b1:
            raise ValidationError("seeds", text, f"seed {a2} is named twice")
    return tuple(seed for first, last in ranges for seed in range(first, last + 1))
