"""Late rewards → policy updates: learn each closed decision of a served bandit exactly once.

A decision's reward is known when its attribution window has closed. An update run takes
the bandit's decisions (its ``policy: bandit`` arms, allocated by the bandit itself: not
fallbacks) with ``watermark < ts ≤ cutoff``, where

    cutoff = now − attribution window − settle margin,

attributes their outcomes within the window (`experiments.logs.reader.join_outcomes`; no
conversion ⇒ converted 0, revenue 0), applies them to the policy in chunks of
``bandit.batch_size`` rows, and moves the watermark to the cutoff, all under the state
file's lock (`experiments.bandits.store`). A decision whose reward is not finite (a
revenue logged before the API bounded values) is skipped and counted (``n_skipped``),
never learned: one poisoned row must not stop the bandit, nor its parameters. The
watermark only moves forward and is written together with the policy, so no decision is
learned twice, whichever replica runs the update. The settle margin — the decision log's
flush age plus `SETTLE_SLACK_S` — covers decisions still buffered in a replica and outcomes
posted at the end of their window: by the time the cutoff passes a decision's timestamp,
the decision and its outcomes are on disk. Rows that take longer — a crashed replica's,
recovered from its write-ahead segments, or a replica's whose disk failed — hold the
cutoff back until they are in Parquet (`cutoff_of`, `unlanded`), so a late row is learned
late, never skipped.

The core (`cutoff_of`, `due_decisions`, `learn`) is pure; `update_bandit` and
`update_experiment` read the logs and the state file.

>>> import datetime as dt
>>> import pyarrow as pa
>>> from configs.loader import load_config
>>> from experiments.bandits.spec import BanditSpec
>>> from experiments.bandits.store import BanditState
>>> config = load_config()
>>> spec = BanditSpec(config.experiments["bandit-offers"], config.features, config.actions)
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> joined = pa.table({
...     "ts": pa.array([noon, noon], pa.timestamp("us", tz="UTC")),
...     "features": [[0.0] * 13, [0.0] * 13], "chosen": ["email_10", "email_20"],
...     "converted": [True, False], "revenue": [30.0, 0.0]})
>>> state = BanditState.initial(spec)
>>> learn(state, joined, spec, cutoff=noon)
2
>>> state.policy.alpha_.tolist(), state.counts.tolist(), state.watermark == noon
([1.0, 2.0, 1.0, 1.0, 1.0], [0, 1, 1, 0, 0], True)

References: Chapelle & Li (2011), "An Empirical Evaluation of Thompson Sampling", NeurIPS
24, section 4 (batched updates with delayed feedback); Joulani, György & Szepesvári (2013),
"Online Learning under Delayed Feedback", ICML (a delay only postpones learning).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from configs.loader import LiftgateConfig
from configs.schema import ExperimentConfig
from experiments.bandits.base import Batch
from experiments.bandits.spec import BanditSpec
from experiments.bandits.store import BanditState, BanditStateError, BanditStore
from experiments.logs.reader import join_outcomes, read_decisions, read_outcomes
from experiments.logs.schema import TIMESTAMP, DecisionRecord, OutcomeRecord
from experiments.logs.wal import recover, unlanded_since
from experiments.state import read_state
from liftgate.core.errors import InputError
from liftgate.core.home import Home

logger = logging.getLogger(__name__)

#: Margin beyond the log's flush age before a decision counts as surely on disk (seconds).
SETTLE_SLACK_S = 30.0
#: Outcomes may be timestamped before their decision (the app's clock): read this far back.
OUTCOME_CLOCK_SKEW = dt.timedelta(days=1)


def settle_seconds(config: LiftgateConfig) -> float:
    return config.serving.decision_log.max_age_s + SETTLE_SLACK_S


def cutoff_of(
    now: dt.datetime,
    window_s: float,
    settle_s: float,
    unlanded_decisions: dt.datetime | None = None,
    unlanded_outcomes: dt.datetime | None = None,
) -> dt.datetime:
    """The latest decision timestamp whose reward is final at `now`.

    ``unlanded_decisions`` / ``unlanded_outcomes`` are the earliest ``ts`` of the records
    still in write-ahead segments, not yet in Parquet (`experiments.logs.wal.unlanded_since`):
    the cutoff stays before such a decision, and before every decision such an outcome
    could count for (its ``ts`` minus the window), so they are learned once they land.

    >>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    >>> cutoff_of(noon, 3600, 30).isoformat()
    '2024-05-01T10:59:30+00:00'
    >>> cutoff_of(noon, 3600, 30, unlanded_decisions=noon.replace(hour=9)).isoformat()
    '2024-05-01T08:59:59.999999+00:00'
    """
    cutoff = now - dt.timedelta(seconds=window_s + settle_s)
    tick = dt.timedelta(microseconds=1)
    if unlanded_decisions is not None:
        cutoff = min(cutoff, unlanded_decisions - tick)
    if unlanded_outcomes is not None:
        cutoff = min(cutoff, unlanded_outcomes - dt.timedelta(seconds=window_s) - tick)
    return cutoff


def unlanded(home: Home) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Convert the segments crashed writers left, then the earliest ``ts`` of the decisions
    and of the outcomes still not in Parquet (a failing disk, or a writer's last seconds)."""
    logs = ((home.decision_log, DecisionRecord), (home.outcome_log, OutcomeRecord))
    for directory, record_type in logs:
        try:
            recover(directory, record_type)
        except OSError as error:  # they stay unlanded: the cutoff waits for them
            logger.warning("recovering the log in %s failed: %s", directory, error)
    decisions, outcomes = (unlanded_since(directory, kind) for directory, kind in logs)
    return decisions, outcomes


