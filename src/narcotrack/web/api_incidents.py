"""JSON API for incidents (with their seizures): list with filters and cursor, detail, create.

Routes only translate HTTP to calls of store functions and the access policy; they decide nothing.
A record the caller may not see answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import check_may_change, get_visible, visible_filter
from narcotrack.access.recording import record_incident_with_release
from narcotrack.domain.models import IncidentIn, PlaceKind
from narcotrack.errors import InvalidInput
from narcotrack.store.queries import IncidentFilters, list_incidents, org_codes, seizures_of
from narcotrack.store.repo import update_incident
from narcotrack.store.schema import Incident, Seizure
from narcotrack.web.auth import check_csrf, client_address, require_actor
from narcotrack.web.errors import field_errors


class SeizureOut(BaseModel):
    id: str
    drug: str
    quantity: float
    unit: str
    mass_kg: float | None
    purity_pct: float | None
    concealment: str | None
    transport_mode: str | None
    origin_country: str | None
    transit_countries: list[str]
    destination_country: str | None
    likely_duplicate_of: str | None


class IncidentOut(BaseModel):
    id: str
    occurred_on: dt.date | None
    province_code: str | None
    district_code: str | None
    country: str | None
    place_text: str
    place_kind: str | None
    reporting_org: str
    operation_id: str | None
    source: str
    marking: str
    distribution: str
    sharing_group_id: str | None
    version: int
    seizures: list[SeizureOut]


class IncidentPatch(BaseModel):
    """The fields of an incident that may be changed after recording. Sharing changes go through
    releases (wider) or /api/v1/sharing/restrict (narrower); seizures and arrests through their own API."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    occurred_on: dt.date | None = None
    place_text: str | None = Field(default=None, max_length=400)
    place_kind: PlaceKind = None
    narrative: str | None = None
    operation_id: str | None = None
    version: int | None = Field(default=None, description="the version you read; 409 if it changed since")


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


def _seizure_out(s: Seizure) -> SeizureOut:
    return SeizureOut(id=s.id, drug=s.drug, quantity=s.quantity, unit=s.unit, mass_kg=s.mass_kg,
                      purity_pct=s.purity_pct, concealment=s.concealment, transport_mode=s.transport_mode,
                      origin_country=s.origin_country, transit_countries=s.transit_countries.split(),
                      destination_country=s.destination_country, likely_duplicate_of=s.likely_duplicate_of)


def _incident_out(i: Incident, seizures: list[Seizure], org_codes: dict[str, str]) -> IncidentOut:
    return IncidentOut(id=i.id, occurred_on=i.occurred_on, province_code=i.province_code,
                       district_code=i.district_code, country=i.country, place_text=i.place_text,
                       place_kind=i.place_kind, reporting_org=org_codes.get(i.reporting_org_id, i.reporting_org_id),
                       operation_id=i.operation_id, source=i.source, marking=i.marking,
                       distribution=i.distribution, sharing_group_id=i.sharing_group_id, version=i.version,
                       seizures=[_seizure_out(s) for s in seizures])


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

    @r.get("", summary="List incidents", response_model=IncidentPage)
    def list_(
        request: Request,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        place: Annotated[str | None, Query(description="Place code at any level: KH-12, KH-1201, TH")] = None,
        drug: Annotated[list[str] | None, Query(description="Drug code; repeat for several")] = None,
        agency: Annotated[str | None, Query(description="Reporting organisation code, e.g. KH-PP-01")] = None,
        operation: str | None = None,
        marking: Annotated[list[str] | None, Query(description="TLP marking; repeat for several")] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> IncidentPage:
        """Incidents the caller may see, newest first, with their seizures; `next_cursor` fetches the next page."""
        filters = IncidentFilters(date_from=date_from, date_to=date_to, place=place, drug=drug or [],
                                  agency=agency, operation_id=operation, marking=marking or [])
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            page = list_incidents(session, functools.partial(visible_filter, actor.principal), filters,
                                  cursor=cursor, limit=limit)
            seizures = seizures_of(session, [i.id for i in page.rows])
            codes = org_codes(session)
            session.commit()
        return IncidentPage(items=[_incident_out(i, seizures[i.id], codes) for i in page.rows],
                            next_cursor=page.next_cursor)

    @r.get("/{incident_id}", summary="Read one incident", response_model=IncidentOut)
    def detail(request: Request, incident_id: str) -> IncidentOut:
        """One incident with its seizures; 404 when it does not exist or the caller may not see it."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            incident = get_visible(session, actor.principal, Incident, incident_id)
            out = _incident_out(incident, seizures_of(session, [incident_id])[incident_id], org_codes(session))
            session.commit()
        return out

    @r.post("", summary="Record an incident", status_code=201)
    async def create(request: Request) -> JSONResponse:
        """Record an incident with its seizures and arrests; answers 201 with the new id, and the id of the
        release request when the sharing asked for is wider than the role may set alone (else null)."""
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidInput("the body must be JSON") from exc
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            try:
                data = IncidentIn.model_validate(body)
            except ValidationError as exc:
                return JSONResponse({"error": "invalid incident", "fields": field_errors(exc)}, status_code=422)
            done = record_incident_with_release(session, actor.principal, data,
                                                address=client_address(request))
            session.commit()
        return JSONResponse({"id": done.record_id, "release_request": done.release_request_id}, status_code=201)

    @r.patch("/{incident_id}", summary="Change an incident", response_model=IncidentOut)
    async def patch(request: Request, incident_id: str, data: IncidentPatch) -> IncidentOut:
        """Change date, place text and kind, narrative or operation; kept in the record's history, audited."""
        changes = data.model_dump(exclude_unset=True)
        version = changes.pop("version", None)
        if changes.get("occurred_on") and changes["occurred_on"] > dt.date.today():
            raise InvalidInput("occurred_on is in the future")
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            incident = get_visible(session, actor.principal, Incident, incident_id)
            check_may_change(actor.principal, incident)
            before = incident.version
            update_incident(session, incident_id, changes, user_id=actor.user.id, expected_version=version)
            if incident.version != before:
                record_event(session.connection(), "update", user_id=actor.user.id, org_id=actor.user.org_id,
                             record_type="incident", record_id=incident_id,
                             address=client_address(request),
                             detail={"fields": sorted(changes)})
            out = _incident_out(incident, seizures_of(session, [incident_id])[incident_id], org_codes(session))
            session.commit()
        return out

    return r
