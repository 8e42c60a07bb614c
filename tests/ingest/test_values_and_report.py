"""Cell parsing (dates, numbers, countries, places, headers) and the import report."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from narcotrack.errors import InvalidInput
from narcotrack.ingest import values as V
from narcotrack.ingest.columns import column_key
from narcotrack.ingest.readers import open_table
from narcotrack.ingest.report import DUPLICATE, ERROR, KEEP_PER_SEVERITY, WARNING, ImportReport, Issue


@pytest.mark.parametrize(
    ("cell", "iso"),
    [
        ("2024-03-05", "2024-03-05"),
        ("05/03/2024", "2024-03-05"),
        ("5.3.2024", "2024-03-05"),
        ("2024/03/05", "2024-03-05"),
        ("០៥/០៣/២០២៤", "2024-03-05"),
        ("2024-03-05T10:30:00", "2024-03-05"),
        (dt.datetime(2024, 3, 5, 0, 0), "2024-03-05"),
        (dt.date(2024, 3, 5), "2024-03-05"),
        (45356, "2024-03-05"),
        ("", None),
        (None, None),
    ],
)
def test_dates(cell: object, iso: str | None) -> None:
    assert V.parse_date(cell) == iso


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("31/02/2024", "not a valid date"),
        ("03/13/2024", "DD/MM/YYYY"),
        ("yesterday", "not a date"),
        ("1900-01-01", "before 1950"),
    ],
)
def test_bad_dates(cell: str, reason: str) -> None:
    with pytest.raises(V.BadValue, match=reason):
        V.parse_date(cell)


def test_numbers() -> None:
    assert V.parse_number("1,234.5") == 1234.5
    assert V.parse_number(" 12 ") == 12.0
    assert V.parse_number("១២៣") == 123.0
    assert V.parse_number(7) == 7.0
    for bad, reason in (
        ("1,5", "use a point"),
        ("abc", "not a number"),
        ("inf", "not a number"),
        ("", "missing"),
    ):
        with pytest.raises(V.BadValue, match=reason):
            V.parse_number(bad)


def test_countries() -> None:
    assert V.country("Lao PDR") == "LA"
    assert V.country("Unknown") is None
    assert V.countries("Laos, Thailand; ថៃ") == "LA TH"
    assert V.countries("LA VN") == "LA VN"
    with pytest.raises(V.BadValue, match="Narnia"):
        V.countries("Laos, Narnia")


def test_cambodian_places() -> None:
    assert V.cambodian_place("Phnom Penh", "Chamkar Mon", "") == ("KH-1201", "KH-12", "KH-1201")
    assert V.cambodian_place("12", "", "") == ("KH-12", "KH-12", None)
    assert V.cambodian_place("ឧត្តរមានជ័យ", "", "")[1] == "KH-22"  # typed with subscript TA
    assert V.cambodian_place("ឧត្ដរមានជ័យ", "", "")[1] == "KH-22"  # the gazetteer's subscript DA
    with pytest.raises(V.PlaceError) as caught:
        V.cambodian_place("", "Chamkar Mon", "")
    assert caught.value.level == "province"
    with pytest.raises(V.PlaceError) as caught:
        V.cambodian_place("Kep", "Chamkar Mon", "")
    assert caught.value.level == "district"


@pytest.mark.parametrize(
    ("cell", "key"),
    [
        ("Date / កាលបរិច្ឆេទ", "date"),
        ("កាលបរិច្ឆេទ", "date"),
        ("DATE", "date"),
        ("Case number", "incident_ref"),
        ("incident_ref", "incident_ref"),
        ("ស្រុក ខណ្ឌ", "district"),
        ("Purity %", "purity_pct"),
        ("Colour", None),
    ],
)
def test_header_cells(cell: str, key: str | None) -> None:
    assert column_key(cell) == key


def test_report_text_and_csv(tmp_path: Path) -> None:
    report = ImportReport("cases.csv", fmt="narcotrack", rows_read=500, rows_rejected=KEEP_PER_SEVERITY + 50)
    for i in range(KEEP_PER_SEVERITY + 50):
        report.add(
            Issue(i + 2, "Drug", f"drug{i % 3}", "unknown drug", ERROR, "see the 'Allowed values' sheet")
        )
    report.add(Issue(3, "Unit", "", "missing"))
    report.add(Issue(9, "DRUG_NAME", "Alcohol", "recorded as 'other'", WARNING))
    report.add(Issue(12, "AMOUNT", "2.786 kg", "likely duplicate", DUPLICATE, "row 11"))
    assert len(report.errors) == KEEP_PER_SEVERITY and report.count(ERROR) == KEEP_PER_SEVERITY + 51
    text = report.to_text(max_issues=5)
    assert "NOT imported" in text
    assert f"{KEEP_PER_SEVERITY + 50:>8,}  Drug: unknown drug (e.g. 'drug0', 'drug1', 'drug2')" in text
    assert "First 5 of 251 errors:" in text
    assert "row 2, column 'Drug', value 'drug0': unknown drug: see the 'Allowed values' sheet" in text
    out = io.StringIO()
    assert report.write_errors_csv(out) == KEEP_PER_SEVERITY + 51  # every error, not only those kept
    assert out.getvalue().splitlines()[1] == "2,Drug,drug0,unknown drug: see the 'Allowed values' sheet"
    path = tmp_path / "all.csv"
    assert report.write_errors_csv(path, include_warnings=True) == KEEP_PER_SEVERITY + 53
    assert (
        path.read_text(encoding="utf-8-sig").splitlines()[-1]
        == "12,AMOUNT,2.786 kg,likely duplicate: row 11,duplicate"
    )
    report.close()


def test_reader_row_numbers_and_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('\n\na,b\n1,"two\nlines"\n,\n3,4\n', encoding="utf-8")
    with open_table(path) as table:
        assert table.header == ["a", "b"]
        assert [(n, r) for n, r in table.rows] == [(4, ["1", "two\nlines"]), (6, ["3", "4"])]
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InvalidInput, match="empty"):
        open_table(empty)
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    with pytest.raises(InvalidInput, match="old Excel"):
        open_table(xls)
