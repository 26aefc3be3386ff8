"""Rollout records (liftgate/guard/state.py): the JSON files they are stored as, read, changed
under the lock and written back in the same format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liftgate.app.cli.rollout import format_record
from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument
from liftgate.guard.controller import RolloutStatus
from liftgate.guard.state import (
    ABORTED,
    PAUSED,
    ROLLBACK,
    RUNNING,
    Intent,
    RolloutRecord,
    all_records,
    locked_record,
    read_record,
    save,
)

#: A rollout file as the guard wrote it before records were typed (dicts, indent 2).
EXISTING_FILE = """{
  "name": "scorer-canary",
  "model": "liftgate-scorer",
  "champion": "1",
  "challenger": "2",
  "status": "running",
  "step": 1,
  "weight": 0.3,
  "started_at": "2026-03-01T12:00:00.123456+00:00",
  "step_started_at": "2026-03-01T12:10:00.654321+00:00",
  "operation_failures": 0,
  "dry_run": false,
  "drift": {
    "checked_at": "2026-03-01T12:15:00+00:00",
    "alerted": false,
    "last": {
      "checked": true,
      "dataset_drift": false,
      "drift_share": 0.1,
      "drifted_columns": [
        "recency_days"
      ],
      "report_path": null
    }
  },
  "ope": null,
  "last_verdict": {
    "kind": "PROMOTE",
    "summary": "conversion holds",
    "at": "2026-03-01T12:10:00+00:00",
    "units": {
      "canary": 400,
      "baseline": 400
    }
  },
  "history": [
    {
      "ts": "2026-03-01T12:00:00.124+00:00",
      "event": "started",
      "step": 0,
      "weight": 0.1,
      "who": "alice"
    },
    {
      "ts": "2026-03-01T12:10:00.655+00:00",
      "event": "step",
      "step": 1,
      "weight": 0.3,
      "why": "conversion holds"
    }
  ],
  "updated_at": "2026-03-01T12:15:00.001+00:00"
}"""


def existing_home(tmp_path: Path) -> Home:
    home = Home(tmp_path)
    home.rollouts.mkdir(parents=True)
    home.rollout_record("scorer-canary").write_text(EXISTING_FILE)
    home.serving_weights.write_text('{"revision": 3, "split": null}')
    return home


def new_record(name: str = "scorer-canary") -> RolloutRecord:
    return RolloutRecord(
        name=name,
        model="liftgate-scorer",
        champion="1",
        challenger="2",
        status=RUNNING,
        step=0,
        weight=0.1,
        started_at="2026-03-01T12:00:00+00:00",
        step_started_at="2026-03-01T12:00:00+00:00",
    )


def test_an_existing_rollout_file_loads(tmp_path: Path) -> None:
    record = read_record(existing_home(tmp_path), "scorer-canary")

    assert (record.status, record.step, record.weight, record.active) == (RUNNING, 1, 0.3, True)
    assert record.drift["last"]["drifted_columns"] == ["recency_days"]
    assert record.last_verdict["kind"] == "PROMOTE"
    assert [event["event"] for event in record.history] == ["started", "step"]
    assert record.to_json() == json.loads(EXISTING_FILE)


def test_a_changed_record_is_written_back_in_the_same_format(tmp_path: Path) -> None:
    home = existing_home(tmp_path)
    with locked_record(home, "scorer-canary") as record:
        record.status = PAUSED

    written = home.rollout_record("scorer-canary").read_text()
    expected = json.loads(EXISTING_FILE) | {"status": PAUSED, "updated_at": record.updated_at}
    assert written == json.dumps(expected, indent=2)


def test_record_json_round_trip() -> None:
    record = new_record()
    record.add_event("started", step=0, weight=0.1, who="alice")
    document = json.loads(json.dumps(record.to_json()))

    assert RolloutRecord.from_json(document) == record
    assert list(document) == [
        "name",
        "model",
        "champion",
        "challenger",
        "status",
        "step",
        "weight",
        "started_at",
        "step_started_at",
        "operation_failures",
        "dry_run",
        "drift",
        "ope",
        "last_verdict",
        "history",
        "updated_at",
    ]
    assert document["drift"] == {"checked_at": None, "alerted": False}


def test_a_document_with_an_unknown_key_is_refused() -> None:
    with pytest.raises(TypeError, match="'steps'"):
        RolloutRecord.from_json({**new_record().to_json(), "steps": []})


def test_a_new_record_replaces_the_stored_one_and_a_failed_block_writes_nothing(
    tmp_path: Path,
) -> None:
    home = existing_home(tmp_path)
    with locked_record(home, "scorer-canary", new=new_record()) as record:
        record.add_event("started")
    assert read_record(home, "scorer-canary").to_json() == record.to_json()

    with pytest.raises(RuntimeError), locked_record(home, "scorer-canary") as record:
        record.status = ABORTED
        raise RuntimeError("the transition failed")
    assert read_record(home, "scorer-canary").status == RUNNING


def test_a_rollout_never_started_has_no_record_and_gets_no_file(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with locked_record(home, "ghost") as record:
        assert record is None
    assert read_record(home, "ghost") is None
    assert not home.rollout_record("ghost").exists()


def test_all_records_skips_the_serving_weights_and_names_the_unreadable(tmp_path: Path) -> None:
    home = existing_home(tmp_path)
    with locked_record(home, "other", new=new_record("other")):
        pass
    home.rollout_record("torn").write_text('{"name": "torn", "sta')
    home.rollout_record("alien").write_text('{"steps": []}')

    found = all_records(home)
    assert [record.name for record in found.readable] == ["other", "scorer-canary"]
    assert sorted(found.unreadable) == ["alien", "torn"]
    assert "not a JSON document" in found.unreadable["torn"]
    assert "not a rollout record" in found.unreadable["alien"]
    with pytest.raises(UnreadableDocument, match="alien.json: not a rollout record"):
        read_record(home, "alien")


def test_a_pending_intent_is_saved_at_once_read_back_and_shown(tmp_path: Path) -> None:
    home = Home(tmp_path)
    intent = Intent(
        action=ROLLBACK,
        weight=0.0,
        aliases={"challenger": None},
        status=ABORTED,
        who="alice",
        why="abort",
        at="2026-03-01T12:20:00+00:00",
    )
    with pytest.raises(RuntimeError), locked_record(home, "c", new=new_record("c")) as record:
        record.pending = intent
        save(home, record)
        raise RuntimeError("killed between the intent and the weights")

    stored = json.loads(home.rollout_record("c").read_text())
    assert list(stored)[-3:] == ["pending", "history", "updated_at"]
    record = read_record(home, "c")
    assert record.pending == intent and record.status == RUNNING
    assert (
        "  pending rollback since 2026-03-01T12:20:00+00:00 by alice: canary weight → 0%, "
        "challenger → removed (abort)"
    ) in format_record(record).splitlines()


def test_status_document_and_text(tmp_path: Path) -> None:
    record = read_record(existing_home(tmp_path), "scorer-canary")
    aliases = {"champion": "1", "challenger": "2"}
    status = RolloutStatus(record, None, 3, aliases)

    document = status.to_json()
    assert list(document)[-4:] == ["serving", "serving_revision", "aliases", "history"]
    assert document == {
        **{key: value for key, value in json.loads(EXISTING_FILE).items() if key != "history"},
        "serving": None,
        "serving_revision": 3,
        "aliases": aliases,
        "history": record.history[-10:],
    }
    text = format_record(record, aliases)
    assert text.splitlines()[:2] == [
        "rollout scorer-canary: running — liftgate-scorer v2 vs champion v1",
        "  step 2, canary weight 30%",
    ]
    assert "registry: challenger v2, champion v1" in text
    assert "registry" not in format_record(record)
