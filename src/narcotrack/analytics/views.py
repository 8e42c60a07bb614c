"""One analysis as a caller sees it: load what the caller may see, analyse, chart — in one call.

The web pages and the command line (``narcotrack analyse ...``) both call these functions, so a page and
the CLI always agree; the web layer only parses its form and renders the ``Result``. Each view reads no
more than it needs, so that pages stay quick on a store of a million incidents: counts come from
``trends.trend_query`` (GROUP BY in the database), and only the routes and operations views load rows —
the seizures with route information in the chosen window, and the incidents linked to an operation.

Every view takes the caller's visibility filter (``functools.partial(visible_filter, principal)``, or
``None`` for the whole store), an optional ``gettext`` for the titles and labels, and ``lang`` ("en" or
"km") for the names of drugs and places in the charts. Errors a user can cause (an unknown drug, a date
range the wrong way round) raise ``InvalidInput`` with a message that says what to change.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, and_, func, not_, or_, select, true
from sqlalchemy.orm import aliased

from narcotrack.analytics import (
    anomalies,
    charts,
    forecast,
    geo,
    hotspots,
    operations,
    prices,
    routes,
    sources,
    tables,
    trends,
)
from narcotrack.analytics.tables import Conn, Visible
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import InvalidInput
from narcotrack.store.schema import Arrest, Incident, Organisation, Place, Seizure

Translate = Callable[[str], str]
PERIODS = ("week", "month", "quarter")
DIMENSIONS = trends.DIMENSIONS  # what trend_query groups by
MEASURES = trends.MEASURES  # incidents, seizures, persons_arrested, kg, street_value_usd
LEVELS = ("province", "district")
MAX_SERIES = 6  # series one forecast page fits and shows
TOP_GROUPS = 8  # lines in a trend chart
ROUTE_WINDOW_YEARS = 2  # default window of the routes view: the two years to the latest incident


def _same(text: str) -> str:
    return text


@dataclass
class Result:
    """What a view gives back: a table with its method, a chart of it, and further tables and charts.

    ``extra`` frames carry their own method in ``.attrs["method"]``; ``notes`` are plain statements a
    reader must not miss (the forecast does not beat seasonal-naive; the latest month is incomplete);
    ``params`` are the parameters actually used, defaults filled in."""

    name: str
    title: str
    table: pd.DataFrame
    method: str
    chart: dict[str, Any] | None
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    charts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


def labels(gettext: Translate | None = None) -> dict[str, str]:
    """Column and category names as a reader sees them, for chart axes and table headers."""
    _ = gettext or _same
    return {
        "period": _("Period"), "drug": _("Drug"), "province": _("Province"), "district": _("District"),
        "agency": _("Agency"), "country": _("Country"), "transport": _("Transport"),
        "nationality": _("Nationality"), "incidents": _("Incidents"), "seizures": _("Seizures"),
        "persons_arrested": _("Persons arrested"), "kg": _("kg"), "street_value_usd": _("Street value (USD)"),
        "series": _("Series"), "y": _("Value"), "point": _("Forecast"), "lo_80": _("80 % low"),
        "hi_80": _("80 % high"), "lo_95": _("95 % low"), "hi_95": _("95 % high"), "model": _("Model"),
        "observed": _("Observed"), "expected": _("Expected"), "lower": _("Lower bound"),
        "upper": _("Upper bound"), "excess": _("Excess"), "ratio": _("Ratio"), "score": _("Score"),
        "flagged": _("Flagged"), "code": _("Code"), "name": _("Name"), "name_en": _("Name"), "value": _("Value"),
        "gi_z": _("Gi* z"), "p_value": _("p-value"), "q_value": _("q-value"), "cluster": _("Cluster"),
        "hot": _("hot spot"), "cold": _("cold spot"), "none": _("not significant"),
        "source": _("From"), "target": _("To"), "corridor": _("Corridor"), "place_code": _("Crossing"),
        "stratum": _("Stratum"), "measure": _("Measure"), "difference": _("Joint − single"),
        "joint_mean": _("Joint mean"), "single_mean": _("Single mean"), "joint_n": _("Joint operations"),
        "single_n": _("Single-agency operations"), "ci_low": _("95 % CI low"), "ci_high": _("95 % CI high"),
        "persons": _("Persons"), "network_share": _("Network share"), "mase": _("MASE"),
        "week": _("per week"), "month": _("per month"), "quarter": _("per quarter"),
    }


@functools.cache
def province_outlines() -> dict[str, Any]:
    """The province outlines, prepared for charts once (read-only reference data): simplified to about half
    a pixel of a page's map, which halves the page."""
    return charts.prepared(geo.province_geojson(), tolerance=0.005)


