"""Pydantic schemas of the configuration files: one schema, validated at load.

Every model forbids unknown keys, so a typo in a YAML file is an error, not a silent default.

The names a YAML file may use for a policy, a reward or a model alias are defined by the
`Literal` types below (this package is the bottom layer, so the code's names come from
here: `liftgate.core.vocabulary` gives them to the code). A spelling of an earlier release
is still read, under its current name, with a `DeprecatedSpellingWarning` that names the
file and the key:

>>> import warnings
>>> raw = {"policy": "egreedy", "reward": "conversion"}
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     bandit = BanditConfig.model_validate(raw, context={"file": "offers.yaml"})
>>> bandit.policy, bandit.reward
('epsilon_greedy', 'converted')
>>> print(caught[0].message)
offers.yaml: bandit.policy: 'egreedy' is deprecated; write 'epsilon_greedy'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- names (liftgate.core.vocabulary) ------------------------------------------------------

#: Policies an experiment arm and a bandit both offer.
SharedPolicyName = Literal["epsilon_greedy", "uniform_random"]
#: Policies only an arm takes: the catalogue's fallback order, a model's uplift, a bandit.
ArmOnlyPolicyName = Literal["rules", "uplift_targeting", "bandit"]
#: Policies only a bandit learner takes (experiments.bandits.policies).
BanditOnlyPolicyName = Literal["thompson", "ucb", "linucb", "lints", "gaussian_ts", "model"]
ArmPolicyName = Literal[SharedPolicyName, ArmOnlyPolicyName]
BanditPolicyName = Literal[SharedPolicyName, BanditOnlyPolicyName]
#: A decision's reward: converted (0/1), revenue, or profit (revenue − the action's cost).
RewardKind = Literal["converted", "revenue", "profit"]
#: Registry aliases a configuration may serve or roll out.
ServedAlias = Literal["champion", "challenger"]
#: The arm label of an experiment's holdout share; no configured arm may take it.
HOLDOUT: Final = "holdout"

#: Spellings of earlier releases, still read: old → current, per kind of name.
OLD_ARM_POLICIES: Final[Mapping[str, ArmPolicyName]] = {"greedy_epsilon": "epsilon_greedy"}
OLD_BANDIT_POLICIES: Final[Mapping[str, BanditPolicyName]] = {
    "egreedy": "epsilon_greedy",
    "random": "uniform_random",
}
OLD_REWARD_KINDS: Final[Mapping[str, RewardKind]] = {
    "conversion": "converted",
    "revenue_minus_cost": "profit",
}


class DeprecatedSpellingWarning(FutureWarning):
    """An old spelling of a name was read and taken under its current name.

    A FutureWarning, not a DeprecationWarning: it is meant for whoever writes the YAML or
    the command line, and Python shows DeprecationWarnings only to code run as ``__main__``.
    """


def current_spelling(value: Any, old_spellings: Mapping[str, str], where: str) -> Any:
    """`value`, or its current spelling with a `DeprecatedSpellingWarning` naming `where`.

    >>> current_spelling("ucb", OLD_BANDIT_POLICIES, "bandit.policy")
    'ucb'
    """
    if not isinstance(value, str) or value not in old_spellings:
        return value
    current = old_spellings[value]
    warnings.warn(
        f"{where}: {value!r} is deprecated; write {current!r}",
        DeprecatedSpellingWarning,
        stacklevel=2,
    )
    return current


def _where(info: ValidationInfo, parent: str) -> str:
    """`file: parent.key` of the value being validated (the loader passes the file)."""
    key = f"{parent}.{info.field_name}"
    source = (info.context or {}).get("file")
    return f"{source}: {key}" if source else key


# --- features.yaml -------------------------------------------------------------------------


class FeatureSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    dtype: Literal["float", "int", "bool", "category"]
    range: tuple[float, float] | None = None
    categories: list[str] | None = None
    default: float | bool | str
    transform: Literal["none", "log1p"] = "none"
    #: Where serving takes the value: the online store (`stored`), or a decide request's
    #: `context` (`request`: only these keys may be sent, so a caller cannot forge others).
    source: Literal["stored", "request"] = "stored"
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if self.dtype == "category":
            if not self.categories:
                raise ValueError("a category feature needs a non-empty `categories` list")
            if self.default not in self.categories:
                raise ValueError(f"default {self.default!r} is not one of {self.categories}")
            if self.range is not None or self.transform != "none":
                raise ValueError("a category feature takes no `range` or `transform`")
        elif self.dtype == "bool":
            if not isinstance(self.default, bool):
                raise ValueError("a bool feature needs a true/false default")
        else:
            if self.categories is not None:
                raise ValueError("a numeric feature takes no `categories`")
            if isinstance(self.default, (bool, str)):
                raise ValueError("a numeric feature needs a numeric default")
            if self.range is not None:
                low, high = self.range
                if low > high:
                    raise ValueError(f"range [{low}, {high}] is empty")
                if not low <= self.default <= high:
                    raise ValueError(f"default {self.default} is outside range [{low}, {high}]")
            if self.transform == "log1p" and (self.range is None or self.range[0] < 0):
                raise ValueError("log1p needs a range that starts at 0 or above")
        return self


class FeaturesConfig(Strict):
    version: Annotated[int, Field(ge=1)]
    features: Annotated[list[FeatureSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> FeaturesConfig:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature names must be unique; repeated: {duplicated}")
        return self


# --- actions.yaml --------------------------------------------------------------------------


class EligibilityRule(Strict):
    """The customer's `feature` must be in `in_`, or within [min, max]."""

    feature: str
    in_: Annotated[list[str | bool] | None, Field(alias="in")] = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> EligibilityRule:
        if (self.in_ is None) == (self.min is None and self.max is None):
            raise ValueError("a rule takes either `in` or `min`/`max`")
        return self


