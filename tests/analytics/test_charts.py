"""Charts: every spec is valid Vega-Lite v6 with its data inline, renders offline, and shows what it should."""

from __future__ import annotations

import json
import re
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import pytest
from jsonschema import Draft7Validator

from narcotrack.analytics import charts, geo

MONTHS = pd.date_range("2022-01-01", periods=30, freq="MS")


def _schema_errors(spec: dict[str, Any]) -> list[str]:
    schema = alt.vegalite.v6.schema.core.load_schema()
    return [e.message for e in Draft7Validator(schema).iter_errors(spec)]


def _urls(node: Any) -> list[str]:
    """Every "url" anywhere in a spec (inline data has none)."""
    if isinstance(node, dict):
        found = [str(node["url"])] if "url" in node else []
        return found + [u for v in node.values() for u in _urls(v)]
    if isinstance(node, list):
        return [u for v in node for u in _urls(v)]
    return []


def _values(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The inline data sets of a spec (top level, layers, facets)."""
    out = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and "values" in data:
                out.append(data["values"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    out.extend(spec.get("datasets", {}).values())
    return out


def _marks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "mark" in node:
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    return found


def _trend() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = [{"period": p, "drug": d, "seizures": int(rng.poisson(5 + 10 * i)), "kg": float(i)}
            for i, d in enumerate(["heroin", "ketamine", "mdma", "methamphetamine_tablets", "cannabis_herb"])
            for p in MONTHS]
    return pd.DataFrame(rows)


def _forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = pd.DataFrame({"drug": "heroin", "period": MONTHS, "y": np.arange(30.0)})
    future = pd.date_range("2024-07-01", periods=6, freq="MS")
    fc = pd.DataFrame({"drug": "heroin", "period": future, "model": "AutoETS", "point": 31.0, "lo_80": 27.0,
                       "hi_80": 35.0, "lo_95": 24.5, "hi_95": 37.5})
    return history, fc


def _hotspots() -> pd.DataFrame:
    codes = geo.area_names("province")["code"]
    clusters = ["hot" if c in {"KH-01", "KH-22"} else "cold" if c == "KH-11" else "none" for c in codes]
    return pd.DataFrame({"code": codes, "name_en": codes, "value": np.arange(len(codes), dtype=float),
                         "gi_z": 0.0, "p_value": 0.5, "q_value": 0.5, "cluster": clusters})


def _all_specs() -> dict[str, dict[str, Any]]:
    history, fc = _forecast()
    anomaly = history.rename(columns={"y": "observed"}).assign(expected=15.0, lower=5.0, upper=25.0)
    anomaly["flagged"] = anomaly["observed"] > 25
    nodes = pd.DataFrame({"code": ["MM", "LA", "PT-KH-POIPET", "VN"], "lat": [21.9, 19.8, 13.66, 14.0],
                          "lon": [95.9, 102.5, 102.56, 108.3], "name_en": ["Myanmar", "Laos", "Poipet", "Viet Nam"]})
    edges = pd.DataFrame({"source": ["MM", "LA", "PT-KH-POIPET"], "target": ["LA", "PT-KH-POIPET", "VN"],
                          "source_stage": ["producing", "departure", "entry"],
                          "target_stage": ["departure", "entry", "destination"],
                          "seizures": [10, 8, 5], "kg": [100.0, 50.0, 20.0]})
    compare = pd.DataFrame({"stratum": "all", "measure": ["kg", "persons", "network_share"], "joint_n": 12,
                            "single_n": 20, "joint_mean": [5.0, 3.0, 0.5], "single_mean": [2.0, 2.0, 0.4],
                            "difference": [3.0, 1.0, 0.1], "ci_low": [0.5, -0.2, -0.1], "ci_high": [6.0, 2.5, 0.3]})
    shapes = geo.province_geojson()
    values = pd.DataFrame({"code": geo.area_names("province")["code"], "value": np.arange(25.0)})
    return {
        "time_series": charts.time_series(_trend(), y="seizures", group=("drug",), title="Seizures"),
        "forecast": charts.forecast_chart(history, fc, keys=("drug",), title="Forecast"),
        "forecast_two": charts.forecast_chart(pd.concat([history, history.assign(drug="mdma")]),
                                              pd.concat([fc, fc.assign(drug="mdma")]), keys=("drug",)),
        "anomaly": charts.anomaly_chart(anomaly, keys=("drug",), title="Alerts"),
        "choropleth": charts.choropleth(values, shapes, title="Seizures by province"),
        "hotspots": charts.hotspot_map(_hotspots(), shapes, title="Hot spots"),
        "hotspots_districts": charts.hotspot_map(
            pd.DataFrame({"code": ["KH-1201", "KH-0102"], "name_en": ["a", "b"], "value": [3.0, 1.0],
                          "gi_z": [2.5, 0.1], "p_value": [0.01, 0.9], "q_value": [0.02, 0.9],
                          "cluster": ["hot", "none"]}),
            shapes, centroids=geo.district_centroids()[["code", "lat", "lon"]]),
        "flow_map": charts.flow_map(edges, nodes, title="Flows"),
        "bar": charts.bar_chart(pd.DataFrame({"corridor": ["MM → LA → KH", "LA → KH"], "seizures": [9, 4],
                                              "kg": [1.0, 2.0]}), category="corridor", value="seizures",
                                extra_tooltip=("kg",)),
        "operations": charts.operations_chart(compare, title="Joint − single"),
    }


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, Any]]:
    return _all_specs()


NAMES = ["time_series", "forecast", "forecast_two", "anomaly", "choropleth", "hotspots", "hotspots_districts",
         "flow_map", "bar", "operations"]


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_valid_vega_lite_v6_with_inline_data(specs: dict[str, dict[str, Any]], name: str) -> None:
    spec = specs[name]
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")
    assert _schema_errors(spec) == []
    assert _urls(spec) == []  # data inline: drawing fetches nothing
    assert _values(spec) and all(len(v) > 0 for v in _values(spec))
    json.dumps(spec, allow_nan=False)  # plain JSON: no NaN, no Timestamp


@pytest.mark.parametrize("name", NAMES)
def test_spec_renders_to_svg_offline(specs: dict[str, dict[str, Any]], name: str) -> None:
    svg = charts.to_svg(specs[name])
    assert svg.lstrip().startswith("<svg")
    assert svg.count("<path") >= 3


def test_png_is_a_png(specs: dict[str, dict[str, Any]]) -> None:
    png = charts.to_png(specs["bar"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_rendering_refuses_to_fetch_data() -> None:
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "mark": "point",
            "data": {"url": "http://127.0.0.1:9/data.json"},
            "encoding": {"x": {"field": "a", "type": "quantitative"}}}
    with pytest.raises(Exception, match=r"(?i)url|access|allowed"):
        charts.to_svg(spec)


def test_khmer_title_is_kept_as_text() -> None:
    spec = charts.bar_chart(pd.DataFrame({"drug": ["heroin"], "seizures": [3]}), category="drug",
                            value="seizures", title="ការរឹបអូស", labels={"seizures": "ចំនួន"})
    svg = charts.to_svg(spec)
    assert "ការរឹបអូស" in svg and "ចំនួន" in svg


def test_time_series_keeps_the_top_groups(specs: dict[str, dict[str, Any]]) -> None:
    spec = charts.time_series(_trend(), y="seizures", group=("drug",), top=2, labels={"series": "Drug"},
                              names={"cannabis_herb": "Cannabis herb"})
    rows = _values(spec)[0]
    # seizures grow with the drug's position in the list: the last two have the largest totals
    assert {r["Drug"] for r in rows} == {"Cannabis herb", "methamphetamine_tablets"}
    assert len(rows) == 2 * len(MONTHS)
    assert rows[0]["period"] == "2022-01-01"


def test_forecast_spec_holds_both_interval_bands(specs: dict[str, dict[str, Any]]) -> None:
    spec = specs["forecast"]
    areas = [m["encoding"] for m in _marks(spec) if (m["mark"]["type"] if isinstance(m["mark"], dict)
                                                     else m["mark"]) == "area"]
    bands = {(e["y"]["field"], e["y2"]["field"]) for e in areas}
    assert bands == {("lo_80", "hi_80"), ("lo_95", "hi_95")}
    rows = [r for r in _values(spec)[0] if r["part"] == "forecast"]
    assert len(rows) == 6 and rows[0]["period"] == "2024-07-01"
    assert (rows[0]["lo_95"], rows[0]["lo_80"], rows[0]["point"], rows[0]["hi_80"], rows[0]["hi_95"]) == (
        24.5, 27.0, 31.0, 35.0, 37.5)
    history = [r for r in _values(spec)[0] if r["part"] == "history"]
    assert len(history) == 30 and history[-1]["y"] == 29.0
    assert "facet" in specs["forecast_two"]  # two series: one panel each


def test_choropleth_has_the_25_provinces_with_their_values(specs: dict[str, dict[str, Any]]) -> None:
    features = _values(specs["choropleth"])[0]
    assert len(features) == 25
    by_code = {f["properties"]["code"]: f["properties"] for f in features}
    codes = list(geo.area_names("province")["code"])
    assert set(by_code) == set(codes)
    assert by_code[codes[11]]["value"] == 11.0
    assert by_code["KH-12"]["name"] == "Phnom Penh"
    assert specs["choropleth"]["projection"]["type"] == "mercator"


def test_hotspot_map_colours_follow_the_clusters(specs: dict[str, dict[str, Any]]) -> None:
    spec = specs["hotspots"]
    scale = spec["encoding"]["color"]["scale"]
    colour = dict(zip(scale["domain"], scale["range"], strict=True))
    props = {f["properties"]["code"]: f["properties"] for f in _values(spec)[0]}
    assert colour[props["KH-01"]["cluster_label"]] == charts.CLUSTER_COLOURS["hot"]
    assert colour[props["KH-11"]["cluster_label"]] == charts.CLUSTER_COLOURS["cold"]
    assert colour[props["KH-12"]["cluster_label"]] == charts.CLUSTER_COLOURS["none"]


def test_rings_are_wound_for_d3() -> None:
    """d3-geo fills the outside of a counter-clockwise outer ring (the globe minus the area): every outer
    ring must come out clockwise, whichever way the file wound it."""
    ccw = [[100.0, 10.0], [101.0, 10.0], [101.0, 11.0], [100.0, 11.0], [100.0, 10.0]]
    hole_cw = [[100.2, 10.2], [100.2, 10.8], [100.8, 10.8], [100.8, 10.2], [100.2, 10.2]]
    for outer in (ccw, ccw[::-1]):
        shapes = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"code": "X"},
             "geometry": {"type": "Polygon", "coordinates": [outer, hole_cw]}}]}
        out = charts._features(shapes, {})[0]["geometry"]["coordinates"]
        assert charts._area(out[0]) < 0 < charts._area(out[1])


def _shape_boxes(svg: str) -> list[tuple[float, float, float, float]]:
    """Bounding boxes of the geoshape paths of a rendered map."""
    group = svg.split('class="mark-shape', 1)[1].split("</g>", 1)[0]
    boxes = []
    for d in re.findall(r'<path[^>]* d="([^"]+)"', group):
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", d)]
        xs, ys = nums[0::2], nums[1::2]
        boxes.append((min(xs), min(ys), max(xs), max(ys)))
    return boxes


def test_province_map_fills_provinces_not_the_globe(specs: dict[str, dict[str, Any]]) -> None:
    """Wound the RFC 7946 way, every province would be drawn as the whole view."""
    boxes = _shape_boxes(charts.to_svg(specs["choropleth"]))
    assert len(boxes) == 25
    view = charts.MAP_SIZE * charts.MAP_SIZE
    sizes = sorted((x1 - x0) * (y1 - y0) / view for x0, y0, x1, y1 in boxes)
    assert sizes[12] < 0.1  # the median province covers a small part of the map
    assert sizes[-1] < 0.5


def test_flow_map_draws_edges_between_known_nodes_only() -> None:
    nodes = pd.DataFrame({"code": ["MM", "LA"], "lat": [21.9, 19.8], "lon": [95.9, 102.5],
                          "name_en": ["Myanmar", "Laos"]})
    edges = pd.DataFrame({"source": ["MM", "LA"], "target": ["LA", "XX"], "source_stage": "departure",
                          "target_stage": "transit", "seizures": [3, 2], "kg": [1.0, 1.0]})
    spec = charts.flow_map(edges, nodes)
    rules = next(m for m in spec["layer"] if m["mark"]["type"] == "rule")
    assert [(r["source"], r["target"], r["s_lon"], r["t_lat"]) for r in rules["data"]["values"]] == [
        ("MM", "LA", 95.9, 19.8)]
    assert spec["projection"]["type"] == "mercator"
    outline = next(m for m in spec["layer"] if m["mark"]["type"] == "geoshape")["data"]["values"]
    assert "KH" in {f["properties"]["code"] for f in outline}


def test_operations_chart_has_a_panel_per_measure(specs: dict[str, dict[str, Any]]) -> None:
    spec = specs["operations"]
    assert spec["facet"]["column"]["field"] == "measure_label"
    assert spec["resolve"]["scale"]["x"] == "independent"
    rows = _values(spec)[0]
    assert [(r["measure"], r["ci_low"], r["ci_high"]) for r in rows] == [
        ("kg", 0.5, 6.0), ("persons", -0.2, 2.5), ("network_share", -0.1, 0.3)]


def test_prepared_outlines_draw_the_same_map() -> None:
    values = pd.DataFrame({"code": geo.area_names("province")["code"], "value": np.arange(25.0)})
    raw = charts.choropleth(values, geo.province_geojson())
    ready = charts.choropleth(values, charts.prepared(geo.province_geojson()))
    assert raw == ready
    assert charts.region_outline()[charts.PREPARED] == 2


def test_simplified_outlines_are_lighter_and_still_wound_for_d3() -> None:
    raw = charts.prepared(geo.province_geojson())
    light = charts.prepared(geo.province_geojson(), tolerance=0.005)
    assert len(json.dumps(light)) < len(json.dumps(raw)) / 2
    assert [f["properties"]["code"] for f in light["features"]] == [f["properties"]["code"] for f in raw["features"]]
    for f in light["features"]:
        polygons = [f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Polygon" else f["geometry"]["coordinates"]
        assert all(charts._area(p[0]) < 0 for p in polygons)
    svg = charts.to_svg(charts.choropleth(pd.DataFrame({"code": ["KH-12"], "value": [1.0]}), light))
    assert len(_shape_boxes(svg)) == 25  # every province is drawn, in grey, and the one with a value
    assert svg.count('fill="#eeeeee"') == 25 and svg.count("name: Battambang") == 1  # over it in colour
    assert svg.count("name: Phnom Penh") == 2
