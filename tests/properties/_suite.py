"""Shared by the property suite: its counters and the profile it runs under.

``conftest.py`` registers and loads the Hypothesis profiles and prints the counters at the end of
the run; the test modules increment them and read :data:`PROFILE` to size what Hypothesis does
not (the exhaustive check's depth).
"""

from __future__ import annotations

import os
from collections import Counter

#: The environment variable that selects the profile: ``ci``, ``dev`` or ``deep``.
PROFILE_ENV = "ATOMIC_ORDERS_PROFILE"
PROFILES = ("ci", "dev", "deep")

#: ``stateful examples``, ``stateful steps``, ``settled <state>``, ``stateful move <kind>``, ...
STATS: Counter[str] = Counter()
#: Free-form lines (e.g. the exhaustive check's summary) printed after the counters.
NOTES: list[str] = []


def selected_profile() -> str:
    """The profile named by ``ATOMIC_ORDERS_PROFILE``, else ``ci`` when ``CI`` is set, else ``dev``."""
    name = os.environ.get(PROFILE_ENV, "").strip().lower()
    if not name:
        return "ci" if os.environ.get("CI") else "dev"
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r}: expected one of {', '.join(PROFILES)}")
    return name


PROFILE = selected_profile()
