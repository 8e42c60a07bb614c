"""Run every benchmark in one go: `make bench` (or `.venv/bin/python bench/run.py`).

Each benchmark is its own script (so it can be run alone with its own options) and prints its own table;
this runner only runs them in order and stops at the first failure. Record the figures, with the date and
the machine, in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["bench_import.py", "bench_demo.py", "bench_web.py", "bench_trends.py", "bench_forecast.py",
           "bench_routes.py", "bench_stix.py", "bench_federation.py", "bench_pprl.py"]
FULL_ONLY = {"bench_trends.py"}  # needs the million-incident store that bench_web.py builds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    print(f"# narcotrack benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# machine: {platform.node()} {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}")
    for name in BENCHES:
        if args.quick and name in FULL_ONLY:
            print(f"\n## {name}\n\nskipped with --quick: it measures the million-incident store", flush=True)
            continue
        cmd = [sys.executable, str(HERE / name), *(["--quick"] if args.quick else [])]
        print(f"\n## {name}\n", flush=True)
        if subprocess.run(cmd, check=False).returncode != 0:
            print(f"{name} failed", file=sys.stderr)
            return 1
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
