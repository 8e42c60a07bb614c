"""Benchmark of `narcotrack import`: rows per second and peak memory.

    .venv/bin/python bench/bench_import.py [--rows N] [--pg-url URL] [--orm-rows N] [--quick]

Cases, each run in a fresh child process so that its peak memory (RSS) is its own:
  a. the real UNODC IDS file (208k rows) into SQLite;
  b. a generated narcotrack CSV (seeded, realistic: yaba, ice, ketamine..., names in English, Khmer and
     variant spellings, cases of 1-3 seizures) into SQLite and into a throw-away PostgreSQL database;
  c. a row-by-row ORM insert (session.add + flush per row) of a sample of the same rows, already
     validated, on both engines, for the ratio.
Peak RSS is reported for the importing process and for its reader worker (a separate process when the
file is large); their sum bounds the memory the import needs.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEYS = [
    "incident_ref",
    "date",
    "country",
    "province",
    "district",
    "commune",
    "place",
    "place_kind",
    "reporting_org",
    "drug",
    "quantity",
    "unit",
    "purity_pct",
    "concealment",
    "transport",
    "packaging_marking",
    "producing_country",
    "origin_country",
    "transit_countries",
    "destination_country",
    "narrative",
    "marking",
    "distribution",
]  # the template's columns, in order (checked against columns.COLUMNS)
IDS_FILE = ROOT.parent / "shared" / "data" / "unodc" / "ids_individual_seizures_2011_2014.csv.gz"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

PROVINCES = [  # (spellings used in the file, weight)
    (["Phnom Penh", "ភ្នំពេញ", "12", "Phnum Penh"], 22),
    (["Banteay Meanchey", "បន្ទាយមានជ័យ", "1"], 9),
    (["Battambang", "បាត់ដំបង", "Batdambang"], 9),
    (["Siem Reap", "សៀមរាប", "Siemreap"], 7),
    (["Preah Sihanouk", "ព្រះសីហនុ", "Sihanoukville"], 8),
    (["Svay Rieng", "ស្វាយរៀង"], 6),
    (["Kandal", "កណ្ដាល"], 6),
    (["Takeo", "តាកែវ"], 4),
    (["Kampong Cham", "Kompong Cham", "កំពង់ចាម"], 5),
    (["Koh Kong", "កោះកុង"], 4),
    (["Stung Treng", "ស្ទឹងត្រែង", "Stoeng Treng"], 3),
    (["Pailin", "ប៉ៃលិន"], 3),
    (["Oddar Meanchey", "ឧត្តរមានជ័យ", "Otdar Meanchey"], 3),
    (["Ratanakiri", "Ratanak Kiri", "រតនគិរី"], 2),
    (["Kampot", "កំពត"], 3),
    (["Prey Veng", "ព្រៃវែង"], 3),
    (["Tbong Khmum", "ត្បូងឃ្មុំ"], 3),
]
DRUGS: list[tuple[list[str], int, list[tuple[str, float, float]]]] = [  # spellings, weight, units and ranges
    (
        ["yaba", "WY", "methamphetamine tablets", "ម៉ាគ្រាប់"],
        50,
        [("tablet", 10, 200000), ("tablets", 10, 50000)],
    ),
    (["ice", "crystal meth", "ម៉ាទឹកកក", "methamphetamine-ice"], 25, [("g", 0.5, 900), ("kg", 0.1, 80)]),
    (["ketamine", "កេតាមីន"], 7, [("g", 1, 5000), ("kg", 0.5, 500)]),
    (["heroin", "ហេរ៉ូអ៊ីន"], 3, [("g", 0.5, 800), ("kg", 0.1, 30)]),
    (["cannabis", "កញ្ឆា", "marijuana"], 5, [("kg", 0.2, 2000), ("g", 5, 900)]),
    (["happy water", "ទឹកសប្បាយ"], 4, [("g", 10, 5000), ("packages", 5, 400)]),
    (["MDMA", "ecstasy"], 2, [("tablet", 10, 5000)]),
    (["safrole oil", "ប្រេងម្រះព្រៅ"], 1, [("l", 50, 20000)]),
    (["ephedrine"], 1, [("kg", 1, 500)]),
]
KINDS = ["road", "residence", "border checkpoint", "commercial", "", "", "riverport", "seaport"]
CONCEAL = ["vehicle", "baggage", "body", "", "", "premises", "cargo", "goods"]
TRANSPORT = ["motorbike", "car", "bus", "truck", "", "", "boat", "on foot"]
ORIGINS = ["", "", "", "Laos", "Thailand", "Viet Nam", "Myanmar", "LA", "ឡាវ"]
PLACES = ["National Road {n}, km {k}", "Street {n}", "Phsar {w}", "Village {w}", "Checkpoint {w}", ""]
WORDS = ["Thmei", "Kandal", "Chas", "Leu", "Kraom", "Tboung", "Cheung", "Kaeut", "Lech"]


def generate(path: Path, rows: int, seed: int = 20250314) -> None:
    """A narcotrack template CSV of ``rows`` seizures, in date order like a station's case log."""
    from narcotrack.ingest.columns import COLUMNS

    rng = random.Random(seed)
    prov_w = [w for _, w in PROVINCES]
    drug_w = [w for _, w, _ in DRUGS]
    districts = _districts()
    start = 18262  # 2020-01-01 as days since 1970
    days = 5 * 365
    keys = [c.key for c in COLUMNS]
    written, case = 0, 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([c.header for c in COLUMNS])
        while written < rows:
            case += 1
            day = start + days * written // rows
            prov_idx = rng.choices(range(len(PROVINCES)), prov_w)[0]
            prov_names = PROVINCES[prov_idx][0]
            org = f"KH-PP-{_code(prov_idx):02d}"
            y, m, d = _ymd(day)
            date = f"{y:04d}-{m:02d}-{d:02d}" if rng.random() < 0.8 else f"{d:02d}/{m:02d}/{y:04d}"
            district = rng.choice(districts[_code(prov_idx)]) if rng.random() < 0.5 else ""
            place = rng.choice(PLACES).format(
                n=rng.randint(1, 600), k=rng.randint(1, 300), w=rng.choice(WORDS)
            )
            incident = {
                "incident_ref": f"{org[3:]}-{y}-{case:07d}",
                "date": date,
                "province": rng.choice(prov_names),
                "district": district,
                "place": place,
                "place_kind": rng.choice(KINDS),
                "reporting_org": org,
                "narrative": "Suspects stopped and searched." if rng.random() < 0.3 else "",
            }
            n_seizures = rng.choices([1, 2, 3], [70, 20, 10])[0]
            for k in range(min(n_seizures, rows - written)):
                names, _w, units = rng.choices(DRUGS, drug_w)[0]
                unit, lo, hi = rng.choice(units)
                qty = round(
                    lo * (hi / lo) ** (rng.random() ** 3),
                    0 if unit in ("tablet", "tablets", "packages") else 3,
                )
                row = (
                    dict(incident)
                    if k == 0 or rng.random() < 0.5
                    else {"incident_ref": incident["incident_ref"], "reporting_org": org}
                )
                row.update(
                    {
                        "drug": rng.choice(names),
                        "quantity": f"{qty:g}",
                        "unit": unit,
                        "purity_pct": f"{rng.randint(5, 95)}" if rng.random() < 0.1 else "",
                        "concealment": rng.choice(CONCEAL),
                        "transport": rng.choice(TRANSPORT),
                        "packaging_marking": "WY" if names[0] == "yaba" and rng.random() < 0.5 else "",
                        "origin_country": rng.choice(ORIGINS),
                    }
                )
                w.writerow([row.get(key, "") for key in keys])
                written += 1


