from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from narcotrack.domain.ids import stable_id, uuid7
from narcotrack.domain.models import ArrestIn, IncidentIn, PersonIn, SeizureIn


def test_seizure_accepts_aliases_and_stores_codes() -> None:
    s = SeizureIn(
        drug="Ya Ba",
        quantity=1000,
        unit="tablets",
        transport_mode="motorbike",
        origin_country="Laos",
        transit_countries="Thailand, ឡាវ",
    )
    assert (s.drug, s.unit, s.transport_mode, s.origin_country) == (
        "methamphetamine_tablets",
        "tablet",
        "road_private",
        "LA",
    )
    assert s.transit_countries == ["TH", "LA"]


def test_seizure_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        SeizureIn(drug="chocolate", quantity=-1, unit="kg")
    fields = {e["loc"][0] for e in exc.value.errors()}
    assert fields == {"drug", "quantity"}


def test_incident_needs_a_seizure_or_an_arrest_and_a_past_date() -> None:
    with pytest.raises(ValidationError, match="at least one seizure"):
        IncidentIn(occurred_on=dt.date(2025, 1, 1), province="Kandal", reporting_org="KH-ADP")
    with pytest.raises(ValidationError, match="future"):
        IncidentIn(
            occurred_on=dt.date.today() + dt.timedelta(days=2),
            province="Kandal",
            reporting_org="KH-ADP",
            seizures=[SeizureIn(drug="heroin", quantity=1, unit="g")],
        )


def test_group_distribution_needs_a_group() -> None:
    with pytest.raises(ValidationError, match="sharing group"):
        PersonIn(name_latin="Sok Dara", distribution="group")


def test_arrest_needs_exactly_one_person() -> None:
    with pytest.raises(ValidationError):
        ArrestIn(role="courier")
    with pytest.raises(ValidationError, match="unknown charge"):
        ArrestIn(role="courier", person=PersonIn(name_latin="Sok Dara"), charges=["jaywalking"])


def test_ids_are_time_ordered_and_stable_ids_repeat() -> None:
    import random

    a = uuid7(ms=1_000)
    b = uuid7(ms=2_000)
    assert a < b
    assert uuid7(ms=5, rand=random.Random(3)) == uuid7(ms=5, rand=random.Random(3))
    assert stable_id("place", "KH-12") == stable_id("place", "KH-12") != stable_id("place", "KH-13")
