"""Application factory. Routes read through repository functions and render; they decide nothing."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from narcotrack import __version__
from narcotrack.access.policy import visible_filter
from narcotrack.config import Settings
from narcotrack.domain.vocab import vocabularies
from narcotrack.store import migrate
from narcotrack.store.db import make_engine
from narcotrack.store.figures import cached_dashboard_figures, cached_headline_figures
from narcotrack.web import (
    api_incidents,
    api_operations,
    api_orgs,
    api_persons,
    api_records,
    api_releases,
    export,
    pages_admin,
    pages_analytics,
    pages_auth,
    pages_incidents,
    pages_operations,
    pages_orgs,
    pages_partners,
    pages_persons,
    pages_records,
    pages_releases,
    pages_upload,
    ratelimit,
    search,
    taxii,
)
from narcotrack.web.auth import require_actor
from narcotrack.web.errors import install_error_handlers
from narcotrack.web.i18n import LANGUAGES, pick_language, translations


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(resources.files("narcotrack.web") / "templates"))
    templates.env.add_extension("jinja2.ext.i18n")
    templates.env.policies["ext.i18n.trimmed"] = True
    templates.env.install_null_translations(newstyle=False)  # type: ignore[attr-defined]
    return templates


def create_app(engine: Engine | None = None, *, demo: bool = False, settings: Settings | None = None) -> FastAPI:
    """The web application bound to one store."""
    engine = engine or make_engine()
    settings = settings or Settings()
    # No Swagger UI: FastAPI would load it from a CDN, and narcotrack fetches nothing at run time.
    app = FastAPI(
        title="narcotrack",
        version=__version__,
        docs_url=None,
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.demo = demo
    # `serve --demo` relaxes the second factor, and the login page says so.
    app.state.totp_roles = frozenset() if demo else settings.totp_role_set()
    app.state.secure_cookies = settings.secure_cookies
    app.state.pseudonym_key = settings.pseudonym_key_bytes()
    app.state.rate_limiter = ratelimit.limiter_for(settings)
    templates = _templates()
    app.mount(
        "/static", StaticFiles(directory=str(resources.files("narcotrack.web") / "static")), name="static"
    )
    install_error_handlers(app, templates)

    def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
        lang = pick_language(
            request.query_params.get("lang"),
            request.cookies.get("lang"),
            request.headers.get("accept-language"),
        )
        # Per-request gettext in the context (not the shared environment), so concurrent requests in
        # different languages never see each other's catalogue.
        tr = translations(lang)
        ctx = {
            "lang": lang,
            "languages": LANGUAGES,
            "demo": app.state.demo,
            "version": __version__,
            "_": tr.gettext,
            "gettext": tr.gettext,
            "ngettext": tr.ngettext,
            **context,
        }
        response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie("lang", lang, httponly=True, samesite="lax")
        return response

    app.include_router(pages_auth.router(render))
    app.include_router(pages_upload.router(render))
    app.include_router(pages_admin.router(render))
    app.include_router(pages_partners.router(render))
    app.include_router(export.router())  # before the incident routes: /export.csv is not an id
    app.include_router(api_incidents.router())
    app.include_router(api_persons.router())
    app.include_router(pages_incidents.router(render))  # /incidents/new before /incidents/{incident_id}
    app.include_router(api_releases.router())
    app.include_router(pages_releases.router(render))
    app.include_router(api_orgs.router())  # its export routes come before its {id} routes
    app.include_router(pages_orgs.router(render))
    app.include_router(search.router(render))
    app.include_router(pages_analytics.router(render))
    app.include_router(pages_persons.router(render))
    app.include_router(taxii.router())
    app.include_router(pages_operations.router(render))  # the joint operations workspace
    app.include_router(api_operations.router())
    for page_router in pages_records.routers(render):
        app.include_router(page_router)
    for record_router in api_records.routers():
        app.include_router(record_router)

    @app.get("/", response_class=HTMLResponse, summary="Home page with headline figures")
    def home(request: Request) -> HTMLResponse:
        """Headline figures of what the user may see: in all, and for the twelve months to the latest."""
        with Session(engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            session.commit()  # end the login's write first: on SQLite it would hold every writer back meanwhile
            visible = functools.partial(visible_filter, actor.principal)
            total, recent = cached_dashboard_figures(session, visible=visible)
            session.commit()
        drugs = vocabularies().drugs.terms
        return render(request, "home.html", {"total": total, "recent": recent, "drugs": drugs, "actor": actor})

    @app.get("/fonts/noto-sans-khmer.ttf", summary="Khmer font", include_in_schema=False)
    def khmer_font() -> FileResponse:
        """Noto Sans Khmer (SIL Open Font License), served by narcotrack: no font is fetched from the internet."""
        path = resources.files("fontpkg_noto_sans_khmer") / "files" / "NotoSansKhmer[wdth,wght].ttf"
        return FileResponse(str(path), media_type="font/ttf", headers={"cache-control": "public, max-age=604800"})

    @app.get("/health", summary="Health check")
    def health() -> JSONResponse:
        """200 when the store answers and is at the current schema version, else 503."""
        try:
            revision = migrate.current_revision(engine)
        except Exception as exc:  # the store is down: say so, do not crash
            return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
        status = "ok" if revision == migrate.head_revision() else "outdated"
        return JSONResponse(
            {"status": status, "database": engine.dialect.name, "schema": revision, "version": __version__},
            status_code=200 if status == "ok" else 503,
        )

    @app.get("/api/v1/figures", summary="Headline figures")
    def figures(request: Request) -> dict[str, Any]:
        """The same counts as the home page, for what the caller may see."""
        with Session(engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            session.commit()  # as on the home page
            data = cached_headline_figures(session, visible=functools.partial(visible_filter, actor.principal))
            session.commit()
        data["latest_incident"] = data["latest_incident"].isoformat() if data["latest_incident"] else None
        return data

    return app
