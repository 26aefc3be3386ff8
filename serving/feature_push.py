"""Loading customer features into the online store (`liftgate features push`).

The file is checked against what serving needs before anything is written: a
``customer_id`` for every row, and a column for every feature the contract reads from the
store (``source: stored``) and every attribute an action's eligibility rule tests. Values
themselves are repaired by the contract as in training (missing, out of range, unknown
category), so only a missing column is an error.

- embedded: the rows are written to a temporary file beside the store and renamed over it,
  so a replica never loads half a file;
- Redis: the rows go through the contract and are written in pipelined batches
  (serving.redis_store for the key layout).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.errors import InputError
from serving.online_store import CUSTOMER_ID
from serving.redis_store import connect, printable_url, push_to_redis

WRITE_BATCH_ROWS = 50_000


def required_columns(contract: FeatureContract, catalogue: ActionCatalogue) -> list[str]:
    """The columns a customers file must have, in a stable order.

    >>> from configs.loader import load_config
    >>> config = load_config()
    >>> contract = FeatureContract(config.features)
    >>> columns = required_columns(contract, ActionCatalogue(config.actions))
    >>> columns[0], "recency_days" in columns
    ('customer_id', True)
    """
    stored = [spec.name for spec in contract.specs if spec.source != "request"]
    rules = [rule.feature for action in catalogue.actions for rule in action.eligibility]
    return list(dict.fromkeys([CUSTOMER_ID, *stored, *rules]))


def read_customers(path: Path, contract: FeatureContract, catalogue: ActionCatalogue) -> pa.Table:
    """The customers file, or an InputError naming the file and what is wrong with it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in required_columns(contract, catalogue) if c not in table.column_names]
    if missing:
        raise InputError(
            f"{path}: no column {', '.join(map(repr, missing))} (serving needs "
            f"{CUSTOMER_ID!r}, the contract's stored features and the eligibility attributes)"
        )
    ids = table.column(CUSTOMER_ID)
    if not pa.types.is_string(ids.type) and not pa.types.is_large_string(ids.type):
        raise InputError(f"{path}: column {CUSTOMER_ID!r} holds {ids.type}; expected strings")
    if ids.null_count:
        raise InputError(f"{path}: column {CUSTOMER_ID!r} has {ids.null_count} empty value(s)")
    return table


def write_embedded(table: pa.Table, destination: Path, on_rows: Callable[[int], None]) -> int:
    """Replace the embedded store's file with `table`, atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        with pq.ParquetWriter(partial, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=WRITE_BATCH_ROWS):
                writer.write_batch(batch)
                on_rows(batch.num_rows)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return table.num_rows


def push(
    table: pa.Table,
    contract: FeatureContract,
    catalogue: ActionCatalogue,
    embedded_path: Path,
    redis_url: str | None = None,
    on_rows: Callable[[int], None] = lambda n: None,
) -> str:
    """Write `table` to Redis at `redis_url`, or else to the embedded store's file; returns
    the store written, as a message names it."""
    if redis_url is None:
        write_embedded(table, embedded_path, on_rows)
        return str(embedded_path)
    import redis

    client = connect(redis_url)
    try:
        push_to_redis(client, table, contract, catalogue, on_rows)
    except redis.RedisError as exc:
        raise InputError(f"cannot write to Redis at {printable_url(redis_url)} ({exc})") from exc
    finally:
        client.close()
    return printable_url(redis_url)
