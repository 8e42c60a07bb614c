"""Trends: how many incidents, seizures, persons and kilograms, per week, month or quarter and per group.

The question an analyst asks first is "more or less than before, and where?". ``trend`` answers it from
the plain tables of ``analytics.tables`` (or any frame of the same shape, such as UNODC's IDS file), and
``trend_query`` gives the same counts by GROUP BY in the database, for pages over large stores. Both
return one row per period and group, zero-filled, so that a missing month reads as zero and not as a gap.
``year_over_year`` compares each period with the same period a year before; ``decompose`` splits one
series into trend, seasonal and remainder (STL), so that a December rise is not mistaken for a change.

Counting rules (the same in ``trend`` and ``trend_query``, see docs/analytics-trends.md):

- ``incidents`` counts distinct incidents. Grouped by a seizure dimension (drug, transport), an incident
  counts once in every group it has a seizure in, so groups may sum to more than the total; incidents
  without a seizure then count nowhere. Otherwise every incident counts, with or without seizure (when the
  arrests table is given to ``trend``).
- ``seizures`` counts seizure rows, ``kg`` sums their ``mass_kg`` (a seizure with no mass adds nothing),
  ``street_value_usd`` sums kg x UNODC price (``analytics.prices``).
- ``persons_arrested`` counts arrest rows (person x incident). Grouped by drug or transport, a person counts
  under each drug (mode) seized in their incident. Grouped by ``nationality`` (a property of persons),
  only ``persons_arrested`` is defined; incidents, seizures, kg and street value are NaN.
- A dimension value that is not recorded (the province of an incident abroad, an unstated transport mode)
  is grouped as ``"unknown"``. Rows without a date are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Select, distinct, func, select
from sqlalchemy.orm import Session

from narcotrack.analytics import tables
from narcotrack.analytics.prices import street_value
from narcotrack.analytics.tables import Conn, Visible
from narcotrack.errors import InvalidInput
from narcotrack.store.schema import Arrest, Incident, Organisation, Person, Seizure

PERIODS = ("week", "month", "quarter")
DIMENSIONS = ("drug", "province", "district", "agency", "country", "transport", "nationality")
MEASURES = ("incidents", "seizures", "persons_arrested", "kg", "street_value_usd")
SOURCE_COLUMN = {"drug": "drug", "province": "province_code", "district": "district_code",
                 "agency": "reporting_org", "country": "country", "transport": "transport_mode",
                 "nationality": "nationality"}
SEIZURE_DIMS = frozenset({"drug", "transport"})
UNKNOWN = "unknown"
SEASON = {"week": 52, "month": 12, "quarter": 4}
_FREQ = {"week": "W-MON", "month": "MS", "quarter": "QS"}


# -- periods and checks -----------------------------------------------------------------------------------
def period_start(dates: pd.Series, period: str) -> pd.Series:
    """The first day of each date's period: Monday of the ISO week, first of the month or quarter."""
    d = pd.to_datetime(dates).dt.normalize()
    if period == "week":
        return d - pd.to_timedelta(d.dt.weekday, unit="D")
    return d.dt.to_period("M" if period == "month" else "Q").dt.start_time


def _check(period: str, by: Sequence[str]) -> tuple[str, ...]:
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    if isinstance(by, str):
        by = tuple(b for b in by.split(",") if b)
    dims = tuple(by)
    bad = [b for b in dims if b not in DIMENSIONS]
    if bad:
        raise InvalidInput(f"cannot group by {bad[0]!r}: choose from {', '.join(DIMENSIONS)}")
    if len(set(dims)) != len(dims):
        raise InvalidInput("each dimension may appear in 'by' only once")
    return dims


