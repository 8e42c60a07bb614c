from __future__ import annotations

import pytest

from narcotrack.domain.units import mass_kg
from narcotrack.domain.vocab import norm, vocabularies


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("yaba", "methamphetamine_tablets"),
        ("Ya Ba", "methamphetamine_tablets"),
        ("WY", "methamphetamine_tablets"),
        ("ice", "methamphetamine_crystalline"),
        ("Shabu", "methamphetamine_crystalline"),
        ("happy water", "happy_water"),
        ("ទឹកសប្បាយ", "happy_water"),
        ("Cocaine HCL", "cocaine"),
        ("JWH-018", "synthetic_cannabinoids"),
        ("5F-AKB48", "synthetic_cannabinoids"),
        ("safrole oil", "safrole_oil"),
        ("Phenylacetone", "p2p"),
        ("heroin", "heroin"),
    ],
)
def test_drug_aliases_resolve_to_one_code(text: str, code: str) -> None:
    assert vocabularies().drugs.resolve(text) == code


def test_unknown_drug_is_not_guessed() -> None:
    assert vocabularies().drugs.resolve("chocolate") is None
    assert vocabularies().drugs.resolve("") is None


def test_aliases_are_unique_across_drugs() -> None:
    seen: dict[str, str] = {}
    for term in vocabularies().drugs.terms.values():
        for alias in term.extra.get("aliases", []):
            key = norm(alias)
            assert seen.setdefault(key, term.code) == term.code, f"{alias!r} names two drugs"


@pytest.mark.parametrize(
    ("quantity", "unit", "drug", "kg"),
    [
        (2.5, "kg", "heroin", 2.5),
        (500, "g", "heroin", 0.5),
        (10_000, "tablet", "methamphetamine_tablets", 0.9),  # 90 mg per yaba tablet
        (2, "ktablet", "methamphetamine_tablets", 0.18),
        (1, "l", "ketamine", 1.0),  # 1 kg per litre
        (10, "l", "safrole_oil", 10.96),  # safrole density
        (3, "t", "ketamine", 3000.0),
    ],
)
def test_mass_conversion_uses_documented_factors(quantity: float, unit: str, drug: str, kg: float) -> None:
    assert mass_kg(quantity, unit, drug) == pytest.approx(kg)


def test_no_mass_without_a_documented_factor() -> None:
    assert mass_kg(120, "plant", "cannabis_plants") is None
    assert mass_kg(50, "unit", "hallucinogens") is None
    assert mass_kg(10, "tablet", "heroin") is None


def test_every_vocabulary_term_has_an_english_name() -> None:
    v = vocabularies()
    for vocab in (
        v.drugs,
        v.units,
        v.transport,
        v.concealment,
        v.place_kinds,
        v.roles,
        v.outcomes,
        v.charges,
    ):
        for term in vocab.terms.values():
            assert term.name_en.strip(), f"{vocab.name}:{term.code} has no English name"


def test_drugs_and_charges_carry_khmer_names_and_sources() -> None:
    from narcotrack.domain.vocab import load_yaml

    for term in vocabularies().drugs.terms.values():
        assert term.name_km, term.code
    assert "NS/RKM/0112/001" in load_yaml("charges.yaml")["source"]
    units = load_yaml("units.yaml")
    for drug, rule in units["unit_mass_kg"].items():
        assert rule["source"], drug
