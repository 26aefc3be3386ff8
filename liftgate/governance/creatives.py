"""Creatives under review: the text an action sends (a subject line, say, possibly written by
a language model) is registered, checked by a safety filter, and reviewed by a person.

`CreativeStore` (SQLite at `Home.creatives`) keeps each creative with its status
(``pending``, then ``approved`` or ``rejected``, once), who added and who reviewed it, the
review's reason, and the findings of the safety filter, which runs once, when the creative
is added. `POST /v1/actions` sends a creative only once it is approved.

A safety filter is any callable ``(text, action) -> list[Finding]``. The default,
`RulesFilter`, applies the rules of actions.yaml ``creatives``: words of the blocklist
(whole words, any case), a text longer than ``max_length``, placeholders left unresolved
(``{{name}}``, ``{name}``, ``[NAME]``, ``%s``, ``<FIRST_NAME>``) — each a ``block``
finding — and claims that a reviewer must be able to substantiate (``guaranteed``,
``risk-free``, …: ``warn``). ``creatives.filter: module:callable`` names a filter of your
own: the callable gets the rules and returns the filter (`filter_for`). A creative with a
``block`` finding is still registered, as pending; approving it takes ``override`` (and
a reason).

>>> from configs.schema import CreativeRules
>>> check = RulesFilter(CreativeRules(blocklist=["stupid"], max_length=40))
>>> [(f.rule, f.severity) for f in check("Hi {{first_name}}, guaranteed savings!", "email_10")]
[('placeholder', 'block'), ('claim', 'warn')]
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     store = CreativeStore(Path(directory) / "creatives.db", check)
...     added = store.add("email_10", "Your 10% code inside", who="alice")
...     reviewed = store.review(added.creative_id, True, "on brand", who="bob")
...     store.close()
>>> added.status, reviewed.status, reviewed.reviewed_by, store.path.name
('pending', 'approved', 'bob', 'creatives.db')
"""

from __future__ import annotations

import importlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, Protocol, get_args

from configs.schema import CreativeRules
from liftgate.core.errors import CheckFailed, InputError
from liftgate.core.sqlite import SharedDatabase

Severity = Literal["block", "warn"]
SEVERITIES: Final[tuple[str, ...]] = get_args(Severity)
BLOCK, WARN = SEVERITIES
Status = Literal["pending", "approved", "rejected"]
PENDING, APPROVED, REJECTED = get_args(Status)


@dataclass(frozen=True)
class Finding:
    """What a safety filter found: the rule, what exactly, and whether it blocks approval."""

    rule: str
    detail: str
    severity: Severity


class SafetyFilter(Protocol):
    def __call__(self, text: str, action: str) -> list[Finding]: ...


# Placeholders a template engine would have filled: {{x}}, {x}, ${x}, [NAME], %s, %(x)s,
# <FIRST_NAME>. Brackets and angles only in capitals, so "[sic]" and "<b>" are not caught.
_PLACEHOLDER = re.compile(
    r"\{\{[^{}]*\}\}"
    r"|\$?\{[^{}]*\}"
    r"|\[[A-Z_][A-Z0-9_ ]*\]"
    r"|%(?:\([^)]*\))?[sd](?!\w)"
    r"|<[A-Z_][A-Z0-9_]+>"
)


def _phrase(phrase: str) -> re.Pattern[str]:
    """The phrase as a whole word (or words), in any case: "hate" is not in "whatever"."""
    return re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE)


