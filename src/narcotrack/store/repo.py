"""Repository functions: the only way the rest of narcotrack writes to or reads records from the store.

Functions take a SQLAlchemy ``Session`` or ``Connection`` and plain values or validated domain models,
and return ORM rows or plain dicts. They do not decide who may see what: that is ``narcotrack.access``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from narcotrack.domain.ids import uuid7
from narcotrack.domain.models import ArrestIn, IncidentIn, OperationIn, PersonIn, SeizureIn, UserIn
from narcotrack.domain.places import resolve_commune, resolve_district, resolve_province
from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import Conflict, InvalidInput, NotFound
from narcotrack.store import migrate, seed
from narcotrack.store.db import check_reachable
from narcotrack.store.records import change_with_history
from narcotrack.store.schema import (
    Arrest,
    Incident,
    Operation,
    OperationParticipant,
    Organisation,
    Person,
    PersonIdentity,
    RecordHistory,
    Seizure,
    User,
    utcnow,
)


def init_store(engine: Engine) -> dict[str, int]:
    """Create or upgrade the schema and load reference data; safe to run again."""
    from narcotrack.store import summary

    check_reachable(engine)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        seeded = seed.seed_all(conn)
    summary.refresh_store(engine)  # builds the trend summaries after an upgrade; a probe otherwise
    return seeded


def org_by_code(session: Session | Connection, code: str) -> Organisation:
    row = session.execute(select(Organisation).where(Organisation.code == code)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no organisation with code {code!r}")
    return row


def org_id_by_code(session: Session | Connection, code: str) -> str:
    org_id = session.scalar(select(Organisation.id).where(Organisation.code == code))
    if org_id is None:
        raise NotFound(f"no organisation with code {code!r}")
    return str(org_id)


def create_user(session: Session, data: UserIn) -> User:
    from narcotrack.access.passwords import hash_password, password_problem

    problem = password_problem(data.password, data.username)
    if problem:
        raise InvalidInput(problem)
    org = org_by_code(session, data.org)
    user = User(
        id=uuid7(),
        username=data.username,
        display_name=data.display_name or data.username,
        org_id=org.id,
        role=data.role,
        password_hash=hash_password(data.password),
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"a user named {data.username!r} already exists") from exc
    return user


def locate(province: str | None, district: str | None = None, commune: str | None = None) -> dict[str, Any]:
    """Resolve a Cambodian place given at any level to place id and province/district codes."""
    if not province:
        raise InvalidInput("a Cambodian place needs at least a province")
    prov = resolve_province(province)
    if prov is None:
        raise InvalidInput(f"unknown province {province!r}")
    code, dist = prov, None
    if district:
        dist = resolve_district(district, prov)
        if dist is None:
            raise InvalidInput(f"unknown district {district!r} in {prov}")
        code = dist
        if commune:
            comm = resolve_commune(commune, dist)
            if comm is None:
                raise InvalidInput(f"unknown commune {commune!r} in {dist}")
            code = comm
    return {"place_id": seed.place_id(code), "province_code": prov, "district_code": dist, "country": "KH"}


def person_rows(data: PersonIn, owner_org_id: str, now: dt.datetime) -> tuple[Person, PersonIdentity]:
    pid = uuid7()
    person = Person(
        id=pid,
        sex=data.sex,
        nationality=data.nationality,
        birth_year=data.date_of_birth.year if data.date_of_birth else None,
        owner_org_id=owner_org_id,
        **data.sharing_fields(),
        created_at=now,
        updated_at=now,
    )
    ident = PersonIdentity(
        person_id=pid,
        name_km=data.name_km,
        name_latin=data.name_latin,
        aliases=data.aliases,
        date_of_birth=data.date_of_birth,
        age_reported=data.age,
        id_numbers=data.id_numbers,
        updated_at=now,
    )
    return person, ident


def create_incident(
    session: Session,
    data: IncidentIn,
    *,
    user_id: str | None = None,
    source: str = "form",
    source_ref: str | None = None,
) -> str:
    """Store an incident with its seizures and arrests (and any new persons); returns the incident id."""
    now = utcnow()
    reporting = org_id_by_code(session, data.reporting_org)
    where: dict[str, Any]
    if data.country == "KH" or data.country is None:
        where = locate(data.province, data.district, data.commune)
    else:
        where = {
            "place_id": seed.place_id(data.country),
            "province_code": None,
            "district_code": None,
            "country": data.country,
        }
    incident = Incident(
        id=uuid7(),
        occurred_on=data.occurred_on,
        place_text=data.place_text,
        place_kind=data.place_kind,
        reporting_org_id=reporting,
        operation_id=data.operation_id,
        narrative=data.narrative,
        source=source,
        source_ref=source_ref,
        created_by=user_id,
        owner_org_id=reporting,
        **data.sharing_fields(),
        created_at=now,
        updated_at=now,
        **where,
    )
    session.add(incident)
    session.flush()  # no ORM relationships: parents are written before children explicitly
    for s in data.seizures:
        session.add(seizure_row(incident.id, s, now))
    for a in data.arrests:
        for row in arrest_rows(session, incident.id, a, reporting, now):
            session.add(row)
            session.flush()
    session.flush()
    return incident.id


def seizure_row(incident_id: str, s: SeizureIn, now: dt.datetime) -> Seizure:
    """A seizure row of an incident, with its mass in kg derived from quantity and unit."""
    return Seizure(
        id=uuid7(),
        incident_id=incident_id,
        drug=s.drug,
        quantity=s.quantity,
        unit=s.unit,
        mass_kg=mass_kg(s.quantity, s.unit, s.drug),
        purity_pct=s.purity_pct,
        concealment=s.concealment,
        transport_mode=s.transport_mode,
        packaging_marking=s.packaging_marking,
        producing_country=s.producing_country,
        origin_country=s.origin_country,
        transit_countries=" ".join(s.transit_countries),
        destination_country=s.destination_country,
        created_at=now,
        updated_at=now,
    )


def arrest_rows(session: Session, incident_id: str, a: ArrestIn, owner_org_id: str,
                now: dt.datetime) -> list[Any]:
    """Rows for an arrest: the new person (and identity) when one is given, then the arrest."""
    rows: list[Any] = []
    person_id = a.person_id
    if a.person is not None:
        person, ident = person_rows(a.person, owner_org_id, now)
        rows += [person, ident]
        person_id = person.id
    elif session.get(Person, person_id) is None:
        raise NotFound(f"no person with id {person_id}")
    rows.append(Arrest(id=uuid7(), incident_id=incident_id, person_id=person_id, role=a.role,
                       charges=a.charges, outcome=a.outcome, created_at=now, updated_at=now))
    return rows


_EDITABLE_INCIDENT = {
    "occurred_on",
    "place_text",
    "place_kind",
    "narrative",
    "operation_id",
    "marking",
    "distribution",
    "sharing_group_id",
}


def update_incident(
    session: Session,
    incident_id: str,
    changes: dict[str, Any],
    *,
    user_id: str | None = None,
    expected_version: int | None = None,
) -> Incident:
    """Change fields of an incident, keeping the old and new value of each in the record's history."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident with id {incident_id}")
    unknown = set(changes) - _EDITABLE_INCIDENT
    if unknown:
        raise InvalidInput(f"these incident fields cannot be changed here: {', '.join(sorted(unknown))}")
    if expected_version is not None and incident.version != expected_version:
        raise Conflict(f"incident {incident_id} changed since version {expected_version}")
    v = vocabularies()
    if "marking" in changes and changes["marking"] not in v.markings:
        raise InvalidInput(f"unknown marking {changes['marking']!r}")
    if "distribution" in changes and changes["distribution"] not in v.distributions:
        raise InvalidInput(f"unknown distribution {changes['distribution']!r}")
    if change_with_history(session, incident, "incident", changes, user_id):
        session.flush()
    return incident


