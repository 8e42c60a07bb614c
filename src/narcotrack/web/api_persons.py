"""JSON API for persons. Identity fields pass the policy's identity rule, and every read of them is audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import Principal, get_visible, identity_access, pseudonym_for, visible_filter
from narcotrack.store.queries import paginate
from narcotrack.store.schema import Person, PersonIdentity
from narcotrack.web.auth import require_actor


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
                     address=request.client.host if request.client else None,
                     detail={"persons": read, "access": sorted({x.identity.access for x in people if x.identity})})


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/persons", tags=["persons"])

    @r.get("", summary="List persons", response_model=PersonPage)
    def list_(request: Request, nationality: str | None = None, cursor: str | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> PersonPage:
        """Persons the caller may see, newest first; identity in full, pseudonymised or absent by policy."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            p = actor.principal
            q = select(Person).where(visible_filter(p, Person))
            if nationality:
                q = q.where(Person.nationality == nationality.upper())
            page = paginate(session, q, Person.id, cursor=cursor, limit=limit)
            idents = _identities(session, [x.id for x in page.rows])
            items = [_out(p, x, idents.get(x.id), request.app.state.pseudonym_key) for x in page.rows]
            _audit(session, request, p, items)
            session.commit()
        return PersonPage(items=items, next_cursor=page.next_cursor)

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

    return r


def _identities(session: Session, ids: list[str]) -> dict[str, PersonIdentity]:
    if not ids:
        return {}
    rows: Any = session.scalars(select(PersonIdentity).where(PersonIdentity.person_id.in_(ids)))
    return {i.person_id: i for i in rows}
