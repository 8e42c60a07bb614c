"""JSON API for persons. Identity fields pass the policy's identity rule, and every read of them is audited."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import (
    Principal,
    check_may_change,
    check_may_export,
    check_may_record,
    check_may_see_persons,
    get_visible,
    identity_access,
    may_set_distribution,
    may_set_marking,
    pseudonym_for,
    visible_filter,
)
from narcotrack.domain.models import Country, PersonIn, Sex
from narcotrack.errors import Forbidden, InvalidInput
from narcotrack.store.persons import IDENTITY_FIELDS, create_person, update_person
from narcotrack.store.queries import PersonFilters, list_persons
from narcotrack.store.schema import Person, PersonIdentity
from narcotrack.web import ratelimit
from narcotrack.web.auth import check_csrf, client_address, require_actor
from narcotrack.web.export import XLSX_MEDIA, csv_body, xlsx_body


class IdentityOut(BaseModel):
    """Identity as the caller may see it: in full, as a pseudonym only, or not at all (null)."""

    access: str  # full | pseudonym
    pseudonym: str | None = None
    name_km: str | None = None
    name_latin: str | None = None
    aliases: list[str] = []
    date_of_birth: dt.date | None = None
    id_numbers: list[str] = []


class PersonOut(BaseModel):
    id: str
    sex: str
    nationality: str | None
    birth_year: int | None
    marking: str
    distribution: str
    identity: IdentityOut | None


class PersonPage(BaseModel):
    items: list[PersonOut]
    next_cursor: str | None


def _out(p: Principal, person: Person, ident: PersonIdentity | None, key: bytes) -> PersonOut:
    access = identity_access(p, person)
    identity = None
    if access == "full" and ident is not None:
        identity = IdentityOut(access="full", name_km=ident.name_km, name_latin=ident.name_latin,
                               aliases=list(ident.aliases or []), date_of_birth=ident.date_of_birth,
                               id_numbers=list(ident.id_numbers or []))
    elif access == "pseudonym":
        identity = IdentityOut(access="pseudonym", pseudonym=pseudonym_for(key, p, person, person.id))
    return PersonOut(id=person.id, sex=person.sex, nationality=person.nationality, birth_year=person.birth_year,
                     marking=person.marking, distribution=person.distribution, identity=identity)


def _audit(session: Session, request: Request, p: Principal, people: list[PersonOut]) -> None:
    read = [x.id for x in people if x.identity is not None]
    if read:
        record_event(session.connection(), "read_person_identity", user_id=p.user_id, org_id=p.org_id,
                     record_type="person", record_id=read[0] if len(read) == 1 else None,
                     address=client_address(request),
                     detail={"persons": read, "access": sorted({x.identity.access for x in people if x.identity})})


def persons_as_shown(
    session: Session, request: Request, p: Principal, persons: Sequence[Person]
) -> list[PersonOut]:
    """Persons as ``p`` may see their identity (full, pseudonym or none), the identity read audited.

    Every way that shows persons (this API, the incident pages) goes through here, so none can show
    identity without its audit event.
    """
    idents = _identities(session, [x.id for x in persons])
    items = [_out(p, x, idents.get(x.id), request.app.state.pseudonym_key) for x in persons]
    _audit(session, request, p, items)
    return items


class PersonPatch(BaseModel):
    """Fields of a person the owner organisation may correct; identity fields only for roles that may see
    identity. Sharing changes go through releases or restriction."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sex: Sex | None = None
    nationality: Country = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    name_km: str | None = Field(default=None, max_length=200)
    name_latin: str | None = Field(default=None, max_length=200)
    aliases: list[str] | None = None
    date_of_birth: dt.date | None = None
    id_numbers: list[str] | None = None
    version: int | None = None


EXPORT_COLUMNS = ["id", "sex", "nationality", "birth_year", "marking", "distribution", "identity", "pseudonym",
                  "name_km", "name_latin", "aliases", "date_of_birth", "id_numbers"]