def history(session: Session, record_type: str, record_id: str) -> list[RecordHistory]:
    q = (
        select(RecordHistory)
        .where(RecordHistory.record_type == record_type, RecordHistory.record_id == record_id)
        .order_by(RecordHistory.version)
    )
    return list(session.scalars(q))


def operation_rows(session: Session, data: OperationIn) -> list[Any]:
    """An operation (owned by its lead organisation) and a participant row per organisation in it."""
    lead = org_id_by_code(session, data.lead_org)
    op = Operation(id=uuid7(), name=data.name, code=data.code, kind=data.kind, lead_org_id=lead,
                   start_date=data.start_date, end_date=data.end_date, outcomes=data.outcomes,
                   owner_org_id=lead, **data.sharing_fields())
    rows: list[Any] = [op]
    for code in sorted({data.lead_org, *data.participants}):
        rows.append(OperationParticipant(operation_id=op.id, org_id=org_id_by_code(session, code),
                                         role="lead" if code == data.lead_org else "participant"))
    return rows


def create_operation(session: Session, data: OperationIn) -> str:
    rows = operation_rows(session, data)
    session.add(rows[0])
    session.flush()
    session.add_all(rows[1:])
    session.flush()
    return str(rows[0].id)


def get_incident(session: Session, incident_id: str) -> dict[str, Any]:
    """An incident with its seizures and arrests (person ids only: identity is read through access)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident with id {incident_id}")
    seizures = session.scalars(select(Seizure).where(Seizure.incident_id == incident_id)).all()
    arrests = session.scalars(select(Arrest).where(Arrest.incident_id == incident_id)).all()
    return {"incident": incident, "seizures": list(seizures), "arrests": list(arrests)}

