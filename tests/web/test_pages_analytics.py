"""Analysis pages over a demo store: every page for every role, CSV downloads that hold the table and are
audited, bad parameters answered with the page and a message, and no page without logging in."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import html
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from narcotrack.access.policy import principal_for, visible_filter
from narcotrack.analytics import tables, views
from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import make_engine, session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import AuditEvent, Organisation
from narcotrack.web.app import create_app
from tests.web.helpers import login, make_user

PAGES = ["trends", "alerts", "forecast", "routes", "hotspots", "operations"]
# Parameters that keep the pages quick without changing what they show.
QUICK = {"hotspots": "?fdr=0.05", "forecast": "?drug=methamphetamine_tablets&horizon=3"}


def demo_copy(tmp: Path, template: Path) -> Engine:
    """A store with five years of demo data at scale 0.2 (some 8,700 incidents), users added."""
    from narcotrack.ingest.demo import generate

    path = tmp / "demo.sqlite"
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    generate(engine, years=5, seed=1, scale=0.2)
    make_user(engine, "dara", "KH-NACD", "analyst")
    make_user(engine, "sopheap", "KH-PP-12", "viewer")
    make_user(engine, "somchai", "TH-ONCB", "liaison")
    return engine


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Engine]:
    engine = demo_copy(tmp_path_factory.mktemp("analytics-pages"), sqlite_template)
    yield engine
    engine.dispose()


def _client(store: Engine, user: str | None) -> TestClient:
    client = TestClient(create_app(store))
    if user:
        login(client, user)
    return client


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _visible(store: Engine, org: str, role: str) -> Any:
    with Session(store) as s:
        org_id = s.scalar(select(Organisation.id).where(Organisation.code == org))
        assert org_id is not None
        return functools.partial(visible_filter, principal_for(s, org_id=org_id, role=role))


def test_index_links_every_page(store: Engine) -> None:
    r = _client(store, "sopheap").get("/analytics")
    assert r.status_code == 200
    for name in PAGES:
        assert f'href="/analytics/{name}"' in r.text
    assert 'href="/analytics"' in _client(store, "dara").get("/").text  # the nav link


@pytest.mark.parametrize("user", ["dara", "sopheap"])
@pytest.mark.parametrize("name", PAGES)
def test_every_page_for_analyst_and_viewer(store: Engine, user: str, name: str) -> None:
    r = _client(store, user).get(f"/analytics/{name}{QUICK.get(name, '')}")
    assert r.status_code == 200, r.text[-2000:]
    assert 'id="chart-main"' in r.text and "data-spec='{" in r.text
    assert 'class="method"' in r.text
    # a table, or for a month without alerts the statement that there are none
    assert '<table class="analysis"' in r.text or (name == "alerts" and "No series broke" in r.text)
    for script in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "charts.js"):
        assert f'src="/static/{"vendor/" if script != "charts.js" else ""}{script}"' in r.text
    may_export = user == "dara"
    assert ("format=csv" in r.text) is may_export  # viewers may not export, so no download link


def test_every_page_on_an_empty_store(sqlite_engine: Engine) -> None:
    """No data to see is no error: every page and every CSV answers 200, saying so where it matters."""
    make_user(sqlite_engine, "dara", "KH-NACD", "analyst")
    client = _client(sqlite_engine, "dara")
    for name in PAGES:
        r = client.get(f"/analytics/{name}")
        assert r.status_code == 200, (name, r.text[-1500:])
        assert client.get(f"/analytics/{name}?format=csv").status_code == 200
    assert "Nothing you may see was recorded" in client.get("/analytics/forecast?drug=heroin").text


def test_unauthenticated_is_sent_to_login(store: Engine) -> None:
    client = _client(store, None)
    for path in ["/analytics", "/analytics/trends", "/analytics/routes?format=csv"]:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/analytics"), path
    assert client.get("/analytics/trends", headers={"accept": "application/json"}).status_code == 401


def _exports(store: Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(d) for d in conn.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "export", AuditEvent.record_type == "analysis").order_by(AuditEvent.id))]


def test_csv_holds_the_table_and_is_audited(store: Engine) -> None:
    client = _client(store, "dara")
    visible = _visible(store, "KH-NACD", "analyst")
    before = len(_exports(store))
    r = client.get("/analytics/trends?period=quarter&by=province&measure=kg&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="trends.csv"' in r.headers["content-disposition"]
    rows = _csv(r.text)
    with Session(store) as s:
        table = views.trends_view(s, visible, period="quarter", by=["province"], measure="kg").table
        seizures = tables.seizures(s, visible)
    assert rows[0] == [str(c) for c in table.columns]
    assert len(rows) - 1 == len(table)
    assert rows[1][0] == table["period"].iloc[0].date().isoformat()
    assert sum(int(row[rows[0].index("seizures")]) for row in rows[1:]) == len(seizures)
    events = _exports(store)
    assert len(events) == before + 1
    assert events[-1]["analysis"] == "trends" and events[-1]["table"] == "main"
    assert events[-1]["rows"] == len(table) and events[-1]["params"]["by"] == "province"


def test_csv_of_another_table(store: Engine) -> None:
    r = _client(store, "dara").get("/analytics/routes?format=csv&table=crossings")
    assert r.status_code == 200
    rows = _csv(r.text)
    assert rows[0][:6] == ["rank", "place_code", "place_kind", "province_code", "seizures", "kg"]
    assert all(row[2] in {"border_checkpoint", "seaport", "airport"} for row in rows[1:])
    assert _exports(store)[-1]["table"] == "crossings"
    assert _client(store, "dara").get("/analytics/routes?format=csv&table=secrets").status_code == 422


def test_audit_event_keeps_repeated_parameters(store: Engine) -> None:
    r = _client(store, "dara").get("/analytics/forecast?province=KH-12&province=KH-01&drug=heroin&horizon=2"
                                   "&format=csv&table=accuracy")
    assert r.status_code == 200
    rows = _csv(r.text)
    assert rows[0][:3] == ["province", "drug", "model"] and {row[0] for row in rows[1:]} == {"KH-12", "KH-01"}
    event = _exports(store)[-1]
    assert event["analysis"] == "forecast" and event["table"] == "accuracy" and event["rows"] == len(rows) - 1
    assert event["params"]["province"] == ["KH-12", "KH-01"] and event["params"]["drug"] == "heroin"


def test_viewer_may_not_download(store: Engine) -> None:
    before = len(_exports(store))
    r = _client(store, "sopheap").get("/analytics/trends?format=csv")
    assert r.status_code == 403
    assert len(_exports(store)) == before


def test_liaison_sees_only_what_is_shared(store: Engine) -> None:
    counts = {}
    for user in ("dara", "somchai"):
        rows = _csv(_client(store, user).get("/analytics/trends?period=quarter&format=csv").text)
        counts[user] = sum(int(row[rows[0].index("seizures")]) for row in rows[1:])
    with Session(store) as s:
        expected = len(tables.seizures(s, _visible(store, "TH-ONCB", "liaison")))
    assert counts["somchai"] == expected
    assert 0 < counts["somchai"] < counts["dara"]


@pytest.mark.parametrize(("path", "message"), [
    ("/analytics/trends?period=fortnight", "period"),
    ("/analytics/trends?start=2024-13-40", "start must be a date"),
    ("/analytics/trends?start=2025-01-01&end=2024-01-01", "start date is after"),
    ("/analytics/alerts?month=June", "month"),
    ("/analytics/forecast?drug=unobtainium", "unknown drug"),
    ("/analytics/forecast?horizon=many", "horizon must be a whole number"),
    ("/analytics/routes?top=0", "top"),
    ("/analytics/routes?before_start=2024-01-01", "before"),
    ("/analytics/hotspots?level=village", "level"),
    ("/analytics/hotspots?fdr=2", "false discovery rate"),
    ("/analytics/operations?by=colour", "by"),
])
def test_bad_parameters_give_the_page_with_a_message(store: Engine, path: str, message: str) -> None:
    r = _client(store, "dara").get(path)
    assert r.status_code == 422
    assert 'class="error"' in r.text and message in r.text
    assert '<form class="filters"' in r.text  # the form is there to correct them
    assert "Traceback" not in r.text


def test_forecast_page_notes_match_the_backtest(store: Engine) -> None:
    client = _client(store, "dara")
    visible = _visible(store, "KH-NACD", "analyst")
    r = client.get("/analytics/forecast?province=KH-12&province=KH-01&drug=methamphetamine_tablets&drug=heroin"
                   "&horizon=3")
    assert r.status_code == 200
    with Session(store) as s:
        result = views.forecast_view(s, visible, province=["KH-12", "KH-01"],
                                     drug=["methamphetamine_tablets", "heroin"], horizon=3)
    acc = result.extra["accuracy"]
    losers = acc[acc["chosen"] & ~acc["beats_naive"]]
    assert r.text.count("no model beats the seasonal-naive forecast") == len(losers)
    assert "Backtest accuracy" in r.text and r.text.count("<tr>") > len(result.table)


def test_forecast_page_says_when_seasonal_naive_is_as_good(sqlite_engine: Engine) -> None:
    """A series that repeats itself every year exactly: seasonal naive cannot be beaten, and the page says
    so; a steadily growing series is forecast better than by seasonal naive, and gets no such note."""
    with session_scope(sqlite_engine) as s:
        for year in (2022, 2023, 2024):
            for month in range(1, 13):
                for _k in range(month):  # January 1 seizure of heroin, February 2, ..., December 12
                    create_incident(s, IncidentIn(
                        occurred_on=dt.date(year, month, 10), province="Phnom Penh", reporting_org="KH-PP-12",
                        seizures=[SeizureIn(drug="heroin", quantity=1, unit="kg")]))
                for _k in range(12 * (year - 2022) + month):  # ketamine: 1, 2, 3, ... a month
                    create_incident(s, IncidentIn(
                        occurred_on=dt.date(year, month, 12), province="Kandal", reporting_org="KH-PP-08",
                        seizures=[SeizureIn(drug="ketamine", quantity=1, unit="kg")]))
    make_user(sqlite_engine, "dara", "KH-NACD", "analyst")
    client = _client(sqlite_engine, "dara")
    r = client.get("/analytics/forecast?drug=heroin&drug=ketamine&horizon=3")
    assert r.status_code == 200, r.text[-1500:]
    notes = re.findall(r'<p class="banner note" role="status">([^<]*)</p>', r.text)
    assert len(notes) == 1 and notes[0].startswith("Heroin: no model beats the seasonal-naive forecast")
    rows = _csv(client.get("/analytics/forecast?drug=heroin&drug=ketamine&horizon=3&format=csv").text)
    heroin = [row for row in rows[1:] if row[0] == "heroin"]
    assert [row[rows[0].index("model")] for row in heroin] == ["SeasonalNaive"] * 3
    assert [float(row[rows[0].index("point")]) for row in heroin] == [1.0, 2.0, 3.0]  # Jan, Feb, Mar 2025


def test_routes_page_with_an_operation(store: Engine) -> None:
    with Session(store) as s:
        op = tables.operations(s).sort_values("start_date").iloc[20]
    r = _client(store, "dara").get(f"/analytics/routes?operation={op['operation_id']}")
    assert r.status_code == 200
    assert f'<option value="{op["operation_id"]}" selected>' in r.text
    assert "Displacement around the operation" in r.text


def _spec_of(page: str, chart: str = "main") -> dict[str, Any]:
    m = re.search(rf"id=\"chart-{chart}\"[^>]* data-spec='([^']*)'", page)
    assert m, f"no chart {chart} in the page"
    spec: dict[str, Any] = json.loads(html.unescape(m.group(1)))
    return spec


def test_khmer_page_names_drugs_in_khmer(store: Engine) -> None:
    r = _client(store, "dara").get("/analytics/trends?lang=km")
    assert r.status_code == 200 and '<html lang="km">' in r.text
    spec = _spec_of(r.text)
    legend = {row[spec["encoding"]["color"]["field"]] for row in spec["data"]["values"]}
    assert "ថ្នាំម៉ាទឹកគ្រាប់ (យ៉ាម៉ា)" in legend  # the drug's Khmer name from the vocabulary
    assert '<td title="cannabis_herb">កញ្ឆាស្ងួត</td>' in r.text  # codes as names in the table
