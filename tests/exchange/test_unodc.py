"""UNODC exports: IDS rows that narcotrack's IDS importer reads back to the same seizures on a partner's node,
nothing a caller may not see and nothing personal; ARQ totals equal to sums worked out here; the commands."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from narcotrack.access.policy import Principal, visible_filter
from narcotrack.domain.models import IncidentIn, SeizureIn
from narcotrack.domain.vocab import norm, vocabularies
from narcotrack.errors import InvalidInput
from narcotrack.exchange import unodc
from narcotrack.exchange.unodc import ARQ_COLUMNS, IDS_COLUMNS, arq_rows, ids_rows, write_arq, write_ids
from narcotrack.ingest import ids_format
from narcotrack.ingest import values as V
from narcotrack.ingest.importer import PartnerSource, import_file
from narcotrack.store.db import session_scope
from narcotrack.store.repo import create_incident
from narcotrack.store.schema import AuditEvent, ImportBatch, Incident, Seizure
from narcotrack.store.seed import org_id
from tests.conftest import shared_data
from tests.exchange.conftest import principal
from tests.exchange.test_stix_export import _rich_store
from tests.web.test_access_matrix import _store, expected_visible

MakeNode = Callable[[str, Engine], Engine]
IDS_FILE = ("unodc", "ids_individual_seizures_2011_2014.csv.gz")
ARQ_FILE = ("unodc", "drug_seizures_2018_2022.json")
TABLET_KG = 0.00009  # a yaba tablet: 90 mg (UNODC Global SMART, as units.yaml says)
# What a seizure is, as far as IDS can carry it: compared between the node that exports and the one that imports.
COMPARED = (Incident.occurred_on, Incident.country, Incident.province_code, Incident.district_code,
            Incident.place_kind, Seizure.drug, Seizure.quantity, Seizure.unit, Seizure.mass_kg, Seizure.concealment,
            Seizure.transport_mode, Seizure.producing_country, Seizure.origin_country, Seizure.destination_country,
            Seizure.routing)
KEPT_AS_REPORTED = (Incident.place_text, Incident.admin_division_text, Seizure.drug_reported, Seizure.unit_reported)


def _text(output: str) -> str:
    return " ".join(output.split())  # the console wraps long lines


def _seizures(engine: Engine, *columns: Any, where: Any = None) -> Counter[tuple[Any, ...]]:
    q = select(*columns).select_from(Seizure).join(Incident, Seizure.incident_id == Incident.id)
    if where is not None:
        q = q.where(where)
    with engine.connect() as conn:
        return Counter(tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in conn.execute(q))


def _read_ids(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        return list(csv.DictReader(fh, delimiter=";"))


def _export_ids(engine: Engine, p: Principal, path: Path, **options: Any) -> list[dict[str, str]]:
    with engine.connect() as conn:
        write_ids(path, ids_rows(conn, p, **options))
    return _read_ids(path) if path.suffix != ".xlsx" else []


def _varied_store(engine: Engine) -> None:
    """_rich_store's Poipet truck plus incidents of other years, places, drugs, units, hiding places and routes."""
    _rich_store(engine)
    with session_scope(engine) as s:
        for incident in (
            IncidentIn(occurred_on=dt.date(2024, 11, 20), province="Phnom Penh", district="Chamkar Mon",
                       place_kind="airport", reporting_org="KH-GDCE", marking="GREEN", distribution="partners",
                       seizures=[SeizureIn(drug="heroin", quantity=1.2, unit="kg", concealment="internal",
                                           transport_mode="air_commercial", producing_country="MM",
                                           origin_country="TH", destination_country="AU"),
                                 SeizureIn(drug="ketamine", quantity=3, unit="l", concealment="baggage"),
                                 SeizureIn(drug="cannabis plants", quantity=40, unit="plants")]),
            IncidentIn(occurred_on=dt.date(2024, 6, 2), country="TH", place_text="Mae Sai",
                       place_kind="border_checkpoint", reporting_org="KH-NACD", marking="CLEAR", distribution="partners",
                       seizures=[SeizureIn(drug="safrole oil", quantity=200, unit="litres", transport_mode="river"),
                                 SeizureIn(drug="erimin-5", quantity=500, unit="tablets", concealment="goods"),
                                 SeizureIn(drug="happy water", quantity=2, unit="kg", concealment="none",
                                           transport_mode="pedestrian")]),
            IncidentIn(occurred_on=dt.date(2023, 1, 15), province="Koh Kong", place_text="Koh Kong port",
                       place_kind="seaport", reporting_org="KH-NACD", marking="AMBER", distribution="domestic",
                       seizures=[SeizureIn(drug="other", quantity=30, unit="unit", concealment="cargo",
                                           transport_mode="sea_commercial", origin_country="LA"),
                                 SeizureIn(drug="ecstasy", quantity=1000, unit="tablet", concealment="postal",
                                           transport_mode="mail", destination_country="VN")]),
        ):
            create_incident(s, incident)


