"""Creatives under review (liftgate/governance/creatives.py): each rule of the default safety
filter, a filter of one's own, the review, and `liftgate creative`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR
from configs.schema import CreativeRules
from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.errors import CheckFailed, InputError
from liftgate.core.home import HOME_ENV, Home
from liftgate.governance.creatives import (
    APPROVED,
    BLOCK,
    PENDING,
    REJECTED,
    WARN,
    CreativeStore,
    Finding,
    RulesFilter,
    filter_for,
)

RULES = CreativeRules(blocklist=["hate", "stupid"], max_length=40)
runner = CliRunner()


def found(text: str, rules: CreativeRules = RULES) -> list[tuple[str, str]]:
    return [(f.rule, f.severity) for f in RulesFilter(rules)(text, "email_10")]


# --- the rules --------------------------------------------------------------------------------


def test_a_clean_text_has_no_finding() -> None:
    assert found("Your 10% code is inside") == []


@pytest.mark.parametrize("text", ["We HATE waiting", "hate.", "so (stupid) of us"])
def test_blocklisted_words_block_in_any_case(text: str) -> None:
    assert found(text) == [("blocklist", BLOCK)]


@pytest.mark.parametrize("text", ["whatever you like", "hateful", "stupidity"])
def test_blocklisted_words_match_whole_words_only(text: str) -> None:
    assert found(text) == []


def test_a_text_over_the_maximum_length_blocks() -> None:
    assert found("x" * 40) == []
    [finding] = RulesFilter(RULES)("x" * 41, "email_10")
    assert finding == Finding("length", "41 characters; at most 40 (creatives.max_length)", BLOCK)


PLACEHOLDERS = ["{{first_name}}", "{name}", "${name}", "[NAME]", "%s", "%(name)s", "<FIRST_NAME>"]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_an_unresolved_placeholder_blocks(placeholder: str) -> None:
    [finding] = RulesFilter(RULES)(f"Hi {placeholder}, hello", "email_10")
    assert (finding.rule, finding.severity) == ("placeholder", BLOCK)
    assert placeholder in finding.detail


@pytest.mark.parametrize("text", ["50% off [sic]", "a <b>bold</b> offer", "10%discount today"])
def test_text_that_only_looks_like_a_placeholder_passes(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize("text", ["GUARANTEED savings", "a risk-free trial", "Act now!"])
def test_claims_warn_in_any_case(text: str) -> None:
    assert found(text) == [("claim", WARN)]


def test_claims_come_from_the_configuration() -> None:
    rules = CreativeRules(claims=["best price"])
    assert found("The BEST PRICE in town, guaranteed", rules) == [("claim", WARN)]


# --- a filter of one's own --------------------------------------------------------------------

FILTERS = """
from liftgate.governance.creatives import Finding

def shouting(rules):
    def check(text, action):
        return [Finding("shouting", "all capitals", "warn")] if text.isupper() else []
    return check

def broken(rules):
    raise RuntimeError("no model")

def not_a_filter(rules):
    return 42

def careless(rules):
    return lambda text, action: ["looks fine"]
