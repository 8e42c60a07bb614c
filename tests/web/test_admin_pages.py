"""Admin pages: accounts (create, disable, enable, release, role) and the audit log with its chain check."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.config import Settings
from narcotrack.store.schema import AuditEvent, Organisation, User
from narcotrack.web.app import create_app
from tests.web.helpers import PASSWORD, csrf_of, login, make_user


def _client(engine: Engine, username: str, org: str = "KH-NACD", role: str = "admin") -> TestClient:
    make_user(engine, username, org, role)
    c = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    login(c, username)
    return c


def _uid(engine: Engine, username: str) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(select(User.id).where(User.username == username)))


def _user(engine: Engine, username: str) -> User:
    with Session(engine) as s:
        return s.scalars(select(User).where(User.username == username)).one()


def _audit(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _post(c: TestClient, path: str, **data: str) -> Response:
    token = csrf_of(c.get("/account").text)
    return c.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _event_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-event="(\d+)"', page)]


def test_admin_creates_a_user_and_it_is_audited(engine: Engine) -> None:
    c = _client(engine, "root")
    r = _post(c, "/admin/users", username="sokha", display_name="Sokha Chan", org="KH-GDCE", role="officer",
              password="border-post-77")
    assert r.status_code == 303
    uid = _uid(engine, "sokha")
    assert r.headers["location"] == f"/admin/users/{uid}"
    [created] = _audit(engine, "user_created")
    assert (created.record_id, created.user_id) == (uid, _uid(engine, "root"))
    assert created.detail == {"username": "sokha", "org": "KH-GDCE", "role": "officer"}
    row = re.search(r'<tr data-user="sokha">(.*?)</tr>', c.get("/admin/users").text, re.S)
    assert row and "KH-GDCE" in row.group(1) and "officer" in row.group(1) and "never" in row.group(1)
    login(TestClient(create_app(engine, settings=Settings(totp_roles=""))), "sokha", "border-post-77")

    weak = _post(c, "/admin/users", username="vanna", org="KH-GDCE", role="viewer", password="password123")
    assert weak.status_code == 422 and "common" in weak.text
    assert 'value="vanna"' in weak.text  # the form keeps what was typed
    again = _post(c, "/admin/users", username="sokha", org="KH-GDCE", role="viewer", password="border-post-78")
    assert again.status_code == 409 and "already exists" in again.text
    bad = _post(c, "/admin/users", username="x y", org="KH-GDCE", role="viewer", password="border-post-78")
    assert bad.status_code == 422
    assert len(_audit(engine, "user_created")) == 1


def test_disabling_ends_the_users_session_at_once(engine: Engine) -> None:
    admin = _client(engine, "root")
    dara = _client(engine, "dara", "KH-ADP", "analyst")
    assert dara.get("/").status_code == 200
    uid = _uid(engine, "dara")
    assert "open: 1 · in all: 1" in admin.get(f"/admin/users/{uid}").text
    assert _post(admin, f"/admin/users/{uid}/disable").status_code == 303
    r = dara.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    page = admin.get(f"/admin/users/{uid}").text
    assert "open: 0 · in all: 1" in page and re.search(r'class="status">\s*disabled', page)
    [ev] = _audit(engine, "user_disabled")
    assert (ev.record_id, ev.user_id) == (uid, _uid(engine, "root"))

    assert _post(admin, f"/admin/users/{uid}/enable").status_code == 303
    assert [e.record_id for e in _audit(engine, "user_enabled")] == [uid]
    login(dara, "dara")
    assert dara.get("/").status_code == 200
    # An admin may not disable (or demote) their own account.
    assert _post(admin, f"/admin/users/{_uid(engine, 'root')}/disable").status_code == 409


def test_admin_releases_a_locked_account(engine: Engine) -> None:
    admin = _client(engine, "root")
    make_user(engine, "dara", "KH-ADP", "analyst")
    uid = _uid(engine, "dara")
    guesser = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    for _ in range(5):
        form = guesser.get("/login")
        guesser.post("/login", data={"username": "dara", "password": "wrong-guess-1",
                                     "csrf_token": csrf_of(form.text)})
    row = re.search(r'<tr data-user="dara">(.*?)</tr>', admin.get("/admin/users").text, re.S)
    assert row and "locked" in row.group(1)
    with pytest.raises(AssertionError):
        login(guesser, "dara")  # the right password does not help while locked
    assert "Release the lock-out" in admin.get(f"/admin/users/{uid}").text
    assert _post(admin, f"/admin/users/{uid}/release").status_code == 303
    [ev] = _audit(engine, "account_released")
    assert (ev.record_id, ev.user_id) == (uid, _uid(engine, "root"))
    login(guesser, "dara", PASSWORD)
    assert guesser.get("/").status_code == 200


def test_admin_changes_a_role(engine: Engine) -> None:
    admin = _client(engine, "root")
    make_user(engine, "dara", "KH-ADP", "analyst")
    uid = _uid(engine, "dara")
    assert _post(admin, f"/admin/users/{uid}/role", role="viewer").status_code == 303
    assert _user(engine, "dara").role == "viewer"
    [ev] = _audit(engine, "user_role_changed")
    assert ev.record_id == uid and ev.detail == {"from": "analyst", "to": "viewer"}
    assert _post(admin, f"/admin/users/{uid}/role", role="emperor").status_code == 422
    root = _uid(engine, "root")
    assert _post(admin, f"/admin/users/{root}/role", role="viewer").status_code == 409
    assert _user(engine, "root").role == "admin" and len(_audit(engine, "user_role_changed")) == 1


@pytest.mark.parametrize("role", ["analyst", "officer", "liaison", "viewer"])
def test_non_admins_are_refused_on_every_admin_route(engine: Engine, role: str) -> None:
    c = _client(engine, "someone", "KH-NACD", role)
    uid = _uid(engine, "someone")
    # From the OpenAPI description: FastAPI's app.routes no longer lists routes of included routers.
    paths = create_app(engine).openapi()["paths"]
    routes = [(m.upper(), path) for path, ops in paths.items() if path.startswith("/admin") for m in ops]
    assert len(routes) >= 10
    token = csrf_of(c.get("/account").text)
    anon = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    for method, path in routes:
        url = path.replace("{user_id}", uid)
        r = c.request(method, url, data={"csrf_token": token, "role": "admin"} if method == "POST" else None,
                      follow_redirects=False)
        assert r.status_code == 403, (method, url, r.status_code)
        assert anon.request(method, url, follow_redirects=False).status_code == 303, (method, url)
    assert _user(engine, "someone").role == role and _user(engine, "someone").active


def _write_events(engine: Engine) -> dict[str, str]:
    """250 events of three users in two organisations, with varied actions, records and outcomes."""
    make_user(engine, "dara", "KH-ADP", "analyst")
    make_user(engine, "lek", "TH-ONCB", "liaison")
    with engine.begin() as conn:
        orgs = dict(conn.execute(select(Organisation.code, Organisation.id)).all())
        users = dict(conn.execute(select(User.username, User.id)).all())
        for i in range(250):
            who = "dara" if i % 5 else "lek"
            record_event(conn, "read_person" if i % 2 else "export", user_id=users[who],
                         org_id=orgs["KH-ADP" if who == "dara" else "TH-ONCB"], record_type="person",
                         record_id=f"p{i % 7}", address="10.0.0.9", outcome="denied" if i % 11 == 0 else "ok",
                         detail={"i": i})
    return users


def test_audit_page_filters_and_pages(engine: Engine) -> None:
    admin = _client(engine, "root")
    users = _write_events(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.id, AuditEvent.user_id, AuditEvent.action, AuditEvent.record_id,
                                   AuditEvent.outcome).order_by(AuditEvent.id.desc())).all()

    def expect(pred: Callable[[Any], bool]) -> list[int]:
        return [r.id for r in rows if pred(r)]

    def ids(**params: str) -> list[int]:
        r = admin.get("/admin/audit", params=params)
        assert r.status_code == 200
        return _event_ids(r.text)

    assert ids(user="lek") == expect(lambda r: r.user_id == users["lek"])
    assert ids(org="TH-ONCB") == expect(lambda r: r.user_id == users["lek"])
    assert ids(user="dara", record_id="p3", outcome="denied") == expect(
        lambda r: r.user_id == users["dara"] and r.record_id == "p3" and r.outcome == "denied")
    assert ids(action="login") == expect(lambda r: r.action == "login")  # the admin's own login
    today = dt.datetime.now(dt.UTC).date()
    assert ids(date_from=str(today + dt.timedelta(days=1))) == []
    assert len(ids(date_from=str(today - dt.timedelta(days=1)), date_to=str(today + dt.timedelta(days=1)))) == 100
    assert admin.get("/admin/audit", params={"date_from": "yesterday"}).status_code == 422
    assert 'option value="read_person"' in admin.get("/admin/audit").text

    # Paging by the "older" link: newest first, no event twice, none left out, filters kept.
    want = expect(lambda r: r.action == "read_person")
    seen: list[int] = []
    url: str | None = "/admin/audit?action=read_person"
    while url:
        page = admin.get(url).text
        seen += _event_ids(page)
        m = re.search(r'href="(/admin/audit\?[^"]*)" rel="next"', page)
        url = html.unescape(m.group(1)) if m else None
        assert url is None or "action=read_person" in url
    assert seen == want and len(want) == 125

    export = admin.get("/admin/audit/export.csv", params={"user": "lek", "outcome": "denied"})
    assert export.status_code == 200
    lines = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [int(x["id"]) for x in lines] == expect(lambda r: r.user_id == users["lek"] and r.outcome == "denied")
    assert {x["username"] for x in lines} == {"lek"} and {x["org_code"] for x in lines} == {"TH-ONCB"}
    [ev] = [e for e in _audit(engine, "export") if e.record_type == "audit_event"]
    assert ev.detail == {"format": "csv", "rows": len(lines), "filters": {"user": "lek", "outcome": "denied"}}


def _tamper(engine: Engine, sql: str) -> None:
    """Edit the log as someone with database access would: switch off the append-only guard first."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_no_update")
            conn.exec_driver_sql(sql)
        else:
            conn.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only")
            conn.exec_driver_sql(sql)
            conn.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only")


