"""The weights follower of the rollouts' supervisor (liftgate/app/rollout_supervisor.py, no
Ray): every new revision of serving.json is deployed, and an unreadable file never stops
it — the split last deployed stays until a readable revision replaces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.canary import CanarySplit
from experiments.canary_state import read_split, write_split
from liftgate.app.rollout_supervisor import WeightsFollower
from liftgate.core.home import Home

SPLIT = CanarySplit(rollout="r", salt="r", weight=0.1, baseline=True, challenger="2")


def follower(home: Home) -> tuple[WeightsFollower, list[tuple[CanarySplit | None, int]]]:
    """A follower, and the (split, revision) of each deployment it makes."""
    deployed: list[tuple[CanarySplit | None, int]] = []

    def deploy(split: CanarySplit | None, revision: int) -> None:
        deployed.append((split, revision))

    return WeightsFollower(home, deploy), deployed


def test_the_driver_keeps_the_last_good_split_while_the_file_is_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    home = Home(tmp_path)
    weights, deployed = follower(home)
    first = write_split(home, SPLIT)
    weights.start()
    home.serving_weights.write_text('{"revision": 2, "spl')
    weights.poll()
    weights.poll()
    assert deployed == [(first, 1)]
    assert capsys.readouterr().err.count("serving.json: not a JSON document") == 1  # once

    write_split(home, None)  # the guard's rollback replaces the bad file
    weights.poll()
    assert deployed[-1] == (None, read_split(home)[1])


def test_a_driver_that_starts_on_an_unreadable_file_serves_the_champion(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.serving_weights.parent.mkdir(parents=True)
    home.serving_weights.write_text("[]")
    weights, deployed = follower(home)
    weights.start()
    weights.poll()
    assert deployed == [(None, 0)]
