"""Alerts: which province x drug (or any series) broke from its own history this month.

A national total hides a surge in one province; a chart per series is too many charts to read. Each series
is therefore compared with what its own past leads one to expect, month by month, and only the breaks are
shown. The comparison uses only the months before the one judged (no look-ahead), so an alert raised
today is the alert that would have been raised then.

Counts (incidents, seizures, persons arrested) get a negative-binomial control limit (in the spirit of
the Farrington method of disease surveillance, simplified so that all series are judged at once):

- expected = level x seasonal factor. The seasonal factor is one annual wave (the first Fourier harmonic of
  up to ``window`` months of history, once there are 24); the level is the mean of the last 12 months,
  deseasonalised, or where the last 24 months rise or fall significantly (slope beyond 2 standard errors)
  that line carried one month ahead.
- the spread is Poisson times an over-dispersion factor phi >= 1 (Pearson statistic of the history around a
  line x the wave), widened for the uncertainty of the forecast itself and, as a t quantile widens a
  normal one, for phi being estimated from a few dozen months;
- the limits are the alpha/2 and 1 - alpha/2 quantiles of that negative binomial; a month outside them is
  flagged, with a two-sided p-value whose -log10 is the ``score``.

Kilograms and street value are zero in many months and heavy-tailed in the others, so they get a hurdle
model instead: a month is positive with the history's frequency, and then log-normal around the history's
positive months. Flagged months are winsorised to the limit they broke before they enter later baselines,
so one surge does not hide the next, while a lasting shift is absorbed over months.

Simulated steady series (tests/analytics/test_anomalies.py) flag fewer than alpha of their months: the
limits err on the side of silence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from narcotrack.errors import InvalidInput

COUNT_MEASURES = ("incidents", "seizures", "persons_arrested")
CONTINUOUS_MEASURES = ("kg", "street_value_usd")
ADDITIVE = ("seizures", "kg", "street_value_usd")  # may be summed over a dimension left out of keys
LEVEL_MONTHS = 12
COLUMNS = ("period", "observed", "expected", "lower", "upper", "excess", "ratio", "score", "flagged",
           "p_value", "direction")


def _series(monthly: pd.DataFrame, measure: str, keys: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray,
                                                                                pd.DatetimeIndex]:
    """Key frame (one row per series), matrix (series x months, zero-filled) and the months."""
    need = {"period", measure, *keys}
    missing = sorted(need - set(monthly.columns))
    if missing:
        raise InvalidInput(f"the monthly frame lacks column(s) {', '.join(missing)}")
    if monthly.empty:
        return pd.DataFrame(columns=list(keys)), np.zeros((0, 0)), pd.DatetimeIndex([])
    kind = monthly.attrs.get("period")
    periods = pd.to_datetime(monthly["period"])
    if (kind is not None and kind != "month") or not (periods.dt.day == 1).all():
        raise InvalidInput("anomalies need a monthly trend (period='month')")
    from narcotrack.analytics.trends import DIMENSIONS

    others = [c for c in monthly.columns if c in DIMENSIONS and c not in keys]
    if others and measure not in ADDITIVE and len(monthly[others].drop_duplicates()) > 1:
        raise InvalidInput(f"{measure} cannot be summed over {', '.join(others)}: count the trend by "
                           f"{', '.join(keys) or 'nothing'} instead")
    frame = monthly.assign(period=periods)
    values = frame.groupby([*keys, "period"])[measure].sum()
    months = pd.date_range(periods.min(), periods.max(), freq="MS")
    if keys:
        wide = values.unstack("period").reindex(columns=months, fill_value=0).fillna(0)
        key_frame = wide.index.to_frame(index=False)
    else:
        wide = values.to_frame().T.reindex(columns=months, fill_value=0).fillna(0)
        key_frame = pd.DataFrame(index=[0])
    return key_frame, wide.to_numpy(dtype=float), months


def _seasonal(hist: np.ndarray, cal: np.ndarray, log: bool) -> tuple[np.ndarray, float]:
    """Seasonal factors (series x 12) as one annual wave, and the relative variance they add.

    The wave is the first Fourier harmonic of the history: two numbers per series instead of twelve
    calendar-month means, so that two or three years of small counts give a usable pattern. On counts it
    multiplies (1 + a cos + b sin, at least 0.1); on the log scale it adds.
    """
    n = hist.shape[1]
    angle = 2 * np.pi * cal / 12
    mean = hist.mean(axis=1, keepdims=True)
    if log:
        dev = hist - mean
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.where(mean > 0, hist / mean - 1.0, 0.0)
    a = 2.0 / n * (dev * np.cos(angle)).sum(axis=1, keepdims=True)
    b = 2.0 / n * (dev * np.sin(angle)).sum(axis=1, keepdims=True)
    months = 2 * np.pi * np.arange(12) / 12
    wave = a * np.cos(months) + b * np.sin(months)
    return (wave if log else np.maximum(1.0 + wave, 0.1)), 2.0 / n


def _baseline(hist: np.ndarray, cal_hist: np.ndarray, cal_now: int, log: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expected level and season of the next month, the fitted history and the prediction's extra variance.

    Returns (level, season_now, fitted, extra): the forecast is level x season_now (log: level +
    season_now); ``fitted`` is the history explained by a straight line x the seasonal wave, whose
    residuals give the spread; ``extra`` is the variance of the forecast itself, relative to one month's
    noise (1/12 for a 12-month mean, more for an extrapolated trend, plus the seasonal wave's 2/n).
    """
    n_series, width = hist.shape
    if width >= 24:
        wave, extra_season = _seasonal(hist, cal_hist, log)
    else:
        wave, extra_season = (np.zeros((n_series, 12)) if log else np.ones((n_series, 12))), 0.0
    season_hist, season_now = wave[:, cal_hist], wave[:, cal_now]
    d = hist - season_hist if log else hist / season_hist
    x = np.arange(width, dtype=float)
    xc = x - x.mean()
    slope = (d * xc).sum(axis=1) / (xc ** 2).sum()
    line = d.mean(axis=1, keepdims=True) + slope[:, None] * xc
    fitted = line + season_hist if log else line * season_hist
    # the level ahead: the mean of the last 12 months, or the last 24 months' line where it is significant
    n_level = min(LEVEL_MONTHS, width)
    level = d[:, -n_level:].mean(axis=1)
    extra = np.full(n_series, 1.0 / n_level)
    if width >= 2 * LEVEL_MONTHS:
        recent = d[:, -2 * LEVEL_MONTHS:]
        xr = np.arange(recent.shape[1], dtype=float)
        xr -= xr.mean()
        sxx = (xr ** 2).sum()
        b = (recent * xr).sum(axis=1) / sxx
        mean_r = recent.mean(axis=1)
        resid = recent - mean_r[:, None] - b[:, None] * xr
        se = np.sqrt((resid ** 2).sum(axis=1) / (recent.shape[1] - 2) / sxx)
        ahead = xr[-1] + 1
        trend = np.abs(b) > 2 * np.maximum(se, 1e-12)
        level = np.where(trend, mean_r + b * ahead, level)
        extra = np.where(trend, 1.0 / recent.shape[1] + ahead ** 2 / sxx, extra)
    return level, season_now, fitted, extra + extra_season


