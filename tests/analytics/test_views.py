"""Views: each returns the contract's table and a chart, counts only what its caller may see, and — where it
loads fewer rows than ``tables`` would — gives exactly what the full tables give."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from narcotrack.access.policy import principal_for, visible_filter
from narcotrack.analytics import operations, routes, tables, views
from narcotrack.errors import InvalidInput
from narcotrack.store.schema import Organisation

ANOMALY_COLUMNS = ["period", "observed", "expected", "lower", "upper", "excess", "ratio", "score", "flagged"]
FORECAST_COLUMNS = ["period", "model", "point", "lo_80", "hi_80", "lo_95", "hi_95"]


def _visible(session: Session, org: str, role: str) -> Any:
    org_id = session.scalar(select(Organisation.id).where(Organisation.code == org))
    assert org_id is not None, org
    return functools.partial(visible_filter, principal_for(session, org_id=org_id, role=role))


@pytest.fixture
def session(demo_store: Engine) -> Any:
    with Session(demo_store) as s:
        yield s


def _has_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    assert list(frame.columns[: len(columns)]) == columns or set(columns) <= set(frame.columns), list(frame.columns)


def test_trends_view_counts_what_each_caller_may_see(session: Session) -> None:
    analyst, liaison = _visible(session, "KH-NACD", "analyst"), _visible(session, "TH-ONCB", "liaison")
    totals = {}
    for who, visible in (("analyst", analyst), ("liaison", liaison)):
        r = views.trends_view(session, visible, period="quarter", by=(), measure="seizures")
        _has_columns(r.table, ["period", "incidents", "seizures", "kg"])
        assert r.chart is not None and r.method
        rows = tables.seizures(session, visible)  # the known answer, by another road
        assert int(r.table["seizures"].sum()) == len(rows)
        assert int(r.table["incidents"].sum()) == len(tables.incidents(session, visible))
        totals[who] = len(rows)
    assert 0 < totals["liaison"] < totals["analyst"]


def test_trends_view_by_drug_and_its_chart(session: Session) -> None:
    r = views.trends_view(session, None, period="month", by=("drug",), measure="kg", top=3)
    _has_columns(r.table, ["period", "drug", "incidents", "seizures", "kg"])
    kg = tables.seizures(session).groupby("drug")["mass_kg"].sum()
    got = r.table.groupby("drug")["kg"].sum()
    assert got.sort_index().round(6).to_dict() == kg[kg.index.isin(got.index)].sort_index().round(6).to_dict()
    series = {row["Series"] for row in r.chart["data"]["values"]}
    assert len(series) == 3  # the top three drugs by kg, by name
    assert views.names()[kg.idxmax()] in series
    assert r.notes  # the chart shows only some groups, and says so


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"period": "day"}, "period"), ({"measure": "tonnes"}, "measure"), ({"by": ("colour",)}, "group by"),
    ({"start": dt.date(2025, 1, 1), "end": dt.date(2024, 1, 1)}, "start date"),
])
def test_trends_view_refuses_bad_parameters(session: Session, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        views.trends_view(session, None, **kwargs)


def test_alerts_view_on_the_demo_store(session: Session) -> None:
    r = views.alerts_view(session, None)
    _has_columns(r.table, ["province", "drug", *ANOMALY_COLUMNS])
    latest = tables.latest_date(session)
    assert latest is not None
    assert r.params["month"] == pd.Timestamp(latest.year, latest.month, 1)
    assert (r.table["period"] == r.params["month"]).all() and r.table["flagged"].all()
    assert r.chart is not None  # the flagged series, or with none flagged those that came closest
    assert bool(len(r.table)) != any("No series broke" in n for n in r.notes)


def test_alerts_view_finds_a_known_break(engine: Engine) -> None:
    """Two seizures of heroin a month in Phnom Penh for two years, then 30: that month is the one alert;
    a steady ketamine series beside it is not flagged."""
    from narcotrack.domain.models import IncidentIn, SeizureIn
    from narcotrack.store.db import session_scope
    from narcotrack.store.repo import create_incident

    months = pd.date_range("2023-01-01", periods=25, freq="MS")
    with session_scope(engine) as s:
        for i, month in enumerate(months):
            for n, drug, province, org in ((30 if i == 24 else 2, "heroin", "Phnom Penh", "KH-PP-12"),
                                           (3, "ketamine", "Kandal", "KH-PP-08")):
                for k in range(n):
                    create_incident(s, IncidentIn(
                        occurred_on=month.date() + dt.timedelta(days=k % 20), province=province,
                        reporting_org=org, seizures=[SeizureIn(drug=drug, quantity=1, unit="g")]))
    with Session(engine) as s:
        r = views.alerts_view(s, None)
        assert r.params["month"] == months[-1]
        assert list(r.table["province"]) == ["KH-12"] and list(r.table["drug"]) == ["heroin"]
        row = r.table.iloc[0]
        assert row["observed"] == 30 and 1.5 <= row["expected"] <= 2.5 and row["excess"] >= 27
        assert r.notes == ["The month is not complete: the data end on 2025-01-20."]
        shown = {v["Series"] for v in r.chart["data"]["values"]} if r.chart else set()
        assert shown == {"Phnom Penh · Heroin"}
        r = views.alerts_view(s, None, month="2024-06")  # a steady month: nothing to report
        assert r.table.empty and any("No series broke" in n for n in r.notes)


def test_alerts_view_for_a_liaison_sees_less(session: Session) -> None:
    liaison = _visible(session, "TH-ONCB", "liaison")
    r = views.alerts_view(session, liaison, keys=("drug",), month="2024-06")
    _has_columns(r.table, ["drug", *ANOMALY_COLUMNS])
    assert r.params["month"] == pd.Timestamp("2024-06-01")
    rows = tables.seizures(session, liaison, start=dt.date(2024, 6, 1), end=dt.date(2024, 6, 30))
    for row in r.table.itertuples(index=False):  # an alert's observed count is the liaison's own count
        assert row.observed == (rows["drug"] == row.drug).sum()


def test_forecast_view_forecasts_only_the_chosen_series(session: Session) -> None:
    r = views.forecast_view(session, None, province=["KH-12", "KH-01"], drug=["methamphetamine_tablets"],
                            horizon=4)
    _has_columns(r.table, ["province", "drug", *FORECAST_COLUMNS])
    assert set(map(tuple, r.table[["province", "drug"]].drop_duplicates().to_numpy())) == {
        ("KH-12", "methamphetamine_tablets"), ("KH-01", "methamphetamine_tablets")}
    assert len(r.table) == 2 * 4
    assert (r.table["lo_95"] <= r.table["lo_80"]).all() and (r.table["hi_80"] <= r.table["hi_95"]).all()
    acc = r.extra["accuracy"]
    assert {"mase", "beats_naive", "chosen"} <= set(acc.columns)
    # the page states plainly every series whose chosen model does not beat seasonal naive
    losers = acc[acc["chosen"] & ~acc["beats_naive"]]
    assert len(r.notes) == len(losers)
    assert all("seasonal-naive" in n for n in r.notes)
    assert r.chart is not None and "facet" in r.chart


def test_forecast_view_national_series(session: Session) -> None:
    r = views.forecast_view(session, None, horizon=3)
    assert list(r.table.columns[:3]) == ["period", "model", "point"] and len(r.table) == 3
    latest = tables.latest_date(session)
    assert latest is not None
    assert r.table["period"].min() == pd.Timestamp(latest.year, latest.month, 1) + pd.DateOffset(months=1)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"drug": ["unobtainium"]}, "unknown drug"), ({"province": ["KH-99"]}, "province"),
    ({"horizon": 0}, "horizon"),
    ({"province": ["KH-01", "KH-02", "KH-03", "KH-04"], "drug": ["heroin", "ketamine"]}, "at most"),
])
def test_forecast_view_refuses_bad_parameters(session: Session, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        views.forecast_view(session, None, **kwargs)


def test_hotspots_view_province_and_district(session: Session) -> None:
    r = views.hotspots_view(session, None, level="province", measure="seizures", permutations=199)
    _has_columns(r.table, ["code", "name_en", "value", "gi_z", "p_value", "q_value", "cluster"])
    assert len(r.table) == 25
    counts = tables.seizures(session)["province_code"].value_counts()
    assert r.table.set_index("code")["value"].to_dict() == {c: float(counts.get(c, 0)) for c in r.table["code"]}
    assert r.chart is not None and len(r.chart["data"]["values"]) == 25 and "values" in r.charts
    d = views.hotspots_view(session, None, level="district", permutations=199)
    assert len(d.table) > 150 and d.chart is not None


def test_hotspots_view_for_a_liaison(session: Session) -> None:
    liaison = _visible(session, "TH-ONCB", "liaison")
    r = views.hotspots_view(session, liaison, start=dt.date(2024, 1, 1), permutations=199)
    rows = tables.seizures(session, liaison, start=dt.date(2024, 1, 1))
    in_provinces = rows["province_code"].isin(set(r.table["code"]))
    assert r.table["value"].sum() == in_provinces.sum() > 0
    assert (~in_provinces).sum() > 0  # seizures abroad are on no Cambodian map


def _window_rows(session: Session, visible: Any, r: views.Result) -> pd.DataFrame:
    p = r.params
    lo = min(p["start"], p["before"][0], p["after"][0])
    hi = max(p["end"], p["before"][1], p["after"][1])
    return tables.seizures(session, visible, start=lo, end=hi)


@pytest.mark.parametrize("who", [None, ("TH-ONCB", "liaison")])
def test_routes_view_equals_the_full_tables(session: Session, who: tuple[str, str] | None) -> None:
    """The view loads only seizures that can lie on a route: its tables must be what all rows give."""
    visible = _visible(session, *who) if who else None
    r = views.routes_view(session, visible, top=15)
    p = r.params
    assert p["end"] == tables.latest_date(session, visible)
    assert p["start"] == dt.date(p["end"].year - 2, p["end"].month, p["end"].day) + dt.timedelta(days=1)
    all_rows = _window_rows(session, visible, r)
    window = all_rows[(all_rows["occurred_on"] >= pd.Timestamp(p["start"]))
                      & (all_rows["occurred_on"] <= pd.Timestamp(p["end"]))]
    pd.testing.assert_frame_equal(r.table, routes.corridors(window, top=15))
    pd.testing.assert_frame_equal(r.extra["flows"], routes.flows(window))
    pd.testing.assert_frame_equal(r.extra["crossings"], routes.crossings(window))
    pd.testing.assert_frame_equal(r.extra["shifts"], routes.route_shifts(all_rows, before=p["before"],
                                                                         after=p["after"]))
    assert r.table.attrs["method"] == routes.corridors(window, top=15).attrs["method"]
    assert r.chart is not None and "corridors" in r.charts


def test_routes_view_displacement_and_errors(session: Session) -> None:
    ops = tables.operations(session)
    op = ops.sort_values("start_date").iloc[len(ops) // 2]
    r = views.routes_view(session, None, operation_id=op["operation_id"])
    assert "displacement" in r.extra
    assert {"corridor", "role", "seizures_before", "seizures_after"} <= set(r.extra["displacement"].columns)
    with pytest.raises(InvalidInput, match="operation"):
        views.routes_view(session, _visible(session, "TH-ONCB", "liaison"), operation_id="no-such-operation")
    with pytest.raises(InvalidInput, match="both"):
        views.routes_view(session, None, before=(dt.date(2024, 1, 1), dt.date(2024, 6, 30)))


@pytest.mark.parametrize("who", [None, ("TH-ONCB", "liaison"), ("KH-NACD", "analyst")])
def test_operations_view_equals_the_full_tables(session: Session, who: tuple[str, str] | None) -> None:
    """Co-arrest networks from the arrests the view loads are those all visible arrests give."""
    visible = _visible(session, *who) if who else None
    r = views.operations_view(session, visible, by="kind", n_boot=200)
    full = operations.operation_outcomes(tables.seizures(session, visible), tables.arrests(session, visible),
                                         tables.operations(session, visible))
    pd.testing.assert_frame_equal(r.extra["outcomes"], full)
    _has_columns(r.table, ["stratum", "measure", "joint_n", "single_n", "joint_mean", "single_mean",
                           "difference", "ci_low", "ci_high"])
    assert r.chart is not None and "Association" in r.method


def test_operations_view_refuses_an_unknown_stratum(session: Session) -> None:
    with pytest.raises(InvalidInput, match="by"):
        views.operations_view(session, None, by="colour")


def test_views_share_the_contract_of_result(session: Session) -> None:
    for name, view in views.VIEWS.items():
        kwargs: dict[str, Any] = {"permutations": 199} if name == "hotspots" else {}
        r = view(session, None, **kwargs)
        assert r.name == name and r.title and isinstance(r.table, pd.DataFrame)
        assert len(r.table) or name == "alerts"  # a month may have no alerts
        assert isinstance(r.chart, dict) and r.chart["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6")


def test_khmer_labels_and_names(session: Session) -> None:
    r = views.trends_view(session, None, by=("drug",), gettext=lambda s: {"Seizures": "ការរឹបអូស"}.get(s, s),
                          lang="km")
    assert r.chart is not None
    assert r.chart["encoding"]["y"]["title"] == "ការរឹបអូស"
    series = {row["Series"] for row in r.chart["data"]["values"]}
    assert "ថ្នាំម៉ាទឹកគ្រាប់ (យ៉ាម៉ា)" in series


def test_route_seizures_on_both_engines(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loaders' SQL on SQLite and PostgreSQL: route rows in full and the rest as dates; the arrests
    whose co-arrest networks reach an operation."""
    from narcotrack.ingest.demo import generate

    generate(engine, years=1, seed=7, scale=0.05)
    with Session(engine) as s:
        full = tables.seizures(s)
        mine = views.route_seizures(s)
        assert len(mine) == len(full)
        assert sorted(mine["occurred_on"]) == sorted(full["occurred_on"])
        pd.testing.assert_frame_equal(routes.corridors(mine, top=None), routes.corridors(full, top=None))
        pd.testing.assert_frame_equal(routes.flows(mine), routes.flows(full))
        all_arrests = tables.arrests(s)
        full_out = operations.operation_outcomes(full, all_arrests, tables.operations(s))
        assert (full_out["network_members"] > full_out["persons"]).any()  # networks reach beyond operations
        for share in (0, 10**9):  # the search through co-arrests, and the read of every arrest
            monkeypatch.setattr(views, "LINKED_SHARE", share)
            arrests = views.operation_arrests(s)
            linked = all_arrests[all_arrests["operation_id"].notna()]
            assert set(linked["incident_id"]) <= set(arrests["incident_id"])
            assert len(arrests) < len(all_arrests) if share == 0 else len(arrests) == len(all_arrests)
            mine_out = operations.operation_outcomes(views.operation_seizures(s), arrests, tables.operations(s))
            pd.testing.assert_frame_equal(mine_out, full_out)


