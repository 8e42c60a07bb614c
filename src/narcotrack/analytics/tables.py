"""The tables every analysis starts from: visible rows of the store as plain pandas frames.

Analyses never query the store themselves; they take these frames (or frames of the same shape built by a
test, a notebook or another source such as the UNODC IDS file) and give frames back. Each loader takes the
caller's visibility filter (``narcotrack.access.policy.visible_filter`` bound to a principal), so an
analysis only ever sees the rows its caller may see. ``visible=None`` means the whole store, for the
operator's command line and for tests.

Column names are the contract; they are listed in ``COLUMNS`` and in docs/analytics.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Select, func, select
from sqlalchemy.orm import Session, aliased

from narcotrack.store.schema import (
    Arrest,
    Incident,
    Operation,
    OperationParticipant,
    Organisation,
    Person,
    Place,
    Seizure,
)

Visible = Callable[[Any], ColumnElement[bool]]
Conn = Connection | Session
Query = Select[*tuple[Any, ...]]  # a select of any columns

COLUMNS: dict[str, tuple[str, ...]] = {
    "seizures": (
        "incident_id", "occurred_on", "country", "province_code", "district_code", "place_code", "place_kind",
        "reporting_org", "operation_id", "source", "drug", "quantity", "unit", "mass_kg", "transport_mode",
        "concealment", "producing_country", "origin_country", "transit_countries", "destination_country",
        "routing",
    ),
    "arrests": (
        "incident_id", "occurred_on", "country", "province_code", "district_code", "reporting_org",
        "operation_id", "person_id", "role", "nationality", "sex",
    ),
    "incidents": (
        "incident_id", "occurred_on", "country", "province_code", "district_code", "place_code", "place_kind",
        "reporting_org", "operation_id", "source",
    ),
    "operations": (
        "operation_id", "name", "kind", "lead_org", "start_date", "end_date", "participants", "n_agencies",
    ),
}
DATE_COLUMNS = {"occurred_on", "start_date", "end_date"}


def restrict(q: Any, visible: Visible | None, start: dt.date | None = None, end: dt.date | None = None) -> Any:
    """``q`` (a select joining incidents) limited to visible incidents that occurred in [start, end]."""
    if visible is not None:
        q = q.where(visible(Incident))
    if start is not None:
        q = q.where(Incident.occurred_on >= start)
    if end is not None:
        q = q.where(Incident.occurred_on <= end)
    return q


def _frame(conn: Conn, q: Query, name: str) -> pd.DataFrame:
    rows = conn.execute(q).all()
    df = pd.DataFrame.from_records(rows, columns=list(COLUMNS[name]))
    for col in DATE_COLUMNS & set(df.columns):
        df[col] = pd.to_datetime(df[col])
    return df


def _incident_columns() -> tuple[list[Any], Any, Any]:
    org = aliased(Organisation)
    place = aliased(Place)
    cols = [
        Incident.id, Incident.occurred_on, Incident.country, Incident.province_code, Incident.district_code,
        place.code, Incident.place_kind, org.code,
    ]
    return cols, org, place


def seizures(conn: Conn, visible: Visible | None = None, *, start: dt.date | None = None,
             end: dt.date | None = None) -> pd.DataFrame:
    """One row per seizure of a visible incident (``COLUMNS['seizures']``); ``mass_kg`` may be missing."""
    cols, org, place = _incident_columns()
    q = (
        select(*cols, Incident.operation_id, Incident.source, Seizure.drug, Seizure.quantity, Seizure.unit,
               Seizure.mass_kg, Seizure.transport_mode, Seizure.concealment, Seizure.producing_country,
               Seizure.origin_country, Seizure.transit_countries, Seizure.destination_country, Seizure.routing)
        .select_from(Incident)
        .join(Seizure, Seizure.incident_id == Incident.id)
        .join(org, org.id == Incident.reporting_org_id)
        .outerjoin(place, place.id == Incident.place_id)
    )
    return _frame(conn, restrict(q, visible, start, end), "seizures")


def arrests(conn: Conn, visible: Visible | None = None, *, start: dt.date | None = None,
            end: dt.date | None = None) -> pd.DataFrame:
    """One row per person arrested in a visible incident; nationality and sex only, never identity."""
    org = aliased(Organisation)
    q = (
        select(Incident.id, Incident.occurred_on, Incident.country, Incident.province_code,
               Incident.district_code, org.code, Incident.operation_id, Arrest.person_id, Arrest.role,
               Person.nationality, Person.sex)
        .select_from(Incident)
        .join(Arrest, Arrest.incident_id == Incident.id)
        .join(Person, Person.id == Arrest.person_id)
        .join(org, org.id == Incident.reporting_org_id)
    )
    return _frame(conn, restrict(q, visible, start, end), "arrests")


def incidents(conn: Conn, visible: Visible | None = None, *, start: dt.date | None = None,
              end: dt.date | None = None) -> pd.DataFrame:
    """One row per visible incident."""
    cols, org, place = _incident_columns()
    q = (
        select(*cols, Incident.operation_id, Incident.source)
        .select_from(Incident)
        .join(org, org.id == Incident.reporting_org_id)
        .outerjoin(place, place.id == Incident.place_id)
    )
    return _frame(conn, restrict(q, visible, start, end), "incidents")


def operations(conn: Conn, visible: Visible | None = None) -> pd.DataFrame:
    """One row per visible operation, with its participating agencies (codes, space-separated)."""
    lead = aliased(Organisation)
    part = aliased(Organisation)
    q = (
        select(Operation.id, Operation.name, Operation.kind, lead.code, Operation.start_date, Operation.end_date)
        .join(lead, lead.id == Operation.lead_org_id)
    )
    rows = conn.execute(q.where(visible(Operation)) if visible is not None else q).all()
    members: dict[str, list[str]] = {}
    pq = select(OperationParticipant.operation_id, part.code).join(part, part.id == OperationParticipant.org_id)
    for op_id, code in conn.execute(pq.order_by(part.code)).all():
        members.setdefault(op_id, []).append(code)
    records = []
    for op_id, name, kind, lead_code, start, end in rows:
        agencies = sorted(set(members.get(op_id, [])) | {lead_code})
        records.append((op_id, name, kind, lead_code, start, end, " ".join(agencies), len(agencies)))
    df = pd.DataFrame.from_records(records, columns=list(COLUMNS["operations"]))
    for col in ("start_date", "end_date"):
        df[col] = pd.to_datetime(df[col])
    return df


def latest_date(conn: Conn, visible: Visible | None = None) -> dt.date | None:
    """The date of the latest visible incident: analyses count "this month" from it, not from today."""
    value: dt.date | None = conn.scalar(restrict(select(func.max(Incident.occurred_on)), visible))
    return value
