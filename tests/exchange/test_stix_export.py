"""STIX export: what leaves for whom (the access matrix again, through STIX), validity, stable ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from stix2validator import ValidationOptions, validate_instance

from narcotrack.domain.models import ArrestIn, IncidentIn, OperationIn, PersonIn, SeizureIn
from narcotrack.exchange.extension import EXTENSION_ID, extension_errors
from narcotrack.exchange.markings import TLP2_IDS
from narcotrack.exchange.stix_export import default_stix_id
from narcotrack.exchange.stix_read import kind_of
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident, create_operation
from tests.exchange.conftest import export, principal
from tests.web.test_access_matrix import _name, _store, expected_identity, expected_visible

READERS = [("KH-NACD", "admin"), ("KH-NACD", "analyst"), ("KH-GDCE", "analyst"), ("TH-ONCB", "liaison"),
           ("LA-LCDC", "liaison"), ("VN-C04", "liaison")]


def _ext(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["extensions"][EXTENSION_ID])


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if kind_of(o) == kind]


def test_each_reader_gets_exactly_what_the_rules_allow_and_red_never_leaves(engine: Engine, tmp_path: Path) -> None:
    ids = _store(engine)
    for org, role in READERS:
        objects = export(engine, principal(engine, org, role), tmp_path / f"{org}-{role}.json")
        got = {default_stix_id("incident", i) for i in ids.values()} & {o["id"] for o in objects}
        want = {default_stix_id("incident", ids[m, d]) for (m, d) in ids
                if expected_visible(org, role, m, d) and m != "RED"}
        assert got == want, (org, role)
        names = {o["name"] for o in _by_kind(objects, "individual")}
        for (marking, dist) in ids:
            person_visible = expected_visible(org, role, marking, dist) and marking != "RED"
            named = _name(marking, dist) in names
            assert named == (person_visible and expected_identity(org, role, dist) == "full"), (org, role, marking, dist)
        assert TLP2_IDS["RED"] not in {ref for o in objects for ref in o.get("object_marking_refs", [])}


def test_partners_get_pseudonyms_that_differ_by_agreement_and_never_a_name(engine: Engine, tmp_path: Path) -> None:
    _store(engine)
    th = _by_kind(export(engine, principal(engine, "TH-ONCB"), tmp_path / "th.json"), "individual")
    vn = _by_kind(export(engine, principal(engine, "VN-C04"), tmp_path / "vn.json"), "individual")
    pseudonymous = [o for o in th if _ext(o)["identity"] == "pseudonym"]
    assert pseudonymous and all(not o["name"].startswith("Matrixname") for o in pseudonymous)
    assert all("name_latin" not in _ext(o) and "id_numbers" not in _ext(o) for o in pseudonymous)
    shared = {o["id"]: o["name"] for o in th} .keys() & {o["id"] for o in vn}
    th_names, vn_names = {o["id"]: o["name"] for o in th}, {o["id"]: o["name"] for o in vn}
    assert shared and all(th_names[i] != vn_names[i] for i in shared)  # per receiving organisation


def _rich_store(engine: Engine) -> None:
    with session_scope(engine) as s:
        op = create_operation(s, OperationIn(name="Mekong Spring", code="OP-MS-1", kind="bilateral", lead_org="KH-NACD",
                                             participants=["TH-ONCB"], start_date=dt.date(2025, 3, 1),
                                             marking="GREEN", distribution="partners"))
        create_incident(s, IncidentIn(
            occurred_on=dt.date(2025, 3, 4), province="Banteay Meanchey", reporting_org="KH-NACD", operation_id=op,
            marking="GREEN", distribution="partners", narrative="Truck stopped at Poipet checkpoint.",
            seizures=[SeizureIn(drug="yaba", quantity=120_000, unit="tablet", concealment="vehicle",
                                transport_mode="road_commercial", origin_country="MM", transit_countries=["LA", "TH"],
                                destination_country="KH"),
                      SeizureIn(drug="ice", quantity=2.5, unit="kg", purity_pct=80)],
            arrests=[ArrestIn(role="courier", charges=["ldc_trafficking"], person=PersonIn(
                name_latin="Sok Dara", sex="M", nationality="KH", date_of_birth=dt.date(1990, 2, 3),
                marking="GREEN", distribution="partners"))]))


def test_every_exported_object_passes_the_oasis_validator_and_the_extension_schema(
        engine: Engine, tmp_path: Path) -> None:
    _store(engine)
    _rich_store(engine)
    objects = export(engine, principal(engine, "KH-NACD", "analyst"), tmp_path / "kh.json")
    bundle = {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": objects}
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors][:5]
    kinds = {kind_of(o) for o in objects}
    assert {"incident", "individual", "organization", "grouping", "location"} <= kinds
    for o in objects:
        kind = kind_of(o)
        if kind is not None:
            assert extension_errors(kind, _ext(o)) == [], o["id"]
    incident = next(o for o in _by_kind(objects, "incident") if o.get("description", "").startswith("Truck"))
    seizures = _ext(incident)["seizures"]
    assert {(s["drug"], s["quantity"], s["unit"]) for s in seizures} == {("methamphetamine_tablets", 120_000, "tablet"),
                                                                  ("methamphetamine_crystalline", 2.5, "kg")}
    assert next(s for s in seizures if s["unit"] == "tablet")["transit_countries"] == ["LA", "TH"]
    grouping = _by_kind(objects, "grouping")[0]
    assert incident["id"] in grouping["object_refs"] and _ext(incident)["operation_ref"] == grouping["id"]
    arrested = _ext(incident)["arrests"][0]["person_ref"]
    assert any(o["type"] == "relationship" and o["source_ref"] == arrested and o["target_ref"] == incident["id"]
               for o in objects)


def test_the_same_store_always_gives_the_same_bundle(engine: Engine, tmp_path: Path) -> None:
    _rich_store(engine)
    p = principal(engine, "TH-ONCB")
    export(engine, p, tmp_path / "one.json")
    export(engine, p, tmp_path / "two.json")
    assert (tmp_path / "one.json").read_bytes() == (tmp_path / "two.json").read_bytes()


def test_since_gives_only_what_changed(engine: Engine, tmp_path: Path) -> None:
    _rich_store(engine)
    p = principal(engine, "KH-NACD", "analyst")
    everything = export(engine, p, tmp_path / "all.json")
    later = export(engine, p, tmp_path / "later.json", since=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert _by_kind(everything, "incident") and not _by_kind(later, "incident")


@pytest.mark.parametrize("role", ["officer", "viewer"])
def test_roles_that_may_not_export_are_refused(engine: Engine, role: str) -> None:
    from narcotrack.cli_export import Caller
    from narcotrack.errors import Forbidden
    from tests.web.helpers import make_user

    make_user(engine, f"{role}1", "KH-NACD", role)
    with session_scope(engine) as s, pytest.raises(Forbidden):
        Caller(s, user=f"{role}1", partner=None)
