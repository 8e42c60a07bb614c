"""The joint operations workspace: one operation as its partners see it.

For one operation: who takes part (with their roles), the linked incidents, what each side contributed
(incidents, seizures by drug with kilograms, arrests, attributed to the incident's reporting
organisation), the outcomes the lead recorded, and a timeline of the incidents by date.

Like every store module this decides nothing about access: the caller passes its visibility condition
(``functools.partial(narcotrack.access.policy.visible_filter, principal)``). The operation must be
visible (else NotFound, as if it did not exist), and every figure is counted over the linked incidents
the caller may see and nothing else. Incidents the caller may not see are not acknowledged in any way —
no "n more incidents withheld" — because a count of them would tell a partner that RED or AMBER+STRICT
records exist, which their markings forbid (DESIGN.md, "Sharing"; the 404 rule of the detail pages).
So each partner sees a workspace as complete as what is shared with them, and the page says so.

A constant number of queries whatever the size of the operation: the operation, its participants, the
visible linked incidents, their seizures grouped by incident and drug, their arrests grouped by incident,
and the organisations named.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from narcotrack.errors import NotFound
from narcotrack.store.queries import Visible
from narcotrack.store.schema import (
    Arrest,
    Incident,
    Operation,
    OperationParticipant,
    Organisation,
    Seizure,
    SharingGroup,
)

METHOD = (
    "Counted over the incidents linked to this operation that are shared with your organisation, each "
    "credited to the organisation that reported it. Seizures without a known mass add no kilograms (they "
    "are counted apart). Arrests count persons per incident, so a person arrested twice counts twice."
)


@dataclass(frozen=True)
class OrgRef:
    """An organisation as the workspace names it (codes and names are not secret)."""

    id: str
    code: str
    name_en: str
    name_km: str
    country: str
    domestic: bool


@dataclass(frozen=True)
class Participant:
    org: OrgRef
    role: str  # lead | participant


@dataclass
class DrugTotal:
    drug: str  # vocabulary code
    seizures: int = 0
    kg: float = 0.0
    seizures_without_mass: int = 0


@dataclass
class Totals:
    incidents: int = 0
    seizures: int = 0
    kg: float = 0.0
    seizures_without_mass: int = 0
    arrests: int = 0


@dataclass
class Contribution:
    """What one organisation reported in the operation, among the incidents the caller may see."""

    org: OrgRef
    role: str | None  # None: reported linked incidents without being listed as a participant
    incidents: int = 0
    seizures: int = 0
    kg: float = 0.0
    seizures_without_mass: int = 0
    arrests: int = 0
    drugs: list[DrugTotal] = field(default_factory=list)


@dataclass
class WorkspaceIncident:
    id: str
    occurred_on: dt.date | None
    reporting_org: str  # organisation code
    province_code: str | None
    district_code: str | None
    country: str | None
    place_text: str
    marking: str
    distribution: str
    seizures: int = 0
    kg: float = 0.0
    drugs: list[str] = field(default_factory=list)
    arrests: int = 0


@dataclass
class TimelineDay:
    day: dt.date | None  # None: incidents recorded without a date
    incidents: int = 0
    seizures: int = 0
    kg: float = 0.0
    arrests: int = 0
    orgs: list[str] = field(default_factory=list)  # reporting organisation codes that day


@dataclass
class OperationHeader:
    id: str
    name: str
    code: str | None
    kind: str
    lead_org: OrgRef
    start_date: dt.date
    end_date: dt.date | None
    outcomes: str
    owner_org: str
    marking: str
    distribution: str
    sharing_group_id: str | None
    sharing_group: str | None
    version: int


@dataclass
class Workspace:
    operation: OperationHeader
    participants: list[Participant]
    contributions: list[Contribution]
    drug_totals: list[DrugTotal]
    totals: Totals  # all visible linked incidents together
    timeline: list[TimelineDay]
    incidents: list[WorkspaceIncident]  # by date, at most ``incident_limit``
    incidents_total: int  # visible linked incidents (the length of ``incidents`` when not cut)
    method: str = METHOD


def _ref(org: Organisation) -> OrgRef:
    return OrgRef(org.id, org.code, org.name_en, org.name_km, org.country, bool(org.domestic))


def operation_workspace(session: Session, visible: Visible, operation_id: str, *,
                        incident_limit: int | None = None) -> Workspace:
    """The workspace of one operation as the caller (``visible``) may see it; NotFound when the operation
    does not exist or is not visible to the caller."""
    found = session.execute(
        select(Operation, SharingGroup.name)
        .outerjoin(SharingGroup, SharingGroup.id == Operation.sharing_group_id)
        .where(Operation.id == operation_id, visible(Operation))
    ).first()
    if found is None:
        raise NotFound(f"no operation with id {operation_id}")
    op, group_name = found
    roles = dict(session.execute(
        select(OperationParticipant.org_id, OperationParticipant.role)
        .where(OperationParticipant.operation_id == op.id)).all())

    linked = (Incident.operation_id == op.id, visible(Incident))
    incidents = [
        WorkspaceIncident(i.id, i.occurred_on, i.reporting_org_id, i.province_code, i.district_code, i.country,
                          i.place_text, i.marking, i.distribution)
        for i in session.execute(
            select(Incident.id, Incident.occurred_on, Incident.reporting_org_id, Incident.province_code,
                   Incident.district_code, Incident.country, Incident.place_text, Incident.marking,
                   Incident.distribution)
            .where(*linked).order_by(Incident.occurred_on.is_(None), Incident.occurred_on, Incident.id))
    ]
    ids = select(Incident.id).where(*linked)
    seizures = session.execute(
        select(Seizure.incident_id, Seizure.drug, func.count(), func.count(Seizure.mass_kg),
               func.coalesce(func.sum(Seizure.mass_kg), 0.0))
        .where(Seizure.incident_id.in_(ids))
        .group_by(Seizure.incident_id, Seizure.drug)).all()
    arrests = dict(session.execute(
        select(Arrest.incident_id, func.count()).where(Arrest.incident_id.in_(ids))
        .group_by(Arrest.incident_id)).all())

    org_ids = {op.lead_org_id, op.owner_org_id, *roles, *(i.reporting_org for i in incidents)}
    named = session.scalars(select(Organisation).where(Organisation.id.in_(sorted(org_ids))))
    orgs = {o.id: _ref(o) for o in named}

    by_id = {i.id: i for i in incidents}
    per_org_drug: dict[tuple[str, str], DrugTotal] = {}
    for incident_id, drug, n, n_mass, kg in seizures:
        inc = by_id[incident_id]
        inc.seizures += int(n)
        inc.kg += float(kg or 0.0)
        inc.drugs.append(drug)
        t = per_org_drug.setdefault((inc.reporting_org, drug), DrugTotal(drug))
        t.seizures += int(n)
        t.kg += float(kg or 0.0)
        t.seizures_without_mass += int(n) - int(n_mass)
    for inc in incidents:
        inc.arrests = int(arrests.get(inc.id, 0))
        inc.drugs.sort()

    participants = sorted((Participant(orgs[o], r) for o, r in roles.items()),
                          key=lambda p: (p.role != "lead", p.org.code))
    contributions = {p.org.id: Contribution(p.org, p.role) for p in participants}
    for inc in incidents:
        c = contributions.get(inc.reporting_org)
        if c is None:
            c = contributions[inc.reporting_org] = Contribution(orgs[inc.reporting_org], None)
        c.incidents += 1
        c.seizures += inc.seizures
        c.kg += inc.kg
        c.arrests += inc.arrests
    for (org_id, _), t in sorted(per_org_drug.items(), key=lambda kv: (-kv[1].kg, kv[1].drug)):
        contributions[org_id].drugs.append(t)
        contributions[org_id].seizures_without_mass += t.seizures_without_mass
    listed = [c for c in contributions.values() if c.role is not None]
    others = sorted((c for c in contributions.values() if c.role is None), key=lambda c: c.org.code)

    drug_totals: dict[str, DrugTotal] = {}
    for t in per_org_drug.values():
        total = drug_totals.setdefault(t.drug, DrugTotal(t.drug))
        total.seizures += t.seizures
        total.kg += t.kg
        total.seizures_without_mass += t.seizures_without_mass
    totals = Totals(len(incidents), sum(i.seizures for i in incidents), sum(i.kg for i in incidents),
                    sum(t.seizures_without_mass for t in drug_totals.values()), sum(i.arrests for i in incidents))

    days: dict[dt.date | None, TimelineDay] = {}
    day_orgs: dict[dt.date | None, set[str]] = defaultdict(set)
    for inc in incidents:  # in date order, undated last
        d = days.setdefault(inc.occurred_on, TimelineDay(inc.occurred_on))
        d.incidents += 1
        d.seizures += inc.seizures
        d.kg += inc.kg
        d.arrests += inc.arrests
        day_orgs[inc.occurred_on].add(orgs[inc.reporting_org].code)
    for key, d in days.items():
        d.orgs = sorted(day_orgs[key])
    for inc in incidents:
        inc.reporting_org = orgs[inc.reporting_org].code

    header = OperationHeader(op.id, op.name, op.code, op.kind, orgs[op.lead_org_id], op.start_date, op.end_date,
                             op.outcomes or "", orgs[op.owner_org_id].code, op.marking, op.distribution,
                             op.sharing_group_id, group_name, op.version)
    shown = incidents if incident_limit is None else incidents[:incident_limit]
    return Workspace(header, participants, [*listed, *others],
                     sorted(drug_totals.values(), key=lambda t: (-t.kg, t.drug)), totals, list(days.values()),
                     shown, len(incidents))


def as_json(ws: Workspace) -> dict[str, Any]:
    """The workspace as plain JSON values (dates as ISO strings, kilograms rounded to the gram)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: round(v, 3) if k == "kg" and isinstance(v, float) else plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    out: dict[str, Any] = plain(asdict(ws))
    return out
