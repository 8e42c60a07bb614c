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
from sqlalchemy.orm import Session

from narcotrack.access.policy import check_is_admin, is_admin, sharing_group_filter
from narcotrack.domain.org_models import OrganisationIn, OrganisationPatch, SharingGroupIn, SharingGroupPatch
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import Conflict, InvalidInput, NarcotrackError, NotFound
from narcotrack.store import organisations as orgs
from narcotrack.store.repo import history
from narcotrack.web import api_orgs
from narcotrack.web.auth import Actor, check_csrf, require_actor
from narcotrack.web.errors import field_errors

Render = Callable[..., HTMLResponse]
PAGE = 100
DOMESTIC = {"yes": True, "no": False}


def _errors(exc: Exception) -> dict[str, str]:
    """Messages by field name ('_' for the form as a whole)."""
    if isinstance(exc, ValidationError):
        out: dict[str, str] = {}
        for f in field_errors(exc):
            out.setdefault(f["field"].partition(".")[0] or "_", str(f["message"]).removeprefix("Value error, "))
        return out
    if isinstance(exc, orgs.FieldInvalid):
        return {exc.field: exc.message}
    return {"_": str(exc)}


def _status(exc: Exception) -> int:
    """The narcotrack error's own status (409 stale or duplicate, 404 not a member); 422 for bad input."""
    return exc.http_status if isinstance(exc, NarcotrackError) else 422


async def _form(request: Request) -> dict[str, str]:
    return {k: str(v).strip() for k, v in (await request.form()).items() if isinstance(v, str)}


def _group_fields(form: dict[str, str]) -> dict[str, Any]:
    """The sharing-group form's fields that creating and changing a group share."""
    return {"name": form.get("name", ""), "agreement": form.get("agreement", ""),
            "allows_identity": form.get("allows_identity") == "yes",
            "valid_from": form.get("valid_from") or None, "valid_to": form.get("valid_to") or None}


def _common(actor: Actor) -> dict[str, Any]:
    return {"actor": actor, "may_administer": is_admin(actor.principal),
            "may_export": bool(actor.principal.rule("may_export")), "kinds": vocabularies().org_kinds.terms}


def _show(request: Request, page: Callable[[Session, Actor], HTMLResponse]) -> HTMLResponse:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        response = page(session, require_actor(request, session))
        session.commit()
    return response