# -- the mapping -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("vocab_name", sorted(unodc.IDS_TERMS))
def test_every_code_goes_out_as_a_term_the_importer_reads_back_to_it(vocab_name: str) -> None:
    coder = V.coder(vocab_name)  # what ids_format uses for DRUG_NAME, DRUG_UNIT, HIDING_PLACE...

    def read_back(term: str) -> str | None:
        if vocab_name == "units":  # ids_format: a blank or unknown unit is unit 'other'
            return (coder(term) if term else None) or "other"
        return coder(term)

    codes = getattr(vocabularies(), vocab_name).codes()
    assert set(unodc.IDS_TERMS[vocab_name]) <= set(codes)
    wrong = {code: unodc.ids_term(vocab_name, code) for code in codes
             if read_back(unodc.ids_term(vocab_name, code)) != code}
    assert not wrong


def test_routing_and_countries_go_out_as_the_importer_reads_them() -> None:
    assert {norm(term): code for code, term in unodc.IDS_ROUTING.items()} == ids_format.ROUTING
    for code in ("KH", "TH", "LA", "VN", "MM", "CN", "MY", "AU", *unodc.IDS_COUNTRY_NAMES):
        assert V.country(unodc.ids_country(code)) == code, code


def test_a_reported_term_is_kept_when_it_means_the_same_code() -> None:
    assert unodc.ids_term("drugs", "benzodiazepines", "Diazepam") == "Diazepam"
    assert unodc.ids_term("drugs", "benzodiazepines", "Heroin") == "Benzodiazepine"  # means another code
    assert unodc.ids_term("drugs", "other", "Alcohol") == "Alcohol"  # not understood here either
    assert unodc.ids_term("units", "tablet", "Pill") == "Pill"
    assert unodc.ids_term("units", "kg", "") == "Kilogram"
    assert unodc.ids_term("units", "other", "") == "" and unodc.ids_term("units", "other", "Barrels") == "Barrels"
    assert unodc.ids_term("drugs", "methamphetamine_tablets") == "Methamphetamine tablets"  # no IDS term: English


