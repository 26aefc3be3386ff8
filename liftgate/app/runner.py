"""Start and stop the Ray Serve application on this machine (`liftgate serve` / `stop`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from configs.loader import LiftgateConfig, config_digest
from liftgate.core import audit
from liftgate.core.errors import BAD_INPUT, CHECK_FAILED, InputError, LiftgateError
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.jsonstate import read_json, write_json

# Ray on one box: loopback only, no token auth, no usage report (see README: Serving).
BASE_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
}

#: How long a stopping service waits for the delivery worker's round to end. A round cut
#: short loses nothing: its leased entries are delivered again once the lease runs out.
DELIVERY_STOP_S = 5.0
#: How much longer `serve --detach` waits than the service does for itself: the time the
#: service takes to find why it is not ready and to say it in serve.log.
DIAGNOSIS_S = 60.0


def ray_env(config: LiftgateConfig) -> dict[str, str]:
    from serving.ray_app import serve_mode_env

    return {**BASE_ENV, **serve_mode_env(config.serving.mode)}


def serve_document(
    config: LiftgateConfig, home: Home, host: str, port: int, topology: str, user_config: dict
) -> dict:
    """The Serve config `liftgate serve` deploys, and `--export-config` writes: the
    application with the rollouts' supervisor (`liftgate.app.serve_app`)."""
    from liftgate.app.serve_app import IMPORT_PATH
    from serving.ray_app import deploy_config

    return deploy_config(
        config.serving,
        str(config.directory),
        str(home.root),
        host,
        port,
        topology,
        user_config,
        import_path=IMPORT_PATH,
    )


def ray_temp_dir(home: Home, port: int) -> str:
    """Ray's socket paths must stay short (AF_UNIX limit): /tmp/lg-<hash>, 18 characters."""
    digest = hashlib.sha1(f"{home.root}:{port}".encode()).hexdigest()[:8]
    return f"/tmp/lg-{digest}"


class ServiceStartError(LiftgateError, RuntimeError):
    """The application did not come up; the message holds the tail of its log."""


def wait_ready(url: str, timeout_s: float, alive=lambda: True) -> dict:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline and alive():
        try:
            response = httpx.get(f"{url}/readyz", timeout=2.0)
            last = response.json()
            if response.status_code == 200:
                return last
        except (httpx.HTTPError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"{url}/readyz not ready after {timeout_s:.0f} s (last answer: {last})")


#: The audit record of a configuration that `liftgate serve` loaded.
CONFIG_LOADED = "config_loaded"


def audit_config(config: LiftgateConfig, home: Home) -> dict | None:
    """Append a `config_loaded` record with the configuration's digest if it differs from
    the last one recorded (None: unchanged, nothing appended)."""
    digest = config_digest(config.directory)
    last = audit.last(home.audit_log, CONFIG_LOADED)
    previous = last and last.get("digest")
    if previous == digest:
        return None
    return audit.append(
        home.audit_log,
        CONFIG_LOADED,
        directory=str(config.directory),
        digest=digest,
        previous_digest=previous,
    )


def serve_foreground(
    config: LiftgateConfig,
    home: Home,
    host: str,
    port: int,
    topology: str,
    ready_timeout_s: float = 180.0,
) -> None:
    """Run the application until SIGTERM/SIGINT, then shut Serve and Ray down cleanly."""
    from serving.access import OFF_WARNING, auth_enabled

    # Before Ray starts: a bad LIFTGATE_AUTH is an InputError (exit 2) naming it. The
    # replicas inherit this environment and decide the same.
    auth = auth_enabled(config.serving.auth, os.environ)
    if not auth:
        rule = "!" * 88
        print(f"{rule}\nWARNING: {OFF_WARNING}\n{rule}", file=sys.stderr, flush=True)
    os.environ.update(ray_env(config))
    import ray
    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    from liftgate.app.rollout_supervisor import WeightsFollower
    from serving.ray_app import canary_user_config

    stop = threading.Event()
    stop_on_signals(stop)
    home.ensure()
    audit_config(config, home)
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=ray_temp_dir(home, port),
        )
        # ray.init replaced our handlers: its own SIGTERM handler exits with status 15, and
        # its core worker's C++ failure handler writes SIGTERM "stack frames" to the log
        # first. A `liftgate stop` is a normal stop: take SIGTERM back.
        stop_on_signals(stop)
        # The cluster-scoped part of the document, as `serve deploy` would start Serve.
        cluster = serve_document(config, home, host, port, topology, canary_user_config(None, 0))
        serve.start(
            proxy_location=cluster["proxy_location"],
            http_options=cluster["http_options"],
            controller_options=cluster["controller_options"],
        )

        def deploy(split, revision: int) -> None:
            user_config = canary_user_config(split, revision)
            document = serve_document(config, home, host, port, topology, user_config)
            # What `serve deploy` sends through the dashboard (off here), sent directly.
            _get_global_client().deploy_apps(ServeDeploySchema.model_validate(document))

        # The file's split from the start; then the rollouts' supervisor, which the
        # application's builder starts, follows the file and runs the guard (as it does on
        # a cluster without this driver: liftgate/app/rollout_supervisor.py).
        WeightsFollower(home, deploy).start()
        url = f"http://{host}:{port}"
        try:
            wait_ready(url, ready_timeout_s, alive=lambda: not stop.is_set())
        except TimeoutError as exc:
            if stop.is_set():  # stopped while starting: a normal stop
                print("liftgate stopped before it was ready", flush=True)
                return
            raise not_ready(config, home, exc) from None
        write_json(home.service_state, {"pid": os.getpid(), "url": url, "topology": topology})
        keys = "API keys required" if auth else "AUTH OFF: no keys asked"
        print(
            f"liftgate serving on {url} ({topology}; {keys}); stop with `liftgate stop`",
            flush=True,
        )
        start_housekeeping(config, home, stop)
        delivery = start_delivery(config, home, stop) if config.serving.actions.worker else None
        while not stop.wait(1.0):  # timed: the signal handlers run between the waits
            pass
        if delivery is not None:  # its round ends and its action log is flushed
            delivery.join(DELIVERY_STOP_S)
    finally:
        home.service_state.unlink(missing_ok=True)
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    print("liftgate stopped: Serve and Ray shut down", flush=True)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM (`liftgate stop`) and SIGINT (Ctrl-C) set ``stop``: the serve loop ends and
    shuts Serve down, and the process exits 0."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def start_delivery(config: LiftgateConfig, home: Home, stop: threading.Event) -> threading.Thread:
    """The outbox worker as a background task of the application (liftgate/governance/
    outbox.py): it delivers committed actions until `stop`."""
    from liftgate.governance.outbox import delivery_worker

    def deliver() -> None:
        with delivery_worker(config, home) as worker:
            worker.run(stop, lambda done: print(f"delivery: {done}", flush=True))

    thread = threading.Thread(target=deliver, daemon=True, name="delivery")
    thread.start()
    return thread


