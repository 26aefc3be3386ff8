"""False alarms and detection delay on the synthetic world, features as the model sees them.

Each scenario is one seeded world. The reference is its first 10 000 logged decisions
(half the size of a model version's training profile, to keep the test fast); the rest is
cut into windows of 2 000 decisions, each compared with the reference as `drift run` does:
the contract's encoded features (the design matrix without the action column), categories
and booleans categorical, Evidently's default tests, a window drifting when >= 50 % of the
13 features drift. `pytest -s` prints the measured rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from configs.loader import load_config
from drift.compare import compare_tables
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract, design_matrix, model_feature_names
from liftgate.sim.world import Timeline, World

CONFIG = load_config()
CONTRACT = FeatureContract(CONFIG.features)
CATALOGUE = ActionCatalogue(CONFIG.actions)
FEATURES = list(CONTRACT.names)
CATEGORICAL = [s.name for s in CONTRACT.specs if s.dtype in ("category", "bool")]
REFERENCE_ROWS = 10_000
WINDOW = 2_000
#: Stationary: 40 windows; at most 5 % of them (2) may alarm.
STATIONARY_WINDOWS = 40
MAX_FALSE_ALARM_RATE = 0.05


def design(logged: pd.DataFrame) -> pd.DataFrame:
    """The model's design matrix of the logged decisions, by column name."""
    features, _ = CONTRACT.transform({c: logged[c] for c in logged.columns}, len(logged))
    matrix = design_matrix(features, CATALOGUE.codes(logged["action"]))
    return pd.DataFrame(matrix, columns=model_feature_names(CONTRACT))


def windows(scenario: str, n_windows: int, seed: int = 21):
    timeline = Timeline(drift_at=0.5)
    world = World(seed=seed, n_customers=20_000, scenario=scenario, timeline=timeline)
    logged = world.logged(rows=REFERENCE_ROWS + n_windows * WINDOW)
    matrix = design(logged)
    result = compare_tables(
        matrix.iloc[:REFERENCE_ROWS],
        matrix.iloc[REFERENCE_ROWS:],
        columns=FEATURES,
        categorical=CATEGORICAL,
        chunk_size=WINDOW,
    )
    after = (logged["decision_ts"].iloc[REFERENCE_ROWS:] >= timeline.drift_start).to_numpy()
    # Window i is before the drift, straddles it, or is fully after it.
    regime = [
        "after"
        if after[c.start : c.end].all()
        else "before"
        if not after[c.start : c.end].any()
        else "straddles"
        for c in result.chunks
    ]
    return result.chunks, regime


def column_rates(chunks) -> dict[str, float]:
    return {n: float(np.mean([c.columns[n].drifted for c in chunks])) for n in FEATURES}


def test_stationary_world_rarely_alarms() -> None:
    chunks, _ = windows("stationary", STATIONARY_WINDOWS)
    alarms = sum(c.dataset_drift for c in chunks)
    rate = alarms / len(chunks)
    print(
        f"\nstationary: {alarms}/{len(chunks)} windows of {WINDOW:,} rows alarmed "
        f"({rate:.1%}); max drift share {max(c.drift_share for c in chunks):.2f}; "
        f"per-feature false-alarm rates {column_rates(chunks)}"
    )
    assert rate <= MAX_FALSE_ALARM_RATE


def test_covariate_drift_is_flagged_in_the_first_window_after_it_starts() -> None:
    chunks, regime = windows("covariate_drift", 20)
    first_after = regime.index("after")
    alarms_before = [
        c.index for c, r in zip(chunks, regime, strict=True) if r == "before" and c.dataset_drift
    ]
    after = [c for c, r in zip(chunks, regime, strict=True) if r == "after"]
    detected = [c.dataset_drift for c in after]
    delay = detected.index(True) if any(detected) else None
    shares = [c.drift_share for c in after]
    print(
        f"\ncovariate_drift: windows before the drift {regime.count('before')}, "
        f"straddling it {regime.count('straddles')}; first window fully after it: "
        f"{first_after}, flagged {delay} window(s) later; {sum(detected)}/{len(after)} windows "
        f"after the drift flagged (drift share {min(shares):.2f}-{max(shares):.2f}); "
        f"{len(alarms_before)} alarms before it; "
        f"drifted features {sorted(n for n, r in column_rates(after).items() if r > 0.5)}"
    )
    assert delay == 0
    assert sum(detected) / len(after) >= 0.9
    assert not alarms_before


def test_concept_drift_leaves_the_features_alone() -> None:
    """P(conversion | x) changes but x does not: input drift cannot see it (outcomes can)."""
    chunks, regime = windows("concept_drift", 10)
    alarms = sum(c.dataset_drift for c in chunks)
    print(f"\nconcept_drift: {alarms}/{len(chunks)} windows alarmed on input features")
    assert "after" in regime and alarms == 0