@functools.cache
def _area_names() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"en": {}, "km": {}}
    for level in LEVELS:
        for code, en, km in geo.area_names(level).itertuples(index=False):
            out["en"][code] = en
            out["km"][code] = km or en
    return out


def names(lang: str = "en") -> dict[str, str]:
    """Readable names of drug, province and district codes in ``lang`` (English where Khmer is missing)."""
    km = lang == "km"
    out = {code: (t.name_km if km and t.name_km else t.name_en) for code, t in vocabularies().drugs.terms.items()}
    out.update(_area_names()["km" if km else "en"])
    return out


# -- parameters -----------------------------------------------------------------------------------------
def _one_of(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _dims(by: Iterable[str]) -> tuple[str, ...]:
    dims = tuple(dict.fromkeys(b for b in by if b))
    bad = [b for b in dims if b not in DIMENSIONS]
    if bad:
        raise InvalidInput(f"group by {', '.join(DIMENSIONS)}, not {', '.join(bad)}")
    return dims


def _range(start: dt.date | None, end: dt.date | None) -> None:
    if start and end and start > end:
        raise InvalidInput("the start date is after the end date")


def _month(value: str | dt.date | None) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        return pd.Timestamp(value).to_period("M").to_timestamp()
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"month must be YYYY-MM, not {value!r}") from exc


def _drugs(values: Iterable[str]) -> list[str]:
    drugs = vocabularies().drugs
    out = []
    for v in values:
        code = drugs.resolve(v) if v not in drugs else v
        if code is None:
            raise InvalidInput(f"unknown drug {v!r}")
        out.append(code)
    return out


def _provinces(values: Iterable[str]) -> list[str]:
    known = set(geo.area_names("province")["code"])
    out = [re.sub(r"^KH-(\d)$", r"KH-0\1", v.strip().upper()) for v in values]  # KH-1 (ISO) is KH-01
    bad = [v for v in out if v not in known]
    if bad:
        raise InvalidInput(f"unknown province code {bad[0]!r} (codes look like KH-12)")
    return out


def counts(conn: Conn, visible: Visible | None, *, period: str, by: Sequence[str], measure: str,
           start: dt.date | None = None, end: dt.date | None = None, cache: bool = False) -> pd.DataFrame:
    """``trend_query`` with the column ``measure`` present: persons arrested counted when asked for, street
    value priced per drug (``prices.street_value``) and summed back to the groups asked for."""
    _one_of(measure, MEASURES, "measure")
    dims = tuple(by)
    frame = trends.trend_query(conn, visible, period=period, by=dims, start=start, end=end,
                               persons=measure == "persons_arrested", cache=cache)
    if measure == "street_value_usd":
        per_drug = dims if "drug" in dims else (*dims, "drug")
        priced = prices.street_value(frame if "drug" in dims else trends.trend_query(
            conn, visible, period=period, by=per_drug, start=start, end=end, cache=cache))
        value = priced.groupby(["period", *dims], dropna=False)["street_value_usd"].sum(min_count=1)
        frame = frame.merge(value.reset_index(), on=["period", *dims], how="left")
        frame["street_value_usd"] = frame["street_value_usd"].fillna(0.0)
        frame.attrs["method"] = f"{frame.attrs.get('method', '')} {priced.attrs.get('method', '')}".strip()
    return frame


# -- trends and alerts ----------------------------------------------------------------------------------
def trends_view(conn: Conn, visible: Visible | None = None, *, period: str = "month",
                by: Sequence[str] = ("drug",), measure: str = "seizures", start: dt.date | None = None,
                end: dt.date | None = None, top: int = TOP_GROUPS, gettext: Translate | None = None,
                lang: str = "en", cache: bool = False) -> Result:
    """Counts per period and group (``trend_query``), charted as the ``top`` largest groups."""
    _ = gettext or _same
    _one_of(period, PERIODS, "period")
    _one_of(measure, MEASURES, "measure")
    dims = _dims(by)
    _range(start, end)
    frame = counts(conn, visible, period=period, by=dims, measure=measure, start=start, end=end, cache=cache)
    lab = labels(_)
    title = _("Trends")
    spec = charts.time_series(frame, y=measure, group=dims, top=top, labels=lab, names=names(lang),
                              title=f"{lab[measure]} {lab[period]}",
                              date_format="%d %b %Y" if period == "week" else "%b %Y") if len(frame) else None
    notes = []
    if dims and len(frame) and frame[list(dims)].drop_duplicates().shape[0] > top:
        notes.append(_("The chart shows the groups with the largest totals; the table and the CSV hold all."))
    return Result("trends", title, frame, str(frame.attrs.get("method", "")), spec, notes=notes,
                  params={"period": period, "by": dims, "measure": measure, "start": start, "end": end})