def test_the_terms_are_those_of_unodcs_ids_file() -> None:
    with gzip.open(shared_data(*IDS_FILE), "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        assert tuple(reader.fieldnames or ()) == IDS_COLUMNS
        seen: dict[str, set[str]] = {c: set() for c in IDS_COLUMNS}
        for row in reader:
            for column, value in row.items():
                seen[column].add(value)
    columns = {"drugs": "DRUG_NAME", "units": "DRUG_UNIT", "concealment": "HIDING_PLACE",
               "place_kinds": "INSTALLATION", "transport": "TRANSPORT"}
    for vocab_name, terms in unodc.IDS_TERMS.items():
        assert set(terms.values()) - seen[columns[vocab_name]] == set(), vocab_name
    assert set(unodc.IDS_ROUTING.values()) <= seen["ROUTING"]
    countries = seen["COUNTRY"] | seen["PRODUCING_COUNTRY"] | seen["DEPARTURE_COUNTRY"] | seen["DESTINATION_COUNTRY"]
    assert set(unodc.IDS_COUNTRY_NAMES.values()) <= countries
    assert {unodc.ids_country(c) for c in ("KH", "TH", "MM", "LA")} <= countries
    assert unodc.REGION == ("Asia", "East and South-East Asia") and unodc.REGION[1] in seen["SUBREGION"]


def test_the_arq_names_are_those_of_unodcs_seizure_data() -> None:
    data = json.loads(shared_data(*ARQ_FILE).read_text(encoding="utf-8"))
    assert tuple(data[0]) == ARQ_COLUMNS[:9]
    triples = {(r["Drug group"], r["DrugSubGroup"], r["Drug"]) for r in data}
    assert set(unodc.ARQ_DRUGS.values()) <= triples
    assert set(unodc.ARQ_DRUGS) == set(vocabularies().drugs.codes())
    countries = {(r["Country/Territory"], r["msCode"]) for r in data}
    assert {unodc.arq_country(c) for c in unodc.ARQ_COUNTRY_NAMES} <= countries
    assert {unodc.arq_country(c) for c in ("KH", "TH", "LA", "VN", "MM")} <= countries
    regions = {r["msCode"]: (r["Region"], r["SubRegion"]) for r in data}
    assert {unodc.arq_country(c)[1] for c in unodc.EAST_AND_SOUTH_EAST_ASIA} - set(regions) == set()
    assert all(regions[unodc.arq_country(c)[1]] == unodc.REGION for c in unodc.EAST_AND_SOUTH_EAST_ASIA)


# -- IDS ---------------------------------------------------------------------------------------------------------
def test_an_ids_export_imports_on_a_partner_node_as_the_same_seizures(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _varied_store(engine)
    rows = _export_ids(engine, principal(engine, "KH-NACD", "analyst"), tmp_path / "kh.csv")
    assert len(rows) == 10 and tuple(rows[0]) == IDS_COLUMNS
    truck = next(r for r in rows if r["AMOUNT"] == "120000.0")
    assert truck == {"REGION": "Asia", "SUBREGION": "East and South-East Asia", "COUNTRY": "Cambodia",
                     "ADMINISTRATIVE_DIVISION": "Banteay Meanchey", "PLACE": "", "SEIZURE_DATE": "2025-03-04",
                     "DRUG_NAME": "Methamphetamine tablets", "AMOUNT": "120000.0", "DRUG_UNIT": "Tablet",
                     "HIDING_PLACE": "Transport Vehicle", "INSTALLATION": "", "TRANSPORT": "Commercial road",
                     "PRODUCING_COUNTRY": "", "DEPARTURE_COUNTRY": "Myanmar", "DESTINATION_COUNTRY": "Cambodia",
                     "ROUTING": ""}
    th = partner_node("TH", engine)
    report = import_file(th, tmp_path / "kh.csv", fmt="ids")
    assert report.committed and report.rows_rejected == 0 and report.seizures_created == 10
    assert _seizures(th, *COMPARED) == _seizures(engine, *COMPARED)
    heroin = _seizures(th, Incident.district_code, Incident.place_text, where=Seizure.drug == "heroin")
    assert heroin == Counter({("KH-1201", "Chamkar Mon"): 1})  # the district goes by its gazetteer name


def test_ids_rows_from_unodc_keep_their_reported_terms_through_export_and_import(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    with gzip.open(shared_data(*IDS_FILE), "rt", encoding="utf-8", newline="") as fh:
        every = list(csv.reader(fh, delimiter=";"))
    header, body = every[0], every[1:]
    sample = [r for r in body[::400] if r[2] != "Cambodia"] + [r for r in body if r[2] in ("Thailand", "Cambodia")]
    source = tmp_path / "sample.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows([header, *sample])
    assert import_file(engine, source, fmt="ids").rows_imported == len(sample)
    rows = _export_ids(engine, principal(engine, "TH-ONCB"), tmp_path / "back.csv.gz")
    assert len(rows) == len(sample)
    originals = Counter((V.country(r[2]), r[5], r[6], float(r[7]), r[8], r[15]) for r in sample)
    assert Counter((V.country(r["COUNTRY"]), r["SEIZURE_DATE"], r["DRUG_NAME"], float(r["AMOUNT"]), r["DRUG_UNIT"],
                    r["ROUTING"]) for r in rows) == originals
    node = partner_node("LA", engine)
    assert import_file(node, tmp_path / "back.csv.gz", fmt="ids").rows_imported == len(sample)
    assert _seizures(node, *COMPARED) == _seizures(engine, *COMPARED)
    assert _seizures(node, *KEPT_AS_REPORTED) == _seizures(engine, *KEPT_AS_REPORTED)
    # a term narcotrack does not understand (an installation "Beach") lives only in the narrative: not exported
    assert _seizures(engine, Incident.id, where=Incident.narrative != "")
    assert not _seizures(node, Incident.id, where=Incident.narrative.like("%installation:%"))


def test_a_workbook_export_imports_as_well(sqlite_engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _varied_store(sqlite_engine)
    path = tmp_path / "kh.xlsx"
    _export_ids(sqlite_engine, principal(sqlite_engine, "KH-NACD", "analyst"), path)
    sheet = load_workbook(path, read_only=True).active
    assert sheet is not None and next(sheet.iter_rows(values_only=True)) == IDS_COLUMNS
    th = partner_node("TH", sqlite_engine)
    assert import_file(th, path, fmt="ids").seizures_created == 10
    assert _seizures(th, *COMPARED) == _seizures(sqlite_engine, *COMPARED)


READERS = [("TH-ONCB", "liaison"), ("LA-LCDC", "liaison"), ("VN-C04", "liaison"), ("KH-GDCE", "analyst"),
           ("KH-NACD", "analyst"), ("KH-NACD", "admin")]


def test_each_reader_gets_exactly_what_it_may_see_and_red_never(engine: Engine, tmp_path: Path) -> None:
    ids = _store(engine)
    for org, role in READERS:
        rows = _export_ids(engine, principal(engine, org, role), tmp_path / f"{org}-{role}.csv")
        got = Counter(r["PLACE"] for r in rows)
        want = Counter(f"matrixplace {m} {d}" for (m, d) in ids if expected_visible(org, role, m, d) and m != "RED")
        assert got == want, (org, role)
        assert not any("RED" in place for place in got)
        with engine.connect() as conn:
            arq = arq_rows(conn, principal(engine, org, role))
        assert sum(r["Cases"] for r in arq) == sum(want.values()), (org, role)


def test_an_ids_export_holds_no_personal_data_nor_narrative(engine: Engine, tmp_path: Path) -> None:
    _rich_store(engine)  # an arrested courier, Sok Dara, born 1990-02-03, and a narrative
    path = tmp_path / "kh.csv"
    rows = _export_ids(engine, principal(engine, "KH-NACD", "admin"), path)
    text = path.read_text(encoding="utf-8")
    assert len(rows) == 2 and text.splitlines()[0] == ";".join(IDS_COLUMNS)
    for personal in ("Sok", "Dara", "1990", "ldc_trafficking", "courier", "Truck stopped", "Mekong Spring"):
        assert personal not in text


def test_from_and_to_keep_the_days_between(engine: Engine, tmp_path: Path) -> None:
    _varied_store(engine)
    p = principal(engine, "KH-NACD", "analyst")
    rows = _export_ids(engine, p, tmp_path / "a.csv", date_from=dt.date(2024, 6, 2), date_to=dt.date(2024, 11, 20))
    assert Counter(r["SEIZURE_DATE"] for r in rows) == Counter({"2024-06-02": 3, "2024-11-20": 3})


def _thai_ids_file(engine: Engine, partner_node: MakeNode, path: Path) -> None:
    """An IDS file of one Thai seizure, as the Thai node exports it for TH-ONCB."""
    th = partner_node("TH", engine)
    with session_scope(th) as s:
        create_incident(s, IncidentIn(occurred_on=dt.date(2025, 2, 1), country="TH", place_text="Chiang Saen",
                                      reporting_org="TH-ONCB", marking="GREEN", distribution="partners",
                                      seizures=[SeizureIn(drug="yaba", quantity=2_000_000, unit="tablet")]))
    _export_ids(th, principal(th, "TH-ONCB"), path)


def test_a_partners_ids_file_is_owned_by_unodc_ids_and_the_import_names_the_partner(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    """What docs/exchange-unodc.md says of importing a partner's IDS file with --org (ids_format as it is)."""
    _thai_ids_file(engine, partner_node, tmp_path / "th.csv")
    report = import_file(engine, tmp_path / "th.csv", fmt="ids", org_code="TH-ONCB")
    with engine.connect() as conn:
        rows = conn.execute(select(Incident.reporting_org_id, Incident.owner_org_id, Incident.source,
                                   Incident.marking, Incident.distribution, ImportBatch.org_id)
                            .join(ImportBatch, Incident.import_batch_id == ImportBatch.id)).all()
    assert report.rows_imported == 1
    assert rows == [(org_id("UNODC-IDS"), org_id("UNODC-IDS"), "unodc_ids", "CLEAR", "partners", org_id("TH-ONCB"))]


def test_a_partners_ids_file_named_with_partner_is_stored_as_the_partners_seizures(
        engine: Engine, partner_node: MakeNode, tmp_path: Path) -> None:
    _thai_ids_file(engine, partner_node, tmp_path / "th.csv")
    source = PartnerSource("TH-ONCB", marking="AMBER", distribution="domestic")
    report = import_file(engine, tmp_path / "th.csv", fmt="ids", partner=source)
    with engine.connect() as conn:
        rows = conn.execute(select(Incident.reporting_org_id, Incident.owner_org_id, Incident.source,
                                   Incident.marking, Incident.distribution)).all()
    assert report.rows_imported == 1
    assert rows == [(org_id("TH-ONCB"), org_id("TH-ONCB"), "unodc_ids", "AMBER", "domestic")]
    # shared as asked: Cambodian agencies see it, Viet Nam does not
    def seen_by(org: str, role: str) -> Counter[tuple[Any, ...]]:
        return _seizures(engine, Seizure.drug, where=visible_filter(principal(engine, org, role), Incident.__table__))

    assert seen_by("KH-GDCE", "analyst") == Counter({("methamphetamine_tablets",): 1})
    assert seen_by("VN-C04", "liaison") == Counter()
    with pytest.raises(InvalidInput, match="unknown organisation code 'XX-NONE'"):
        import_file(engine, tmp_path / "th.csv", fmt="ids", partner=PartnerSource("XX-NONE"))
    with pytest.raises(InvalidInput, match="unknown marking 'PINK'"):
        PartnerSource("TH-ONCB", marking="PINK")


# -- ARQ ---------------------------------------------------------------------------------------------------------
# (day, country or province, sharing, [(drug as the officer writes it, quantity, unit)])
ARQ_STORE = [
    (dt.date(2024, 2, 1), "Battambang", ("GREEN", "partners"), [("yaba", 1000, "tablet"), ("yaba", 200, "tablet"),
                                                               ("ice", 2.0, "kg")]),
    (dt.date(2024, 9, 9), "Battambang", ("GREEN", "partners"), [("yaba", 500, "tablet"), ("ice", 500, "g")]),
    (dt.date(2024, 12, 31), "Kampot", ("AMBER", "domestic"), [("heroin", 1.5, "kg")]),
    (dt.date(2025, 1, 1), "Kampot", ("RED", "partners"), [("yaba", 9999, "tablet")]),
    (dt.date(2025, 4, 4), "Kratie", ("CLEAR", "partners"), [("cannabis plants", 30, "plants"),
                                                          ("cannabis", 10, "kg")]),
    (dt.date(2025, 5, 5), "TH", ("GREEN", "partners"), [("yaba", 2000, "tablet")]),
]
# The same seizures as ARQ would count them, worked out by hand: (year, ISO, drug code, unit) -> (cases,
# seizures, quantity, kg), and who may see each incident (TH-ONCB: GREEN or CLEAR, all partners).
ARQ_EXPECTED_TH = {
    (2024, "KHM", "methamphetamine_tablets", "tablet"): (2, 3, 1700.0, 1700 * TABLET_KG),
    (2024, "KHM", "methamphetamine_crystalline", "kg"): (1, 1, 2.0, 2.0),
    (2024, "KHM", "methamphetamine_crystalline", "g"): (1, 1, 500.0, 0.5),
    (2025, "KHM", "cannabis_plants", "plant"): (1, 1, 30.0, None),
    (2025, "KHM", "cannabis_herb", "kg"): (1, 1, 10.0, 10.0),
    (2025, "THA", "methamphetamine_tablets", "tablet"): (1, 1, 2000.0, 2000 * TABLET_KG),
}
ARQ_EXPECTED_KH = {**ARQ_EXPECTED_TH, (2024, "KHM", "heroin", "kg"): (1, 1, 1.5, 1.5)}  # AMBER domestic: yes; RED: no


def _arq_store(engine: Engine) -> None:
    with session_scope(engine) as s:
        for day, where, (marking, distribution), seizures in ARQ_STORE:
            place = {"country": where, "place_text": "Mae Sai"} if where == "TH" else {"province": where}
            create_incident(s, IncidentIn(
                occurred_on=day, reporting_org="KH-NACD", marking=marking, distribution=distribution, **place,
                seizures=[SeizureIn(drug=d, quantity=q, unit=u) for d, q, u in seizures]))


def _rounded(totals: dict[tuple[Any, ...], tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {k: tuple(round(v, 9) if isinstance(v, float) else v for v in values) for k, values in totals.items()}


def _as_expected(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return _rounded({(r["Year"], r["msCode"], r["Drug code"], r["Unit"]):
                     (r["Cases"], r["Seizures"], r["Quantity"], r["Kilograms"]) for r in rows})


@pytest.mark.parametrize(("org", "role", "expected"), [("TH-ONCB", "liaison", ARQ_EXPECTED_TH),
                                                       ("KH-NACD", "analyst", ARQ_EXPECTED_KH)])
def test_arq_totals_are_the_sums_of_the_seizures_the_reader_may_see(
        engine: Engine, org: str, role: str, expected: dict[Any, Any]) -> None:
    _arq_store(engine)
    with engine.connect() as conn:
        rows = arq_rows(conn, principal(engine, org, role))
    assert _as_expected(rows) == _rounded(expected)
    assert [tuple(r) for r in rows] == [ARQ_COLUMNS] * len(rows)
    yaba = next(r for r in rows if r["Year"] == 2024 and r["Drug code"] == "methamphetamine_tablets")
    assert (yaba["Region"], yaba["SubRegion"], yaba["Country/Territory"], yaba["Drug group"], yaba["DrugSubGroup"],
            yaba["Drug"]) == ("Asia", "East and South-East Asia", "Cambodia", "Amphetamines and Stimulants",
                              "Methamphetamine", "\u201cYaba\u201d")
    with engine.connect() as conn:
        only_2025 = arq_rows(conn, principal(engine, org, role), year=2025)
    assert _as_expected(only_2025) == _rounded({k: v for k, v in expected.items() if k[0] == 2025})


def test_undated_seizures_have_no_year_and_are_counted_apart(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "undated.csv"
    path.write_text(";".join(IDS_COLUMNS) + "\n" + ";;Cambodia;;;;Heroin;1.0;Kilogram;;;;;;;\n"
                    ";;Cambodia;;;2024-03-03;Heroin;2.0;Kilogram;;;;;;;\n", encoding="utf-8")
    import_file(engine, path, fmt="ids")
    p = principal(engine, "KH-NACD", "analyst")
    with engine.connect() as conn:
        assert _as_expected(arq_rows(conn, p)) == {(2024, "KHM", "heroin", "kg"): (1, 1, 2.0, 2.0)}
        assert unodc.arq_counts(conn, p) == {"incidents": 1, "seizures": 1, "undated_seizures": 1}
        assert unodc.arq_counts(conn, p, year=2023) == {"incidents": 0, "seizures": 0, "undated_seizures": 0}
    assert [r["SEIZURE_DATE"] for r in _export_ids(engine, p, tmp_path / "all.csv")] == ["", "2024-03-03"]


def test_arq_writers_give_csv_workbook_and_json(sqlite_engine: Engine, tmp_path: Path) -> None:
    _arq_store(sqlite_engine)
    with sqlite_engine.connect() as conn:
        rows = arq_rows(conn, principal(sqlite_engine, "TH-ONCB"))
    assert write_arq(tmp_path / "a.csv", rows) == write_arq(tmp_path / "a.xlsx", rows) == len(rows) == 6
    write_arq(tmp_path / "a.json", rows)
    with (tmp_path / "a.csv").open(encoding="utf-8", newline="") as fh:
        from_csv = list(csv.DictReader(fh))
    assert tuple(from_csv[0]) == ARQ_COLUMNS and {r["Kilograms"] for r in from_csv if r["Unit"] == "plant"} == {""}
    assert json.loads((tmp_path / "a.json").read_text(encoding="utf-8")) == rows
    sheet = load_workbook(tmp_path / "a.xlsx", read_only=True).active
    assert sheet is not None and len(list(sheet.iter_rows(values_only=True))) == 7
    from narcotrack.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"\.csv, \.xlsx, \.json"):
        write_arq(tmp_path / "a.txt", rows)
    assert not list(tmp_path.glob("*.part"))


# -- the commands -------------------------------------------------------------------------------------------------
def test_the_commands_export_audit_and_say_what_they_wrote(
        sqlite_engine: Engine, partner_node: MakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from narcotrack.cli import app

    runner = CliRunner()
    _varied_store(sqlite_engine)
    _arq_store(sqlite_engine)
    with session_scope(sqlite_engine) as s:  # a row of UNODC's own IDS data: not sent back unless asked for
        create_incident(s, IncidentIn(occurred_on=dt.date(2025, 6, 1), province="Kampot", reporting_org="UNODC-IDS",
                                      marking="CLEAR", distribution="partners",
                                      seizures=[SeizureIn(drug="heroin", quantity=1, unit="kg")]))
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    out = tmp_path / "for-th.csv"
    r = runner.invoke(app, ["export", "ids", "--out", str(tmp_path / "all.csv"), "--partner", "TH-ONCB",
                            "--from", "2024-01-01", "--with-unodc"])
    assert r.exit_code == 0 and "Wrote 17 IDS rows (17 seizures of 8 incidents)" in _text(r.output), r.output
    r = runner.invoke(app, ["export", "arq", "--out", str(tmp_path / "all.json"), "--partner", "TH-ONCB",
                            "--year", "2025", "--with-unodc"])
    assert r.exit_code == 0 and "6 seizures of 4 incidents" in _text(r.output), r.output
    r = runner.invoke(app, ["export", "ids", "--out", str(out), "--partner", "TH-ONCB", "--from", "2024-01-01"])
    assert r.exit_code == 0, r.output
    # TH-ONCB sees the 8 seizures of _varied_store from 2024 on (not Koh Kong's AMBER domestic ones of 2023) and
    # the 8 GREEN/CLEAR ones of ARQ_STORE
    assert "Wrote 16 IDS rows (16 seizures of 7 incidents)" in _text(r.output)
    assert len(_read_ids(out)) == 16
    r = runner.invoke(app, ["export", "arq", "--out", str(tmp_path / "arq.xlsx"), "--partner", "TH-ONCB",
                            "--year", "2025"])
    assert r.exit_code == 0, r.output
    assert "Wrote 5 ARQ rows (2025: 4 drugs, 5 seizures of 3 incidents)" in _text(r.output)
    with sqlite_engine.connect() as conn:
        details = {d["format"]: d for d in conn.scalars(select(AuditEvent.detail).where(AuditEvent.action == "export")
                                                         .order_by(AuditEvent.id))}
    assert details["ids"]["rows"] == 16 and details["ids"]["incidents"] == 7 and details["ids"]["partner"] == "TH-ONCB"
    assert details["ids"]["from"] == "2024-01-01" and details["ids"]["by_drug"]["heroin"] == 1
    assert details["arq"]["rows"] == 5 and details["arq"]["year"] == 2025 and details["arq"]["incidents"] == 3
    th = partner_node("TH", sqlite_engine)
    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", th.url.render_as_string(hide_password=False))
    r = runner.invoke(app, ["import", str(out), "--format", "ids", "--partner", "KH-NACD", "--marking", "AMBER"])
    assert r.exit_code == 0, r.output
    assert _seizures(th, Incident.owner_org_id, Incident.marking, Incident.distribution) == Counter(
        {(org_id("KH-NACD"), "AMBER", "domestic"): 16})
    r = runner.invoke(app, ["import", str(out), "--format", "ids", "--marking", "AMBER"])
    assert r.exit_code == 2 and "--marking and --distribution apply" in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["ids", "--from", "2025-02-30"], "--from '2025-02-30' is not a date"),
    (["ids", "--from", "2025-03-01", "--to", "2025-02-01"], "is after --to"),
    (["ids", "--out", "x.txt"], "ending in .csv, .csv.gz, .xlsx"),
    (["arq", "--year", "1900"], "greater than or equal to 1950"),
    (["arq", "--user", "nobody"], "no active user named 'nobody'"),
])
def test_bad_options_are_refused_with_a_reason_and_write_nothing(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    from narcotrack.cli import app

    monkeypatch.setenv("NARCOTRACK_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    full = ["export", *args]
    if "--out" not in full:
        full += ["--out", "x.csv"]
    if "--user" not in full:
        full += ["--partner", "TH-ONCB"]
    r = CliRunner().invoke(app, full)
    assert r.exit_code == 2, r.output
    assert message in _text(r.output)
    assert list(here.iterdir()) == []
