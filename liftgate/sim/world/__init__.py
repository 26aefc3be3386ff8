"""The synthetic marketing world every test, demo and benchmark runs on."""

from liftgate.sim.world.stock import stock_home
from liftgate.sim.world.world import SCENARIOS, Timeline, World

__all__ = ["SCENARIOS", "Timeline", "World", "stock_home"]
