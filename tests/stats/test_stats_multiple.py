"""Holm and Benjamini-Hochberg, checked without the statsmodels call the code makes.

A published example worked by hand, laws that relate the corrections to each other and to
Bonferroni, and a seeded simulation of Benjamini-Hochberg's false discovery rate.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from experiments.stats.multiple import adjust_p_values

# Benjamini & Hochberg (1995), "Controlling the False Discovery Rate", JRSS B 57(1), section 4:
# the 15 p-values of a myocardial-infarction trial (Neuhaus et al. 1992). At level 0.05,
# Bonferroni (p <= 0.05 / 15 = 0.0033) rejects the 3 smallest and the FDR procedure the 4
# smallest (p(4) = 0.0095 <= 4/15 x 0.05 = 0.0133, and p(k) > k/15 x 0.05 for every k > 4).
BH_1995 = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
    0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000,
]  # fmt: skip

# Adjusted p-values of that example, worked by hand from the definitions.
# Holm: max over j <= i of min(1, (15 - j + 1) p(j)), e.g. 15 x 0.0001, 14 x 0.0004,
# 13 x 0.0019, 12 x 0.0095, 11 x 0.0201, 10 x 0.0278 (9 x 0.0298 and 8 x 0.0344 are lower,
# so the running max stays 0.278), 7 x 0.0459, then 6 x 0.3240 > 1.
HOLM_1995 = [
    0.0015, 0.0056, 0.0247, 0.114, 0.2211, 0.278, 0.278, 0.278,
    0.3213, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
]  # fmt: skip
# BH: min over j >= i of 15 p(j) / j, e.g. 15 x 0.0201 / 5 = 0.0603, and for i = 6, 7 the
# minimum is at j = 7: 15 x 0.0298 / 7 = 0.063857...
BH_ADJUSTED_1995 = [
    0.0015, 0.003, 0.0095, 0.035625, 0.0603, 15 * 0.0298 / 7, 15 * 0.0298 / 7, 0.0645,
    0.0765, 0.486, 15 * 0.4262 / 11, 0.714875, 15 * 0.6528 / 13, 15 * 0.7590 / 14, 1.0,
]  # fmt: skip


@pytest.mark.parametrize(
    ("correction", "expected", "rejected_at_5_percent"),
    [("holm", HOLM_1995, 3), ("bh", BH_ADJUSTED_1995, 4), ("none", BH_1995, 9)],
)
def test_benjamini_hochberg_1995_example(
    correction: str, expected: list[float], rejected_at_5_percent: int
) -> None:
    adjusted = adjust_p_values(BH_1995, correction)  # type: ignore[arg-type]
    assert adjusted == pytest.approx(expected, rel=1e-12)
    assert sum(p <= 0.05 for p in adjusted) == rejected_at_5_percent


def test_docstring_example_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04: Holm 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert adjust_p_values([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    # BH: 3 x 0.01 / 1, min(3 x 0.03 / 2, 3 x 0.04 / 3) = 0.04, 0.04
    assert adjust_p_values([0.01, 0.04, 0.03], "bh") == pytest.approx([0.03, 0.04, 0.04])


def test_none_values_are_left_out_of_the_family() -> None:
    p = [0.01, None, 0.04, float("nan"), 0.03]
    got = adjust_p_values(p, "holm")
    assert got[1] is None and got[3] is None
    assert [got[0], got[2], got[4]] == adjust_p_values([0.01, 0.04, 0.03], "holm")
    assert adjust_p_values([None, None], "bh") == [None, None]
    assert adjust_p_values([0.2, 0.01], "none") == [0.2, 0.01]


def test_unknown_correction_is_rejected() -> None:
    with pytest.raises(ValueError, match="correction must be"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- laws

p_value_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20)


@pytest.fixture(autouse=True, scope="module")
def frozen_heap() -> Iterator[None]:
    """statsmodels' Holm calls gc.collect() every time: 0.2 s over pytest's and hypothesis'
    objects. Freezing the objects alive now (they stay alive anyway) makes it 50 us."""
    gc.freeze()
    yield
    gc.unfreeze()


@settings(max_examples=60, deadline=None)
@given(p=p_value_lists)
def test_corrections_are_ordered_none_bh_holm_bonferroni(p: list[float]) -> None:
    """raw <= BH <= Holm <= Bonferroni min(1, m p) <= 1, hypothesis by hypothesis.

    BH's adjusted p(i) is at most m p(i) / i, Holm's at least (m - i + 1) p(i), and
    m / i <= m - i + 1 for 1 <= i <= m: so BH rejects every hypothesis Holm rejects.
    """
    m = len(p)
    bh = adjust_p_values(p, "bh")
    holm = adjust_p_values(p, "holm")
    for raw, b, h in zip(p, bh, holm, strict=True):
        assert raw - 1e-12 <= b <= h + 1e-12
        assert h <= min(1.0, m * raw) + 1e-12


@settings(max_examples=60, deadline=None)
@given(p=p_value_lists, correction=st.sampled_from(["holm", "bh"]), seed=st.integers(0, 2**16))
def test_adjustment_keeps_the_order_and_ignores_the_listing(
    p: list[float], correction: str, seed: int
) -> None:
    adjusted = np.array(adjust_p_values(p, correction))  # type: ignore[arg-type]
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-12)  # a smaller p is never adjusted above
    shuffle = np.random.default_rng(seed).permutation(len(p))
    shuffled = adjust_p_values([p[i] for i in shuffle], correction)  # type: ignore[arg-type]
    np.testing.assert_allclose(shuffled, adjusted[shuffle], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p", [0.0, 0.003, 0.5, 1.0])
def test_a_family_of_one_is_not_adjusted(p: float) -> None:
    assert adjust_p_values([p], "holm") == pytest.approx([p])
    assert adjust_p_values([p], "bh") == pytest.approx([p])


# ------------------------------------------------------------------------------- simulation


def test_bh_false_discovery_rate_is_m0_over_m_times_q() -> None:
    """For independent tests, BH's FDR is exactly (m0 / m) q (Benjamini & Hochberg 1995,
    Theorem 1; Benjamini & Yekutieli 2001): 10 true nulls among 20 tests at q = 0.1 give 0.05.
    """
    rng = np.random.default_rng(11)
    replications, m, m0, q = 2_000, 20, 10, 0.1
    false_discovery_proportions = np.empty(replications)
    for r in range(replications):
        z = rng.normal(0.0, 1.0, m)
        z[m0:] += 3.0  # the false nulls: one-sided z-tests of a real effect
        p = ndtr(-z)  # upper tail
        rejected = np.array(adjust_p_values(list(p), "bh")) <= q
        false_discovery_proportions[r] = rejected[:m0].sum() / max(rejected.sum(), 1)
    mean = false_discovery_proportions.mean()
    standard_error = false_discovery_proportions.std() / np.sqrt(replications)
    assert mean == pytest.approx(m0 / m * q, abs=4 * standard_error)
