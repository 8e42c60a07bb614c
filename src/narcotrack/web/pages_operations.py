"""The joint operations workspace page: one operation as the user's organisation may see it.

The workspace is assembled in ``narcotrack.store.operation_workspace`` under the sharing policy's filter;
this module only renders it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from narcotrack.access.policy import visible_filter
from narcotrack.domain.places import country_name, place_by_code
from narcotrack.domain.vocab import vocabularies
from narcotrack.store.operation_workspace import operation_workspace
from narcotrack.web.auth import require_actor
from narcotrack.web.pages_incidents import named

Render = Callable[..., HTMLResponse]
INCIDENT_ROWS = 200  # incidents listed on the page; the incident list filtered by operation has them all


def N_(text: str) -> str:
    return text


ROLES = {"lead": N_("Lead agency"), "participant": N_("Participant")}


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/operations/{operation_id}/workspace", response_class=HTMLResponse,
           summary="Joint operations workspace")
    def workspace_page(request: Request, operation_id: str) -> HTMLResponse:
        """Participants, shared incidents, each side's contributions, outcomes and timeline of one
        operation, counted over what the user may see; 404 when the operation is not visible."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            ws = operation_workspace(session, functools.partial(visible_filter, actor.principal), operation_id,
                                     incident_limit=INCIDENT_ROWS)
            session.commit()
        orgs = {c.org.code: c.org for c in ws.contributions}
        most = max((d.incidents for d in ws.timeline), default=0)
        return render(request, "operation_workspace.html", {
            "actor": actor, "ws": ws, "orgs": orgs, "roles": ROLES, "v": vocabularies(), "named": named,
            "country_name": country_name, "place_by_code": place_by_code, "most": most})

    return r