def _bound(value: dt.date | str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a date: {value!r}") from exc


def _zero_fill(frame: pd.DataFrame, period: str, by: tuple[str, ...], measures: Sequence[str],
               start: pd.Timestamp | None, end: pd.Timestamp | None, nan_measures: Sequence[str] = ()
               ) -> pd.DataFrame:
    """Every period from the first (``start``'s, else the data's) to the last x every group seen."""
    cols = ["period", *by, *measures]
    if frame.empty and (start is None or end is None):
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "period" else object) for c in cols})
    first = period_start(pd.Series([start]), period).iloc[0] if start is not None else frame["period"].min()
    last = period_start(pd.Series([end]), period).iloc[0] if end is not None else frame["period"].max()
    periods = pd.DataFrame({"period": pd.date_range(first, last, freq=_FREQ[period])})
    groups = frame[list(by)].drop_duplicates() if by else pd.DataFrame(index=[0])
    grid = periods.merge(groups, how="cross") if by else periods
    out = grid.merge(frame, on=["period", *by], how="left")
    for m in measures:
        if m in nan_measures:
            out[m] = np.nan
        elif m in ("kg", "street_value_usd"):
            out[m] = pd.to_numeric(out[m]).astype(float).fillna(0.0)
        else:  # numeric first: an empty or all-missing column comes as objects
            out[m] = pd.to_numeric(out[m]).fillna(0).astype("int64")
    return out[cols].sort_values([*by, "period"], ignore_index=True)


# -- trend from frames --------------------------------------------------------------------------------------
def _prepare(frame: pd.DataFrame, period: str, start: pd.Timestamp | None, end: pd.Timestamp | None,
             dims: Sequence[str]) -> pd.DataFrame:
    when = pd.to_datetime(frame["occurred_on"])
    keep = when.notna()
    if start is not None:
        keep &= when >= start
    if end is not None:
        keep &= when <= end
    out = pd.DataFrame({"incident_id": frame.loc[keep, "incident_id"], "period": period_start(when[keep], period)})
    for d in dims:
        values = frame.loc[keep, SOURCE_COLUMN[d]]
        out[d] = values.where(values.notna() & (values.astype(str) != ""), UNKNOWN).astype(str)
    return out


