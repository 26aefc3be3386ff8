"""A home the real service can start on, for the end-to-end tests that run Ray Serve."""

from __future__ import annotations

from pathlib import Path

from configs.loader import load_config
from liftgate.core.home import Home
from liftgate.sim.world import World, stock_home
from registry.client import ModelRegistry
from registry.pipeline import train_and_register

CONFIG = load_config()


def served_home(root: Path) -> Home:
    """A home ready for `liftgate serve`: a world, a registered champion, the online store
    and the consent store (the world's customers, `stock_home`)."""
    home = Home(root).ensure()
    world_dir = home.worlds / "w"
    World(seed=5, n_customers=4_000).write(world_dir, rows=30_000)
    summary = train_and_register(world_dir, CONFIG, ModelRegistry(home, CONFIG.models.registry))
    assert summary["aliases"] == ["champion"]
    stock_home(home, world_dir)
    return home
