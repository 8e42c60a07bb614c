"""Organisation and sharing-group pages: every user may look (groups only those of their own organisation);
administrators create and change them, and add and remove members, here.

Forms post back to the page; invalid input re-renders it with the message beside the field (422), a
stale version says so (409), success redirects (303). The acts themselves and their audit events are
the API's (``narcotrack.web.api_orgs``), so both ways in are audited alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from narcotrack.access.policy import Principal, check_is_admin, sharing_group_filter
from narcotrack.domain.org_models import OrganisationIn, OrganisationPatch, SharingGroupIn, SharingGroupPatch
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import Conflict, Forbidden, InvalidInput, NotFound
from narcotrack.store import organisations as orgs
from narcotrack.store.repo import history
from narcotrack.store.schema import Organisation, SharingGroupMember
from narcotrack.web import api_orgs
from narcotrack.web.auth import Actor, check_csrf, require_actor

Render = Callable[..., HTMLResponse]
PAGE = 100
DOMESTIC = {"yes": True, "no": False}


def _may_administer(p: Principal) -> bool:
    try:
        check_is_admin(p)
    except Forbidden:
        return False
    return True


def _errors(exc: Exception) -> dict[str, str]:
    """Messages by field name ('_' for the form as a whole)."""
    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for e in exc.errors():
            out.setdefault(str(e["loc"][0]) if e["loc"] else "_", str(e["msg"]).removeprefix("Value error, "))
        return out
    if isinstance(exc, orgs.FieldInvalid):
        return {exc.field: exc.message}
    return {"_": str(exc)}


def _status(exc: Exception) -> int:
    return 409 if isinstance(exc, Conflict) else 422


async def _form(request: Request) -> dict[str, str]:
    return {k: str(v).strip() for k, v in (await request.form()).items() if isinstance(v, str)}


def _common(actor: Actor) -> dict[str, Any]:
    return {"actor": actor, "may_administer": _may_administer(actor.principal),
            "may_export": bool(actor.principal.rule("may_export")), "kinds": vocabularies().org_kinds.terms}


def router(render: Render) -> APIRouter:
    r = APIRouter()

    def org_list(request: Request, session: Session, actor: Actor, *, form: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
        q = request.query_params
        filters = orgs.OrgFilters(country=q.get("country") or None, kind=q.get("kind") or None,
                                  domestic=DOMESTIC.get(q.get("domestic", "")))
        page = orgs.list_organisations(session, filters, cursor=q.get("cursor") or None, limit=PAGE)
        codes = orgs.code_map(session)
        rows = sorted(page.rows, key=lambda o: o.code)
        query = {k: v for k, v in {"country": filters.country, "kind": filters.kind,
                                   "domestic": q.get("domestic")}.items() if v}
        return render(request, "organisations.html", {
            **_common(actor), "rows": rows, "codes": codes, "next_cursor": page.next_cursor, "query": query,
            "form": form or {}, "errors": errors or {}, "all_codes": sorted(codes.values())},
            status_code=status_code)

    @r.get("/organisations", response_class=HTMLResponse, summary="Organisations page")
    def organisations(request: Request) -> HTMLResponse:
        """Organisations with filters (country, kind, domestic); admins also get the create form."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            response = org_list(request, session, actor)
            session.commit()
        return response

    @r.post("/organisations", summary="Create an organisation (form)", response_model=None)
    async def create_organisation(request: Request) -> Response:
        """Create from the form on the organisations page (admins)."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            check_is_admin(actor.principal)
            form = await _form(request)
            try:
                data = OrganisationIn.model_validate({
                    "code": form.get("code", ""), "name_en": form.get("name_en", ""),
                    "name_km": form.get("name_km", ""), "kind": form.get("kind", ""),
                    "country": form.get("country", ""), "domestic": DOMESTIC.get(form.get("domestic", "")),
                    "parent": form.get("parent") or None})
                o = api_orgs.create_org_audited(session, request, actor, data)
            except (ValidationError, InvalidInput, Conflict) as exc:
                session.rollback()
                return org_list(request, session, actor, form=form, errors=_errors(exc), status_code=_status(exc))
            session.commit()
        return RedirectResponse(f"/organisations/{o.id}", status_code=303)

    def org_page(request: Request, session: Session, actor: Actor, org_id: str, *,
                 form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 status_code: int = 200) -> HTMLResponse:
        o = orgs.get_organisation(session, org_id)
        codes = orgs.code_map(session)
        ctx = {**_common(actor), "org": o, "codes": codes, "errors": errors or {},
               "units": sorted(session.scalars(select(Organisation).where(Organisation.parent_id == o.id)),
                               key=lambda u: u.code),
               "groups": orgs.groups_of_org(session, o.id, sharing_group_filter(actor.principal)),
               "all_codes": sorted(c for c in codes.values() if c != o.code)}
        ctx["history"] = history(session, "organisation", o.id) if ctx["may_administer"] else []
        ctx["form"] = form or {"name_en": o.name_en, "name_km": o.name_km, "kind": o.kind, "country": o.country,
                               "domestic": "yes" if o.domestic else "", "version": str(o.version),
                               "parent": codes.get(o.parent_id, "") if o.parent_id else ""}
        return render(request, "organisation.html", ctx, status_code=status_code)

    @r.get("/organisations/{org_id}", response_class=HTMLResponse, summary="Organisation page")
    def organisation(request: Request, org_id: str) -> HTMLResponse:
        """One organisation, its units and the sharing groups (visible to the user) it belongs to."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            response = org_page(request, session, actor, org_id)
            session.commit()
        return response

    @r.post("/organisations/{org_id}", summary="Change an organisation (form)", response_model=None)
    async def update_organisation(request: Request, org_id: str) -> Response:
        """Save the edit form (admins); refused with 409 when someone changed the organisation meanwhile."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            check_is_admin(actor.principal)
            form = await _form(request)
            try:
                patch = OrganisationPatch.model_validate({
                    "name_en": form.get("name_en", ""), "name_km": form.get("name_km", ""),
                    "kind": form.get("kind", ""), "country": form.get("country", ""),
                    "domestic": form.get("domestic") == "yes", "parent": form.get("parent") or None,
                    "version": form.get("version") or None})
                api_orgs.update_org_audited(session, request, actor, org_id, patch)
            except (ValidationError, InvalidInput, Conflict) as exc:
                session.rollback()
                return org_page(request, session, actor, org_id, form=form, errors=_errors(exc),
                                status_code=_status(exc))
            session.commit()
        return RedirectResponse(f"/organisations/{org_id}", status_code=303)

    def group_list(request: Request, session: Session, actor: Actor, *, form: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
        cursor = request.query_params.get("cursor") or None
        page = orgs.list_sharing_groups(session, sharing_group_filter(actor.principal), cursor=cursor, limit=PAGE)
        codes = orgs.code_map(session)
        own = codes.get(actor.user.org_id, "")
        return render(request, "sharing_groups.html", {
            **_common(actor), "rows": sorted(page.rows, key=lambda g: g.name), "codes": codes,
            "members": orgs.member_codes(session, [g.id for g in page.rows]), "next_cursor": page.next_cursor,
            "form": form or {"owner": own}, "errors": errors or {}, "all_codes": sorted(codes.values())},
            status_code=status_code)

    @r.get("/sharing-groups", response_class=HTMLResponse, summary="Sharing groups page")
    def sharing_groups(request: Request) -> HTMLResponse:
        """Sharing groups: all for admins (with the create form), else those of the user's organisation."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            response = group_list(request, session, actor)
            session.commit()
        return response

    @r.post("/sharing-groups", summary="Create a sharing group (form)", response_model=None)
    async def create_sharing_group(request: Request) -> Response:
        """Create from the form on the sharing groups page (admins)."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            check_is_admin(actor.principal)
            form = await _form(request)
            try:
                data = SharingGroupIn.model_validate({
                    "name": form.get("name", ""), "agreement": form.get("agreement", ""),
                    "allows_identity": form.get("allows_identity") == "yes",
                    "valid_from": form.get("valid_from") or None, "valid_to": form.get("valid_to") or None,
                    "owner": form.get("owner") or None})
                g = api_orgs.create_group_audited(session, request, actor, data)
            except (ValidationError, InvalidInput, Conflict) as exc:
                session.rollback()
                return group_list(request, session, actor, form=form, errors=_errors(exc),
                                  status_code=_status(exc))
            session.commit()
        return RedirectResponse(f"/sharing-groups/{g.id}", status_code=303)

    def group_page(request: Request, session: Session, actor: Actor, group_id: str, *,
                   form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                   status_code: int = 200) -> HTMLResponse:
        g = orgs.get_sharing_group(session, group_id, sharing_group_filter(actor.principal))
        codes = orgs.code_map(session)
        members = list(session.scalars(
            select(Organisation).join(SharingGroupMember, SharingGroupMember.org_id == Organisation.id)
            .where(SharingGroupMember.group_id == g.id).order_by(Organisation.code)))
        ctx = {**_common(actor), "group": g, "codes": codes, "members": members, "errors": errors or {},
               "candidates": sorted(set(codes.values()) - {m.code for m in members})}
        ctx["history"] = history(session, "sharing_group", g.id) if ctx["may_administer"] else []
        ctx["form"] = form or {
            "name": g.name, "agreement": g.agreement, "allows_identity": "yes" if g.allows_identity else "",
            "valid_from": g.valid_from.isoformat() if g.valid_from else "",
            "valid_to": g.valid_to.isoformat() if g.valid_to else "",
            "owner": codes.get(g.owner_org_id, ""), "version": str(g.version)}
        return render(request, "sharing_group.html", ctx, status_code=status_code)

    @r.get("/sharing-groups/{group_id}", response_class=HTMLResponse, summary="Sharing group page")
    def sharing_group(request: Request, group_id: str) -> HTMLResponse:
        """A group's agreement, identity rule, validity and members; 404 for a group the user may not see."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            response = group_page(request, session, actor, group_id)
            session.commit()
        return response

    @r.post("/sharing-groups/{group_id}", summary="Change a sharing group (form)", response_model=None)
    async def update_sharing_group(request: Request, group_id: str) -> Response:
        """Save the edit form (admins); 409 when someone changed the group meanwhile."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            check_is_admin(actor.principal)
            form = await _form(request)
            try:
                patch = SharingGroupPatch.model_validate({
                    "name": form.get("name", ""), "agreement": form.get("agreement", ""),
                    "allows_identity": form.get("allows_identity") == "yes",
                    "valid_from": form.get("valid_from") or None, "valid_to": form.get("valid_to") or None,
                    "owner": form.get("owner", ""), "version": form.get("version") or None})
                api_orgs.update_group_audited(session, request, actor, group_id, patch)
            except (ValidationError, InvalidInput, Conflict) as exc:
                session.rollback()
                return group_page(request, session, actor, group_id, form=form, errors=_errors(exc),
                                  status_code=_status(exc))
            session.commit()
        return RedirectResponse(f"/sharing-groups/{group_id}", status_code=303)

    async def membership(request: Request, group_id: str, org_code: str | None, *, add: bool) -> Response:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            check_is_admin(actor.principal)
            form = await _form(request)
            code = org_code if org_code is not None else form.get("org_code", "")
            orgs.get_sharing_group(session, group_id, sharing_group_filter(actor.principal))  # else 404 page
            try:
                api_orgs.change_membership(session, request, actor, group_id, code,
                                           int(form["version"]) if form.get("version", "").isdigit() else None,
                                           add=add)
            except (InvalidInput, Conflict, NotFound) as exc:  # not a member, unknown code, stale version
                session.rollback()
                return group_page(request, session, actor, group_id, errors={"member": str(exc)},
                                  status_code=404 if isinstance(exc, NotFound) else _status(exc))
            session.commit()
        return RedirectResponse(f"/sharing-groups/{group_id}", status_code=303)

    @r.post("/sharing-groups/{group_id}/members", summary="Add a member organisation (form)", response_model=None)
    async def add_member(request: Request, group_id: str) -> Response:
        """Add the organisation chosen in the form (field org_code) to the group (admins); audited."""
        return await membership(request, group_id, None, add=True)

    @r.post("/sharing-groups/{group_id}/members/{org_code}/remove", summary="Remove a member organisation (form)",
            response_model=None)
    async def remove_member(request: Request, group_id: str, org_code: str) -> Response:
        """End the organisation's membership (admins); audited."""
        return await membership(request, group_id, org_code, add=False)

    return r