@functools.cache
def _code(prov_idx: int) -> int:
    from narcotrack.domain.places import resolve_province

    code = resolve_province(PROVINCES[prov_idx][0][0])
    assert code is not None
    return int(code.removeprefix("KH-"))


def _districts() -> dict[int, list[str]]:
    from narcotrack.domain.places import iter_gazetteer

    out: dict[int, list[str]] = {}
    for p in iter_gazetteer():
        if p.level == "district":
            out.setdefault(int(p.code[3:5]), []).append(p.name_en)
    return out


def _ymd(days: int) -> tuple[int, int, int]:
    import datetime as dt

    d = dt.date(1970, 1, 1) + dt.timedelta(days=days)
    return d.year, d.month, d.day


# -- cases, each in its own process ---------------------------------------------------------------
def case_import(url: str, file: str) -> dict[str, Any]:
    from narcotrack.ingest.importer import import_file
    from narcotrack.store.db import make_engine

    engine = make_engine(url)
    t = time.perf_counter()
    report = import_file(engine, file, org_code="KH-NACD")
    seconds = time.perf_counter() - t
    engine.dispose()
    return {
        "rows": report.rows_read,
        "imported": report.rows_imported,
        "seconds": seconds,
        "warnings": report.rows_with_warnings,
        "duplicates": report.duplicates_flagged,
        "errors": report.rows_rejected,
        "kg": report.mass_kg,
    }


