"""Demo data: deterministic, calibrated, with the structure analytics and entity resolution rely on.

Runs are short (one year, a small scale) to keep the suite fast; bounds come from the calibration file,
so a change of calibration moves the expectations with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from narcotrack.domain.ids import uuid7 as domain_uuid7
from narcotrack.errors import Conflict, InvalidInput
from narcotrack.ingest import demo
from narcotrack.ingest.demo_calibration import calibration, check, uuid7
from narcotrack.ingest.demo_plan import Plan
from narcotrack.store.db import make_engine
from narcotrack.store.schema import SHAREABLE_TABLES, Base, Incident

END = dt.date(2024, 12, 31)
SMALL = {"years": 1, "scale": 0.05, "end": END}
DEMO_TABLES = ("operation", "operation_participant", "sharing_group", "sharing_group_member", "person",
               "person_identity", "person_truth", "incident", "seizure", "arrest", "intel_report", "intel_link",
               "training_event", "training_participation", "community_campaign", "drug_use_indicator")
METH = ("methamphetamine_tablets", "methamphetamine_crystalline", "methamphetamine")
PRECURSORS = ("safrole_oil", "precursors_other", "pseudoephedrine", "ephedrine", "p2p", "pmk")


def _norm(value: object) -> object:
    """One text form per value on both engines (PostgreSQL returns aware stamps, SQLite naive UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def digest(engine: Engine) -> str:
    """SHA-256 over every demo row, tables in a fixed order, rows by primary key."""
    h = hashlib.sha256()
    with engine.connect() as conn:
        for name in DEMO_TABLES:
            table = Base.metadata.tables[name]
            for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                h.update(repr([_norm(v) for v in row]).encode())
    return h.hexdigest()


def fresh_sqlite(tmp_path: Path, template: Path, name: str) -> Engine:
    path = tmp_path / f"{name}.sqlite"
    shutil.copy(template, path)
    return make_engine(f"sqlite:///{path}")


def scalar(engine: Engine, sql: str) -> float:
    with engine.connect() as conn:
        return float(conn.execute(text(sql)).scalar() or 0)


def test_calibration_names_only_known_codes() -> None:
    assert check() == []


def test_fast_uuid7_is_the_domain_uuid7() -> None:
    a, b = random.Random(5), random.Random(5)
    for ms in (0, 1_700_000_000_000, 2**48 - 1):
        assert uuid7(ms, a) == domain_uuid7(ms, b)


def test_same_seed_same_rows_on_any_engine(engine: Engine, tmp_path: Path, sqlite_template: Path) -> None:
    demo.generate(engine, seed=7, **SMALL)
    again = fresh_sqlite(tmp_path, sqlite_template, "again")
    other = fresh_sqlite(tmp_path, sqlite_template, "other")
    demo.generate(again, seed=7, **SMALL)
    demo.generate(other, seed=8, **SMALL)
    first = digest(engine)
    assert first == digest(again)  # on PostgreSQL this compares PostgreSQL with SQLite
    assert first != digest(other)
    names = "SELECT name_latin FROM person_identity ORDER BY person_id"
    assert _rows(engine, names) == _rows(again, names) != _rows(other, names)


def test_producer_process_gives_the_same_rows(tmp_path: Path, sqlite_template: Path) -> None:
    here = fresh_sqlite(tmp_path, sqlite_template, "here")
    there = fresh_sqlite(tmp_path, sqlite_template, "there")
    a = demo.generate(here, seed=3, parallel=False, **SMALL)
    b = demo.generate(there, seed=3, parallel=True, **SMALL)
    assert a.counts == b.counts
    assert digest(here) == digest(there)


def test_volumes_follow_the_calibration(engine: Engine) -> None:
    scale = 0.1
    summary = demo.generate(engine, seed=2, years=1, scale=scale, end=END)
    target = calibration().year(2024)
    cases = scalar(engine, "SELECT count(*) FROM incident WHERE country = 'KH'")
    arrests = scalar(engine, "SELECT count(*) FROM arrest a JOIN incident i ON i.id = a.incident_id "
                             "WHERE i.country = 'KH'")
    assert cases == pytest.approx(target.cases * scale, rel=0.08)
    assert arrests == pytest.approx(target.suspects * scale, rel=0.10)
    assert 6_000 <= cases / scale <= 12_000 and 10_000 <= arrests / scale <= 28_000  # the brief's range
    foreign = scalar(engine, "SELECT avg(CASE WHEN p.nationality <> 'KH' THEN 1.0 ELSE 0 END) "
                             "FROM arrest a JOIN person p ON p.id = a.person_id")
    female = scalar(engine, "SELECT avg(CASE WHEN p.sex = 'F' THEN 1.0 ELSE 0 END) "
                            "FROM arrest a JOIN person p ON p.id = a.person_id")
    assert 0.02 <= foreign <= 0.055
    assert 0.04 <= female <= 0.09
    not_precursor = ", ".join(f"'{d}'" for d in PRECURSORS)
    drugs_kg = scalar(engine, "SELECT sum(s.mass_kg) FROM seizure s JOIN incident i ON i.id = s.incident_id "
                              f"WHERE i.country = 'KH' AND s.drug NOT IN ({not_precursor})")
    assert drugs_kg == pytest.approx(target.drugs_kg * scale, rel=0.3)
    small = scalar(engine, "SELECT avg(CASE WHEN mass_kg < 0.1 THEN 1.0 ELSE 0 END) FROM seizure")
    assert small > 0.8  # most seizures are user and street-deal amounts
    kinds = {r for (r,) in _rows(engine, "SELECT DISTINCT place_kind FROM incident")}
    assert {"border_checkpoint", "road", "residence"} <= kinds
    origins = {r for (r,) in _rows(engine, "SELECT DISTINCT origin_country FROM seizure")}
    assert {"TH", "LA"} <= origins
    assert summary.incidents == scalar(engine, "SELECT count(*) FROM incident")


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_methamphetamine_dominates(engine: Engine) -> None:
    demo.generate(engine, seed=4, **SMALL)
    by_drug = dict(_rows(engine, "SELECT drug, count(*) FROM seizure GROUP BY drug"))
    meth = sum(int(str(by_drug.get(d, 0))) for d in METH)
    assert meth / sum(int(str(n)) for n in by_drug.values()) > 0.6
    assert max(by_drug, key=lambda d: int(str(by_drug[d]))) in METH


def test_2022_has_the_ketamine_and_precursor_spike(engine: Engine) -> None:
    scale = 0.05
    demo.generate(engine, seed=5, years=1, scale=scale, end=dt.date(2022, 12, 31))
    kg = {str(d): float(str(k)) for d, k in _rows(engine, "SELECT drug, sum(mass_kg) FROM seizure "
                                                          "WHERE mass_kg IS NOT NULL GROUP BY drug")}
    assert kg["ketamine"] > 3 * sum(kg.get(d, 0.0) for d in METH)
    assert sum(kg.get(d, 0.0) for d in PRECURSORS) > 0.5 * 504_000 * scale


def test_seasonality_peaks_in_campaign_and_festival_months() -> None:
    plan = Plan(calibration(), random.Random(1), random.Random(2), dt.date(2024, 1, 1), END, 2.0)
    by_month = {m.first.month: m.count for m in plan.months}
    assert by_month[6] > by_month[2] and by_month[4] > by_month[5] and by_month[12] > by_month[8]


def test_reoffenders_and_trafficking_groups(engine: Engine) -> None:
    demo.generate(engine, seed=6, years=2, scale=0.05, end=END)
    repeat_humans = scalar(engine, "SELECT count(*) FROM (SELECT t.truth_key FROM arrest a JOIN person_truth t "
                                   "ON t.person_id = a.person_id GROUP BY t.truth_key HAVING count(*) > 1) x")
    repeat_records = scalar(engine, "SELECT count(*) FROM (SELECT person_id FROM arrest GROUP BY person_id "
                                    "HAVING count(DISTINCT incident_id) > 1) x")
    groups = scalar(engine, "SELECT count(*) FROM (SELECT group_key FROM person_truth WHERE group_key IS NOT NULL "
                            "GROUP BY group_key HAVING count(DISTINCT truth_key) >= 3) x")
    group_repeat = scalar(engine, "SELECT count(*) FROM (SELECT t.truth_key FROM arrest a JOIN person_truth t "
                                  "ON t.person_id = a.person_id WHERE t.group_key IS NOT NULL "
                                  "GROUP BY t.truth_key HAVING count(DISTINCT a.incident_id) > 1) x")
    assert repeat_humans >= 20 and repeat_records >= 5
    assert groups >= 3 and group_repeat >= 3


def test_same_human_recorded_under_spelling_variants(engine: Engine) -> None:
    demo.generate(engine, seed=6, years=2, scale=0.05, end=END)
    assert scalar(engine, "SELECT count(*) FROM person") == scalar(engine, "SELECT count(*) FROM person_truth")
    rows = _rows(engine, "SELECT t.truth_key, i.name_km, i.name_latin FROM person_truth t "
                         "JOIN person_identity i ON i.person_id = t.person_id WHERE t.truth_key IN "
                         "(SELECT truth_key FROM person_truth GROUP BY truth_key HAVING count(*) > 1)")
    names: dict[object, set[tuple[object, object]]] = {}
    for key, km, latin in rows:
        names.setdefault(key, set()).add((km, latin))
    variants = [v for v in names.values() if len(v) > 1]
    assert len(variants) >= 10
    khmer_only = [v for v in variants if any(latin == "" for _, latin in v)]
    latin = [[str(la).casefold().split() for _, la in v if la] for v in variants]
    reordered = [w for w in latin if any(a != b and sorted(a) == sorted(b) for a in w for b in w)]
    respelled = [w for w in latin if any(sorted(a) != sorted(b) and len(a) == len(b) for a in w for b in w)]
    assert khmer_only and len(reordered) >= 3 and len(respelled) >= 3
    assert any("\u1780" <= ch <= "\u17ff" for v in variants for km, _ in v for ch in str(km))


def test_foreign_partners_take_part_in_operations(engine: Engine) -> None:
    demo.generate(engine, seed=9, **SMALL)
    kinds = {r for (r,) in _rows(engine, "SELECT DISTINCT kind FROM operation")}
    assert kinds == {"single_agency", "national_joint", "bilateral", "multilateral"}
    partners = {r for (r,) in _rows(engine, "SELECT DISTINCT o.code FROM operation_participant p "
                                            "JOIN organisation o ON o.id = p.org_id WHERE NOT o.domestic")}
    assert "UNODC" in partners and partners & {"TH-ONCB", "TH-NSB", "VN-C04", "VN-BGC", "LA-LCDC"}
    linked = scalar(engine, "SELECT count(*) FROM incident WHERE operation_id IS NOT NULL")
    abroad = scalar(engine, "SELECT count(*) FROM incident WHERE country <> 'KH' AND operation_id IS NOT NULL")
    assert linked > 0 and abroad > 0


def test_group_distribution_names_a_group_its_owner_belongs_to(engine: Engine) -> None:
    demo.generate(engine, seed=10, **SMALL)
    total_group = 0.0
    for table in SHAREABLE_TABLES:
        total_group += scalar(engine, f"SELECT count(*) FROM {table} WHERE distribution = 'group'")
        assert scalar(engine, f"SELECT count(*) FROM {table} WHERE distribution = 'group' "
                              "AND sharing_group_id IS NULL") == 0
        outsiders = scalar(engine, f"SELECT count(*) FROM {table} r WHERE r.distribution = 'group' AND NOT EXISTS "
                                   "(SELECT 1 FROM sharing_group_member m WHERE m.group_id = r.sharing_group_id "
                                   "AND m.org_id = r.owner_org_id)")
        assert outsiders == 0, table
    assert total_group > 0
    markings = {r for (r,) in _rows(engine, "SELECT DISTINCT marking FROM incident")}
    assert {"AMBER", "GREEN", "RED"} <= markings
    identity = {bool(r) for (r,) in _rows(engine, "SELECT allows_identity FROM sharing_group")}
    assert identity == {True, False}


def test_refuses_a_store_that_holds_incidents(engine: Engine) -> None:
    demo.generate(engine, seed=11, years=1, scale=0.01, end=END)
    with engine.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(Incident))
    with pytest.raises(Conflict, match="already holds incidents"):
        demo.generate(engine, seed=12, years=1, scale=0.01, end=END)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Incident)) == before


def test_rejects_nonsense_arguments(sqlite_engine: Engine) -> None:
    with pytest.raises(InvalidInput):
        demo.generate(sqlite_engine, years=0)
    with pytest.raises(InvalidInput):
        demo.generate(sqlite_engine, scale=0)


def test_progress_counts_every_incident(sqlite_engine: Engine) -> None:
    calls: list[tuple[int, int]] = []
    summary = demo.generate(sqlite_engine, seed=13, progress=lambda d, t: calls.append((d, t)), **SMALL)
    assert calls and calls[-1] == (summary.incidents, summary.incidents)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert summary.counts["person"] == summary.counts["person_identity"] == summary.counts["person_truth"]
