"""What is left of a transition, from what the weights file and the registry show now.

A transition moves two systems that cannot change together: the serving weights and the
registry aliases. The controller writes its :class:`~liftgate.guard.state.Intent` into
the rollout record, durably, before it moves either, and clears it once both are done; in
between, a crash or a registry outage can leave any prefix of the steps done. This module
is the pure half of finishing it: from the intent and what each system shows, the steps
that remain. Every guard tick (the first one as the guard starts) asks it while an intent
is pending, so wherever a transition stopped, the next tick brings weights, aliases and
record to the intent. That is forward recovery: nothing is undone, so a rollback's weight
0 is never set back up. What cannot be read (a corrupt weights file, a registry that does
not answer: None) counts as not done.

>>> rollback = Intent(action="rollback", weight=0.0, aliases={"challenger": None},
...                   status="rolled_back")
>>> plan(rollback, weight=0.25, aliases=None)  # stopped before anything; registry down
Steps(weight=0.0, aliases={'challenger': None})
>>> plan(rollback, weight=0.0, aliases={"champion": "1", "challenger": "2"})  # weights done
Steps(weight=None, aliases={'challenger': None})
>>> plan(rollback, weight=0.0, aliases={"champion": "1"}).done
True

An abort (or rollback) that arrives before a promotion is done takes its place, and puts
back the aliases the promotion may have moved already:

>>> promotion = Intent(action="promote", weight=0.0, status="promoted",
...     aliases={"champion": "2", "previous": "1", "challenger": None},
...     restore={"champion": "1", "previous": None, "challenger": "2"})
>>> abort = rollback_of(promotion, status="aborted", who="alice", why="abort", at="t")
>>> abort.weight, abort.status, abort.aliases
(0.0, 'aborted', {'champion': '1', 'previous': None, 'challenger': None})
>>> plan(abort, weight=0.0, aliases={"champion": "2", "previous": "1", "challenger": "2"})
Steps(weight=None, aliases={'champion': '1', 'previous': None, 'challenger': None})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from liftgate.core.vocabulary import CHALLENGER, TAG_ROLLED_BACK_AT, TAG_ROLLED_BACK_WHY
from liftgate.guard.state import PROMOTE, ROLLBACK, Intent


@dataclass(frozen=True)
class Steps:
    weight: float | None  # the canary weight to set (None: it is there already)
    aliases: dict[str, str | None]  # the aliases still to move (None: remove)

    @property
    def done(self) -> bool:
        return self.weight is None and not self.aliases


def weight_step(intent: Intent, weight: float | None) -> float | None:
    """The weight to set, given the canary weight served (None: unreadable)."""
    return None if weight == intent.weight else intent.weight


def alias_steps(intent: Intent, aliases: Mapping[str, str] | None) -> dict[str, str | None]:
    """The aliases to move, given the registry's (None: unreadable)."""
    if aliases is None:
        return dict(intent.aliases)
    return {
        alias: version for alias, version in intent.aliases.items() if aliases.get(alias) != version
    }


def plan(intent: Intent, weight: float | None, aliases: Mapping[str, str] | None) -> Steps:
    """The steps that finish `intent`: weights first (they need no registry), then aliases."""
    return Steps(weight_step(intent, weight), alias_steps(intent, aliases))


def rollback_of(pending: Intent | None, *, status: str, who: str, why: str, at: str) -> Intent:
    """The rollback (``status`` rolled_back or aborted) that replaces `pending`: weight 0, no
    challenger alias (in place of a promotion, also the aliases it replaced), and the
    challenger's version tagged with when and why."""
    aliases: dict[str, str | None] = {CHALLENGER: None}
    if pending is not None and pending.action == PROMOTE:
        aliases = {**pending.restore, CHALLENGER: None}
    return Intent(
        action=ROLLBACK,
        weight=0.0,
        aliases=aliases,
        status=status,
        tags={TAG_ROLLED_BACK_AT: at, TAG_ROLLED_BACK_WHY: why[:500]},
        who=who,
        why=why,
        at=at,
    )
