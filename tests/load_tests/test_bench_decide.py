"""load_tests/bench_decide.py's pure parts: the floor ratios and target checks on made-up
runs, the servers it would start, the configuration copies of its variables, the client's
CPU warning. Nothing is started or timed here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

LOAD_TESTS = Path(__file__).resolve().parents[2] / "load_tests"
sys.path.insert(0, str(LOAD_TESTS))  # the benchmark imports its harness as `harness`

import bench_decide  # noqa: E402
from harness.catalogue import config_with_actions  # noqa: E402
from harness.config_copy import config_copy, set_serving  # noqa: E402
from harness.targets import add_ratios, check_targets  # noqa: E402

from configs.loader import load_config  # noqa: E402


def run(name: str, clients: int, rps: float, p95: float, **extra) -> dict:
    topology = "composed" if "composed" in name else "fused"
    return {
        "name": name,
        "topology": topology,
        "clients": clients,
        "fsync": "always",
        "rps": rps,
        "p95_ms": p95,
        "errors": 0,
        "rss_mb": 2000.0,
        **extra,
    }


def verdicts(checks: list[dict]) -> dict[str, bool | None]:
    return {c["target"]: c["pass"] for c in checks}


@pytest.fixture
def at_floor() -> list[dict]:
    """Every run as good as its floor: every target passes."""
    runs = [
        run("fastapi", 1, 900.0, 1.5),
        run("fastapi", 8, 1200.0, 9.0),
        run("floor", 1, 1000.0, 1.4),
        run("floor", 8, 2400.0, 6.4),
        run("ray-fused", 1, 1000.0, 1.4),
        run("ray-fused", 8, 2400.0, 6.4),
        run("floor-composed", 8, 600.0, 20.0),
        run("ray-composed", 8, 600.0, 25.0),
    ]
    add_ratios(runs)
    return runs


def by_name(runs: list[dict], name: str, clients: int) -> dict:
    return next(r for r in runs if r["name"] == name and r["clients"] == clients)


def test_each_run_is_compared_with_the_floor_of_its_topology(at_floor):
    fused = by_name(at_floor, "ray-fused", 8)
    composed = by_name(at_floor, "ray-composed", 8)
    fastapi = by_name(at_floor, "fastapi", 8)
    assert fused["floor"] == "floor"
    assert fused["ratio_rps_vs_floor"] == fused["ratio_p95_vs_floor"] == 1.0
    assert composed["floor"] == "floor-composed"
    assert composed["ratio_p95_vs_floor"] == pytest.approx(1.25)
    assert fastapi["ratio_rps_vs_floor"] == pytest.approx(0.5)
    assert fused["ratio_p95_vs_fastapi"] == pytest.approx(0.71)


def test_a_run_without_its_floor_has_no_ratio_and_its_targets_are_not_judged():
    runs = [run("ray-fused", 8, 2000.0, 6.0), run("ray-fused", 1, 900.0, 1.4)]
    add_ratios(runs)
    assert runs[0]["floor"] is None and runs[0]["ratio_rps_vs_floor"] is None
    checks = verdicts(check_targets(runs))
    assert checks["ray-fused, 8 clients: req/s ÷ floor req/s >="] is None
    assert checks["ray-fused, 1 client: p95 ÷ floor p95 <="] is None
    assert checks["ray-fused, 8 clients: errors =="] is True


def test_ratios_are_taken_at_the_same_clients_and_fsync_policy():
    runs = [
        run("floor", 8, 2000.0, 6.0),
        {**run("floor", 8, 1000.0, 12.0), "fsync": "off"},
        {**run("ray-fused", 8, 1000.0, 12.0), "fsync": "off"},
        run("ray-fused", 1, 900.0, 1.4),
    ]
    add_ratios(runs)
    assert runs[2]["ratio_rps_vs_floor"] == 1.0
    assert runs[3]["floor"] is None  # no floor at 1 client


def test_every_target_passes_at_the_floor(at_floor):
    checks = check_targets(at_floor)
    assert [c["target"] for c in checks] == [
        "ray-fused, 8 clients: req/s ÷ floor req/s >=",
        "ray-fused, 8 clients: p95 ÷ floor p95 <=",
        "ray-fused, 8 clients: errors ==",
        "ray-fused, 1 client: p95 ÷ floor p95 <=",
        "ray-composed, 8 clients: req/s ÷ floor-composed req/s >=",
        "ray-fused: whole-service RSS MB <=",
        "ray-composed: whole-service RSS MB <=",
    ]
    assert all(c["pass"] for c in checks)


@pytest.mark.parametrize(
    ("name", "clients", "change", "target"),
    [
        ("ray-fused", 8, {"rps": 2200.0}, "ray-fused, 8 clients: req/s ÷ floor req/s >="),
        ("ray-fused", 8, {"p95_ms": 6.8}, "ray-fused, 8 clients: p95 ÷ floor p95 <="),
        ("ray-fused", 8, {"errors": 1}, "ray-fused, 8 clients: errors =="),
        ("ray-fused", 1, {"p95_ms": 1.5}, "ray-fused, 1 client: p95 ÷ floor p95 <="),
        (
            "ray-composed",
            8,
            {"rps": 530.0},
            "ray-composed, 8 clients: req/s ÷ floor-composed req/s >=",
        ),
        ("ray-composed", 8, {"rss_mb": 3100.0}, "ray-composed: whole-service RSS MB <="),
    ],
)
def test_a_run_past_its_limit_is_the_one_miss(at_floor, name, clients, change, target):
    by_name(at_floor, name, clients).update(change)
    add_ratios(at_floor)
    missed = [t for t, ok in verdicts(check_targets(at_floor)).items() if not ok]
    assert missed == [target]


def test_the_limits_themselves_pass(at_floor):
    by_name(at_floor, "ray-fused", 8).update(rps=2280.0, p95_ms=6.72)  # 0.95× and 1.05×
    by_name(at_floor, "ray-composed", 8).update(rps=540.0)  # 0.9×
    add_ratios(at_floor)
    assert all(c["pass"] for c in check_targets(at_floor))


def test_core_targets_and_a_core_that_gave_nothing():
    core = [
        {"candidates": 5, "mean_us": 90.0, "p50_us": 80.0, "p99_us": 260.0, "fsync": "off"},
        {"candidates": 20, "mean_us": 150.0, "p50_us": 140.0, "p99_us": 300.0, "fsync": "off"},
        {"candidates": 100, "mean_us": 399.0, "p50_us": 380.0, "p99_us": 700.0, "fsync": "off"},
    ]
    assert verdicts(check_targets([], core)) == {
        "core, 5 candidates: mean µs <=": True,
        "core, 5 candidates: p99 µs <=": False,
        "core, 100 candidates: mean µs <=": True,
    }
    assert not any(c["pass"] for c in check_targets([], []))  # it ran, and gave no row
    assert check_targets([], None) == []  # not measured (--no-core)


def test_growth_rows_are_held_to_the_memory_limit():
    growth = [{"rss_mb": 2000.0}, {"rss_mb": 3200.0}]
    [check] = check_targets([], None, growth)
    assert (check["target"], check["value"], check["pass"]) == (
        "growth: whole-service RSS MB <=",
        3200.0,
        False,
    )


def test_hop_cost_is_per_hop_at_one_client():
    runs = [
        {"name": "floor", "clients": 1, "mean_ms": 1.0, "server_cpu_ms_per_req": 1.0},
        {"name": "floor-composed", "clients": 1, "mean_ms": 7.0, "server_cpu_ms_per_req": 5.0},
        {"name": "floor-composed", "clients": 8, "mean_ms": 70.0, "server_cpu_ms_per_req": 9.0},
    ]
    assert bench_decide.hop_cost(runs) == {"latency_ms": 3.0, "server_cpu_ms": 2.0}
    assert bench_decide.hop_cost(runs[:1]) is None


def test_a_client_above_its_share_of_the_machine_is_warned_about():
    runs = [
        {"name": "floor", "clients": 8, "client_cores": 0.8, "client_machine_pct": 40.0},
        {"name": "ray-fused", "clients": 8, "client_cores": 0.2, "client_machine_pct": 10.0},
    ]
    [warning] = bench_decide.busy_clients(runs)
    assert "40.0 %" in warning and "floor at 8" in warning


def test_the_servers_of_the_default_run_in_order(tmp_path):
    config = load_config()
    names = [*bench_decide.DEFAULT_SETUPS, "floor-plain"]
    servers = bench_decide.make_servers(tmp_path, tmp_path / "run", 18100, names, config)
    assert [(s.name, server.port) for s, server in servers] == [
        ("fastapi", 18100),
        ("floor", 18101),
        ("ray-fused", 18102),
        ("floor-composed", 18103),
        ("ray-composed", 18104),
        ("floor-plain", 18105),
    ]
    commands = {s.name: server.command for s, server in servers}
    replicas = ["--replicas", str(config.serving.replicas)]
    cpus = ["--replica-cpus", str(config.serving.replica_cpus)]
    for name, topology in (("floor", "F"), ("floor-composed", "C3")):
        command = " ".join(commands[name])
        assert f"run_serve.py {topology} " in command
        assert " ".join(replicas) in command and " ".join(cpus) in command
    assert commands["ray-composed"][-2:] == ["--topology", "composed"]
    assert "plain_app:app" in commands["floor-plain"]
    ray = {s.name for s, server in servers if server.ray_temp}
    assert ray == {"floor", "ray-fused", "floor-composed", "ray-composed"}


def test_a_config_copy_merges_serving_settings(tmp_path):
    source = load_config().directory
    copy = config_copy(tmp_path, source, "replicas-1", {"replicas": 1})
    set_serving(copy, {"decision_log": {"fsync": "off"}})
    serving = load_config(copy).serving
    configured = load_config(source).serving
    assert (serving.replicas, serving.decision_log.fsync) == (1, "off")
    assert serving.decision_log.max_rows == configured.decision_log.max_rows
    assert serving.topology == configured.topology


def test_catalogue_copies_keep_each_channel_in_turn(tmp_path):
    source = load_config().directory
    configured = load_config(source).actions.actions
    actions = load_config(config_with_actions(tmp_path, source, 20)).actions.actions
    assert [a.channel for a in actions] == [
        configured[k % len(configured)].channel for k in range(20)
    ]
    assert len({a.id for a in actions}) == 20
