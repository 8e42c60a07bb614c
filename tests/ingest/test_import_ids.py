"""Importing UNODC Individual Drug Seizures (IDS) files: a sample built here, and the real 208k-row file."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from narcotrack.errors import ImportRejected
from narcotrack.ingest.importer import import_file
from narcotrack.store.schema import Incident, Seizure
from narcotrack.store.seed import org_id, place_id

from ..conftest import shared_data
from .conftest import counts, ids_row, seizures, write_ids_csv

SAMPLE = [
    ids_row(),  # row 2: Thailand, yaba tablets
    ids_row(
        COUNTRY="Cambodia",
        ADMINISTRATIVE_DIVISION="Banteay Meanchey",
        PLACE="Poipet",
        DRUG_NAME="Methamphetamine-Ice",
        AMOUNT="2500.0",
        DRUG_UNIT="Gram",
        TRANSPORT="Commercial road",
        DEPARTURE_COUNTRY="Thailand",
        DESTINATION_COUNTRY="Unknown",
        ROUTING="Border - inbound",
    ),  # row 3
    ids_row(
        COUNTRY="Mauritius",
        PLACE="GRAND PORT",
        SEIZURE_DATE="2011-06-29",
        DRUG_NAME="Buprenorphine",
        AMOUNT="2786.0",
        DRUG_UNIT="Tablet",
        INSTALLATION="Airport",
        HIDING_PLACE="Baggage",
    ),  # row 4
    ids_row(
        COUNTRY="Mauritius",
        PLACE="Grand Port",
        SEIZURE_DATE="2011-06-29",
        DRUG_NAME="Buprenorphine",
        AMOUNT="2.786",
        DRUG_UNIT="Kilogram",
        INSTALLATION="Airport",
    ),  # row 5: the same, in kg
    ids_row(
        COUNTRY="Germany",
        ADMINISTRATIVE_DIVISION="Bayern",
        PLACE="München",
        DRUG_NAME="Alcohol",
        AMOUNT="3.0",
        DRUG_UNIT="",
        INSTALLATION="Beach",
    ),  # row 6: warnings only
    ids_row(
        COUNTRY="Thailand", SEIZURE_DATE="", DRUG_NAME="Heroin", AMOUNT="1e-05", DRUG_UNIT="Kilogram"
    ),  # 7
    ids_row(),  # row 8: identical to row 2 -> its own record, not "already present"
]
BAD = [
    ids_row(COUNTRY="", DRUG_NAME="Heroin"),  # row 9: no country
    ids_row(AMOUNT="a lot"),  # row 10
    ids_row(AMOUNT="-5"),  # row 11
]


def test_ids_sample_imports(engine: Engine, tmp_path: Path) -> None:
    report = import_file(engine, write_ids_csv(tmp_path / "ids.csv", SAMPLE))
    assert report.fmt == "ids" and report.committed
    assert (report.rows_read, report.rows_imported, report.rows_rejected) == (7, 7, 0)
    assert report.incidents_created == 7 and report.rows_with_warnings == 2
    warned = {(w.row, w.column) for w in report.warnings}
    assert {(6, "DRUG_NAME"), (6, "DRUG_UNIT"), (6, "INSTALLATION"), (7, "SEIZURE_DATE")} <= warned
    rows = seizures(engine)
    assert all(i.source == "unodc_ids" and i.reporting_org_id == org_id("UNODC-IDS") for _s, i in rows)
    assert all((i.marking, i.distribution) == ("CLEAR", "partners") for _s, i in rows)
    th, kh, mu_tab, mu_kg, de, undated, th_again = rows
    assert (th[0].drug, th[0].unit, th[0].mass_kg) == (
        "methamphetamine_tablets",
        "tablet",
        pytest.approx(1.08),
    )
    assert (th[1].country, th[1].place_id, th[1].place_text, th[1].occurred_on) == (
        "TH",
        place_id("TH"),
        "Bangkok",
        dt.date(2012, 3, 4),
    )
    assert (kh[1].country, kh[1].province_code, kh[1].district_code, kh[1].place_id, kh[1].place_text) == (
        "KH",
        "KH-01",
        "KH-0110",
        place_id("KH-0110"),
        "Poipet",
    )  # the town is a krong: Paoy Paet
    assert (
        kh[0].drug,
        kh[0].mass_kg,
        kh[0].transport_mode,
        kh[0].origin_country,
        kh[0].destination_country,
        kh[0].routing,
    ) == ("methamphetamine_crystalline", pytest.approx(2.5), "road_commercial", "TH", None, "border_inbound")
    assert (mu_tab[0].concealment, mu_tab[1].place_kind, mu_tab[0].mass_kg) == ("baggage", "airport", None)
    assert mu_kg[0].likely_duplicate_of == mu_tab[0].id
    assert report.duplicates_flagged == 1
    assert (de[0].drug, de[0].drug_reported, de[0].unit, de[0].unit_reported, de[0].mass_kg) == (
        "other",
        "Alcohol",
        "other",
        "",
        None,
    )
    assert (de[1].admin_division_text, de[1].place_text, de[1].place_kind) == ("Bayern", "München", None)
    assert "installation: Beach" in de[1].narrative
    assert undated[1].occurred_on is None and undated[0].mass_kg == pytest.approx(1e-05)
    assert th_again[1].source_ref == f"{th[1].source_ref}#2" and th_again[0].likely_duplicate_of is None


def test_ids_reimport_and_bad_rows(engine: Engine, tmp_path: Path) -> None:
    good = write_ids_csv(tmp_path / "ids.csv.gz", SAMPLE, compress=True)
    import_file(engine, good)
    again = import_file(engine, good)
    assert (again.rows_imported, again.rows_already_present) == (0, 7)
    assert counts(engine)["incident"] == 7
    before = counts(engine)
    mixed = write_ids_csv(tmp_path / "mixed.csv", SAMPLE + BAD)
    with pytest.raises(ImportRejected) as caught:
        import_file(engine, mixed)
    assert counts(engine) == before
    errors = {(e.row, e.column, e.reason) for e in caught.value.report.errors}
    assert errors == {
        (9, "COUNTRY", "missing: every IDS record needs the reporting country"),
        (10, "AMOUNT", "not a number"),
        (11, "AMOUNT", "negative"),
    }
    report = import_file(engine, mixed, partial=True)
    assert (report.rows_already_present, report.rows_imported, report.rows_rejected) == (7, 0, 3)


@pytest.mark.slow
def test_real_unodc_ids_file(sqlite_engine: Engine) -> None:
    """The whole published file imports by default; figures are checked against the file read directly."""
    path = shared_data("unodc", "ids_individual_seizures_2011_2014.csv.gz")
    expected_kg = 0.0  # heroin seized in Myanmar, straight from the file with the documented factors
    factors = {"Kilogram": 1.0, "Gram": 0.001, "Block (350gr)": 0.35, "Viss": 1.633}  # tablets etc.: no mass
    no_unit = 0
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            no_unit += row["DRUG_UNIT"] == ""
            if row["COUNTRY"] == "Myanmar" and row["DRUG_NAME"] == "Heroin":
                expected_kg += float(row["AMOUNT"]) * factors.get(row["DRUG_UNIT"], 0.0)
    report = import_file(sqlite_engine, path)
    assert report.committed and report.fmt == "ids"
    assert (report.rows_read, report.rows_imported, report.rows_rejected) == (208_172, 208_172, 0)
    assert report.incidents_created == report.seizures_created == 208_172
    assert no_unit == 12
    with Session(sqlite_engine) as s:
        kg = s.scalar(
            select(func.sum(Seizure.mass_kg))
            .join(Incident, Incident.id == Seizure.incident_id)
            .where(Incident.country == "MM", Seizure.drug_reported == "Heroin")
        )
        assert kg == pytest.approx(expected_kg)
        assert (
            s.scalar(
                select(func.count())
                .select_from(Seizure)
                .where(Seizure.unit == "other", Seizure.unit_reported == "")
            )
            == 12
        )
        assert s.scalar(select(func.count(func.distinct(Incident.country)))) == 95
        # The README's example: 2,786 tablets and 2.786 kg of buprenorphine, Grand Port, 29 June 2011.
        pair = s.execute(
            select(Seizure.unit, Seizure.likely_duplicate_of)
            .join(Incident, Incident.id == Seizure.incident_id)
            .where(
                Incident.country == "MU",
                Incident.occurred_on == dt.date(2011, 6, 29),
                Seizure.drug_reported == "Buprenorphine",
            )
            .order_by(Seizure.id)
        ).all()
        assert [u for u, _d in pair] == ["tablet", "kg"] and pair[1][1] is not None
    assert report.duplicates_flagged > 0
    assert "DRUG_NAME: drug name not in narcotrack's vocabulary" in report.to_text()
    again = import_file(sqlite_engine, path)
    assert (again.rows_imported, again.rows_already_present) == (0, 208_172)
