from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from narcotrack.config import Settings
from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import User
from narcotrack.web.app import create_app
from tests.web.helpers import PASSWORD, csrf_of, login, make_user


def _seed(engine: Engine) -> None:
    with session_scope(engine) as s:
        for day, qty, distribution in ((1, 1000, "domestic"), (2, 3000, "partners")):
            create_incident(s, IncidentIn(occurred_on=dt.date(2025, 5, day), province="Svay Rieng",
                                          district="Bavet", reporting_org="KH-GDCE", distribution=distribution,
                                          marking="GREEN", seizures=[SeizureIn(drug="heroin", quantity=qty, unit="g")]))


def _figure(html: str, key: str) -> str:
    m = re.search(rf'data-key="{key}">\s*<span class="value">([^<]+)<', html)
    assert m, key
    return m.group(1)


@pytest.fixture
def client(engine: Engine) -> TestClient:
    make_user(engine, "analyst", "KH-NACD", "analyst")
    c = TestClient(create_app(engine))
    login(c, "analyst")
    return c


def test_pages_need_a_login(engine: Engine) -> None:
    c = TestClient(create_app(engine))
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    assert c.get("/api/v1/figures").status_code == 401
    page = c.get("/login")
    assert "Authorised use only" in page.text
    assert 'name="csrf_token"' in page.text


def test_home_shows_headline_figures_from_the_store(engine: Engine, client: TestClient) -> None:
    _seed(engine)
    r = client.get("/")
    assert r.status_code == 200
    assert _figure(r.text, "incidents") == "2"
    assert _figure(r.text, "seizures") == "2"
    assert _figure(r.text, "kg_seized") == "4"
    assert "Heroin" in r.text
    assert "Demo store" not in r.text


def test_figures_follow_the_sharing_policy(engine: Engine) -> None:
    _seed(engine)
    make_user(engine, "liaison", "TH-ONCB", "liaison")
    c = TestClient(create_app(engine))
    login(c, "liaison")
    assert _figure(c.get("/").text, "incidents") == "1"  # only the one shared with partners
    assert c.get("/api/v1/figures").json()["kg_seized"] == pytest.approx(3.0)


def test_home_in_khmer(engine: Engine, client: TestClient) -> None:
    _seed(engine)
    r = client.get("/?lang=km")
    assert '<html lang="km">' in r.text
    assert "ការរឹបអូសគ្រឿងញៀន និងការចាប់ខ្លួន" in r.text
    assert "ហេរ៉ូអ៊ីន" in r.text  # drug names come from the vocabulary in Khmer
    assert '<html lang="km">' in client.get("/").text  # the choice sticks in a cookie


def test_empty_store_and_demo_banner(engine: Engine) -> None:
    make_user(engine, "viewer", "KH-MOH", "viewer")
    c = TestClient(create_app(engine, demo=True))
    assert "second factor is switched off" in c.get("/login").text
    login(c, "viewer")
    r = c.get("/")
    assert "holds no incidents yet" in r.text
    assert "Demo store" in r.text


def test_wrong_password_and_forged_login_form(engine: Engine) -> None:
    make_user(engine, "sokha", "KH-NACD", "analyst")
    c = TestClient(create_app(engine))
    form = c.get("/login")
    r = c.post("/login", data={"username": "sokha", "password": "nope-nope-nope", "csrf_token": csrf_of(form.text)})
    assert r.status_code == 401 and "wrong user name or password" in r.text
    fresh = TestClient(create_app(engine))
    r = fresh.post("/login", data={"username": "sokha", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403


def test_admins_need_the_second_factor(engine: Engine) -> None:
    from narcotrack.access.accounts import enrol_totp

    make_user(engine, "root", "KH-NACD", "admin")
    with session_scope(engine) as s:
        user = s.scalar(select(User).where(User.username == "root"))
        assert user is not None
        enrol_totp(s, user)
        secret = user.totp_secret
    assert secret is not None
    app = create_app(engine, settings=Settings(totp_roles="admin"))
    c = TestClient(app)
    form = c.get("/login")
    r = c.post("/login", data={"username": "root", "password": PASSWORD, "csrf_token": csrf_of(form.text)})
    assert r.status_code == 401 and "six-digit code" in r.text
    login(c, "root", totp=pyotp.TOTP(secret).now())
    assert c.get("/").status_code == 200


def test_logout_needs_csrf_and_ends_the_session(engine: Engine, client: TestClient) -> None:
    assert client.post("/logout").status_code == 403
    csrf = csrf_of(client.get("/").text)
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_session_cookie_flags(engine: Engine) -> None:
    make_user(engine, "dara", "KH-NACD", "officer")
    c = TestClient(create_app(engine))
    form = c.get("/login")
    r = c.post("/login", data={"username": "dara", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
               follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "nt_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


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


def test_api_errors_as_json(engine: Engine, client: TestClient) -> None:
    _seed(engine)
    assert client.get("/api/v1/figures").json()["incidents"] == 2
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
    assert "Not Found" in client.get("/nothing-here").text


@pytest.mark.parametrize("path", ["/", "/login", "/health", "/api/v1/figures", "/api/v1/openapi.json"])
def test_pages_load_nothing_from_outside(engine: Engine, client: TestClient, path: str) -> None:
    body = client.get(path).text
    assert not re.search(r"(src|href)=\"https?://(?!testserver)", body)
