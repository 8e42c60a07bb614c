"""Charts of the analysis tables as Vega-Lite specs (plain dicts), built with Altair.

One spec serves the web page (drawn in the browser by vega-embed from the spec inlined in the page) and the
printed report (rendered to SVG or PNG on the server by vl-convert). So every spec carries its data inline
(``data.values``), never a URL: nothing is fetched when a chart is drawn, which keeps narcotrack usable
off-line. Titles and axis labels are passed in by the caller, already translated; the functions here hold
no user-facing text of their own. Dates travel as ``YYYY-MM-DD`` strings and are read as UTC, so a period
shows as the same day in every time zone.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any, Final, cast

import altair as alt
import pandas as pd

Spec = dict[str, Any]
Labels = Mapping[str, str] | None

VL_VERSION = "6.4"  # the Vega-Lite library vl-convert uses: the schema Altair 6.3 writes
WIDTH = 640
HEIGHT = 300
MAP_SIZE = 440
DATE: Final = "utcyearmonthdate"
CLUSTER_COLOURS = {"hot": "#c0392b", "cold": "#2e6fba", "none": "#d9d9d9"}
# Mainland South-East Asia and its neighbours, the part of the world where the routes through Cambodia run:
# the flow map shows this window; corridors to farther destinations leave it at the edge.
REGION = {"type": "Feature", "properties": {},
          "geometry": {"type": "MultiPoint", "coordinates": [[92.0, 0.5], [122.0, 27.0]]}}


@cache
def _region() -> dict[str, Any]:
    path = resources.files("narcotrack.analytics") / "data" / "region_countries.geojson"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def region_outline() -> dict[str, Any]:
    """Country outlines of South and South-East Asia (Natural Earth, public domain; see
    ``data/ATTRIBUTION-naturalearth-region.md``), prepared: the background of the flow map."""
    return _region_prepared()


@cache
def _region_prepared() -> dict[str, Any]:
    return prepared(_region(), digits=2)


def _label(labels: Labels, name: str) -> str:
    return (labels or {}).get(name, name)


def _value(v: Any) -> Any:
    """One cell as JSON: dates as YYYY-MM-DD, missing as null, numpy scalars as Python numbers."""
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as the list of JSON objects Vega-Lite reads inline."""
    cols = list(frame.columns)
    return [{c: _value(v) for c, v in zip(cols, row, strict=True)} for row in frame.itertuples(index=False)]


class _Inline:
    """Inline data kept out of Altair's validating walk of the chart (slow on thousands of rows and on
    GeoJSON outlines: seconds per map) and put back into the finished spec, which is the same spec, built in
    a fraction of the time. One instance per chart."""

    KEY = "__inline__"

    def __init__(self) -> None:
        self.sets: dict[str, list[Any]] = {}

    def __call__(self, values: pd.DataFrame | list[Any]) -> alt.Data:
        key = str(len(self.sets))
        self.sets[key] = records(values) if isinstance(values, pd.DataFrame) else list(values)
        return alt.Data(values=[{self.KEY: key}])

    def spec(self, chart: alt.TopLevelMixin) -> Spec:
        spec: Spec = chart.to_dict()  # validates against the Vega-Lite schema
        self._fill(spec)
        return spec

    def _fill(self, node: Any) -> None:
        if isinstance(node, dict):
            values = node.get("values")
            if (isinstance(values, list) and len(values) == 1 and isinstance(values[0], dict)
                    and self.KEY in values[0]):
                node["values"] = self.sets[values[0][self.KEY]]
            for key, value in node.items():
                if key != "values":
                    self._fill(value)
        elif isinstance(node, list):
            for value in node:
                self._fill(value)


