"""The analysis pages in a real headless Chromium: every chart is drawn (an <svg> with marks in its
container), without a console error, and nothing is fetched from anywhere but narcotrack itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.web.helpers import PASSWORD, serve
from tests.web.test_pages_analytics import demo_copy

PAGES = {
    "trends": "?by=drug&period=month&measure=seizures",
    "alerts": "",
    "forecast": "?drug=methamphetamine_tablets&horizon=6",
    "routes": "",
    "hotspots": "",
    "operations": "?by=kind",
}
# Marks Vega draws into the SVG: lines, areas, symbols, rules, shapes, rectangles.
MARKS = "g.mark-line path, g.mark-area path, g.mark-symbol path, g.mark-rule line, g.mark-shape path, g.mark-rect path"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    """narcotrack on a demo store, served by uvicorn on a free loopback port in a thread of this process."""
    engine: Engine = demo_copy(tmp_path_factory.mktemp("analytics-browser"), sqlite_template)
    with serve(engine) as address:
        yield address
    engine.dispose()


@pytest.fixture(scope="module")
def logged_in(demo_server: str, browser: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(demo_server + "/login")
    page.fill("input[name=username]", "dara")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(demo_server + "/")
    yield page, requests, errors
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_chart_is_drawn(demo_server: str, logged_in: tuple[Any, list[str], list[str]], name: str) -> None:
    page, requests, errors = logged_in
    requests.clear()
    errors.clear()
    response = page.goto(f"{demo_server}/analytics/{name}{PAGES[name]}")
    assert response is not None and response.status == 200
    page.wait_for_selector("#chart-main[data-chart-ready] svg", timeout=30_000)
    charts = page.locator("[data-spec]")
    for i in range(charts.count()):  # every chart of the page, not only the first
        chart = charts.nth(i)
        assert chart.get_attribute("data-chart-error") is None
        chart.locator("svg").first.wait_for(timeout=30_000)
        assert chart.locator(MARKS).count() > 0, f"chart {i} of {name} has no marks"
    assert errors == []
    assert requests and all(r.startswith(demo_server + "/") for r in requests), requests
    assert any(r.endswith("/static/vendor/vega-embed.min.js") for r in requests)


def test_map_marks_are_provinces(demo_server: str, logged_in: tuple[Any, list[str], list[str]]) -> None:
    page, _requests, errors = logged_in
    page.goto(f"{demo_server}/analytics/hotspots")
    page.wait_for_selector("#chart-main[data-chart-ready] svg", timeout=30_000)
    assert page.locator("#chart-main g.mark-shape path").count() == 25
    box = page.locator("#chart-main svg").bounding_box()
    assert box is not None and box["width"] > 300
    assert errors == []


def test_a_broken_spec_is_reported_in_place(demo_server: str, logged_in: tuple[Any, list[str], list[str]]) -> None:
    """charts.js never throws: a spec that cannot be read leaves a message in the chart's place."""
    page, _requests, errors = logged_in
    page.goto(f"{demo_server}/analytics/operations")
    page.wait_for_selector("#chart-main[data-chart-ready] svg", timeout=30_000)
    page.evaluate("""() => { const d = document.createElement('div'); d.id = 'broken';
        d.setAttribute('data-spec', '{not json'); document.body.appendChild(d);
        const s = document.createElement('script'); s.src = '/static/charts.js'; document.body.appendChild(s); }""")
    page.wait_for_selector("#broken[data-chart-error]", timeout=10_000)
    assert errors == []
