"""Incidents, seizures, arrests and intelligence of the demo data, generated month by month.

Each month holds the planned number of Cambodian incidents: routine use and trafficking cases (small
amounts, calibrated shares of drugs and places), laboratories and cannabis fields, the month's planned
large seizures on the trafficking routes (with the groups behind them and intelligence ahead of them),
and reports of partner agencies across the border during joint operations. Rows go to plain lists that
``demo.py`` writes in batches.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import vocabularies
from narcotrack.ingest.demo_calibration import Calibration, Weighted, YearTargets, below, choose, uuid7
from narcotrack.ingest.demo_people import Human, People
from narcotrack.ingest.demo_places import Places, Where, oid, pid
from narcotrack.ingest.demo_plan import Group, Major, Month, Operation, Plan, sround, stamp

PRECURSORS = {"safrole_oil", "precursors_other", "pseudoephedrine", "ephedrine", "p2p", "pmk"}
Sharing = tuple[str, str, str | None]


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; the means used here are small."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(frozen=True, slots=True)
class YearParams:
    """Per-year derived numbers: persons per case of each kind, drug tables."""

    t: YearTargets
    lam_use: float
    lam_trafficking: float
    drugs: dict[str, Weighted[str]]


class Events:
    """Generates the rows of one month at a time."""

    def __init__(self, cal: Calibration, plan: Plan, places: Places, people: People, rng: random.Random,
                 ids: random.Random, sharing_groups: dict[str, str], seed: int) -> None:
        self.cal, self.plan, self.places, self.people = cal, plan, places, people
        self.rng, self.ids, self.seed = rng, ids, seed
        self.group_ids = sharing_groups
        self.members = {k: {oid(m) for m in g["members"]} for k, g in cal.routes["sharing_groups"].items()}
        self.routes: dict[str, Any] = cal.routes["routes"]
        v = vocabularies()
        self.drug_names = {c: list(cal["reported_drugs"].get(c) or [t.name_en]) for c, t in v.drugs.terms.items()}
        self.unit_names = {c: list(cal["reported_units"].get(c) or [c]) for c in v.units.terms}
        self.case_types = cal["case_types"]
        self.roles = {k: Weighted(w) for k, w in cal["roles"].items()}
        self.outcomes = {k: Weighted(w) for k, w in cal["outcomes"].items()}
        self.hide = {k: Weighted(w) for k, w in cal["concealment"].items()}
        self.carry = {k: Weighted(w) for k, w in cal["transport"].items()}
        self.share_tables = {k: (Weighted(t["marking"]), Weighted(t["distribution"]))
                             for k, t in cal["sharing"].items()}
        self.route_w = {k: {f: Weighted(r[f]) for f in ("producing", "origin", "destination", "transport")}
                        | {"drugs": Weighted(r["drugs"])} for k, r in self.routes.items()}
        self.route_nat = {k: Weighted(r.get("nationalities") or {"KH": 1}) for k, r in self.routes.items()}
        self.by_province: dict[str, list[str]] = defaultdict(list)
        sites_in: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = defaultdict(list)
        for key, r in self.routes.items():
            if key in ("lao_north", "thai_west", "vietnam_east"):
                for s in r["sites"]:
                    prov = str(s.get("district") or places.points[s["point"]]["district"])[:5]
                    if key not in self.by_province[prov]:
                        self.by_province[prov].append(key)
                    sites_in[(key, prov)].append((s, float(s["weight"])))
        self.sites_in = {k: Weighted(v) for k, v in sites_in.items()}
        self.member_roles = Weighted({"trafficker": 3, "courier": 4, "distributor": 3})
        self.grades = (Weighted(cal["intel"]["reliability"]), Weighted(cal["intel"]["credibility"]))
        self.ops: dict[str, list[Operation]] = {}
        self.active: dict[str, list[Group]] = {}
        self.local: dict[str, list[Group]] = {}
        self.years: dict[int, YearParams] = {}
        self.n = 0
        self.incidents: list[dict[str, Any]] = []
        self.seizures: list[dict[str, Any]] = []
        self.arrests: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []

    # per-year numbers -------------------------------------------------------------------------------
    def params(self, year: int) -> YearParams:
        if year not in self.years:
            cal, t = self.cal, self.cal.year(year)
            p = cal["persons"]
            s = self.case_types
            r = t.suspects / t.cases
            m_use = float(p["use_factor"]) * r
            m_traf = (r - s["use"] * m_use - s["production"] * p["production_mean"]
                      - s["cultivation"] * p["cultivation_mean"]) / s["trafficking"]
            f_major = min(0.5, cal["major_cases_per_year"] / (t.cases * s["trafficking"]))
            m_routine = (m_traf - f_major * p["major_mean"]) / (1 - f_major)
            lam_t = max(0.0, m_routine / (1 - p["trafficking_no_arrest"]) - 1)
            self.years[year] = YearParams(t, max(0.0, m_use - 1), lam_t,
                                          {k: cal.routine_drugs(k, year) for k in ("use", "trafficking")})
        return self.years[year]

    # the month --------------------------------------------------------------------------------------
    def month(self, m: Month, batch: int) -> Iterator[int]:
        """Generate the incidents of ``m``, pausing (yielding the number made since the last pause) each
        time ``batch`` incidents wait to be drained, so that a month of a large run never sits in memory."""
        rng, yp = self.rng, self.params(m.first.year)
        last = (m.first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        self.ops = defaultdict(list)
        for op in self.plan.operations:
            if op.start <= last and op.end >= m.first:
                for prov in op.provinces:
                    self.ops[prov].append(op)
        self.active, self.local = defaultdict(list), defaultdict(list)
        self.plan.groups = [g for g in self.plan.groups if g.end >= m.first]  # the rest are history
        for g in self.plan.groups:
            if g.start <= last and g.end >= m.first:
                self.active[g.route].append(g)
                self.local[g.province].append(g)
        n_routine = m.count - len(m.majors)
        s = self.case_types
        specs: list[tuple[dt.date, int, int, str, Any]] = []
        if n_routine > 0:  # large seizures take their share of the month's trafficking cases
            kinds = Weighted({"use": s["use"] * m.count, "production": s["production"] * m.count,
                              "cultivation": s["cultivation"] * m.count,
                              "trafficking": max(0.0, s["trafficking"] * m.count - len(m.majors))})
        for i in range(n_routine):
            kind = kinds.pick(rng)
            day = m.days.pick(rng)
            specs.append((day, self._seconds(kind), i, kind, None))
        for i, major in enumerate(m.majors):
            specs.append((major.day, self._seconds("major"), n_routine + i, "major", major))
        for i, (day, op) in enumerate(m.partner):
            specs.append((day, self._seconds("major"), m.count + i, "partner", op))
        specs.sort(key=lambda x: (x[0], x[1], x[2]))
        made = 0
        for day, secs, _, kind, payload in specs:
            when, ms = stamp(day, secs + 1800 + below(rng, 70 * 3600))
            if kind == "major":
                self._major(day, when, ms, yp, payload)
            elif kind == "partner":
                self._partner(day, when, ms, yp, payload)
            else:
                self._routine(kind, day, when, ms, yp)
            made += 1
            if len(self.incidents) >= batch:
                yield made
                made = 0
        for _ in range(sround(self.cal["intel"]["tips_per_year"] * self.plan.scale / 12, rng)):
            self._tip(m.days.pick(rng))
        yield made

    def _seconds(self, kind: str) -> int:
        if kind == "use":  # raids on guesthouses and karaoke parlours happen late
            return (18 * 3600 + below(self.rng, 9 * 3600)) % 86400
        return below(self.rng, 86400)

    # shared pieces ----------------------------------------------------------------------------------
    def _sharing(self, table: str, group: str | None, owner: str) -> Sharing:
        """Marking and distribution; a record goes to a group only when its owner is a member."""
        marks, dists = self.share_tables[table]
        marking, dist = marks.pick(self.rng), dists.pick(self.rng)
        if marking == "RED":
            dist = "owner"
        elif marking in ("CLEAR", "GREEN") and dist == "owner":
            dist = "domestic"
        if dist == "group" and not (group and owner in self.members[group]):
            dist = "domestic"
        return marking, dist, self.group_ids[group] if dist == "group" and group else None

    @staticmethod
    def _person_sharing(s: Sharing) -> Sharing:
        marking, dist, gid = s
        return ("RED" if marking == "RED" else "AMBER", "domestic" if dist == "partners" else dist, gid)

    def _incident(self, day: dt.date, when: dt.datetime, ms: int, where: Where | None, org: str,
                  sharing: Sharing, narrative: str, op: Operation | None, country: str = "KH",
                  place_text: str = "") -> str:
        self.n += 1
        iid = uuid7(ms, self.ids)
        marking, dist, gid = sharing
        self.incidents.append({
            "id": iid, "created_at": when, "updated_at": when, "version": 1, "owner_org_id": org,
            "marking": marking, "distribution": dist, "sharing_group_id": gid, "occurred_on": day,
            "place_id": where.place_id if where else pid(country),
            "province_code": where.province if where else None, "district_code": where.district if where else None,
            "country": country, "place_text": where.text if where else place_text,
            "admin_division_text": where.admin if where else "", "place_kind": where.kind if where else None,
            "reporting_org_id": org, "operation_id": op.id if op else None, "narrative": narrative,
            "source": "demo", "source_ref": f"DEMO-{self.seed}-{self.n:08d}", "import_batch_id": None,
            "created_by": None})
        if op:
            op.incidents += 1
        return iid

    def _seizure(self, iid: str, when: dt.datetime, ms: int, drug: str, qty: float, unit: str, *,
                 hide: str | None, carry: str | None, route: dict[str, Any] | None = None,
                 rw: dict[str, Weighted[str]] | None = None, purity: float | None = None,
                 marking: str = "", op: Operation | None = None) -> float:
        rng = self.rng
        kg = mass_kg(qty, unit, drug)
        self.seizures.append({
            "id": uuid7(ms, self.ids), "incident_id": iid, "drug": drug, "drug_reported": choose(rng, self.drug_names[drug]),
            "quantity": qty, "unit": unit, "unit_reported": choose(rng, self.unit_names[unit]), "mass_kg": kg,
            "purity_pct": purity, "concealment": hide, "transport_mode": carry, "packaging_marking": marking,
            "producing_country": rw["producing"].pick(rng) if rw else None,
            "origin_country": rw["origin"].pick(rng) if rw else None,
            "transit_countries": " ".join(choose(rng, route["transit"])) if route else "",
            "destination_country": rw["destination"].pick(rng) if rw else None,
            "routing": route["routing"] if route else None, "likely_duplicate_of": None,
            "created_at": when, "updated_at": when, "version": 1})
        if op and kg:
            op.kg += kg
        return kg or 0.0

    def _amount(self, kind: str, drug: str) -> tuple[float, str]:
        spec = self.cal["amounts"][kind][drug]
        q = float(spec["median"]) * math.exp(float(spec["sigma"]) * self.rng.gauss(0, 1))
        unit = str(spec["unit"])
        if unit in ("tablet", "plant"):
            return float(max(1, round(q))), unit
        return max(round(q, 2 if unit == "g" else 3), 0.01), unit

    def _arrest(self, iid: str, h: Human, role: str, day: dt.date, when: dt.datetime, ms: int, org: str,
                sharing: Sharing, extra: tuple[str, ...] = (), op: Operation | None = None) -> None:
        rng = self.rng
        person = self.people.record(h, org, day, when, ms, self._person_sharing(sharing))
        outcome = self.outcomes["user" if role == "user" else "default"].pick(rng)
        if h.nationality != "KH" and outcome != "referred_court" and rng.random() < self.cal["foreign_deported_share"]:
            outcome = "deported"
        if outcome == "referred_court":
            h.free_from = day + dt.timedelta(days=rng.randint(*self.cal["groups"]["prison_days"]))
        elif outcome in ("detained", "referred_treatment"):
            h.free_from = day + dt.timedelta(days=30 + below(rng, 150))
        charges = list(self.cal["charges"][role])
        charges += [c for c in extra if c not in charges]
        self.arrests.append({
            "id": uuid7(ms, self.ids), "incident_id": iid, "person_id": person, "role": role, "charges": charges,
            "outcome": outcome, "age_at_arrest": (day - h.birth).days // 365,
            "created_at": when, "updated_at": when, "version": 1})
        if op:
            op.arrests += 1

    def _operation(self, province: str, day: dt.date, route: str | None = None) -> Operation | None:
        for op in self.ops.get(province, ()):
            if (op.start <= day <= op.end and (route is None or op.route in (None, route))
                    and self.rng.random() < self.cal["operations"]["link_share"][op.kind]):
                return op
        return None

    # routine cases ----------------------------------------------------------------------------------
    def _routine(self, kind: str, day: dt.date, when: dt.datetime, ms: int, yp: YearParams) -> None:
        rng, t = self.rng, yp.t
        where = self.places.routine(rng, kind)
        routes = self.by_province.get(where.province)
        route_key = rng.choice(routes) if routes and kind == "trafficking" and rng.random() < 0.25 else None
        route = self.routes[route_key] if route_key else None
        table = "routine"
        if route_key and rng.random() < 0.5:  # a small seizure at a checkpoint or on the road of the route
            sites = self.sites_in[(route_key, where.province)]
            where = self.places.site(rng, sites.pick(rng))
            table = where.kind if where.kind in self.places.reporting else "routine"
        org = self.places.reporter(rng, table, where.province)
        sharing = self._sharing("cross_border" if route else "routine", route["sharing_group"] if route else None,
                                org)
        op = self._operation(where.province, day)
        if kind == "use":
            n = 1 + poisson(rng, yp.lam_use)
        elif kind == "trafficking":
            n = 0 if rng.random() < self.cal["persons"]["trafficking_no_arrest"] else 1 + poisson(rng, yp.lam_trafficking)
        else:
            mean = self.cal["persons"][f"{kind}_mean"]
            n = 1 + poisson(rng, mean - 1)
        seized: list[str] = []
        iid = self._incident(day, when, ms, where, org, sharing, "", op)
        hide = self.hide.get(kind, self.hide[where.kind]).pick(rng)
        carry = self.carry[kind].pick(rng) if kind in self.carry else "none"
        if kind == "cultivation":
            mean = t.cannabis_plants / (t.cases * self.case_types["cultivation"])
            plants = max(1, round(mean * math.exp(1.3 * rng.gauss(0, 1) - 0.845)))  # lognormal with that mean
            self._seizure(iid, when, ms, "cannabis_plants", float(plants), "plant", hide="none", carry="none", op=op)
            seized.append(f"{plants:,} cannabis plants")
        if kind in ("production", "cultivation"):
            for drug in self.cal["amounts"][kind]:
                if kind == "production" or rng.random() < 0.4:
                    q, unit = self._amount(kind, drug)
                    self._seizure(iid, when, ms, drug, q, unit, hide=hide, carry="none", op=op)
                    seized.append(f"{q:g} {unit} of {self.drug_names[drug][0].lower()}")
        elif kind == "trafficking" or rng.random() < 0.75:
            drugs = yp.drugs[kind]
            first = drugs.pick(rng)
            chosen = [first]
            if kind == "trafficking" and rng.random() < self.cal["second_drug_share"]:
                second = drugs.pick(rng)
                if second != first:
                    chosen.append(second)
            rw = self.route_w[route_key] if route_key else None
            for drug in chosen:
                q, unit = self._amount(kind, drug)
                self._seizure(iid, when, ms, drug, q, unit, hide=hide, carry=carry, route=route, rw=rw, op=op,
                              marking=self._packaging(drug))
                seized.append(f"{q:g} {unit} of {self.drug_names[drug][0].lower()}")
        taken: set[str] = set()
        people: list[tuple[Human, str]] = []
        if kind == "trafficking" and n and rng.random() < self.cal["groups"]["share_of_routine_trafficking"]:
            local = [g for g in self.local.get(where.province, ()) if g.start <= day <= g.end]
            if local:
                g = rng.choice(local)
                for h in self._members(g, day, t, rng.randint(1, 2), taken):
                    people.append((h, h.role if h.role in ("courier", "distributor", "trafficker") else "distributor"))
        role_kind = "use" if kind == "use" else kind
        while len(people) < n:
            h = self.people.routine(where.province, day, t, "use" if kind == "use" else "trafficking", taken)
            taken.add(h.key)
            people.append((h, self.roles[role_kind].pick(rng)))
        for h, role in people:
            extra = ("ldc_precursors",) if kind == "production" else ()
            self._arrest(iid, h, role, day, when, ms, org, sharing, extra, op)
        self.incidents[-1]["narrative"] = _narrative(kind, len(people), seized, where)

    def _packaging(self, drug: str) -> str:
        options = self.cal["packaging"].get(drug)
        return str(self.rng.choice(options)) if options and self.rng.random() < 0.5 else ""

    # groups -----------------------------------------------------------------------------------------
    def _members(self, g: Group, day: dt.date, t: YearTargets, k: int, taken: set[str]) -> list[Human]:
        rng = self.rng
        if not g.members:
            for i in range(g.size):
                role = "organiser" if i == 0 else "financier" if i == 1 and g.size > 5 else self.member_roles.pick(rng)
                g.members.append(self._member(g, day, t, role))
        free = [h for h in g.members if h.free_from <= day and h.key not in taken
                and (h.role != "organiser" or rng.random() < 0.15)]
        rng.shuffle(free)
        chosen = free[:k]
        while len(chosen) < k:  # everyone is inside: the group recruits
            h = self._member(g, day, t, "courier")
            g.members.append(h)
            chosen.append(h)
        taken.update(h.key for h in chosen)
        return chosen

    def _member(self, g: Group, day: dt.date, t: YearTargets, role: str) -> Human:
        foreign = self.rng.random() < self.cal["groups"]["foreign_member_share"]
        nat = self.route_nat[g.route].pick(self.rng) if foreign else "KH"
        return self.people.new_human(day, t, nationality=nat, group=g.key, role=role)

    def _major(self, day: dt.date, when: dt.datetime, ms: int, yp: YearParams, major: Major) -> None:
        rng, route = self.rng, self.routes[major.route]
        site = self.plan.route_sites[major.route].pick(rng)
        where = self.places.site(rng, site)
        table = where.kind if where.kind in self.places.reporting else "major"
        org = self.places.reporter(rng, table, where.province)
        cross = route["routing"] != "domestic" or bool(route["sharing_group"])
        sharing = self._sharing("cross_border" if cross else "routine", route["sharing_group"], org)
        op = self._operation(where.province, day, major.route)
        active = [g for g in self.active.get(major.route, ()) if g.start <= day <= g.end]
        g = rng.choice(active) if active else self.plan.new_group(major.route, day)
        if not active:
            self.active[major.route].append(g)
            self.local[g.province].append(g)
        before = [h.records[-1][0] for h in g.members if h.records][:3]
        iid = self._incident(day, when, ms, where, org, sharing, "", op)
        q, unit = self._major_quantity(major)
        rw = self.route_w[major.route]
        carry = {"airport": "air_commercial", "post_office": "mail", "production_site": "none"}.get(
            where.kind) or rw["transport"].pick(rng)
        hide = self.hide[where.kind].pick(rng)
        lo_hi = self.cal["purity"].get(major.drug)
        purity = round(rng.uniform(*lo_hi), 1) if lo_hi and rng.random() < self.cal["purity_recorded_share"] else None
        kg = self._seizure(iid, when, ms, major.drug, q, unit, hide=hide, carry=carry, route=route, rw=rw,
                           purity=purity, marking=self._packaging(major.drug), op=op)
        seized = [f"{q:,.{0 if unit in ('tablet',) else 2}f} {unit} of {self.drug_names[major.drug][0].lower()}"]
        if rng.random() < 0.25:
            other = rw["drugs"].pick(rng)
            if other != major.drug and other in self.cal["amounts"]["trafficking"]:
                q2, unit2 = self._amount("trafficking", other)
                q2 = round(q2 * 20, 2)
                self._seizure(iid, when, ms, other, q2, unit2, hide=hide, carry=carry, route=route, rw=rw, op=op)
                seized.append(f"{q2:g} {unit2} of {self.drug_names[other][0].lower()}")
        n = 1 + poisson(rng, self.cal["persons"]["major_mean"] - 1)
        taken: set[str] = set()
        extra = ("ldc_organised",) + (("ldc_precursors",) if major.drug in PRECURSORS else ())
        members = self._members(g, day, yp.t, n, taken)
        for h in members:
            role = h.role or "courier"
            self._arrest(iid, h, role, day, when, ms, org, sharing, extra, op)
        self.incidents[-1]["narrative"] = (
            f"Large seizure on the route '{route['name']}': {', '.join(seized)} ({kg:,.1f} kg); "
            f"{len(members)} suspect(s) of one network arrested at {where.text}.")
        if before and rng.random() < self.cal["intel"]["before_group_case_share"]:
            links = [("person", p) for p in before] + [("incident", iid)] + ([("operation", op.id)] if op else [])
            lead = max(3, int(rng.expovariate(1 / 20)))
            partner = route["partners"][0] if route["partners"] and rng.random() < 0.3 else "KH-ADP"
            self._report(day - dt.timedelta(days=lead), oid(partner), route["sharing_group"],
                         f"Shipment of {self.drug_names[major.drug][0].lower()} expected on {route['name']}",
                         f"Members of network {g.key} are preparing a consignment through {where.text}.", links)

    def _major_quantity(self, major: Major) -> tuple[float, str]:
        kg, drug = major.kg, major.drug
        if drug == "methamphetamine_tablets":
            return float(max(1000, round(kg / 0.00009, -2))), "tablet"
        if drug == "safrole_oil":
            return round(kg / 1.096, 1), "l"
        if drug == "precursors_other" and self.rng.random() < 0.5:
            return round(kg, 1), "l"
        if kg >= 1000 and self.rng.random() < 0.3:
            return round(kg / 1000, 3), "t"
        if kg < 1:
            return round(kg * 1000, 1), "g"
        return round(kg, 2), "kg"

    # across the border ------------------------------------------------------------------------------
    def _partner(self, day: dt.date, when: dt.datetime, ms: int, yp: YearParams, op: Operation) -> None:
        rng = self.rng
        key = op.route or "thai_west"
        route, rw = self.routes[key], self.route_w[key]
        country = next(iter(route["partner_places"]))
        org = oid(rng.choice([p for p in route["partners"] if p.startswith(country)] or route["partners"]))
        group = op.group if op.group and org in self.members[op.group] else "mekong"
        sharing = (rng.choice(("AMBER", "AMBER", "GREEN")), "group", self.group_ids[group])
        place = rng.choice(route["partner_places"][country])
        iid = self._incident(day, when, ms, None, org, sharing, "", op, country=country, place_text=place)
        drug = rw["drugs"].pick(rng)
        q, unit = self._amount("trafficking", drug) if drug in self.cal["amounts"]["trafficking"] else (1.0, "kg")
        q = round(q * 50, 2)
        self._seizure(iid, when, ms, drug, q, unit, hide=self.hide["border_checkpoint"].pick(rng),
                      carry=rw["transport"].pick(rng), route=route, rw=rw, op=op)
        taken: set[str] = set()
        people = [self.people.new_human(day, yp.t, nationality=country) for _ in range(rng.randint(1, 2))]
        active = [g for g in self.active.get(key, ()) if g.start <= day <= g.end]
        if active and rng.random() < 0.3:  # a Cambodian network's courier caught on the other side
            people += self._members(rng.choice(active), day, yp.t, 1, taken)
        for h in people:
            self._arrest(iid, h, "courier", day, when, ms, org, sharing, ("ldc_trafficking",), op)
        self.incidents[-1]["narrative"] = (
            f"Reported by a partner agency during {op.name}: {q:g} {unit} of "
            f"{self.drug_names[drug][0].lower()} seized at {place}; {len(people)} arrested.")

    # intelligence -----------------------------------------------------------------------------------
    def _report(self, day: dt.date, org: str, group: str | None, title: str, body: str,
                links: list[tuple[str, str]]) -> None:
        rng = self.rng
        day = max(day, self.plan.start)
        when, ms = stamp(day, rng.randrange(7 * 3600, 19 * 3600))
        marking = rng.choice(("AMBER", "AMBER", "AMBER+STRICT", "RED"))
        member = bool(group) and org in self.members[str(group)]
        dist = "owner" if marking == "RED" else ("group" if member and rng.random() < 0.4 else "domestic")
        rid = uuid7(ms, self.ids)
        self.reports.append({
            "id": rid, "created_at": when, "updated_at": when, "version": 1, "owner_org_id": org,
            "marking": marking, "distribution": dist,
            "sharing_group_id": self.group_ids[group] if dist == "group" and group else None,
            "title": title, "body": body, "reported_on": day,
            "source_reliability": self.grades[0].pick(rng), "info_credibility": str(self.grades[1].pick(rng)),
            "reporting_org_id": org})
        for kind, entity in dict.fromkeys(links):
            self.links.append({"report_id": rid, "entity_type": kind, "entity_id": entity})

    def _tip(self, day: dt.date) -> None:
        province = str(self.plan.province_w.pick(self.rng))
        person = self.people.known_record(province)
        links = [("person", person)] if person else []
        name = self.places.names[province][0]
        self._report(day, oid(f"KH-PP-{province[3:]}"), None, f"Tip-off: drug sales reported in {name}",
                     "A community informant reports regular drug sales and use at a rented house.", links)

    def drain(self) -> dict[str, list[dict[str, Any]]]:
        persons, identities, truths = self.people.drain()
        out = {"person": persons, "person_identity": identities, "person_truth": truths,
               "incident": self.incidents, "seizure": self.seizures, "arrest": self.arrests,
               "intel_report": self.reports, "intel_link": self.links}
        self.incidents, self.seizures, self.arrests, self.reports, self.links = [], [], [], [], []
        return out


def _narrative(kind: str, n: int, seized: list[str], where: Where) -> str:
    what = ", ".join(seized) if seized else "no drugs"
    if kind == "use":
        return f"Raid at {where.text}: {n} person(s) tested positive for drug use; seized {what}."
    if kind == "production":
        return f"Clandestine laboratory dismantled at {where.text}: {n} arrested; seized {what}."
    if kind == "cultivation":
        return f"Cannabis field destroyed at {where.text}: {n} arrested; seized {what}."
    if n == 0:
        return f"Abandoned consignment found at {where.text}: {what}; no suspect found."
    return f"{n} suspect(s) arrested for drug trafficking at {where.text}; seized {what}."
