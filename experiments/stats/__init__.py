"""The experiment statistics engine: pure functions over sufficient statistics.

Aggregate once (:func:`aggregate`, one Arrow group-by), then every test is O(1) over the
per-arm statistics. Nothing here reads files, speaks HTTP or knows about Ray.

>>> from experiments.stats import ProportionStatistic, two_sided_test
>>> r = two_sided_test(ProportionStatistic(1000, 100), ProportionStatistic(1000, 100))
>>> r.abs.estimate, r.abs.p_value
(0.0, 1.0)
"""

from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.analysis import analyze, analyze_statistics
from experiments.stats.bayesian import BayesianResult, GaussianPrior, bayesian_test
from experiments.stats.cuped import adjust_pair, pooled_theta, variance_reduction
from experiments.stats.effect import Effect, EffectMoments, effect_moments
from experiments.stats.frequentist import TestResult, two_sided_test
from experiments.stats.multiple import adjust_p_values
from experiments.stats.power import duration_days, sample_size_per_arm, standardized_effect
from experiments.stats.sequential import anytime_p_value, halfwidth, sequential_test
from experiments.stats.srm import SRMResult, srm_check
from experiments.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    Statistic,
)

__all__ = [
    "BayesianResult",
    "Effect",
    "EffectMoments",
    "GaussianPrior",
    "MetricSpec",
    "ProportionStatistic",
    "RatioStatistic",
    "RegressionAdjustedStatistic",
    "SRMResult",
    "SampleMeanStatistic",
    "Statistic",
    "TestResult",
    "adjust_pair",
    "adjust_p_values",
    "aggregate",
    "analyze",
    "analyze_statistics",
    "anytime_p_value",
    "bayesian_test",
    "duration_days",
    "effect_moments",
    "halfwidth",
    "pooled_theta",
    "sample_size_per_arm",
    "sequential_test",
    "srm_check",
    "standardized_effect",
    "two_sided_test",
    "variance_reduction",
]
