"""Exports: only what the caller may see, the roles that may export, and an audit event with the row count."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from narcotrack.store.schema import AuditEvent
from narcotrack.web.app import create_app
from tests.web.helpers import login, make_user
from tests.web.test_api_incidents import _seed


def _client(engine: Engine, name: str, org: str, role: str) -> TestClient:
    make_user(engine, name, org, role)
    c = TestClient(create_app(engine))
    login(c, name)
    return c


def test_csv_export_is_scoped_and_audited(engine: Engine) -> None:
    _seed(engine)  # 12 incidents, 2 seizures each; 6 shared with partners, one RED
    rows = list(csv.DictReader(io.StringIO(_client(engine, "adp", "KH-ADP", "analyst")
                                           .get("/api/v1/incidents/export.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 24 and {r["drug"] for r in rows} == {"methamphetamine_tablets", "heroin",
                                                            "methamphetamine_crystalline"}
    thai = _client(engine, "thai", "TH-ONCB", "liaison")
    r = thai.get("/api/v1/incidents/export.csv", params={"place": "KH-12"})
    thai_rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert thai_rows and all(x["distribution"] == "partners" and x["province_code"] == "KH-12" for x in thai_rows)
    assert 'filename="incidents.csv"' in r.headers["content-disposition"]
    with engine.connect() as conn:
        details = list(conn.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")
                                    .order_by(AuditEvent.id)))
    assert [d["rows"] for d in details] == [24, len(thai_rows)]
    assert details[1]["filters"] == {"place": "KH-12"}


def test_xlsx_export(engine: Engine) -> None:
    _seed(engine)
    r = _client(engine, "adp", "KH-ADP", "analyst").get("/api/v1/incidents/export.xlsx", params={"drug": "heroin"})
    ws = load_workbook(io.BytesIO(r.content), read_only=True)["incidents"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "incident_id" and len(rows) == 1 + 3 * 2


def test_roles_without_export_right_are_refused(engine: Engine) -> None:
    _seed(engine)
    assert _client(engine, "officer", "KH-PP-01", "officer").get("/api/v1/incidents/export.csv").status_code == 403
    anon = TestClient(create_app(engine))
    assert anon.get("/api/v1/incidents/export.csv").status_code == 401


def test_export_takes_the_same_filters_as_the_list(engine: Engine) -> None:
    _seed(engine)
    client = _client(engine, "adp", "KH-ADP", "analyst")
    params = {"marking": ["RED", "GREEN"], "drug": ["heroin", "ice"], "place": "KH-12"}
    listed = {i["id"] for i in client.get("/api/v1/incidents", params={**params, "limit": 500}).json()["items"]}
    r = client.get("/api/v1/incidents/export.csv", params=params)
    exported = {row["incident_id"] for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))}
    assert listed and exported == listed
    assert client.get("/api/v1/incidents/export.csv", params={"marking": "RED"}).text.count("\n") == 1 + 2


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised(engine: Engine) -> None:
    import datetime as dt

    from narcotrack.domain.models import IncidentIn, SeizureIn
    from narcotrack.store.db import session_scope
    from narcotrack.store.repo import create_incident

    with session_scope(engine) as s:
        create_incident(s, IncidentIn(occurred_on=dt.date(2025, 1, 9), province="Kampot", reporting_org="KH-ADP",
                                      place_text='=HYPERLINK("http://x","y")',
                                      seizures=[SeizureIn(drug="ice", quantity=1, unit="kg")]))
    client = _client(engine, "adp", "KH-ADP", "analyst")
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/incidents/export.csv").content.decode("utf-8-sig"))))
    assert rows[0]["place_text"] == "'=HYPERLINK(\"http://x\",\"y\")"
    ws = load_workbook(io.BytesIO(client.get("/api/v1/incidents/export.xlsx").content))["incidents"]
    cell = ws.cell(row=2, column=6)
    assert cell.value.startswith("'=") and cell.data_type == "s"
