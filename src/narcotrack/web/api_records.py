# No `from __future__ import annotations`: FastAPI must see the generated models as real types.
"""The JSON API of every record type in ``store.record_types``, generated from its description.

Each type gets the same five routes (list with filters and cursor, export, read, create, change), so one
generic test covers them all. Routes translate HTTP to store and policy calls and decide nothing.
"""


import datetime as dt
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import check_may_change, check_may_export, visible_filter
from narcotrack.access.recording import record_with_release
from narcotrack.errors import InvalidInput
from narcotrack.store.queries import org_codes
from narcotrack.store.record_types import RECORD_TYPES
from narcotrack.store.records import (
    RecordFilters,
    RecordType,
    as_dict,
    export_header,
    export_rows,
    get_record,
    jsonable,
    list_records,
    out_key,
    parent_of,
    update_record,
)
from narcotrack.web import ratelimit
from narcotrack.web.auth import check_csrf, client_address, require_actor
from narcotrack.web.export import XLSX_MEDIA, csv_body, xlsx_body


def out_model(rt: RecordType) -> type[BaseModel]:
    """Pydantic model of a record as the API shows it, derived from the table's columns."""
    fields: dict[str, Any] = {"id": (str, ...)}
    for name in rt.columns:
        col = rt.model.__table__.c[name]
        try:
            py: Any = col.type.python_type
        except NotImplementedError:
            py = Any
        if py in (list, dict):
            py = Any
        fields[out_key(name)] = (py | None if col.nullable else py, ...)
    if hasattr(rt.model, "version"):
        fields["version"] = (int, ...)
    return create_model(f"{rt.model.__name__}Out", **fields)


def patch_model(rt: RecordType) -> type[BaseModel]:
    """The fields a PATCH may change (validated like on creation), plus the version the client saw."""
    assert rt.create_model is not None
    fields: dict[str, Any] = {}
    for name, info in rt.create_model.model_fields.items():
        if name in rt.editable:
            kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            fields[name] = (kind, None)
    fields["version"] = (int | None, None)
    return create_model(f"{rt.model.__name__}Patch", __config__=ConfigDict(extra="forbid"), **fields)


def filters_dependency() -> Any:
    def filters(
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        place: Annotated[str | None, Query(description="Province code, e.g. KH-12")] = None,
        drug: Annotated[list[str] | None, Query(description="Drug code; repeat for several")] = None,
        agency: Annotated[str | None, Query(description="Organisation code, e.g. KH-NACD")] = None,
        operation: Annotated[str | None, Query(description="Operation id")] = None,
        marking: Annotated[list[str] | None, Query(description="TLP marking; repeat for several")] = None,
        q: Annotated[str | None, Query(max_length=100, description="Text to look for")] = None,
    ) -> RecordFilters:
        return RecordFilters(date_from=date_from, date_to=date_to, place=place, drug=drug or [], agency=agency,
                             operation=operation, marking=marking or [], q=q)

    return filters


def record_router(rt: RecordType) -> APIRouter:
    r = APIRouter(prefix=f"/api/v1/{rt.slug}", tags=[rt.label])
    Out = out_model(rt)
    PageOut = create_model(f"{rt.model.__name__}Page", items=(list[Out], ...), next_cursor=(str | None, None))  # type: ignore[valid-type]
    Filters = Annotated[RecordFilters, Depends(filters_dependency())]

    @r.get("", summary=f"List {rt.label}", response_model=PageOut)
    def list_(request: Request, filters: Filters, cursor: str | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            page = list_records(session, rt, functools.partial(visible_filter, actor.principal), filters,
                                cursor=cursor, limit=limit)
            codes = org_codes(session)
            session.commit()
        return {"items": [as_dict(rt, row, codes) for row in page.rows], "next_cursor": page.next_cursor}

    list_.__doc__ = f"{rt.label.capitalize()} the caller may see, newest first; `next_cursor` fetches the next page."

    @r.get("/export.{fmt}", summary=f"Export {rt.label} as CSV or XLSX_MEDIA")
    def export(request: Request, fmt: str, filters: Filters) -> StreamingResponse:
        """Every record the caller may see and the filters select; audited."""
        if fmt not in {"csv", "xlsx"}:
            raise InvalidInput("export as csv or xlsx")
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_export(actor.principal)
            ratelimit.check(request, "export", actor.user.id)
            rows = export_rows(session, rt, functools.partial(visible_filter, actor.principal), filters)
            body, count = (csv_body if fmt == "csv" else xlsx_body)(rows, export_header(rt))
            record_event(session.connection(), "export", user_id=actor.user.id, org_id=actor.user.org_id,
                         record_type=rt.name, address=client_address(request),
                         detail={"format": fmt, "rows": count, "filters": {k: jsonable(v) for k, v in filters.given().items()}})
            session.commit()
        return StreamingResponse(body, media_type="text/csv; charset=utf-8" if fmt == "csv" else XLSX_MEDIA,
                                 headers={"content-disposition": f'attachment; filename="{rt.slug}.{fmt}"'})

    @r.get("/{record_id}", summary=f"Read one of the {rt.label}", response_model=Out)
    def detail(request: Request, record_id: str) -> Any:
        """404 when it does not exist or the caller may not see it."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            row = get_record(session, rt, functools.partial(visible_filter, actor.principal), record_id)
            out = as_dict(rt, row, org_codes(session))
            session.commit()
        return out

    if rt.create_model is not None:
        In = rt.create_model
        Patch = patch_model(rt)

        @r.post("", summary=f"Create one of the {rt.label}", status_code=201)
        async def create(request: Request, data: Annotated[In, Body()]) -> JSONResponse:  # type: ignore[valid-type]
            """Answers 201 with the new id; audited. Sharing wider than the role may set alone is stored at the
            role's limit and the rest proposed for a supervisor's release (`release_request` in the answer)."""
            with Session(request.app.state.engine, expire_on_commit=False) as session:
                actor = require_actor(request, session)
                await check_csrf(request, actor)
                done = record_with_release(session, actor.principal, rt, data, address=client_address(request))
                session.commit()
            return JSONResponse({"id": done.record_id, "release_request": done.release_request_id},
                                status_code=201)

        @r.patch("/{record_id}", summary=f"Change one of the {rt.label}", response_model=Out)
        async def patch(request: Request, record_id: str, data: Annotated[Patch, Body()]) -> Any:  # type: ignore[valid-type]
            """Change the editable fields; send the `version` you read to be told (409) if someone
            changed it since. Sharing fields change through releases, not here."""
            with Session(request.app.state.engine, expire_on_commit=False) as session:
                actor = require_actor(request, session)
                await check_csrf(request, actor)
                row = get_record(session, rt, functools.partial(visible_filter, actor.principal), record_id)
                parent = parent_of(session, rt, row)
                check_may_change(actor.principal, parent if parent is not None else row)
                changes = data.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
                version = changes.pop("version", None)
                diff = update_record(session, rt, row, changes, user_id=actor.user.id, expected_version=version)
                if diff:
                    record_event(session.connection(), "update", user_id=actor.user.id, org_id=actor.user.org_id,
                                 record_type=rt.name, record_id=record_id, address=client_address(request),
                                 detail={"fields": sorted(diff)})
                out = as_dict(rt, row, org_codes(session))
                session.commit()
            return out

    return r


def routers() -> list[APIRouter]:
    return [record_router(rt) for rt in RECORD_TYPES.values()]
