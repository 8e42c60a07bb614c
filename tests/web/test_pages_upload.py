"""The upload page: all-or-nothing and partial imports, the row-by-row report, its CSV, and who may do what."""

from __future__ import annotations

import csv
import gc
import html
import io
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from narcotrack.config import Settings
from narcotrack.ingest.columns import BY_KEY
from narcotrack.store.schema import AuditEvent, Incident
from narcotrack.store.seed import org_id
from narcotrack.web import pages_upload
from narcotrack.web.app import create_app
from tests.ingest.conftest import case_row, counts, write_template_csv
from tests.web.helpers import csrf_of, login, make_user

# (row number in the file, column key, bad value, reason the report must give)
BAD = [
    (4, "drug", "unicorn dust", "unknown drug"),
    (7, "quantity", "lots", "not a number"),
    (10, "date", "2024-13-45", "not a valid date"),
]


def _ten_rows(path: Path, **extra: Any) -> Path:
    """Ten cases of KH-PP-12, rows 2-11 of the file; rows 4, 7 and 10 carry one error each."""
    rows = [case_row(f"PP-{n}", **extra) for n in range(2, 12)]
    for row_no, key, value, _reason in BAD:
        rows[row_no - 2][key] = value
    return write_template_csv(path, rows)


def _client(engine: Engine, name: str, org: str = "KH-PP-12", role: str = "officer") -> TestClient:
    make_user(engine, name, org, role)
    client = TestClient(create_app(engine))
    login(client, name)
    return client


def _post(client: TestClient, path: Path, *, partial: bool = False, fmt: str = "narcotrack",
          csrf: bool = True) -> Any:
    data = {"format": fmt, **({"partial": "1"} if partial else {})}
    if csrf:
        data["csrf_token"] = csrf_of(client.get("/upload").text)
    with open(path, "rb") as fh:
        return client.post("/upload", data=data, files={"file": (path.name, fh, "text/csv")})


def _issues(page: str, kind: str = "errors") -> list[tuple[int, str, str, str]]:
    """(row, column, value, reason) of each line of the report's table of ``kind``."""
    table = re.search(rf'<table class="issues {kind}">(.*?)</table>', page, re.S)
    assert table, f"no {kind} table in the page"
    cells = re.findall(r"<tr><td class=\"num\">(\d+)</td><td>(.*?)</td><td class=\"value\">(.*?)</td>"
                       r"<td>(.*?)</td></tr>", table.group(1), re.S)
    return [(int(r), html.unescape(c), html.unescape(v), html.unescape(why)) for r, c, v, why in cells]


def _count(page: str, key: str) -> int:
    m = re.search(rf'data-key="{key}">([\d,]+)<', page)
    assert m, key
    return int(m.group(1).replace(",", ""))


def _report_id(page: str) -> str:
    m = re.search(r'href="/upload/([A-Za-z0-9_-]+)/errors\.csv"', page)
    assert m, "no link to the error CSV"
    return m.group(1)


def test_file_with_bad_rows_is_rejected_whole_and_names_each_row(engine: Engine, tmp_path: Path) -> None:
    client = _client(engine, "dara")
    r = _post(client, _ten_rows(tmp_path / "march.csv"))
    assert r.status_code == 200  # the page is the report, which says the file was rejected
    assert "Nothing was imported." in r.text and "3 of 10 rows have errors" in r.text
    issues = _issues(r.text)
    assert [(row, col) for row, col, _v, _w in issues] == [(n, BY_KEY[k].header) for n, k, _v, _w in BAD]
    for (row, _col, value, reason), (_n, _k, bad, why) in zip(issues, BAD, strict=True):
        assert value == bad and reason.startswith(why), (row, reason)
    assert (_count(r.text, "rows_read"), _count(r.text, "rows_rejected"), _count(r.text, "rows_imported")) == (
        10, 3, 0)
    assert counts(engine) == {"incident": 0, "seizure": 0, "import_batch": 0}
    with engine.connect() as conn:
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "import")).one()
    assert event.outcome == "rejected" and event.record_id is None
    assert event.detail["file"] == "march.csv" and event.detail["rows_rejected"] == 3
    assert event.detail["rows_imported"] == 0


