"""Overlap diagnostics of importance weights: effective sample size and the largest weight.

Importance-weighted estimates are only as good as the overlap between the logging policy
π_b and the evaluation policy π_e. Kish's effective sample size of the weights,
ESS = (Σ w)² / Σ w², is the number of equally weighted rows that would give the same
variance of a weighted mean; ESS / n near 1 means the policies agree, near 0 that a few
rows carry the estimate. We warn when

- ESS / n < ``MIN_ESS_RATIO`` = 0.1 (fewer than one row in ten effectively counts; a
  deterministic target under a uniform logging policy over K actions has ESS / n ≈ 1/K, so
  this flags targets far from the logger or loggers with more than ten actions), or
- the largest weight > ``MAX_WEIGHT`` = 100 (a single row counts as a hundred: some
  propensity is below 1 % for an action the target takes), or
- no row has a positive weight (the target never takes a logged action: nothing to see).

>>> import numpy as np
>>> d = weight_diagnostics(np.array([2.0, 0.0, 2.0, 0.0]))
>>> d.ess, d.max_weight, d.warnings
(2.0, 2.0, [])
>>> weight_diagnostics(np.r_[np.zeros(99), 200.0]).warnings[0].split(":")[0]
'poor overlap'

Reference: Kish (1965), "Survey Sampling", Wiley; Owen (2013), "Monte Carlo theory, methods
and examples", ch. 9.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_ESS_RATIO = 0.1
MAX_WEIGHT = 100.0


@dataclass(frozen=True)
class WeightDiagnostics:
    n: int
    ess: float
    max_weight: float
    mean_weight: float
    warnings: list[str] = field(default_factory=list)

    @property
    def ess_ratio(self) -> float:
        return self.ess / self.n if self.n else float("nan")


def weight_diagnostics(
    weights: np.ndarray, min_ess_ratio: float = MIN_ESS_RATIO, max_weight: float = MAX_WEIGHT
) -> WeightDiagnostics:
    """ESS, the largest and mean weight, and warnings when overlap is poor (see module)."""
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    total, squares = float(w.sum()), float(np.dot(w, w))
    ess = total * total / squares if squares > 0 else 0.0
    largest = float(w.max()) if n else 0.0
    warnings = []
    if squares == 0:
        warnings.append(
            "poor overlap: the evaluation policy never takes a logged action "
            "(every importance weight is 0)"
        )
    else:
        if ess < min_ess_ratio * n:
            warnings.append(
                f"poor overlap: effective sample size {ess:,.0f} is {ess / n:.1%} of "
                f"{n:,} rows (< {min_ess_ratio:.0%}); importance-weighted estimates are noisy"
            )
        if largest > max_weight:
            warnings.append(
                f"poor overlap: largest importance weight {largest:,.1f} > {max_weight:g}; "
                "a few rows dominate IPW/DR"
            )
    mean = float(w.mean()) if n else float("nan")
    return WeightDiagnostics(n, ess, largest, mean, warnings)
