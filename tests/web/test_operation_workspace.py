"""The joint operations workspace (page and API) as each partner sees it, by the sharing policy alone.

A bilateral KH–TH operation, led by the NACD and shared with the KH–TH group, has incidents of every kind
of sharing linked to it, reported by the NACD, the Thai ONCB and Cambodian customs. Four principals ask
for its workspace: the lead agency's analyst, the Thai liaison officer (a participant), a Vietnamese
liaison officer (not a participant, not in the group) and a viewer of the lead agency. What each sees —
the page at all, which incidents, which contributions — is compared with the rules of DESIGN.md, restated
here independently of narcotrack.access.policy. RED never reaches a foreign partner, AMBER+STRICT never
leaves its owner, AMBER by group only its members; and hidden incidents are not acknowledged, not even as
a count.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from narcotrack.config import Settings
from narcotrack.domain.ids import uuid7
from narcotrack.domain.models import ArrestIn, IncidentIn, OperationIn, PersonIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident, create_operation
from narcotrack.store.schema import SharingGroup, SharingGroupMember
from narcotrack.store.seed import org_id
from narcotrack.web.app import create_app
from tests.web.helpers import count_queries, login, make_user

GROUP = {"KH-NACD", "TH-ONCB"}  # the KH–TH exchange group of the test store
DOMESTIC = {"KH-NACD", "KH-GDCE", "KH-ADP"}
MAY_SEE_RED = {"admin", "analyst", "officer"}
PRINCIPALS = [("KH-NACD", "analyst"), ("TH-ONCB", "liaison"), ("VN-C04", "liaison"), ("KH-NACD", "viewer")]


@dataclass(frozen=True)
class Case:
    key: str
    org: str
    marking: str
    distribution: str  # owner | domestic | group | partners
    kg: float
    arrests: int


# Incidents linked to the bilateral operation; each seizes ``kg`` kilograms of crystalline methamphetamine
# (cannabis for customs) and arrests ``arrests`` persons.
CASES = [
    Case("kh-green-partners", "KH-NACD", "GREEN", "partners", 12.0, 1),
    Case("kh-amber-group", "KH-NACD", "AMBER", "group", 3.5, 1),
    Case("kh-amber-domestic", "KH-NACD", "AMBER", "domestic", 5.0, 2),
    Case("kh-red-owner", "KH-NACD", "RED", "owner", 40.0, 3),
    Case("kh-strict-group", "KH-NACD", "AMBER+STRICT", "group", 7.0, 0),
    Case("th-amber-group", "TH-ONCB", "AMBER", "group", 20.0, 1),
    Case("th-red-owner", "TH-ONCB", "RED", "owner", 30.0, 1),
    Case("gdce-green-domestic", "KH-GDCE", "GREEN", "domestic", 100.0, 0),
]


def expected_visible(org: str, role: str, case: Case) -> bool:
    """DESIGN.md's sharing rules, restated for the test."""
    if case.org == org:
        return case.marking != "RED" or role in MAY_SEE_RED
    if case.marking not in {"CLEAR", "GREEN", "AMBER"}:
        return False
    if case.distribution == "domestic":
        return org in DOMESTIC
    if case.distribution == "group":
        return org in GROUP
    return case.distribution == "partners"


def _drug(case: Case) -> str:
    return "cannabis_herb" if case.org == "KH-GDCE" else "methamphetamine_crystalline"


def _incident(s: Any, case: Case, gid: str, operation_id: str | None, day: dt.date) -> str:
    sharing: dict[str, Any] = {"marking": case.marking, "distribution": case.distribution,
                               "sharing_group_id": gid if case.distribution == "group" else None}
    foreign = not case.org.startswith("KH-")
    where: dict[str, Any] = ({"country": "TH", "place_text": f"Aranyaprathet {case.key}"} if foreign
                             else {"province": "Banteay Meanchey", "place_text": f"Poipet {case.key}"})
    return create_incident(s, IncidentIn(
        occurred_on=day, reporting_org=case.org, operation_id=operation_id, **where, **sharing,
        narrative=f"narrative of {case.key}",
        seizures=[SeizureIn(drug=_drug(case), quantity=case.kg, unit="kg")],
        arrests=[ArrestIn(role="courier", person=PersonIn(name_latin=f"Person {case.key} {n}", sex="M", **sharing))
                 for n in range(case.arrests)]))


