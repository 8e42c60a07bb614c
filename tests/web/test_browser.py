"""The home page in a real headless Chromium: it renders, in both languages, and fetches nothing outside."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from tests.web.helpers import PASSWORD, make_user


def test_home_page_in_chromium(live_server: tuple[str, Engine], browser: Any) -> None:
    url, engine = live_server
    with session_scope(engine) as s:
        create_incident(
            s,
            IncidentIn(
                occurred_on=dt.date(2025, 2, 3),
                province="Stung Treng",
                reporting_org="KH-PP-19",
                seizures=[SeizureIn(drug="yaba", quantity=100_000, unit="tablets")],
            ),
        )
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    make_user(engine, "sreyneang", "KH-NACD", "analyst")
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")  # not logged in yet
    page.fill("input[name=username]", "sreyneang")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    assert page.locator('[data-key="incidents"] .value').inner_text() == "1"
    assert page.locator('[data-key="kg_seized"] .value').inner_text() == "9"
    assert page.locator("table.by-drug").inner_text().count("Methamphetamine tablets") == 1
    page.click("text=ខ្មែរ")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "km"
    assert "ថ្នាំម៉ាទឹកគ្រាប់" in page.locator("table.by-drug").inner_text()
    # the Khmer font is served by narcotrack itself and is in use
    assert page.evaluate("document.fonts.ready.then(() => document.fonts.check('16px \"Noto Sans Khmer\"', 'ក'))")
    assert any(r.endswith("/fonts/noto-sans-khmer.ttf") for r in requests)
    assert errors == []
    assert requests and all(r.startswith(url) for r in requests), requests
    page.close()
