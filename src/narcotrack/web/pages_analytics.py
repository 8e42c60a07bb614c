"""Analysis pages: trends, this month's alerts, forecasts, routes, hot spots and joint operations.

Each page reads its filter form from the query string, calls the matching function of
``narcotrack.analytics.views`` with the caller's visibility filter and renders the ``Result``: the chart
(a Vega-Lite spec inlined in the page, drawn by ``static/charts.js``), the method beside the numbers, the
tables, and a CSV download of a table (``?format=csv``; an audited export). Nothing is decided here: the
views do the work, the sharing policy says what the caller may see and may export.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from narcotrack.access.audit import record_event
from narcotrack.access.policy import check_may_export, visible_filter
from narcotrack.analytics import geo, tables, views
from narcotrack.domain.vocab import vocabularies
from narcotrack.errors import InvalidInput
from narcotrack.web import ratelimit
from narcotrack.web.auth import client_address, require_actor
from narcotrack.web.export import csv_body
from narcotrack.web.i18n import pick_language, translations
from narcotrack.web.labels import N_

Render = Callable[..., HTMLResponse]
Query = Any  # starlette's QueryParams
MAX_ROWS_SHOWN = 300  # rows the main table of a page shows; the CSV holds them all
MAX_EXTRA_ROWS = 100  # rows each further table shows
MAX_OPERATIONS = 300  # operations the displacement list offers
NAMED = ("drug", "province", "district")  # columns whose codes a page shows by name
CATEGORIES = ("cluster",)  # columns whose values a page shows translated (hot, cold, none)

PAGES = {  # name: (title, what the page shows) — the index lists them in this order
    "trends": (N_("Trends"), N_("Incidents, seizures, persons arrested, kilograms and street value per week, "
                                "month or quarter, by drug, place, agency, transport or nationality.")),
    "alerts": (N_("This month's alerts"), N_("Provinces and drugs whose count this month broke from what "
                                             "their own history leads one to expect.")),
    "forecast": (N_("Forecast"), N_("The next months of a chosen series, with 80 % and 95 % intervals and "
                                    "the backtest error against the seasonal-naive forecast.")),
    "routes": (N_("Routes"), N_("Trafficking flows, corridors and crossings, the corridors that emerged or "
                                "declined, and displacement around an operation.")),
    "hotspots": (N_("Hot spots"), N_("Provinces and districts where seizures cluster (Getis-Ord Gi*), "
                                     "with their significance after correction for many tests.")),
    "operations": (N_("Joint operations"), N_("What joint operations achieved next to single-agency ones, "
                                              "with bootstrap confidence intervals.")),
}
TABLE_TITLES = {"trends": N_("Counts per period"), "alerts": N_("Alerts"), "forecast": N_("Forecasts"),
                "routes": N_("Corridors"), "hotspots": N_("Hot and cold spots"),
                "operations": N_("Joint minus single-agency operations")}
EXTRA_TITLES = {"accuracy": N_("Backtest accuracy"), "crossings": N_("Crossings"), "flows": N_("Flows"),
                "shifts": N_("Route shifts"), "displacement": N_("Displacement around the operation"),
                "values": N_("Values per area"), "outcomes": N_("Outcomes per operation")}


# -- query-string parsing (errors a user can cause become InvalidInput: the page with a message, 422) ----
def _text(q: Query, name: str, default: str = "") -> str:
    return str(q.get(name) or default).strip()


def _date(q: Query, name: str) -> dt.date | None:
    value = _text(q, name)
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a date YYYY-MM-DD") from exc


def _int(q: Query, name: str, default: int) -> int:
    value = _text(q, name)
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number") from exc


def _float(q: Query, name: str, default: float) -> float:
    value = _text(q, name)
    try:
        number = float(value) if value else default
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a number") from exc
    if not math.isfinite(number):
        raise InvalidInput(f"{name} must be a number")
    return number


def _list(q: Query, name: str) -> list[str]:
    return [v.strip() for v in q.getlist(name) if v and v.strip()]


# -- tables for the page and the CSV --------------------------------------------------------------------
def _cell(value: Any) -> Any:
    """A value for the CSV: dates as YYYY-MM-DD, missing as empty."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if hasattr(value, "item"):
        return _cell(value.item())
    return value


