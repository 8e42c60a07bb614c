"""Forecasts and their backtests: known answers on synthetic series, then the real UNODC IDS file."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from narcotrack.analytics import tables
from narcotrack.analytics.forecast import Forecast, backtest_plan, forecast, monthly_series
from narcotrack.errors import InvalidInput

PATTERN = np.array([20, 22, 30, 35, 28, 24, 18, 15, 17, 21, 26, 32], dtype=float)


def series(*columns: tuple[str, np.ndarray], start: str = "2015-01-01") -> pd.DataFrame:
    """A series frame (province, period, y) with one series per (name, values)."""
    return pd.concat(
        [pd.DataFrame({"province": name, "period": pd.date_range(start, periods=len(y), freq="MS"), "y": y})
         for name, y in columns],
        ignore_index=True,
    )


def chosen(result: Forecast) -> pd.DataFrame:
    return result.accuracy[result.accuracy["chosen"]].set_index("province")


# -- monthly_series ---------------------------------------------------------------------------------------
def records() -> pd.DataFrame:
    """Five seizures: KH-12 meth twice in Jan, KH-01 heroin in Mar, one without a province, one in Apr."""
    return pd.DataFrame({
        "incident_id": ["a", "a", "b", "c", "d"],
        "occurred_on": pd.to_datetime(["2024-01-03", "2024-01-03", "2024-03-30", "2024-02-10", "2024-04-01"]),
        "province_code": ["KH-12", "KH-12", "KH-01", None, "KH-12"],
        "drug": ["meth", "meth", "heroin", "meth", "meth"],
        "mass_kg": [1.0, 2.0, np.nan, 4.0, 0.5],
    })


def test_monthly_series_from_records_zero_fills_every_group_and_month() -> None:
    out = monthly_series(records(), keys=("province", "drug"))
    assert list(out.columns) == ["province", "drug", "period", "y"]
    assert len(out) == 2 * 4  # two groups with a province × January to April
    got = {(r.province, r.drug, r.period.month): r.y for r in out.itertuples()}
    assert got[("KH-12", "meth", 1)] == 2 and got[("KH-12", "meth", 2)] == 0 and got[("KH-12", "meth", 4)] == 1
    assert got[("KH-01", "heroin", 3)] == 1 and got[("KH-01", "heroin", 1)] == 0
    incidents = monthly_series(records(), keys=("province",), measure="incidents")
    assert incidents.set_index(["province", "period"]).loc[("KH-12", pd.Timestamp("2024-01-01")), "y"] == 1
    kg = monthly_series(records(), keys=(), measure="kg")
    assert kg["y"].tolist() == [3.0, 4.0, 0.0, 0.5]


def test_monthly_series_national_and_from_a_trend_frame() -> None:
    national = monthly_series(records(), keys=())
    assert list(national.columns) == ["period", "y"]
    assert national["y"].tolist() == [2, 1, 1, 1]  # the seizure without a province counts nationally
    trend = pd.DataFrame({
        "period": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-03-01"]),
        "drug": ["meth", "meth", "heroin"], "province": ["KH-12", "KH-12", "KH-12"], "seizures": [5, 7, 2],
    })
    out = monthly_series(trend, keys=("drug",), end="2024-05-31")
    assert out[out["drug"] == "meth"]["y"].tolist() == [5, 0, 7, 0, 0]
    assert out[out["drug"] == "heroin"]["y"].tolist() == [0, 0, 2, 0, 0]


def test_monthly_series_refuses_what_it_cannot_count() -> None:
    weekly = pd.DataFrame({"period": pd.to_datetime(["2024-01-01", "2024-01-08"]), "seizures": [1, 2]})
    with pytest.raises(InvalidInput, match="monthly"):
        monthly_series(weekly, keys=())
    quarterly = pd.DataFrame({"period": pd.to_datetime(["2024-01-01", "2024-04-01"]), "seizures": [1, 2]})
    with pytest.raises(InvalidInput, match="monthly"):
        monthly_series(quarterly, keys=())
    with pytest.raises(InvalidInput, match="nationality"):
        monthly_series(records(), keys=("nationality",))
    with pytest.raises(InvalidInput, match="measure"):
        monthly_series(records(), measure="tonnes")


# -- the backtest: beats seasonal naive only when it should ----------------------------------------------
def test_pure_seasonal_series_is_not_reported_as_beating_seasonal_naive() -> None:
    result = forecast(series(("s", np.tile(PATTERN, 6))), keys=("province",), horizon=12)
    acc = result.accuracy.set_index("model")
    assert (acc["naive_mae"] == 0).all()  # repeating last year is exact
    assert not acc["beats_naive"].any()
    assert acc["mase"].isna().all()  # undefined: seasonal naive made no error
    assert chosen(result).loc["s", "model"] == "SeasonalNaive"
    assert result.forecasts["point"].tolist() == PATTERN.tolist()
    assert (result.forecasts["hi_95"] == result.forecasts["lo_95"]).all()  # no error seen, no spread


def test_seasonal_series_with_a_trend_is_beaten_by_smoothing() -> None:
    y = np.tile(PATTERN, 6) + 2.0 * np.arange(72)  # seasonal naive lags 12 months × 2 = 24 behind
    result = forecast(series(("s", y)), keys=("province",), horizon=6)
    acc = result.accuracy.set_index("model")
    assert acc.loc["SeasonalNaive", "mae"] == pytest.approx(24.0)
    assert acc.loc["SeasonalNaive", "mase"] == 1.0 and not acc.loc["SeasonalNaive", "beats_naive"]
    pick = chosen(result).loc["s"]
    assert pick["model"] != "SeasonalNaive" and pick["beats_naive"] and pick["mase"] < 0.1
    expected = PATTERN[:6] + 2.0 * np.arange(72, 78)
    assert np.allclose(result.forecasts["point"], expected, atol=0.5)


def test_noisy_seasonal_series_are_mostly_beaten_by_smoothing() -> None:
    """Level + season + noise: seasonal naive carries last year's noise (error variance 2σ²), smoothing
    averages it away (about σ²), so the expected MASE is near 1/√2. Eight series, ten years each."""
    rng = np.random.default_rng(7)
    data = series(*((f"s{i}", np.tile(PATTERN, 10) + 50 + rng.normal(0, 6, 120)) for i in range(8)))
    result = forecast(data, keys=("province",), horizon=6, windows=6)
    picks = chosen(result)
    assert picks["beats_naive"].mean() >= 0.75
    assert picks["mase"].median() < 0.9
    assert (picks["windows"] == 6).all() and (picks["backtest_horizon"] == 6).all()


def test_mase_by_hand_on_a_tiny_series() -> None:
    """26 months, 1-month backtest horizon, 2 windows: forecasts of months 25 and 26 from origins 24, 25.

    Seasonal naive repeats months 13 and 14 (2, 4); naive repeats the last month seen (6, then 3).
    Actuals 3, 1: seasonal naive errors 1, 3 → MAE 2; naive errors 3, 2 → MAE 2.5; MASE 2.5 / 2 = 1.25.
    """
    y = np.zeros(26)
    y[12], y[13], y[23], y[24], y[25] = 2, 4, 6, 3, 1
    assert backtest_plan(26, 1, 2) == (1, 2, 1)
    result = forecast(series(("s", y)), keys=("province",), horizon=1, windows=2)
    acc = result.accuracy.set_index("model")
    assert acc.loc["SeasonalNaive", "mae"] == pytest.approx(2.0)
    assert acc.loc["Naive", "mae"] == pytest.approx(2.5)
    assert acc.loc["Naive", "naive_mae"] == pytest.approx(2.0)
    assert acc.loc["Naive", "mase"] == pytest.approx(1.25)
    assert not acc.loc["Naive", "beats_naive"]
    assert (acc["windows"] == 2).all() and (acc["n_months"] == 26).all() and (acc["nonzero_months"] == 5).all()


# -- intervals, horizon, national ------------------------------------------------------------------------
def test_intervals_hold_the_point_and_widen_with_the_horizon() -> None:
    rng = np.random.default_rng(3)
    walk = 200 + np.cumsum(rng.normal(0, 5, 72))
    noisy = np.tile(PATTERN, 6) * 5 + 150 + rng.normal(0, 10, 72)
    result = forecast(series(("walk", walk), ("noisy", noisy)), keys=("province",), horizon=24)
    fc = result.forecasts
    assert list(fc.columns) == ["province", "period", "model", "point", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert ((fc["lo_95"] <= fc["lo_80"]) & (fc["lo_80"] <= fc["point"]) & (fc["point"] <= fc["hi_80"])
            & (fc["hi_80"] <= fc["hi_95"])).all()
    for _, one in fc.groupby("province"):
        width = (one["hi_95"] - one["lo_95"]).to_numpy()
        assert (np.diff(width) >= -1e-9).all()
        assert width[-1] > width[0]


def test_horizon_24_gives_24_consecutive_months_after_the_history() -> None:
    rng = np.random.default_rng(1)
    result = forecast(series(("a", rng.poisson(5, 40).astype(float))), keys=("province",), horizon=24)
    periods = result.forecasts["period"]
    assert len(periods) == 24
    assert periods.iloc[0] == pd.Timestamp("2018-05-01")  # history 2015-01 .. 2018-04
    assert list(periods) == list(pd.date_range("2018-05-01", periods=24, freq="MS"))
    assert (result.forecasts[["point", "lo_95", "lo_80"]] >= 0).all().all()


def test_keys_empty_gives_one_national_series() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "incident_id": [str(i) for i in range(600)],
        "occurred_on": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1096, 600), unit="D"),
        "province_code": rng.choice(["KH-01", "KH-12"], 600), "drug": "meth",
    })
    national = monthly_series(frame, keys=())
    assert len(national) == 36 and national["y"].sum() == 600
    result = forecast(national, keys=(), horizon=6)
    assert list(result.forecasts.columns) == ["period", "model", "point", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert len(result.forecasts) == 6 and result.accuracy["chosen"].sum() == 1
    assert result.history["y"].sum() == 600


def test_short_series_say_so_instead_of_failing() -> None:
    rng = np.random.default_rng(2)
    data = series(("m1", np.array([4.0])), ("m10", rng.poisson(3, 10).astype(float)),
                  ("m18", rng.poisson(3, 18).astype(float)), ("m36", rng.poisson(3, 36).astype(float)))
    result = forecast(data, keys=("province",), horizon=6)
    picks = chosen(result)
    assert picks.loc["m1", "model"] == "Naive" and picks.loc["m10", "model"] == "Naive"
    assert picks.loc["m18", "model"] == "SeasonalNaive"
    for name, n in (("m1", 1), ("m10", 10), ("m18", 18)):
        assert math.isnan(picks.loc[name, "mase"]) and picks.loc[name, "windows"] == 0
        assert picks.loc[name, "n_months"] == n and not picks.loc[name, "beats_naive"]
    assert picks.loc["m36", "windows"] == 2  # 12 months after the first 24: cut-offs at 24 and 30
    assert len(result.forecasts) == 4 * 6
    assert np.isfinite(result.forecasts.select_dtypes("number").to_numpy()).all()


def test_bad_arguments_are_refused() -> None:
    data = series(("a", np.ones(30)))
    with pytest.raises(InvalidInput, match="horizon"):
        forecast(data, keys=("province",), horizon=0)
    with pytest.raises(InvalidInput, match="levels"):
        forecast(data, keys=("province",), levels=(80, 100))
    with pytest.raises(InvalidInput, match="drug"):
        forecast(data, keys=("province", "drug"))


def test_method_is_stated() -> None:
    result = forecast(series(("a", np.tile(PATTERN, 3))), keys=("province",), horizon=3)
    for frame in (result.forecasts, result.accuracy, result.history):
        assert "MASE" in frame.attrs["method"] and "SeasonalNaive" in frame.attrs["method"]


# -- stores ----------------------------------------------------------------------------------------------
def test_demo_store_province_by_drug(demo_store: Engine) -> None:
    with demo_store.connect() as conn:
        seizures = tables.seizures(conn)
    seizures = seizures[seizures["drug"].isin(seizures["drug"].value_counts().index[:3])]  # keeps it quick
    data = monthly_series(seizures, keys=("province", "drug"))
    groups = seizures.dropna(subset=["province_code"]).groupby(["province_code", "drug"]).ngroups
    result = forecast(data, horizon=6)
    assert result.forecasts.groupby(["province", "drug"]).ngroups == groups
    assert len(result.forecasts) == groups * 6
    assert (result.accuracy.groupby(["province", "drug"])["chosen"].sum() == 1).all()
    assert (result.accuracy["n_months"] == 60).all() and (result.accuracy["windows"] == 3).all()


def test_real_ids_file_every_country_drug_series_gets_a_finite_24_month_forecast(ids_store: Engine) -> None:
    with ids_store.connect() as conn:
        seizures = tables.seizures(conn)
    data = monthly_series(seizures, keys=("country", "drug"))
    pairs = seizures.groupby(["country", "drug"]).ngroups
    nonzero = data[data["y"] > 0].groupby(["country", "drug"]).size()
    assert (nonzero <= 3).sum() >= 100  # the file is sparse: many series have 1–3 months with seizures
    result = forecast(data, keys=("country", "drug"), horizon=24)
    fc = result.forecasts
    assert fc.groupby(["country", "drug"]).size().eq(24).all() and fc.groupby(["country", "drug"]).ngroups == pairs
    assert fc["period"].min() == pd.Timestamp("2015-01-01") and fc["period"].max() == pd.Timestamp("2016-12-01")
    numbers = fc[["point", "lo_80", "hi_80", "lo_95", "hi_95"]].to_numpy()
    assert np.isfinite(numbers).all() and (numbers >= 0).all()
    picks = result.accuracy[result.accuracy["chosen"]]
    assert len(picks) == pairs
    assert (picks["n_months"] == 48).all() and (picks["windows"] == 1).all()  # 2011–2012 fits, 2013–2014 tests


def test_real_ids_file_a_single_year_is_too_short_for_a_backtest(ids_store: Engine) -> None:
    with ids_store.connect() as conn:
        seizures = tables.seizures(conn, start=pd.Timestamp("2014-01-01").date())
    result = forecast(monthly_series(seizures, keys=("country", "drug")), keys=("country", "drug"), horizon=24)
    acc = result.accuracy
    assert (acc["n_months"] == 12).all() and (acc["windows"] == 0).all() and acc["mase"].isna().all()
    assert (acc["model"] == "Naive").all() and acc["chosen"].all()
    assert np.isfinite(result.forecasts[["point", "lo_95", "hi_95"]].to_numpy()).all()


def test_nothing_to_forecast_gives_empty_tables() -> None:
    empty = monthly_series(records().iloc[0:0], keys=("province", "drug"))
    result = forecast(empty, horizon=6)
    assert list(result.forecasts.columns) == ["province", "drug", "period", "model", "point", "lo_80", "hi_80",
                                              "lo_95", "hi_95"]
    assert result.forecasts.empty and result.accuracy.empty and "MASE" in result.method


def test_monthly_series_span_series_fills_only_between_a_series_own_records() -> None:
    out = monthly_series(records(), keys=("province", "drug"), span="series")
    assert out[out["province"] == "KH-01"]["period"].tolist() == [pd.Timestamp("2024-03-01")]
    assert out[out["province"] == "KH-12"]["y"].tolist() == [2, 0, 0, 1]
    result = forecast(out, horizon=2)
    first = result.forecasts.groupby("province")["period"].min()
    assert first["KH-01"] == pd.Timestamp("2024-04-01") and first["KH-12"] == pd.Timestamp("2024-05-01")