class Action(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    channel: ChannelName
    cost: Annotated[float, Field(ge=0)]
    fallback_rank: Annotated[int, Field(ge=1)]
    eligibility: list[EligibilityRule] = []
    description: str = ""


#: A contact channel; ``none`` (the control) contacts no one.
ChannelName = Literal["none", "email", "push", "sms", "web"]
NO_CHANNEL: Final = "none"


class FrequencyCap(Strict):
    """At most `max` actions per customer on the channel within any `window_hours`."""

    max: Annotated[int, Field(ge=1)]
    window_hours: Annotated[float, Field(gt=0, le=24 * 366)]


class QuietHours(Strict):
    """No send between `start` and `end` (HH:MM, local time of `timezone`; may wrap midnight)."""

    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone such as Europe/Berlin; found {value!r}"
            ) from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: quiet hours would be empty")
        return self


class FileConnector(Strict):
    """Deliver by appending a JSON line (fsynced) to `path` (relative to LIFTGATE_HOME;
    default ``deliveries/<channel>.jsonl``)."""

    kind: Literal["file"] = "file"
    path: str | None = None


class WebhookConnector(Strict):
    """Deliver by an HTTP POST of the action as JSON to `url`, with an Idempotency-Key header."""

    kind: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0


class ChannelPolicy(Strict):
    """What a commit to the channel must pass, and how it is delivered.

    `consent: required` (the default): a customer is offered and sent the channel's actions
    only with a granted consent for it in the consent store."""

    consent: Literal["required", "not_required"] = "required"
    caps: list[FrequencyCap] = []
    quiet_hours: QuietHours | None = None
    connector: Annotated[FileConnector | WebhookConnector, Field(discriminator="kind")] = (
        FileConnector()
    )


class CreativeRules(Strict):
    """The default safety filter of `liftgate creative add` (liftgate/governance/creatives).

    `filter` is ``rules`` or ``module:callable`` of a filter of your own (it gets these rules)."""

    filter: Annotated[str, Field(pattern=r"^(rules|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")] = "rules"
    max_length: Annotated[int, Field(ge=1)] = 200
    blocklist: list[str] = []
    claims: list[str] = [
        "guaranteed",
        "risk-free",
        "risk free",
        "no risk",
        "100% free",
        "cure",
        "act now",
        "once in a lifetime",
    ]


