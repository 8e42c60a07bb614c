"""Place search: Khmer or English, spelling variants, levels, and the order people expect."""

from __future__ import annotations

import pytest

from narcotrack.domain.places import place_by_code, place_path, search_places


def codes(query: str, level: str | None = None, limit: int = 20) -> list[str]:
    return [p.code for p in search_places(query, level=level, limit=limit)]


@pytest.mark.parametrize(
    "query", ["ភ្នំពេញ", "Phnom Penh", "phnom-penh", "PHNOM PENH", "Phnum Penh", "រាជធានីភ្នំពេញ"]
)
def test_phnom_penh_comes_first_in_either_script_and_spelling(query: str) -> None:
    assert codes(query)[0] == "KH-12"


def test_a_romanisation_variant_finds_the_gazetteer_spelling() -> None:
    # The gazetteer writes "Siem Reab" and "Paoy Paet"; people type "Siem Reap" and "Poipet".
    assert "KH-1710" in codes("Siem Reap", level="district")
    assert codes("Poipet", level="district") == ["KH-0110"]
    assert codes("Krong Siem Reap", level="district") == ["KH-1710"]


def test_khmer_level_words_and_subscript_variants_are_folded() -> None:
    assert codes("ខេត្តសៀមរាប")[0] == "KH-17"
    # វត្ដភ្នំ in the gazetteer, typed with the other subscript letter
    assert codes("វត្តភ្នំ") == ["KH-120211"]


def test_level_filter_keeps_only_that_level() -> None:
    all_levels = search_places("ភ្នំពេញ")
    assert {p.level for p in all_levels} == {"province", "commune"}
    communes = search_places("ភ្នំពេញ", level="commune")
    assert communes and {p.level for p in communes} == {"commune"}
    assert "KH-12" not in [p.code for p in communes]
    assert codes("Phnom Penh", level="province") == ["KH-12"]


def test_exact_names_rank_before_partial_ones_and_provinces_before_communes() -> None:
    found = codes("ភ្នំពេញ")
    # KH-12 (province, exact alias) before KH-130404 (commune named exactly ភ្នំពេញ) before
    # KH-120801 (ភ្នំពេញថ្មី, which only starts with it)
    assert found.index("KH-12") < found.index("KH-130404") < found.index("KH-120801")


def test_codes_match_from_their_start() -> None:
    found = codes("KH-1201")
    assert found[0] == "KH-1201"
    assert all(c.startswith("KH-1201") for c in found)
    assert codes("12", limit=1) == ["KH-12"]


def test_limit_blank_and_unknown_queries() -> None:
    assert len(search_places("a", limit=20)) == 20
    assert len(search_places("a", limit=5)) == 5
    assert search_places("   ") == []
    assert search_places("Atlantis Xyz") == []
    with pytest.raises(ValueError):
        search_places("Phnom Penh", level="village")


def test_villages_are_not_offered() -> None:
    assert {p.level for p in search_places("Phum", limit=500)} <= {"province", "district", "commune"}


def test_place_path_goes_from_the_province_down() -> None:
    assert [p.code for p in place_path("KH-120801")] == ["KH-12", "KH-1208", "KH-120801"]
    assert place_by_code("KH-12") is not None and place_by_code("KH-99") is None