def test_verify_page_shows_tampering(engine: Engine) -> None:
    admin = _client(engine, "root")
    _write_events(engine)
    ok = admin.get("/admin/audit/verify")
    assert ok.status_code == 200 and "The chain is intact." in ok.text
    head = re.search(r"<code>(\d+:[0-9a-f]{64})</code>", ok.text)
    assert head
    assert "The chain is intact." in admin.get("/admin/audit/verify", params={"head": head.group(1)}).text
    _tamper(engine, "UPDATE audit_event SET record_id = 'p99' WHERE id = 7")
    broken = admin.get("/admin/audit/verify")
    assert broken.status_code == 200 and "The chain is broken" in broken.text
    assert "event 7: content changed after it was written" in broken.text
    assert "intact" not in broken.text
    outcomes = [e.outcome for e in _audit(engine, "audit_verified")]
    assert outcomes == ["ok", "ok", "failed"]


def test_user_list_exports_without_secrets_and_is_audited(engine: Engine) -> None:
    admin = _client(engine, "root-admin")
    r = admin.get("/admin/users/export.csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert r.status_code == 200 and [x["username"] for x in rows] == ["root-admin"]
    assert "argon2" not in r.text
    assert [e.detail["rows"] for e in _audit(engine, "export")] == [1]
    assert _client(engine, "ana", role="analyst").get("/admin/users/export.csv").status_code == 403
