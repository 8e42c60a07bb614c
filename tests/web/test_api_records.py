"""One test body for the API of every record type (netbox-style): create, read, list, change, export,
the sharing policy, validation errors, version conflicts and a query-count guard."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from narcotrack.store.record_types import RECORD_TYPES
from narcotrack.store.schema import AuditEvent, RecordHistory
from narcotrack.web.app import create_app
from tests.web.helpers import count_queries, csrf_header, login, make_user

INCIDENT = {"occurred_on": "2025-03-02", "province": "Banteay Meanchey", "reporting_org": "KH-NACD",
            "marking": "AMBER", "distribution": "domestic",
            "seizures": [{"drug": "yaba", "quantity": 2000, "unit": "tablet"}],
            "arrests": [{"role": "courier", "person": {"name_latin": "Sok Dara", "sex": "M", "nationality": "KH"}}]}


def _incident(client: TestClient, headers: dict[str, str], **changes: Any) -> str:
    r = client.post("/api/v1/incidents", json={**INCIDENT, **changes}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# For each record type: a valid new record (given an incident id), a change, and an invalid field.
Sample = Callable[[str, int], dict[str, Any]]
SAMPLES: dict[str, tuple[Sample, dict[str, Any], tuple[str, Any]]] = {
    "operations": (lambda inc, i: {"name": f"Mekong Sentinel {i}", "kind": "bilateral", "lead_org": "KH-NACD",
                                   "participants": ["TH-ONCB"], "start_date": "2025-01-05"},
                   {"outcomes": "12 arrests"}, ("kind", "naval_blockade")),
    "training": (lambda inc, i: {"title": f"Field testing course {i}", "topic": "drug_identification",
                                 "provider_org": "KH-NACD", "start_date": "2025-02-01", "province": "Kampot",
                                 "participation": [{"org": "KH-GDCE", "participants": 20, "female": 5}]},
                 {"title": "Field testing, second course"}, ("topic", "juggling")),
    "campaigns": (lambda inc, i: {"name": f"Schools say no {i}", "org": "KH-NACD", "province": "Siem Reap",
                                  "audience": "students", "reach": 1200 + i, "start_date": "2025-04-01"},
                  {"reach": 1500}, ("reach", -5)),
    "indicators": (lambda inc, i: {"measure": "treatment_admissions", "period_start": "2024-01-01",
                                   "period_end": "2024-03-31", "province": "Phnom Penh", "drug": "ice",
                                   "value": 310 + i},
                   {"value": 333}, ("value", -1)),
    "seizures": (lambda inc, i: {"incident_id": inc, "drug": "ice", "quantity": 1.5 + i, "unit": "kg"},
                 {"quantity": 3.0}, ("unit", "bucket")),
    "arrests": (lambda inc, i: {"incident_id": inc, "role": "distributor",
                                "person": {"name_latin": f"Chan Vuthy {i}", "sex": "M"}},
                {"outcome": "referred_court"}, ("role", "bystander")),
}


def test_every_record_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(RECORD_TYPES)


@pytest.fixture
def clients(engine: Engine) -> dict[str, Any]:
    make_user(engine, "analyst", "KH-NACD", "analyst")
    make_user(engine, "viewer", "KH-NACD", "viewer")
    make_user(engine, "liaison", "TH-ONCB", "liaison")
    out: dict[str, Any] = {}
    for name in ("analyst", "viewer", "liaison"):
        c = TestClient(create_app(engine))
        login(c, name)
        out[name] = (c, csrf_header(c))
    return out


@pytest.mark.parametrize("slug", sorted(SAMPLES))
def test_record_type_api(engine: Engine, clients: dict[str, Any], slug: str) -> None:
    sample, change, (bad_field, bad_value) = SAMPLES[slug]
    analyst, h = clients["analyst"]
    incident = _incident(analyst, h)

    # create, read, list
    r = analyst.post(f"/api/v1/{slug}", json=sample(incident, 0), headers=h)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    got = analyst.get(f"/api/v1/{slug}/{rid}")
    assert got.status_code == 200 and got.json()["id"] == rid
    assert rid in [x["id"] for x in analyst.get(f"/api/v1/{slug}").json()["items"]]

    # change with the version read; a stale version is a conflict; the history keeps the change
    version = got.json()["version"]
    r = analyst.patch(f"/api/v1/{slug}/{rid}", json={**change, "version": version}, headers=h)
    assert r.status_code == 200, r.text
    key, value = next(iter(change.items()))
    assert r.json()[key] == value and r.json()["version"] == version + 1
    r = analyst.patch(f"/api/v1/{slug}/{rid}", json={**change, "version": version}, headers=h)
    assert r.status_code == 409
    with engine.connect() as conn:
        hist = conn.scalar(select(func.count()).select_from(RecordHistory)
                           .where(RecordHistory.record_id == rid, RecordHistory.action == "update"))
        audited = conn.scalars(select(AuditEvent.action).where(AuditEvent.record_id == rid)).all()
    assert hist == 1 and "create" in audited and "update" in audited

    # validation errors name the field; sharing fields are not changed by PATCH
    r = analyst.post(f"/api/v1/{slug}", json={**sample(incident, 1), bad_field: bad_value}, headers=h)
    assert r.status_code == 422 and bad_field in {f["field"].split(".")[0] for f in r.json()["fields"]}, r.text
    assert analyst.patch(f"/api/v1/{slug}/{rid}", json={"marking": "CLEAR"}, headers=h).status_code == 422

    # export within rights, audited
    r = analyst.get(f"/api/v1/{slug}/export.csv")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rid in [row["id"] for row in rows]
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditEvent)
                           .where(AuditEvent.action == "export", AuditEvent.record_type == RECORD_TYPES[slug].name)) == 1

    # a viewer may read but not write or export; a CSRF-less cookie write is refused
    viewer, vh = clients["viewer"]
    assert viewer.get(f"/api/v1/{slug}/{rid}").status_code == 200
    assert viewer.post(f"/api/v1/{slug}", json=sample(incident, 2), headers=vh).status_code == 403
    assert viewer.get(f"/api/v1/{slug}/export.csv").status_code == 403
    assert analyst.post(f"/api/v1/{slug}", json=sample(incident, 3)).status_code == 403

    # a domestic (AMBER, domestic) record does not reach the Thai liaison officer by any route
    liaison, lh = clients["liaison"]
    assert liaison.get(f"/api/v1/{slug}/{rid}").status_code == 404
    assert rid not in [x["id"] for x in liaison.get(f"/api/v1/{slug}").json()["items"]]
    assert rid not in liaison.get(f"/api/v1/{slug}/export.csv").text
    assert liaison.patch(f"/api/v1/{slug}/{rid}", json=change, headers=lh).status_code == 404

    # filters that mean nothing for the type are errors, not silently ignored
    rt = RECORD_TYPES[slug]
    if rt.drug_column is None:
        assert analyst.get(f"/api/v1/{slug}?drug=ice").status_code == 422


@pytest.mark.parametrize("slug", sorted(SAMPLES))
def test_list_runs_the_same_number_of_queries_for_2_or_12_records(
        engine: Engine, clients: dict[str, Any], slug: str) -> None:
    sample = SAMPLES[slug][0]
    analyst, h = clients["analyst"]
    incident = _incident(analyst, h)
    counts = []
    for n in (2, 10):
        for i in range(n):
            assert analyst.post(f"/api/v1/{slug}", json=sample(incident, len(counts) * 100 + i),
                                headers=h).status_code == 201
        with count_queries(engine) as statements:
            assert analyst.get(f"/api/v1/{slug}?limit=100").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_filters_select_in_sql(engine: Engine, clients: dict[str, Any]) -> None:
    analyst, h = clients["analyst"]
    for province, drug, value in [("Phnom Penh", "ice", 5), ("Kampot", "heroin", 7), ("Phnom Penh", "yaba", 9)]:
        assert analyst.post("/api/v1/indicators", json={
            "measure": "treatment_admissions", "period_start": "2024-04-01", "period_end": "2024-06-30",
            "province": province, "drug": drug, "value": value}, headers=h).status_code == 201
    items = analyst.get("/api/v1/indicators?place=KH-12&drug=ice&drug=yaba").json()["items"]
    assert sorted(x["value"] for x in items) == [5, 9]
    items = analyst.get("/api/v1/indicators?date_from=2024-05-01").json()["items"]
    assert items == []


def test_wider_sharing_than_the_role_may_set_becomes_a_release_request(engine: Engine) -> None:
    make_user(engine, "officer", "KH-NACD", "officer")
    officer = TestClient(create_app(engine))
    login(officer, "officer")
    h = csrf_header(officer)
    r = officer.post("/api/v1/campaigns", json={**SAMPLES["campaigns"][0]("", 1), "marking": "GREEN",
                                                "distribution": "partners"}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["release_request"] is not None
    stored = officer.get(f"/api/v1/campaigns/{r.json()['id']}").json()
    assert stored["distribution"] == "domestic"
    pending = officer.get("/api/v1/releases").json()
    assert r.json()["release_request"] in str(pending)
