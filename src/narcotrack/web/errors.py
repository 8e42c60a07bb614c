"""The one place where narcotrack errors become HTTP responses (JSON for the API, a page for people)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from narcotrack.errors import NarcotrackError, NotAuthenticated

log = logging.getLogger("narcotrack.web")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def field_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors as [{"field": "seizures.0.drug", "message": ...}], the shape every API route answers."""
    return [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()]


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    def respond(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status)
        return templates.TemplateResponse(
            request,
            "error.html",
            {
                "status": status,
                "message": message,
                "lang": "en",
                "languages": {},
                "demo": False,
                "version": "",
            },
            status_code=status,
        )

    @app.exception_handler(NarcotrackError)
    async def narcotrack_error(request: Request, exc: NarcotrackError) -> Response:
        if isinstance(exc, NotAuthenticated) and not _wants_json(request):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        response = respond(request, exc.http_status, str(exc))
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:  # RateLimited: tell clients when to come back (RFC 9110, 10.2.3)
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """Bad parameters or body: 422 naming each field, as the API's own validation does."""
        fields = field_errors(exc)
        if _wants_json(request):
            return JSONResponse({"error": "invalid input", "fields": fields}, status_code=422)
        return respond(request, 422, "; ".join(f"{f['field']}: {f['message']}" for f in fields))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return respond(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return respond(request, 500, "internal error; it has been logged")
