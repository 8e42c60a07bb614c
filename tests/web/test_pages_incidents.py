"""Incident pages: list filters and paging, the detail page under the sharing policy, and the entry form."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from narcotrack.config import Settings
from narcotrack.domain.models import ArrestIn, IncidentIn, PersonIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident, org_id_by_code, update_incident
from narcotrack.store.schema import Arrest, AuditEvent, Incident, PersonIdentity, Seizure
from narcotrack.web.app import create_app
from tests.web.helpers import csrf_of, login, make_user


def client_for(engine: Engine, username: str, org: str, role: str) -> TestClient:
    make_user(engine, username, org, role)
    c = TestClient(create_app(engine, settings=Settings(totp_roles="")))  # no second factor in these tests
    login(c, username)
    return c


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


def record(engine: Engine, **fields: Any) -> str:
    data: dict[str, Any] = {
        "occurred_on": dt.date(2025, 3, 1),
        "province": "Phnom Penh",
        "reporting_org": "KH-ADP",
        "seizures": [SeizureIn(drug="yaba", quantity=2000, unit="tablets")],
    } | fields
    with session_scope(engine) as s:
        return create_incident(s, IncidentIn(**data))


def seed_mix(engine: Engine) -> dict[str, str]:
    return {
        "pp_yaba": record(engine),
        "btb_heroin": record(
            engine,
            occurred_on=dt.date(2025, 1, 10),
            province="Battambang",
            reporting_org="KH-GDCE",
            seizures=[SeizureIn(drug="heroin", quantity=1.5, unit="kg")],
        ),
        "pp_ice_red": record(
            engine,
            occurred_on=dt.date(2025, 6, 5),
            district="Chamkar Mon",
            marking="RED",
            seizures=[SeizureIn(drug="ice", quantity=300, unit="g")],
        ),
    }


def test_list_filters_by_place_drug_agency_marking_and_date(engine: Engine) -> None:
    ids = seed_mix(engine)
    c = client_for(engine, "dara", "KH-ADP", "analyst")
    page = c.get("/incidents")
    assert page.status_code == 200
    assert set(row_ids(page.text)) == set(ids.values())
    assert "Chamkar Mon, Phnom Penh" in page.text and "TLP:RED" in page.text
    assert set(row_ids(c.get("/incidents", params={"place": "KH-12"}).text)) == {
        ids["pp_yaba"],
        ids["pp_ice_red"],
    }
    assert row_ids(c.get("/incidents", params={"place": "KH-1201"}).text) == [ids["pp_ice_red"]]
    # no place picked, only typed (the form without JavaScript): the best match is used
    typed = c.get("/incidents", params={"place_q": "បាត់ដំបង"}).text
    assert row_ids(typed) == [ids["btb_heroin"]] and "Place: Battambang" in typed  # and it says so
    assert row_ids(c.get("/incidents", params={"drug": "heroin"}).text) == [ids["btb_heroin"]]
    assert row_ids(c.get("/incidents", params={"agency": "KH-GDCE"}).text) == [ids["btb_heroin"]]
    assert row_ids(c.get("/incidents", params={"marking": "RED"}).text) == [ids["pp_ice_red"]]
    between = c.get("/incidents", params={"date_from": "2025-02-01", "date_to": "2025-04-01", "place": ""})
    assert row_ids(between.text) == [ids["pp_yaba"]]
    # a bad date is said and ignored, not a crash
    bad = c.get("/incidents", params={"date_from": "1 March"})
    assert bad.status_code == 200 and "not understood" in bad.text and len(row_ids(bad.text)) == 3


def test_htmx_gets_only_the_table_and_export_links_keep_the_filters(engine: Engine) -> None:
    ids = seed_mix(engine)
    c = client_for(engine, "dara", "KH-ADP", "analyst")
    frag = c.get("/incidents", params={"place": "KH-02", "drug": "heroin"}, headers={"HX-Request": "true"})
    assert "<html" not in frag.text and "<form" not in frag.text
    assert row_ids(frag.text) == [ids["btb_heroin"]]
    assert "/api/v1/incidents/export.csv?place=KH-02&amp;drug=heroin" in frag.text
    assert "/api/v1/incidents/export.xlsx?place=KH-02&amp;drug=heroin" in frag.text
    full = c.get("/incidents", params={"place": "KH-02"})
    assert "<form" in full.text and 'hx-target="#results"' in full.text and 'hx-push-url="true"' in full.text
    officer = client_for(engine, "vicheka", "KH-ADP", "officer")  # may not export
    assert "export.csv" not in officer.get("/incidents").text


def test_list_pages_fifty_at_a_time_with_a_cursor(engine: Engine) -> None:
    with session_scope(engine) as s:
        for n in range(53):
            create_incident(
                s,
                IncidentIn(
                    occurred_on=dt.date(2024, 1, 1) + dt.timedelta(days=n),
                    province="Kandal",
                    reporting_org="KH-ADP",
                    seizures=[SeizureIn(drug="ice", quantity=n + 1, unit="g")],
                ),
            )
    c = client_for(engine, "dara", "KH-ADP", "analyst")
    first = c.get("/incidents", params={"drug": "methamphetamine_crystalline"})
    ids1 = row_ids(first.text)
    assert len(ids1) == 50
    assert ids1 == sorted(ids1, reverse=True)  # newest first
    m = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert m
    next_url = m.group(1).replace("&amp;", "&")
    assert "drug=methamphetamine_crystalline" in next_url  # the filters go along
    second = c.get(next_url)
    ids2 = row_ids(second.text)
    assert len(ids2) == 3 and not set(ids1) & set(ids2)
    assert 'rel="next"' not in second.text and "First page" in second.text


def test_detail_is_404_for_a_record_the_user_may_not_see(engine: Engine) -> None:
    red = record(engine, reporting_org="KH-NACD", marking="RED", distribution="partners")
    shared = record(engine, reporting_org="KH-NACD", marking="GREEN", distribution="partners")
    liaison = client_for(engine, "somchai", "TH-ONCB", "liaison")
    assert liaison.get(f"/incidents/{red}").status_code == 404
    assert liaison.get("/incidents/no-such-id").status_code == 404
    assert liaison.get(f"/incidents/{shared}").status_code == 200
    assert row_ids(liaison.get("/incidents").text) == [shared]
    nacd = client_for(engine, "sophea", "KH-NACD", "analyst")
    page = nacd.get(f"/incidents/{red}")
    assert page.status_code == 200 and "Methamphetamine tablets" in page.text


def _identity_reads(engine: Engine) -> list[AuditEvent]:
    with session_scope(engine) as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "read_person_identity")))


def test_detail_shows_persons_by_identity_policy_and_audits_reads(engine: Engine) -> None:
    person = PersonIn(
        name_km="សុខ ដារា", name_latin="Sok Dara", sex="M", marking="GREEN", distribution="partners"
    )
    iid = record(
        engine,
        marking="GREEN",
        distribution="partners",
        arrests=[ArrestIn(role="courier", charges=["ldc_trafficking"], person=person)],
    )
    domestic = client_for(engine, "dara", "KH-GDCE", "analyst")
    page = domestic.get(f"/incidents/{iid}")
    assert "Sok Dara" in page.text and "សុខ ដារា" in page.text and "Courier" in page.text
    reads = _identity_reads(engine)
    assert len(reads) == 1 and reads[0].detail["access"] == ["full"]

    partner = client_for(engine, "somchai", "TH-ONCB", "liaison").get(f"/incidents/{iid}")
    assert "Sok Dara" not in partner.text and re.search(r"P-[A-Z2-7]{16}", partner.text)
    assert [e.detail["access"] for e in _identity_reads(engine)][-1] == ["pseudonym"]

    viewer = client_for(engine, "lina", "KH-GDCE", "viewer").get(f"/incidents/{iid}")
    assert "Sok Dara" not in viewer.text and "identity not shown" in viewer.text
    assert len(_identity_reads(engine)) == 2  # showing no identity is no identity read


def test_detail_shows_the_record_history(engine: Engine) -> None:
    iid = record(engine, narrative="first account")
    with session_scope(engine) as s:
        update_incident(s, iid, {"narrative": "corrected account"})
    page = client_for(engine, "dara", "KH-ADP", "analyst").get(f"/incidents/{iid}")
    assert "corrected account" in page.text
    history = page.text.split("Record history", 1)[1]
    assert (
        "version</span>" not in history
        and "(version 2)" in history
        and "first account → corrected account" in history
    )


def _form(c: TestClient) -> dict[str, str]:
    page = c.get("/incidents/new")
    assert page.status_code == 200
    return {"csrf_token": csrf_of(page.text)}


def test_form_post_records_the_incident_with_seizures_and_an_arrest(engine: Engine) -> None:
    c = client_for(engine, "vicheka", "KH-PP-12", "officer")
    data = _form(c) | {
        "occurred_on": "2025-05-04",
        "place": "KH-1201",
        "place_text": "Street 63, near the market",
        "place_kind": "road",
        "reporting_org": "KH-PP-12",
        "narrative": "Car stopped at a checkpoint.",
        "marking": "AMBER",
        "distribution": "domestic",
        "seizures.0.drug": "methamphetamine_tablets",
        "seizures.0.quantity": "12000",
        "seizures.0.unit": "tablets",
        "seizures.0.transport_mode": "road_private",
        "seizures.0.origin_country": "Laos",
        "seizures.1.drug": "ketamine",
        "seizures.1.quantity": "250",
        "seizures.1.unit": "g",
        "seizures.2.drug": "",
        "seizures.2.quantity": "",  # an empty row is dropped, not an error
        "arrests.0.name_km": "ចាន់ សុភា",
        "arrests.0.name_latin": "Chan Sophea",
        "arrests.0.sex": "F",
        "arrests.0.nationality": "KH",
        "arrests.0.age": "31",
        "arrests.0.role": "courier",
        "arrests.0.charges": ["ldc_trafficking", "ldc_possession"],
    }
    r = c.post("/incidents/new", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    iid = r.headers["location"].removeprefix("/incidents/")
    with session_scope(engine) as s:
        inc = s.get(Incident, iid)
        assert inc is not None
        assert (inc.province_code, inc.district_code, inc.source) == ("KH-12", "KH-1201", "form")
        assert inc.reporting_org_id == org_id_by_code(s, "KH-PP-12") and inc.place_kind == "road"
        seizures = s.scalars(select(Seizure).where(Seizure.incident_id == iid)).all()
        assert sorted((x.drug, x.quantity, x.origin_country) for x in seizures) == [
            ("ketamine", 250, None),
            ("methamphetamine_tablets", 12000, "LA"),
        ]
        arrest = s.scalars(select(Arrest).where(Arrest.incident_id == iid)).one()
        assert arrest.role == "courier" and sorted(arrest.charges) == ["ldc_possession", "ldc_trafficking"]
        ident = s.get(PersonIdentity, arrest.person_id)
        assert ident is not None and ident.name_latin == "Chan Sophea" and ident.age_reported == 31
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "create", AuditEvent.record_id == iid)
            )
            == 1
        )
    page = c.get(r.headers["location"])
    assert "Chan Sophea" in page.text and "Ketamine" in page.text


def test_validation_errors_name_the_field_and_keep_the_input(engine: Engine) -> None:
    c = client_for(engine, "vicheka", "KH-PP-12", "officer")
    data = _form(c) | {
        "occurred_on": "",
        "place": "KH-12",
        "reporting_org": "KH-PP-12",
        "narrative": "ក្រុមការងារ ស្ទាក់ចាប់",
        "marking": "AMBER",
        "distribution": "domestic",
        "seizures.0.drug": "heroin",
        "seizures.0.quantity": "lots",
        "seizures.0.unit": "g",
        "seizures.3.drug": "",
        "seizures.3.quantity": "5",
        "seizures.3.unit": "kg",
        "arrests.0.role": "courier",
        "arrests.0.sex": "M",
    }
    r = c.post("/incidents/new", data=data)
    assert r.status_code == 422
    fields = set(re.findall(r'class="error" data-field="([^"]+)"', r.text))
    assert {"occurred_on", "seizures.0.quantity", "seizures.3.drug", "arrests.0"} <= fields
    assert "seizures.0.drug" not in fields and "seizures.3.quantity" not in fields
    assert 'name="seizures.0.quantity" value="lots"' in r.text
    assert 'name="seizures.3.quantity" value="5"' in r.text
    assert "ក្រុមការងារ ស្ទាក់ចាប់</textarea>" in r.text
    assert re.search(r'value="KH-12" checked', r.text)  # the chosen place stays chosen
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0


def test_form_needs_a_place_and_shows_matches_of_what_was_typed(engine: Engine) -> None:
    c = client_for(engine, "vicheka", "KH-PP-12", "officer")
    data = _form(c) | {
        "occurred_on": "2025-05-04",
        "place_q": "Siem Reap",
        "reporting_org": "KH-PP-12",
        "marking": "AMBER",
        "distribution": "domestic",
        "seizures.0.drug": "heroin",
        "seizures.0.quantity": "1",
        "seizures.0.unit": "kg",
    }
    r = c.post("/incidents/new", data=data)
    assert r.status_code == 422 and 'data-field="place"' in r.text
    assert 'value="KH-17"' in r.text and 'value="KH-1710"' in r.text  # matches offered to pick from


def test_add_buttons_work_without_javascript(engine: Engine) -> None:
    c = client_for(engine, "vicheka", "KH-PP-12", "officer")
    r = c.post("/incidents/new", data=_form(c) | {"add": "arrest", "seizures.0.drug": "heroin"})
    assert r.status_code == 200
    assert 'name="arrests.0.name_latin"' in r.text and "seizures.0.drug" in r.text
    frag = c.get("/incidents/new/seizure-row", params={"index": 4})
    assert 'name="seizures.4.quantity"' in frag.text and "<html" not in frag.text
    assert 'hx-swap-oob="true"' in frag.text and "seizure-row?index=5" in frag.text
    assert 'name="arrests.2.role"' in c.get("/incidents/new/arrest-row", params={"index": 2}).text
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0


def test_roles_without_write_get_403_and_officers_record_only_for_their_organisation(engine: Engine) -> None:
    viewer = client_for(engine, "lina", "KH-ADP", "viewer")
    assert viewer.get("/incidents/new").status_code == 403
    assert viewer.get("/incidents/new/seizure-row").status_code == 403
    assert 'href="/incidents/new"' not in viewer.get("/incidents").text
    token = csrf_of(viewer.get("/incidents").text)
    assert (
        viewer.post("/incidents/new", data={"csrf_token": token, "occurred_on": "2025-01-01"}).status_code
        == 403
    )
    officer = client_for(engine, "vicheka", "KH-PP-12", "officer")
    form = officer.get("/incidents/new").text
    assert '<select name="reporting_org">' not in form  # no choice of organisation for an officer
    data = {
        "csrf_token": csrf_of(form),
        "occurred_on": "2025-05-04",
        "place": "KH-12",
        "reporting_org": "KH-GDCE",
        "marking": "GREEN",
        "distribution": "domestic",
        "seizures.0.drug": "heroin",
        "seizures.0.quantity": "1",
        "seizures.0.unit": "kg",
    }
    r = officer.post("/incidents/new", data=data)
    assert r.status_code == 403 and "only for your own organisation" in r.text
    assert 'name="seizures.0.quantity" value="1"' in r.text  # the input is kept
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0
    admin = client_for(engine, "admin1", "KH-NACD", "admin")
    assert '<select name="reporting_org">' in admin.get("/incidents/new").text
    r = admin.post(
        "/incidents/new",
        data=data | {"csrf_token": csrf_of(admin.get("/incidents/new").text)},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_form_post_without_csrf_token_is_refused(engine: Engine) -> None:
    c = client_for(engine, "vicheka", "KH-PP-12", "officer")
    data = {
        "occurred_on": "2025-05-04",
        "place": "KH-12",
        "reporting_org": "KH-PP-12",
        "seizures.0.drug": "heroin",
        "seizures.0.quantity": "1",
        "seizures.0.unit": "kg",
    }
    assert c.post("/incidents/new", data=data).status_code == 403
    assert c.post("/incidents/new", data=data | {"csrf_token": "forged"}).status_code == 403
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0


def test_place_search_fragment_and_json(engine: Engine) -> None:
    c = client_for(engine, "dara", "KH-ADP", "viewer")  # any logged-in user may search places
    frag = c.get("/places/search", params={"q": "ភ្នំពេញ"})
    assert frag.status_code == 200 and "<html" not in frag.text
    assert re.findall(r'name="place" value="([^"]+)"', frag.text)[0] == "KH-12"
    assert "Phnom Penh" in frag.text and "រាជធានីភ្នំពេញ" in frag.text
    kept = c.get("/places/search", params={"q": "Kampot", "place": "KH-12"})
    assert re.search(r'value="KH-12" checked', kept.text) and 'value="KH-07"' in kept.text
    assert 'value="KH-12"' not in c.get("/places/search", params={"q": "ភ្នំពេញ", "level": "commune"}).text
    found = c.get("/api/v1/places", params={"q": "Phnum Penh"}).json()
    assert found[0] == {
        "code": "KH-12",
        "level": "province",
        "name_en": "Phnom Penh",
        "name_km": "រាជធានីភ្នំពេញ",
        "parent_code": "KH",
    }
    assert len(c.get("/api/v1/places", params={"q": "a"}).json()) == 20
    assert {p["level"] for p in c.get("/api/v1/places", params={"q": "a", "level": "district"}).json()} == {
        "district"
    }
    assert c.get("/api/v1/places", params={"q": "a", "level": "planet"}).status_code == 422
    assert TestClient(create_app(engine)).get("/api/v1/places", params={"q": "a"}).status_code == 401


@pytest.mark.parametrize("lang", ["km", "en"])
def test_list_names_places_in_the_page_language(engine: Engine, lang: str) -> None:
    record(engine, province="Siem Reap")
    page = client_for(engine, "dara", "KH-ADP", "analyst").get("/incidents", params={"lang": lang})
    cell = re.search(r"<tr data-id=.*?</tr>", page.text, re.S)
    assert cell
    assert ("សៀមរាប" in cell.group(0)) == (lang == "km")


def test_sharing_wider_than_the_role_may_set_is_stored_at_its_limit(engine: Engine) -> None:
    officer = client_for(engine, "vicheka", "KH-PP-12", "officer")
    form = officer.get("/incidents/new").text
    assert re.search(r'value="partners">[^<]*needs a supervisor', form)
    assert not re.search(r'value="domestic"( selected)?>[^<]*needs a supervisor', form)
    data = {
        "csrf_token": csrf_of(form),
        "occurred_on": "2025-05-04",
        "place": "KH-12",
        "reporting_org": "KH-PP-12",
        "marking": "GREEN",
        "distribution": "partners",
        "seizures.0.drug": "heroin",
        "seizures.0.quantity": "1",
        "seizures.0.unit": "kg",
    }
    r = officer.post("/incidents/new", data=data, follow_redirects=False)
    assert r.status_code == 303
    with session_scope(engine) as s:
        location = r.headers["location"]
        assert location.endswith("?release_requested=1")
        incident = s.get(Incident, location.removeprefix("/incidents/").split("?")[0])
        assert incident is not None and incident.distribution == "domestic"
    assert "waiting for a supervisor" in officer.get(location).text
