"""Trend benchmark: ``.venv/bin/python bench/bench_trends.py [--store PATH] [--pg-url URL] [--try-summary]``.

Times ``narcotrack.analytics.trends.trend_query`` (monthly counts by drug x province, the issue's target
< 300 ms) on a store of about a million incidents (the SQLite file ``bench_web.py`` builds,
bench/out/web-sqlite-s25.sqlite; PostgreSQL when ``--pg-url`` is given), for the whole store and as the
demo analyst (KH-NACD, through the sharing policy):

- cold: the first call on a new connection (empty SQLite page cache; the operating system's file cache
  and PostgreSQL's shared buffers stay warm), median of ``--repeat``;
- warm: the same call again on the same connection, median of ``--repeat``;
- cached: ``trend_query(..., cache=True)`` after its first call (the data-version cache of store.figures);
- pandas: the same counts by plain pandas over the same rows (the seizure rows joined to their incidents,
  loaded with one SELECT), as load + groupby and as groupby alone, with the ratio pandas / store (warm).

``--try-summary`` also measures, without changing the store (TEMP tables on the benchmark's own
connection), the monthly summary tables proposed in docs/analytics-trends.md: build time, rows, the cost
of recomputing one month and the query on them. The store itself is only read.
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
SUMMARY_SQL = {
    "sqlite": "substr(i.occurred_on, 1, 7)",
    "postgresql": "to_char(i.occurred_on, 'YYYY-MM')",
}
SHARING = ("owner_org_id", "marking", "distribution", "sharing_group_id")
SUMMARY_COLUMNS = ("province_code", "country", "reporting_org_id", "drug", *SHARING)  # trend_month_drug
INCIDENT_COLUMNS = ("province_code", "country", "reporting_org_id", *SHARING)  # trend_month_incident


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
    """Cold, warm and cached trend_query times on one store, and the frame it gave."""
    from narcotrack.analytics.trends import trend_query
    from narcotrack.store.db import make_engine

    def call(conn: Any, cache: bool = False) -> Any:
        return functools.partial(trend_query, conn, visible, period="month", by=BY, cache=cache)

    cold: list[float] = []
    warm: list[float] = []
    cached: list[float] = []
    frame = None
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
        first = _ms(call(conn, cache=True))[0]
        for _ in range(repeat):
            cached.append(_ms(call(conn, cache=True))[0])
        plan = explain(conn)
    engine.dispose()
    return {"cold_ms": _median(cold), "warm_ms": _median(warm), "cached_first_ms": first,
            "cached_ms": _median(cached), "frame": frame, "plan": plan}


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


def try_summary(url: str, principal: Any, repeat: int) -> dict[str, Any]:
    """Build the proposed monthly summary tables as TEMP tables and time the trend query on them."""
    from sqlalchemy import column, func, select, table

    from narcotrack.access.policy import visible_filter
    from narcotrack.store.db import make_engine

    engine = make_engine(url)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        month = SUMMARY_SQL[conn.dialect.name]
        cols = ", ".join(("s." if c == "drug" else "i.") + c for c in SUMMARY_COLUMNS)
        build = (f"CREATE TEMP TABLE trend_month_drug AS SELECT {month} AS month, {cols}, "
                 "count(DISTINCT s.incident_id) AS incidents, count(*) AS seizures, sum(s.mass_kg) AS kg "
                 "FROM seizure s JOIN incident i ON i.id = s.incident_id WHERE i.occurred_on IS NOT NULL "
                 f"GROUP BY {month}, {cols}")
        out["build_ms"] = _ms(functools.partial(conn.exec_driver_sql, build))[0]
        icols = ", ".join("i." + c for c in INCIDENT_COLUMNS)
        ibuild = (f"CREATE TEMP TABLE trend_month_incident AS SELECT {month} AS month, {icols}, count(*) AS incidents "
                  f"FROM incident i WHERE i.occurred_on IS NOT NULL GROUP BY {month}, {icols}")
        out["incident_build_ms"] = _ms(functools.partial(conn.exec_driver_sql, ibuild))[0]
        index = ("CREATE INDEX ix_trend_month_drug ON trend_month_drug (month, drug, province_code, owner_org_id, "
                 "marking, distribution, sharing_group_id, incidents, seizures, kg)")
        out["index_ms"] = _ms(functools.partial(conn.exec_driver_sql, index))[0]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE trend_month_drug")
            conn.exec_driver_sql("ANALYZE trend_month_incident")
        out["rows"] = conn.exec_driver_sql("SELECT count(*) FROM trend_month_drug").scalar()
        out["incident_rows"] = conn.exec_driver_sql("SELECT count(*) FROM trend_month_incident").scalar()
        one = (f"SELECT {month}, {cols}, count(DISTINCT s.incident_id), count(*), sum(s.mass_kg) FROM incident i "
               "JOIN seizure s ON s.incident_id = i.id WHERE i.occurred_on >= '2024-03-01' "
               f"AND i.occurred_on < '2024-04-01' GROUP BY {month}, {cols}")
        out["one_month_ms"] = _median([_ms(lambda: conn.exec_driver_sql(one).all())[0] for _ in range(repeat)])
        t = table("trend_month_drug", *(column(c) for c in ("month", *SUMMARY_COLUMNS, "incidents", "seizures",
                                                              "kg")))
        for name, visible in (("all", None), ("analyst", functools.partial(visible_filter, principal))):
            q = select(t.c.month, t.c.drug, t.c.province_code, func.sum(t.c.incidents), func.sum(t.c.seizures),
                       func.sum(t.c.kg)).group_by(t.c.month, t.c.drug, t.c.province_code)
            if visible is not None:
                q = q.where(visible(t))

            def fetch(q: Any = q) -> Any:
                return conn.execute(q).all()

            fetch()
            out[f"{name}_ms"] = _median([_ms(fetch)[0] for _ in range(repeat)])
        conn.rollback()
    engine.dispose()
    return out


def _check(store: Any, pandas_frame: Any) -> str:
    """Do the store's counts equal pandas' (on the groups pandas sees, i.e. without zero-filled rows)?"""
    got = store[(store["seizures"] > 0)].set_index(["period", "drug", "province"])[["incidents", "seizures", "kg"]]
    want = pandas_frame.set_index(["period", "drug", "province"]).sort_index()
    got = got.sort_index()
    same = (got.index.equals(want.index) and (got["incidents"].to_numpy() == want["incidents"].to_numpy()).all()
            and (got["seizures"].to_numpy() == want["seizures"].to_numpy()).all()
            and abs(got["kg"] - want["kg"]).max() < 1e-6)
    return "equal" if same else "**differ**"


def run(store: Path | None = None, pg_url: str | None = None, *, repeat: int = 5,
        summary: bool = False) -> dict[str, Any]:
    """Benchmark the engines; returns {engine: {...}} with times in ms (bench/run.py calls this)."""
    from bench_web import machine
    from narcotrack.access.policy import visible_filter

    engines: list[tuple[str, str]] = []
    path = store or DEFAULT_STORE
    if path.exists():
        engines.append(("sqlite", f"sqlite:///{path}"))  # only read
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
        if summary:
            print(f"  {name}: summary table experiment ...", flush=True)
            res["summary"] = try_summary(url, principal, repeat)
        results[name] = res
    report(results)
    return results


def report(results: dict[str, Any]) -> None:
    print(f"\nMonthly counts by drug x province (trend_query; target < {TARGET_MS:.0f} ms), median ms:\n")
    print("| engine | user | cold | warm | cached (first / then) | groups | met (warm)? |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for name, res in results.items():
        if name == "machine":
            continue
        for who in ("all", "analyst"):
            r = res[who]
            met = "yes" if r["warm_ms"] < TARGET_MS else "**no**"
            print(f"| {name} | {who} | {r['cold_ms']:.0f} | {r['warm_ms']:.0f} | {r['cached_first_ms']:.0f} / "
                  f"{r['cached_ms']:.1f} | {len(r['frame']):,} | {met} |")
    print("\nThe same counts by plain pandas over the same rows (whole store):\n")
    print("| engine | rows | load + groupby ms | groupby alone ms | pandas / store (load+group, group) | same "
          "numbers? |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, res in results.items():
        if name == "machine":
            continue
        p, warm = res["pandas"], res["all"]["warm_ms"]
        print(f"| {name} | {p['rows']:,} | {p['load_group_ms']:.0f} | {p['group_ms']:.0f} | "
              f"{p['load_group_ms'] / warm:.1f}x, {p['group_ms'] / warm:.2f}x | {res['check']} |")
    summaries = {n: r["summary"] for n, r in results.items() if n != "machine" and "summary" in r}
    if summaries:
        print("\nProposed monthly summary tables (TEMP tables of the benchmark's own connection; ms):\n")
        print("| engine | build drug / incident table | index | rows drug / incident table | recompute one month "
              "| drug x province, all | drug x province, analyst |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, s in summaries.items():
            print(f"| {name} | {s['build_ms']:.0f} / {s['incident_build_ms']:.0f} | {s['index_ms']:.0f} | "
                  f"{s['rows']:,} / {s['incident_rows']:,} | {s['one_month_ms']:.0f} | {s['all_ms']:.0f} | "
                  f"{s['analyst_ms']:.0f} |")
    for name, res in results.items():
        if name != "machine":
            print(f"\n{name} plan of the seizure GROUP BY:\n{res['all']['plan']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--store", type=Path, help=f"SQLite store (default {DEFAULT_STORE.relative_to(ROOT)})")
    ap.add_argument("--pg-url", help="PostgreSQL store, e.g. postgresql+psycopg://postgres@127.0.0.1/narcotrack_bench")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    ap.add_argument("--try-summary", action="store_true", help="also time the proposed summary table (TEMP)")
    args = ap.parse_args(argv)
    return run(args.store, args.pg_url, repeat=args.repeat, summary=args.try_summary)


if __name__ == "__main__":
    main()
