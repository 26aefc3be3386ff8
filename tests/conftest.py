"""Fixtures shared across test folders."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner

import registry.pipeline as pipeline
from configs.loader import load_config
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.local_postgres import LocalPostgres
from liftgate.core.local_redis import LocalRedis
from liftgate.core.local_services import ServiceUnavailable
from liftgate.sim.world import World
from registry.client import ModelRegistry
from serving.api_keys import APP, KeyStore

T = TypeVar("T")

# Run by hand in a venv of its own with the reference libraries (see its docstring).
collect_ignore = ["golden/make_golden.py"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A world, and a home holding v1 (champion), v2 (challenger) and v3 (shuffled labels).

    v1 is trained through `train_and_register`, v2 and v3 through the command line. The
    TrainingResult of each run is kept, to compare the registered model with it.
    """
    data = tmp_path_factory.mktemp("world")
    World(seed=3, n_customers=5_000).write(data, rows=40_000)
    home = Home(tmp_path_factory.mktemp("home"))
    results = []

    def keep(*args, **kwargs):
        result = train_scorer(*args, **kwargs)
        results.append(result)
        return result

    train_scorer = pipeline.train_scorer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "train_scorer", keep)
        patch.setenv(HOME_ENV, str(home.root))
        config = load_config()
        registry = ModelRegistry(home, config.models.registry)
        first = pipeline.train_and_register(data, config, registry)
        second = CliRunner().invoke(app, ["train", "--data", str(data), "--seed", "1", "--json"])
        broken = CliRunner().invoke(app, ["train", "--data", str(data), "--shuffle-labels"])
    return {
        "data": data,
        "home": home,
        "first": first,
        "second": second,
        "broken": broken,
        "results": results,
    }


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """An empty LIFTGATE_HOME of the test's own (modules that need more define their own)."""
    return Home(tmp_path)


@pytest.fixture(scope="session")
def key_headers() -> Callable[..., dict[str, str]]:
    """``key_headers(home, role="app")``: a new API key of `role` in `home`'s key store, as
    the headers a request carries it in (an app key: what tests not about auth send)."""

    def create(home: Home, role: str = APP) -> dict[str, str]:
        return {"Authorization": f"Bearer {KeyStore.for_home(home).create(role).key}"}

    return create


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for a service a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``condition`` every 10 ms until it holds (True) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """``wait_until(condition, timeout_s=5.0)``: wait for what a test waits for, not a fixed time.

    A fixed sleep is too short on a loaded machine and too long everywhere else.
    """
    return _wait_until


#: Set by .ci/run: a service a test needs (PostgreSQL, Redis) must be there; a missing one fails.
REQUIRE_SERVICES_ENV = "LIFTGATE_REQUIRE_SERVICES"


def _serve(start: Callable[[], AbstractContextManager[T]]) -> Iterator[T]:
    """A throwaway local service for the session. Without its binaries installed the test
    is skipped on a developer's machine and fails in CI, which installs them (`.ci/run` sets
    LIFTGATE_REQUIRE_SERVICES=1)."""
    try:
        server = start()
    except ServiceUnavailable as missing:
        if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
            raise
        pytest.skip(str(missing))
    with server as running:
        yield running


@pytest.fixture(scope="session")
def local_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server on 127.0.0.1 for the session (liftgate.core.local_postgres)."""
    yield from _serve(LocalPostgres)


@pytest.fixture(scope="session")
def local_redis() -> Iterator[LocalRedis]:
    """A Redis server on 127.0.0.1 for the session (liftgate.core.local_redis)."""
    yield from _serve(LocalRedis)
