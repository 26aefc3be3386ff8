"""load_tests/bench_features.py's pure parts: each decision run's online store settings (a
configuration copy that loads), the decisions table. Nothing is started or timed here."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

LOAD_TESTS = Path(__file__).resolve().parents[2] / "load_tests"
sys.path.insert(0, str(LOAD_TESTS))  # the benchmark imports its harness as `harness`

from bench_features import BASELINE, config_dir_env, print_decisions, store_settings  # noqa: E402
from harness.config_copy import config_copy  # noqa: E402

from configs.loader import CONFIG_DIR_ENV, load_config  # noqa: E402

URL = "redis://127.0.0.1:6390/1"


def test_each_store_setting_makes_a_configuration_that_loads(tmp_path) -> None:
    loaded = {
        name: load_config(
            config_copy(tmp_path, load_config().directory, str(i), {"online_store": settings})
        ).serving.online_store
        for i, (name, settings) in enumerate(store_settings(URL).items())
    }
    assert loaded[BASELINE].kind == "embedded"
    assert loaded["redis, no cache"].url == URL and loaded["redis, no cache"].cache_size == 0
    warm = loaded["redis, warm cache"]
    assert warm.kind == "redis" and warm.cache_ttl_s >= 3600 and warm.cache_size > 1_000_000


def test_the_config_directory_is_set_only_inside_the_block(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CONFIG_DIR_ENV, "/before")
    with config_dir_env(tmp_path):
        assert os.environ[CONFIG_DIR_ENV] == str(tmp_path)
    assert os.environ[CONFIG_DIR_ENV] == "/before"
    monkeypatch.delenv(CONFIG_DIR_ENV)
    with config_dir_env(tmp_path):
        pass
    assert CONFIG_DIR_ENV not in os.environ


def test_the_decisions_table_compares_each_p95_with_the_baseline(capsys) -> None:
    baseline = np.linspace(100.0, 200.0, 101)
    print_decisions([(BASELINE, baseline), ("redis, no cache", baseline + 50.0)], 1_000)
    lines = capsys.readouterr().out.strip().splitlines()
    assert "101 decisions of 1,000 customers" in lines[0]
    base, redis = lines[2].split(), lines[3].split()
    assert float(base[-1]) == 0.0
    assert abs(float(redis[-1]) - 50.0) < 1e-6
    assert abs(float(redis[-3]) - float(base[-3]) - 50.0) < 0.2  # p99, rounded to 0.1