"""


@pytest.fixture
def filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_filters.py").write_text(FILTERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_filters"


def test_the_default_filter_is_the_rules() -> None:
    assert isinstance(filter_for(RULES), RulesFilter)


def test_a_filter_of_ones_own_is_plugged_in(filters: str, tmp_path: Path) -> None:
    rules = CreativeRules(filter=f"{filters}:shouting")
    with CreativeStore(tmp_path / "c.db", filter_for(rules)) as store:
        creative = store.add("email_10", "BUY NOW", who="alice")
    assert creative.findings == (Finding("shouting", "all capitals", WARN),)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nowhere:f", "cannot import module 'nowhere'"),
        ("my_filters:missing", "module 'my_filters' has no 'missing'"),
        ("my_filters:broken", "my_filters:broken(rules) failed: RuntimeError('no model')"),
        ("my_filters:not_a_filter", "returned 42, not a filter"),
    ],
)
def test_a_bad_filter_is_an_input_error_naming_the_key(filters, name, message) -> None:
    rules = CreativeRules(filter=name)
    with pytest.raises(InputError) as raised:
        filter_for(rules, "configs/actions.yaml")
    assert str(raised.value).startswith("configs/actions.yaml: creatives.filter: ")
    assert message in str(raised.value)


def test_a_filter_that_returns_no_findings_is_refused(filters: str, tmp_path: Path) -> None:
    careless = filter_for(CreativeRules(filter=f"{filters}:careless"))
    with (
        CreativeStore(tmp_path / "c.db", careless) as store,
        pytest.raises(CheckFailed, match="expected a list of Finding"),
    ):
        store.add("email_10", "hello", who="alice")


# --- the review -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    with CreativeStore(tmp_path / "creatives.db", RulesFilter(RULES)) as store:
        yield store


def test_a_creative_is_pending_until_reviewed_once(store: CreativeStore) -> None:
    creative = store.add("email_10", "Your code inside", who="alice")
    assert store.status(creative.creative_id) == PENDING
    assert [c.creative_id for c in store.pending()] == [creative.creative_id]
    approved = store.review(creative.creative_id, True, "", who="bob")
    assert (approved.status, approved.reviewed_by, approved.reason) == (APPROVED, "bob", None)
    assert store.get(creative.creative_id) == approved  # what is returned is what is stored
    assert store.status(creative.creative_id) == APPROVED and store.pending() == []
    with pytest.raises(CheckFailed, match="was approved by bob"):
        store.review(creative.creative_id, False, "changed my mind", who="carol")


def test_a_rejection_needs_a_reason(store: CreativeStore) -> None:
    creative = store.add("email_10", "Your code inside", who="alice")
    with pytest.raises(InputError) as raised:
        store.review(creative.creative_id, False, "  ", who="bob")
    assert raised.value.parameter == "reason"
    rejected = store.review(creative.creative_id, False, "off brand", who="bob")
    assert (rejected.status, rejected.reason) == (REJECTED, "off brand")


def test_a_blocked_creative_is_approved_only_by_override_with_a_reason(store) -> None:
    creative = store.add("email_10", "Hi {{name}}, we hate spam", who="alice")
    assert creative.status == PENDING and creative.blocked
    assert [f.rule for f in store.get(creative.creative_id).findings] == [
        "blocklist",
        "placeholder",
    ]
    with pytest.raises(CheckFailed, match="blocking findings"):
        store.review(creative.creative_id, True, "fine", who="bob")
    with pytest.raises(InputError, match="an override needs a reason"):
        store.review(creative.creative_id, True, "", who="bob", override=True)
    approved = store.review(creative.creative_id, True, "legal agreed", who="bob", override=True)
    assert approved.status == APPROVED and approved.overridden
    assert store.get(creative.creative_id).overridden


def test_unknown_creatives(store: CreativeStore) -> None:
    assert store.get("cr_000000000000") is None and store.status("cr_000000000000") is None
    with pytest.raises(InputError, match="no creative 'cr_000000000000'"):
        store.review("cr_000000000000", True, "", who="bob")


def test_an_empty_text_is_refused(store: CreativeStore) -> None:
    with pytest.raises(InputError, match="expected the creative's text"):
        store.add("email_10", " \n", who="alice")


# --- liftgate creative ------------------------------------------------------------------------


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    return Home(tmp_path / "home")


def invoke(*args: str):
    result = runner.invoke(app, ["creative", *args])
    assert "Traceback" not in result.output
    return result


def test_add_review_and_show(cli_home: Home, tmp_path: Path) -> None:
    added = invoke("add", "--action", "email_10", "--text", "Your 10% code", "--json")
    assert added.exit_code == 0, added.output
    clean = json.loads(added.stdout)
    subject = tmp_path / "subject.txt"
    subject.write_text("Hi {{first_name}}, guaranteed!\n")
    blocked = invoke("add", "--action", "push_reminder", "--from", str(subject), "--json")
    assert "approving it needs --override" in blocked.stderr
    blocked = json.loads(blocked.stdout)
    assert blocked["text"] == "Hi {{first_name}}, guaranteed!"
    assert [f["severity"] for f in blocked["findings"]] == [BLOCK, WARN]

    listed = invoke("review")
    assert clean["creative_id"] in listed.stdout and "unresolved placeholder" in listed.stdout
    approved = invoke("review", clean["creative_id"], "--approve", "--json")
    assert json.loads(approved.stdout)["status"] == APPROVED
    refused = invoke("review", blocked["creative_id"], "--approve")
    assert refused.exit_code == 1 and "blocking findings" in refused.stderr
    rejected = invoke("review", blocked["creative_id"], "--reject", "--reason", "placeholder")
    assert rejected.exit_code == 0 and "rejected by" in rejected.stdout
    assert "no creative is waiting" in invoke("review").stdout
    shown = invoke("show", blocked["creative_id"])
    assert "rejected" in shown.stdout and "guaranteed" in shown.stdout

    records = [(r["action"], r["creative_id"]) for r in audit.read(cli_home.audit_log)]
    assert records == [
        ("creative_added", clean["creative_id"]),
        ("creative_added", blocked["creative_id"]),
        ("creative_approved", clean["creative_id"]),
        ("creative_rejected", blocked["creative_id"]),
    ]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["add", "--action", "nope", "--text", "x"], "--action: no action 'nope'"),
        (["add", "--action", "no_action", "--text", "x"], "contacts no one"),
        (["add", "--action", "email_10"], "--text"),
        (["add", "--action", "email_10", "--text", "x", "--from", "f.txt"], "--text"),
        (["add", "--action", "email_10", "--from", "missing.txt"], "missing.txt: file not found"),
        (["review", "cr_000000000000", "--reject", "--reason", "r"], "no creative"),
        (["review", "cr_000000000000"], "expected --approve, or --reject"),
        (["review", "--approve"], "name the creative"),
        (["show", "cr_000000000000"], "no creative 'cr_000000000000'"),
    ],
)
def test_bad_input_exits_2_naming_it(cli_home: Home, args: list[str], named: str) -> None:
    result = invoke(*args, "--json")
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2


def test_a_bad_filter_in_the_configuration_names_the_file_and_key(
    cli_home: Home, tmp_path: Path
) -> None:
    config_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, config_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    actions = yaml.safe_load((config_dir / "actions.yaml").read_text())
    actions["creatives"]["filter"] = "nowhere:check"
    (config_dir / "actions.yaml").write_text(yaml.safe_dump(actions))
    result = invoke("add", "--action", "email_10", "--text", "x", "--config-dir", str(config_dir))
    assert result.exit_code == 2
    assert f"{config_dir / 'actions.yaml'}: creatives.filter: cannot import" in result.stderr