def trend(seizures: pd.DataFrame, arrests: pd.DataFrame | None = None, *, period: str = "month",
          by: Sequence[str] = (), start: dt.date | None = None, end: dt.date | None = None,
          prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """Counts per period and group: period, *by, incidents, seizures, persons_arrested, kg, street_value_usd.

    ``seizures`` and ``arrests`` are shaped like ``tables.seizures`` and ``tables.arrests``; without
    ``arrests``, persons_arrested is NaN and only incidents with a seizure are counted. ``prices`` is a
    ``prices.price_table`` (default: Cambodia's retail prices). Counting rules: the module docstring.
    """
    dims = _check(period, by)
    lo, hi = _bound(start), _bound(end)
    if lo is not None and hi is not None and lo > hi:
        raise InvalidInput("start is after end")
    seizure_dims = [d for d in dims if d in SEIZURE_DIMS]
    if "nationality" in dims and arrests is None:
        raise InvalidInput("counting by nationality needs the arrests table")
    frames: list[pd.DataFrame] = []
    nan_measures: list[str] = [] if arrests is not None else ["persons_arrested"]
    if "nationality" in dims:
        nan_measures = ["incidents", "seizures", "kg", "street_value_usd"]
    if arrests is not None:
        a_dims = [d for d in dims if d not in SEIZURE_DIMS]
        a = _prepare(arrests, period, lo, hi, a_dims)
        if seizure_dims:  # a person counts under each drug (mode) of their incident
            s_keys = _prepare(seizures, period, lo, hi, seizure_dims)[["incident_id", *seizure_dims]]
            a = a.merge(s_keys.drop_duplicates(), on="incident_id")
        frames.append(a.groupby(["period", *dims]).size().rename("persons_arrested").reset_index())
    if "nationality" not in dims:
        s = _prepare(seizures, period, lo, hi, dims)
        s["kg"] = pd.to_numeric(seizures.loc[s.index, "mass_kg"], errors="coerce").astype(float)
        valued = street_value(pd.DataFrame({"drug": seizures.loc[s.index, "drug"], "kg": s["kg"],
                                            "period": s["period"]}), prices)
        s["street_value_usd"] = valued["street_value_usd"].fillna(0.0)
        g = s.groupby(["period", *dims])
        frames.append(pd.DataFrame({"seizures": g.size(), "kg": g["kg"].sum(),
                                    "street_value_usd": g["street_value_usd"].sum()}).reset_index())
        if seizure_dims or arrests is None:
            frames.append(g["incident_id"].nunique().rename("incidents").reset_index())
        else:  # every incident, with or without seizure
            a_inc = _prepare(arrests, period, lo, hi, dims)
            both = pd.concat([s[["incident_id", "period", *dims]], a_inc], ignore_index=True)
            frames.append(both.groupby(["period", *dims])["incident_id"].nunique().rename("incidents")
                          .reset_index())
    merged = frames[0]
    for f in frames[1:]:
        merged = merged.merge(f, on=["period", *dims], how="outer")
    out = _zero_fill(merged, period, dims, MEASURES, lo, hi, nan_measures)
    out.attrs.update(period=period, by=dims, method=_method(period, dims, arrests is not None))
    return out


def _method(period: str, dims: Sequence[str], persons: bool) -> str:
    text = (f"Counts per {period} (zero-filled): incidents are distinct incidents, seizures are seizure "
            "records, kg sums the recorded mass, street value prices kg at UNODC retail prices for Cambodia.")
    if SEIZURE_DIMS & set(dims):
        text += " An incident (and its arrested persons) counts under every drug or transport mode it involves."
    if "nationality" in dims:
        text += " By nationality only persons arrested are counted."
    elif not persons:
        text += " Persons arrested were not counted."
    return text


# -- trend in the database ----------------------------------------------------------------------------------
def _period_sql(dialect: str, period: str) -> ColumnElement[Any]:
    """The period key as text: 'YYYY-MM' (months; quarters are summed from them) or the week's Monday."""
    if dialect == "sqlite":
        if period == "week":
            return func.date(Incident.occurred_on, "weekday 0", "-6 days")
        return func.substr(Incident.occurred_on, 1, 7)
    if period == "week":
        return func.to_char(func.date_trunc("week", Incident.occurred_on), "YYYY-MM-DD")
    return func.to_char(Incident.occurred_on, "YYYY-MM")


_INCIDENT_COLUMN = {"province": Incident.province_code, "district": Incident.district_code,
                    "agency": Incident.reporting_org_id, "country": Incident.country}


def _dim_column(d: str, seizure: Any = Seizure) -> ColumnElement[Any]:
    if d in SEIZURE_DIMS:
        return seizure.drug if d == "drug" else seizure.transport_mode
    if d == "nationality":
        return Person.nationality  # type: ignore[return-value]
    return _INCIDENT_COLUMN[d]  # type: ignore[return-value]


def _restrict(q: Select[Any], visible: Visible | None, start: dt.date | None, end: dt.date | None
              ) -> Select[Any]:
    """Visible dated incidents in the window (undated ones belong to no period)."""
    restricted: Select[Any] = tables.restrict(q.where(Incident.occurred_on.is_not(None)), visible, start, end)
    return restricted


def _run(conn: Conn, q: Select[Any], names: list[str], period: str, dims: tuple[str, ...]) -> pd.DataFrame:
    rows = conn.execute(q).all()
    df = pd.DataFrame.from_records(rows, columns=["key", *dims, *names])
    when = df["key"].astype(str) if period == "week" else df["key"].astype(str) + "-01"
    df["period"] = pd.to_datetime(when, format="%Y-%m-%d")
    for d in dims:
        df[d] = df[d].where(df[d].notna() & (df[d].astype(str) != ""), UNKNOWN).astype(str)
    if period == "quarter":
        df["period"] = period_start(df["period"], period)
    if period == "quarter" or df.duplicated(["period", *dims]).any():
        # quarters are summed from months (an incident lies in one month, so distinct counts add up);
        # so are groups that differed only as None and "" (both "unknown")
        return df.groupby(["period", *dims], as_index=False)[names].sum(min_count=1)
    return df[["period", *dims, *names]]


def trend_query(conn: Conn, visible: Visible | None = None, *, period: str = "month",
                by: Sequence[str] = ("drug", "province"), start: dt.date | None = None,
                end: dt.date | None = None, persons: bool = False, cache: bool = False) -> pd.DataFrame:
    """``trend``'s counts by GROUP BY in the database: period, *by, incidents, seizures, kg.

    The same numbers as ``trend(tables.seizures(...), tables.arrests(...))`` on the same store and
    visibility; ``persons=True`` (implied by ``nationality``) adds persons_arrested. Street value is not
    computed here (``prices.street_value`` on a frame with drug and kg gives it).

    ``cache=True`` counts committed rows only: months and quarters grouped by drug, province, agency and
    country are read from the monthly summaries (``store.summary``; the whole months of the window, with
    the days of a month cut by ``start`` or ``end`` counted directly), and the result is kept per caller's
    visibility scope until the store changes (``store.figures``' cache). ``visible`` must then filter by
    the sharing columns alone, as ``access.policy.visible_filter`` does.
    """
    dims = _check(period, by)
    if start is not None and end is not None and start > end:
        raise InvalidInput("start is after end")
    if cache:
        from narcotrack.store.figures import _cached

        kind = f"trend_query|{period}|{','.join(dims)}|{start}|{end}|{persons}"
        result: pd.DataFrame = _cached(conn, visible, kind, lambda c: _trend_query(
            c, visible, period, dims, start, end, persons, summary=True))
        return result
    return _trend_query(conn, visible, period, dims, start, end, persons)


def _trend_query(conn: Conn, visible: Visible | None, period: str, dims: tuple[str, ...],
                 start: dt.date | None, end: dt.date | None, persons: bool, summary: bool = False
                 ) -> pd.DataFrame:
    persons = persons or "nationality" in dims
    if summary and period in SUMMARY_PERIODS and set(dims) <= set(SUMMARY_COLUMN) and committed(conn):
        merged = _from_summary(conn, visible, period, dims, start, end, persons)
        how = " Counted in the database (monthly summaries)."
    else:
        merged = _grouped(conn, visible, period, dims, start, end, persons)
        how = " Counted in the database."
    if "agency" in dims:  # organisation ids -> codes, after grouping (the join would cost a lookup per row)
        codes = dict(conn.execute(select(Organisation.id, Organisation.code)).all())
        merged["agency"] = merged["agency"].map(lambda v: codes.get(v, v))
    measures = ["incidents", "seizures", "kg"] + (["persons_arrested"] if persons else [])
    nan = ["incidents", "seizures", "kg"] if "nationality" in dims else []
    out = _zero_fill(merged, period, dims, measures, _bound(start), _bound(end), nan)
    out.attrs.update(period=period, by=dims, method=_method(period, dims, persons).replace(
        ", street value prices kg at UNODC retail prices for Cambodia", "") + how)
    return out


def _grouped(conn: Conn, visible: Visible | None, period: str, dims: tuple[str, ...],
             start: dt.date | None, end: dt.date | None, persons: bool) -> pd.DataFrame:
    """The counts per period and group by GROUP BY over the base tables (not zero-filled)."""
    dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
    key = _period_sql(dialect.name, period).label("key")
    seizure_dims = [d for d in dims if d in SEIZURE_DIMS]
    frames: list[pd.DataFrame] = []
    if "nationality" not in dims:
        cols = [_dim_column(d) for d in dims]
        q: Select[Any] = (select(key, *cols, func.count(distinct(Seizure.incident_id)), func.count(), func.sum(Seizure.mass_kg))
             .select_from(Seizure).join(Incident, Incident.id == Seizure.incident_id))
        q = _restrict(q, visible, start, end).group_by(key, *cols)
        part = _run(conn, q, ["incidents", "seizures", "kg"], period, dims)
        if not seizure_dims:  # every incident counts, with or without seizure
            iq: Select[Any] = _restrict(select(key, *cols, func.count()).select_from(Incident), visible, start, end)
            inc = _run(conn, iq.group_by(key, *cols), ["incidents"], period, dims)
            part = part.drop(columns="incidents").merge(inc, on=["period", *dims], how="outer")
        frames.append(part)
    if persons:
        pdims = [d for d in dims if d not in SEIZURE_DIMS]
        if seizure_dims:  # each person under each drug (mode) of their incident
            kinds = select(Seizure.incident_id, *(_dim_column(d) for d in seizure_dims)).distinct().subquery()
            pcols = [_dim_column(d, kinds.c) if d in SEIZURE_DIMS else _dim_column(d) for d in dims]
            pq: Select[Any] = (select(key, *pcols, func.count()).select_from(Arrest)
                  .join(Incident, Incident.id == Arrest.incident_id)
                  .join(kinds, kinds.c.incident_id == Arrest.incident_id))
        else:
            pcols = [_dim_column(d) for d in pdims]
            pq = select(key, *pcols, func.count()).select_from(Arrest).join(Incident, Incident.id == Arrest.incident_id)
        if "nationality" in dims:
            pq = pq.join(Person, Person.id == Arrest.person_id)
        pq = _restrict(pq, visible, start, end).group_by(key, *pcols)
        frames.append(_run(conn, pq, ["persons_arrested"], period, dims))
    return _merge(frames, dims)


def _merge(frames: list[pd.DataFrame], dims: Sequence[str]) -> pd.DataFrame:
    merged = frames[0]
    for f in frames[1:]:
        merged = merged.merge(f, on=["period", *dims], how="outer")
    return merged


# -- trend from the monthly summaries -----------------------------------------------------------------------
SUMMARY_PERIODS = ("month", "quarter")
SUMMARY_COLUMN = {"drug": "drug", "province": "province_code", "agency": "reporting_org_id", "country": "country"}


def committed(conn: Conn) -> bool:
    """Whether ``conn`` sees only committed data of the counted tables (the summaries then agree with it)."""
    from narcotrack.store.figures import data_version

    return data_version(conn) is not None


def _month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _split(start: dt.date | None, end: dt.date | None
           ) -> tuple[tuple[str | None, str | None] | None, list[tuple[dt.date, dt.date]]]:
    """The whole months of [start, end] as ('YYYY-MM' or None, 'YYYY-MM' or None), and the cut days left."""
    first: dt.date | None = start if start is None or start.day == 1 else _next_month(start)
    whole_end: dt.date | None = end
    if end is not None and _next_month(end) - dt.timedelta(days=1) != end:
        # the end cuts its month: the whole months stop the day before that month begins
        whole_end = _month_start(end) - dt.timedelta(days=1)
    if first is not None and whole_end is not None and first > whole_end:
        return None, [(start, end)] if start is not None and end is not None else []
    edges: list[tuple[dt.date, dt.date]] = []
    if start is not None and first is not None and first != start:
        edges.append((start, first - dt.timedelta(days=1)))
    if end is not None and whole_end is not None and whole_end != end:
        edges.append((whole_end + dt.timedelta(days=1), end))
    months = (first.strftime("%Y-%m") if first else None, whole_end.strftime("%Y-%m") if whole_end else None)
    return months, edges


def _from_summary(conn: Conn, visible: Visible | None, period: str, dims: tuple[str, ...],
                  start: dt.date | None, end: dt.date | None, persons: bool) -> pd.DataFrame:
    """The whole months from the summaries (refreshed first, in their own transaction), the cut days of
    the window's first and last month directly; an incident lies in one month, so the parts add up."""
    from narcotrack.store import summary

    months, edges = _split(start, end)
    parts = [_grouped(conn, visible, period, dims, lo, hi, persons) for lo, hi in edges]
    if months is not None:
        bind = conn.get_bind() if isinstance(conn, Session) else conn
        with summary.current(bind.engine) as own:
            parts.append(_summary_counts(own, visible, period, dims, months, persons))
    names = ["incidents", "seizures", "kg"] + (["persons_arrested"] if persons else [])
    parts = [p for p in parts if len(p)] or parts[:1]  # an empty frame in a concat would decide the dtypes
    if len(parts) == 1:
        return parts[0]
    # a missing count is a zero here (zero-filling makes it one anyway; nationality never comes this way)
    numeric = [p.assign(**{n: pd.to_numeric(p[n]).fillna(0) for n in names}) for p in parts]
    return pd.concat(numeric, ignore_index=True).groupby(["period", *dims], as_index=False)[names].sum()


def _summary_counts(conn: Connection, visible: Visible | None, period: str, dims: tuple[str, ...],
                    months: tuple[str | None, str | None], persons: bool) -> pd.DataFrame:
    from narcotrack.store.schema import trend_month_drug, trend_month_incident

    def query(table: Any, measures: list[str]) -> Select[Any]:
        cols = [table.c[SUMMARY_COLUMN[d]] for d in dims]
        q = select(table.c.month, *cols, *(func.sum(table.c[m]) for m in measures))
        if visible is not None:
            q = q.where(visible(table))
        if months[0] is not None:
            q = q.where(table.c.month >= months[0])
        if months[1] is not None:
            q = q.where(table.c.month <= months[1])
        return q.group_by(table.c.month, *cols)

    drug_measures = ["incidents", "seizures", "kg"] + (["persons"] if persons and "drug" in dims else [])
    frame = _run(conn, query(trend_month_drug, drug_measures), ["incidents", "seizures", "kg", "persons_arrested"]
                 [: len(drug_measures)], period, dims)
    if "drug" not in dims:  # every incident counts, with or without seizure
        inc_measures = ["incidents"] + (["persons"] if persons else [])
        inc = _run(conn, query(trend_month_incident, inc_measures), ["incidents", "persons_arrested"]
                   [: len(inc_measures)], period, dims)
        frame = frame.drop(columns="incidents").merge(inc, on=["period", *dims], how="outer")
    return frame


# -- comparisons --------------------------------------------------------------------------------------------
def _dims_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c in DIMENSIONS]