def _shown(value: Any) -> str:
    """A value as a page shows it."""
    value = _cell(value)
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(frame: pd.DataFrame, heads: dict[str, str], names: dict[str, str], limit: int = MAX_ROWS_SHOWN
           ) -> dict[str, Any]:
    cols = [str(c) for c in frame.columns]
    rows = []
    for rec in frame.head(limit).itertuples(index=False):
        row = []
        for col, value in zip(cols, rec, strict=True):
            text = _shown(value)
            if col in CATEGORIES:
                text = heads.get(text, text)
            named = col in NAMED and text in names
            row.append({"text": names[text] if named else text, "code": text if named else "",
                        "num": isinstance(value, int | float) and not isinstance(value, bool)})
        rows.append(row)
    return {"columns": cols, "heads": [heads.get(c, c) for c in cols], "rows": rows, "total": len(frame),
            "method": str(frame.attrs.get("method", ""))}


def _csv(frame: pd.DataFrame) -> Iterator[list[Any]]:
    for rec in frame.itertuples(index=False):
        yield [_cell(v) for v in rec]


def _query_without(request: Request, *drop: str) -> str:
    from urllib.parse import urlencode

    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in drop and v])


# -- the views, called from parsed query strings --------------------------------------------------------
Call = Callable[[Session, Any, Query, Callable[[str], str], str], views.Result]


def _trends(s: Session, visible: Any, q: Query, _: Callable[[str], str], lang: str) -> views.Result:
    by = _list(q, "by") if "period" in q else ["drug"]  # a submitted form with no box ticked: national
    return views.trends_view(s, visible, period=_text(q, "period", "month"), by=by,
                             measure=_text(q, "measure", "seizures"), start=_date(q, "start"),
                             end=_date(q, "end"), gettext=_, lang=lang, cache=True)


def _alerts(s: Session, visible: Any, q: Query, _: Callable[[str], str], lang: str) -> views.Result:
    keys = _text(q, "keys", "province drug").split()
    return views.alerts_view(s, visible, measure=_text(q, "measure", "seizures"), keys=keys,
                             month=_text(q, "month") or None, gettext=_, lang=lang, cache=True)


def _forecast(s: Session, visible: Any, q: Query, _: Callable[[str], str], lang: str) -> views.Result:
    return views.forecast_view(s, visible, province=_list(q, "province"), drug=_list(q, "drug"),
                               measure=_text(q, "measure", "seizures"), horizon=_int(q, "horizon", 6),
                               gettext=_, lang=lang, cache=True)


def _routes(s: Session, visible: Any, q: Query, _: Callable[[str], str], lang: str) -> views.Result:
    before = (_date(q, "before_start"), _date(q, "before_end"))
    after = (_date(q, "after_start"), _date(q, "after_end"))
    return views.routes_view(s, visible, start=_date(q, "start"), end=_date(q, "end"), before=before,
                             after=after, operation_id=_text(q, "operation") or None, top=_int(q, "top", 20),
                             gettext=_, lang=lang, cache=True)


def _hotspots(s: Session, visible: Any, q: Query, _: Callable[[str], str], lang: str) -> views.Result:
    return views.hotspots_view(s, visible, level=_text(q, "level", "province"),
                               measure=_text(q, "measure", "seizures"), start=_date(q, "start"),
                               end=_date(q, "end"), fdr=_float(q, "fdr", 0.05), gettext=_, lang=lang,
                               cache=True)


def _operations(s: Session, visible: Any, q: Query, _: Callable[[str], str], lang: str) -> views.Result:
    return views.operations_view(s, visible, by=_text(q, "by") or None, gettext=_, lang=lang, cache=True)


CALLS: dict[str, Call] = {"trends": _trends, "alerts": _alerts, "forecast": _forecast, "routes": _routes,
                          "hotspots": _hotspots, "operations": _operations}


def _choices(session: Session, visible: Any, name: str, lang: str, result: views.Result | None,
             chosen: str | None) -> dict[str, Any]:
    """What the page's form offers: drugs and provinces by name; for displacement, the operations the
    caller may see that overlap the routes window (the latest ``MAX_OPERATIONS``), and the chosen one."""
    km = lang == "km"
    out: dict[str, Any] = {}
    if name == "forecast":
        out["drugs"] = [(c, t.name_km if km and t.name_km else t.name_en)
                        for c, t in vocabularies().drugs.terms.items()]
        out["provinces"] = [(c, km_name if km and km_name else en)
                            for c, en, km_name in geo.area_names("province").itertuples(index=False)]
    if name == "routes":
        ops = tables.operations(session, visible).sort_values("start_date", ascending=False)
        if result is not None:
            start, end = pd.Timestamp(result.params["start"]), pd.Timestamp(result.params["end"])
            ops = ops[((ops["end_date"] >= start) & (ops["start_date"] <= end)) | (ops["operation_id"] == chosen)]
        ops = pd.concat([ops[ops["operation_id"] == chosen], ops[ops["operation_id"] != chosen].head(MAX_OPERATIONS)])
        out["operations"] = [(r.operation_id, f"{r.name} ({r.start_date:%Y-%m-%d})")
                             for r in ops.itertuples(index=False)]
    return out