def _series_label(frame: pd.DataFrame, group: Sequence[str], names: Mapping[str, str] | None = None) -> pd.Series:
    """One label per row: the group's values (by name where ``names`` has one) joined by " · "."""
    parts = [frame[g].astype(str).map(lambda v: (names or {}).get(v, v)) for g in group]
    if len(parts) == 1:
        return parts[0]
    return pd.concat(parts, axis=1).agg(" · ".join, axis=1)


def top_groups(frame: pd.DataFrame, group: Sequence[str], value: str, top: int) -> pd.DataFrame:
    """The rows of the ``top`` groups with the largest total ``value`` (all rows when there are fewer)."""
    if not group or frame.empty:
        return frame
    totals = frame.groupby(list(group), dropna=False)[value].sum().nlargest(top)
    keep = pd.MultiIndex.from_frame(totals.index.to_frame()) if len(group) > 1 else totals.index
    key = pd.MultiIndex.from_frame(frame[list(group)]) if len(group) > 1 else frame[group[0]]
    return frame[key.isin(keep)]


def time_series(frame: pd.DataFrame, *, y: str, x: str = "period", group: Sequence[str] = (), top: int = 8,
                title: str = "", labels: Labels = None, names: Mapping[str, str] | None = None,
                date_format: str = "%b %Y") -> Spec:
    """Lines of ``y`` over ``x``, one per group (the ``top`` largest groups by total), with tooltips.

    ``names`` maps group values (codes) to the names shown in the legend; ``date_format`` is a d3
    time format for the axis ("%d %b %Y" for weeks)."""
    inline = _Inline()
    group = tuple(group)
    df = top_groups(frame, group, y, top)
    data = df[[x, y]].copy()
    series = _label(labels, "series")
    if group:
        data[series] = _series_label(df, group, names)
    tooltip = [alt.Tooltip(f"{x}:T", timeUnit=DATE, title=_label(labels, x)),
               alt.Tooltip(f"{y}:Q", title=_label(labels, y), format=",.4~f")]
    enc: dict[str, Any] = {
        "x": alt.X(f"{x}:T", timeUnit=DATE, title=_label(labels, x), axis=alt.Axis(format=date_format)),
        "y": alt.Y(f"{y}:Q", title=_label(labels, y)),
    }
    if group:
        enc["color"] = alt.Color(f"{series}:N", title=series, legend=alt.Legend(orient="bottom", columns=3))
        tooltip.insert(0, alt.Tooltip(f"{series}:N", title=series))
    chart = alt.Chart(inline(data), title=title).mark_line(point=len(data) < 200).encode(
        **enc, tooltip=tooltip).properties(width=WIDTH, height=HEIGHT)
    return inline.spec(chart)


