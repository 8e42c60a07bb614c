"""The administrators' view of federation: the partner nodes, how far each was pulled and pushed, and
how the last exchanges went. Partners are added and exchanged with from the command line
(``narcotrack partners``), where credentials can be given without passing through a browser."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from narcotrack.access.policy import check_is_admin
from narcotrack.domain.vocab import vocabularies
from narcotrack.exchange.partners import last_exchanges, list_partners
from narcotrack.web.auth import require_actor
from narcotrack.web.pages_incidents import named

Render = Callable[..., HTMLResponse]


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/admin/partners", response_class=HTMLResponse, summary="Partner nodes and their exchanges (admin)")
    def partners(request: Request) -> HTMLResponse:
        """Every partner node (also removed ones), its cursors and its last pull and push."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_is_admin(actor.principal)
            infos = list_partners(session, include_removed=True)
            last = last_exchanges(session, [i.partner.id for i in infos])
            session.commit()
        return render(request, "admin_partners.html", {"actor": actor, "partners": infos, "last": last,
                                                       "v": vocabularies(), "named": named})

    return r
