"""The adversarial broker against a real executor: iron condors and verticals, combo and legged.

Budget: the active Hypothesis profile (``ATOMIC_ORDERS_PROFILE``, see ``conftest.py``) decides
how many examples each machine runs and how many steps each example takes.
"""

from __future__ import annotations

from tests.properties.adversary import ComboCondor, ComboVertical, LeggedCondor, LeggedVertical

TestComboCondor = ComboCondor.TestCase
TestLeggedCondor = LeggedCondor.TestCase
TestComboVertical = ComboVertical.TestCase
TestLeggedVertical = LeggedVertical.TestCase
