"""The guard's drift signal: the drift job on the champion's recent decisions.

The reference is the champion version's training profile, the current window its last
`drift.window_rows` served decisions (`drift.job.run_drift_job`, Evidently). Too few
decisions to compare is "not checked", not "no drift": the verdict then ignores it.
"""

from __future__ import annotations

from collections.abc import Callable

from configs.loader import LiftgateConfig
from configs.schema import RolloutConfig
from liftgate.core.home import Home
from liftgate.core.vocabulary import CHAMPION
from liftgate.guard.verdict import DriftObservation


def drift_check(
    home: Home, config: LiftgateConfig, registry: Callable[[], object]
) -> Callable[[RolloutConfig], DriftObservation]:
    """`registry` gives the caller's (lazily connected) model registry."""

    def check(rollout: RolloutConfig) -> DriftObservation:
        from drift.job import InsufficientData, run_drift_job  # pandas, Evidently: when used

        try:
            result = run_drift_job(
                home,
                config,
                CHAMPION,
                f"{rollout.drift.window_rows} rows",
                threshold=rollout.drift.max_drift_share,
                registry=registry(),
                html="on_drift",
            )
        except InsufficientData:
            return DriftObservation(checked=False, dataset_drift=False, drift_share=0.0)
        return DriftObservation(
            checked=True,
            dataset_drift=result.dataset_drift,
            drift_share=result.drift_share,
            drifted_columns=tuple(result.drifted_columns),
            report_path=result.html,
            columns=len(result.columns),
        )

    return check