def due_decisions(
    decisions: pa.Table, spec: BanditSpec, watermark: dt.datetime | None, cutoff: dt.datetime
) -> pa.Table:
    """The bandit's own decisions with watermark < ts ≤ cutoff, oldest first."""
    ts = decisions["ts"]
    mask = pc.and_(
        pc.and_(
            pc.equal(decisions["experiment"], spec.name),
            pc.is_in(decisions["arm"], value_set=pa.array(spec.arms, pa.string())),
        ),
        pc.and_(
            pc.is_in(decisions["policy"], value_set=pa.array(spec.logged_names, pa.string())),
            pc.less_equal(ts, pa.scalar(cutoff, TIMESTAMP)),
        ),
    )
    if watermark is not None:
        mask = pc.and_(mask, pc.greater(ts, pa.scalar(watermark, TIMESTAMP)))
    due = decisions.filter(pc.fill_null(mask, False))
    return due.sort_by([("ts", "ascending"), ("decision_id", "ascending")]) if len(due) else due


def learn(state: BanditState, joined: pa.Table, spec: BanditSpec, cutoff: dt.datetime) -> int:
    """Apply the closed decisions `joined` (due decisions with ``converted`` and
    ``revenue``) to `state`, `batch_size` rows per policy update; move the watermark to
    `cutoff`. Decisions whose reward is not finite are skipped and counted in
    ``state.n_skipped``. Returns the number of decisions learned."""
    n = joined.num_rows
    if n:
        index = {a: k for k, a in enumerate(spec.action_ids)}
        chosen = joined["chosen"].to_pylist()
        unknown = sorted({a for a in chosen if a not in index})
        if unknown:
            raise BanditStateError(
                f"decisions of {spec.name} chose {unknown}, not in actions.yaml "
                f"{list(spec.action_ids)}"
            )
        codes = np.array([index[a] for a in chosen], dtype=np.int64)
        rewards = spec.rewards(
            joined["converted"].to_numpy(zero_copy_only=False),
            joined["revenue"].to_numpy(zero_copy_only=False),
            codes,
        )
        features = None
        if spec.context_kind == "features":
            flat = pc.list_flatten(joined["features"]).to_numpy(zero_copy_only=False)
            features = flat.reshape(n, -1)
        finite = np.isfinite(rewards)
        if not finite.all():
            state.n_skipped += int(n - finite.sum())
            codes, rewards = codes[finite], rewards[finite]
            features = None if features is None else features[finite]
            n = len(codes)
        size = spec.bandit.batch_size
        for start in range(0, n, size):
            part = slice(start, start + size)
            contexts = None if features is None else spec.batch_contexts(features[part])
            state.policy.update(Batch(contexts, codes[part], rewards[part]))
        state.counts += np.bincount(codes, minlength=len(state.counts))
        state.reward_sums += np.bincount(codes, rewards, minlength=len(state.reward_sums))
    if state.watermark is None or cutoff > state.watermark:
        state.watermark = cutoff
        state.n_runs += 1
        state.updated_at = dt.datetime.now(dt.UTC)
    return n