def start_housekeeping(
    config: LiftgateConfig, home: Home, stop: threading.Event
) -> threading.Thread:
    """At start and daily: the offers no commit can use are pruned, and the logs' retention
    applied if `serving.privacy.retention_days` is set (liftgate/app/privacy.py)."""
    from liftgate.app.privacy import housekeeping_loop

    days = config.serving.privacy.retention_days

    def report(deleted: list[Path]) -> None:
        if deleted:
            print(
                f"retention: deleted {len(deleted)} log partition(s) over {days} days old",
                flush=True,
            )

    thread = threading.Thread(
        target=housekeeping_loop,
        args=(home, days, config.serving.actions.max_ttl_s, stop, report),
        daemon=True,
        name="housekeeping",
    )
    thread.start()
    return thread


def serve_detached(
    home: Home, host: str, port: int, topology: str, config_dir: Path, timeout_s: float = 180.0
) -> dict:
    """Start `liftgate serve` in the background and return once /readyz says ready."""
    log_path = home.service_log
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "liftgate.app.cli.main",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--topology",
        topology,
        "--config-dir",
        str(config_dir),
    ]
    env = {**os.environ, HOME_ENV: str(home.root)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://{host}:{port}"
    try:
        # Longer than the service's own wait: its verdict (why it is not ready) comes first.
        wait_ready(url, timeout_s + DIAGNOSIS_S, alive=lambda: process.poll() is None)
    except TimeoutError as exc:
        code = process.poll()  # the service's own verdict: 2 for a missing input
        if code is None:  # it hangs without a verdict: say what /readyz said
            with log_path.open("a") as log:
                print(f"liftgate serve --detach: {exc}", file=log)
            stop_process(process.pid)
        tail = log_path.read_text(errors="replace")[-3000:]
        raise ServiceStartError(
            f"the service did not become ready; {log_path}:\n{tail}",
            exit_code=BAD_INPUT if code == BAD_INPUT else CHECK_FAILED,
        ) from None
    if process.poll() is not None:
        raise ServiceStartError(f"the service exited with {process.returncode}; see {log_path}")
    return {"pid": process.pid, "url": url, "topology": topology, "log": str(log_path)}


def not_ready(config: LiftgateConfig, home: Home, timeout: TimeoutError) -> ServiceStartError:
    """Why the service did not become ready: the last /readyz answer (in `timeout`) and the
    loader's exception, reproduced here (exit 2 when an input is missing)."""
    from serving.components import loading_problem

    problem = loading_problem(config, home)
    if problem is None:
        return ServiceStartError(f"{timeout}; the models and features load in this process")
    missing = isinstance(problem, (InputError, FileNotFoundError))
    return ServiceStartError(
        f"{timeout}; loading fails: {type(problem).__name__}: {problem}",
        exit_code=BAD_INPUT if missing else CHECK_FAILED,
    )


def stop_process(pid: int, timeout_s: float = 90.0) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # Our own child stays a zombie (and answers kill 0) until it is reaped.
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.25)
    # Ray's agents can outlive the driver (PPID 1, ignoring SIGTERM), and Ray puts replicas
    # and HAProxy in process groups of their own; all stay in the driver's session (it was
    # started with start_new_session), so end every process of that session.
    for member in session_members(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)
    return True


def session_members(session_id: int, proc: Path = Path("/proc")) -> list[int]:
    """Pids of the processes whose session id is `session_id` (Linux /proc, field 6)."""
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def stop_service(home: Home) -> dict | None:
    info = read_json(home.service_state)
    if info is None:
        return None
    stop_process(info["pid"])
    home.service_state.unlink(missing_ok=True)
    return info
