"""Derivation of mass in kilograms from a quantity as reported.

The factors and their sources live in ``vocab/units.yaml``; this module only applies them. A quantity
with no documented factor gets no mass rather than a guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from narcotrack.domain.vocab import load_yaml, vocabularies


@dataclass(frozen=True)
class MassRules:
    unit_kind: dict[str, str]
    factor_kg: dict[str, float]
    litres: dict[str, float]
    count: dict[str, float]
    unit_mass_kg: dict[str, float]
    density: dict[str, float]


@cache
def mass_rules() -> MassRules:
    data = load_yaml("units.yaml")
    kinds, factors, litres, counts = {}, {}, {}, {}
    for u in data["units"]:
        kinds[u["code"]] = u["kind"]
        if "factor_kg" in u:
            factors[u["code"]] = float(u["factor_kg"])
        if "litres" in u:
            litres[u["code"]] = float(u["litres"])
        if "count" in u:
            counts[u["code"]] = float(u["count"])
    return MassRules(
        unit_kind=kinds,
        factor_kg=factors,
        litres=litres,
        count=counts,
        unit_mass_kg={k: float(v["kg"]) for k, v in data["unit_mass_kg"].items()},
        density={k: float(v["kg"]) for k, v in data["density_kg_per_l"].items()},
    )


def mass_kg(quantity: float, unit: str, drug: str) -> float | None:
    """Mass in kg of ``quantity`` ``unit`` of ``drug`` (codes), or None when no factor is documented."""
    rules = mass_rules()
    kind = rules.unit_kind.get(unit)
    if kind == "mass":
        return quantity * rules.factor_kg[unit]
    if kind == "volume":
        return quantity * rules.litres[unit] * rules.density.get(drug, 1.0)
    if kind == "count":
        per_unit = rules.unit_mass_kg.get(drug)
        return None if per_unit is None else quantity * rules.count[unit] * per_unit
    return None


def unit_code(text: object) -> str | None:
    return vocabularies().units.resolve(text)
