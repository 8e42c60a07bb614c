"""The organisation and sharing-group API: admin-only writes with history, locking, CSRF and audit; groups
visible to their members only; membership and the agreement's identity rule change what the person API shows."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, insert, select

from narcotrack.config import Settings
from narcotrack.domain.ids import stable_id
from narcotrack.store.db import session_scope
from narcotrack.store.repo import history
from narcotrack.store.schema import AuditEvent, Person, PersonIdentity
from narcotrack.store.seed import org_id
from narcotrack.web.app import create_app
from tests.web.helpers import csrf_of, login, make_user

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ORG = {"code": "KH-PP-TEST", "name_en": "Test Provincial Police", "kind": "police", "country": "KH",
       "parent": "KH-ADP"}


class Client:
    """A logged-in browser session that sends its CSRF token on writes, as base.html's htmx does."""

    def __init__(self, engine: Engine, name: str, org: str, role: str) -> None:
        make_user(engine, name, org, role)
        self.c = TestClient(create_app(engine, settings=Settings(totp_roles="", pseudonym_key="test-key")))
        login(self.c, name)
        self.h = {"X-CSRF-Token": csrf_of(self.c.get("/").text)}

    def get(self, url: str, **kw: Any) -> Any:
        return self.c.get(url, **kw)

    def send(self, method: str, url: str, body: Any = None, **kw: Any) -> Any:
        return self.c.request(method, url, json=body, headers=self.h, **kw)


def _audit(engine: Engine, *actions: str) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.action, AuditEvent.record_type, AuditEvent.record_id, AuditEvent.detail)
                            .where(AuditEvent.action.in_(actions)).order_by(AuditEvent.id)).all()
    return [tuple(r) for r in rows]


