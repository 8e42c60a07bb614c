"""The store's behaviour, run on SQLite and PostgreSQL alike through the `engine` fixture."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from narcotrack.domain.models import ArrestIn, IncidentIn, OperationIn, PersonIn, SeizureIn, UserIn
from narcotrack.errors import Conflict, InvalidInput, NotFound
from narcotrack.store.db import session_scope
from narcotrack.store.figures import headline_figures
from narcotrack.store.repo import (
    create_incident,
    create_operation,
    create_user,
    get_incident,
    history,
    init_store,
    update_incident,
)
from narcotrack.store.schema import Incident, Organisation, Person, PersonIdentity, Place, Seizure


def _incident(**over: object) -> IncidentIn:
    data: dict[str, object] = {
        "occurred_on": dt.date(2025, 3, 14),
        "province": "Banteay Meanchey",
        "district": "Poipet",
        "place_kind": "border checkpoint",
        "reporting_org": "KH-PP-01",
        "seizures": [
            SeizureIn(drug="yaba", quantity=20_000, unit="tablets", origin_country="Thailand"),
            SeizureIn(drug="ice", quantity=1.5, unit="kg"),
        ],
        "arrests": [
            ArrestIn(
                role="courier",
                charges=["ldc_trafficking"],
                person=PersonIn(
                    name_latin="Sok Dara",
                    name_km="សុខ ដារា",
                    sex="M",
                    nationality="Cambodia",
                    id_numbers=["010203040"],
                ),
            )
        ],
    }
    data.update(over)
    return IncidentIn.model_validate(data)


def test_seeded_reference_data(engine: Engine) -> None:
    with engine.connect() as conn:
        levels = dict(conn.execute(select(Place.level, func.count()).group_by(Place.level)).all())
        assert levels["province"] == 25
        assert levels["district"] == 210
        assert levels["commune"] == 1661
        assert levels["village"] == 14576
        assert levels["country"] >= 249
        codes = set(conn.scalars(select(Organisation.code)))
    assert {"KH-NACD", "KH-ADP", "KH-GDCE", "UNODC", "TH-ONCB", "VN-C04", "LA-LCDC", "KH-PP-12"} <= codes


def test_init_is_idempotent(engine: Engine) -> None:
    assert init_store(engine) == {"places": 0, "organisations": 0}


def test_incident_with_seizures_and_arrest_round_trips(engine: Engine) -> None:
    with session_scope(engine) as s:
        iid = create_incident(s, _incident())
    with session_scope(engine) as s:
        got = get_incident(s, iid)
        inc = got["incident"]
        assert (inc.province_code, inc.district_code, inc.country) == ("KH-01", "KH-0110", "KH")
        assert inc.place_kind == "border_checkpoint"
        assert inc.marking == "AMBER" and inc.distribution == "domestic"
        kg = sorted(round(x.mass_kg, 3) for x in got["seizures"])
        assert kg == [1.5, 1.8]  # 20,000 tablets at 90 mg
        assert got["arrests"][0].charges == ["ldc_trafficking"]
        # identity lives apart from the person row
        person = s.get(Person, got["arrests"][0].person_id)
        assert person is not None and not hasattr(person, "name_latin")
        ident = s.get(PersonIdentity, person.id)
        assert ident is not None and ident.name_km == "សុខ ដារា" and ident.id_numbers == ["010203040"]


def test_unknown_place_or_org_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="unknown province 'Atlantis'"), session_scope(engine) as s:
        create_incident(s, _incident(province="Atlantis", district=None))
    with pytest.raises(NotFound, match="KH-NOPE"), session_scope(engine) as s:
        create_incident(s, _incident(reporting_org="KH-NOPE"))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Incident)) == 0


def test_foreign_incident_keeps_country(engine: Engine) -> None:
    with session_scope(engine) as s:
        iid = create_incident(
            s,
            _incident(
                country="Thailand",
                province=None,
                district=None,
                place_text="Aranyaprathet",
                reporting_org="TH-ONCB",
            ),
        )
        inc = get_incident(s, iid)["incident"]
        assert (inc.country, inc.province_code, inc.place_text) == ("TH", None, "Aranyaprathet")


def test_changes_are_kept_in_history_with_versions(engine: Engine) -> None:
    with session_scope(engine) as s:
        iid = create_incident(s, _incident())
    with session_scope(engine) as s:
        update_incident(s, iid, {"marking": "RED"}, expected_version=1)
        update_incident(s, iid, {"narrative": "courier on motorbike"})
    with session_scope(engine) as s:
        rows = history(s, "incident", iid)
        assert [r.version for r in rows] == [2, 3]
        assert rows[0].changes == {"marking": {"from": "AMBER", "to": "RED"}}
        with pytest.raises(Conflict):
            update_incident(s, iid, {"marking": "GREEN"}, expected_version=1)
        with pytest.raises(InvalidInput, match="cannot be changed"):
            update_incident(s, iid, {"reporting_org_id": "x"})
        with pytest.raises(InvalidInput, match="marking"):
            update_incident(s, iid, {"marking": "PURPLE"})


def test_database_enforces_markings_and_foreign_keys(engine: Engine) -> None:
    with session_scope(engine) as s:
        iid = create_incident(s, _incident())
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE incident SET marking = 'PURPLE' WHERE id = :id"), {"id": iid})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE incident SET distribution = 'group' WHERE id = :id"), {"id": iid})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE seizure SET incident_id = 'no-such-incident'"))


def test_users_and_operations(engine: Engine) -> None:
    with session_scope(engine) as s:
        user = create_user(
            s, UserIn(username="analyst1", org="KH-NACD", role="analyst", password="test-only-pass")
        )
        assert user.password_hash.startswith("$argon2id$")
    with pytest.raises(Conflict), session_scope(engine) as s:
        create_user(s, UserIn(username="analyst1", org="KH-NACD", role="analyst", password="another-pass"))
    with session_scope(engine) as s:
        op = create_operation(
            s,
            OperationIn(
                name="Mekong Dragon",
                kind="multilateral",
                lead_org="KH-NACD",
                participants=["TH-ONCB", "VN-C04", "LA-LCDC", "UNODC"],
                start_date=dt.date(2025, 6, 1),
                end_date=dt.date(2025, 6, 30),
            ),
        )
        iid = create_incident(s, _incident(operation_id=op))
        assert get_incident(s, iid)["incident"].operation_id == op
    with engine.connect() as conn:
        n = conn.scalar(text("SELECT count(*) FROM operation_participant WHERE operation_id = :o"), {"o": op})
    assert n == 5


def test_headline_figures_count_what_they_say(engine: Engine) -> None:
    with session_scope(engine) as s:
        create_incident(s, _incident())
        create_incident(s, _incident(occurred_on=dt.date(2023, 1, 2)))
    with session_scope(engine) as s:
        figs = headline_figures(s)
        recent = headline_figures(s, since=dt.date(2025, 1, 1))
    assert (figs["incidents"], figs["seizures"], figs["arrests"], figs["persons_arrested"]) == (2, 4, 2, 2)
    assert figs["kg_seized"] == pytest.approx(6.6)
    assert (recent["incidents"], recent["seizures"]) == (1, 2)
    assert figs["by_drug"][0]["drug"] in {"methamphetamine_tablets", "methamphetamine_crystalline"}


def test_schema_has_identity_apart_and_sharing_everywhere(engine: Engine) -> None:
    insp = inspect(engine)
    person_cols = {c["name"] for c in insp.get_columns("person")}
    assert not person_cols & {"name_km", "name_latin", "aliases", "date_of_birth", "id_numbers"}
    for table in (
        "incident",
        "person",
        "operation",
        "intel_report",
        "training_event",
        "community_campaign",
        "drug_use_indicator",
    ):
        cols = {c["name"] for c in insp.get_columns(table)}
        assert {"owner_org_id", "marking", "distribution", "sharing_group_id"} <= cols, table
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Seizure)) == 0
