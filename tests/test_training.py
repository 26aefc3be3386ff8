"""Tests for training metrics and the validation gate (registry/training.py, registry/gate.py).

The gate is a pure function and the metrics are small; a tiny world covers `train_scorer`
in a few seconds without MLflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from configs.loader import load_config
from configs.schema import GateThresholds
from liftgate.app.cli.main import app
from liftgate.core.errors import InputError
from liftgate.core.home import HOME_ENV
from liftgate.sim.world import World
from registry.gate import evaluate_gate
from registry.training import (
    MIN_ROWS_PER_CLASS,
    data_fingerprint,
    expected_calibration_error,
    rows_needed,
    train_scorer,
)

# --- expected calibration error ---------------------------------------------------------------


def test_ece_matches_a_hand_computation() -> None:
    # Sorted by p, three equal-mass bins of two:
    #   p 0.1, 0.2 | y 0, 0 -> |0.0 - 0.15| = 0.15
    #   p 0.3, 0.6 | y 1, 1 -> |1.0 - 0.45| = 0.55
    #   p 0.8, 0.9 | y 1, 0 -> |0.5 - 0.85| = 0.35
    # ECE = 2/6 * (0.15 + 0.55 + 0.35) = 0.35
    p = np.array([0.8, 0.1, 0.6, 0.9, 0.2, 0.3])
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    assert expected_calibration_error(y, p, bins=3) == pytest.approx(0.35)


def test_ece_with_unequal_bins_weights_by_bin_size() -> None:
    # Five rows in two bins: [0.1, 0.2, 0.4] (y 0, 1, 0) and [0.7, 0.9] (y 1, 1).
    p = np.array([0.1, 0.2, 0.4, 0.7, 0.9])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    hand = 3 / 5 * abs(1 / 3 - 0.7 / 3) + 2 / 5 * abs(1.0 - 0.8)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(hand)


def test_ece_with_more_bins_than_rows_is_the_mean_absolute_error() -> None:
    p = np.array([0.2, 0.5, 0.9])
    y = np.array([0.0, 1.0, 1.0])
    assert expected_calibration_error(y, p, bins=10) == pytest.approx(np.mean(np.abs(y - p)))


def test_ece_of_a_calibrated_forecast_is_small() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.5, 200_000)
    y = (rng.random(len(p)) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.clip(p * 1.5, 0, 1)) > 0.05


# --- the validation gate ----------------------------------------------------------------------

GOOD = {"auc": 0.75, "baseline_auc": 0.74, "calibration_error": 0.01}


def failed(metrics: dict, champion_auc: float | None = None, **thresholds) -> list[str]:
    result = evaluate_gate(metrics, GateThresholds(**thresholds), champion_auc)
    return [c.name for c in result.checks if not c.passed]


def test_gate_passes_a_good_candidate() -> None:
    result = evaluate_gate(GOOD, GateThresholds())
    assert result.passed
    assert result.reasons == []
    assert [c.name for c in result.checks] == ["min_auc", "auc_vs_baseline", "calibration_error"]
    document = result.to_dict()
    assert document["passed"] is True
    assert [c["name"] for c in document["checks"]] == [c.name for c in result.checks]


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"auc": 0.55, "baseline_auc": 0.5}, "min_auc"),
        ({"baseline_auc": 0.76}, "auc_vs_baseline"),
        ({"calibration_error": 0.03}, "calibration_error"),
    ],
)
def test_each_check_fails_on_its_own(change: dict, check: str) -> None:
    metrics = {**GOOD, **change}
    result = evaluate_gate(metrics, GateThresholds())
    assert not result.passed
    assert failed(metrics) == [check]
    assert len(result.reasons) == 1


def test_gate_reasons_name_the_figures() -> None:
    [reason] = evaluate_gate({**GOOD, "calibration_error": 0.03}, GateThresholds()).reasons
    assert "0.0300" in reason and "0.0200" in reason


def test_gate_boundaries_are_inclusive() -> None:
    thresholds = {"min_auc": 0.75, "max_calibration_error": 0.25, "min_auc_lift_vs_baseline": 0.0}
    metrics = {"auc": 0.75, "baseline_auc": 0.75, "calibration_error": 0.25}
    assert failed(metrics, **thresholds) == []
    assert failed(metrics, champion_auc=1.0, max_auc_drop_vs_champion=0.25, **thresholds) == []


def test_gate_lift_threshold_comes_from_the_config() -> None:
    assert failed(GOOD, min_auc_lift_vs_baseline=0.02) == ["auc_vs_baseline"]
    assert failed(GOOD, min_auc=0.8) == ["min_auc"]


@pytest.mark.parametrize(
    ("champion_auc", "passes"), [(None, True), (0.70, True), (0.754, True), (0.76, False)]
)
def test_gate_compares_with_the_champion(champion_auc: float | None, passes: bool) -> None:
    result = evaluate_gate(GOOD, GateThresholds(), champion_auc)
    assert result.passed is passes
    names = [c.name for c in result.checks]
    assert ("auc_vs_champion" in names) is (champion_auc is not None)
    if not passes:
        assert failed(GOOD, champion_auc) == ["auc_vs_champion"]
        assert "below the champion 0.7600" in result.reasons[0]


unit = st.floats(0, 1)


@given(auc=unit, baseline=unit, ece=unit, champion=st.none() | unit)
def test_gate_passes_exactly_when_every_threshold_holds(
    auc: float, baseline: float, ece: float, champion: float | None
) -> None:
    t = GateThresholds()
    result = evaluate_gate(
        {"auc": auc, "baseline_auc": baseline, "calibration_error": ece}, t, champion
    )
    holds = [
        auc >= t.min_auc,
        auc - baseline >= t.min_auc_lift_vs_baseline,
        ece <= t.max_calibration_error,
        champion is None or champion - auc <= t.max_auc_drop_vs_champion,
    ]
    assert result.passed is all(holds)
    assert len(result.reasons) == holds.count(False)


# --- train_scorer on a tiny world -------------------------------------------------------------


@pytest.fixture(scope="module")
def logged() -> pd.DataFrame:
    return World(seed=3, n_customers=4_000).logged(rows=30_000)


@pytest.fixture(scope="module")
def trained(logged: pd.DataFrame):
    return train_scorer(logged, load_config(), seed=0)


def test_validation_rows_are_the_most_recent(logged: pd.DataFrame, trained) -> None:
    data = trained.dataset
    fraction = load_config().models.scorer.validation_fraction
    assert data.is_valid.sum() == round(len(logged) * fraction)
    assert not data.is_valid[: data.train.sum()].any()  # train first, then validation
    assert trained.metrics["n_valid"] + trained.metrics["n_train"] == len(logged)


def test_trained_model_beats_chance_and_is_calibrated(trained) -> None:
    metrics = trained.metrics
    assert metrics["auc"] > 0.68
    assert metrics["calibration_error"] < 0.02
    assert abs(metrics["mean_prediction"] - metrics["base_rate"]) < 0.02
    assert {f"auc_{a}" for a in ("no_action", "email_20")} <= set(metrics)
    assert sum(trained.feature_importance.values()) == pytest.approx(1.0)


def test_shuffled_labels_give_a_useless_model(logged: pd.DataFrame) -> None:
    broken = train_scorer(logged, load_config(), seed=0, shuffle_labels=True)
    assert broken.metrics["auc"] < 0.56
    assert not evaluate_gate(broken.metrics, load_config().models.gate).passed


def test_missing_columns_are_named(logged: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="converted"):
        train_scorer(logged.drop(columns=["converted"]), load_config())


def test_too_few_rows_or_conversions_name_what_training_needs(logged: pd.DataFrame) -> None:
    """Not a LightGBM or scikit-learn traceback: the minimums, and what the data holds."""
    with pytest.raises(InputError, match="too few logged decisions") as tiny:
        train_scorer(logged.iloc[:50], load_config())
    needed = rows_needed(load_config().models.scorer)
    assert "50 rows (training 40 rows" in str(tiny.value)
    assert f"at least {needed:,} rows" in str(tiny.value)
    assert f"at least {MIN_ROWS_PER_CLASS} converted" in str(tiny.value)
    recent = logged.sort_values("decision_ts").iloc[:2_000].copy()
    recent.loc[recent.index[-400:], "converted"] = False  # no conversion among validation rows
    with pytest.raises(InputError, match="validation 400 rows, 0 converted"):
        train_scorer(recent, load_config())


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    return tmp_path


def test_train_on_a_tiny_world_or_a_csv_exits_2_naming_the_file(
    logged: pd.DataFrame, cli_home: Path
) -> None:
    World(seed=3, n_customers=1_000).write(cli_home / "tiny", rows=50)
    result = CliRunner().invoke(app, ["train", "--data", str(cli_home / "tiny")])
    assert result.exit_code == 2, result.output
    path = cli_home / "tiny" / "logged.parquet"
    assert f"{path}: too few logged decisions to train: 50 rows" in result.stderr
    assert "Traceback" not in result.output
    logged.iloc[:1_000].to_csv(cli_home / "logged.csv", index=False)
    result = CliRunner().invoke(app, ["train", "--data", str(cli_home / "logged.csv")])
    assert result.exit_code == 2, result.output
    assert f"{cli_home / 'logged.csv'}: not a Parquet file; expected the Parquet file" in (
        result.stderr
    )


def test_data_fingerprint_follows_the_content(logged: pd.DataFrame) -> None:
    assert data_fingerprint(logged) == data_fingerprint(logged.copy())
    changed = logged.copy()
    changed.loc[0, "revenue"] += 1.0
    assert data_fingerprint(changed) != data_fingerprint(logged)