class ActionsConfig(Strict):
    actions: Annotated[list[Action], Field(min_length=2)]
    #: Per channel; a channel not listed has the defaults (consent required, no caps).
    channels: dict[ChannelName, ChannelPolicy] = {}
    creatives: CreativeRules = CreativeRules()

    def channel_policy(self, channel: str) -> ChannelPolicy:
        return self.channels.get(channel, DEFAULT_CHANNEL_POLICY)  # type: ignore[call-overload]

    def needs_consent(self, channel: str) -> bool:
        return channel != NO_CHANNEL and self.channel_policy(channel).consent == "required"

    @model_validator(mode="after")
    def _unique(self) -> ActionsConfig:
        ids = [a.id for a in self.actions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"action ids must be unique; got {ids}")
        ranks = [a.fallback_rank for a in self.actions]
        if len(set(ranks)) != len(ranks):
            raise ValueError(f"fallback_rank values must be unique; got {ranks}")
        if NO_CHANNEL in self.channels:
            raise ValueError("channels: `none` contacts no one and takes no policy")
        return self


DEFAULT_CHANNEL_POLICY: Final = ChannelPolicy()


# --- models.yaml ---------------------------------------------------------------------------


class BoosterParams(Strict):
    num_leaves: Annotated[int, Field(ge=2)] = 31
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    num_boost_round: Annotated[int, Field(ge=1)] = 1000
    early_stopping_rounds: Annotated[int, Field(ge=1)] = 30
    min_data_in_leaf: Annotated[int, Field(ge=1)] = 200
    feature_fraction: Annotated[float, Field(gt=0, le=1)] = 0.9
    lambda_l2: Annotated[float, Field(ge=0)] = 10.0


class BaselineParams(Strict):
    C: Annotated[float, Field(gt=0)] = 1.0
    max_iter: Annotated[int, Field(ge=10)] = 500


class ScorerSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    conversion: BoosterParams = BoosterParams()
    order_value: BoosterParams = BoosterParams()
    baseline: BaselineParams = BaselineParams()


class GateThresholds(Strict):
    min_auc: Annotated[float, Field(ge=0, le=1)] = 0.6
    min_auc_lift_vs_baseline: float = 0.0
    max_calibration_error: Annotated[float, Field(gt=0, le=1)] = 0.02
    max_auc_drop_vs_champion: Annotated[float, Field(ge=0)] = 0.005


#: Schemes of an MLflow tracking URI: a tracking server, or a database MLflow opens itself.
TRACKING_URI_SCHEMES: Final = ("http", "https", "sqlite", "postgresql", "mysql", "mssql")


def check_tracking_uri(uri: str) -> str:
    """`uri` if it names an MLflow tracking store; a ValueError saying what was expected.

    >>> check_tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    >>> check_tracking_uri("127.0.0.1:5000")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: expected http(s)://HOST:PORT of an `mlflow server`, or a database URI (...)
    """
    scheme, separator, rest = uri.partition("://")
    if not separator or not rest or scheme.split("+")[0] not in TRACKING_URI_SCHEMES:
        raise ValueError(
            "expected http(s)://HOST:PORT of an `mlflow server`, or a database URI "
            "(sqlite:///PATH, postgresql+psycopg://USER@HOST:PORT/DB)"
        )
    return uri


class RegistryPolicy(Strict):
    require_approval_for_champion: bool = False
    #: Where the registry lives: an `mlflow server` (http://HOST:PORT, artifacts through it)
    #: or a database URI; None: the embedded SQLite store under LIFTGATE_HOME. The
    #: LIFTGATE_MLFLOW_URI environment variable overrides it (registry.store).
    tracking_uri: str | None = None

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_tracking_uri(value)


class ModelsConfig(Strict):
    scorer: ScorerSpec
    gate: GateThresholds = GateThresholds()
    registry: RegistryPolicy = RegistryPolicy()


# --- serving.yaml --------------------------------------------------------------------------


