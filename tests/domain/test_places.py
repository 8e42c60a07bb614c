from __future__ import annotations

from collections import Counter

import pytest

from narcotrack.domain.places import (
    iter_gazetteer,
    resolve_commune,
    resolve_country,
    resolve_district,
    resolve_province,
)


def test_gazetteer_has_every_official_unit() -> None:
    counts = Counter(p.level for p in iter_gazetteer())
    assert counts == {"province": 25, "district": 210, "commune": 1661, "village": 14576}


def test_gazetteer_codes_are_unique_and_parents_exist() -> None:
    places = list(iter_gazetteer())
    codes = [p.code for p in places]
    assert len(codes) == len(set(codes))
    known = {*codes, "KH"}
    assert all(p.parent_code in known for p in places)


@pytest.mark.parametrize(
    "text",
    ["Siem Reap", "Siemreap", "siem reab", "សៀមរាប", "ខេត្តសៀមរាប", "17", "KH-17", "១៧", "Siem Reap province"],
)
def test_province_in_any_script_spelling_or_code(text: str) -> None:
    assert resolve_province(text) == "KH-17"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Preah Sihanouk", "KH-18"),
        ("Sihanoukville", "KH-18"),
        ("Kampong Som", "KH-18"),
        ("Phnom Penh", "KH-12"),
        ("រាជធានីភ្នំពេញ", "KH-12"),
        ("Mondulkiri", "KH-11"),
        ("Ratanakiri", "KH-16"),
        ("Oddar Meanchey", "KH-22"),
        ("Tbong Khmum", "KH-25"),
        ("Kompong Cham", "KH-03"),
        ("ឧត្តរមានជ័យ", "KH-22"),  # subscript ta typed where the gazetteer has subscript da
        ("ឧត្ដរមានជ័យ", "KH-22"),
    ],
)
def test_province_spelling_variants(text: str, code: str) -> None:
    assert resolve_province(text) == code


def test_unknown_province_is_none() -> None:
    assert resolve_province("Atlantis") is None
    assert resolve_province("") is None
    assert resolve_province("26") is None


@pytest.mark.parametrize(
    ("text", "province", "code"),
    [
        ("Siem Reap", "KH-17", "KH-1710"),
        ("Krong Siem Reap", "KH-17", "KH-1710"),
        ("Poipet", "KH-01", "KH-0110"),
        ("Bavet", "KH-20", "KH-2008"),
        ("1201", "KH-12", "KH-1201"),
    ],
)
def test_district_within_province(text: str, province: str, code: str) -> None:
    assert resolve_district(text, province) == code


def test_district_code_of_another_province_is_rejected() -> None:
    assert resolve_district("1201", "KH-17") is None


def test_commune_within_district() -> None:
    assert resolve_commune("Banteay Neang", "KH-0102") == "KH-010201"
    assert resolve_commune("010201", "KH-0102") == "KH-010201"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Thailand", "TH"),
        ("ថៃ", "TH"),
        ("Lao Peoples Democratic Republic", "LA"),
        ("Viet Nam", "VN"),
        ("Turkey", "TR"),
        ("KH", "KH"),
    ],
)
def test_country_names(text: str, code: str) -> None:
    assert resolve_country(text) == code


def test_unknown_country_is_none() -> None:
    assert resolve_country("Unknown") is None
    assert resolve_country("Multiple Countries") is None
