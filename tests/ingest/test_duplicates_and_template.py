"""Likely duplicates inside a file, and the template a field officer downloads, fills in and imports."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from narcotrack.errors import InvalidInput
from narcotrack.ingest.columns import COLUMNS
from narcotrack.ingest.duplicates import equivalent
from narcotrack.ingest.importer import import_file
from narcotrack.ingest.report import DUPLICATE
from narcotrack.ingest.template import DATA_SHEET, EXAMPLE_ROWS, EXAMPLE_SHEET, VALUES_SHEET, write_template
from narcotrack.ingest.writer import DupRow

from .conftest import KEYS, case_row, counts, seizures, write_template_csv


def test_same_seizure_in_another_unit_is_flagged_not_merged(engine: Engine, tmp_path: Path) -> None:
    rows = [
        case_row("Y-1", drug="yaba", quantity="9884", unit="tablet"),  # row 2: 0.88956 kg
        case_row("Y-2", drug="methamphetamine tablets", quantity="0.8896", unit="kg"),  # row 3: same seizure
        case_row("Y-3", drug="yaba", quantity="2", unit="kg"),  # row 4: another unit, another amount
        case_row("Y-4", drug="yaba", quantity="9884", unit="tablet"),  # row 5: as row 2 (same unit, not
        # compared) but equivalent to row 3
        case_row("Y-5", drug="yaba", quantity="0.8896", unit="kg", date="2024-05-03"),  # row 6: another day
        case_row("Y-6", drug="ice", quantity="889.6", unit="g"),  # row 7: another drug
        case_row("Y-7", drug="happy water", quantity="40", unit="packages"),  # row 8: no mass per package
        case_row("Y-8", drug="happy water", quantity="3", unit="kg"),  # row 9: same place/day, other unit
    ]
    report = import_file(engine, write_template_csv(tmp_path / "dups.csv", rows))
    assert report.rows_imported == 8 and counts(engine)["seizure"] == 8  # nothing merged or dropped
    assert report.duplicates_flagged == 3
    flagged = {(d.row, d.detail.split(" ")[1]) for d in report.duplicates}
    assert flagged == {(3, "2"), (5, "3"), (9, "8")}
    assert all(d.severity == DUPLICATE for d in report.duplicates)
    by_ref = {i.source_ref.split(":")[1]: s for s, i in seizures(engine)}
    assert by_ref["Y-2"].likely_duplicate_of == by_ref["Y-1"].id
    assert by_ref["Y-8"].likely_duplicate_of == by_ref["Y-7"].id
    assert by_ref["Y-4"].likely_duplicate_of == by_ref["Y-2"].id
    assert sorted(k for k, s in by_ref.items() if s.likely_duplicate_of) == ["Y-2", "Y-4", "Y-8"]
    assert "likely duplicate of an earlier row" in report.to_text()


def test_equivalence_rules() -> None:
    def row(unit: str, qty: float, kg: float | None) -> DupRow:
        return DupRow("k", 2, "id", unit, qty, kg)

    assert equivalent(row("tablet", 9884, 0.88956), row("kg", 0.8896, 0.8896))
    assert equivalent(row("g", 431.4, 0.4314), row("kg", 0.431, 0.431))
    assert equivalent(row("g", 500, 0.5), row("kg", 0.6, 0.6)) is None
    assert equivalent(row("tablet", 2786, None), row("kg", 2.786, 2.786))
    assert equivalent(row("kg", 1.0, 1.0), row("kg", 1.0, 1.0)) is None


def test_csv_template_round_trip(engine: Engine, tmp_path: Path) -> None:
    path = write_template(tmp_path / "template.csv")
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines() == [",".join(c.header for c in COLUMNS)]
    assert "Date / កាលបរិច្ឆេទ" in text and path.read_bytes().startswith(b"\xef\xbb\xbf")
    with open(path, "a", encoding="utf-8", newline="") as fh:
        for sample in EXAMPLE_ROWS:
            csv.writer(fh).writerow([sample.get(k, "") for k in KEYS])
    report = import_file(engine, path)
    assert (report.incidents_created, report.seizures_created) == (2, 3), report.to_text()


def test_xlsx_template_round_trip(engine: Engine, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = write_template(tmp_path / "template.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames[:2] == [DATA_SHEET, VALUES_SHEET] and EXAMPLE_SHEET in wb.sheetnames
    data, values = wb[DATA_SHEET], wb[VALUES_SHEET]
    assert [c.value for c in data[1]] == [c.header for c in COLUMNS]
    assert data.max_row == 1  # no example rows where they would be imported
    listed = {c.value for col in values.iter_cols(values_only=False) for c in col}
    assert {"Methamphetamine tablets", "kilogram", "Phnom Penh", "KH-PP-12", "AMBER"} <= listed
    assert len(data.data_validations.dataValidation) >= 5
    # Importing the untouched template imports nothing (the examples are on their own sheet).
    assert import_file(engine, path).rows_read == 0
    # A field officer fills in two rows, with a real Excel date and number, and Khmer names.
    data.append(
        [
            {
                "incident_ref": "TK-2025-001",
                "date": dt.datetime(2025, 1, 9),
                "province": "តាកែវ",
                "reporting_org": "KH-PP-21",
                "drug": "Methamphetamine tablets",
                "quantity": 2000,
                "unit": "tablet",
                "place_kind": "Road or highway",
            }.get(c.key)
            for c in COLUMNS
        ]
    )
    data.append(
        [
            {
                "incident_ref": "TK-2025-001",
                "drug": "Ketamine",
                "quantity": 1.5,
                "unit": "kilogram",
                "reporting_org": "KH-PP-21",
            }.get(c.key)
            for c in COLUMNS
        ]
    )
    wb.save(path)
    report = import_file(engine, path)
    assert (report.incidents_created, report.seizures_created) == (1, 2), report.to_text()
    (s1, inc), (s2, _) = seizures(engine)
    assert (inc.province_code, inc.occurred_on, inc.place_kind) == ("KH-21", dt.date(2025, 1, 9), "road")
    assert (s1.mass_kg, s2.mass_kg) == (pytest.approx(0.18), pytest.approx(1.5))
    # The example sheet itself is a valid file: copy it into the data sheet and it imports.
    wb = load_workbook(path)
    example = [[c.value for c in row] for row in wb[EXAMPLE_SHEET].iter_rows(min_row=2)]
    fresh = tmp_path / "examples.xlsx"
    write_template(fresh)
    wb = load_workbook(fresh)
    for row in example:
        wb[DATA_SHEET].append(row)
    wb.save(fresh)
    assert import_file(engine, fresh).seizures_created == len(EXAMPLE_ROWS)


def test_template_needs_a_known_suffix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        write_template(tmp_path / "template.ods")
