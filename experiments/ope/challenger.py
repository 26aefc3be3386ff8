"""Off-policy evaluation of a challenger scorer on the champion's logged decisions.

Before a canary gives a challenger any traffic it can ask: had the challenger's ε-greedy
policy served the decisions the champion logged, would it have earned at least
``min_relative_value`` of what the champion earned? The log has, per decision, the encoded
features, the row's own candidate set (the eligible actions, ranked by the champion), the
chosen action and its exact propensity under the champion's policy, so the challenger's
probability of every candidate can be recomputed exactly and the estimators of
:mod:`experiments.ope.estimators` apply.

The challenger's policy (:func:`challenger_policy_probabilities`) is the served one,
computed by the same function (:func:`liftgate.core.allocation.epsilon_greedy_propensities`):
the candidate with the highest expected value (first in catalogue order on ties) with
probability 1 − ε, plus ε spread uniformly over the row's k candidates. Actions outside a
row's candidate set get probability 0. The reward of a logged decision is
:func:`liftgate.core.reward.reward_of` of its attributed outcomes (default: profit).

The rule, a non-inferiority test (Thomas et al. 2015's high-confidence policy improvement,
with a relative margin). With V₀ the champion's logged value (the mean logged reward), m =
``min_relative_value`` and V̂ the challenger's estimate on the same rows,

- the allowed value is ``threshold = V₀ − (1 − m)·|V₀|``: m·V₀ when V₀ ≥ 0; when V₀ < 0 (a
  loss, e.g. profit after contact costs) a loss at most (1 − m)·|V₀| larger, so m = 0.98
  allows −10 → −10.2, never the nonsense m·V₀ = −9.8 that would demand an improvement;
  m > 1 demands an improvement of (m − 1)·|V₀| whatever the sign;
- the challenger **passes when the lower bound of the (1 − alpha) paired bootstrap interval
  of V̂ − V₀ is at least threshold − V₀ = −(1 − m)·|V₀|**, i.e. when
  ``on_policy_value + difference_ci_low ≥ threshold``.

The interval is of the *difference*, with both values computed on each resample of the
same rows (the resamples of :mod:`experiments.ope.bootstrap` that ``evaluate`` draws for
the estimate's own interval, reported as ``ci_low``/``ci_high``). Comparing the estimate's own lower
bound with m·V₀ would treat V₀ as known: at 30 000 rows of profit the interval of even a
challenger identical to the champion is about ±3 % wide, so it would fail a 0.98 bar; the
paired difference cancels the noise the two values share (for an identical challenger
every weight is 1 and the IPW difference is exactly 0). A missing estimate (NaN) fails.

>>> import numpy as np
>>> values = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 9.0]])
>>> candidates = np.array([[True, True, True], [True, True, False]])  # row 2: no action 2
>>> dist, p = challenger_policy_probabilities(values, candidates, np.array([1, 0]), 0.1)
>>> dist.round(3).tolist()
[[0.033, 0.933, 0.033], [0.95, 0.05, 0.0]]
>>> p.round(3).tolist()
[0.933, 0.95]
>>> relative_threshold(10.0, 0.98), relative_threshold(-10.0, 0.98)
(9.8, -10.2)

References: Thomas, Theocharous & Ghavamzadeh (2015), "High Confidence Policy
Improvement", ICML; Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and
Learning", ICML; Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from experiments.ope.bootstrap import DEFAULT_RESAMPLES, bootstrap_totals, percentile_interval
from experiments.ope.estimators import FROM_TOTALS, MODEL_BASED, MODEL_VALUE, row_columns
from liftgate.core.allocation import epsilon_greedy_propensities
from liftgate.core.reward import reward_of
from liftgate.core.vocabulary import (
    CHAMPION,
    EPSILON_GREEDY,
    OLD_ARM_POLICIES,
    PROFIT,
    REWARD_KINDS,
    UNIFORM_RANDOM,
    spellings,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from configs.loader import LiftgateConfig
    from configs.schema import OpeRequirement, RewardKind
    from liftgate.core.home import Home
    from liftgate.core.model import ScoringModel

#: Logging policies whose propensities are exact and positive on every candidate (ε > 0),
#: as the logs of every release name them. The rules, a fallback and custom arm policies are
#: left out.
EXPLORING_POLICIES = (
    *spellings(EPSILON_GREEDY, OLD_ARM_POLICIES),
    *spellings(UNIFORM_RANDOM, OLD_ARM_POLICIES),
)


# ------------------------------------------------------------------------------ pure core


def candidate_mask(rows: np.ndarray, codes: np.ndarray, n_rows: int, n_actions: int) -> np.ndarray:
    """(n_rows × n_actions) booleans from flattened (row, action code) candidate pairs."""
    mask = np.zeros((n_rows, n_actions), dtype=bool)
    mask[np.asarray(rows, dtype=np.int64), np.asarray(codes, dtype=np.int64)] = True
    return mask


def challenger_policy_probabilities(
    expected_values: np.ndarray,
    candidates: np.ndarray,
    chosen: np.ndarray,
    epsilon: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The challenger's ε-greedy distribution per row and its probability of the logged action.

    ``expected_values`` is (n × K) over the catalogue (entries outside a row's candidates are
    ignored), ``candidates`` the (n × K) mask of each row's own candidate set, ``chosen`` the
    logged action codes. Returns the (n × K) ``action_dist`` (0 off the candidate set; rows
    sum to 1) and the (n,) probability of ``chosen``.
    """
    candidates = np.asarray(candidates, dtype=bool)
    values = np.asarray(expected_values, dtype=np.float64)
    chosen = np.asarray(chosen, dtype=np.int64)
    n = len(candidates)
    if values.shape != candidates.shape or chosen.shape != (n,):
        raise ValueError(
            f"expected_values {values.shape}, candidates {candidates.shape} and chosen "
            f"{chosen.shape} must be (n, K), (n, K) and (n,)"
        )
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1]; got {epsilon}")
    k = candidates.sum(axis=1)
    if (k == 0).any():
        raise ValueError(f"{int((k == 0).sum())} rows have no candidate action")
    if not np.isfinite(values[candidates]).all():
        raise ValueError("expected_values: NaN or infinite value for a candidate action")
    rows = np.arange(n)
    if not candidates[rows, chosen].all():
        raise ValueError("chosen: a logged action is not among its row's candidates")
    action_dist = epsilon_greedy_propensities(values, epsilon, candidates)
    return action_dist, action_dist[rows, chosen]


