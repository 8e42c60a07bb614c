"""The spreadsheet upload page: import a file for the user's organisation and show every bad row.

The import itself is ``narcotrack.ingest.importer.import_file`` with its server-safe settings (no worker
process, garbage collector and SQLite foreign-key checks left alone), run in a worker thread so the event
loop keeps serving, one import at a time per process (SQLite has one writer anyway). Every row goes
through the sharing policy (``check_may_record``), so an upload can record no more than the entry form.
The full issue list is kept as CSV in the data folder under a random id, for the uploader (or an admin)
to download while fixing the file.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from narcotrack.access.audit import record_event
from narcotrack.access.policy import (
    Principal,
    check_may_import,
    check_may_record,
    is_admin,
    may_read_upload_report,
    recording_refusal,
)
from narcotrack.config import Settings
from narcotrack.errors import Forbidden, ImportRejected, InvalidInput, NotFound
from narcotrack.ingest.importer import Authorise, import_file
from narcotrack.ingest.report import DUPLICATE, ERROR, WARNING, ImportReport
from narcotrack.ingest.template import write_template
from narcotrack.store.schema import ImportBatch, Organisation, User
from narcotrack.web.auth import Actor, check_csrf, client_address, require_actor
from narcotrack.web.export import XLSX_MEDIA

Render = Callable[..., HTMLResponse]

MAX_MB = 50
MAX_UPLOAD_BYTES = MAX_MB * 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small form fields around the file
DRAIN_LIMIT = 4 * MAX_UPLOAD_BYTES  # read (and drop) a too-large body up to this, so browsers see the page
SHOWN_ISSUES = 500
RECENT_BATCHES = 20
KEEP_REPORTS_DAYS = 30
SUFFIXES = (".csv", ".csv.gz", ".xlsx")
FORMATS = {"narcotrack": "narcotrack template", "ids": "UNODC IDS"}
IDS_ORG_CODE = "UNODC-IDS"
_REPORT_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
_IMPORT_LOCK = threading.Lock()


def router(render: Render) -> APIRouter:
    r = APIRouter()

    def form_page(request: Request, actor: Actor, error: str | None, status_code: int = 200,
                  chosen: dict[str, Any] | None = None) -> HTMLResponse:
        """The form again, with ``error`` (a catalogue message, or the importer's English text) above it."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            batches = recent_batches(session, actor)
        ctx = {"actor": actor, "batches": batches, "error": error, "formats": FORMATS, "max_mb": MAX_MB,
               "chosen": chosen or {"format": "narcotrack"}, "admin": is_admin(actor.principal)}
        return render(request, "upload.html", ctx, status_code=status_code)

    @r.get("/upload", response_class=HTMLResponse, summary="Spreadsheet upload form")
    def upload_form(request: Request) -> HTMLResponse:
        """The upload form and the user's recent imports (an admin's: everyone's)."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_import(actor.principal)
            session.commit()
        return form_page(request, actor, None)

    @r.get("/upload/template.xlsx", summary="Import template (XLSX)")
    async def template(request: Request) -> Response:
        """The import template with Khmer and English headers, allowed values, an example and a guide."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            require_actor(request, session)
            session.commit()
        body = await run_in_threadpool(_template_bytes)
        return Response(body, media_type=XLSX_MEDIA,
                        headers={"content-disposition": 'attachment; filename="narcotrack-template.xlsx"'})

    @r.post("/upload", response_class=HTMLResponse, summary="Upload and import a spreadsheet")
    async def upload(request: Request) -> HTMLResponse:
        """Import the file for the user's organisation; show the row-by-row report (audited)."""
        engine = request.app.state.engine
        with Session(engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            check_may_import(actor.principal)
            org_code = session.scalar(select(Organisation.code).where(Organisation.id == actor.user.org_id))
            session.commit()
        too_large = N_("The file is larger than the size limit: split it into smaller files.")
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            return form_page(request, actor, N_("The upload gave no size; send it from the upload form."), 411)
        if int(length) > MAX_UPLOAD_BYTES + FORM_OVERHEAD:
            await _drain(request, int(length))
            return form_page(request, actor, too_large, 413)
        await check_csrf(request, actor)
        form = await request.form()
        upload_file, fmt = form.get("file"), str(form.get("format") or "")
        partial = str(form.get("partial") or "") in {"1", "on", "true", "yes"}
        chosen = {"format": fmt, "partial": partial}
        if fmt not in FORMATS:
            return form_page(request, actor, N_("Choose the format of the file."), 422, chosen)
        if not isinstance(upload_file, UploadFile) or not upload_file.filename:
            return form_page(request, actor, N_("Choose a file to upload."), 422, chosen)
        name = _safe_name(upload_file.filename)
        if not name.lower().endswith(SUFFIXES):
            return form_page(request, actor, N_("Choose a .csv, .csv.gz or .xlsx file."), 422, chosen)
        if fmt == "ids":
            with Session(engine, expire_on_commit=False) as session:
                ids_org = session.scalar(select(Organisation.id).where(Organisation.code == IDS_ORG_CODE))
            try:
                check_may_record(actor.principal, ids_org or "", "partners")
            except Forbidden:
                msg = N_("UNODC IDS data is recorded in UNODC's name; your role may not import it.")
                return form_page(request, actor, msg, 403, chosen)
        with tempfile.TemporaryDirectory(prefix="narcotrack-upload-") as tmp:
            path = Path(tmp) / name
            size = await run_in_threadpool(_save, upload_file, path)
            await upload_file.close()
            if size > MAX_UPLOAD_BYTES:
                return form_page(request, actor, too_large, 413, chosen)
            if size == 0:
                return form_page(request, actor, N_("The file is empty."), 422, chosen)
            run = functools.partial(_import, engine, path, fmt=fmt, partial=partial, org_code=org_code,
                                    user_id=actor.user.id, authorise=authoriser(actor.principal))
            try:
                report = await run_in_threadpool(run)
            except ImportRejected as exc:  # the report says why, row by row
                if not isinstance(exc.report, ImportReport):
                    raise
                report = exc.report
            except InvalidInput as exc:  # not readable as a table at all: nothing to report row by row
                _audit(engine, request, actor, name, fmt, partial, None, "rejected", reason=str(exc))
                return form_page(request, actor, str(exc), 422, chosen)
        report_id = secrets.token_urlsafe(18)
        try:
            view = await run_in_threadpool(_keep_report, report, report_id, actor.user.id)
        finally:
            report.close()
        outcome = "ok" if report.committed else "rejected"
        _audit(engine, request, actor, name, fmt, partial, report, outcome, report_id=report_id)
        ctx = {"actor": actor, "report": view, "report_id": report_id, "format_name": FORMATS[fmt]}
        # 200 either way: the upload was checked and the page is its report (which says loudly when the
        # file was rejected); a 4xx page would read as a failed request in the browser's console
        return render(request, "upload_report.html", ctx)

    @r.get("/upload/{report_id}/errors.csv", summary="Every issue of one upload, as CSV")
    def errors_csv(request: Request, report_id: str) -> FileResponse:
        """Row, column, value, reason and severity of every issue; for the uploader or an admin (audited)."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            meta, path = _stored_report(report_id)
            if not may_read_upload_report(actor.principal, meta.get("user_id")):
                raise NotFound(f"no upload report {report_id}")  # as if absent: ids are not to be probed
            record_event(session.connection(), "export", user_id=actor.user.id, org_id=actor.user.org_id,
                         record_type="import_report", record_id=report_id,
                         address=client_address(request),
                         detail={"file": meta.get("file_name", "")})
            session.commit()
        stem = re.sub(r"(\.csv\.gz|\.csv|\.xlsx)$", "", str(meta.get("file_name") or "upload"), flags=re.I)
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"{stem}-errors.csv")

    return r


def N_(text: str) -> str:
    """Mark a message for the catalogue; upload.html translates it when it shows it."""
    return text


def authoriser(p: Principal) -> Authorise:
    """The importer's per-incident check: the sharing policy's ``recording_refusal``, asked once per
    (organisation, marking, distribution) however many rows share them."""
    return functools.cache(functools.partial(recording_refusal, p))


def recent_batches(session: Session, actor: Actor) -> list[Any]:
    """The latest imports of this user (an admin: of everyone), with who and for which organisation."""
    q = (
        select(ImportBatch, User.username, Organisation.code)
        .outerjoin(User, User.id == ImportBatch.user_id)
        .outerjoin(Organisation, Organisation.id == ImportBatch.org_id)
        .order_by(ImportBatch.created_at.desc())
        .limit(RECENT_BATCHES)
    )
    if not is_admin(actor.principal):
        q = q.where(ImportBatch.user_id == actor.user.id)
    return list(session.execute(q).all())


def _import(engine: Any, path: Path, **kwargs: Any) -> ImportReport:
    with _IMPORT_LOCK:
        return import_file(engine, path, parallel=False, server_safe=True, **kwargs)


def _save(upload: UploadFile, path: Path) -> int:
    """Copy the upload to ``path``; stops one block past the limit (the caller refuses it)."""
    size = 0
    upload.file.seek(0)
    with open(path, "wb") as out:
        while block := upload.file.read(1 << 20):
            size += len(block)
            if size > MAX_UPLOAD_BYTES:
                break
            out.write(block)
    return size


async def _drain(request: Request, length: int) -> None:
    """Read a refused body (up to a cap) so that the browser gets the answer instead of a reset."""
    if length > DRAIN_LIMIT:
        return
    async for _chunk in request.stream():
        pass


def _safe_name(name: str) -> str:
    """The uploaded file's own name (kept in the report and the batch), without any path or control."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if len(base) > 150:
        stem, dot, ext = base.rpartition(".")
        base = (stem[:140] + dot + ext) if dot and len(ext) < 8 else base[:150]
    return base or "upload"


@functools.cache
def _template_bytes() -> bytes:
    with tempfile.TemporaryDirectory(prefix="narcotrack-template-") as tmp:
        return write_template(Path(tmp) / "narcotrack-template.xlsx").read_bytes()


def _reports_dir() -> Path:
    folder = Settings().data_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _keep_report(report: ImportReport, report_id: str, user_id: str) -> dict[str, Any]:
    """Write the full issue list for download; return what the report page shows."""
    folder = _reports_dir()
    _prune(folder)
    report.write_errors_csv(folder / f"{report_id}.csv", include_warnings=True)
    meta = {"user_id": user_id, "file_name": report.file_name, "created": time.time()}
    (folder / f"{report_id}.json").write_text(json.dumps(meta), encoding="utf-8")
    shown: dict[str, list[Any]] = {ERROR: [], WARNING: [], DUPLICATE: []}
    for issue in report.iter_issues():
        kept = shown[issue.severity]
        if len(kept) < SHOWN_ISSUES:
            kept.append(issue)
    return {
        "file_name": report.file_name,
        "committed": report.committed,
        "partial": report.partial,
        "rows_read": report.rows_read,
        # a rejected file was rolled back: what its good rows would have written was not kept
        "rows_imported": report.rows_imported if report.committed else 0,
        "rows_already_present": report.rows_already_present,
        "rows_rejected": report.rows_rejected,
        "rows_with_warnings": report.rows_with_warnings,
        "incidents_created": report.incidents_created if report.committed else 0,
        "mass_kg": report.mass_kg,
        "duplicates_flagged": report.duplicates_flagged,
        "previous_imports": list(report.previous_imports),
        "errors": shown[ERROR],
        "error_count": report.count(ERROR),
        "warnings": shown[WARNING],
        "warning_count": report.count(WARNING),
        "duplicates": shown[DUPLICATE],
    }


def _prune(folder: Path) -> None:
    """Drop reports older than KEEP_REPORTS_DAYS: they hold values from the users' files."""
    cutoff = time.time() - KEEP_REPORTS_DAYS * 86400
    for meta in folder.glob("*.json"):
        try:
            if meta.stat().st_mtime < cutoff:
                meta.with_suffix(".csv").unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
        except OSError:
            continue


def _stored_report(report_id: str) -> tuple[dict[str, Any], Path]:
    folder = Settings().data_dir / "reports"
    if not _REPORT_ID.fullmatch(report_id):
        raise NotFound(f"no upload report {report_id}")
    meta_path, path = folder / f"{report_id}.json", folder / f"{report_id}.csv"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotFound(f"no upload report {report_id}") from None
    if not path.exists():
        raise NotFound(f"no upload report {report_id}")
    return meta, path


def _audit(engine: Any, request: Request, actor: Actor, name: str, fmt: str, partial: bool,
           report: ImportReport | None, outcome: str, *, report_id: str | None = None, reason: str = "") -> None:
    detail: dict[str, Any] = {"file": name, "format": fmt, "partial": partial}
    if report is not None:
        detail.update(rows_read=report.rows_read, rows_imported=report.rows_imported if report.committed else 0,
                      rows_already_present=report.rows_already_present, rows_rejected=report.rows_rejected,
                      duplicates_flagged=report.duplicates_flagged, sha256=report.sha256, report_id=report_id)
    if reason:
        detail["reason"] = reason[:500]
    with Session(engine, expire_on_commit=False) as session:
        record_event(session.connection(), "import", user_id=actor.user.id, org_id=actor.user.org_id,
                     record_type="import_batch", record_id=report.batch_id if report and report.committed else None,
                     address=client_address(request), outcome=outcome, detail=detail)
        session.commit()