class RulesFilter:
    """The default safety filter: the rules of actions.yaml ``creatives``."""

    def __init__(self, rules: CreativeRules):
        self.rules = rules
        self._blocklist = [(word, _phrase(word)) for word in rules.blocklist]
        self._claims = [(claim, _phrase(claim)) for claim in rules.claims]

    def __call__(self, text: str, action: str) -> list[Finding]:
        findings = [
            Finding("blocklist", f"{word!r} is on the blocklist", BLOCK)
            for word, pattern in self._blocklist
            if pattern.search(text)
        ]
        if len(text) > self.rules.max_length:
            findings.append(
                Finding(
                    "length",
                    f"{len(text)} characters; at most {self.rules.max_length} "
                    "(creatives.max_length)",
                    BLOCK,
                )
            )
        findings += [
            Finding("placeholder", f"unresolved placeholder {match.group()!r}", BLOCK)
            for match in _PLACEHOLDER.finditer(text)
        ]
        findings += [
            Finding("claim", f"claims {claim!r}: approve only if it can be substantiated", WARN)
            for claim, pattern in self._claims
            if pattern.search(text)
        ]
        return findings


def filter_for(rules: CreativeRules, where: str = "actions.yaml") -> SafetyFilter:
    """The safety filter that ``creatives.filter`` names: ``rules`` (`RulesFilter`), or
    ``module:callable``, called with the rules to make the filter. A name that cannot be
    imported is an InputError naming `where` (the file) and the key."""
    if rules.filter == "rules":
        return RulesFilter(rules)
    module_name, _, name = rules.filter.partition(":")
    key = f"{where}: creatives.filter"
    try:
        factory = getattr(importlib.import_module(module_name), name)
    except ImportError as exc:
        raise InputError(f"cannot import module {module_name!r} ({exc})", parameter=key) from None
    except AttributeError:
        raise InputError(f"module {module_name!r} has no {name!r}", parameter=key) from None
    try:
        made = factory(rules)
    except Exception as exc:  # the user's code: say whose, not a traceback
        raise InputError(f"{rules.filter}(rules) failed: {exc!r}", parameter=key) from None
    if not callable(made):
        raise InputError(
            f"{rules.filter}(rules) returned {made!r}, not a filter (a callable taking the "
            "text and the action, returning findings)",
            parameter=key,
        )
    return made


def _checked(findings: object, safety_filter: SafetyFilter) -> list[Finding]:
    if not isinstance(findings, list) or not all(
        isinstance(f, Finding) and f.severity in SEVERITIES for f in findings
    ):
        raise CheckFailed(
            f"the safety filter {safety_filter!r} returned {findings!r}; expected a list of "
            f"Finding(rule, detail, severity) with severity {' or '.join(SEVERITIES)}"
        )
    return findings


