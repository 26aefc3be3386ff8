"""An experiment's units from logs larger than memory: built partition by partition.

The memory engine of `liftgate experiment report` reads every decision of the experiment's
period (all columns, all experiments) and every outcome since, then joins them. The `local`
and `ray` engines cut the experiment's customers into :data:`PARTITIONS` partitions by a
stable hash of the customer id (:func:`experiments.stats.streaming.unit_partitions`), so that
all decisions of a customer, and through their ids all their outcomes, fall in one partition:

- a partition's decisions: a filtered scan of the decision log (the six columns the units
  need, this experiment only), batch by batch, keeping the partition's customers;
- its outcomes: a scan of the outcome log keeping those decisions' ids;
- its units: :func:`experiments.units.experiment_units` on them, the very rows the memory
  engine builds for these customers.

Memory holds one partition of the logs and the unit table (one short row per customer).
``local`` builds the partitions one after the other; ``ray`` builds them in Ray tasks in
parallel (each scans the logs itself), and the driver concatenates them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from experiments.logs.reader import scan_log
from experiments.logs.schema import DECISION_SCHEMA, OUTCOME_SCHEMA
from experiments.stats.streaming import unit_partitions
from experiments.units import UNIT, experiment_units
from liftgate.core.home import Home

#: Partitions of the customers: each holds ~1/8 of the experiment's logs at a time.
PARTITIONS = 8
#: The decision columns `experiment_units` reads.
DECISION_COLUMNS = ["decision_id", UNIT, "arm", "ts", "experiment", "features"]


def _table(schema: pa.Schema, columns: list[str], pieces: Iterable[pa.Table]) -> pa.Table:
    """`pieces` (batches of a scan) as one table of those columns, empty if none."""
    empty = pa.schema([schema.field(c) for c in columns]).empty_table()
    return pa.concat_tables([empty, *pieces]).combine_chunks()


@dataclass(frozen=True)
class UnitsJob:
    """Where the logs are and how the experiment's units are built from them."""

    decision_log: Path
    outcome_log: Path
    experiment: str
    start: dt.datetime | None
    stop: dt.datetime | None
    outcomes_since: dt.datetime | None
    window_s: float
    covariate_index: int | None
    segments: Mapping[str, int]

    def partition(self, index: int, partitions: int = PARTITIONS) -> pa.Table:
        """The units of the customers of partition `index`."""
        ours = ds.field("experiment") == self.experiment
        pieces = [
            batch.filter(pc.equal(unit_partitions(batch[UNIT], partitions), index))
            for batch in scan_log(
                self.decision_log, DECISION_SCHEMA, DECISION_COLUMNS, self.start, self.stop, ours
            )
        ]
        decisions = _table(DECISION_SCHEMA, DECISION_COLUMNS, pieces)
        ids = decisions["decision_id"]
        outcomes = _table(
            OUTCOME_SCHEMA,
            OUTCOME_SCHEMA.names,
            (
                batch.filter(pc.is_in(batch["decision_id"], value_set=ids))
                for batch in scan_log(
                    self.outcome_log, OUTCOME_SCHEMA, OUTCOME_SCHEMA.names, self.outcomes_since
                )
            ),
        )
        return experiment_units(
            decisions,
            outcomes,
            self.experiment,
            self.window_s,
            self.covariate_index,
            dict(self.segments),
        )

    def decision_arms(self) -> pa.Table:
        """`decision_id`, `arm` and `experiment` of the experiment's decisions: what
        `experiments.sent.sent_by_arm` needs, without the rest of the log."""
        columns = ["decision_id", "arm", "experiment"]
        ours = ds.field("experiment") == self.experiment
        scan = scan_log(self.decision_log, DECISION_SCHEMA, columns, self.start, self.stop, ours)
        return _table(DECISION_SCHEMA, columns, scan)


def units_locally(job: UnitsJob, partitions: int = PARTITIONS) -> pa.Table:
    """The `local` engine: partitions one after the other, in this process."""
    return _together([job.partition(i, partitions) for i in range(partitions)])


def units_with_ray(
    job: UnitsJob, home: Home, partitions: int = PARTITIONS, num_cpus: int = 2
) -> pa.Table:
    """The `ray` engine: one Ray task per partition, on a local Ray started for the run."""
    from liftgate.app.local_ray import local_ray

    with local_ray(home, num_cpus=num_cpus):
        import ray

        build = ray.remote(_partition_of)
        return _together(ray.get([build.remote(job, i, partitions) for i in range(partitions)]))


def _partition_of(job: UnitsJob, index: int, partitions: int) -> pa.Table:
    return job.partition(index, partitions)


def _together(parts: list[pa.Table]) -> pa.Table:
    # The memory engine's order: by first exposure (ties in any order; no number depends on it).
    return pa.concat_tables(parts).sort_by([("first_exposure", "ascending")])