class RayServeMode(Strict):
    """Ray Serve's fast paths, measured in load_tests/bench_decide.py (README: Serving)."""

    throughput_optimized: bool = True  # RAY_SERVE_THROUGHPUT_OPTIMIZED
    haproxy: bool = True  # RAY_SERVE_ENABLE_HA_PROXY
    haproxy_threads: Annotated[int, Field(ge=1)] = 1


class DecisionLogSettings(Strict):
    """The decision and outcome logs of each replica (experiments/logs/writer.py).

    Records go to a write-ahead segment before they are acknowledged, and to Parquet in
    batches of `max_rows` or every `max_age_s`. `fsync` says when an answer may be sent:
    `always` (after an fsync that covers it, shared by the requests that arrive while one
    runs), `group` (the same, each fsync first waiting `group_commit_ms` for more requests)
    or `off` (written, not fsynced: survives a process crash, not a power cut). While
    `max_buffered_rows` rows are not yet in Parquet (a failing disk), new ones are refused:
    503.
    """

    max_rows: Annotated[int, Field(ge=1)] = 5_000
    max_age_s: Annotated[float, Field(gt=0)] = 2.0
    fsync: Literal["always", "group", "off"] = "always"
    group_commit_ms: Annotated[float, Field(ge=0, le=100)] = 1.0
    max_buffered_rows: Annotated[int, Field(ge=1)] = 100_000

    @model_validator(mode="after")
    def _buffer_holds_a_batch(self) -> DecisionLogSettings:
        if self.max_buffered_rows < self.max_rows:
            raise ValueError("max_buffered_rows must be at least max_rows")
        return self


class RateLimitSettings(Strict):
    """A token bucket per API key in each replica: `per_s` requests a second sustained, up to
    `burst` at once; a request over it gets 429 with Retry-After."""

    per_s: Annotated[float, Field(gt=0)] = 2_000.0
    burst: Annotated[int, Field(ge=1)] = 4_000


class AuthSettings(Strict):
    """API keys on every endpoint but /healthz and /readyz (README: Security).

    `enabled: false`, or the environment variable LIFTGATE_AUTH=off, is for development
    only: every endpoint is open, the service warns at start and /healthz says so."""

    enabled: bool = True
    key_cache_s: Annotated[float, Field(gt=0, le=60)] = 1.0  # how soon replicas see a change
    rate_limit: RateLimitSettings = RateLimitSettings()


class OutcomeBounds(Strict):
    """The values `POST /v1/outcomes` accepts for one event: ``min <= value <= max``."""

    min: Annotated[float, Field(allow_inf_nan=False)]
    max: Annotated[float, Field(allow_inf_nan=False)]

    @model_validator(mode="after")
    def _ordered(self) -> OutcomeBounds:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


#: An outcome event's name, in `serving.yaml` and in `POST /v1/outcomes`.
EVENT_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,39}$"


class OutcomeSettings(Strict):
    """What `POST /v1/outcomes` accepts (anything else is a 422 naming the field).

    `events` are the only event names taken, each with its value bounds. An outcome's `ts`
    must lie within `max_age_days` after its decision (the time in the signed decision id),
    at most `max_clock_skew_s` before it, at most `max_clock_skew_s` after now, and at
    most `max_age_days` before now.
    """

    events: dict[Annotated[str, Field(pattern=EVENT_NAME_PATTERN)], OutcomeBounds] = {
        "conversion": OutcomeBounds(min=0.0, max=1.0),
        "revenue": OutcomeBounds(min=0.0, max=100_000.0),
    }
    max_clock_skew_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    max_age_days: Annotated[float, Field(gt=0, le=3_650)] = 30.0


class DeliverySettings(Strict):
    """The outbox worker (liftgate/governance/outbox.py): retries with exponential backoff
    from `backoff_s` up to `max_backoff_s`, `max_attempts` in all; a claimed entry whose
    worker died is retried after `lease_s`."""

    poll_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    backoff_s: Annotated[float, Field(gt=0)] = 1.0
    max_backoff_s: Annotated[float, Field(gt=0)] = 300.0
    lease_s: Annotated[float, Field(gt=0)] = 30.0
    batch_size: Annotated[int, Field(ge=1)] = 100


