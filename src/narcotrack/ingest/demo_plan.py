"""The plan of a demo run, made before any row is written: how many incidents each month holds, the
large seizures of each year (which carry the year's kilograms), operations and trafficking groups.

Planning first keeps the yearly totals on their calibrated targets while rows are then streamed month by
month, and lets the progress bar know the total.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from narcotrack.ingest.demo_calibration import Calibration, Weighted, expected_kg, uuid7
from narcotrack.ingest.demo_people import Human

TZ = dt.timezone(dt.timedelta(hours=7))  # Cambodia (ICT): dates are local, stamps are stored in UTC


def stamp(day: dt.date, seconds: int) -> tuple[dt.datetime, int]:
    """UTC datetime and epoch milliseconds of ``seconds`` after local midnight of ``day``."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=TZ) + dt.timedelta(seconds=seconds)
    when = local.astimezone(dt.UTC)
    return when, int(when.timestamp() * 1000)


def sround(x: float, rng: random.Random) -> int:
    """Stochastic rounding: the expected value is ``x``, so small scales keep their averages."""
    base = math.floor(x)
    return int(base + (1 if rng.random() < x - base else 0))


def period(end: dt.date, years: int) -> tuple[dt.date, dt.date]:
    """First and last day of the ``years`` ending on ``end``."""
    try:
        before = end.replace(year=end.year - years)
    except ValueError:  # 29 February
        before = end.replace(year=end.year - years, day=28)
    return before + dt.timedelta(days=1), end


@dataclass(slots=True)
class Major:
    day: dt.date
    drug: str
    kg: float
    route: str


@dataclass(slots=True, eq=False)
class Group:
    key: str
    route: str
    province: str
    start: dt.date
    end: dt.date
    size: int
    members: list[Human] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Operation:
    id: str
    code: str
    name: str
    kind: str
    lead: str
    participants: list[tuple[str, str]]
    provinces: set[str]
    start: dt.date
    end: dt.date
    route: str | None
    group: str | None
    created: dt.datetime
    incidents: int = 0
    arrests: int = 0
    kg: float = 0.0


@dataclass(slots=True)
class Month:
    first: dt.date
    days: Weighted[dt.date]
    count: int
    majors: list[Major] = field(default_factory=list)
    partner: list[tuple[dt.date, Operation]] = field(default_factory=list)


