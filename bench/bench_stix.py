"""Exchange benchmark: ``.venv/bin/python bench/bench_stix.py [--store PATH] [--validate N]``.

On a demo store of about 100,000 incidents (built once into bench/out/stix-s2.sqlite with
``narcotrack demo --years 5 --scale 2.5`` when absent), as the demo analyst of KH-NACD (full rights) and
for the Thai partner TH-ONCB (through the sharing policy):

- export: ``StixExporter`` streamed into a bundle file; objects and incidents per second;
- validation: the OASIS ``stix2-validator`` (STIX 2.1) over the first ``--validate`` objects of the
  analyst's bundle, objects per second, errors (must be 0);
- TAXII pull: the "everything" collection of ``--taxii-org`` pulled over loopback with ``taxii2-client``
  (1,000 objects a page, the first ``--taxii-objects``), objects per second; then the same pull cut after
  half its pages (the connection dropped) and resumed from one microsecond before the last ``date_added`` stored, the way the federation
  puller resumes: the records received must be the same set as in one uninterrupted pull, none missing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_STORE = ROOT / "bench" / "out" / "stix-s2.sqlite"
RECORD_TYPES = ("incident", "grouping")


def _ensure_store(path: Path, scale: float) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    env = {"NARCOTRACK_DATABASE_URL": f"sqlite:///{path}", "PATH": str(ROOT / ".venv" / "bin")}
    subprocess.run([str(ROOT / ".venv" / "bin" / "narcotrack"), "demo", "--years", "5", "--scale", str(scale)],
                   check=True, env=env)


def _records(objects: list[dict[str, Any]]) -> set[str]:
    return {o["id"] for o in objects if o["type"] in RECORD_TYPES or o.get("identity_class") == "individual"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE)
    ap.add_argument("--scale", type=float, default=2.5, help="demo scale when the store is built (2.5: 108,171 incidents)")
    ap.add_argument("--validate", type=int, default=20_000, help="objects to validate (0: all)")
    ap.add_argument("--taxii-org", default="TH-ONCB", help="whose feed the TAXII pull reads (KH-NACD: all)")
    ap.add_argument("--no-taxii", action="store_true", help="skip the TAXII pull")
    ap.add_argument("--taxii-objects", type=int, default=100_000, help="objects to pull (0: the whole feed)")
    ap.add_argument("--no-export", action="store_true", help="skip the export and validation")
    ap.add_argument("--medallion-objects", type=int, default=2000,
                    help="pull the first N of the same objects from medallion, the peer server (0: skip)")
    ap.add_argument("--quick", action="store_true", help="a scale-0.3 store and small samples (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        if args.store == DEFAULT_STORE:
            args.store = DEFAULT_STORE.with_name("stix-quick.sqlite")
        args.scale, args.validate, args.taxii_objects, args.medallion_objects = 0.3, 2000, 5000, 500
    _ensure_store(args.store, args.scale)

    from sqlalchemy import func, select
    from stix2validator import ValidationOptions, validate_instance

    from narcotrack.access.policy import principal_for
    from narcotrack.exchange.stix_export import StixExporter, write_bundle
    from narcotrack.store.db import make_engine, session_scope
    from narcotrack.store.schema import Incident
    from narcotrack.store.seed import org_id

    engine = make_engine(f"sqlite:///{args.store}")
    with engine.connect() as conn:
        incidents = int(conn.scalar(select(func.count()).select_from(Incident)) or 0)
    rows: list[tuple[str, str, str]] = []
    out_dir = args.store.parent
    bundles: dict[str, Path] = {}
    if not args.no_export:
        for label, org, role in (("analyst KH-NACD", "KH-NACD", "analyst"), ("partner TH-ONCB", "TH-ONCB", "liaison")):
            with session_scope(engine) as s:
                p = principal_for(s, org_id=org_id(org), role=role)
            path = bundles.setdefault(label, out_dir / f"bench-{org}.json")
            t0 = time.perf_counter()
            with engine.connect() as conn, path.open("w", encoding="utf-8") as fh:
                exporter = StixExporter(conn, p, b"bench-pseudonym-key")
                n = write_bundle(exporter.objects(), fh)
            dt_s = time.perf_counter() - t0
            got = exporter.stats.by_type["incident"]
            rows.append((f"export, {label}", f"{n:,} objects, {got:,} incidents in {dt_s:.1f} s",
                         f"{n / dt_s:,.0f} objects/s, {got / dt_s:,.0f} incidents/s"))

        objects = json.loads(bundles["analyst KH-NACD"].read_text(encoding="utf-8"))["objects"]
        sample = objects if args.validate == 0 else objects[:args.validate]
        t0 = time.perf_counter()
        result = validate_instance({"type": "bundle", "id": "bundle--0c3ff7e8-7f6c-4b5e-9d8f-2f1b1b1b1b1b",
                                    "objects": sample}, ValidationOptions(version="2.1"))
        dt_s = time.perf_counter() - t0
        rows.append(("stix2-validator", f"{len(sample):,} objects in {dt_s:.1f} s, {len(result.errors)} errors",
                     f"{len(sample) / dt_s:,.0f} objects/s"))

    if not args.no_taxii:
        rows += _taxii_rows(engine, args.taxii_org, args.taxii_objects, args.medallion_objects)
    _print(args.store.name, incidents, rows)


def _taxii_rows(engine: Any, org: str, cap: int, peer: int) -> list[tuple[str, str, str]]:
    from sqlalchemy import select
    from taxii2client.v21 import Server
    from tests.web.helpers import make_user, serve

    from narcotrack.access.accounts import create_api_token
    from narcotrack.exchange.taxii_client import BearerAuth
    from narcotrack.store.db import session_scope
    from narcotrack.store.schema import User

    rows: list[tuple[str, str, str]] = []
    username = f"bench-taxii-{org.lower()}"
    if not _user(engine, username):
        make_user(engine, username, org, "analyst" if org.startswith("KH-") else "liaison")
    with session_scope(engine) as s:
        token = create_api_token(s, s.scalars(select(User).where(User.username == username)).one(), "bench")
    with serve(engine) as url:
        root = Server(f"{url}/taxii2/", auth=BearerAuth(token)).api_roots[0]
        coll = next(c for c in root.collections if c.title == "Everything shared with you")
        t0 = time.perf_counter()
        pages = _pull(coll, cap=cap)
        dt_s = time.perf_counter() - t0
        full = [o for page in pages for o in page.get("objects", [])]
        what = f"first {cap:,} objects" if cap else "whole feed"
        rows.append((f"TAXII pull, loopback, {org}, {what}",
                     f"{len(full):,} objects, {len(pages)} pages in {dt_s:.1f} s", f"{len(full) / dt_s:,.0f} objects/s"))
        rate = len(full) / dt_s
        # Cut after half the pages, then resume from 1 µs before the last date_added stored, up to the
        # last record the uninterrupted pull received.
        first_half, last_added = [], None
        for i, _ in enumerate(pages[: len(pages) // 2]):
            envelope, resp_last = _page(coll, i, pages)
            first_half += envelope
            last_added = resp_last
        final = next(o["id"] for o in reversed(full) if o["id"] in _records([o]))
        t0 = time.perf_counter()
        resumed = [o for page in _pull(coll, stop_at=final, added_after=_minus_1us(last_added))
                   for o in page.get("objects", [])]
        dt_s = time.perf_counter() - t0
    union, want = _records(first_half) | _records(resumed), _records(full)
    again = len(_records(first_half) & _records(resumed))
    rows.append(("TAXII cut + resume", f"{len(resumed):,} objects after the cut in {dt_s:.1f} s; records "
                 f"{len(want & union):,} of {len(want):,} (+{len(union - want)} past the end of the last page), "
                 f"{again} received twice (upserted)", "same set" if want <= union else "MISSING RECORDS"))
    if peer:
        rows.append(_medallion_row(full, rate, peer))
    return rows


def _medallion_row(objects: list[dict[str, Any]], narcotrack_rate: float, sample: int) -> tuple[str, str, str]:
    """The first ``sample`` of the same objects served by the OASIS medallion TAXII server (memory
    backend, the reference peer) and pulled the same way: objects per second, and narcotrack's rate as a
    ratio of it. medallion filters and dates a page by scanning the whole collection for each object, so
    its first page costs time quadratic in the collection's size: a sample keeps the run short."""
    import tempfile

    from taxii2client.v21 import ApiRoot
    from tests.exchange.medallion_peer import medallion

    unique = list({o["id"]: o for o in objects}.values())[:sample]
    with medallion(Path(tempfile.mkdtemp()), unique, user="bench", password="bench") as api_root:
        root = ApiRoot(api_root, user="bench", password="bench")
        coll = root.collections[0]
        t0 = time.perf_counter()
        pages = _pull(coll)
        dt_s = time.perf_counter() - t0
    n = sum(len(p.get("objects", [])) for p in pages)
    rate = n / dt_s
    return ("TAXII pull, loopback, medallion 3.0 (memory)", f"the first {n:,} of the same objects, {len(pages)} "
            f"pages in {dt_s:.1f} s", f"{rate:,.0f} objects/s; narcotrack {narcotrack_rate / rate:.2f}x")