def alerts_view(conn: Conn, visible: Visible | None = None, *, measure: str = "seizures",
                keys: Sequence[str] = ("province", "drug"), month: str | dt.date | None = None,
                alpha: float = 0.001, min_history: int = 12, show: int = 6,
                gettext: Translate | None = None, lang: str = "en", cache: bool = False) -> Result:
    """This month's breaks: the series (province × drug by default) whose count in ``month`` (default:
    the latest month with data) is far from what their own history leads one to expect."""
    _ = gettext or _same
    _one_of(measure, MEASURES, "measure")
    dims = _dims(keys)
    if not 0 < alpha < 0.5:
        raise InvalidInput("alpha must be between 0 and 0.5")
    latest = tables.latest_date(conn, visible)
    chosen = _month(month) or (pd.Timestamp(latest).to_period("M").to_timestamp() if latest else None)
    end = (chosen + pd.offsets.MonthEnd(0)).date() if chosen is not None else None
    monthly = counts(conn, visible, period="month", by=dims, measure=measure, end=end, cache=cache)
    title = _("This month's alerts")
    params = {"measure": measure, "keys": dims, "month": chosen, "alpha": alpha}
    if monthly.empty or chosen is None:
        empty = pd.DataFrame(columns=[*dims, "period", "observed", "expected", "lower", "upper", "excess",
                                      "ratio", "score", "flagged"])
        return Result("alerts", title, empty, "", None, notes=[_("There is no data you may see.")], params=params)
    frame = anomalies.anomalies(monthly, measure=measure, keys=dims, min_history=min_history, alpha=alpha)
    table = anomalies.alerts(frame, month=chosen)
    notes = []
    if latest is not None and chosen == pd.Timestamp(latest).to_period("M").to_timestamp() and \
            pd.Timestamp(latest) < chosen + pd.offsets.MonthEnd(0):
        notes.append(_("The month is not complete: the data end on {date}.").format(date=latest.isoformat()))
    # Chart the flagged series; with none flagged, the series that came closest.
    month_rows = frame[frame["period"] == chosen].sort_values("score", ascending=False)
    shown = table if len(table) else month_rows
    picks = shown[list(dims)].drop_duplicates().head(show)
    since = chosen - pd.DateOffset(months=35)
    part = frame[frame["period"] >= since].merge(picks, on=list(dims)) if dims else frame[frame["period"] >= since]
    lab = labels(_)
    spec = charts.anomaly_chart(part, keys=dims, labels=lab, names=names(lang),
                                title=_("Observed and expected, {month}").format(month=chosen.strftime("%Y-%m"))
                                ) if len(part) else None
    if table.empty:
        notes.append(_("No series broke from its expected range this month."))
    method = str(table.attrs.get("method") or frame.attrs.get("method", ""))
    return Result("alerts", title, table, method, spec, notes=notes, params=params)


# -- forecast -------------------------------------------------------------------------------------------
def _check_forecast(measure: str, horizon: int, windows: int) -> None:
    _one_of(measure, MEASURES, "measure")
    if not 1 <= horizon <= 24:
        raise InvalidInput("horizon must be between 1 and 24 months")
    if not 1 <= windows <= 12:
        raise InvalidInput("windows must be between 1 and 12")