def update_experiment(
    home: Home, spec: BanditSpec, settle_s: float, now: dt.datetime | None = None
) -> dict[str, Any]:
    """One update run of `spec`'s bandit against the logs under `home`."""
    now = now or dt.datetime.now(dt.UTC)
    # Before the logs are read: what lands after this is newer, or was counted here.
    cutoff = cutoff_of(now, spec.window_s, settle_s, *unlanded(home))
    store = BanditStore(home, spec.name)
    with store.transaction(lambda: BanditState.initial(spec)) as state:
        problem = spec.mismatch(state.policy)
        if problem:
            raise BanditStateError(
                f"{store.path} does not belong to the configuration of {spec.name}: {problem}; "
                "restore the configuration, or delete the file to start learning over"
            )
        learned = 0
        if state.watermark is None or cutoff > state.watermark:
            end = cutoff + dt.timedelta(microseconds=1)  # read_decisions' end is exclusive
            decisions = read_decisions(home.decision_log, state.watermark, end)
            due = due_decisions(decisions, spec, state.watermark, cutoff)
            if due.num_rows:
                first = pc.min(due["ts"]).as_py() - OUTCOME_CLOCK_SKEW
                outcomes = read_outcomes(home.outcome_log, start=first)
                due = join_outcomes(due, outcomes, spec.window_s)
            learned = learn(state, due, spec, cutoff)
    return {
        "experiment": spec.name,
        "learned": learned,
        "cutoff": cutoff.isoformat(),
        "watermark": None if state.watermark is None else state.watermark.isoformat(),
        "n_updates": state.policy.n_updates_,
        "n_runs": state.n_runs,
        "n_skipped": state.n_skipped,
        "state": str(store.path),
    }


def bandit_experiment(home: Home, config: LiftgateConfig, name: str) -> ExperimentConfig:
    """The experiment as running (its snapshot in the experiment state), else as defined."""
    entry = read_state(home).get(name)
    if entry is not None:
        experiment = ExperimentConfig.model_validate(entry["config"])
    elif name in config.experiments:
        experiment = config.experiments[name]
    else:
        known = ", ".join(sorted(config.experiments)) or "none"
        raise InputError(f"no experiment {name!r} (defined: {known})")
    if experiment.kind != "bandit":
        raise InputError(f"experiment {name!r} is of kind {experiment.kind}, not bandit")
    return experiment


def running_bandits(home: Home) -> list[str]:
    """Names of the running experiments of kind bandit."""
    return sorted(
        name
        for name, entry in read_state(home).items()
        if entry["status"] == "running" and entry["config"].get("kind") == "bandit"
    )


def update_bandit(
    home: Home, config: LiftgateConfig, experiment_name: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Apply the closed decisions of one bandit experiment (`liftgate bandit update`)."""
    experiment = bandit_experiment(home, config, experiment_name)
    spec = BanditSpec(experiment, config.features, config.actions)
    return update_experiment(home, spec, settle_seconds(config), now)
