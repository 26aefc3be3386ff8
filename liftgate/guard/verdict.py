"""The canary verdict: one pure function from an interval's analysed data to what to do next.

Automated canary analysis in the manner of Kayenta (Netflix and Google, "Automated Canary
Analysis at Netflix with Kayenta", 2018): the challenger serves a share of traffic (the
canary) next to a comparison group, the champion at the same share (the *baseline*, so
both groups are equally young and equally exposed to the same moment) or else the rest of
traffic (the *stable* group). Every analysis interval the guard calls :func:`judge_interval`
with what was observed and gets a :class:`Verdict`:

- **ROLLBACK** when a KPI is confidently worse than allowed: the upper bound of the
  anytime-valid confidence sequence of the relative lift (canary over comparison, Howard et
  al. 2021, :mod:`experiments.stats.sequential`) is below ``-max_relative_drop``; or when
  an operations check (p95 latency, absolute and as a ratio to the comparison, error rate,
  fallback-rate increase) fails in ``failure_limit`` consecutive intervals that each had
  ``min_decisions`` in both groups; or on drift when ``on_drift: rollback``.
- **HOLD** on drift (``drift_share >= max_drift_share`` or Evidently's dataset drift) when
  ``on_drift: hold``; the caller alerts. ``ignore`` records the evidence and goes on.
- **HOLD** until the step's minimums are met: ``min_units`` in *each* group since the step
  began, and ``min_duration_s``.
- **PROMOTE** (to the next step) once the minimums are met, no KPI fails, every KPI could be
  judged, the KPIs with ``require_non_inferiority`` have a lower bound above
  ``-max_relative_drop``, and the latest judged operations interval passed. Otherwise
  **HOLD**, or **INCONCLUSIVE** once ``max_duration_s`` has passed (also when the units
  minimum is still unmet then, as ``RolloutStep`` says: "after max_duration_s without
  passing"); the caller applies ``on_inconclusive``.

Precedence: ROLLBACK > drift HOLD > minimums HOLD > PROMOTE / INCONCLUSIVE / HOLD.

A KPI is judged only once both groups hold the first step's ``min_units`` (the smallest
sample at which the rollout could first pass): the confidence sequence rests on a
time-uniform CLT, and with a few dozen converters a heavy-tailed KPI such as revenue can
put its whole interval below the limit by chance.

The KPI statistics are **cumulative since the rollout started**, not since the step began:
the confidence sequence holds at every look simultaneously, so analysing the growing sample
at every interval and across steps keeps its 1 - alpha coverage (no peeking penalty), and
the early steps' units keep counting. With a baseline both groups share every period in
equal proportion; against the stable group they do not (the canary's share grows), so a
KPI whose level drifts over the day is best judged with ``baseline: true``. A KPI fails
only when its whole interval lies below the limit, so the probability that a challenger
that is truly no worse than the limit is ever rolled back on that KPI is at most about
alpha / 2 (one side of the two-sided sequence, asymptotically), or k alpha / 2 for k KPIs
(union bound).
The evidence carries the anytime-valid p-value for "no difference" and its e-value 1 / p
(Waudby-Smith et al. 2023).

>>> from configs.schema import KpiRule, RolloutConfig, RolloutStep
>>> from experiments.stats import ProportionStatistic
>>> rollout = RolloutConfig(
...     name="demo",
...     steps=[RolloutStep(weight=0.05, min_units=1_000, min_duration_s=60), RolloutStep(weight=1)],
...     metrics=[KpiRule(name="conversion", kind="binomial", column="converted")])
>>> progress = StepProgress(step_index=0, canary_units=20_000, comparison_units=20_000,
...                         elapsed_s=600.0)
>>> worse = KpiObservation("conversion", canary=ProportionStatistic(20_000, 1_780),
...                        comparison=ProportionStatistic(20_000, 2_000))
>>> verdict = judge_interval(rollout, progress, [worse])
>>> print(verdict.kind, verdict.summary)
ROLLBACK conversion −11.0 % (95 % CS −19.9 % … −2.1 %, anytime p 0.003) below the −2 % limit
>>> same = KpiObservation("conversion", canary=ProportionStatistic(20_000, 1_990),
...                       comparison=ProportionStatistic(20_000, 2_000))
>>> print(judge_interval(rollout, progress, [same]).summary)  # doctest: +NORMALIZE_WHITESPACE
step 1 (5 %) passed: conversion −0.5 % (95 % CS −10.1 % … +9.1 %, anytime p 1.000); next:
100 % (the challenger becomes champion)

References: Howard, Ramdas, McAuliffe, Sekhon (2021), "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics 49(2); Waudby-Smith, Arbour,
Sinha, Kennedy, Ramdas (2023), "Time-uniform central limit theory and asymptotic
confidence sequences", arXiv:2103.06476; Kayenta's judge (spinnaker/kayenta,
``MannWhitneyClassifier``: a metric is Low when the upper bound of its confidence interval
lies below the allowed decrease), here with an anytime-valid interval instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import pyarrow as pa

from configs.schema import (
    DriftRules,
    KpiRule,
    MetricConfig,
    OperationsRules,
    RolloutConfig,
    RolloutStep,
)
from drift.headline import dataset_drift_headline
from experiments.stats.aggregate import MetricSpec, NonFiniteValues, aggregate
from experiments.stats.frequentist import two_sided_test
from experiments.stats.sequential import sequential_test
from experiments.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    SampleMeanStatistic,
    Statistic,
)
from liftgate.core.vocabulary import BASELINE, CANARY, STABLE

Method = Literal["sequential", "frequentist"]


class VerdictKind(StrEnum):
    HOLD = "HOLD"
    PROMOTE = "PROMOTE"
    ROLLBACK = "ROLLBACK"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class KpiObservation:
    """One KPI's sufficient statistics in the canary and its comparison group, cumulative
    since the rollout started (see the module docstring). ``problem`` says why they could
    not be computed (values not finite); such a KPI is not judged."""

    metric: str
    canary: Statistic
    comparison: Statistic
    problem: str = ""


@dataclass(frozen=True)
class GroupOperations:
    """One group's decisions in the latest interval; ``p95_latency_ms`` None if unmeasured."""

    decisions: int
    errors: int
    fallbacks: int
    p95_latency_ms: float | None