def _store(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as s:
        gid = uuid7()
        s.add(SharingGroup(id=gid, name="Workspace KH-TH", owner_org_id=org_id("KH-NACD")))
        s.flush()
        s.add_all(SharingGroupMember(group_id=gid, org_id=org_id(code)) for code in sorted(GROUP))
        s.flush()
        bilateral = create_operation(s, OperationIn(
            name="Operation Lotus Gate", code="WS-1", kind="bilateral", lead_org="KH-NACD",
            participants=["TH-ONCB", "KH-GDCE"], start_date=dt.date(2025, 3, 1), end_date=dt.date(2025, 4, 30),
            outcomes="Border route disrupted; two couriers convicted.", marking="AMBER", distribution="group",
            sharing_group_id=gid))
        shared = create_operation(s, OperationIn(
            name="Operation Mekong Light", code="WS-2", kind="multilateral", lead_org="KH-NACD",
            participants=["TH-ONCB", "LA-LCDC"], start_date=dt.date(2025, 5, 1), marking="GREEN",
            distribution="partners"))
        ids = {c.key: _incident(s, c, gid, bilateral, dt.date(2025, 3, 2 + n)) for n, c in enumerate(CASES)}
        unlinked = _incident(s, CASES[1], gid, None, dt.date(2025, 3, 20))
        on_shared = {c.key: _incident(s, c, gid, shared, dt.date(2025, 5, 3)) for c in CASES[:2]}
    return {"bilateral": bilateral, "shared": shared, "ids": ids, "unlinked": unlinked, "on_shared": on_shared,
            "group": gid}


def _client(engine: Engine, org: str, role: str) -> TestClient:
    username = f"ws-{role}-{org}".lower()
    make_user(engine, username, org, role)
    client = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    login(client, username)
    return client


def _expected_contributions(org: str, role: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"incidents": 0, "kg": 0.0, "arrests": 0, "seizures": 0})
    for c in CASES:
        if expected_visible(org, role, c):
            row = out[c.org]
            row["incidents"] += 1
            row["kg"] += c.kg
            row["arrests"] += c.arrests
            row["seizures"] += 1
    return dict(out)


@pytest.mark.parametrize(("org", "role"), PRINCIPALS, ids=[f"{o}-{r}" for o, r in PRINCIPALS])
def test_each_partner_sees_the_workspace_the_rules_allow(engine: Engine, org: str, role: str) -> None:
    store = _store(engine)
    client = _client(engine, org, role)
    op = store["bilateral"]
    page = client.get(f"/operations/{op}/workspace")
    api = client.get(f"/api/v1/operations/{op}/workspace")
    if org not in GROUP | DOMESTIC:  # the Vietnamese liaison: the operation is not shared with them
        assert page.status_code == 404 and api.status_code == 404
        assert "Lotus Gate" not in page.text and "Lotus Gate" not in api.text
        assert client.get(f"/operations/{op}").status_code == 404
        return
    assert page.status_code == 200, page.text
    assert api.status_code == 200, api.text
    ws = api.json()
    assert ws["operation"]["name"] == "Operation Lotus Gate"
    assert ws["operation"]["outcomes"] == "Border route disrupted; two couriers convicted."
    assert {(p["org"]["code"], p["role"]) for p in ws["participants"]} == {
        ("KH-NACD", "lead"), ("TH-ONCB", "participant"), ("KH-GDCE", "participant")}
    assert ws["participants"][0]["org"]["code"] == "KH-NACD"  # the lead first

    visible = {c.key for c in CASES if expected_visible(org, role, c)}
    wrong = []
    for c in CASES:
        rid = store["ids"][c.key]
        for way, text in (("page", page.text), ("api", api.text)):
            if (rid in text) != (c.key in visible):
                wrong.append(f"{way}: {c.key} {'missing' if c.key in visible else 'LEAKED'}")
            if c.key not in visible and c.key in text:
                wrong.append(f"{way}: text of {c.key} LEAKED")
    assert wrong == []
    assert store["unlinked"] not in api.text and store["unlinked"] not in page.text
    assert {i["id"] for i in ws["incidents"]} == {store["ids"][k] for k in visible}
    # hidden incidents are not acknowledged: the total is what the principal sees, and nothing counts the rest
    assert ws["incidents_total"] == len(visible) == ws["totals"]["incidents"]
    assert not any(word in api.text.lower() for word in ("hidden", "withheld"))

    expected = _expected_contributions(org, role)
    got = {c["org"]["code"]: c for c in ws["contributions"]}
    assert set(got) == {"KH-NACD", "TH-ONCB", "KH-GDCE"}  # every participant has a row, even at zero
    for code, row in got.items():
        want = expected.get(code, {"incidents": 0, "kg": 0.0, "arrests": 0, "seizures": 0})
        assert (row["incidents"], row["seizures"], row["arrests"]) == (
            want["incidents"], want["seizures"], want["arrests"]), code
        assert row["kg"] == pytest.approx(want["kg"]), code
    assert ws["totals"]["kg"] == pytest.approx(sum(r["kg"] for r in expected.values()))
    drugs = {d["drug"]: d["kg"] for d in ws["drug_totals"]}
    meth = sum(c.kg for c in CASES if c.key in visible and _drug(c) == "methamphetamine_crystalline")
    assert drugs.get("methamphetamine_crystalline", 0.0) == pytest.approx(meth)
    assert sum(d["incidents"] for d in ws["timeline"]) == len(visible)
    assert [d["day"] for d in ws["timeline"]] == sorted(d["day"] for d in ws["timeline"])

    # the page shows the same contributions; RED figures never reach a foreign partner
    for code, row in got.items():
        shown = re.search(rf'<tr data-org="{code}">.*?data-key="incidents">(\d+)<.*?data-key="kg">([\d,.]+)<',
                          page.text.split('class="contributions"')[1], re.S)
        assert shown, code
        assert int(shown.group(1)) == row["incidents"] and shown.group(2) == f"{row['kg']:,.3f}", code
    if org == "TH-ONCB":
        assert "40.000" not in page.text and "30.000" not in page.text  # the RED seizures (theirs too)
        assert "Poipet kh-amber-domestic" not in page.text and "informant" not in page.text
    if role == "viewer":
        assert not any(c.marking == "RED" and store["ids"][c.key] in page.text for c in CASES)


