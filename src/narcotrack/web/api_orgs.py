"""JSON API for organisations and sharing groups (with their agreements), and their CSV/XLSX exports.

Every logged-in user may list organisations; sharing groups pass ``sharing_group_filter`` (admins see
all, others the groups their organisation belongs to). Changes are an admin's (``check_is_admin``),
need the CSRF token from cookie sessions, keep a history and are audited. Routes decide nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import check_is_admin, check_may_export, sharing_group_filter
from narcotrack.domain.org_models import OrganisationIn, OrganisationPatch, SharingGroupIn, SharingGroupPatch
from narcotrack.errors import InvalidInput
from narcotrack.store import organisations as orgs
from narcotrack.store.schema import Organisation, SharingGroup
from narcotrack.web import ratelimit
from narcotrack.web.auth import Actor, check_csrf, client_address, require_actor
from narcotrack.web.errors import field_errors
from narcotrack.web.export import XLSX_MEDIA, csv_body, xlsx_body

ORG_COLUMNS = ["id", "code", "name_en", "name_km", "kind", "country", "domestic", "parent", "version"]
GROUP_COLUMNS = ["id", "name", "owner", "allows_identity", "valid_from", "valid_to", "members", "agreement",
                 "version"]
Limit = Annotated[int, Query(ge=1, le=500)]
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MEDIA}


class OrganisationOut(BaseModel):
    id: str
    code: str
    name_en: str
    name_km: str
    kind: str
    country: str
    domestic: bool
    parent: str | None  # the parent organisation's code
    version: int
    updated_at: dt.datetime


class OrganisationPage(BaseModel):
    items: list[OrganisationOut]
    next_cursor: str | None


class SharingGroupOut(BaseModel):
    id: str
    name: str
    owner: str  # the owner organisation's code
    agreement: str
    allows_identity: bool
    valid_from: dt.date | None
    valid_to: dt.date | None
    members: list[str]  # member organisation codes
    version: int
    updated_at: dt.datetime


class SharingGroupPage(BaseModel):
    items: list[SharingGroupOut]
    next_cursor: str | None


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str
    fields: list[FieldErrorOut] = []


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not logged in"},
    403: {"model": ErrorOut, "description": "Not an administrator, or no valid CSRF token"},
    404: {"model": ErrorOut, "description": "No such record (or not visible to the caller)"},
    409: {"model": ErrorOut, "description": "Duplicate code or name, or a stale version"},
    422: {"model": ErrorOut, "description": "Invalid input; `fields` names each invalid field"},
}
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA["csv"]: {}, MEDIA["xlsx"]: {}}, "description": "The file"},
    403: ERRORS[403], 422: ERRORS[422],
}


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body for routes that parse JSON themselves (to answer 422 in narcotrack's shape)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _utc(at: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC stamps, PostgreSQL aware ones: answer the same on both."""
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def org_out(o: Organisation, codes: dict[str, str]) -> OrganisationOut:
    return OrganisationOut(id=o.id, code=o.code, name_en=o.name_en, name_km=o.name_km, kind=o.kind,
                           country=o.country, domestic=o.domestic,
                           parent=codes.get(o.parent_id) if o.parent_id else None, version=o.version,
                           updated_at=_utc(o.updated_at))


def group_out(g: SharingGroup, codes: dict[str, str], members: list[str]) -> SharingGroupOut:
    return SharingGroupOut(id=g.id, name=g.name, owner=codes.get(g.owner_org_id, g.owner_org_id),
                           agreement=g.agreement, allows_identity=g.allows_identity, valid_from=g.valid_from,
                           valid_to=g.valid_to, members=members, version=g.version, updated_at=_utc(g.updated_at))


def org_detail(session: Session, o: Organisation) -> OrganisationOut:
    return org_out(o, orgs.code_map(session, [o.parent_id]))


def group_detail(session: Session, g: SharingGroup) -> SharingGroupOut:
    return group_out(g, orgs.code_map(session, [g.owner_org_id]), orgs.member_codes(session, [g.id])[g.id])