def router(render: Render) -> APIRouter:
    r = APIRouter()

    @r.get("/analytics", response_class=HTMLResponse, summary="Analysis pages")
    def index(request: Request) -> HTMLResponse:
        """Links to the analysis pages, each with what it shows."""
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            session.commit()
        return render(request, "analytics.html", {"actor": actor, "pages": PAGES})

    def page(request: Request, name: str) -> Response:
        lang = pick_language(request.query_params.get("lang"), request.cookies.get("lang"),
                             request.headers.get("accept-language"))
        _ = translations(lang).gettext
        q = request.query_params
        want_csv = _text(q, "format") == "csv"
        with Session(request.app.state.engine, expire_on_commit=False) as session:
            actor = require_actor(request, session)
            session.commit()  # end the login's write before the long read (SQLite holds writers back meanwhile)
            if _text(q, "format") not in ("", "csv", "html"):
                raise InvalidInput("format must be csv or html")
            visible = functools.partial(visible_filter, actor.principal)
            if want_csv:
                check_may_export(actor.principal)
                ratelimit.check(request, "export", actor.user.id)
                return _download(request, session, actor, name, CALLS[name](session, visible, q, _, lang))
            error: str | None = None
            result: views.Result | None = None
            try:
                result = CALLS[name](session, visible, q, _, lang)
            except InvalidInput as exc:
                error = str(exc)
            choices = _choices(session, visible, name, lang, result, _text(q, "operation") or None)
            session.commit()
        heads, nm = views.labels(_), views.names(lang)
        ctx: dict[str, Any] = {
            "actor": actor, "name": name, "page_title": PAGES[name][0], "q": q, "error": error,
            "table_title": TABLE_TITLES[name], "extra_titles": EXTRA_TITLES,
            "result": result, "choices": choices, "query": _query_without(request, "format", "table", "lang"),
            "may_export": bool(actor.principal.rule("may_export")),
            "table": _table(result.table, heads, nm) if result is not None else None,
            "extra": {k: _table(v, heads, nm, MAX_EXTRA_ROWS) for k, v in result.extra.items()}
            if result is not None else {},
        }
        return render(request, f"analytics_{name}.html", ctx, status_code=422 if error else 200)

    def _download(request: Request, session: Session, actor: Any, name: str, result: views.Result) -> Response:
        which = _text(request.query_params, "table", "main")
        frames = {"main": result.table, **result.extra}
        if which not in frames:
            raise InvalidInput(f"table must be one of {', '.join(frames)}")
        frame = frames[which]
        body, count = csv_body(_csv(frame), [str(c) for c in frame.columns])
        q = request.query_params
        params = {k: (vals if len(vals) > 1 else vals[0]) for k in q if k not in ("format", "lang")
                  if (vals := [v for v in q.getlist(k) if v])}
        record_event(session.connection(), "export", user_id=actor.user.id, org_id=actor.user.org_id,
                     record_type="analysis", address=client_address(request),
                     detail={"format": "csv", "analysis": name, "table": which, "rows": count, "params": params})
        session.commit()
        filename = f"{name}.csv" if which == "main" else f"{name}-{which}.csv"
        return StreamingResponse(body, media_type="text/csv; charset=utf-8",
                                 headers={"content-disposition": f'attachment; filename="{filename}"'})

    def add(name: str, summary: str, doc: str) -> None:
        def endpoint(request: Request) -> Response:
            return page(request, name)

        endpoint.__name__ = f"analytics_{name}"
        endpoint.__doc__ = doc + " `?format=csv` downloads the table (`&table=` one of the others); audited."
        r.add_api_route(f"/analytics/{name}", endpoint, methods=["GET"], summary=summary,
                        response_class=HTMLResponse)

    add("trends", "Trends page", "Counts per period and group, charted, with the method and the table.")
    add("alerts", "This month's alerts page", "This month's breaks from the expected range per province × drug.")
    add("forecast", "Forecast page", "Forecast of the chosen series with its intervals and backtest error.")
    add("routes", "Routes page", "Flow map, corridors, crossings, route shifts and displacement.")
    add("hotspots", "Hot spots page", "Getis-Ord Gi* hot and cold spots on a map, with q-values.")
    add("operations", "Joint operations page", "Joint against single-agency operations with bootstrap CIs.")
    return r