class ActionSettings(Strict):
    """`POST /v1/actions`: the TTL a request may ask for (from its decision's time), and
    delivery. `worker: true` runs the outbox worker inside `liftgate serve`."""

    default_ttl_s: Annotated[float, Field(gt=0)] = 86_400.0
    max_ttl_s: Annotated[float, Field(gt=0)] = 7 * 86_400.0
    worker: bool = True
    delivery: DeliverySettings = DeliverySettings()

    @model_validator(mode="after")
    def _default_within_max(self) -> ActionSettings:
        if self.default_ttl_s > self.max_ttl_s:
            raise ValueError("default_ttl_s must be at most max_ttl_s")
        return self


class PrivacySettings(Strict):
    """`retention_days`: `liftgate privacy retention` (and `liftgate serve`, daily) deletes
    log partitions older than this; null keeps them."""

    retention_days: Annotated[int | None, Field(ge=1)] = None


class OnlineStoreSettings(Strict):
    """Where serving reads customer features (`liftgate features push` fills it).

    `embedded`: the Parquet file under LIFTGATE_HOME (or `serving.customers_path`), held in
    each replica's memory. `redis`: a Redis server at `url` (serving.redis_store), each
    replica keeping the customers it read in a cache of `cache_size` entries for
    `cache_ttl_s` seconds (0: no cache).
    """

    kind: Literal["embedded", "redis"] = "embedded"
    url: Annotated[str | None, Field(pattern=r"^rediss?://")] = None
    cache_ttl_s: Annotated[float, Field(ge=0)] = 30.0
    cache_size: Annotated[int, Field(ge=0)] = 100_000

    @model_validator(mode="after")
    def _redis_needs_url(self) -> OnlineStoreSettings:
        if self.kind == "redis" and self.url is None:
            raise ValueError("kind: redis needs `url` (like redis://127.0.0.1:6379/0)")
        return self