def _limits_counts(hist: np.ndarray, cal_hist: np.ndarray, cal_now: int, y: np.ndarray, alpha: float,
                   ) -> tuple[np.ndarray, ...]:
    width = hist.shape[1]
    level, season_now, fitted, extra = _baseline(hist, cal_hist, cal_now, log=False)
    floor = 0.5 / width
    fitted = np.maximum(fitted, floor)
    dof = max(width - (4 if width >= 24 else 2), 1)
    phi = np.maximum(1.0, ((hist - fitted) ** 2 / fitted).sum(axis=1) / dof)
    mu = np.maximum(level * season_now, floor)
    # phi is estimated from dof months: widen as a t quantile widens a normal one at this alpha
    widen = (stats.t.ppf(1 - alpha / 2, dof) / stats.norm.ppf(1 - alpha / 2)) ** 2
    phi_pred = phi * widen * (1.0 + extra)
    n_nb, p_nb = mu / (phi_pred - 1.0), 1.0 / phi_pred
    lower = stats.nbinom.ppf(alpha / 2, n_nb, p_nb)
    upper = stats.nbinom.ppf(1 - alpha / 2, n_nb, p_nb)
    p_hi = stats.nbinom.sf(y - 1, n_nb, p_nb)
    p_lo = stats.nbinom.cdf(y, n_nb, p_nb)
    return mu, lower, upper, np.minimum(1.0, 2 * np.minimum(p_hi, p_lo))


