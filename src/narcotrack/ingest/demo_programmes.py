"""The demo rows that are not incidents: sharing groups, operations with their participants, training
events, community campaigns and drug-treatment admission figures.

They are few (thousands, not millions), so each is built as a list; their volumes scale with ``--scale``
like the incidents, except the indicator grid, whose values scale instead of its rows.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from typing import Any

from narcotrack.domain.ids import stable_id
from narcotrack.domain.vocab import vocabularies
from narcotrack.ingest.demo_calibration import Calibration, Weighted, uuid7
from narcotrack.ingest.demo_places import Places, oid, pid
from narcotrack.ingest.demo_plan import Operation, Plan, sround, stamp

Rows = list[dict[str, Any]]


def _stamps(when: dt.datetime) -> dict[str, Any]:
    return {"created_at": when, "updated_at": when, "version": 1}


def sharing_group_rows(cal: Calibration, existing: dict[str, str], start: dt.date) -> tuple[dict[str, str], Rows, Rows]:
    """Ids of the demo sharing groups by code, and the rows of groups and members not yet stored.

    A group whose name is already in the store is reused, so a store with hand-made groups still works.
    """
    when, _ = stamp(start, 0)
    ids: dict[str, str] = {}
    groups: Rows = []
    members: Rows = []
    for code, g in cal.routes["sharing_groups"].items():
        if g["name"] in existing:
            ids[code] = existing[g["name"]]
            continue
        gid = ids[code] = stable_id("sharing_group", g["name"])
        groups.append({"id": gid, "name": g["name"], "owner_org_id": oid(g["owner"]), "agreement": g["agreement"],
                       "allows_identity": bool(g["allows_identity"]), "valid_from": start, "valid_to": None,
                       **_stamps(when)})
        members += [{"group_id": gid, "org_id": oid(m)} for m in g["members"]]
    return ids, groups, members


def operation_rows(plan: Plan, group_ids: dict[str, str]) -> tuple[Rows, Rows]:
    """Operations (outcomes filled in after the incidents, see ``outcome_rows``) and participants."""
    ops: Rows = []
    parts: Rows = []
    for op in plan.operations:
        joint = op.kind in ("bilateral", "multilateral")
        ops.append({"id": op.id, "name": op.name, "code": op.code, "kind": op.kind, "lead_org_id": oid(op.lead),
                    "start_date": op.start, "end_date": op.end, "outcomes": "", "owner_org_id": oid(op.lead),
                    "marking": "GREEN" if op.kind == "multilateral" else "AMBER",
                    "distribution": "group" if joint and op.group else "domestic",
                    "sharing_group_id": group_ids[op.group] if joint and op.group else None,
                    **_stamps(op.created)})
        parts += [{"operation_id": op.id, "org_id": oid(org), "role": role} for org, role in op.participants]
    return ops, parts


def outcome_rows(ops: list[Operation]) -> Rows:
    """What each operation achieved, counted from the incidents linked to it."""
    rows = []
    for op in ops:
        when, _ = stamp(op.end, 17 * 3600)
        rows.append({"b_id": op.id, "b_outcomes": f"{op.incidents} incidents, {op.arrests} arrests, "
                     f"{op.kg:,.1f} kg seized (demo figures)", "b_updated": when})
    return rows


class Programmes:
    """Training events, campaigns and treatment admissions of one run."""

    def __init__(self, cal: Calibration, plan: Plan, places: Places, rng: random.Random, ids: random.Random) -> None:
        self.cal, self.plan, self.places, self.rng, self.ids = cal, plan, places, rng, ids
        self.topics = vocabularies().training_topics.codes()

    def _owner(self, org: str) -> dict[str, Any]:
        return {"owner_org_id": org, "marking": self.rng.choice(("CLEAR", "GREEN", "GREEN", "AMBER")),
                "distribution": self.rng.choice(("partners", "domestic", "domestic")), "sharing_group_id": None}

    def training(self) -> tuple[Rows, Rows]:
        cfg, rng = self.cal["training"], self.rng
        providers = Weighted(cfg["providers"])
        trainees = Weighted({f"KH-PP-{p[3:]}": w for p, w in self.cal["province_weights"].items()}
                            | {"KH-GDCE": 15, "KH-ADP": 15, "KH-IMM": 6, "KH-GRK": 8, "KH-NACD": 5, "KH-MOH": 3})
        venues = ["KH-12", "KH-12", "KH-17", "KH-18", "KH-02", "KH-01", "KH-20"]
        events: Rows = []
        parts: Rows = []
        for year in range(self.plan.start.year, self.plan.end.year + 1):
            for _ in range(sround(cfg["per_year"] * self.plan.scale * self.plan.year_fraction(year), rng)):
                day = self._day(year)
                when, ms = stamp(day, 9 * 3600)
                provider = str(providers.pick(rng))
                topic = rng.choice(self.topics)
                eid = uuid7(ms, self.ids)
                events.append({"id": eid, "title": f"{topic.replace('_', ' ').capitalize()} course {year}",
                               "topic": topic, "provider_org_id": oid(provider), "place_id": pid(rng.choice(venues)),
                               "start_date": day, "end_date": day + dt.timedelta(days=rng.randint(1, 10)),
                               **self._owner(oid(provider)), **_stamps(when)})
                orgs = {str(trainees.pick(rng)) for _ in range(rng.randint(2, 6))}
                for org in sorted(orgs):
                    n = rng.randint(*cfg["participants"])
                    parts.append({"event_id": eid, "org_id": oid(org), "participants": n,
                                  "female": sum(rng.random() < cfg["female_share"] for _ in range(n))})
        return events, parts

    def campaigns(self) -> Rows:
        cfg, rng = self.cal["campaigns"], self.rng
        orgs = Weighted(cfg["organisations"])
        audiences = list(cfg["reach"])
        rows: Rows = []
        for year in range(self.plan.start.year, self.plan.end.year + 1):
            for _ in range(sround(cfg["per_year"] * self.plan.scale * self.plan.year_fraction(year), rng)):
                june = dt.date(year, 6, 26)
                in_june = rng.random() < cfg["june_share"] and self.plan.start <= june <= self.plan.end
                day = june - dt.timedelta(days=rng.randint(0, 20)) if in_june else self._day(year)
                day = max(day, self.plan.start)
                province = str(self.plan.province_w.pick(rng))
                org = str(orgs.pick(rng))
                org = f"KH-PP-{province[3:]}" if org == "KH-PP" else org
                audience = rng.choice(audiences)
                lo, hi = cfg["reach"][audience]
                when, ms = stamp(day, 8 * 3600)
                name = self.places.names[province][0]
                rows.append({"id": uuid7(ms, self.ids), "org_id": oid(org), "province_code": province,
                             "name": ("International Day against Drug Abuse: " if in_june else "Drug-free ")
                             + f"{audience} campaign, {name} {year}", "audience": audience,
                             "reach": int(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
                             "start_date": day, "end_date": day + dt.timedelta(days=rng.randint(0, 30)),
                             **self._owner(oid(org)), **_stamps(when)})
        return rows

    def indicators(self) -> Iterator[Rows]:
        """Monthly treatment admissions by province x drug x sex x age band (one list a month), then
        yearly registered users by province."""
        cfg, rng, cal = self.cal["treatment"], self.rng, self.cal
        provinces = Weighted(cal["province_weights"])
        drugs = Weighted(cfg["drugs"])
        bands = cfg["age_bands"]
        owner = oid("KH-MOH")
        base = {"owner_org_id": owner, "marking": "GREEN", "distribution": "domestic", "sharing_group_id": None}
        for m in self.plan.months:
            rows: Rows = []
            last = (m.first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
            frac = sum(cal.day_weight(d) for d in m.days.keys) / cal.year_weight(m.first.year)
            total = cfg["admissions_per_year"] * self.plan.scale * frac * (1 + 0.04 * (m.first.year - 2020))
            when, ms = stamp(min(last, self.plan.end), 20 * 3600)
            for prov in provinces.keys:
                for drug in drugs.keys:
                    for sex, s_share in (("M", cfg["male_share"]), ("F", 1 - cfg["male_share"])):
                        for band, b_share in bands.items():
                            mean = total * provinces.share(prov) * drugs.share(drug) * s_share * b_share
                            value = _count(rng, mean)
                            if not value:  # cells without admissions are not stored
                                continue
                            rows.append({"id": uuid7(ms, self.ids), "measure": "treatment_admissions",
                                         "period_start": m.days.keys[0], "period_end": m.days.keys[-1],
                                         "province_code": prov, "drug": drug, "sex": sex, "age_band": band,
                                         "value": float(value),
                                         "source_text": "narcotrack demo data (synthetic)", **base, **_stamps(when)})
            yield rows
        rows = []
        for year in range(self.plan.start.year, self.plan.end.year + 1):
            end = min(dt.date(year, 12, 31), self.plan.end)
            when, ms = stamp(end, 21 * 3600)
            total = cfg["admissions_per_year"] * cfg["registered_users_per_admission"] * self.plan.scale
            for prov in provinces.keys:
                rows.append({"id": uuid7(ms, self.ids), "measure": "registered_users",
                             "period_start": max(dt.date(year, 1, 1), self.plan.start), "period_end": end,
                             "province_code": prov, "drug": None, "sex": "X", "age_band": "all",
                             "value": float(_count(rng, total * provinces.share(prov))),
                             "source_text": "narcotrack demo data (synthetic)", **base, **_stamps(when)})
        yield rows

    def _day(self, year: int) -> dt.date:
        lo, hi = max(dt.date(year, 1, 1), self.plan.start), min(dt.date(year, 12, 31), self.plan.end)
        return lo + dt.timedelta(days=self.rng.randrange((hi - lo).days + 1))


def _count(rng: random.Random, mean: float) -> int:
    """A Poisson count (normal approximation above 30)."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