def _forecast_result(frame: pd.DataFrame, keys: tuple[str, ...], *, measure: str, horizon: int, windows: int,
                     _: Translate, lang: str, params: dict[str, Any]) -> Result:
    """Forecast every series of a monthly count frame; chart the ``MAX_SERIES`` largest; name in a note each
    series (or, past ``MAX_SERIES``, the number of series) whose model does not beat seasonal naive."""
    series = forecast.monthly_series(frame, keys=keys, measure=measure)
    result = forecast.forecast(series, keys=keys, horizon=horizon, windows=windows)
    fc, acc = result.forecasts, result.accuracy
    nm, lab = names(lang), labels(_)
    chosen = acc[acc["chosen"].astype(bool)]
    losers = chosen[~chosen["beats_naive"].astype(bool)]
    notes = []
    if len(losers) > MAX_SERIES:
        notes.append(_("{n} of {total} series: no model beats the seasonal-naive forecast in the backtest; "
                       "their forecasts are no better than repeating last year's month.").format(
            n=len(losers), total=len(chosen)))
    else:
        for row in losers.itertuples(index=False):
            label = " · ".join(nm.get(str(getattr(row, k)), str(getattr(row, k))) for k in keys) or _("national")
            same = acc[(acc[list(keys)] == [getattr(row, k) for k in keys]).all(axis=1)] if keys else acc
            best = pd.to_numeric(same.loc[same["model"] != "SeasonalNaive", "mase"], errors="coerce").min()
            notes.append(_("{series}: no model beats the seasonal-naive forecast in the backtest (best MASE "
                           "{mase}, 1 or more); the forecast is no better than repeating last year's month."
                           ).format(series=label, mase=f"{best:.2f}" if np.isfinite(best) else "–"))
    history, shown = result.history, fc
    if keys and len(chosen) > MAX_SERIES:  # chart the largest series only
        big = top_series(history, keys, "y", MAX_SERIES)
        history, shown = history.merge(big, on=list(keys)), fc.merge(big, on=list(keys))
        notes.append(_("The chart shows the groups with the largest totals; the table and the CSV hold all."))
    lab["y"] = lab[measure]
    spec = charts.forecast_chart(history, shown, keys=keys, labels=lab, names=nm,
                                 title=_("{measure}: forecast for {n} months").format(measure=lab[measure],
                                                                                      n=horizon))
    return Result("forecast", _("Forecast"), fc, str(fc.attrs.get("method", "")), spec,
                  extra={"accuracy": acc}, notes=notes,
                  params={**params, "measure": measure, "horizon": horizon, "windows": windows, "keys": keys})


def top_series(frame: pd.DataFrame, keys: Sequence[str], value: str, n: int) -> pd.DataFrame:
    """The key values of the ``n`` series with the largest total ``value``."""
    totals = frame.groupby(list(keys), dropna=False)[value].sum().nlargest(n)
    return totals.index.to_frame(index=False)


def forecast_view(conn: Conn, visible: Visible | None = None, *, province: Sequence[str] = (),
                  drug: Sequence[str] = (), measure: str = "seizures", horizon: int = 6, windows: int = 3,
                  gettext: Translate | None = None, lang: str = "en", cache: bool = False) -> Result:
    """Monthly forecast of the selected series: national (nothing selected), per drug, per province, or
    per province × drug — at most ``MAX_SERIES`` series, each fitted and backtested on its own."""
    _ = gettext or _same
    _check_forecast(measure, horizon, windows)
    provinces, drugs = _provinces([p for p in province if p]), _drugs([d for d in drug if d])
    keys = tuple(k for k, v in (("province", provinces), ("drug", drugs)) if v)
    wanted = list(itertools.product(*(v for v in (provinces, drugs) if v)))
    if len(wanted) > MAX_SERIES:
        raise InvalidInput(f"choose at most {MAX_SERIES} series (provinces × drugs), not {len(wanted)}")
    frame = counts(conn, visible, period="month", by=keys, measure=measure, cache=cache)
    if keys:
        index = pd.MultiIndex.from_frame(frame[list(keys)])
        frame = frame[index.isin(pd.MultiIndex.from_tuples(wanted, names=list(keys)))]
    params = {"province": provinces, "drug": drugs}
    if frame.empty or not frame[measure].any():
        return _no_forecast(keys, _, params)
    return _forecast_result(frame, keys, measure=measure, horizon=horizon, windows=windows, _=_, lang=lang,
                            params=params)


def _no_forecast(keys: Sequence[str], _: Translate, params: dict[str, Any]) -> Result:
    empty = pd.DataFrame(columns=[*keys, "period", "model", "point", "lo_80", "hi_80", "lo_95", "hi_95"])
    return Result("forecast", _("Forecast"), empty, "", None,
                  notes=[_("Nothing you may see was recorded for the selected series.")], params=params)


def forecast_all_view(conn: Conn, visible: Visible | None = None, *, keys: Sequence[str] = ("province", "drug"),
                      measure: str = "seizures", horizon: int = 6, windows: int = 3,
                      gettext: Translate | None = None, lang: str = "en", cache: bool = False) -> Result:
    """Monthly forecasts of every series of ``keys`` (any dimensions; () for one national series), for the
    command line and reports; the chart draws the ``MAX_SERIES`` largest."""
    _ = gettext or _same
    _check_forecast(measure, horizon, windows)
    dims = _dims(keys)
    frame = counts(conn, visible, period="month", by=dims, measure=measure, cache=cache)
    if frame.empty or not frame[measure].any():
        return _no_forecast(dims, _, {})
    return _forecast_result(frame, dims, measure=measure, horizon=horizon, windows=windows, _=_, lang=lang,
                            params={})