class Plan:
    """Monthly counts, large seizures, groups and operations of one run."""

    def __init__(self, cal: Calibration, rng: random.Random, ids: random.Random, start: dt.date,
                 end: dt.date, scale: float) -> None:
        self.cal, self.rng, self.ids, self.scale = cal, rng, ids, scale
        self.start, self.end = start, end
        self.months: list[Month] = []
        self.groups: list[Group] = []
        self.operations: list[Operation] = []
        self.n_groups = 0
        self._day_tables: dict[tuple[dt.date, dt.date], Weighted[dt.date]] = {}
        self.province_w = Weighted(cal["province_weights"])
        routes = cal.routes["routes"]
        self.route_sites = {k: Weighted([(s, float(s["weight"])) for s in r["sites"]]) for k, r in routes.items()}
        self._plan_months()
        for year in range(start.year, end.year + 1):
            self._plan_majors(year)
            self._plan_groups(year)
            self._plan_operations(year)
        self.total = sum(m.count + len(m.partner) for m in self.months)  # incidents, for progress

    # helpers ----------------------------------------------------------------------------------------
    def _days(self, lo: dt.date, hi: dt.date) -> list[dt.date]:
        lo, hi = max(lo, self.start), min(hi, self.end)
        return [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]

    def year_fraction(self, year: int) -> float:
        days = self._days(dt.date(year, 1, 1), dt.date(year, 12, 31))
        return sum(self.cal.day_weight(d) for d in days) / self.cal.year_weight(year)

    def _day_in(self, lo: dt.date, hi: dt.date) -> dt.date:
        key = (lo, hi)
        table = self._day_tables.get(key)
        if table is None:
            table = Weighted([(d, self.cal.day_weight(d)) for d in self._days(lo, hi)])
            if (hi - lo).days > 180:  # whole years are asked for again and again; keep only those
                self._day_tables[key] = table
        return table.pick(self.rng)

    def month_of(self, day: dt.date) -> Month:
        return self.months[(day.year - self.start.year) * 12 + day.month - self.start.month]

    # months -----------------------------------------------------------------------------------------
    def _plan_months(self) -> None:
        first = self.start.replace(day=1)
        while first <= self.end:
            nxt = (first + dt.timedelta(days=32)).replace(day=1)
            days = self._days(first, nxt - dt.timedelta(days=1))
            t = self.cal.year(first.year)
            weights = [(d, self.cal.day_weight(d)) for d in days]
            expected = t.cases * self.scale * sum(w for _, w in weights) / self.cal.year_weight(first.year)
            count = sround(expected * (1 + self.rng.gauss(0, 0.03)), self.rng)
            self.months.append(Month(first, Weighted(weights), max(0, count)))
            first = nxt

    # large seizures ---------------------------------------------------------------------------------
    def routine_kg(self, year: int, frac: float) -> dict[str, float]:
        """Expected kilograms of each drug in a year's routine cases (subtracted from the year's targets)."""
        cal, t = self.cal, self.cal.year(year)
        cases = t.cases * self.scale * frac
        shares = cal["case_types"]
        out: dict[str, float] = defaultdict(float)
        for kind in ("use", "trafficking"):
            drugs = cal.routine_drugs(kind, year)
            extra = 1 + (cal["second_drug_share"] if kind == "trafficking" else 0)
            for d in drugs.keys:
                out[d] += cases * shares[kind] * drugs.share(d) * extra * expected_kg(cal["amounts"][kind][d], d)
        for kind in ("production", "cultivation"):
            for d, amount in cal["amounts"][kind].items():
                out[d] += cases * shares[kind] * expected_kg(amount, d)
        return out

    def _plan_majors(self, year: int) -> None:
        cal, rng = self.cal, self.rng
        frac = self.year_fraction(year)
        if frac <= 0:
            return
        t = cal.year(year)
        routine = self.routine_kg(year, frac)
        targets: dict[str, float] = {}
        for key, total in (("drug_kg_split", t.drugs_kg), ("precursor_split", t.precursors_kg)):
            for drug, share in cal.split(key, year).items():
                want = total * self.scale * frac * share
                targets[drug] = targets.get(drug, 0.0) + max(want - routine.get(drug, 0.0), 0.2 * want)
        n = sround(cal["major_cases_per_year"] * self.scale * frac, rng)
        weight = {d: math.sqrt(kg) for d, kg in targets.items() if kg > 0}
        total_w = sum(weight.values())
        routes = cal.routes["routes"]
        alpha = float(cal["major_pareto_alpha"])
        for drug, kg in targets.items():
            if kg <= 0:
                continue
            k = max(1, sround(n * weight[drug] / total_w, rng))
            draws = [rng.paretovariate(alpha) for _ in range(k)]
            by_route = Weighted({r: float(v["weight"]) * float(v["drugs"].get(drug, 0)) for r, v in routes.items()}
                                if any(drug in v["drugs"] for v in routes.values()) else {"domestic": 1.0})
            for w in draws:
                day = self._day_in(dt.date(year, 1, 1), dt.date(year, 12, 31))
                self.month_of(day).majors.append(Major(day, drug, kg * w / sum(draws), by_route.pick(rng)))
        for m in self.months:
            m.majors.sort(key=lambda x: (x.day, x.drug, x.kg))
            m.count = max(m.count, len(m.majors))

    # groups -----------------------------------------------------------------------------------------
    def new_group(self, route: str, start: dt.date) -> Group:
        cfg, rng = self.cal["groups"], self.rng
        self.n_groups += 1
        site = self.route_sites[route].pick(rng)
        district = site.get("district") or next(
            p["district"] for p in self.cal.routes["points"] if p["code"] == site["point"])
        years = rng.uniform(*cfg["active_years"])
        g = Group(f"G{self.n_groups:06d}", route, str(district)[:5], start,
                  start + dt.timedelta(days=int(years * 365)), rng.randint(*cfg["size"]))
        self.groups.append(g)
        return g

    def _plan_groups(self, year: int) -> None:
        cfg = self.cal["groups"]
        frac = self.year_fraction(year)
        n = sround(cfg["new_per_year"] * self.scale * frac, self.rng)
        if year == self.start.year:
            n = max(n, int(cfg["min_groups"]))
        routes = Weighted({k: float(v["weight"]) for k, v in self.cal.routes["routes"].items()})
        for _ in range(n):
            day = self.start if year == self.start.year and self.rng.random() < 0.5 else self._day_in(
                dt.date(year, 1, 1), dt.date(year, 12, 31))
            self.new_group(routes.pick(self.rng), day)

    # operations -------------------------------------------------------------------------------------
    def _plan_operations(self, year: int) -> None:
        cfg, rng, cal = self.cal["operations"], self.rng, self.cal
        frac = self.year_fraction(year)
        routes = cal.routes["routes"]
        border = {"thai_west": routes["thai_west"], "vietnam_east": routes["vietnam_east"],
                  "lao_north": routes["lao_north"]}
        words = ["Clean Village", "Safe Community", "Cobra", "Golden Net", "Iron Gate", "Blue Lotus",
                 "Monsoon", "Silent River", "Naga", "Mekong Shield", "Border Light", "Lotus Gate"]
        for kind, per_year in cfg["per_year"].items():
            n = sround(per_year * self.scale * frac, rng)
            if year == self.start.year:  # every run shows every kind of operation
                n = max(n, 1)
            for _ in range(n):
                start = self._day_in(dt.date(year, 1, 1), dt.date(year, 12, 31))
                end = min(start + dt.timedelta(days=rng.randint(*cfg["days"])), self.end)
                route: str | None = None
                group: str | None = None
                if kind == "single_agency":
                    prov = str(self.province_w.pick(rng))
                    lead = f"KH-PP-{prov[3:]}"
                    parts, provinces = [lead], {prov}
                elif kind == "national_joint":
                    provs = {str(self.province_w.pick(rng)) for _ in range(3)} | {"KH-12"}
                    lead = rng.choice(["KH-NACD", "KH-ADP"])
                    parts = [lead, "KH-ADP", "KH-GDCE", "KH-GRK", "KH-IMM", *(f"KH-PP-{p[3:]}" for p in provs)]
                    provinces = provs
                elif kind == "bilateral":
                    route = rng.choice(sorted(border))
                    r = border[route]
                    provinces = {self._site_province(s) for s in r["sites"]}
                    lead = rng.choice(["KH-ADP", r["partners"][0]])
                    parts = [lead, "KH-ADP", "KH-GDCE", *r["partners"], *(f"KH-PP-{p[3:]}" for p in provinces)]
                    group = r["sharing_group"]
                else:
                    route = rng.choice(sorted(border))
                    provinces = {self._site_province(s) for r in border.values() for s in r["sites"]} | {"KH-12"}
                    lead = rng.choice(["UNODC", "KH-NACD"])
                    parts = [lead, "UNODC", "KH-NACD", "KH-ADP", "KH-GDCE", "TH-ONCB", "VN-C04", "LA-LCDC",
                             "INTERPOL-KH"]
                    group = "mekong"
                seen: dict[str, str] = {}
                for p in parts:
                    seen.setdefault(p, "lead" if p == lead else "participant")
                n = len(self.operations) + 1
                created, ms = stamp(start, 8 * 3600)
                op = Operation(uuid7(ms, self.ids), f"DEMO-{year}-{n:05d}", f"Operation {rng.choice(words)} {n:04d}",
                               kind, lead, sorted(seen.items()), provinces, start, end, route, group, created)
                self.operations.append(op)
                if kind in ("bilateral", "multilateral"):
                    for _ in range(rng.randint(*cfg["partner_incidents"])):
                        day = self._day_in(start, end)
                        self.month_of(day).partner.append((day, op))

    def _site_province(self, site: dict[str, Any]) -> str:
        if "district" in site:
            return str(site["district"])[:5]
        return next(str(p["district"])[:5] for p in self.cal.routes["points"] if p["code"] == site["point"])
