"""`liftgate score`'s engines: a customers Parquet file scored by Ray Data or one process.

Both run `liftgate.core.batch_scoring.BatchScorer` on Arrow batches and write a directory of
Parquet files (Ray Data writes one file per block; the local engine one file). Ray Data
runs `read_parquet → map_batches(callable class) → write_parquet`: each actor of the pool
loads the model version from the registry once, in its constructor, and scores every batch
it is given. Ray starts on this machine as `liftgate serve` starts it (loopback only, no
dashboard, a short temp dir: see `liftgate.app.runner`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from configs.loader import LiftgateConfig
from configs.schema import ActionsConfig, FeaturesConfig, RegistryPolicy
from liftgate.app.local_ray import local_ray
from liftgate.core.batch_scoring import OUTPUT_SCHEMA, BatchScorer, missing_columns
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.errors import InputError
from liftgate.core.home import Home

#: Customers per batch: each becomes one row per action (5 actions: 40k output rows).
BATCH_SIZE = 8_192
#: CPUs each scoring actor reserves: on two cores, what the pool leaves free reads and
#: writes the blocks.
ACTOR_CPUS = 0.5
LOCAL_FILE = "part-00000.parquet"


@dataclass(frozen=True)
class ScoringJob:
    """What a scorer needs, in a form a Ray actor can be sent (configuration, not objects)."""

    home_root: Path
    registry_policy: RegistryPolicy
    features: FeaturesConfig
    actions: ActionsConfig
    model_name: str
    model_version: str
    action_ids: tuple[str, ...]

    @classmethod
    def resolve(
        cls, config: LiftgateConfig, home: Home, alias: str, action_ids: Sequence[str] | None
    ) -> ScoringJob:
        """The job of the version `alias` names now (RegistryError if none); every action of
        the catalogue unless `action_ids` (InputError naming the unknown ones)."""
        from registry.client import ModelRegistry

        known = [action.id for action in config.actions.actions]
        unknown = [a for a in action_ids or () if a not in known]
        if unknown or (action_ids is not None and not action_ids):
            raise InputError(
                f"expected action ids of actions.yaml {known}; got {unknown or 'none'}",
                parameter="actions",
            )
        name = config.models.scorer.name
        registry = ModelRegistry(home, config.models.registry)
        version = registry.load(name, alias=alias).version  # loads it once: a bad model fails here
        return cls(
            home.root,
            config.models.registry,
            config.features,
            config.actions,
            name,
            version,
            tuple(action_ids or known),
        )

    def scorer(self) -> BatchScorer:
        from registry.client import ModelRegistry

        registry = ModelRegistry(Home(self.home_root), self.registry_policy)
        loaded = registry.load(self.model_name, version=self.model_version)
        return BatchScorer(
            loaded.model,
            FeatureContract(self.features),
            ActionCatalogue(self.actions),
            loaded.name,
            loaded.version,
            self.action_ids,
        )


def check_input(source: Path, required: Sequence[str]) -> int:
    """The number of customers in `source` (a Parquet file or a directory of them), or an
    InputError naming the file and the columns it lacks."""
    if not source.exists():
        raise InputError(f"{source}: no such file", parameter="source")
    try:
        dataset = ds.dataset(source, format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{source}: not a Parquet file ({exc})", parameter="source") from None
    missing = missing_columns(dataset.schema.names, required)
    if missing:
        raise InputError(
            f"{source}: expected the columns {missing} of a customers table "
            f"(customers.parquet: customer_id and the stored features of features.yaml)",
            parameter="source",
        )
    return dataset.count_rows()


def check_output(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(
            f"{target}: exists; expected a new directory (remove it or name another)",
            parameter="target",
        )


def score_locally(
    job: ScoringJob,
    source: Path,
    target: Path,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] = lambda customers: None,
) -> None:
    """One process: batches of `source` scored in turn into `target`/part-00000.parquet."""
    score = job.scorer()
    target.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(target / LOCAL_FILE, OUTPUT_SCHEMA) as writer:
        for batch in ds.dataset(source, format="parquet").to_batches(batch_size=batch_size):
            writer.write_table(score(pa.Table.from_batches([batch])))
            on_batch(batch.num_rows)


class _ActorScorer:
    """Ray Data's callable class: the model is loaded once per actor, not per batch."""

    def __init__(self, job: ScoringJob):
        self.score = job.scorer()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.score(batch)


def score_with_ray(
    job: ScoringJob,
    source: Path,
    target: Path,
    home: Home,
    customers: int,
    *,
    actors: int = 2,
    batch_size: int = BATCH_SIZE,
    progress: bool = True,
) -> None:
    """Ray Data on a local Ray started for the run and shut down after it (`local_ray`); Ray
    Data's own progress bars on stderr when `progress`."""
    with local_ray(home, progress=progress):
        import ray.data

        (
            # A file is one block unless split: a block per batch, so every actor has work.
            ray.data.read_parquet(
                str(source), override_num_blocks=max(actors, math.ceil(customers / batch_size))
            )
            .map_batches(
                _ActorScorer,
                fn_constructor_args=(job,),
                batch_format="pyarrow",
                batch_size=batch_size,
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
                num_cpus=ACTOR_CPUS,
            )
            .write_parquet(str(target))
        )