def case_orm(url: str, file: str, rows: int) -> dict[str, Any]:
    """Row-by-row ORM insert (session.add + flush per row) of already validated rows."""
    import datetime as dt

    from sqlalchemy.orm import Session

    from narcotrack.domain.vocab import norm
    from narcotrack.ingest import narcotrack_format
    from narcotrack.ingest.formats import produce
    from narcotrack.ingest.readers import open_table
    from narcotrack.ingest.records import INCIDENT_COLUMNS, SEIZURE_COLUMNS, Context
    from narcotrack.ingest.report import ImportReport
    from narcotrack.store.db import make_engine
    from narcotrack.store.schema import Incident, Organisation, Seizure

    engine = make_engine(url)
    with Session(engine) as s:
        orgs = {norm(code): (oid, code) for oid, code in s.query(Organisation.id, Organisation.code)}
    with open_table(Path(file)) as table:
        positions = narcotrack_format.map_header(table.header, ImportReport("x"), org_given=True)
    now = dt.datetime.now(dt.UTC)
    ctx = Context(batch_id="", stamp="", orgs=orgs, org_code="KH-NACD", chunk_rows=rows)
    groups = next(iter(produce(Path(file), "narcotrack", positions, ctx))).groups

    def dated(values: dict[str, Any]) -> dict[str, Any]:
        for k in ("created_at", "updated_at"):
            values[k] = now
        if isinstance(values.get("occurred_on"), str):
            values["occurred_on"] = dt.date.fromisoformat(str(values["occurred_on"]))
        return values

    n = 0
    t = time.perf_counter()
    with Session(engine) as s:
        for _ref, values, _missing, _pk, seizures in groups:
            inc = dated(dict(zip(INCIDENT_COLUMNS, values, strict=True)))
            inc.update(
                import_batch_id=None,
                source="orm-bench",
                place_text=inc["place_text"] or "",
                narrative=inc["narrative"] or "",
                marking=inc["marking"] or "AMBER",
                distribution=inc["distribution"] or "domestic",
            )
            s.add(Incident(**inc))
            s.flush()
            for _row, _mask, sz in seizures:
                s.add(Seizure(**dated(dict(zip(SEIZURE_COLUMNS, sz, strict=True)))))
                s.flush()
                n += 1
        s.commit()
    seconds = time.perf_counter() - t
    engine.dispose()
    return {"rows": n, "imported": n, "seconds": seconds}


def case_forms(url: str, file: str, rows: int) -> dict[str, Any]:
    """Row by row through the forms path: a pydantic IncidentIn per row and repo.create_incident."""
    from pydantic import ValidationError

    from narcotrack.domain.models import IncidentIn, SeizureIn
    from narcotrack.errors import NarcotrackError
    from narcotrack.ingest.values import parse_date
    from narcotrack.store.db import make_engine, session_scope
    from narcotrack.store.repo import create_incident

    engine = make_engine(url)
    n = failed = 0
    t = time.perf_counter()
    with open(file, encoding="utf-8", newline="") as fh, session_scope(engine) as session:
        reader = csv.reader(fh)
        next(reader)
        for cells in reader:
            row = dict(zip(KEYS, cells, strict=False))
            if not row["date"] or not row["province"]:
                continue  # a later row of a case: the forms path records whole incidents
            try:
                data = IncidentIn(
                    occurred_on=parse_date(row["date"]),
                    province=row["province"],
                    district=row["district"] or None,
                    place_text=row["place"],
                    place_kind=row["place_kind"] or None,
                    reporting_org=row["reporting_org"],
                    narrative=row["narrative"],
                    seizures=[
                        SeizureIn(
                            drug=row["drug"],
                            quantity=float(row["quantity"]),
                            unit=row["unit"],
                            concealment=row["concealment"] or None,
                            transport_mode=row["transport"] or None,
                            origin_country=row["origin_country"] or None,
                        )
                    ],
                )
                create_incident(session, data, source="form")
            except (ValidationError, NarcotrackError):
                failed += 1
            n += 1
            if n >= rows:
                break
    seconds = time.perf_counter() - t
    engine.dispose()
    return {"rows": n - failed, "imported": n - failed, "seconds": seconds}


def cpu_check() -> float:
    """Seconds for a fixed pure-Python loop: virtual machines' CPU speed varies, so runs are comparable
    only together with this figure (about 1.3 s on an unloaded 2.6 GHz EPYC vCPU)."""
    t = time.perf_counter()
    x = 0
    for i in range(30_000_000):
        x += i
    return time.perf_counter() - t


def _peaks() -> tuple[float, float]:
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return self_mb, child_mb


