"""The model registry as the platform uses it: versions, aliases, approval, rollback, loading.

Aliases: `champion` serves, `challenger` is under test, `previous` is the champion that the
current one replaced (the target of a one-command rollback). Every alias change and
approval appends a record to the audit log. Where models.yaml requires approval for a
champion, four eyes (`registry.four_eyes`): the approver is neither who trained the version
nor who started the rollout that promotes it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from configs.schema import RegistryPolicy
from liftgate.core import audit
from liftgate.core.errors import BAD_INPUT
from liftgate.core.home import Home
from liftgate.core.model import ScoringModel
from liftgate.core.vocabulary import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    SERVED_ALIASES,
    TAG_APPROVED_AT,
    TAG_APPROVED_BY,
    TAG_GATE_PASSED,
    TAG_GATE_REASONS,
    TAG_REPLACED_VERSION,
    TAG_ROLLED_BACK_AT,
    TAG_RUN_ID,
    TAG_TRAINED_BY,
)
from registry.errors import RegistryError
from registry.four_eyes import Custody
from registry.store import (
    REFERENCE_ARTIFACT,
    SCORING_ARTIFACTS,
    TrackingStore,
    connect,
    tracking_store,
)

LIGHTGBM_FLAVOUR = "lightgbm"
BOOSTER_CLASS = "lightgbm.basic.Booster"

#: Training profiles already read, by (tracking store, model, version).
_PROFILES: dict[tuple[str, str, str], tuple[pd.DataFrame, dict[str, str]]] = {}


@dataclass(frozen=True)
class LoadedScorer:
    name: str
    version: str
    alias: str | None
    model: ScoringModel


class ModelRegistry:
    def __init__(self, home: Home, policy: RegistryPolicy | None = None):
        self.home = home
        self.policy = policy or RegistryPolicy()
        self.store: TrackingStore = tracking_store(home, self.policy)
        self.client = connect(self.store)
        self._cache: dict[tuple[str, str], ScoringModel] = {}

    # --- reading ---------------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, str]:
        """alias → version of a registered model ({} if the model does not exist); a
        `RegistryError` if the registry cannot say (an outage is not "no aliases")."""
        try:
            aliases = self.client.get_registered_model(name).aliases
        except MlflowException as exc:
            if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                return {}
            raise RegistryError(f"the registry could not be read: {exc.message}") from exc
        return {alias: str(version) for alias, version in aliases.items()}

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.aliases(name).get(alias)

    def resolve(self, name: str, model_ref: str) -> tuple[str, str | None]:
        """(version, alias) of ``model_ref``: an alias (``champion``) or a version number."""
        if model_ref.isdigit():
            return model_ref, None
        version = self.alias_version(name, model_ref)
        if version is None:
            raise RegistryError(f"model {name!r} has no {model_ref!r} alias", exit_code=BAD_INPUT)
        return version, model_ref

    def training_profile(self, name: str, version: str) -> tuple[pd.DataFrame, dict[str, str]]:
        """The training profile (features, action, prediction) of a version, and its tags.

        Cached per process: a registered version's artifacts never change, and the guard
        checks drift every few minutes.
        """
        key = (self.store.uri, name, str(version))
        if key not in _PROFILES:
            _PROFILES[key] = self._download_profile(name, str(version))
        return _PROFILES[key]

    def _download_profile(self, name: str, version: str) -> tuple[pd.DataFrame, dict[str, str]]:
        tags = dict(self._version(name, version).tags)
        run_id = tags.get(TAG_RUN_ID) or self._version(name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=REFERENCE_ARTIFACT,
                    dst_path=tmp,
                    tracking_uri=self.store.uri,
                )
                return pd.read_parquet(local), tags
            except (MlflowException, OSError):
                raise FileNotFoundError(
                    f"{name} v{version}: run {run_id} has no {REFERENCE_ARTIFACT} (trained "
                    "before training profiles were logged?); retrain to get one"
                ) from None

    def _version(self, name: str, version: str):
        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException:
            raise RegistryError(
                f"model {name!r} has no version {version!r}", exit_code=BAD_INPUT
            ) from None

    def list(self) -> list[dict]:
        models = []
        for registered in self.client.search_registered_models():
            by_version: dict[str, list[str]] = {}
            for alias, version in registered.aliases.items():
                by_version.setdefault(str(version), []).append(alias)
            versions = sorted(
                self.client.search_model_versions(f"name = '{registered.name}'"),
                key=lambda v: int(v.version),
            )
            models.append(
                {
                    "name": registered.name,
                    "versions": [
                        {
                            "version": str(v.version),
                            "aliases": sorted(by_version.get(str(v.version), [])),
                            "created": datetime.fromtimestamp(
                                v.creation_timestamp / 1000, UTC
                            ).isoformat(timespec="seconds"),
                            "run_id": v.run_id,
                            "tags": dict(v.tags),
                        }
                        for v in versions
                    ],
                }
            )
        return models

    # --- alias changes ---------------------------------------------------------------------

    def _set_alias(self, name: str, alias: str, version: str, who: str | None, why: str) -> dict:
        before = self.alias_version(name, alias)
        self.client.set_registered_model_alias(name, alias, str(version))
        return audit.append(
            self.home.audit_log,
            "alias_set",
            who=who,
            model=name,
            alias=alias,
            from_version=before,
            to_version=str(version),
            why=why,
        )

    def _delete_alias(self, name: str, alias: str, who: str | None, why: str) -> dict | None:
        before = self.alias_version(name, alias)
        if before is None:
            return None
        self.client.delete_registered_model_alias(name, alias)
        return audit.append(
            self.home.audit_log,
            "alias_removed",
            who=who,
            model=name,
            alias=alias,
            from_version=before,
            to_version=None,
            why=why,
        )

    def promote(
        self, name: str, version: str, alias: str, who: str | None = None, why: str = "manual"
    ) -> list[dict]:
        """Give `version` the alias; a new champion keeps the old one as `previous`."""
        if alias not in SERVED_ALIASES:
            raise RegistryError(
                f"alias must be one of {SERVED_ALIASES}; got {alias!r}", exit_code=BAD_INPUT
            )
        model_version = self._version(name, version)
        version = str(model_version.version)
        if model_version.tags.get(TAG_GATE_PASSED) == "false":
            raise RegistryError(
                f"{name} v{version} failed the validation gate "
                f"({model_version.tags.get(TAG_GATE_REASONS, '')}); it cannot take an alias"
            )
        records = []
        if alias == CHAMPION:
            if self.policy.require_approval_for_champion:
                self.check_champion_approval(name, version, who=who)
            current = self.alias_version(name, CHAMPION)
            if current == version:
                return []
            if current is not None:
                self.client.set_model_version_tag(name, version, TAG_REPLACED_VERSION, current)
                records.append(self._set_alias(name, PREVIOUS, current, who, f"replaced: {why}"))
            if self.alias_version(name, CHALLENGER) == version:
                records.append(self._delete_alias(name, CHALLENGER, who, f"became champion: {why}"))
        records.append(self._set_alias(name, alias, version, who, why))
        return records

    def approve(
        self, name: str, version: str, who: str | None = None, started_by: str | None = None
    ) -> dict:
        """Record `who`'s approval (default: the OS user). Where models.yaml requires
        approval for a champion, neither `who` nor the OS user running this may be who
        trained the version or `started_by` (who started the rollout that would promote
        it): refused (exit 1). The audit record names all three, and the OS user."""
        model_version = self._version(name, version)
        version = str(model_version.version)
        os_user = audit.current_user()
        who = who or os_user
        custody = Custody(name, version, model_version.tags.get(TAG_TRAINED_BY), started_by, who)
        refused = custody.refusal([who, os_user])
        if self.policy.require_approval_for_champion and refused:
            raise RegistryError(refused)
        self.client.set_model_version_tag(name, version, TAG_APPROVED_BY, who)
        self.client.set_model_version_tag(
            name, version, TAG_APPROVED_AT, datetime.now(UTC).isoformat()
        )
        return audit.append(
            self.home.audit_log,
            "approved",
            who=who,
            model=name,
            version=version,
            os_user=os_user,
            **custody.names(),
        )

    def check_champion_approval(
        self, name: str, version: str, started_by: str | None = None, who: str | None = None
    ) -> dict:
        """Refuse (exit 1) to let `version` become champion unless someone approved it who
        neither trained it nor started the rollout that promotes it (`started_by`). The
        check that passed is audit-logged, by `who`, with the three names."""
        tags = self._version(name, version).tags
        custody = Custody(
            name,
            str(version),
            tags.get(TAG_TRAINED_BY),
            started_by,
            tags.get(TAG_APPROVED_BY),
        )
        refused = custody.refusal_to_promote()
        if refused:
            raise RegistryError(refused)
        return audit.append(
            self.home.audit_log,
            "champion_approval_checked",
            who=who,
            model=name,
            version=str(version),
            **custody.names(),
        )

    def rollback(
        self, name: str, who: str | None = None, why: str = "manual rollback"
    ) -> list[dict]:
        """Champion back to `previous`; the rolled-back version is tagged and loses its alias."""
        current = self.alias_version(name, CHAMPION)
        previous = self.alias_version(name, PREVIOUS)
        if previous is None:
            raise RegistryError(f"model {name!r} has no previous champion to roll back to")
        records = [self._set_alias(name, CHAMPION, previous, who, why)]
        if current is not None:
            self.client.set_model_version_tag(
                name, current, TAG_ROLLED_BACK_AT, datetime.now(UTC).isoformat()
            )
        before_previous = self._version(name, previous).tags.get(TAG_REPLACED_VERSION)
        if before_previous is not None:
            records.append(self._set_alias(name, PREVIOUS, before_previous, who, why))
        else:
            records.append(self._delete_alias(name, PREVIOUS, who, why))
        return records

    def set_aliases(
        self, name: str, target: dict[str, str | None], who: str | None = None, why: str = ""
    ) -> list[dict]:
        """Make the named aliases point where `target` says (None: remove), as given; other
        aliases are left alone. Idempotent, so a failed change can simply be retried."""
        current = self.aliases(name)
        records = []
        for alias, version in target.items():
            if version is None:
                record = self._delete_alias(name, alias, who, why)
                if record:
                    records.append(record)
            elif current.get(alias) != str(version):
                records.append(self._set_alias(name, alias, str(version), who, why))
        return records

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, value)

    # --- loading ---------------------------------------------------------------------------

    def load(self, name: str, alias: str | None = None, version: str | None = None) -> LoadedScorer:
        """The scoring model of an alias or a version, cached by version."""
        if version is None:
            version = self.alias_version(name, alias or CHAMPION)
            if version is None:
                raise RegistryError(f"model {name!r} has no {alias or CHAMPION!r} alias")
        model_version = self._version(name, version)
        key = (name, str(model_version.version))
        if key not in self._cache:
            conversion = _booster(self.store, name, str(model_version.version))
            run_id = model_version.tags.get(TAG_RUN_ID, model_version.run_id)
            with tempfile.TemporaryDirectory() as tmp:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=SCORING_ARTIFACTS,
                    dst_path=tmp,
                    tracking_uri=self.store.uri,
                )
                self._cache[key] = ScoringModel.from_companions(conversion, Path(local))
        return LoadedScorer(name, str(model_version.version), alias, self._cache[key])


def _booster(store: TrackingStore, name: str, version: str) -> lgb.Booster:
    """The registered model, read as a LightGBM Booster from LightGBM's text format.

    `mlflow.lightgbm.load_model` unpickles (cloudpickle) every other flavour and adds the
    model's code paths to `sys.path`: both run code a registered artifact brings. The
    scorer is always a Booster, so anything else is refused, never loaded.
    """
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                dst_path=tmp,
                tracking_uri=store.uri,
                registry_uri=store.uri,
            )
        )
        flavour = Model.load(local).flavors.get(LIGHTGBM_FLAVOUR) or {}
        # MLflow writes `model_class` since 1.23; a lightgbm flavour without it is a Booster.
        found = flavour.get("model_class", BOOSTER_CLASS) if flavour else "no lightgbm flavour"
        if found != BOOSTER_CLASS or flavour.get("code"):
            raise RegistryError(
                f"model {name!r} v{version}: expected a LightGBM Booster without code paths; "
                f"found {found}{' with code paths' if flavour.get('code') else ''}; not loaded"
            )
        return lgb.Booster(model_file=str(local / flavour["data"]))


def gate_tags(gate: dict) -> dict[str, str]:
    return {
        TAG_GATE_PASSED: str(gate["passed"]).lower(),
        TAG_GATE_REASONS: json.dumps(gate["reasons"]),
    }
