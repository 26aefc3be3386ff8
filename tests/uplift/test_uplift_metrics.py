"""Uplift metrics against hand computations and scikit-uplift's own outputs.

scikit-uplift is not a dependency: ``tests/golden/sklift_metrics.json`` holds what
scikit-uplift 0.5.1 computed on seeded samples (``tests/golden/make_golden.py`` says how
to regenerate it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.uplift.metrics import (
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc_score,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
    uplift_curve,
    uplift_metrics,
)

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "sklift_metrics.json").read_text())
# Same formulas, other code paths (np.trapezoid vs sklearn's auc, our cumulative sums vs
# scikit-uplift's), so only the last bits may differ, by CPU or numpy version; any change
# of formula moves the numbers far more than 1e-9.
RTOL, ATOL = 1e-9, 1e-12

Y = np.array([1, 0, 1, 0, 1, 0])
T = np.array([1, 1, 0, 0, 1, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_hand_computed_curves_and_uplift_at_k():
    # Qini at N = 1..6: Y_T − Y_C·N_T/N_C = 1, 1, 1 − 1·2/1, 1 − 1·2/2, 2 − 1·3/2, 2 − 1·3/3
    assert qini_curve(Y, S, T)[1] == pytest.approx([0, 1, 1, -1, 0, 0.5, 1])
    # uplift at N: (Y_T/N_T − Y_C/N_C)·N:
    #   1, 1, (1/2 − 1)·3, (1/2 − 1/2)·4, (2/3 − 1/2)·5, (2/3 − 1/3)·6
    assert uplift_curve(Y, S, T)[1] == pytest.approx([0, 1, 1, -1.5, 0, 5 / 6, 2])
    # overall, k = 0.5: top 3 rows → treated 1/2, control 1/1
    assert uplift_at_k(Y, S, T, "overall", 0.5) == pytest.approx(-0.5)
    # by_group, k = 0.5: ⌊3·0.5⌋ = 1 of each group → treated row 0 (1), control row 2 (1)
    assert uplift_at_k(Y, S, T, "by_group", 0.5) == pytest.approx(0.0)
    # an integer k counts rows: top 2 are both treated, so the control mean is undefined
    assert np.isnan(uplift_at_k(Y, S, T, "overall", 2))


def test_perfect_rankings_score_one():
    y = np.array([1, 0, 1, 0, 0, 1, 0, 1])
    t = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    assert qini_auc_score(y, y * t - y * (1 - t), t) == pytest.approx(1.0)
    # control non-responders and treated responders first, as scikit-uplift's optimum
    assert uplift_auc_score(y, 2 * (y == t) + t, t) == pytest.approx(1.0)


def _case_id(case: dict) -> str:
    return f"n{len(case['y_true'])}-{case['score_kind']}"


def _inputs(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.array(case["y_true"]), np.array(case["uplift"]), np.array(case["treatment"])


def _close(got: float, expected: float | None) -> None:
    """scikit-uplift's value, with its NaN (stored as null) matched by NaN."""
    if expected is None:
        assert np.isnan(got)
    else:
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


CURVE_CASES = [case for case in GOLDEN["cases"] if "curves" in case]


@pytest.mark.parametrize("case", CURVE_CASES, ids=_case_id)
def test_curves_match_scikit_uplift(case: dict) -> None:
    y, score, t = _inputs(case)
    ours = {
        "qini_curve": qini_curve(y, score, t),
        "uplift_curve": uplift_curve(y, score, t),
        "perfect_qini_curve": perfect_qini_curve(y, t),
        "perfect_qini_curve_no_negative_effect": perfect_qini_curve(y, t, False),
        "perfect_uplift_curve": perfect_uplift_curve(y, t),
    }
    assert set(ours) == set(case["curves"])
    for name, (x, values) in ours.items():
        x_expected, values_expected = case["curves"][name]
        np.testing.assert_allclose(x, x_expected, rtol=RTOL, atol=ATOL, err_msg=name)
        np.testing.assert_allclose(values, values_expected, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("case", GOLDEN["cases"], ids=_case_id)
def test_scores_match_scikit_uplift(case: dict) -> None:
    y, score, t = _inputs(case)
    _close(qini_auc_score(y, score, t), case["qini_auc_score"])
    _close(qini_auc_score(y, score, t, False), case["qini_auc_score_no_negative_effect"])
    _close(uplift_auc_score(y, score, t), case["uplift_auc_score"])
    for expected in case["uplift_at_k"]:
        _close(uplift_at_k(y, score, t, expected["strategy"], expected["k"]), expected["value"])
    report = uplift_metrics(y, score, t, k=0.3)
    at_30 = {e["strategy"]: e["value"] for e in case["uplift_at_k"] if e["k"] == 0.3}
    _close(report.qini_auc, case["qini_auc_score"])
    _close(report.uplift_auc, case["uplift_auc_score"])
    _close(report.uplift_at_k_overall, at_30["overall"])
    _close(report.uplift_at_k_by_group, at_30["by_group"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: qini_auc_score([0, 2], [0.1, 0.2], [0, 1]), "y_true"),
        (lambda: qini_auc_score([0, 1], [0.1, 0.2], [0, 3]), "treatment"),
        (lambda: qini_auc_score([0, 1], [0.1], [0, 1]), "lengths differ"),
        (lambda: uplift_at_k(Y, S, T, "first", 0.3), "strategy"),
        (lambda: uplift_at_k(Y, S, T, "overall", 1.5), "fraction"),
        (lambda: uplift_at_k(Y, S, T, "overall", 6), "row count"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
