"""Sample ratio mismatch against scipy.stats.chisquare."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from experiments.stats.srm import srm_check


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ({"a": 5000, "b": 5100}, None),
        ({"a": 1000, "b": 2100, "c": 950}, {"a": 1, "b": 2, "c": 1}),
        ({"a": 333, "b": 300, "c": 310}, None),
    ],
)
def test_matches_scipy_chisquare(observed: dict, weights: dict | None) -> None:
    r = srm_check(observed, weights)
    obs = np.array(list(observed.values()), dtype=float)
    w = np.ones(len(obs)) if weights is None else np.array([weights[a] for a in observed])
    expected = w / w.sum() * obs.sum()
    assert r.p_value == pytest.approx(chisquare(obs, expected).pvalue)
    assert r.flag == (r.p_value < 0.001)
    assert sum(r.expected_share.values()) == pytest.approx(1.0)


def test_flags_a_broken_split_and_not_a_healthy_one() -> None:
    assert srm_check({"a": 50_800, "b": 49_200}).flag
    assert not srm_check({"a": 50_100, "b": 49_900}).flag


def test_p_value_is_uniform_when_the_split_is_healthy() -> None:
    rng = np.random.default_rng(0)
    counts = rng.multinomial(10_000, [0.5, 0.3, 0.2], size=1000)
    p = np.array(
        [
            srm_check({"a": int(a), "b": int(b), "c": int(c)}, {"a": 5, "b": 3, "c": 2}).p_value
            for a, b, c in counts
        ]
    )
    assert 0.03 <= np.mean(p < 0.05) <= 0.07
    assert np.mean(p < 0.001) <= 0.005


def test_configured_arm_without_units_counts_as_zero() -> None:
    r = srm_check({"a": 1000}, {"a": 1, "b": 1})
    assert r.observed == {"a": 1000, "b": 0}
    assert r.flag


def test_observed_arm_missing_from_weights_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"arm\(s\) \['c'\] observed"):
        srm_check({"a": 10, "c": 10}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="weights must be > 0"):
        srm_check({"a": 10, "b": 10}, {"a": 1, "b": 0})
