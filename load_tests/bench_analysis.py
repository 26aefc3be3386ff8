"""Analysis beyond one machine's memory: rows/s and peak memory of `liftgate analyze`'s
engines (memory, local, ray) on the same generated unit table, in the same run.

Run: ``flock /tmp/liftgate-ray.lock .venv/bin/python load_tests/bench_analysis.py
[--rows 100000000] [--data DIR] [--engines memory,local,ray] [--json]``

The unit table (arm, converted, revenue, pre_revenue; bench_stats' generator) is written to
``--data`` (default ``/tmp/lg-bench-analysis/<rows>``) in files of ``--file-rows`` rows,
one chunk at a time, so generating it fits in memory; it is reused when present (a
``_rows`` marker says it is complete) and never committed.

Each engine runs as its own ``liftgate analyze ... --engine E --json`` process (a binomial,
and a mean with a CUPED covariate), so that one's memory does not hide another's:

- **wall s / rows/s**: the whole command, Python start and (for ray) Ray's start and
  shutdown included;
- **max RSS**: the largest single process, from ``os.wait4`` (the command and every
  descendant it waited for);
- **peak tree PSS**: the sum of the proportional set size of the command's process tree
  (for ray: raylet, GCS and every worker, which are its descendants), sampled every 0.25 s;
  PSS counts the shared Ray object store once, where summing RSS would count it per process.

The memory engine is the baseline: ``x memory`` is an engine's rows/s over it, and ``max
rel diff`` the largest relative difference of any number of its JSON from the baseline's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stats import write_units  # noqa: E402
from harness.tables import fmt, print_table, say  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIFTGATE = ROOT / ".venv" / "bin" / "liftgate"
ENGINES = ("memory", "local", "ray")
ANALYZE = [
    "--arm-col", "arm", "--control", "control",
    "--metric", "converted:binomial", "--metric", "revenue:mean",
    "--covariate", "revenue=pre_revenue", "--json",
]  # fmt: skip
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def ensure_data(directory: Path, rows: int, file_rows: int) -> float:
    """Write the table unless a complete one is there; the seconds it took (0 if reused)."""
    marker = directory / "_rows"
    if marker.exists() and marker.read_text().strip() == str(rows):
        say(f"reusing {rows:,} rows in {directory}")
        return 0.0
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("part-*.parquet"):
        old.unlink()
    started = time.perf_counter()
    for i, start in enumerate(range(0, rows, file_rows)):
        n = min(file_rows, rows - start)
        write_units(directory / f"part-{i:05d}.parquet", n, seed=i)
        say(f"  wrote {start + n:,} / {rows:,} rows")
    marker.write_text(str(rows))
    return time.perf_counter() - started


class TreeSampler(threading.Thread):
    """Peak summed PSS of a process and its descendants, every `every_s`."""

    def __init__(self, pid: int, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak = pid, every_s, 0
        self.done = threading.Event()

    def sample(self) -> int:
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += p.memory_full_info().pss
        return total

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, self.sample())
            self.done.wait(self.every_s)


def run_engine(engine: str, data: Path, home: Path) -> dict[str, Any]:
    env = {**os.environ, **RAY_ENV, "LIFTGATE_HOME": str(home)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(LIFTGATE), "analyze", str(data), *ANALYZE, "--engine", engine],
            stdout=out,
            stderr=err,
            env=env,
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(
                f"{engine}: exit {process.returncode}: {err.read().decode()[-2000:]}"
            )
        document = json.loads(out.read())
    return {
        "engine": engine,
        "wall_s": wall,
        "max_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "tree_pss_mb": sampler.peak / 2**20,
        "document": document,
    }


def numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    if isinstance(value, float):
        return [value]
    return []


def max_rel_diff(got: dict, want: dict) -> float:
    pairs = zip(numbers(got), numbers(want), strict=True)
    return max(
        (abs(g - w) / max(abs(w), 1e-300) for g, w in pairs if g != w and math.isfinite(w)),
        default=0.0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--file-rows", type=int, default=5_000_000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engines = args.engines.split(",")
    if "memory" not in engines:
        engines.insert(0, "memory")  # the baseline
    data = args.data or Path("/tmp/lg-bench-analysis") / str(args.rows)
    generated_s = ensure_data(data, args.rows, args.file_rows)
    size_mb = sum(p.stat().st_size for p in data.glob("*.parquet")) / 2**20
    home = Path(tempfile.mkdtemp(prefix="lg-bench-"))
    runs = []
    for engine in engines:
        say(f"engine {engine} ...")
        runs.append(run_engine(engine, data, home))
    baseline = runs[0]
    rows = []
    for r in runs:
        rate = args.rows / r["wall_s"]
        r["rows_per_s"] = rate
        r["x_memory"] = rate / (args.rows / baseline["wall_s"])
        r["max_rel_diff"] = max_rel_diff(r["document"], baseline["document"])
        rows.append(
            [
                r["engine"],
                f"{args.rows:,}",
                fmt(r["wall_s"], 1),
                f"{rate:,.0f}",
                fmt(r["x_memory"], 2),
                f"{r['max_rss_mb']:,.0f}",
                f"{r['tree_pss_mb']:,.0f}",
                f"{r['max_rel_diff']:.1e}",
            ]
        )
    if args.json:
        for r in runs:
            del r["document"]
        print(json.dumps({"rows": args.rows, "parquet_mb": size_mb, "runs": runs}, indent=2))
        return 0
    print(
        f"{args.rows:,} units, {size_mb:,.0f} MB of Parquet in {data} "
        f"({'reused' if not generated_s else f'generated in {generated_s:.0f} s'}); "
        f"{os.cpu_count()} cores"
    )
    header = ["engine", "rows", "wall s", "rows/s", "x memory", "max RSS MB",
              "peak tree PSS MB", "max rel diff"]  # fmt: skip
    print_table(header, rows, first_left=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
