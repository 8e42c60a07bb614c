"""Federation benchmark: ``.venv/bin/python bench/bench_federation.py [--store PATH] [--scale S]``.

Two nodes on loopback, each its own process and store. Cambodia's node serves the demo store (built once
with ``narcotrack demo --years 5 --scale S`` when absent; at scale 10 the Thai partner's feed holds about
100,000 objects) with ``narcotrack serve``; a fresh Thai node pulls what it shares with TH-ONCB through
``narcotrack.exchange.federation.pull``, storing every page as it arrives. The receiving node has no
domestic organisation (``--receiver ZZ``), so it holds none of the feed's records beforehand: a real
Thai node (``--receiver TH``) already holds the Thai-owned records the feed repeats, skips them as its
own, and a fresh one lacks them, so the records that refer to them could not be stored.

- pull: objects received and records stored per second, end to end (the server's paging, HTTP, the
  receiving node's checks and writes);
- cut and resume: a second fresh Thai node whose connection drops after half the pages (no retries), then
  the pull run again: it must end with exactly the records of the uninterrupted pull, each once;
- peer: the first ``--medallion-objects`` objects of the same feed served by the OASIS medallion TAXII
  server (memory backend) and pulled the same way into a third node; narcotrack's rate as a ratio of it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_STORE = ROOT / "bench" / "out" / "federation-s10.sqlite"
BIN = ROOT / ".venv" / "bin"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE)
    ap.add_argument("--scale", type=float, default=10, help="demo scale when the store is built")
    ap.add_argument("--org", default="TH-ONCB", help="the partner organisation whose feed is pulled")
    ap.add_argument("--limit", type=int, default=1000, help="objects per page")
    ap.add_argument("--receiver", default="ZZ", help="country code of the receiving nodes' own organisations")
    ap.add_argument("--medallion-objects", type=int, default=2000, help="objects served by medallion (0: skip)")
    ap.add_argument("--quick", action="store_true", help="a scale-0.3 store (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        if args.store == DEFAULT_STORE:
            args.store = DEFAULT_STORE.with_name("federation-quick.sqlite")
        args.scale, args.medallion_objects = 0.3, 500
    from bench.bench_stix import _ensure_store

    _ensure_store(args.store, args.scale)

    from sqlalchemy import func, select

    from narcotrack.exchange.federation import PartnerUnreachable, pull
    from narcotrack.exchange.partners import add_partner
    from narcotrack.store.db import make_engine, session_scope
    from narcotrack.store.schema import Incident, StixProvenance

    kh = make_engine(f"sqlite:///{args.store}")
    with kh.connect() as conn:
        incidents = int(conn.scalar(select(func.count()).select_from(Incident)) or 0)
    token = _token(kh, args.org)
    work = Path(tempfile.mkdtemp(prefix="narcotrack-federation-"))
    from tests.conftest import build_template
    from tests.exchange.conftest import CutSession, make_partner_node

    template = build_template(work / "template.sqlite")
    rows: list[tuple[str, str, str]] = []
    country = args.receiver

    def node(name: str, api_root: str, secret: str) -> tuple[Any, Any]:
        engine = make_partner_node(work / f"{name}.sqlite", template, country, kh)
        with session_scope(engine) as s:
            partner = add_partner(s, "kh", api_root, "KH-NACD", secret)[0]
        return engine, partner

    def held(engine: Any) -> list[str]:
        with engine.connect() as conn:
            return list(conn.scalars(select(StixProvenance.stix_id)))

    with _serve(args.store) as url:
        api_root = f"{url}/taxii2/api/"
        th1, p1 = node("th-whole", api_root, token)
        t0 = time.perf_counter()
        whole = pull(th1, p1, limit=args.limit)
        took = time.perf_counter() - t0
        c = whole.collections[0]
        want = held(th1)
        stored = len(want)
        rows.append((f"pull, {args.org} feed", f"{c.objects:,} objects, {c.pages} pages, {stored:,} records "
                     f"stored, {sum(c.owned_here.values())} owned here, {len(c.problems)} not stored, in {took:.1f} s",
                     f"{c.objects / took:,.0f} objects/s, {stored / took:,.0f} records/s"))
        rate = c.objects / took

        th2, p2 = node("th-cut", api_root, token)
        session = CutSession(c.pages // 2)
        t0 = time.perf_counter()
        cut = False
        try:
            pull(th2, p2, limit=args.limit, session=session, retries=0)
        except PartnerUnreachable:
            cut = True
        before = len(held(th2))
        again = pull(th2, p2, limit=args.limit)
        took2 = time.perf_counter() - t0
        got = held(th2)
        with th2.connect() as conn:
            rows_stored = int(conn.scalar(select(func.count()).select_from(Incident)) or 0)
        with th1.connect() as conn:
            rows_whole = int(conn.scalar(select(func.count()).select_from(Incident)) or 0)
        same = cut and set(got) == set(want) and len(got) == len(set(got)) and rows_stored == rows_whole
        a = again.collections[0]
        rows.append(("pull cut after half its pages, run again",
                     f"{before:,} records before the cut, {a.objects:,} objects after it; {len(set(got)):,} of "
                     f"{len(set(want)):,} records, {rows_stored:,} incidents ({rows_whole:,} uncut); "
                     f"{sum(a.unchanged.values())} received twice (unchanged) in {took2:.1f} s",
                     "same set, none twice" if same else "DIFFERENT (or the connection was never cut)"))
        sample = _first_objects(api_root, token, args.medallion_objects) if args.medallion_objects else []

    if sample:
        from tests.exchange.medallion_peer import medallion

        with medallion(work, sample, user="bench", password="bench") as medallion_root:
            th3, p3 = node("th-medallion", medallion_root, "basic:bench:bench")
            t0 = time.perf_counter()
            peer = pull(th3, p3, limit=args.limit)
            took3 = time.perf_counter() - t0
        m = peer.collections[0]
        peer_rate = m.objects / took3
        rows.append(("pull from medallion 3.0 (memory), the first objects of the same feed",
                     f"{m.objects:,} objects, {m.pages} pages, {len(held(th3)):,} records, {len(m.problems)} not "
                     f"stored (referring past the sample) in {took3:.1f} s",
                     f"{peer_rate:,.0f} objects/s; narcotrack {rate / peer_rate:.1f}x"))
    print(f"Store: {args.store.name}, {incidents:,} incidents; receiving nodes in {work}")
    width = max(len(r[0]) for r in rows)
    for name, what, value in rows:
        print(f"{name:<{width}}  {what}  |  {value}")


def _token(engine: Any, org: str) -> str:
    from sqlalchemy import select
    from tests.web.helpers import make_user

    from narcotrack.access.accounts import create_api_token
    from narcotrack.store.db import session_scope
    from narcotrack.store.schema import User

    username = f"bench-node-{org.lower()}"
    with engine.connect() as conn:
        exists = conn.scalar(select(User.id).where(User.username == username)) is not None
    if not exists:
        make_user(engine, username, org, "liaison")
    with session_scope(engine) as s:
        return create_api_token(s, s.scalars(select(User).where(User.username == username)).one(), "bench")


@contextmanager
def _serve(store: Path) -> Iterator[str]:
    """Cambodia's node in its own process, as a partner's node would be."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = dict(os.environ, NARCOTRACK_DATABASE_URL=f"sqlite:///{store}")
    proc = subprocess.Popen([str(BIN / "narcotrack"), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _first_objects(api_root: str, token: str, n: int) -> list[dict[str, Any]]:
    from taxii2client.v21 import ApiRoot

    from narcotrack.exchange.taxii_client import BearerAuth

    coll = next(c for c in ApiRoot(api_root, auth=BearerAuth(token)).collections
                if c.title == "Everything shared with you")
    return list(coll.get_objects(limit=min(n, 1000)).get("objects", [])) if n <= 1000 else _pages(coll, n)


def _pages(coll: Any, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    nxt = None
    while len(out) < n:
        page = coll.get_objects(limit=1000, **({"next": nxt} if nxt else {}))
        out += page.get("objects", [])
        if not page.get("more"):
            break
        nxt = page.get("next")
    return out[:n]


if __name__ == "__main__":
    main()
