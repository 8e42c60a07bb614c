"""Benchmark of demo-data generation: ``.venv/bin/python bench/bench_demo.py [--scale 25]``.

Generates ``--years`` of demo data at ``--scale`` into a fresh SQLite file, in a child process so that
its peak memory is measured on its own (the writer process and, for large runs, the producer process it
starts; a sampler in this process also records their combined resident memory). Prints a table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil


def _run(db: str, years: int, seed: int, scale: float, parallel: bool | None, out: Any) -> None:
    from narcotrack.ingest.demo import generate
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import init_store

    engine = make_engine(f"sqlite:///{db}")
    t0 = time.perf_counter()
    init_store(engine)
    t_init = time.perf_counter() - t0
    summary = generate(engine, years=years, seed=seed, scale=scale, parallel=parallel)
    engine.dispose()
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out.put({"counts": summary.counts, "elapsed": summary.elapsed_s, "init": t_init,
             "writer_mb": me.ru_maxrss / 1024, "producer_mb": kids.ru_maxrss / 1024,
             "writer_cpu": me.ru_utime + me.ru_stime, "producer_cpu": kids.ru_utime + kids.ru_stime})


def _sample(pid: int, stop: threading.Event, peak: list[float]) -> None:
    """Combined resident memory of the child and its children, sampled every 0.2 s."""
    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                peak[0] = max(peak[0], rss / 2**20)
            except psutil.Error:
                pass
            stop.wait(0.2)
    except psutil.Error:
        return


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=25.0)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", help="SQLite file to create (default: a temporary file, removed afterwards)")
    ap.add_argument("--serial", action="store_true", help="generate and write in one process")
    ap.add_argument("--quick", action="store_true", help="scale 1 instead of the default 25 (a smoke run)")
    args = ap.parse_args()
    if args.quick and args.scale == 25.0:
        args.scale = 1.0
    tmp = None
    if args.db:
        db = Path(args.db)
        if db.exists():
            print(f"{db} exists; the benchmark needs a fresh file", file=sys.stderr)
            return 2
    else:
        tmp = tempfile.TemporaryDirectory(prefix="narcotrack-bench-")
        db = Path(tmp.name) / "demo.sqlite"
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_run, args=(str(db), args.years, args.seed, args.scale,
                                          False if args.serial else None, q))
    stop, peak = threading.Event(), [0.0]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc.start()
    sampler = threading.Thread(target=_sample, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    result = q.get()
    proc.join()
    stop.set()
    wall = time.perf_counter() - t0
    if proc.exitcode:
        print(f"generation failed (exit code {proc.exitcode})", file=sys.stderr)
        return 1
    counts = result["counts"]
    size_mb = sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 2**20
    incidents, rows = counts.get("incident", 0), sum(counts.values())
    cpu = os.cpu_count()
    table = [
        ("scale / years / seed", f"{args.scale:g} / {args.years} / {args.seed}"),
        ("mode", "serial" if args.serial else "auto (producer process for >= 100k incidents)"),
        ("incidents", f"{incidents:,}"),
        ("rows, all tables", f"{rows:,}"),
        ("store init (migrate + seed), s", f"{result['init']:.1f}"),
        ("generation, s", f"{result['elapsed']:.1f}"),
        ("incidents per second", f"{incidents / result['elapsed']:,.0f}"),
        ("rows per second", f"{rows / result['elapsed']:,.0f}"),
        ("CPU time writer / producer, s", f"{result['writer_cpu']:.0f} / {result['producer_cpu']:.0f}"),
        ("load average before / after", f"{load0:.2f} / {os.getloadavg()[0]:.2f}"),
        ("peak RSS writer process, MB", f"{result['writer_mb']:.0f}"),
        ("peak RSS producer process, MB", f"{result['producer_mb']:.0f}" if not args.serial else "-"),
        ("peak RSS combined (sampled), MB", f"{peak[0]:.0f}"),
        ("SQLite file size, MB", f"{size_mb:,.0f}"),
        ("wall time incl. start-up, s", f"{wall:.1f}"),
        ("CPUs", str(cpu)),
    ]
    width = max(len(k) for k, _ in table)
    print(f"| {'measure':<{width}} | value |")
    print(f"| {'-' * width} | ----- |")
    for k, v in table:
        print(f"| {k:<{width}} | {v} |")
    print()
    print("rows per table: " + ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items())))
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
