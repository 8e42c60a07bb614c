"""Getis-Ord Gi* hotspots: planted clusters are found, random patterns are not (at the chosen FDR)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from narcotrack.analytics import geo, tables
from narcotrack.analytics.hotspots import HOTSPOT_COLUMNS, area_values, hotspots
from narcotrack.errors import InvalidInput

PROVINCES = [f"KH-{n:02d}" for n in range(1, 26)]
# Siem Reap and every province it touches (checked in test_geo): a contiguous north-western block.
NORTH_WEST = {"KH-17", "KH-01", "KH-02", "KH-06", "KH-13", "KH-15", "KH-22"}
# The block the issue names: Banteay Meanchey, Battambang, Pailin, Oddar Meanchey (a chain 24-02-01-22).
BORDER_FOUR = {"KH-01", "KH-02", "KH-24", "KH-22"}


def _values(codes: list[str], planted: set[str], background: float | np.ndarray, high: float) -> pd.DataFrame:
    value = np.where(np.isin(codes, sorted(planted)), high, background).astype(float)
    return pd.DataFrame({"code": codes, "value": value})


def test_area_values_from_a_seizures_frame() -> None:
    frame = pd.DataFrame({
        "incident_id": ["a", "a", "b", "c", "d"],
        "province_code": ["KH-12", "KH-12", "KH-12", "KH-01", None],
        "district_code": ["KH-1201", "KH-1201", "KH-1204", "KH-0110", None],
        "mass_kg": [1.5, np.nan, 2.0, 0.25, 9.0],
    })
    seizures = area_values(frame).set_index("code")["value"]
    assert len(seizures) == 25 and seizures.sum() == 4
    assert seizures["KH-12"] == 3 and seizures["KH-01"] == 1 and seizures["KH-23"] == 0
    incidents = area_values(frame, measure="incidents").set_index("code")["value"]
    assert incidents["KH-12"] == 2
    kg = area_values(frame, measure="kg").set_index("code")["value"]
    assert kg["KH-12"] == 3.5 and kg["KH-01"] == 0.25
    districts = area_values(frame, level="district")
    assert len(districts) == 210
    assert districts.set_index("code").loc["KH-1201", "value"] == 2
    assert districts.attrs["unplaced"] == 1


def test_area_values_from_a_trend_frame() -> None:
    trend = pd.DataFrame({
        "period": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01"]),
        "province": ["KH-12", "KH-12", "KH-02"],
        "drug": ["heroin", "heroin", "ketamine"],
        "seizures": [3, 4, 5],
        "kg": [1.0, 2.0, 0.5],
    })
    values = area_values(trend, measure="kg").set_index("code")["value"]
    assert values["KH-12"] == 3.0 and values["KH-02"] == 0.5 and values.sum() == 3.5
    with pytest.raises(InvalidInput):
        area_values(trend, measure="tonnes")
    with pytest.raises(InvalidInput):
        area_values(trend, level="commune")
    with pytest.raises(InvalidInput):
        area_values(pd.DataFrame({"x": [1]}))


def test_planted_province_hotspot_is_found() -> None:
    result = hotspots(_values(PROVINCES, NORTH_WEST, 20.0, 200.0), permutations=9999, seed=1)
    assert list(result.columns) == list(HOTSPOT_COLUMNS)
    hot = set(result.loc[result["cluster"] == "hot", "code"])
    assert "KH-17" in hot  # Siem Reap: itself and all six neighbours planted
    assert hot <= NORTH_WEST
    # A flat background ties in every shuffle: counted in both tails, no area is called cold.
    assert not (result["cluster"] == "cold").any()
    row = result.set_index("code").loc["KH-17"]
    assert row["gi_z"] > 3 and row["q_value"] <= 0.05
    assert "Getis-Ord Gi*" in result.attrs["method"] and "Benjamini" in result.attrs["method"]


def test_border_block_is_found_by_the_normal_test() -> None:
    rng = np.random.default_rng(7)
    values = _values(PROVINCES, BORDER_FOUR, rng.poisson(20, 25), 200.0)
    result = hotspots(values, inference="normal").set_index("code")
    hot = set(result.index[result["cluster"] == "hot"])
    assert {"KH-01", "KH-02", "KH-24"} <= hot <= BORDER_FOUR
    assert "normal approximation" in result.attrs["method"]


def test_a_province_with_one_neighbour_cannot_be_significant_by_permutation() -> None:
    # Pailin touches only Battambang: under conditional permutation its one neighbour is one of 24
    # values, so at least 1 shuffle in 24 ties the observed sum and the two-sided p stays >= 2/24.
    values = _values(PROVINCES, BORDER_FOUR, 20.0, 200.0)
    values.loc[values["code"] == "KH-02", "value"] = 1000.0  # Battambang, the largest value
    result = hotspots(values, permutations=9999, seed=3).set_index("code")
    assert result.loc["KH-24", "gi_z"] > 2
    assert result.loc["KH-24", "p_value"] >= 0.07
    assert result.loc["KH-24", "cluster"] == "none"


def test_random_patterns_are_not_flagged() -> None:
    flags = 0
    for draw in range(40):
        rng = np.random.default_rng(1000 + draw)
        counts = rng.negative_binomial(2, 0.1, 25) if draw % 2 else rng.poisson(20, 25)
        result = hotspots(pd.DataFrame({"code": PROVINCES, "value": counts}), seed=draw)
        flags += int((result["cluster"] != "none").sum())
    assert flags <= 4  # FDR 0.05 over 40 independent null maps: about 2 expected, at most


def test_planted_district_hotspot_is_found_and_random_districts_are_not() -> None:
    codes = geo.area_names("district")["code"].tolist()
    w = geo.district_weights(k=5)
    core = {"KH-0102", *w.neighbors["KH-0102"]}  # Mangkul Bourei and its 5 nearest district points
    planted = core | {n for c in core for n in w.neighbors[c]}
    result = hotspots(_values(codes, planted, 5.0, 50.0), level="district", seed=2)
    assert result.attrs["method"].count("9999 permutations") == 1
    hot = set(result.loc[result["cluster"] == "hot", "code"])
    assert core <= hot
    assert hot <= planted | {n for c in planted for n in w.neighbors[c]}
    assert not (result["cluster"] == "cold").any()
    flags = 0
    for draw in range(20):
        counts = np.random.default_rng(2000 + draw).poisson(5, len(codes))
        random = hotspots(pd.DataFrame({"code": codes, "value": counts}), level="district",
                          permutations=999, seed=draw)
        flags += int((random["cluster"] != "none").sum())
    assert flags <= 2


def test_permutations_are_reproducible_with_a_seed() -> None:
    values = pd.DataFrame({"code": PROVINCES, "value": np.random.default_rng(5).poisson(10, 25)})
    a = hotspots(values, seed=11)
    b = hotspots(values, seed=11)
    pd.testing.assert_frame_equal(a, b)


def test_flat_or_empty_values_flag_nothing() -> None:
    result = hotspots(pd.DataFrame({"code": ["KH-12"], "value": [0.0]}))
    assert len(result) == 25 and (result["cluster"] == "none").all() and result["gi_z"].isna().all()


def test_bad_values_are_refused() -> None:
    with pytest.raises(InvalidInput):
        hotspots(pd.DataFrame({"code": ["KH-12"], "value": [-1.0]}))
    with pytest.raises(InvalidInput):
        hotspots(pd.DataFrame({"code": ["KH-99"], "value": [1.0]}))
    with pytest.raises(InvalidInput):
        hotspots(pd.DataFrame({"code": ["KH-12", "KH-12"], "value": [1.0, 2.0]}))
    with pytest.raises(InvalidInput):
        hotspots(pd.DataFrame({"area": ["KH-12"]}))
    with pytest.raises(InvalidInput):
        hotspots(pd.DataFrame({"code": ["KH-12"], "value": [1.0]}), fdr=0)
    with pytest.raises(InvalidInput):
        hotspots(pd.DataFrame({"code": ["KH-12"], "value": [1.0]}), inference="bayes")


def test_hotspots_on_the_demo_store(demo_store: Engine) -> None:
    with demo_store.connect() as conn:
        seizures = tables.seizures(conn)
    for level in ("province", "district"):
        values = area_values(seizures, level=level)
        assert values["value"].sum() == seizures[f"{level}_code"].notna().sum()
        result = hotspots(values, level=level)
        assert list(result.columns) == list(HOTSPOT_COLUMNS)
        assert len(result) == (25 if level == "province" else 210)
        assert set(result["cluster"]) <= {"hot", "cold", "none"}
        assert result["q_value"].between(0, 1).all() and (result["q_value"] >= result["p_value"] - 1e-12).all()
