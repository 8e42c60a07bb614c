"""The access matrix: every role × marking × distribution × way out.

A store holds one incident (with an arrested person of the same sharing) for each TLP marking and each
distribution, owned by the NACD. Each principal then asks for them by every way out — pages, API list
and detail, export, search — and the test compares what comes back with the rules of DESIGN.md, restated
here independently of narcotrack.access.policy. Names must reach a principal only where identity is
shared in full; elsewhere only a pseudonym.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from narcotrack.config import Settings
from narcotrack.domain.ids import uuid7
from narcotrack.domain.models import ArrestIn, IncidentIn, PersonIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident, update_incident
from narcotrack.store.schema import SharingGroup, SharingGroupMember
from narcotrack.store.seed import org_id
from narcotrack.web.app import create_app
from tests.web.helpers import login, make_user

OWNER = "KH-NACD"
MARKINGS = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
DISTRIBUTIONS = ["owner", "domestic", "group:G1", "group:G2", "partners"]
GROUPS = {"G1": {"KH-NACD", "TH-ONCB"}, "G2": {"KH-NACD", "LA-LCDC"}}  # G2's agreement allows identity
DOMESTIC = {"KH-NACD", "KH-GDCE"}
PRINCIPALS = [(OWNER, "admin"), (OWNER, "analyst"), (OWNER, "officer"), (OWNER, "viewer"),
              ("KH-GDCE", "analyst"), ("TH-ONCB", "liaison"), ("LA-LCDC", "liaison"), ("VN-C04", "liaison")]
MAY_SEE_RED = {"admin", "analyst", "officer"}
NO_EXPORT = {"officer", "viewer"}


def expected_visible(org: str, role: str, marking: str, distribution: str) -> bool:
    if org == OWNER:
        return marking != "RED" or role in MAY_SEE_RED
    if marking not in {"CLEAR", "GREEN", "AMBER"}:
        return False
    if distribution == "domestic":
        return org in DOMESTIC
    if distribution.startswith("group:"):
        return org in GROUPS[distribution[6:]]
    return distribution == "partners"


def expected_identity(org: str, role: str, distribution: str) -> str:
    if role == "viewer":
        return "none"
    if org in DOMESTIC or (distribution == "group:G2" and org in GROUPS["G2"]):
        return "full"
    return "pseudonym"


def _name(marking: str, distribution: str) -> str:
    return f"Matrixname {marking.replace('+', '')} {distribution.replace(':', '')}"


def _store(engine: Engine) -> dict[tuple[str, str], str]:
    """One incident per marking × distribution; returns their ids."""
    ids = {}
    with session_scope(engine) as s:
        groups = {}
        for name, members in GROUPS.items():
            gid = uuid7()
            s.add(SharingGroup(id=gid, name=f"Matrix {name}", owner_org_id=org_id(OWNER),
                               allows_identity=name == "G2"))
            s.flush()
            s.add_all(SharingGroupMember(group_id=gid, org_id=org_id(code)) for code in members)
            groups[name] = gid
        s.flush()
        for marking in MARKINGS:
            for dist in DISTRIBUTIONS:
                sharing: dict[str, Any] = {"marking": marking, "distribution": dist.split(":")[0],
                                           "sharing_group_id": groups[dist[6:]] if dist.startswith("group:") else None}
                ids[marking, dist] = create_incident(s, IncidentIn(
                    occurred_on=dt.date(2025, 5, 1), province="Battambang", reporting_org=OWNER,
                    place_text=f"matrixplace {marking} {dist}", **sharing,
                    seizures=[SeizureIn(drug="yaba", quantity=100, unit="tablet")],
                    arrests=[ArrestIn(role="courier", person=PersonIn(
                        name_latin=_name(marking, dist), sex="M", nationality="KH", **sharing))]))
    return ids


def _client(engine: Engine, org: str, role: str) -> TestClient:
    username = f"{role}-{org}".lower()
    make_user(engine, username, org, role)
    client = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    login(client, username)
    return client


def _ways_out(client: TestClient, incident_id: str) -> dict[str, str]:
    """What each way out returns for the whole store (lists) or for this incident (details)."""
    return {
        "page list": client.get("/incidents").text,
        "api list": client.get("/api/v1/incidents?limit=500").text,
        "export": client.get("/api/v1/incidents/export.csv").text,
        "api search": client.get("/api/v1/search?q=matrixplace").text,
        "page search": client.get("/search?q=matrixplace").text,
    }


@pytest.mark.parametrize(("org", "role"), PRINCIPALS, ids=[f"{o}-{r}" for o, r in PRINCIPALS])
def test_incidents_reach_exactly_whom_the_rules_say(engine: Engine, org: str, role: str) -> None:
    ids = _store(engine)
    client = _client(engine, org, role)
    lists = _ways_out(client, "")
    if role in NO_EXPORT:
        assert client.get("/api/v1/incidents/export.csv").status_code == 403
    wrong = []
    for (marking, dist), rid in ids.items():
        should = expected_visible(org, role, marking, dist)
        for way, text in lists.items():
            if way == "export" and role in NO_EXPORT:
                continue
            if (rid in text) != should:
                wrong.append(f"{way}: {marking}/{dist} {'missing' if should else 'LEAKED'}")
        for way, url in (("api detail", f"/api/v1/incidents/{rid}"), ("page detail", f"/incidents/{rid}")):
            status = client.get(url).status_code
            if (status == 200) != should or status not in (200, 404):
                wrong.append(f"{way}: {marking}/{dist} answered {status}")
    assert wrong == []


@pytest.mark.parametrize(("org", "role"), PRINCIPALS, ids=[f"{o}-{r}" for o, r in PRINCIPALS])
def test_names_leave_only_where_identity_is_shared(engine: Engine, org: str, role: str) -> None:
    ids = _store(engine)
    client = _client(engine, org, role)
    persons = client.get("/api/v1/persons?limit=500").json()["items"]
    texts = {"api list": client.get("/api/v1/persons?limit=500").text,
             "page list": client.get("/persons").text if role != "viewer" else "",
             "search": client.get("/api/v1/search?q=matrixname").text}
    texts.update({f"incident page {m}/{d}": client.get(f"/incidents/{rid}").text for (m, d), rid in ids.items()})
    wrong = []
    for marking in MARKINGS:
        for dist in DISTRIBUTIONS:
            if not expected_visible(org, role, marking, dist):
                continue
            full = expected_identity(org, role, dist) == "full"
            for way, text in texts.items():
                if way.startswith("incident page") and not way.endswith(f"{marking}/{dist}"):
                    continue
                if way == "page list" and role == "viewer":
                    continue
                if (_name(marking, dist) in text) != full:
                    wrong.append(f"{way}: name of {marking}/{dist} {'missing' if full else 'LEAKED'}")
    accesses = {(p["identity"] or {}).get("access", "none") for p in persons}
    expected = {expected_identity(org, role, d) for m in MARKINGS for d in DISTRIBUTIONS
                if expected_visible(org, role, m, d)}
    assert wrong == []
    assert accesses == expected
    for p in persons:
        if p["identity"] and p["identity"]["access"] == "pseudonym":
            assert p["identity"]["pseudonym"].startswith("P-") and p["identity"]["name_latin"] is None
    if role == "viewer":
        assert client.get("/persons").status_code == 403


def test_raising_the_marking_withdraws_a_record_from_every_partner_view_at_once(engine: Engine) -> None:
    ids = _store(engine)
    rid = ids["GREEN", "partners"]
    client = _client(engine, "TH-ONCB", "liaison")
    before = _ways_out(client, rid)
    assert all(rid in text for text in before.values()), [w for w, t in before.items() if rid not in t]
    with session_scope(engine) as s:
        update_incident(s, rid, {"marking": "RED"})
    after = _ways_out(client, rid)
    assert [w for w, text in after.items() if rid in text] == []
    assert client.get(f"/api/v1/incidents/{rid}").status_code == 404
    assert client.get(f"/incidents/{rid}").status_code == 404
