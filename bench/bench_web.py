"""Load benchmark of the web platform: ``.venv/bin/python bench/bench_web.py [--quick] [--seconds 20]``.

On a demo store of about a million incidents (``generate(scale=25)``; SQLite, then PostgreSQL), starts
``narcotrack serve`` in a subprocess on a free loopback port and runs the load from a second process: 20
concurrent clients (asyncio + httpx) for a bounded time per scenario, as the demo analyst (KH-NACD) and as
the Thai liaison officer (TH-ONCB), each with an API token. Scenarios: the incident list with three filters
(date range, province, drug; varied per request), the figures API and the dashboard page. Prints latency
percentiles, throughput and errors against the issue's targets, the cost of the sharing policy (liaison p50
over analyst p50), the query plan of the list query as each user and the uncached cost of the figures.

Stores are built once and reused from bench/out/ (git ignores it): a SQLite file and the PostgreSQL database
``narcotrack_bench`` (created when missing). Reusing a store applies any new migration first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/narcotrack_bench"
USERS = ("analyst", "liaison-th")  # the demo users of `narcotrack serve --demo`
SCENARIOS = (  # name, path kind, target p95 in ms
    ("list, 3 filters", "list", 100.0),
    ("figures API", "figures", 300.0),
    ("dashboard page", "home", 300.0),
)
PROVINCES = [f"KH-{n:02d}" for n in range(1, 26)]
DRUGS = [
    ["methamphetamine_crystalline"],
    ["methamphetamine_tablets"],
    ["methamphetamine_crystalline", "methamphetamine_tablets"],
    ["heroin"],
    ["ketamine"],
    ["cannabis_herb"],
    ["mdma"],
    ["happy_water"],
]
DATA_START, DATA_END = dt.date(2020, 7, 1), dt.date(2025, 6, 30)  # the demo's period (DEFAULT_END)
EXPLAIN_FILTERS = {
    "date_from": dt.date(2024, 1, 1),
    "date_to": dt.date(2024, 3, 31),
    "place": "KH-12",
    "drug": ["methamphetamine_crystalline"],
}


# Serves the application with changes outside this benchmark's reach, to measure what they would give
# (``--try touch,pool``): "touch" writes an API token's last use at most once a minute instead of on every
# request; "pool" gives the application's engine 20 + 20 connections instead of SQLAlchemy's 5 + 10.
TRY_SERVER = """
import datetime as dt, sys
import uvicorn
from sqlalchemy import select
from narcotrack.access import accounts
from narcotrack.store.db import make_engine
from narcotrack.store.schema import ApiToken, User, utcnow
from narcotrack.web import auth
from narcotrack.web.app import create_app

port, tries = int(sys.argv[1]), set(sys.argv[2].split(","))

def user_for_api_token(session, token, *, now=None):
    now = now or utcnow()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == accounts._hash(token)))
    expired = row is not None and row.expires_at and accounts._aware(row.expires_at) <= now
    if row is None or row.revoked_at is not None or expired:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.locked_at is not None:
        return None
    if row.last_used_at is None or accounts._aware(row.last_used_at) < now - dt.timedelta(minutes=1):
        row.last_used_at = now
        session.flush()
    return user

if "touch" in tries:
    auth.user_for_api_token = user_for_api_token