@dataclass(frozen=True)
class Creative:
    creative_id: str
    action: str
    text: str
    status: Status
    findings: tuple[Finding, ...]
    created_at: str
    created_by: str
    reviewed_at: str | None = None
    reviewed_by: str | None = None
    reason: str | None = None
    overridden: bool = False

    @property
    def blocked(self) -> bool:
        """Has the filter found something that blocks approval (without an override)?"""
        return any(finding.severity == BLOCK for finding in self.findings)

    def to_json(self) -> dict:
        return {**asdict(self), "findings": [asdict(f) for f in self.findings]}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS creatives (
    creative_id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    findings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    reviewed_at TEXT,
    reviewed_by TEXT,
    reason TEXT,
    overridden INTEGER NOT NULL DEFAULT 0
)
"""
_FIELDS = (
    "creative_id, action, text, status, findings, created_at, created_by, reviewed_at,"
    " reviewed_by, reason, overridden"
)


def _creative(row: tuple) -> Creative:
    findings = tuple(Finding(**finding) for finding in json.loads(row[4]))
    return Creative(*row[:4], findings, *row[5:10], overridden=bool(row[10]))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CreativeStore:
    """The store at `path` (created if missing), shared by processes and threads; `add`
    runs `safety_filter` (default: the rules' defaults, `RulesFilter(CreativeRules())`)."""

    def __init__(
        self, path: Path, safety_filter: SafetyFilter | None = None, busy_timeout_s: float = 10.0
    ):
        self.path = path
        self.safety_filter = safety_filter or RulesFilter(CreativeRules())
        # synchronous FULL (SQLite's default, kept): a review, once answered, is on disk.
        self._database = SharedDatabase(
            path, _SCHEMA, synchronous="FULL", busy_timeout_s=busy_timeout_s
        )

    def _select(self, where: str, parameters: tuple) -> list[Creative]:
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_FIELDS} FROM creatives WHERE {where}", parameters
            ).fetchall()
        return [_creative(row) for row in rows]

    def add(self, action: str, text: str, *, who: str) -> Creative:
        """Register `text` for `action` as pending, with the safety filter's findings."""
        if not text.strip():
            raise InputError("expected the creative's text; got nothing", parameter="text")
        findings = _checked(self.safety_filter(text, action), self.safety_filter)
        creative = Creative(
            f"cr_{secrets.token_hex(6)}", action, text, PENDING, tuple(findings), _now(), who
        )
        with self._database.write() as db:
            db.execute(
                "INSERT INTO creatives (creative_id, action, text, status, findings, created_at,"
                " created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    creative.creative_id,
                    action,
                    text,
                    PENDING,
                    json.dumps([asdict(f) for f in findings]),
                    creative.created_at,
                    who,
                ),
            )
        return creative

    def get(self, creative_id: str) -> Creative | None:
        found = self._select("creative_id = ?", (creative_id,))
        return found[0] if found else None

    def status(self, creative_id: str) -> Status | None:
        """``pending``, ``approved`` or ``rejected``; None for an unknown id."""
        with self._database.read() as db:
            row = db.execute(
                "SELECT status FROM creatives WHERE creative_id = ?", (creative_id,)
            ).fetchone()
        return None if row is None else row[0]

    def pending(self) -> list[Creative]:
        """The creatives waiting for a review, oldest first."""
        return self._select("status = ? ORDER BY created_at, creative_id", (PENDING,))

    def review(
        self, creative_id: str, approve: bool, reason: str, who: str, *, override: bool = False
    ) -> Creative:
        """Approve or reject a pending creative, once. A rejection needs a reason; so does
        approving one with a ``block`` finding, which also needs `override`."""
        reason = reason.strip()
        # The write lock first (BEGIN IMMEDIATE): two reviewers cannot both review it.
        with self._database.write() as db:
            row = db.execute(
                f"SELECT {_FIELDS} FROM creatives WHERE creative_id = ?", (creative_id,)
            ).fetchone()
            if row is None:
                raise InputError(
                    f"no creative {creative_id!r} in {self.path} (`liftgate creative review` "
                    "lists the pending ones)",
                    parameter="creative_id",
                )
            creative = _creative(row)
            if creative.status != PENDING:
                raise CheckFailed(
                    f"creative {creative_id} was {creative.status} by {creative.reviewed_by} "
                    f"at {creative.reviewed_at}: a creative is reviewed once (add a new one)"
                )
            if not approve and not reason:
                raise InputError("a rejection needs a reason", parameter="reason")
            overridden = approve and creative.blocked
            if overridden and not override:
                blocking = "; ".join(f.detail for f in creative.findings if f.severity == BLOCK)
                raise CheckFailed(
                    f"creative {creative_id} has blocking findings ({blocking}): approving it "
                    "needs an override, with a reason"
                )
            if overridden and not reason:
                raise InputError("an override needs a reason", parameter="reason")
            reviewed = replace(
                creative,
                status=APPROVED if approve else REJECTED,
                reviewed_at=_now(),
                reviewed_by=who,
                reason=reason or None,
                overridden=overridden,
            )
            db.execute(
                "UPDATE creatives SET status = ?, reviewed_at = ?, reviewed_by = ?, reason = ?,"
                " overridden = ? WHERE creative_id = ?",
                (
                    reviewed.status,
                    reviewed.reviewed_at,
                    who,
                    reviewed.reason,
                    overridden,
                    creative_id,
                ),
            )
        return reviewed

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> CreativeStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
