"""End to end: `liftgate demo --scenario cart-abandonment` with the journey worker's workflow
engine on PostgreSQL (a server of the system packages, started for the test).

Everything is real: the world, the champion trained and registered in MLflow, the local API
taking `POST /v1/events` and consent changes, the outbox delivering to files, and the worker
as a child process (`liftgate journey worker`, which reads LIFTGATE_JOURNEYS_DATABASE_URL),
SIGKILLed once mid-run and started again. The world's customers are fewer than the demo's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
import pytest

from experiments.logs.reader import read_decisions
from liftgate.app.journey_demo import JOURNEY, run_cart_abandonment
from liftgate.core.home import Home
from liftgate.core.local_postgres import LocalPostgres
from liftgate.journeys.state import OPEN_STATUSES

DATABASE = "liftgate_journeys"


@pytest.mark.slow
def test_the_cart_abandonment_demo_on_postgresql_sends_each_step_once_across_a_sigkill(
    tmp_path: Path, local_postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = local_postgres.url(DATABASE)
    monkeypatch.setenv("LIFTGATE_JOURNEYS_DATABASE_URL", url)  # the worker child reads it

    summary = run_cart_abandonment(Home(tmp_path), seed=0, customers=300, progress=print)

    home = Home(Path(summary["home"]))
    assert summary["crash_resumed"] and summary["runs_open_at_kill"] > 0
    assert summary["duplicate_sends"] == 0
    assert summary["actions_sent"] > 0 and summary["deliveries"] > 0
    assert not any(summary["counts"][status] for status in OPEN_STATUSES)
    assert 0 < summary["holdout_share"] < 0.3
    # the runs were workflows on PostgreSQL, one per run; none on the embedded SQLite file
    assert not home.journey_engine.exists()
    with contextlib.closing(psycopg.connect(url)) as db:
        (workflows,) = db.execute(
            "SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid LIKE %s",
            (f"{JOURNEY}:%",),
        ).fetchone()
    assert workflows == summary["journeys_started"]
    # each decision a run made is in the decision log with the propensity it was served with
    decisions = read_decisions(home.decision_log)
    assert decisions.num_rows > 0
    propensities = decisions["propensity"].to_pylist()
    assert all(0.0 < p <= 1.0 for p in propensities)
