# The README's two commands: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_AUTH_MODE := disabled
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_ENABLE_TELEMETRY := false
export DO_NOT_TRACK := 1

.PHONY: setup demo test lint format bench clean

setup: $(STAMP)
	@command -v redis-server >/dev/null || { sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/liftgate demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	-$(BIN)/python load_tests/bench_foundation.py
	-$(BIN)/python load_tests/bench_logs.py
	-$(BIN)/python load_tests/bench_stats.py
	-$(BIN)/python load_tests/bench_bandits.py
	-$(BIN)/python load_tests/bench_ope_uplift.py
	-$(BIN)/python load_tests/bench_guard.py
	-$(BIN)/python load_tests/bench_drift.py
	-$(BIN)/python load_tests/bench_canary_switch.py
	-$(BIN)/python load_tests/bench_decide.py
	-$(BIN)/python load_tests/bench_auth.py
	-$(BIN)/python load_tests/bench_actions.py
	-$(BIN)/python load_tests/bench_journeys.py

clean:
	rm -rf $(VENV) .liftgate
