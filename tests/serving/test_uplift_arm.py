"""An `uplift_targeting` experiment arm served by the in-process DecisionService
(serving/uplift_arm.py): the rule, exact propensities in the log, fallbacks, loading."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, ConfigError, load_config, load_file
from configs.schema import ExperimentConfig
from experiments.assignment import initial_ranges
from experiments.base_models import default_lightgbm
from experiments.logs.reader import read_decisions
from experiments.router import Assignment, ExperimentRouter, RunningExperiment
from experiments.uplift.data import two_arm_data
from experiments.uplift.t_learner import TLearner
from liftgate.app.cli.main import app
from liftgate.core.contract import FeatureContract
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.scoring import score_actions
from liftgate.core.vocabulary import RULES_FALLBACK
from serving.api_models import DecideRequest
from serving.arm_policies import ArmPolicies, default_providers
from serving.uplift_arm import (
    UpliftModel,
    UpliftTargetingPolicy,
    UpliftTargetingProvider,
    digest_path,
    save_uplift_model,
)

CONFIG = load_config()
CONTRACT = FeatureContract(CONFIG.features)
TREATMENT, CONTROL = "email_20", "no_action"
COST = 0.05  # email_20's contact cost over no_action's (actions.yaml)


@pytest.fixture(scope="module")
def uplift_model(world):
    data = two_arm_data(world.logged(rows=30_000), TREATMENT, CONTROL, CONTRACT)
    fast = default_lightgbm(classifier=True).set_params(n_estimators=40)
    model = TLearner(fast, categorical_features=data.categorical)
    return model.fit(data.X, data.treatment, data.y)


def save(path, learner, **changes):
    saved = {
        "model": learner,
        "treatment": TREATMENT,
        "control": CONTROL,
        "features": list(CONTRACT.names),
        "contract_version": CONTRACT.version,
        **changes,
    }
    save_uplift_model(path, saved)
    return path


def models(tmp_path):
    """The uplift models directory of the test's home (the only one arms serve from)."""
    return Home(tmp_path).uplift_models


def experiment(uplift: dict, actions: list[str] | None = None) -> ExperimentRouter:
    config = ExperimentConfig.model_validate(
        {
            "name": "uplift",
            "arms": [
                {"name": "rules", "weight": 0.5, "policy": "rules"},
                {
                    "name": "targeted",
                    "weight": 0.5,
                    "policy": "uplift_targeting",
                    "actions": actions,
                    "uplift": uplift,
                },
            ],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        }
    )
    ranges = initial_ranges({"rules": 0.5, "targeted": 0.5})
    return ExperimentRouter([RunningExperiment(config, ranges)])


def serve(make_service, tmp_path, router: ExperimentRouter):
    provider = UpliftTargetingProvider(CONFIG, Home(tmp_path))
    provider.refresh(router)
    policies = ArmPolicies([provider])
    return make_service(experiments=lambda: router, arm_policies=policies.get)


def decide(service, customer_id: str, **body):
    request = DecideRequest(customer_id=customer_id, **body)
    return asyncio.run(service.decide(request, trace_id="t" * 32))


def test_choices_follow_the_rule_and_the_log_has_exact_propensities(
    make_service, tmp_path, uplift_model, store, scoring_model
) -> None:
    save(models(tmp_path) / "uplift.pkl", uplift_model)
    epsilon = 0.2
    router = experiment({"model_path": "uplift_models/uplift.pkl", "epsilon": epsilon})
    service = serve(make_service, tmp_path, router)
    answers = [decide(service, f"c{i:07d}") for i in range(400)]
    service.close()
    targeted = [a for a in answers if a["arm"] == "targeted"]
    assert len(targeted) > 150
    code = store.catalogue.index[TREATMENT]
    expected, greedy_choices = {}, []
    for answer in targeted:
        assert answer["policy"] == "uplift_targeting" and not answer["fallback"]
        assert answer["chosen"] in (TREATMENT, CONTROL)
        assert answer["ranked"][0]["expected_value"] is not None  # it was scored
        features = store.lookup(answer["customer_id"]).features
        uplift = uplift_model.predict_uplift(features[None])[0]
        costs = store.catalogue.costs
        value = score_actions(scoring_model, features, np.array([code]), costs).order_value[0]
        greedy = TREATMENT if uplift * value > COST else CONTROL
        greedy_choices.append(greedy)
        p = 1 - epsilon / 2 if answer["chosen"] == greedy else epsilon / 2
        assert answer["propensity"] == p
        expected[answer["decision_id"]] = p
    assert set(greedy_choices) == {TREATMENT, CONTROL}  # the rule discriminates
    explored = sum(a["chosen"] != g for a, g in zip(targeted, greedy_choices, strict=True))
    assert 0 < explored < len(targeted) * 0.25
    log = read_decisions(Home(tmp_path).decision_log).to_pylist()
    logged = {r["decision_id"]: r for r in log if r["arm"] == "targeted"}
    assert {d: r["propensity"] for d, r in logged.items()} == expected
    assert {r["policy"] for r in logged.values()} == {"uplift_targeting"}