def test_visibility_comes_from_sharing_not_participation(engine: Engine) -> None:
    """An operation shared with all partners is open to a non-participant, with only what reaches them."""
    store = _store(engine)
    vietnam = _client(engine, "VN-C04", "liaison")
    ws = vietnam.get(f"/api/v1/operations/{store['shared']}/workspace").json()
    assert "VN-C04" not in {p["org"]["code"] for p in ws["participants"]}
    assert [i["id"] for i in ws["incidents"]] == [store["on_shared"]["kh-green-partners"]]
    assert vietnam.get(f"/operations/{store['shared']}/workspace").status_code == 200


def test_operation_page_links_to_the_workspace(engine: Engine) -> None:
    store = _store(engine)
    thai = _client(engine, "TH-ONCB", "liaison")
    detail = thai.get(f"/operations/{store['bilateral']}")
    assert detail.status_code == 200
    assert f'href="/operations/{store["bilateral"]}/workspace"' in detail.text
    assert thai.get("/operations/nope/workspace").status_code == 404
    assert thai.get("/api/v1/operations/nope/workspace").json() == {"error": "no operation with id nope"}


def test_workspace_in_khmer(engine: Engine) -> None:
    store = _store(engine)
    analyst = _client(engine, "KH-NACD", "analyst")
    page = analyst.get(f"/operations/{store['bilateral']}/workspace?lang=km")
    assert page.status_code == 200
    assert '<html lang="km">' in page.text
    assert "Joint operations workspace" not in page.text and "Contributions" not in page.text
    assert "អាជ្ញាធរជាតិប្រយុទ្ធប្រឆាំងគ្រឿងញៀន" in page.text  # the lead agency by its Khmer name


def test_workspace_queries_do_not_grow_with_the_operation(engine: Engine) -> None:
    """N+1 guard: 2 and 20 linked incidents (with seizures, arrests, several reporters) cost the same."""
    with session_scope(engine) as s:
        gid = uuid7()
        s.add(SharingGroup(id=gid, name="Workspace count", owner_org_id=org_id("KH-NACD")))
        s.flush()
        s.add_all(SharingGroupMember(group_id=gid, org_id=org_id(code)) for code in sorted(GROUP))
        ops = [create_operation(s, OperationIn(
            name=f"Operation Count {n}", kind="bilateral", lead_org="KH-NACD", participants=["TH-ONCB"],
            start_date=dt.date(2025, 1, 1), marking="AMBER", distribution="group", sharing_group_id=gid))
            for n in range(2)]
        for op, n in zip(ops, (2, 20), strict=True):
            for i in range(n):
                case = CASES[[0, 1, 5, 7][i % 4]]
                _incident(s, Case(f"{case.key}-{i}", case.org, case.marking, case.distribution, case.kg, 2),
                          gid, op, dt.date(2025, 1, 1 + i))
    client = _client(engine, "KH-NACD", "analyst")
    counts = []
    for op in ops:
        for url in (f"/api/v1/operations/{op}/workspace", f"/operations/{op}/workspace"):
            with count_queries(engine) as statements:
                assert client.get(url).status_code == 200
            counts.append(len(statements))
    assert counts[:2] == counts[2:], counts
    assert counts[0] <= 12, counts
