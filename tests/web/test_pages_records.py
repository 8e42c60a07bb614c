"""The generated list and detail pages of every record type: what the policy lets through, and no more."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from narcotrack.web.labels import LIST_COLUMNS
from tests.web.test_api_records import SAMPLES, _incident, clients  # noqa: F401 - fixture


@pytest.mark.parametrize("slug", sorted(LIST_COLUMNS))
def test_record_pages(engine: Engine, clients: dict[str, Any], slug: str) -> None:  # noqa: F811
    analyst, h = clients["analyst"]
    incident = _incident(analyst, h)
    shown = SAMPLES[slug][0](incident, 7)
    domestic = analyst.post(f"/api/v1/{slug}", json=shown, headers=h).json()["id"]
    shared = analyst.post(f"/api/v1/{slug}", json={**SAMPLES[slug][0](incident, 8), "marking": "GREEN",
                                                  "distribution": "partners"}, headers=h).json()["id"]

    page = analyst.get(f"/{slug}")
    assert page.status_code == 200 and domestic in page.text and shared in page.text
    assert f"/api/v1/{slug}/export.csv" in page.text
    detail = analyst.get(f"/{slug}/{domestic}")
    assert detail.status_code == 200
    first = next(iter(shown.values()))
    assert str(first) in detail.text

    liaison, _ = clients["liaison"]
    page = liaison.get(f"/{slug}")
    assert page.status_code == 200 and shared in page.text and domestic not in page.text
    assert liaison.get(f"/{slug}/{domestic}").status_code == 404
    assert liaison.get(f"/{slug}/{shared}").status_code == 200

    viewer, _ = clients["viewer"]
    assert "/export.csv" not in viewer.get(f"/{slug}").text  # no export link without the right


def test_bad_filter_value_is_a_clear_error(engine: Engine, clients: dict[str, Any]) -> None:  # noqa: F811
    analyst, _ = clients["analyst"]
    r = analyst.get("/training?date_from=yesterday")
    assert r.status_code == 422 and "date_from" in r.text
