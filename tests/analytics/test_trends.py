"""Trends: hand-counted answers on a small frame, the database's GROUP BY against the frames on SQLite and
PostgreSQL (with and without a visibility filter), year-over-year change and seasonal decomposition."""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from narcotrack.access.policy import principal_for, visible_filter
from narcotrack.analytics import tables
from narcotrack.analytics.trends import decompose, trend, trend_query, year_over_year
from narcotrack.domain.models import ArrestIn, IncidentIn, PersonIn, SeizureIn
from narcotrack.errors import InvalidInput
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import Incident
from narcotrack.store.seed import org_id

T = pd.Timestamp


# -- a small frame, counted by hand ------------------------------------------------------------------------
def small() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Incidents A, B (January, KH-12), C (March, KH-01), D (March, abroad: no province), E (February,
    KH-01, an arrest only). A has two seizures (tablets 1 kg, crystal 2 kg, both by road); B heroin with no
    mass, by air; C tablets 0.5 kg, transport not stated; D cannabis 10 kg. Arrested: two Cambodians in A,
    a Thai in C, a Vietnamese in E."""
    def s(inc: str, day: str, prov: str | None, drug: str, kg: float, mode: str | None) -> dict[str, object]:
        return {"incident_id": inc, "occurred_on": T(day), "country": "KH" if prov else "TH",
                "province_code": prov, "district_code": None, "reporting_org": "KH-PP-12" if prov == "KH-12"
                else "KH-PP-01", "drug": drug, "mass_kg": kg, "transport_mode": mode}

    seizures = pd.DataFrame([
        s("A", "2024-01-03", "KH-12", "methamphetamine_tablets", 1.0, "road_private"),
        s("A", "2024-01-03", "KH-12", "methamphetamine_crystalline", 2.0, "road_private"),
        s("B", "2024-01-20", "KH-12", "heroin", np.nan, "air"),
        s("C", "2024-03-05", "KH-01", "methamphetamine_tablets", 0.5, None),
        s("D", "2024-03-31", None, "cannabis_herb", 10.0, "road_commercial"),
    ])

    def a(inc: str, day: str, prov: str, person: str, nat: str) -> dict[str, object]:
        return {"incident_id": inc, "occurred_on": T(day), "country": "KH", "province_code": prov,
                "district_code": None, "reporting_org": "KH-PP-12" if prov == "KH-12" else "KH-PP-01",
                "person_id": person, "nationality": nat}

    arrests = pd.DataFrame([
        a("A", "2024-01-03", "KH-12", "p1", "KH"), a("A", "2024-01-03", "KH-12", "p2", "KH"),
        a("C", "2024-03-05", "KH-01", "p3", "TH"), a("E", "2024-02-14", "KH-01", "p4", "VN"),
    ])
    return seizures, arrests


MEASURES = ["incidents", "seizures", "persons_arrested", "kg"]


def rows(frame: pd.DataFrame, *by: str) -> dict[tuple[object, ...], list[float]]:
    return {(r["period"].strftime("%Y-%m-%d"), *(r[b] for b in by)): [r[m] for m in MEASURES]
            for r in frame.to_dict("records")}


def test_national_monthly_counts() -> None:
    out = trend(*small())
    assert list(out.columns) == ["period", "incidents", "seizures", "persons_arrested", "kg", "street_value_usd"]
    assert rows(out) == {
        ("2024-01-01",): [2, 3, 2, 3.0],  # A and B; heroin adds no kg
        ("2024-02-01",): [1, 0, 1, 0.0],  # E: an arrest without seizure is an incident
        ("2024-03-01",): [2, 2, 1, 10.5],
    }
    assert "method" in out.attrs and "incidents" in out.attrs["method"]


def test_by_province_zero_fills_every_group_and_month_and_names_the_unknown() -> None:
    out = trend(*small(), by=("province",))
    assert len(out) == 3 * 3
    assert rows(out, "province") == {
        ("2024-01-01", "KH-12"): [2, 3, 2, 3.0], ("2024-02-01", "KH-12"): [0, 0, 0, 0.0],
        ("2024-03-01", "KH-12"): [0, 0, 0, 0.0],
        ("2024-01-01", "KH-01"): [0, 0, 0, 0.0], ("2024-02-01", "KH-01"): [1, 0, 1, 0.0],
        ("2024-03-01", "KH-01"): [1, 1, 1, 0.5],
        ("2024-01-01", "unknown"): [0, 0, 0, 0.0], ("2024-02-01", "unknown"): [0, 0, 0, 0.0],
        ("2024-03-01", "unknown"): [1, 1, 0, 10.0],
    }


def test_by_drug_counts_an_incident_and_its_persons_under_each_drug() -> None:
    got = rows(trend(*small(), by=("drug",)), "drug")
    assert got[("2024-01-01", "methamphetamine_tablets")] == [1, 1, 2, 1.0]
    assert got[("2024-01-01", "methamphetamine_crystalline")] == [1, 1, 2, 2.0]
    assert got[("2024-01-01", "heroin")] == [1, 1, 0, 0.0]
    assert got[("2024-03-01", "methamphetamine_tablets")] == [1, 1, 1, 0.5]
    assert got[("2024-03-01", "cannabis_herb")] == [1, 1, 0, 10.0]
    assert all(v == [0, 0, 0, 0.0] for k, v in got.items() if k[0] == "2024-02-01")  # E has no drug
    assert len(got) == 3 * 4


def test_by_transport_and_agency() -> None:
    got = rows(trend(*small(), by=("transport",)), "transport")
    assert got[("2024-01-01", "road_private")] == [1, 2, 2, 3.0]
    assert got[("2024-03-01", "unknown")] == [1, 1, 1, 0.5]
    agency = rows(trend(*small(), by=("agency",), period="quarter"), "agency")
    assert agency == {("2024-01-01", "KH-PP-12"): [2, 3, 2, 3.0], ("2024-01-01", "KH-PP-01"): [3, 2, 2, 10.5]}


def test_by_nationality_counts_persons_only() -> None:
    out = trend(*small(), by=("nationality",))
    got = {(r.period.month, r.nationality): r.persons_arrested for r in out.itertuples()}
    assert got == {(1, "KH"): 2, (2, "KH"): 0, (3, "KH"): 0, (1, "TH"): 0, (2, "TH"): 0, (3, "TH"): 1,
                   (1, "VN"): 0, (2, "VN"): 1, (3, "VN"): 0}
    assert out[["incidents", "seizures", "kg", "street_value_usd"]].isna().all().all()
    with pytest.raises(InvalidInput, match="arrests"):
        trend(small()[0], by=("nationality",))


def test_weeks_start_on_monday_and_quarters_add_up() -> None:
    weeks = trend(*small(), period="week")
    assert weeks["period"].min() == T("2024-01-01")  # 3 January 2024 was a Wednesday
    assert (weeks["period"].dt.weekday == 0).all() and weeks["period"].diff().dropna().eq(pd.Timedelta(days=7)).all()
    by_week = weeks.set_index("period")
    assert by_week.loc[T("2024-01-15"), "seizures"] == 1  # B, Saturday 20 January
    assert by_week.loc[T("2024-03-25"), "kg"] == 10.0  # D, Sunday 31 March
    assert weeks["seizures"].sum() == 5 and weeks["persons_arrested"].sum() == 4
    quarter = trend(*small(), period="quarter")
    assert rows(quarter) == {("2024-01-01",): [5, 5, 4, 13.5]}


def test_start_end_and_without_arrests() -> None:
    out = trend(*small(), start=dt.date(2024, 2, 1), end=dt.date(2024, 3, 31))
    assert rows(out) == {("2024-02-01",): [1, 0, 1, 0.0], ("2024-03-01",): [2, 2, 1, 10.5]}
    alone = trend(small()[0], end=dt.date(2024, 4, 30))
    assert alone["incidents"].tolist() == [2, 0, 2, 0]  # only incidents with a seizure; zero-filled to April
    assert alone["persons_arrested"].isna().all()


def test_street_value_is_kg_times_the_price_of_the_year() -> None:
    prices = pd.DataFrame({"drug": ["methamphetamine_tablets", "cannabis_herb"], "year": [2022, 2022],
                           "usd_per_kg": [1000.0, 10.0]})
    out = trend(*small(), prices=prices).set_index("period")["street_value_usd"]
    assert out[T("2024-01-01")] == pytest.approx(1000.0)  # crystal and heroin have no price here
    assert out[T("2024-03-01")] == pytest.approx(0.5 * 1000 + 10 * 10)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="period"):
        trend(*small(), period="year")
    with pytest.raises(InvalidInput, match="cannot group by 'colour'"):
        trend(*small(), by=("colour",))
    with pytest.raises(InvalidInput, match="start is after end"):
        trend(*small(), start=dt.date(2024, 3, 1), end=dt.date(2024, 1, 1))


# -- trend_query against trend, on both engines ------------------------------------------------------------
def _incident(day: dt.date, province: str, org: str, seizures: list[SeizureIn], nationalities: list[str],
              **sharing: str) -> IncidentIn:
    arrests = [ArrestIn(role="courier", person=PersonIn(name_latin=f"Person {i}", nationality=n, **sharing))
               for i, n in enumerate(nationalities)]
    return IncidentIn(occurred_on=day, province=province, reporting_org=org, seizures=seizures, arrests=arrests,
                      **sharing)


def _fill(engine: Engine) -> None:
    """Five incidents of KH-PP-01 (Banteay Meanchey) and KH-PP-12 (Phnom Penh); the last one RED."""
    yaba = SeizureIn(drug="yaba", quantity=10_000, unit="tablets", transport_mode="bus")  # 0.9 kg
    ice = SeizureIn(drug="ice", quantity=2, unit="kg")
    with session_scope(engine) as s:
        create_incident(s, _incident(dt.date(2024, 1, 5), "Banteay Meanchey", "KH-PP-01", [yaba, ice],
                                     ["Cambodia", "Thailand"]))
        create_incident(s, _incident(dt.date(2024, 1, 28), "Phnom Penh", "KH-PP-12", [ice], []))
        create_incident(s, _incident(dt.date(2024, 3, 2), "Phnom Penh", "KH-PP-12", [], ["Viet Nam"]))
        create_incident(s, _incident(dt.date(2024, 4, 9), "Banteay Meanchey", "KH-PP-01",
                                     [SeizureIn(drug="heroin", quantity=350, unit="g")], ["Cambodia"],
                                     marking="GREEN", distribution="partners"))
        create_incident(s, _incident(dt.date(2024, 4, 20), "Phnom Penh", "KH-PP-12", [yaba], ["Cambodia"],
                                     marking="RED", distribution="owner"))


def _same(query: pd.DataFrame, frames: pd.DataFrame, measures: list[str]) -> None:
    cols = ["period", *query.attrs["by"], *measures]
    pd.testing.assert_frame_equal(query[cols].reset_index(drop=True), frames[cols].reset_index(drop=True),
                                  check_dtype=False)


CASES = [("month", ("drug", "province")), ("quarter", ()), ("week", ("agency",)), ("month", ("transport",)),
         ("month", ("nationality",)), ("month", ("drug", "nationality")), ("quarter", ("district", "country"))]


def test_trend_query_counts_what_trend_counts_and_respects_visibility(engine: Engine) -> None:
    _fill(engine)
    with Session(engine) as session:
        analyst = principal_for(session, org_id=org_id("KH-NACD"), role="analyst")
        liaison = principal_for(session, org_id=org_id("TH-ONCB"), role="liaison")
        for visible in (None, functools.partial(visible_filter, analyst), functools.partial(visible_filter, liaison)):
            s, a = tables.seizures(session, visible), tables.arrests(session, visible)
            for period, by in CASES:
                q = trend_query(session, visible, period=period, by=by, persons=True)
                _same(q, trend(s, a, period=period, by=by), ["incidents", "seizures", "kg", "persons_arrested"])
        # by hand: NACD sees all but the RED incident; the Thai liaison officer only the GREEN/partners one
        mine = trend_query(session, functools.partial(visible_filter, analyst), period="month", by=())
        assert mine.set_index("period")[["incidents", "seizures"]].to_dict("index") == {
            T("2024-01-01"): {"incidents": 2, "seizures": 3}, T("2024-02-01"): {"incidents": 0, "seizures": 0},
            T("2024-03-01"): {"incidents": 1, "seizures": 0}, T("2024-04-01"): {"incidents": 1, "seizures": 1}}
        assert mine["kg"].sum() == pytest.approx(0.9 + 2 + 2 + 0.35)
        everything = trend_query(session, None, period="month", by=("drug",))
        assert everything["seizures"].sum() == 5 and everything["kg"].sum() == pytest.approx(0.9 * 2 + 4 + 0.35)
        theirs = trend_query(session, functools.partial(visible_filter, liaison), by=("drug", "province"))
        assert theirs[["period", "drug", "province", "incidents", "seizures"]].values.tolist() == [
            [T("2024-04-01"), "heroin", "KH-01", 1, 1]]
        assert list(theirs.columns) == ["period", "drug", "province", "incidents", "seizures", "kg"]


def test_trend_query_cache_follows_the_store(engine: Engine) -> None:
    _fill(engine)
    with engine.connect() as conn:
        first = trend_query(conn, None, by=("province",), cache=True)
        assert first["incidents"].sum() == 5 and first.equals(trend_query(conn, None, by=("province",)))
    with session_scope(engine) as s:
        create_incident(s, _incident(dt.date(2024, 4, 30), "Phnom Penh", "KH-PP-12",
                                     [SeizureIn(drug="ice", quantity=1, unit="kg")], []))
    with engine.connect() as conn:
        assert trend_query(conn, None, by=("province",), cache=True)["incidents"].sum() == 6


SUMMARY_CASES = [("month", ("drug", "province")), ("quarter", ()), ("month", ("agency",)),
                 ("quarter", ("drug", "country")), ("month", ("province",))]
WINDOWS = [(None, None), (dt.date(2024, 1, 1), dt.date(2024, 3, 31)), (dt.date(2024, 1, 10), None),
           (None, dt.date(2024, 4, 10)), (dt.date(2024, 1, 6), dt.date(2024, 4, 19)),
           (dt.date(2024, 1, 6), dt.date(2024, 1, 27))]


def test_trend_query_from_the_summaries_counts_what_trend_counts(engine: Engine) -> None:
    """cache=True reads whole months from the monthly summaries and the cut days directly: the same
    numbers as the frames, for every grouping the summaries serve and windows cutting months."""
    _fill(engine)
    with Session(engine) as session:
        analyst = principal_for(session, org_id=org_id("KH-NACD"), role="analyst")
        liaison = principal_for(session, org_id=org_id("TH-ONCB"), role="liaison")
        for visible in (None, functools.partial(visible_filter, analyst), functools.partial(visible_filter, liaison)):
            s, a = tables.seizures(session, visible), tables.arrests(session, visible)
            for period, by in SUMMARY_CASES:
                for start, end in WINDOWS:
                    q = trend_query(session, visible, period=period, by=by, persons=True, start=start, end=end,
                                    cache=True)
                    assert "monthly summaries" in q.attrs["method"]
                    _same(q, trend(s, a, period=period, by=by, start=start, end=end),
                          ["incidents", "seizures", "kg", "persons_arrested"])


def test_trend_query_from_the_summaries_sees_changes_at_once(engine: Engine) -> None:
    _fill(engine)
    with engine.connect() as conn:
        before = trend_query(conn, None, by=("drug",), cache=True)
    with session_scope(engine) as s:  # a seizure added to January, the RED April incident moved to March
        create_incident(s, _incident(dt.date(2024, 1, 30), "Phnom Penh", "KH-PP-12",
                                     [SeizureIn(drug="heroin", quantity=1, unit="kg")], []))
    with engine.begin() as conn:
        conn.execute(update(Incident).where(Incident.marking == "RED").values(occurred_on=dt.date(2024, 3, 3)))
    with engine.connect() as conn:
        after = trend_query(conn, None, by=("drug",), cache=True).set_index(["period", "drug"])
    b = before.set_index(["period", "drug"])
    assert after.loc[(T("2024-01-01"), "heroin"), "seizures"] == b.loc[(T("2024-01-01"), "heroin"), "seizures"] + 1
    tablets = "methamphetamine_tablets"
    assert after.loc[(T("2024-04-01"), tablets), "seizures"] == b.loc[(T("2024-04-01"), tablets), "seizures"] - 1
    assert after.loc[(T("2024-03-01"), tablets), "seizures"] == b.loc[(T("2024-03-01"), tablets), "seizures"] + 1


def test_trend_query_on_the_demo_store_equals_trend(demo_store: Engine) -> None:
    with Session(demo_store) as session:
        analyst = principal_for(session, org_id=org_id("KH-NACD"), role="analyst")
        for visible in (None, functools.partial(visible_filter, analyst)):
            s, a = tables.seizures(session, visible), tables.arrests(session, visible)
            assert len(s) > 1000
            for period, by in [("month", ("drug", "province")), ("week", ()), ("quarter", ("agency", "transport")),
                               ("month", ("district",)), ("quarter", ("nationality",))]:
                q = trend_query(session, visible, period=period, by=by, persons=True,
                                start=dt.date(2021, 1, 1))
                _same(q, trend(s, a, period=period, by=by, start=dt.date(2021, 1, 1)),
                      ["incidents", "seizures", "kg", "persons_arrested"])
            for period, by in [("month", ("drug", "province")), ("quarter", ("agency", "country"))]:
                q = trend_query(session, visible, period=period, by=by, persons=True, cache=True,
                                start=dt.date(2021, 2, 14), end=dt.date(2023, 7, 3))
                assert "monthly summaries" in q.attrs["method"]
                _same(q, trend(s, a, period=period, by=by, start=dt.date(2021, 2, 14), end=dt.date(2023, 7, 3)),
                      ["incidents", "seizures", "kg", "persons_arrested"])
        seen = trend_query(session, functools.partial(visible_filter, analyst), by=())["incidents"].sum()
        assert 0 < seen < trend_query(session, None, by=())["incidents"].sum()  # some demo incidents are RED


# -- year over year ----------------------------------------------------------------------------------------
def test_year_over_year_on_a_known_series() -> None:
    months = pd.date_range("2022-01-01", periods=24, freq="MS")
    values = np.r_[np.arange(1, 13), np.arange(1, 13) * 2]
    values[0] = 0  # January 2022: nothing, so January 2023 has no percentage
    frame = pd.DataFrame({"period": months, "drug": "heroin", "seizures": values})
    out = year_over_year(frame)
    assert list(out.columns) == ["period", "drug", "value", "prior", "change", "change_pct"]
    first_year, second = out.iloc[:12], out.iloc[12:]
    assert first_year["prior"].isna().all()
    assert second["prior"].tolist() == [0, *range(2, 13)]
    assert second["change"].tolist() == [2, *range(2, 13)]
    assert np.isnan(second["change_pct"].iloc[0]) and second["change_pct"].iloc[1:].eq(100.0).all()


def test_year_over_year_of_weeks_and_quarters() -> None:
    weeks = pd.DataFrame({"period": pd.date_range("2023-01-02", periods=60, freq="W-MON"), "kg": np.arange(60.0)})
    weeks.attrs["period"] = "week"
    out = year_over_year(weeks, "kg").set_index("period")
    assert out.loc[T("2024-01-01"), "prior"] == 0.0 and out.loc[T("2024-01-01"), "change"] == 52.0
    quarters = trend(*small(), period="quarter", end=dt.date(2025, 3, 31))
    yoy = year_over_year(quarters, "seizures").set_index("period")
    assert yoy.loc[T("2025-01-01"), "prior"] == 5 and yoy.loc[T("2025-01-01"), "change_pct"] == -100.0


# -- seasonal decomposition --------------------------------------------------------------------------------
def test_stl_recovers_a_planted_seasonal_amplitude() -> None:
    rng = np.random.default_rng(7)
    months = pd.date_range("2018-01-01", periods=72, freq="MS")
    wave = 20 * np.sin(2 * np.pi * np.arange(72) / 12)
    frame = pd.DataFrame({"period": months, "seizures": rng.poisson(100 + wave)})
    out = decompose(frame)
    assert list(out.columns) == ["period", "observed", "trend", "seasonal", "resid"]
    assert np.allclose(out["observed"], out["trend"] + out["seasonal"] + out["resid"])
    by_month = out.groupby(out["period"].dt.month)["seasonal"].mean()
    amplitude = (by_month.max() - by_month.min()) / 2
    assert amplitude == pytest.approx(20, rel=0.15)
    assert by_month.idxmax() in (3, 4, 5) and by_month.idxmin() in (9, 10, 11)  # sin peaks in April
    assert out["trend"].between(90, 110).all()
    assert "STL" in out.attrs["method"]


def test_decompose_needs_one_series_of_two_years() -> None:
    with pytest.raises(InvalidInput, match="one series"):
        decompose(trend(*small(), by=("province",)))
    with pytest.raises(InvalidInput, match="at least 24 months"):
        decompose(trend(*small()))