def relative_threshold(on_policy_value: float, min_relative_value: float) -> float:
    """V₀ − (1 − m)·|V₀|: m·V₀ for a gain, a loss at most (1 − m)·|V₀| larger for a loss."""
    return on_policy_value - (1.0 - min_relative_value) * abs(on_policy_value)


def paired_difference(
    estimator: str,
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    reward_hat: np.ndarray | None,
    alpha: float,
    n_resamples: int,
    random_state: int | None,
) -> tuple[float, float, float]:
    """V̂ − V₀ and its paired (1 − alpha) bootstrap interval (both values on each resample).

    The resamples are those of :func:`experiments.ope.estimators.estimate_all` with the same
    ``random_state`` (they depend on the row count only).
    """
    columns = row_columns(reward, action, pscore, action_dist, reward_hat)
    if reward_hat is None:
        columns = columns[:, :MODEL_VALUE]
    columns = np.column_stack([columns, reward])

    def difference(totals: np.ndarray) -> np.ndarray:
        return FROM_TOTALS[estimator](totals[..., :-1]) - totals[..., -1] / totals[..., 0]

    resampled = bootstrap_totals(columns, n_resamples, random_state)
    low, high = percentile_interval(difference(resampled), alpha)
    return float(difference(columns.sum(axis=0))), low, high


