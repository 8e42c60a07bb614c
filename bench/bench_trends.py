"""Trend benchmark: ``.venv/bin/python bench/bench_trends.py [--store PATH] [--pg-url URL]``.

Times ``narcotrack.analytics.trends.trend_query`` (monthly counts by drug x province, the issue's target
< 300 ms) on a store of about a million incidents (the SQLite file ``bench_web.py`` builds,
bench/out/web-sqlite-s25.sqlite; PostgreSQL when ``--pg-url`` is given), for the whole store and as the
demo analyst (KH-NACD, through the sharing policy):

- cold: the first call on a new connection (empty SQLite page cache; the operating system's file cache
  and PostgreSQL's shared buffers stay warm), median of ``--repeat``;
- warm: the same call again on the same connection, median of ``--repeat``;
- summary: the monthly summaries (migration 0006) read without the result cache, median of ``--repeat``:
  what every first view after a change costs, on top of recomputing the changed months;
- after a write: ``trend_query(..., cache=True)`` right after one incident with a seizure was added (and,
  the next time, removed again): the recomputation of that month plus the summary read;
- cached: ``trend_query(..., cache=True)`` again with the store unchanged (the data-version cache);
- rebuild: every month recomputed (what ``narcotrack init`` does after the upgrade, or an import of many
  months), in a transaction that is then rolled back;
- pandas: the same counts by plain pandas over the same rows (the seizure rows joined to their incidents,
  loaded with one SELECT), as load + groupby and as groupby alone, with the ratio pandas / store.

The store is left as it was: the one incident written is deleted again.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DEFAULT_STORE = ROOT / "bench" / "out" / "web-sqlite-s25.sqlite"
TARGET_MS = 300.0
BY = ("drug", "province")


def _ms(f: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = f()
    return (time.perf_counter() - t0) * 1000, value


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _principal(url: str) -> Any:
    from sqlalchemy.orm import Session

    from narcotrack.access.policy import principal_for
    from narcotrack.store.db import make_engine
    from narcotrack.store.seed import org_id

    engine = make_engine(url)
    with Session(engine) as session:
        p = principal_for(session, org_id=org_id("KH-NACD"), role="analyst")
    engine.dispose()
    return p


def time_store(url: str, visible: Any, repeat: int) -> dict[str, Any]:
    """Cold, warm, summary, after-a-write and cached trend_query times on one store, and the frame it gave."""
    from narcotrack.analytics.trends import _trend_query, trend_query
    from narcotrack.store.db import make_engine

    def call(conn: Any, cache: bool = False) -> Any:
        return functools.partial(trend_query, conn, visible, period="month", by=BY, cache=cache)

    cold: list[float] = []
    warm: list[float] = []
    from_summary: list[float] = []
    after_write: list[float] = []
    cached: list[float] = []
    frame = summary_frame = None
    for _ in range(repeat):
        engine = make_engine(url)
        with engine.connect() as conn:
            ms, frame = _ms(call(conn))
            cold.append(ms)
        engine.dispose()
    engine = make_engine(url)
    with engine.connect() as conn:
        call(conn)()
        for _ in range(repeat):
            warm.append(_ms(call(conn))[0])
        direct = functools.partial(_trend_query, conn, visible, "month", BY, None, None, False, summary=True)
        direct()
        for _ in range(repeat):
            ms, summary_frame = _ms(direct)
            from_summary.append(ms)
        conn.rollback()
        for i in range(repeat):
            _write_one(engine, add=i % 2 == 0)
            after_write.append(_ms(call(conn, cache=True))[0])
            conn.rollback()
        if repeat % 2:
            _write_one(engine, add=False)
        call(conn, cache=True)()
        for _ in range(repeat):
            cached.append(_ms(call(conn, cache=True))[0])
        plan = explain(conn)
    engine.dispose()
    return {"cold_ms": _median(cold), "warm_ms": _median(warm), "summary_ms": _median(from_summary),
            "after_write_ms": _median(after_write), "cached_ms": _median(cached), "frame": frame,
            "summary_frame": summary_frame, "plan": plan}


BENCH_REF = "bench-trends-write"


def _write_one(engine: Any, *, add: bool) -> None:
    """Add one incident with a seizure in March 2024 (``add``), or delete it again."""
    import datetime as dt

    from sqlalchemy import delete, select

    from narcotrack.store.schema import Incident, Organisation, Seizure

    with engine.begin() as conn:
        if not add:
            conn.execute(delete(Incident).where(Incident.source_ref == BENCH_REF))
            return
        org = conn.scalar(select(Organisation.id).where(Organisation.code == "KH-NACD"))
        conn.execute(Incident.__table__.insert().values(
            id="00000000-0000-7000-8000-bench0000001", occurred_on=dt.date(2024, 3, 15), province_code="KH-12",
            country="KH", reporting_org_id=org, owner_org_id=org, marking="AMBER", distribution="domestic",
            source="form", source_ref=BENCH_REF, version=1, place_text="", admin_division_text="", narrative=""))
        conn.execute(Seizure.__table__.insert().values(
            id="00000000-0000-7000-8000-bench0000002", incident_id="00000000-0000-7000-8000-bench0000001",
            drug="heroin", quantity=1.0, unit="kg", mass_kg=1.0, version=1))


def time_rebuild(url: str) -> dict[str, Any]:
    """Recompute every month of the summaries, then roll back (the store keeps its summaries)."""
    from sqlalchemy import func, select

    from narcotrack.store import summary
    from narcotrack.store.db import make_engine
    from narcotrack.store.schema import trend_month_drug, trend_month_incident

    engine = make_engine(url)
    with engine.connect() as conn:
        ms, months = _ms(lambda: summary.rebuild(conn))
        rows = conn.scalar(select(func.count()).select_from(trend_month_drug))
        incident_rows = conn.scalar(select(func.count()).select_from(trend_month_incident))
        conn.rollback()
    engine.dispose()
    return {"rebuild_ms": ms, "months": len(months), "rows": rows, "incident_rows": incident_rows}


def explain(conn: Any) -> str:
    """The plan of the seizure GROUP BY exactly as trend_query sends it (whole store)."""
    from sqlalchemy import event

    from narcotrack.analytics.trends import trend_query

    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        trend_query(conn, None, period="month", by=BY)
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    statement, params = next(s for s in seen if "FROM seizure" in s[0])
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
        return "\n".join(f"  {r[3]}" for r in rows)
    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement, params).all()
    return "\n".join(f"  {r[0]}" for r in rows)


def time_pandas(url: str) -> dict[str, Any]:
    """Plain pandas: load the seizure rows with their incident's date and province, then group."""
    import pandas as pd
    from sqlalchemy import text

    from narcotrack.store.db import make_engine

    engine = make_engine(url)
    sql = text("SELECT i.id, i.occurred_on, i.province_code, s.drug, s.mass_kg "
               "FROM seizure s JOIN incident i ON i.id = s.incident_id WHERE i.occurred_on IS NOT NULL")
    t0 = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.execute(sql).all()
    df = pd.DataFrame.from_records(rows, columns=["incident_id", "occurred_on", "province", "drug", "kg"])
    df["occurred_on"] = pd.to_datetime(df["occurred_on"])
    loaded = time.perf_counter()

    def group() -> pd.DataFrame:
        period = df["occurred_on"].dt.to_period("M").dt.start_time
        g = df.assign(period=period, province=df["province"].fillna("unknown")).groupby(["period", "drug",
                                                                                           "province"])
        return pd.DataFrame({"incidents": g["incident_id"].nunique(), "seizures": g.size(),
                             "kg": g["kg"].sum()}).reset_index()

    out = group()
    grouped = time.perf_counter()
    alone = [_ms(group)[0] for _ in range(3)]
    engine.dispose()
    return {"rows": len(df), "load_ms": (loaded - t0) * 1000, "load_group_ms": (grouped - t0) * 1000,
            "group_ms": _median(alone), "frame": out}


