"""The canary verdict: each rule, their precedence, the operations counter and the JSON."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from configs.schema import (
    DriftRules,
    KpiRule,
    MetricConfig,
    OperationsRules,
    RolloutConfig,
    RolloutStep,
)
from experiments.stats import ProportionStatistic, SampleMeanStatistic
from experiments.stats.effect import Effect
from experiments.stats.frequentist import TestResult
from liftgate.guard import verdict as verdict_module
from liftgate.guard.verdict import (
    DriftObservation,
    GroupOperations,
    KpiObservation,
    OperationsObservation,
    StepProgress,
    Verdict,
    VerdictKind,
    judge_interval,
    kpi_observations,
)

CONVERSION = KpiRule(name="conversion", kind="binomial", column="converted")
REVENUE = KpiRule(name="revenue", kind="mean", column="revenue")
MET = StepProgress(step_index=0, canary_units=20_000, comparison_units=20_000, elapsed_s=600.0)
HEALTHY = GroupOperations(decisions=1_000, errors=1, fallbacks=10, p95_latency_ms=25.0)
HEALTHY_INTERVAL = OperationsObservation(HEALTHY, HEALTHY)
DRIFTING = DriftObservation(
    checked=True,
    dataset_drift=False,
    drift_share=0.6,
    drifted_columns=("age", "income", "recency"),
    columns=5,
)


def rollout(**changes) -> RolloutConfig:
    fields = dict(
        name="test",
        steps=[
            RolloutStep(weight=0.05, min_units=1_000, min_duration_s=60),
            RolloutStep(weight=0.5, min_units=1_000, min_duration_s=60),
            RolloutStep(weight=1.0),
        ],
        metrics=[CONVERSION],
    )
    return RolloutConfig(**(fields | changes))


def conversion(canary: int, comparison: int = 2_000, n: int = 20_000) -> KpiObservation:
    return KpiObservation(
        "conversion", ProportionStatistic(n, canary), ProportionStatistic(n, comparison)
    )


EQUAL = conversion(2_000)
WORSE = conversion(1_700)  # −15 %, CS upper bound about −6 %


def only(verdict: Verdict, rule: str):
    (row,) = [e for e in verdict.evidence if e.rule == rule]
    return row


# --- KPI rules ----------------------------------------------------------------------------


def test_a_confidently_worse_kpi_rolls_back_with_its_evidence() -> None:
    verdict = judge_interval(rollout(), MET, [WORSE])
    assert verdict.kind == VerdictKind.ROLLBACK
    assert verdict.summary.startswith("conversion −15.0 % (95 % CS −")
    assert verdict.summary.endswith("below the −2 % limit")
    kpi = only(verdict, "kpi")
    assert kpi.passed is False
    assert kpi.observed == pytest.approx(-0.15)
    assert kpi.interval[1] < kpi.threshold == -0.02
    assert (kpi.canary, kpi.comparison) == (0.085, 0.1)
    assert kpi.p_value < 0.05
    assert kpi.e_value == pytest.approx(1 / kpi.p_value)


def test_a_kpi_worse_but_within_the_interval_does_not_roll_back() -> None:
    verdict = judge_interval(rollout(), MET, [conversion(1_900)])  # −5 %, CS reaches above −2 %
    assert only(verdict, "kpi").passed is True
    assert verdict.kind == VerdictKind.PROMOTE


def test_a_kpi_is_not_judged_below_the_first_steps_minimum_units() -> None:
    small = conversion(50, comparison=150, n=900)  # −67 %, but 900 units < 1,000
    progress = StepProgress(0, 900, 900, 600.0)
    verdict = judge_interval(rollout(), progress, [small])
    assert only(verdict, "kpi").passed is None
    assert only(verdict, "kpi").detail == "fewer than 1000 units per group"
    assert verdict.kind == VerdictKind.HOLD
    enough = judge_interval(rollout(), MET, [conversion(500, 1_500, 9_000)])
    assert enough.kind == VerdictKind.ROLLBACK


def test_an_undefined_kpi_blocks_promotion() -> None:
    nothing = conversion(0, comparison=0)  # zero control mean: relative lift undefined
    verdict = judge_interval(rollout(), MET, [nothing])
    assert only(verdict, "kpi").passed is None
    assert verdict.kind == VerdictKind.HOLD
    assert "conversion not judged" in verdict.summary


def test_non_inferiority_holds_until_the_lower_bound_clears_the_limit() -> None:
    strict = rollout(metrics=[CONVERSION.model_copy(update={"require_non_inferiority": True})])
    holding = judge_interval(strict, MET, [EQUAL])
    assert holding.kind == VerdictKind.HOLD
    assert only(holding, "non_inferiority").passed is False
    assert "not yet non-inferior (needs a lower bound above −2 %)" in holding.summary
    big = conversion(100_000, 100_000, 1_000_000)
    assert judge_interval(strict, MET, [big]).kind == VerdictKind.PROMOTE


def test_max_duration_turns_a_blocked_step_inconclusive() -> None:
    steps = [RolloutStep(weight=0.05, min_units=1_000, min_duration_s=60, max_duration_s=3_600)]
    strict = rollout(
        steps=steps,
        metrics=[CONVERSION.model_copy(update={"require_non_inferiority": True})],
        on_inconclusive="rollback",
    )
    before = judge_interval(strict, MET, [EQUAL])
    after = judge_interval(strict, StepProgress(0, 20_000, 20_000, 3_600.0), [EQUAL])
    assert before.kind == VerdictKind.HOLD
    assert after.kind == VerdictKind.INCONCLUSIVE
    assert after.summary.startswith("step 1 (5 %) inconclusive after 3600 s:")
    assert after.summary.endswith("on_inconclusive: rollback")


def test_unmet_units_after_max_duration_are_inconclusive_not_held_forever() -> None:
    steps = [RolloutStep(weight=0.05, min_units=50_000, min_duration_s=60, max_duration_s=3_600)]
    verdict = judge_interval(rollout(steps=steps), StepProgress(0, 20_000, 20_000, 4_000), [EQUAL])
    assert verdict.kind == VerdictKind.INCONCLUSIVE
    assert "only 20000 of 50000 units per variant" in verdict.summary


def test_kpi_observations_must_match_the_rules() -> None:
    with pytest.raises(ValueError, match="each metric once"):
        judge_interval(rollout(metrics=[CONVERSION, REVENUE]), MET, [EQUAL])
    with pytest.raises(ValueError, match="each metric once"):
        judge_interval(rollout(), MET, [EQUAL, EQUAL])
    with pytest.raises(ValueError, match="step_index 3"):
        judge_interval(rollout(), StepProgress(3, 0, 0, 0.0), [EQUAL])


def test_the_frequentist_baseline_labels_its_interval_and_has_no_e_value() -> None:
    verdict = judge_interval(rollout(), MET, [WORSE], method="frequentist")
    assert "(95 % CI " in verdict.summary and ", p < 0.001)" in verdict.summary
    assert only(verdict, "kpi").e_value is None


# --- operations -----------------------------------------------------------------------------


def interval(**canary) -> OperationsObservation:
    fields = dict(decisions=1_000, errors=1, fallbacks=10, p95_latency_ms=25.0)
    return OperationsObservation(GroupOperations(**(fields | canary)), HEALTHY)


@pytest.mark.parametrize(
    ("canary", "rule"),
    [
        (dict(p95_latency_ms=60.0), "p95_latency_ratio"),  # 2.4 × the comparison's
        (dict(errors=20), "error_rate"),  # 2 % > 1 %
        (dict(fallbacks=40), "fallback_rate_increase"),  # 4 % vs 1 %: +3 % > 2 %
    ],
)
def test_each_operations_check_fails_alone(canary: dict, rule: str) -> None:
    verdict = judge_interval(rollout(), MET, [EQUAL], interval(**canary), operation_failures=0)
    failed = [e.rule for e in verdict.evidence if e.passed is False]
    assert failed == [rule]
    assert verdict.operation_failures == 1
    assert verdict.kind == VerdictKind.HOLD  # one failing interval blocks promotion
    assert "operations failing (1 of 2)" in verdict.summary


def test_absolute_latency_limit_when_configured() -> None:
    limited = rollout(operations=OperationsRules(max_p95_latency_ms=40.0))
    verdict = judge_interval(limited, MET, [EQUAL], interval(p95_latency_ms=45.0))
    assert [e.rule for e in verdict.evidence if e.passed is False] == ["p95_latency"]


def test_operations_counter_rolls_back_at_the_limit_and_resets_on_a_pass() -> None:
    failing = interval(errors=30)
    first = judge_interval(rollout(), MET, [EQUAL], failing, operation_failures=0)
    second = judge_interval(
        rollout(), MET, [EQUAL], failing, operation_failures=first.operation_failures
    )
    assert (first.kind, first.operation_failures) == (VerdictKind.HOLD, 1)
    assert (second.kind, second.operation_failures) == (VerdictKind.ROLLBACK, 2)
    assert second.summary == (
        "operations failed 2 consecutive intervals, latest: error rate 3.0 % > 1.0 %"
    )
    reset = judge_interval(rollout(), MET, [EQUAL], HEALTHY_INTERVAL, operation_failures=1)
    assert (reset.kind, reset.operation_failures) == (VerdictKind.PROMOTE, 0)


def test_an_interval_with_too_few_decisions_leaves_the_counter_unchanged() -> None:
    sparse = interval(decisions=20, errors=10)
    verdict = judge_interval(rollout(), MET, [EQUAL], sparse, operation_failures=1)
    assert verdict.operation_failures == 1
    assert only(verdict, "operations").passed is None
    held = judge_interval(rollout(), MET, [EQUAL], operation_failures=1)
    assert (held.kind, held.operation_failures) == (VerdictKind.HOLD, 1)
    assert held.summary.endswith("no judgement this interval, the last judged one failed")


# --- drift ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_drift", "kind"),
    [
        ("hold", VerdictKind.HOLD),
        ("rollback", VerdictKind.ROLLBACK),
        ("ignore", VerdictKind.PROMOTE),
    ],
)
def test_drift_follows_on_drift(on_drift: str, kind: VerdictKind) -> None:
    config = rollout(drift=DriftRules(on_drift=on_drift))
    verdict = judge_interval(config, MET, [EQUAL], HEALTHY_INTERVAL, DRIFTING)
    assert verdict.kind == kind
    assert only(verdict, "drift").passed is False
    assert only(verdict, "drift").detail == (
        "dataset drift: yes — 3 of 5 columns, at or above the 50 % threshold (age, income, recency)"
    )


def test_dataset_drift_counts_below_the_share_and_an_unchecked_report_does_not() -> None:
    flagged = DriftObservation(
        checked=True, dataset_drift=True, drift_share=0.2, drifted_columns=("age",), columns=5
    )
    verdict = judge_interval(rollout(), MET, [EQUAL], drift=flagged)
    assert verdict.kind == VerdictKind.HOLD
    assert verdict.summary == (
        "holding: dataset drift: no — 1 of 5 columns, below the 50 % threshold (age); "
        "the drift check flagged dataset drift"
    )
    unchecked = DriftObservation(checked=False, dataset_drift=False, drift_share=0.0)
    verdict = judge_interval(rollout(), MET, [EQUAL], drift=unchecked)
    assert (verdict.kind, only(verdict, "drift").passed) == (VerdictKind.PROMOTE, None)
    disabled = rollout(drift=DriftRules(enabled=False))
    assert judge_interval(disabled, MET, [EQUAL], drift=DRIFTING).kind == VerdictKind.PROMOTE


# --- minimums, promotion and precedence -----------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "unmet"),
    [
        (StepProgress(0, 20_000, 800, 600.0), "800 of 1000 units per variant"),
        (StepProgress(0, 20_000, 20_000, 30.0), "30 of 60 s"),
    ],
)
def test_holds_until_both_minimums_are_met(progress: StepProgress, unmet: str) -> None:
    verdict = judge_interval(rollout(), progress, [EQUAL])
    assert verdict.kind == VerdictKind.HOLD
    assert verdict.summary.startswith("step 1 (5 %) holding for ")
    assert unmet in verdict.summary


def test_promotion_names_the_next_step() -> None:
    assert judge_interval(rollout(), MET, [EQUAL]).summary.endswith("; next: 50 %")
    last = StepProgress(1, 20_000, 20_000, 600.0)
    assert judge_interval(rollout(), last, [EQUAL]).summary.endswith(
        "next: 100 % (the challenger becomes champion)"
    )


def test_precedence_rollback_then_drift_then_minimums() -> None:
    early = StepProgress(0, 20_000, 20_000, 10.0)
    assert judge_interval(rollout(), early, [WORSE], drift=DRIFTING).kind == VerdictKind.ROLLBACK
    drift_first = judge_interval(rollout(), early, [EQUAL], drift=DRIFTING)
    assert drift_first.kind == VerdictKind.HOLD
    assert drift_first.summary.startswith("holding: dataset drift: yes — 3 of 5 columns")
    several = judge_interval(rollout(), MET, [WORSE], interval(errors=30), operation_failures=1)
    assert several.kind == VerdictKind.ROLLBACK
    assert "conversion −15.0 %" in several.summary and "error rate 3.0 %" in several.summary


# --- JSON -----------------------------------------------------------------------------------


def test_to_dict_is_json_with_a_stable_shape() -> None:
    verdict = judge_interval(rollout(), MET, [WORSE], HEALTHY_INTERVAL, DRIFTING)
    document = json.loads(json.dumps(verdict.to_dict(), allow_nan=False))
    assert set(document) == {"kind", "summary", "operation_failures", "evidence"}
    assert document["kind"] == "ROLLBACK"
    keys = {
        "rule",
        "metric",
        "observed",
        "threshold",
        "passed",
        "canary",
        "comparison",
        "interval",
        "p_value",
        "e_value",
        "detail",
    }
    assert all(set(row) == keys for row in document["evidence"])
    rules = [row["rule"] for row in document["evidence"]]
    assert rules == [
        "kpi",
        "p95_latency_ratio",
        "error_rate",
        "fallback_rate_increase",
        "drift",
        "minimum_units",
        "minimum_duration",
    ]


def test_an_infinite_e_value_is_written_as_null() -> None:
    certain = conversion(1, comparison=10_000, n=100_000)  # the p-value underflows to 0
    row = only(judge_interval(rollout(), MET, [certain]), "kpi")
    assert row.p_value == 0.0 and row.e_value == float("inf")
    assert row.to_dict()["e_value"] is None


# --- unit tables ----------------------------------------------------------------------------


def test_kpi_observations_prefer_the_baseline_and_fall_back_to_stable() -> None:
    metrics = [
        CONVERSION,
        REVENUE,
        MetricConfig(name="rpc", kind="ratio", column="revenue", denominator="converted"),
    ]
    units = pa.table(
        {
            "arm": ["canary", "canary", "baseline", "stable", "stable"],
            "converted": [1, 0, 1, 0, 0],
            "revenue": [30.0, 0.0, 10.0, 0.0, 0.0],
        }
    )
    conv, revenue, rpc = kpi_observations(units, metrics)
    assert conv.canary == ProportionStatistic(2, 1.0)
    assert conv.comparison == ProportionStatistic(1, 1.0)
    assert revenue.canary == SampleMeanStatistic(2, 30.0, 900.0)
    assert rpc.canary.mean == 30.0 and rpc.comparison.mean == 10.0
    without_baseline = units.filter(pa.compute.not_equal(units["arm"], "baseline"))
    (conv,) = kpi_observations(without_baseline, [CONVERSION])
    assert conv.comparison == ProportionStatistic(2, 0.0)


def test_kpi_observations_without_canary_units_hold_the_rollout() -> None:
    units = pa.table({"arm": ["baseline"], "converted": [1], "revenue": [5.0]})
    observations = kpi_observations(units, [CONVERSION, REVENUE])
    assert [k.canary.n for k in observations] == [0, 0]
    rules = rollout(metrics=[CONVERSION, REVENUE])
    assert judge_interval(rules, MET, observations).kind == VerdictKind.HOLD


# --- bounds the guard cannot compute --------------------------------------------------------

TYPICAL_REVENUE = SampleMeanStatistic(20_000, 20_000 * 50.0, 20_000 * (50.0**2 + 100.0))
TIMED_OUT = StepProgress(
    step_index=0, canary_units=20_000, comparison_units=20_000, elapsed_s=7_200
)


def revenue_rollout() -> RolloutConfig:
    step = RolloutStep(weight=0.05, min_units=1_000, min_duration_s=60, max_duration_s=3_600)
    return rollout(steps=[step, RolloutStep(weight=1.0)], metrics=[REVENUE])


def test_a_kpi_whose_statistics_overflow_cannot_be_judged_either_way() -> None:
    """Sums too large for the moments (values of ~1e300) are no evidence: the KPI is not
    judged, with the reason, and the step holds, then is inconclusive; never a rollback or
    a promotion, and never an exception that stops the guard."""
    overflowing = KpiObservation(
        "revenue", SampleMeanStatistic(20_000, 1e300, 1e308), TYPICAL_REVENUE
    )
    holding = judge_interval(revenue_rollout(), MET, [overflowing])
    assert holding.kind == VerdictKind.HOLD
    assert only(holding, "kpi").passed is None
    assert only(holding, "kpi").detail.startswith("its statistics cannot be computed")
    assert "revenue not judged (its statistics cannot be computed" in holding.summary
    timed_out = judge_interval(revenue_rollout(), TIMED_OUT, [overflowing])
    assert timed_out.kind == VerdictKind.INCONCLUSIVE
    assert "revenue not judged (its statistics cannot be computed" in timed_out.summary


@pytest.mark.parametrize(
    ("low", "high"),
    [(float("nan"), float("nan")), (float("-inf"), float("inf")), (-0.9, float("nan"))],
    ids=["nan", "infinite", "half"],
)
def test_an_interval_that_is_not_finite_is_neither_a_rollback_nor_a_pass(
    monkeypatch: pytest.MonkeyPatch, low: float, high: float
) -> None:
    """Whatever the statistics engine returns, a bound that is not finite is not judged
    (a NaN upper bound would otherwise fail the KPI, an infinite interval pass it)."""
    effect = Effect(estimate=float("nan"), ci_low=low, ci_high=high, p_value=float("nan"))
    monkeypatch.setattr(verdict_module, "sequential_test", lambda *_: TestResult(effect, effect))
    for progress, kind in ((MET, VerdictKind.HOLD), (TIMED_OUT, VerdictKind.INCONCLUSIVE)):
        verdict = judge_interval(
            revenue_rollout(),
            progress,
            [KpiObservation("revenue", TYPICAL_REVENUE, TYPICAL_REVENUE)],
        )
        assert verdict.kind == kind
        assert only(verdict, "kpi").passed is None
        assert "revenue not judged (its interval is not finite)" in verdict.summary


def test_a_metric_with_values_that_are_not_finite_is_left_out_and_named() -> None:
    """An infinite revenue in the units (logged before the API bounded values): revenue
    is not judged and says why; conversion, from the same units, still is."""
    units = pa.table(
        {
            "arm": ["canary", "canary", "baseline", "baseline"],
            "converted": [1, 0, 1, 0],
            "revenue": [float("inf"), 0.0, 10.0, 0.0],
        }
    )
    conv, revenue = kpi_observations(units, [CONVERSION, REVENUE])
    assert conv.problem == "" and conv.canary == ProportionStatistic(2, 1.0)
    assert revenue.problem == "column 'revenue' holds 1 value that is not finite (NaN or ±inf)"
    verdict = judge_interval(rollout(metrics=[CONVERSION, REVENUE]), MET, [conv, revenue])
    assert verdict.kind == VerdictKind.HOLD
    (revenue_row,) = [e for e in verdict.evidence if e.rule == "kpi" and e.metric == "revenue"]
    assert revenue_row.passed is None and "not finite" in revenue_row.detail


# --- laws -----------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def no_worse_canary(draw) -> KpiObservation:
    """A canary whose observed conversion rate is at least the comparison's."""
    n_c, n_t = draw(counts), draw(counts)
    comparison = draw(st.integers(0, n_c))
    floor = -(-comparison * n_t // n_c) if n_c else 0  # ceil: canary rate >= comparison rate
    canary = draw(st.integers(min(floor, n_t), n_t))
    return KpiObservation(
        "conversion", ProportionStatistic(n_t, canary), ProportionStatistic(n_c, comparison)
    )


@settings(max_examples=300, deadline=None)
@given(
    kpi=no_worse_canary(),
    elapsed=st.floats(0, 1e6),
    drop=st.floats(0, 0.5),
    method=st.sampled_from(["sequential", "frequentist"]),
)
def test_a_canary_observed_no_worse_is_never_rolled_back_on_a_kpi(
    kpi: KpiObservation, elapsed: float, drop: float, method: str
) -> None:
    """The interval contains its estimate, so a KPI fails only when the observed lift is
    itself below -max_relative_drop: a canary at least as good in the sample never fails."""
    assume(kpi.canary.mean >= kpi.comparison.mean)  # not so when the canary has no units
    rule = CONVERSION.model_copy(update={"max_relative_drop": drop})
    progress = StepProgress(0, kpi.canary.n, kpi.comparison.n, elapsed)
    verdict = judge_interval(rollout(metrics=[rule]), progress, [kpi], method=method)
    assert only(verdict, "kpi").passed is not False
    assert verdict.kind != VerdictKind.ROLLBACK
    json.dumps(verdict.to_dict(), allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=1, max_size=12))
def test_the_counter_is_the_length_of_the_current_streak_of_failed_intervals(
    intervals: list[tuple[int, int]],
) -> None:
    """Each interval is (decisions, errors) of the canary; fewer than 50 decisions are not
    judged, more than 1 % errors fail. The returned count equals the number of failed
    intervals since the last judged pass, and reaching 2 rolls back."""
    config = rollout(failure_limit=len(intervals) + 1)  # never stops early
    failures, streak = 0, 0
    for decisions, errors in intervals:
        errors = min(errors, decisions)
        canary = GroupOperations(decisions, errors, 0, 25.0)
        comparison = GroupOperations(max(decisions, 50), 0, 0, 25.0)
        verdict = judge_interval(
            config, MET, [EQUAL], OperationsObservation(canary, comparison), None, failures
        )
        if decisions >= 50:
            streak = streak + 1 if errors / decisions > 0.01 else 0
        failures = verdict.operation_failures
        assert failures == streak
        assert (verdict.kind == VerdictKind.PROMOTE) == (streak == 0)
