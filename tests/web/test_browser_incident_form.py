"""The incident entry form in a real headless Chromium: Khmer place search, htmx rows, save, the new page."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, select

from narcotrack.store.db import session_scope
from narcotrack.store.schema import Incident, Seizure
from tests.web.helpers import PASSWORD, make_user


def test_record_an_incident_through_the_form(live_server: tuple[str, Engine], browser: Any) -> None:
    url, engine = live_server
    make_user(engine, "chantha", "KH-PP-02", "officer")
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(url + "/login?next=/incidents/new")
    page.fill("input[name=username]", "chantha")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/incidents/new")

    # Type the province in Khmer: htmx fetches the matches as one types; pick Battambang.
    page.locator("input[name=place_q]").press_sequentially("បាត់ដំបង", delay=30)
    option = page.locator('#place-options input[name=place][value="KH-02"]')
    option.wait_for()
    assert "Battambang" in page.locator("#place-options").inner_text()
    option.check()

    page.select_option('select[name="seizures.0.drug"]', "methamphetamine_tablets")
    page.fill('input[name="seizures.0.quantity"]', "24000")
    page.select_option('select[name="seizures.0.unit"]', "tablet")
    page.click("#add-seizure")  # htmx fetches a second row in place, without leaving the page
    page.locator('select[name="seizures.1.drug"]').wait_for()
    assert page.url == url + "/incidents/new"
    page.select_option('select[name="seizures.1.drug"]', "ketamine")
    page.fill('input[name="seizures.1.quantity"]', "2.5")
    page.select_option('select[name="seizures.1.unit"]', "kg")
    # the button now asks for the row after the new one
    assert "index=2" in (page.locator("#add-seizure").get_attribute("hx-get") or "")

    page.click("button.save")
    page.wait_for_url(re.compile(re.escape(url) + r"/incidents/[0-9a-f-]{36}$"))
    incident_id = page.url.rsplit("/", 1)[1]
    seizures_text = page.locator("table.seizures").inner_text()
    assert "Methamphetamine tablets" in seizures_text and "24,000" in seizures_text
    assert "Ketamine" in seizures_text
    assert "Battambang" in page.locator("dl.record").inner_text()

    with session_scope(engine) as s:
        incident = s.get(Incident, incident_id)
        assert incident is not None and incident.province_code == "KH-02" and incident.source == "form"
        stored = s.scalars(select(Seizure).where(Seizure.incident_id == incident_id)).all()
        assert sorted((x.drug, x.quantity, x.unit) for x in stored) == [
            ("ketamine", 2.5, "kg"),
            ("methamphetamine_tablets", 24000, "tablet"),
        ]

    assert errors == []
    assert requests and all(r.startswith(url + "/") for r in requests), requests
    assert any("/places/search" in r for r in requests) and any("seizure-row" in r for r in requests)
    page.close()
