"""Who is asking: a browser session (cookie) or a machine client (Bearer API token).

The web layer only finds the user and builds their principal; what the principal may see is decided by
narcotrack.access.policy.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy.orm import Session

from narcotrack.access.accounts import resume_session, user_for_api_token
from narcotrack.access.policy import Principal, principal_for
from narcotrack.errors import Forbidden, NotAuthenticated
from narcotrack.store.schema import User

SESSION_COOKIE = "nt_session"
LOGIN_CSRF_COOKIE = "nt_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Actor:
    user: User
    principal: Principal
    csrf_token: str | None  # None for API-token clients, which have no cookies to forge
    via_token: bool = False


def client_address(request: Request) -> str | None:
    """The caller's address, as audit events record it."""
    return request.client.host if request.client else None


def find_actor(request: Request, session: Session) -> Actor | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = user_for_api_token(session, auth[7:].strip())
        if user is None:
            raise NotAuthenticated("the API token is unknown, expired or revoked")
        return Actor(user, principal_for(session, org_id=user.org_id, role=user.role, user_id=user.id), None, True)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    found = resume_session(session, token)
    if found is None:
        return None
    row, user = found
    if not row.second_factor_ok and user.role in request.app.state.totp_roles:
        return None
    return Actor(user, principal_for(session, org_id=user.org_id, role=user.role, user_id=user.id), row.csrf_token)


def require_actor(request: Request, session: Session) -> Actor:
    actor = find_actor(request, session)
    if actor is None:
        raise NotAuthenticated("log in first")
    return actor


async def check_csrf(request: Request, actor: Actor) -> None:
    """State-changing requests from a browser must echo the session's CSRF token (form field or header)."""
    if actor.via_token or actor.csrf_token is None:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = str((await request.form()).get(CSRF_FIELD) or "")
    if not sent or not hmac.compare_digest(sent, actor.csrf_token):
        raise Forbidden("the form has expired or did not come from narcotrack; reload the page and try again")


def login_csrf_token(request: Request) -> str:
    """Double-submit token for the login form, which is posted before any session exists."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.app.state.secure_cookies)
