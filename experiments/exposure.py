"""Live exposure of an experiment: units and decisions per arm, and the sample-ratio check."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from configs.schema import ExperimentConfig
from experiments.stats.srm import srm_check
from liftgate.core.vocabulary import HOLDOUT


def exposure(decisions: pa.Table, config: ExperimentConfig) -> dict:
    """Units (first arm of each customer) and decisions per arm; SRM over the arms' units.

    Arms with zero weight are left out of the SRM test, and so is the holdout.
    """
    exposed = decisions.filter(pc.equal(decisions["experiment"], config.name))
    per_arm_decisions = {
        row["arm"]: row["count_all"]
        for row in exposed.group_by("arm").aggregate([([], "count_all")]).to_pylist()
    }
    first_arm = (
        exposed.sort_by([("ts", "ascending")])
        .select(["customer_id", "arm"])
        .group_by("customer_id", use_threads=False)
        .aggregate([("arm", "first")])
    )
    per_arm_units = {
        row["arm_first"]: row["count_all"]
        for row in first_arm.group_by("arm_first").aggregate([([], "count_all")]).to_pylist()
    }
    weights = {arm.name: arm.weight for arm in config.arms if arm.weight > 0}
    observed = {arm: per_arm_units.get(arm, 0) for arm in weights}
    srm = srm_check(observed, weights).to_dict() if sum(observed.values()) else None
    return {
        "experiment": config.name,
        "arms": [
            {
                "arm": arm.name,
                "weight": arm.weight,
                "units": per_arm_units.get(arm.name, 0),
                "decisions": per_arm_decisions.get(arm.name, 0),
            }
            for arm in config.arms
        ],
        "holdout": {
            "units": per_arm_units.get(HOLDOUT, 0),
            "decisions": per_arm_decisions.get(HOLDOUT, 0),
        },
        "srm": srm,
    }