def _export_rows(session: Session, request: Request, p: Principal, nationality: str | None) -> Iterator[list[Any]]:
    cursor = None
    while True:
        page = list_persons(session, functools.partial(visible_filter, p), PersonFilters(nationality=nationality),
                            cursor=cursor, limit=500)
        for x in persons_as_shown(session, request, p, page.rows):  # identity reads audited per batch
            i = x.identity
            yield [x.id, x.sex, x.nationality, x.birth_year, x.marking, x.distribution, i.access if i else "none",
                   i.pseudonym if i else None, i.name_km if i else None, i.name_latin if i else None,
                   "; ".join(i.aliases) if i else None, i.date_of_birth if i else None,
                   "; ".join(i.id_numbers) if i else None]
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/persons", tags=["persons"])

    @r.get("/export.{fmt}", summary="Export persons as CSV or XLSX_MEDIA")
    def export(request: Request, fmt: str, nationality: str | None = None) -> StreamingResponse:
        """Persons the caller may see, identity exactly as the list shows it (full, pseudonym or none);
        the export and the identity it holds are audited."""
        if fmt not in {"csv", "xlsx"}:
            raise InvalidInput("export as csv or xlsx")
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_export(actor.principal)
            ratelimit.check(request, "export", actor.user.id)
            rows = _export_rows(session, request, actor.principal, nationality)
            body, count = (csv_body if fmt == "csv" else xlsx_body)(rows, EXPORT_COLUMNS)
            record_event(session.connection(), "export", user_id=actor.user.id, org_id=actor.user.org_id,
                         record_type="person", address=client_address(request),
                         detail={"format": fmt, "rows": count, "filters": {"nationality": nationality} if nationality else {}})
            session.commit()
        media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_MEDIA
        return StreamingResponse(body, media_type=media,
                                 headers={"content-disposition": f'attachment; filename="persons.{fmt}"'})

    @r.get("", summary="List persons", response_model=PersonPage)
    def list_(request: Request, nationality: str | None = None,
              agency: Annotated[str | None, Query(description="Owner organisation code")] = None,
              marking: Annotated[list[str] | None, Query(description="TLP marking; repeat for several")] = None,
              cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> PersonPage:
        """Persons the caller may see, newest first; identity in full, pseudonymised or absent by policy."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            p = actor.principal
            page = list_persons(session, functools.partial(visible_filter, p),
                                PersonFilters(nationality=nationality, agency=agency, marking=marking or []),
                                cursor=cursor, limit=limit)
            items = persons_as_shown(session, request, p, page.rows)
            session.commit()
        return PersonPage(items=items, next_cursor=page.next_cursor)

    @r.post("", summary="Record a person", status_code=201)
    async def create(request: Request, data: PersonIn) -> JSONResponse:
        """A person not (yet) linked to an arrest, owned by the caller's organisation; answers 201 with the
        id. Sharing wider than the role may set alone is refused here: record it narrower and propose the
        wider sharing for release. Audited."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            p = actor.principal
            check_may_record(p, p.org_id, data.distribution)
            if not may_set_distribution(p, data.distribution) or not may_set_marking(p, data.marking):
                raise Forbidden("your role may not share this widely on its own: record the person narrower and "
                                "propose the wider sharing for a supervisor's release")
            person_id = create_person(session, data, owner_org_id=p.org_id)
            record_event(session.connection(), "create", user_id=p.user_id, org_id=p.org_id, record_type="person",
                         record_id=person_id, address=client_address(request))
            session.commit()
        return JSONResponse({"id": person_id}, status_code=201)

    @r.get("/{person_id}", summary="Read one person", response_model=PersonOut)
    def detail(request: Request, person_id: str) -> PersonOut:
        """One person; 404 when absent or not visible. Reading identity is audited."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            person = get_visible(session, actor.principal, Person, person_id)
            out = _out(actor.principal, person, session.get(PersonIdentity, person_id), request.app.state.pseudonym_key)
            _audit(session, request, actor.principal, [out])
            session.commit()
        return out

    @r.patch("/{person_id}", summary="Correct a person", response_model=PersonOut)
    async def patch(request: Request, person_id: str, data: PersonPatch) -> PersonOut:
        """Correct attributes or identity of a person the caller's organisation owns; the history names the
        identity fields that changed but keeps no copy of their values; audited."""
        changes = data.model_dump(exclude_unset=True)
        version = changes.pop("version", None)
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            person = get_visible(session, actor.principal, Person, person_id)
            check_may_change(actor.principal, person)
            if set(changes) & IDENTITY_FIELDS:
                check_may_see_persons(actor.principal)
            changed = update_person(session, person_id, changes, user_id=actor.user.id, expected_version=version)
            if changed:
                record_event(session.connection(), "update", user_id=actor.user.id, org_id=actor.user.org_id,
                             record_type="person", record_id=person_id,
                             address=client_address(request), detail={"fields": changed})
            out = persons_as_shown(session, request, actor.principal, [person])[0]
            session.commit()
        return out

    return r


def _identities(session: Session, ids: list[str]) -> dict[str, PersonIdentity]:
    if not ids:
        return {}
    rows: Any = session.scalars(select(PersonIdentity).where(PersonIdentity.person_id.in_(ids)))
    return {i.person_id: i for i in rows}