def audit(session: Session, request: Request, actor: Actor, action: str, record_type: str,
          record_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """One audit event for an admin act or an export, in the caller's transaction."""
    record_event(session.connection(), action, user_id=actor.user.id, org_id=actor.user.org_id,
                 record_type=record_type, record_id=record_id,
                 address=client_address(request), detail=detail)


def invalid(what: str, exc: ValidationError | orgs.FieldInvalid) -> JSONResponse:
    """422 naming each invalid field, as the incident API answers."""
    fields = field_errors(exc) if isinstance(exc, ValidationError) else [
        {"field": exc.field, "message": exc.message}]
    return JSONResponse({"error": f"invalid {what}", "fields": fields}, status_code=422)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise InvalidInput("the body must be JSON") from exc


def _export(request: Request, fmt: str, name: str, record_type: str, columns: list[str],
            rows: Callable[[Session, Actor], Iterator[list[Any]]], filters: dict[str, Any] | None = None
            ) -> StreamingResponse:
    """One export for roles with the export right, rate-limited and audited with its row count."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        actor = require_actor(request, session)
        check_may_export(actor.principal)
        ratelimit.check(request, "export", actor.user.id)
        if fmt not in MEDIA:
            raise InvalidInput("export as csv or xlsx")
        data = rows(session, actor)
        body, count = csv_body(data, columns) if fmt == "csv" else xlsx_body(data, columns, name)
        audit(session, request, actor, "export", record_type, detail={
            "format": fmt, "rows": count, **({"filters": filters} if filters is not None else {})})
        session.commit()
    return StreamingResponse(body, media_type=MEDIA[fmt],
                             headers={"content-disposition": f'attachment; filename="{name}.{fmt}"'})


async def _admin_write(request: Request, what: str, act: Callable[[Session, Actor], BaseModel]
                       ) -> Any:
    """An admin's change: CSRF and admin check, ``act`` (store call, audit, answer), 422 naming the field."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        actor = require_actor(request, session)
        await check_csrf(request, actor)
        check_is_admin(actor.principal)
        try:
            out = act(session, actor)
        except (ValidationError, orgs.FieldInvalid) as exc:
            return invalid(what, exc)
        session.commit()
    return out


def _org_rows(session: Session, filters: orgs.OrgFilters) -> Iterator[list[Any]]:
    codes = orgs.code_map(session)
    for o in orgs.iter_organisations(session, filters):
        yield [o.id, o.code, o.name_en, o.name_km, o.kind, o.country, o.domestic,
               codes.get(o.parent_id) if o.parent_id else None, o.version]


def _group_rows(session: Session, actor: Actor) -> Iterator[list[Any]]:
    codes = orgs.code_map(session)
    groups = list(orgs.iter_sharing_groups(session, sharing_group_filter(actor.principal)))
    members = orgs.member_codes(session, [g.id for g in groups])
    for g in groups:
        yield [g.id, g.name, codes.get(g.owner_org_id), g.allows_identity, g.valid_from, g.valid_to,
               " ".join(members[g.id]), g.agreement, g.version]


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["organisations"])

    @r.get("/organisations/export.{fmt}", summary="Export organisations as CSV or XLSX",
           response_class=StreamingResponse, responses=EXPORT_RESPONSES)
    def export_orgs(request: Request, fmt: str, country: str | None = None, kind: str | None = None,
                    domestic: bool | None = None) -> StreamingResponse:
        """Every organisation the filters select, for roles with the export right; audited."""
        filters = orgs.OrgFilters(country=country, kind=kind, domestic=domestic)
        return _export(request, fmt, "organisations", "organisation", ORG_COLUMNS,
                       lambda session, _actor: _org_rows(session, filters),
                       {k: v for k, v in vars(filters).items() if v is not None})

    @r.get("/sharing-groups/export.{fmt}", summary="Export sharing groups as CSV or XLSX",
           response_class=StreamingResponse, responses=EXPORT_RESPONSES)
    def export_groups(request: Request, fmt: str) -> StreamingResponse:
        """The sharing groups the caller may see, with members and agreement text; audited."""
        return _export(request, fmt, "sharing_groups", "sharing_group", GROUP_COLUMNS, _group_rows)

    @r.get("/organisations", summary="List organisations", response_model=OrganisationPage, responses=ERRORS)
    def list_orgs(request: Request, country: Annotated[str | None, Query(description="ISO alpha-2, e.g. TH")] = None,
                  kind: Annotated[str | None, Query(description="Organisation kind code, e.g. police")] = None,
                  domestic: bool | None = None, cursor: str | None = None, limit: Limit = 50) -> OrganisationPage:
        """Organisations (every logged-in user may list them); `next_cursor` fetches the next page."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            require_actor(request, session)
            page = orgs.list_organisations(session, orgs.OrgFilters(country, kind, domestic), cursor=cursor,
                                           limit=limit)
            codes = orgs.code_map(session, [o.parent_id for o in page.rows])
            session.commit()
        return OrganisationPage(items=[org_out(o, codes) for o in page.rows], next_cursor=page.next_cursor)

    @r.get("/organisations/{org_id}", summary="Read one organisation", response_model=OrganisationOut,
           responses=ERRORS)
    def get_org(request: Request, org_id: str) -> OrganisationOut:
        """One organisation by id."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            require_actor(request, session)
            out = org_detail(session, orgs.get_organisation(session, org_id))
            session.commit()
        return out

    @r.post("/organisations", summary="Create an organisation (admin)", status_code=201,
            response_model=OrganisationOut, responses=ERRORS, openapi_extra=_body_schema(OrganisationIn))
    async def create_org(request: Request) -> OrganisationOut | JSONResponse:
        """A new organisation (code unique; kind from the vocabulary; ISO country); audited."""
        body = await _json(request)
        return await _admin_write(request, "organisation", lambda session, actor: org_detail(
            session, create_org_audited(session, request, actor, OrganisationIn.model_validate(body))))

    @r.patch("/organisations/{org_id}", summary="Change an organisation (admin)", response_model=OrganisationOut,
             responses=ERRORS, openapi_extra=_body_schema(OrganisationPatch))
    async def update_org(request: Request, org_id: str) -> OrganisationOut | JSONResponse:
        """Change the fields given; `version` in the body refuses (409) a change to a newer version."""
        body = await _json(request)
        return await _admin_write(request, "organisation", lambda session, actor: org_detail(
            session, update_org_audited(session, request, actor, org_id, OrganisationPatch.model_validate(body))))

    @r.get("/sharing-groups", summary="List sharing groups", response_model=SharingGroupPage, responses=ERRORS)
    def list_groups(request: Request, cursor: str | None = None, limit: Limit = 50) -> SharingGroupPage:
        """All groups for admins; for others the groups their organisation is a member of."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            page = orgs.list_sharing_groups(session, sharing_group_filter(actor.principal), cursor=cursor,
                                            limit=limit)
            codes = orgs.code_map(session, [g.owner_org_id for g in page.rows])
            members = orgs.member_codes(session, [g.id for g in page.rows])
            session.commit()
        return SharingGroupPage(items=[group_out(g, codes, members[g.id]) for g in page.rows],
                                next_cursor=page.next_cursor)

    @r.get("/sharing-groups/{group_id}", summary="Read one sharing group", response_model=SharingGroupOut,
           responses=ERRORS)
    def get_group(request: Request, group_id: str) -> SharingGroupOut:
        """One group with its agreement and member codes; 404 when absent or not visible."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            out = group_detail(session, orgs.get_sharing_group(session, group_id,
                                                               sharing_group_filter(actor.principal)))
            session.commit()
        return out

    @r.post("/sharing-groups", summary="Create a sharing group (admin)", status_code=201,
            response_model=SharingGroupOut, responses=ERRORS, openapi_extra=_body_schema(SharingGroupIn))
    async def create_group(request: Request) -> SharingGroupOut | JSONResponse:
        """A new group; `owner` defaults to the admin's organisation and is always a member; audited."""
        body = await _json(request)
        return await _admin_write(request, "sharing group", lambda session, actor: group_detail(
            session, create_group_audited(session, request, actor, SharingGroupIn.model_validate(body))))

    @r.patch("/sharing-groups/{group_id}", summary="Change a sharing group (admin)",
             response_model=SharingGroupOut, responses=ERRORS, openapi_extra=_body_schema(SharingGroupPatch))
    async def update_group(request: Request, group_id: str) -> SharingGroupOut | JSONResponse:
        """Change name, agreement, allows_identity, validity or owner; `version` for optimistic locking."""
        body = await _json(request)
        return await _admin_write(request, "sharing group", lambda session, actor: group_detail(
            session, update_group_audited(session, request, actor, group_id, SharingGroupPatch.model_validate(body))))

    @r.put("/sharing-groups/{group_id}/members/{org_code}", summary="Add a member organisation (admin)",
           response_model=SharingGroupOut, responses=ERRORS)
    async def add_member(request: Request, group_id: str, org_code: str,
                         version: Annotated[int | None, Query(description="Expected group version")] = None
                         ) -> SharingGroupOut | JSONResponse:
        """Make the organisation a member (nothing changes when it already is one); audited."""
        return await _admin_write(request, "membership", lambda session, actor: group_detail(
            session, change_membership(session, request, actor, group_id, org_code, version, add=True)[0]))

    @r.delete("/sharing-groups/{group_id}/members/{org_code}", summary="Remove a member organisation (admin)",
              response_model=SharingGroupOut, responses=ERRORS)
    async def remove_member(request: Request, group_id: str, org_code: str,
                            version: Annotated[int | None, Query(description="Expected group version")] = None
                            ) -> SharingGroupOut | JSONResponse:
        """End the membership (404 when it is not a member; the owner cannot be removed); audited."""
        return await _admin_write(request, "membership", lambda session, actor: group_detail(
            session, change_membership(session, request, actor, group_id, org_code, version, add=False)[0]))

    return r