def test_admin_creates_and_updates_an_organisation(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    r = admin.send("POST", "/api/v1/organisations", ORG)
    assert r.status_code == 201, r.text
    org = r.json()
    assert (org["code"], org["domestic"], org["parent"], org["version"]) == ("KH-PP-TEST", True, "KH-ADP", 1)
    assert admin.get(f"/api/v1/organisations/{org['id']}").json() == org
    r = admin.send("PATCH", f"/api/v1/organisations/{org['id']}", {"name_km": "ស្នងការដ្ឋានសាកល្បង", "version": 1})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["name_km"] == "ស្នងការដ្ឋានសាកល្បង"
    stale = admin.send("PATCH", f"/api/v1/organisations/{org['id']}", {"name_en": "Lost update", "version": 1})
    assert stale.status_code == 409 and "version 1" in stale.json()["error"]
    assert admin.send("POST", "/api/v1/organisations", ORG).status_code == 409  # code is unique
    with session_scope(engine) as s:
        assert [(h.version, sorted(h.changes)) for h in history(s, "organisation", org["id"])] == [(2, ["name_km"])]
    events = _audit(engine, "create", "update")
    assert [(a, t, i) for a, t, i, _ in events] == [("create", "organisation", org["id"]),
                                                    ("update", "organisation", org["id"])]
    assert events[1][3]["fields"] == ["name_km"]


def test_list_filters_and_paginates(engine: Engine) -> None:
    viewer = Client(engine, "viewer", "KH-MOH", "viewer")  # every logged-in user may list organisations
    r = viewer.get("/api/v1/organisations", params={"country": "TH", "domestic": "false"})
    assert {o["code"] for o in r.json()["items"]} == {"UNODC", "TH-ONCB", "TH-NSB"}
    seen, cursor = [], None
    while True:
        page = viewer.get("/api/v1/organisations", params={"kind": "police", "limit": 7,
                                                           **({"cursor": cursor} if cursor else {})}).json()
        seen += [o["code"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 27  # KH-ADP, KH-IMM and the 25 provincial commissariats
    assert all(o["parent"] == "KH-ADP" for o in viewer.get("/api/v1/organisations", params={
        "kind": "police", "limit": 500}).json()["items"] if o["code"].startswith("KH-PP-"))
    assert TestClient(create_app(engine)).get("/api/v1/organisations").status_code == 401


def test_non_admins_may_not_write(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    group = admin.send("POST", "/api/v1/sharing-groups", {"name": "Mekong", "members": ["TH-ONCB"]}).json()
    nacd_org = org_id("KH-NACD")
    for name, org, role in (("analyst", "KH-NACD", "analyst"), ("thai", "TH-ONCB", "liaison")):
        c = Client(engine, name, org, role)
        assert c.send("POST", "/api/v1/organisations", ORG).status_code == 403
        assert c.send("PATCH", f"/api/v1/organisations/{nacd_org}", {"name_en": "Hijacked"}).status_code == 403
        assert c.send("POST", "/api/v1/sharing-groups", {"name": "Rogue"}).status_code == 403
        assert c.send("PATCH", f"/api/v1/sharing-groups/{group['id']}", {"allows_identity": True}).status_code == 403
        assert c.send("PUT", f"/api/v1/sharing-groups/{group['id']}/members/LA-LCDC").status_code == 403
        assert c.send("DELETE", f"/api/v1/sharing-groups/{group['id']}/members/TH-ONCB").status_code == 403
    assert admin.get(f"/api/v1/sharing-groups/{group['id']}").json()["members"] == ["KH-NACD", "TH-ONCB"]
    assert admin.get(f"/api/v1/organisations/{nacd_org}").json()["version"] == 1
    no_csrf = admin.c.post("/api/v1/organisations", json=ORG)  # a cookie session without the token
    assert no_csrf.status_code == 403


def test_validation_errors_name_the_field(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    r = admin.send("POST", "/api/v1/organisations", {**ORG, "kind": "bakery", "country": "Atlantis"})
    assert r.status_code == 422
    assert {f["field"] for f in r.json()["fields"]} == {"kind", "country"}
    r = admin.send("POST", "/api/v1/organisations", {**ORG, "parent": "KH-NOWHERE"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "parent"
    r = admin.send("POST", "/api/v1/organisations", {**ORG, "code": "TH-X", "country": "TH", "domestic": True})
    assert r.status_code == 422 and [f["field"] for f in r.json()["fields"]] == ["domestic"]
    group = admin.send("POST", "/api/v1/sharing-groups", {"name": "Mekong", "valid_from": "2025-01-01"}).json()
    r = admin.send("PATCH", f"/api/v1/sharing-groups/{group['id']}", {"valid_to": "2024-12-31"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "valid_to"
    r = admin.send("PATCH", f"/api/v1/sharing-groups/{group['id']}", {"colour": "blue"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "colour"
    r = admin.send("PUT", f"/api/v1/sharing-groups/{group['id']}/members/XX-NONE")
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "org_code"


def test_a_liaison_sees_only_the_groups_of_its_organisation(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    thai_group = admin.send("POST", "/api/v1/sharing-groups", {"name": "KH-TH border", "agreement": "MoU 2023",
                                                               "members": ["TH-ONCB", "TH-NSB"]}).json()
    viet_group = admin.send("POST", "/api/v1/sharing-groups", {"name": "KH-VN", "members": ["VN-C04"]}).json()
    assert {g["name"] for g in admin.get("/api/v1/sharing-groups").json()["items"]} == {"KH-TH border", "KH-VN"}
    thai = Client(engine, "thai", "TH-ONCB", "liaison")
    items = thai.get("/api/v1/sharing-groups").json()["items"]
    assert [(g["name"], g["members"], g["agreement"]) for g in items] == [
        ("KH-TH border", ["KH-NACD", "TH-NSB", "TH-ONCB"], "MoU 2023")]
    assert thai.get(f"/api/v1/sharing-groups/{thai_group['id']}").status_code == 200
    assert thai.get(f"/api/v1/sharing-groups/{viet_group['id']}").status_code == 404  # no leak of existence


def _shared_person(engine: Engine, group_id: str) -> str:
    pid = stable_id("person", f"shared-{group_id}")
    with engine.begin() as conn:
        conn.execute(insert(Person), [{"id": pid, "sex": "M", "nationality": "KH", "birth_year": 1990,
                                       "owner_org_id": org_id("KH-NACD"), "marking": "AMBER",
                                       "distribution": "group", "sharing_group_id": group_id,
                                       "created_at": NOW, "updated_at": NOW, "version": 1}])
        conn.execute(insert(PersonIdentity), [{"person_id": pid, "name_km": "សុខ ដារា", "name_latin": "Sok Dara",
                                               "aliases": [], "date_of_birth": dt.date(1990, 4, 2),
                                               "age_reported": None, "id_numbers": ["010203040"],
                                               "updated_at": NOW}])
    return pid


def test_membership_of_an_identity_group_decides_what_a_partner_sees(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    group = admin.send("POST", "/api/v1/sharing-groups", {"name": "Identity exchange", "allows_identity": True,
                                                          "members": ["VN-C04"]}).json()
    pid = _shared_person(engine, group["id"])
    thai = Client(engine, "thai", "TH-ONCB", "liaison")
    assert thai.get(f"/api/v1/persons/{pid}").status_code == 404  # not a member: not shared at all
    r = admin.send("PUT", f"/api/v1/sharing-groups/{group['id']}/members/th-oncb", params={"version": 1})
    assert r.status_code == 200 and r.json()["members"] == ["KH-NACD", "TH-ONCB", "VN-C04"] and r.json()["version"] == 2
    ident = thai.get(f"/api/v1/persons/{pid}").json()["identity"]
    assert ident["access"] == "full" and ident["name_latin"] == "Sok Dara" and ident["id_numbers"] == ["010203040"]
    r = admin.send("DELETE", f"/api/v1/sharing-groups/{group['id']}/members/TH-ONCB")
    assert r.status_code == 200 and "TH-ONCB" not in r.json()["members"]
    assert thai.get(f"/api/v1/persons/{pid}").status_code == 404
    assert admin.send("DELETE", f"/api/v1/sharing-groups/{group['id']}/members/TH-ONCB").status_code == 404
    events = _audit(engine, "share_member_added", "share_member_removed")
    assert [(a, d["org"]) for a, _, _, d in events] == [("share_member_added", "TH-ONCB"),
                                                         ("share_member_removed", "TH-ONCB")]
    assert all(t == "sharing_group" and i == group["id"] and d["allows_identity"] for _, t, i, d in events)


def test_the_agreements_identity_rule_turns_a_pseudonym_into_full_identity_and_back(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    group = admin.send("POST", "/api/v1/sharing-groups", {"name": "KH-TH", "allows_identity": False,
                                                          "members": ["TH-ONCB"]}).json()
    pid = _shared_person(engine, group["id"])
    thai = Client(engine, "thai", "TH-ONCB", "liaison")

    def seen() -> dict[str, Any]:
        return dict(thai.get(f"/api/v1/persons/{pid}").json()["identity"])

    pseudonym = seen()
    assert pseudonym["access"] == "pseudonym" and pseudonym["name_latin"] is None
    assert admin.send("PATCH", f"/api/v1/sharing-groups/{group['id']}", {"allows_identity": True}).status_code == 200
    assert seen()["name_latin"] == "Sok Dara"
    assert admin.send("PATCH", f"/api/v1/sharing-groups/{group['id']}", {"allows_identity": False}).status_code == 200
    assert seen() == pseudonym  # the same pseudonym as before: re-offenders still count
    updates = [d for a, t, _, d in _audit(engine, "update") if t == "sharing_group"]
    assert updates == [{"fields": ["allows_identity"], "allows_identity": True},
                       {"fields": ["allows_identity"], "allows_identity": False}]


def test_exports_are_scoped_and_audited(engine: Engine) -> None:
    admin = Client(engine, "admin", "KH-NACD", "admin")
    admin.send("POST", "/api/v1/sharing-groups", {"name": "KH-TH", "agreement": "MoU", "members": ["TH-ONCB"]})
    admin.send("POST", "/api/v1/sharing-groups", {"name": "KH-VN", "members": ["VN-C04"]})
    r = admin.get("/api/v1/organisations/export.csv", params={"country": "TH"})
    assert r.status_code == 200 and 'filename="organisations.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {x["code"] for x in rows} == {"UNODC", "TH-ONCB", "TH-NSB"} and rows[0]["kind"]
    thai = Client(engine, "thai", "TH-ONCB", "liaison")
    wb = load_workbook(io.BytesIO(thai.get("/api/v1/sharing-groups/export.xlsx").content), read_only=True)
    sheet = list(wb["sharing_groups"].iter_rows(values_only=True))
    assert sheet[0][:3] == ("id", "name", "owner") and [(x[1], x[6]) for x in sheet[1:]] == [("KH-TH", "KH-NACD TH-ONCB")]
    assert admin.get("/api/v1/organisations/export.pdf").status_code == 422
    officer = Client(engine, "officer", "KH-PP-01", "officer")
    assert officer.get("/api/v1/organisations/export.csv").status_code == 403
    events = _audit(engine, "export")
    assert [(t, d["format"], d["rows"]) for _, t, _, d in events] == [("organisation", "csv", 3),
                                                                      ("sharing_group", "xlsx", 1)]
    assert events[0][3]["filters"] == {"country": "TH"}


def test_openapi_declares_the_models(engine: Engine) -> None:
    spec = TestClient(create_app(engine)).get("/api/v1/openapi.json").json()
    ok = spec["paths"]["/api/v1/organisations"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/OrganisationPage")
    post = spec["paths"]["/api/v1/sharing-groups"]["post"]
    assert "allows_identity" in post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    members = spec["paths"]["/api/v1/sharing-groups/{group_id}/members/{org_code}"]
    assert set(members) == {"put", "delete"}
    assert set(spec["components"]["schemas"]["SharingGroupOut"]["properties"]) >= {"members", "agreement",
                                                                                   "allows_identity", "valid_to"}
