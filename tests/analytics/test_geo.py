"""Province outlines, district points and neighbours, checked against facts of Cambodia's map."""

from __future__ import annotations

import math
from importlib import resources

import pandas as pd
import pytest

from narcotrack.analytics import geo
from narcotrack.errors import InvalidInput
from tests.conftest import shared_data


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(a))


def _at(points: pd.DataFrame, code: str) -> tuple[float, float]:
    return float(points.loc[code, "lat"]), float(points.loc[code, "lon"])


def test_province_geojson_has_the_25_provinces_in_store_codes() -> None:
    fc = geo.province_geojson()
    assert fc["type"] == "FeatureCollection"
    props = [f["properties"] for f in fc["features"]]
    assert [p["code"] for p in props] == [f"KH-{n:02d}" for n in range(1, 26)]
    by_code = {p["code"]: p for p in props}
    assert by_code["KH-12"]["name_en"] == "Phnom Penh"
    assert by_code["KH-12"]["name_km"] == "រាជធានីភ្នំពេញ"
    assert by_code["KH-01"]["iso_3166_2"] == "KH-1"
    assert by_code["KH-01"]["shape_name"] == "Bantey Meanchey"  # geoBoundaries' spelling is kept apart
    assert by_code["KH-01"]["name_en"] == "Banteay Meanchey"
    assert "OpenStreetMap" in fc["attribution"]


def test_province_geojson_is_a_copy() -> None:
    fc = geo.province_geojson()
    fc["features"][0]["properties"]["code"] = "changed"
    assert geo.province_geojson()["features"][0]["properties"]["code"] == "KH-01"


def test_phnom_penh_lies_inside_its_outline() -> None:
    frame = geo.province_frame()
    from shapely.geometry import Point

    assert frame.loc["KH-12", "geometry"].contains(Point(104.916, 11.562))  # Phnom Penh, GeoNames
    assert frame.loc["KH-17", "geometry"].contains(Point(103.860, 13.362))  # Siem Reap town


def test_province_adjacency_matches_the_map() -> None:
    nb = {k: set(v) for k, v in geo.province_weights().neighbors.items()}
    assert nb["KH-12"] == {"KH-08"}  # Phnom Penh is enclosed by Kandal
    assert nb["KH-09"] == {"KH-05", "KH-15", "KH-18"}  # Koh Kong: Kampong Speu, Pursat, Preah Sihanouk
    assert nb["KH-23"] == {"KH-07"}  # Kep: Kampot only
    assert nb["KH-24"] == {"KH-02"}  # Pailin: Battambang only (else Thailand)
    assert nb["KH-01"] == {"KH-02", "KH-17", "KH-22"}  # Banteay Meanchey
    assert nb["KH-22"] == {"KH-01", "KH-13", "KH-17"}  # Oddar Meanchey
    assert {"KH-14", "KH-25"} == nb["KH-20"]  # Svay Rieng: Prey Veng, Tboung Khmum
    assert all(b in nb and a in nb[b] for a, bs in nb.items() for b in bs)  # symmetric
    assert len(nb) == 25 and all(nb.values())  # no islands


def test_district_centroids_cover_the_gazetteer() -> None:
    points = geo.district_centroids()
    assert list(points.columns) == list(geo.CENTROID_COLUMNS)
    assert points["code"].tolist() == geo.area_names("district")["code"].tolist()
    assert len(points) == 210
    assert set(points["located"]) == {"towns", "province"}
    assert (points["code"].str[:5] == points["province_code"]).all()
    assert points["lat"].between(10.0, 15.0).all() and points["lon"].between(102.0, 108.0).all()
    towns = points[points["located"] == "towns"]
    assert (towns["n_towns"] >= 1).all() and (towns["geonames_ids"] != "").all()


def test_district_points_sit_where_the_towns_are() -> None:
    points = geo.district_centroids().set_index("code")
    # Known positions (GeoNames): Poipet 13.658 N 102.564 E, Siem Reap 13.362 N 103.860 E.
    assert _km(*_at(points, "KH-0110"), 13.658, 102.564) < 5
    assert _km(*_at(points, "KH-1710"), 13.362, 103.860) < 5


def test_unplaced_districts_share_their_province_centroid() -> None:
    points = geo.district_centroids()
    pp = points[(points["province_code"] == "KH-12") & (points["located"] == "province")]
    assert len(pp) == 9
    assert pp[["lat", "lon"]].nunique().tolist() == [1, 1]
    centre = geo.province_frame().to_crs(geo.METRIC_CRS).centroid.to_crs("EPSG:4326")["KH-12"]
    assert _km(pp["lat"].iloc[0], pp["lon"].iloc[0], centre.y, centre.x) < 0.1


def test_district_points_fall_in_their_province() -> None:
    import geopandas as gpd

    points = geo.district_centroids()
    outlines = geo.province_frame().to_crs(geo.METRIC_CRS)
    pts = gpd.GeoSeries(gpd.points_from_xy(points["lon"], points["lat"]), crs="EPSG:4326").to_crs(geo.METRIC_CRS)
    off_km = [outlines.loc[p, "geometry"].distance(pt) / 1000 for p, pt in zip(points["province_code"], pts, strict=True)]
    assert max(off_km) < 3  # simplified outlines: a town on the border may sit just outside


def test_district_weights_k_nearest() -> None:
    w = geo.district_weights(k=5)
    assert w.n == 210
    assert min(w.cardinalities.values()) >= 5
    # Chamkar Mon and Doun Penh both sit at Phnom Penh's centroid: neighbours of each other.
    assert "KH-1202" in w.neighbors["KH-1201"] and "KH-1201" in w.neighbors["KH-1202"]
    # Poipet's nearest district points are in Banteay Meanchey (and Oddar Meanchey / Battambang), never far.
    points = geo.district_centroids().set_index("code")
    for other in w.neighbors["KH-0110"]:
        assert _km(*_at(points, "KH-0110"), *_at(points, other)) < 100
    with pytest.raises(InvalidInput):
        geo.district_weights(k=0)


def test_shipped_province_file_is_the_derivation_of_geoboundaries() -> None:
    source = shared_data("geo", "khm_adm1_geoboundaries.geojson")
    assert geo.derive_province_geojson(source) == geo.province_geojson()


def test_shipped_district_points_are_the_derivation_of_geonames() -> None:
    source = shared_data("geo", "khm_places_geonames.json")
    derived = geo.derive_district_centroids(source)
    pd.testing.assert_frame_equal(derived, geo.district_centroids(), check_dtype=False)


def test_attribution_files_ship_with_the_data() -> None:
    data = resources.files("narcotrack.analytics") / "data"
    odbl = (data / "ATTRIBUTION-geoboundaries.md").read_text(encoding="utf-8")
    assert "ODbL" in odbl and "OpenStreetMap contributors" in odbl and "geoBoundaries" in odbl
    assert "derived database" in odbl
    cc = (data / "ATTRIBUTION-geonames.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in cc and "GeoNames" in cc
    assert "ODbL" in geo.ATTRIBUTION and "CC BY 4.0" in geo.ATTRIBUTION


def test_unknown_level_is_refused() -> None:
    with pytest.raises(InvalidInput):
        geo.weights("commune")
    with pytest.raises(InvalidInput):
        geo.area_names("village")
