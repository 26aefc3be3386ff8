import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liftgate.core.allocation import (
    epsilon_greedy,
    epsilon_greedy_propensities,
    ranked_order,
    unit_draw,
)

values = st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=8)


@given(values, st.floats(0, 1), st.floats(0, 1, exclude_max=True))
def test_propensities_are_a_distribution_and_name_the_chosen(ev, epsilon, draw) -> None:
    choice = epsilon_greedy(np.array(ev), epsilon, draw)
    assert abs(sum(choice.propensities) - 1) < 1e-12
    assert min(choice.propensities) >= epsilon / len(ev) - 1e-12
    assert choice.propensity == choice.propensities[choice.index]


def test_greedy_takes_the_first_best_and_explores_uniformly() -> None:
    ev = np.array([1.0, 3.0, 3.0, 0.5])
    assert epsilon_greedy(ev, 0.2, 0.0).index == 1  # ties break by catalogue order
    draws = np.array([unit_draw(f"d{i}") for i in range(40_000)])
    picks = np.bincount([epsilon_greedy(ev, 0.2, u).index for u in draws], minlength=4)
    expected = np.array(epsilon_greedy(ev, 0.2, 0.0).propensities) * len(draws)
    assert np.all(np.abs(picks - expected) < 5 * np.sqrt(expected))


@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.floats(-9, 9)
    ),
    st.floats(0, 1),
    st.data(),
)
def test_many_rows_with_their_own_candidates_are_each_one_served_decision(
    values: np.ndarray, epsilon: float, data
) -> None:
    """The vectorised π (off-policy evaluation) is, row by row, the served choice's π on the
    row's candidates in catalogue order, and 0 elsewhere."""
    mask = data.draw(hnp.arrays(np.bool_, values.shape))
    mask[np.arange(len(mask)), data.draw(st.integers(0, values.shape[1] - 1))] = True
    propensities = epsilon_greedy_propensities(values, epsilon, mask)
    assert (propensities[~mask] == 0).all()
    for row, candidates, served in zip(values, mask, propensities, strict=True):
        one = epsilon_greedy(row[candidates], epsilon, draw=0.0).propensities
        np.testing.assert_allclose(served[candidates], one, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        epsilon_greedy_propensities(values, epsilon),
        epsilon_greedy_propensities(values, epsilon, np.ones(values.shape, bool)),
        rtol=0,
        atol=1e-12,
    )


def test_unit_draw_is_a_pure_uniform_function_of_the_key() -> None:
    assert unit_draw("abc") == unit_draw("abc")
    draws = np.array([unit_draw(str(i)) for i in range(20_000)])
    assert draws.min() >= 0 and draws.max() < 1
    assert abs(draws.mean() - 0.5) < 0.01


def test_ranked_order_is_best_first_and_stable() -> None:
    assert ranked_order(np.array([1.0, 2.0, 2.0, 0.0])) == [1, 2, 0, 3]


@given(
    st.lists(st.floats(-9, 9, allow_nan=False), min_size=1, max_size=8),
    st.floats(0, 1),
    st.floats(0, 1, exclude_max=True),
)
def test_the_served_choices_pi_is_the_vectorised_pi_exactly(ev, epsilon, draw) -> None:
    """One decision's π (plain Python) and the vectorised π (NumPy) are the same IEEE
    divisions and additions of the same numbers: equal, not close."""
    choice = epsilon_greedy(ev, epsilon, draw)
    assert choice.propensities == epsilon_greedy_propensities(np.array([ev]), epsilon)[0].tolist()
    assert choice.index == epsilon_greedy(np.array(ev), epsilon, draw).index


@given(st.lists(st.sampled_from([0.0, -0.0, 1.5, -2.0, 3.0, np.inf, np.nan]), max_size=8))
def test_the_order_and_the_greedy_choice_are_numpys(ev) -> None:
    """Ties, signed zeros, infinities and NaN ranked and taken as `np.argsort(-ev, stable)`
    and `np.argmax` take them."""
    values = np.array(ev, dtype=np.float64)
    assert ranked_order(ev) == np.argsort(-values, kind="stable").tolist()
    if ev:
        assert epsilon_greedy(ev, 0.0, 0.0).index == int(np.argmax(values))
