"""`liftgate actions deliver | show | stats`, and the worker `liftgate serve` runs."""

from __future__ import annotations

import json
import threading

from outbox_helpers import NOON, queue_action
from typer.testing import CliRunner

from configs.loader import load_config
from liftgate.app.cli.main import app
from liftgate.core.clock import utc_now
from liftgate.core.home import HOME_ENV
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.action_store import ActionStore
from liftgate.governance.checks import Refusal

runner = CliRunner()


def invoke(home, *args: str):
    return runner.invoke(app, ["actions", *args], env={HOME_ENV: str(home.root)})


def test_deliver_once_delivers_what_is_due_and_show_tells_its_history(home):
    store = ActionStore(home.actions)
    action_id = queue_action(store, now=utc_now())  # the command reads the clock
    store.close()
    delivered = invoke(home, "deliver", "--once", "--json")
    assert delivered.exit_code == 0, delivered.output
    assert json.loads(delivered.stdout)["delivered"] == 1
    assert (home.deliveries / "email.jsonl").exists()

    shown = invoke(home, "show", action_id, "--json")
    assert shown.exit_code == 0, shown.output
    action = json.loads(shown.stdout)
    assert action["status"] == "delivered"
    assert [event["status"] for event in action["history"]] == ["queued", "delivered"]
    text = invoke(home, "show", action_id)
    assert "delivered" in text.stdout and "k1" in text.stdout


def test_stats_counts_statuses_and_refusals_by_check(home):
    store = ActionStore(home.actions)
    queue_action(store, "k1")
    request = ActionRequestData("d2", "email_10", "email", "spring", "k2", 3600.0)
    refusal = Refusal("consent", "no consent for email")
    store.commit(request, customer_id="c2", expires_at=None, refusal=refusal, caps=(), now=NOON)
    store.close()
    result = invoke(home, "stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["by_status"]["queued"] == 1 and stats["by_status"]["refused"] == 1
    assert stats["refusals_by_check"] == {"consent": 1}
    assert "consent" in invoke(home, "stats").stdout


def test_serve_runs_the_worker_in_the_background_until_stopped(home, wait_until):
    from liftgate.app.runner import start_delivery

    store = ActionStore(home.actions)
    action_id = queue_action(store, now=utc_now())
    stop = threading.Event()
    thread = start_delivery(load_config(), home, stop)
    try:
        assert wait_until(lambda: store.get(action_id)["status"] == "delivered")
    finally:
        stop.set()
        thread.join(timeout=5)
        store.close()
    assert not thread.is_alive()
