"""The effect per segment (experiments/uplift/segments.py), against the synthetic world's truth,
in the experiment report and through `liftgate experiment report`."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, ConfigError, load_config
from configs.schema import ExperimentConfig, FeatureSpec
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from experiments.report.data import experiment_report
from experiments.report.render import render_html
from experiments.stats.aggregate import MetricSpec
from experiments.uplift.segments import segment_effects, segment_labels, segment_specs
from liftgate.app.cli.main import app
from liftgate.core.contract import FeatureContract
from liftgate.core.home import HOME_ENV, Home
from liftgate.sim.world import World

CONFIG = load_config()
CONTRACT = FeatureContract(CONFIG.features)
SPECS = {spec.name: spec for spec in CONFIG.features.features}
CONVERSION = MetricSpec("conversion", "converted", "binomial")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def world():
    """A world, its customers' encoded features and true P(convert) of the two actions."""
    world = World(seed=5, n_customers=30_000)
    customers = world.customers
    encoded, _ = CONTRACT.transform({c: customers[c] for c in customers.columns}, len(customers))
    p = world.conversion_probability(world.customers)
    k = world.catalogue.index
    return world, encoded, p[:, k["no_action"]], p[:, k["email_20"]]


def experiment(world, seed: int, features=("segment",)) -> pa.Table:
    """Units of a 50/50 experiment, no_action (control) against email_20 (treatment),
    with outcomes drawn from the world's truth."""
    _, encoded, p_control, p_treatment = world
    rng = np.random.default_rng([seed, 1_000])  # not the world's stream: World(seed=5) draws
    n = len(p_control)
    treated = rng.random(n) < 0.5
    converted = rng.random(n) < np.where(treated, p_treatment, p_control)
    seconds = np.datetime64(T0.replace(tzinfo=None), "s") + np.arange(n).astype("timedelta64[s]")
    columns = {
        "arm": np.where(treated, "treatment", "control"),
        "first_exposure": pa.array(seconds).cast(pa.timestamp("us", tz="UTC")),
        "decisions": np.ones(n, dtype=np.int64),
        "converted": converted.astype(np.int64),
        "revenue": np.zeros(n),
    }
    for name in features:
        columns[f"feature:{name}"] = encoded[:, CONTRACT.names.index(name)]
    return pa.table(columns)


def test_segment_intervals_cover_the_true_effects_of_the_world(world) -> None:
    customers = world[0].customers
    true_effect = world[3] - world[2]
    truth = {s: true_effect[customers["segment"] == s].mean() for s in SPECS["segment"].categories}
    covered, total = 0, 0
    for seed in range(20):
        [by_feature] = segment_effects(
            experiment(world, seed), [SPECS["segment"]], CONVERSION, "control"
        )
        for row in by_feature["rows"]:
            effect = row["abs"]
            covered += effect["ci_low"] <= truth[row["segment"]] <= effect["ci_high"]
            total += 1
    print(f"\nper-segment 95 % intervals covering the true effect: {covered}/{total}")
    assert total == 100
    assert covered >= 88  # 95 % intervals: 95 expected, 88 is four standard errors below
    # The effects differ by segment and one experiment tells them apart.
    rows = {r["segment"]: r["abs"] for r in by_feature["rows"]}
    assert rows["bargain_hunter"]["ci_low"] > rows["regular"]["ci_high"]
    assert rows["regular"]["ci_low"] > rows["loyal"]["ci_high"]
    assert rows["loyal"]["ci_low"] < 0.0 < rows["bargain_hunter"]["ci_low"]


def test_numeric_features_are_cut_at_quantiles_of_their_raw_values() -> None:
    spec = SPECS["orders_12m"]  # int, log1p-encoded
    raw = np.arange(100.0)
    labels, order = segment_labels(np.log1p(raw), spec, bins=4)
    assert order == ["[0, 24)", "[24, 49)", "[49, 74)", "[74, 99]"]
    assert [int((labels == name).sum()) for name in order] == [24, 25, 25, 26]
    constant, only = segment_labels(np.zeros(10), SPECS["tenure_days"])
    assert only == ["0"] and set(constant) == {"0"}
    flags, order = segment_labels(np.array([1.0, 0.0, 1.0]), SPECS["cart_abandoned_7d"])
    assert order == ["false", "true"] and flags.tolist() == ["true", "false", "true"]


