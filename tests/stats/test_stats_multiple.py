"""Holm and Benjamini-Hochberg against statsmodels' multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from experiments.stats.multiple import adjust_p_values


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_matches_multipletests(correction: str, method: str) -> None:
    p = np.random.default_rng(0).random(12) ** 3
    assert adjust_p_values(list(p), correction) == pytest.approx(
        list(multipletests(p, method=method)[1])
    )


def test_none_values_are_left_out_of_the_family() -> None:
    p = [0.01, None, 0.04, float("nan"), 0.03]
    got = adjust_p_values(p, "holm")
    assert got[1] is None and got[3] is None
    assert [got[0], got[2], got[4]] == pytest.approx(
        list(multipletests([0.01, 0.04, 0.03], method="holm")[1])
    )
    assert adjust_p_values([None, None], "bh") == [None, None]
    assert adjust_p_values([0.2, 0.01], "none") == [0.2, 0.01]


def test_unknown_correction_is_rejected() -> None:
    with pytest.raises(ValueError, match="correction must be"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]


# multipletests(method="holm") runs gc.collect() on every call (~70 ms), so few examples.
@settings(max_examples=40, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    correction=st.sampled_from(["holm", "bh", "none"]),
)
def test_adjusted_p_is_at_least_raw_p_and_at_most_one(p: list[float], correction: str) -> None:
    adjusted = adjust_p_values(p, correction)  # type: ignore[arg-type]
    for raw, adj in zip(p, adjusted, strict=True):
        assert raw - 1e-12 <= adj <= 1.0