def _check(store: Any, pandas_frame: Any) -> str:
    """Do the store's counts equal pandas' (on the groups pandas sees, i.e. without zero-filled rows)?"""
    got = store[(store["seizures"] > 0)].set_index(["period", "drug", "province"])[["incidents", "seizures", "kg"]]
    want = pandas_frame.set_index(["period", "drug", "province"]).sort_index()
    got = got.sort_index()
    same = (got.index.equals(want.index) and (got["incidents"].to_numpy() == want["incidents"].to_numpy()).all()
            and (got["seizures"].to_numpy() == want["seizures"].to_numpy()).all()
            and abs(got["kg"] - want["kg"]).max() < 1e-6)
    return "equal" if same else "**differ**"


def run(store: Path | None = None, pg_url: str | None = None, *, repeat: int = 5) -> dict[str, Any]:
    """Benchmark the engines; returns {engine: {...}} with times in ms (bench/run.py calls this)."""
    from bench_web import machine
    from narcotrack.access.policy import visible_filter

    engines: list[tuple[str, str]] = []
    path = store or DEFAULT_STORE
    if path.exists():
        engines.append(("sqlite", f"sqlite:///{path}"))
    else:
        print(f"no SQLite store at {path}: build it with bench/bench_web.py (or pass --store)", flush=True)
    if pg_url:
        engines.append(("postgres", pg_url))
    results: dict[str, Any] = {"machine": machine()}
    print(f"# machine: {results['machine']}", flush=True)
    for name, url in engines:
        principal = _principal(url)
        res: dict[str, Any] = {}
        for who, visible in (("all", None), ("analyst", functools.partial(visible_filter, principal))):
            print(f"  {name}: trend_query as {who} ...", flush=True)
            res[who] = time_store(url, visible, repeat)
        print(f"  {name}: pandas ...", flush=True)
        res["pandas"] = time_pandas(url)
        res["check"] = _check(res["all"]["frame"], res["pandas"]["frame"])
        res["summary_check"] = _check(res["all"]["summary_frame"], res["pandas"]["frame"])
        print(f"  {name}: rebuild of the summaries ...", flush=True)
        res["rebuild"] = time_rebuild(url)
        results[name] = res
    report(results)
    return results


