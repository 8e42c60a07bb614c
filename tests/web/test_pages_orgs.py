"""Organisation and sharing-group pages: everyone reads (groups only their own), admins create, change and
manage members through forms with CSRF tokens; errors come back beside the field."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from narcotrack.config import Settings
from narcotrack.store.schema import AuditEvent, Organisation, SharingGroup
from narcotrack.store.seed import org_id
from narcotrack.web.app import create_app
from tests.web.helpers import csrf_of, login, make_user

FORM = {"code": "KH-PP-TEST", "name_en": "Test Provincial Police", "name_km": "", "kind": "police",
        "country": "KH", "domestic": "", "parent": "KH-ADP"}


def _client(engine: Engine, name: str, org: str, role: str) -> tuple[TestClient, str]:
    make_user(engine, name, org, role)
    c = TestClient(create_app(engine, settings=Settings(totp_roles="", pseudonym_key="test-key")))
    login(c, name)
    return c, csrf_of(c.get("/").text)


def _group_id(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        gid = conn.scalar(select(SharingGroup.id).where(SharingGroup.name == name))
    assert gid is not None
    return str(gid)


def test_admin_creates_and_edits_an_organisation(engine: Engine) -> None:
    c, token = _client(engine, "admin", "KH-NACD", "admin")
    page = c.get("/organisations")
    assert page.status_code == 200 and 'method="post" action="/organisations"' in page.text
    assert "/api/v1/organisations/export.csv" in page.text and "KH-NACD" in page.text
    r = c.post("/organisations", data={**FORM, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    detail = c.get(r.headers["location"])
    assert "Test Provincial Police" in detail.text and 'href="/organisations/' + org_id("KH-ADP") in detail.text
    oid = r.headers["location"].rsplit("/", 1)[1]
    edit = {"name_en": "Test Police", "name_km": "នគរបាលសាកល្បង", "kind": "police", "country": "KH",
            "domestic": "yes", "parent": "", "version": "1", "csrf_token": token}
    assert c.post(f"/organisations/{oid}", data=edit, follow_redirects=False).status_code == 303
    after = c.get(f"/organisations/{oid}").text
    assert "នគរបាលសាកល្បង" in after and "name_en: Test Provincial Police → Test Police" in after  # history
    stale = c.post(f"/organisations/{oid}", data={**edit, "name_en": "Lost"}, follow_redirects=False)
    assert stale.status_code == 409 and "changed since version 1" in stale.text
    with engine.connect() as conn:
        o = conn.execute(select(Organisation.name_en, Organisation.parent_id, Organisation.version)
                         .where(Organisation.id == oid)).one()
        assert tuple(o) == ("Test Police", None, 2)
        assert list(conn.scalars(select(AuditEvent.action).where(AuditEvent.record_id == oid)
                                 .order_by(AuditEvent.id))) == ["create", "update"]


def test_invalid_form_comes_back_with_the_message_beside_the_field(engine: Engine) -> None:
    c, token = _client(engine, "admin", "KH-NACD", "admin")
    r = c.post("/organisations", data={**FORM, "kind": "", "country": "Atlantis", "csrf_token": token})
    assert r.status_code == 422
    assert re.search(r'name="country" value="Atlantis".*?<span class="error">unknown country', r.text, re.S)
    assert "an organisation needs a kind" in r.text
    r = c.post("/organisations", data={**FORM, "code": "KH-NACD", "csrf_token": token})
    assert r.status_code == 409 and "already exists" in r.text
    assert c.post("/organisations", data=FORM).status_code == 403  # no CSRF token


def test_non_admins_read_only(engine: Engine) -> None:
    c, token = _client(engine, "analyst", "KH-NACD", "analyst")
    page = c.get("/organisations", params={"country": "TH"})
    assert page.status_code == 200 and "TH-ONCB" in page.text and "KH-NACD" not in page.text
    assert 'method="post" action="/organisations"' not in page.text  # no create form
    assert c.get(f"/organisations/{org_id('KH-NACD')}").status_code == 200
    assert c.post("/organisations", data={**FORM, "csrf_token": token}).status_code == 403
    assert c.post("/sharing-groups", data={"name": "Rogue", "csrf_token": token}).status_code == 403
    anon = TestClient(create_app(engine))
    assert anon.get("/organisations", follow_redirects=False).headers["location"].startswith("/login")


def test_admin_manages_a_group_and_a_liaison_sees_only_its_own(engine: Engine) -> None:
    c, token = _client(engine, "admin", "KH-NACD", "admin")
    r = c.post("/sharing-groups", data={"name": "KH-TH border", "agreement": "MoU of 2023\nArticle 4: identities",
                                        "allows_identity": "yes", "valid_from": "2023-05-01", "valid_to": "",
                                        "owner": "KH-NACD", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    gid = _group_id(engine, "KH-TH border")
    c.post("/sharing-groups", data={"name": "KH-VN", "owner": "KH-NACD", "csrf_token": token})
    assert c.post(f"/sharing-groups/{gid}/members", data={"org_code": "TH-ONCB", "csrf_token": token},
                  follow_redirects=False).status_code == 303
    c.post(f"/sharing-groups/{gid}/members", data={"org_code": "TH-NSB", "csrf_token": token})
    assert c.post(f"/sharing-groups/{gid}/members/TH-NSB/remove", data={"csrf_token": token},
                  follow_redirects=False).status_code == 303
    refused = c.post(f"/sharing-groups/{gid}/members/KH-NACD/remove", data={"csrf_token": token})
    assert refused.status_code == 422 and "owns the group" in refused.text
    bad = c.post(f"/sharing-groups/{gid}", data={"name": "KH-TH border", "owner": "KH-NACD", "valid_from": "2023-05-01",
                                                  "valid_to": "2020-01-01", "version": "4", "csrf_token": token})
    assert bad.status_code == 422 and "valid_to is before valid_from" in bad.text
    page = c.get(f"/sharing-groups/{gid}").text
    assert "Article 4: identities" in page and "TH-ONCB" in page and "members: KH-NACD, TH-NSB, TH-ONCB" in page

    thai, thai_token = _client(engine, "thai", "TH-ONCB", "liaison")
    listing = thai.get("/sharing-groups").text
    assert "KH-TH border" in listing and "KH-VN" not in listing and 'method="post" action="/sharing-groups"' not in listing
    mine = thai.get(f"/sharing-groups/{gid}")
    assert mine.status_code == 200 and "Exchanged in full" in mine.text and "/remove" not in mine.text
    assert thai.get(f"/sharing-groups/{_group_id(engine, 'KH-VN')}").status_code == 404
    assert thai.post(f"/sharing-groups/{gid}/members", data={"org_code": "LA-LCDC", "csrf_token": thai_token}
                     ).status_code == 403
    with engine.connect() as conn:
        actions = list(conn.scalars(select(AuditEvent.action).where(AuditEvent.record_id == gid)
                                    .order_by(AuditEvent.id)))
    assert actions == ["create", "share_member_added", "share_member_added", "share_member_removed"]


def test_pages_render_in_khmer(engine: Engine) -> None:
    c, _ = _client(engine, "viewer", "KH-MOH", "viewer")
    page = c.get("/organisations", params={"lang": "km", "domestic": "yes"})
    assert page.status_code == 200 and "អាជ្ញាធរជាតិប្រយុទ្ធប្រឆាំងគ្រឿងញៀន" in page.text  # KH-NACD's Khmer name
    assert "TH-ONCB" not in page.text
    assert c.get("/sharing-groups", params={"lang": "km"}).status_code == 200
