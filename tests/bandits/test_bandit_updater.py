"""Late rewards → policy updates (experiments/bandits/updater.py): each decision once."""

from __future__ import annotations

import datetime as dt
import errno
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from served_helpers import (
    CONFIG,
    N_FEATURES,
    NOON,
    bandit_experiment,
    decision,
    outcome,
    spec_of,
    write_logs,
)

from experiments import state as experiment_state
from experiments.bandits.store import BanditState, BanditStateError, BanditStore
from experiments.bandits.updater import (
    SETTLE_SLACK_S,
    learn,
    running_bandits,
    settle_seconds,
    update_bandit,
    update_experiment,
)
from experiments.logs import writer as log_writer
from experiments.logs.frames import encode
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.wal import Segment, recover
from experiments.logs.writer import LogWriter
from liftgate.core.home import Home

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
SETTLE = 5.0


def closed_at(ts: dt.datetime) -> dt.datetime:
    """The first `now` at which a decision at `ts` (1 h window) is closed."""
    return ts + HOUR + dt.timedelta(seconds=SETTLE)


def test_the_settle_margin_covers_the_log_flush_age() -> None:
    assert settle_seconds(CONFIG) == CONFIG.serving.decision_log.max_age_s + SETTLE_SLACK_S
    assert settle_seconds(CONFIG) > CONFIG.serving.decision_log.max_age_s


def test_decisions_are_learned_once_their_window_closes_and_never_twice(home: Home):
    spec = spec_of(bandit_experiment())
    decisions = [decision(f"d{i}", NOON + i * MINUTE, "email_20") for i in range(10)]
    outcomes = [outcome(f"d{i}", NOON + i * MINUTE + MINUTE) for i in range(0, 10, 2)]
    write_logs(home, decisions, outcomes)

    early = update_experiment(home, spec, SETTLE, now=closed_at(NOON) - MINUTE)
    assert early["learned"] == 0  # no window has closed
    first = update_experiment(home, spec, SETTLE, now=closed_at(NOON + 4 * MINUTE))
    assert first["learned"] == 5 and first["watermark"] == (NOON + 4 * MINUTE).isoformat()
    again = update_experiment(home, spec, SETTLE, now=closed_at(NOON + 4 * MINUTE))
    assert again["learned"] == 0
    rest = update_experiment(home, spec, SETTLE, now=closed_at(NOON + HOUR))
    assert rest["learned"] == 5 and rest["n_updates"] == 10

    state = BanditStore(home, spec.name).read()
    code = spec.action_ids.index("email_20")
    assert state.counts[code] == 10 and state.reward_sums[code] == 5.0
    assert state.policy.alpha_[code] == 1 + 5 and state.policy.beta_[code] == 1 + 5


def test_only_the_bandits_own_decisions_are_learned(home: Home) -> None:
    spec = spec_of(bandit_experiment())
    write_logs(
        home,
        [
            decision("mine", NOON, "email_10"),
            decision("control", NOON, "email_10", arm="uniform", policy="uniform_random"),
            decision("fallback", NOON, "email_10", policy="rules_fallback"),
            decision("other", NOON, "email_10", experiment="another"),
        ],
    )
    assert update_experiment(home, spec, SETTLE, now=closed_at(NOON))["learned"] == 1


def test_conversions_after_the_window_reward_zero(home: Home) -> None:
    spec = spec_of(bandit_experiment())
    write_logs(
        home,
        [decision("in", NOON, "email_10"), decision("late", NOON, "email_20")],
        [outcome("in", NOON + 59 * MINUTE), outcome("late", NOON + 61 * MINUTE)],
    )
    update_experiment(home, spec, SETTLE, now=closed_at(NOON))
    state = BanditStore(home, spec.name).read()
    assert state.reward_sums.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert state.counts.tolist() == [0, 1, 1, 0, 0]


@pytest.mark.parametrize(
    ("reward", "expected"),
    [("converted", 1.0), ("revenue", 40.0), ("profit", 40.0 - 0.05)],
)
def test_reward_kinds(home: Home, reward: str, expected: float) -> None:
    spec = spec_of(bandit_experiment(policy="gaussian_ts", reward=reward))
    write_logs(
        home,
        [decision("d", NOON, "email_10", policy="bandit:gaussian_ts")],
        [outcome("d", NOON + MINUTE), outcome("d", NOON + MINUTE, "revenue", 40.0)],
    )
    update_experiment(home, spec, SETTLE, now=closed_at(NOON))
    state = BanditStore(home, spec.name).read()
    assert state.reward_sums[spec.action_ids.index("email_10")] == pytest.approx(expected)


def test_feature_contexts_come_from_the_logged_snapshot_in_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [
        decision(
            f"d{i}",
            NOON + i * MINUTE,
            ["email_10", "email_20"][i % 2],
            policy="bandit:linucb",
            features=rng.random(13).tolist(),
        )
        for i in range(25)
    ]
    results = {}
    for name, batch_size in (("chunked", 4), ("whole", 10_000)):
        home = Home(tmp_path / name)
        write_logs(home, rows, [outcome("d3", NOON + 4 * MINUTE)])
        spec = spec_of(bandit_experiment(policy="linucb", batch_size=batch_size))
        update_experiment(home, spec, SETTLE, now=closed_at(NOON + HOUR))
        results[name] = BanditStore(home, spec.name).read().policy
    assert results["chunked"].n_updates_ == 25
    np.testing.assert_allclose(results["chunked"].A_, results["whole"].A_)
    np.testing.assert_allclose(results["chunked"].b_, results["whole"].b_)
    assert np.abs(results["whole"].b_).sum() > 0  # d3's reward was learned with its context


