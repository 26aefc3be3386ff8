"""A Ray of its own on this machine for one batch job (Ray Data), shut down after it.

Loopback only, no token auth, no usage report (`runner.BASE_ENV`), no dashboard, and a short
temp dir of its own per process (`runner.ray_temp_dir`) so that it never meets a running
`liftgate serve`. Ray is imported only when a job starts one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from liftgate.app.runner import BASE_ENV, ray_temp_dir
from liftgate.core.home import Home


@contextmanager
def local_ray(home: Home, num_cpus: int = 2, progress: bool = False) -> Iterator[None]:
    """Ray started for the block and shut down after it, even on error; Ray Data's progress
    bars on stderr when `progress`."""
    os.environ.update(BASE_ENV)
    import ray
    import ray.data

    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=ray_temp_dir(home, os.getpid()),
    )
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.print_on_execution_start = False
        yield
    finally:
        ray.shutdown()
