"""TAXII 2.1 server under /taxii2/: how partner nodes and their tools pull and push STIX objects.

Routes only speak the protocol (media types, headers, error messages); what a caller may read or send is
decided in ``narcotrack.exchange.taxii_feed`` and the sharing policy. Every call needs an API token
(``Authorization: Bearer``); every page served is audited as an export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from narcotrack import __version__
from narcotrack.access.audit import record_event
from narcotrack.access.policy import check_may_export
from narcotrack.errors import InvalidInput, NarcotrackError, NotAuthenticated
from narcotrack.exchange import taxii_feed as feed
from narcotrack.web.auth import Actor, client_address, find_actor

ROOT = "/taxii2/api/"
MAX_CONTENT = 50 * 1024 * 1024


class TaxiiError(Exception):
    def __init__(self, status: int, title: str, description: str = "") -> None:
        super().__init__(title)
        self.status, self.title, self.description = status, title, description


def _taxii(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=feed.TAXII_MEDIA, headers=headers)


def _error(status: int, title: str, description: str = "") -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="narcotrack"'} if status == 401 else None
    return _taxii({"title": title, "description": description, "http_status": str(status)}, status, headers)


def _accepts(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if "application/taxii+json" not in accept or ("version=" in accept and "version=2.1" not in accept):
        raise TaxiiError(406, "not acceptable", f"ask for {feed.TAXII_MEDIA}")


def _call(request: Request, work: Callable[[Session, Actor], Response]) -> Response:
    """Check the media type and the token, run ``work``, and answer any failure as a TAXII error."""
    try:
        _accepts(request)
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = find_actor(request, session) if request.headers.get("authorization") else None
            if actor is None or not actor.via_token:
                raise NotAuthenticated("a TAXII client authenticates with an API token (Authorization: Bearer)")
            response = work(session, actor)
            session.commit()
            return response
    except TaxiiError as exc:
        return _error(exc.status, exc.title, exc.description)
    except NarcotrackError as exc:
        return _error(exc.http_status, type(exc).__name__, str(exc))


def _values(request: Request, name: str) -> list[str]:
    return [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",") if v.strip()]


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(f"limit must be a positive whole number, not {raw!r}")
    return int(raw)


def _page_response(request: Request, session: Session, actor: Actor, collection_id: str, *, manifest: bool,
                   object_id: str | None = None) -> Response:
    p = actor.principal
    check_may_export(p)
    conn = session.connection()
    coll = feed.collection(conn, p, collection_id)
    ids = [object_id] if object_id else _values(request, "match[id]")
    page = feed.read_page(conn, p, request.app.state.pseudonym_key, coll,
                          added_after=request.query_params.get("added_after"), limit=_limit(request),
                          next_token=request.query_params.get("next"), match_ids=ids,
                          match_types=_values(request, "match[type]"),
                          match_versions=_values(request, "match[version]"),
                          match_spec_versions=_values(request, "match[spec_version]"))
    if object_id and not page.objects:
        raise TaxiiError(404, "not found", f"no object {object_id} in this collection that you may see")
    if page.persons_full:
        record_event(conn, "read_person_identity", user_id=p.user_id, org_id=p.org_id, record_type="person",
                     address=client_address(request), detail={"persons": page.persons_full, "via": "taxii"})
    record_event(conn, "export", user_id=p.user_id, org_id=p.org_id, address=client_address(request),
                 detail={"format": "taxii", "collection": coll.title, "objects": len(page.objects),
                         "manifest": manifest})
    headers = {}
    if page.added:
        headers = {"X-TAXII-Date-Added-First": min(page.added), "X-TAXII-Date-Added-Last": max(page.added)}
    return _taxii(page.manifest() if manifest else page.envelope(), headers=headers)


def router() -> APIRouter:
    r = APIRouter(prefix="/taxii2", tags=["taxii"])

    @r.get("/", summary="TAXII discovery")
    def discovery(request: Request) -> Response:
        """Where the API root is (TAXII 2.1, section 4.1)."""
        return _call(request, lambda s, a: _taxii({
            "title": "narcotrack TAXII 2.1", "description": "Drug seizures, arrests, persons and operations "
            "shared under this node's agreements.", "default": ROOT, "api_roots": [ROOT]}))

    @r.get("/api/", summary="TAXII API root")
    def api_root(request: Request) -> Response:
        return _call(request, lambda s, a: _taxii({
            "title": "narcotrack", "description": f"narcotrack {__version__}", "versions": [feed.TAXII_MEDIA],
            "max_content_length": MAX_CONTENT}))

    @r.get("/api/collections/", summary="TAXII collections")
    def collections(request: Request) -> Response:
        return _call(request, lambda s, a: _taxii(
            {"collections": [c.info() for c in feed.collections(s.connection(), a.principal)]}))

    @r.get("/api/collections/{collection_id}/", summary="One TAXII collection")
    def collection(request: Request, collection_id: str) -> Response:
        return _call(request, lambda s, a: _taxii(feed.collection(s.connection(), a.principal, collection_id).info()))

    @r.get("/api/collections/{collection_id}/objects/", summary="TAXII objects")
    def objects(request: Request, collection_id: str) -> Response:
        """A page of objects: ``added_after``, ``limit``, ``next``, ``match[id|type|version|spec_version]``."""
        return _call(request, lambda s, a: _page_response(request, s, a, collection_id, manifest=False))

    @r.post("/api/collections/{collection_id}/objects/", summary="Send TAXII objects")
    async def add_objects(request: Request, collection_id: str) -> Response:
        """Store an envelope of objects in the inbox; answers 202 with the status resource."""
        body = await request.body()

        def work(s: Session, a: Actor) -> Response:
            coll = feed.collection(s.connection(), a.principal, collection_id)
            if not coll.can_write:
                raise TaxiiError(403, "forbidden", "this collection cannot be written to; use the inbox")
            if not request.headers.get("content-type", "").startswith("application/taxii+json"):
                raise TaxiiError(415, "unsupported media type", f"send {feed.TAXII_MEDIA}")
            if len(body) > MAX_CONTENT:
                raise TaxiiError(413, "too large", f"at most {MAX_CONTENT} bytes per request")
            try:
                envelope = json.loads(body)
            except ValueError as exc:
                raise TaxiiError(400, "bad request", f"the body is not JSON: {exc}") from exc
            if not isinstance(envelope, dict) or not isinstance(envelope.get("objects"), list):
                raise TaxiiError(400, "bad request", "send an envelope: {\"objects\": [...]}")
            status = feed.accept_upload(request.app.state.engine, a.principal, envelope["objects"],
                                        user_id=a.user.id, partner_id=None)
            return _taxii(status, 202)

        return _call(request, work)

    @r.get("/api/collections/{collection_id}/manifest/", summary="TAXII manifest")
    def manifest(request: Request, collection_id: str) -> Response:
        return _call(request, lambda s, a: _page_response(request, s, a, collection_id, manifest=True))

    @r.get("/api/collections/{collection_id}/objects/{object_id}/", summary="One TAXII object")
    def one_object(request: Request, collection_id: str, object_id: str) -> Response:
        return _call(request, lambda s, a: _page_response(request, s, a, collection_id, manifest=False,
                                                          object_id=object_id))

    @r.get("/api/collections/{collection_id}/objects/{object_id}/versions/", summary="TAXII object versions")
    def versions(request: Request, collection_id: str, object_id: str) -> Response:
        """The versions held: only the latest one is kept."""
        def work(s: Session, a: Actor) -> Response:
            page = _page_response(request, s, a, collection_id, manifest=True, object_id=object_id)
            body = json.loads(bytes(page.body))
            return _taxii({"more": False, "versions": [o["version"] for o in body["objects"]
                                                       if o["id"] == object_id]})
        return _call(request, work)

    @r.get("/api/status/{status_id}/", summary="TAXII upload status")
    def status(request: Request, status_id: str) -> Response:
        return _call(request, lambda s, a: _taxii(feed.read_status(s.connection(), a.principal, status_id)))

    return r

