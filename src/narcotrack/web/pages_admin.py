"""Admin pages (user accounts, the audit log and its chain check) and the account page for API tokens.

Routes decide nothing: who may do what is narcotrack.access.policy (``check_is_admin``), what is done and
audited is narcotrack.access.accounts and narcotrack.access.audit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from narcotrack.access import accounts
from narcotrack.access.audit import event_actions, record_event, search_events, verify_chain
from narcotrack.access.policy import check_is_admin, role_rules
from narcotrack.domain.models import UserIn
from narcotrack.errors import Conflict, Forbidden, InvalidInput, NotFound
from narcotrack.web import ratelimit
from narcotrack.web.auth import Actor, check_csrf, client_address, require_actor
from narcotrack.web.errors import field_errors
from narcotrack.web.export import csv_body

Render = Callable[..., HTMLResponse]

PAGE = 100
EXPORT_BATCH = 1000
MAX_EXPORT_ROWS = 1_000_000
TOKEN_LIFETIMES = (30, 90, 365)  # days offered on the account page; empty = no expiry
CSV_COLUMNS = ["id", "at", "username", "org_code", "action", "record_type", "record_id", "address", "outcome",
               "detail", "user_id", "org_id"]


def _when(t: dt.datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else ""



@dataclass(frozen=True)
class AuditFilters:
    """The audit page's filters, as typed into the form (empty = not filtered)."""

    user: str = ""
    org: str = ""
    action: str = ""
    record_type: str = ""
    record_id: str = ""
    outcome: str = ""
    date_from: str = ""
    date_to: str = ""

    @classmethod
    def of(cls, request: Request) -> AuditFilters:
        q = request.query_params
        return cls(**{k: (q.get(k) or "").strip() for k in cls.__dataclass_fields__})

    def search_args(self) -> dict[str, Any]:
        try:
            dates = {k: dt.date.fromisoformat(v) if v else None
                     for k, v in (("date_from", self.date_from), ("date_to", self.date_to))}
        except ValueError as exc:
            raise InvalidInput(f"dates must be YYYY-MM-DD: {exc}") from exc
        plain = {k: v or None for k, v in asdict(self).items() if k not in dates}
        return {**plain, **dates}

    def query(self, **extra: Any) -> str:
        return urlencode({**{k: v for k, v in asdict(self).items() if v}, **extra})


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """An audit event as the page and the CSV show it: time as text, detail as sorted JSON."""
    return {**row, "at": _when(row["at"]), "detail": json.dumps(row["detail"] or {}, ensure_ascii=False,
                                                                 sort_keys=True)}


def _events_for_page(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_shown(r) for r in rows]


def _csv_export(request: Request, session: Session, actor: Actor, name: str, record_type: str,
                rows: Iterator[list[Any]], columns: list[str], **detail: Any) -> StreamingResponse:
    """Spool the rows to CSV and audit the export with its row count; the caller commits."""
    body, count = csv_body(rows, columns)
    record_event(session.connection(), "export", user_id=actor.user.id, org_id=actor.user.org_id,
                 record_type=record_type, address=client_address(request),
                 detail={"format": "csv", "rows": count, **detail})
    return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                             headers={"content-disposition": f'attachment; filename="{name}.csv"'})


def _user_form(username: str, display_name: str, org: str, role: str, password: str) -> UserIn:
    try:
        return UserIn(username=username.strip(), display_name=display_name.strip(), org=org, role=role,
                      password=password)
    except ValidationError as exc:
        problems = "; ".join(f"{f['field']}: {f['message']}" for f in field_errors(exc))
        raise InvalidInput(f"the new user is not valid: {problems}") from exc


