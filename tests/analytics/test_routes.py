"""Routes against known answers: hand-built seizure tables whose flows, corridors, shifts and displacement
are worked out by hand, and the demo store checked against counts taken straight from the database."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from narcotrack.analytics import routes, tables
from narcotrack.analytics.tables import COLUMNS
from narcotrack.errors import InvalidInput


def seizure(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS["seizures"])
    row.update(transit_countries="", country="KH", occurred_on=dt.date(2024, 1, 15), source="manual", mass_kg=1.0)
    row.update(values)
    return row


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([{**r, "incident_id": f"i{n}"} for n, r in enumerate(rows)], columns=list(COLUMNS["seizures"]))
    df["occurred_on"] = pd.to_datetime(df["occurred_on"])
    return df


POIPET_TO_VN = {"producing_country": "MM", "origin_country": "LA", "place_code": "PT-KH-POIPET",
                "place_kind": "border_checkpoint", "destination_country": "VN", "routing": "inbound"}
ROAD_TH = {"producing_country": "MM", "origin_country": "TH", "place_code": "KH-0110", "place_kind": "road",
           "destination_country": "KH"}
IDS_TRANSIT = {"country": "IR", "origin_country": "AF", "destination_country": "TR", "place_code": "IR",
               "source": "unodc_ids"}
IDS_INBOUND = {"country": "MU", "origin_country": "FR", "destination_country": "MU", "place_code": "MU",
               "place_kind": "airport", "source": "unodc_ids"}
SEA_OUT = {"producing_country": "MM", "origin_country": "KH", "transit_countries": "MY", "place_code": "PT-KH-PAS",
           "place_kind": "seaport", "destination_country": "AU", "routing": "outbound"}


@pytest.fixture
def sample() -> pd.DataFrame:
    return frame(
        [seizure(**POIPET_TO_VN, mass_kg=2.0)] * 3
        + [seizure(**ROAD_TH)] * 2
        + [seizure(**IDS_TRANSIT, mass_kg=None)]
        + [seizure(**IDS_INBOUND, mass_kg=0.5)] * 4
        + [seizure(**SEA_OUT, mass_kg=10.0)]
        + [seizure(country="CO", place_code="CO")]  # nothing known about the route: no edge, no corridor
    )


def test_flows_follow_each_path_with_its_stages(sample: pd.DataFrame) -> None:
    edges = routes.flows(sample)
    got = {(r.source, r.target, r.source_stage, r.target_stage): (r.seizures, r.kg) for r in edges.itertuples()}
    assert got == {
        ("MM", "LA", "producing", "departure"): (3, 6.0),
        ("LA", "PT-KH-POIPET", "departure", "entry"): (3, 6.0),
        ("PT-KH-POIPET", "VN", "entry", "destination"): (3, 6.0),
        ("MM", "TH", "producing", "departure"): (2, 2.0),
        ("TH", "KH", "departure", "destination"): (2, 2.0),  # seized in its destination country
        ("AF", "IR", "departure", "transit"): (1, 0.0),  # IDS: seized in Iran, in transit to Turkey
        ("IR", "TR", "transit", "destination"): (1, 0.0),
        ("FR", "MU", "departure", "destination"): (4, 2.0),  # seized in the destination country
        ("MM", "KH", "producing", "departure"): (1, 10.0),  # outbound: the port comes after Cambodia
        ("KH", "PT-KH-PAS", "departure", "entry"): (1, 10.0),
        ("PT-KH-PAS", "MY", "entry", "transit"): (1, 10.0),
        ("MY", "AU", "transit", "destination"): (1, 10.0),
    }
    assert list(edges.columns) == list(routes.FLOWS_COLUMNS)
    assert edges["seizures"].tolist() == sorted(edges["seizures"], reverse=True)
    assert edges.attrs["seizures_routed"] == 11 and "producing" in edges.attrs["method"]


def test_seizing_country_in_the_listed_transit_and_inbound_crossing_before_cambodia() -> None:
    df = frame([seizure(producing_country="MM", origin_country="TH", transit_countries="KH", place_code="PT-KH-POIPET",
                        place_kind="border_checkpoint", destination_country="VN", routing="inbound")])
    got = [(r.source, r.target) for r in routes.flows(df).itertuples()]
    assert sorted(got) == sorted([("MM", "TH"), ("TH", "PT-KH-POIPET"), ("PT-KH-POIPET", "KH"), ("KH", "VN")])


def test_unknown_countries_are_missing_not_a_node() -> None:
    df = frame([seizure(origin_country=None, producing_country="", destination_country=np.nan, country="TH",
                        place_code="TH")] * 5)
    assert routes.flows(df).empty
    assert routes.corridors(df).empty


def test_flow_graph_sums_stages(sample: pd.DataFrame) -> None:
    extra = frame([seizure(country="TH", place_code="TH", producing_country="MM", origin_country="MM",
                           destination_country="LA")])  # MM -> TH as departure -> transit
    graph = routes.flow_graph(routes.flows(pd.concat([sample, extra], ignore_index=True)))
    assert graph.number_of_edges() == 13
    assert graph.edges["MM", "TH"]["seizures"] == 3
    assert sorted(graph.edges["MM", "TH"]["stages"]) == ["departure→transit", "producing→departure"]
    assert graph.nodes["PT-KH-POIPET"]["stages"] == ["entry"]
    assert graph.nodes["MM"]["stages"] == ["producing", "departure"]
    with pytest.raises(InvalidInput):
        routes.flow_graph(pd.DataFrame({"source": []}))


def test_corridors_rank_and_name(sample: pd.DataFrame) -> None:
    table = routes.corridors(sample)
    assert list(table.columns) == list(routes.CORRIDOR_COLUMNS)
    assert table[["rank", "corridor", "seizures"]].values.tolist() == [
        [1, "FR → MU", 4],
        [2, "MM → LA → PT-KH-POIPET → VN", 3],
        [3, "MM → TH → KH", 2],
        [4, "MM → KH → PT-KH-PAS → AU", 1],  # ties broken by kg
        [5, "AF → IR → TR", 1],
    ]
    row = table.set_index("corridor").loc["MM → LA → PT-KH-POIPET → VN"]
    assert (row.producing, row.departure, row.entry, row.destination, row.kg) == ("MM", "LA", "PT-KH-POIPET", "VN", 6.0)
    assert table.set_index("corridor").loc["AF → IR → TR", "transit"] == "IR"
    assert math.isclose(table["share"].sum(), 1.0)
    assert routes.corridors(sample, top=2)["corridor"].tolist() == ["FR → MU", "MM → LA → PT-KH-POIPET → VN"]
    with pytest.raises(InvalidInput):
        routes.corridors(sample, top=0)


def test_crossings(sample: pd.DataFrame) -> None:
    table = routes.crossings(sample)
    assert table[["place_code", "place_kind", "seizures", "kg"]].values.tolist() == [
        ["MU", "airport", 4, 2.0],
        ["PT-KH-POIPET", "border_checkpoint", 3, 6.0],
        ["PT-KH-PAS", "seaport", 1, 10.0],
    ]
    assert routes.crossings(sample, country="KH")["place_code"].tolist() == ["PT-KH-POIPET", "PT-KH-PAS"]
    assert table["rank"].tolist() == [1, 2, 3] and "checkpoints" in table.attrs["method"]


def test_missing_columns_are_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="origin_country"):
        routes.flows(pd.DataFrame({"country": ["KH"]}))


# -- route shifts -------------------------------------------------------------------------------------
def dated(kind: dict[str, Any], days: list[dt.date]) -> list[dict[str, Any]]:
    return [seizure(**kind, occurred_on=d) for d in days]


def spread(year: int, n: int, rng: np.random.Generator) -> list[dt.date]:
    return [dt.date(year, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n)]


def lane(origin: str, dest: str) -> dict[str, Any]:
    return {"producing_country": "MM", "origin_country": origin, "destination_country": dest, "place_code": "KH-12"}


def planted_shifts() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    steady = [lane(o, d) for o in ("TH", "LA", "VN", "CN") for d in ("KH", "AU")]
    for kind in steady:  # the same rate in both years, Poisson noise
        rows += dated(kind, spread(2022, int(rng.poisson(40)), rng))
        rows += dated(kind, spread(2023, int(rng.poisson(40)), rng))
    rows += dated(lane("IN", "KH"), spread(2023, 30, rng))  # new in 2023
    rows += dated(lane("MY", "KH"), spread(2022, 60, rng) + spread(2023, 8, rng))  # declined
    return frame(rows)


def test_a_route_that_appears_in_the_second_period_is_detected() -> None:
    shifts = routes.route_shifts(planted_shifts(), before=routes.period_bounds(2022), after=routes.period_bounds(2023))
    by = shifts.set_index("corridor")
    assert list(shifts.columns) == list(routes.SHIFT_COLUMNS)
    new = by.loc["MM → IN → KH"]
    assert (new.seizures_before, new.seizures_after, new.status, bool(new.new)) == (0, 30, "emerged", True)
    assert new.q_value < 0.05
    gone = by.loc["MM → MY → KH"]
    assert (gone.seizures_before, gone.seizures_after, gone.status) == (60, 8, "declined")
    assert gone.q_value < 0.05 and gone.rate_ratio < 0.25
    steady = by.drop(index=["MM → IN → KH", "MM → MY → KH"])
    assert len(steady) == 8 and set(steady["status"]) == {"steady"}
    assert shifts["status"].tolist()[:2] == ["emerged", "declined"]
    assert "binomial" in shifts.attrs["method"] and "Benjamini" in shifts.attrs["method"]


def test_shift_p_value_and_ratio_by_hand() -> None:
    kind = lane("TH", "KH")
    df = frame(dated(kind, [dt.date(2022, 3, 1)] * 10 + [dt.date(2023, 3, 1)] * 20))
    out = routes.route_shifts(df, before=("2022-01-01", "2022-12-31"), after=("2023-01-01", "2023-12-31"),
                              baseline="days")
    row = out.iloc[0]
    # equal periods: after | total ~ Binomial(30, 1/2); two-sided p = P(X >= 20) + P(X <= 10)
    tail = sum(math.comb(30, k) for k in range(20, 31)) / 2**30
    assert math.isclose(row.p_value, 2 * tail, rel_tol=1e-9)
    assert math.isclose(row.rate_ratio, 20.5 / 10.5)
    assert math.isclose(row.expected_after, 15.0)
    assert row.status == "steady"  # p = 0.099
    # baseline "seizures": the only corridor keeps its share of 100 %, nothing changed
    same = routes.route_shifts(df, before=("2022-01-01", "2022-12-31"), after=("2023-01-01", "2023-12-31"))
    assert math.isclose(same.iloc[0].p_value, 1.0)


def test_shift_periods_are_checked() -> None:
    df = planted_shifts()
    with pytest.raises(InvalidInput, match="overlap"):
        routes.route_shifts(df, before=("2022-01-01", "2022-12-31"), after=("2022-06-01", "2023-06-30"))
    with pytest.raises(InvalidInput, match="no seizures"):
        routes.route_shifts(df, before=("2019-01-01", "2019-12-31"), after=("2023-01-01", "2023-12-31"))
    with pytest.raises(InvalidInput, match="end date"):
        routes.route_shifts(df, before=("2022-12-31", "2022-01-01"), after=("2023-01-01", "2023-12-31"))


# -- displacement -------------------------------------------------------------------------------------
POIPET_KH = {"producing_country": "MM", "origin_country": "TH", "place_code": "PT-KH-POIPET",
             "place_kind": "border_checkpoint", "destination_country": "KH"}
KRIEL_KH = {"producing_country": "MM", "origin_country": "LA", "place_code": "PT-KH-TRAPEANGKRIEL",
            "place_kind": "border_checkpoint", "destination_country": "KH"}
SEA_AU = {"producing_country": "CN", "origin_country": "CN", "place_code": "PT-KH-PAS", "place_kind": "seaport",
          "destination_country": "AU"}


def days(first: str, n: int, step: int = 1) -> list[dt.date]:
    start = dt.date.fromisoformat(first)
    return [start + dt.timedelta(days=i * step) for i in range(n)]


def planted_operation() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = (
        dated(POIPET_KH, days("2024-01-01", 40))  # targeted corridor: 40 before ...
        + dated(POIPET_KH, days("2024-04-01", 5, 10))  # ... 5 after
        + [seizure(**POIPET_KH, occurred_on=d, operation_id="op1") for d in days("2024-03-05", 6, 3)]
        + dated(KRIEL_KH, days("2024-01-10", 5, 9))  # neighbour (same destination): 5 before ...
        + dated(KRIEL_KH, days("2024-04-02", 40))  # ... 40 after: displaced
        + dated(SEA_AU, days("2024-01-01", 10, 5) + days("2024-04-01", 10, 5))  # shares nothing
        + [seizure(**SEA_AU, occurred_on=dt.date(2024, 5, 30))]  # the last day of data
    )
    ops = pd.DataFrame({"operation_id": ["op1"], "name": ["Border Sweep"], "kind": ["bilateral"],
                        "lead_org": ["KH-ADP"], "start_date": pd.to_datetime(["2024-03-01"]),
                        "end_date": pd.to_datetime(["2024-03-31"]), "participants": ["KH-ADP TH-ONCB"],
                        "n_agencies": [2]})
    return frame(rows), ops


def test_displacement_on_a_planted_example() -> None:
    df, ops = planted_operation()
    out = routes.displacement(df, ops, "op1", window_days=60)
    assert list(out.columns) == list(routes.DISPLACEMENT_COLUMNS)
    assert out[["corridor", "role", "seizures_before", "seizures_after", "change"]].values.tolist() == [
        ["MM → TH → PT-KH-POIPET → KH", "targeted", 40, 5, -35],
        ["MM → LA → PT-KH-TRAPEANGKRIEL → KH", "neighbouring", 5, 40, 35],
    ]
    assert out["shared"].tolist() == ["", "destination KH"]
    assert out["change_pct"].tolist() == [-87.5, 700.0]
    # equal windows: after | total ~ Binomial(45, 1/2)
    p = 2 * sum(math.comb(45, k) for k in range(6)) / 2**45
    assert np.allclose(out["p_value"], [p, p])
    assert out.attrs["totals"]["neighbouring"] == {"seizures_before": 5, "seizures_after": 40, "p_value": p}
    assert out.attrs["before"] == ("2024-01-01", "2024-02-29") and out.attrs["after"] == ("2024-04-01", "2024-05-30")
    # windows are shortened equally to the data: 90 days asked, 60 available on both sides
    assert set(routes.displacement(df, ops, "op1", window_days=90)["window_days"]) == {60}
    # only departures shared: the Stung Treng corridor (from LA) is no neighbour
    alone = routes.displacement(df, ops, "op1", window_days=60, shared=("departure",))
    assert alone["role"].tolist() == ["targeted"]


def test_displacement_errors() -> None:
    df, ops = planted_operation()
    with pytest.raises(InvalidInput, match="no operation"):
        routes.displacement(df, ops, "nope")
    with pytest.raises(InvalidInput, match="shared"):
        routes.displacement(df, ops, "op1", shared=("producing",))
    no_route = df.assign(operation_id=None)
    with pytest.raises(InvalidInput, match="no seizure on a known corridor"):
        routes.displacement(no_route, ops, "op1")


# -- coordinates and the demo store -------------------------------------------------------------------
def test_node_coordinates() -> None:
    nodes = routes.node_coordinates()
    assert nodes["code"].is_unique and {"code", "lat", "lon", "name_en"} <= set(nodes.columns)
    at = nodes.set_index("code")
    assert 10 < at.loc["KH", "lat"] < 15 and 102 < at.loc["KH", "lon"] < 108  # inside Cambodia
    assert 5 < at.loc["TH", "lat"] < 21 and 97 < at.loc["TH", "lon"] < 106
    assert 42 < at.loc["FR", "lat"] < 51 and -5 < at.loc["FR", "lon"] < 8  # mainland, not French Guiana
    assert 165 < at.loc["FJ", "lon"] <= 180 or -180 <= at.loc["FJ", "lon"] < -178  # across the antimeridian
    assert (at.loc["PT-KH-POIPET", "lat"], at.loc["PT-KH-POIPET", "lon"]) == (13.65805, 102.56365)
    assert len(nodes[nodes["kind"] == "country"]) > 230
    assert {"KH-12", "KH-0110"} <= set(nodes["code"])  # provinces and districts
    assert 10 < at.loc["KH-12", "lat"] < 12 and 104 < at.loc["KH-12", "lon"] < 106  # Phnom Penh
    assert "KH-12" not in set(routes.node_coordinates(areas=False)["code"])


def test_demo_store_routes_match_the_database(demo_store: Engine) -> None:
    with demo_store.connect() as conn:
        seizures = tables.seizures(conn)
        nodes = routes.node_coordinates(conn)
        at_points: dict[str, int] = dict(conn.execute(text(
            "SELECT p.code, count(*) FROM seizure s JOIN incident i ON i.id = s.incident_id "
            "JOIN place p ON p.id = i.place_id WHERE i.country = 'KH' AND p.level = 'point' "
            "AND i.place_kind IN ('border_checkpoint', 'seaport', 'airport') GROUP BY p.code")).all())
        routed = conn.execute(text(
            "SELECT count(*) FROM seizure WHERE origin_country IS NOT NULL AND destination_country IS NOT NULL "
            "AND origin_country <> destination_country")).scalar_one()
    assert at_points, "the demo has seizures at named crossings"
    table = routes.crossings(seizures, country="KH")
    points = table[table["place_code"].str.startswith("PT-")]
    assert dict(zip(points["place_code"], points["seizures"], strict=True)) == at_points
    edges = routes.flows(seizures)
    assert edges.attrs["seizures_routed"] >= routed
    entries = set(edges.loc[edges["target_stage"] == "entry", "target"])
    assert {e for e in entries if e.startswith("PT-")} <= set(nodes["code"])
    top = routes.corridors(seizures, top=10)
    assert top["seizures"].is_monotonic_decreasing and top["corridor"].is_unique
