"""A search continues only with the space and data it started with (any engine)."""

from __future__ import annotations

import pytest

from search import SearchError, load_dataset, load_space
from search.engines._base import check_same_search


def test_same_space_and_data_continue_other_ones_are_refused():
    tiny, lenet = load_space("tiny"), load_space("lenet")
    digits = load_dataset("digits")
    recorded = check_same_search({}, tiny, digits, "mine")
    assert recorded["space_fingerprint"] == tiny.fingerprint() and recorded["data_fingerprint"] == digits.fingerprint
    assert check_same_search(recorded, tiny, digits, "mine") == recorded
    with pytest.raises(SearchError) as info:
        check_same_search(recorded, lenet, digits, "mine")
    assert str(info.value).startswith("search 'mine' already exists with a different space ('tiny', fingerprint ")
    assert f"received space 'lenet' (fingerprint {lenet.fingerprint()})" in str(info.value)
    other = load_dataset("digits", seed=1)
    with pytest.raises(SearchError, match=r"search 'mine' already exists on other data \('digits', fingerprint "):
        check_same_search(recorded, tiny, other, "mine")
    assert check_same_search({"space": "tiny"}, lenet, digits, "mine")["space"] == "lenet"  # half-written: retried
