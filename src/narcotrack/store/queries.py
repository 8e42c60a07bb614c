"""Read queries for lists: filters, keyset (cursor) pagination, and the caller's visibility filter.

Lists are ordered newest first by id (UUIDv7 ids sort by creation time), and a cursor is the last id
seen, so page N costs the same as page 1 however deep the list is.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from narcotrack.domain.places import level_of
from narcotrack.errors import InvalidInput
from narcotrack.store.schema import Incident, Organisation, Person, Seizure
from narcotrack.store.seed import place_id

Visible = Callable[[Any], ColumnElement[bool]]
MAX_LIMIT = 500


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the cursor is not one this server gave out") from exc


@dataclass
class Page:
    rows: Sequence[Any]
    next_cursor: str | None


def paginate(session: Session, query: Select[Any], id_column: Any, *, cursor: str | None, limit: int) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    if cursor:
        query = query.where(id_column < decode_cursor(cursor))
    rows = session.execute(query.order_by(id_column.desc()).limit(limit + 1)).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more and rows else None)


@dataclass
class IncidentFilters:
    """Filters of the incident list; every one is optional and they combine with AND."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    place: str | None = None  # a place code at any level: KH-12, KH-1201, KH-120101, or a country TH
    drug: list[str] = field(default_factory=list)
    agency: str | None = None  # reporting organisation code
    operation_id: str | None = None
    marking: list[str] = field(default_factory=list)
    source: str | None = None


def incident_conditions(f: IncidentFilters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.date_from:
        conds.append(Incident.occurred_on >= f.date_from)
    if f.date_to:
        conds.append(Incident.occurred_on <= f.date_to)
    if f.place:
        code = f.place.strip()
        level = level_of(code)
        if level == "province":
            conds.append(Incident.province_code == code)
        elif level == "district":
            conds.append(Incident.district_code == code)
        elif level != "country":
            conds.append(Incident.place_id == place_id(code))
        elif re.fullmatch(r"[A-Za-z]{2}", code):
            conds.append(Incident.country == code.upper())
        else:
            raise InvalidInput(f"place must be a place code such as KH-12 or TH, not {code!r}")
    if f.drug:
        # selects a column of ix_seizure_incident_drug, so the check reads that index only
        drugs = select(Seizure.incident_id).where(Seizure.incident_id == Incident.id,
                                                  Seizure.drug.in_(f.drug))
        conds.append(drugs.exists())
    if f.agency:
        conds.append(Incident.reporting_org_id == select(Organisation.id).where(Organisation.code == f.agency)
                     .scalar_subquery())
    if f.operation_id:
        conds.append(Incident.operation_id == f.operation_id)
    if f.marking:
        conds.append(or_(*(Incident.marking == m for m in f.marking)))
    if f.source:
        conds.append(Incident.source == f.source)
    return conds


def list_incidents(session: Session, visible: Visible, filters: IncidentFilters, *, cursor: str | None = None,
                   limit: int = 50) -> Page:
    """One page of the incidents the caller may see, newest first, filtered in SQL.

    The page's ids are chosen first, from indexes alone (filters, sharing columns and id are all in
    ix_incident_list_province for the common province + period filter); only those rows are then read.
    """
    ids = select(Incident.id).where(visible(Incident), *incident_conditions(filters))
    if cursor:
        ids = ids.where(Incident.id < decode_cursor(cursor))
    n = max(1, min(limit, MAX_LIMIT)) + 1
    if _narrow(filters):
        # A place or an operation selects few rows through its index: find them all, then sort. Without
        # the fence PostgreSQL may walk the primary key backwards reading rows until it has a page, which
        # for a period years back reads most of the table.
        found = ids.cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql")
        page_ids = select(found.c.id).order_by(found.c.id.desc()).limit(n)
    else:
        page_ids = ids.order_by(Incident.id.desc()).limit(n)
    query = select(Incident).where(Incident.id.in_(page_ids.scalar_subquery()))
    return paginate(session, query, Incident.id, cursor=cursor, limit=limit)


def _narrow(f: IncidentFilters) -> bool:
    """Whether the filters include one that an index narrows to a small part of the store."""
    return bool(f.operation_id or (f.place and level_of(f.place.strip()) != "country"))


def org_codes(session: Session) -> dict[str, str]:
    """Organisation id -> code, for showing codes in lists (one query, however many rows)."""
    return {org_id: code for org_id, code in session.execute(select(Organisation.id, Organisation.code))}


def seizures_of(session: Session, incident_ids: Sequence[str]) -> dict[str, list[Seizure]]:
    """Seizures of many incidents in one query (never one query per incident)."""
    out: dict[str, list[Seizure]] = {i: [] for i in incident_ids}
    if incident_ids:
        for s in session.scalars(select(Seizure).where(Seizure.incident_id.in_(incident_ids))):
            out[s.incident_id].append(s)
    return out


@dataclass
class PersonFilters:
    """Filters of the persons list (API, page and export alike)."""

    nationality: str | None = None
    agency: str | None = None  # owner organisation code
    marking: list[str] = field(default_factory=list)


def list_persons(session: Session, visible: Visible, filters: PersonFilters, *, cursor: str | None = None,
                 limit: int = 50) -> Page:
    """One page of the persons the caller may see, newest first, filtered in SQL."""
    query = select(Person).where(visible(Person))
    if filters.nationality and filters.nationality.strip():
        query = query.where(Person.nationality == filters.nationality.strip().upper())
    if filters.agency:
        query = query.where(Person.owner_org_id == select(Organisation.id)
                            .where(Organisation.code == filters.agency).scalar_subquery())
    if filters.marking:
        query = query.where(Person.marking.in_(filters.marking))
    return paginate(session, query, Person.id, cursor=cursor, limit=limit)
