"""The release API: an officer's wider sharing waits for a supervisor; restricting applies at once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from narcotrack.store.schema import AuditEvent
from narcotrack.web.app import create_app
from tests.web.helpers import csrf_header, login, make_user

ORG = "KH-PP-01"
INCIDENT = {"occurred_on": "2025-06-01", "province": "Banteay Meanchey", "district": "Poipet",
            "reporting_org": ORG, "marking": "GREEN",
            "seizures": [{"drug": "yaba", "quantity": 5000, "unit": "tablets"}]}


class Client:
    """A logged-in test client that sends its CSRF header on every POST."""

    def __init__(self, engine: Engine, username: str) -> None:
        self.c = TestClient(create_app(engine))
        login(self.c, username)
        self.headers = csrf_header(self.c)

    def get(self, url: str, **kw: Any) -> Any:
        return self.c.get(url, **kw)

    def post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        return self.c.post(url, json=body, headers=self.headers) if body is not None else \
            self.c.post(url, headers=self.headers)


@pytest.fixture
def users(engine: Engine) -> dict[str, Client]:
    for name, org, role in [("sokha", ORG, "officer"), ("dara", ORG, "analyst"), ("bopha", ORG, "viewer"),
                            ("nacd", "KH-NACD", "analyst"), ("somchai", "TH-ONCB", "liaison")]:
        make_user(engine, name, org, role)
    return {name: Client(engine, name) for name in ("sokha", "dara", "bopha", "nacd", "somchai")}


def _thai_sees(users: dict[str, Client], incident_id: str) -> bool:
    return users["somchai"].get(f"/api/v1/incidents/{incident_id}").status_code == 200


def test_officer_records_for_partners_and_a_supervisor_releases(engine: Engine, users: dict[str, Client]) -> None:
    made = users["sokha"].post("/api/v1/incidents", {**INCIDENT, "distribution": "partners"})
    assert made.status_code == 201
    incident_id, request_id = made.json()["id"], made.json()["release_request"]
    assert request_id and not _thai_sees(users, incident_id)

    [mine] = users["sokha"].get("/api/v1/releases").json()["items"]
    assert (mine["id"], mine["status"], mine["may_withdraw"], mine["may_decide"]) == (request_id, "pending", True, False)
    assert mine["from"]["distribution"] == "domestic" and mine["to"]["distribution"] == "partners"
    [theirs] = users["dara"].get("/api/v1/releases", params={"status": "pending"}).json()["items"]
    assert theirs["may_decide"] is True and theirs["proposed_by"] == "sokha"
    assert users["nacd"].get("/api/v1/releases").json()["items"] == []
    assert users["bopha"].get("/api/v1/releases").json()["items"] == []

    own = users["sokha"].post(f"/api/v1/releases/{request_id}/release", {})
    assert own.status_code == 403 and "error" in own.json()
    assert users["nacd"].post(f"/api/v1/releases/{request_id}/release").status_code == 403
    no_csrf = users["dara"].c.post(f"/api/v1/releases/{request_id}/release")
    assert no_csrf.status_code == 403 and not _thai_sees(users, incident_id)

    done = users["dara"].post(f"/api/v1/releases/{request_id}/release", {"note": "cleared by the chief"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["decided_by"], done.json()["decision_note"]) == (
        "released", "dara", "cleared by the chief")
    assert _thai_sees(users, incident_id)
    assert users["dara"].post(f"/api/v1/releases/{request_id}/reject").status_code == 409
    with engine.connect() as conn:
        actions = list(conn.scalars(select(AuditEvent.action).where(AuditEvent.record_id == incident_id)
                                    .order_by(AuditEvent.id)))
    assert actions == ["create", "release_proposed", "share"]


def test_propose_reject_and_withdraw(engine: Engine, users: dict[str, Client]) -> None:
    incident_id = users["sokha"].post("/api/v1/incidents", INCIDENT).json()["id"]
    body = {"record_type": "incident", "record_id": incident_id, "marking": "GREEN", "distribution": "partners",
            "reason": "ONCB asked for the Poipet seizures"}
    assert users["sokha"].post("/api/v1/releases", {**body, "marking": "BLUE"}).status_code == 422
    bad = users["sokha"].post("/api/v1/releases", {"record_type": "incident"})
    assert bad.status_code == 422 and {f["field"] for f in bad.json()["fields"]} >= {"record_id", "marking"}
    assert users["bopha"].post("/api/v1/releases", body).status_code == 403
    assert users["nacd"].post("/api/v1/releases", body).status_code == 403

    first = users["sokha"].post("/api/v1/releases", body)
    assert first.status_code == 201 and first.json()["status"] == "pending"
    assert users["sokha"].post("/api/v1/releases", body).status_code == 409  # one pending per record
    rejected = users["dara"].post(f"/api/v1/releases/{first.json()['id']}/reject", {"note": "too early"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert not _thai_sees(users, incident_id)

    second = users["sokha"].post("/api/v1/releases", body).json()["id"]
    assert users["dara"].post(f"/api/v1/releases/{second}/withdraw").status_code == 403  # not the proposer
    assert users["sokha"].post(f"/api/v1/releases/{second}/withdraw").json()["status"] == "withdrawn"
    statuses = [r["status"] for r in users["dara"].get("/api/v1/releases").json()["items"]]
    assert sorted(statuses) == ["rejected", "withdrawn"]
    assert users["dara"].get("/api/v1/releases", params={"status": "nonsense"}).status_code == 422
    assert users["dara"].post("/api/v1/releases/no-such-request/release").status_code == 404


def test_restrict_applies_at_once(engine: Engine, users: dict[str, Client]) -> None:
    incident_id = users["dara"].post("/api/v1/incidents", {**INCIDENT, "distribution": "partners"}).json()["id"]
    assert _thai_sees(users, incident_id)
    body = {"record_type": "incident", "record_id": incident_id, "marking": "RED", "distribution": "partners",
            "reason": "informant named"}
    assert users["sokha"].post("/api/v1/sharing/restrict", {**body, "marking": "CLEAR"}).status_code == 403
    assert users["nacd"].post("/api/v1/sharing/restrict", body).status_code == 403
    assert users["somchai"].post("/api/v1/sharing/restrict", body).status_code == 403  # sees it; not theirs
    hidden = users["sokha"].post("/api/v1/incidents", INCIDENT).json()["id"]  # domestic only
    hidden_body = {**body, "record_id": hidden}
    assert users["somchai"].post("/api/v1/sharing/restrict", hidden_body).status_code == 404  # no leak
    done = users["sokha"].post("/api/v1/sharing/restrict", body)
    assert done.status_code == 200, done.text
    assert done.json()["changes"] == {"marking": {"from": "GREEN", "to": "RED"}}
    assert not _thai_sees(users, incident_id)
    assert users["somchai"].get("/api/v1/incidents").json()["items"] == []
    assert users["sokha"].get(f"/api/v1/incidents/{incident_id}").json()["version"] == 2
    assert users["sokha"].post("/api/v1/sharing/restrict", body).status_code == 422  # nothing left to change
