"""The release page: supervisors see what waits for them and decide with a form; proposers see their own."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from narcotrack.access.policy import principal_for
from narcotrack.access.recording import record_incident_with_release
from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.schema import Incident, ReleaseRequest, User
from narcotrack.web.app import create_app
from tests.web.helpers import PASSWORD, csrf_of, login, make_user

ORG = "KH-PP-01"


def _client(engine: Engine, username: str) -> TestClient:
    c = TestClient(create_app(engine))
    login(c, username)
    return c


def _proposal(engine: Engine, username: str = "sokha") -> tuple[str, str]:
    """An incident recorded by an officer for partners: (incident id, release request id)."""
    with session_scope(engine) as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        p = principal_for(s, org_id=user.org_id, role=user.role, user_id=user.id)
        done = record_incident_with_release(s, p, IncidentIn(
            occurred_on=dt.date(2025, 6, 1), province="Banteay Meanchey", reporting_org=ORG,
            marking="AMBER", distribution="partners", seizures=[SeizureIn(drug="ice", quantity=2, unit="kg")]))
    assert done.release_request_id is not None
    return done.record_id, done.release_request_id


def _status(engine: Engine, request_id: str) -> str:
    with session_scope(engine) as s:
        req = s.get(ReleaseRequest, request_id)
        assert req is not None
        return req.status


@pytest.fixture
def people(engine: Engine) -> None:
    for name, org, role in [("sokha", ORG, "officer"), ("dara", ORG, "analyst"), ("nacd", "KH-NACD", "analyst")]:
        make_user(engine, name, org, role)


def test_supervisor_releases_from_the_page(engine: Engine, people: None) -> None:
    incident_id, request_id = _proposal(engine)
    dara = _client(engine, "dara")
    page = dara.get("/releases")
    assert page.status_code == 200
    row = re.search(rf'<tr data-request="{request_id}">(.*?)</tr>', page.text, re.S)
    assert row and incident_id in row.group(1) and "sokha" in row.group(1)
    assert f'action="/releases/{request_id}/release"' in row.group(1)
    assert f'formaction="/releases/{request_id}/reject"' in row.group(1)
    assert dara.post(f"/releases/{request_id}/release", data={"note": "ok"}).status_code == 403  # no CSRF
    assert _status(engine, request_id) == "pending"
    done = dara.post(f"/releases/{request_id}/release", data={"csrf_token": csrf_of(page.text), "note": "ok"},
                     follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/releases?done=released"
    assert _status(engine, request_id) == "released"
    with session_scope(engine) as s:
        assert s.scalar(select(Incident.distribution).where(Incident.id == incident_id)) == "partners"
    after = dara.get("/releases?done=released")
    assert f'data-request="{request_id}"' not in after.text and 'role="status"' in after.text


def test_proposer_sees_own_proposals_and_may_only_withdraw(engine: Engine, people: None) -> None:
    _, request_id = _proposal(engine)
    sokha = _client(engine, "sokha")
    page = sokha.get("/releases")
    assert page.status_code == 200
    assert 'class="releases to-decide"' not in page.text  # an officer decides nothing
    mine = re.search(rf'<tr data-request="{request_id}">(.*?)</tr>', page.text, re.S)
    assert mine and f'action="/releases/{request_id}/withdraw"' in mine.group(1)
    assert f'action="/releases/{request_id}/release"' not in page.text
    token = csrf_of(page.text)
    assert sokha.post(f"/releases/{request_id}/release", data={"csrf_token": token}).status_code == 403
    done = sokha.post(f"/releases/{request_id}/withdraw", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and _status(engine, request_id) == "withdrawn"
    again = sokha.get("/releases")
    mine = re.search(rf'<tr data-request="{request_id}">(.*?)</tr>', again.text, re.S)
    assert mine and "/withdraw" not in mine.group(1) and "withdrawn" in mine.group(1)


def test_reject_and_other_organisations(engine: Engine, people: None) -> None:
    incident_id, request_id = _proposal(engine)
    nacd = _client(engine, "nacd")
    page = nacd.get("/releases")
    assert page.status_code == 200 and request_id not in page.text
    assert nacd.post(f"/releases/{request_id}/reject", data={"csrf_token": csrf_of(page.text)}).status_code == 403
    dara = _client(engine, "dara")
    token = csrf_of(dara.get("/releases").text)
    done = dara.post(f"/releases/{request_id}/reject", data={"csrf_token": token, "note": "not yet"},
                     follow_redirects=False)
    assert done.status_code == 303 and _status(engine, request_id) == "rejected"
    with session_scope(engine) as s:
        assert s.scalar(select(Incident.distribution).where(Incident.id == incident_id)) == "domestic"


def test_page_needs_login_and_speaks_khmer(engine: Engine, people: None) -> None:
    anonymous = TestClient(create_app(engine))
    r = anonymous.get("/releases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    _proposal(engine)
    km = _client(engine, "dara").get("/releases?lang=km")
    assert km.status_code == 200 and '<html lang="km">' in km.text


def test_reject_button_in_chromium(live_server: tuple[str, Engine], browser: Any) -> None:
    """The Reject button posts the same form (note included) to the reject route, in a real browser."""
    url, engine = live_server
    for name, org, role in [("sokha", ORG, "officer"), ("dara", ORG, "analyst")]:
        make_user(engine, name, org, role)
    _, request_id = _proposal(engine)
    page = browser.new_page()
    page.goto(url + "/login")
    page.fill("input[name=username]", "dara")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.goto(url + "/releases")
    row = page.locator(f'tr[data-request="{request_id}"]')
    row.locator("input[name=note]").fill("the narrative names an informant")
    row.locator(f'button[formaction="/releases/{request_id}/reject"]').click()
    page.wait_for_url(url + "/releases?done=rejected")
    page.close()
    with session_scope(engine) as s:
        req = s.get(ReleaseRequest, request_id)
        assert req is not None and (req.status, req.decision_note) == ("rejected", "the narrative names an informant")
