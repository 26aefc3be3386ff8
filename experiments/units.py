"""An experiment's units from the logs: one row per customer, ready for the statistics.

Decisions of the experiment are joined with their outcomes inside the attribution window
(`experiments.logs.reader.join_outcomes`), then aggregated per unit with Arrow: the arm of
the unit's first decision (intention to treat), its first exposure, decisions served,
whether it converted, revenue, and the CUPED covariate and any segment features (as encoded by the
contract, columns ``feature:<name>``) from the first decision's feature snapshot
(pre-exposure by construction: features are read before the decision is made).

>>> import datetime as dt
>>> from experiments.logs.schema import DecisionRecord, OutcomeRecord, to_table
>>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> def decision(decision_id, customer_id, arm):
...     return DecisionRecord(
...         decision_id=decision_id, customer_id=customer_id, arm=arm, ts=t0, features=[2.0],
...         contract_version="1", actions=["a"], scores=[1.0], probabilities=[0.1], chosen="a",
...         propensity=1.0, policy="rules", model_name="m", model_version="1",
...         model_alias="champion", experiment="e", fallback=False, cold_start=False,
...         latency_ms=1.0, trace_id="t")
>>> decisions = to_table(DecisionRecord, [
...     decision("d1", "c1", "control"), decision("d2", "c1", "control"),
...     decision("d3", "c2", "treatment")])
>>> outcomes = to_table(OutcomeRecord, [OutcomeRecord(outcome_id="o1", decision_id="d2",
...     ts=t0, event="conversion", value=1.0, received_ts=t0, known_decision=True)])
>>> units = experiment_units(decisions, outcomes, "e", window_s=3600, covariate_index=0)
>>> units.select(["customer_id", "arm", "decisions", "converted", "covariate"]).to_pylist()
... # doctest: +NORMALIZE_WHITESPACE
[{'customer_id': 'c1', 'arm': 'control', 'decisions': 2, 'converted': 1, 'covariate': 2.0},
 {'customer_id': 'c2', 'arm': 'treatment', 'decisions': 1, 'converted': 0, 'covariate': 2.0}]
>>> experiment_units(decisions, outcomes, "e", 3600, feature_indices={"recency_days": 0}
...                  ).column("feature:recency_days").to_pylist()
[2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from experiments.logs.reader import join_outcomes

UNIT = "customer_id"
FEATURE_PREFIX = "feature:"


def experiment_units(
    decisions: pa.Table,
    outcomes: pa.Table,
    experiment: str,
    window_s: float,
    covariate_index: int | None = None,
    feature_indices: Mapping[str, int] | None = None,
    per_arm: bool = False,
) -> pa.Table:
    """One row per unit; ``feature_indices`` maps contract feature names to their position
    in the logged feature vector, for the segment columns. With `per_arm`, a customer
    served by several arms (a canary whose weight grew took customers from the stable
    group) is one unit per arm, holding that arm's decisions only."""
    exposed = decisions.filter(pc.equal(decisions["experiment"], experiment))
    joined = join_outcomes(exposed, outcomes, window_s=window_s)
    joined = joined.sort_by([("ts", "ascending")])
    columns = {
        UNIT: joined[UNIT],
        "arm": joined["arm"],
        "ts": joined["ts"],
        "converted": pc.cast(joined["converted"], pa.int64()),
        "revenue": joined["revenue"],
    }
    if covariate_index is not None:
        columns["covariate"] = pc.list_element(joined["features"], covariate_index)
    keys = [UNIT, "arm"] if per_arm else [UNIT]
    aggregations = [
        *([] if per_arm else [("arm", "first")]),
        ("ts", "min"),
        ([], "count_all"),
        ("converted", "max"),
        ("revenue", "sum"),
    ]
    if covariate_index is not None:
        aggregations.append(("covariate", "first"))
    segments = {FEATURE_PREFIX + name: index for name, index in (feature_indices or {}).items()}
    for column, index in segments.items():
        columns[column] = pc.list_element(joined["features"], index)
        aggregations.append((column, "first"))
    # Single-threaded so that "first" is the first decision in time order.
    units = pa.table(columns).group_by(keys, use_threads=False).aggregate(aggregations)
    renamed = {
        "arm_first": "arm",
        "ts_min": "first_exposure",
        "count_all": "decisions",
        "converted_max": "converted",
        "revenue_sum": "revenue",
        "covariate_first": "covariate",
    }
    renamed.update({f"{column}_first": column for column in segments})
    units = units.rename_columns([renamed.get(name, name) for name in units.column_names])
    order = [UNIT, "arm", "first_exposure", "decisions", "converted", "revenue"]
    if covariate_index is not None:
        order.append("covariate")
    return units.select(order + list(segments)).sort_by([("first_exposure", "ascending")])
