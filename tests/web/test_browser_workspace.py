"""In a real Chromium: the Thai liaison officer opens a joint operation's workspace from the operation's
page, sees the participants, their own contribution and only the incidents shared with Thailand, in English
and Khmer, with no console error and no request to anywhere but narcotrack itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.web.helpers import PASSWORD, make_user
from tests.web.test_operation_workspace import CASES, _store, expected_visible


def test_thai_liaison_opens_the_workspace_in_chromium(live_server: tuple[str, Engine], browser: Any) -> None:
    url, engine = live_server
    store = _store(engine)
    make_user(engine, "somsak", "TH-ONCB", "liaison")
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/login")
    page.fill("input[name=username]", "somsak")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.goto(url + f"/operations/{store['bilateral']}")
    page.click("text=Joint operations workspace")
    page.wait_for_url(url + f"/operations/{store['bilateral']}/workspace")
    assert "Operation Lotus Gate" in page.locator("h1").inner_text()
    assert page.locator("table.participants tbody tr").count() == 3
    thai = page.locator('table.contributions tr[data-org="TH-ONCB"]')
    assert thai.locator('[data-key="incidents"]').inner_text() == "1"  # their AMBER one; not their RED one
    assert thai.locator('[data-key="kg"]').inner_text() == "20.000"
    shown = {page.locator("table.workspace-incidents tbody tr").nth(i).get_attribute("data-id")
             for i in range(page.locator("table.workspace-incidents tbody tr").count())}
    assert shown == {store["ids"][c.key] for c in CASES if expected_visible("TH-ONCB", "liaison", c)}
    page.click("text=ខ្មែរ")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "km"
    assert "Operation Lotus Gate" in page.locator("h1").inner_text()
    assert errors == []
    assert requests and all(r.startswith(url) for r in requests), requests
    page.close()