def test_a_configured_value_skips_scoring(make_service, tmp_path, uplift_model, store) -> None:
    path = save(models(tmp_path) / "m.pkl", uplift_model)  # an absolute path in the directory
    router = experiment({"model_path": str(path), "value": 40.0, "epsilon": 0.0})
    service = serve(make_service, tmp_path, router)
    answers = [decide(service, f"c{i:07d}") for i in range(80)]
    targeted = [a for a in answers if a["arm"] == "targeted"]
    assert targeted
    for answer in targeted:
        features = store.lookup(answer["customer_id"]).features
        treat = uplift_model.predict_uplift(features[None])[0] * 40.0 > COST
        assert answer["chosen"] == (TREATMENT if treat else CONTROL)
        assert answer["propensity"] == 1.0
        assert answer["ranked"][0]["expected_value"] is None  # not scored


def test_an_ineligible_treatment_or_control_falls_back_to_what_is_eligible(
    make_service, tmp_path, uplift_model
) -> None:
    save(models(tmp_path) / "uplift.pkl", uplift_model)
    router = experiment({"model_path": "uplift_models/uplift.pkl", "epsilon": 0.5})
    service = serve(make_service, tmp_path, router)
    customers = [f"c{i:07d}" for i in range(60)]
    customers = [c for c in customers if router.assign(c).arm_name == "targeted"][:5]
    for customer in customers:
        only_control = decide(service, customer, candidates=[CONTROL, "email_10"])
        assert (only_control["chosen"], only_control["propensity"]) == (CONTROL, 1.0)
        neither = decide(service, customer, candidates=["free_shipping", "email_10"])
        assert (neither["chosen"], neither["propensity"]) == ("email_10", 1.0)  # rules order
        assert neither["policy"] == "uplift_targeting"


def test_the_policy_maps_its_choice_to_the_eligible_candidates(uplift_model, store) -> None:
    policy = UpliftTargetingPolicy(
        UpliftModel(uplift_model, TREATMENT, CONTROL), store.catalogue, value=50.0, epsilon=0.2
    )
    codes = store.catalogue.codes
    features = store.lookup("c0000001").features
    both = policy.allocate("d1", features, codes(["no_action", "email_10", "email_20"]), None)
    assert sorted(both.propensities.tolist()) == [0.0, 0.1, 0.9]
    assert both.propensity == both.propensities[both.index]
    alone = policy.allocate("d1", features, codes(["email_10", "email_20"]), None)
    assert (alone.index, alone.propensity, alone.propensities.tolist()) == (1, 1.0, [0.0, 1.0])


def test_a_missing_model_answers_from_the_rules_fallback(make_service, tmp_path) -> None:
    service = serve(make_service, tmp_path, experiment({"model_path": "uplift_models/no.pkl"}))
    answers = [decide(service, f"c{i:07d}") for i in range(40)]
    targeted = [a for a in answers if a["arm"] == "targeted"]
    assert targeted
    for answer in targeted:
        assert answer["fallback_reason"] == "policy_unavailable"
        assert answer["policy"] == RULES_FALLBACK and answer["propensity"] == 1.0


def test_models_load_once_per_file_version_and_bad_files_are_named(
    tmp_path, uplift_model, caplog
) -> None:
    path = save(models(tmp_path) / "uplift.pkl", uplift_model)
    router = experiment({"model_path": "uplift_models/uplift.pkl"})
    provider = UpliftTargetingProvider(CONFIG, Home(tmp_path))
    assignment = Assignment("uplift", "targeted", router.running[0].config.arms[1])
    provider.refresh(router)
    first = provider.get(assignment).uplift
    assert first.model.model_treated_.n_jobs == first.model.model_control_.n_jobs == 1
    provider.refresh(router)
    assert provider.get(assignment).uplift is first  # same file version: not reloaded
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    provider.refresh(router)
    assert provider.get(assignment).uplift is not first
    assert provider.get(Assignment("uplift", "rules", router.running[0].config.arms[0])) is None

    bad = [
        ({"contract_version": "0+old"}, "contract_version"),
        ({"treatment": "email_99"}, "key 'treatment'"),
        ({"model": "not a model"}, "key 'model'"),
    ]
    for changes, message in bad:
        save(path, uplift_model, **changes)
        os.utime(path, ns=(stat.st_atime_ns, path.stat().st_mtime_ns + 10**9))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            provider.refresh(router)
        assert provider.get(assignment) is None
        assert str(path) in caplog.text and message in caplog.text
    path.write_bytes(b"not a pickle")
    os.utime(path, ns=(stat.st_atime_ns, path.stat().st_mtime_ns + 10**9))
    provider.refresh(router)
    assert provider.get(assignment) is None
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        provider.refresh(router)  # unchanged: neither reloaded nor logged again
    assert caplog.text == ""


