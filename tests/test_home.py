"""The LIFTGATE_HOME layout (liftgate/core/home.py): one place names every location."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from liftgate.core import home as home_module
from liftgate.core.home import HOME_ENV, Home

HOME = Home(Path("/srv/liftgate"))
NOT_LOCATIONS = {"root", "from_env", "ensure", "uplift_model"}


def locations() -> dict[str, Path]:
    """Every location Home names, methods called with a sample name."""
    found = {}
    for name in dir(Home):
        if name.startswith("_") or name in NOT_LOCATIONS:
            continue
        value = getattr(HOME, name)
        value = value("x") if callable(value) else value
        found[name] = value.root if isinstance(value, Home) else value
    return found


def test_the_docstring_tree_lists_every_location_and_only_those() -> None:
    tree = home_module.__doc__.split("::", 1)[1].split("\n\n")[1]
    # Each line: the path, the member naming it, what it holds.
    columns = [re.split(r"\s{2,}", line.lstrip("│├└─ ")) for line in tree.splitlines()]
    named = {row[1].split("(")[0] for row in columns}
    assert named - {"root"} == set(locations())


def test_every_location_is_its_own_and_under_the_root() -> None:
    paths = {
        name: Path(value.removeprefix("sqlite:///")) if isinstance(value, str) else value
        for name, value in locations().items()
    }
    assert all(path.is_relative_to(HOME.root) for path in paths.values()), paths
    assert len(set(paths.values())) == len(paths)  # no two members name the same place


def test_a_scenario_home_has_the_same_layout_inside_the_home() -> None:
    scenario = HOME.scenario("drift")
    assert scenario.root == HOME.root / "scenarios" / "drift"
    assert scenario.serving_weights == scenario.root / "rollouts" / "serving.json"


def test_the_home_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "h"))
    home = Home.from_env().ensure()
    assert home.root == (tmp_path / "h").resolve()
    assert home.logs.is_dir() and home.audit_log.parent.is_dir() and home.artifacts.is_dir()
