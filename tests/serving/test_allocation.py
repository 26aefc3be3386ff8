import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from liftgate.core.allocation import greedy_epsilon, ranked_order, unit_draw

values = st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=8)


@given(values, st.floats(0, 1), st.floats(0, 1, exclude_max=True))
def test_propensities_are_a_distribution_and_name_the_chosen(ev, epsilon, draw) -> None:
    choice = greedy_epsilon(np.array(ev), epsilon, draw)
    assert abs(sum(choice.propensities) - 1) < 1e-12
    assert min(choice.propensities) >= epsilon / len(ev) - 1e-12
    assert choice.propensity == choice.propensities[choice.index]


def test_greedy_takes_the_first_best_and_explores_uniformly() -> None:
    ev = np.array([1.0, 3.0, 3.0, 0.5])
    assert greedy_epsilon(ev, 0.2, 0.0).index == 1  # ties break by catalogue order
    draws = np.array([unit_draw(f"d{i}") for i in range(40_000)])
    picks = np.bincount([greedy_epsilon(ev, 0.2, u).index for u in draws], minlength=4)
    expected = np.array(greedy_epsilon(ev, 0.2, 0.0).propensities) * len(draws)
    assert np.all(np.abs(picks - expected) < 5 * np.sqrt(expected))


def test_unit_draw_is_a_pure_uniform_function_of_the_key() -> None:
    assert unit_draw("abc") == unit_draw("abc")
    draws = np.array([unit_draw(str(i)) for i in range(20_000)])
    assert draws.min() >= 0 and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.01


def test_ranked_order_is_best_first_and_stable() -> None:
    assert ranked_order(np.array([1.0, 2.0, 2.0, 0.0])).tolist() == [1, 2, 0, 3]
