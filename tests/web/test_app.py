from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.web.app import create_app


def _seed(engine: Engine) -> None:
    with session_scope(engine) as s:
        for day, qty in ((1, 1000), (2, 3000)):
            create_incident(
                s,
                IncidentIn(
                    occurred_on=dt.date(2025, 5, day),
                    province="Svay Rieng",
                    district="Bavet",
                    reporting_org="KH-GDCE",
                    seizures=[SeizureIn(drug="heroin", quantity=qty, unit="g")],
                ),
            )


def _figure(html: str, key: str) -> str:
    m = re.search(rf'data-key="{key}">\s*<span class="value">([^<]+)<', html)
    assert m, key
    return m.group(1)


def test_home_shows_headline_figures_from_the_store(engine: Engine) -> None:
    _seed(engine)
    client = TestClient(create_app(engine))
    r = client.get("/")
    assert r.status_code == 200
    assert _figure(r.text, "incidents") == "2"
    assert _figure(r.text, "seizures") == "2"
    assert _figure(r.text, "kg_seized") == "4"
    assert "Heroin" in r.text
    assert "Demo store" not in r.text


def test_home_in_khmer(engine: Engine) -> None:
    _seed(engine)
    client = TestClient(create_app(engine))
    r = client.get("/?lang=km")
    assert '<html lang="km">' in r.text
    assert "ការរឹបអូសគ្រឿងញៀន និងការចាប់ខ្លួន" in r.text
    assert "ហេរ៉ូអ៊ីន" in r.text  # drug names come from the vocabulary in Khmer
    # the choice sticks in a cookie
    assert '<html lang="km">' in client.get("/").text


def test_empty_store_and_demo_banner(engine: Engine) -> None:
    r = TestClient(create_app(engine, demo=True)).get("/")
    assert "holds no incidents yet" in r.text
    assert "Demo store" in r.text


def test_health(engine: Engine) -> None:
    r = TestClient(create_app(engine)).get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] in {"sqlite", "postgresql"}


def test_health_reports_an_unreachable_store() -> None:
    from narcotrack.store.db import make_engine

    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    r = TestClient(create_app(engine)).get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "error"


def test_api_figures_and_errors_as_json(engine: Engine) -> None:
    _seed(engine)
    client = TestClient(create_app(engine))
    assert client.get("/api/v1/figures").json()["incidents"] == 2
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    assert "Not Found" in client.get("/nothing-here").text


@pytest.mark.parametrize("path", ["/", "/health", "/api/v1/figures", "/api/v1/openapi.json"])
def test_pages_load_nothing_from_outside(engine: Engine, path: str) -> None:
    body = TestClient(create_app(engine)).get(path).text
    assert not re.search(r"(src|href)=\"https?://(?!testserver)", body)