def _period_of(frame: pd.DataFrame) -> str:
    kind = frame.attrs.get("period")
    if kind in PERIODS:
        return str(kind)
    steps = pd.Series(sorted(pd.to_datetime(frame["period"]).unique())).diff().dt.days.dropna()
    if steps.empty:
        raise InvalidInput("cannot tell the period (week, month, quarter) of a frame with one period")
    step = steps.min()
    return "week" if step <= 7 else "month" if step <= 31 else "quarter"


def _measure(frame: pd.DataFrame, measure: str) -> None:
    if "period" not in frame.columns or measure not in frame.columns:
        raise InvalidInput(f"the frame needs a period and a {measure!r} column (a trend table)")


def year_over_year(trend_frame: pd.DataFrame, measure: str = "seizures") -> pd.DataFrame:
    """Each period against the same period a year before: period, *by, value, prior, change, change_pct.

    A year before is 12 months, 4 quarters or 52 weeks (so a week is compared with the same weekday
    52 weeks earlier). ``prior`` is NaN where the frame does not reach back a year; ``change_pct`` (per
    cent) is NaN when prior is 0 or missing.
    """
    _measure(trend_frame, measure)
    dims = _dims_of(trend_frame)
    kind = _period_of(trend_frame)
    base = trend_frame[["period", *dims, measure]].rename(columns={measure: "value"})
    base["period"] = pd.to_datetime(base["period"])
    back = pd.Timedelta(weeks=52) if kind == "week" else pd.DateOffset(years=1)
    prior = base.rename(columns={"value": "prior"})
    prior["period"] = prior["period"] + back
    out = base.merge(prior, on=["period", *dims], how="left")
    out["change"] = out["value"] - out["prior"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * out["change"] / out["prior"]
    out["change_pct"] = pct.where(out["prior"] > 0)
    out = out[["period", *dims, "value", "prior", "change", "change_pct"]].sort_values([*dims, "period"],
                                                                                     ignore_index=True)
    out.attrs.update(period=kind, by=tuple(dims), method=(
        f"Year-over-year change of {measure}: each {kind} against the same {kind} a year before "
        f"({'52 weeks' if kind == 'week' else '12 months'}); change_pct is empty where the year before was 0."))
    return out


def decompose(trend_frame: pd.DataFrame, measure: str = "seizures", *, robust: bool = True) -> pd.DataFrame:
    """STL decomposition of one series: period, observed, trend, seasonal, resid (observed = sum of the three).

    The frame must hold one series (aggregate first: ``trend(..., by=())``) with at least two full seasonal
    cycles (24 months, 8 quarters or 104 weeks). ``robust`` STL down-weights outliers so that one huge
    seizure does not bend the seasonal pattern.
    """
    from statsmodels.tsa.seasonal import STL

    _measure(trend_frame, measure)
    dims = _dims_of(trend_frame)
    if dims and len(trend_frame[dims].drop_duplicates()) > 1:
        raise InvalidInput("decompose takes one series: aggregate over " + ", ".join(dims) + " first")
    kind = _period_of(trend_frame)
    season = SEASON[kind]
    series = (trend_frame.assign(period=pd.to_datetime(trend_frame["period"])).groupby("period")[measure].sum()
              .asfreq(_FREQ[kind], fill_value=0).astype(float))
    if len(series) < 2 * season:
        raise InvalidInput(f"a seasonal decomposition needs at least {2 * season} {kind}s, not {len(series)}")
    fit = STL(series, period=season, robust=robust).fit()
    out = pd.DataFrame({"period": series.index, "observed": series.to_numpy(), "trend": fit.trend.to_numpy(),
                        "seasonal": fit.seasonal.to_numpy(), "resid": fit.resid.to_numpy()})
    out.attrs.update(period=kind, method=(
        f"STL decomposition (statsmodels, seasonal period {season} {kind}s{', robust' if robust else ''}) "
        f"of {measure}: observed = trend + seasonal + remainder; the seasonal part repeats yearly and may drift."))
    return out


