"""The record types served by the generic API and pages, described as data (see ``records``).

Incidents and persons have their own routes (their detail joins seizures, arrests and identity under the
sharing policy); organisations and sharing groups are administered on their own pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.domain.ids import uuid7
from narcotrack.domain.models import OperationIn
from narcotrack.domain.places import resolve_province
from narcotrack.domain.record_models import ArrestAdd, CampaignIn, IndicatorIn, SeizureAdd, TrainingEventIn
from narcotrack.domain.units import mass_kg
from narcotrack.errors import InvalidInput
from narcotrack.store import seed
from narcotrack.store.records import RecordType
from narcotrack.store.repo import arrest_rows, operation_rows, org_id_by_code, seizure_row
from narcotrack.store.schema import (
    Arrest,
    CommunityCampaign,
    DrugUseIndicator,
    Incident,
    Operation,
    OperationParticipant,
    Organisation,
    Seizure,
    TrainingEvent,
    TrainingParticipation,
    utcnow,
)


def _province(text: str | None) -> str | None:
    if not text:
        return None
    code = resolve_province(text)
    if code is None:
        raise InvalidInput(f"unknown province {text!r}")
    return code


def _training(session: Session, d: TrainingEventIn, owner: str) -> list[Any]:
    province = _province(d.province)
    event = TrainingEvent(id=uuid7(), title=d.title, topic=d.topic, provider_org_id=owner,
                          place_id=seed.place_id(province) if province else None, start_date=d.start_date,
                          end_date=d.end_date, owner_org_id=owner, **d.sharing_fields())
    return [event, *(TrainingParticipation(event_id=event.id, org_id=org_id_by_code(session, p.org),
                                           participants=p.participants, female=p.female)
                     for p in d.participation)]


def _campaign(session: Session, d: CampaignIn, owner: str) -> list[Any]:
    return [CommunityCampaign(id=uuid7(), name=d.name, org_id=owner, province_code=_province(d.province),
                              audience=d.audience, reach=d.reach, start_date=d.start_date, end_date=d.end_date,
                              owner_org_id=owner, **d.sharing_fields())]


def _indicator(session: Session, d: IndicatorIn, owner: str) -> list[Any]:
    return [DrugUseIndicator(id=uuid7(), measure=d.measure, period_start=d.period_start, period_end=d.period_end,
                             province_code=_province(d.province), drug=d.drug, sex=d.sex, age_band=d.age_band,
                             value=d.value, source_text=d.source_text, owner_org_id=owner, **d.sharing_fields())]


def _operation(session: Session, d: OperationIn, owner: str) -> list[Any]:
    return operation_rows(session, d)


def _seizure(session: Session, d: SeizureAdd, owner: str) -> list[Any]:
    return [seizure_row(d.incident_id, d, utcnow())]


def _arrest(session: Session, d: ArrestAdd, owner: str) -> list[Any]:
    return arrest_rows(session, d.incident_id, d, owner, utcnow())


def _operation_participants(session: Session, ids: Sequence[str]) -> dict[str, str]:
    """Participating agencies of many operations in one query, the lead first."""
    out: dict[str, list[str]] = {i: [] for i in ids}
    rows = session.execute(select(OperationParticipant.operation_id, Organisation.code, OperationParticipant.role)
                           .join(Organisation, Organisation.id == OperationParticipant.org_id)
                           .where(OperationParticipant.operation_id.in_(ids))
                           .order_by(OperationParticipant.role != "lead", Organisation.code))
    for op, code, role in rows:
        out[op].append(f"{code} ({role})" if role == "lead" else code)
    return {k: ", ".join(v) for k, v in out.items()}


def _training_participants(session: Session, ids: Sequence[str]) -> dict[str, str]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    rows = session.execute(select(TrainingParticipation.event_id, Organisation.code,
                                  TrainingParticipation.participants, TrainingParticipation.female)
                           .join(Organisation, Organisation.id == TrainingParticipation.org_id)
                           .where(TrainingParticipation.event_id.in_(ids)).order_by(Organisation.code))
    for event, code, n, female in rows:
        out[event].append(f"{code} {n} ({female} F)")
    return {k: ", ".join(v) for k, v in out.items()}


def _seizure_mass(row: Seizure) -> None:
    row.mass_kg = mass_kg(row.quantity, row.unit, row.drug)


SHARING = ("owner_org_id", "marking", "distribution", "sharing_group_id")

RECORD_TYPES: dict[str, RecordType] = {rt.slug: rt for rt in [
    RecordType(
        name="operation", slug="operations", label="operations", model=Operation,
        columns=("name", "code", "kind", "lead_org_id", "start_date", "end_date", "outcomes", *SHARING),
        create_model=OperationIn, build=_operation,
        editable=frozenset({"name", "kind", "start_date", "end_date", "outcomes"}),
        date_column="start_date", agency_column="lead_org_id", search_columns=("name", "code", "outcomes"),
        extra={"owner_field": "lead_org", "related": {"participants": _operation_participants}},
    ),
    RecordType(
        name="training_event", slug="training", label="training events", model=TrainingEvent,
        columns=("title", "topic", "provider_org_id", "place_id", "start_date", "end_date", *SHARING),
        create_model=TrainingEventIn, build=_training,
        editable=frozenset({"title", "topic", "start_date", "end_date"}),
        date_column="start_date", agency_column="provider_org_id", search_columns=("title",),
        extra={"owner_field": "provider_org", "related": {"participants": _training_participants}},
    ),
    RecordType(
        name="community_campaign", slug="campaigns", label="campaigns", model=CommunityCampaign,
        columns=("name", "org_id", "province_code", "audience", "reach", "start_date", "end_date", *SHARING),
        create_model=CampaignIn, build=_campaign,
        editable=frozenset({"name", "audience", "reach", "start_date", "end_date"}),
        date_column="start_date", place_column="province_code", agency_column="org_id", search_columns=("name",),
        extra={"owner_field": "org"},
    ),
    RecordType(
        name="drug_use_indicator", slug="indicators", label="indicators", model=DrugUseIndicator,
        columns=("measure", "period_start", "period_end", "province_code", "drug", "sex", "age_band", "value",
                 "source_text", *SHARING),
        create_model=IndicatorIn, build=_indicator,
        editable=frozenset({"value", "source_text", "period_start", "period_end"}),
        date_column="period_start", place_column="province_code", drug_column="drug",
        agency_column="owner_org_id", search_columns=("source_text",),
    ),
    RecordType(
        name="seizure", slug="seizures", label="seizures", model=Seizure,
        columns=("incident_id", "drug", "quantity", "unit", "mass_kg", "purity_pct", "concealment",
                 "transport_mode", "packaging_marking", "producing_country", "origin_country",
                 "transit_countries", "destination_country", "likely_duplicate_of"),
        create_model=SeizureAdd, build=_seizure,
        editable=frozenset({"drug", "quantity", "unit", "purity_pct", "concealment", "transport_mode",
                            "packaging_marking", "origin_country", "destination_country"}),
        drug_column="drug", search_columns=("packaging_marking",), parent=Incident, parent_key="incident_id",
        extra={"after_update": _seizure_mass},
    ),
    RecordType(
        name="arrest", slug="arrests", label="arrests", model=Arrest,
        columns=("incident_id", "person_id", "role", "charges", "outcome", "age_at_arrest"),
        create_model=ArrestAdd, build=_arrest,
        editable=frozenset({"role", "charges", "outcome"}),
        parent=Incident, parent_key="incident_id",
    ),
]}
