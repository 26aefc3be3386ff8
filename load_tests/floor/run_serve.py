"""Run one floor topology on Ray Serve until SIGTERM or SIGINT, then shut Serve and Ray down:

    .venv/bin/python load_tests/floor/run_serve.py {F|C2|C3|C4} --port 8000 [--replicas 1]
        [--replica-cpus 0.25] [--ray-temp DIR]

The Serve mode comes from the environment, as for ``liftgate serve``
(``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``, ``RAY_SERVE_ENABLE_HA_PROXY=1``, ...; see
RAY_SERVE_MODES.md beside this file). Ray gets 2 CPUs, no dashboard, no logs streamed to
this driver. POST /score and GET /readyz on ``--port`` (the proxy, or HAProxy).
"""

from __future__ import annotations

import argparse
import signal
import threading

import ray
from ray import serve
from serve_apps import TOPOLOGIES, build  # load_tests/floor/, beside this file

HOST = "127.0.0.1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topology", choices=TOPOLOGIES)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--replicas", type=int, default=1, help="ingress replicas")
    parser.add_argument("--replica-cpus", type=float, default=0.25)
    parser.add_argument("--ray-temp", help="Ray's temp dir (keep it short: AF_UNIX paths)")
    args = parser.parse_args()
    stop = threading.Event()
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=args.ray_temp)
        for sig in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which sets its own
            signal.signal(sig, lambda *_: stop.set())
        serve.start(http_options={"host": HOST, "port": args.port})
        app = build(args.topology, args.replicas, args.replica_cpus)
        serve.run(app, name="floor", route_prefix="/")
        print(f"floor {args.topology} serving on http://{HOST}:{args.port}", flush=True)
        stop.wait()
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
