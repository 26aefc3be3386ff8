"""The append-only decision log, outcome log and action log.

Every ``POST /v1/decide`` answer is logged as one
:class:`~experiments.logs.schema.DecisionRecord`, every reported outcome as one
:class:`~experiments.logs.schema.OutcomeRecord`, every commit and delivery attempt of an
action (``POST /v1/actions``) as one :class:`~experiments.logs.schema.ActionRecord`. The
logs are Parquet datasets
partitioned by the UTC date of ``ts`` (hive style, ``date=YYYY-MM-DD/part-<uuid>.parquet``)
whose Arrow schemas are derived from the records' fields.

- ``experiments.logs.schema``: the records, the Arrow schemas derived from them, and the
  conversion between records and Arrow tables;
- ``experiments.logs.writer``: :class:`~experiments.logs.writer.LogWriter`, writing each
  record ahead to a segment before it is acknowledged, and in batches to new Parquet files
  (several processes may log at once);
- ``experiments.logs.frames``, ``experiments.logs.wal``, ``experiments.logs.group_commit``,
  ``experiments.logs.parquet_files``: the write-ahead frames and segments (and the
  recovery of a crashed writer's), the fsync policy, the durable at-most-once Parquet files;
- ``experiments.logs.reader``: reading a log, and the decision–outcome join.

>>> import datetime as dt, tempfile
>>> from pathlib import Path
>>> from experiments.logs.reader import decisions_with_outcomes
>>> from experiments.logs.schema import DecisionRecord, OutcomeRecord
>>> from experiments.logs.writer import LogWriter
>>> from liftgate.core.home import Home
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> decision = DecisionRecord(
...     decision_id="d1", ts=noon, customer_id="c1", features=[0.3, 1.0],
...     contract_version="v1", actions=["email", "sms"], scores=[2.5, 1.0],
...     probabilities=[0.10, 0.05], chosen="email", propensity=0.9, policy="greedy",
...     model_name="uplift", model_version="3", model_alias="champion", fallback=False,
...     cold_start=False, latency_ms=4.2, trace_id="t1",
... )  # experiment, arm, fallback_reason and request_id are nullable and default to None
>>> outcome = OutcomeRecord(
...     outcome_id="o1", decision_id="d1", ts=noon + dt.timedelta(minutes=5),
...     event="revenue", value=19.5, received_ts=noon + dt.timedelta(minutes=6),
...     known_decision=True,
... )
>>> with tempfile.TemporaryDirectory() as tmp:
...     home = Home(Path(tmp))
...     with LogWriter(home.decision_log, DecisionRecord) as decisions:
...         decisions.append(decision)
...     with LogWriter(home.outcome_log, OutcomeRecord) as outcomes:
...         outcomes.append(outcome)
...     joined = decisions_with_outcomes(home, window_s=3600)
>>> joined.select(["decision_id", "converted", "revenue", "n_outcomes"]).to_pylist()
[{'decision_id': 'd1', 'converted': False, 'revenue': 19.5, 'n_outcomes': 1}]
"""
