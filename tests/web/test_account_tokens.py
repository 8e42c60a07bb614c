"""API-token self-service on the account page: shown once, usable as Bearer, revocable by its owner only."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from narcotrack.config import Settings
from narcotrack.store.schema import ApiToken, AuditEvent, User
from narcotrack.web.app import create_app
from tests.web.helpers import csrf_of, login, make_user


def _client(engine: Engine, username: str, org: str = "KH-ADP", role: str = "analyst") -> TestClient:
    make_user(engine, username, org, role)
    c = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    login(c, username)
    return c


def _create_token(c: TestClient, name: str, expires_days: str = "90") -> tuple[str, str]:
    page = c.get("/account")
    r = c.post("/account/tokens", data={"csrf_token": csrf_of(page.text), "name": name,
                                        "expires_days": expires_days})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    m = re.search(r'<code class="token" id="new-token">(ntk_[A-Za-z0-9_-]+)</code>', r.text)
    assert m, "the new token is not on the page"
    token_id = re.findall(r'data-token="([^"]+)"', r.text)[0]  # newest first
    return m.group(1), token_id


def _revoke(c: TestClient, token_id: str) -> int:
    r = c.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_of(c.get("/account").text)},
               follow_redirects=False)
    return r.status_code


def _bearer(engine: Engine, token: str) -> int:
    return TestClient(create_app(engine)).get("/api/v1/figures",
                                              headers={"authorization": f"Bearer {token}"}).status_code


def _events(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_token_is_shown_once_and_works_as_bearer(engine: Engine) -> None:
    c = _client(engine, "dara")
    token, token_id = _create_token(c, "nightly ETL")
    again = c.get("/account")
    assert token not in again.text and "nightly ETL" in again.text
    with Session(engine) as s:
        row = s.get(ApiToken, token_id)
        assert row is not None and row.token_hash not in again.text and token not in row.token_hash
        assert row.expires_at is not None
        owner = s.scalars(select(User.id).where(User.username == "dara")).one()
    assert row.user_id == owner
    assert _bearer(engine, token) == 200
    assert _bearer(engine, token[:-2] + "xx") == 401
    [ev] = _events(engine, "api_token_created")
    assert ev.user_id == owner and ev.detail == {"name": "nightly ETL"}
    # A token cannot mint more tokens.
    r = TestClient(create_app(engine)).post("/account/tokens", data={"name": "more"},
                                            headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert c.post("/account/tokens", data={"csrf_token": csrf_of(again.text), "name": "  "}).status_code == 422


def test_revoked_token_answers_401(engine: Engine) -> None:
    c = _client(engine, "dara")
    token, token_id = _create_token(c, "report script", expires_days="")
    keep, _ = _create_token(c, "dashboard")
    assert _revoke(c, token_id) == 303
    assert _bearer(engine, token) == 401
    assert _bearer(engine, keep) == 200
    row = re.search(rf'<tr data-token="{token_id}">(.*?)</tr>', c.get("/account").text, re.S)
    assert row and "revoked" in row.group(1) and "Revoke</button>" not in row.group(1)
    [ev] = _events(engine, "api_token_revoked")
    assert ev.detail == {"token_id": token_id, "name": "report script"}
    assert _revoke(c, token_id) == 303 and len(_events(engine, "api_token_revoked")) == 1  # no second event


def test_cannot_revoke_another_users_token(engine: Engine) -> None:
    owner = _client(engine, "dara")
    token, token_id = _create_token(owner, "etl")
    other = _client(engine, "sokha", "KH-GDCE", "analyst")
    assert _revoke(other, token_id) == 404
    assert _bearer(engine, token) == 200 and _events(engine, "api_token_revoked") == []
    # An administrator may revoke anyone's token, and is sent back to that user's page.
    admin = _client(engine, "root", "KH-NACD", "admin")
    with Session(engine) as s:
        dara = s.scalars(select(User.id).where(User.username == "dara")).one()
    assert token_id in admin.get(f"/admin/users/{dara}").text
    r = admin.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_of(admin.get("/account").text)},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/users/{dara}"
    assert _bearer(engine, token) == 401
    [ev] = _events(engine, "api_token_revoked")
    assert ev.record_id == dara and ev.user_id != dara


def test_account_page_needs_a_login(engine: Engine) -> None:
    anon = TestClient(create_app(engine))
    r = anon.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/account"
    assert anon.post("/account/tokens", data={"name": "x"}, follow_redirects=False).status_code == 303
