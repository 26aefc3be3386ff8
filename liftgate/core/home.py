"""Where liftgate keeps its state: everything lives under LIFTGATE_HOME (default ./.liftgate).

`Home` names every location in it; other modules ask it for a path instead of joining
names onto ``home.root``. The layout, with the member that names each entry::

    LIFTGATE_HOME/                          root
    ├── mlflow.db                           mlflow_uri        the embedded registry (SQLite)
    ├── artifacts/                          artifacts         its MLflow run artifacts
    ├── audit/audit.jsonl                   audit_log         who changed what, and why
    ├── alerts.jsonl                        alerts_log        every alert the guard raised
    ├── logs/                               logs
    │   ├── decisions/date=YYYY-MM-DD/      decision_log      the decision log (Parquet)
    │   ├── outcomes/date=YYYY-MM-DD/       outcome_log       the outcome log (Parquet)
    │   ├── actions/date=YYYY-MM-DD/        action_log        the action log (Parquet)
    │   └── events/date=YYYY-MM-DD/         event_log         the customer event log (Parquet)
    ├── experiments/state.json              experiment_state  running experiments
    ├── bandits/<experiment>.json           bandit_state(e)   a served bandit's learned state
    ├── rollouts/                           rollouts
    │   ├── <rollout>.json                  rollout_record(r) a rollout's status and history
    │   └── serving.json                    serving_weights   the canary split replicas serve
    ├── online_store/customers.parquet      customers         the features served by default
    ├── ledger/outcomes.db                  outcome_ledger    the first answer per (decision, event)
    ├── consent/consent.db                  consent           consent per customer and channel
    ├── actions/actions.db                  actions           committed actions, history, outbox
    ├── actions/offers/<writer>.db          offers            what decisions offered (+ journals)
    ├── actions/creatives.db                creatives         creatives and their review
    ├── deliveries/<channel>.jsonl          deliveries        the file connector's default
    ├── journeys/events.db                  event_inbox       each customer event once, in order
    ├── journeys/engine.db                  journey_engine    the workflow engine's runs (SQLite)
    ├── journeys/journeys.db                journey_state     journeys' status, runs, history
    ├── journeys/clock.json                 journey_clock     the journeys' (compressed) clock
    ├── campaigns/<campaign>/               campaigns         a bulk campaign's progress
    ├── uplift_models/<name>.pkl            uplift_models     uplift models (and .sha256 files)
    ├── secrets/decision_ids.key            decision_ids_key  the HMAC key of decision ids
    ├── secrets/api_keys.db                 api_keys          API keys: role, name, salted hash
    ├── secrets/pseudonyms.key              pseudonyms_key    keys customer ids in the audit log
    ├── drift/<UTC time>/                   drift_reports     the drift job's reports
    ├── run/serve.json                      service_state     the detached service (pid, url)
    ├── run/serve.log                       service_log       its output
    ├── worlds/<name>/                      worlds            simulated worlds (demo, scenarios)
    ├── configs/                            configs           a scenario's copy of the configs
    └── scenarios/<scenario>/               scenario(s)       a scenario's own home, this layout

An uplift arm's ``model_path`` is relative to the root, or absolute, and must lie in
``uplift_models`` (`uplift_model` checks it). The JSON documents are shared by processes
through `liftgate.core.jsonstate`, which keeps ``.<name>.lock`` lock files (and, while
writing, ``.<name>.<random>.tmp`` files) beside them. Each log directory also holds
``_wal/``, its writers' write-ahead segments (`experiments.logs.wal`), which readers skip;
erasure and retention (`liftgate.governance`) take turns on a log under ``logs/.<log>.lock``.

>>> home = Home(Path("/srv/liftgate"))
>>> str(home.rollout_record("canary")), str(home.serving_weights)
('/srv/liftgate/rollouts/canary.json', '/srv/liftgate/rollouts/serving.json')
>>> str(home.scenario("drift").decision_log)
'/srv/liftgate/scenarios/drift/logs/decisions'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "LIFTGATE_HOME"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        return cls(Path(os.environ.get(HOME_ENV, ".liftgate")).resolve())

    # --- the registry and the audit trail ------------------------------------------------

    @property
    def mlflow_uri(self) -> str:
        """The embedded registry's URI: the default when models.yaml names no tracking
        server (`registry.store.tracking_store` says which registry is used)."""
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit" / "audit.jsonl"

    @property
    def alerts_log(self) -> Path:
        return self.root / "alerts.jsonl"

    # --- the logs ----------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def decision_log(self) -> Path:
        """The decision log's dataset directory (Hive-partitioned by date)."""
        return self.logs / "decisions"

    @property
    def outcome_log(self) -> Path:
        """The outcome log's dataset directory (Hive-partitioned by date)."""
        return self.logs / "outcomes"

    @property
    def action_log(self) -> Path:
        """The action log's dataset directory (Hive-partitioned by date): every commit,
        refusal, dry run and delivery attempt of `POST /v1/actions`."""
        return self.logs / "actions"

    @property
    def event_log(self) -> Path:
        """The customer event log's dataset directory (Hive-partitioned by date): every event
        accepted by `POST /v1/events`."""
        return self.logs / "events"

    # --- shared state: experiments, bandits, rollouts ----------------------------------

    @property
    def experiment_state(self) -> Path:
        return self.root / "experiments" / "state.json"

    def bandit_state(self, experiment: str) -> Path:
        return self.root / "bandits" / f"{experiment}.json"

    @property
    def rollouts(self) -> Path:
        """The rollout records, and the serving weights."""
        return self.root / "rollouts"

    def rollout_record(self, rollout: str) -> Path:
        return self.rollouts / f"{rollout}.json"

    @property
    def serving_weights(self) -> Path:
        return self.rollouts / "serving.json"

    # --- serving -------------------------------------------------------------------------

    @property
    def customers(self) -> Path:
        """The online store's customer features (unless `serving.customers_path` says)."""
        return self.root / "online_store" / "customers.parquet"

    @property
    def outcome_ledger(self) -> Path:
        """The outcome ledger (SQLite) that every replica checks: one outcome per decision
        and event (serving/outcome_ledger.py)."""
        return self.root / "ledger" / "outcomes.db"

    # --- governed actions ----------------------------------------------------------------

    @property
    def consent(self) -> Path:
        """The consent store (SQLite): one writer at a time, replicas read."""
        return self.root / "consent" / "consent.db"

    @property
    def actions(self) -> Path:
        """The action store (SQLite): actions, their history and the delivery outbox."""
        return self.root / "actions" / "actions.db"

    @property
    def offers(self) -> Path:
        """What each decision offered, one SQLite file per writing process."""
        return self.root / "actions" / "offers"

    @property
    def creatives(self) -> Path:
        """Creatives, their safety findings and their review (SQLite)."""
        return self.root / "actions" / "creatives.db"

    @property
    def deliveries(self) -> Path:
        """The file connector's default directory: ``<channel>.jsonl``."""
        return self.root / "deliveries"

    @property
    def pseudonyms_key(self) -> Path:
        """The HMAC key that turns customer ids into the audit log's pseudonyms."""
        return self.root / "secrets" / "pseudonyms.key"

    @property
    def uplift_models(self) -> Path:
        """Uplift models of `liftgate uplift train`, each with its SHA-256 in a ``.sha256``
        file beside it: the only files an uplift arm may serve."""
        return self.root / "uplift_models"

    @property
    def decision_ids_key(self) -> Path:
        return self.root / "secrets" / "decision_ids.key"

    @property
    def api_keys(self) -> Path:
        """The API key store (SQLite): `liftgate keys` writes it, replicas read it."""
        return self.root / "secrets" / "api_keys.db"

    @property
    def service_state(self) -> Path:
        """The detached service's pid, url and topology, while it runs."""
        return self.root / "run" / "serve.json"

    @property
    def service_log(self) -> Path:
        return self.root / "run" / "serve.log"

    # --- journeys and campaigns -----------------------------------------------------------

    @property
    def event_inbox(self) -> Path:
        """SQLite: each customer event once (by its id), in arrival order, for the journeys."""
        return self.root / "journeys" / "events.db"

    @property
    def journey_engine(self) -> Path:
        """SQLite: the durable workflow engine's system database (the embedded default)."""
        return self.root / "journeys" / "engine.db"

    @property
    def journey_state(self) -> Path:
        """SQLite: the journeys' own state (status, runs, history, slot bandits, agent queue)."""
        return self.root / "journeys" / "journeys.db"

    @property
    def journey_clock(self) -> Path:
        """The journeys' clock (a CompressedClock as JSON; absent: the wall clock)."""
        return self.root / "journeys" / "clock.json"

    @property
    def campaigns(self) -> Path:
        """One directory per bulk campaign: its progress, for a resumed run."""
        return self.root / "campaigns"

    # --- reports, simulations, scenarios -----------------------------------------------

    @property
    def drift_reports(self) -> Path:
        """One directory per drift job run, named by its UTC time."""
        return self.root / "drift"

    @property
    def worlds(self) -> Path:
        return self.root / "worlds"

    @property
    def configs(self) -> Path:
        """A configuration directory kept with the home (a scenario's copy)."""
        return self.root / "configs"

    def scenario(self, name: str) -> Home:
        """The home of one scenario run, inside this one."""
        return Home(self.root / "scenarios" / name)

    def uplift_model(self, configured: str | Path) -> Path:
        """The file an uplift arm's ``model_path`` names (relative to the root, or absolute),
        links resolved; a ValueError unless it lies in `uplift_models`, since replicas
        unpickle it."""
        path = (self.root / configured).resolve()
        if not path.is_relative_to(self.uplift_models.resolve()):
            raise ValueError(
                f"expected a file in {self.uplift_models} (where `liftgate uplift train` "
                f"saves models); found {str(configured)!r}"
            )
        return path

    def ensure(self) -> Home:
        for path in (self.root, self.artifacts, self.logs, self.audit_log.parent):
            path.mkdir(parents=True, exist_ok=True)
        return self
