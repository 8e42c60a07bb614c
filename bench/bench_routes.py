"""Benchmark of the route analyses: ``.venv/bin/python bench/bench_routes.py [--store PATH] [--quick]``.

Two data sets, each timed step by step (wall clock, one process):
  a. the real UNODC IDS file (208,172 seizures): ``sources.ids_seizures`` reads it, then ``flows``,
     ``corridors``, ``crossings`` and ``route_shifts`` (2012 against 2013). Target: < 5 s in all.
  b. a demo store: ``bench/out/web-sqlite-s25.sqlite`` (about a million incidents, built by
     bench_web.py) when present, else a small store generated here (scale 0.2, as the tests'
     ``demo_store``); ``tables.seizures`` reads it, then the same analyses (the last 365 days of data
     against the 365 before) and ``displacement`` for the operation with most seizures on corridors.
Prints one table; ``main()`` returns the timings as a dict (data set -> step -> seconds, plus sizes).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IDS_FILE = ROOT.parent / "shared" / "data" / "unodc" / "ids_individual_seizures_2011_2014.csv.gz"
BIG_STORE = ROOT / "bench" / "out" / "web-sqlite-s25.sqlite"
TARGET_IDS = 5.0  # seconds for the whole IDS pipeline (issue 4)
STEPS = ("read", "flows", "corridors", "crossings", "shifts", "displacement")


def timed(out: dict[str, float], step: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    value = fn()
    out[step] = time.perf_counter() - t0
    print(f"  {step}: {out[step]:.2f} s", flush=True)
    return value


def analyse(out: dict[str, Any], read: Callable[[], Any], before: Any, after: Any, operations: Any = None) -> None:
    """Time the route analyses of one data set into ``out``."""
    from narcotrack.analytics import routes

    seizures = timed(out, "read", read)
    out["rows"] = len(seizures)
    if before is None:  # the last 365 days of data against the 365 before
        import pandas as pd

        last = pd.to_datetime(seizures["occurred_on"]).max().normalize()
        day = pd.Timedelta(days=1)
        after = (last - 364 * day, last)
        before = (after[0] - 365 * day, after[0] - day)
    edges = timed(out, "flows", lambda: routes.flows(seizures))
    table = timed(out, "corridors", lambda: routes.corridors(seizures, top=20))
    timed(out, "crossings", lambda: routes.crossings(seizures))
    shifts = timed(out, "shifts", lambda: routes.route_shifts(seizures, before=before, after=after))
    out.update(edges=len(edges), corridors_on=table.attrs["seizures_on_corridors"],
               shifted=int((shifts["status"] != "steady").sum()), tested=len(shifts))
    if operations is not None and len(operations):
        import numpy as np

        ops = seizures.loc[seizures["operation_id"].notna() & (seizures["origin_country"].notna()), "operation_id"]
        if len(ops):
            op = ops.value_counts().index[0]
            try:
                timed(out, "displacement", lambda: routes.displacement(seizures, operations, op))
            except Exception as exc:  # an operation at the edge of the data: report, do not fail the bench
                print(f"  displacement skipped: {exc}", flush=True)
                out["displacement"] = np.nan
    out["total"] = sum(out.get(s, 0.0) for s in STEPS if out.get(s) == out.get(s))


def small_store(directory: Path) -> str:
    from narcotrack.ingest.demo import generate
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import init_store

    url = f"sqlite:///{directory / 'demo.sqlite'}"
    engine = make_engine(url)
    init_store(engine)
    generate(engine, years=5, seed=1, scale=0.2)
    engine.dispose()
    return url


def store_case(url: str, out: dict[str, Any]) -> None:
    from narcotrack.analytics import tables
    from narcotrack.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        operations = tables.operations(conn)
        analyse(out, lambda: tables.seizures(conn), None, None, operations)
    engine.dispose()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help=f"SQLite store to read (default {BIG_STORE} when present)")
    ap.add_argument("--quick", action="store_true", help="the small generated store even if the big one exists")
    ap.add_argument("--ids", type=Path, default=IDS_FILE, help="the UNODC IDS file")
    args = ap.parse_args(argv)
    print(f"# machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    results: dict[str, Any] = {}
    if args.ids.exists():
        from narcotrack.analytics import routes, sources

        print(f"IDS file {args.ids.name}:", flush=True)
        results["ids"] = {}
        analyse(results["ids"], lambda: sources.ids_seizures(args.ids), routes.period_bounds(2012),
                routes.period_bounds(2013))
    else:
        print(f"IDS file not found at {args.ids}: skipped", flush=True)
    store = args.store or (None if args.quick or not BIG_STORE.exists() else BIG_STORE)
    with tempfile.TemporaryDirectory() as tmp:
        if store is None:
            print("generating a small demo store (scale 0.2)...", flush=True)
            url, name = small_store(Path(tmp)), "demo store (scale 0.2)"
        else:
            url, name = f"sqlite:///{store}", f"demo store {store.name}"
        print(f"{name}:", flush=True)
        results["store"] = {"name": name}
        store_case(url, results["store"])
    print_table(results)
    return results


def print_table(results: dict[str, Any]) -> None:
    print("\n| data | rows | read s | flows s | corridors s | crossings s | shifts s | displacement s | total s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results.values():
        name = r.get("name", "UNODC IDS 2011-2014")
        cells = " | ".join(f"{r[s]:.2f}" if s in r and r[s] == r[s] else "-" for s in STEPS)
        print(f"| {name} | {r.get('rows', 0):,} | {cells} | {r.get('total', 0):.2f} |")
    if "ids" in results:
        total = results["ids"]["total"]
        met = "met" if total < TARGET_IDS else "NOT met"
        print(f"\nIDS file, read + flows + corridors + crossings + shifts: {total:.2f} s "
              f"(target < {TARGET_IDS:g} s: {met})")
    for r in results.values():
        print(f"{r.get('name', 'UNODC IDS')}: {r.get('edges', 0):,} edges, {r.get('corridors_on', 0):,} seizures on "
              f"corridors, {r.get('shifted', 0)} of {r.get('tested', 0)} corridors emerged or declined")


if __name__ == "__main__":
    main()
    sys.exit(0)
