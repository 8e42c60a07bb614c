"""Reference rows a new store starts with: the gazetteer, the countries and the organisations."""

from __future__ import annotations

from typing import Any

import pycountry
from sqlalchemy import Connection, func, insert, select

from narcotrack.domain.ids import stable_id
from narcotrack.domain.places import iter_gazetteer
from narcotrack.domain.vocab import load_yaml
from narcotrack.store.schema import Organisation, Place, utcnow

BATCH = 5000


def place_id(code: str) -> str:
    return stable_id("place", code)


def org_id(code: str) -> str:
    return stable_id("organisation", code)


def _insert_batches(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        conn.execute(insert(table), rows[i : i + BATCH])


def seed_places(conn: Connection) -> int:
    """Countries (ISO 3166-1) and Cambodia's gazetteer; skipped when already present."""
    if conn.scalar(select(func.count()).select_from(Place)):
        return 0
    now = utcnow()
    base = {"created_at": now, "updated_at": now, "version": 1, "kind": None, "lat": None, "lon": None}
    rows: list[dict[str, Any]] = []
    countries = [(str(c.alpha_2), str(c.name)) for c in pycountry.countries] + [("XK", "Kosovo")]
    for code, name in countries:
        rows.append(
            {
                **base,
                "id": place_id(code),
                "code": code,
                "level": "country",
                "parent_id": None,
                "name_en": name,
                "name_km": "",
                "country": code,
            }
        )
    khmer = {"KH": "កម្ពុជា", "TH": "ថៃ", "VN": "វៀតណាម", "LA": "ឡាវ", "MM": "មីយ៉ាន់ម៉ា", "CN": "ចិន"}
    for row in rows:
        row["name_km"] = khmer.get(row["code"], "")
    for p in iter_gazetteer():
        rows.append(
            {
                **base,
                "id": place_id(p.code),
                "code": p.code,
                "level": p.level,
                "parent_id": place_id(p.parent_code) if p.parent_code else None,
                "name_en": p.name_en,
                "name_km": p.name_km,
                "country": "KH",
            }
        )
    _insert_batches(conn, Place, rows)
    return len(rows)


def organisation_rows() -> list[dict[str, Any]]:
    data = load_yaml("organisations.yaml")
    now = utcnow()
    rows = []
    for o in data["organisations"]:
        rows.append(
            {
                "id": org_id(o["code"]),
                "code": o["code"],
                "name_en": o["name_en"],
                "name_km": o.get("name_km", ""),
                "kind": o["kind"],
                "country": o["country"],
                "domestic": o.get("domestic", True),
                "parent_id": None,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
    pp = data["provincial_police"]
    for p in iter_gazetteer():
        if p.level != "province":
            continue
        code = f"KH-PP-{p.code.removeprefix('KH-')}"
        rows.append(
            {
                "id": org_id(code),
                "code": code,
                "name_en": pp["name_en"].format(province=p.name_en),
                "name_km": pp["name_km"].format(province_km=p.name_km),
                "kind": pp["kind"],
                "country": "KH",
                "domestic": True,
                "parent_id": org_id(pp["parent"]),
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
    return rows


def seed_organisations(conn: Connection) -> int:
    existing = set(conn.scalars(select(Organisation.code)))
    rows = [r for r in organisation_rows() if r["code"] not in existing]
    if rows:
        conn.execute(insert(Organisation), rows)
    return len(rows)


def seed_all(conn: Connection) -> dict[str, int]:
    return {"places": seed_places(conn), "organisations": seed_organisations(conn)}