def run_case(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--case", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"case {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_sqlite(template: Path, work: Path, name: str) -> str:
    path = work / f"{name}.sqlite"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated narcotrack CSV")
    p.add_argument("--orm-rows", type=int, default=20_000, help="rows of the row-by-row ORM sample")
    p.add_argument("--pg-url", default=PG_ADMIN, help="PostgreSQL server (a database on it to create others)")
    p.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    p.add_argument("--quick", action="store_true", help="100k rows and a 5k ORM sample, for a smoke run")
    p.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.case:
        kind, url, file, *rest = a.case
        if kind == "orm":
            result = case_orm(url, file, int(rest[0]))
        elif kind == "forms":
            result = case_forms(url, file, int(rest[0]))
        else:
            result = case_import(url, file)
        result["peak_mb"], result["worker_peak_mb"] = _peaks()
        print(json.dumps(result))
        return 0
    if a.quick:
        a.rows, a.orm_rows = min(a.rows, 100_000), min(a.orm_rows, 5_000)

    from sqlalchemy import create_engine, text

    from narcotrack.ingest.columns import COLUMNS
    from narcotrack.store.db import make_engine
    from narcotrack.store.repo import init_store

    assert [c.key for c in COLUMNS] == KEYS, "bench KEYS out of date with the template"
    print(f"CPU check before: {cpu_check():.2f} s", flush=True)
    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="narcotrack-bench-") as tmp:
        work = Path(tmp)
        template = work / "template.sqlite"
        engine = make_engine(f"sqlite:///{template}")
        init_store(engine)
        engine.dispose()
        csv_path = work / f"narcotrack_{a.rows}.csv"
        t = time.perf_counter()
        generate(csv_path, a.rows)
        print(
            f"generated {a.rows:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB) "
            f"in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        if IDS_FILE.exists():
            results.append(
                (
                    "UNODC IDS file -> SQLite",
                    run_case(["import", fresh_sqlite(template, work, "ids"), str(IDS_FILE)]),
                )
            )
        else:
            print(f"skipped the IDS case: {IDS_FILE} not found")
        results.append(
            (
                f"narcotrack CSV {a.rows:,} -> SQLite",
                run_case(["import", fresh_sqlite(template, work, "csv"), str(csv_path)]),
            )
        )
        if not a.no_pg:
            admin = create_engine(
                a.pg_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
            )
            name = f"narcotrack_bench_{uuid.uuid4().hex[:8]}"
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                url = admin.url.set(database=name).render_as_string(hide_password=False)
                pg = make_engine(url)
                init_store(pg)
                pg.dispose()
                results.append(
                    (f"narcotrack CSV {a.rows:,} -> PostgreSQL", run_case(["import", url, str(csv_path)]))
                )
                results.append(
                    (
                        f"row-by-row ORM, {a.orm_rows:,} rows -> PostgreSQL",
                        run_case(["orm", url, str(csv_path), str(a.orm_rows)]),
                    )
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        results.append(
            (
                f"row by row via forms path (pydantic + repo.create_incident), {a.orm_rows:,} rows -> SQLite",
                run_case(["forms", fresh_sqlite(template, work, "forms"), str(csv_path), str(a.orm_rows)]),
            )
        )
        results.append(
            (
                f"row-by-row ORM, {a.orm_rows:,} rows -> SQLite",
                run_case(["orm", fresh_sqlite(template, work, "orm"), str(csv_path), str(a.orm_rows)]),
            )
        )
    print(f"CPU check after: {cpu_check():.2f} s")
    print()
    print("| case | rows | seconds | rows/s | peak RSS importer (MB) | peak RSS reader worker (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results:
        rate = float(r["rows"]) / float(r["seconds"])
        r["rate"] = rate
        print(
            f"| {name} | {r['rows']:,} | {float(r['seconds']):.1f} | {rate:,.0f} | "
            f"{float(r['peak_mb']):.0f} | {float(r['worker_peak_mb']):.0f} |"
        )
    for engine_name in ("SQLite", "PostgreSQL"):
        bulk = [r for n, r in results if n.startswith("narcotrack CSV") and n.endswith(engine_name)]
        orm = [r for n, r in results if n.startswith("row-by-row ORM") and n.endswith(engine_name)]
        if bulk and orm:
            ratio = float(bulk[0]["rate"]) / float(orm[0]["rate"])
            print(f"bulk import vs row-by-row ORM on {engine_name}: {ratio:.0f}x")
    forms = [r for n, r in results if n.startswith("row by row via forms")]
    bulk = [r for n, r in results if n.startswith("narcotrack CSV") and n.endswith("SQLite")]
    if forms and bulk:
        ratio = float(bulk[0]["rate"]) / float(forms[0]["rate"])
        print(f"bulk import vs row by row through the forms path on SQLite: {ratio:.0f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    raise SystemExit(main())