async def _submit(request: Request, act: Callable[[Session, Actor, dict[str, str]], str],
                  again: Callable[[Session, Actor, dict[str, str], Exception], HTMLResponse],
                  refused: tuple[type[Exception], ...] = (ValidationError, InvalidInput, Conflict)) -> Response:
    """An admin's form: ``act`` does it and names the page to go to (303); a ``refused`` error rolls back
    and ``again`` re-renders the form with the message (at the error's status)."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        actor = require_actor(request, session)
        await check_csrf(request, actor)
        check_is_admin(actor.principal)
        form = await _form(request)
        try:
            url = act(session, actor, form)
        except refused as exc:
            session.rollback()
            return again(session, actor, form, exc)
        session.commit()
    return RedirectResponse(url, status_code=303)


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
        return _show(request, lambda session, actor: org_list(request, session, actor))

    @r.post("/organisations", summary="Create an organisation (form)", response_model=None)
    async def create_organisation(request: Request) -> Response:
        """Create from the form on the organisations page (admins)."""
        def act(session: Session, actor: Actor, form: dict[str, str]) -> str:
            data = OrganisationIn.model_validate({
                "code": form.get("code", ""), "name_en": form.get("name_en", ""),
                "name_km": form.get("name_km", ""), "kind": form.get("kind", ""),
                "country": form.get("country", ""), "domestic": DOMESTIC.get(form.get("domestic", "")),
                "parent": form.get("parent") or None})
            return f"/organisations/{api_orgs.create_org_audited(session, request, actor, data).id}"
        return await _submit(request, act, lambda session, actor, form, exc: org_list(
            request, session, actor, form=form, errors=_errors(exc), status_code=_status(exc)))

    def org_page(request: Request, session: Session, actor: Actor, org_id: str, *,
                 form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                 status_code: int = 200) -> HTMLResponse:
        o = orgs.get_organisation(session, org_id)
        codes = orgs.code_map(session)
        ctx = {**_common(actor), "org": o, "codes": codes, "errors": errors or {},
               "units": orgs.units_of(session, o.id),
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
        return _show(request, lambda session, actor: org_page(request, session, actor, org_id))

    @r.post("/organisations/{org_id}", summary="Change an organisation (form)", response_model=None)
    async def update_organisation(request: Request, org_id: str) -> Response:
        """Save the edit form (admins); refused with 409 when someone changed the organisation meanwhile."""
        def act(session: Session, actor: Actor, form: dict[str, str]) -> str:
            patch = OrganisationPatch.model_validate({
                "name_en": form.get("name_en", ""), "name_km": form.get("name_km", ""),
                "kind": form.get("kind", ""), "country": form.get("country", ""),
                "domestic": form.get("domestic") == "yes", "parent": form.get("parent") or None,
                "version": form.get("version") or None})
            api_orgs.update_org_audited(session, request, actor, org_id, patch)
            return f"/organisations/{org_id}"
        return await _submit(request, act, lambda session, actor, form, exc: org_page(
            request, session, actor, org_id, form=form, errors=_errors(exc), status_code=_status(exc)))

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
        return _show(request, lambda session, actor: group_list(request, session, actor))

    @r.post("/sharing-groups", summary="Create a sharing group (form)", response_model=None)
    async def create_sharing_group(request: Request) -> Response:
        """Create from the form on the sharing groups page (admins)."""
        def act(session: Session, actor: Actor, form: dict[str, str]) -> str:
            data = SharingGroupIn.model_validate({**_group_fields(form), "owner": form.get("owner") or None})
            return f"/sharing-groups/{api_orgs.create_group_audited(session, request, actor, data).id}"
        return await _submit(request, act, lambda session, actor, form, exc: group_list(
            request, session, actor, form=form, errors=_errors(exc), status_code=_status(exc)))

    def group_page(request: Request, session: Session, actor: Actor, group_id: str, *,
                   form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                   status_code: int = 200) -> HTMLResponse:
        g = orgs.get_sharing_group(session, group_id, sharing_group_filter(actor.principal))
        codes = orgs.code_map(session)
        members = orgs.member_orgs(session, g.id)
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
        return _show(request, lambda session, actor: group_page(request, session, actor, group_id))

    @r.post("/sharing-groups/{group_id}", summary="Change a sharing group (form)", response_model=None)
    async def update_sharing_group(request: Request, group_id: str) -> Response:
        """Save the edit form (admins); 409 when someone changed the group meanwhile."""
        def act(session: Session, actor: Actor, form: dict[str, str]) -> str:
            patch = SharingGroupPatch.model_validate({**_group_fields(form), "owner": form.get("owner", ""),
                                                      "version": form.get("version") or None})
            api_orgs.update_group_audited(session, request, actor, group_id, patch)
            return f"/sharing-groups/{group_id}"
        return await _submit(request, act, lambda session, actor, form, exc: group_page(
            request, session, actor, group_id, form=form, errors=_errors(exc), status_code=_status(exc)))

    async def membership(request: Request, group_id: str, org_code: str | None, *, add: bool) -> Response:
        def act(session: Session, actor: Actor, form: dict[str, str]) -> str:
            code = org_code if org_code is not None else form.get("org_code", "")
            version = int(form["version"]) if form.get("version", "").isdigit() else None
            api_orgs.change_membership(session, request, actor, group_id, code, version, add=add)
            return f"/sharing-groups/{group_id}"
        # Not a member, an unknown code or a stale version show on the page; an unseen group is a 404 page.
        return await _submit(request, act, lambda session, actor, form, exc: group_page(
            request, session, actor, group_id, errors={"member": str(exc)}, status_code=_status(exc)),
            refused=(InvalidInput, Conflict, NotFound))

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