@dataclass(frozen=True)
class ChallengerEvaluation:
    """The verdict of :func:`evaluate_challenger` and what it rests on (see the module)."""

    passed: bool
    estimator: str
    value: float  # the challenger's estimated value
    ci_low: float  # the estimate's own (1 − alpha) bootstrap interval
    ci_high: float
    on_policy_value: float  # V₀: the champion's mean logged reward on the same rows
    threshold: float  # V₀ − (1 − m)·|V₀|
    n: int
    ess: float
    max_weight: float
    warnings: list[str]
    reason: str
    reward: str = PROFIT
    difference: float = float("nan")  # V̂ − V₀
    difference_ci_low: float = float("nan")  # paired interval; passes iff ≥ threshold − V₀
    difference_ci_high: float = float("nan")
    alpha: float = 0.05
    dropped: dict[str, int] = field(default_factory=dict)  # rows left out, by why

    def to_dict(self) -> dict:
        out = {}
        for name, value in vars(self).items():
            if isinstance(value, float) and not np.isfinite(value):
                value = None
            elif isinstance(value, (list, dict)):
                value = type(value)(value)
            out[name] = value
        return out


def judge(
    estimator: str,
    value: float,
    ci_low: float,
    ci_high: float,
    on_policy_value: float,
    difference: tuple[float, float, float],
    min_relative_value: float,
) -> tuple[bool, float, str]:
    """(passed, threshold, reason) by the rule of the module docstring."""
    threshold = relative_threshold(on_policy_value, min_relative_value)
    margin = threshold - on_policy_value
    _, low, _ = difference
    name = estimator.upper()
    if not (np.isfinite(value) and np.isfinite(low)):
        return False, threshold, f"the {name} estimate is undefined on these rows"
    bound = on_policy_value + low
    relation = "≥" if low >= margin else "<"
    reason = (
        f"{name}: champion's logged value {on_policy_value:.4g} + paired lower bound of the "
        f"difference {low:+.4g} = {bound:.4g} {relation} threshold {threshold:.4g} "
        f"(min_relative_value {min_relative_value:g}; estimate {value:.4g} "
        f"in [{ci_low:.4g}, {ci_high:.4g}])"
    )
    return bool(low >= margin), threshold, reason


def _failed(
    estimator: str, reward: str, reason: str, warnings, dropped, alpha: float
) -> ChallengerEvaluation:
    nan = float("nan")
    return ChallengerEvaluation(
        passed=False,
        estimator=estimator,
        value=nan,
        ci_low=nan,
        ci_high=nan,
        on_policy_value=nan,
        threshold=nan,
        n=0,
        ess=0.0,
        max_weight=nan,
        warnings=list(warnings),
        reason=reason,
        reward=reward,
        alpha=alpha,
        dropped=dict(dropped),
    )


# ------------------------------------------------------------------------------ shell