class Unpickled:
    """Creates a directory when unpickled: the proof that a file was unpickled."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def warnings_of_refresh(provider, router, caplog) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        provider.refresh(router)
    return caplog.text


def targeted(router: ExperimentRouter) -> Assignment:
    return Assignment("uplift", "targeted", router.running[0].config.arms[1])


def test_models_outside_uplift_models_are_refused_naming_the_key(tmp_path, caplog) -> None:
    marker = tmp_path / "unpickled"
    outside = tmp_path / "elsewhere" / "m.pkl"
    save_uplift_model(outside, {"model": Unpickled(marker)})  # with its SHA-256
    models(tmp_path).mkdir()
    link = models(tmp_path) / "link.pkl"
    link.symlink_to(outside)
    digest_path(link).symlink_to(digest_path(outside))
    provider = UpliftTargetingProvider(CONFIG, Home(tmp_path))
    for configured in (
        str(outside),
        "elsewhere/m.pkl",
        "uplift_models/../elsewhere/m.pkl",
        "uplift_models/link.pkl",
    ):
        router = experiment({"model_path": configured})
        text = warnings_of_refresh(provider, router, caplog)
        assert provider.get(targeted(router)) is None
        assert f"arms.1.uplift.model_path: expected a file in {models(tmp_path)}" in text
        assert repr(configured) in text
    assert not marker.exists()


def test_a_model_is_unpickled_only_if_it_matches_its_sha256(tmp_path, uplift_model, caplog):
    marker = tmp_path / "unpickled"
    path = save(models(tmp_path) / "m.pkl", uplift_model)
    router = experiment({"model_path": "uplift_models/m.pkl"})
    provider = UpliftTargetingProvider(CONFIG, Home(tmp_path))
    provider.refresh(router)
    assert provider.get(targeted(router)) is not None  # saved by training: served

    def change(update) -> str:  # a new file version, then what the refresh warned
        stat = path.stat()
        update()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        return warnings_of_refresh(provider, router, caplog)

    assert "its SHA-256 differs" in change(
        lambda: path.write_bytes(pickle.dumps({"model": Unpickled(marker)}))
    )
    assert provider.get(targeted(router)) is None
    assert f"no SHA-256 in {digest_path(path)}" in change(digest_path(path).unlink)
    assert not marker.exists()


def test_config_check_names_an_uplift_model_outside_uplift_models(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    directory = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, directory)
    path = directory / "experiments" / "uplift-targeting.yaml"
    path.write_text(path.read_text().replace("uplift_models/uplift-email_20.pkl", "/tmp/m.pkl"))
    result = CliRunner().invoke(app, ["config", "check", "--dir", str(directory), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["errors"] == [
        f"{path}: arms.2.uplift.model_path: expected a file in "
        f"{(tmp_path / 'home').resolve() / 'uplift_models'} (where `liftgate uplift train` "
        "saves models); found '/tmp/m.pkl'"
    ]


def test_the_replica_runs_the_uplift_provider(tmp_path) -> None:
    policies = {p.policy for p in default_providers(CONFIG, Home(tmp_path))}
    assert "uplift_targeting" in policies


def test_the_uplift_block_goes_with_the_policy_and_errors_name_the_key(tmp_path) -> None:
    packaged = CONFIG.experiments["uplift-targeting"]
    assert [a.policy for a in packaged.arms][-1] == "uplift_targeting"
    assert packaged.arms[-1].uplift.model_path == "uplift_models/uplift-email_20.pkl"
    arms = "arms: [{name: a, weight: 0.5}, {name: b, weight: 0.5, policy: uplift_targeting}]"
    metric = "primary_metric: {name: c, kind: binomial, column: converted}"
    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\n{arms}\n{metric}\n")
    with pytest.raises(ConfigError, match=r"e\.yaml: arms\.1: policy uplift_targeting needs"):
        load_file(path, ExperimentConfig)
    path.write_text(
        f"name: e\n{arms.replace('policy: uplift_targeting', 'uplift: {model_path: m.pkl}')}\n"
        f"{metric}\n"
    )
    with pytest.raises(ConfigError, match=r"arms\.1: .*other policies take none"):
        load_file(path, ExperimentConfig)
    path.write_text(
        f"name: e\n{arms.replace('}]', ', uplift: {model_path: m.pkl, epsilon: 2}}]')}\n{metric}\n"
    )
    with pytest.raises(ConfigError, match=r"arms\.1\.uplift\.epsilon"):
        load_file(path, ExperimentConfig)