class AutoscalingSettings(Strict):
    """Ray Serve autoscaling of the decision deployment (its `autoscaling_config`): between
    `min_replicas` and `max_replicas`, aiming at `target_ongoing_requests` per replica. At
    least one replica: a cold start loads the model, too slow for a decision API."""

    min_replicas: Annotated[int, Field(ge=1)] = 1
    max_replicas: Annotated[int, Field(ge=1)] = 4
    target_ongoing_requests: Annotated[float, Field(gt=0)] = 2.0

    @model_validator(mode="after")
    def _min_within_max(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be at most max_replicas")
        return self


class ServingConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    topology: Literal["fused", "composed"] = "fused"
    replicas: Annotated[int, Field(ge=1)] = 2  # fixed count, unless `autoscaling` is set
    autoscaling: AutoscalingSettings | None = None
    replica_cpus: Annotated[float, Field(gt=0)] = 0.25
    mode: RayServeMode = RayServeMode()
    #: Where Serve runs its HTTP proxy (or HAProxy): `HeadOnly`, one on the head node (the
    #: only choice when nodes share a machine: each proxy binds `port`), or `EveryNode`.
    proxy_location: Literal["HeadOnly", "EveryNode"] = "HeadOnly"
    model_alias: ServedAlias = "champion"
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.05
    scoring_budget_ms: Annotated[float, Field(gt=0)] = 50.0
    max_body_bytes: Annotated[int, Field(ge=256)] = 16_384
    max_candidates: Annotated[int, Field(ge=1)] = 50
    scoring_batch_size: Annotated[int, Field(ge=1)] = 1  # composed topology; 1 = no batching
    scoring_batch_wait_ms: Annotated[float, Field(ge=0)] = 1.0
    customers_path: str | None = None  # default: LIFTGATE_HOME/online_store/customers.parquet
    online_store: OnlineStoreSettings = OnlineStoreSettings()
    decision_log: DecisionLogSettings = DecisionLogSettings()
    guard: bool = True  # the rollouts' supervisor (Ray actor) runs the guard loop over rollouts
    outcomes: OutcomeSettings = OutcomeSettings()
    auth: AuthSettings = AuthSettings()
    actions: ActionSettings = ActionSettings()
    privacy: PrivacySettings = PrivacySettings()


# --- experiments/*.yaml --------------------------------------------------------------------


class MetricConfig(Strict):
    """A metric over the experiment's units (one row per unit, from the joined logs).

    `column` is `converted` (any conversion in the attribution window), `revenue` (sum of
    revenue events), `decisions` (decisions served) or the sum of another outcome event;
    a ratio metric divides by `denominator` (delta method).
    """

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    kind: Literal["binomial", "mean", "ratio"]
    column: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    denominator: str | None = None

    @model_validator(mode="after")
    def _ratio_needs_denominator(self) -> MetricConfig:
        if (self.kind == "ratio") != (self.denominator is not None):
            raise ValueError("a ratio metric needs `denominator`; other kinds take none")
        return self


class UpliftArmConfig(Strict):
    """An `uplift_targeting` arm's model (a pickle of `liftgate uplift train`, relative to
    LIFTGATE_HOME or absolute, in LIFTGATE_HOME/uplift_models with its SHA-256; checked by
    `liftgate config check` and when served) and rule (experiments.uplift.targeting).
    `value` is the order value of a conversion; unset, the scorer predicts it per customer."""

    model_path: Annotated[str, Field(min_length=1)]
    value: Annotated[float | None, Field(gt=0)] = None
    epsilon: Annotated[float, Field(ge=0, le=1)] = 0.05


class BanditConfig(Strict):
    """A `kind: bandit` experiment's learner, shared by its arms with `policy: bandit`.

    `policy` names a class of `experiments.bandits.policies.POLICY_CLASSES`, built with
    `params` (n_actions and n_features are set from the catalogue and the contract). The
    reward of a decision is known when its attribution window closes: `converted` (0/1),
    `revenue`, or `profit` (revenue − the action's cost); no conversion in the window is 0.
    Every `update_every_s` a replica applies the closed decisions, `batch_size` rows per
    policy update (experiments.bandits.updater).
    """

    policy: BanditPolicyName
    params: dict[str, Any] = {}
    floor: Annotated[float, Field(ge=0, le=1)] = 0.01
    burn_in: Annotated[int, Field(ge=0)] = 0  # learned decisions before leaving uniform
    reward: RewardKind = "converted"
    attribution_window_hours: Annotated[float | None, Field(gt=0)] = None  # experiment's
    update_every_s: Annotated[float, Field(gt=0)] = 60.0
    batch_size: Annotated[int, Field(ge=1)] = 10_000

    @field_validator("policy", mode="before")
    @classmethod
    def _current_policy(cls, value: Any, info: ValidationInfo) -> Any:
        return current_spelling(value, OLD_BANDIT_POLICIES, _where(info, "bandit"))

    @field_validator("reward", mode="before")
    @classmethod
    def _current_reward(cls, value: Any, info: ValidationInfo) -> Any:
        return current_spelling(value, OLD_REWARD_KINDS, _where(info, "bandit"))

    @model_validator(mode="after")
    def _bernoulli_needs_conversions(self) -> BanditConfig:
        if self.policy == "thompson" and self.reward != "converted":
            raise ValueError(
                f"policy thompson (Beta–Bernoulli) needs reward converted; got {self.reward} "
                "(use gaussian_ts for revenue or profit)"
            )
        return self


class ArmConfig(Strict):
    """What a unit in this arm gets: a policy, a model (alias or version), an action set."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    weight: Annotated[float, Field(ge=0, le=1)]
    model: str | None = None  # champion | challenger | a version number; default: serving's
    policy: ArmPolicyName = "epsilon_greedy"
    epsilon: Annotated[float | None, Field(ge=0, le=1)] = None
    actions: list[str] | None = None
    uplift: UpliftArmConfig | None = None

    @field_validator("policy", mode="before")
    @classmethod
    def _current_policy(cls, value: Any, info: ValidationInfo) -> Any:
        return current_spelling(value, OLD_ARM_POLICIES, _where(info, "arms.*"))

    @model_validator(mode="after")
    def _uplift_iff_uplift_targeting(self) -> ArmConfig:
        if (self.policy == "uplift_targeting") != (self.uplift is not None):
            raise ValueError(
                "policy uplift_targeting needs `uplift` (model_path, value, epsilon); "
                "other policies take none"
            )
        return self


class ExperimentConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    description: str = ""
    unit: Literal["customer_id"] = "customer_id"
    salt: str | None = None  # default: the name; a new salt reshuffles every unit
    layer: str | None = None  # default: the name (a layer of its own)
    layer_range: tuple[float, float] = (0.0, 1.0)  # share of the layer, exclusive in it
    holdout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    arms: Annotated[list[ArmConfig], Field(min_length=2)]
    control: str | None = None  # default: the first arm
    primary_metric: MetricConfig
    guardrail_metrics: list[MetricConfig] = []
    minimum_detectable_effect: Annotated[float, Field(gt=0)] = 0.05  # relative
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    power: Annotated[float, Field(gt=0, lt=1)] = 0.8
    method: Literal["frequentist", "sequential", "bayesian"] = "sequential"
    correction: Literal["holm", "bh", "none"] = "holm"
    cuped_covariate: str | None = None  # a contract feature, from the first decision's snapshot
    segment_by: list[str] = []  # contract features; the report gives the effect per segment
    attribution_window_hours: Annotated[float, Field(gt=0)] = 72.0
    start: datetime | None = None
    stop: datetime | None = None
    kind: Literal["ab", "bandit"] = "ab"
    bandit: BanditConfig | None = None  # kind bandit: the learner of its `policy: bandit` arms

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        bandit_arms = [a.name for a in self.arms if a.policy == "bandit"]
        if self.kind == "bandit" and (self.bandit is None or not bandit_arms):
            raise ValueError("kind bandit needs `bandit:` and at least one arm with policy bandit")
        if self.kind != "bandit" and (self.bandit is not None or bandit_arms):
            raise ValueError(
                f"`bandit:` and arms with policy bandit ({bandit_arms}) need kind: bandit"
            )
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique; got {names}")
        if HOLDOUT in names:
            raise ValueError(f"`{HOLDOUT}` is reserved for the holdout share")
        total = sum(a.weight for a in self.arms)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"arm weights must sum to 1; they sum to {total}")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not an arm; arms are {names}")
        low, high = self.layer_range
        if not 0 <= low < high <= 1:
            raise ValueError(f"layer_range must satisfy 0 <= start < end <= 1; got {low}, {high}")
        for moment in (self.start, self.stop):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(
                    f"start/stop need a time zone (e.g. 2026-01-01T00:00:00Z); got {moment}"
                )
        if self.start and self.stop and self.stop <= self.start:
            raise ValueError("stop must come after start")
        return self

    @property
    def salt_value(self) -> str:
        return self.salt or self.name

    @property
    def layer_name(self) -> str:
        return self.layer or self.name

    @property
    def control_arm(self) -> str:
        return self.control or self.arms[0].name

    @property
    def metrics(self) -> list[MetricConfig]:
        return [self.primary_metric, *self.guardrail_metrics]


# --- rollouts/*.yaml -----------------------------------------------------------------------


class RolloutStep(Strict):
    """One canary step: the challenger's share of traffic and how long it must hold there.

    A step passes once both minimums are met and no rule fails; after `max_duration_s`
    without passing, the analysis is INCONCLUSIVE (see `RolloutConfig.on_inconclusive`).
    """

    weight: Annotated[float, Field(gt=0, le=1)]
    min_units: Annotated[int, Field(ge=0)] = 1_000  # per variant, canary and its comparison
    min_duration_s: Annotated[float, Field(ge=0)] = 60.0
    max_duration_s: Annotated[float | None, Field(gt=0)] = None


class KpiRule(MetricConfig):
    """A business metric of the canary relative to its comparison group, judged with the
    anytime-valid confidence sequence (experiments.stats.sequential) at every interval.

    It fails when the challenger is worse than `max_relative_drop` with confidence
    1 − alpha (the sequence's upper bound of the relative lift is below −max_relative_drop).
    With `require_non_inferiority` a step passes only when the lower bound is above it.
    """

    max_relative_drop: Annotated[float, Field(ge=0, lt=1)] = 0.02
    require_non_inferiority: bool = False


class OperationsRules(Strict):
    """Health of the canary's own decisions, checked every interval. A check that fails in
    `RolloutConfig.failure_limit` consecutive intervals fails the rollout."""

    max_p95_latency_ms: Annotated[float | None, Field(gt=0)] = None
    max_p95_latency_ratio: Annotated[float | None, Field(gt=0)] = 2.0  # vs comparison group
    max_error_rate: Annotated[float | None, Field(ge=0, le=1)] = 0.01
    max_fallback_rate_increase: Annotated[float | None, Field(ge=0, le=1)] = 0.02
    min_decisions: Annotated[int, Field(ge=1)] = 50  # per interval, for a check to count


class DriftRules(Strict):
    """Drift of recent serving features against the champion's training profile (Evidently).
    A drifting dataset holds the rollout: a comparison on shifted data is not the one the
    challenger was validated for."""

    enabled: bool = True
    every_s: Annotated[float, Field(gt=0)] = 300.0
    window_rows: Annotated[int, Field(ge=100)] = 5_000
    max_drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    on_drift: Literal["hold", "rollback", "ignore"] = "hold"


class OpeRequirement(Strict):
    """Off-policy evaluation of the challenger on the champion's logs before any traffic
    (experiments/ope/challenger.py): the lower bound of the paired bootstrap interval of
    (challenger estimate − champion's logged value), added to that value, must reach
    `min_relative_value` × the champion's logged value."""

    estimator: Literal["dr", "ipw", "snipw", "sndr"] = "dr"
    min_relative_value: Annotated[float, Field(gt=0)] = 0.98
    max_rows: Annotated[int, Field(ge=100)] = 50_000


class AnalysisSettings(Strict):
    interval_s: Annotated[float, Field(gt=0)] = 30.0
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    attribution_window_hours: Annotated[float, Field(gt=0)] = 1.0


class RolloutConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    description: str = ""
    model: str | None = None  # default: models.yaml scorer name
    challenger: str = "challenger"  # an alias or a version number
    salt: str | None = None  # default: the name; the canary's customers are a sticky hash
    baseline: bool = True  # a champion copy at the canary's weight (Kayenta's practice)
    steps: Annotated[list[RolloutStep], Field(min_length=1)]
    analysis: AnalysisSettings = AnalysisSettings()
    metrics: list[KpiRule] = [
        KpiRule(name="conversion", kind="binomial", column="converted"),
        KpiRule(name="revenue", kind="mean", column="revenue"),
    ]
    operations: OperationsRules = OperationsRules()
    drift: DriftRules = DriftRules()
    failure_limit: Annotated[int, Field(ge=1)] = 2
    on_inconclusive: Literal["hold", "rollback", "promote"] = "hold"
    require_ope: OpeRequirement | None = None
    dry_run: bool = False
    webhook_url: str | None = None  # alerts; LIFTGATE_ALERT_WEBHOOK overrides

    @model_validator(mode="after")
    def _consistent(self) -> RolloutConfig:
        weights = [step.weight for step in self.steps]
        if weights != sorted(weights) or len(set(weights)) != len(weights):
            raise ValueError(f"step weights must increase; got {weights}")
        if self.baseline:
            compared = [w for w in weights if w < 1.0]
            if any(w > 0.5 for w in compared):
                raise ValueError(
                    "with `baseline: true` the canary and its champion copy share traffic, so "
                    f"analysed steps must weigh at most 0.5 (a last step of 1.0 is promotion); "
                    f"got {weights}"
                )
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique; got {names}")
        return self

    @property
    def salt_value(self) -> str:
        return self.salt or self.name