def change_membership(session: Session, request: Request, actor: Actor, group_id: str, org_code: str,
                      version: int | None, *, add: bool) -> tuple[SharingGroup, bool]:
    """Add or remove a member and audit it (shared by the API and the admin pages); the caller commits."""
    g = orgs.get_sharing_group(session, group_id, sharing_group_filter(actor.principal))
    if add:
        changed = orgs.add_member(session, g, org_code, user_id=actor.user.id, expected_version=version)
    else:
        orgs.remove_member(session, g, org_code, user_id=actor.user.id, expected_version=version)
        changed = True
    audit(session, request, actor, "share_member_added" if add else "share_member_removed", "sharing_group",
          g.id, {"org": org_code.strip().upper(), "changed": changed, "allows_identity": g.allows_identity})
    return g, changed


# The acts themselves (store call and audit event, in the caller's transaction), shared by the API and
# the admin pages so that both are audited alike. Callers check the CSRF token and the admin right first.

def create_org_audited(session: Session, request: Request, actor: Actor, data: OrganisationIn) -> Organisation:
    o = orgs.create_organisation(session, data)
    audit(session, request, actor, "create", "organisation", o.id, {"code": o.code})
    return o


def update_org_audited(session: Session, request: Request, actor: Actor, org_id: str,
                       patch: OrganisationPatch) -> Organisation:
    o, diff = orgs.update_organisation(session, org_id, patch, user_id=actor.user.id)
    audit(session, request, actor, "update", "organisation", o.id, {"code": o.code, "fields": sorted(diff)})
    return o


def create_group_audited(session: Session, request: Request, actor: Actor, data: SharingGroupIn) -> SharingGroup:
    g = orgs.create_sharing_group(session, data, owner_org_id=actor.user.org_id)
    audit(session, request, actor, "create", "sharing_group", g.id,
          {"name": g.name, "allows_identity": g.allows_identity, "members": orgs.member_codes(session, [g.id])[g.id]})
    return g


def update_group_audited(session: Session, request: Request, actor: Actor, group_id: str,
                         patch: SharingGroupPatch) -> SharingGroup:
    g = orgs.get_sharing_group(session, group_id, sharing_group_filter(actor.principal))
    g, diff = orgs.update_sharing_group(session, g, patch, user_id=actor.user.id)
    audit(session, request, actor, "update", "sharing_group", g.id,
          {"fields": sorted(diff), **({"allows_identity": g.allows_identity} if "allows_identity" in diff else {})})
    return g
