"""JSON API of the four-eyes release: propose wider sharing, release, reject, withdraw; restrict at once.

Routes only translate HTTP to calls of narcotrack.access.release, which holds every rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from narcotrack.access import release as rel
from narcotrack.access.policy import Principal
from narcotrack.errors import InvalidInput
from narcotrack.store.schema import RELEASE_STATUSES
from narcotrack.web.auth import check_csrf, client_address, require_actor
from narcotrack.web.errors import field_errors

M = TypeVar("M", bound=BaseModel)


class SharingIn(BaseModel):
    record_type: str
    record_id: str
    marking: str
    distribution: str
    sharing_group_id: str | None = None
    reason: str = Field(default="", max_length=rel.MAX_TEXT)

    def sharing(self) -> tuple[str, str, str, str, str | None, str]:
        """The positional arguments ``rel.propose`` and ``rel.restrict`` take."""
        return (self.record_type, self.record_id, self.marking, self.distribution, self.sharing_group_id,
                self.reason)


class DecisionIn(BaseModel):
    note: str = Field(default="", max_length=rel.MAX_TEXT)



async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise InvalidInput("the body must be JSON") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


async def _act(request: Request, model: type[M], act: Callable[[Session, Principal, M], JSONResponse]
               ) -> JSONResponse:
    """Read and check the body (422 naming each field), then ``act`` under the caller's CSRF-checked session."""
    body = await _body(request)
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        actor = require_actor(request, session)
        await check_csrf(request, actor)
        try:
            data = model.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"error": "invalid request", "fields": field_errors(exc)}, status_code=422)
        response = act(session, actor.principal, data)
        session.commit()
    return response


def router() -> APIRouter:
    r = APIRouter(tags=["releases"])

    @r.get("/api/v1/releases", summary="List release requests")
    def list_(request: Request,
              status: Annotated[str | None, Query(description="pending, released, rejected or withdrawn")] = None,
              mine: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        """The caller's organisation's release requests, pending first, then newest first."""
        if status is not None and status not in RELEASE_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(RELEASE_STATUSES)}")
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            rows = rel.requests_for(session, actor.principal, status=status, mine=mine, limit=limit)
            items = rel.describe(session, actor.principal, rows)
            session.commit()
        return {"items": items}

    @r.post("/api/v1/releases", summary="Propose wider sharing", status_code=201)
    async def propose(request: Request) -> JSONResponse:
        """Propose wider sharing of a record; answers 201 with the pending request's id."""
        def act(session: Session, p: Principal, data: SharingIn) -> JSONResponse:
            request_id = rel.propose(session, p, *data.sharing(), address=client_address(request))
            return JSONResponse({"id": request_id, "status": "pending"}, status_code=201)
        return await _act(request, SharingIn, act)

    async def _decide(request: Request, request_id: str, action: Any) -> JSONResponse:
        def act(session: Session, p: Principal, data: DecisionIn) -> JSONResponse:
            req = action(session, p, request_id, data.note, address=client_address(request))
            return JSONResponse(rel.describe(session, p, [req])[0])
        return await _act(request, DecisionIn, act)

    @r.post("/api/v1/releases/{request_id}/release", summary="Release a proposal")
    async def release(request: Request, request_id: str) -> JSONResponse:
        """Apply the proposed sharing (a supervisor of the owner organisation, not the proposer)."""
        return await _decide(request, request_id, rel.release)

    @r.post("/api/v1/releases/{request_id}/reject", summary="Reject a proposal")
    async def reject(request: Request, request_id: str) -> JSONResponse:
        """Turn the proposal down; the record keeps its sharing."""
        return await _decide(request, request_id, rel.reject)

    @r.post("/api/v1/releases/{request_id}/withdraw", summary="Withdraw a proposal")
    async def withdraw(request: Request, request_id: str) -> JSONResponse:
        """The proposer takes a pending proposal back."""
        return await _decide(request, request_id, rel.withdraw)

    @r.post("/api/v1/sharing/restrict", summary="Restrict a record's sharing at once")
    async def restrict(request: Request) -> JSONResponse:
        """Narrow a record's marking or distribution at once; a change that widens sharing answers 403."""
        def act(session: Session, p: Principal, data: SharingIn) -> JSONResponse:
            changes = rel.restrict(session, p, *data.sharing(), address=client_address(request))
            return JSONResponse({"record_type": data.record_type, "record_id": data.record_id, "changes": changes})
        return await _act(request, SharingIn, act)

    return r
