"""The synthetic marketing world: customers, ground truth, drift scenarios and logged history.

Everything is vectorized and deterministic by seed. The world knows the true expected
reward of every action for every customer, so tests can compute regret and true uplift.

>>> world = World(seed=7, n_customers=2_000)
>>> logged = world.logged(rows=5_000)
>>> sorted(set(logged["action"])) == sorted(world.action_ids)
True
>>> bool((logged["propensity"] > 0).all())
True
>>> rewards = world.expected_reward(world.customers)
>>> rewards.shape == (2_000, len(world.action_ids))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from configs.loader import load_config
from configs.schema import ActionsConfig
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.vocabulary import EPSILON_GREEDY
from liftgate.sim.world import truth
from liftgate.sim.world.customers import arrival_weights, draw_customers

Scenario = Literal["stationary", "covariate_drift", "concept_drift"]
SCENARIOS: tuple[str, ...] = ("stationary", "covariate_drift", "concept_drift")
LoggingPolicy = Literal["uniform", "epsilon_greedy"]

#: Conversion lag: log-normal with a median of six hours (decisions convert within days).
LAG_MEDIAN_HOURS = 6.0
LAG_SIGMA = 1.2
REVENUE_NOISE_SIGMA = 0.3


@dataclass(frozen=True)
class Timeline:
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    days: float = 30.0
    drift_at: float = 0.5  # fraction of the span at which a drift scenario begins

    @property
    def drift_start(self) -> datetime:
        return self.start + timedelta(days=self.days * self.drift_at)


class World:
    """A seeded population with known response to every action, and its logged history."""

    def __init__(
        self,
        seed: int = 0,
        n_customers: int = 50_000,
        scenario: Scenario = "stationary",
        actions: ActionsConfig | None = None,
        timeline: Timeline = Timeline(),
        drift_strength: float = 1.0,
    ):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; expected one of {SCENARIOS}")
        self.seed = seed
        self.scenario = scenario
        self.timeline = timeline
        self.drift_strength = drift_strength
        self.catalogue = ActionCatalogue(actions or load_config().actions)
        self.action_ids = self.catalogue.ids
        self.customers = draw_customers(np.random.default_rng(seed), n_customers)

    # --- ground truth ----------------------------------------------------------------------

    def _concept_shifted(self, n: int, at: np.ndarray | None) -> np.ndarray:
        if self.scenario != "concept_drift" or at is None:
            return np.zeros(n, dtype=bool)
        return np.asarray(at) >= np.datetime64(self.timeline.drift_start.replace(tzinfo=None))

    def conversion_probability(
        self, customers: pd.DataFrame, at: np.ndarray | None = None
    ) -> np.ndarray:
        """True P(convert) per customer × action; `at` (datetime64, UTC) selects the regime."""
        shifted = self._concept_shifted(len(customers), at)
        return truth.conversion_probability(customers, self.action_ids, self.seed, shifted)

    def order_value(self, customers: pd.DataFrame) -> np.ndarray:
        return truth.order_value(customers, self.action_ids)

    def expected_reward(self, customers: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """True expected profit per customer × action: P(convert) × order value − contact cost."""
        return (
            self.conversion_probability(customers, at) * self.order_value(customers)
            - self.catalogue.costs
        )

    def eligibility(self, customers: pd.DataFrame) -> np.ndarray:
        return self.catalogue.eligibility_mask(
            {c: customers[c] for c in customers.columns}, n_rows=len(customers)
        )

    def oracle_actions(self, customers: pd.DataFrame, at: np.ndarray | None = None) -> np.ndarray:
        """Index of the eligible action with the highest true expected reward."""
        rewards = np.where(
            self.eligibility(customers), self.expected_reward(customers, at), -np.inf
        )
        return rewards.argmax(axis=1)

    def truth_table(self) -> pd.DataFrame:
        """Long table of the truth per customer × action (and regime, under concept drift)."""
        regimes = [False, True] if self.scenario == "concept_drift" else [False]
        frames = []
        n, k = len(self.customers), len(self.action_ids)
        for shifted in regimes:
            flag = np.full(n, shifted)
            p = truth.conversion_probability(self.customers, self.action_ids, self.seed, flag)
            value = self.order_value(self.customers)
            frames.append(
                pd.DataFrame(
                    {
                        "customer_id": np.repeat(self.customers["customer_id"].to_numpy(), k),
                        "action": np.tile(np.asarray(self.action_ids), n),
                        "regime": "after_drift" if shifted else "before_drift",
                        "conversion_probability": p.ravel(),
                        "order_value": value.ravel(),
                        "expected_reward": (p * value - self.catalogue.costs).ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    # --- consent ---------------------------------------------------------------------------

    def consent(self) -> pd.DataFrame:
        """The customers' consent in the format of `liftgate consent import`: per customer,
        email from `email_opt_in` and push from `push_opt_in` (granted or refused), dated
        the start of the timeline, source ``world``."""
        opt_ins = {"email": "email_opt_in", "push": "push_opt_in"}
        n = len(self.customers)
        return pd.DataFrame(
            {
                "customer_id": np.tile(self.customers["customer_id"].to_numpy(), len(opt_ins)),
                "channel": np.repeat(list(opt_ins), n),
                "granted": np.concatenate([self.customers[c].to_numpy() for c in opt_ins.values()]),
                "ts": pd.Timestamp(self.timeline.start),
                "source": "world",
            }
        )

    # --- history ---------------------------------------------------------------------------

    def arrivals(self, rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Decision times (sorted, datetime64[us]) and the index of the arriving customer."""
        span_us = int(self.timeline.days * 86_400e6)
        offsets = np.sort(rng.integers(0, span_us, rows))
        start = np.datetime64(self.timeline.start.replace(tzinfo=None), "us")
        times = start + offsets.astype("timedelta64[us]")
        n = len(self.customers)
        who = rng.integers(0, n, rows)
        if self.scenario == "covariate_drift":
            after = offsets >= int(span_us * self.timeline.drift_at)
            tilted = arrival_weights(self.customers, self.drift_strength)
            who[after] = rng.choice(n, size=int(after.sum()), p=tilted)
        return times, who

    def logging_probabilities(
        self, customers: pd.DataFrame, policy: LoggingPolicy, epsilon: float
    ) -> np.ndarray:
        """(rows × actions) probabilities of the logging policy over eligible actions.

        `uniform` picks uniformly among eligible actions; `epsilon_greedy` takes the first
        eligible action of the fallback order with probability 1 − ε, else explores uniformly.
        """
        eligible = self.eligibility(customers)
        uniform = eligible / eligible.sum(axis=1, keepdims=True)
        if policy == "uniform":
            return uniform
        if policy != EPSILON_GREEDY:
            raise ValueError(f"unknown logging policy {policy!r}")
        ranked = self.catalogue.codes(self.catalogue.fallback_order)
        first = ranked[np.argmax(eligible[:, ranked], axis=1)]
        greedy = np.zeros_like(uniform)
        greedy[np.arange(len(first)), first] = 1.0
        return (1 - epsilon) * greedy + epsilon * uniform

    def logged(
        self, rows: int, policy: LoggingPolicy = "uniform", epsilon: float = 0.2
    ) -> pd.DataFrame:
        """Historical decisions under a known logging policy, with exact propensities."""
        rng = np.random.default_rng([self.seed, 1])
        times, who = self.arrivals(rng, rows)
        customers = self.customers.iloc[who].reset_index(drop=True)
        probs = self.logging_probabilities(customers, policy, epsilon)
        cumulative = probs.cumsum(axis=1)
        action = (rng.random((rows, 1)) > cumulative).sum(axis=1)
        action = np.minimum(action, len(self.action_ids) - 1)
        rows_idx = np.arange(rows)
        p = self.conversion_probability(customers, times)[rows_idx, action]
        converted = rng.random(rows) < p
        value = self.order_value(customers)[rows_idx, action]
        noise = rng.lognormal(-(REVENUE_NOISE_SIGMA**2) / 2, REVENUE_NOISE_SIGMA, rows)
        revenue = np.where(converted, np.round(value * noise, 2), 0.0)
        lag_s = rng.lognormal(np.log(LAG_MEDIAN_HOURS * 3600), LAG_SIGMA, rows)
        conversion_ts = np.where(
            converted, times + lag_s.astype("timedelta64[s]"), np.datetime64("NaT")
        )
        logged = customers.drop(columns=["email_opt_in", "push_opt_in"])
        logged.insert(0, "decision_id", [f"h{self.seed}-{i:09d}" for i in rows_idx])
        logged.insert(1, "decision_ts", pd.to_datetime(times, utc=True))
        logged["action"] = np.asarray(self.action_ids)[action]
        logged["propensity"] = probs[rows_idx, action]
        logged["logging_policy"] = policy
        logged["converted"] = converted
        logged["revenue"] = revenue
        logged["conversion_ts"] = pd.to_datetime(conversion_ts, utc=True)
        return logged

    def write(self, out: Path, rows: int, policy: LoggingPolicy = "uniform", epsilon=0.2) -> dict:
        """Write customers.parquet, logged.parquet, truth.parquet and consent.parquet (the
        customers' consent, for `liftgate consent import`) under `out`."""
        out.mkdir(parents=True, exist_ok=True)
        logged = self.logged(rows, policy, epsilon)
        files = {
            "customers": (self.customers, out / "customers.parquet"),
            "logged": (logged, out / "logged.parquet"),
            "truth": (self.truth_table(), out / "truth.parquet"),
            "consent": (self.consent(), out / "consent.parquet"),
        }
        metadata = {
            b"liftgate.world": (
                f'{{"seed": {self.seed}, "scenario": "{self.scenario}", '
                f'"drift_start": "{self.timeline.drift_start.isoformat()}"}}'
            ).encode()
        }
        for frame, path in files.values():
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pq.write_table(
                table.replace_schema_metadata({**table.schema.metadata, **metadata}), path
            )
        return {
            "out": str(out),
            "seed": self.seed,
            "scenario": self.scenario,
            "drift_start": self.timeline.drift_start.isoformat()
            if self.scenario != "stationary"
            else None,
            "customers": len(self.customers),
            "logged_rows": len(logged),
            "conversion_rate": float(logged["converted"].mean()),
            "files": {name: str(path) for name, (_, path) in files.items()},
        }
