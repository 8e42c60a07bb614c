"""UNODC prices: the package table is what UNODC published, converted by hand-checkable rules."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from narcotrack.analytics.prices import build_prices, load_prices, price_table, street_value
from narcotrack.errors import InvalidInput
from tests.conftest import shared_data

TABLET_KG = 90e-6  # a methamphetamine tablet, domain/vocab/units.yaml
ECSTASY_KG = 300e-6


def unodc_row(country: str, drug: str, level: str, year: int) -> dict[str, object]:
    rows = json.loads(shared_data("unodc", "drug_prices_2018_2022.json").read_text(encoding="utf-8"))
    found = [r for r in rows if r["Country/Territory"] == country and r["Drug"] == drug
             and r["LevelOfSale"] == level and r["Year"] == year]
    assert len(found) == 1, found
    return dict(found[0])


def test_package_table_equals_a_fresh_build_from_unodc() -> None:
    fresh = build_prices(shared_data("unodc", "drug_prices_2018_2022.json"))
    shipped = load_prices()
    assert list(shipped.columns) == ["country", "drug", "year", "level", "usd_per_kg_typical", "usd_per_kg_min",
                                     "usd_per_kg_max", "source", "subregion", "typical_basis"]
    assert len(shipped) == len(fresh) > 3000
    for col in ("country", "drug", "year", "level", "typical_basis"):
        assert shipped[col].tolist() == fresh[col].tolist()
    assert shipped["usd_per_kg_typical"].to_numpy() == pytest.approx(fresh["usd_per_kg_typical"].to_numpy(),
                                                                      rel=1e-8)
    assert shipped["source"].str.startswith("UNODC, Prices of drugs 2018-2022").all()
    assert set(shipped["level"]) == {"retail", "wholesale"}


def test_street_value_is_kg_times_the_published_price_per_tablet() -> None:
    row = unodc_row("Cambodia", "Methamphetamine tablets", "Retail", 2020)
    assert row["Unit"] == "tablet"
    usd_per_kg = float(row["Typical_USD"]) / TABLET_KG  # 1 USD a tablet -> 11,111 USD a kg
    frame = pd.DataFrame({"drug": ["methamphetamine_tablets"], "kg": [2.5], "period": [pd.Timestamp("2020-05-01")]})
    out = street_value(frame)
    assert out["usd_per_kg"].iloc[0] == pytest.approx(usd_per_kg)
    assert out["street_value_usd"].iloc[0] == pytest.approx(2.5 * usd_per_kg)
    # the same price for 2024 (held to the last year priced; 2020 is Cambodia's nearest to 2022)
    later = street_value(frame.assign(period=pd.Timestamp("2024-11-01")))
    assert later["street_value_usd"].iloc[0] == pytest.approx(2.5 * usd_per_kg)


def test_missing_typical_price_is_the_midpoint_of_the_range() -> None:
    row = unodc_row("Cambodia", "Ecstasy-type substances", "Retail", 2018)
    assert row["Typical_USD"] == "" and row["Unit"] == "tablet"
    expected = (float(row["Minimum_USD"]) + float(row["Maximum_USD"])) / 2 / ECSTASY_KG  # 25 USD a tablet
    kh = price_table("KH").set_index(["drug", "year"])
    assert kh.loc[("mdma", 2018), "usd_per_kg"] == pytest.approx(expected)
    assert kh.loc[("mdma", 2018), "note"] == "KH price of 2018"


def test_gaps_are_filled_from_the_nearest_year_then_the_neighbours() -> None:
    kh = price_table("KH").set_index(["drug", "year"])
    # Cambodia published no heroin price; Thailand's nearest to 2020 are 2019 and 2021: the later wins
    th = unodc_row("Thailand", "Heroin", "Retail", 2021)
    assert kh.loc[("heroin", 2020), "usd_per_kg"] == pytest.approx(float(th["Typical_USD"]) * 1000)
    assert kh.loc[("heroin", 2020), "price_country"] == "TH"
    assert "neighbours" in kh.loc[("heroin", 2020), "note"]
    # crystal: Cambodia 2018 only (10-15 USD a gram), used for every year; unstated form takes its price
    assert kh.loc[("methamphetamine_crystalline", 2022), "usd_per_kg"] == pytest.approx(12_500)
    assert kh.loc[("methamphetamine", 2022), "usd_per_kg"] == pytest.approx(12_500)
    assert "nearest year" in kh.loc[("methamphetamine_crystalline", 2022), "note"]
    assert math.isnan(kh.loc[("happy_water", 2020), "usd_per_kg"])
    assert list(price_table("KH", "wholesale").columns) == ["drug", "year", "usd_per_kg", "price_country", "note"]


def test_rows_without_mass_or_price_have_no_value() -> None:
    frame = pd.DataFrame({"drug": ["happy_water", "heroin"], "mass_kg": [5.0, float("nan")],
                          "occurred_on": pd.to_datetime(["2021-01-01", "2021-01-01"])})
    out = street_value(frame)
    assert out["street_value_usd"].isna().all()
    assert "UNODC" in out.attrs["method"]


def test_bad_level_country_and_frame_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="level"):
        price_table("KH", "street")
    with pytest.raises(InvalidInput, match="no drug prices"):
        price_table("XX")
    with pytest.raises(InvalidInput, match="drug column"):
        street_value(pd.DataFrame({"kg": [1.0]}))
