"""Uplift metrics against hand computations and scikit-uplift's reference formulas.

scikit-uplift is not a dependency: its functions (sklift/metrics/metrics.py, v0.5) are
reimplemented verbatim below, with sklearn's ``auc`` and ``stable_cumsum``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import auc

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

# ------------------------------------------------------------ scikit-uplift, reimplemented


def ref_uplift_curve(y_true, uplift, treatment):
    y_true, uplift, treatment = np.array(y_true), np.array(uplift), np.array(treatment)
    desc = np.argsort(uplift, kind="mergesort")[::-1]
    y_true, uplift, treatment = y_true[desc], uplift[desc], treatment[desc]
    y_ctrl, y_trmnt = y_true.copy(), y_true.copy()
    y_ctrl[treatment == 1] = 0
    y_trmnt[treatment == 0] = 0
    thr = np.r_[np.where(np.diff(uplift))[0], uplift.size - 1]
    num_trmnt = np.cumsum(treatment, dtype=np.float64)[thr]
    y_t = np.cumsum(y_trmnt, dtype=np.float64)[thr]
    num_all = thr + 1
    num_ctrl = num_all - num_trmnt
    y_c = np.cumsum(y_ctrl, dtype=np.float64)[thr]
    values = (
        np.divide(y_t, num_trmnt, out=np.zeros_like(y_t), where=num_trmnt != 0)
        - np.divide(y_c, num_ctrl, out=np.zeros_like(y_c), where=num_ctrl != 0)
    ) * num_all
    if num_all.size == 0 or values[0] != 0 or num_all[0] != 0:
        num_all, values = np.r_[0, num_all], np.r_[0, values]
    return num_all, values


def ref_qini_curve(y_true, uplift, treatment):
    y_true, uplift, treatment = np.array(y_true), np.array(uplift), np.array(treatment)
    desc = np.argsort(uplift, kind="mergesort")[::-1]
    y_true, treatment, uplift = y_true[desc], treatment[desc], uplift[desc]
    y_ctrl, y_trmnt = y_true.copy(), y_true.copy()
    y_ctrl[treatment == 1] = 0
    y_trmnt[treatment == 0] = 0
    thr = np.r_[np.where(np.diff(uplift))[0], uplift.size - 1]
    num_trmnt = np.cumsum(treatment, dtype=np.float64)[thr]
    y_t = np.cumsum(y_trmnt, dtype=np.float64)[thr]
    num_all = thr + 1
    num_ctrl = num_all - num_trmnt
    y_c = np.cumsum(y_ctrl, dtype=np.float64)[thr]
    values = y_t - y_c * np.divide(
        num_trmnt, num_ctrl, out=np.zeros_like(num_trmnt), where=num_ctrl != 0
    )
    if num_all.size == 0 or values[0] != 0 or num_all[0] != 0:
        num_all, values = np.r_[0, num_all], np.r_[0, values]
    return num_all, values


def ref_perfect_uplift_curve(y_true, treatment):
    cr_num = np.sum((y_true == 1) & (treatment == 0))
    tn_num = np.sum((y_true == 0) & (treatment == 1))
    summand = y_true if cr_num > tn_num else treatment
    return ref_uplift_curve(y_true, 2 * (y_true == treatment) + summand, treatment)


def ref_perfect_qini_curve(y_true, treatment, negative_effect=True):
    if negative_effect:
        return ref_qini_curve(y_true, y_true * treatment - y_true * (1 - treatment), treatment)
    ratio_random = y_true[treatment == 1].sum() - len(y_true[treatment == 1]) * y_true[
        treatment == 0
    ].sum() / len(y_true[treatment == 0])
    return np.array([0, ratio_random, len(y_true)]), np.array([0, ratio_random, ratio_random])


def ref_normalized(actual, perfect):
    x_b, y_b = np.array([0, perfect[0][-1]]), np.array([0, perfect[1][-1]])
    base = auc(x_b, y_b)
    return (auc(*actual) - base) / (auc(*perfect) - base)


def ref_qini_auc_score(y_true, uplift, treatment, negative_effect=True):
    return ref_normalized(
        ref_qini_curve(y_true, uplift, treatment),
        ref_perfect_qini_curve(y_true, treatment, negative_effect),
    )


def ref_uplift_auc_score(y_true, uplift, treatment):
    return ref_normalized(
        ref_uplift_curve(y_true, uplift, treatment), ref_perfect_uplift_curve(y_true, treatment)
    )


def ref_uplift_at_k(y_true, uplift, treatment, strategy, k=0.3):
    n_samples = len(y_true)
    order = np.argsort(uplift, kind="mergesort")[::-1]
    k_type = np.asarray(k).dtype.kind
    if strategy == "overall":
        n_size = int(n_samples * k) if k_type == "f" else k
        score_ctrl = y_true[order][:n_size][treatment[order][:n_size] == 0].mean()
        score_trmnt = y_true[order][:n_size][treatment[order][:n_size] == 1].mean()
    else:
        if k_type == "f":
            n_ctrl = int((treatment == 0).sum() * k)
            n_trmnt = int((treatment == 1).sum() * k)
        else:
            n_ctrl = n_trmnt = k
        score_ctrl = y_true[order][treatment[order] == 0][:n_ctrl].mean()
        score_trmnt = y_true[order][treatment[order] == 1][:n_trmnt].mean()
    return score_trmnt - score_ctrl


# ------------------------------------------------------------------------------- tests

Y = np.array([1, 0, 1, 0, 1, 0])
T = np.array([1, 1, 0, 0, 1, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_hand_computed_curves_and_uplift_at_k():
    # Qini at N = 1..6: Y_T − Y_C·N_T/N_C = 1, 1, 1 − 1·2/1, 1 − 1·2/2, 2 − 1·3/2, 2 − 1·3/3
    assert qini_curve(Y, S, T)[1].tolist() == [0, 1, 1, -1, 0, 0.5, 1]
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


def _random_samples():
    rng = np.random.default_rng(7)
    for n in (10, 37, 200, 1_000):
        t = rng.integers(0, 2, n)
        y = (rng.random(n) < 0.3 + 0.2 * t).astype(int)
        scores = [rng.random(n), rng.integers(0, 4, n).astype(float), y * t + 0.1 * rng.random(n)]
        for score in scores:
            yield y, score, t


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_matches_scikit_uplift_reference():
    for y, score, t in _random_samples():
        for ours, ref in (
            (qini_curve(y, score, t), ref_qini_curve(y, score, t)),
            (uplift_curve(y, score, t), ref_uplift_curve(y, score, t)),
            (perfect_qini_curve(y, t), ref_perfect_qini_curve(y, t)),
            (perfect_qini_curve(y, t, False), ref_perfect_qini_curve(y, t, False)),
            (perfect_uplift_curve(y, t), ref_perfect_uplift_curve(y, t)),
        ):
            np.testing.assert_allclose(ours[0], ref[0])
            np.testing.assert_allclose(ours[1], ref[1], atol=1e-9)
        assert qini_auc_score(y, score, t) == pytest.approx(ref_qini_auc_score(y, score, t))
        assert qini_auc_score(y, score, t, False) == pytest.approx(
            ref_qini_auc_score(y, score, t, False)
        )
        assert uplift_auc_score(y, score, t) == pytest.approx(ref_uplift_auc_score(y, score, t))
        for strategy in ("overall", "by_group"):
            for k in (0.3, 0.5, 3):
                expected = ref_uplift_at_k(y, score, t, strategy, k)
                got = uplift_at_k(y, score, t, strategy, k)
                assert got == pytest.approx(expected, nan_ok=True)
        report = uplift_metrics(y, score, t, k=0.3)
        assert report.qini_auc == pytest.approx(ref_qini_auc_score(y, score, t))
        assert report.uplift_auc == pytest.approx(ref_uplift_auc_score(y, score, t))
        assert report.uplift_at_k_by_group == pytest.approx(
            ref_uplift_at_k(y, score, t, "by_group", 0.3), nan_ok=True
        )


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
