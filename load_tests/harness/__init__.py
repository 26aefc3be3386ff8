"""What the serving benchmarks share (load_tests/bench_decide.py, bench_canary_switch.py).

Scripts in load_tests/ import it as ``from harness.<module> import ...`` (load_tests/ is
on ``sys.path`` when a script there runs). One concept a module:

- ``servers``: a server under test as its own process tree (start, readiness, resources,
  stop with every leftover process);
- ``replicas``: Ray Serve ingress replicas (pids, direct-ingress ports, settling after a
  start or a redeploy);
- ``probes``: plain HTTP probes (GET a path, a free port);
- ``machine``: waiting until the box is free for a measurement;
- ``usage``: CPU and memory of a server and of the box during a measured run;
- ``closed_loop``: the closed-loop load client, run as its own process;
- ``steady_load``: a steady-rate load thread that records each answer;
- ``request_mix``: the bodies of POST /v1/decide (also the locustfile's);
- ``homes``: the online store of a throw-away LIFTGATE_HOME;
- ``config_copy``: a configuration copy with settings of serving.yaml changed;
- ``fsync``, ``catalogue``: the logs' fsync policy, the number of candidates as variables;
- ``targets``: issue 14's targets as ratios to the floor, checked on a run's results;
- ``core``, ``shell``: the decision in process, and the HTTP shell around it;
- ``metrics``: the stage histogram from each replica's /metrics;
- ``stats``: percentiles and spreads;
- ``tables``: progress lines, formatted values and aligned tables.

This file imports nothing, so a script pulls in only the modules it names (the locustfile
loads the request mix and nothing else of the harness).
"""