def _pull(coll: Any, *, cap: int = 0, stop_at: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """Pages of 1,000 objects, following ``next``, until the feed ends, ``cap`` objects have come, or the
    page holding record ``stop_at`` has."""
    pages: list[dict[str, Any]] = []
    nxt, count = None, 0
    while True:
        page = coll.get_objects(limit=1000, **filters, **({"next": nxt} if nxt else {}))
        pages.append(page)
        objects = page.get("objects", [])
        count += len(objects)
        if not page.get("more") or (cap and count >= cap) or (stop_at and any(o["id"] == stop_at for o in objects)):
            return pages
        nxt = page.get("next")


def _print(store: str, incidents: int, rows: list[tuple[str, str, str]]) -> None:
    print(f"Store: {store}, {incidents:,} incidents")
    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'what':<70}  rate")
    for name, what, rate in rows:
        print(f"{name:<{width}}  {what:<70}  {rate}")


def _user(engine: Any, name: str) -> bool:
    from sqlalchemy import select

    from narcotrack.store.schema import User

    with engine.connect() as conn:
        return conn.scalar(select(User.id).where(User.username == name)) is not None


def _page(coll: Any, index: int, pages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Page ``index`` of the uninterrupted pull as the first half of an interrupted one saw it, with the
    last date_added it stored (from the manifest of the same page)."""
    objects = pages[index].get("objects", [])
    ids = {o["id"] for o in objects}
    nxt = pages[index - 1].get("next") if index else None
    manifest = coll.get_manifest(limit=1000, **({"next": nxt} if nxt else {}))
    added = [m["date_added"] for m in manifest.get("objects", []) if m["id"] in ids]
    return objects, max(added) if added else None


def _minus_1us(stamp: str | None) -> str | None:
    import datetime as dt

    if stamp is None:
        return None
    value = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")) - dt.timedelta(microseconds=1)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


if __name__ == "__main__":
    main()
