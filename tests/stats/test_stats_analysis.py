"""analyze(): the report shape, its agreement with the parts, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from statsmodels.stats.multitest import multipletests

from experiments.stats import cuped
from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.analysis import analyze, analyze_statistics
from experiments.stats.frequentist import two_sided_test
from experiments.stats.srm import srm_check

RESULT_KEYS = {
    "metric",
    "kind",
    "method",
    "arm",
    "control",
    "n",
    "mean",
    "control_n",
    "control_mean",
    "abs",
    "rel",
    "p_value_adjusted",
    "chance_to_win",
    "expected_loss",
    "variance_reduction",
}
EFFECT_KEYS = {"estimate", "ci_low", "ci_high", "p_value"}

METRICS = [
    MetricSpec("conversion", "converted", "binomial"),
    MetricSpec("revenue", "revenue", "mean", covariate_column="pre_revenue"),
    MetricSpec("revenue_per_converter", "revenue", "ratio", denominator_column="converted"),
]


def units(
    n: int = 30_000, seed: int = 0, arms=("control", "b", "c"), lift: float = 0.1
) -> pa.Table:
    rng = np.random.default_rng(seed)
    arm = rng.choice(np.array(arms), n)
    treated = arm != arms[0]
    pre = rng.gamma(2.0, 10.0, n)
    converted = rng.random(n) < (0.05 + 0.006 * pre) * (1 + lift * treated)
    revenue = converted * (2.0 * pre + rng.gamma(2.0, 5.0, n))
    return pa.table({"arm": arm, "converted": converted, "revenue": revenue, "pre_revenue": pre})


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return units()


@pytest.mark.parametrize("method", ["frequentist", "sequential", "bayesian"])
def test_report_has_exactly_the_documented_shape(table: pa.Table, method: str) -> None:
    r = analyze(table, "arm", "control", METRICS, method=method)
    assert set(r) == {"srm", "results"}
    assert set(r["srm"]) == {"p_value", "observed", "expected_share", "flag"}
    assert len(r["results"]) == 2 * 3  # two treatments x three metrics
    for row in r["results"]:
        assert set(row) == RESULT_KEYS
        assert set(row["abs"]) == EFFECT_KEYS and set(row["rel"]) == EFFECT_KEYS
        assert row["method"] == method and row["control"] == "control"
        assert (row["variance_reduction"] is not None) == (row["metric"] == "revenue")
        bayes = method == "bayesian"
        assert (row["chance_to_win"] is not None) == bayes
        assert (row["expected_loss"] is not None) == bayes
        assert (row["abs"]["p_value"] is None) == bayes
        assert (row["p_value_adjusted"] is None) == bayes
        assert row["abs"]["ci_low"] <= row["abs"]["estimate"] <= row["abs"]["ci_high"]
    json.dumps(r, allow_nan=False)  # plain JSON, no NaN


def test_frequentist_numbers_are_the_parts(table: pa.Table) -> None:
    r = analyze(table, "arm", "control", METRICS, correction="holm")
    stats = aggregate(table, "arm", METRICS)
    assert r["srm"] == srm_check({a: s["conversion"].n for a, s in stats.items()}).to_dict()
    raw = []
    for row in r["results"]:
        c, t = stats["control"][row["metric"]], stats[row["arm"]][row["metric"]]
        if row["metric"] == "revenue":
            c, t = cuped.adjust_pair(c, t)
            assert row["variance_reduction"] == pytest.approx(cuped.variance_reduction(c, t))
        expected = two_sided_test(c, t)
        assert row["abs"] == pytest.approx(expected.abs.to_dict())
        assert row["rel"] == pytest.approx(expected.rel.to_dict())
        assert row["mean"] == pytest.approx(t.unadjusted_mean)
        raw.append(row["abs"]["p_value"])
    expected_adj = multipletests(raw, method="holm")[1]
    assert [row["p_value_adjusted"] for row in r["results"]] == pytest.approx(list(expected_adj))


def test_cuped_reduces_variance_on_correlated_data(table: pa.Table) -> None:
    r = analyze(table, "arm", "control", METRICS)
    revenue = [row for row in r["results"] if row["metric"] == "revenue"]
    plain = analyze(table, "arm", "control", [MetricSpec("revenue", "revenue", "mean")])
    for adj, raw in zip(revenue, plain["results"], strict=True):
        assert adj["variance_reduction"] > 0.1
        assert (
            adj["abs"]["ci_high"] - adj["abs"]["ci_low"]
            < raw["abs"]["ci_high"] - raw["abs"]["ci_low"]
        )
        assert adj["mean"] == pytest.approx(raw["mean"])


def test_partitions_merged_give_the_same_report(table: pa.Table) -> None:
    whole = analyze(table, "arm", "control", METRICS)
    half = table.num_rows // 2
    a = aggregate(table.slice(0, half), "arm", METRICS)
    b = aggregate(table.slice(half), "arm", METRICS)
    merged = {arm: {m: a[arm][m] + b[arm][m] for m in a[arm]} for arm in a}
    assert _close(analyze_statistics(merged, "control", METRICS), whole)


def _close(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_close(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_close(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, float) and isinstance(y, float):
        return x == pytest.approx(y, rel=1e-9, abs=1e-12)
    return x == y


def test_srm_uses_weights_and_flags_a_skewed_split() -> None:
    t = units(20_000, seed=1, arms=("control", "b"))
    r = analyze(t, "arm", "control", METRICS[:1], weights={"control": 0.5, "b": 0.5})
    assert not r["srm"]["flag"]
    r = analyze(t, "arm", "control", METRICS[:1], weights={"control": 0.6, "b": 0.4})
    assert r["srm"]["flag"] and r["srm"]["expected_share"] == {"control": 0.6, "b": 0.4}


def test_aa_is_not_significant_and_integer_arms_work() -> None:
    rng = np.random.default_rng(3)
    t = pa.table({"arm": rng.integers(0, 2, 10_000), "y": rng.normal(10, 2, 10_000)})
    r = analyze(t, "arm", "0", [MetricSpec("y", "y")], method="sequential")
    assert r["results"][0]["arm"] == "1"
    assert r["results"][0]["abs"]["p_value"] > 0.05


def test_bh_and_none_corrections(table: pa.Table) -> None:
    raw = analyze(table, "arm", "control", METRICS, correction="none")
    bh = analyze(table, "arm", "control", METRICS, correction="bh")
    ps = [row["abs"]["p_value"] for row in raw["results"]]
    assert [row["p_value_adjusted"] for row in raw["results"]] == ps
    assert [row["p_value_adjusted"] for row in bh["results"]] == pytest.approx(
        list(multipletests(ps, method="fdr_bh")[1])
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arm_col": "variant"}, "arm column 'variant' not in table"),
        ({"control": "ctrl"}, "control arm 'ctrl' not found in column 'arm'"),
        ({"metrics": [MetricSpec("m", "label")]}, "column 'label' must be numeric"),
        ({"metrics": [MetricSpec("m", "missing")]}, "column 'missing' not in table"),
        ({"metrics": []}, "at least one MetricSpec"),
        ({"method": "magic"}, "method: must be one of"),
        ({"correction": "bonferroni"}, "correction: must be one of"),
        ({"alpha": 1.5}, r"alpha: must be in \(0, 1\)"),
        ({"weights": {"control": 1.0}}, r"arm\(s\) \['b'\] observed"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs: dict, message: str) -> None:
    t = pa.table({"arm": ["control", "b"] * 5, "converted": [0, 1] * 5, "label": ["x"] * 10})
    args = {
        "table": t,
        "arm_col": "arm",
        "control": "control",
        "metrics": [MetricSpec("conversion", "converted", "binomial")],
    } | kwargs
    with pytest.raises(ValueError, match=message):
        analyze(**args)
