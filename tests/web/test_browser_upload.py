"""Uploading a spreadsheet in a real headless Chromium: the report names each bad row and nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import Engine

from narcotrack.ingest.columns import COLUMNS
from narcotrack.ingest.template import DATA_SHEET, write_template
from tests.ingest.conftest import case_row, counts
from tests.web.helpers import PASSWORD, make_user

# sheet row -> (column key, bad value, start of the reason the report gives)
BAD = {3: ("drug", "unicorn dust", "unknown drug"), 5: ("quantity", "-5", "negative"),
       6: ("date", "2999-01-01", "date in the future")}


def _workbook(path: Path) -> Path:
    """The downloadable template with five cases of KH-PP-12 on its data sheet, three of them bad."""
    write_template(path)
    wb = load_workbook(path)
    ws = wb[DATA_SHEET]
    for sheet_row in range(2, 7):
        row = case_row(f"BM-{sheet_row}")
        if sheet_row in BAD:
            key, value, _reason = BAD[sheet_row]
            row[key] = value
        for col, column in enumerate(COLUMNS, start=1):
            ws.cell(row=sheet_row, column=col, value=row.get(column.key) or None)
    wb.save(path)
    return path


def test_upload_report_in_chromium(live_server: tuple[str, Engine], browser: Any, tmp_path: Path) -> None:
    url, engine = live_server
    make_user(engine, "chanthou", "KH-PP-12", "officer")
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/upload")
    assert page.url.startswith(url + "/login")
    page.fill("input[name=username]", "chanthou")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/upload")
    assert page.locator("a[href='/upload/template.xlsx']").count() == 1
    page.set_input_files("input[name=file]", str(_workbook(tmp_path / "banteay-meanchey.xlsx")))
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("table.issues.errors")
    assert "Nothing was imported." in page.locator(".outcome").inner_text()
    shown = [[cell.strip() for cell in row.locator("td").all_inner_texts()]
             for row in page.locator("table.issues.errors tbody tr").all()]
    assert [int(row[0]) for row in shown] == sorted(BAD)
    for row in shown:
        key, value, reason = BAD[int(row[0])]
        assert row[1] == next(c.header for c in COLUMNS if c.key == key)
        assert row[2] == value and row[3].startswith(reason), row
    assert page.locator('[data-key="rows_read"]').inner_text() == "5"
    assert page.locator('[data-key="rows_imported"]').inner_text() == "0"
    assert counts(engine) == {"incident": 0, "seizure": 0, "import_batch": 0}
    assert errors == []
    assert requests and all(r.startswith(url) for r in requests), requests
    page.close()
