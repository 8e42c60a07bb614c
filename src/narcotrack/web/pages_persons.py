"""Persons pages, for roles that may see identity. Identity is shown as the policy allows (in full or as
a pseudonym) and every page that shows it is an audit event, through ``api_persons.persons_as_shown``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.access.policy import check_may_see_persons, get_visible, visible_filter
from narcotrack.store.queries import PersonFilters, list_persons
from narcotrack.store.schema import Arrest, Incident, Person
from narcotrack.web.api_persons import persons_as_shown
from narcotrack.web.auth import require_actor

Render = Callable[..., HTMLResponse]


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/persons", response_class=HTMLResponse, summary="Persons page")
    def persons(request: Request, nationality: str = "", cursor: str | None = None) -> HTMLResponse:
        """Persons the user may see, newest first, identity per policy; roles without identity rights get 403."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_see_persons(actor.principal)
            page = list_persons(session, functools.partial(visible_filter, actor.principal),
                                PersonFilters(nationality=nationality), cursor=cursor, limit=50)
            people = persons_as_shown(session, request, actor.principal, page.rows)
            session.commit()
        next_url = (f"/persons?{urlencode({'nationality': nationality, 'cursor': page.next_cursor})}"
                    if page.next_cursor else None)
        return render(request, "persons.html", {"actor": actor, "people": people, "nationality": nationality,
                                                "next_url": next_url})

    @r.get("/persons/{person_id}", response_class=HTMLResponse, summary="One person")
    def person(request: Request, person_id: str) -> HTMLResponse:
        """A person, identity per policy, and the arrests of them in incidents the user may see."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_see_persons(actor.principal)
            row = get_visible(session, actor.principal, Person, person_id)
            shown = persons_as_shown(session, request, actor.principal, [row])[0]
            arrests = session.execute(
                select(Arrest, Incident.occurred_on, Incident.place_text)
                .join(Incident, Incident.id == Arrest.incident_id)
                .where(Arrest.person_id == person_id, visible_filter(actor.principal, Incident))
                .order_by(Incident.occurred_on.desc())).all()
            session.commit()
        return render(request, "person.html", {"actor": actor, "person": shown, "arrests": arrests})

    return r