@dataclass(frozen=True)
class OperationsObservation:
    """The latest interval's operations of the canary and its comparison group."""

    canary: GroupOperations
    comparison: GroupOperations


@dataclass(frozen=True)
class DriftObservation:
    """The latest drift report; ``checked`` is False when it could not run (too few rows)."""

    checked: bool
    dataset_drift: bool
    drift_share: float
    drifted_columns: tuple[str, ...] = ()
    report_path: str | None = None
    columns: int = 0  # how many were tested, for "3 of 15 columns"


@dataclass(frozen=True)
class StepProgress:
    """Where the rollout stands: the step (an index into ``RolloutConfig.steps``), the units
    each group received since the step began, and the seconds since it began."""

    step_index: int
    canary_units: int
    comparison_units: int
    elapsed_s: float


@dataclass(frozen=True)
class Evidence:
    """One rule as judged this interval.

    ``observed`` is the number the rule is about (for KPI rules the relative lift's
    estimate, whose ``interval`` bound is what meets ``threshold``); ``passed`` is None when
    the rule could not be judged (too little data); ``e_value`` is 1 / p for the sequential
    test (None for the fixed-horizon baseline, whose p-value has no such reading).
    """

    rule: str
    metric: str
    observed: float | None
    threshold: float | None
    passed: bool | None
    canary: float | None = None
    comparison: float | None = None
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    e_value: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; non-finite numbers (an infinite e-value) become None."""
        interval = None if self.interval is None else [_finite(x) for x in self.interval]
        return {
            "rule": self.rule,
            "metric": self.metric,
            "observed": _finite(self.observed),
            "threshold": _finite(self.threshold),
            "passed": self.passed,
            "canary": _finite(self.canary),
            "comparison": _finite(self.comparison),
            "interval": interval,
            "p_value": _finite(self.p_value),
            "e_value": _finite(self.e_value),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    """What to do after this interval, why in one line, and the evidence behind it.

    ``operation_failures`` is the updated count of consecutive failed operations intervals,
    to pass to the next call.
    """

    kind: VerdictKind
    summary: str
    evidence: tuple[Evidence, ...]
    operation_failures: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "summary": self.summary,
            "operation_failures": self.operation_failures,
            "evidence": [e.to_dict() for e in self.evidence],
        }


def judge_interval(
    rollout: RolloutConfig,
    progress: StepProgress,
    kpis: Sequence[KpiObservation],
    operations: OperationsObservation | None = None,
    drift: DriftObservation | None = None,
    operation_failures: int = 0,
    *,
    method: Method = "sequential",
) -> Verdict:
    """The verdict of one analysis interval; see the module docstring for the rules.

    ``kpis`` holds one observation per ``rollout.metrics`` rule; ``operations`` None (no
    interval data) leaves ``operation_failures`` unchanged, as does an interval with fewer
    than ``min_decisions`` in either group. ``method="frequentist"`` replaces the confidence
    sequence by a fixed-horizon interval: only the benchmark's peeking baseline uses it.
    """
    if not 0 <= progress.step_index < len(rollout.steps):
        raise ValueError(
            f"step_index {progress.step_index} is not a step of {rollout.name!r} "
            f"(it has {len(rollout.steps)})"
        )
    step = rollout.steps[progress.step_index]
    alpha = rollout.analysis.alpha
    kpi_rows = _kpi_evidence(rollout.metrics, kpis, alpha, method, rollout.steps[0].min_units)
    ops_rows, ops_failed = _operations_evidence(rollout.operations, operations)
    if ops_failed is None:
        failures = operation_failures
    else:
        failures = operation_failures + 1 if ops_failed else 0
    drift_rows = _drift_evidence(rollout.drift, drift)
    minimum_rows = _minimum_evidence(step, progress)
    evidence = (*kpi_rows, *ops_rows, *drift_rows, *minimum_rows)

    def verdict(kind: VerdictKind, summary: str) -> Verdict:
        return Verdict(kind, summary, evidence, failures)

    drifting = [e for e in drift_rows if e.passed is False]
    reasons = [
        f"{_kpi_text(e, alpha, method)} below the {_limit_text(e.threshold)} limit"
        for e in kpi_rows
        if e.rule == "kpi" and e.passed is False
    ]
    if failures >= rollout.failure_limit:
        failing = _failing_text(ops_rows)
        reasons.append(f"operations failed {failures} consecutive intervals, latest: {failing}")
    if drifting and rollout.drift.on_drift == "rollback":
        reasons.append(_drift_text(drifting[0]))
    if reasons:
        return verdict(VerdictKind.ROLLBACK, "; ".join(reasons))
    if drifting and rollout.drift.on_drift == "hold":
        return verdict(VerdictKind.HOLD, f"holding: {_drift_text(drifting[0])}")

    step_name = f"step {progress.step_index + 1} ({_share_text(step.weight)})"
    timed_out = step.max_duration_s is not None and progress.elapsed_s >= step.max_duration_s
    unmet = [e for e in minimum_rows if not e.passed]
    if unmet and not timed_out:
        return verdict(VerdictKind.HOLD, f"{step_name} holding for " + _minimums_text(unmet))

    blockers = [f"only {_minimums_text(unmet)}"] if unmet else []
    for e in kpi_rows:
        if e.passed is None and e.rule == "kpi":
            blockers.append(f"{e.metric} not judged ({e.detail or 'undefined lift'})")
        elif e.passed is False and e.rule == "non_inferiority":
            blockers.append(
                f"{_kpi_text(e, alpha, method)} not yet non-inferior "
                f"(needs a lower bound above {_limit_text(e.threshold)})"
            )
    if failures:
        failing = _failing_text(ops_rows)
        blockers.append(f"operations failing ({failures} of {rollout.failure_limit}): {failing}")
    if timed_out:
        return verdict(
            VerdictKind.INCONCLUSIVE,
            f"{step_name} inconclusive after {progress.elapsed_s:.0f} s: "
            f"{'; '.join(blockers)}; on_inconclusive: {rollout.on_inconclusive}",
        )
    if blockers:
        return verdict(VerdictKind.HOLD, f"{step_name} holding: {'; '.join(blockers)}")
    judged = ", ".join(_kpi_text(e, alpha, method) for e in kpi_rows if e.rule == "kpi")
    return verdict(
        VerdictKind.PROMOTE,
        f"{step_name} passed: {judged}; next: {_next_text(rollout.steps, progress.step_index)}",
    )


def kpi_observations(units: pa.Table, metrics: Sequence[MetricConfig]) -> list[KpiObservation]:
    """KPI observations from a unit table (``experiments.units.experiment_units``' output).

    The ``arm`` column holds ``canary``, ``baseline`` or ``stable``; the comparison group is
    the baseline when it has units, else the stable group. A group without units gets empty
    statistics, which the verdict cannot judge (it holds).

    >>> t = pa.table({"arm": ["canary", "baseline", "stable", "canary"],
    ...               "converted": [1, 0, 1, 0], "revenue": [30.0, 0.0, 12.0, 0.0]})
    >>> [(k.metric, k.canary.n, k.comparison.n) for k in kpi_observations(
    ...     t, [MetricConfig(name="conversion", kind="binomial", column="converted")])]
    [('conversion', 2, 1)]
    """
    specs = [
        MetricSpec(m.name, m.column, m.kind, denominator_column=m.denominator) for m in metrics
    ]
    problems: dict[str, str] = {}
    while True:  # each refusal leaves out the metrics it names, until the rest aggregate
        try:
            stats = aggregate(units, "arm", [s for s in specs if s.name not in problems])
            break
        except NonFiniteValues as refused:
            problems.update(refused.problems)
    empty = {spec.name: _empty_statistic(spec) for spec in specs}
    canary = {**empty, **stats.get(CANARY, {})}
    comparison = {**empty, **(stats.get(BASELINE) or stats.get(STABLE, {}))}
    return [
        KpiObservation(m.name, canary[m.name], comparison[m.name], problems.get(m.name, ""))
        for m in metrics
    ]


def _empty_statistic(spec: MetricSpec) -> Statistic:
    if spec.kind == "binomial":
        return ProportionStatistic(0, 0.0)
    if spec.kind == "ratio":
        nothing = SampleMeanStatistic(0, 0.0, 0.0)
        return RatioStatistic(m=nothing, d=nothing, m_d_sum_of_products=0.0, n=0)
    return SampleMeanStatistic(0, 0.0, 0.0)


def _kpi_evidence(
    rules: Sequence[KpiRule],
    kpis: Sequence[KpiObservation],
    alpha: float,
    method: Method,
    min_units: int,
) -> list[Evidence]:
    """Each KPI's relative lift and its interval; not judged (passed None) while either
    group holds fewer than ``min_units`` units, or when the lift is undefined or its
    interval cannot be computed (statistics or bounds that are not finite): a bound the
    guard cannot compute is no evidence either way."""
    observed = {k.metric: k for k in kpis}
    expected = [r.name for r in rules]
    if sorted(observed) != sorted(expected) or len(observed) != len(kpis):
        raise ValueError(f"kpis must observe each metric once: {expected}; got {list(observed)}")
    test = sequential_test if method == "sequential" else two_sided_test
    rows = []
    for rule in rules:
        kpi = observed[rule.name]
        limit = -rule.max_relative_drop
        estimate = low = high = p = None
        problem = kpi.problem
        if not problem:
            try:
                rel = test(kpi.comparison, kpi.canary, alpha).rel
                estimate, low, high, p = rel.estimate, rel.ci_low, rel.ci_high, rel.p_value
            except ArithmeticError as exc:  # sums too large for the moments (overflow)
                problem = f"its statistics cannot be computed ({exc})"
        bounded = low is not None and high is not None
        if not problem and bounded and (_finite(low) is None or _finite(high) is None):
            problem = "its interval is not finite"
        enough = min(kpi.canary.n, kpi.comparison.n) >= min_units
        judged = bounded and enough and not problem
        e_value = None if p is None or method != "sequential" else (1 / p if p > 0 else math.inf)
        common: dict[str, Any] = dict(
            metric=rule.name,
            observed=_finite(estimate),
            threshold=limit,
            canary=kpi.canary.mean,
            comparison=kpi.comparison.mean,
            interval=(low, high) if bounded and not problem else None,
            p_value=p,
            e_value=e_value,
            detail=problem or ("" if enough else f"fewer than {min_units} units per group"),
        )
        rows.append(Evidence("kpi", passed=bool(high >= limit) if judged else None, **common))
        if rule.require_non_inferiority:
            passed = bool(low > limit) if judged else None
            rows.append(Evidence("non_inferiority", passed=passed, **common))
    return rows


def _operations_evidence(
    rules: OperationsRules, ops: OperationsObservation | None
) -> tuple[list[Evidence], bool | None]:
    """The interval's operations checks and whether the interval failed (None: not judged)."""
    if ops is None:
        return [], None
    canary, comparison = ops.canary, ops.comparison
    fewest = min(canary.decisions, comparison.decisions)
    if fewest < rules.min_decisions:
        row = Evidence(
            "operations",
            "decisions",
            observed=fewest,
            threshold=rules.min_decisions,
            passed=None,
            canary=canary.decisions,
            comparison=comparison.decisions,
            detail="too few decisions in the interval to judge operations",
        )
        return [row], None
    latency, comparison_latency = canary.p95_latency_ms, comparison.p95_latency_ms
    rows = []
    if rules.max_p95_latency_ms is not None and latency is not None:
        rows.append(
            _at_most(
                "p95_latency",
                "p95_latency_ms",
                latency,
                rules.max_p95_latency_ms,
                latency,
                comparison_latency,
            )
        )
    if rules.max_p95_latency_ratio is not None and latency and comparison_latency:
        rows.append(
            _at_most(
                "p95_latency_ratio",
                "p95_latency_ms",
                latency / comparison_latency,
                rules.max_p95_latency_ratio,
                latency,
                comparison_latency,
            )
        )
    if rules.max_error_rate is not None:
        error_rate = canary.errors / canary.decisions
        rows.append(
            _at_most(
                "error_rate",
                "error_rate",
                error_rate,
                rules.max_error_rate,
                error_rate,
                comparison.errors / comparison.decisions,
            )
        )
    if rules.max_fallback_rate_increase is not None:
        fallback_rate = canary.fallbacks / canary.decisions
        comparison_rate = comparison.fallbacks / comparison.decisions
        rows.append(
            _at_most(
                "fallback_rate_increase",
                "fallback_rate",
                fallback_rate - comparison_rate,
                rules.max_fallback_rate_increase,
                fallback_rate,
                comparison_rate,
            )
        )
    return rows, any(not e.passed for e in rows)


def _at_most(
    rule: str,
    metric: str,
    observed: float,
    limit: float,
    canary: float | None,
    comparison: float | None,
) -> Evidence:
    """An operations check that passes when ``observed <= limit``."""
    observed = float(observed)
    return Evidence(rule, metric, observed, limit, bool(observed <= limit), canary, comparison)


def _drift_evidence(rules: DriftRules, drift: DriftObservation | None) -> list[Evidence]:
    if not rules.enabled or drift is None:
        return []
    if not drift.checked:
        detail = "drift check could not run"
        return [Evidence("drift", "drift_share", None, rules.max_drift_share, None, detail=detail)]
    share, limit = drift.drift_share, rules.max_drift_share
    drifting = drift.dataset_drift or share >= limit
    detail = dataset_drift_headline(len(drift.drifted_columns), drift.columns, limit)
    if drift.drifted_columns:
        detail += f" ({', '.join(drift.drifted_columns)})"
    if drift.dataset_drift and share < limit:  # a drift check judged with its own threshold
        detail += "; the drift check flagged dataset drift"
    if drift.report_path:
        detail += f"; report: {drift.report_path}"
    return [Evidence("drift", "drift_share", share, limit, not drifting, detail=detail)]


def _minimum_evidence(step: RolloutStep, progress: StepProgress) -> list[Evidence]:
    units = min(progress.canary_units, progress.comparison_units)
    return [
        Evidence(
            "minimum_units",
            "units",
            units,
            step.min_units,
            bool(units >= step.min_units),
            progress.canary_units,
            progress.comparison_units,
        ),
        Evidence(
            "minimum_duration",
            "elapsed_s",
            progress.elapsed_s,
            step.min_duration_s,
            bool(progress.elapsed_s >= step.min_duration_s),
        ),
    ]


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _signed(x: float) -> str:
    return f"{x:+.1%}".replace("-", "−").replace("%", " %")


def _limit_text(limit: float | None) -> str:
    return f"{(limit or 0.0) * 100:g} %".replace("-", "−")


def _share_text(weight: float) -> str:
    return f"{weight * 100:g} %"


def _p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _kpi_text(e: Evidence, alpha: float, method: Method) -> str:
    if e.interval is None or e.observed is None:
        return f"{e.metric} not judged"
    low, high = e.interval
    level = f"{(1 - alpha) * 100:g} %"
    interval, p = ("CS", "anytime p") if method == "sequential" else ("CI", "p")
    return (
        f"{e.metric} {_signed(e.observed)} ({level} {interval} {_signed(low)} … {_signed(high)}, "
        f"{p} {_p_text(e.p_value)})"
    )


def _operations_text(e: Evidence) -> str:
    if e.rule == "p95_latency":
        return f"p95 latency {e.observed:.0f} ms > {e.threshold:g} ms"
    if e.rule == "p95_latency_ratio":
        return (
            f"p95 latency {e.canary:.0f} ms = {e.observed:.2f} × the comparison's "
            f"{e.comparison:.0f} ms > {e.threshold:g} ×"
        )
    if e.rule == "error_rate":
        return f"error rate {e.observed:.1%} > {e.threshold:.1%}".replace("%", " %")
    return (
        f"fallback rate {e.canary:.1%} vs {e.comparison:.1%}, up {e.observed:.1%} > "
        f"{e.threshold:.1%}"
    ).replace("%", " %")


def _failing_text(ops_rows: list[Evidence]) -> str:
    failing = [_operations_text(e) for e in ops_rows if e.passed is False]
    return "; ".join(failing) or "no judgement this interval, the last judged one failed"


def _drift_text(e: Evidence) -> str:
    return e.detail or "dataset drift"


def _minimums_text(unmet: list[Evidence]) -> str:
    parts = []
    for e in unmet:
        if e.rule == "minimum_units":
            parts.append(
                f"{e.observed:.0f} of {e.threshold:.0f} units per variant "
                f"(canary {e.canary:.0f}, comparison {e.comparison:.0f})"
            )
        else:
            parts.append(f"{e.observed:.0f} of {e.threshold:g} s")
    return " and ".join(parts)


def _next_text(steps: Sequence[RolloutStep], index: int) -> str:
    if index + 1 == len(steps) or steps[index + 1].weight == 1.0:
        return "100 % (the challenger becomes champion)"
    return _share_text(steps[index + 1].weight)