def test_replicas_updating_at_once_learn_each_decision_once(home: Home) -> None:
    spec = spec_of(bandit_experiment())
    decisions = [
        decision(f"d{i:03d}", NOON + i * dt.timedelta(seconds=10), "email_10") for i in range(300)
    ]
    write_logs(home, decisions)
    nows = [closed_at(NOON + i * dt.timedelta(seconds=7)) for i in range(0, 600, 75)]

    def replica(offset: int) -> None:
        for now in nows[offset:] + nows[:offset]:
            update_experiment(home, spec, SETTLE, now=now)

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = BanditStore(home, spec.name).read()
    assert state.policy.n_updates_ == state.counts.sum() == 300


def test_a_state_of_another_configuration_is_refused(home: Home) -> None:
    update_experiment(home, spec_of(bandit_experiment()), SETTLE, now=NOON)
    changed = spec_of(bandit_experiment(policy="ucb"))
    with pytest.raises(BanditStateError, match="delete the file to start learning over"):
        update_experiment(home, changed, SETTLE, now=NOON)


def test_the_shell_uses_the_running_snapshot_and_finds_running_bandits(home: Home):
    home = home
    experiment = bandit_experiment("bandit-offers", floor=0.05)
    experiment_state.start(home, experiment)
    assert running_bandits(home) == ["bandit-offers"]
    summary = update_bandit(home, CONFIG, "bandit-offers", now=NOON)
    assert summary["learned"] == 0
    assert BanditStore(home, "bandit-offers").read().policy.floor == 0.05  # not the YAML's
    with pytest.raises(ValueError, match="of kind ab, not bandit"):
        update_bandit(home, CONFIG, "scored-vs-rules")


def test_a_reward_that_is_not_finite_is_skipped_counted_and_the_watermark_moves() -> None:
    """A poisoned row (an infinite or NaN revenue that reached the join) is not learned: the
    update completes, the watermark moves and the policy's parameters stay finite."""
    spec = spec_of(bandit_experiment(policy="gaussian_ts", reward="revenue"))
    state = BanditState.initial(spec)
    joined = pa.table(
        {
            "ts": pa.array([NOON] * 4, pa.timestamp("us", tz="UTC")),
            "features": [[0.0] * N_FEATURES] * 4,
            "chosen": ["email_10", "email_10", "email_20", "email_20"],
            "converted": [True, True, True, False],
            "revenue": [40.0, float("inf"), float("nan"), 0.0],
        }
    )
    assert learn(state, joined, spec, cutoff=NOON) == 2
    assert state.n_skipped == 2 and state.watermark == NOON
    assert state.counts.sum() == 2 and state.policy.n_updates_ == 2
    learned = state.policy.state_dict()["state"]
    assert all(np.isfinite(np.asarray(values, dtype=float)).all() for values in learned.values())
    assert np.isfinite(state.reward_sums).all()
    assert BanditState.from_json(state.to_json()).n_skipped == 2


def test_a_crashed_replicas_decisions_are_learned_when_they_are_recovered(home: Home) -> None:
    """A decision acknowledged by a replica that died before its Parquet flush is in an
    orphaned write-ahead segment; the update converts it first, so the watermark does not
    pass it unlearned (recovered at the next start, it would be older than the watermark)."""
    spec = spec_of(bandit_experiment())
    decisions = [decision(f"d{i}", NOON + i * MINUTE, "email_20") for i in range(10)]
    write_logs(home, [d for d in decisions if d.decision_id != "d3"])
    crashed = Segment.create(home.decision_log)
    crashed.write(encode(decisions[3]))
    crashed.close()  # what the kernel does to the lock of a killed process

    summary = update_experiment(home, spec, SETTLE, now=closed_at(NOON + 9 * MINUTE))
    recover(home.decision_log, DecisionRecord)  # what the next start would do

    assert summary["learned"] == 10
    later = update_experiment(home, spec, SETTLE, now=closed_at(NOON + HOUR))
    assert later["learned"] == 0 and later["n_updates"] == 10


def test_rows_a_failing_disk_holds_back_are_learned_once_they_land(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live replica whose Parquet writes fail keeps a decision (d3) and an outcome (of d5)
    in its segments: the cutoff waits before both, then the update learns all ten, and
    d5 with its conversion."""
    spec = spec_of(bandit_experiment())
    decisions = [decision(f"d{i}", NOON + i * MINUTE, "email_20") for i in range(10)]
    write_logs(home, [d for d in decisions if d.decision_id != "d3"])
    live = [
        LogWriter(home.decision_log, DecisionRecord),
        LogWriter(home.outcome_log, OutcomeRecord),
    ]

    def full_disk(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(log_writer, "write_batch", full_disk)
        live[0].append(decisions[3])
        live[1].append(outcome("d5", NOON + 6 * MINUTE))
        for writer in live:
            with pytest.raises(OSError):
                writer.flush()
        held = update_experiment(home, spec, SETTLE, now=closed_at(NOON + 9 * MINUTE))
    assert held["learned"] == 0  # d5's outcome could count for any decision from 11:06 on
    for writer in live:
        writer.close()  # the disk is back: the rows land

    landed = update_experiment(home, spec, SETTLE, now=closed_at(NOON + 9 * MINUTE))
    assert landed["learned"] == 10
    assert BanditStore(home, spec.name).read().reward_sums.sum() == 1.0