def test_partial_keeps_the_good_rows_and_a_second_upload_adds_nothing(engine: Engine, tmp_path: Path) -> None:
    client = _client(engine, "dara")
    path = _ten_rows(tmp_path / "march.csv")
    r = _post(client, path, partial=True)
    assert r.status_code == 200, r.text
    assert (_count(r.text, "rows_imported"), _count(r.text, "rows_rejected")) == (7, 3)
    assert [row for row, *_ in _issues(r.text)] == [4, 7, 10]
    assert counts(engine) == {"incident": 7, "seizure": 7, "import_batch": 1}
    again = _post(client, path, partial=True)
    assert again.status_code == 200
    assert (_count(again.text, "rows_imported"), _count(again.text, "rows_already_present")) == (0, 7)
    assert "This same file was imported before" in again.text
    assert counts(engine) == {"incident": 7, "seizure": 7, "import_batch": 2}
    listing = client.get("/upload").text
    assert listing.count("march.csv") == 2
    assert "march.csv" not in _client(engine, "bopha").get("/upload").text  # another user's imports
    make_user(engine, "root", "KH-NACD", "admin")
    admin = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    login(admin, "root")
    everyone = admin.get("/upload").text
    assert everyone.count("march.csv") == 2 and "<td>dara</td>" in everyone
    with engine.connect() as conn:
        owners = set(conn.scalars(select(Incident.owner_org_id)))
        outcomes = list(conn.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "import")))
    assert owners == {org_id("KH-PP-12")} and outcomes == ["ok", "ok"]


def test_rows_the_role_may_not_record_are_refused_row_by_row(engine: Engine, tmp_path: Path) -> None:
    client = _client(engine, "dara")  # an officer of KH-PP-12: own organisation, at most 'domestic'
    rows = [case_row("A-1"), case_row("A-2", reporting_org="KH-GDCE"), case_row("A-3", distribution="partners"),
            case_row("A-4", marking="CLEAR"), case_row("A-5", marking="RED", distribution="owner")]
    r = _post(client, write_template_csv(tmp_path / "mixed.csv", rows), partial=True)
    assert r.status_code == 200
    issues = _issues(r.text)
    assert [(row, col, value) for row, col, value, _w in issues] == [
        (3, BY_KEY["reporting_org"].header, "KH-GDCE"), (4, BY_KEY["distribution"].header, "partners"),
        (5, BY_KEY["marking"].header, "CLEAR")]
    assert "only for your own organisation" in issues[0][3] and "only up to 'domestic'" in issues[1][3]
    assert counts(engine)["incident"] == 2
    analyst = _client(engine, "vanna", "KH-PP-12", "analyst")  # may release: shares as widely as it likes
    wide = [case_row("W-1", distribution="partners", marking="CLEAR")]
    assert _post(analyst, write_template_csv(tmp_path / "wide.csv", wide)).status_code == 200
    assert counts(engine)["incident"] == 3
    ids = _post(client, write_template_csv(tmp_path / "ids.csv", [case_row("A-9")]), fmt="ids")
    assert ids.status_code == 403 and "UNODC IDS data is recorded in UNODC" in ids.text


def test_viewer_and_missing_csrf_are_refused(engine: Engine, tmp_path: Path) -> None:
    path = write_template_csv(tmp_path / "ok.csv", [case_row("B-1", reporting_org="KH-NACD")])
    viewer = _client(engine, "sokha", "KH-NACD", "viewer")
    assert viewer.get("/upload").status_code == 403
    token = csrf_of(viewer.get("/").text)
    with open(path, "rb") as fh:
        r = viewer.post("/upload", data={"format": "narcotrack", "csrf_token": token},
                        files={"file": ("ok.csv", fh, "text/csv")})
    assert r.status_code == 403
    analyst = _client(engine, "vanna", "KH-NACD", "analyst")
    assert _post(analyst, path, csrf=False).status_code == 403
    assert counts(engine)["incident"] == 0
    assert _post(analyst, path).status_code == 200  # the same upload with its token goes through
    assert counts(engine)["incident"] == 1


