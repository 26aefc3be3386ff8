"""Four eyes on a new champion: whoever approves a version is neither who trained it nor who
started the rollout that promotes it (where models.yaml's
`registry.require_approval_for_champion` asks for approvals).

An identity is a name: the OS user, a `--by` name, or an API key id for a request made over
HTTP. Names are compared as given.

>>> custody = Custody("scorer", "2", trained_by="alice", started_by="bob")
>>> custody.refusal(["carol"]) is None
True
>>> print(custody.refusal(["carol", "alice"]))
four eyes: alice trained scorer v2; a different person must approve it
>>> print(custody.refusal(["bob"]))
four eyes: bob started the rollout that promotes scorer v2; a different person must approve it
>>> Custody("scorer", "2", "alice", "bob", approved_by="carol").refusal_to_promote() is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Custody:
    """Who had a hand in a version on its way to champion (None: not known, or nobody)."""

    model: str
    version: str
    trained_by: str | None
    started_by: str | None = None  # who started the rollout that promotes it
    approved_by: str | None = None

    def refusal(self, approvers: Iterable[str]) -> str | None:
        """Why these names may not approve the version (None: they may)."""
        what = f"{self.model} v{self.version}"
        roles = (
            (self.trained_by, "trained"),
            (self.started_by, "started the rollout that promotes"),
        )
        for approver in approvers:
            for name, role in roles:
                if approver == name:
                    return f"four eyes: {name} {role} {what}; a different person must approve it"
        return None

    def refusal_to_promote(self) -> str | None:
        """Why the version may not become champion yet (None: its approval holds)."""
        command = f"liftgate registry approve {self.model} {self.version} --by WHO"
        if self.approved_by is None:
            return (
                f"{self.model} v{self.version} is not approved; models.yaml requires approval "
                f"before it becomes champion ({command})"
            )
        refused = self.refusal([self.approved_by])
        return refused and f"{refused}; it was approved by {self.approved_by} ({command})"

    def names(self) -> dict[str, str | None]:
        """The three names, as the audit log records them."""
        return {
            "trained_by": self.trained_by,
            "started_by": self.started_by,
            "approved_by": self.approved_by,
        }
