"""Exports of lists (CSV, XLSX) within the caller's rights; every export is an audit event."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import check_may_export, visible_filter
from narcotrack.errors import InvalidInput
from narcotrack.store.queries import IncidentFilters, list_incidents, org_codes, seizures_of
from narcotrack.store.schema import Seizure
from narcotrack.web import ratelimit
from narcotrack.web.auth import client_address, require_actor

COLUMNS = ["incident_id", "occurred_on", "province_code", "district_code", "country", "place_text", "place_kind",
           "reporting_org", "operation_id", "source", "marking", "distribution", "seizure_id", "drug", "quantity",
           "unit", "mass_kg", "purity_pct", "concealment", "transport_mode", "origin_country", "transit_countries",
           "destination_country"]
BATCH = 500
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 1_000_000


def _rows(session: Session, visible: Any, filters: IncidentFilters) -> Iterator[list[Any]]:
    """One row per seizure (incidents without seizures get one row), read in keyset batches."""
    codes = org_codes(session)
    cursor, n = None, 0
    while True:
        page = list_incidents(session, visible, filters, cursor=cursor, limit=BATCH)
        seizures = seizures_of(session, [i.id for i in page.rows])
        for i in page.rows:
            head = [i.id, i.occurred_on, i.province_code, i.district_code, i.country, i.place_text, i.place_kind,
                    codes.get(i.reporting_org_id), i.operation_id, i.source, i.marking, i.distribution]
            items: list[Seizure | None] = list(seizures[i.id]) or [None]
            for s in items:
                tail = [None] * 11 if s is None else [
                    s.id, s.drug, s.quantity, s.unit, s.mass_kg, s.purity_pct, s.concealment, s.transport_mode,
                    s.origin_country, s.transit_countries, s.destination_country]
                n += 1
                if n > MAX_ROWS:
                    raise InvalidInput(f"more than {MAX_ROWS:,} rows: narrow the filters")
                yield head + tail
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def router() -> APIRouter:
    r = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

    @r.get("/export.{fmt}", summary="Export incidents as CSV or XLSX")
    def export(request: Request, fmt: str, date_from: dt.date | None = None, date_to: dt.date | None = None,
               place: str | None = None, drug: Annotated[list[str] | None, Query()] = None,
               agency: str | None = None, operation: str | None = None,
               marking: Annotated[list[str] | None, Query()] = None) -> StreamingResponse:
        """Every incident (one row per seizure) the caller may see and the filters select — the same filters
        as the incident list, so an export holds exactly what the list shows; audited."""
        if fmt not in {"csv", "xlsx"}:
            raise InvalidInput("export as csv or xlsx")
        filters = IncidentFilters(date_from=date_from, date_to=date_to, place=place, drug=drug or [],
                                  agency=agency, operation_id=operation, marking=marking or [])
        given = {"date_from": date_from and date_from.isoformat(), "date_to": date_to and date_to.isoformat(),
                 "place": place, "drug": drug, "agency": agency, "operation": operation, "marking": marking}
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_export(actor.principal)
            ratelimit.check(request, "export", actor.user.id)
            visible = functools.partial(visible_filter, actor.principal)
            body, count = (csv_body if fmt == "csv" else xlsx_body)(_rows(session, visible, filters))
            record_event(session.connection(), "export", user_id=actor.user.id, org_id=actor.user.org_id,
                         record_type="incident", address=client_address(request),
                         detail={"format": fmt, "rows": count, "filters": {k: v for k, v in given.items() if v}})
            session.commit()
        media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_MEDIA
        return StreamingResponse(body, media_type=media,
                                 headers={"content-disposition": f'attachment; filename="incidents.{fmt}"'})

    return r


def safe_cell(value: Any) -> Any:
    """Keep spreadsheet programs from running text from the store (a place name, a narrative, a user name
    typed by anyone) as a formula: such text gets a leading apostrophe (OWASP, CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_body(rows: Iterator[list[Any]], columns: list[str] = COLUMNS) -> tuple[Iterator[bytes], int]:
    # Spooled to a temporary file (memory up to 8 MB, then disk) so the audit event can carry the row count.
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115 - closed by _chunks
    text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        count += 1
    text.detach()
    spool.seek(0)
    return _chunks(spool), count


def xlsx_body(rows: Iterator[list[Any]], columns: list[str] = COLUMNS, sheet: str = "incidents"
              ) -> tuple[Iterator[bytes], int]:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(columns)
    count = 0
    for row in rows:
        ws.append([safe_cell(v) if isinstance(v, str) else v for v in row])
        count += 1
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115 - closed by _chunks
    wb.save(spool)
    spool.seek(0)
    return _chunks(spool), count


def _chunks(fh: Any) -> Iterator[bytes]:
    try:
        while chunk := fh.read(1 << 16):
            yield chunk
    finally:
        fh.close()