def test_forecast_all_view_forecasts_every_series(session: Session) -> None:
    r = views.forecast_all_view(session, None, keys=("drug",), horizon=2)
    drugs = set(tables.seizures(session)["drug"])
    assert set(r.table["drug"]) == drugs and len(r.table) == 2 * len(drugs)
    shown = {row["Series"] for row in r.chart["data"]["values"]} if r.chart else set()
    assert len(shown) == views.MAX_SERIES  # the chart draws the largest series only
    biggest = tables.seizures(session)["drug"].value_counts().index[0]
    assert views.names()[biggest] in shown
    acc = r.extra["accuracy"]
    losers = int((acc["chosen"] & ~acc["beats_naive"]).sum())
    assert sum("seasonal-naive" in n for n in r.notes) == (1 if losers > views.MAX_SERIES else losers)


def test_routes_file_view_reads_an_ids_file(tmp_path: Path) -> None:
    from narcotrack.analytics import sources
    from tests.conftest import shared_data

    source = shared_data("unodc", "ids_individual_seizures_2011_2014.csv.gz")
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        lines = [line for _, line in zip(range(3001), fh, strict=False)]
    part = tmp_path / "ids_part.csv"
    part.write_text("".join(lines), encoding="utf-8")
    rows = sources.ids_seizures(part)
    r = views.routes_file_view(part, top=10)
    end = pd.to_datetime(rows["occurred_on"]).max().date()
    assert r.params["end"] == end
    when = pd.to_datetime(rows["occurred_on"])
    window = rows[(when >= pd.Timestamp(r.params["start"])) & (when <= pd.Timestamp(end))]
    pd.testing.assert_frame_equal(r.table, routes.corridors(window, top=10))
    assert len(r.table) > 0 and r.chart is not None
