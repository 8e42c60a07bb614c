"""Log a test client in the way a browser does: fetch the form, post it with its CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from narcotrack.domain.models import UserIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_user

PASSWORD = "tonle-sap-2026"


def make_user(engine: Engine, username: str, org: str, role: str) -> None:
    with session_scope(engine) as s:
        create_user(s, UserIn(username=username, org=org, role=role, password=PASSWORD))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD, totp: str = "") -> None:
    form = client.get("/login")
    r = client.post("/login", data={"username": username, "password": password, "totp": totp,
                                    "csrf_token": csrf_of(form.text), "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
