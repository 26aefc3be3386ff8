"""Sample ratio mismatch: did the arms get the traffic shares they were configured for?

A mismatch (say 50.8 % / 49.2 % on a 50/50 split of 100,000 units) means assignment or
logging is broken — a redirect that loses users in one arm, a bot filter that acts after
assignment — and every other result of the experiment is suspect. The check is Pearson's
chi-square goodness-of-fit test of the observed unit counts against the configured weights
(``scipy.stats.chisquare``); it is flagged at p < 0.001, a threshold strict enough that a
healthy experiment checked daily is rarely flagged, as recommended by Fabijan et al. (2019).

>>> r = srm_check({"control": 50_800, "treatment": 49_200})
>>> r.flag, f"{r.p_value:.1e}"
(True, '4.2e-07')
>>> srm_check({"a": 1000, "b": 2050}, {"a": 1, "b": 2}).flag
False

References: Fabijan, Gupchup, Gupta, Omhover, Qin, Vermeer, Dmitriev (2019), "Diagnosing
Sample Ratio Mismatch in Online Controlled Experiments", KDD; Pearson (1900).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import chisquare

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMResult:
    p_value: float
    observed: dict[str, int]
    expected_share: dict[str, float]
    flag: bool

    def to_dict(self) -> dict:
        return {
            "p_value": self.p_value,
            "observed": dict(self.observed),
            "expected_share": dict(self.expected_share),
            "flag": self.flag,
        }


def srm_check(
    observed: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    threshold: float = SRM_THRESHOLD,
) -> SRMResult:
    """Chi-square test of unit counts per arm against ``weights`` (equal when None).

    Arms that are configured but received no units count as 0 observed. An observed arm
    missing from ``weights``, or a non-positive weight, is a ``ValueError``.
    """
    if weights is None:
        weights = {arm: 1.0 for arm in observed}
    unknown = [arm for arm in observed if arm not in weights]
    if unknown:
        raise ValueError(
            f"arm(s) {unknown} observed in the data but missing from weights "
            f"(expected one of {sorted(weights)})"
        )
    bad = {arm: w for arm, w in weights.items() if not w > 0}
    if bad:
        raise ValueError(f"weights must be > 0, got {bad}")
    arms = list(weights)
    total_weight = float(sum(weights.values()))
    shares = {arm: float(weights[arm]) / total_weight for arm in arms}
    counts = {arm: int(observed.get(arm, 0)) for arm in arms}
    n = sum(counts.values())
    if n == 0 or len(arms) < 2:
        p = 1.0
    else:
        f_obs = np.array([counts[a] for a in arms], dtype=float)
        f_exp = np.array([shares[a] * n for a in arms])
        p = float(chisquare(f_obs, f_exp).pvalue)
    return SRMResult(p_value=p, observed=counts, expected_share=shares, flag=p < threshold)
