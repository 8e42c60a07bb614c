"""Login and logout pages."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from narcotrack.access.accounts import LoginFailed, authenticate, check_totp, end_session, start_session
from narcotrack.errors import Forbidden
from narcotrack.web import ratelimit
from narcotrack.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    client_address,
    login_csrf_token,
    require_actor,
    set_login_csrf,
)

Render = Callable[..., HTMLResponse]


def _safe_next(target: str | None) -> str:
    """Only local paths: a login link must not send people to another site."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/login", response_class=HTMLResponse, summary="Login page")
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        """The login form with the system-use banner; in demo mode, the demo accounts."""
        token = login_csrf_token(request)
        response = render(request, "login.html", {"next": _safe_next(next), "error": None, "csrf": token})
        set_login_csrf(request, response, token)
        return response

    @r.post("/login", summary="Log in")
    def login(request: Request, username: str = Form(...), password: str = Form(...),
              totp: str = Form(""), csrf_token: str = Form(""), next: str = Form("/")) -> Response:
        """Check the password (and the TOTP code for roles that need one) and start a session."""
        ratelimit.check(request, "login", client_address(request) or "unknown")
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, csrf_token):
            raise Forbidden("the login form has expired; reload the page and try again")
        app = request.app
        address = client_address(request)
        with Session(app.state.engine, expire_on_commit=False) as session:
            try:
                user = authenticate(session, username, password, address=address)
            except LoginFailed as exc:
                return _again(render, request, str(exc), next, csrf_token)
            second = user.role in app.state.totp_roles
            if second and not check_totp(user, totp):
                session.rollback()
                return _again(render, request, "this account needs the six-digit code of its authenticator app",
                              next, csrf_token)
            started = start_session(session, user, address=address, second_factor_ok=second)
            session.commit()
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, started.token, httponly=True, samesite="lax",
                            secure=app.state.secure_cookies, max_age=12 * 3600)
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    @r.post("/logout", summary="Log out")
    async def logout(request: Request) -> Response:
        """End the session at once (CSRF-protected)."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            end_session(session, request.cookies.get(SESSION_COOKIE, ""))
            session.commit()
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    return r


def _again(render: Render, request: Request, error: str, next: str, csrf: str) -> HTMLResponse:
    ctx: dict[str, Any] = {"next": _safe_next(next), "error": error, "csrf": csrf}
    return render(request, "login.html", ctx, status_code=401)