# -- row loaders for the two views that need rows -------------------------------------------------------
def _seizure_rows(conn: Conn, visible: Visible | None, where: ColumnElement[bool], *,
                  start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    """``tables.seizures`` restricted by ``where`` in the database (the same columns, fewer rows)."""
    org, place = aliased(Organisation), aliased(Place)
    q = (
        select(Incident.id, Incident.occurred_on, Incident.country, Incident.province_code,
               Incident.district_code, place.code, Incident.place_kind, org.code, Incident.operation_id,
               Incident.source, Seizure.drug, Seizure.quantity, Seizure.unit, Seizure.mass_kg,
               Seizure.transport_mode, Seizure.concealment, Seizure.producing_country, Seizure.origin_country,
               Seizure.transit_countries, Seizure.destination_country, Seizure.routing)
        .select_from(Incident)
        .join(Seizure, Seizure.incident_id == Incident.id)
        .join(org, org.id == Incident.reporting_org_id)
        .outerjoin(place, place.id == Incident.place_id)
        .where(where)
    )
    return _load(conn, tables.restrict(q, visible, start, end), "seizures")


CHUNK = 500  # ids per IN (...) list
LINKED_SHARE = 5  # read every arrest when those linked to operations are a fifth of them or more


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(ids)
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


ARREST_NEEDS = ("incident_id", "operation_id", "province_code", "person_id")  # what operation_outcomes reads
SEIZURE_NEEDS = ("incident_id", "operation_id", "province_code", "drug", "mass_kg")


def _slim_arrests(conn: Conn, visible: Visible | None, where: ColumnElement[bool]) -> pd.DataFrame:
    q = (select(Incident.id, Incident.operation_id, Incident.province_code, Arrest.person_id)
         .select_from(Incident).join(Arrest, Arrest.incident_id == Incident.id).where(where))
    return pd.DataFrame.from_records(conn.execute(tables.restrict(q, visible, None, None)).all(), columns=list(ARREST_NEEDS))


def operation_seizures(conn: Conn, visible: Visible | None = None) -> pd.DataFrame:
    """The seizures of incidents linked to an operation, in the columns ``operation_outcomes`` reads."""
    q = (select(Incident.id, Incident.operation_id, Incident.province_code, Seizure.drug, Seizure.mass_kg)
         .select_from(Incident).join(Seizure, Seizure.incident_id == Incident.id)
         .where(Incident.operation_id.is_not(None)))
    rows = conn.execute(tables.restrict(q, visible, None, None)).all()
    return pd.DataFrame.from_records(rows, columns=list(SEIZURE_NEEDS))


def operation_arrests(conn: Conn, visible: Visible | None = None) -> pd.DataFrame:
    """The arrests of incidents linked to an operation, and of every incident joined to those by a person
    arrested in both, and so on: exactly the visible arrests whose co-arrest networks (connected
    components of persons arrested together) hold an operation's arrestee, in the columns
    ``operation_outcomes`` reads. It gets the same networks as from all visible arrests, without loading
    all of them."""
    linked = Incident.operation_id.is_not(None)
    count = select(func.count()).select_from(Incident).join(Arrest, Arrest.incident_id == Incident.id)
    n_all = conn.execute(tables.restrict(count, visible, None, None)).scalar_one()
    n_linked = conn.execute(tables.restrict(count.where(linked), visible, None, None)).scalar_one()
    if n_linked * LINKED_SHARE >= n_all:  # most arrests are linked: one read of them all beats the search
        return _slim_arrests(conn, visible, true())
    frame = _slim_arrests(conn, visible, linked)
    parts = [frame]
    incidents, persons = set(frame["incident_id"]), set(frame["person_id"])
    new_persons = set(persons)
    while new_persons:
        found: set[str] = set()
        for chunk in _chunks(new_persons):
            q = tables.restrict(select(Arrest.incident_id).join(Incident, Incident.id == Arrest.incident_id)
                         .where(Arrest.person_id.in_(chunk)), visible, None, None)
            found.update(conn.execute(q).scalars())
        new_incidents = found - incidents
        if not new_incidents:
            break
        incidents |= new_incidents
        more = [_slim_arrests(conn, visible, Arrest.incident_id.in_(chunk)) for chunk in _chunks(new_incidents)]
        parts.extend(more)
        new_persons = set().union(*(set(m["person_id"]) for m in more)) - persons
        persons |= new_persons
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else frame


def _load(conn: Conn, q: Any, name: str) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(conn.execute(q).all(), columns=list(tables.COLUMNS[name]))
    frame["occurred_on"] = pd.to_datetime(frame["occurred_on"])
    return frame


def _has_route() -> ColumnElement[bool]:
    """A seizure that can lie on a route: a route field filled in, or made at a crossing point."""
    return or_(
        Seizure.producing_country.is_not(None), Seizure.origin_country.is_not(None),
        Seizure.destination_country.is_not(None), Seizure.routing.is_not(None),
        and_(Seizure.transit_countries.is_not(None), Seizure.transit_countries != ""),
        Incident.place_kind.in_(routes.CROSSING_KINDS),
    )


def route_seizures(conn: Conn, visible: Visible | None = None, *, start: dt.date | None = None,
                   end: dt.date | None = None) -> pd.DataFrame:
    """The seizures of the window that routes can use, in full, plus one row holding only the date for
    every other seizure of the window: route shares and the "n of N seizures" in the methods stay shares
    of all seizures, while a million-incident store loads only the few rows that carry a route."""
    routed = _seizure_rows(conn, visible, _has_route(), start=start, end=end)
    q = tables.restrict(select(Incident.occurred_on, func.count()).select_from(Incident)
                 .join(Seizure, Seizure.incident_id == Incident.id).where(not_(_has_route()))
                 .group_by(Incident.occurred_on), visible, start, end)
    counts = conn.execute(q).all()
    if not counts:
        return routed
    days = pd.to_datetime(pd.Series([d for d, _ in counts]))
    rest = pd.DataFrame({"occurred_on": np.repeat(days.to_numpy(), [n for _, n in counts])})
    rest = rest.reindex(columns=list(tables.COLUMNS["seizures"]))
    rest["transit_countries"] = ""
    rest["occurred_on"] = pd.to_datetime(rest["occurred_on"])
    return pd.concat([routed, rest], ignore_index=True) if len(routed) else rest


# -- routes ---------------------------------------------------------------------------------------------
def _window(value: Sequence[dt.date | None] | None, what: str) -> tuple[dt.date, dt.date] | None:
    if value is None or all(v is None for v in value):
        return None
    if len(value) != 2 or value[0] is None or value[1] is None:
        raise InvalidInput(f"the {what} period needs a start and an end date")
    if value[0] > value[1]:
        raise InvalidInput(f"the {what} period starts after it ends")
    return value[0], value[1]


def _route_windows(start: dt.date | None, end: dt.date | None, latest: dt.date | None,
                   before: Sequence[dt.date | None] | None, after: Sequence[dt.date | None] | None
                   ) -> tuple[dt.date, dt.date, tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """The window (default: the two years to ``latest``) and the before/after periods (default: its
    halves)."""
    _range(start, end)
    end = end or latest or dt.date.today()
    start = start or (pd.Timestamp(end) - pd.DateOffset(years=ROUTE_WINDOW_YEARS) + pd.Timedelta(days=1)).date()
    _range(start, end)
    b, a = _window(before, "before"), _window(after, "after")
    if (b is None) != (a is None):
        raise InvalidInput("give both the before and the after period, or neither")
    if b is None or a is None:
        middle = start + (end - start) // 2
        b, a = (start, middle), (middle + dt.timedelta(days=1), end)
    return start, end, b, a


def _route_tables(rows: pd.DataFrame, *, start: dt.date, end: dt.date, before: tuple[dt.date, dt.date],
                  after: tuple[dt.date, dt.date], top: int, alpha: float) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Corridors, and crossings, flows and shifts, of ``rows`` (which cover the window and both periods)."""
    when = pd.to_datetime(rows["occurred_on"])
    window = rows[(when >= pd.Timestamp(start)) & (when <= pd.Timestamp(end))]
    table = routes.corridors(window, top=top)
    out: dict[str, pd.DataFrame] = {"crossings": routes.crossings(window), "flows": routes.flows(window)}
    try:
        out["shifts"] = routes.route_shifts(rows, before=before, after=after, alpha=alpha)
    except InvalidInput as exc:  # no seizures in one of the periods: say so instead of failing the page
        out["shifts"] = pd.DataFrame(columns=list(routes.SHIFT_COLUMNS))
        out["shifts"].attrs["method"] = str(exc)
    return table, out


def _routes_result(table: pd.DataFrame, extra: dict[str, pd.DataFrame], nodes: pd.DataFrame, *,
                   _: Translate, lang: str, params: dict[str, Any]) -> Result:
    """The routes tables with their flow map and bar charts."""
    edges, crossings = extra["flows"], extra["crossings"]
    lab, nm = labels(_), names(lang)
    nodes = nodes.assign(name_en=[nm.get(c, n) for c, n in zip(nodes["code"], nodes["name_en"], strict=True)])
    spec = charts.flow_map(edges, nodes, labels=lab, title=_("Trafficking flows, {start} to {end}").format(
        start=params["start"].isoformat(), end=params["end"].isoformat())) if len(edges) else None
    extra_charts = {}
    if len(table):
        extra_charts["corridors"] = charts.bar_chart(table, category="corridor", value="seizures", labels=lab,
                                                     extra_tooltip=("kg",), title=_("Corridors by seizures"))
    if len(crossings):
        extra_charts["crossings"] = charts.bar_chart(crossings, category="place_code", value="seizures",
                                                     labels=lab, extra_tooltip=("kg",),
                                                     title=_("Crossings by seizures"))
    return Result("routes", _("Routes"), table, str(table.attrs.get("method", "")), spec, extra=extra,
                  charts=extra_charts, params=params)


def routes_view(conn: Conn, visible: Visible | None = None, *, start: dt.date | None = None,
                end: dt.date | None = None, before: Sequence[dt.date | None] | None = None,
                after: Sequence[dt.date | None] | None = None, operation_id: str | None = None,
                top: int = 20, alpha: float = 0.05, window_days: int = 180,
                gettext: Translate | None = None, lang: str = "en", cache: bool = False) -> Result:
    """Flows, corridors and crossings of the window (default: the two years to the latest incident), the
    corridors that emerged or declined between ``before`` and ``after`` (default: the window's two halves),
    and, for ``operation_id``, the displacement around that operation."""
    _ = gettext or _same
    if not 1 <= top <= 200:
        raise InvalidInput("top must be between 1 and 200")
    start, end, b, a = _route_windows(start, end, tables.latest_date(conn, visible), before, after)

    def compute(c: Conn) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        rows = route_seizures(c, visible, start=min(start, b[0], a[0]), end=max(end, b[1], a[1]))
        table, extra = _route_tables(rows, start=start, end=end, before=b, after=a, top=top, alpha=alpha)
        if operation_id:
            ops = tables.operations(c, visible)
            op = ops[ops["operation_id"] == operation_id]
            if op.empty:
                raise InvalidInput(f"no operation {operation_id!r} that you may see")
            pad = dt.timedelta(days=window_days)
            around = route_seizures(c, visible, start=(op["start_date"].iloc[0] - pad).date(),
                                    end=(op["end_date"].iloc[0] + pad).date())
            extra["displacement"] = routes.displacement(around, ops, operation_id, window_days=window_days)
        return table, extra

    if cache:  # the same scope, parameters and store version as an earlier page view: its result
        from narcotrack.store.figures import _cached

        kind = f"routes_view|{start}|{end}|{b}|{a}|{operation_id}|{top}|{alpha}|{window_days}"
        table, extra = _cached(conn, visible, kind, compute)
    else:
        table, extra = compute(conn)
    return _routes_result(table, extra, routes.node_coordinates(conn), _=_, lang=lang,
                          params={"start": start, "end": end, "before": b, "after": a, "top": top,
                                  "operation_id": operation_id})


def routes_file_view(path: str | Path, *, start: dt.date | None = None, end: dt.date | None = None,
                     before: Sequence[dt.date | None] | None = None, after: Sequence[dt.date | None] | None = None,
                     top: int = 20, alpha: float = 0.05, gettext: Translate | None = None,
                     lang: str = "en") -> Result:
    """The routes view of a UNODC IDS file (``sources.ids_seizures``) instead of the store: the window
    defaults to the two years to the file's latest dated seizure."""
    _ = gettext or _same
    if not 1 <= top <= 200:
        raise InvalidInput("top must be between 1 and 200")
    rows = sources.ids_seizures(path)
    dated = pd.to_datetime(rows["occurred_on"]).dropna()
    if dated.empty:
        raise InvalidInput("the file has no dated seizures")
    start, end, b, a = _route_windows(start, end, dated.max().date(), before, after)
    table, extra = _route_tables(rows, start=start, end=end, before=b, after=a, top=top, alpha=alpha)
    result = _routes_result(table, extra, routes.node_coordinates(), _=_, lang=lang,
                            params={"start": start, "end": end, "before": b, "after": a, "top": top})
    if rows.attrs.get("method"):
        result.method = f"{rows.attrs['method']} {result.method}"
    return result


# -- hotspots -------------------------------------------------------------------------------------------
def hotspots_view(conn: Conn, visible: Visible | None = None, *, level: str = "province",
                  measure: str = "seizures", start: dt.date | None = None, end: dt.date | None = None,
                  fdr: float = 0.05, permutations: int | None = None, gettext: Translate | None = None,
                  lang: str = "en", cache: bool = False) -> Result:
    """Getis-Ord Gi* hot and cold spots of the areas' totals over the window (default: everything)."""
    _ = gettext or _same
    _one_of(level, LEVELS, "level")
    _one_of(measure, MEASURES, "measure")
    _range(start, end)
    if not 0 < fdr < 1:
        raise InvalidInput("the false discovery rate must be between 0 and 1")
    frame = counts(conn, visible, period="quarter", by=(level,), measure=measure, start=start, end=end,
                   cache=cache)
    values = hotspots.area_values(frame, level=level, measure=measure)
    table = hotspots.hotspots(values, level=level, fdr=fdr, permutations=permutations)
    lab = labels(_)
    lab["value"] = lab[measure]
    nm = names(lang)
    shapes = province_outlines()
    name_field = "name_km" if lang == "km" else "name_en"
    title = _("Hot and cold spots: {measure}").format(measure=lab[measure])
    if level == "province":
        spec = charts.hotspot_map(table, shapes, name=name_field, labels=lab, title=title)
        extra_charts = {"values": charts.choropleth(values, shapes, name=name_field, labels=lab,
                                                    title=_("{measure} by province").format(measure=lab[measure]))}
    else:
        points = geo.district_centroids()[["code", "lat", "lon"]]
        shown = table.assign(name=[nm.get(c, n) for c, n in zip(table["code"], table["name_en"], strict=True)])
        spec = charts.hotspot_map(shown, shapes, name="name", labels=lab, title=title, centroids=points)
        extra_charts = {}
    notes = []
    if values.attrs.get("unplaced"):
        notes.append(_("Rows without an area of this level are left out."))
    return Result("hotspots", _("Hot spots"), table, str(table.attrs.get("method", "")), spec,
                  charts=extra_charts, notes=notes,
                  params={"level": level, "measure": measure, "start": start, "end": end, "fdr": fdr})


# -- operations -----------------------------------------------------------------------------------------
def operations_view(conn: Conn, visible: Visible | None = None, *, by: str | Sequence[str] | None = None,
                    n_boot: int = 2000, gettext: Translate | None = None, lang: str = "en",
                    cache: bool = False) -> Result:
    """Joint against single-agency operations: what their linked incidents seized and whom they arrested,
    compared with bootstrap intervals, overall and per stratum (``by``: drug, province or kind)."""
    _ = gettext or _same
    keys = [by] if isinstance(by, str) else [b for b in (by or []) if b]
    for k in keys:
        _one_of(k, operations.STRATA, "by")

    def compute(c: Conn) -> tuple[pd.DataFrame, pd.DataFrame]:
        ops = tables.operations(c, visible)
        out = operations.operation_outcomes(operation_seizures(c, visible), operation_arrests(c, visible), ops)
        return out, operations.compare_operations(out, by=keys or None, n_boot=n_boot)

    if cache:  # the same scope and store version as an earlier page view: its result
        from narcotrack.store.figures import _cached

        outcomes, table = _cached(conn, visible, f"operations_view|{','.join(keys)}|{n_boot}", compute)
    else:
        outcomes, table = compute(conn)
    lab = labels(_)
    nm = names(lang)
    shown = table.assign(stratum=[
        s if s == "all" else " / ".join(nm.get(p, p) for p in str(s).split(" / ")) for s in table["stratum"]])
    shown["stratum"] = shown["stratum"].replace({"all": _("all operations")})
    spec = charts.operations_chart(shown, labels=lab, title=_("Joint minus single-agency operations")
                                   ) if len(table) else None
    return Result("operations", _("Joint operations"), table, str(table.attrs.get("method", "")), spec,
                  extra={"outcomes": outcomes}, params={"by": tuple(keys)})


VIEWS: Mapping[str, Callable[..., Result]] = {  # the pages' views (forecast_all_view and routes_file_view
    # serve the command line)
    "trends": trends_view, "alerts": alerts_view, "forecast": forecast_view, "routes": routes_view,
    "hotspots": hotspots_view, "operations": operations_view,
}
