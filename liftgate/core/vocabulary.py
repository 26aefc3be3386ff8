"""The platform's names: one spelling per concept, in code, YAML and docs.

Where each name is written, and why: names a YAML file may hold — policies, reward kinds,
the served model aliases, the holdout arm — are the `Literal` types of `configs.schema`.
That package is the bottom layer and imports nothing of ours, so it cannot take them from
here, and a second copy here could drift from the one pydantic validates; so this module
takes them from those types and names each one (a reordered `Literal` would swap two
constants: tests/test_vocabulary.py checks every constant is spelled as its name). Names
only the code uses — the fallback's logged policy, the rollout's arm labels and prefix,
the `previous` alias, registry tags — are defined here. An experiment's control is the arm
its YAML names (`control:`), not a fixed label, so it has no constant. Code imports names
from this module rather than writing them as string literals. A spelling of an earlier
release is read from YAML and the command line under its current name, with a
`DeprecatedSpellingWarning` (`current_spelling`); `spellings` lists them for older logs.

>>> EPSILON_GREEDY, UNIFORM_RANDOM, PROFIT, CHAMPION, CANARY
('epsilon_greedy', 'uniform_random', 'profit', 'champion', 'canary')
>>> EPSILON_GREEDY in ARM_POLICIES and EPSILON_GREEDY in BANDIT_POLICIES  # one name, both
True
>>> spellings(EPSILON_GREEDY, OLD_ARM_POLICIES), spellings(PROFIT, OLD_REWARD_KINDS)
(('epsilon_greedy', 'greedy_epsilon'), ('profit', 'revenue_minus_cost'))
>>> served_bandit_name(THOMPSON)
'bandit:thompson'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, get_args

from configs.schema import HOLDOUT as HOLDOUT  # the arm label of the holdout share
from configs.schema import OLD_ARM_POLICIES as OLD_ARM_POLICIES  # old → current spelling
from configs.schema import OLD_BANDIT_POLICIES as OLD_BANDIT_POLICIES
from configs.schema import OLD_REWARD_KINDS as OLD_REWARD_KINDS
from configs.schema import (
    ArmOnlyPolicyName,
    ArmPolicyName,
    BanditOnlyPolicyName,
    BanditPolicyName,
    RewardKind,
    ServedAlias,
    SharedPolicyName,
)
from configs.schema import DeprecatedSpellingWarning as DeprecatedSpellingWarning
from configs.schema import current_spelling as current_spelling

# --- policies: an experiment arm's (ArmConfig.policy) and a bandit learner's ---------------

EPSILON_GREEDY, UNIFORM_RANDOM = get_args(SharedPolicyName)
RULES, UPLIFT_TARGETING, BANDIT = get_args(ArmOnlyPolicyName)
THOMPSON, UCB, LINUCB, LINTS, GAUSSIAN_TS, MODEL = get_args(BanditOnlyPolicyName)
ARM_POLICIES: Final[tuple[str, ...]] = get_args(ArmPolicyName)
BANDIT_POLICIES: Final[tuple[str, ...]] = get_args(BanditPolicyName)
#: The policy a decision logs when scoring failed: the rules' order, not the arm's policy.
RULES_FALLBACK: Final = "rules_fallback"

# --- reward kinds (liftgate.core.reward) ---------------------------------------------------

CONVERTED, REVENUE, PROFIT = REWARD_KINDS = get_args(RewardKind)

# --- model aliases in the registry ---------------------------------------------------------

CHAMPION, CHALLENGER = SERVED_ALIASES = get_args(ServedAlias)
#: The champion the current one replaced: the target of a one-command rollback.
PREVIOUS: Final = "previous"

# --- arm labels in the decision log --------------------------------------------------------

#: A rollout's decisions are logged under experiment ROLLOUT_PREFIX + its name.
ROLLOUT_PREFIX: Final = "rollout/"
#: A rollout's arms: the challenger, the champion copy of the canary's size, the rest.
CANARY: Final = "canary"
BASELINE: Final = "baseline"
STABLE: Final = "stable"

# --- model-version tags in the registry ----------------------------------------------------

TAG_RUN_ID: Final = "liftgate.run_id"
TAG_CONTRACT_VERSION: Final = "liftgate.contract_version"
TAG_DATA_FINGERPRINT: Final = "liftgate.data_fingerprint"
TAG_DATA_SOURCE: Final = "liftgate.data_source"
TAG_ACTION_IDS: Final = "liftgate.action_ids"
TAG_GATE_PASSED: Final = "liftgate.gate.passed"
TAG_GATE_REASONS: Final = "liftgate.gate.reasons"
#: Who trained a version (the OS user, or whoever `train_and_register` is told).
TAG_TRAINED_BY: Final = "liftgate.trained_by"
TAG_APPROVED_BY: Final = "liftgate.approved_by"
TAG_APPROVED_AT: Final = "liftgate.approved_at"
TAG_REPLACED_VERSION: Final = "liftgate.replaced_version"
TAG_ROLLED_BACK_AT: Final = "liftgate.rolled_back_at"
TAG_ROLLED_BACK_WHY: Final = "liftgate.rolled_back_why"


def spellings(name: str, old_spellings: Mapping[str, str]) -> tuple[str, ...]:
    """`name` and its earlier spellings (an ``OLD_*`` map): what older logs may hold."""
    return (name, *(old for old, current in old_spellings.items() if current == name))


def served_bandit_name(policy: str) -> str:
    """What a served bandit's decisions carry as `policy`: ``bandit:<its learner>``."""
    return f"{BANDIT}:{policy}"