def router(render: Render) -> APIRouter:
    r = APIRouter()

    def admin(request: Request, session: Session) -> Actor:
        actor = require_actor(request, session)
        check_is_admin(actor.principal)
        return actor

    def users_page(request: Request, session: Session, actor: Actor, *, error: str | None = None,
                   form: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
        return render(request, "admin_users.html", {
            "actor": actor, "users": accounts.list_users(session), "orgs": accounts.organisation_choices(session),
            "roles": list(role_rules()), "error": error, "form": form or {}, "when": _when}, status_code=status)

    @r.get("/admin/users", response_class=HTMLResponse, summary="User accounts (admin)")
    def users(request: Request) -> HTMLResponse:
        """Every account with organisation, role, status and last login, and the form to create one."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            page = users_page(request, session, actor)
            session.commit()
        return page

    @r.get("/admin/users/export.csv", summary="Export the user accounts as CSV (admin)")
    def users_export(request: Request) -> StreamingResponse:
        """Every account (never a password hash or a second-factor secret); the export is audited."""
        columns = ["username", "display_name", "org", "role", "active", "locked_at", "last_login"]
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            ratelimit.check(request, "export", actor.user.id)
            rows = ([u.username, u.display_name, u.org_code, u.role, u.active, _when(u.locked_at),
                     _when(u.last_login)] for u in accounts.list_users(session))
            response = _csv_export(request, session, actor, "users", "user", rows, columns)
            session.commit()
        return response

    @r.post("/admin/users", summary="Create a user (admin)")
    async def create(request: Request, username: str = Form(""), display_name: str = Form(""),
                     org: str = Form(""), role: str = Form(""), password: str = Form("")) -> Response:
        """Create an account with an initial password; audited as user_created."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            await check_csrf(request, actor)
            try:
                user = accounts.create_account(session, _user_form(username, display_name, org, role, password),
                                               by=actor.user, address=client_address(request))
            except (InvalidInput, Conflict, NotFound) as exc:
                session.rollback()
                form = {"username": username, "display_name": display_name, "org": org, "role": role}
                return users_page(request, session, actor, error=str(exc), form=form, status=exc.http_status)
            session.commit()
        return RedirectResponse(f"/admin/users/{user.id}", status_code=303)

    @r.get("/admin/users/{user_id}", response_class=HTMLResponse, summary="One user account (admin)")
    def user_detail(request: Request, user_id: str) -> HTMLResponse:
        """The account, its sessions and API tokens, what it did lately and what was done to it."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            info = accounts.account_overview(session, user_id)
            conn = session.connection()
            by_user = search_events(conn, user=info["user"].username, limit=20)
            about = search_events(conn, record_type="user", record_id=user_id, limit=20)
            session.commit()
        return render(request, "admin_user.html", {
            "actor": actor, **info, "roles": list(role_rules()), "when": _when,
            "by_user": _events_for_page(by_user), "about": _events_for_page(about)})

    async def account_action(request: Request, user_id: str, do: Callable[[Session, Actor], None]) -> Response:
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            await check_csrf(request, actor)
            do(session, actor)
            session.commit()
        return RedirectResponse(f"/admin/users/{user_id}", status_code=303)

    @r.post("/admin/users/{user_id}/disable", summary="Disable a user (admin)")
    async def disable(request: Request, user_id: str) -> Response:
        """Disable the account: its sessions and API tokens end at once; audited as user_disabled."""
        def do(session: Session, actor: Actor) -> None:
            accounts.check_not_self(actor.user, user_id)
            accounts.set_active(session, user_id, False, by=actor.user)
        return await account_action(request, user_id, do)

    @r.post("/admin/users/{user_id}/enable", summary="Enable a user (admin)")
    async def enable(request: Request, user_id: str) -> Response:
        """Enable a disabled account again (old sessions and tokens stay ended); audited as user_enabled."""
        return await account_action(request, user_id, lambda s, a: accounts.set_active(s, user_id, True, by=a.user))

    @r.post("/admin/users/{user_id}/release", summary="Release a locked user (admin)")
    async def release(request: Request, user_id: str) -> Response:
        """Unlock an account locked by failed logins; audited as account_released."""
        return await account_action(request, user_id, lambda s, a: accounts.release(s, user_id, by=a.user))

    @r.post("/admin/users/{user_id}/role", summary="Change a user's role (admin)")
    async def change_role(request: Request, user_id: str, role: str = Form("")) -> Response:
        """Give the account another role (not one's own); audited as user_role_changed."""
        def do(session: Session, actor: Actor) -> None:
            accounts.change_role(session, user_id, role, by=actor.user, address=client_address(request))
        return await account_action(request, user_id, do)

    def audit_page(request: Request, session: Session, actor: Actor, report: Any = None) -> HTMLResponse:
        filters = AuditFilters.of(request)
        before = request.query_params.get("before_id")
        try:
            before_id = int(before) if before else None
        except ValueError as exc:
            raise InvalidInput("before_id must be a whole number") from exc
        conn = session.connection()
        rows = search_events(conn, **filters.search_args(), before_id=before_id, limit=PAGE + 1)
        older = filters.query(before_id=rows[PAGE - 1]["id"]) if len(rows) > PAGE else None
        return render(request, "admin_audit.html", {
            "actor": actor, "filters": filters, "events": _events_for_page(rows[:PAGE]), "older": older,
            "newest": filters.query() if before_id else None, "export_query": filters.query(),
            "actions": event_actions(conn), "report": report})

    @r.get("/admin/audit", response_class=HTMLResponse, summary="Audit log (admin)")
    def audit(request: Request) -> HTMLResponse:
        """The audit log, newest first, filtered and paged by an "older" link (before_id)."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            page = audit_page(request, session, actor)
            session.commit()
        return page

    @r.get("/admin/audit/verify", response_class=HTMLResponse, summary="Verify the audit chain (admin)")
    def verify(request: Request, head: str = "") -> HTMLResponse:
        """Walk the whole hash chain and show ok or each problem; ``head`` = a noted "id:hash" to check too."""
        expected = None
        if head.strip():
            seq, _, digest = head.strip().partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise InvalidInput("the noted head must be written as id:hash, as the check shows it")
            expected = (int(seq), digest)
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            report = verify_chain(session.connection(), expected_head=expected)
            record_event(session.connection(), "audit_verified", user_id=actor.user.id, org_id=actor.user.org_id,
                         address=client_address(request), outcome="ok" if report.ok else "failed",
                         detail={"checked": report.checked, "problems": len(report.problems),
                                 "head_id": report.head_id, "head_hash": report.head_hash})
            page = audit_page(request, session, actor, report=report)
            session.commit()
        return page

    @r.get("/admin/audit/export.csv", summary="Export the audit log as CSV (admin)")
    def audit_export(request: Request) -> StreamingResponse:
        """Every event the filters select, as CSV; the export is itself an audit event."""
        filters = AuditFilters.of(request)
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = admin(request, session)
            ratelimit.check(request, "export", actor.user.id)
            response = _csv_export(request, session, actor, "audit", "audit_event",
                                   _audit_rows(session, filters.search_args()), CSV_COLUMNS,
                                   filters={k: v for k, v in asdict(filters).items() if v})
            session.commit()
        return response

    @r.get("/account", response_class=HTMLResponse, summary="Own account and API tokens")
    def account(request: Request) -> HTMLResponse:
        """The caller's account, sessions and API tokens, with the form to create a token."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            page = render(request, "account.html", {**_account_context(session, actor), "new_token": None})
            session.commit()
        return page

    @r.post("/account/tokens", summary="Create an API token")
    async def create_token(request: Request, name: str = Form(""), expires_days: str = Form("")) -> Response:
        """A new API token for the caller, shown once on the answer and never again; audited."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            if actor.via_token:
                raise Forbidden("an API token cannot create tokens; log in on the account page")
            name = name.strip()
            if not 1 <= len(name) <= 120:
                raise InvalidInput("give the token a name of 1 to 120 characters (what it is for)")
            if expires_days and (not expires_days.isdigit() or int(expires_days) not in TOKEN_LIFETIMES):
                raise InvalidInput(f"a token expires after {', '.join(map(str, TOKEN_LIFETIMES))} days or never")
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=int(expires_days)) if expires_days else None
            token = accounts.create_api_token(session, actor.user, name, expires_at=expires)
            page = render(request, "account.html", {**_account_context(session, actor), "new_token": token,
                                                     "new_token_name": name})
            session.commit()
        page.headers["cache-control"] = "no-store"  # the token must not stay in any cache
        return page

    @r.post("/account/tokens/{token_id}/revoke", summary="Revoke an API token")
    async def revoke_token(request: Request, token_id: str) -> Response:
        """Revoke one of the caller's tokens (an admin: anyone's); audited as api_token_revoked."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            await check_csrf(request, actor)
            owner = accounts.revoke_token(session, actor.principal, actor.user, token_id, address=client_address(request))
            session.commit()
        return RedirectResponse("/account" if owner == actor.user.id else f"/admin/users/{owner}", status_code=303)

    return r


def _account_context(session: Session, actor: Actor) -> dict[str, Any]:
    return {"actor": actor, **accounts.account_overview(session, actor.user.id), "when": _when,
            "lifetimes": TOKEN_LIFETIMES}


def _audit_rows(session: Session, args: dict[str, Any]) -> Iterator[list[Any]]:
    """The selected events, read in keyset batches."""
    count, before = 0, None
    while True:
        rows = search_events(session.connection(), **args, before_id=before, limit=EXPORT_BATCH)
        for row in rows:
            count += 1
            if count > MAX_EXPORT_ROWS:
                raise InvalidInput(f"more than {MAX_EXPORT_ROWS:,} events: narrow the filters")
            values = _shown(row)
            yield [values[c] for c in CSV_COLUMNS]
        if len(rows) < EXPORT_BATCH:
            return
        before = rows[-1]["id"]
