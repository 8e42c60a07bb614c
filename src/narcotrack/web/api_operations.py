"""The joint operations workspace as JSON (``narcotrack.store.operation_workspace``): the same content as
the page, for partner systems and scripts. The route translates HTTP to a store call and decides nothing."""

import functools
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from narcotrack.access.policy import visible_filter
from narcotrack.store.operation_workspace import as_json, operation_workspace
from narcotrack.web.auth import require_actor


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/operations", tags=["operations"])

    @r.get("/{operation_id}/workspace", summary="Joint operations workspace")
    def workspace(request: Request, operation_id: str) -> dict[str, Any]:
        """Participants with roles, the linked incidents the caller may see, contributions per reporting
        organisation (incidents, seizures and kg per drug, arrests), totals, outcomes and the timeline by
        date; 404 when the operation does not exist or the caller may not see it."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            ws = operation_workspace(session, functools.partial(visible_filter, actor.principal), operation_id)
            session.commit()
        return as_json(ws)

    return r
