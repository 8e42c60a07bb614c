"""List and detail pages of the record types in ``store.record_types`` (operations, training, campaigns,
indicators), generated from their description like the API. Seizures and arrests are shown on their
incident's page."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from narcotrack.access.policy import visible_filter
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import InvalidInput
from narcotrack.store.queries import org_codes
from narcotrack.store.record_types import RECORD_TYPES
from narcotrack.store.records import RecordFilters, RecordType, as_dict, get_record, list_records, related
from narcotrack.store.repo import history
from narcotrack.web.auth import require_actor
from narcotrack.web.labels import COLUMNS, LIST_COLUMNS, TITLES

Render = Callable[..., HTMLResponse]
PAGE_SIZE = 50


def _filters(request: Request, rt: RecordType) -> RecordFilters:
    """The list filters from the query string; empty fields of a submitted form mean 'no filter'."""
    q = request.query_params

    def date(name: str) -> dt.date | None:
        value = q.get(name) or None
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError as exc:
            raise InvalidInput(f"{name} must be a date YYYY-MM-DD") from exc

    return RecordFilters(date_from=date("date_from"), date_to=date("date_to"),
                         place=q.get("place") or None if rt.place_column else None,
                         drug=[d for d in q.getlist("drug") if d] if rt.drug_column else [],
                         agency=q.get("agency") or None if rt.agency_column else None,
                         marking=[m for m in q.getlist("marking") if m], q=q.get("q") or None)


def _records_router(render: Render, rt: RecordType) -> APIRouter:
    r = APIRouter()
    columns = LIST_COLUMNS[rt.slug]

    @r.get(f"/{rt.slug}", response_class=HTMLResponse, summary=f"{rt.label.capitalize()} page")
    def list_page(request: Request, cursor: str | None = None) -> HTMLResponse:
        filters = _filters(request, rt)
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            page = list_records(session, rt, functools.partial(visible_filter, actor.principal), filters,
                                cursor=cursor, limit=PAGE_SIZE)
            codes = org_codes(session)
            extra = related(session, rt, page.rows)
            session.commit()
        rows = []
        for row in page.rows:
            d = as_dict(rt, row, codes)
            d.update({name: values.get(row.id, "") for name, values in extra.items()})
            rows.append(d)
        query = {k: v for k, v in request.query_params.multi_items() if k != "cursor" and v}
        return render(request, "records.html", {
            "actor": actor, "rt": rt, "title": TITLES[rt.slug], "columns": columns, "labels": COLUMNS,
            "rows": rows, "filters": filters, "query": urlencode(query),
            "next_url": f"/{rt.slug}?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None,
            "markings": vocabularies().markings.codes(),
            "drugs": vocabularies().drugs.terms if rt.drug_column else None, "cell": cell})

    list_page.__doc__ = f"{rt.label.capitalize()} the user may see, with filters, paging and export links."

    @r.get(f"/{rt.slug}/{{record_id}}", response_class=HTMLResponse, summary=f"One of the {rt.label}")
    def detail_page(request: Request, record_id: str) -> HTMLResponse:
        """Every field, the related agencies, and the history of changes; 404 when not visible."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            row = get_record(session, rt, functools.partial(visible_filter, actor.principal), record_id)
            record = as_dict(rt, row, org_codes(session))
            record.update({name: values.get(row.id, "") for name, values in related(session, rt, [row]).items()})
            changes = history(session, rt.name, record_id)
            session.commit()
        return render(request, "record.html", {"actor": actor, "rt": rt, "title": TITLES[rt.slug],
                                               "record": record, "labels": COLUMNS, "history": changes,
                                               "cell": cell})

    return r


def routers(render: Render) -> list[APIRouter]:
    return [_records_router(render, RECORD_TYPES[slug]) for slug in LIST_COLUMNS]


def cell(value: Any) -> str:
    """How a value reads in a table cell."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)
