"""experiment_report() and render_html() on generated unit tables with a known effect."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import numpy as np
import pyarrow as pa
import pytest

from configs.schema import ExperimentConfig
from experiments.report.data import experiment_report, metric_specs
from experiments.report.render import render_html
from experiments.stats.analysis import analyze
from experiments.stats.power import sample_size_per_arm

T0 = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 1, 20, tzinfo=dt.UTC)
BASE_RATE = 0.11  # E[0.05 + 0.02 * Poisson(3)]

# The packaged scored-vs-rules experiment, written out so that edits to the YAML file
# cannot change what these tests check.
SCORED_VS_RULES = {
    "name": "scored-vs-rules",
    "arms": [
        {"name": "rules", "weight": 0.5, "policy": "rules"},
        {"name": "scored", "weight": 0.5, "policy": "epsilon_greedy", "model": "champion"},
    ],
    "control": "rules",
    "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
    "guardrail_metrics": [
        {"name": "revenue_per_customer", "kind": "mean", "column": "revenue"},
        {
            "name": "revenue_per_decision",
            "kind": "ratio",
            "column": "revenue",
            "denominator": "decisions",
        },
    ],
    "minimum_detectable_effect": 0.05,
    "alpha": 0.05,
    "power": 0.8,
    "method": "sequential",
    "correction": "holm",
    "cuped_covariate": "orders_12m",
}


def config(**changes) -> ExperimentConfig:
    return ExperimentConfig.model_validate({**SCORED_VS_RULES, **changes})


def units(
    n: int = 20_000,
    lift: float = 0.0,
    seed: int = 0,
    share: float = 0.5,
    days: float = 10.0,
    revenue_factor: float = 1.0,
) -> pa.Table:
    """Units of a two-arm experiment: the scored arm converts (1 + lift) times as often;
    its converters spend ``revenue_factor`` times as much. Sorted by first exposure."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < share, "rules", "scored")
    treated = arm == "scored"
    orders = rng.poisson(3.0, n).astype(float)
    converted = rng.random(n) < (0.05 + 0.02 * orders) * (1.0 + lift * treated)
    revenue = converted * rng.gamma(2.0, 20.0, n) * np.where(treated, revenue_factor, 1.0)
    offsets = np.sort(rng.random(n)) * days * 86_400e6
    first = np.datetime64(T0.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
    return pa.table(
        {
            "customer_id": [f"c{i:06d}" for i in range(n)],
            "arm": arm,
            "first_exposure": pa.array(first).cast(pa.timestamp("us", tz="UTC")),
            "decisions": 1 + rng.poisson(1.0, n),
            "converted": converted.astype(np.int64),
            "revenue": revenue,
            "covariate": orders,
        }
    )


def primary(report: dict) -> dict:
    return next(r for r in report["results"] if r["metric"] == "conversion")


@pytest.fixture(scope="module")
def shipped() -> dict:
    return experiment_report(config(), units(lift=0.3), holdout_units=321, now=NOW)


@pytest.fixture(scope="module")
def srm_flagged() -> dict:
    return experiment_report(config(), units(lift=0.3, share=0.53), now=NOW)


def test_report_shape(shipped: dict) -> None:
    assert {
        "experiment", "method", "arms", "control", "units", "srm", "results", "timeline",
        "planned_n_per_arm", "ship_decision", "holdout_units",
    } <= set(shipped)  # fmt: skip
    assert shipped["experiment"] == "scored-vs-rules"
    assert shipped["method"] == "sequential"
    assert shipped["arms"] == {"rules": 0.5, "scored": 0.5}
    assert shipped["control"] == "rules"
    assert shipped["holdout_units"] == 321
    assert sum(shipped["units"].values()) == 20_000
    assert shipped["srm"]["expected_share"] == {"rules": 0.5, "scored": 0.5}
    assert [r["metric"] for r in shipped["results"]] == [
        "conversion",
        "revenue_per_customer",
        "revenue_per_decision",
    ]


def test_results_are_analyze_with_the_configured_options(shipped: dict) -> None:
    c = config()
    direct = analyze(
        units(lift=0.3),
        "arm",
        "rules",
        metric_specs(c, with_covariate=True),
        "sequential",
        {"rules": 0.5, "scored": 0.5},
        0.05,
        "holm",
    )
    assert shipped["results"] == direct["results"]
    assert shipped["srm"] == direct["srm"]
    cuped = {r["metric"]: r["variance_reduction"] for r in shipped["results"]}
    assert cuped["conversion"] is not None and cuped["revenue_per_customer"] is not None
    assert cuped["revenue_per_decision"] is None  # ratio: no CUPED


@pytest.mark.parametrize("method", ["frequentist", "sequential"])
def test_intervals_cover_the_true_effect(method: str) -> None:
    lift = 0.1
    covered_abs = covered_rel = 0
    # Intervals are not adjusted for multiplicity, so the correction does not matter here
    # (and "none" skips statsmodels' Holm, which runs gc.collect() on every call).
    experiment = config(method=method, correction="none")
    for seed in range(20):
        row = primary(experiment_report(experiment, units(8_000, lift, seed, days=1), now=NOW))
        covered_abs += row["abs"]["ci_low"] <= BASE_RATE * lift <= row["abs"]["ci_high"]
        covered_rel += row["rel"]["ci_low"] <= lift <= row["rel"]["ci_high"]
    # 95 % intervals: at least 17 of 20 (P(fewer) < 2 % for exact 95 % coverage).
    assert covered_abs >= 17 and covered_rel >= 17


def test_a_a_test_is_not_shipped() -> None:
    for seed in range(1, 4):
        report = experiment_report(config(), units(lift=0.0, seed=seed), now=NOW)
        assert report["ship_decision"]["decision"] != "ship"
    report = experiment_report(config(), units(lift=0.0, seed=0), now=NOW)
    assert report["ship_decision"]["decision"] == "keep running"
    assert primary(report)["p_value_adjusted"] >= 0.05
    assert "planned units per arm" in report["ship_decision"]["reasons"][-1]


def test_clear_positive_effect_ships(shipped: dict) -> None:
    assert not shipped["srm"]["flag"]
    assert shipped["ship_decision"]["decision"] == "ship"
    assert shipped["ship_decision"]["arm"] == "scored"
    assert "conversion" in shipped["ship_decision"]["reasons"][0]


def test_bayesian_ships_on_chance_to_win() -> None:
    report = experiment_report(config(method="bayesian"), units(lift=0.3), now=NOW)
    row = primary(report)
    assert row["chance_to_win"] >= 0.95 and row["p_value_adjusted"] is None
    assert report["ship_decision"]["decision"] == "ship"


def test_guardrail_loss_blocks_shipping() -> None:
    report = experiment_report(config(), units(lift=0.3, revenue_factor=0.5), now=NOW)
    assert primary(report)["abs"]["estimate"] > 0
    assert report["ship_decision"]["decision"] == "don't ship"
    assert any("guardrail" in r for r in report["ship_decision"]["reasons"])


def test_significantly_negative_primary_is_not_shipped() -> None:
    report = experiment_report(config(), units(lift=-0.3), now=NOW)
    assert report["ship_decision"]["decision"] == "don't ship"


def test_srm_comes_first_and_blocks_shipping(srm_flagged: dict) -> None:
    assert srm_flagged["srm"]["flag"]
    assert srm_flagged["ship_decision"]["decision"] == "keep running"
    assert srm_flagged["ship_decision"]["reasons"][0].startswith("Sample ratio mismatch")


def test_timeline_is_cumulative_and_monotone(shipped: dict) -> None:
    timeline = shipped["timeline"]
    assert len(timeline) == 11  # 10 days from 09:00 UTC: 11 calendar days
    for arm in ("rules", "scored"):
        counts = [p["units"].get(arm, 0) for p in timeline]
        assert counts == sorted(counts)
    assert timeline[-1]["units"] == shipped["units"]
    ends = [p["end"] for p in timeline]
    assert ends == sorted(ends)
    # The last point is the full-table analysis of the primary metric, without correction.
    last = timeline[-1]["primary"]["scored"]
    assert last["abs"]["estimate"] == pytest.approx(primary(shipped)["abs"]["estimate"])
    assert last["abs"]["ci_low"] == pytest.approx(primary(shipped)["abs"]["ci_low"])


def test_short_experiment_has_twenty_points() -> None:
    report = experiment_report(config(), units(4_000, days=0.5), now=NOW)
    assert len(report["timeline"]) == 20
    assert report["timeline"][-1]["units"] == report["units"]


def test_planned_n_uses_the_observed_control_rate(shipped: dict) -> None:
    control = primary(shipped)["control_mean"]
    assert shipped["planned_n_per_arm"] == sample_size_per_arm(
        "binomial", control, 0.05, alpha=0.05, power=0.8
    )


def test_bad_input_raises_naming_the_problem() -> None:
    with pytest.raises(ValueError, match="no exposed units"):
        experiment_report(config(), units().slice(0, 0), now=NOW)
    with pytest.raises(ValueError, match="covariate"):
        experiment_report(config(), units().drop_columns(["covariate"]), now=NOW)
    only_scored = units().filter(pa.compute.equal(units()["arm"], "scored"))
    with pytest.raises(ValueError, match="rules"):
        experiment_report(config(), only_scored, now=NOW)


def test_html_is_self_contained_with_images(shipped: dict) -> None:
    page = render_html(shipped)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<style>" in page and 'class="banner ok"' in page and "banner bad" not in page
    assert "SHIP: SCORED" in page.upper() and "guardrail" in page


def test_html_shows_each_interval_with_its_own_p(shipped: dict) -> None:
    """A relative interval that includes 0 gets its own p and no colour of significance."""
    report = json.loads(json.dumps(shipped))
    row = primary(report)
    row["rel"] |= {"ci_low": -0.02, "ci_high": 0.7, "p_value": 0.1}
    page = render_html(report)
    head = "<th>abs effect [95%]</th><th>abs p</th><th>adjusted abs p</th>"
    assert head + "<th>rel lift [95%]</th><th>rel p</th>" in page
    abs_p = format(row["abs"]["p_value"], ".3g")
    lift = format(row["rel"]["estimate"], "+.1%")
    rel = f'<td>{lift}<br><span class="ci">[-2.0%, +70.0%]</span></td><td>0.1</td>'
    assert f'<td>{abs_p}</td><td class="good">' in page and rel in page


def test_html_puts_the_srm_banner_first(srm_flagged: dict) -> None:
    page = render_html(srm_flagged)
    body = page.split("<body>", 1)[1].lstrip()
    assert body.startswith('<div class="banner bad">')
    assert "Sample ratio mismatch" in body[:300]


def test_html_escapes_names(shipped: dict) -> None:
    """Names reach the page from configurations, logs and JSON reports: never as markup."""
    script = "<script>alert(1)</script>"
    text = json.dumps(shipped).replace("scored-vs-rules", "<script>x</script>")
    report = json.loads(text.replace("conversion", script).replace("scored", "<b>arm</b>"))
    nothing = {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None}
    row = {"segment": script, "arm": "<b>arm</b>", "n": 1, "control_n": 1, "mean": None}
    row |= {"control_mean": None, "abs": nothing, "rel": nothing}
    report["segments"] = [{"feature": script, "rows": [row]}]
    page = render_html(report)
    assert "<script" not in page.lower() and "<b>arm" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'<td class="l">{escaped}<span class="tag p">primary</span>' in page  # results
    assert f"<li>{escaped}: &lt;b&gt;arm&lt;/b&gt; is significantly better" in page  # decision
    assert f"<h2>{escaped} by segment</h2>" in page and f'<td class="l">{escaped}</td>' in page
    assert "<title>&lt;script&gt;x&lt;/script&gt; · experiment report</title>" in page
    assert "<h1>&lt;script&gt;x&lt;/script&gt;</h1>" in page
    assert "&lt;b&gt;arm&lt;/b&gt; 10," in page and "&amp;" not in page  # SRM banner, once
    assert '<div class="decision">ship: &lt;b&gt;arm&lt;/b&gt;</div>' in page
