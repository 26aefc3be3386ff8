"""Bulk campaigns, the parts that need no service: the file, the segment, the pacing and the
progress of a run.

A campaign (`configs/campaigns/*.yaml`, `CampaignConfig`) reaches a segment of the online
store's customers (a `where` filter over its columns, in customer id order, at most `limit`),
decides for each through the decision service and commits the chosen action through the
checks of `/v1/actions` (`liftgate.journeys.campaign_run`). What is here:

- `load_campaign`: the file, cross-checked against the configuration (errors name the file
  and the key);
- `segment_of` / `read_segment`: the segment's customer ids;
- `Pacer`: a token bucket that spaces commits at `rate_per_s`;
- `CampaignProgress`: which customers a run has decided for and finished, so that a run
  resumed after a crash skips them and never decides twice for anyone;
- `idempotency_key`: one key per campaign and customer, so that no action is queued twice.

>>> import pyarrow as pa
>>> from configs.journey_schema import Segment
>>> table = pa.table({"customer_id": ["c3", "c1", "c2"],
...                   "segment": ["dormant", "loyal", "dormant"]})
>>> segment_of(table, Segment(where={"segment": "dormant"}))
['c2', 'c3']
>>> segment_of(table, Segment(limit=2))
['c1', 'c2']
>>> pacer = Pacer(rate_per_s=2.0)
>>> [pacer.wait(now=0.0) for _ in range(3)], pacer.wait(now=1.0)
([0.0, 0.5, 1.0], 0.5)
>>> idempotency_key("winback", "c1"), idempotency_key("winback", "c1", dry_run_token="9f3a")
('campaign:winback:c1', 'dry-run:9f3a:campaign:winback:c1')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from configs.journey_schema import CampaignConfig, Segment
from configs.loader import ConfigError, LiftgateConfig, load_file
from liftgate.core.errors import InputError
from liftgate.core.filters import expression
from liftgate.core.home import Home
from liftgate.core.sqlite import SharedDatabase

CUSTOMER_ID = "customer_id"
#: The longest campaign name whose keys fit the action store's 200 characters with any
#: customer id (at most 128) and the dry-run prefix.
MAX_NAME_LENGTH = 40

#: How a customer's turn in a run ended (besides the statuses of a commit).
NO_ACTION = "no_action"  # the decision chose not to contact the customer
NOT_ELIGIBLE = "not_eligible"  # no candidate was eligible (rules, consent, the arm)


def campaign_problems(campaign: CampaignConfig, config: LiftgateConfig) -> list[str]:
    """`key: problem` for what the schema alone cannot see: candidates outside the action
    catalogue or more than a decision takes, a TTL longer than the action service takes,
    a name too long for its keys."""
    problems = []
    known = [action.id for action in config.actions.actions]
    unknown = [candidate for candidate in campaign.candidates if candidate not in known]
    if unknown:
        problems.append(f"candidates: expected action ids of actions.yaml {known}; found {unknown}")
    most = config.serving.max_candidates
    if len(campaign.candidates) > most:
        problems.append(
            f"candidates: expected at most serving.yaml max_candidates ({most}); "
            f"found {len(campaign.candidates)}"
        )
    max_ttl_s = config.serving.actions.max_ttl_s
    if campaign.ttl.total_seconds() > max_ttl_s:
        problems.append(
            f"ttl: expected at most serving.yaml actions.max_ttl_s ({max_ttl_s:g} s); "
            f"found {campaign.ttl.total_seconds():g} s"
        )
    if len(campaign.name) > MAX_NAME_LENGTH:
        problems.append(
            f"name: expected at most {MAX_NAME_LENGTH} characters (it is part of every "
            f"action's idempotency key); found {len(campaign.name)}"
        )
    return problems


def load_campaign(path: Path, config: LiftgateConfig) -> CampaignConfig:
    """The campaign file at `path`, checked; `ConfigError` naming the file and the keys."""
    campaign = load_file(path, CampaignConfig)
    problems = campaign_problems(campaign, config)
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return campaign


def segment_of(table: pa.Table, segment: Segment) -> list[str]:
    """The ids of the customers of `table` in `segment`, sorted (a stable order: a resumed
    or repeated run walks them alike), at most `segment.limit`."""
    selected = table.filter(expression(segment.where)) if segment.where else table
    return sorted(set(selected.column(CUSTOMER_ID).to_pylist()))[: segment.limit]


def read_segment(customers: Path, segment: Segment, source: Path) -> list[str]:
    """The segment over the customers table at `customers`; `InputError` naming the campaign
    file `source` and its key when the filter names a column the table lacks or compares a
    column with a value of another type."""
    if not customers.exists():
        raise InputError(
            f"the online store's customers table {customers} does not exist "
            "(a home serves a world's customers once stocked, e.g. by `liftgate demo`)"
        )
    columns = pq.read_schema(customers).names
    for name in segment.where:
        if name not in columns:
            raise InputError(
                f"{source}: segment.where.{name}: expected a column of {customers} "
                f"({', '.join(columns)}); found {name!r}"
            )
    table = pq.read_table(customers, columns=[CUSTOMER_ID, *dict.fromkeys(segment.where)])
    try:
        return segment_of(table, segment)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        types = {name: str(table.schema.field(name).type) for name in segment.where}
        raise InputError(
            f"{source}: segment.where: expected values of the columns' types {types} ({exc})"
        ) from None


def idempotency_key(name: str, customer_id: str, dry_run_token: str | None = None) -> str:
    """The commit's key: one per campaign and customer, so that a resumed or repeated run
    never queues twice. A dry run's keys carry its own token: a later dry or real run is
    not answered with its stored answers."""
    key = f"campaign:{name}:{customer_id}"
    return key if dry_run_token is None else f"dry-run:{dry_run_token}:{key}"


@dataclass
class Pacer:
    """A token bucket: on average `rate_per_s` takes a second, at most `burst` at once.

    `wait(now)` takes one token at `now` (seconds of any monotonic clock) and answers how long
    to wait before using it: the caller sleeps (the clock is the caller's, so tests need none).
    """

    rate_per_s: float
    burst: float = 1.0
    _tokens: float | None = None
    _last: float = 0.0

    def wait(self, now: float) -> float:
        if self._tokens is None:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s


@dataclass(frozen=True)
class Decided:
    """A decision a run made for a customer, kept before its action is committed: a resumed
    run commits it again (the same request gets the stored answer) instead of deciding anew."""

    customer_id: str
    decision_id: str
    action: str


@dataclass(frozen=True)
class Finished:
    customer_id: str
    status: str  # queued, refused, no_action, not_eligible
    check: str | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    decision_id TEXT,
    action TEXT,
    status TEXT,  -- NULL: decided, not yet committed
    refusal_check TEXT
)"""


class CampaignProgress:
    """A campaign's progress (SQLite, `home.campaigns / name / progress.db`, fsynced
    commits): per customer, the decision made for it and, once committed, how it ended.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as root:
    ...     with CampaignProgress.open(Home(Path(root)), "winback") as progress:
    ...         progress.record_decided([Decided("c1", "d1", "email_10"),
    ...                                  Decided("c2", "d2", "no_action")])
    ...         progress.record_finished([Finished("c2", NO_ACTION), Finished("c3", NOT_ELIGIBLE)])
    ...         sorted(progress.done()), progress.pending()
    (['c2', 'c3'], {'c1': Decided(customer_id='c1', decision_id='d1', action='email_10')})
    """

    def __init__(self, path: Path):
        self.path = path
        self._database = SharedDatabase(path, _SCHEMA, synchronous="FULL")

    @classmethod
    def open(cls, home: Home, name: str) -> CampaignProgress:
        return cls(home.campaigns / name / "progress.db")

    def done(self) -> set[str]:
        """The customers whose turn has ended: a resumed run skips them."""
        with self._database.read() as db:
            rows = db.execute("SELECT customer_id FROM customers WHERE status IS NOT NULL")
            return {customer_id for (customer_id,) in rows}

    def pending(self) -> dict[str, Decided]:
        """Decided for, not yet known to be committed (a run stopped in between)."""
        with self._database.read() as db:
            rows = db.execute(
                "SELECT customer_id, decision_id, action FROM customers WHERE status IS NULL"
            ).fetchall()
        return {row[0]: Decided(*row) for row in rows}

    def record_decided(self, decided: Iterable[Decided]) -> None:
        with self._database.write() as db:
            db.executemany(
                "INSERT INTO customers (customer_id, decision_id, action) VALUES (?, ?, ?) "
                "ON CONFLICT (customer_id) DO NOTHING",
                [(d.customer_id, d.decision_id, d.action) for d in decided],
            )

    def record_finished(self, finished: Sequence[Finished]) -> None:
        with self._database.write() as db:
            db.executemany(
                "INSERT INTO customers (customer_id, status, refusal_check) VALUES (?, ?, ?) "
                "ON CONFLICT (customer_id) DO UPDATE "
                "SET status = excluded.status, refusal_check = excluded.refusal_check",
                [(f.customer_id, f.status, f.check) for f in finished],
            )

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> CampaignProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