def report(results: dict[str, Any]) -> None:
    print(f"\nMonthly counts by drug x province (trend_query; target < {TARGET_MS:.0f} ms), median ms:\n")
    print("| engine | user | cold (base tables) | warm (base tables) | summaries | after a write | cached | groups "
          "| met (summaries)? |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, res in results.items():
        if name == "machine":
            continue
        for who in ("all", "analyst"):
            r = res[who]
            met = "yes" if r["summary_ms"] < TARGET_MS else "**no**"
            print(f"| {name} | {who} | {r['cold_ms']:.0f} | {r['warm_ms']:.0f} | {r['summary_ms']:.0f} | "
                  f"{r['after_write_ms']:.0f} | {r['cached_ms']:.1f} | {len(r['frame']):,} | {met} |")
    print("\nThe same counts by plain pandas over the same rows (whole store):\n")
    print("| engine | rows | load + groupby ms | groupby alone ms | pandas / summaries (load+group, group) "
          "| pandas / base tables (load+group, group) | same numbers (base, summaries)? |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, res in results.items():
        if name == "machine":
            continue
        p, warm, fast = res["pandas"], res["all"]["warm_ms"], res["all"]["summary_ms"]
        print(f"| {name} | {p['rows']:,} | {p['load_group_ms']:.0f} | {p['group_ms']:.0f} | "
              f"{p['load_group_ms'] / fast:.1f}x, {p['group_ms'] / fast:.1f}x | "
              f"{p['load_group_ms'] / warm:.1f}x, {p['group_ms'] / warm:.2f}x | {res['check']}, "
              f"{res['summary_check']} |")
    print("\nRebuilding the summaries (every month; rolled back):\n")
    print("| engine | months | rows drug / incident table | ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, res in results.items():
        if name != "machine":
            r = res["rebuild"]
            print(f"| {name} | {r['months']} | {r['rows']:,} / {r['incident_rows']:,} | {r['rebuild_ms']:.0f} |")
    for name, res in results.items():
        if name != "machine":
            print(f"\n{name} plan of the seizure GROUP BY over the base tables:\n{res['all']['plan']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--store", type=Path, help=f"SQLite store (default {DEFAULT_STORE.relative_to(ROOT)})")
    ap.add_argument("--pg-url", help="PostgreSQL store, e.g. postgresql+psycopg://postgres@127.0.0.1/narcotrack_bench")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    args = ap.parse_args(argv)
    return run(args.store, args.pg_url, repeat=args.repeat)


if __name__ == "__main__":
    main()
