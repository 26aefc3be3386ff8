"""Tests for the synthetic world (liftgate/sim/world/): determinism, a ground truth with
heterogeneous effects, exact logging propensities, drift scenarios and `liftgate world`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from liftgate.app.cli.main import app
from liftgate.sim.world import World

SEED = 11
runner = CliRunner()


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=SEED, n_customers=20_000)


@pytest.fixture(scope="module")
def logged(world: World) -> pd.DataFrame:
    return world.logged(rows=100_000)


def drift_start(world: World) -> pd.Timestamp:
    return pd.Timestamp(world.timeline.drift_start)


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_world() -> None:
    a, b = World(seed=5, n_customers=2_000), World(seed=5, n_customers=2_000)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    pd.testing.assert_frame_equal(a.logged(3_000), b.logged(3_000))
    np.testing.assert_array_equal(
        a.conversion_probability(a.customers), b.conversion_probability(b.customers)
    )


def test_different_seed_different_world() -> None:
    a, b = World(seed=5, n_customers=2_000), World(seed=6, n_customers=2_000)
    assert not a.customers.equals(b.customers)
    assert not a.logged(3_000).equals(b.logged(3_000))
    # The unobserved taste depends on the seed: the same customers get another truth.
    assert not np.array_equal(
        a.conversion_probability(a.customers), b.conversion_probability(a.customers)
    )


# --- ground truth -----------------------------------------------------------------------------


def test_probabilities_are_strictly_between_0_and_1(world: World) -> None:
    p = world.conversion_probability(world.customers)
    assert p.shape == (len(world.customers), len(world.action_ids))
    assert ((p > 0) & (p < 1)).all()


def test_the_best_action_depends_on_the_segment(world: World) -> None:
    ids = np.asarray(world.action_ids)
    best = pd.DataFrame(
        {
            "segment": world.customers["segment"],
            "best": ids[world.oracle_actions(world.customers)],
        }
    )
    assert best["best"].nunique() >= 3
    shares = pd.crosstab(best["segment"], best["best"], normalize="index")
    assert shares.loc["loyal"].idxmax() == "no_action"
    assert shares.loc["bargain_hunter"].idxmax() == "email_20"
    assert shares.loc["bargain_hunter", "email_20"] > 0.8
    assert shares.loc["new"].idxmax() == "free_shipping"
    assert shares.loc["new", "free_shipping"] > 0.6


def test_oracle_never_picks_an_ineligible_action(world: World) -> None:
    best = world.oracle_actions(world.customers)
    desktop = world.customers["device"].to_numpy() == "desktop"
    assert desktop.any()
    assert not (best[desktop] == world.catalogue.index["push_reminder"]).any()


def test_push_hurts_dormant_customers_and_helps_push_openers(world: World) -> None:
    customers = world.customers
    p = world.conversion_probability(customers)
    k = world.catalogue.index
    push_effect = p[:, k["push_reminder"]] - p[:, k["no_action"]]
    dormant = customers["segment"].to_numpy() == "dormant"
    openers = (customers["push_open_rate"].to_numpy() > 0.3) & ~dormant
    assert push_effect[dormant].mean() < 0
    assert push_effect[openers].mean() > 0


def test_expected_reward_is_probability_times_value_minus_cost(world: World) -> None:
    customers = world.customers.iloc[:100]
    expected = (
        world.conversion_probability(customers) * world.order_value(customers)
        - world.catalogue.costs
    )
    np.testing.assert_allclose(world.expected_reward(customers), expected)


# --- logged history ---------------------------------------------------------------------------


def test_uniform_propensity_is_one_over_the_eligible_actions(
    world: World, logged: pd.DataFrame
) -> None:
    eligible = world.eligibility(logged).sum(axis=1)
    np.testing.assert_allclose(logged["propensity"].to_numpy(), 1.0 / eligible)
    assert set(eligible) == {4, 5}  # desktop customers cannot take the push reminder
    assert (logged["logging_policy"] == "uniform").all()


def test_uniform_logging_picks_actions_at_their_propensity(logged: pd.DataFrame) -> None:
    mobile = logged[logged["device"] != "desktop"]
    shares = mobile["action"].value_counts(normalize=True)
    se = np.sqrt(0.2 * 0.8 / len(mobile))
    assert (abs(shares - 0.2) < 5 * se).all(), shares


def test_epsilon_greedy_propensities(world: World) -> None:
    epsilon = 0.3
    logged = world.logged(rows=30_000, policy="epsilon_greedy", epsilon=epsilon)
    eligible = world.eligibility(logged)
    n_eligible = eligible.sum(axis=1)
    codes = world.catalogue.codes(world.catalogue.fallback_order)
    greedy_code = codes[np.argmax(eligible[:, codes], axis=1)]
    greedy = world.catalogue.codes(logged["action"]) == greedy_code
    expected = np.where(greedy, 1 - epsilon + epsilon / n_eligible, epsilon / n_eligible)
    np.testing.assert_allclose(logged["propensity"].to_numpy(), expected)
    # The greedy action is logged about as often as its propensity says.
    expected_share = (1 - epsilon + epsilon / n_eligible).mean()
    se = np.sqrt(expected_share * (1 - expected_share) / len(logged))
    assert abs(greedy.mean() - expected_share) < 5 * se


def test_conversion_rate_per_action_matches_the_truth(world: World, logged: pd.DataFrame) -> None:
    p_all = world.conversion_probability(logged, logged["decision_ts"].to_numpy())
    p = p_all[np.arange(len(logged)), world.catalogue.codes(logged["action"])]
    frame = pd.DataFrame({"action": logged["action"], "y": logged["converted"], "p": p})
    for action, rows in frame.groupby("action"):
        se = np.sqrt((rows["p"] * (1 - rows["p"])).sum()) / len(rows)
        gap = abs(rows["y"].mean() - rows["p"].mean())
        assert gap < 4 * se, (action, rows["y"].mean(), rows["p"].mean(), se)


@pytest.mark.parametrize("policy", ["uniform", "epsilon_greedy"])
def test_push_reminder_is_never_logged_for_desktop(world: World, policy: str) -> None:
    logged = world.logged(rows=20_000, policy=policy, epsilon=0.5)
    desktop = logged["device"] == "desktop"
    assert desktop.sum() > 1_000
    assert not (logged.loc[desktop, "action"] == "push_reminder").any()
    assert (logged.loc[~desktop, "action"] == "push_reminder").any()


def test_conversion_times_follow_decisions(logged: pd.DataFrame) -> None:
    converted = logged["converted"].to_numpy()
    assert 0 < converted.mean() < 0.5
    after = logged.loc[converted, "conversion_ts"] > logged.loc[converted, "decision_ts"]
    assert after.all()
    assert logged.loc[~converted, "conversion_ts"].isna().all()
    assert (logged.loc[converted, "revenue"] > 0).all()
    assert (logged.loc[~converted, "revenue"] == 0).all()
    assert logged["decision_ts"].is_monotonic_increasing
    assert logged["decision_id"].is_unique


# --- drift scenarios --------------------------------------------------------------------------


def test_covariate_drift_shifts_arrivals_after_drift_start(logged: pd.DataFrame) -> None:
    drifting = World(seed=SEED, n_customers=20_000, scenario="covariate_drift")
    shifted = drifting.logged(rows=100_000)
    start = drift_start(drifting)

    def summary(frame: pd.DataFrame) -> tuple[float, float]:
        return frame["recency_days"].mean(), (frame["device"] == "android").mean()

    before_recency, before_android = summary(shifted[shifted["decision_ts"] < start])
    after_recency, after_android = summary(shifted[shifted["decision_ts"] >= start])
    stationary_recency, stationary_android = summary(logged[logged["decision_ts"] < start])

    assert after_recency > 1.4 * before_recency
    assert after_android > before_android + 0.15
    # Before the drift, arrivals look like the stationary world's.
    assert abs(before_recency - stationary_recency) < 0.05 * stationary_recency
    assert abs(before_android - stationary_android) < 0.02
    # Covariate drift moves who arrives, not how anyone responds.
    late = np.full(len(drifting.customers), np.datetime64("2026-12-01"))
    np.testing.assert_array_equal(
        drifting.conversion_probability(drifting.customers, late),
        drifting.conversion_probability(drifting.customers),
    )


def test_concept_drift_changes_the_truth_not_the_customers(world: World) -> None:
    drifting = World(seed=SEED, n_customers=20_000, scenario="concept_drift")
    pd.testing.assert_frame_equal(drifting.customers, world.customers)
    customers = drifting.customers
    start = np.datetime64(drifting.timeline.drift_start.replace(tzinfo=None))
    before = drifting.conversion_probability(customers, np.full(len(customers), start - 1))
    after = drifting.conversion_probability(customers, np.full(len(customers), start))
    np.testing.assert_array_equal(before, world.conversion_probability(customers))
    k = drifting.catalogue.index
    np.testing.assert_array_equal(after[:, k["no_action"]], before[:, k["no_action"]])
    assert (after[:, k["push_reminder"]] < before[:, k["push_reminder"]]).all()
    assert not np.array_equal(after[:, k["email_20"]], before[:, k["email_20"]])
    assert (
        drifting.oracle_actions(customers, np.full(len(customers), start))
        != (world.oracle_actions(customers))
    ).mean() > 0.05
    table = drifting.truth_table()
    assert set(table["regime"]) == {"before_drift", "after_drift"}
    assert len(table) == 2 * len(customers) * len(drifting.action_ids)


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        World(seed=1, n_customers=100, scenario="sideways")  # type: ignore[arg-type]


# --- the command line -------------------------------------------------------------------------


def test_world_generate_writes_four_parquet_files(tmp_path: Path) -> None:
    out = tmp_path / "world"
    result = runner.invoke(
        app, ["world", "generate", "--rows", "5000", "--out", str(out), "--seed", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # one JSON document and nothing else
    assert summary["logged_rows"] == 5_000
    assert summary["seed"] == 3
    assert set(summary["files"]) == {"customers", "logged", "truth", "consent"}
    for name in ("customers", "logged", "truth", "consent"):
        assert Path(summary["files"][name]) == out / f"{name}.parquet"
    logged = pq.read_table(out / "logged.parquet")
    assert logged.num_rows == 5_000
    assert b"liftgate.world" in logged.schema.metadata
    customers = pq.read_table(out / "customers.parquet")
    assert customers.num_rows == summary["customers"]
    truth = pq.read_table(out / "truth.parquet")
    assert truth.num_rows == summary["customers"] * 5
    consent = pq.read_table(out / "consent.parquet")
    assert consent.num_rows == summary["customers"] * 2  # email and push
    frame = logged.to_pandas()
    assert summary["conversion_rate"] == pytest.approx(frame["converted"].mean())
    pd.testing.assert_frame_equal(
        frame, World(seed=3, n_customers=summary["customers"]).logged(5_000)
    )


def test_world_generate_refuses_an_unknown_scenario(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["world", "generate", "--rows", "100", "--out", str(tmp_path), "--scenario", "x"]
    )
    assert result.exit_code == 2
    assert "--scenario" in result.stderr
    assert "stationary" in result.stderr
    assert not (tmp_path / "logged.parquet").exists()