engine = make_engine(**({"pool_size": 20, "max_overflow": 20} if "pool" in tries else {}))
uvicorn.run(create_app(engine), host="127.0.0.1", port=port, log_level="info")
"""


# -- the load (runs in its own process) ---------------------------------------------------------------
def list_params(rng: random.Random) -> list[tuple[str, str]]:
    """A realistic list query: a period of one month to a year, a province, one drug or the two meth forms."""
    months = rng.choice((1, 1, 3, 3, 6, 12))
    total = (DATA_END.year - DATA_START.year) * 12 + DATA_END.month - DATA_START.month + 1
    first = rng.randrange(total - months + 1)
    y, m = divmod(DATA_START.month - 1 + first, 12)
    start = dt.date(DATA_START.year + y, m + 1, 1)
    y2, m2 = divmod(start.month - 1 + months, 12)
    end = dt.date(start.year + y2, m2 + 1, 1) - dt.timedelta(days=1)
    params = [
        ("date_from", start.isoformat()),
        ("date_to", end.isoformat()),
        ("place", rng.choice(PROVINCES)),
    ]
    return params + [("drug", d) for d in rng.choice(DRUGS)]


async def _client(
    http: Any, kind: str, token: str, seed: int, warm_until: float, stop_at: float, out: dict[str, Any]
) -> None:
    rng = random.Random(seed)
    headers = {"authorization": f"Bearer {token}"}
    path = {"list": "/api/v1/incidents", "figures": "/api/v1/figures", "home": "/"}[kind]
    while True:
        t0 = time.perf_counter()
        if t0 >= stop_at or out["n"] + out["errors"] >= out["max_requests"]:
            return
        params = list_params(rng) if kind == "list" else None
        try:
            resp = await http.get(path, params=params, headers=headers)
            ok = resp.status_code == 200
            items = len(resp.json()["items"]) if ok and kind == "list" else 0
        except Exception as exc:  # a timeout or a dropped connection is an error of the scenario
            ok, items = False, 0
            out["error_kinds"][type(exc).__name__] = out["error_kinds"].get(type(exc).__name__, 0) + 1
        else:
            if not ok:
                key = f"HTTP {resp.status_code}"
                out["error_kinds"][key] = out["error_kinds"].get(key, 0) + 1
        t1 = time.perf_counter()
        if out["think"]:  # a person reading the page before the next click: 0.5 to 1.5 times the mean
            await asyncio.sleep(out["think"] * rng.uniform(0.5, 1.5))
        if t0 < warm_until:
            out["warmup_errors"] += 0 if ok else 1
            continue
        if ok:
            out["n"] += 1
            out["lat"].append((t1 - t0) * 1000)
            out["items"] += items
        else:
            out["errors"] += 1


async def run_load(cfg: dict[str, Any]) -> dict[str, Any]:
    """``clients`` concurrent clients for ``warmup`` + ``seconds``; only the last ``seconds`` count."""
    import httpx

    out: dict[str, Any] = {
        "n": 0,
        "errors": 0,
        "warmup_errors": 0,
        "lat": [],
        "items": 0,
        "error_kinds": {},
        "max_requests": cfg["max_requests"],
        "think": cfg["think"],
    }
    limits = httpx.Limits(max_connections=cfg["clients"], max_keepalive_connections=cfg["clients"])
    tokens = cfg["tokens"]
    async with httpx.AsyncClient(
        base_url=cfg["base_url"], limits=limits, timeout=httpx.Timeout(30.0)
    ) as http:
        start = time.perf_counter()
        warm_until = start + cfg["warmup"]
        stop_at = warm_until + cfg["seconds"]
        await asyncio.gather(
            *(
                _client(
                    http,
                    cfg["kind"],
                    tokens[i % len(tokens)],
                    cfg["seed"] * 1000 + i,
                    warm_until,
                    stop_at,
                    out,
                )
                for i in range(cfg["clients"])
            )
        )
        out["wall"] = time.perf_counter() - warm_until
    return out


def load_worker(config_path: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    result = asyncio.run(run_load(cfg))
    result.pop("max_requests")
    result.pop("think")
    print(json.dumps(result))
    return 0


# -- stores --------------------------------------------------------------------------------------------
def build_sqlite(path: Path, scale: float) -> str:
    from narcotrack.ingest.demo import generate
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import init_store

    url = f"sqlite:///{path}"
    if path.exists():
        print(f"reusing {path}", flush=True)
    else:
        partial = path.with_name(path.name + ".partial")
        for p in path.parent.glob(partial.name + "*"):
            p.unlink()
        engine = make_engine(f"sqlite:///{partial}")
        init_store(engine)
        summary = generate(engine, years=5, seed=1, scale=scale, progress=_progress("SQLite"))
        with engine.connect() as conn:  # no ANALYZE: a deployed SQLite store has no statistics either
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        partial.rename(path)
        print(
            f"\nbuilt {path}: {summary.counts['incident']:,} incidents in {summary.elapsed_s:.0f} s",
            flush=True,
        )
    _upgrade(url)
    return url


def build_pg(url: str, scale: float, *, default: bool) -> str:
    from sqlalchemy import create_engine, func, select, text
    from sqlalchemy.engine import make_url

    from narcotrack.ingest.demo import generate
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import init_store
    from narcotrack.store.schema import Incident

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    marker = OUT / f"pg-{target.database}.done"
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
        if exists and default and not marker.exists():
            print(f"dropping {target.database}: an earlier build did not finish", flush=True)
            conn.execute(text(f'DROP DATABASE "{target.database}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = make_engine(url)
    init_store(engine)
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(Incident))
    if have:
        print(f"reusing {target.database} ({have:,} incidents)", flush=True)
    else:
        summary = generate(engine, years=5, seed=1, scale=scale, progress=_progress("PostgreSQL"))
        print(
            f"\nbuilt {target.database}: {summary.counts['incident']:,} incidents "
            f"in {summary.elapsed_s:.0f} s",
            flush=True,
        )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        marker.write_text(f"scale {scale}\n")
    engine.dispose()
    return url


def _upgrade(url: str) -> None:
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import init_store

    engine = make_engine(url)
    init_store(engine)  # applies migrations written since the store was built
    engine.dispose()


def _progress(label: str) -> Any:
    last = [0.0]

    def report(done: int, total: int) -> None:
        if time.monotonic() - last[0] > 15:
            last[0] = time.monotonic()
            print(f"  {label}: {done:,} / {total:,} incidents", flush=True)

    return report


def prepare_users(url: str, tokens: int) -> dict[str, dict[str, Any]]:
    """The demo users (as `serve --demo` creates them) and ``tokens`` new API tokens for each benchmarked one.

    Each client gets a token of its own, as each person's browser has a session of its own: every
    authenticated request writes its token's (or session's) last use, and clients sharing one token
    queue on that row (``--shared-token`` measures that case).
    """
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from narcotrack.access.accounts import create_api_token
    from narcotrack.access.policy import principal_for
    from narcotrack.cli import DEMO_PASSWORD, DEMO_USERS
    from narcotrack.domain.models import UserIn
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import create_user
    from narcotrack.store.schema import User

    engine = make_engine(url)
    out: dict[str, dict[str, Any]] = {}
    with Session(engine, expire_on_commit=False) as session:
        existing = set(session.scalars(select(User.username)))
        for username, org, role in DEMO_USERS:
            if username not in existing:
                create_user(
                    session,
                    UserIn(
                        username=username,
                        org=org,
                        role=role,
                        password=DEMO_PASSWORD,
                        display_name=f"Demo {role}",
                    ),
                )
        session.flush()
        for username in USERS:
            user = session.scalars(select(User).where(User.username == username)).one()
            stamp = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}"
            made = [create_api_token(session, user, f"bench {stamp} #{i}") for i in range(tokens)]
            principal = principal_for(session, org_id=user.org_id, role=user.role, user_id=user.id)
            out[username] = {"tokens": made, "principal": principal}
        session.commit()
    engine.dispose()
    return out


# -- query plans and uncached costs --------------------------------------------------------------------
def explain_list(url: str, principal: Any) -> tuple[str, float, int]:
    """The list query exactly as list_incidents sends it, its plan, and its time run directly."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from narcotrack.access.policy import visible_filter
    from narcotrack.store.db import make_engine
    from narcotrack.store.queries import IncidentFilters, list_incidents

    engine = make_engine(url)
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    visible = functools.partial(visible_filter, principal)
    with Session(engine) as session:
        list_incidents(session, visible, IncidentFilters(**EXPLAIN_FILTERS), limit=50)  # warm the cache
        event.listen(engine, "before_cursor_execute", capture)
        t0 = time.perf_counter()
        page = list_incidents(session, visible, IncidentFilters(**EXPLAIN_FILTERS), limit=50)
        elapsed = (time.perf_counter() - t0) * 1000
        event.remove(engine, "before_cursor_execute", capture)
        statement, params = next(s for s in seen if "FROM incident" in s[0])
        conn = session.connection()
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            plan = "\n".join(f"{'  ' * _depth(rows, r[1])}{r[3]}" for r in rows)
        else:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement, params).all()
            plan = "\n".join(r[0] for r in rows)
    engine.dispose()
    return plan, elapsed, len(page.rows)


