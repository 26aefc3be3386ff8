"""Sufficient statistics: moments against numpy, merging partitions is addition."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.stats.aggregate import MetricSpec, NonFiniteValues, aggregate
from experiments.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def close(a: float, b: float, scale: float = 1.0) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, scale))


def test_sample_mean_matches_numpy() -> None:
    x = np.random.default_rng(0).gamma(2.0, 3.0, 1000)
    s = SampleMeanStatistic.from_array(x)
    assert s.n == 1000
    assert s.mean == pytest.approx(x.mean())
    assert s.variance == pytest.approx(x.var(ddof=1))


def test_proportion_variance_is_p_one_minus_p() -> None:
    x = (np.random.default_rng(1).random(500) < 0.3).astype(float)
    s = ProportionStatistic.from_array(x)
    p = x.mean()
    assert s.mean == pytest.approx(p)
    assert s.variance == pytest.approx(p * (1 - p))
    assert s.sum_squares == s.sum


def test_empty_and_single_unit_are_safe() -> None:
    assert SampleMeanStatistic(0, 0.0, 0.0).mean == 0.0
    assert SampleMeanStatistic(1, 3.0, 9.0).variance == 0.0
    assert ProportionStatistic(0, 0).variance == 0.0


def test_ratio_variance_matches_simulated_variance_of_the_ratio() -> None:
    """The delta-method variance / n equals the sampling variance of sum(m) / sum(d)."""
    rng = np.random.default_rng(2)
    n, sims = 400, 4000
    d = (rng.random((sims, n)) < 0.3).astype(float)  # converted
    m = d * rng.gamma(2.0, 25.0, (sims, n))  # revenue only when converted
    ratios = m.sum(axis=1) / d.sum(axis=1)
    s = RatioStatistic.from_arrays(m[0], d[0])
    assert s.mean == pytest.approx(ratios[0])
    predicted = np.mean([RatioStatistic.from_arrays(m[i], d[i]).variance / n for i in range(200)])
    assert predicted == pytest.approx(ratios.var(), rel=0.1)


def test_regression_adjusted_variance_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, 2000)
    y = 1.0 + 0.8 * x + rng.normal(0, 1, 2000)
    s = RegressionAdjustedStatistic.from_arrays(y, x).with_theta(0.8)
    assert s.covariance == pytest.approx(np.cov(y, x)[0, 1])
    assert s.mean == pytest.approx((y - 0.8 * x).mean())
    assert s.variance == pytest.approx((y - 0.8 * x).var(ddof=1))
    assert s.unadjusted_mean == pytest.approx(y.mean())


def _split(data: st.DataObject, size_min: int = 2) -> tuple[np.ndarray, int]:
    xs = data.draw(st.lists(finite, min_size=size_min, max_size=60))
    k = data.draw(st.integers(min_value=0, max_value=len(xs)))
    return np.array(xs), k


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_merging_partitions_equals_aggregating_the_concatenation(data: st.DataObject) -> None:
    x, k = _split(data)
    whole = SampleMeanStatistic.from_array(x)
    merged = SampleMeanStatistic.from_array(x[:k]) + SampleMeanStatistic.from_array(x[k:])
    assert merged.n == whole.n
    assert close(merged.sum, whole.sum, 1e3 * len(x))
    assert close(merged.sum_squares, whole.sum_squares, 1e6 * len(x))

    b = (x > 0).astype(float)
    pm = ProportionStatistic.from_array(b[:k]) + ProportionStatistic.from_array(b[k:])
    assert pm == ProportionStatistic.from_array(b)

    d = np.abs(x) + 1.0
    rm = RatioStatistic.from_arrays(x[:k], d[:k]) + RatioStatistic.from_arrays(x[k:], d[k:])
    rw = RatioStatistic.from_arrays(x, d)
    assert rm.n == rw.n
    assert close(rm.mean, rw.mean, 1e3)
    assert close(rm.m_d_sum_of_products, rw.m_d_sum_of_products, 1e6 * len(x))

    pre = x[::-1].copy()
    am = RegressionAdjustedStatistic.from_arrays(
        x[:k], pre[:k]
    ) + RegressionAdjustedStatistic.from_arrays(x[k:], pre[k:])
    aw = RegressionAdjustedStatistic.from_arrays(x, pre)
    assert am.n == aw.n and am.theta is None
    assert close(am.post_pre_sum_of_products, aw.post_pre_sum_of_products, 1e6 * len(x))


def _unit_table(rng: np.random.Generator, n: int) -> pa.Table:
    converted = (rng.random(n) < 0.2).astype(np.int64)
    return pa.table(
        {
            "arm": rng.choice(["a", "b", "c"], n),
            "converted": converted,
            "revenue": converted * rng.gamma(2.0, 10.0, n),
            "pre_revenue": rng.gamma(2.0, 5.0, n),
        }
    )


METRICS = [
    MetricSpec("cr", "converted", "binomial"),
    MetricSpec("rev", "revenue", "mean", covariate_column="pre_revenue"),
    MetricSpec("rpc", "revenue", "ratio", denominator_column="converted"),
    MetricSpec("pre", "pre_revenue", "mean"),
]


def test_aggregate_equals_builders_from_arrays() -> None:
    t = _unit_table(np.random.default_rng(4), 3000)
    stats = aggregate(t, "arm", METRICS)
    assert sorted(stats) == ["a", "b", "c"]
    cols = {c: t[c].to_numpy() for c in t.column_names}
    for arm in stats:
        mask = cols["arm"] == arm
        conv, rev, pre = (
            cols[c][mask].astype(float) for c in ("converted", "revenue", "pre_revenue")
        )
        expected = {
            "cr": ProportionStatistic.from_array(conv),
            "rev": RegressionAdjustedStatistic.from_arrays(rev, pre),
            "rpc": RatioStatistic.from_arrays(rev, conv),
            "pre": SampleMeanStatistic.from_array(pre),
        }
        for name, exp in expected.items():
            got = stats[arm][name]
            assert type(got) is type(exp)
            assert got.n == exp.n
            assert got.mean == pytest.approx(exp.mean, rel=1e-12)
            assert got.variance == pytest.approx(exp.variance, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(3, 300), cut=st.floats(0.0, 1.0))
def test_aggregate_of_partitions_adds_up(seed: int, n: int, cut: float) -> None:
    t = _unit_table(np.random.default_rng(seed), n)
    k = int(cut * n)
    whole = aggregate(t, "arm", METRICS)
    left = aggregate(t.slice(0, k), "arm", METRICS)
    right = aggregate(t.slice(k), "arm", METRICS)
    for arm, per_metric in whole.items():
        for name, stat in per_metric.items():
            parts = [p[arm][name] for p in (left, right) if arm in p]
            merged = parts[0] if len(parts) == 1 else parts[0] + parts[1]
            assert merged.n == stat.n
            assert merged.mean == pytest.approx(stat.mean, rel=1e-9, abs=1e-9)
            assert merged.variance == pytest.approx(stat.variance, rel=1e-7, abs=1e-9)


def test_aggregate_nulls_count_as_zero_and_null_arms_are_dropped() -> None:
    t = pa.table(
        {
            "arm": ["a", "a", None, "b", "b"],
            "y": pa.array([1.0, None, 5.0, 2.0, 4.0]),
            "flag": pa.array([True, False, True, None, True]),
            "k": pa.array([1, 2, 3, 4, 5], pa.int32()),
        }
    )
    s = aggregate(
        t,
        "arm",
        [MetricSpec("y", "y"), MetricSpec("f", "flag", "binomial"), MetricSpec("k", "k")],
    )
    assert s["a"]["y"] == SampleMeanStatistic(2, 1.0, 1.0)
    assert s["b"]["f"] == ProportionStatistic(2, 1.0)
    assert s["b"]["k"] == SampleMeanStatistic(2, 9.0, 41.0)
    assert set(s) == {"a", "b"}


def test_integer_arm_labels_become_strings() -> None:
    t = pa.table({"arm": [0, 1, 1], "y": [1.0, 2.0, 3.0]})
    assert sorted(aggregate(t, "arm", [MetricSpec("y", "y")])) == ["0", "1"]


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ([MetricSpec("y", "nope")], "column 'nope' not in table"),
        ([MetricSpec("s", "label")], "column 'label' must be numeric"),
        ([MetricSpec("b", "y", "binomial")], "must hold 0/1 values"),
        ([MetricSpec("y", "y"), MetricSpec("y", "y")], "used twice"),
    ],
)
def test_aggregate_rejects_bad_columns(metrics: list[MetricSpec], message: str) -> None:
    t = pa.table({"arm": ["a", "b"], "y": [1.0, 2.0], "label": ["x", "y"]})
    with pytest.raises(ValueError, match=message):
        aggregate(t, "arm", metrics)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ([1.0, float("nan"), 2.0], "column 'y' holds 1 value that is not finite (NaN or ±inf)"),
        ([1.0, float("inf"), -float("inf")], "column 'y' holds 2 values that are not finite"),
        ([1e308, 1e308, 2.0], "the sums of its values overflow"),  # two revenues of 1e308
        ([1e200, 1.0, 2.0], "the sums of its values overflow"),  # its square overflows
    ],
    ids=["nan", "inf", "sum-overflows", "square-overflows"],
)
def test_aggregate_refuses_values_and_sums_that_are_not_finite(
    values: list[float], problem: str
) -> None:
    """Refused, naming the metric, rather than statistics of inf or NaN; a metric beside
    it that is fine is not named."""
    t = pa.table({"arm": ["a", "a", "b"], "y": values, "ok": [1.0, 2.0, 3.0]})
    with pytest.raises(NonFiniteValues) as refused:
        aggregate(t, "arm", [MetricSpec("y", "y"), MetricSpec("ok", "ok")])
    assert list(refused.value.problems) == ["y"]
    assert refused.value.problems["y"].startswith(problem)


def test_aggregate_rejects_unknown_arm_column() -> None:
    with pytest.raises(ValueError, match="arm column 'variant' not in table"):
        aggregate(pa.table({"arm": ["a"], "y": [1.0]}), "variant", [MetricSpec("y", "y")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "median"}, "kind must be one of"),
        ({"kind": "ratio"}, "needs a denominator_column"),
        ({"kind": "mean", "denominator_column": "d"}, "only for kind 'ratio'"),
        ({"kind": "ratio", "denominator_column": "d", "covariate_column": "x"}, "not supported"),
    ],
)
def test_metric_spec_validates(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricSpec("m", "y", **kwargs)
