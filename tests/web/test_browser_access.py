"""In a real Chromium: a Thai liaison officer cannot reach a RED Cambodian record by any route — list
page, detail page, API list and detail, export, search — while a Cambodian analyst reaches it by each."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from tests.web.helpers import PASSWORD, make_user


def _log_in(browser: Any, url: str, username: str) -> tuple[Any, list[str], list[str]]:
    context = browser.new_context()
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page, requests, errors


def _routes(page: Any, url: str, rid: str) -> dict[str, tuple[int, str]]:
    """Status and text of every way to the record, as the browser gets them."""
    out = {}
    for way, path in [("list page", "/incidents"), ("detail page", f"/incidents/{rid}"),
                      ("api list", "/api/v1/incidents?limit=500"), ("api detail", f"/api/v1/incidents/{rid}"),
                      ("search page", "/search?q=Poipet"), ("api search", "/api/v1/search?q=Poipet")]:
        response = page.goto(url + path)
        out[way] = (response.status, page.content())
    csv = page.evaluate("fetch('/api/v1/incidents/export.csv').then(r => r.text())")
    out["export"] = (200, csv)
    return out


def test_thai_liaison_cannot_reach_a_red_cambodian_record(live_server: tuple[str, Engine], browser: Any) -> None:
    url, engine = live_server
    with session_scope(engine) as s:
        red = create_incident(s, IncidentIn(
            occurred_on=dt.date(2025, 6, 2), province="Banteay Meanchey", reporting_org="KH-NACD",
            place_text="Poipet checkpoint, informant meeting", marking="RED", distribution="partners",
            seizures=[SeizureIn(drug="ice", quantity=12, unit="kg")]))
        shared = create_incident(s, IncidentIn(
            occurred_on=dt.date(2025, 6, 3), province="Banteay Meanchey", reporting_org="KH-NACD",
            place_text="Poipet market", marking="GREEN", distribution="partners",
            seizures=[SeizureIn(drug="yaba", quantity=4000, unit="tablet")]))
    make_user(engine, "somchai", "TH-ONCB", "liaison")
    make_user(engine, "dara", "KH-NACD", "analyst")

    page, requests, errors = _log_in(browser, url, "dara")
    seen = _routes(page, url, red)
    assert [way for way, (status, text) in seen.items()
            if status != 200 or (red not in text and "informant" not in text)] == []

    page, requests, errors = _log_in(browser, url, "somchai")
    seen = _routes(page, url, red)
    # a detail answer may echo the id that was asked for, but nothing of the record itself
    leaks = [way for way, (_, text) in seen.items() if "informant" in text or (red in text and "detail" not in way)]
    assert leaks == [], {w: seen[w][1][-800:] for w in leaks}
    assert seen["detail page"][0] == 404 and seen["api detail"][0] == 404
    assert shared in seen["list page"][1] and shared in seen["export"][1]  # the GREEN one does reach them
    assert errors == []
    assert all(r.startswith(url) for r in requests), requests