def test_error_csv_is_for_the_uploader_and_admins_only(engine: Engine, tmp_path: Path) -> None:
    client = _client(engine, "dara")
    report_id = _report_id(_post(client, _ten_rows(tmp_path / "march.csv")).text)
    r = client.get(f"/upload/{report_id}/errors.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="march-errors.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    errors = [(int(x["row"]), x["column"], x["value"]) for x in rows if x["severity"] == "error"]
    assert errors == [(n, BY_KEY[k].header, v) for n, k, v, _w in BAD]
    other = _client(engine, "bopha")  # same organisation, another user
    assert other.get(f"/upload/{report_id}/errors.csv").status_code == 404
    assert other.get("/upload/not-a-report-id-at-all-000/errors.csv").status_code == 404
    assert other.get("/upload/..%2F..%2Fpseudonym.key/errors.csv").status_code == 404
    make_user(engine, "root", "KH-NACD", "admin")
    admin = TestClient(create_app(engine, settings=Settings(totp_roles="")))
    login(admin, "root")
    assert admin.get(f"/upload/{report_id}/errors.csv").status_code == 200
    with engine.connect() as conn:
        downloads = list(conn.scalars(select(AuditEvent.record_id).where(AuditEvent.action == "export")))
    assert downloads == [report_id, report_id]


def test_too_large_upload_is_refused_clearly(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages_upload, "MAX_UPLOAD_BYTES", 4000)
    client = _client(engine, "dara")
    rows = [case_row(f"C-{n}", narrative="x" * 100) for n in range(60)]  # ~13 kB: caught while saving
    r = _post(client, write_template_csv(tmp_path / "big.csv", rows))
    assert r.status_code == 413 and "larger than the size limit" in r.text
    huge = [case_row(f"C-{n}", narrative="x" * 1000) for n in range(100)]  # ~110 kB: caught by its length
    r = _post(client, write_template_csv(tmp_path / "huge.csv", huge))
    assert r.status_code == 413 and "larger than the size limit" in r.text
    assert counts(engine)["incident"] == 0


def test_wrong_kind_of_file_and_unreadable_file(engine: Engine, tmp_path: Path) -> None:
    client = _client(engine, "dara")
    doc = tmp_path / "notes.docx"
    doc.write_bytes(b"PK\x03\x04 not a spreadsheet")
    r = _post(client, doc)
    assert r.status_code == 422 and "Choose a .csv, .csv.gz or .xlsx file." in r.text
    junk = tmp_path / "junk.csv"
    junk.write_text("a;b;c\n1;2;3\n", encoding="utf-8")
    r = _post(client, junk)
    assert r.status_code == 422 and "no narcotrack template columns" in r.text
    with engine.connect() as conn:
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "import")).one()
    assert event.outcome == "rejected" and "no narcotrack template columns" in event.detail["reason"]


def test_template_download_has_bilingual_headers(engine: Engine) -> None:
    client = _client(engine, "dara")
    assert 'href="/upload/template.xlsx"' in client.get("/upload").text
    r = client.get("/upload/template.xlsx")
    assert r.status_code == 200 and "narcotrack-template.xlsx" in r.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(r.content), read_only=True)["Seizures"]
    header = next(ws.iter_rows(max_row=1, values_only=True))
    assert header[0] == "Case number / លេខករណី" and "Drug / គ្រឿងញៀន" in header


def test_uploads_import_without_touching_the_server_process(engine: Engine, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker process, the garbage collector left running, SQLite's foreign-key checks left on."""
    from narcotrack.ingest import importer, pipeline

    def no_worker(*_a: Any, **_k: Any) -> None:
        raise AssertionError("a server-safe import started a worker process")

    reference_checks: list[str] = []
    real_checks = importer.own_reference_checks

    def spy_checks(conn: Any) -> Any:
        reference_checks.append(conn.dialect.name)
        return real_checks(conn)

    gc_states: list[bool] = []
    real_import = importer.import_file

    def spy_import(*args: Any, **kwargs: Any) -> Any:
        return real_import(*args, progress=lambda _done, _total: gc_states.append(gc.isenabled()), **kwargs)

    monkeypatch.setattr(pipeline.subprocess, "Popen", no_worker)
    monkeypatch.setattr(importer, "own_reference_checks", spy_checks)
    monkeypatch.setattr(pages_upload, "import_file", spy_import)
    client = _client(engine, "dara")
    r = _post(client, write_template_csv(tmp_path / "two.csv", [case_row("S-1"), case_row("S-2")]))
    assert _count(r.text, "rows_imported") == 2
    assert gc_states and all(gc_states) and reference_checks == []
    # the command line's fast settings do pause the collector (and, on SQLite, the checks): the spies see it
    gc_states.clear()
    spy_import(engine, write_template_csv(tmp_path / "cli.csv", [case_row("S-3")]), org_code="KH-PP-12")
    assert gc_states and not any(gc_states) and gc.isenabled()
    assert reference_checks == [engine.dialect.name]


def test_the_page_shows_the_first_errors_and_the_csv_has_them_all(engine: Engine, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages_upload, "SHOWN_ISSUES", 2)
    client = _client(engine, "dara")
    r = _post(client, _ten_rows(tmp_path / "march.csv"))
    assert [row for row, *_ in _issues(r.text)] == [4, 7]
    assert "The first 2 of 3 are shown; the CSV has them all." in r.text
    body = client.get(f"/upload/{_report_id(r.text)}/errors.csv").content.decode("utf-8-sig")
    assert [int(x["row"]) for x in csv.DictReader(io.StringIO(body))] == [4, 7, 10]