def forecast_chart(history: pd.DataFrame, forecasts: pd.DataFrame, *, keys: Sequence[str] = (),
                   title: str = "", labels: Labels = None, names: Mapping[str, str] | None = None) -> Spec:
    """History (line), forecast (dashed line) and its 80 % and 95 % prediction intervals (bands), one
    panel per series when there are several."""
    inline = _Inline()
    keys = tuple(keys)
    series = _label(labels, "series")
    hist = history[[*keys, "period", "y"]].copy()
    fc = forecasts[[*keys, "period", "point", "lo_80", "hi_80", "lo_95", "hi_95"]].copy()
    rows = pd.concat([hist.assign(part="history"), fc.assign(part="forecast")], ignore_index=True)
    rows[series] = _series_label(rows, keys, names) if keys else ""
    rows = rows.drop(columns=list(keys))
    x = alt.X("period:T", timeUnit=DATE, title=_label(labels, "period"), axis=alt.Axis(format="%b %Y"))
    value_title = _label(labels, "y")
    is_fc = alt.datum.part == "forecast"
    base = alt.Chart()
    band95 = base.mark_area(opacity=0.18, color="#0b5cad").encode(
        x=x, y=alt.Y("lo_95:Q", title=value_title), y2="hi_95:Q",
        tooltip=[alt.Tooltip("period:T", timeUnit=DATE, title=_label(labels, "period")),
                 alt.Tooltip("lo_95:Q", format=",.1f", title=_label(labels, "lo_95")),
                 alt.Tooltip("hi_95:Q", format=",.1f", title=_label(labels, "hi_95"))],
    ).transform_filter(is_fc)
    band80 = base.mark_area(opacity=0.35, color="#0b5cad").encode(
        x=x, y="lo_80:Q", y2="hi_80:Q",
        tooltip=[alt.Tooltip("period:T", timeUnit=DATE, title=_label(labels, "period")),
                 alt.Tooltip("lo_80:Q", format=",.1f", title=_label(labels, "lo_80")),
                 alt.Tooltip("hi_80:Q", format=",.1f", title=_label(labels, "hi_80"))],
    ).transform_filter(is_fc)
    line = base.mark_line(color="#1d2733").encode(
        x=x, y="y:Q", tooltip=[alt.Tooltip("period:T", timeUnit=DATE, title=_label(labels, "period")),
                               alt.Tooltip("y:Q", format=",.4~f", title=value_title)],
    ).transform_filter(alt.datum.part == "history")
    point = base.mark_line(color="#0b5cad", strokeDash=[5, 3], point=True).encode(
        x=x, y="point:Q", tooltip=[alt.Tooltip("period:T", timeUnit=DATE, title=_label(labels, "period")),
                                   alt.Tooltip("point:Q", format=",.1f", title=_label(labels, "point"))],
    ).transform_filter(is_fc)
    layered = alt.layer(band95, band80, line, point, data=inline(rows))
    n_series = rows[series].nunique()
    if n_series > 1:
        chart: alt.TopLevelMixin = layered.properties(width=WIDTH, height=160).facet(
            row=alt.Row(f"{series}:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            title=title).resolve_scale(y="independent")
    else:
        chart = layered.properties(width=WIDTH, height=HEIGHT, title=title)
    return inline.spec(chart)


def anomaly_chart(frame: pd.DataFrame, *, keys: Sequence[str] = (), title: str = "", labels: Labels = None,
                  names: Mapping[str, str] | None = None) -> Spec:
    """Observed counts against the expected band (lower–upper) with the flagged months marked, one panel per
    series (give the chart only the series to show)."""
    inline = _Inline()
    keys = tuple(keys)
    series = _label(labels, "series")
    df = frame[[*keys, "period", "observed", "expected", "lower", "upper", "flagged"]].copy()
    df[series] = _series_label(df, keys, names) if keys else ""
    df = df.drop(columns=list(keys))
    df["flagged"] = df["flagged"].astype(bool)
    x = alt.X("period:T", timeUnit=DATE, title=_label(labels, "period"), axis=alt.Axis(format="%b %Y"))
    tip = [alt.Tooltip("period:T", timeUnit=DATE, title=_label(labels, "period")),
           alt.Tooltip("observed:Q", format=",.4~f", title=_label(labels, "observed")),
           alt.Tooltip("expected:Q", format=",.1f", title=_label(labels, "expected")),
           alt.Tooltip("upper:Q", format=",.1f", title=_label(labels, "upper"))]
    base = alt.Chart()
    band = base.mark_area(opacity=0.25, color="#8aa9c8").encode(
        x=x, y=alt.Y("lower:Q", title=_label(labels, "observed")), y2="upper:Q")
    expected = base.mark_line(color="#5b6775", strokeDash=[4, 3]).encode(x=x, y="expected:Q")
    observed = base.mark_line(color="#1d2733").encode(x=x, y="observed:Q", tooltip=tip)
    flagged = base.mark_point(color="#c0392b", filled=True, size=80, shape="diamond").encode(
        x=x, y="observed:Q", tooltip=tip).transform_filter(alt.datum.flagged)
    layered = alt.layer(band, expected, observed, flagged, data=inline(df))
    if df[series].nunique() > 1:
        chart: alt.TopLevelMixin = layered.properties(width=WIDTH, height=130).facet(
            row=alt.Row(f"{series}:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")),
            title=title).resolve_scale(y="independent")
    else:
        chart = layered.properties(width=WIDTH, height=HEIGHT, title=title)
    return inline.spec(chart)


def _round(coords: Any, digits: int) -> Any:
    if isinstance(coords, (int, float)):
        return round(float(coords), digits)
    return [_round(c, digits) for c in coords]  # lists or tuples (shapely) in, lists out


def _area(ring: Sequence[Sequence[float]]) -> float:
    """Twice the signed planar area of a ring: positive when it runs counter-clockwise."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0, *_), (x1, y1, *_) in itertools.pairwise(ring))


def _wind(polygon: list[Any]) -> list[Any]:
    """A polygon's rings in d3-geo's order: outer ring clockwise, holes counter-clockwise. GeoJSON files
    follow RFC 7946 (the reverse); d3 would read such an outer ring as the whole globe minus the area."""
    out = []
    for i, ring in enumerate(polygon):
        ccw = _area(ring) > 0
        out.append(ring[::-1] if ccw == (i == 0) else ring)
    return out


def _geometry(geometry: Mapping[str, Any], digits: int) -> dict[str, Any]:
    kind, coords = geometry["type"], _round(geometry["coordinates"], digits)
    if kind == "Polygon":
        coords = _wind(coords)
    elif kind == "MultiPolygon":
        coords = [_wind(p) for p in coords]
    return {"type": kind, "coordinates": coords}


PREPARED = "narcotrack_prepared"  # marks a collection whose geometry ``prepared`` already rounded and wound


def prepared(geojson: Mapping[str, Any], digits: int = 3, tolerance: float = 0.0) -> dict[str, Any]:
    """The collection with its outlines simplified (Douglas-Peucker, ``tolerance`` in degrees; 0.005 is
    about half a pixel on a map of Cambodia), coordinates rounded (``digits`` 3: about 100 m) and rings wound
    for d3, once: charts drawn from it skip that work and pages get lighter (a caller may cache it)."""
    from shapely.geometry import mapping, shape

    def simple(geometry: Mapping[str, Any]) -> Mapping[str, Any]:
        if not tolerance:
            return geometry
        out: Mapping[str, Any] = mapping(shape(geometry).simplify(tolerance, preserve_topology=True))
        return out

    features = [{"type": "Feature", "properties": dict(f.get("properties") or {}),
                 "geometry": _geometry(simple(f["geometry"]), digits)} for f in geojson["features"]]
    return {"type": "FeatureCollection", "features": features, PREPARED: digits}


def _features(geojson: Mapping[str, Any], props: Mapping[str, Mapping[str, Any]], *, code: str = "code",
              digits: int = 3) -> list[dict[str, Any]]:
    """The features, rounded and wound (unless ``prepared``), with ``props[code]`` merged into their
    properties."""
    done = geojson.get(PREPARED) is not None
    out = []
    for f in geojson["features"]:
        p = dict(f.get("properties") or {})
        p.update(props.get(str(p.get(code)), {}))
        geometry = f["geometry"] if done else _geometry(f["geometry"], digits)
        out.append({"type": "Feature", "properties": p, "geometry": geometry})
    return out


def choropleth(values: pd.DataFrame, geojson: Mapping[str, Any], *, value: str = "value", code: str = "code",
               name: str = "name_en", title: str = "", labels: Labels = None, scheme: str = "oranges") -> Spec:
    """Provinces coloured by ``value`` (areas without a value are grey), with name and value in a tooltip."""
    inline = _Inline()
    props = {str(r[code]): {"value": _value(r[value])} for _, r in values.iterrows()}
    features = _features(geojson, props)
    for f in features:
        f["properties"].setdefault("value", None)
        f["properties"]["name"] = f["properties"].get(name) or f["properties"].get("name_en")
    tip = [alt.Tooltip("properties.name:N", title=_label(labels, "name")),
           alt.Tooltip("properties.value:Q", title=_label(labels, value), format=",.4~f")]
    data = inline(features)
    # Every area in grey underneath; those with a value coloured on top (Vega-Lite leaves rows with no value
    # out of a colour-encoded mark, which would also shrink the map to the areas that have one).
    ground = alt.Chart().mark_geoshape(fill="#eeeeee", stroke="white", strokeWidth=0.7).encode(tooltip=tip)
    coloured = alt.Chart().mark_geoshape(stroke="white", strokeWidth=0.7).encode(
        color=alt.Color("properties.value:Q", title=_label(labels, value), scale=alt.Scale(scheme=cast(Any, scheme))),
        tooltip=tip).transform_filter("isValid(datum.properties.value)")
    chart = alt.layer(ground, coloured, data=data, title=title).project(type="mercator").properties(
        width=MAP_SIZE, height=MAP_SIZE)
    return inline.spec(chart)


def hotspot_map(hotspots: pd.DataFrame, geojson: Mapping[str, Any], *, name: str = "name_en", title: str = "",
                labels: Labels = None, centroids: pd.DataFrame | None = None) -> Spec:
    """Hot spots (red), cold spots (blue) and the rest (grey). Provinces are filled; for districts (no
    outlines in the package) pass ``centroids`` (code, lat, lon) and they are drawn as dots over the
    province outlines."""
    inline = _Inline()
    order = ["hot", "cold", "none"]
    legend = [_label(labels, c) for c in order]
    cols = ["value", "gi_z", "p_value", "q_value", "cluster"]
    rows = {str(r["code"]): {c: _value(r[c]) for c in cols} | {"cluster_label": _label(labels, str(r["cluster"]))}
            for _, r in hotspots.iterrows()}
    colour = alt.Color("cluster_label:N", title=_label(labels, "cluster"),
                       scale=alt.Scale(domain=legend, range=[CLUSTER_COLOURS[c] for c in order]))
    tip_fields = [("value", ",.4~f"), ("gi_z", ".2f"), ("q_value", ".3f")]
    if centroids is None:
        features = _features(geojson, rows)
        for f in features:
            f["properties"]["name"] = f["properties"].get(name) or f["properties"].get("name_en")
        tip = [alt.Tooltip("properties.name:N", title=_label(labels, "name"))] + [
            alt.Tooltip(f"properties.{c}:Q", title=_label(labels, c), format=fmt) for c, fmt in tip_fields]
        chart: alt.TopLevelMixin = alt.Chart(inline(features), title=title).mark_geoshape(
            stroke="white", strokeWidth=0.7).encode(
            color=alt.Color("properties.cluster_label:N", title=_label(labels, "cluster"),
                            scale=alt.Scale(domain=legend, range=[CLUSTER_COLOURS[c] for c in order])),
            tooltip=tip).project(type="mercator")
    else:
        pts = centroids.merge(hotspots, on="code", how="inner")
        pts["cluster_label"] = pts["cluster"].map(lambda c: _label(labels, str(c)))
        pts["name"] = pts[name] if name in pts.columns else pts.get("name_en_x", pts["code"])
        keep = ["code", "name", "lat", "lon", "cluster_label", *[c for c, _ in tip_fields]]
        outline = alt.Chart(inline(_features(geojson, {}))).mark_geoshape(
            fill="#f4f4f4", stroke="#aaaaaa", strokeWidth=0.5)
        dots = alt.Chart(inline(pts[keep])).mark_circle(size=60, opacity=0.9).encode(
            longitude="lon:Q", latitude="lat:Q", color=colour,
            tooltip=[alt.Tooltip("name:N", title=_label(labels, "name"))] + [
                alt.Tooltip(f"{c}:Q", title=_label(labels, c), format=fmt) for c, fmt in tip_fields])
        chart = alt.layer(outline, dots, title=title).project(type="mercator")
    return inline.spec(chart.properties(width=MAP_SIZE, height=MAP_SIZE))


def flow_map(edges: pd.DataFrame, nodes: pd.DataFrame, *, title: str = "", labels: Labels = None,
             outlines: Sequence[Mapping[str, Any]] | None = None, top: int = 60) -> Spec:
    """Trafficking flows as lines between their nodes (width by kg), nodes as labelled points, over country
    outlines of the region (``outlines``: GeoJSON collections drawn underneath; default
    ``region_outline()``), in a fixed window on mainland South-East Asia: lines to farther places leave it
    at its edge. Only the ``top`` edges by seizures are drawn; edges whose nodes have no coordinates are
    left out (the tables list them all)."""
    inline = _Inline()
    coords = nodes.drop_duplicates("code").set_index("code")[["lat", "lon", "name_en"]]
    e = edges.sort_values(["seizures", "kg"], ascending=False).head(top)
    e = e[e["source"].isin(coords.index) & e["target"].isin(coords.index)].copy()
    for end, prefix in (("source", "s"), ("target", "t")):
        e[f"{prefix}_lat"] = e[end].map(coords["lat"])
        e[f"{prefix}_lon"] = e[end].map(coords["lon"])
        e[f"{prefix}_name"] = e[end].map(coords["name_en"])
    used = pd.unique(pd.concat([e["source"], e["target"]]))
    pts = coords.loc[list(used)].reset_index() if len(used) else coords.head(0).reset_index()
    layers: list[alt.Chart] = []
    for outline in (region_outline(),) if outlines is None else outlines:
        layers.append(alt.Chart(inline(_features(outline, {}, digits=2))).mark_geoshape(
            fill="#f1f3f5", stroke="#b8c0c8", strokeWidth=0.6, clip=True))
    cols = ["source", "target", "s_name", "t_name", "s_lat", "s_lon", "t_lat", "t_lon", "seizures", "kg"]
    layers.append(alt.Chart(inline(e[cols])).mark_rule(opacity=0.65, color="#b03a2e", clip=True).encode(
        longitude="s_lon:Q", latitude="s_lat:Q", longitude2="t_lon:Q", latitude2="t_lat:Q",
        strokeWidth=alt.StrokeWidth("kg:Q", title=_label(labels, "kg"), scale=alt.Scale(range=[1, 9])),
        tooltip=[alt.Tooltip("s_name:N", title=_label(labels, "source")),
                 alt.Tooltip("t_name:N", title=_label(labels, "target")),
                 alt.Tooltip("seizures:Q", title=_label(labels, "seizures"), format=","),
                 alt.Tooltip("kg:Q", title=_label(labels, "kg"), format=",.1f")]))
    layers.append(alt.Chart(inline(pts)).mark_circle(color="#1d2733", opacity=0.85, clip=True).encode(
        longitude="lon:Q", latitude="lat:Q", size=alt.value(45),
        tooltip=[alt.Tooltip("name_en:N", title=_label(labels, "name")),
                 alt.Tooltip("code:N", title=_label(labels, "code"))]))
    countries = pts[pts["code"].str.len() == 2]  # crossing points are named in their tooltips: too close to label
    layers.append(alt.Chart(inline(countries)).mark_text(align="left", dx=5, dy=-4, fontSize=10, clip=True).encode(
        longitude="lon:Q", latitude="lat:Q", text="code:N"))
    chart = alt.layer(*layers, title=title).project(type="mercator", fit=REGION).properties(
        width=WIDTH, height=520)
    return inline.spec(chart)


def bar_chart(frame: pd.DataFrame, *, category: str, value: str, top: int = 20, title: str = "",
              labels: Labels = None, extra_tooltip: Sequence[str] = ()) -> Spec:
    """Horizontal bars of ``value`` per ``category``, largest first (the ``top`` largest)."""
    inline = _Inline()
    df = frame.nlargest(top, value)[[category, value, *extra_tooltip]]
    chart = alt.Chart(inline(df), title=title).mark_bar(color="#0b5cad").encode(
        y=alt.Y(f"{category}:N", sort="-x", title=_label(labels, category), axis=alt.Axis(labelLimit=320)),
        x=alt.X(f"{value}:Q", title=_label(labels, value)),
        tooltip=[alt.Tooltip(f"{category}:N", title=_label(labels, category)),
                 alt.Tooltip(f"{value}:Q", title=_label(labels, value), format=",.4~f"),
                 *[alt.Tooltip(f"{c}:{'Q' if pd.api.types.is_numeric_dtype(df[c]) else 'N'}", title=_label(labels, c))
                   for c in extra_tooltip]],
    ).properties(width=WIDTH - 200, height=alt.Step(18))
    return inline.spec(chart)


def operations_chart(compare: pd.DataFrame, *, title: str = "", labels: Labels = None) -> Spec:
    """The difference joint − single per measure (one panel each, own scale) and stratum: a point and its
    bootstrap 95 % confidence interval, with the line of no difference."""
    inline = _Inline()
    df = compare[["stratum", "measure", "joint_n", "single_n", "joint_mean", "single_mean", "difference",
                  "ci_low", "ci_high"]].copy()
    df["stratum"] = df["stratum"].astype(str)
    df["measure_label"] = df["measure"].map(lambda m: _label(labels, str(m)))
    y = alt.Y("stratum:N", title=_label(labels, "stratum"))
    tip = [alt.Tooltip("stratum:N", title=_label(labels, "stratum"))] + [
        alt.Tooltip(f"{c}:Q", title=_label(labels, c), format=",.3~f")
        for c in ("joint_mean", "single_mean", "difference", "ci_low", "ci_high")] + [
        alt.Tooltip("joint_n:Q", title=_label(labels, "joint_n")),
        alt.Tooltip("single_n:Q", title=_label(labels, "single_n"))]
    base = alt.Chart()
    zero = base.mark_rule(color="#888888", strokeDash=[3, 3]).encode(x=alt.datum(0))
    ci = base.mark_rule(strokeWidth=2, color="#0b5cad").encode(
        x=alt.X("ci_low:Q", title=_label(labels, "difference")), x2="ci_high:Q", y=y, tooltip=tip)
    point = base.mark_point(filled=True, size=70, color="#0b5cad").encode(x="difference:Q", y=y, tooltip=tip)
    chart = alt.layer(zero, ci, point, data=inline(df)).properties(width=220, height=alt.Step(24)).facet(
        column=alt.Column("measure_label:N", title=None), title=title).resolve_scale(x="independent")
    return inline.spec(chart)


@cache
def _register_fonts() -> None:
    """Noto Sans Khmer for server-side rendering: without it Khmer labels come out as empty boxes."""
    import vl_convert

    try:
        font = resources.files("fontpkg_noto_sans_khmer") / "files"
        vl_convert.register_font_directory(str(font))
    except (ModuleNotFoundError, OSError):  # pragma: no cover - the font package is a dependency
        pass


def to_svg(spec: Spec) -> str:
    """The chart as an SVG document, rendered on the server with no network access allowed."""
    import vl_convert

    _register_fonts()
    svg: str = vl_convert.vegalite_to_svg(spec, vl_version=VL_VERSION, allowed_base_urls=[])
    return svg


def to_png(spec: Spec, *, scale: float = 2.0) -> bytes:
    """The chart as a PNG image (``scale`` 2 for print), rendered on the server with no network access."""
    import vl_convert

    _register_fonts()
    png: bytes = vl_convert.vegalite_to_png(spec, vl_version=VL_VERSION, scale=scale, allowed_base_urls=[])
    return png