def _limits_continuous(hist: np.ndarray, cal_hist: np.ndarray, cal_now: int, y: np.ndarray, alpha: float,
                       ) -> tuple[np.ndarray, ...]:
    """A hurdle model: a month is positive with probability pi, and then log-normal (t on the log scale).

    pi = (positive months + 0.5) / (months + 1). Mean and spread of log(value) come from the series'
    positive months; with fewer than three, from the typical series of the frame (median over the series
    with three or more; log-spread 1 when there are none). No seasonal adjustment: the size of seizures
    varies far more than their season.
    """
    width = hist.shape[1]
    positive = hist > 0
    k = positive.sum(axis=1)
    pi = (k + 0.5) / (width + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(positive, np.log(np.where(positive, hist, 1.0)), np.nan)
        m = np.nanmean(np.where(k[:, None] > 0, logs, 0.0), axis=1)
        sd = np.sqrt(np.nansum((logs - m[:, None]) ** 2, axis=1) / np.maximum(k - 1, 1))
    own = k >= 3
    pooled_m = float(np.median(m[own])) if own.any() else float(np.median(m[k > 0])) if (k > 0).any() else 0.0
    pooled_sd = float(np.median(sd[own])) if own.any() else 1.0
    m = np.where(k > 0, m, pooled_m)
    sd = np.where(own, np.maximum(sd, 0.05), pooled_sd) * np.sqrt(1.0 + 1.0 / np.maximum(k, 1))
    df = np.maximum(k - 1, 2).astype(float)
    tail = alpha / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        up_q = np.clip(1.0 - tail / pi, 0.0, 1.0)  # (1 - pi) + pi F(u) = 1 - alpha/2
        upper = np.where(tail >= pi, 0.0, np.exp(m + sd * stats.t.ppf(up_q, df)))
        low_q = (tail - (1.0 - pi)) / pi  # (1 - pi) + pi F(l) = alpha/2
        lower = np.where(low_q > 0, np.exp(m + sd * stats.t.ppf(np.clip(low_q, 1e-300, 1.0), df)), 0.0)
        logy = np.log(np.where(y > 0, y, 1.0))
        size_hi = stats.t.sf((logy - m) / sd, df)
        size_lo = stats.t.cdf((logy - m) / sd, df)
    p_hi = np.where(y > 0, pi * size_hi, 1.0)
    p_lo = np.where(y > 0, (1.0 - pi) + pi * size_lo, 1.0 - pi)
    expected = pi * np.exp(m + np.minimum(sd, 2.0) ** 2 / 2)
    return expected, lower, upper, np.minimum(1.0, 2 * np.minimum(p_hi, p_lo))


def anomalies(monthly: pd.DataFrame, *, measure: str = "seizures", keys: Sequence[str] = ("province", "drug"),
              min_history: int = 12, alpha: float = 0.001, window: int = 36) -> pd.DataFrame:
    """Each month of each series against its own history: *keys, period, observed, expected, lower, upper,
    excess (observed - expected), ratio (observed / expected), score (-log10 p), flagged; also p_value and
    direction ("high", "low" or "").

    ``monthly`` is a monthly trend (``trend``/``trend_query``); months with fewer than ``min_history``
    months before them are not judged and not returned. ``alpha`` is the two-sided false-alarm probability
    of one month of one steady series; ``window`` the months of history the seasonal factors come from.
    """
    keys = tuple(keys)
    if measure not in COUNT_MEASURES + CONTINUOUS_MEASURES:
        raise InvalidInput(f"measure must be one of {', '.join(COUNT_MEASURES + CONTINUOUS_MEASURES)}")
    if not 0 < alpha < 0.5:
        raise InvalidInput("alpha must be between 0 and 0.5")
    if min_history < 3:
        raise InvalidInput("min_history must be at least 3 months")
    if window < min(min_history, LEVEL_MONTHS):
        raise InvalidInput(f"window must be at least {min(min_history, LEVEL_MONTHS)} months")
    key_frame, y, months = _series(monthly, measure, keys)
    count = measure in COUNT_MEASURES
    limits = _limits_counts if count else _limits_continuous
    cal = (months.month - 1).to_numpy()
    clean = y.copy()  # history with past breaks winsorised to the limit they broke
    parts = []
    for t in range(min_history, len(months)):
        lo = max(0, t - window)
        mu, lower, upper, p = limits(clean[:, lo:t], cal[lo:t], int(cal[t]), y[:, t], alpha)
        obs = y[:, t]
        high, low = obs > upper, obs < lower
        clean[:, t] = np.clip(obs, lower, upper)
        part = key_frame.copy()
        part["period"] = months[t]
        part["observed"] = obs
        part["expected"] = mu
        part["lower"], part["upper"] = lower, upper
        part["excess"] = obs - mu
        with np.errstate(divide="ignore", invalid="ignore"):
            part["ratio"] = np.where(mu > 0, obs / mu, np.nan)
        part["p_value"] = p
        part["score"] = -np.log10(np.maximum(p, 1e-300))
        part["flagged"] = high | low
        part["direction"] = np.where(high, "high", np.where(low, "low", ""))
        parts.append(part)
    cols = [*keys, *COLUMNS]
    if not parts:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    else:
        out = pd.concat(parts, ignore_index=True)[cols].sort_values([*keys, "period"], ignore_index=True)
    if count and len(out):
        out["observed"] = out["observed"].astype("int64")
    out["flagged"] = out["flagged"].astype(bool)
    out.attrs.update(measure=measure, keys=keys, alpha=alpha, method=_method(measure, alpha, min_history, window))
    return out


def _method(measure: str, alpha: float, min_history: int, window: int) -> str:
    if measure in COUNT_MEASURES:
        how = ("negative-binomial control limits around a seasonal baseline (last 12 months' level, or a "
               "significant 24-month trend, x an annual wave; over-dispersion from the series' own history)")
    else:
        how = ("limits of a hurdle model (share of months with any, then log-normal size) from the series' "
               f"last {window} months")
    return (f"Each month of {measure} against its own history: {how}; flagged when outside the "
            f"{100 * (1 - alpha):g}% limits (two-sided alpha {alpha:g}: at most about {alpha * 1000:g} false "
            f"alarm per 1,000 months of a steady series). Needs {min_history} months of history.")


def alerts(anomaly_frame: pd.DataFrame, month: str | dt.date | pd.Timestamp | None = None) -> pd.DataFrame:
    """The flagged rows of ``month`` (default: the latest month in the frame), highest score first."""
    if anomaly_frame.empty:
        out = anomaly_frame.copy()
        out.attrs = dict(anomaly_frame.attrs)
        return out
    if month is None:
        when = pd.Timestamp(anomaly_frame["period"].max())
    else:
        try:
            when = pd.Timestamp(month).to_period("M").to_timestamp()
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"not a month: {month!r}") from exc
    rows = anomaly_frame[(pd.to_datetime(anomaly_frame["period"]) == when) & anomaly_frame["flagged"]]
    out = rows.sort_values("score", ascending=False, kind="stable", ignore_index=True)
    out.attrs = dict(anomaly_frame.attrs)
    return out
