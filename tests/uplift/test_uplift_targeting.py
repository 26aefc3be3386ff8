"""The uplift targeting rule (experiments/uplift/targeting.py): its laws, as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.uplift.targeting import target, treat_probability

uplifts = st.floats(-1.0, 1.0, allow_nan=False)
values = st.floats(0.01, 1_000.0)
costs = st.floats(0.0, 10.0)
epsilons = st.floats(0.0, 1.0)
draws = st.floats(0.0, 1.0, exclude_max=True)


@given(uplifts, values, costs, epsilons, draws)
def test_probabilities_sum_to_one_and_the_propensity_is_the_chosen_ones(u, v, c, e, draw):
    choice = target(u, v, c, e, draw)
    assert choice.treat_probability + choice.control_probability == pytest.approx(1.0)
    assert {choice.treat_probability, choice.control_probability} == {e / 2, 1 - e / 2}
    chosen = choice.treat_probability if choice.treat else choice.control_probability
    assert choice.propensity == chosen > 0
    assert choice.treat == (draw < choice.treat_probability)


@given(uplifts, uplifts, values, costs, epsilons)
def test_the_rule_is_monotone_in_uplift(u1, u2, v, c, e):
    low, high = sorted((u1, u2))
    assert treat_probability(low, v, c, e) <= treat_probability(high, v, c, e)


@given(uplifts, values, costs, epsilons, draws)
def test_vectorized_and_single_choices_agree(u, v, c, e, draw):
    assert float(treat_probability([u], v, c, e)[0]) == target(u, v, c, e, draw).treat_probability


@given(uplifts, values, costs)
def test_without_exploration_treat_exactly_when_uplift_times_value_beats_cost(u, v, c):
    choice = target(u, v, c, epsilon=0.0, draw=0.5)
    assert choice.treat == (u * v > c) and choice.propensity == 1.0


def test_the_draw_realizes_the_treat_probability() -> None:
    draws = (np.arange(10_000) + 0.5) / 10_000
    treated = [target(0.1, 50.0, 1.0, 0.3, d).treat for d in draws]
    assert np.mean(treated) == pytest.approx(0.85)


def test_a_missing_prediction_does_not_treat() -> None:
    assert treat_probability([np.nan], 50.0, 0.05, 0.1).tolist() == [0.05]


@pytest.mark.parametrize("epsilon", [-0.1, 1.5])
def test_epsilon_outside_the_unit_interval_is_rejected(epsilon) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        target(0.1, 50.0, 0.05, epsilon, 0.5)