def _depth(rows: list[Any], parent: int) -> int:
    ids = {r[0]: r[1] for r in rows}
    depth = 0
    while parent:
        depth, parent = depth + 1, ids.get(parent, 0)
    return depth


def uncached_figures(url: str, principal: Any) -> float:
    """Seconds to compute the dashboard's figures without the cache (the first request after a change)."""
    from sqlalchemy.orm import Session

    from narcotrack.access.policy import visible_filter
    from narcotrack.store.db import make_engine
    from narcotrack.store.figures import dashboard_figures

    engine = make_engine(url)
    with Session(engine) as session:
        t0 = time.perf_counter()
        dashboard_figures(session, visible=functools.partial(visible_filter, principal))
        elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


# -- server and runs -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    url: str, workers: int, log: Path, command: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "NARCOTRACK_DATABASE_URL": url, "NARCOTRACK_DATA_DIR": str(OUT / "data")}
    bindir = Path(sys.executable).parent
    if command and command.startswith("try:"):
        cmd = [sys.executable, "-c", TRY_SERVER, str(port), command[4:]]
    elif command:  # another way to serve the same application
        cmd = shlex.split(command.format(port=port, python=sys.executable))
    elif workers == 1:  # exactly what a deployment runs
        cmd = [str(bindir / "narcotrack"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    else:  # the same application, forked into several uvicorn worker processes
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "narcotrack.web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server stopped (exit {proc.returncode}); see {log}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"the server did not answer /health within 180 s; see {log}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_scenario(
    base: str, tokens: list[str], kind: str, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    cfg = {
        "base_url": base,
        "tokens": tokens,
        "kind": kind,
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "seed": seed,
        "max_requests": 200_000,
        "think": args.think,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--load-worker", f.name],
            capture_output=True,
            text=True,
            timeout=args.warmup + args.seconds + 120,
            check=False,
        )
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    mem = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        / 2**20
    )
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GB RAM, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--load-worker":
        return load_worker(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="a small store (scale 0.5, about 20k incidents), 3 s runs"
    )
    ap.add_argument("--scale", type=float, help="demo scale (default 25: about 1.08 million incidents)")
    ap.add_argument("--store", type=Path, help="SQLite store to build or reuse (default under bench/out/)")
    ap.add_argument("--pg-url", help=f"PostgreSQL database to build or reuse (default {PG_DEFAULT})")
    ap.add_argument("--engines", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--seconds", type=float, help="measured seconds per scenario (default 20)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a client waits after each answer (default 0: back to back, as wrk does)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes: 1 runs `narcotrack serve` as deployed; more runs uvicorn --workers",
    )
    ap.add_argument("--only", help="comma-separated scenario kinds to run: list, figures, home")
    ap.add_argument(
        "--try",
        dest="try_",
        metavar="CHANGES",
        help="serve with changes outside this benchmark applied: touch, pool (see TRY_SERVER)",
    )
    ap.add_argument("--shared-token", action="store_true", help="all clients of a user share one API token")
    ap.add_argument(
        "--server-cmd", help="serve with this command instead ({port} and {python} are filled in)"
    )
    args = ap.parse_args()
    scale = args.scale or (0.5 if args.quick else 25.0)
    args.seconds = args.seconds or (3.0 if args.quick else 20.0)
    tag = "quick" if args.quick and not args.scale else f"s{scale:g}"
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"# machine: {machine()}", flush=True)
    print(
        f"# {args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s per scenario, "
        f"{args.workers} server process(es), demo scale {scale:g}"
        + (f", think time {args.think:g} s" if args.think else "")
        + (f", tried: {args.try_}" if args.try_ else "")
        + (", one shared token" if args.shared_token else ""),
        flush=True,
    )
    kinds = set((args.only or "list,figures,home").split(","))
    results: list[dict[str, Any]] = []
    extras: list[str] = []
    for name in args.engines.split(","):
        if name == "sqlite":
            url = build_sqlite(args.store or OUT / f"web-sqlite-{tag}.sqlite", scale)
        else:
            default = args.pg_url is None
            url = build_pg(
                args.pg_url or (PG_DEFAULT + ("_quick" if args.quick else "")), scale, default=default
            )
        users = prepare_users(url, 1 if args.shared_token else args.clients)
        for username in USERS:
            plan, ms, rows = explain_list(url, users[username]["principal"])
            secs = uncached_figures(url, users[username]["principal"])
            extras.append(
                f"### {name}, {username}: list query {ms:.1f} ms run directly ({rows} rows), "
                f"uncached dashboard figures {secs:.2f} s\n{plan}\n"
            )
        command = f"try:{args.try_}" if args.try_ else args.server_cmd
        proc, base = start_server(url, args.workers, OUT / f"server-{name}.log", command)
        try:
            for i, (scenario, kind, target) in enumerate(SCENARIOS):
                if kind not in kinds:
                    continue
                for username in USERS:
                    r = run_scenario(base, users[username]["tokens"], kind, args, seed=i)
                    lat = r["lat"]
                    row = {
                        "scenario": scenario,
                        "kind": kind,
                        "engine": name,
                        "user": username,
                        "n": r["n"],
                        "rps": r["n"] / r["wall"],
                        "p50": pct(lat, 50),
                        "p95": pct(lat, 95),
                        "p99": pct(lat, 99),
                        "errors": r["errors"] + r["warmup_errors"],
                        "error_kinds": r["error_kinds"],
                        "target": target,
                        "items": r["items"] / max(1, r["n"]),
                    }
                    results.append(row)
                    print(
                        f"  {name} {scenario} as {username}: {r['n']} requests, p95 {row['p95']:.1f} ms, "
                        f"{r['errors']} errors {r['error_kinds'] or ''}",
                        flush=True,
                    )
        finally:
            stop_server(proc)
    print_report(results, extras)
    (OUT / f"web-results-{tag}.json").write_text(json.dumps(results, indent=1))
    if args.quick:
        for p in OUT.glob("data"):
            shutil.rmtree(p, ignore_errors=True)
    return 1 if any(r["errors"] for r in results) else 0


def print_report(results: list[dict[str, Any]], extras: list[str]) -> None:
    print(
        "\n| scenario | engine | user | requests | req/s | p50 ms | p95 ms | p99 ms | errors | target p95 "
        "| met? |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        met = "yes" if r["p95"] < r["target"] and not r["errors"] else "**no**"
        print(
            f"| {r['scenario']} | {r['engine']} | {r['user']} | {r['n']:,} | {r['rps']:.1f} | "
            f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['errors']} | "
            f"< {r['target']:.0f} ms | {met} |"
        )
    print("\nPolicy cost (same requests, liaison p50 / analyst p50; rows per list page in brackets):")
    for r in results:
        if r["user"] != USERS[0]:
            continue
        other = next(
            (
                o
                for o in results
                if o["engine"] == r["engine"] and o["kind"] == r["kind"] and o["user"] == USERS[1]
            ),
            None,
        )
        if other:
            extra = f" (rows {r['items']:.1f} vs {other['items']:.1f})" if r["kind"] == "list" else ""
            print(
                f"- {r['engine']}, {r['scenario']}: {other['p50']:.1f} / {r['p50']:.1f} ms = "
                f"{other['p50'] / r['p50']:.2f}x{extra}"
            )
    print("\nList query plans (filters " + ", ".join(f"{k}={v}" for k, v in EXPLAIN_FILTERS.items()) + "):\n")
    for e in extras:
        print(e)


if __name__ == "__main__":
    sys.exit(main())
