import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from experiments.assignment import (
    arm_of,
    arm_weight,
    arms_of,
    initial_ranges,
    rebalance,
    unit_point,
    unit_points,
)

IDS = [f"c{i:07d}" for i in range(1_000_000)]


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return unit_points("exp-a", IDS)


def test_points_are_uniform_on_a_million_ids(points: np.ndarray) -> None:
    counts = np.histogram(points, bins=100, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 0.001


def test_salts_are_independent(points: np.ndarray) -> None:
    other = unit_points("exp-b", IDS)
    table = np.histogram2d(points, other, bins=10, range=[[0, 1], [0, 1]])[0]
    assert stats.chi2_contingency(table).pvalue > 0.001
    assert abs(np.corrcoef(points, other)[0, 1]) < 0.005


def test_assignment_is_sticky_and_matches_the_weights(points: np.ndarray) -> None:
    ranges = initial_ranges({"control": 0.5, "a": 0.3, "b": 0.2})
    arms = arms_of(ranges, points[:200_000])
    again = [arm_of(ranges, unit_point("exp-a", u)) for u in IDS[:1_000]]
    assert list(arms[:1_000]) == again
    observed = [np.sum(arms == arm) for arm in ("control", "a", "b")]
    assert stats.chisquare(observed, np.array([0.5, 0.3, 0.2]) * len(arms)).pvalue > 0.001


weights = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5).filter(lambda w: sum(w) > 0.1)


def normalized(w: list[float]) -> dict[str, float]:
    total = sum(w)
    return {f"arm{i}": x / total for i, x in enumerate(w)}


@settings(max_examples=200)
@given(weights, weights)
def test_rebalancing_moves_only_the_total_variation_share(old_w, new_w) -> None:
    old = normalized(old_w)
    new = normalized(new_w)
    arms = sorted(set(old) | set(new))
    new = {a: new.get(a, 0.0) for a in arms}
    old_ranges = initial_ranges(old)
    new_ranges = rebalance(old_ranges, new)
    for arm, weight in new.items():
        assert arm_weight(new_ranges[arm]) == pytest.approx(weight, abs=1e-7)
    grid = (np.arange(20_000) + 0.5) / 20_000
    moved = np.mean(arms_of(old_ranges, grid) != arms_of(new_ranges, grid))
    total_variation = 0.5 * sum(abs(new[a] - old.get(a, 0.0)) for a in arms)
    assert moved == pytest.approx(total_variation, abs=2e-3)


def test_bad_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        initial_ranges({"a": 0.5, "b": 0.4})
    with pytest.raises(ValueError, match=">= 0"):
        initial_ranges({"a": 1.5, "b": -0.5})
