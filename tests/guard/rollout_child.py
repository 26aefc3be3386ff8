"""A guard process for tests/guard/test_rollout_controller.py to kill between the serving
weights and the registry aliases (not a test module).

``LIFTGATE_HOME=HOME python tests/guard/rollout_child.py CONFIG_DIR COMMAND``: COMMAND is
``tick`` (one guard interval of the test rollout) or ``promote`` (straight to champion).
The process dies (`os._exit`, status `KILLED`) as the transition first moves an alias: its
intent is written and the weights have moved, but no alias has.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rollout_helpers import NAME

from configs.loader import load_config
from liftgate.core.home import Home
from liftgate.guard import controller

KILLED = 86


def killed(aliases: controller.RegistryAliases, target: dict) -> None:
    os._exit(KILLED)


if __name__ == "__main__":
    config_dir, command = sys.argv[1:]
    controller.RegistryAliases.apply = killed
    guard = controller.RolloutController(load_config(Path(config_dir)), Home.from_env())
    if command == "tick":
        guard.tick(NAME)
    else:
        guard.promote(NAME, full=True)
