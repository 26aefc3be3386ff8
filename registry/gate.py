"""The validation gate: may a newly trained version take the `challenger` alias?

A pure function of the candidate's validation metrics, the thresholds of models.yaml and,
when there is a champion, the champion's AUC on the same holdout rows.

>>> from configs.schema import GateThresholds
>>> result = evaluate_gate(
...     {"auc": 0.74, "baseline_auc": 0.73, "calibration_error": 0.004},
...     GateThresholds(),
...     champion_auc=0.75,
... )
>>> result.passed, result.reasons
(False, ['auc 0.7400 is more than 0.0050 below the champion 0.7500 on the same holdout'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from configs.schema import GateThresholds


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class GateResult:
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
        }


def evaluate_gate(
    metrics: dict[str, float], thresholds: GateThresholds, champion_auc: float | None = None
) -> GateResult:
    auc, baseline = metrics["auc"], metrics["baseline_auc"]
    ece = metrics["calibration_error"]
    checks = [
        GateCheck(
            "min_auc",
            auc >= thresholds.min_auc,
            f"auc {auc:.4f} {'>=' if auc >= thresholds.min_auc else 'is below'} "
            f"the floor {thresholds.min_auc:.4f}",
        ),
        GateCheck(
            "auc_vs_baseline",
            auc - baseline >= thresholds.min_auc_lift_vs_baseline,
            f"auc {auc:.4f} minus logistic-regression baseline {baseline:.4f} is "
            f"{auc - baseline:+.4f} (needs >= {thresholds.min_auc_lift_vs_baseline:+.4f})",
        ),
        GateCheck(
            "calibration_error",
            ece <= thresholds.max_calibration_error,
            f"calibration error {ece:.4f} "
            f"{'<=' if ece <= thresholds.max_calibration_error else 'is above'} "
            f"the bound {thresholds.max_calibration_error:.4f}",
        ),
    ]
    if champion_auc is not None:
        drop = champion_auc - auc
        ok = drop <= thresholds.max_auc_drop_vs_champion
        checks.append(
            GateCheck(
                "auc_vs_champion",
                ok,
                f"auc {auc:.4f} is within {thresholds.max_auc_drop_vs_champion:.4f} of the "
                f"champion {champion_auc:.4f} on the same holdout"
                if ok
                else f"auc {auc:.4f} is more than {thresholds.max_auc_drop_vs_champion:.4f} "
                f"below the champion {champion_auc:.4f} on the same holdout",
            )
        )
    return GateResult(tuple(checks))