def test_a_segment_without_an_arm_reports_no_effect() -> None:
    spec = FeatureSpec(name="tier", dtype="category", categories=["a", "b"], default="a")
    units = pa.table(
        {
            "arm": ["c", "t", "c", "c"],
            "feature:tier": [0.0, 0.0, 1.0, 1.0],
            "converted": [0, 1, 1, 0],
        }
    )
    [by_feature] = segment_effects(units, [spec], CONVERSION, "c")
    lonely = by_feature["rows"][1]
    assert (lonely["segment"], lonely["n"], lonely["control_n"]) == ("b", 0, 2)
    assert lonely["abs"]["estimate"] is None and lonely["mean"] is None


def test_bad_input_names_the_feature_or_column() -> None:
    with pytest.raises(ValueError, match="segment_by: .*'colour'"):
        segment_specs(CONFIG.features, ["segment", "colour"])
    units = pa.table({"arm": ["c", "t"], "converted": [0, 1]})
    with pytest.raises(ValueError, match="'feature:segment' missing"):
        segment_effects(units, [SPECS["segment"]], CONVERSION, "c")


def report_config(**changes) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "email-20",
            "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
            **changes,
        }
    )


def test_the_report_has_a_segment_section_only_when_configured(world) -> None:
    units = experiment(world, seed=0, features=("segment", "discount_affinity"))
    config = report_config(segment_by=["segment", "discount_affinity"])
    report = experiment_report(config, units, now=T0, features=CONFIG.features)
    segment, affinity = report["segments"]
    assert segment["feature"] == "segment" and segment["binning"] == "values"
    assert [r["segment"] for r in segment["rows"]] == SPECS["segment"].categories
    assert affinity["binning"] == "quantiles" and len(affinity["rows"]) == 4
    assert sum(r["n"] + r["control_n"] for r in segment["rows"]) == units.num_rows
    json.dumps(report)
    page = render_html(report)
    assert "conversion by segment</h2>" in page and "bargain_hunter" in page
    plain = experiment_report(report_config(), units, now=T0)
    assert "segments" not in plain and "by segment</h2>" not in render_html(plain)
    with pytest.raises(ValueError, match="segment_by"):
        experiment_report(config, units, now=T0)


def test_the_loader_names_an_unknown_segment_feature(tmp_path) -> None:
    for path in DEFAULT_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "experiments").mkdir()
    document = report_config(segment_by=["colour"]).model_dump(mode="json")
    (tmp_path / "experiments" / "email-20.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"email-20\.yaml: segment_by: .*\['colour'\]"):
        load_config(tmp_path)


def test_report_command_prints_the_segments_from_the_logs(tmp_path, monkeypatch) -> None:
    for path in DEFAULT_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "experiments").mkdir()
    document = report_config(segment_by=["segment"]).model_dump(mode="json")
    (tmp_path / "experiments" / "email-20.yaml").write_text(yaml.safe_dump(document))
    home = Home(tmp_path / "home")
    monkeypatch.setenv(HOME_ENV, str(home.root))
    rng = np.random.default_rng(0)
    row = dict(
        contract_version="1", actions=["a"], scores=[1.0], probabilities=[0.1], chosen="a",
        propensity=1.0, policy="rules", model_name="m", model_version="1",
        model_alias="champion", experiment="email-20", fallback=False, fallback_reason=None,
        cold_start=False, latency_ms=1.0, trace_id="t", request_id=None,
    )  # fmt: skip
    segment = CONTRACT.names.index("segment")
    with (
        LogWriter(
            home.decision_log, DecisionRecord, max_rows=10**6, max_buffered_rows=10**6
        ) as decisions,
        LogWriter(
            home.outcome_log, OutcomeRecord, max_rows=10**6, max_buffered_rows=10**6
        ) as outcomes,
    ):
        for i in range(2_000):
            features = [0.0] * len(CONTRACT.names)
            features[segment] = float(i % 5)
            ts = T0 + dt.timedelta(minutes=i)
            arm = "treatment" if rng.random() < 0.5 else "control"
            decisions.append(
                DecisionRecord(**row, decision_id=f"d{i}", ts=ts, customer_id=f"c{i}", arm=arm,
                               features=features)
            )  # fmt: skip
            if rng.random() < 0.1:
                outcomes.append(
                    OutcomeRecord(outcome_id=f"o{i}", decision_id=f"d{i}", ts=ts,
                                  event="conversion", value=1.0, received_ts=ts,
                                  known_decision=True)
                )  # fmt: skip
    args = ["experiment", "report", "email-20", "--config-dir", str(tmp_path)]
    report = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert [r["segment"] for r in report["segments"][0]["rows"]] == SPECS["segment"].categories
    assert sum(r["n"] + r["control_n"] for r in report["segments"][0]["rows"]) == 2_000
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "conversion by segment" in text.stdout and "bargain_hunter" in text.stdout
