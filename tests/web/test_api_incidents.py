"""The incident API: filters, cursor pagination, the sharing policy, validation errors, and no N+1 queries."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from narcotrack.access.audit import verify_chain
from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import AuditEvent
from narcotrack.web.app import create_app
from tests.web.helpers import count_queries, csrf_of, login, make_user


def _seed(engine: Engine, n: int = 12) -> None:
    provinces = ["Banteay Meanchey", "Phnom Penh", "Svay Rieng"]
    with session_scope(engine) as s:
        for i in range(n):
            create_incident(s, IncidentIn(
                occurred_on=dt.date(2025, 1, 1) + dt.timedelta(days=i), province=provinces[i % 3],
                reporting_org="KH-ADP", marking="RED" if i == 0 else "GREEN",
                distribution="partners" if i % 2 else "domestic",
                seizures=[SeizureIn(drug="yaba" if i % 4 else "heroin", quantity=10 + i, unit="g"),
                          SeizureIn(drug="ice", quantity=1, unit="g")]))


@pytest.fixture
def analyst(engine: Engine) -> TestClient:
    make_user(engine, "analyst", "KH-ADP", "analyst")
    c = TestClient(create_app(engine))
    login(c, "analyst")
    return c


def test_list_pages_with_a_cursor_without_gaps_or_repeats(engine: Engine, analyst: TestClient) -> None:
    _seed(engine)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = analyst.get("/api/v1/incidents", params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 12
    assert seen == sorted(seen, reverse=True)


def test_filters_combine(engine: Engine, analyst: TestClient) -> None:
    _seed(engine)
    get = lambda **p: analyst.get("/api/v1/incidents", params=p).json()["items"]  # noqa: E731
    assert {i["province_code"] for i in get(place="KH-12")} == {"KH-12"}
    assert len(get(place="KH-12")) == 4
    assert len(get(drug="heroin")) == 3
    assert len(get(drug="heroin", place="KH-01")) == 1
    assert len(get(date_from="2025-01-05", date_to="2025-01-08")) == 4
    assert len(get(marking="RED")) == 1
    assert len(get(agency="KH-ADP")) == 12 and get(agency="KH-GDCE") == []
    assert analyst.get("/api/v1/incidents", params={"place": "Atlantis"}).status_code == 422


def test_partners_see_only_what_is_shared(engine: Engine) -> None:
    _seed(engine)
    make_user(engine, "thai", "TH-ONCB", "liaison")
    c = TestClient(create_app(engine))
    login(c, "thai")
    items = c.get("/api/v1/incidents", params={"limit": 100}).json()["items"]
    assert len(items) == 6 and all(i["distribution"] == "partners" for i in items)
    hidden = TestClient(create_app(engine))
    make_user(engine, "adp2", "KH-ADP", "analyst")
    login(hidden, "adp2")
    domestic_id = next(i["id"] for i in hidden.get("/api/v1/incidents").json()["items"]
                       if i["distribution"] == "domestic")
    assert c.get(f"/api/v1/incidents/{domestic_id}").status_code == 404
    assert hidden.get(f"/api/v1/incidents/{domestic_id}").status_code == 200


def test_list_query_count_does_not_grow_with_the_page(engine: Engine, analyst: TestClient) -> None:
    _seed(engine, 12)
    with count_queries(engine) as small:
        analyst.get("/api/v1/incidents", params={"limit": 2})
    with count_queries(engine) as large:
        analyst.get("/api/v1/incidents", params={"limit": 12})
    assert len(large) == len(small), large


def test_create_validates_fields_and_needs_csrf(engine: Engine) -> None:
    make_user(engine, "officer", "KH-PP-01", "officer")
    c = TestClient(create_app(engine))
    login(c, "officer")
    body = {"occurred_on": "2025-06-01", "province": "Banteay Meanchey", "district": "Poipet",
            "reporting_org": "KH-PP-01", "seizures": [{"drug": "yaba", "quantity": 5000, "unit": "tablets"}]}
    assert c.post("/api/v1/incidents", json=body).status_code == 403  # no CSRF token
    csrf = csrf_of(c.get("/").text)
    bad = c.post("/api/v1/incidents", json={**body, "seizures": [{"drug": "sugar", "quantity": -1, "unit": "kg"}]},
                 headers={"x-csrf-token": csrf})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["fields"]} == {"seizures.0.drug", "seizures.0.quantity"}
    wide = c.post("/api/v1/incidents", json={**body, "distribution": "partners"}, headers={"x-csrf-token": csrf})
    assert wide.status_code == 201  # an officer proposes; a supervisor releases to partners
    assert wide.json()["release_request"] is not None
    assert c.get(f"/api/v1/incidents/{wide.json()['id']}").json()["distribution"] == "domestic"
    ok = c.post("/api/v1/incidents", json=body, headers={"x-csrf-token": csrf})
    assert ok.status_code == 201 and ok.json()["release_request"] is None
    got = c.get(f"/api/v1/incidents/{ok.json()['id']}").json()
    assert got["district_code"] == "KH-0110" and got["seizures"][0]["mass_kg"] == pytest.approx(0.45)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "create")) == 2
        assert verify_chain(conn).ok


def test_patch_changes_editable_fields_with_history_version_and_policy(engine: Engine, analyst: TestClient) -> None:
    _seed(engine, 3)
    from tests.web.helpers import csrf_header

    h = csrf_header(analyst)
    item = analyst.get("/api/v1/incidents?limit=1").json()["items"][0]
    rid, version = item["id"], item["version"]
    r = analyst.patch(f"/api/v1/incidents/{rid}", json={"narrative": "Found in a fuel tank", "version": version},
                      headers=h)
    assert r.status_code == 200 and r.json()["version"] == version + 1, r.text
    assert analyst.patch(f"/api/v1/incidents/{rid}", json={"narrative": "x", "version": version},
                         headers=h).status_code == 409
    assert analyst.patch(f"/api/v1/incidents/{rid}", json={"marking": "CLEAR"}, headers=h).status_code == 422
    assert analyst.patch(f"/api/v1/incidents/{rid}", json={"narrative": "no token"}).status_code == 403
    make_user(engine, "th-liaison", "TH-ONCB", "liaison")
    th = TestClient(create_app(engine))
    login(th, "th-liaison")
    assert th.patch(f"/api/v1/incidents/{rid}", json={"narrative": "x"}, headers=csrf_header(th)).status_code == 404
    with session_scope(engine) as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.record_id == rid)).all()
    assert actions.count("update") == 1
