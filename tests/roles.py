"""The harnesses' condor tuples as the executor's keyword roles.

``strikes_for_iron_condor``, the test harnesses' ``condor()`` and the plugin's ``condor_strikes()``
return ``(short call, long call, short put, long put)``; the executor's helpers take legs only by
role (keyword-only), so a test spells the mapping once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ROLES = ("short_call", "long_call", "short_put", "long_put")


def condor_roles(symbols: Sequence[Any]) -> dict[str, Any]:
    """``{"short_call": symbols[0], ..., "long_put": symbols[3]}``; exactly four symbols."""
    if len(symbols) != len(ROLES):
        raise ValueError(f"a condor has {len(ROLES)} legs, got {len(symbols)}")
    return dict(zip(ROLES, symbols, strict=True))
