"""Persons through the API: identity in full, pseudonymised or withheld by policy; every read audited."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from narcotrack.config import Settings
from narcotrack.domain.ids import stable_id
from narcotrack.store.schema import AuditEvent, Person, PersonIdentity, SharingGroup, SharingGroupMember
from narcotrack.store.seed import org_id
from narcotrack.web.app import create_app
from tests.web.helpers import login, make_user

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STAMPS = {"created_at": NOW, "updated_at": NOW, "version": 1}
PEOPLE = {  # key: (distribution, group)
    "domestic": ("domestic", None),
    "group-th": ("group", "kh-th"),
    "group-vn": ("group", "kh-vn"),
    "partners": ("partners", None),
}


def _seed(engine: Engine) -> dict[str, str]:
    ids = {}
    with engine.begin() as conn:
        for key, identity, member in (("kh-th", False, "TH-ONCB"), ("kh-vn", True, "VN-C04")):
            gid = stable_id("group", key)
            conn.execute(insert(SharingGroup), [{"id": gid, "name": key, "owner_org_id": org_id("KH-NACD"),
                                                 "agreement": "", "allows_identity": identity, **STAMPS}])
            conn.execute(insert(SharingGroupMember), [{"group_id": gid, "org_id": org_id(m)}
                                                      for m in ("KH-NACD", member)])
        for key, (dist, group) in PEOPLE.items():
            pid = stable_id("person", key)
            ids[key] = pid
            conn.execute(insert(Person), [{"id": pid, "sex": "M", "nationality": "KH", "birth_year": 1991,
                                           "owner_org_id": org_id("KH-NACD"), "marking": "AMBER",
                                           "distribution": dist,
                                           "sharing_group_id": stable_id("group", group) if group else None,
                                           **STAMPS}])
            conn.execute(insert(PersonIdentity), [{"person_id": pid, "name_km": "សុខ ដារា",
                                                   "name_latin": f"Sok Dara {key}", "aliases": ["Ah Dara"],
                                                   "date_of_birth": dt.date(1991, 4, 2), "age_reported": None,
                                                   "id_numbers": ["010203040"], "updated_at": NOW}])
    return ids


def _client(engine: Engine, username: str, org: str, role: str) -> TestClient:
    make_user(engine, username, org, role)
    c = TestClient(create_app(engine, settings=Settings(pseudonym_key="test-pseudonym-key")))
    login(c, username)
    return c


def _identities(c: TestClient, ids: dict[str, str]) -> dict[str, dict[str, object] | None]:
    items = c.get("/api/v1/persons", params={"limit": 100}).json()["items"]
    by_id = {i["id"]: i["identity"] for i in items}
    return {key: by_id[pid] for key, pid in ids.items() if pid in by_id}


@pytest.mark.parametrize(
    ("who", "org", "role", "expected"),
    [
        ("nacd", "KH-NACD", "analyst", {"domestic": "full", "group-th": "full", "group-vn": "full", "partners": "full"}),
        ("customs", "KH-GDCE", "analyst", {"domestic": "full", "partners": "full"}),
        ("thai", "TH-ONCB", "liaison", {"group-th": "pseudonym", "partners": "pseudonym"}),
        ("viet", "VN-C04", "liaison", {"group-vn": "full", "partners": "pseudonym"}),
        ("health", "KH-MOH", "viewer", {"domestic": None, "partners": None}),
    ],
)
def test_identity_reaches_each_organisation_as_the_policy_says(
    engine: Engine, who: str, org: str, role: str, expected: dict[str, str | None]
) -> None:
    ids = _seed(engine)
    got = _identities(_client(engine, who, org, role), ids)
    assert set(got) == set(expected)
    for key, access in expected.items():
        ident = got[key]
        if access is None:
            assert ident is None
            continue
        assert ident is not None and ident["access"] == access
        if access == "pseudonym":
            text = str(ident)
            assert "Sok" not in text and "ដារា" not in text and "010203040" not in text and "1991-04-02" not in text
            assert str(ident["pseudonym"]).startswith("P-")
        else:
            assert ident["name_latin"] == f"Sok Dara {key}" and ident["id_numbers"] == ["010203040"]


def test_pseudonyms_are_stable_and_differ_between_agreements(engine: Engine) -> None:
    ids = _seed(engine)
    thai = _client(engine, "thai", "TH-ONCB", "liaison")
    first = _identities(thai, ids)
    assert first == _identities(thai, ids)  # stable: re-offenders can be counted
    viet = _client(engine, "viet", "VN-C04", "liaison")
    assert first["partners"] != _identities(viet, ids)["partners"]  # no joining across partners


def test_every_read_of_identity_is_audited(engine: Engine) -> None:
    ids = _seed(engine)
    c = _client(engine, "nacd", "KH-NACD", "analyst")
    c.get(f"/api/v1/persons/{ids['domestic']}")
    c.get("/api/v1/persons")
    viewer = _client(engine, "health", "KH-MOH", "viewer")
    viewer.get("/api/v1/persons")  # no identity shown: nothing to audit as a read of personal data
    with engine.connect() as conn:
        events = conn.execute(select(AuditEvent.record_id, AuditEvent.detail)
                              .where(AuditEvent.action == "read_person_identity").order_by(AuditEvent.id)).all()
    assert len(events) == 2
    assert events[0][0] == ids["domestic"]
    assert set(events[1][1]["persons"]) == set(ids.values())


def test_invisible_person_is_404(engine: Engine) -> None:
    ids = _seed(engine)
    la = _client(engine, "laos", "LA-LCDC", "liaison")
    assert la.get(f"/api/v1/persons/{ids['group-th']}").status_code == 404
    assert la.get(f"/api/v1/persons/{ids['partners']}").status_code == 200


def test_export_holds_identity_exactly_as_the_list_shows_it_and_is_audited(engine: Engine) -> None:
    import csv
    import io

    ids = _seed(engine)
    thai = _client(engine, "thai", "TH-ONCB", "liaison")
    rows = list(csv.DictReader(io.StringIO(thai.get("/api/v1/persons/export.csv").content.decode("utf-8-sig"))))
    assert {r["id"] for r in rows} == {ids["group-th"], ids["partners"]}
    assert all(r["identity"] == "pseudonym" and r["pseudonym"].startswith("P-") and not r["name_latin"]
               for r in rows)
    assert "Sok" not in str(rows)
    nacd = _client(engine, "nacd", "KH-NACD", "analyst")
    rows = list(csv.DictReader(io.StringIO(nacd.get("/api/v1/persons/export.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 4 and {r["name_latin"] for r in rows} == {f"Sok Dara {k}" for k in PEOPLE}
    with engine.connect() as conn:
        exports = conn.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")).all()
    assert [e["rows"] for e in exports] == [2, 4]
    assert _client(engine, "health", "KH-MOH", "viewer").get("/api/v1/persons/export.csv").status_code == 403


def test_patch_corrects_identity_without_copying_it_into_the_history(engine: Engine) -> None:
    from narcotrack.store.schema import RecordHistory
    from tests.web.helpers import csrf_header

    ids = _seed(engine)
    nacd = _client(engine, "nacd", "KH-NACD", "analyst")
    h = csrf_header(nacd)
    r = nacd.patch(f"/api/v1/persons/{ids['domestic']}", json={"name_latin": "Sok Dara Vannak", "version": 1},
                   headers=h)
    assert r.status_code == 200 and r.json()["identity"]["name_latin"] == "Sok Dara Vannak", r.text
    assert nacd.patch(f"/api/v1/persons/{ids['domestic']}", json={"sex": "F", "version": 1},
                      headers=h).status_code == 409
    with engine.connect() as conn:
        changes = conn.scalars(select(RecordHistory.changes).where(RecordHistory.record_id == ids["domestic"])).all()
    assert changes == [{"name_latin": {"changed": True}}] and "Sok" not in str(changes)
    thai = _client(engine, "thai", "TH-ONCB", "liaison")
    assert thai.patch(f"/api/v1/persons/{ids['partners']}", json={"sex": "F"},
                      headers=csrf_header(thai)).status_code == 403  # sees it, does not own it


def test_create_a_person_and_filter_the_list_by_agency_and_marking(engine: Engine) -> None:
    from tests.web.helpers import csrf_header

    ids = _seed(engine)
    nacd = _client(engine, "nacd", "KH-NACD", "analyst")
    h = csrf_header(nacd)
    r = nacd.post("/api/v1/persons", json={"name_latin": "Keo Sophea", "sex": "F", "nationality": "KH",
                                           "marking": "GREEN", "distribution": "domestic"}, headers=h)
    assert r.status_code == 201, r.text
    new = r.json()["id"]
    green = {i["id"] for i in nacd.get("/api/v1/persons", params={"marking": "GREEN"}).json()["items"]}
    assert green == {new}
    owned = {i["id"] for i in nacd.get("/api/v1/persons", params={"agency": "KH-NACD", "limit": 100}).json()["items"]}
    assert owned == {new, *ids.values()}
    assert nacd.post("/api/v1/persons", json={"sex": "F"}, headers=h).status_code == 422  # no name
    officer = _client(engine, "officer", "KH-NACD", "officer")
    assert officer.post("/api/v1/persons", json={"name_latin": "X Y", "distribution": "partners"},
                        headers=csrf_header(officer)).status_code == 403
    viewer = _client(engine, "health", "KH-MOH", "viewer")
    assert viewer.post("/api/v1/persons", json={"name_latin": "X Y"}, headers=csrf_header(viewer)).status_code == 403
