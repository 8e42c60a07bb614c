"""The release page: proposals waiting for a supervisor's decision, and the user's own proposals.

Forms post to the routes below and come back to the page (post/redirect/get); every rule is in
narcotrack.access.release and narcotrack.access.policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from narcotrack.access import release as rel
from narcotrack.store.schema import RELEASE_STATUSES
from narcotrack.web.auth import check_csrf, client_address, require_actor

Render = Callable[..., HTMLResponse]
DONE = set(RELEASE_STATUSES) - {"pending"}  # the outcomes a decision can have


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/releases", response_class=HTMLResponse, summary="Release page")
    def page(request: Request, done: str | None = None) -> HTMLResponse:
        """Pending proposals the user may decide on, and the user's own recent proposals."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            p = actor.principal
            to_decide = rel.describe(session, p, rel.pending_for(session, p))
            mine = rel.describe(session, p, rel.requests_for(session, p, mine=True, limit=50))
            session.commit()
        ctx: dict[str, Any] = {"actor": actor, "to_decide": to_decide, "mine": mine,
                               "may_release": bool(p.rule("may_release")),
                               "done": done if done in DONE else None}
        return render(request, "releases.html", ctx)

    async def _decide(request: Request, request_id: str, action: Any, done: str) -> RedirectResponse:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            note = str((await request.form()).get("note") or "")
            action(session, actor.principal, request_id, note,
                   address=client_address(request))
            session.commit()
        return RedirectResponse(f"/releases?done={done}", status_code=303)

    @r.post("/releases/{request_id}/release", summary="Release a proposal (form)")
    async def release(request: Request, request_id: str) -> RedirectResponse:
        """Apply the proposed sharing; back to the release page."""
        return await _decide(request, request_id, rel.release, "released")

    @r.post("/releases/{request_id}/reject", summary="Reject a proposal (form)")
    async def reject(request: Request, request_id: str) -> RedirectResponse:
        """Turn the proposal down; back to the release page."""
        return await _decide(request, request_id, rel.reject, "rejected")

    @r.post("/releases/{request_id}/withdraw", summary="Withdraw a proposal (form)")
    async def withdraw(request: Request, request_id: str) -> RedirectResponse:
        """The proposer takes the proposal back; back to the release page."""
        return await _decide(request, request_id, rel.withdraw, "withdrawn")

    return r
