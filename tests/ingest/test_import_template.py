"""Importing narcotrack's own template: counts, validation, all-or-nothing, re-import, scripts and formats."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from narcotrack.errors import ImportRejected, InvalidInput
from narcotrack.ingest.columns import COLUMNS
from narcotrack.ingest.importer import import_file
from narcotrack.store.schema import ImportBatch, Incident, Seizure
from narcotrack.store.seed import org_id, place_id

from .conftest import HEADER, KEYS, case_row, counts, seizures, write_template_csv


def test_good_file_imports_with_counts_and_kg(engine: Engine, tmp_path: Path) -> None:
    rows = [
        case_row(
            "A-1",
            drug="yaba",
            quantity="9884",
            unit="tablets",
            origin_country="Laos",
            transit_countries="Thailand, VN",
            purity_pct="18%",
        ),
        case_row("A-1", date="", province="", district="", place="", drug="ice", quantity="250", unit="g"),
        case_row(
            "B-7",
            date="21/03/2024",
            province="Battambang",
            district="",
            place="",
            drug="ketamine",
            quantity="1,500.5",
            unit="kg",
            concealment="baggage",
            transport="bus",
            marking="GREEN",
            distribution="partners",
        ),
    ]
    report = import_file(engine, write_template_csv(tmp_path / "good.csv", rows))
    assert report.committed
    assert (report.rows_read, report.rows_imported, report.rows_rejected) == (3, 3, 0)
    assert (report.incidents_created, report.seizures_created) == (2, 3)
    assert report.mass_kg == pytest.approx(9884 * 0.00009 + 0.25 + 1500.5)
    assert counts(engine) == {"incident": 2, "seizure": 3, "import_batch": 1}
    found = seizures(engine)
    yaba, ice, ket = (s for s, _i in found)
    inc_a, inc_b = found[0][1], found[2][1]
    assert found[1][1].id == inc_a.id  # rows with one case number are one incident
    assert (yaba.drug, yaba.unit, yaba.unit_reported, yaba.drug_reported) == (
        "methamphetamine_tablets",
        "tablet",
        "tablets",
        "yaba",
    )
    assert yaba.mass_kg == pytest.approx(0.88956)
    assert (yaba.origin_country, yaba.transit_countries, yaba.purity_pct) == ("LA", "TH VN", 18.0)
    assert (ice.drug, ice.mass_kg) == ("methamphetamine_crystalline", pytest.approx(0.25))
    assert inc_a.occurred_on == dt.date(2024, 5, 2)
    assert (inc_a.province_code, inc_a.district_code, inc_a.place_id) == (
        "KH-12",
        "KH-1201",
        place_id("KH-1201"),
    )
    assert (inc_a.source, inc_a.source_ref, inc_a.reporting_org_id) == (
        "import",
        "KH-PP-12:A-1",
        org_id("KH-PP-12"),
    )
    assert (inc_a.marking, inc_a.distribution, inc_a.place_kind) == ("AMBER", "domestic", "road")
    assert (inc_b.occurred_on, inc_b.province_code, inc_b.marking, inc_b.distribution) == (
        dt.date(2024, 3, 21),
        "KH-02",
        "GREEN",
        "partners",
    )
    assert (ket.mass_kg, ket.concealment, ket.transport_mode) == (
        pytest.approx(1500.5),
        "baggage",
        "road_commercial",
    )
    assert inc_a.import_batch_id == report.batch_id


def _mixed_rows() -> list[dict[str, str]]:
    rows = [case_row(f"G-{i}", quantity=str(100 + i)) for i in range(40)]
    rows[4] = case_row("G-4", drug="chocolate")  # row 6 in the sheet
    rows[17] = case_row("G-17", quantity="-3")  # row 19
    rows[30] = case_row("G-30", province="Atlantis")  # row 32
    return rows


def test_bad_rows_reject_the_file_and_change_nothing(engine: Engine, tmp_path: Path) -> None:
    before = counts(engine)
    path = write_template_csv(tmp_path / "mixed.csv", _mixed_rows())
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path)
    report = caught.value.report
    assert counts(engine) == before
    assert not report.committed
    assert (report.rows_read, report.rows_rejected) == (40, 3)
    found = {(e.row, e.column, e.value, e.reason) for e in report.errors}
    assert found == {
        (6, "Drug / គ្រឿងញៀន", "chocolate", "unknown drug"),
        (19, "Quantity / បរិមាណ", "-3", "negative"),
        (32, "Province / ខេត្ត", "Atlantis", "province not recognised (Khmer or English name, or code 1-25)"),
    }
    assert "3 of 40 rows have errors" in str(caught.value)
    text = report.to_text()
    assert "row 6, column 'Drug / គ្រឿងញៀន', value 'chocolate'" in text and "NOT imported" in text
    out = tmp_path / "errors.csv"
    assert report.write_errors_csv(out) == 3
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "row,column,value,reason"
    assert lines[1].startswith("6,Drug / គ្រឿងញៀន,chocolate,unknown drug")


def test_partial_keeps_the_good_rows(engine: Engine, tmp_path: Path) -> None:
    report = import_file(engine, write_template_csv(tmp_path / "mixed.csv", _mixed_rows()), partial=True)
    assert report.committed
    assert (report.rows_imported, report.rows_rejected) == (37, 3)
    assert counts(engine) == {"incident": 37, "seizure": 37, "import_batch": 1}
    refs = {i.source_ref for _s, i in seizures(engine)}
    assert "KH-PP-12:G-4" not in refs and "KH-PP-12:G-5" in refs


def test_reimport_creates_no_duplicates(engine: Engine, tmp_path: Path) -> None:
    path = write_template_csv(
        tmp_path / "cases.csv", [case_row("R-1"), case_row("R-1", drug="ice", unit="g"), case_row("R-2")]
    )
    first = import_file(engine, path)
    second = import_file(engine, path)
    assert (first.rows_imported, first.rows_already_present) == (3, 0)
    assert (second.rows_imported, second.rows_already_present, second.incidents_created) == (0, 3, 0)
    assert second.previous_imports and "imported before" in second.to_text()
    assert counts(engine) == {"incident": 2, "seizure": 3, "import_batch": 2}
    # A later file with one new case adds only that case.
    bigger = write_template_csv(tmp_path / "more.csv", [case_row("R-1"), case_row("R-3")])
    third = import_file(engine, bigger)
    assert (third.rows_imported, third.rows_already_present) == (1, 1)
    assert counts(engine)["incident"] == 3


def test_khmer_headers_and_khmer_place_names(engine: Engine, tmp_path: Path) -> None:
    header = [c.km for c in COLUMNS]
    rows = [
        case_row("K-1", province="ភ្នំពេញ", district="ចំការមន", drug="ម៉ាទឹកកក", quantity="១២", unit="គីឡូក្រាម"),
        case_row("K-2", province="ឧត្តរមានជ័យ", district="", drug="យ៉ាម៉ា", unit="គ្រាប់"),  # subscript TA variant
        case_row("K-3", province="បាត់ដំបង", district="", date="០៣/០៤/២០២៤"),
    ]
    report = import_file(engine, write_template_csv(tmp_path / "km.csv", rows, header=header))
    assert report.rows_imported == 3, report.to_text()
    by_ref = {i.source_ref: (s, i) for s, i in seizures(engine)}
    ice, inc = by_ref["KH-PP-12:K-1"]
    assert (inc.province_code, inc.district_code, ice.drug, ice.quantity, ice.mass_kg) == (
        "KH-12",
        "KH-1201",
        "methamphetamine_crystalline",
        12.0,
        12.0,
    )
    assert by_ref["KH-PP-12:K-2"][1].province_code == "KH-22"
    assert by_ref["KH-PP-12:K-3"][1].occurred_on == dt.date(2024, 4, 3)


def test_english_only_and_key_headers(engine: Engine, tmp_path: Path) -> None:
    en = write_template_csv(tmp_path / "en.csv", [case_row("E-1")], header=[c.en for c in COLUMNS])
    keys = write_template_csv(tmp_path / "keys.csv", [case_row("E-2")], header=KEYS)
    assert import_file(engine, en).rows_imported == 1
    assert import_file(engine, keys).rows_imported == 1


def test_csv_gz_and_semicolons(engine: Engine, tmp_path: Path) -> None:
    gz = write_template_csv(tmp_path / "cases.csv.gz", [case_row("Z-1"), case_row("Z-2")], compress=True)
    assert import_file(engine, gz).rows_imported == 2
    semi = tmp_path / "semi.csv"
    semi.write_text(
        ";".join(HEADER) + "\n" + ";".join(str(case_row("Z-3").get(k, "")) for k in KEYS) + "\n",
        encoding="utf-8",
    )
    assert import_file(engine, semi).rows_imported == 1


def test_xlsx_with_real_excel_values(engine: Engine, tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Seizures reported by Phnom Penh police, February 2024"])  # a title row above the header
    ws.append(HEADER)
    first = case_row("X-1", date=dt.datetime(2024, 2, 29), quantity=9884, district=None)
    ws.append([first.get(k) for k in KEYS])
    ws.append(
        [
            case_row("X-2", date=45351, quantity=0.5, unit="kg", drug="heroin", district=None).get(k)
            for k in KEYS
        ]
    )  # 45351 = Excel's serial number of 2024-02-29
    ws.append([None] * len(KEYS))  # blank rows are skipped, not errors
    path = tmp_path / "cases.xlsx"
    wb.save(path)
    report = import_file(engine, path)
    assert report.rows_imported == 2, report.to_text()
    days = {i.occurred_on for _s, i in seizures(engine)}
    assert days == {dt.date(2024, 2, 29)}
    ws.append([case_row("X-3", quantity="none").get(k) for k in KEYS])
    wb.save(path)
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path)
    assert [(e.row, e.value) for e in caught.value.report.errors] == [
        (6, "none")
    ]  # rows as Excel numbers them


def test_rows_of_one_case_may_not_disagree(engine: Engine, tmp_path: Path) -> None:
    rows = [
        case_row("D-1"),
        case_row("D-1", date="2024-05-03", drug="ice", unit="g"),
        case_row("D-1", date=""),
    ]
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, write_template_csv(tmp_path / "d.csv", rows))
    (error,) = caught.value.report.errors
    assert (error.row, error.column, error.value) == (3, "Date / កាលបរិច្ឆេទ", "2024-05-03")
    assert error.reason == "differs from an earlier row of the same case"


@pytest.mark.parametrize("chunk_rows", [1, 2])
def test_cases_split_across_chunks(engine: Engine, tmp_path: Path, chunk_rows: int) -> None:
    """Rows of one case far apart in the file (other cases between) are still one incident."""
    rows = [
        case_row("S-1", place=""),
        case_row("S-2"),
        case_row("S-1", date="", place="Phsar Thmei", drug="ice", unit="g"),
        case_row("S-3"),
        case_row("S-1", date="2024-06-01", place="", drug="heroin", unit="g"),
    ]
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, write_template_csv(tmp_path / "s.csv", rows), chunk_rows=chunk_rows)
    assert [(e.row, e.column) for e in caught.value.report.errors] == [(6, "Date / កាលបរិច្ឆេទ")]
    report = import_file(
        engine, write_template_csv(tmp_path / "s.csv", rows), chunk_rows=chunk_rows, partial=True
    )
    assert (report.incidents_created, report.seizures_created, report.rows_rejected) == (3, 4, 1)
    s1 = [(s, i) for s, i in seizures(engine) if i.source_ref == "KH-PP-12:S-1"]
    assert len(s1) == 2 and len({i.id for _s, i in s1}) == 1
    assert s1[0][1].place_text == "Phsar Thmei"  # filled in by the later row


def test_first_row_of_a_case_needs_date_and_place(engine: Engine, tmp_path: Path) -> None:
    rows = [case_row("M-1", date="", province="", district="")]
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, write_template_csv(tmp_path / "m.csv", rows))
    assert {(e.row, e.column, e.reason) for e in caught.value.report.errors} == {
        (2, "Date / កាលបរិច្ឆេទ", "missing"),
        (2, "Province / ខេត្ត", "missing"),
    }


def test_reporting_org_from_the_import_and_unknown_org(engine: Engine, tmp_path: Path) -> None:
    keys = [k for k in KEYS if k != "reporting_org"]
    header = [c.header for c in COLUMNS if c.key != "reporting_org"]
    path = write_template_csv(tmp_path / "o.csv", [case_row("O-1")], header=header, keys=keys)
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path)
    assert caught.value.report.errors[0].reason == "required column missing"
    report = import_file(engine, path, org_code="kh-pp-02")
    assert report.rows_imported == 1
    with pytest.raises(InvalidInput, match="unknown organisation code 'KH-NOPE'"):
        import_file(engine, path, org_code="KH-NOPE")
    ((_s, inc),) = seizures(engine)
    assert (inc.reporting_org_id, inc.source_ref) == (org_id("KH-PP-02"), "KH-PP-02:O-1")


def test_unreadable_files_give_clear_errors(engine: Engine, tmp_path: Path) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(
        (",".join(KEYS) + "\nC-1,2024-01-01,,Phnom Penh,,,Caf\xe9,,KH-PP-12,yaba,1,tablet\n").encode(
            "latin-1"
        )
    )
    with pytest.raises(InvalidInput, match="not UTF-8"):
        import_file(engine, latin)
    other = tmp_path / "other.csv"
    other.write_text("name,age\nDara,30\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not a narcotrack template nor a UNODC IDS file"):
        import_file(engine, other)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(InvalidInput, match=r"not a readable \.xlsx"):
        import_file(engine, broken)
    with pytest.raises(InvalidInput, match="no such file"):
        import_file(engine, tmp_path / "missing.csv")
    assert counts(engine)["import_batch"] == 0


def test_progress_is_reported(engine: Engine, tmp_path: Path) -> None:
    path = write_template_csv(tmp_path / "p.csv", [case_row(f"P-{i}") for i in range(30)])
    calls: list[tuple[int, int | None]] = []
    import_file(engine, path, progress=lambda done, total: calls.append((done, total)), chunk_rows=10)
    size = path.stat().st_size
    assert len(calls) >= 3 and calls[-1] == (size, size)
    assert all(total == size for _d, total in calls)
    assert [d for d, _t in calls] == sorted(d for d, _t in calls)


def test_worker_process_gives_the_same_result(engine: Engine, tmp_path: Path) -> None:
    rows = [
        case_row(f"W-{i // 2}", drug="ice" if i % 2 else "yaba", unit="g" if i % 2 else "tablet")
        for i in range(50)
    ]
    rows[7] = case_row("W-3", quantity="lots")
    path = write_template_csv(tmp_path / "w.csv", rows)
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, path, parallel=True, chunk_rows=8)
    assert [(e.row, e.value) for e in caught.value.report.errors] == [(9, "lots")]
    report = import_file(engine, path, parallel=True, chunk_rows=8, partial=True)
    assert (report.incidents_created, report.seizures_created) == (25, 49)
    with pytest.raises(InvalidInput, match="not UTF-8"):
        bad = tmp_path / "bad.csv"
        bad.write_bytes(",".join(HEADER).encode() + b"\nC-1,\xff\xfe\n")
        import_file(engine, bad, parallel=True)


def test_import_batch_is_recorded(engine: Engine, tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    path = write_template_csv(tmp_path / "b.csv", [case_row("B-1"), case_row("B-2", drug="nothing")])
    report = import_file(engine, path, partial=True, org_code="KH-NACD")
    with Session(engine) as s:
        batch = s.get(ImportBatch, report.batch_id)
        assert batch is not None
        assert (batch.file_name, batch.format, batch.sha256, batch.partial) == (
            "b.csv",
            "narcotrack",
            report.sha256,
            True,
        )
        assert (batch.rows_read, batch.rows_imported, batch.rows_rejected) == (2, 1, 1)
        assert batch.org_id == org_id("KH-NACD")
        assert s.query(Incident).filter(Incident.import_batch_id == batch.id).count() == 1
        assert s.query(Seizure).count() == 1


def test_sqlite_reference_checks_are_back_on_after_an_import(sqlite_engine: Engine, tmp_path: Path) -> None:
    """The import checks references itself on SQLite; the connection it used must enforce them again."""
    from sqlalchemy.exc import IntegrityError

    import_file(sqlite_engine, write_template_csv(tmp_path / "f.csv", [case_row("F-1")]))
    with pytest.raises(ImportRejected):
        import_file(sqlite_engine, write_template_csv(tmp_path / "g.csv", [case_row("G-1", drug="none")]))
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(IntegrityError):
            conn.exec_driver_sql("UPDATE seizure SET incident_id = 'no-such-incident'")
    # and a place missing from the gazetteer is refused rather than written as a dangling reference
    with sqlite_engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.exec_driver_sql("DELETE FROM place WHERE code = 'KH-23'")
        conn.commit()
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    from narcotrack.errors import StoreError

    with pytest.raises(StoreError, match="not in the store's gazetteer"):
        import_file(
            sqlite_engine,
            write_template_csv(tmp_path / "k.csv", [case_row("K-1", province="Kep", district="")]),
        )
    assert counts(sqlite_engine)["incident"] == 1