def _select(
    decisions: pa.Table,
    contract_version: str,
    logging_alias: str | None,
    window_s: float | None,
    now: dt.datetime,
    max_rows: int,
) -> tuple[pa.Table, dict[str, int]]:
    """The champion's exploring, non-fallback, matured decisions, the last ``max_rows`` by ts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dropped: dict[str, int] = {}

    def keep(table: pa.Table, condition, why: str) -> pa.Table:
        kept = table.filter(condition)
        if table.num_rows - kept.num_rows:
            dropped[why] = table.num_rows - kept.num_rows
        return kept

    table = keep(decisions, pc.invert(decisions["fallback"]), "fallback")
    exploring = pc.is_in(table["policy"], value_set=pa.array(EXPLORING_POLICIES))
    table = keep(table, exploring, "policy_not_exploring")
    if logging_alias is not None:
        table = keep(table, pc.equal(table["model_alias"], logging_alias), "other_model")
    if window_s is not None:
        matured = pa.scalar(now - dt.timedelta(seconds=window_s), pa.timestamp("us", tz="UTC"))
        table = keep(table, pc.less_equal(table["ts"], matured), "window_open")
    table = keep(table, pc.equal(table["contract_version"], contract_version), "other_contract")
    if table.num_rows > max_rows:
        order = pc.sort_indices(table, sort_keys=[("ts", "ascending")])
        dropped["older_than_max_rows"] = table.num_rows - max_rows
        table = table.take(order[-max_rows:])
    return table, dropped


def _names_known_actions(decisions: pa.Table, ids: tuple[str, ...]) -> np.ndarray:
    """Per row: the chosen action and every candidate are catalogue ids."""
    import pyarrow as pa
    import pyarrow.compute as pc

    value_set = pa.array(ids, type=pa.string())
    known = pc.is_in(decisions["chosen"], value_set=value_set).to_numpy(zero_copy_only=False)
    flat_known = pc.is_in(pc.list_flatten(decisions["actions"]), value_set=value_set)
    rows = pc.list_parent_indices(decisions["actions"]).to_numpy()
    unknown_rows = rows[~flat_known.to_numpy(zero_copy_only=False)]
    known[unknown_rows] = False
    return known


def _action_codes(
    decisions: pa.Table, ids: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, code) of every logged candidate and the chosen code per row (ids all known)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    value_set = pa.array(ids, type=pa.string())
    rows = pc.list_parent_indices(decisions["actions"]).to_numpy()
    codes = pc.index_in(pc.list_flatten(decisions["actions"]), value_set=value_set)
    chosen = pc.index_in(decisions["chosen"], value_set=value_set)
    return rows, codes.to_numpy().astype(np.int64), chosen.to_numpy().astype(np.int64)


def evaluate_challenger(
    home: Home,
    config: LiftgateConfig,
    challenger_model: ScoringModel,
    requirement: OpeRequirement,
    reward: RewardKind = PROFIT,
    window_s: float | None = None,
    *,
    epsilon: float | None = None,
    logging_alias: str | None = CHAMPION,
    alpha: float = 0.05,
    n_resamples: int = DEFAULT_RESAMPLES,
    folds: int = 3,
    random_state: int = 0,
    now: dt.datetime | None = None,
) -> ChallengerEvaluation:
    """Evaluate ``challenger_model``'s ε-greedy policy on the champion's decision log.

    Rows: the decisions under ``home`` that were served by ``logging_alias`` (None: any
    model) with an exploring policy (ε-greedy or uniform), not a fallback, logged under the
    challenger's feature contract and, with ``window_s``, whose attribution window has
    closed by ``now``; the last ``requirement.max_rows`` of them by time. Outcomes within
    ``window_s`` of the decision are joined (None: every outcome counts). Each row's
    candidates are scored by the challenger in one batch; the policy's ε is ``epsilon`` or
    ``config.serving.epsilon``. DR and SNDR use a ``folds``-fold cross-fitted LightGBM
    reward model on the logged features (not the challenger itself, which would grade its
    own errors). Returns the verdict by the rule of the module docstring; a log with no
    usable row fails with a reason instead of raising.
    """
    import pyarrow.compute as pc

    from experiments.logs.reader import join_outcomes, read_decisions, read_outcomes
    from experiments.ope.evaluate import evaluate
    from experiments.ope.reward_model import CrossFittedRewardModel
    from liftgate.core.catalogue import ActionCatalogue
    from liftgate.core.contract import FeatureContract
    from liftgate.core.scoring import score_actions

    estimator = requirement.estimator
    if reward not in REWARD_KINDS:
        raise ValueError(f"reward must be one of {', '.join(REWARD_KINDS)}; got {reward!r}")
    if window_s is not None and window_s <= 0:
        raise ValueError(f"window_s must be > 0; got {window_s}")
    catalogue = ActionCatalogue(config.actions)
    if tuple(challenger_model.action_ids) != catalogue.ids:
        raise ValueError(
            f"the challenger was trained on actions {list(challenger_model.action_ids)}; "
            f"the catalogue has {list(catalogue.ids)}"
        )
    contract = FeatureContract(config.features)
    # The reward model's categorical columns, when the configured contract is the log's.
    categorical = (
        contract.categorical_indices
        if contract.version == challenger_model.contract_version
        else []
    )
    epsilon = config.serving.epsilon if epsilon is None else epsilon
    now = dt.datetime.now(dt.UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware; got {now!r}")
    decisions, dropped = _select(
        read_decisions(home.decision_log),
        challenger_model.contract_version,
        logging_alias,
        window_s,
        now,
        requirement.max_rows,
    )
    warnings = []
    if dropped.get("other_contract"):
        warnings.append(
            f"{dropped['other_contract']:,} decisions were logged under another feature "
            f"contract than the challenger's ({challenger_model.contract_version}) and are left out"
        )
    if decisions.num_rows == 0:
        return _failed(
            estimator,
            reward,
            "no logged decision to evaluate on (exploring, non-fallback, served by "
            f"{logging_alias or 'any model'}, contract {challenger_model.contract_version}"
            + (", attribution window closed" if window_s is not None else "")
            + f"); left out: {dropped or 'none'}",
            warnings,
            dropped,
            alpha,
        )

    known = _names_known_actions(decisions, catalogue.ids)
    if not known.all():
        dropped["unknown_action"] = int((~known).sum())
        warnings.append(
            f"{dropped['unknown_action']:,} decisions name actions missing from the catalogue "
            "and are left out"
        )
        decisions = decisions.filter(known)
        if decisions.num_rows == 0:
            reason = "no logged decision names only catalogue actions"
            return _failed(estimator, reward, reason, warnings, dropped, alpha)
    n, k = decisions.num_rows, len(catalogue)
    pair_rows, pair_codes, chosen = _action_codes(decisions, catalogue.ids)
    candidates = candidate_mask(pair_rows, pair_codes, n, k)
    width = challenger_model.conversion.num_feature() - 1  # the design's last column: action
    widths = pc.list_value_length(decisions["features"]).to_numpy()
    if (widths != width).any():
        raise ValueError(
            f"logged feature vectors have {sorted(set(widths.tolist()))} values; the "
            f"challenger's contract {challenger_model.contract_version} has {width} features"
        )
    features = pc.list_flatten(decisions["features"]).to_numpy().reshape(n, width)

    joined = join_outcomes(decisions, read_outcomes(home.outcome_log), window_s)
    r = reward_of(
        reward,
        joined["converted"].to_numpy(),
        joined["revenue"].to_numpy(),
        catalogue.costs[chosen],
    )
    pscore = decisions["propensity"].to_numpy()

    scores = score_actions(challenger_model, features[pair_rows], pair_codes, catalogue.costs)
    expected = np.full((n, k), -np.inf)
    expected[pair_rows, pair_codes] = scores.expected_value
    action_dist, _ = challenger_policy_probabilities(expected, candidates, chosen, epsilon)

    reward_hat = None
    if estimator in MODEL_BASED:
        reward_hat = CrossFittedRewardModel(
            n_folds=folds,
            categorical_features=categorical,
            random_state=random_state,
        ).fit_predict(features, chosen, r, n_actions=k)
    report = evaluate(r, chosen, pscore, action_dist, reward_hat, alpha, n_resamples, random_state)
    estimate = report.estimates[estimator]
    difference = paired_difference(
        estimator, r, chosen, pscore, action_dist, reward_hat, alpha, n_resamples, random_state
    )
    passed, threshold, reason = judge(
        estimator,
        estimate.value,
        estimate.ci_low,
        estimate.ci_high,
        report.on_policy_value,
        difference,
        requirement.min_relative_value,
    )
    unexplored = int(((pscore >= 1.0) & (candidates.sum(axis=1) > 1)).sum())
    if unexplored:
        warnings.append(
            f"{unexplored:,} decisions were logged with propensity 1 among several candidates "
            "(ε = 0): the challenger's other choices there are never observed"
        )
    return ChallengerEvaluation(
        passed=passed,
        estimator=estimator,
        value=estimate.value,
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        on_policy_value=report.on_policy_value,
        threshold=threshold,
        n=n,
        ess=report.ess,
        max_weight=report.max_weight,
        warnings=[*warnings, *report.warnings],
        reason=reason,
        reward=reward,
        difference=difference[0],
        difference_ci_low=difference[1],
        difference_ci_high=difference[2],
        alpha=alpha,
        dropped=dropped,
    )
