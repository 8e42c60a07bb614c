"""Alerts: a planted break is found with its size, steady series stay quiet at the chosen alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from narcotrack.analytics.anomalies import alerts, anomalies
from narcotrack.analytics.trends import trend_query
from narcotrack.errors import InvalidInput

MONTHS = 60
SEASON = 1 + 0.3 * np.sin(2 * np.pi * np.arange(MONTHS) / 12)  # +-30 % over the year


def monthly(values: np.ndarray, measure: str = "seizures", start: str = "2020-01-01") -> pd.DataFrame:
    """A monthly trend frame with one province x drug series per row of ``values``."""
    values = np.atleast_2d(values)
    months = pd.date_range(start, periods=values.shape[1], freq="MS")
    frame = pd.DataFrame([{"period": m, "province": f"KH-{i + 1:02d}", "drug": "heroin", measure: v}
                          for i, row in enumerate(values) for m, v in zip(months, row, strict=True)])
    frame.attrs["period"] = "month"
    return frame


def steady(seed: int, n: int, mean: float) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mean * SEASON, size=(n, MONTHS))


def test_a_planted_spike_is_flagged_with_its_expected_value_and_size() -> None:
    y = steady(1, 1, 20.0)[0]
    y[-1] = 80  # the last month (December, seasonal mean 20) quadruples
    out = anomalies(monthly(y))
    assert list(out.columns) == ["province", "drug", "period", "observed", "expected", "lower", "upper", "excess",
                                 "ratio", "score", "flagged", "p_value", "direction"]
    last = out.iloc[-1]
    assert last["flagged"] and last["direction"] == "high" and last["observed"] == 80
    assert last["expected"] == pytest.approx(20 * SEASON[-1], rel=0.25)
    assert last["excess"] == pytest.approx(80 - last["expected"]) and last["ratio"] > 3
    assert last["upper"] < 80 and last["score"] > 6
    assert not out["flagged"].iloc[:-1].any()
    table = alerts(out)
    assert len(table) == 1 and table.iloc[0]["period"] == pd.Timestamp("2024-12-01")
    assert "negative-binomial" in out.attrs["method"]


def test_a_collapse_is_flagged_low() -> None:
    y = steady(2, 1, 40.0)[0]
    y[-1] = 3
    last = anomalies(monthly(y)).iloc[-1]
    assert last["flagged"] and last["direction"] == "low" and last["lower"] > 3


def test_fifty_steady_seasonal_poisson_series_raise_at_most_one_false_alarm() -> None:
    """50 series x 48 judged months at alpha 0.001 (2.4 false alarms if the limits were exact)."""
    for mean in (3.0, 10.0, 40.0):
        out = anomalies(monthly(steady(10, 50, mean)), alpha=0.001)
        assert len(out) == 50 * (MONTHS - 12)
        assert out["flagged"].sum() <= 1, (mean, out[out["flagged"]])
        assert alerts(out).empty  # this month's alerts page shows nothing


def test_false_alarm_rate_stays_below_alpha_with_over_dispersion_and_trend() -> None:
    """Over-dispersed counts (variance twice the mean) and a steady rise of 30 % a year, 200 series each."""
    rng = np.random.default_rng(11)
    mean = 12 * SEASON
    dispersed = rng.negative_binomial(mean, 0.5, size=(200, MONTHS))  # mean 12 x season, variance 2 x mean
    rising = rng.poisson(10 * 1.3 ** (np.arange(MONTHS) / 12), size=(200, MONTHS))
    for values in (dispersed, rising):
        out = anomalies(monthly(values), alpha=0.001)
        assert out["flagged"].mean() <= 0.001, out["flagged"].sum()


def test_alpha_trades_alarms_for_sensitivity() -> None:
    y = steady(3, 1, 10.0)[0]
    y[-1] = 24  # 2.2 times the seasonal mean of December: a break at alpha 0.05, not at 0.001
    assert not anomalies(monthly(y), alpha=0.001).iloc[-1]["flagged"]
    assert anomalies(monthly(y), alpha=0.05).iloc[-1]["flagged"]


def test_a_past_surge_does_not_mask_a_later_one() -> None:
    y = steady(4, 1, 15.0)[0]
    y[40], y[-1] = 90, 60
    out = anomalies(monthly(y))
    assert out.set_index("period")["flagged"].loc[[pd.Timestamp("2023-05-01"), pd.Timestamp("2024-12-01")]].all()


def test_kilograms_use_the_hurdle_model() -> None:
    rng = np.random.default_rng(5)
    kg = np.where(rng.random((50, MONTHS)) < 0.7, rng.lognormal(1.0, 0.8, size=(50, MONTHS)), 0.0)
    quiet = anomalies(monthly(kg, "kg"), measure="kg")
    assert quiet["flagged"].sum() <= 1
    kg[0, -1] = 400.0  # some 150 times a typical month
    out = anomalies(monthly(kg, "kg"), measure="kg")
    top = alerts(out).iloc[0]
    assert (top["province"], top["direction"]) == ("KH-01", "high") and top["expected"] < 10
    assert "hurdle" in out.attrs["method"]


def test_history_national_series_and_month_choice() -> None:
    y = steady(6, 1, 8.0)[0][:30]
    frame = monthly(y).drop(columns=["province", "drug"])
    out = anomalies(frame, keys=(), min_history=12)
    assert list(out.columns[:2]) == ["period", "observed"]
    assert out["period"].min() == pd.Timestamp("2021-01-01") and len(out) == 18
    assert alerts(out, month="2021-06-15").empty
    assert anomalies(frame, keys=(), min_history=40).empty


def test_summing_over_another_dimension_only_where_it_adds_up() -> None:
    frame = pd.concat([monthly(steady(7, 2, 5.0)).assign(drug=d) for d in ("heroin", "opium")])
    by_province = anomalies(frame, keys=("province",))
    assert len(by_province) == 2 * (MONTHS - 12)
    with pytest.raises(InvalidInput, match="cannot be summed"):
        anomalies(frame.rename(columns={"seizures": "incidents"}), measure="incidents", keys=("province",))


def test_bad_arguments_are_clear_errors() -> None:
    frame = monthly(steady(8, 1, 5.0))
    with pytest.raises(InvalidInput, match="alpha"):
        anomalies(frame, alpha=0.7)
    with pytest.raises(InvalidInput, match="measure"):
        anomalies(frame, measure="tonnes")
    with pytest.raises(InvalidInput, match="lacks"):
        anomalies(frame, keys=("agency",))
    weekly = frame.assign(period=frame["period"] + pd.Timedelta(days=3))
    weekly.attrs["period"] = "week"
    with pytest.raises(InvalidInput, match="monthly"):
        anomalies(weekly)


def test_alerts_on_the_demo_store_lie_outside_their_limits(demo_store: Engine) -> None:
    with demo_store.connect() as conn:
        frame = trend_query(conn, period="month", by=("province", "drug"))
    out = anomalies(frame)
    assert len(out) == len(frame[["province", "drug"]].drop_duplicates()) * (frame["period"].nunique() - 12)
    flagged = out[out["flagged"]]
    assert ((flagged["observed"] > flagged["upper"]) | (flagged["observed"] < flagged["lower"])).all()
    quiet = out[~out["flagged"]]
    assert quiet["observed"].between(quiet["lower"], quiet["upper"]).all()
    assert out["flagged"].mean() < 0.01
    latest = alerts(out)
    assert latest["score"].is_monotonic_decreasing and (latest["period"] == out["period"].max()).all()
