"""Search across records, as a page and as JSON. Person hits show names, so they are audited as reads of
personal data."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import full_identity_filter, visible_filter
from narcotrack.store.schema import Person
from narcotrack.store.search import Hit, search
from narcotrack.web.auth import Actor, client_address, require_actor

Render = Callable[..., HTMLResponse]


class HitOut(BaseModel):
    record_type: str
    id: str
    label: str
    url: str


def _search(request: Request, session: Session, actor: Actor, q: str) -> list[Hit]:
    p = actor.principal
    hits = search(session, functools.partial(visible_filter, p), full_identity_filter(p, Person), q)
    persons = [h.id for h in hits if h.record_type == "persons"]
    if persons:
        record_event(session.connection(), "read_person_identity", user_id=p.user_id, org_id=p.org_id,
                     record_type="person", address=client_address(request),
                     detail={"persons": persons, "access": ["full"], "via": "search"})
    return hits


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/api/v1/search", summary="Search records", response_model=list[HitOut], tags=["search"])
    def api_search(request: Request, q: Annotated[str, Query(min_length=2, max_length=100)]) -> Any:
        """Incidents, persons (by name, only where identity reaches the caller in full), operations,
        training events, campaigns and indicators whose text contains `q`; up to 50 of each."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            hits = _search(request, session, actor, q)
            session.commit()
        return [HitOut(record_type=h.record_type, id=h.id, label=h.label, url=f"/{h.record_type}/{h.id}")
                for h in hits]

    @r.get("/search", response_class=HTMLResponse, summary="Search page")
    def page(request: Request, q: str = "") -> HTMLResponse:
        """The same search as a page; an empty query shows the search box only."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            hits = _search(request, session, actor, q) if q.strip() else []
            session.commit()
        return render(request, "search.html", {"actor": actor, "q": q, "hits": hits})

    return r
