"""Forecasts of monthly counts per series (drug × province, country × drug, or national), each with the
backtest that says whether it is worth more than repeating last year.

A forecast nobody can check is a guess. So every series is first backtested by rolling origin: each
candidate model (statsforecast 2.1: seasonal naive, naive, a restricted AutoETS and AutoTheta) forecasts
months it has not seen, from several cut-offs, and its mean absolute error is divided by that of the
seasonal-naive forecast over the same months (the MASE of this module; below 1 means the model beats
seasonal naive). The model with the lowest backtest error that beats seasonal naive makes the forecast;
when none does, seasonal naive does, and the accuracy table says so. Series too short for a backtest still
get a forecast, with ``mase`` NaN and the reason visible in ``n_months`` and ``windows``.

Counts cannot be negative: points and interval bounds are clipped at 0. Months without a record are
zeros (``monthly_series`` zero-fills), which is what makes sparse series such as the UNODC IDS file's
country × drug counts forecastable at all.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from narcotrack.errors import InvalidInput

SEASON = 12  # months in a seasonal cycle
MIN_TRAIN = 2 * SEASON  # months before the first backtest cut-off: two cycles, so seasonality can be estimated
MAX_STEP = 6  # months between backtest cut-offs (at most; never more than the backtest horizon)
MAX_HORIZON = 60
MODELS = ("SeasonalNaive", "Naive", "AutoETS", "AutoTheta")  # order breaks ties: simplest first
BASELINE = "SeasonalNaive"
SHORT_FALLBACK = "Naive"  # for series shorter than SEASON + 1 months, where seasonal naive has no residual
ETS_SPACE = "AZZ"  # additive errors; trend none/additive(/damped) and season none/additive chosen by AICc

# Dimension name -> column of a seizures/arrests/incidents frame (tables.py).
DIMENSIONS = {
    "drug": "drug",
    "province": "province_code",
    "district": "district_code",
    "agency": "reporting_org",
    "country": "country",
    "transport": "transport_mode",
    "nationality": "nationality",
}
MEASURES = ("seizures", "incidents", "persons_arrested", "kg", "street_value_usd")

FORECAST_COLUMNS = ("period", "model", "point")
ACCURACY_COLUMNS = (
    "model", "mae", "naive_mae", "mase", "beats_naive", "chosen", "n_months", "windows", "backtest_horizon",
    "nonzero_months",
)


@dataclass(frozen=True)
class Forecast:
    """The result of :func:`forecast`: the forecasts, their backtest accuracy and the fitted history."""

    forecasts: pd.DataFrame
    accuracy: pd.DataFrame
    history: pd.DataFrame

    @property
    def method(self) -> str:
        return str(self.forecasts.attrs.get("method", ""))


# -- series -----------------------------------------------------------------------------------------------
def _month_start(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.to_period("M").dt.to_timestamp()


def monthly_series(frame: pd.DataFrame, *, keys: Sequence[str] = ("province", "drug"),
                   measure: str = "seizures", start: Any = None, end: Any = None,
                   span: str = "all") -> pd.DataFrame:
    """Monthly series of ``measure`` per ``keys``: columns *keys, period, y; zero-filled.

    ``frame`` is trend-shaped (``period``, the key columns and ``measure``; monthly periods) or a record
    frame from ``tables`` (``occurred_on`` and the key's source column, e.g. ``province_code``). Every month
    from the first to the last of the frame (widened to ``start``/``end`` when given) × every group seen
    gets a row; ``span="series"`` instead fills each series only between its own first and last record
    (for sources where a month without records may mean "not reported"). Rows whose key is missing (a
    seizure without a province) belong to no series and are left out. ``keys=()`` gives one national series.
    """
    keys = _keys(keys)
    if measure not in MEASURES:
        raise InvalidInput(f"unknown measure {measure!r}; choose one of {', '.join(MEASURES)}")
    if "occurred_on" in frame.columns:
        data = _from_records(frame, keys, measure)
    elif "period" in frame.columns:
        data = _from_trend(frame, keys, measure)
    else:
        raise InvalidInput("monthly_series needs a trend frame (with 'period') or a records frame "
                           "(with 'occurred_on')")
    if span not in ("all", "series"):
        raise InvalidInput(f"span must be 'all' or 'series', not {span!r}")
    data = data.dropna(subset=list(keys))
    out = _zero_fill(data, keys, start, end, span)
    within = "the series' own first and last record" if span == "series" else "the first and last month of the data"
    out.attrs["method"] = (f"Monthly {measure} per {' × '.join(keys) or 'country (national total)'}; "
                           f"months without records count as 0, between {within}.")
    return out


def _keys(keys: Sequence[str] | str) -> tuple[str, ...]:
    return (keys,) if isinstance(keys, str) else tuple(keys)


def _from_records(frame: pd.DataFrame, keys: tuple[str, ...], measure: str) -> pd.DataFrame:
    cols = {}
    for key in keys:
        col = DIMENSIONS.get(key, key)
        if col not in frame.columns:
            raise InvalidInput(f"cannot make series by {key!r}: the frame has no column {col!r}")
        cols[key] = frame[col]
    data = pd.DataFrame(cols, index=frame.index)
    data["period"] = _month_start(frame["occurred_on"])
    group = data.groupby([*keys, "period"], dropna=True, sort=True)
    counted = {"seizures": "drug", "persons_arrested": "person_id"}  # rows of a seizures / arrests frame
    if counted.get(measure) in frame.columns:
        y = group.size()
    elif measure == "incidents" and "incident_id" in frame.columns:
        y = frame["incident_id"].groupby([data[c] for c in [*keys, "period"]], dropna=True).nunique()
    elif measure == "kg" and "mass_kg" in frame.columns:
        y = frame["mass_kg"].groupby([data[c] for c in [*keys, "period"]], dropna=True).sum()
    else:
        raise InvalidInput(f"this frame cannot give the measure {measure!r}")
    return y.rename("y").reset_index()


def _from_trend(frame: pd.DataFrame, keys: tuple[str, ...], measure: str) -> pd.DataFrame:
    missing = [c for c in (*keys, measure) if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the trend frame has no column {', '.join(map(repr, missing))}")
    period = pd.to_datetime(frame["period"])
    months = period.dt.to_period("M").dt.to_timestamp()
    distinct = np.unique(months.to_numpy().astype("datetime64[M]").astype(int))  # months since 1970-01
    quarterly = len(distinct) > 1 and np.gcd.reduce(np.diff(distinct)) % 3 == 0 and (distinct % 3 == 0).all()
    if (period != months).any() or quarterly:
        raise InvalidInput("forecasts need monthly periods: make the trend with period='month'")
    data = frame[list(keys)].copy()
    data["period"] = months
    data["y"] = pd.to_numeric(frame[measure], errors="coerce").fillna(0.0)
    return data.groupby([*keys, "period"], dropna=True, sort=True)["y"].sum().reset_index()


def _zero_fill(data: pd.DataFrame, keys: tuple[str, ...], start: Any, end: Any, span: str) -> pd.DataFrame:
    columns = [*keys, "period", "y"]
    if data.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "period" else
                                          float if c == "y" else object) for c in columns})
    first = min(p for p in (data["period"].min(), _month(start)) if p is not None)
    last = max(p for p in (data["period"].max(), _month(end)) if p is not None)
    months = pd.DataFrame({"period": pd.date_range(first, last, freq="MS")})
    if not keys:
        y = data.groupby("period")["y"].sum().reindex(months["period"], fill_value=0.0)
        return pd.DataFrame({"period": months["period"], "y": y.to_numpy(dtype=float)})
    spans = data.groupby(list(keys), sort=True)["period"].agg(["min", "max"]).reset_index()
    grid = spans.merge(months, how="cross")
    if span == "series":  # each series from its own first to its own last month with a record
        grid = grid[(grid["period"] >= grid["min"]) & (grid["period"] <= grid["max"])]
    out = grid[[*keys, "period"]].merge(data, on=[*keys, "period"], how="left")
    out["y"] = out["y"].fillna(0.0).astype(float)
    return out[columns].sort_values([*keys, "period"], ignore_index=True)


def _month(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value).to_period("M").to_timestamp()


# -- models -----------------------------------------------------------------------------------------------
def _model(name: str) -> Any:
    from statsforecast.models import AutoETS, AutoTheta, Naive, SeasonalNaive

    if name == "SeasonalNaive":
        return SeasonalNaive(season_length=SEASON)
    if name == "Naive":
        return Naive()
    if name == "AutoETS":
        return AutoETS(season_length=SEASON, model=ETS_SPACE)
    if name == "AutoTheta":
        return AutoTheta(season_length=SEASON)
    raise ValueError(name)


def backtest_plan(n_months: int, horizon: int, windows: int) -> tuple[int, int, int]:
    """(backtest horizon, windows, step) for a series of ``n_months``; windows 0 when too short.

    The first cut-off leaves at least ``MIN_TRAIN`` months to fit on; the backtest horizon is the forecast
    horizon when the series allows, else shorter; cut-offs are ``min(horizon, MAX_STEP)`` months apart.
    """
    room = n_months - MIN_TRAIN
    if room < 1 or windows < 1:
        return 0, 0, 0
    h = min(horizon, room)
    step = min(h, MAX_STEP)
    return h, min(windows, 1 + (room - h) // step), step


def _statsforecast(models: list[str], n_jobs: int) -> Any:
    from statsforecast import StatsForecast

    return StatsForecast(models=[_model(m) for m in models], freq="MS", n_jobs=n_jobs,
                         fallback_model=_model(BASELINE) if BASELINE in models else None)


def _beats(mae: float, naive_mae: float) -> bool:
    return bool(naive_mae > 0 and mae < naive_mae - 1e-9 * max(1.0, naive_mae))


# -- forecast ---------------------------------------------------------------------------------------------
def forecast(series: pd.DataFrame, *, keys: Sequence[str] = ("province", "drug"), horizon: int = 6,
             levels: Sequence[int] = (80, 95), windows: int = 3, refit: bool = True,
             n_jobs: int = 1) -> Forecast:
    """Forecast each series ``horizon`` months ahead with the model its rolling-origin backtest favours.

    ``series``: columns *keys, period, y (``monthly_series``). ``windows``: backtest windows (fewer when a
    series is short). ``refit=True`` re-estimates every model at every cut-off; ``refit=False`` estimates
    it once, at the first cut-off, and rolls its state forward through later windows (about twice as fast).
    ``n_jobs`` > 1 runs statsforecast in worker processes (no faster for a few hundred series).
    """
    keys = _keys(keys)
    _check(series, keys, horizon, levels, windows)
    levels = tuple(sorted(int(v) for v in levels))
    history = _regular(series, keys)
    if history.empty:  # nothing visible to forecast: empty tables with the contract's columns
        return _empty(keys, levels, refit)
    ids = history[list(keys)].drop_duplicates().reset_index(drop=True) if keys else pd.DataFrame(index=[0])
    ids["unique_id"] = [f"{i:06d}" for i in range(len(ids))]
    df = (history.merge(ids, on=list(keys)) if keys else history.assign(unique_id=ids["unique_id"][0]))
    df = df.rename(columns={"period": "ds"})[["unique_id", "ds", "y"]]
    lengths = df.groupby("unique_id").size()
    nonzero = (df["y"] != 0).groupby(df["unique_id"]).sum()

    rows: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, uids in lengths.groupby(lengths).groups.items():
            rows += _backtest(df[df["unique_id"].isin(uids)], int(n), horizon, windows, refit, n_jobs)
        accuracy = pd.DataFrame(rows)
        if len(accuracy):
            accuracy["n_months"] = accuracy["unique_id"].map(lengths)
            accuracy["nonzero_months"] = accuracy["unique_id"].map(nonzero)
        chosen = accuracy[accuracy["chosen"]].set_index("unique_id")["model"]
        frames = [_final(df[df["unique_id"].isin(u)], m, horizon, levels, n_jobs)
                  for m, u in chosen.groupby(chosen).groups.items()]
    fc = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["unique_id", "ds"])
    out_fc = _finish_forecasts(fc, ids, keys, levels)
    out_acc = _finish_accuracy(accuracy, ids, keys)
    hist = history.copy()
    method = _method(out_acc, horizon, levels, refit)
    for frame in (out_fc, out_acc, hist):
        frame.attrs["method"] = method
    return Forecast(out_fc, out_acc, hist)


def _empty(keys: tuple[str, ...], levels: tuple[int, ...], refit: bool) -> Forecast:
    bounds = [f"{side}_{level}" for level in levels for side in ("lo", "hi")]
    fc = pd.DataFrame({c: pd.Series(dtype=object) for c in [*keys, *FORECAST_COLUMNS, *bounds]})
    acc = pd.DataFrame({c: pd.Series(dtype=object) for c in [*keys, *ACCURACY_COLUMNS]})
    hist = pd.DataFrame({c: pd.Series(dtype=object) for c in [*keys, "period", "y"]})
    method = _method(acc, 0, levels, refit)
    for frame in (fc, acc, hist):
        frame.attrs["method"] = method
    return Forecast(fc, acc, hist)


def _check(series: pd.DataFrame, keys: tuple[str, ...], horizon: int, levels: Sequence[int],
           windows: int) -> None:
    missing = [c for c in (*keys, "period", "y") if c not in series.columns]
    if missing:
        raise InvalidInput(f"the series frame has no column {', '.join(map(repr, missing))}; "
                           "make it with monthly_series(..., keys=...) using the same keys")
    if not 1 <= int(horizon) <= MAX_HORIZON:
        raise InvalidInput(f"the horizon must be 1 to {MAX_HORIZON} months, not {horizon}")
    if not levels or any(not 0 < float(v) < 100 or float(v) != int(v) for v in levels):
        raise InvalidInput(f"interval levels must be whole percentages between 0 and 100, not {list(levels)}")
    if not 0 <= int(windows) <= 24:
        raise InvalidInput(f"backtest windows must be 0 to 24, not {windows}")
    y = pd.to_numeric(series["y"], errors="coerce")
    if y.isna().any() or not np.isfinite(y.to_numpy(dtype=float)).all():
        raise InvalidInput("the series has missing or infinite values in 'y'")


def _regular(series: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """Each series on consecutive months from its first to its last, gaps as 0 (as statsforecast needs)."""
    data = series[[*keys, "period", "y"]].copy()
    data["period"] = _month_start(data["period"])
    data["y"] = data["y"].astype(float)
    data = data.groupby([*keys, "period"], sort=True)["y"].sum().reset_index()
    if data.empty:
        return data
    if not keys:
        months = pd.date_range(data["period"].min(), data["period"].max(), freq="MS")
        y = data.set_index("period")["y"].reindex(months, fill_value=0.0)
        return pd.DataFrame({"period": months, "y": y.to_numpy(dtype=float)})
    spans = data.groupby(list(keys), sort=True)["period"].agg(["min", "max"]).reset_index()
    months = pd.DataFrame({"period": pd.date_range(spans["min"].min(), spans["max"].max(), freq="MS")})
    grid = spans.merge(months, how="cross")
    grid = grid[(grid["period"] >= grid["min"]) & (grid["period"] <= grid["max"])]
    out = grid[[*keys, "period"]].merge(data, on=[*keys, "period"], how="left")
    out["y"] = out["y"].fillna(0.0)
    return out.sort_values([*keys, "period"], ignore_index=True)


def _backtest(df: pd.DataFrame, n: int, horizon: int, windows: int, refit: bool,
              n_jobs: int) -> list[dict[str, Any]]:
    """Accuracy rows (one per series × model) for series of the same length ``n``."""
    h, w, step = backtest_plan(n, horizon, windows)
    uids = df["unique_id"].unique()
    if w == 0:
        fallback = BASELINE if n > SEASON else SHORT_FALLBACK
        return [dict(unique_id=u, model=fallback, mae=math.nan, naive_mae=math.nan, mase=math.nan,
                     beats_naive=False, chosen=True, windows=0, backtest_horizon=0) for u in uids]
    cv = _statsforecast(list(MODELS), n_jobs).cross_validation(
        df=df, h=h, n_windows=w, step_size=step, refit=refit)
    err = pd.DataFrame({m: (cv[m].clip(lower=0) - cv["y"]).abs() for m in MODELS})
    mae = err.groupby(cv["unique_id"].to_numpy()).mean()
    rows = []
    for uid in uids:
        naive = float(mae.at[uid, BASELINE])
        scores = {m: float(mae.at[uid, m]) for m in MODELS}
        beats = {m: m != BASELINE and _beats(scores[m], naive) for m in MODELS}
        better = [m for m in MODELS if beats[m]]
        pick = min(better, key=lambda m: (scores[m], MODELS.index(m))) if better else BASELINE
        for m in MODELS:
            rows.append(dict(unique_id=uid, model=m, mae=scores[m], naive_mae=naive,
                             mase=scores[m] / naive if naive > 0 else math.nan, beats_naive=beats[m],
                             chosen=m == pick, windows=w, backtest_horizon=h))
    return rows


def _final(df: pd.DataFrame, model: str, horizon: int, levels: tuple[int, ...], n_jobs: int) -> pd.DataFrame:
    """Forecasts of one model for the series in ``df``; interval half-widths never shrink with the horizon.

    AutoTheta's intervals come from simulated paths, whose sampling noise can make month h + 1's interval
    narrower than month h's; a running maximum of each half-width removes that (it only ever widens an
    interval, and changes nothing for the other models, whose error variance grows with the horizon).
    """
    fc = _statsforecast([model], n_jobs).forecast(df=df, h=horizon, level=list(levels))
    fc = fc.sort_values(["unique_id", "ds"], ignore_index=True)
    out = pd.DataFrame({"unique_id": fc["unique_id"].to_numpy(), "ds": fc["ds"].to_numpy(), "model": model,
                        "point": fc[model].to_numpy(dtype=float)})
    by = out["unique_id"]
    for level in levels:
        below = (out["point"] - fc[f"{model}-lo-{level}"].astype(float)).groupby(by).cummax()
        above = (fc[f"{model}-hi-{level}"].astype(float) - out["point"]).groupby(by).cummax()
        out[f"lo_{level}"] = out["point"] - below
        out[f"hi_{level}"] = out["point"] + above
    return out


def _finish_forecasts(fc: pd.DataFrame, ids: pd.DataFrame, keys: tuple[str, ...],
                      levels: tuple[int, ...]) -> pd.DataFrame:
    bounds = [f"{side}_{level}" for level in levels for side in ("lo", "hi")]
    if fc.empty:
        empty = pd.DataFrame(columns=[*keys, *FORECAST_COLUMNS, *bounds])
        return empty.astype({"period": "datetime64[ns]", "point": float, **{b: float for b in bounds}})
    point = fc["point"].fillna(0.0).clip(lower=0.0)
    fc["point"] = point
    for b in bounds:  # no residual to estimate a spread from (one-month series): a zero-width interval
        fc[b] = fc[b].fillna(point).clip(lower=0.0)
    for level in levels:  # an interval always holds its point, after clipping too
        fc[f"lo_{level}"] = np.minimum(fc[f"lo_{level}"], point)
        fc[f"hi_{level}"] = np.maximum(fc[f"hi_{level}"], point)
    out = fc.merge(ids, on="unique_id").rename(columns={"ds": "period"})
    out["period"] = pd.to_datetime(out["period"])
    return out[[*keys, *FORECAST_COLUMNS, *bounds]].sort_values([*keys, "period"], ignore_index=True)


def _finish_accuracy(acc: pd.DataFrame, ids: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    if acc.empty:
        return pd.DataFrame(columns=[*keys, *ACCURACY_COLUMNS])
    out = acc.merge(ids, on="unique_id")
    out["order"] = out["model"].map({m: i for i, m in enumerate(MODELS)})
    out = out.sort_values([*keys, "order"], ignore_index=True)
    for col in ("n_months", "windows", "backtest_horizon", "nonzero_months"):
        out[col] = out[col].astype(int)
    out["beats_naive"] = out["beats_naive"].astype(bool)
    out["chosen"] = out["chosen"].astype(bool)
    return out[[*keys, *ACCURACY_COLUMNS]]


def _method(acc: pd.DataFrame, horizon: int, levels: tuple[int, ...], refit: bool) -> str:
    done = acc[acc["windows"] > 0] if len(acc) else acc
    short = f"series under {MIN_TRAIN + 1} months get no backtest (MASE NaN)"
    if len(done):
        windows = "/".join(map(str, sorted(set(done["windows"]))))
        months = "/".join(map(str, sorted(set(done["backtest_horizon"]))))
        plan = (f"{windows} rolling-origin window(s) of {months} months, cut-offs up to {MAX_STEP} months apart"
                f" after at least {MIN_TRAIN} months, " + ("refitted at each cut-off" if refit else
                                                          "fitted at the first cut-off only") + f"; {short}")
    else:
        plan = short
    return (f"{horizon}-month forecasts by statsforecast: per series SeasonalNaive(12), Naive, AutoETS (additive "
            f"errors) and AutoTheta are backtested ({plan}); MASE = a model's backtest MAE / seasonal naive's "
            "over the same months, and the lowest-MAE model is used only if it beats seasonal naive "
            "(MASE < 1), else seasonal naive (naive under 13 months). "
            f"{' and '.join(map(str, levels))} % intervals assume normal errors; counts are clipped at 0.")
