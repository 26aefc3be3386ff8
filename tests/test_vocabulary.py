"""One name per concept: the vocabulary, the YAML that uses it and the old spellings it reads."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import yaml

from configs.loader import DEFAULT_DIR, load_config
from configs.schema import DeprecatedSpellingWarning
from experiments.bandits.policies import POLICY_CLASSES
from experiments.bandits.spec import BanditSpec
from experiments.ope.challenger import EXPLORING_POLICIES
from liftgate.core import vocabulary
from liftgate.core.vocabulary import (
    ARM_POLICIES,
    BANDIT_POLICIES,
    EPSILON_GREEDY,
    REWARD_KINDS,
    SERVED_ALIASES,
    UNIFORM_RANDOM,
)

#: The keys whose values name a policy or a reward kind, wherever they sit in a YAML file.
NAMED_KEYS = {"policy": (*ARM_POLICIES, *BANDIT_POLICIES), "reward": REWARD_KINDS}


def public_strings() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(vocabulary).items()
        if name.isupper() and isinstance(value, str)
    }


def test_each_name_is_spelled_as_its_constant() -> None:
    """A reordered Literal in configs/schema.py would swap two constants; this catches it."""
    names = {k: v for k, v in public_strings().items() if not k.startswith(("TAG_", "ROLLOUT_"))}
    assert names, "no names found"
    for constant, value in names.items():
        assert constant.lower() == value, constant


def test_registry_tags_are_distinct_liftgate_keys() -> None:
    tags = {k: v for k, v in public_strings().items() if k.startswith("TAG_")}
    assert len(set(tags.values())) == len(tags) >= 10
    assert all(value.startswith("liftgate.") for value in tags.values()), tags


def test_the_bandit_policies_are_the_vocabulary_s() -> None:
    assert set(POLICY_CLASSES) == set(BANDIT_POLICIES)
    assert {EPSILON_GREEDY, UNIFORM_RANDOM} <= set(ARM_POLICIES) & set(BANDIT_POLICIES)


def yaml_values(node, key: str):
    """Every value of `key` anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                yield v
            yield from yaml_values(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from yaml_values(item, key)


@pytest.mark.parametrize("path", sorted(DEFAULT_DIR.rglob("*.yaml")), ids=lambda p: p.name)
def test_every_policy_and_reward_in_the_yaml_is_a_vocabulary_name(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    for key, names in NAMED_KEYS.items():
        for value in yaml_values(document, key):
            assert value in names, f"{path}: {key}: {value!r} is not one of {names}"


def test_the_packaged_configuration_loads_without_a_deprecation_message() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config()
    assert config.serving.model_alias in SERVED_ALIASES


@pytest.fixture
def old_spelling_config(tmp_path: Path) -> Path:
    """The packaged configuration with the spellings of the previous release."""
    directory = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__*"))
    scored = directory / "experiments" / "scored-vs-rules.yaml"
    scored.write_text(
        scored.read_text().replace("policy: epsilon_greedy", "policy: greedy_epsilon")
    )
    bandit = directory / "experiments" / "bandit-offers.yaml"
    data = yaml.safe_load(bandit.read_text())
    data["bandit"].update(policy="egreedy", params={}, reward="conversion")
    bandit.write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def test_old_spellings_load_under_their_new_names_with_a_message(
    old_spelling_config: Path,
) -> None:
    with pytest.warns(DeprecatedSpellingWarning) as caught:
        config = load_config(old_spelling_config)
    assert config.experiments["scored-vs-rules"].arms[1].policy == EPSILON_GREEDY
    bandit = config.experiments["bandit-offers"].bandit
    assert (bandit.policy, bandit.reward) == (EPSILON_GREEDY, "converted")
    experiments = old_spelling_config / "experiments"
    assert sorted(str(w.message) for w in caught) == [
        f"{experiments / 'bandit-offers.yaml'}: bandit.policy: 'egreedy' is deprecated; "
        "write 'epsilon_greedy'",
        f"{experiments / 'bandit-offers.yaml'}: bandit.reward: 'conversion' is deprecated; "
        "write 'converted'",
        f"{experiments / 'scored-vs-rules.yaml'}: arms.*.policy: 'greedy_epsilon' is "
        "deprecated; write 'epsilon_greedy'",
    ]


def test_logs_of_the_previous_release_keep_their_meaning() -> None:
    """Decisions logged as `greedy_epsilon` explore (OPE reads them); a served `egreedy`
    bandit's decisions are still its own (the updater learns them)."""
    assert {"greedy_epsilon", "epsilon_greedy", "uniform_random"} <= set(EXPLORING_POLICIES)
    config = load_config()
    offers = config.experiments["bandit-offers"]
    bandit = offers.bandit.model_copy(update={"policy": EPSILON_GREEDY, "params": {}})
    spec = BanditSpec(offers.model_copy(update={"bandit": bandit}), config.features, config.actions)
    assert spec.served_name == "bandit:epsilon_greedy"
    assert set(spec.logged_names) == {"bandit:epsilon_greedy", "bandit:egreedy"}
