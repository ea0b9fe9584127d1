"""IdSet: a set of strings; the executor's numbered group ids cost a bit each."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from atomic_orders.fsm.id_set import IdSet

_IDS = st.one_of(
    st.integers(0, 3_000).map(lambda n: f"G{n:06d}"),
    st.integers(0, 10**9).map(lambda n: f"G{n:06d}"),
    st.text(alphabet="G0123456789x٣-", max_size=10),  # look-alikes: short, padded, non-ASCII digits
)


@given(st.lists(_IDS, max_size=60), st.lists(_IDS, max_size=20))
def test_it_behaves_as_a_set_of_strings(added: list[str], probes: list[str]) -> None:
    ids = IdSet("G")
    for item in added:
        ids.add(item)
    expected = set(added)
    assert len(ids) == len(expected)
    assert sorted(ids) == sorted(expected)
    for probe in probes + added:
        assert (probe in ids) == (probe in expected), probe


def test_look_alikes_of_a_numbered_id_are_different_ids() -> None:
    ids = IdSet("GK3")
    ids.add("GK3000042")
    assert "GK3000042" in ids
    for other in ("GK30000042", "GK300042", "GK3000042 ", "G000042", "GK3000043", 42):
        assert other not in ids
    ids.add("GK30000042")  # not the executor's form: kept as it is
    assert len(ids) == 2 and set(ids) == {"GK3000042", "GK30000042"}


def test_a_far_number_is_kept_as_a_string_and_still_found_once_the_bits_reach_it() -> None:
    ids = IdSet("")
    ids.add("9000000")  # far past any bit held: no 1 MB bitmap for it
    assert sys.getsizeof(ids._bits) < 10_000
    for n in range(0, 9_000_001, 4_000):
        ids.add(f"{n:06d}")
    assert "9000000" in ids and len(ids) == len(set(ids)) == 2251


def test_a_hundred_thousand_executor_ids_take_kilobytes() -> None:
    ids = IdSet("G")
    for n in range(1, 100_001):
        ids.add(f"G{n:06d}")
    assert len(ids) == 100_000 and "G100000" in ids and "G000001" in ids and "G100001" not in ids
    assert sys.getsizeof(ids._bits) + sys.getsizeof(ids._other) < 20_000  # a set of the strings: about 10 MB
