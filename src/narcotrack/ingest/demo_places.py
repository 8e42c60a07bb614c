"""Where demo incidents happen and who reports them: gazetteer communes weighted by their number of
villages (a population proxy), named points (checkpoints, ports, airports) and route sites.

Reference ids come from ``store.seed`` (``place_id``, ``org_id``) so that demo rows point at the seeded
gazetteer and organisations without a query per row.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Any

from narcotrack.domain.places import iter_gazetteer
from narcotrack.ingest.demo_calibration import Calibration, Weighted, choose
from narcotrack.store.seed import org_id, place_id


@cache
def pid(code: str) -> str:
    return place_id(code)


@cache
def oid(code: str) -> str:
    return org_id(code)


@dataclass(frozen=True, slots=True)
class Where:
    """A resolved place of an incident."""

    place_id: str
    province: str
    district: str
    kind: str
    text: str
    admin: str


@cache
def _gazetteer() -> tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, list[str]],
                          dict[str, Weighted[str]]]:
    """Names, parents, village names by commune, and communes (weighted by villages) by district and
    province; read once per process."""
    names: dict[str, tuple[str, str]] = {}
    parent: dict[str, str] = {}
    villages: dict[str, list[str]] = defaultdict(list)
    for p in iter_gazetteer():
        names[p.code] = (p.name_en, p.name_km)
        if p.parent_code:
            parent[p.code] = p.parent_code
        if p.level == "village" and p.parent_code:
            villages[p.parent_code].append(p.name_en)
    communes_by: dict[str, Counter[str]] = defaultdict(Counter)
    for code, up in parent.items():
        if len(code) == 9 and "#" not in code:  # KH-NNNNNN: a commune
            n = max(1, len(villages.get(code, ())))
            communes_by[up][code] += n
            communes_by[up[:5]][code] += n
    return names, parent, dict(villages), {k: Weighted(dict(v)) for k, v in communes_by.items()}


class Places:
    """Gazetteer lookups and weighted choices of places."""

    def __init__(self, cal: Calibration) -> None:
        self.cal = cal
        self.names, self.parent, self.villages, self.communes = _gazetteer()
        self.provinces = Weighted(cal["province_weights"])
        self.cultivation = Weighted(cal["cultivation_provinces"])
        self.points = {p["code"]: p for p in cal.routes["points"]}
        self.kinds = {k: Weighted(v) for k, v in cal["place_kinds"].items()}
        self.reporting = {k: Weighted(v) for k, v in cal["reporting"].items()}

    def province_of(self, code: str) -> str:
        return code[:5]

    def commune(self, rng: random.Random, area: str, kind: str) -> Where:
        """A commune of a province or district (``KH-NN`` / ``KH-NNNN``), with a village as place text."""
        commune = self.communes[area].pick(rng)
        district = self.parent[commune]
        province = district[:5]
        village = choose(rng, self.villages.get(commune) or [self.names[commune][0]])
        text = f"{village} village, {self.names[commune][0]} commune"
        admin = f"{self.names[district][0]}, {self.names[province][0]}"
        return Where(pid(commune), province, district, kind, text, admin)

    def routine(self, rng: random.Random, case: str) -> Where:
        area = self.cultivation.pick(rng) if case == "cultivation" else self.provinces.pick(rng)
        return self.commune(rng, area, self.kinds[case].pick(rng))

    def site(self, rng: random.Random, site: dict[str, Any]) -> Where:
        """A place on a trafficking route: a named point, or a commune of the site's district."""
        if "point" in site:
            p = self.points[site["point"]]
            district = p["district"]
            admin = f"{self.names[district][0]}, {self.names[district[:5]][0]}"
            return Where(pid(p["code"]), district[:5], district, p["kind"], p["name_en"], admin)
        return self.commune(rng, site["district"], site["kind"])

    def reporter(self, rng: random.Random, table: str, province: str) -> str:
        """Organisation id of the reporter; ``KH-PP`` stands for the provincial police of ``province``."""
        code = self.reporting[table].pick(rng)
        if code == "KH-PP":
            code = f"KH-PP-{province[3:]}"
        return oid(code)

    def point_rows(self, existing: set[str], when: dt.datetime) -> list[dict[str, Any]]:
        """Rows of the named points not yet in the store, as children of their district."""
        rows = []
        for p in self.points.values():
            if p["code"] in existing:
                continue
            rows.append({"id": pid(p["code"]), "code": p["code"], "level": "point",
                         "parent_id": pid(p["district"]), "name_en": p["name_en"], "name_km": p["name_km"],
                         "country": "KH", "kind": p["kind"], "lat": float(p["lat"]), "lon": float(p["lon"]),
                         "created_at": when, "updated_at": when, "version": 1})
        return rows
